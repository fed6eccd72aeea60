# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: runs the visits of a BRIN refresh, each under lock_timeout with retries; a
# REINDEX ... CONCURRENTLY outside any transaction, retried only while failed attempts leave nothing behind.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import time

from ansible_collections.pgfleet.partitions.plugins.module_utils._brin import catalog, render
from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.plan import BrinIndex, Visit
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import ExecutionError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError, sqlstate
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    RETRYABLE_SQLSTATES,
    in_transaction_with_retries,
    under_session_lock_timeout,
    with_retries,
)


def refresh_one(database, visit: Visit, lock_timeout: str, retries: int) -> int:
    """Run one visit; the ranges it summarized (for a rebuild: the ranges of the table as read)."""
    index, what = visit.index, visit.what
    composed = render.statement(visit)

    def summarize(db):
        return int(db.execute_returning(composed)[0])

    try:
        if visit.mode == "reindex_concurrently":
            _rebuild(database, index, composed, lock_timeout, retries, what)
            return index.block_ranges
        return in_transaction_with_retries(database, summarize, lock_timeout, retries, what)
    except DatabaseError as exc:
        raise ExecutionError("%s failed: %s" % (what, str(exc).strip()))


def _rebuild(database, index: BrinIndex, composed, lock_timeout: str, retries: int, what: str,
             sleep=time.sleep) -> None:
    """REINDEX INDEX CONCURRENTLY, retried only while failed attempts leave nothing behind.

    A lock_timeout on the first lock leaves nothing; one while it waits for older transactions, after it
    built its new index, leaves that index invalid, and each further try would add another.
    """
    existing = set(catalog.leftovers(database, index))

    def attempt(number):
        try:
            under_session_lock_timeout(database, lock_timeout, composed)
        except DatabaseError as exc:
            left = [name for name in catalog.leftovers(database, index) if name not in existing]
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
