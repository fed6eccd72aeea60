# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the facts postgres_partition_info reports (gaps, runway, JSON-ready tables),
# computed from a TableState and a reference. Pure: no database, no clock, no Ansible.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    MAXVALUE,
    MINVALUE,
    Partition,
    RangeBounds,
    TableState,
    bound_before,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import jsonable, ordered, partition_facts
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import uuid7_instant
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import instant


@dataclass(frozen=True)
class Gap:
    """A hole between two consecutive range partitions: keys in [lower, upper) have no partition but the default."""

    lower: Any
    upper: Any
    after: str  # the partition that ends at lower
    before: str  # the partition that starts at upper


@dataclass(frozen=True)
class Runway:
    """How far the range partitions reach past the reference without a hole."""

    current: Optional[str]  # the partition holding the reference; None when none does
    partitions: int  # contiguous partitions after `current` (0 when there is no current one)
    until: Any  # upper bound of the last of them; None when there is no current one
    interval: Any  # until - reference (timedelta for time keys, a number for integer keys); None when unbounded


def reference_for(state: TableState, reference_time: Any = None) -> Any:
    """The key value runway is measured from; None for LIST and HASH sets and for keys that are neither.

    Time keys: reference_time (a date or date-time; naive ones are UTC), else the server's now(). Integer keys:
    reference_time (an integer), else max(key), 0 for an empty table, as postgres_partition plans.
    """
    if state.strategy != "range" or state.key_kind not in ("time", "integer", "uuid"):
        return None
    table = "%s.%s" % (state.schema, state.name)
    if state.key_kind in ("time", "uuid"):
        if reference_time is None:
            return instant(state.server_now)
        if not isinstance(reference_time, dt.date):
            raise PlanError("%s: reference_time %r does not fit the %s key %s; give an ISO date or date-time, or "
                            "leave tables with integer keys out" % (table, reference_time, state.key_type, state.key))
        return instant(reference_time)
    if reference_time is None:
        return state.max_key if state.max_key is not None else 0
    if not isinstance(reference_time, int) or isinstance(reference_time, bool):
        raise PlanError("%s: reference_time %r does not fit the %s key %s; give an integer, or leave tables with "
                        "time keys out" % (table, jsonable(reference_time), state.key_type, state.key))
    return reference_time


def _ranges(partitions):
    return [p for p in ordered(partitions) if isinstance(p.bounds, RangeBounds)]


def find_gaps(partitions: Sequence[Partition]) -> List[Gap]:
    """Holes between consecutive range partitions; the open ends before the first and after the last are not gaps."""
    ranges = _ranges(partitions)
    return [
        Gap(left.bounds.upper, right.bounds.lower, left.name, right.name)
        for left, right in zip(ranges, ranges[1:])
        if bound_before(left.bounds.upper, right.bounds.lower)
    ]


def set_runway(state: TableState, reference: Any) -> Runway:
    """measure_runway of a set; a UUIDv7 key's bounds are read as the times they encode, so runway is in time."""
    partitions = state.partitions
    if state.key_kind == "uuid":
        partitions = [dataclasses.replace(p, bounds=RangeBounds(*(
            value if value is MINVALUE or value is MAXVALUE else uuid7_instant(value)
            for value in (p.bounds.lower, p.bounds.upper)))) if isinstance(p.bounds, RangeBounds) else p
            for p in partitions]
    return measure_runway(partitions, reference)


def measure_runway(partitions: Sequence[Partition], reference: Any) -> Runway:
    """The partition holding the reference, the unbroken run of partitions after it, and where that run ends."""
    point = instant(reference)
    ranges = _ranges(partitions)
    holder = next((index for index, p in enumerate(ranges)
                   if not bound_before(point, instant(p.bounds.lower))
                   and bound_before(point, instant(p.bounds.upper))), None)
    if holder is None:
        return Runway(None, 0, None, point - point)
    last = ranges[holder]
    following = 0
    for partition in ranges[holder + 1:]:
        if partition.bounds.lower != last.bounds.upper:
            break
        last, following = partition, following + 1
    until = last.bounds.upper
    return Runway(ranges[holder].name, following, until, None if until is MAXVALUE else instant(until) - point)


