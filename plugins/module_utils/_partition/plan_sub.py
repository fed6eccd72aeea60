# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: two-level sets, pure: the `subpartition` option checked, and the children each new
# top-level partition is created with (RANGE children covering it, a LIST child per entry, or HASH children).
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.bounds import canonical_list_value
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    SUB_STRATEGIES,
    CreatePartition,
    HashBounds,
    ListBounds,
    RangeBounds,
    SubPartitioning,
    TableState,
    bound_before,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.naming import PLAIN_NAME, partition_name

_OPTIONS = {"strategy", "column", "interval", "list_partitions", "hash_modulus"}
# A sub-partitioned partition of more children than this is a sign of a wrong interval.
MAX_CHILDREN = 1000


def parse_subpartition(value: Any) -> Optional[SubPartitioning]:
    """`subpartition` as given, checked before any connection."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PlanError("subpartition must be a mapping with strategy and column")
    unknown = sorted(set(value) - _OPTIONS)
    if unknown:
        raise PlanError("subpartition: unknown option(s) %s (known: %s)" % (", ".join(unknown), ", ".join(
            sorted(_OPTIONS))))
    strategy, column = value.get("strategy"), value.get("column")
    if strategy not in SUB_STRATEGIES:
        raise PlanError("subpartition.strategy must be one of %s, not %r" % (", ".join(SUB_STRATEGIES), strategy))
    if not isinstance(column, str) or not PLAIN_NAME.match(column):
        raise PlanError("subpartition.column must be a plain column name, not %r" % (column,))
    needs = {"range": "interval", "list": "list_partitions", "hash": "hash_modulus"}[strategy]
    if value.get(needs) is None or any(value.get(option) is not None for option in
                                       {"interval", "list_partitions", "hash_modulus"} - {needs}):
        raise PlanError("subpartition with strategy %s takes %s (and none of the other strategies' options)"
                        % (strategy, needs))
    modulus = value.get("hash_modulus")
    if modulus is not None and (isinstance(modulus, bool) or not isinstance(modulus, int) or modulus < 1):
        raise PlanError("subpartition.hash_modulus must be a positive integer, not %r" % (modulus,))
    lists = value.get("list_partitions")
    if lists is not None and (not isinstance(lists, dict) or not lists or not all(
            PLAIN_NAME.match(str(suffix)) and isinstance(values, (list, tuple)) and values
            for suffix, values in lists.items())):
        raise PlanError("subpartition.list_partitions must map plain name suffixes to non-empty lists of values")
    return SubPartitioning(strategy, column.lower(), interval=value.get("interval"), list_partitions=lists,
                           hash_modulus=modulus)


def _range_children(state, action, sub, grid):
    lower, upper = action.bounds.lower, action.bounds.upper
    start, children = grid.floor(grid.from_key(lower)), []
    if grid.to_key(start) != lower:
        raise PlanError("%s.%s: subpartition interval %s does not divide partition %s [%s, %s)" % (
            state.schema, state.name, sub.interval, action.name, lower, upper))
    while bound_before(grid.to_key(start), upper) and len(children) <= MAX_CHILDREN:
        bounds = RangeBounds(grid.to_key(start), grid.to_key(grid.shift(start, 1)))
        if bound_before(upper, bounds.upper):
            raise PlanError("%s.%s: subpartition interval %s does not divide partition %s [%s, %s)" % (
                state.schema, state.name, sub.interval, action.name, lower, upper))
        if bounds.lower != bounds.upper:
            children.append(CreatePartition(action.schema, partition_name(action.name, grid.suffix(start)), bounds))
        start = grid.shift(start, 1)
    if len(children) > MAX_CHILDREN:
        raise PlanError("%s.%s: partition %s would get more than %d sub-partitions of %s" % (
            state.schema, state.name, action.name, MAX_CHILDREN, sub.interval))
    return children


def refuse_foreign_sub(state: TableState, sub: SubPartitioning) -> None:
    if sub.column not in state.columns:
        raise PlanError("%s.%s has no column %s to sub-partition by" % (state.schema, state.name, sub.column))
    if sub.strategy == "range" and (sub.column != state.key or state.strategy != "range"):
        raise PlanError("%s.%s: RANGE sub-partitioning is by the RANGE key %s itself, with a finer interval, not "
                        "by %s" % (state.schema, state.name, state.key, sub.column))


def with_children(state: TableState, sub: SubPartitioning, action: CreatePartition, grid: Any = None
                  ) -> CreatePartition:
    """The action creating a top-level partition, with the children `sub` gives it (`grid`: the RANGE children's)."""
    if action.is_default:
        return action
    if sub.strategy == "hash":
        children = [CreatePartition(action.schema, partition_name(action.name, "h%d" % remainder),
                                    HashBounds(sub.hash_modulus, remainder)) for remainder in range(sub.hash_modulus)]
    elif sub.strategy == "list":
        children = [CreatePartition(action.schema, partition_name(action.name, str(suffix)), ListBounds(tuple(
            sorted((canonical_list_value(v) for v in values), key=str))), values=tuple(values))
            for suffix, values in sub.list_partitions.items()]
    else:
        children = _range_children(state, action, sub, grid)
    return dataclasses.replace(action, partition_by=sub, children=tuple(children))
