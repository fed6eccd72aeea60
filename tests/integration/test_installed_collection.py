"""The collection as its users get it: the tarball `ansible-galaxy collection build` makes holds exactly what a user
needs, `ansible-galaxy collection install` puts it into a fresh collections path, and site.yml run from that copy
alone (the checkout out of Ansible's sight) creates partitions, dumps and drops what retention removes, installs the
runner (maintenance role), which then runs. The smoke-2.17 gate runs this file on the oldest ansible-core too."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.collection import REPO
from tests.support.hosts import Host, PlayResult, create_database, months, partitions_of, require_host_python, \
    sample_policy

# The play needs one server; what it does does not depend on the version (the roles' tests cover both).
on_pg15 = pytest.mark.parametrize("pg_server", ["15"], indirect=True)

# What a user of the collection needs, and nothing else: no tests, bench, scripts, molecule scenarios, developer
# settings, caches; docs/img only illustrates the repository's own pages.
SHIPPED = ("README.md", "COPYING", "changelogs/changelog.yaml", "docs", "meta", "playbooks", "plugins", "roles")
NOT_SHIPPED = ("docs/img/",)


def user_files() -> set[str]:
    """The checkout's files that the tarball must hold, exactly (less Python's caches)."""
    files = set()
    for entry in SHIPPED:
        path = REPO / entry
        candidates = [path] if path.is_file() else [item for item in path.rglob("*") if item.is_file()]
        files.update(str(item.relative_to(REPO)) for item in candidates
                     if "__pycache__" not in item.parts and item.suffix != ".pyc")
    return {name for name in files if not name.startswith(NOT_SHIPPED)}


def ansible_command(name: str) -> str:
    """An Ansible command of the ansible-core under test: the one installed beside this Python."""
    return str(Path(sys.executable).parent / name)


@dataclass
class Installed:
    tarball: Path
    collections_path: Path

    @property
    def collection(self) -> Path:
        return self.collections_path / "ansible_collections" / "pgfleet" / "partitions"

    @property
    def environment(self) -> dict:
        """Ansible sees only the installed copy: the fresh path, no scan of sys.path (where the tests put the
        checkout), and no PYTHONPATH."""
        return {"ANSIBLE_COLLECTIONS_PATH": str(self.collections_path), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                "PYTHONPATH": ""}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    work = tmp_path_factory.mktemp("installed")
    subprocess.run([ansible_command("ansible-galaxy"), "collection", "build", "--output-path", str(work), str(REPO)],
                   check=True, capture_output=True, text=True)
    (tarball,) = work.glob("pgfleet-partitions-*.tar.gz")
    installed = Installed(tarball, work / "collections")
    # Installed where nothing else is configured: ansible-galaxy would otherwise find the checkout (the same name and
    # version, in the test process's collections path) and install nothing.
    subprocess.run([ansible_command("ansible-galaxy"), "collection", "install", "--offline", "-p",
                    str(installed.collections_path), str(tarball)], check=True, capture_output=True, text=True,
                   env=dict(os.environ, **installed.environment))
    assert (installed.collection / "MANIFEST.json").is_file()
    return installed


def test_the_tarball_holds_exactly_what_a_user_needs(installed):
    with tarfile.open(installed.tarball) as archive:
        members = {member.name for member in archive.getmembers() if member.isfile()}
    assert members - {"MANIFEST.json", "FILES.json"} == user_files()
    assert not {name for name in members if name.startswith(("tests/", "bench/", "scripts/", "molecule/"))}
    # The execution environment's dependencies ship, where ansible-builder looks for them.
    assert {"meta/runtime.yml", "meta/execution-environment.yml", "meta/ee-requirements.txt",
            "meta/ee-bindep.txt"} <= members


def test_galaxy_lists_the_installed_copy_as_the_only_pgfleet_partitions(installed):
    listed = subprocess.run([ansible_command("ansible-galaxy"), "collection", "list", "pgfleet.partitions"],
                            capture_output=True, text=True, check=True,
                            env=dict(os.environ, **installed.environment)).stdout
    assert f"# {installed.collections_path / 'ansible_collections'}" in listed
    assert listed.count("pgfleet.partitions") == 1, listed


@dataclass
class Converged:
    host: Host
    db: str
    play: PlayResult


@pytest.fixture(scope="module")
def converged(installed, pg_server):
    """site.yml of the installed copy on one host, at -vv so that every task names the file it comes from."""
    require_host_python()
    db = create_database(pg_server, f"installed_{os.getpid()}")
    host = Host(pg_server, sample_policy(db, raw_ingestions={"retention": "3 months"}), variables={
        "pgfleet_partitions_connection": {"login_unix_socket": pg_server.socket_dir, "port": pg_server.port}})
    try:
        play = host.play("pgfleet.partitions.site", "-vv", environment=installed.environment)
        yield Converged(host, db, play)
    finally:
        host.remove()
        pg_server.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


@on_pg15
def test_every_task_of_the_play_comes_from_the_installed_copy(installed, converged):
    task_paths = [line.split("task path: ", 1)[1] for line in converged.play.output.splitlines()
                  if line.startswith("task path: ")]
    assert len(task_paths) > 10, converged.play.output[-4000:]
    assert [path for path in task_paths if not path.startswith(f"{installed.collection}/")] == []


@on_pg15
def test_site_creates_partitions_and_drops_old_ones_after_dumping_them(converged):
    host, server, db = converged.host, converged.host.server, converged.db
    assert partitions_of(server, db, "raw_ingestions") == [
        f"raw_ingestions_{month}" for month in months(server, db, -2, 3)]
    dumps = sorted(host.path(f"var/backups/pgfleet/{db}").glob("*.dump"))
    assert [dump.name.split(".")[1] for dump in dumps] == [
        f"raw_ingestions_{month}" for month in months(server, db, -8, -6)]
    assert all(Path(f"{dump}.sha256").exists() for dump in dumps)


@on_pg15
def test_the_runner_installed_from_the_tarball_runs(installed, converged):
    host, server, db = converged.host, converged.host.server, converged.db
    engine = host.path("usr/local/lib/pgfleet/ansible_collections/pgfleet/partitions/plugins/module_utils")
    source = installed.collection / "plugins/module_utils"
    assert sorted(path.relative_to(engine) for path in engine.rglob("*.py")) == sorted(
        path.relative_to(source) for path in source.rglob("*.py"))
    newest = f"heart_rate_metrics_{months(server, db, 3, 3)[0]}"
    server.psql(f"DROP TABLE {newest}", dbname=db)
    completed = host.runner("run", "create")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"CHANGED {db}/heart_rate_metrics create: created 1 ({newest})" in completed.stdout.splitlines()
