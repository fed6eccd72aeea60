# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the pure planner, catalog state + policy + reference time -> actions.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from typing import Any, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._bounds import canonical_list_value
from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import (
    TIME_INTERVALS,
    CreatePartition,
    HashBounds,
    ListBounds,
    RangeBounds,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._timeutil import IntegerGrid, TimeGrid

MAX_NAME_BYTES = 63
DEFAULT_SUFFIX = "default"


@dataclass(frozen=True)
class Plan:
    actions: Tuple[CreatePartition, ...]
    reference: Any = None  # the reference key value the range plan was computed from
    current: Any = None  # RangeBounds of the partition that holds the reference


def partition_name(parent, suffix, template=None, fields=None):
    """<parent>_<suffix> (or the template), at most 63 bytes: the parent part is shortened, never the suffix.

    A shortened parent part carries a hash of the full parent name, so two long parents sharing a prefix
    still get distinct names.
    """
    template = template or "{parent}_{suffix}"
    values = dict(fields or {}, suffix=suffix)
    name = template.format(parent=parent, **values)
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    tag = "_" + hashlib.sha256(parent.encode()).hexdigest()[:6]
    room = MAX_NAME_BYTES - len(template.format(parent=tag, **values).encode())
    if room < 1 or "{parent}" not in template:
        raise PlanError("partition suffix %r is too long for a 63-byte name" % suffix)
    return template.format(parent=parent.encode()[:room].decode("utf-8", "ignore") + tag, **values)


def validate_template(template, allowed):
    if template is None:
        return
    try:
        names = {parsed[1] for parsed in string.Formatter().parse(template) if parsed[1] is not None}
    except ValueError as exc:
        raise PlanError("name_template %r is not a valid template: %s" % (template, exc))
    unknown = sorted(name for name in names if name not in allowed)
    if unknown:
        raise PlanError(
            "name_template %r uses unknown field(s) %s; known: %s"
            % (template, ", ".join(unknown), ", ".join(sorted(allowed)))
        )


def grid_for(state, policy):
    """The bucket grid of a RANGE table, refusing intervals that do not fit the key type."""
    interval = policy.interval
    if interval is None:
        raise PlanError("%s.%s is RANGE partitioned: 'interval' is required" % (state.schema, state.name))
    kind = state.key_kind
    if kind == "time":
        if policy.epoch:
            raise PlanError("epoch applies to integer keys only; %s is %s" % (state.key, state.key_type))
        if interval not in TIME_INTERVALS:
            raise PlanError(
                "interval %r does not fit the %s key %s; use one of %s"
                % (interval, state.key_type, state.key, ", ".join(TIME_INTERVALS))
            )
        return TimeGrid(interval, state.key_type, policy.timezone)
    if kind == "integer":
        if policy.epoch and policy.epoch not in ("seconds", "milliseconds"):
            raise PlanError("epoch must be seconds or milliseconds, not %r" % (policy.epoch,))
        if interval in TIME_INTERVALS:
            if not policy.epoch:
                raise PlanError(
                    "interval %r on the %s key %s needs epoch: seconds or milliseconds (the key holds Unix "
                    "time), or use an integer step" % (interval, state.key_type, state.key)
                )
            return TimeGrid(interval, "timestamp with time zone", policy.timezone, epoch=policy.epoch)
        if policy.epoch:
            raise PlanError("epoch needs a time interval (hour ... year), not %r" % (interval,))
        if isinstance(interval, str) and interval.isdigit():
            interval = int(interval)
        return IntegerGrid(interval)
    raise PlanError(
        "RANGE key %s of type %s is not supported: use a date, timestamp, timestamptz or integer key"
        % (state.key, state.key_type)
    )


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
    offsets = [0] + list(range(1, policy.premake + 1)) + list(range(-1, -policy.backfill - 1, -1))
    existing = [p for p in state.partitions if isinstance(p.bounds, RangeBounds)]
    # Exact matches are the common case; looking them up first keeps a plan over thousands of partitions linear.
    exact = {p.bounds for p in existing}
    actions = []
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
            raise PlanError(
                "%s.%s: planned partition %s [%s, %s) overlaps existing partition %s.%s [%s, %s) with different "
                "bounds; nothing was created. Adjust interval, or merge/re-create the existing partition."
                % (state.schema, state.name, name, bounds.lower, bounds.upper, clash.schema, clash.name,
                   clash.bounds.lower, clash.bounds.upper)
            )
        actions.append(CreatePartition(state.schema, name, bounds))
    current_bounds = RangeBounds(grid.to_key(current), grid.to_key(grid.shift(current, 1)))
    return actions, reference, current_bounds


def _plan_list(state, policy):
    wanted = policy.list_partitions or {}
    if not isinstance(wanted, dict):
        raise PlanError("list_partitions must be a mapping of name suffix -> list of values")
    validate_template(policy.name_template, {"parent", "suffix"})
    existing = [p for p in state.partitions if isinstance(p.bounds, ListBounds)]
    claimed = {}
    actions = []
    for suffix, values in wanted.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise PlanError("list_partitions[%r] must be a non-empty list of values" % (suffix,))
        canonical = frozenset(canonical_list_value(value) for value in values)
        for value in canonical:
            if value in claimed:
                raise PlanError(
                    "list_partitions: value %r is listed under both %r and %r" % (value, claimed[value], suffix)
                )
            claimed[value] = suffix
        name = partition_name(state.name, str(suffix), policy.name_template)
        if any(frozenset(p.bounds.values) == canonical for p in existing):
            continue
        clash = next((p for p in existing if canonical & frozenset(p.bounds.values)), None)
        if clash is not None:
            raise PlanError(
                "%s.%s: planned LIST partition %s %s shares values with existing partition %s %s; nothing was "
                "created" % (state.schema, state.name, name, sorted(canonical, key=str), clash.name,
                             list(clash.bounds.values))
            )
        actions.append(CreatePartition(state.schema, name, ListBounds(tuple(sorted(canonical, key=str))),
                                       values=tuple(values)))
    return actions


def _plan_hash(state, policy):
    modulus = policy.hash_modulus
    if modulus is None or modulus < 1:
        raise PlanError("%s.%s is HASH partitioned: hash_modulus must be a positive integer"
                        % (state.schema, state.name))
    validate_template(policy.name_template, {"parent", "suffix"})
    existing = [p for p in state.partitions if isinstance(p.bounds, HashBounds)]
    other = next((p for p in existing if p.bounds.modulus != modulus), None)
    if other is not None:
        raise PlanError(
            "%s.%s: existing partition %s has modulus %d, not hash_modulus %d; changing the modulus needs a "
            "rebuild of the set" % (state.schema, state.name, other.name, other.bounds.modulus, modulus)
        )
    have = {p.bounds.remainder for p in existing}
    return [
        CreatePartition(state.schema, partition_name(state.name, "hash_%d" % remainder, policy.name_template),
                        HashBounds(modulus, remainder))
        for remainder in range(modulus) if remainder not in have
    ]


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


def plan(state, policy):
    """The partitions to create so the table matches the policy, most urgent first.

    Raises PlanError, before any action exists, for anything that does not fit: nothing half planned.
    """
    _refuse_foreign_options(state, policy)
    reference = current = None
    if state.strategy == "range":
        actions, reference, current = _plan_range(state, policy)
    elif state.strategy == "list":
        actions = _plan_list(state, policy)
    else:
        actions = _plan_hash(state, policy)
    if policy.default_partition and state.default_partition is None:
        actions.append(CreatePartition(state.schema, partition_name(state.name, DEFAULT_SUFFIX), None))
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
    return Plan(tuple(actions), reference, current)
