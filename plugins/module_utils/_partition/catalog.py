# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the catalog reads of postgres_partition and postgres_partition_info beyond the
# table's state (_db/catalog.py): what a new partition would take from the default partition, and the health facts
# info reports. SELECTs only.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import CreatePartition, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog as db_catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition import render


def list_values_as_key(database, state: TableState, values: Sequence[str]) -> Dict[str, Optional[str]]:
    """{value: the key type's text of it, None when it is no value of that type}."""
    if not values:
        return {}
    try:
        return dict(database.query(render.list_values_as_key(state, values)))
    except DatabaseError:
        if len(values) == 1:
            return {values[0]: None}
        return dict(item for value in values for item in list_values_as_key(database, state, [value]).items())


def rows_to_move_and_default_size(database, state: TableState, action: CreatePartition) -> Tuple[int, int]:
    """The rows of the default partition that belong in the action's partition, and the default partition's size in
    bytes; (0, 0) when the set has no default partition or the action creates it."""
    if state.default_partition is None or action.is_default:
        return 0, 0
    rows, size = database.query(render.rows_to_move_and_default_size(state, action))[0]
    return int(rows), int(size or 0)


# For postgres_partition_info, in one query for all tables: whether each parent was ever analyzed, and its
# partitions lacking a partition of one of the parent's indexes. reltuples is -1 until the first ANALYZE
# (PostgreSQL 14 and newer) and lives in pg_class, so a hot standby answers too; pg_stat adds when, where it has it.
# Missing indexes are what CREATE INDEX ON ONLY leaves until every partition's index is attached: the parent's
# index stays invalid meanwhile.
_HEALTH_QUERY = """
SELECT root.oid, c.reltuples >= 0 OR s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL,
       greatest(s.last_analyze, s.last_autoanalyze),
       ARRAY(SELECT ARRAY[part_ns.nspname::text, part.relname::text, parent_index.relname::text]
             FROM pg_index px
             JOIN pg_class parent_index ON parent_index.oid = px.indexrelid
             JOIN pg_inherits i ON i.inhparent = root.oid
             JOIN pg_class part ON part.oid = i.inhrelid
             JOIN pg_namespace part_ns ON part_ns.oid = part.relnamespace
             WHERE px.indrelid = root.oid
               AND NOT EXISTS (SELECT 1 FROM pg_inherits attached
                               JOIN pg_index cx ON cx.indexrelid = attached.inhrelid
                               WHERE attached.inhparent = px.indexrelid AND cx.indrelid = part.oid)
             ORDER BY part_ns.nspname, part.relname, parent_index.relname)
FROM unnest(%(oids)s::text[]::oid[]) AS root(oid)
JOIN pg_class c ON c.oid = root.oid
LEFT JOIN pg_stat_all_tables s ON s.relid = root.oid
"""


def table_health(database, table_oids: Sequence[int]) -> Dict[int, tuple]:
    """{table oid: (parent analyzed, last analyzed or None, {(schema, partition): [missing parent indexes]})}."""
    found = {oid: (False, None, {}) for oid in table_oids}
    if table_oids:
        for oid, analyzed, last_analyzed, missing in database.query(
                _HEALTH_QUERY, {"oids": db_catalog.oids_as_text(table_oids)}):
            lacking = {}
            for schema, name, index in missing:
                lacking.setdefault((schema, name), []).append(index)
            found[oid] = (bool(analyzed), last_analyzed, lacking)
    return found


def server_facts(database, with_settings: bool) -> Tuple[bool, Optional[dict]]:
    """(in recovery, settings): the settings that decide whether partitioning pays off for queries, as this
    session sees them (with_settings), else None."""
    if not with_settings:
        return db_catalog.in_recovery(database), None
    recovering, pruning = database.query(
        "SELECT pg_is_in_recovery(), current_setting('enable_partition_pruning')")[0]
    return bool(recovering), {"enable_partition_pruning": pruning}
