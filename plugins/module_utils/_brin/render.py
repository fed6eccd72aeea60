# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the SQL of BRIN refresh, composed with psycopg's sql module only.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.plan import Visit
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import sql


def _regclass(quoted_name: str):
    return sql.SQL("{}::regclass").format(sql.Literal(quoted_name))


def statement(visit: Visit) -> sql.Composable:
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
