# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the backup job of the scheduled runner: verified dumps of closed range
# partitions, refreshed when they grow old, and the last dump of a dropped partition kept for good.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import json
import os

from ansible_collections.pgfleet.partitions.plugins.module_utils import _backup as backup
from ansible_collections.pgfleet.partitions.plugins.module_utils import _catalog as catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._facts import instant
from ansible_collections.pgfleet.partitions.plugins.module_utils._jobs import STANDBY_REASON, jsonable
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import RangeBounds, bound_before


def read_manifest(directory):
    """The newest manifest line of each dump file that still exists with the size it was recorded with."""
    newest = {}
    try:
        with open(os.path.join(directory, backup.MANIFEST)) as manifest:
            lines = [json.loads(line) for line in manifest if line.strip()]
    except (OSError, ValueError):
        return newest
    for line in lines:
        path = os.path.join(directory, line.get("file", ""))
        if os.path.isfile(path) and os.path.getsize(path) == line.get("bytes"):
            newest[line["partition"]] = line
    return newest


def closed_partitions(state):
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


def back_up_closed_partitions(database, table, backup_dir, connection_params, keep_days=30, pg_dump_path=None,
                              check_mode=False, lock_timeout="3s"):
    """Dump each closed partition of `table` that has no verified dump younger than keep_days.

    One dump file per partition: a refresh replaces it atomically, so a dump of a partition that no longer
    exists in the database is never touched again and stays as its last copy.
    """
    backup.validate_backup_dir(backup_dir)
    catalog.prepare_session(database)
    state = catalog.read_table(database, table, with_max_key=False)
    result = {"changed": False, "table": "%s.%s" % (state.schema, state.name), "backups": [], "refreshed": [],
              "queries": []}
    if state.in_recovery:
        result["skipped_reason"] = STANDBY_REASON
        return result
    database_name = database.query_value("SELECT current_database()")
    directory = backup.database_directory(backup_dir, database_name)
    dumped = read_manifest(directory)
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
                              "path": backup.dump_path(directory, p.schema, p.name)} for p, _refresh in due]
        result["refreshed"] = ["%s.%s" % (p.schema, p.name) for p, refresh in due if refresh]
        return result
    tools = backup.find_tools(state.server_version_num // 10000, pg_dump_path)
    environment = backup.libpq_environment(connection_params, database_name)
    backup.prepare_directory(directory)
    for partition, refresh in due:
        details = {"parent": result["table"], "lower": jsonable(partition.bounds.lower),
                   "upper": jsonable(partition.bounds.upper)}
        record = backup.dump_table(database, tools, environment, partition.schema, partition.name, directory,
                                   details, lock_timeout, connection_params.get("session_role"))
        result["backups"].append(record.facts())
        if refresh:
            result["refreshed"].append(record.partition)
    return result