def interval_text(delta: dt.timedelta) -> str:
    """A duration as PostgreSQL prints an interval: '334 days', '1 day 05:30:00', '00:20:00' (whole seconds)."""
    hours, rest = divmod(delta.seconds, 3600)
    clock = "%02d:%02d:%02d" % (hours, rest // 60, rest % 60)
    days = "%d day%s" % (delta.days, "" if delta.days == 1 else "s") if delta.days else ""
    if days and clock == "00:00:00":
        return days
    return " ".join(part for part in (days, clock) if part)


def interval_iso(delta: dt.timedelta) -> str:
    """A duration as ISO 8601, days being the largest unit: 'P334D', 'P1DT5H30M', 'PT0S' (whole seconds)."""
    hours, rest = divmod(delta.seconds, 3600)
    clock = "".join("%d%s" % (amount, unit) for amount, unit in ((hours, "H"), (rest // 60, "M"), (rest % 60, "S"))
                    if amount)
    days = "%dD" % delta.days if delta.days else ""
    if not days and not clock:
        return "PT0S"
    return "P" + days + ("T" + clock if clock else "")


def runway_facts(runway: Runway) -> dict:
    facts = {"current": runway.current, "partitions": runway.partitions, "until": jsonable(runway.until)}
    interval = runway.interval
    if interval is None:
        facts.update(interval=None, text="unbounded", iso=None)
    elif isinstance(interval, dt.timedelta):
        seconds = interval.total_seconds()
        facts.update(interval=int(seconds) if seconds == int(seconds) else seconds, text=interval_text(interval),
                     iso=interval_iso(interval))
    else:
        facts.update(interval=jsonable(interval), text=str(jsonable(interval)), iso=None)
    return facts


def brin_facts(index: Any) -> dict:
    """One BRIN index (a _brin.plan.BrinIndex) as postgres_partition_info reports it."""
    return {"schema": index.index_schema, "name": index.index_name, "table": index.table_name, "level": index.level,
            "autosummarize": index.autosummarize, "pages_per_range": index.pages_per_range}


def table_facts(state: TableState, reference: Any, default_rows: Optional[int], brin_indexes: Sequence[Any],
                health: Optional[tuple] = None, drift: Optional[dict] = None) -> dict:
    """Everything postgres_partition_info says about one partition set, ready for exit_json.

    `reference` comes from reference_for; `default_rows` is the exact row count of the default partition (None
    when the set has none); `brin_indexes` are the indexes _brin.catalog.brin_indexes found for this set; `health`,
    when read, is what catalog.table_health found for it: (parent analyzed, when, {(schema, partition): [indexes]});
    `drift`, read with it, is what _inherit.job.drift found: {(schema, partition): [drift facts]}.
    """
    missing = health[2] if health else {}
    partitions = []
    for partition in ordered(state.partitions):
        facts = dict(partition_facts(partition), size_bytes=partition.size_bytes,
                     rows_estimate=partition.rows_estimate)
        if health is not None:
            facts["missing_indexes"] = missing.get((partition.schema, partition.name), [])
        if drift is not None:
            facts["drift"] = drift.get((partition.schema, partition.name), [])
        partitions.append(facts)
    facts = {
        "strategy": state.strategy,
        "key": state.key,
        "key_type": state.key_type,
        "partitions": partitions,
        "default_rows": default_rows,
        "gaps": [jsonable({"lower": gap.lower, "upper": gap.upper, "after": gap.after, "before": gap.before})
                 for gap in find_gaps(state.partitions)],
        "runway": None if reference is None else runway_facts(set_runway(state, reference)),
        "reference": jsonable(reference),
        "brin_indexes": [brin_facts(index) for index in sorted(
            brin_indexes, key=lambda index: (index.level, index.table_name, index.index_name))],
    }
    if health is not None:
        facts.update(parent_analyzed=health[0], parent_last_analyzed=jsonable(instant(health[1])))
    return facts
