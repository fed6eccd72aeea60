from __future__ import annotations

import psycopg.errors
import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import LockBusy
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    backoff_delays,
    validate_lock_timeout,
    with_retries,
)


def failing(*errors):
    """An attempt that raises the given errors in turn, then returns the attempt number."""
    calls = []

    def attempt(number):
        calls.append(number)
        if number < len(errors):
            raise errors[number]
        return number

    return attempt, calls


CASES = [
    pytest.param([], 2, 0, id="a first success returns at once"),
    pytest.param([psycopg.errors.LockNotAvailable("x")], 2, 1, id="a lock timeout is tried again"),
    pytest.param([psycopg.errors.DeadlockDetected("x"), LockBusy("y")], 2, 2,
                 id="a deadlock and a nested LockBusy are tried again"),
]


@pytest.mark.parametrize("errors, retries, returned", CASES)
def test_retryable_failures_are_retried(errors, retries, returned):
    attempt, calls = failing(*errors)
    assert with_retries(attempt, "1s", retries, "t", sleep=lambda seconds: None) == returned
    assert calls == list(range(returned + 1))


def test_retries_run_out_with_a_message_naming_the_object_and_the_timeout():
    attempt, calls = failing(*[psycopg.errors.LockNotAvailable("x")] * 5)
    with pytest.raises(LockBusy, match=r"public.t: could not get the locks .* lock_timeout=2s after 3 attempts"):
        with_retries(attempt, "2s", 2, "public.t", sleep=lambda seconds: None)
    assert calls == [0, 1, 2]


def test_other_errors_are_not_retried():
    attempt, calls = failing(psycopg.errors.UndefinedTable("x"))
    with pytest.raises(psycopg.errors.UndefinedTable):
        with_retries(attempt, "1s", 5, "t", sleep=lambda seconds: None)
    assert calls == [0]


def test_backoff_grows_and_is_capped():
    delays = backoff_delays(8, base=0.2, cap=5.0, rng=lambda: 0.5)
    assert delays[:3] == [0.2, 0.4, 0.8] and max(delays) == 5.0


@pytest.mark.parametrize("value", ["3s", "500ms", "1min", "2"])
def test_durations_are_accepted(value):
    assert validate_lock_timeout(value) == value


@pytest.mark.parametrize("value", ["3s; SELECT 1", "", "three seconds", "1 d"])
def test_anything_else_is_refused(value):
    with pytest.raises(Exception, match="lock_timeout"):
        validate_lock_timeout(value)
