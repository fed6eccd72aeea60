# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the BRIN refresh job postgres_brin_refresh and the scheduled runner share:
# resolve the names, read the indexes, plan the visits, run them, report.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._brin import catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.execute import refresh_one
from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.plan import (
    BrinIndex,
    Visit,
    check_indexes,
    check_table,
    plan_refresh,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.render import statement
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PgfleetError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import TableName
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    validate_count,
    validate_lock_timeout,
)


def find_brin_indexes(database, table: Optional[TableName] = None,
                      indexes: Optional[Sequence[TableName]] = None) -> Tuple[BrinIndex, ...]:
    """The BRIN indexes a run may visit: on the leaves of `table`, the leaves of the given `indexes`, or
    (neither given) every BRIN index of the database. Unknown names and wrong kinds are CatalogErrors."""
    if table is not None:
        relation = catalog.resolve(database, [table])[0]
        check_table(relation)
        return catalog.brin_indexes(database, roots=[relation.oid])
    if indexes is not None:
        relations = catalog.resolve(database, indexes)
        check_indexes(relations)
        return catalog.brin_indexes(database, roots=[relation.table_oid for relation in relations],
                                    only_indexes=[relation.oid for relation in relations])
    return catalog.brin_indexes(database)


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
        validate_count("retries", retries)
        plan = plan_refresh(find_brin_indexes(database, table, indexes), mode, recent_partitions,
                            catalog.read_server(database))
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
