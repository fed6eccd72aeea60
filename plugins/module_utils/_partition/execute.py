# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: runs the statements of one partition creation, each transaction under
# lock_timeout with retries. What to run is decided before (plan.py, render.py); this only runs it.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Optional, Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import ExecutionError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import CreatePartition, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError, sqlstate
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    in_transaction_with_retries,
    script_in_transaction_with_retries,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.render import CreationStatements

CHECK_VIOLATION = "23514"


def _what(state: TableState, action: CreatePartition, doing: str) -> str:
    return "%s.%s: %s %s" % (state.schema, state.name, doing, action.name)


def prove_absent(database, state: TableState, action: CreatePartition, statements: CreationStatements,
                 lock_timeout: str, retries: int) -> bool:
    """Add (briefly locked) and validate (without blocking writers) the constraint keeping the new range out of the
    default partition. False, with the constraint removed again, when rows of the range arrived meanwhile."""
    add, validate = statements.prepare
    what = _what(state, action, "default partition constraint for")

    def run(statement):
        in_transaction_with_retries(database, lambda db: db.execute(statement, record=False), lock_timeout, retries,
                                    what)

    run(add)
    try:
        run(validate)
        return True
    except DatabaseError as exc:
        if sqlstate(exc) != CHECK_VIOLATION:
            raise
        run(statements.undo_prepare)
        return False


def create(database, state: TableState, action: CreatePartition, statements: CreationStatements, lock_timeout: str,
           retries: int) -> Optional[int]:
    """The one transaction that creates, fills and attaches the partition; the rows it moved (None when it moved
    none: then the whole transaction goes to the server as one message)."""
    def work(db):
        moved = None
        for statement in statements.main:
            count = db.execute(statement, record=False)
            if statement is statements.move:
                moved = count
        return moved

    if statements.move is None:
        create_together(database, state, [action], [statements], lock_timeout, retries)
        return None
    what = _what(state, action, "creating partition")
    try:
        return in_transaction_with_retries(database, work, lock_timeout, retries, what)
    except DatabaseError as exc:
        raise ExecutionError("%s failed: %s" % (what, str(exc).strip()))


def create_together(database, state: TableState, actions: Sequence[CreatePartition],
                    statements: Sequence[CreationStatements], lock_timeout: str, retries: int) -> None:
    """Creations that move no rows, in one transaction sent as one message: all of them are made, or none."""
    what = _what(state, actions[0], "creating partition") if len(actions) == 1 else (
        "%s.%s: creating partitions %s to %s" % (state.schema, state.name, actions[0].name, actions[-1].name))
    try:
        script_in_transaction_with_retries(database, [statement for each in statements for statement in each.main],
                                           lock_timeout, retries, what)
    except DatabaseError as exc:
        raise ExecutionError("%s failed: %s" % (what, str(exc).strip()))
