# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the catalog reads of BRIN refresh and of the BRIN facts postgres_partition_info
# reports, SELECTs only, a constant number of them whatever the partition count.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.plan import BrinIndex
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import CatalogError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Relation, TableName
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.catalog import oids_as_text

MINIMUM_SERVER = 120000  # pg_partition_tree, MATERIALIZED and REINDEX ... CONCURRENTLY

# REINDEX ... CONCURRENTLY names its new index <index>_ccnew[N] (and the old one <index>_ccold[N] before it
# drops it); after a failure such an index stays behind, invalid. It is nobody's index to refresh.
TRANSIENT_INDEX_NAME = "_cc(new|old)[0-9]*$"

_LEFTOVERS_QUERY = """
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE x.indrelid = %(table)s::regclass AND NOT x.indisvalid AND c.relname ~ %(transient)s
"""

_SERVER_QUERY = "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('server_version_num')::int"

_RESOLVE_QUERY = """
SELECT c.oid, c.relkind::text, am.amname::text, x.indrelid
FROM unnest(%(schemas)s::text[], %(names)s::text[]) WITH ORDINALITY AS given(schema_name, relation_name, position)
LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(
    coalesce(pg_catalog.quote_ident(nullif(given.schema_name, '')) || '.', '')
    || pg_catalog.quote_ident(given.relation_name))
LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
LEFT JOIN pg_catalog.pg_index x ON x.indexrelid = c.oid
ORDER BY given.position
"""

# Walks each set from its root through pg_inherits, carrying the range lower bound of every level as a
# number (epoch seconds for time keys), cast by the server from its own pg_get_expr text so that no
# DateStyle or TimeZone is assumed. Roots: the given tables, or every top-level table of the database. Every level
# is listed (a partitioned table's index too: info reports it); refresh visits the leaves.
_BRIN_INDEXES_QUERY = r"""
WITH RECURSIVE tree AS (
    SELECT c.oid AS relid, c.oid AS root_oid, ARRAY[]::numeric[] AS bound_path
    FROM pg_catalog.pg_class c
    WHERE CASE WHEN %(roots)s::text[] IS NULL
               THEN c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition AND c.relpersistence <> 't'
               ELSE c.oid = ANY (%(roots)s::text[]::oid[]) END
  UNION ALL
    SELECT child.oid, tree.root_oid, tree.bound_path || coalesce(
        CASE
            WHEN pt.partstrat <> 'r' OR bound.lower IS NULL THEN NULL
            WHEN bound.lower = 'MINVALUE' THEN '-Infinity'::numeric
            WHEN key.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype)
                THEN bound.lower::numeric
            WHEN key.atttypid IN ('date'::regtype, 'timestamp'::regtype)
                THEN extract(epoch FROM bound.lower::timestamp)
            WHEN key.atttypid = 'timestamptz'::regtype THEN extract(epoch FROM bound.lower::timestamptz)
        END, '-Infinity'::numeric)
    FROM tree
    JOIN pg_catalog.pg_inherits i ON i.inhparent = tree.relid
    JOIN pg_catalog.pg_class child ON child.oid = i.inhrelid AND child.relispartition
    JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = tree.relid
    LEFT JOIN pg_catalog.pg_attribute key
        ON key.attrelid = pt.partrelid AND key.attnum = pt.partattrs[0] AND pt.partnatts = 1
    CROSS JOIN LATERAL (
        SELECT replace(btrim(substring(pg_catalog.pg_get_expr(child.relpartbound, child.oid)
                                       FROM '^FOR VALUES FROM \((.*)\) TO \('), ''''), '''''', '''') AS lower
    ) AS bound
)
SELECT ins.nspname::text, ic.relname::text, tns.nspname::text, tc.relname::text,
       pg_catalog.quote_ident(ins.nspname) || '.' || pg_catalog.quote_ident(ic.relname),
       pg_catalog.quote_ident(tns.nspname) || '.' || pg_catalog.quote_ident(tc.relname),
       tc.oid, tree.root_oid, tree.bound_path,
       pg_catalog.pg_relation_size(tc.oid) / pg_catalog.current_setting('block_size')::bigint,
       coalesce((SELECT option_value::int FROM pg_catalog.pg_options_to_table(ic.reloptions)
                 WHERE option_name = 'pages_per_range'), 128),
       coalesce((SELECT option_value::boolean FROM pg_catalog.pg_options_to_table(ic.reloptions)
                 WHERE option_name = 'autosummarize'), false),
       tc.relkind <> 'p', x.indisvalid OR ic.relname !~ %(transient)s
FROM tree
JOIN pg_catalog.pg_class tc ON tc.oid = tree.relid AND tc.relkind IN ('r', 'm', 'p')
JOIN pg_catalog.pg_namespace tns ON tns.oid = tc.relnamespace
JOIN pg_catalog.pg_index x ON x.indrelid = tc.oid
JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam AND am.amname = 'brin'
JOIN pg_catalog.pg_namespace ins ON ins.oid = ic.relnamespace
WHERE %(indexes)s::text[] IS NULL
   OR x.indexrelid IN (SELECT tree_member.relid
                       FROM unnest(%(indexes)s::text[]::oid[]) AS given(oid),
                            pg_catalog.pg_partition_tree(given.oid) AS tree_member
                       WHERE tree_member.isleaf)
ORDER BY tree.root_oid, tc.oid, ic.oid
"""


