"""The runner's launcher as the maintenance role installs it (/usr/local/bin/pgfleet-partitions), rendered from the
role's own template, so that tests and benchmarks start the runner exactly as cron does."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2

from tests.support.collection import COLLECTIONS_ROOT, REPO

TEMPLATE = REPO / "roles" / "maintenance" / "templates" / "pgfleet-partitions.j2"


def render(python: str, lib_dir: Path) -> str:
    """The launcher's text for this Python and engine directory (a directory holding ansible_collections/)."""
    environment = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    environment.filters["comment"] = lambda text: "#\n# %s\n#" % text
    environment.filters["to_json"] = json.dumps
    return environment.from_string(TEMPLATE.read_text()).render(
        ansible_managed="rendered by tests/support/launcher.py", pgfleet_partitions_python=python,
        pgfleet_partitions_lib_dir=str(lib_dir))


def write(directory: Path, python: str = sys.executable, lib_dir: Path = COLLECTIONS_ROOT) -> Path:
    """The launcher written (executable) into `directory`; it runs this checkout's engine by default."""
    path = Path(directory) / "pgfleet-partitions"
    path.write_text(render(python, lib_dir))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


_default = None


def command(*args: str) -> list[str]:
    """The command line of the runner with `args` (e.g. --config FILE run create), launched as cron launches it."""
    global _default
    if _default is None:
        _default = write(Path(tempfile.mkdtemp(prefix="pgfleet-launcher-")))
    return [str(_default), *args]


def environment() -> dict:
    """The environment a launched runner gets: this one without a PYTHONPATH, so it finds only its own engine, and
    without the test process's choice of driver, so it takes the engine's default as cron's runs do."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PGFLEET_DB_DRIVER")}


def write_config(tmp_path: Path, pg, tables: list, **settings) -> Path:
    """A policy file for the runner in tmp_path: `tables` on the test database `pg`, status and metrics under
    tmp_path, connecting as postgres through the server's socket; `settings` override the rest."""
    config = dict(
        status_path=str(tmp_path / "var" / "status.json"),
        lock_path=str(tmp_path / "var" / "runner.lock"),
        lock_wait_seconds=1,
        metrics_dir=str(tmp_path / "metrics"),
        connection=dict(login_unix_socket=pg.server.socket_dir, port=pg.server.port, login_user="postgres"),
        tables=tables,
    )
    config.update(settings)
    path = tmp_path / "partitions.yml"
    path.write_text(json.dumps(config))
    return path


def run_runner(config_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The launched runner with the policy file and `args` (e.g. run create), its output captured."""
    return subprocess.run(command("--config", str(config_path), *args), capture_output=True, text=True,
                          timeout=120, check=False, env=environment())
