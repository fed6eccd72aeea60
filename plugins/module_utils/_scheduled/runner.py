# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the scheduled runner installed on database hosts by the roles; the launcher
# (roles/maintenance/templates/pgfleet-partitions.j2) calls main(). It runs the same engine as the modules, reads
# its policy from a JSON file and needs neither ansible-core nor PyYAML.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PgfleetError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.connection import connect
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError
from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled import jobs
from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled.config import (
    JOBS,
    NOT_CONFIGURED,
    ConfigError,
    connection_params,
    load_config,
    table_id,
    utc_now,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled.status import (
    exclusive_lock,
    metrics_text,
    read_status,
    write_atomically,
)


class DrainProgress(object):
    """What a drain prints as it goes (a line per partition when it is attached, and at most every PERIOD seconds
    while it fills) and records in the table's status entry."""

    PERIOD = 10.0

    def __init__(self, table: str, entry: dict, out, clock=time.monotonic) -> None:
        self.table, self.entry, self.out, self.clock = table, entry, out, clock
        self.printed = clock()

    def __call__(self, partition: str, rows: int, done: bool) -> None:
        self.entry["drain"]["partitions"][partition] = {"rows": rows, "attached": done}
        if done or self.clock() - self.printed >= self.PERIOD:
            self.out.write("DRAIN   %s: %s %s, %d rows moved\n" % (
                self.table, partition, "attached" if done else "filling", rows))
            self.out.flush()
            self.printed = self.clock()


class Sessions(object):
    """The run's connections, one per distinct connection settings: the tables of one database share one (a new
    connection costs a server process and catalog caches read cold). A table whose job failed closes its
    connection, so the next table starts on a fresh session whatever the failure left behind."""

    def __init__(self, opener=connect) -> None:
        self.opener = opener
        self.open: Dict[str, object] = {}

    def get(self, params: dict):
        key = json.dumps(params, sort_keys=True)
        database = self.open.get(key)
        if database is None:
            database = self.open[key] = self.opener(params)
        database.queries = []  # each table's result lists only its own statements
        return database

    def discard(self, database) -> None:
        for key, held in list(self.open.items()):
            if held is database:
                del self.open[key]
        database.close()

    def close(self) -> None:
        for database in self.open.values():
            database.close()
        self.open.clear()


def run_table(job: str, item: dict, config: dict, check_mode: bool, entry: dict,
              out=sys.stdout, sessions: Optional[Sessions] = None) -> Tuple[str, str]:
    """Run one job on one table; returns (status word, detail) and updates the table's status entry. The
    connection comes from `sessions` (a connection of its own when there are none) and goes back to it."""
    job_entry = entry.setdefault(job, {})
    job_entry["last_start"] = utc_now().isoformat()
    own = sessions is None
    sessions = Sessions() if own else sessions
    database = None
    try:
        database = sessions.get(connection_params(config, item))
        if job == "create":
            if not check_mode and ("default_rows" in item or "list_new_values" in item):
                entry["drain"] = {"started": job_entry["last_start"], "partitions": {}}
            result, state = jobs.create(database, item, config, check_mode,
                                        None if check_mode else DrainProgress(table_id(item), entry, out))
            if "drain" in entry and "left_in_default" in result:
                entry["drain"]["left"] = result["left_in_default"]
            if not check_mode:
                jobs.record_facts(database, item, entry, state)
        else:
            result = jobs.JOB_FUNCTIONS[job](database, item, config, check_mode)
        word, detail = jobs.summarize(job, result)
    except (PgfleetError, DatabaseError) as exc:
        if database is not None:
            sessions.discard(database)
        job_entry.update(last_result="failed", last_error=str(exc).strip())
        return "FAILED", str(exc).strip()
    except BaseException:
        sessions.close()
        raise
    finally:
        if own:
            sessions.close()
    if result is None:
        # Not in this table's policy: no success to report, and none left from when it was.
        entry[job] = {"last_start": job_entry["last_start"], "last_result": NOT_CONFIGURED}
        return word, detail
    job_entry.update(last_result=word.lower(), last_error=None, changed=word == "CHANGED",
                     last_success=utc_now().isoformat())
    return word, detail


def run(config: dict, job: str, tables: Optional[Sequence[str]] = None, check_mode: bool = False,
        out=sys.stdout) -> int:
    """Run a job over the policy's tables; the exit code is 1 when any table failed."""
    items = [item for item in config.get("tables", []) if not tables or table_id(item) in tables]
    with exclusive_lock(config["lock_path"], config["lock_wait_seconds"]) as locked:
        if not locked:
            out.write("SKIPPED %s: another run holds %s\n" % (job, config["lock_path"]))
            return 0
        status = read_status(config["status_path"])
        failed = 0
        sessions = Sessions()
        try:
            for item in items:
                entry = status.setdefault("tables", {}).setdefault(table_id(item), {})
                word, detail = run_table(job, item, config, check_mode, entry, out, sessions)
                failed += word == "FAILED"
                out.write("%-7s %s %s: %s\n" % (word, table_id(item), job, detail))
                out.flush()
        finally:
            sessions.close()
        if not check_mode:
            status["updated"] = utc_now().isoformat()
            write_atomically(config["status_path"], json.dumps(status, indent=2, sort_keys=True) + "\n")
            if config.get("metrics_dir"):
                write_atomically(os.path.join(config["metrics_dir"], "pgfleet_partitions.prom"),
                                 metrics_text(status), mode=0o644)
    return 1 if failed else 0


def main(argv: Optional[List[str]] = None) -> int:
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
