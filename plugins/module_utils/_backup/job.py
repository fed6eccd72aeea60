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
    """Leaf range partitions of a time key whose whole range lies before the server's now()."""
    if state.strategy != "range" or state.key_kind != "time":
        return []
    now = instant(state.server_now)
    return [p for p in state.partitions
            if isinstance(p.bounds, RangeBounds) and not p.is_partitioned
            and not bound_before(now, instant(p.bounds.upper))]


def _age_days(line, now):
    try:
        return (now - dt.datetime.fromisoformat(line["time"])).total_seconds() / 86400
    except (KeyError, TypeError, ValueError):
        return float("inf")


def back_up_closed_partitions(database, table: TableName, backup_dir: str, connection_params: dict,
                              keep_days: float = 30, pg_dump_path: Optional[str] = None, check_mode: bool = False,
                              lock_timeout: str = "3s") -> dict:
    """Dump each closed partition of `table` that has no verified dump younger than keep_days.

    One dump file per partition: a refresh replaces it atomically, so a dump of a partition that no longer
    exists in the database is never touched again and stays as its last copy.
    """
    files.validate_backup_dir(backup_dir)
    catalog.prepare_session(database)
    state = catalog.read_table(database, table, with_max_key=False)
    result = {"changed": False, "table": "%s.%s" % (state.schema, state.name), "backups": [], "refreshed": [],
              "queries": []}
    if state.in_recovery:
        result["skipped_reason"] = standby_reason()
        return result
    directory = files.database_directory(backup_dir, catalog.current_database(database))
    dumped = files.read_manifest(directory)
    due = []
    for partition in closed_partitions(state):
        qualified = "%s.%s" % (partition.schema, partition.name)
        line = dumped.get(qualified)
        if line is None or _age_days(line, state.server_now) > keep_days:
            due.append((partition, line is not None))
    result["kept"] = sorted(set(dumped) - {"%s.%s" % (p.schema, p.name) for p in state.partitions})
    if not due:
        return result
    result["changed"] = True
    if check_mode:
        result["backups"] = [{"partition": "%s.%s" % (p.schema, p.name),
                              "path": files.dump_path(directory, p.schema, p.name)} for p, _refresh in due]
        result["refreshed"] = ["%s.%s" % (p.schema, p.name) for p, refresh in due if refresh]
        return result
    backups = dump.prepare(database, state.server_version_num, backup_dir, pg_dump_path, connection_params)
    files.prepare_directory(directory, backup_dir)
    for partition, refresh in due:
        details = {"parent": result["table"], "lower": jsonable(partition.bounds.lower),
                   "upper": jsonable(partition.bounds.upper)}
        record = dump.dump_table(database, backups, partition.schema, partition.name, details, lock_timeout)
        result["backups"].append(record.facts())
        if refresh:
            result["refreshed"].append(record.partition)
    return result
