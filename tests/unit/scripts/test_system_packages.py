"""scripts/ensure-system-packages waiting for the apt/dpkg locks, tried on a temporary lock file held with flock.

The script is sourced (it then only defines its functions) and its helpers run against the temporary file and a
fake apt-get that fails the way apt does while the file is locked: the real dpkg and apt locks are never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "ensure-system-packages"
BASH = shutil.which("bash")
# apt's message, lock path included; it exits 100 on any error.
FAKE_APT_GET = """#!/bin/sh
if ! flock -n "$FAKE_LOCK" true; then
    echo "E: Could not get lock $FAKE_LOCK. It is held by process 1 (somebody)" >&2
    exit 100
fi
echo "fake apt-get: $*"
"""

pytestmark = pytest.mark.skipif(shutil.which("flock") is None, reason="needs flock (util-linux)")


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "lock"  # apt's lock files are called lock or lock-frontend; the script looks for those
    path.touch()
    return path


def hold(lock: Path, seconds: float) -> subprocess.Popen:
    """A background `flock LOCK sleep SECONDS`, returned once it holds the lock."""
    holder = subprocess.Popen(["flock", str(lock), "sleep", str(seconds)])
    while subprocess.run(["flock", "-n", str(lock), "true"], check=False).returncode == 0:
        assert holder.poll() is None, "the flock holder exited before taking the lock"
        time.sleep(0.02)
    return holder


@pytest.fixture
def holders():
    started: list[subprocess.Popen] = []

    def start(lock: Path, seconds: float) -> subprocess.Popen:
        started.append(hold(lock, seconds))
        return started[-1]

    yield start
    for holder in started:
        holder.kill()
        holder.wait()


def run_sourced(commands: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BASH, "-c", f'source "$1"; sudo=(); {commands}', "test_system_packages", str(SCRIPT)],
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )


def path_with_only(bin_dir: Path, tools: list[str]) -> str:
    """A PATH holding just these tools (so the script cannot find fuser or lsof unless named)."""
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


FINDERS = [
    pytest.param(["fuser"], id="the holder is found with fuser when it is installed"),
    pytest.param(["lsof"], id="the holder is found with lsof when fuser is missing"),
    pytest.param([], id="the holder is found in /proc/*/fd when neither fuser nor lsof is there"),
]


@pytest.mark.parametrize("finder", FINDERS)
def test_lock_holders_names_the_process_holding_the_file(finder, lock, holders, tmp_path):
    if any(shutil.which(tool) is None for tool in finder):
        pytest.skip(f"{finder[0]} is not installed")
    holder = holders(lock, 60)
    env = {"PATH": path_with_only(tmp_path / "bin", ["readlink", "sort", "cat", *finder])}
    result = run_sourced(f'lock_holders "{lock}"', env)
    assert result.returncode == 0, result.stderr
    assert f"{holder.pid} (flock)" in result.stdout.splitlines()


def test_lock_holders_prints_nothing_for_a_free_lock(lock):
    result = run_sourced(f'lock_holders "{lock}"', dict(os.environ))
    assert (result.returncode, result.stdout) == (0, ""), result.stderr


@pytest.fixture
def fake_apt_env(lock, tmp_path) -> dict[str, str]:
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "apt-get").write_text(FAKE_APT_GET)
    (fake_bin / "apt-get").chmod(0o755)
    return {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "FAKE_LOCK": str(lock)}


def test_apt_get_waits_for_the_lock_and_runs_once_it_is_free(lock, holders, fake_apt_env):
    holder = holders(lock, 1.5)
    env = {**fake_apt_env, "PGFLEET_APT_LOCK_TIMEOUT": "30"}
    result = run_sourced("LOCK_RETRY_SECONDS=0.2; apt_get update -qq", env)
    assert result.returncode == 0, result.stderr
    assert f"waiting up to 30 s for {lock}, held by {holder.pid} (flock)" in result.stdout
    assert "fake apt-get: -o DPkg::Lock::Timeout=" in result.stdout
    assert result.stdout.rstrip().endswith("update -qq")
    assert "Could not get lock" not in result.stderr  # the messages of the tries that waited stay quiet


def test_apt_get_fails_naming_the_holder_when_the_wait_runs_out(lock, holders, fake_apt_env):
    holder = holders(lock, 60)
    env = {**fake_apt_env, "PGFLEET_APT_LOCK_TIMEOUT": "1"}
    result = run_sourced("LOCK_RETRY_SECONDS=0.2; apt_get install -y cron", env)
    assert result.returncode == 100
    assert f"apt-get install: {lock} is still held after 1 s by {holder.pid} (flock)" in result.stderr
    assert "PGFLEET_APT_LOCK_TIMEOUT=<seconds> waits longer" in result.stderr
    assert "fake apt-get:" not in result.stdout


def test_a_timeout_that_is_not_a_number_is_refused(fake_apt_env):
    result = run_sourced("apt_get update", {**fake_apt_env, "PGFLEET_APT_LOCK_TIMEOUT": "5m"})
    assert result.returncode == 2
    assert "PGFLEET_APT_LOCK_TIMEOUT must be a number of seconds, not '5m'" in result.stderr
