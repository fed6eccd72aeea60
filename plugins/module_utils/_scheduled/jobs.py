# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the runner's jobs (create, retention, brin, backup) on one policy item, each the
# same engine job a module runs, and the one line each run prints per table.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Callable, Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import TableState, parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.facts import (
    reference_for,
    runway_facts,
    set_runway,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.job import ensure_partitions_reading
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.params import policy_from_params
from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled.config import connection_params

# The retention, brin and backup jobs are imported when they run: a nightly `run create` pass, most often a no-op,
# then starts without them (the backup job alone brings subprocess and the dump code, a sixth of the start-up).


def create(database, item: dict, config: dict, check_mode: bool,
           progress: Optional[Callable[[str, int, bool], None]] = None) -> Tuple[dict, Optional[TableState]]:
    """The create job's result, and the table's state as the run left it (None when another run's lock made it skip
    the table)."""
    return ensure_partitions_reading(database, parse_table_name(item["table"]), policy_from_params(item), check_mode,
                                     item.get("lock_timeout", config["lock_timeout"]),
                                     item.get("retries", config["retries"]), progress=progress)


def _retention(database, item, config, check_mode):
    if not item.get("retention"):
        return None
    from ansible_collections.pgfleet.partitions.plugins.module_utils._retention import params as retention_params
    from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.job import enforce_retention
    params = dict(item, action=item.get("retention_action", "drop"),
                  backup_dir=config.get("backup_dir") if item.get("backup") else None,
                  pg_dump_path=config.get("pg_dump_path"))
    return enforce_retention(
        database, parse_table_name(item["table"]), retention_params.policy_from_params(params),
        connection_params(config, item), check_mode, item.get("lock_timeout", config["lock_timeout"]),
        item.get("retries", config["retries"]))


def _brin(database, item, config, check_mode):
    if not item.get("brin"):
        return None
    from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.job import refresh_brin
    return refresh_brin(
        database, parse_table_name(item["table"]), mode="summarize",
        recent_partitions=item.get("brin_recent_partitions"), check_mode=check_mode,
        lock_timeout=item.get("lock_timeout", config["lock_timeout"]), retries=item.get("retries", config["retries"]))


def _backup(database, item, config, check_mode):
    if not item.get("backup") or not config.get("backup_dir"):
        return None
    from ansible_collections.pgfleet.partitions.plugins.module_utils._backup import job as backup_job
    return backup_job.back_up_closed_partitions(
        database, parse_table_name(item["table"]), config["backup_dir"], connection_params(config, item),
        keep_days=config.get("backup_keep_days", 30), pg_dump_path=config.get("pg_dump_path"), check_mode=check_mode,
        lock_timeout=item.get("lock_timeout", config["lock_timeout"]))


# The jobs other than create: each returns its result, None when the table is not configured for it.
JOB_FUNCTIONS = {"retention": _retention, "brin": _brin, "backup": _backup}


def summarize(job: str, result: Optional[dict]) -> Tuple[str, str]:
    """One line's worth of what a job did to a table."""
    if result is None:
        return "SKIPPED", "not configured for this job"
    if result.get("skipped_reason"):
        return "SKIPPED", result["skipped_reason"]
    details = []
    for key in ("created", "repaired", "dropped", "detached"):
        if result.get(key):
            details.append("%s %d (%s)" % (key, len(result[key]), ", ".join(result[key])))
    if result.get("moved_rows"):
        details.append("moved %d rows from the default partition" % result["moved_rows"])
    for left in result.get("left_in_default") or ():
        details.append("%d rows stay in the default partition: %s" % (left["rows"], left["reason"]))
    if result.get("ranges_summarized"):
        details.append("summarized %d BRIN ranges" % result["ranges_summarized"])
    if result.get("backups"):
        details.append("backed up %d partitions" % len(result["backups"]))
    if result.get("pruned"):
        details.append("pruned %d old dumps" % len(result["pruned"]))
    return ("CHANGED" if result.get("changed") else "OK"), "; ".join(details) or "nothing to do"


def record_facts(database, item: dict, entry: dict, state: Optional[TableState] = None) -> None:
    """Runway and default-partition rows after a run, for the status file and the metrics, from the state the run
    left (read again when there is none)."""
    if state is None:
        state = catalog.read_table(database, parse_table_name(item["table"]))
    reference = reference_for(state)
    runway = runway_facts(set_runway(state, reference)) if reference is not None else {}
    entry["runway"] = {"partitions": runway.get("partitions"), "until": runway.get("until"),
                       "interval": runway.get("interval"),
                       "seconds": runway.get("interval") if state.key_kind in ("time", "uuid") else None}
    default = state.default_partition
    entry["default_rows"] = catalog.count_rows(database, default.schema, default.name) if default else None
