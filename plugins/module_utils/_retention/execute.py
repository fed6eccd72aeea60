# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: carries out retention steps. Each expired partition is its own step: a verified
# backup first, then detach (CONCURRENTLY where possible) and drop or archive, each statement under lock_timeout
# with retries. What to run is decided before (plan.py); this only runs it.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses

import time
from typing import Any, List, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._backup import dump
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import BackupError, ExecutionError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Partition, RangeBounds, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import jsonable
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    in_transaction_with_retries,
    under_session_lock_timeout,
    with_retries,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention import catalog as retention_catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention import render
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.plan import Operation, Step


def _what(state: TableState, operation: Operation) -> str:
    return "%s.%s: partition %s.%s" % (state.schema, state.name, operation.schema, operation.name)


def _detach_concurrently(database, state, operation, lock_timeout, retries, sleep=time.sleep):
    """DETACH ... CONCURRENTLY outside a transaction block. When its wait for older transactions times out, the
    detach stays pending; later attempts then run FINALIZE, which waits again without blocking writers."""
    detach, finalize = render.statement(state, operation), render.statement(state, operation, "finalize")

    def attempt(number):
        if number > 0 and retention_catalog.is_pending(database, operation.schema, operation.name):
            in_transaction_with_retries(database, lambda db: db.execute(finalize, record=False),
                                        lock_timeout, 0, _what(state, operation), sleep)
            database.record([finalize])
            return
        if number == 0:
            database.record([detach])
        under_session_lock_timeout(database, lock_timeout, detach, record=False)

    with_retries(attempt, lock_timeout, retries, _what(state, operation), sleep=sleep, advice=(
        "Writers were not blocked; a detach left pending is finished by the next run."))


def run_statement(database, statement: Any, lock_timeout: str, retries: int, what: str) -> None:
    """One statement in its own transaction under lock_timeout, retried; recorded once it has run."""
    in_transaction_with_retries(database, lambda db: db.execute(statement, record=False), lock_timeout, retries,
                                what)
    database.record([statement])


def _guarded_drop(database, state, operation, lock_timeout, retries, dumped):
    """Drop a detached table only if it still holds exactly the rows of its dump (count and content checksum); the
    lock is on that table alone."""
    drop = render.statement(state, operation)

    def work(db):
        db.execute(render.lock_exclusively(operation.schema, operation.name), record=False)
        rows, content = catalog.rows_and_checksum(db, operation.schema, operation.name)
        if (rows, content) != (dumped.rows, dumped.content_checksum):
            change = ("%d rows now but %d in its dump" % (rows, dumped.rows) if rows != dumped.rows else
                      "as many rows as its dump (%d) but other ones" % rows)
            raise BackupError(
                "partition %s.%s has %s: rows were written, changed or deleted after the dump. It stays, detached "
                "and marked for dropping; the next run dumps it again and drops it"
                % (operation.schema, operation.name, change))
        db.execute(drop, record=False)

    in_transaction_with_retries(database, work, lock_timeout, retries, _what(state, operation))
    database.record([drop])


def _run(database, state, operation, lock_timeout, retries, backups, details, dumped):
    if operation.kind == "backup":
        return dump.dump_table(database, backups, operation.schema, operation.name, details, lock_timeout)
    if operation.kind == "concurrent":
        return _detach_concurrently(database, state, operation, lock_timeout, retries)
    if operation.kind == "guarded_drop":
        return _guarded_drop(database, state, operation, lock_timeout, retries, dumped)
    return run_statement(database, render.statement(state, operation), lock_timeout, retries,
                         _what(state, operation))


def _bounds_details(state: TableState, partition: Partition) -> dict:
    details = {"parent": "%s.%s" % (state.schema, state.name)}
    if isinstance(partition.bounds, RangeBounds):
        details.update(lower=jsonable(partition.bounds.lower), upper=jsonable(partition.bounds.upper))
    return details


def record_step(result: dict, step: Step) -> None:
    name = step.final_name if step.outcome == "detached" else "%s.%s" % (step.partition.schema, step.partition.name)
    result[step.outcome].append(name)


def execute_steps(database, state: TableState, steps: List[Step], result: dict, lock_timeout: str, retries: int,
                  backups: Optional[dump.Backups]) -> None:
    """Run each step in order; a failure stops the run with earlier steps done and this one's state named."""
    for step in steps:
        dumped = None
        for operation in step.operations:
            try:
                record = _run(database, state, operation, lock_timeout, retries, backups,
                              _bounds_details(state, step.partition), dumped)
            except BackupError as exc:
                untouched = " Nothing was done to that partition." if operation.kind == "backup" else ""
                raise BackupError("%s.%s: %s.%s Partitions handled before it stay handled; fix the cause and rerun."
                                  % (state.schema, state.name, exc, untouched))
            except DatabaseError as exc:
                raise ExecutionError(
                    "%s: %s failed: %s. Partitions handled before it stay handled; fix the cause and rerun, the next "
                    "run carries on where this one stopped." % (
                        _what(state, operation), database.as_string(render.statement(state, operation)),
                        str(exc).strip()))
            if record is not None:
                # The leaves of a sub-partitioned partition: the guard compares the partition with all their dumps.
                dumped = record if dumped is None else dataclasses.replace(
                    dumped, rows=dumped.rows + record.rows,
                    content_checksum=str(int(dumped.content_checksum) + int(record.content_checksum)))
                result["backups"].append(record.facts())
        record_step(result, step)
