# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the backup job of the scheduled runner: verified dumps of closed range
# partitions, refreshed when they grow old, and the last dump of a dropped partition kept for good.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
from typing import List, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._backup import dump, files
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    Partition,
    RangeBounds,
    TableName,
    TableState,
    bound_before,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import jsonable, standby_reason
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import instant
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog


def closed_partitions(state: TableState) -> List[Partition]:
    """Range partitions of a time key whose whole range lies before the server's now(); for a sub-partitioned one,
    its leaves are what is dumped."""
    if state.strategy != "range" or state.key_kind != "time":
        return []
    now = instant(state.server_now)
    return [p for p in state.partitions
            if isinstance(p.bounds, RangeBounds) and not bound_before(now, instant(p.bounds.upper))]


def _age_days(line, now):
    try:
        return (now - dt.datetime.fromisoformat(line["time"])).total_seconds() / 86400
    except (KeyError, TypeError, ValueError):
        return float("inf")


def _expendable(dumps: dict, parent: str, now: dt.datetime, keep_days: float) -> List[dict]:
    """Dumps of `parent`'s partitions that a newer verified dump of the same partition incarnation (same name, same
    oid) supersedes and that are older than keep_days. The newest dump of every incarnation is kept for good, and
    so is every dump written before oids were recorded: nothing says which incarnation those hold."""
    return [line for (_partition, oid), lines in dumps.items() if oid is not None
            for line in lines[:-1] if line.get("parent") == parent and _age_days(line, now) > keep_days]


def back_up_closed_partitions(database, table: TableName, backup_dir: str, connection_params: dict,
                              keep_days: float = 30, pg_dump_path: Optional[str] = None, check_mode: bool = False,
                              lock_timeout: str = "3s") -> dict:
    """Dump each closed partition of `table` that has no verified dump younger than keep_days, then prune the dumps
    that newer ones supersede.

    Every dump is a new file (named for the partition's oid and the dump's time): a partition dropped and created
    again under the same name is dumped afresh, and the dumps of the one before stay, the newest for good.
    """
    files.validate_backup_dir(backup_dir)
    catalog.prepare_session(database)
    state = catalog.read_table(database, table, with_max_key=False)
    result = {"changed": False, "table": "%s.%s" % (state.schema, state.name), "backups": [], "refreshed": [],
              "pruned": [], "queries": []}
    if state.in_recovery:
        result["skipped_reason"] = standby_reason()
        return result
    directory = files.database_directory(backup_dir, catalog.current_database(database))
    dumped = files.read_manifest(directory)
    closed = closed_partitions(state)
    partitioned = [p for p in closed if p.is_partitioned]
    leaves = catalog.leaves_of(database, partitioned) if partitioned else []
    closed = [p for p in closed if not p.is_partitioned] + leaves
    due = []
    for partition in closed:
        lines = dumped.get(("%s.%s" % (partition.schema, partition.name), partition.oid))
        if not lines or _age_days(lines[-1], state.server_now) > keep_days:
            due.append((partition, bool(lines)))
    current = {("%s.%s" % (p.schema, p.name), p.oid) for p in state.partitions + tuple(leaves)}
    result["kept"] = sorted({name for (name, oid), lines in dumped.items() if (name, oid) not in current
                             and lines[-1].get("parent", result["table"]) == result["table"]})
    if check_mode:
        result["backups"] = [{"partition": "%s.%s" % (p.schema, p.name),
                              "path": files.dump_path(directory, p.schema, p.name, p.oid, files.PLANNED_STAMP)}
                             for p, _refresh in due]
        result["refreshed"] = ["%s.%s" % (p.schema, p.name) for p, refresh in due if refresh]
        result["pruned"] = [line["file"] for line in _expendable(dumped, result["table"], state.server_now,
                                                                 keep_days)]
        result["changed"] = bool(due or result["pruned"])
        return result
    if due:
        backups = dump.prepare(database, state.server_version_num, backup_dir, pg_dump_path, connection_params)
        files.prepare_directory(directory, backup_dir)
    for partition, refresh in due:
        details = {"parent": result["table"], "lower": jsonable(partition.bounds.lower),
                   "upper": jsonable(partition.bounds.upper)}
        record = dump.dump_table(database, backups, partition.schema, partition.name, details, lock_timeout)
        result["backups"].append(record.facts())
        if refresh:
            result["refreshed"].append(record.partition)
    for line in _expendable(files.read_manifest(directory), result["table"], state.server_now, keep_days):
        files.prune(directory, line, state.server_now)
        result["pruned"].append(line["file"])
    result["changed"] = bool(result["backups"] or result["pruned"])
    return result
