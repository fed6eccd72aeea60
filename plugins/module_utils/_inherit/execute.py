# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: runs the repairs of inheritance on existing partitions: each partition's changes in
# one short transaction under lock_timeout with retries, then its index builds CONCURRENTLY, each once under
# lock_timeout. What to run is decided before (plan.py, render.py); this only runs it.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any, Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import ExecutionError, LockBusy
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError, sqlstate
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    RETRYABLE_SQLSTATES,
    script_in_transaction_with_retries,
    under_session_lock_timeout,
)


def repair(database, what: str, transaction: Sequence[Any], concurrent: Sequence[Any], lock_timeout: str,
           retries: int) -> None:
    """The transaction with retries; then each statement outside a transaction, once: a CREATE INDEX CONCURRENTLY
    that gives up leaves an invalid index behind, which another attempt would not remove but the next run drops."""
    try:
        if transaction:
            script_in_transaction_with_retries(database, transaction, lock_timeout, retries, what)
        for statement in concurrent:
            under_session_lock_timeout(database, lock_timeout, statement, record=False)
    except DatabaseError as exc:
        if sqlstate(exc) in RETRYABLE_SQLSTATES:
            raise LockBusy("%s: could not get its locks within lock_timeout=%s (a long transaction is probably "
                           "holding them, see pg_stat_activity); an invalid index it leaves is dropped by the next run"
                           % (what, lock_timeout))
        raise ExecutionError("%s failed: %s" % (what, str(exc).strip()))
