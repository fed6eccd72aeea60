# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the drain of a default partition, run by the partition job (default_rows: drain,
# list_new_values: create): read where its rows lie, plan the partitions they need, fill each one in short
# transactions, attach it, report what moved and what stays.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.bounds import parse_value
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Inheritance
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    CreatePartition,
    ListBounds,
    PartitionPolicy,
    RangeBounds,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.naming import partition_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import on_key_axis
from ansible_collections.pgfleet.partitions.plugins.module_utils._drain import catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._drain import plan as drain_plan
from ansible_collections.pgfleet.partitions.plugins.module_utils._drain.execute import Runner
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan import grid_for
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan_creation import (
    DEFAULT_SCAN_LIMIT_BYTES,
)

BLOCK_BYTES = 8192
# A range whose rows are still in the default partition after this many sweeps is given up on for this run.
ATTEMPTS = 3


@dataclass
class DrainResult:
    drained: List[dict] = field(default_factory=list)  # {partition, rows}, in the order they were done
    left: List[dict] = field(default_factory=list)  # {reason, rows} staying in the default partition
    created: List[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(entry["rows"] for entry in self.drained)


def _adopted(state: TableState, marked) -> List[CreatePartition]:
    """The tables an interrupted drain of this set was filling, with the bounds their marker records."""
    parent, found = "%s.%s" % (state.schema, state.name), []
    for name, comment in marked:
        record = drain_plan.read_marker(comment)
        if record is None or record.get("parent") != parent:
            continue
        if "values" in record:
            found.append(CreatePartition(state.schema, name, ListBounds(tuple(record["values"])),
                                         values=tuple(record["values"])))
        else:
            bounds = RangeBounds(parse_value(("q", record["lower"]), state.key_type),
                                 parse_value(("q", record["upper"]), state.key_type))
            found.append(CreatePartition(state.schema, name, bounds))
    return found


def _range_wanted(state, policy, groups, live, left):
    grid = grid_for(state, policy)
    buckets, outside = drain_plan.buckets_of(groups, lambda value: grid.floor(grid.from_key(value)))
    left.append((drain_plan.OUTSIDE, outside))
    existing = [p for p in state.partitions if isinstance(p.bounds, RangeBounds)]
    wanted, overlapping = {}, 0
    for start, bucket in buckets.items():
        bounds = RangeBounds(grid.to_key(start), grid.to_key(grid.shift(start, 1)))
        if bounds in live:
            continue
        if any(p.bounds.overlaps(bounds) for p in existing):
            overlapping += bucket.rows
            continue
        name = partition_name(state.name, grid.suffix(start), policy.name_template, grid.fields(start))
        wanted[start] = (CreatePartition(state.schema, name, bounds), bucket.rows, bucket.chunks)
    left.append((drain_plan.OVERLAP, overlapping))
    return wanted


def _list_wanted(state, policy, groups, left):
    rows = {}
    for group in groups:
        rows.setdefault(group.low, [0, set()])
        rows[group.low][0] += group.rows
        rows[group.low][1].add(group.chunk)
    if policy.list_new_values != "create":
        left.append(("no partition lists the value (list_new_values: create would make one)",
                     sum(count for count, _chunks in rows.values())))
        return {}
    return {action.values[0]: (action, rows[action.values[0]][0], rows[action.values[0]][1])
            for action in drain_plan.new_value_actions(state, sorted(rows), policy.name_template)}


def rows_by_target(database, state: TableState, policy: Optional[PartitionPolicy]) -> dict:
    """Where the default partition's rows would go, for postgres_partition_info: per range of the policy's grid
    (RANGE, when `policy` has an interval) or per value (LIST), the rows, and what no partition can take."""
    if state.default_partition is None or state.strategy == "hash" or (
            state.strategy == "range" and (policy is None or policy.interval is None)):
        return {}
    grid = grid_for(state, policy) if state.strategy == "range" else None
    groups, nulls, outside = catalog.grouped_rows(database, state, grid, 2 ** 31)
    left = [(drain_plan.NULL_KEY, nulls), (drain_plan.OUTSIDE, outside)]
    if grid is None:
        counts = {}
        for group in groups:
            counts[group.low] = counts.get(group.low, 0) + group.rows
        targets = [{"value": value, "rows": rows} for value, rows in sorted(counts.items())]
    else:
        wanted = _range_wanted(state, policy, groups, set(), left)
        targets = [{"partition": action.name, "lower": action.bounds.lower, "upper": action.bounds.upper,
                    "rows": rows} for _start, (action, rows, _chunks) in sorted(wanted.items())]
    return {"targets": targets, "left": [{"reason": why, "rows": rows} for why, rows in _merged(left)]}


def live_bounds(state: TableState, actions: Sequence[CreatePartition], reference: Any) -> set:
    """The window's partitions from the one holding the reference on: writers and readers are at work there, so
    their rows move with the partition's creation in one transaction, never in batches."""
    if reference is None:
        return set()
    point = on_key_axis(reference, state.key_type)
    return {a.bounds for a in actions if isinstance(a.bounds, RangeBounds)
            and on_key_axis(a.bounds.upper, state.key_type) > point}


def drain(database, state: TableState, policy: PartitionPolicy, inheritance: Inheritance, live: set,
          check_mode: bool, lock_timeout: str, retries: int,
          progress: Optional[Callable[[str, int, bool], None]] = None) -> DrainResult:
    """Empty the default partition of `state` of the rows a partition can take, except those of the `live` ranges
    (see live_bounds), into partitions that carry what `inheritance` (_inherit.job.read) says. Each partition is
    filled chunk by chunk in short transactions, then attached. progress(name, rows moved so far, whether the
    partition is attached) is called after each batch."""
    result = DrainResult()
    if state.default_partition is None:
        return result
    pages, tuples = catalog.pages_and_tuples(database, state)
    blocks = drain_plan.chunk_blocks(policy.drain_batch_rows, pages, tuples)
    grid = grid_for(state, policy) if state.strategy == "range" else None
    groups, nulls, outside = catalog.grouped_rows(database, state, grid, blocks, pages)
    left = [(drain_plan.NULL_KEY, nulls), (drain_plan.OUTSIDE, outside)]
    wanted = (_range_wanted(state, policy, groups, live, left) if grid is not None
              else _list_wanted(state, policy, groups, left))
    adopted = _adopted(state, catalog.marked_tables(database, state))
    planned = drain_plan.plan_drain(state, wanted, adopted, _merged(left), policy.drain_max_partitions, blocks)
    result.left = [{"reason": why, "rows": rows} for why, rows in planned.left]
    runner = Runner(database, state, inheritance, lock_timeout, retries, check_mode, policy.drain_pause)
    runner.drop_left_constraints([] if check_mode else catalog.left_constraints(database, state))
    small = pages * BLOCK_BYTES <= DEFAULT_SCAN_LIMIT_BYTES or grid is None
    parent = "%s.%s" % (state.schema, state.name)
    for target in planned.targets:
        action = target.action
        if not target.adopted:
            runner.create(action, drain_plan.marker(action, parent))
            result.created.append(action.name)
        report = progress or (lambda name, rows, done: None)
        moved = runner.move(action, target.chunks, blocks, lambda rows: report(action.name, rows, False))
        moved += _attach(runner, database, state, action, small, blocks)
        result.drained.append({"partition": action.name, "rows": target.rows if check_mode else moved})
        report(action.name, moved, True)
    return result


def _attach(runner, database, state, action, small, blocks) -> int:
    """Attach the filled partition; the rows that reached its range meanwhile move first. Returns them."""
    if small or runner.check_mode:
        return runner.attach_small(action) if small else _attach_proved(runner, action)
    moved = 0
    for _attempt in range(ATTEMPTS):
        if runner.prove_empty(action):
            runner.attach_proved(action)
            return moved
        pages, _tuples = catalog.pages_and_tuples(database, state)
        moved += runner.move(action, range(pages // blocks + 1), blocks, lambda rows: None)
    return moved + runner.attach_small(action)


def _attach_proved(runner, action) -> int:
    runner.prove_empty(action)
    runner.attach_proved(action)
    return 0


def _merged(left):
    totals = {}
    for why, rows in left:
        totals[why] = totals.get(why, 0) + rows
    return [(why, rows) for why, rows in totals.items() if rows]
