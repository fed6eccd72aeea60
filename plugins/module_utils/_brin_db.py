# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the BRIN refresh's catalog reads (a constant number of SELECTs), its SQL
# (composed with psycopg's sql module only) and its execution under lock_timeout with retries.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import time
from typing import List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._brin import (
    BrinIndex,
    Relation,
    Visit,
    check_indexes,
    check_table,
    plan_refresh,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._connection import DatabaseError, sql, sqlstate
from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import (
    CatalogError,
    ExecutionError,
    PgfleetError,
    PlanError,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._locking import (
    RETRYABLE_SQLSTATES,
    in_transaction_with_retries,
    under_session_lock_timeout,
    validate_lock_timeout,
    with_retries,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import TableName

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
# DateStyle or TimeZone is assumed. Roots: the given tables, or every top-level table of the database.
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
                 WHERE option_name = 'pages_per_range'), 128)
FROM tree
JOIN pg_catalog.pg_class tc ON tc.oid = tree.relid AND tc.relkind IN ('r', 'm')
JOIN pg_catalog.pg_namespace tns ON tns.oid = tc.relnamespace
JOIN pg_catalog.pg_index x ON x.indrelid = tc.oid
JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam AND am.amname = 'brin'
JOIN pg_catalog.pg_namespace ins ON ins.oid = ic.relnamespace
WHERE (x.indisvalid OR ic.relname !~ %(transient)s)
  AND (%(indexes)s::text[] IS NULL
   OR x.indexrelid IN (SELECT tree_member.relid
                       FROM unnest(%(indexes)s::text[]::oid[]) AS given(oid),
                            pg_catalog.pg_partition_tree(given.oid) AS tree_member
                       WHERE tree_member.isleaf))
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


def _oids(oids: Optional[Sequence[int]]) -> Optional[List[str]]:
    # As text: drivers guess a small integer type for oids, and there is no smallint -> oid cast.
    return None if oids is None else [str(oid) for oid in oids]


def brin_indexes(database, roots: Optional[Sequence[int]] = None,
                 only_indexes: Optional[Sequence[int]] = None) -> Tuple[BrinIndex, ...]:
    """BRIN indexes on the leaf tables under `roots` (default: every table of the database), optionally only
    those that are (or are partitions of) `only_indexes`."""
    rows = database.query(_BRIN_INDEXES_QUERY, {"roots": _oids(roots), "indexes": _oids(only_indexes),
                                                "transient": TRANSIENT_INDEX_NAME})
    return tuple(
        BrinIndex(index_schema=index_schema, index_name=index_name, table_schema=table_schema, table_name=table_name,
                  index_regclass=index_regclass, table_regclass=table_regclass, table_oid=table_oid,
                  root_oid=root_oid, bound_path=tuple(bound_path), heap_blocks=int(heap_blocks),
                  pages_per_range=int(pages_per_range))
        for (index_schema, index_name, table_schema, table_name, index_regclass, table_regclass, table_oid, root_oid,
             bound_path, heap_blocks, pages_per_range) in rows
    )


def find_brin_indexes(database, table: Optional[TableName] = None,
                      indexes: Optional[Sequence[TableName]] = None) -> Tuple[BrinIndex, ...]:
    """The BRIN indexes a run may visit: on the leaves of `table`, the leaves of the given `indexes`, or
    (neither given) every BRIN index of the database. Unknown names and wrong kinds are CatalogErrors."""
    if table is not None:
        relation = resolve(database, [table])[0]
        check_table(relation)
        return brin_indexes(database, roots=[relation.oid])
    if indexes is not None:
        relations = resolve(database, indexes)
        check_indexes(relations)
        return brin_indexes(database, roots=[relation.table_oid for relation in relations],
                            only_indexes=[relation.oid for relation in relations])
    return brin_indexes(database)


def _regclass(quoted_name: str):
    return sql.SQL("{}::regclass").format(sql.Literal(quoted_name))


def statement(visit: Visit):
    """The one statement a visit runs; summarizing ones return the number of ranges they summarized."""
    index = visit.index
    if visit.mode == "reindex_concurrently":
        return sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(index.index_schema, index.index_name))
    if visit.mode == "summarize":
        return sql.SQL("SELECT pg_catalog.brin_summarize_new_values({})").format(_regclass(index.index_regclass))
    # Each range is desummarized, then summarized afresh from the rows it holds now; the materialized CTE
    # hands the ranges one by one to the outer call, so both happen per range in that order.
    return sql.SQL(
        "WITH ranges AS MATERIALIZED ("
        "SELECT first_block, pg_catalog.brin_desummarize_range({index}, first_block) "
        "FROM pg_catalog.generate_series(0, pg_catalog.pg_relation_size({table}) "
        "/ pg_catalog.current_setting('block_size')::bigint - 1, {step}) AS first_block) "
        "SELECT coalesce(sum(pg_catalog.brin_summarize_range({index}, first_block)), 0) FROM ranges"
    ).format(index=_regclass(index.index_regclass), table=_regclass(index.table_regclass),
             step=sql.Literal(index.pages_per_range))