def read_server(database) -> bool:
    """Whether the server is a hot standby; CatalogError on servers older than the module supports."""
    in_recovery, version = database.query(_SERVER_QUERY)[0]
    if version < MINIMUM_SERVER:
        raise CatalogError("PostgreSQL 12 or later is needed for BRIN refresh (server_version_num %s)" % version)
    return bool(in_recovery)


def resolve(database, names: Sequence[TableName]) -> List[Relation]:
    """The catalog's view of each name, in the given order, found through the search_path when unqualified."""
    rows = database.query(_RESOLVE_QUERY, {"schemas": [name.schema or "" for name in names],
                                           "names": [name.name for name in names]})
    return [Relation(given=str(name), oid=oid, relkind=relkind, access_method=access_method, table_oid=table_oid)
            for name, (oid, relkind, access_method, table_oid) in zip(names, rows)]


def brin_indexes(database, roots: Optional[Sequence[int]] = None,
                 only_indexes: Optional[Sequence[int]] = None) -> Tuple[BrinIndex, ...]:
    """BRIN indexes on every level of the sets under `roots` (default: every table of the database), optionally
    only those that are (or are partitions of) `only_indexes`."""
    rows = database.query(_BRIN_INDEXES_QUERY, {"roots": oids_as_text(roots), "indexes": oids_as_text(only_indexes),
                                                "transient": TRANSIENT_INDEX_NAME})
    return tuple(
        BrinIndex(index_schema=index_schema, index_name=index_name, table_schema=table_schema, table_name=table_name,
                  index_regclass=index_regclass, table_regclass=table_regclass, table_oid=table_oid,
                  root_oid=root_oid, bound_path=tuple(bound_path), heap_blocks=int(heap_blocks),
                  pages_per_range=int(pages_per_range), autosummarize=bool(autosummarize), on_leaf=bool(on_leaf),
                  visitable=bool(visitable))
        for (index_schema, index_name, table_schema, table_name, index_regclass, table_regclass, table_oid, root_oid,
             bound_path, heap_blocks, pages_per_range, autosummarize, on_leaf, visitable) in rows
    )


def leftovers(database, index: BrinIndex) -> List[str]:
    """The invalid indexes failed REINDEX ... CONCURRENTLY runs left on the index's table."""
    return [name for (name,) in database.query(
        _LEFTOVERS_QUERY, {"table": index.table_regclass, "transient": TRANSIENT_INDEX_NAME})]
