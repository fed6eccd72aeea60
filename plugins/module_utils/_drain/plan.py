# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the pure side of draining the default partition: which partitions its rows need
# (any age, within a limit), which rows stay and why, where in the default's blocks each partition's rows lie, and
# the names of LIST partitions made for new values. No database, no clock.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.markers import read_json_marker
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    CreatePartition,
    ListBounds,
    RangeBounds,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.naming import MAX_NAME_BYTES, partition_name

MARKER = "pgfleet.partitions drain: "
NULL_KEY = "the key is NULL"
OUTSIDE = "the key lies outside every range this policy can create"
OVERLAP = "the range it belongs to overlaps an existing partition with other bounds"
OVER_LIMIT = "more partitions than drain_max_partitions would be needed this run; the next run takes them"


@dataclass(frozen=True)
class Group:
    """Rows of the default partition that share a bucket of the grid (or a LIST value) and a chunk of its blocks:
    their lowest and highest key (as the grid reads them), how many, and which chunk."""

    low: Any
    high: Any
    rows: int
    chunk: int


@dataclass(frozen=True)
class DrainTarget:
    """One partition the default partition's rows move into: created (or, left by an interrupted run, adopted),
    filled chunk by chunk in short transactions, then attached."""

    action: CreatePartition
    rows: int  # as counted when planning; writers may add more before the attach
    chunks: Tuple[int, ...]
    adopted: bool = False


@dataclass(frozen=True)
class DrainPlan:
    targets: Tuple[DrainTarget, ...] = ()
    left: Tuple[Tuple[str, int], ...] = ()  # (why, rows) that stay in the default partition
    chunk_blocks: int = 1


@dataclass
class _Bucket:
    rows: int = 0
    chunks: set = field(default_factory=set)


def chunk_blocks(batch_rows: int, pages: int, tuples: float) -> int:
    """How many of the default partition's blocks one batch reads: about batch_rows rows' worth."""
    per_block = (tuples / pages) if pages > 0 and tuples > 0 else 100.0
    return max(1, int(batch_rows / max(per_block, 1.0)))


def marker(action: CreatePartition, parent: str) -> str:
    """The comment that marks a table being filled for `parent`, with its bounds, until it is attached."""
    bounds = action.bounds
    record = {"parent": parent}
    if isinstance(bounds, RangeBounds):
        record.update(lower=_text(bounds.lower), upper=_text(bounds.upper))
    else:
        record.update(values=list(action.values))
    return MARKER + json.dumps(record, sort_keys=True)


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def read_marker(comment: Optional[str]) -> Optional[dict]:
    """The record a drain keeps in the comment of a table it is filling, or None when the comment is not ours."""
    return read_json_marker(comment, MARKER)


def buckets_of(groups: Sequence[Group], floor) -> Tuple[Dict[Any, _Bucket], int]:
    """Rows and chunks per grid bucket, from groups of one bucket each as the server grouped them. A group whose
    lowest and highest key floor to different buckets (the repeated hour of an autumn DST change, in local wall
    time) counts for both; rows that no bucket can hold (floor raises) are returned as the second value."""
    buckets: Dict[Any, _Bucket] = {}
    outside = 0
    for group in groups:
        try:
            starts = {floor(group.low), floor(group.high)}
        except (OverflowError, ValueError, PlanError):
            outside += group.rows
            continue
        for position, start in enumerate(sorted(starts)):
            bucket = buckets.setdefault(start, _Bucket())
            bucket.rows += group.rows if position == 0 else 0
            bucket.chunks.add(group.chunk)
    return buckets, outside


def plan_drain(state: TableState, wanted: Mapping[Any, Tuple[CreatePartition, int, Sequence[int]]],
               adopted: Sequence[CreatePartition], left: Sequence[Tuple[str, int]], limit: int,
               blocks: int) -> DrainPlan:
    """The drain of one run: `wanted` maps each bucket start to (its partition, its rows, its chunks), in any
    order; `adopted` are tables an interrupted run was filling (always finished first, whatever the limit); `left`
    the rows already known to stay. Buckets are taken oldest first, up to `limit` new partitions."""
    if limit < 1:
        raise PlanError("drain_max_partitions must be 1 or more, not %r" % (limit,))
    adopted_names = {action.name for action in adopted}
    targets = [DrainTarget(action, 0, (), adopted=True) for action in adopted]
    over = 0
    for start in sorted(wanted, key=_order):
        action, rows, chunks = wanted[start]
        if action.name in adopted_names:
            targets = [DrainTarget(t.action, rows, tuple(sorted(chunks)), True) if t.action.name == action.name
                       else t for t in targets]
        elif len(targets) - len(adopted) < limit:
            targets.append(DrainTarget(action, rows, tuple(sorted(chunks))))
        else:
            over += rows
    reasons = list(left) + ([(OVER_LIMIT, over)] if over else [])
    return DrainPlan(tuple(targets), tuple((why, rows) for why, rows in reasons if rows), blocks)


def _order(start: Any) -> Tuple[int, Any]:
    return (0, start) if start is not None else (1, 0)


_UNSAFE = re.compile(r"[^a-z0-9_]+")


def value_suffix(value: str) -> str:
    """A partition name suffix for a LIST value, safe for any text: lower-case letters, digits and '_' kept, every
    other run of characters one '_', and a short hash of the value whenever that changed anything (so 'A b' and
    'a_b' stay apart)."""
    plain = _UNSAFE.sub("_", value.lower()).strip("_") or "value"
    if plain == value:
        return plain
    return "%s_%s" % (plain[:MAX_NAME_BYTES // 2], hashlib.sha256(value.encode()).hexdigest()[:6])


def new_value_actions(state: TableState, values: Sequence[str], template: Optional[str] = None
                      ) -> List[CreatePartition]:
    """A LIST partition for every value the default partition holds that no partition lists; refused, before any
    change, when two values would get the same name or a name an existing partition has."""
    listed = {value for p in state.partitions if isinstance(p.bounds, ListBounds) for value in p.bounds.values}
    taken = {p.name: "existing partition %s" % p.name for p in state.partitions}
    actions = []
    for value in sorted(set(values) - listed):
        name = partition_name(state.name, value_suffix(value), template)
        if name in taken:
            raise PlanError("%s.%s: the partition for the new value %r would be named %s, like the %s; nothing was "
                            "created. Add the value to list_partitions under a suffix of your choice."
                            % (state.schema, state.name, value, name, taken[name]))
        taken[name] = "partition for the value %r" % value
        actions.append(CreatePartition(state.schema, name, ListBounds((value,)), values=(value,)))
    return actions
