# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the scheduled runner installed on database hosts by the roles. It runs the
# same engine as the modules, reads its policy from a JSON file and needs neither ansible-core nor PyYAML.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import sys
import tempfile
import time

from ansible_collections.pgfleet.partitions.plugins.module_utils import _backup_job, _brin_db, _detach
from ansible_collections.pgfleet.partitions.plugins.module_utils import _catalog as catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._connection import DatabaseError, connect
from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import PgfleetError
from ansible_collections.pgfleet.partitions.plugins.module_utils._facts import (
    measure_runway,
    reference_for,
    runway_facts,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._jobs import (
    ensure_partitions_reading,
    policy_from_params,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import TIME_KEY_TYPES, parse_table_name

JOBS = ("create", "retention", "brin", "backup")
CONNECTION_KEYS = ("login_user", "login_host", "login_unix_socket", "port", "ssl_mode", "ca_cert", "ssl_cert",
                   "ssl_key", "connect_params", "session_role")
DEFAULTS = {
    "status_path": "/var/lib/pgfleet/status.json",
    "lock_path": "/var/lib/pgfleet/runner.lock",
    "lock_wait_seconds": 600,
    "metrics_dir": None,
    "lock_timeout": "3s",
    "retries": 5,
}


class ConfigError(PgfleetError):
    pass


def utc_now():
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def load_config(path):
    """The policy file: JSON (which is also YAML), with defaults filled in."""
    try:
        with open(path) as handle:
            config = json.load(handle)
    except OSError as exc:
        raise ConfigError("cannot read the policy file %s: %s" % (path, exc.strerror))
    except ValueError as exc:
        raise ConfigError("the policy file %s is not JSON: %s" % (path, exc))
    if not isinstance(config, dict) or not isinstance(config.get("tables", []), list):
        raise ConfigError("the policy file %s must hold an object with a list 'tables'" % path)
    for index, item in enumerate(config.get("tables", [])):
        if not isinstance(item, dict) or not item.get("db") or not item.get("table"):
            raise ConfigError("tables[%d] in %s needs 'db' and 'table'" % (index, path))
    return dict(DEFAULTS, **config)


def table_id(item):
    return "%s/%s" % (item["db"], item["table"])


def connection_params(config, item):
    """Shared connection settings, overridden per table; the database is the item's. No password: libpq reads
    it from the passfile given in connect_params, so it never appears in a command line or this file."""
    params = {key: value for key, value in (config.get("connection") or {}).items() if key in CONNECTION_KEYS}
    params.update({key: value for key, value in (item.get("connection") or {}).items() if key in CONNECTION_KEYS})
    params.setdefault("port", 5432)
    params.setdefault("login_user", "postgres")
    params["login_db"] = item["db"]
    return params


def _create(database, item, config, check_mode):
    """The create job's result, and the table's state when the run left it as read (None when it created some)."""
    return ensure_partitions_reading(database, parse_table_name(item["table"]), policy_from_params(item), check_mode,
                                     item.get("lock_timeout", config["lock_timeout"]),
                                     item.get("retries", config["retries"]))


def _retention(database, item, config, check_mode):
    if not item.get("retention"):
        return None
    params = dict(item, action=item.get("retention_action", "drop"),
                  backup_dir=config.get("backup_dir") if item.get("backup") else None,
                  pg_dump_path=config.get("pg_dump_path"))
    return _detach.enforce_retention(
        database, parse_table_name(item["table"]), _detach.policy_from_params(params),
        connection_params(config, item), check_mode, item.get("lock_timeout", config["lock_timeout"]),
        item.get("retries", config["retries"]))


def _brin(database, item, config, check_mode):
    if not item.get("brin"):
        return None
    return _brin_db.refresh_brin(
        database, parse_table_name(item["table"]), mode="summarize",
        recent_partitions=item.get("brin_recent_partitions"), check_mode=check_mode,
        lock_timeout=item.get("lock_timeout", config["lock_timeout"]), retries=item.get("retries", config["retries"]))


def _backup(database, item, config, check_mode):
    if not item.get("backup") or not config.get("backup_dir"):
        return None
    return _backup_job.back_up_closed_partitions(
        database, parse_table_name(item["table"]), config["backup_dir"], connection_params(config, item),
        keep_days=config.get("backup_keep_days", 30), pg_dump_path=config.get("pg_dump_path"), check_mode=check_mode,
        lock_timeout=item.get("lock_timeout", config["lock_timeout"]))


# The jobs other than create: each returns its result, None when the table is not configured for it.
JOB_FUNCTIONS = {"retention": _retention, "brin": _brin, "backup": _backup}


def summarize(job, result):
    """One line's worth of what a job did to a table."""
    if result is None:
        return "SKIPPED", "not configured for this job"
    if result.get("skipped_reason"):
        return "SKIPPED", result["skipped_reason"]
    details = []
    for key in ("created", "dropped", "detached"):
        if result.get(key):
            details.append("%s %d (%s)" % (key, len(result[key]), ", ".join(result[key])))
    if result.get("moved_rows"):
        details.append("moved %d rows from the default partition" % result["moved_rows"])
    if result.get("ranges_summarized"):
        details.append("summarized %d BRIN ranges" % result["ranges_summarized"])
    if result.get("backups"):
        details.append("backed up %d partitions" % len(result["backups"]))
    if result.get("pruned"):
        details.append("pruned %d old dumps" % len(result["pruned"]))
    return ("CHANGED" if result.get("changed") else "OK"), "; ".join(details) or "nothing to do"


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


def read_status(path):
    try:
        with open(path) as handle:
            status = json.load(handle)
        return status if isinstance(status, dict) else {}
    except (OSError, ValueError):
        return {}


def write_atomically(path, text, mode=0o640):
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


def metrics_text(status):
    """Prometheus textfile exposition of runway, default rows and last successes per table."""
    lines = [
        "# HELP pgfleet_partitions_runway_partitions Contiguous partitions after the one holding now.",
        "# TYPE pgfleet_partitions_runway_partitions gauge",
        "# HELP pgfleet_partitions_runway_seconds How far ahead the partitions reach, in seconds (time keys).",
        "# TYPE pgfleet_partitions_runway_seconds gauge",
        "# HELP pgfleet_partitions_default_rows Rows in the default partition.",
        "# TYPE pgfleet_partitions_default_rows gauge",
        "# HELP pgfleet_partitions_last_success_timestamp_seconds When a job last succeeded for the table.",
        "# TYPE pgfleet_partitions_last_success_timestamp_seconds gauge",
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
            success = _timestamp((entry.get(job) or {}).get("last_success"))
            if success is not None:
                lines.append('pgfleet_partitions_last_success_timestamp_seconds{%s,job="%s"} %d'
                             % (labels, job, success))
    return "\n".join(lines) + "\n"


def _record_facts(database, item, entry, state=None):
    """Runway and default-partition rows after a run, for the status file and the metrics, from the state the run
    left (read again when it created partitions)."""
    if state is None:
        state = catalog.read_table(database, parse_table_name(item["table"]))
    reference = reference_for(state)
    runway = runway_facts(measure_runway(state.partitions, reference)) if reference is not None else {}
    entry["runway"] = {"partitions": runway.get("partitions"), "until": runway.get("until"),
                       "interval": runway.get("interval"),
                       "seconds": runway.get("interval") if state.key_type in TIME_KEY_TYPES else None}
    default = state.default_partition
    entry["default_rows"] = catalog.count_rows(database, default.schema, default.name) if default else None


def run_table(job, item, config, check_mode, entry):
    """Run one job on one table; returns (status word, detail) and updates the table's status entry."""
    job_entry = entry.setdefault(job, {})
    job_entry["last_start"] = utc_now().isoformat()
    database = None
    try:
        database = connect(connection_params(config, item))
        if job == "create":
            result, state = _create(database, item, config, check_mode)
            if not check_mode:
                _record_facts(database, item, entry, state)
        else:
            result = JOB_FUNCTIONS[job](database, item, config, check_mode)
        word, detail = summarize(job, result)
    except (PgfleetError, DatabaseError) as exc:
        job_entry.update(last_result="failed", last_error=str(exc).strip())
        return "FAILED", str(exc).strip()
    finally:
        if database is not None:
            database.close()
    job_entry.update(last_result=word.lower(), last_error=None, changed=word == "CHANGED",
                     last_success=utc_now().isoformat())
    return word, detail


def run(config, job, tables=None, check_mode=False, out=sys.stdout):
    """Run a job over the policy's tables; the exit code is 1 when any table failed."""
    items = [item for item in config.get("tables", []) if not tables or table_id(item) in tables]
    with exclusive_lock(config["lock_path"], config["lock_wait_seconds"]) as locked:
        if not locked:
            out.write("SKIPPED %s: another run holds %s\n" % (job, config["lock_path"]))
            return 0
        status = read_status(config["status_path"])
        failed = 0
        for item in items:
            entry = status.setdefault("tables", {}).setdefault(table_id(item), {})
            word, detail = run_table(job, item, config, check_mode, entry)
            failed += word == "FAILED"
            out.write("%-7s %s %s: %s\n" % (word, table_id(item), job, detail))
            out.flush()
        if not check_mode:
            status["updated"] = utc_now().isoformat()
            write_atomically(config["status_path"], json.dumps(status, indent=2, sort_keys=True) + "\n")
            if config.get("metrics_dir"):
                write_atomically(os.path.join(config["metrics_dir"], "pgfleet_partitions.prom"),
                                 metrics_text(status), mode=0o644)
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pgfleet-partitions",
                                     description="Scheduled partition maintenance (pgfleet.partitions).")
    parser.add_argument("--config", default="/etc/pgfleet/partitions.yml")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run one job over the policy's tables")
    run_parser.add_argument("job", choices=JOBS)
    run_parser.add_argument("--table", action="append", help="DB/SCHEMA.TABLE as in the policy (repeatable)")
    run_parser.add_argument("--check", action="store_true", help="plan only: execute no DDL, write nothing")
    commands.add_parser("status", help="print the status file")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.command == "status":
            sys.stdout.write(json.dumps(read_status(config["status_path"]), indent=2, sort_keys=True) + "\n")
            return 0
        return run(config, args.job, args.table, args.check)
    except ConfigError as exc:
        sys.stderr.write("pgfleet-partitions: %s\n" % exc)
        return 2
