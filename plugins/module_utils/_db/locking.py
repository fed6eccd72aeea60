# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: lock_timeout with retries, and the per-table advisory lock.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import random
import re
import time

from typing import Any, Callable, List, Optional, Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import LockBusy, PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import render
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError, sqlstate

# lock_not_available (lock_timeout expired) and deadlock_detected are worth another try; nothing else is.
RETRYABLE_SQLSTATES = ("55P03", "40P01")

# A constant first key keeps our advisory locks apart from any the application takes on the same oids.
ADVISORY_NAMESPACE = 0x70676670  # "pgfp"

_LOCK_TIMEOUT = re.compile(r"^\s*\d+(\.\d+)?\s*(ms|s|min|h)?\s*$")


def validate_lock_timeout(value: Any) -> str:
    """A PostgreSQL duration such as '3s' or '500ms'; refused before anything reaches the server."""
    if not _LOCK_TIMEOUT.match(str(value)):
        raise PlanError("lock_timeout %r is not a duration such as '3s', '500ms' or '1min'" % (value,))
    return str(value).strip()


def validate_count(option: str, value: Any) -> int:
    """retries, run_lock_wait and the like: a whole number, 0 or more; refused before anything reaches the server."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PlanError("%s must be 0 or more, got %r" % (option, value))
    return value


def backoff_delays(retries: int, base: float = 0.2, cap: float = 5.0, rng=random.random) -> List[float]:
    """Exponential backoff with full jitter: how long to sleep before each retry."""
    return [min(cap, base * (2 ** attempt)) * (0.5 + rng()) for attempt in range(retries)]


def with_retries(attempt: Callable[[int], Any], lock_timeout: str, retries: int, what: str,
                 advice: Optional[str] = None, sleep=time.sleep) -> Any:
    """Call attempt(number) until it gets its locks: a lock_timeout or deadlock error (or LockBusy from a
    nested attempt) means another try after a backoff, anything else goes up at once. `what` names the object
    for the error message; `advice` replaces its closing sentence."""
    delays = backoff_delays(retries)
    for number in range(retries + 1):
        try:
            return attempt(number)
        except LockBusy:
            pass
        except DatabaseError as exc:
            if sqlstate(exc) not in RETRYABLE_SQLSTATES:
                raise
        if number == retries:
            raise LockBusy(
                "%s: could not get the locks it needs within lock_timeout=%s after %d attempts; a long "
                "transaction is probably holding them (see pg_stat_activity). %s"
                % (what, lock_timeout, retries + 1, advice or "Retry later or raise lock_timeout/retries.")
            )
        sleep(delays[number])


def in_transaction_with_retries(database, work: Callable[[Any], Any], lock_timeout: str, retries: int, what: str,
                                sleep=time.sleep) -> Any:
    """Run work(database) in one transaction under lock_timeout, retrying when a lock is not granted.

    Each attempt is a whole transaction, so a failed one leaves nothing behind.
    """
    def attempt(number):
        with database.transaction():
            database.execute(render.set_local_lock_timeout(lock_timeout), record=False)
            return work(database)

    return with_retries(attempt, lock_timeout, retries, what, sleep=sleep)


def script_in_transaction_with_retries(database, statements: Sequence[Any], lock_timeout: str, retries: int, what: str,
                                       sleep=time.sleep) -> None:
    """in_transaction_with_retries for statements without parameters whose results nobody needs: the whole
    transaction (BEGIN, SET LOCAL lock_timeout, the statements, COMMIT) is one message, one round trip instead of
    one per statement. A statement that fails stops the rest and the transaction is rolled back, as there."""
    script = [render.BEGIN, render.set_local_lock_timeout(lock_timeout)] + list(statements) + [render.COMMIT]

    def attempt(number):
        try:
            database.execute_script(script)
        except BaseException:
            database.rollback_quietly()
            raise

    return with_retries(attempt, lock_timeout, retries, what, sleep=sleep)


def under_session_lock_timeout(database, lock_timeout: str, statement: Any, record: bool = True) -> int:
    """One statement outside a transaction block (e.g. ... CONCURRENTLY) under lock_timeout."""
    database.execute(render.set_lock_timeout(lock_timeout), record=False)
    try:
        return database.execute(statement, record=record)
    finally:
        database.execute(render.RESET_LOCK_TIMEOUT, record=False)


def acquire_table_lock(database, table_oid: int, wait_seconds: float, poll: float = 0.1, clock=time.monotonic,
                       sleep=time.sleep) -> bool:
    """Take the session advisory lock of one table, waiting at most wait_seconds. True when held."""
    deadline = clock() + wait_seconds
    while True:
        if database.execute_returning(render.try_advisory_lock(ADVISORY_NAMESPACE, table_oid), record=False)[0]:
            return True
        if clock() >= deadline:
            return False
        sleep(poll)


def release_table_lock(database, table_oid: int) -> None:
    database.execute_returning(render.advisory_unlock(ADVISORY_NAMESPACE, table_oid), record=False)
