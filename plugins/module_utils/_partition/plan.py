# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the pure planner of postgres_partition, catalog state + policy + reference time ->
# the partitions to create, and how each one is created.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence, Tuple, Union

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    MAXVALUE,
    MINVALUE,
    bound_before,
    TIME_INTERVALS,
    CreatePartition,
    PartitionPolicy,
    RangeBounds,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.intervals import IntegerRetention, TimeRetention
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.naming import partition_name, validate_template
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import ordered
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan_sub import (
    refuse_foreign_sub,
    with_children,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan_values import plan_hash, plan_list
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import EPOCH_SCALE, IntegerGrid
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import (
    TimeGrid,
    anchor_fitting,
    on_key_axis,
)

DEFAULT_SUFFIX = "default"


@dataclass(frozen=True)
class Plan:
    actions: Tuple[CreatePartition, ...]
    reference: Any = None  # the reference key value the range plan was computed from
    current: Any = None  # RangeBounds of the partition that holds the reference


def refuse_taken_names(state: TableState, actions: Sequence[CreatePartition], taken: Iterable[str]) -> None:
    """A planned name used by any other relation of the schema stops the run before the first DDL."""
    planned = {action.name for action in actions} | {child.name for action in actions for child in action.children}
    clashing = sorted(set(taken) & planned)
    if clashing:
        raise PlanError(
            "%s.%s: planned partition name(s) %s already belong to other relations in schema %s; nothing was "
            "created. Rename them or set name_template." % (state.schema, state.name, ", ".join(clashing),
                                                            state.schema))


def grid_for(state: TableState, policy: PartitionPolicy) -> Union[TimeGrid, IntegerGrid]:
    """The bucket grid of a RANGE table, refusing intervals that do not fit the key type."""
    interval, kind, table = policy.interval, state.key_kind, "%s.%s" % (state.schema, state.name)
    if interval is None:
        raise PlanError("%s is RANGE partitioned: 'interval' is required" % table)
    if isinstance(interval, str) and interval.lstrip("-").isdigit():
        interval = int(interval)
    if policy.epoch and kind != "integer":
        raise PlanError("epoch applies to integer keys only; %s is %s" % (state.key, state.key_type))
    if policy.epoch and policy.epoch not in EPOCH_SCALE:
        raise PlanError("epoch must be one of %s, not %r" % (", ".join(EPOCH_SCALE), policy.epoch))
    if kind == "integer" and not policy.epoch:
        if policy.interval_anchor is not None:
            raise PlanError("%s: interval_anchor applies to time intervals; an integer step starts at multiples "
                            "of itself" % table)
        if not isinstance(interval, int):
            raise PlanError("interval %r on the %s key %s needs epoch (%s: the key holds Unix time), or use an "
                            "integer step" % (interval, state.key_type, state.key, ", ".join(EPOCH_SCALE)))
        return IntegerGrid(interval)
    if kind not in ("time", "integer", "uuid"):
        raise PlanError("RANGE key %s of type %s is not supported: use a date, timestamp, timestamptz, integer or "
                        "uuid (UUIDv7) key" % (state.key, state.key_type))
    if isinstance(interval, int):
        if policy.epoch:
            raise PlanError("epoch needs a time interval (a word hour ... year, or e.g. '15 minutes'), not %r"
                            % (interval,))
        raise PlanError("interval %r does not fit the %s key %s; use one of %s or a count of one unit such as "
                        "'15 minutes' or '2 weeks'" % (interval, state.key_type, state.key,
                                                       ", ".join(TIME_INTERVALS)))
    key_type = state.key_type if kind != "integer" else "timestamp with time zone"
    return TimeGrid(interval, key_type, policy.timezone, epoch=policy.epoch, anchor=policy.interval_anchor)


def _anchor_hint(grid: Union[TimeGrid, IntegerGrid], partition) -> str:
    """What would put an off-grid partition on the grid: the interval_anchor its bounds fit, if any."""
    if isinstance(grid, IntegerGrid):
        return ""
    finite = [value for value in (partition.bounds.lower, partition.bounds.upper)
              if value is not MINVALUE and value is not MAXVALUE]
    anchor = anchor_fitting(grid, finite[0]) if finite else None
    fitted = anchor and TimeGrid(grid.step, grid.key_type, grid.tz.key, grid.epoch, anchor=anchor)
    if fitted and all(fitted.on_grid(value) for value in finite):
        return " interval_anchor '%s' would fit it." % anchor.isoformat(" ")
    return " No interval_anchor puts its bounds on a grid of %s: check interval." % grid.interval


def _lower_first(partition) -> tuple:
    """Sort key of RANGE partitions by lower bound, MINVALUE first (cheaper than comparing pairs)."""
    lower = partition.bounds.lower
    return (-1, 0) if lower is MINVALUE else (1, 0) if lower is MAXVALUE else (0, lower)


def refuse_off_grid(state: TableState, grid: Union[TimeGrid, IntegerGrid], existing: Sequence,
                    clashes: Mapping[str, Tuple[str, RangeBounds]]) -> None:
    """Adopting a set infers nothing from its names: every finite bound of its partitions must start a bucket of the
    grid. The refusal names the first partition off the grid, the planned partition it overlaps (`clashes`: by
    existing name, the first planned one it overlaps) and the interval_anchor that would fit it. Only a partition off
    the grid can overlap a planned one with different bounds."""
    starts = {}  # bound -> the bucket it starts: a partition's lower bound is mostly the previous one's upper

    def on_grid(value, after=None):
        if value is MINVALUE or value is MAXVALUE or value in starts:
            return True
        following = grid.shift(after, 1) if after is not None else None
        if following is None or grid.to_key(following) != value:
            following = grid.floor(grid.from_key(value))
            if grid.to_key(following) != value:
                return False
        starts[value] = following
        return True

    for partition in sorted(existing, key=_lower_first):
        lower, upper = partition.bounds.lower, partition.bounds.upper
        off = [value for value, fits in ((lower, on_grid(lower)), (upper, on_grid(upper, starts.get(lower))))
               if not fits]
        if not off:
            continue
        if isinstance(grid, IntegerGrid):
            described = "the integer step %d" % grid.step
        else:
            described = "interval %s anchored at %s" % (grid.interval, grid.anchor.isoformat(" "))
        overlap = ""
        if partition.name in clashes:
            name, bounds = clashes[partition.name]
            overlap = " It overlaps planned partition %s [%s, %s) with different bounds." % (
                name, bounds.lower, bounds.upper)
        raise PlanError(
            "%s.%s: partition %s.%s [%s, %s) is off the grid of %s: bound %s starts no partition of that grid; "
            "nothing was created.%s%s" % (state.schema, state.name, partition.schema, partition.name,
                                          partition.bounds.lower, partition.bounds.upper, described, off[0],
                                          overlap, _anchor_hint(grid, partition)))


def _reference(state, policy, grid):
    if isinstance(grid, IntegerGrid):
        if policy.reference_time is not None:
            return int(policy.reference_time)
        return state.max_key if state.max_key is not None else 0
    if policy.reference_time is not None:
        return grid.from_key(policy.reference_time)
    return state.server_now


def _plan_range(state, policy):
    grid = grid_for(state, policy)
    reference = _reference(state, policy, grid)
    if isinstance(grid, TimeGrid):
        grid.check_hours_around(reference)
    current = grid.floor(reference)
    validate_template(policy.name_template, {"parent", "suffix"} | set(grid.fields(current)))
    if policy.retention is not None and policy.backfill:
        _refuse_backfill_past_retention(state, policy, grid, current)
    offsets = [0] + list(range(1, policy.premake + 1)) + list(range(-1, -policy.backfill - 1, -1))
    existing = [p for p in state.partitions if isinstance(p.bounds, RangeBounds)]
    # Exact matches are the common case; looking them up first keeps a plan over thousands of partitions linear.
    exact = {p.bounds for p in existing}
    actions, clashes = [], {}
    for offset in offsets:
        start = grid.shift(current, offset)
        bounds = RangeBounds(grid.to_key(start), grid.to_key(grid.shift(start, 1)))
        if bounds.lower == bounds.upper:
            continue  # a day the zone skipped (Pacific/Apia, 2011-12-30): it holds no instant, so no rows
        if bounds in exact or any(p.bounds.contains(bounds) for p in existing):
            continue
        clash = next((p for p in existing if p.bounds.overlaps(bounds)), None)
        name = partition_name(state.name, grid.suffix(start), policy.name_template, grid.fields(start))
        if clash is not None:
            clashes.setdefault(clash.name, (name, bounds))
            continue
        actions.append(CreatePartition(state.schema, name, bounds))
    refuse_off_grid(state, grid, existing, clashes)
    for existing_name, (name, bounds) in clashes.items():
        raise PlanError("%s.%s: planned partition %s [%s, %s) overlaps existing partition %s with different bounds; "
                        "nothing was created. Adjust interval, or merge/re-create the existing partition."
                        % (state.schema, state.name, name, bounds.lower, bounds.upper, existing_name))
    if policy.gaps == "fill":
        actions += _gap_actions(state, policy, grid, existing, {action.bounds for action in actions})
    current_bounds = RangeBounds(grid.to_key(current), grid.to_key(grid.shift(current, 1)))
    return actions, reference, current_bounds


def _gap_actions(state, policy, grid, existing, planned):
    """The partitions of the grid that fit wholly into the holes between existing partitions, oldest first, at most
    drain_max_partitions of them a run (a set spread over centuries could need many)."""
    actions = []
    ranges = ordered(existing)
    for left, right in zip(ranges, ranges[1:]):
        gap_lower, gap_upper = left.bounds.upper, right.bounds.lower
        if gap_lower is MAXVALUE or gap_upper is MINVALUE or not bound_before(gap_lower, gap_upper):
            continue
        start = grid.floor(grid.from_key(gap_lower))
        while len(actions) < policy.drain_max_partitions:
            bounds = RangeBounds(grid.to_key(start), grid.to_key(grid.shift(start, 1)))
            if not bound_before(bounds.lower, gap_upper):
                break
            if not bound_before(bounds.lower, gap_lower) and not bound_before(gap_upper, bounds.upper) \
                    and bounds.lower != bounds.upper and bounds not in planned:
                actions.append(CreatePartition(state.schema, partition_name(
                    state.name, grid.suffix(start), policy.name_template, grid.fields(start)), bounds))
            start = grid.shift(start, 1)
    return actions


def _retention_cutoff(state, policy):
    """reference - retention on the key's axis, as retention computes it; None when there is nothing to measure
    from (an integer key of an empty table)."""
    table, retention = "%s.%s" % (state.schema, state.name), policy.retention
    if state.key_kind == "time":
        if not isinstance(retention, TimeRetention):
            raise PlanError("%s: the key %s is %s, so retention must be an interval such as '12 months'"
                            % (table, state.key, state.key_type))
        reference = policy.reference_time if policy.reference_time is not None else state.server_now
        return retention.before(on_key_axis(reference, state.key_type))
    if not isinstance(retention, IntegerRetention):
        raise PlanError("%s: the key %s is %s, so retention must be a number of key units" % (
            table, state.key, state.key_type))
    reference = policy.reference_time if policy.reference_time is not None else state.max_key
    return None if reference is None else retention.before(int(reference))


def _refuse_backfill_past_retention(state, policy, grid, current):
    """A backfilled partition that retention would drop at once is created again by the next run, and dropped again:
    a churn that writes a new, empty dump under the same name every time. Refused, with the backfill that fits."""
    cutoff = _retention_cutoff(state, policy)
    if cutoff is None:
        return
    fitting = 0
    for offset in range(1, policy.backfill + 1):
        start = grid.shift(current, -offset)
        upper = on_key_axis(grid.to_key(grid.shift(start, 1)), state.key_type)
        if upper <= cutoff:
            raise PlanError(
                "%s.%s: backfill %d reaches past the retention cutoff %s (retention %s): partition %s and older "
                "would be dropped by every retention run and created again by the next create run. Use backfill "
                "%d or less." % (state.schema, state.name, policy.backfill, cutoff, policy.retention.text,
                                 partition_name(state.name, grid.suffix(start), policy.name_template,
                                                grid.fields(start)), fitting))
        fitting = offset


def _refuse_foreign_options(state, policy):
    table = "%s.%s" % (state.schema, state.name)
    if state.strategy != "list" and policy.list_partitions:
        raise PlanError("%s is %s partitioned: list_partitions applies to LIST tables only"
                        % (table, state.strategy.upper()))
    if state.strategy != "hash" and policy.hash_modulus is not None:
        raise PlanError("%s is %s partitioned: hash_modulus applies to HASH tables only"
                        % (table, state.strategy.upper()))
    if state.strategy != "range" and (policy.interval is not None or policy.epoch):
        raise PlanError("%s is %s partitioned: interval and epoch apply to RANGE tables only"
                        % (table, state.strategy.upper()))
    if state.strategy == "hash" and policy.default_partition:
        raise PlanError("%s is HASH partitioned: a HASH set cannot have a default partition" % table)
    if policy.premake < 0 or policy.backfill < 0:
        raise PlanError("premake and backfill must be 0 or more (got premake=%s, backfill=%s)"
                        % (policy.premake, policy.backfill))


def plan(state: TableState, policy: PartitionPolicy) -> Plan:
    """The partitions to create so the table matches the policy, most urgent first.

    Raises PlanError, before any action exists, for anything that does not fit: nothing half planned.
    """
    _refuse_foreign_options(state, policy)
    reference = current = None
    if state.strategy == "range":
        actions, reference, current = _plan_range(state, policy)
    elif state.strategy == "list":
        actions = plan_list(state, policy)
    else:
        actions = plan_hash(state, policy)
    if policy.default_partition and state.default_partition is None:
        actions.append(CreatePartition(state.schema, partition_name(state.name, DEFAULT_SUFFIX), None))
    sub = policy.subpartition
    if sub is not None:
        refuse_foreign_sub(state, sub)
        grid = grid_for(state, dataclasses.replace(policy, interval=sub.interval, interval_anchor=None)) \
            if sub.strategy == "range" else None
        actions = [with_children(state, sub, action, grid) for action in actions]
    taken = {}
    for partition in state.partitions:
        taken[partition.name] = "existing partition"
    for action in actions:
        if action.name in taken:
            raise PlanError(
                "%s.%s: the name %s is given to two partitions (%s and a planned one); fix name_template"
                % (state.schema, state.name, action.name, taken[action.name])
            )
        taken[action.name] = "planned partition"
        for child in action.children:
            if child.name in taken:
                raise PlanError("%s.%s: the name %s is given to two partitions; fix name_template"
                                % (state.schema, state.name, child.name))
            taken[child.name] = "planned sub-partition"
    return Plan(tuple(actions), reference, current)
