# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the catalog reads every job shares, SELECTs only: one partitioned table's state in
# a constant number of queries whatever the partition count, names resolved through the search_path, and the
# server facts a plan depends on.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Set, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.bounds import parse_bound
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import CatalogError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Partition, TableName, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import render
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import sql

STRATEGIES = {"r": "range", "l": "list", "h": "hash"}

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

# pg_get_expr with relation 0: a partition bound holds constants only, so the text is the same as with the
# partition's oid, without opening (and locking) every partition, which made this read grow with the partitions.
_PARTITIONS_QUERY = """
SELECT n.nspname::text, c.relname::text, pg_get_expr(c.relpartbound, 0), c.relkind = 'p',
       i.inhdetachpending,
       sum(CASE WHEN %(sizes)s THEN pg_total_relation_size(l.oid)
                ELSE l.relpages::bigint * current_setting('block_size')::int END)::bigint,
       sum(greatest(l.reltuples, 0))::bigint, c.oid
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
-- A sub-partitioned partition's size and rows are those of its leaves.
LEFT JOIN LATERAL (SELECT c.oid WHERE c.relkind <> 'p'
                   UNION ALL SELECT t.relid FROM pg_partition_tree(CASE WHEN c.relkind = 'p' THEN c.oid END) AS t
                   WHERE t.isleaf) AS leaf(oid) ON true
LEFT JOIN pg_class l ON l.oid = leaf.oid
WHERE i.inhparent = %(oid)s
GROUP BY n.nspname, c.relname, c.relpartbound, c.oid, c.relkind, i.inhdetachpending
ORDER BY c.oid
"""

_PARTITIONED_TABLES_QUERY = """
SELECT n.nspname::text, c.relname::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'p' AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY 1, 2
"""


_SCHEMA_QUERY = """
SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(name)s
  AND (n.nspname = %(schema)s::text OR (%(schema)s::text IS NULL AND n.nspname = ANY (current_schemas(false))))
ORDER BY array_position(current_schemas(false), n.nspname) NULLS LAST
LIMIT 1
"""

_TAKEN_NAMES_QUERY = ("SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                      "WHERE n.nspname = %s AND c.relname = ANY (%s)")

_RELATION_SIZE_QUERY = ("SELECT pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = %s AND c.relname = %s")


def prepare_session(database) -> None:
    """The session settings bounds are read under, sent as one message (one round trip)."""
    database.execute_script(render.SESSION_SETTINGS)


def list_partitioned_tables(database) -> List[Tuple[str, str]]:
    """Every top-level partitioned table of the database, as (schema, name)."""
    return [tuple(row) for row in database.query(_PARTITIONED_TABLES_QUERY)]


def _missing(database, table: TableName) -> CatalogError:
    where = "schema %s" % table.schema if table.schema else "the search_path (%s)" % ", ".join(
        database.query_value("SELECT current_schemas(false)::text[]") or [])
    return CatalogError("table %s does not exist in %s" % (table.name, where))


def resolve_schema(database, table: TableName) -> str:
    """The schema of the relation `table` names (the search_path decides when it has none); CatalogError when
    there is none."""
    schema = database.query_value(_SCHEMA_QUERY, {"name": table.name, "schema": table.schema})
    if schema is None:
        raise _missing(database, table)
    return schema


def read_table(database, table: TableName, with_sizes: bool = False, with_max_key: bool = True) -> TableState:
    """The TableState of `table` (a TableName); CatalogError when it is missing or not partitioned."""
    rows = database.query(_TABLE_QUERY, {"name": table.name, "schema": table.schema})
    if not rows:
        raise _missing(database, table)
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
            oid=int(part_oid),
        )
        for part_schema, part_name, expression, is_partitioned, detach_pending, size, rows_estimate, part_oid
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


def count_rows(database, schema: str, name: str) -> int:
    """The exact number of rows of one relation (a scan: meant for default partitions)."""
    return int(database.query_value(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))))


def rows_and_checksum(database, schema: str, name: str) -> Tuple[int, str]:
    """The rows of one relation and a checksum of their content (the sum of a hash of each row's text): equal for
    the same multiset of rows, different when any row was added, removed or changed. One scan."""
    rows, checksum = database.query(sql.SQL(
        "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {} AS t").format(
        sql.Identifier(schema, name)))[0]
    return int(rows), checksum


def in_recovery(database) -> bool:
    return bool(database.query_value("SELECT pg_is_in_recovery()"))


def server_version_num(database) -> int:
    return int(database.query_value("SHOW server_version_num"))


def current_database(database) -> str:
    return database.query_value("SELECT current_database()")


def current_user(database) -> str:
    return database.query_value("SELECT current_user::text")


def taken_names(database, schema: str, names: Sequence[str]) -> Set[str]:
    """Which of `names` some relation of `schema` already has."""
    return {row[0] for row in database.query(_TAKEN_NAMES_QUERY, (schema, list(names)))} if names else set()


def relation_size(database, schema: str, name: str) -> int:
    """The main fork's size in bytes (0 when the relation is gone)."""
    return int(database.query_value(_RELATION_SIZE_QUERY, (schema, name)) or 0)


def tablespace_exists(database, name: str) -> bool:
    return bool(database.query_value("SELECT count(*) FROM pg_tablespace WHERE spcname = %s", (name,)))


def relation_oid(database, schema: str, name: str) -> int:
    return int(database.query_value(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
        "AND c.relname = %s", (schema, name)))


def export_snapshot(database) -> str:
    """The snapshot of the current (REPEATABLE READ) transaction, for pg_dump --snapshot."""
    return database.query_value("SELECT pg_export_snapshot()")


def oids_as_text(oids: Optional[Sequence[int]]) -> Optional[List[str]]:
    """Oids as query parameters: as text, since drivers send small integers as smallint[] and there is no
    smallint -> oid cast."""
    return None if oids is None else [str(oid) for oid in oids]


_LEAVES_QUERY = """
SELECT t.parentrelid::oid, p.oid, n.nspname::text, c.relname::text, c.oid
FROM unnest(%s::oid[]) AS p(oid)
CROSS JOIN LATERAL pg_partition_tree(p.oid) AS t
JOIN pg_class c ON c.oid = t.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.isleaf AND t.level > 0
ORDER BY c.oid
"""


def leaves_of(database, partitions: Sequence[Partition]) -> List[Partition]:
    """The leaf tables of sub-partitioned partitions, each with the bounds of the partition it belongs to."""
    by_oid = {p.oid: p for p in partitions}
    return [Partition(schema, name, by_oid[root].bounds, oid=int(oid))
            for _parent, root, schema, name, oid in database.query(_LEAVES_QUERY, (list(by_oid),))]
