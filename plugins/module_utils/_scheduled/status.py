# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: what the runner leaves on the host: the run lock, the status file (written
# atomically) and the Prometheus textfile of its metrics.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import tempfile
import time

from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled.config import JOBS, NOT_CONFIGURED


@contextlib.contextmanager
def exclusive_lock(path, wait_seconds, clock=time.monotonic, sleep=time.sleep):
    """An flock on `path`, waited for at most wait_seconds; yields False when another run keeps it."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    handle = open(path, "a")
    try:
        yield _acquire(handle, wait_seconds, clock, sleep)
    finally:
        handle.close()


def _acquire(handle, wait_seconds, clock, sleep):
    deadline = clock() + wait_seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if clock() >= deadline:
                return False
            sleep(0.2)


def read_status(path: str) -> dict:
    try:
        with open(path) as handle:
            status = json.load(handle)
        return status if isinstance(status, dict) else {}
    except (OSError, ValueError):
        return {}


def write_atomically(path: str, text: str, mode: int = 0o640) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _timestamp(text):
    try:
        return int(dt.datetime.fromisoformat(text).timestamp())
    except (TypeError, ValueError):
        return None


def metrics_text(status: dict) -> str:
    """Prometheus textfile exposition per table: runway, default rows, and per job the table's policy asks for the
    last run, whether it failed, and the last success."""
    lines = [
        "# HELP pgfleet_partitions_runway_partitions Contiguous partitions after the one holding now.",
        "# TYPE pgfleet_partitions_runway_partitions gauge",
        "# HELP pgfleet_partitions_runway_seconds How far ahead the partitions reach, in seconds (time keys).",
        "# TYPE pgfleet_partitions_runway_seconds gauge",
        "# HELP pgfleet_partitions_default_rows Rows in the default partition.",
        "# TYPE pgfleet_partitions_default_rows gauge",
        "# HELP pgfleet_partitions_last_success_timestamp_seconds When a job last succeeded for the table.",
        "# TYPE pgfleet_partitions_last_success_timestamp_seconds gauge",
        "# HELP pgfleet_partitions_last_run_timestamp_seconds When a job last ran for the table.",
        "# TYPE pgfleet_partitions_last_run_timestamp_seconds gauge",
        "# HELP pgfleet_partitions_last_run_failed 1 when the job's last run for the table failed, else 0.",
        "# TYPE pgfleet_partitions_last_run_failed gauge",
    ]
    for key, entry in sorted(status.get("tables", {}).items()):
        db, table = key.split("/", 1)
        labels = 'db="%s",table="%s"' % (db.replace('"', ""), table.replace('"', ""))
        runway = entry.get("runway") or {}
        if runway.get("partitions") is not None:
            lines.append("pgfleet_partitions_runway_partitions{%s} %d" % (labels, runway["partitions"]))
        if isinstance(runway.get("seconds"), (int, float)):
            lines.append("pgfleet_partitions_runway_seconds{%s} %d" % (labels, runway["seconds"]))
        if entry.get("default_rows") is not None:
            lines.append("pgfleet_partitions_default_rows{%s} %d" % (labels, entry["default_rows"]))
        for job in JOBS:
            record = entry.get(job) or {}
            if not record or record.get("last_result") == NOT_CONFIGURED:
                continue
            for metric, stamp in (("last_success", record.get("last_success")), ("last_run", record.get("last_start"))):
                seconds = _timestamp(stamp)
                if seconds is not None:
                    lines.append('pgfleet_partitions_%s_timestamp_seconds{%s,job="%s"} %d'
                                 % (metric, labels, job, seconds))
            lines.append('pgfleet_partitions_last_run_failed{%s,job="%s"} %d'
                         % (labels, job, record.get("last_result") == "failed"))
    return "\n".join(lines) + "\n"
