# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: reads one partitioned table's state with SELECTs only, a constant number
# of queries whatever the partition count.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses

from ansible_collections.pgfleet.partitions.plugins.module_utils._bounds import parse_bound
from ansible_collections.pgfleet.partitions.plugins.module_utils._connection import sql
from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import CatalogError
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import Partition, TableState

STRATEGIES = {"r": "range", "l": "list", "h": "hash"}

# Bounds are printed in the session's TimeZone and DateStyle; fixing both makes them parse the same everywhere.
SESSION_SETTINGS = ("SET TimeZone TO 'UTC'", "SET DateStyle TO 'ISO, YMD'", "SET IntervalStyle TO 'postgres'")

_TABLE_QUERY = """
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, pt.partstrat::text, pt.partnatts,
       pt.partattrs[0], a.attname::text, format_type(a.atttypid, NULL),
       ARRAY(SELECT att.attname::text FROM pg_attribute att
             WHERE att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped AND att.attgenerated = ''
             ORDER BY att.attnum),
       now(), pg_is_in_recovery(), current_setting('server_version_num')::int
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
WHERE c.relname = %(name)s
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND (n.nspname = %(schema)s::text OR (%(schema)s::text IS NULL AND n.nspname = ANY (current_schemas(false))))
ORDER BY array_position(current_schemas(false), n.nspname) NULLS LAST
LIMIT 1
"""

_PARTITIONS_QUERY = """
SELECT n.nspname::text, c.relname::text, pg_get_expr(c.relpartbound, c.oid), c.relkind = 'p',
       i.inhdetachpending,
       CASE WHEN %(sizes)s THEN pg_total_relation_size(c.oid)
            ELSE c.relpages::bigint * current_setting('block_size')::int END,
       greatest(c.reltuples, 0)::bigint
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = %(oid)s
ORDER BY c.oid
"""

_PARTITIONED_TABLES_QUERY = """
SELECT n.nspname::text, c.relname::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'p' AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY 1, 2
"""


def prepare_session(database):
    for setting in SESSION_SETTINGS:
        database.execute(setting, record=False)


def list_partitioned_tables(database):
    """Every top-level partitioned table of the database, as (schema, name)."""
    return [tuple(row) for row in database.query(_PARTITIONED_TABLES_QUERY)]


def read_table(database, table, with_sizes=False, with_max_key=True):
    """The TableState of `table` (a TableName); CatalogError when it is missing or not partitioned."""
    rows = database.query(_TABLE_QUERY, {"name": table.name, "schema": table.schema})
    if not rows:
        where = "schema %s" % table.schema if table.schema else "the search_path (%s)" % ", ".join(
            database.query_value("SELECT current_schemas(false)::text[]") or [])
        raise CatalogError("table %s does not exist in %s" % (table.name, where))
    (oid, schema, name, relkind, strategy, key_count, key_attnum, key, key_type, columns, now, in_recovery,
     version) = rows[0]
    qualified = "%s.%s" % (schema, name)
    if relkind != "p":
        raise CatalogError(
            "%s is not a partitioned table (relkind %r); create it with PARTITION BY, or convert it first"
            % (qualified, relkind)
        )
    if key_count != 1 or not key_attnum:
        raise CatalogError("%s: only a single-column partition key is supported (not an expression or "
                           "several columns)" % qualified)
    partitions = tuple(
        Partition(
            schema=part_schema, name=part_name, bounds=parse_bound(expression, key_type),
            is_default=expression.strip().upper() == "DEFAULT", is_partitioned=is_partitioned,
            detach_pending=bool(detach_pending), size_bytes=int(size or 0), rows_estimate=int(rows_estimate or 0),
        )
        for part_schema, part_name, expression, is_partitioned, detach_pending, size, rows_estimate
        in database.query(_PARTITIONS_QUERY, {"oid": oid, "sizes": with_sizes})
    )
    state = TableState(
        oid=oid, schema=schema, name=name, strategy=STRATEGIES[strategy], key=key, key_type=key_type,
        partitions=partitions, columns=tuple(columns), server_now=now, in_recovery=bool(in_recovery),
        server_version_num=int(version),
    )
    if with_max_key and state.strategy == "range" and state.key_kind == "integer":
        max_key = database.query_value(
            sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(key), sql.Identifier(schema, name))
        )
        state = dataclasses.replace(state, max_key=int(max_key) if max_key is not None else None)
    return state


# For postgres_partition_info: the BRIN indexes of whole partition sets, in one query for all of them.
_BRIN_INDEXES_QUERY = """
SELECT root.oid, n.nspname::text, ic.relname::text, tc.relname::text, tree.level,
       coalesce((SELECT option_value::boolean FROM pg_options_to_table(ic.reloptions)
                 WHERE option_name = 'autosummarize'), false),
       coalesce((SELECT option_value::int FROM pg_options_to_table(ic.reloptions)
                 WHERE option_name = 'pages_per_range'), 128)
FROM unnest(%(oids)s::text[]::oid[]) AS root(oid)
CROSS JOIN LATERAL pg_partition_tree(root.oid) AS tree
JOIN pg_index x ON x.indrelid = tree.relid
JOIN pg_class ic ON ic.oid = x.indexrelid
JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'brin'
JOIN pg_class tc ON tc.oid = tree.relid
JOIN pg_namespace n ON n.oid = ic.relnamespace
ORDER BY root.oid, tree.level, tc.relname, ic.relname
"""


def brin_indexes(database, table_oids):
    """{table oid: [(schema, index, table or partition, level, autosummarize, pages_per_range), ...]}."""
    found = {oid: [] for oid in table_oids}
    if table_oids:
        # As text: drivers send small integers as smallint[], and there is no smallint -> oid cast.
        for row in database.query(_BRIN_INDEXES_QUERY, {"oids": [str(oid) for oid in table_oids]}):
            found[row[0]].append(tuple(row[1:]))
    return found


def count_rows(database, schema, name):
    """The exact number of rows of one relation (a scan: meant for default partitions)."""
    return int(database.query_value(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))))


def in_recovery(database):
    return bool(database.query_value("SELECT pg_is_in_recovery()"))


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


def table_health(database, table_oids):
    """{table oid: (parent analyzed, last analyzed or None, {(schema, partition): [missing parent indexes]})}."""
    found = {oid: (False, None, {}) for oid in table_oids}
    if table_oids:
        for oid, analyzed, last_analyzed, missing in database.query(
                _HEALTH_QUERY, {"oids": [str(oid) for oid in table_oids]}):
            lacking = {}
            for schema, name, index in missing:
                lacking.setdefault((schema, name), []).append(index)
            found[oid] = (bool(analyzed), last_analyzed, lacking)
    return found


def server_facts(database, with_settings):
    """(in recovery, settings): the settings that decide whether partitioning pays off for queries, as this
    session sees them (with_settings), else None."""
    if not with_settings:
        return in_recovery(database), None
    recovering, pruning = database.query(
        "SELECT pg_is_in_recovery(), current_setting('enable_partition_pruning')")[0]
    return bool(recovering), {"enable_partition_pruning": pruning}
