# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: runs a drain of the default partition, every step a short transaction under
# lock_timeout with retries: the table of a partition created and marked, its rows moved chunk by chunk, then
# attached. What to run is decided before (plan.py); this only runs it.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Optional, Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import ExecutionError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Inheritance
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import CreatePartition, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError, sqlstate
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import in_transaction_with_retries
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.render import drop_constraint
from ansible_collections.pgfleet.partitions.plugins.module_utils._drain import render
from ansible_collections.pgfleet.partitions.plugins.module_utils._inherit import plan as inherit_plan
from ansible_collections.pgfleet.partitions.plugins.module_utils._inherit import render as inherit_render
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition import render as partition_render

CHECK_VIOLATION = "23514"


class Runner(object):
    """The settings every step shares, and the statements it ran (check mode records them instead). `inheritance`
    (_inherit.job.read) is what every partition created gets from the parent and the template."""

    def __init__(self, database, state: TableState, inheritance: Inheritance, lock_timeout: str, retries: int,
                 check_mode: bool, pause: float = 0.0, sleep: Callable[[float], Any] = time.sleep) -> None:
        self.database, self.state, self.inheritance = database, state, inheritance
        self.lock_timeout, self.retries, self.check_mode = lock_timeout, retries, check_mode
        self.pause, self.sleep = pause, sleep

    def _what(self, action: CreatePartition, doing: str) -> str:
        return "%s.%s: %s %s" % (self.state.schema, self.state.name, doing, action.name)

    def transaction(self, statements: Sequence[Any], action: CreatePartition, doing: str,
                    counted: Any = None) -> Optional[int]:
        """Statements in one transaction; the row count of `counted` (one of them), if given."""
        if self.check_mode:
            self.database.record(statements)
            return None

        def work(db):
            rows = None
            for statement in statements:
                count = db.execute(statement, record=False)
                rows = count if statement is counted else rows
            return rows

        try:
            rows = in_transaction_with_retries(self.database, work, self.lock_timeout, self.retries,
                                               self._what(action, doing))
        except DatabaseError as exc:
            raise ExecutionError("%s failed: %s" % (self._what(action, doing), str(exc).strip()))
        self.database.record(statements)
        return rows

    def _inherited(self, action: CreatePartition):
        """What the partition's creation runs before and after ATTACH to carry what the parent carries."""
        return inherit_render.new_partition(self.inheritance, inherit_plan.new_partition(
            self.inheritance, action.schema, action.name), self.database.as_string)

    def create(self, action: CreatePartition, marker: str) -> None:
        """The partition's table, owned, granted and indexed as the parent's partitions are, with a CHECK matching
        its bounds (ATTACH then skips scanning it), marked as being filled, so that a run killed from here on is
        finished by the next."""
        before_attach = self._inherited(action)[0]
        self.transaction([inherit_render.create_like(self.inheritance, action.schema, action.name)] + before_attach
                         + [partition_render.add_bounds_check(self.state, action), render.mark(action, marker)],
                         action, "creating the partition to drain into")

    def move(self, action: CreatePartition, chunks: Iterable[int], blocks: int,
             progress: Callable[[int], None]) -> int:
        """The partition's rows, chunk by chunk of the default partition's blocks, each chunk its own transaction."""
        moved = 0
        for number, chunk in enumerate(chunks):
            if number and self.pause:
                self.sleep(self.pause)
            statement = render.move_chunk(self.state, action, chunk * blocks, (chunk + 1) * blocks)
            moved += self.transaction([statement], action, "moving rows from the default partition into",
                                      counted=statement) or 0
            progress(moved)
            if self.check_mode:
                break  # the first batch stands for the others
        return moved

    def attach_small(self, action: CreatePartition) -> int:
        """A small default partition: the rows writers added meanwhile move and the partition is attached in one
        transaction, writers through the parent waiting for it (ATTACH's scan of the default partition is short)."""
        move = render.move_chunk(self.state, action, None, None)
        return self.transaction([partition_render.lock_out_writers(self.state), move,
                                 partition_render.attach(self.state, action)] + self._inherited(action)[1]
                                + [drop_constraint(action.schema, action.name, partition_render.BOUNDS_CHECK),
                                   render.mark(action, None)], action, "attaching", counted=move) or 0

    def prove_empty(self, action: CreatePartition) -> bool:
        """A large default partition: a NOT VALID constraint keeping the range out of it, validated without
        blocking writers, so that ATTACH does not scan it. False, the constraint gone again, when rows of the range
        are still (or again) there."""
        default = self.state.default_partition
        self.transaction([render.exclude_from_default(self.state, action)], action, "excluding the range of")
        try:
            self.transaction([render.validate_exclusion(self.state)], action, "validating the exclusion of")
            return True
        except ExecutionError as exc:
            if sqlstate(exc.__cause__ or exc.__context__) != CHECK_VIOLATION:
                raise
            self.transaction([drop_constraint(default.schema, default.name, render.EXCLUSION)], action,
                             "removing the exclusion of")
            return False

    def attach_proved(self, action: CreatePartition) -> None:
        default = self.state.default_partition
        statements = [partition_render.attach(self.state, action)] + self._inherited(action)[1] + [
            drop_constraint(action.schema, action.name, partition_render.BOUNDS_CHECK),
            drop_constraint(default.schema, default.name, render.EXCLUSION), render.mark(action, None)]
        self.transaction(statements, action, "attaching")

    def drop_left_constraints(self, names: Sequence[str]) -> None:
        default = self.state.default_partition
        for name in names:
            action = CreatePartition(default.schema, default.name, None)
            self.transaction([drop_constraint(default.schema, default.name, name)], action,
                             "removing a constraint an interrupted run left on")
