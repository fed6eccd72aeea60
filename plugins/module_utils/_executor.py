# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: runs planned partition creations, one transaction per partition, under
# lock_timeout with retries. Check mode renders the same statements and runs none of them.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from ansible_collections.pgfleet.partitions.plugins.module_utils import _render as render
from ansible_collections.pgfleet.partitions.plugins.module_utils._connection import DatabaseError, sqlstate
from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import ExecutionError, PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._locking import (
    in_transaction_with_retries,
    script_in_transaction_with_retries,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import RangeBounds

# Attaching next to a default partition scans it under ACCESS EXCLUSIVE unless a constraint proves the new
# range absent. Below this size the scan is shorter than the extra transactions that avoid it.
DEFAULT_SCAN_LIMIT_BYTES = 8 * 1024 * 1024
CHECK_VIOLATION = "23514"


@dataclass
class CreationResult:
    created: List[str] = field(default_factory=list)
    moved_rows: int = 0
    queries: List[str] = field(default_factory=list)


@dataclass
class Creation:
    """The statements of one partition creation, grouped by the transaction they run in."""

    prepare: list  # each statement its own short transaction, before the main one
    main: list
    move: object = None  # the statement of `main` that moves rows out of the default partition


def refuse_taken_names(database, state, actions):
    """A planned name used by any other relation of the schema stops the run before the first DDL."""
    names = [action.name for action in actions]
    if not names:
        return
    taken = database.query(
        "SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY (%s)", (state.schema, names))
    if taken:
        raise PlanError(
            "%s.%s: planned partition name(s) %s already belong to other relations in schema %s; nothing was "
            "created. Rename them or set name_template." % (state.schema, state.name,
                                                            ", ".join(sorted(r[0] for r in taken)), state.schema))


def _creation(database, state, action, tablespace, rows_to_move):
    main = [render.create_like(state, action, tablespace)]
    prepare, move = [], None
    default = state.default_partition
    if default is not None and not action.is_default:
        if rows_to_move:
            move = render.move_rows(state, action)
            main.append(move)
        elif _relation_size(database, default) > DEFAULT_SCAN_LIMIT_BYTES:
            prepare = [render.add_default_exclusion(state, action), render.validate_default_exclusion(state)]
    # Only a partition that received rows has anything for ATTACH to scan; a constraint matching its bounds lets
    # ATTACH skip that scan under the parent's lock. An empty new table needs neither statement.
    bounds_checked = move is not None and isinstance(action.bounds, RangeBounds)
    if bounds_checked:
        main.insert(1, render.add_bounds_check(state, action))
    main.append(render.attach(state, action))
    if bounds_checked:
        main.append(render.drop_constraint(action.schema, action.name, render.BOUNDS_CHECK))
    if prepare:
        main.append(render.drop_constraint(default.schema, default.name, render.DEFAULT_EXCLUSION))
    return Creation(prepare, main, move)


def _relation_size(database, partition):
    return database.query_value(
        "SELECT pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s", (partition.schema, partition.name)) or 0


def _rows_to_move(database, state, action):
    if state.default_partition is None or action.is_default:
        return 0
    return int(database.query_value(render.count_rows_to_move(state, action)))


def create_partitions(database, state, actions, check_mode, lock_timeout, retries, tablespace=None):
    """Create each planned partition in its own transaction; a failure leaves earlier ones created."""
    result = CreationResult()
    refuse_taken_names(database, state, actions)
    for action in actions:
        rows = _rows_to_move(database, state, action)
        creation = _creation(database, state, action, tablespace, rows)
        if not check_mode:
            if creation.prepare and not _prove_absent_from_default(database, state, creation, lock_timeout, retries,
                                                                   action):
                creation = _creation(database, state, action, tablespace, rows_to_move=1)
            moved = _run_main(database, state, action, creation, lock_timeout, retries)
            rows = moved if moved is not None else rows
        result.created.append(action.name)
        result.moved_rows += rows
        database.queries.extend(database.as_string(s) for s in creation.prepare + creation.main)
    result.queries = list(database.queries)
    return result


def _prove_absent_from_default(database, state, creation, lock_timeout, retries, action):
    """Add (briefly locked) and validate (without blocking writers) a constraint keeping the range out of the
    default partition. False when rows of the range arrived meanwhile: then they are moved instead."""
    add, validate = creation.prepare
    what = "%s.%s: default partition constraint for %s" % (state.schema, state.name, action.name)
    in_transaction_with_retries(database, lambda db: db.execute(add, record=False), lock_timeout, retries, what)
    try:
        in_transaction_with_retries(database, lambda db: db.execute(validate, record=False), lock_timeout,
                                    retries, what)
        return True
    except DatabaseError as exc:
        if sqlstate(exc) != CHECK_VIOLATION:
            raise
        default = state.default_partition
        in_transaction_with_retries(
            database, lambda db: db.execute(render.drop_constraint(default.schema, default.name,
                                                                   render.DEFAULT_EXCLUSION), record=False),
            lock_timeout, retries, what)
        return False


def _run_main(database, state, action, creation, lock_timeout, retries):
    """The one transaction that creates, fills (moved rows) and attaches the partition; returns moved rows."""
    def work(db):
        moved = None
        for statement in creation.main:
            count = db.execute(statement, record=False)
            if statement is creation.move:
                moved = count
        return moved

    what = "%s.%s: creating partition %s" % (state.schema, state.name, action.name)
    try:
        if creation.move is None:
            # Nothing to count: the partition's whole transaction goes to the server as one message.
            script_in_transaction_with_retries(database, creation.main, lock_timeout, retries, what)
            return None
        return in_transaction_with_retries(database, work, lock_timeout, retries, what)
    except DatabaseError as exc:
        raise ExecutionError("%s failed: %s" % (what, str(exc).strip()))