def refresh_one(database, visit: Visit, lock_timeout: str, retries: int) -> int:
    """Run one visit; the ranges it summarized (for a rebuild: the ranges of the table as read)."""
    index = visit.index
    what = "BRIN index %s on %s (%s)" % (index.index, index.table, visit.mode)
    composed = statement(visit)

    def summarize(db):
        return int(db.query_value(composed, record=True))

    try:
        if visit.mode == "reindex_concurrently":
            _rebuild(database, index, composed, lock_timeout, retries, what)
            return index.block_ranges
        return in_transaction_with_retries(database, summarize, lock_timeout, retries, what)
    except DatabaseError as exc:
        raise ExecutionError("%s failed: %s" % (what, str(exc).strip()))


def _leftovers(database, index: BrinIndex) -> List[str]:
    return [name for (name,) in database.query(
        _LEFTOVERS_QUERY, {"table": index.table_regclass, "transient": TRANSIENT_INDEX_NAME})]


def _rebuild(database, index: BrinIndex, composed, lock_timeout: str, retries: int, what: str,
             sleep=time.sleep) -> None:
    """REINDEX INDEX CONCURRENTLY, retried only while failed attempts leave nothing behind.

    A lock_timeout on the first lock leaves nothing; one while it waits for older transactions, after it
    built its new index, leaves that index invalid, and each further try would add another.
    """
    existing = set(_leftovers(database, index))

    def attempt(number):
        try:
            under_session_lock_timeout(database, lock_timeout, composed)
        except DatabaseError as exc:
            left = [name for name in _leftovers(database, index) if name not in existing]
            if left:
                cause = ("lock_timeout=%s ran out" % lock_timeout if sqlstate(exc) in RETRYABLE_SQLSTATES
                         else str(exc).strip())
                raise ExecutionError(
                    "%s failed after building its new index (%s) and left the invalid index %s behind. A long "
                    "transaction on %s probably held it up: drop the leftover with DROP INDEX CONCURRENTLY once "
                    "that transaction ends, then run again, perhaps with a longer lock_timeout"
                    % (what, cause, ", ".join(left), index.table))
            raise

    with_retries(attempt, lock_timeout, retries, what, sleep=sleep)


def visited(visit: Visit, ranges_summarized: int) -> dict:
    return dict(index=visit.index.index, table=visit.index.table, ranges_summarized=ranges_summarized)


def outcome(mode: str, indexes: List[dict], queries: List[str], expects_change: Optional[bool] = None) -> dict:
    """The job's result from the visited indexes; expects_change stands in for changed in check mode."""
    total = sum(entry["ranges_summarized"] for entry in indexes)
    changed = total > 0 or (mode == "reindex_concurrently" and bool(indexes))
    return dict(changed=changed if expects_change is None else expects_change, mode=mode, indexes=indexes,
                ranges_summarized=total, queries=queries)


def refresh_brin(database, table: Optional[TableName] = None, indexes: Optional[Sequence[TableName]] = None,
                 mode: str = "summarize", recent_partitions: Optional[int] = None, check_mode: bool = False,
                 lock_timeout: str = "3s", retries: int = 5) -> dict:
    """Refresh the BRIN indexes of a table (or the named ones, or all); the result is what the module returns.

    On failure the exception carries `partial_result`: the indexes refreshed before it.
    """
    done = []
    try:
        lock_timeout = validate_lock_timeout(lock_timeout)
        if retries < 0:
            raise PlanError("retries must be 0 or more, not %d" % retries)
        plan = plan_refresh(find_brin_indexes(database, table, indexes), mode, recent_partitions,
                            read_server(database))
        if plan.skipped_reason:
            return dict(outcome(plan.mode, [], []), skipped_reason=plan.skipped_reason)
        if check_mode:
            would_run = [database.as_string(statement(visit)) for visit in plan.visits]
            return outcome(plan.mode, [visited(visit, 0) for visit in plan.visits], would_run,
                           expects_change=plan.expects_change)
        for visit in plan.visits:
            done.append(visited(visit, refresh_one(database, visit, lock_timeout, retries)))
    except (PgfleetError, DatabaseError) as exc:
        exc.partial_result = outcome(mode, done, list(database.queries))
        raise
    return outcome(plan.mode, done, list(database.queries))
