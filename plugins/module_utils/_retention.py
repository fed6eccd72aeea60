# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the pure retention planner, catalog state + retention + reference -> the
# partitions that expire. No database, no clock, no Ansible.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import (
    MAXVALUE,
    MINVALUE,
    TIME_KEY_TYPES,
    Partition,
    RangeBounds,
    TableState,
)

ACTIONS = ("drop", "detach")
CONCURRENTLY = ("auto", "always", "never")
CONCURRENT_DETACH_VERSION = 140000  # DETACH PARTITION ... CONCURRENTLY exists from PostgreSQL 14

# Interval units, spelled as PostgreSQL spells them; each maps to (months, days, seconds) per unit.
_UNITS = {
    "year": (12, 0, 0), "month": (1, 0, 0), "mon": (1, 0, 0), "week": (0, 7, 0), "day": (0, 1, 0),
    "hour": (0, 0, 3600), "minute": (0, 0, 60), "min": (0, 0, 60), "second": (0, 0, 1), "sec": (0, 0, 1),
}
_INTERVAL_TERM = re.compile(r"(\d{1,9})\s*([a-z]+?)s?(?=\s|,|$)")
_INTERVAL_TEXT = re.compile(r"^(\d{1,9}\s*[a-z]+)(\s*,?\s+\d{1,9}\s*[a-z]+)*$")
_INTEGER_TEXT = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class TimeRetention:
    """A calendar distance for time keys; subtracted like PostgreSQL does: months, then days, then time."""

    months: int
    days: int
    seconds: int
    text: str

    def before(self, moment: dt.datetime) -> dt.datetime:
        """moment - this interval; a month step keeps the day of month where it exists (Mar 31 -> Feb 29)."""
        index = moment.year * 12 + moment.month - 1 - self.months
        year, month = index // 12, index % 12 + 1
        shifted = moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))
        return shifted - dt.timedelta(days=self.days, seconds=self.seconds)


@dataclass(frozen=True)
class IntegerRetention:
    """A distance in key units for integer keys (for keys holding Unix time: seconds or milliseconds)."""

    distance: int

    @property
    def text(self):
        return str(self.distance)

    def before(self, reference: int) -> int:
        return reference - self.distance


def parse_retention(value: Any) -> Union[TimeRetention, IntegerRetention]:
    """`retention` as given, validated before any connection: a positive integer or a positive interval."""
    if value is None or isinstance(value, (bool, float)) or isinstance(value, str) and not value.strip():
        raise PlanError("retention %r is neither a positive integer (integer keys) nor an interval such as "
                        "'24 months' or '90 days' (time keys)" % (value,))
    if isinstance(value, int) or _INTEGER_TEXT.match(str(value).strip()):
        distance = int(str(value).strip())
        if distance <= 0:
            raise PlanError("retention must be more than 0, got %s: a retention of nothing would expire every "
                            "partition" % distance)
        return IntegerRetention(distance)
    text = " ".join(str(value).strip().lower().split())
    if not _INTERVAL_TEXT.match(text):
        raise PlanError("retention %r is not an interval such as '24 months', '90 days' or '1 year 6 months' "
                        "(whole positive numbers with the units year, month, week, day, hour, minute, second)"
                        % (value,))
    totals, seen = [0, 0, 0], set()
    for count, unit in _INTERVAL_TERM.findall(text):
        if unit not in _UNITS:
            raise PlanError("retention %r: unknown unit %r; use year, month, week, day, hour, minute or second"
                            % (value, unit))
        if unit in seen:
            raise PlanError("retention %r names the unit %r twice" % (value, unit))
        seen.add(unit)
        for position, per_unit in enumerate(_UNITS[unit]):
            totals[position] += int(count) * per_unit
    if not any(totals):
        raise PlanError("retention must be more than 0, got %r: a retention of nothing would expire every "
                        "partition" % (value,))
    return TimeRetention(totals[0], totals[1], totals[2], text)


@dataclass(frozen=True)
class RetentionPolicy:
    """The options of postgres_partition_retention, validated."""

    retention: Any  # TimeRetention or IntegerRetention
    action: str = "drop"
    concurrently: str = "auto"
    reference_time: Any = None  # datetime, date or int; None means the server's now() or max(key)
    archive_schema: Optional[str] = None
    archive_tablespace: Optional[str] = None
    backup_dir: Optional[str] = None  # absolute; dumps go to <backup_dir>/<database>/
    pg_dump_path: Optional[str] = None


@dataclass(frozen=True)
class RetentionPlan:
    reference: Any  # in the comparison domain of the key (aware UTC, naive, or int); None: no data, no reference
    cutoff: Any  # partitions whose upper bound is at or before it expire
    expired: Tuple[Partition, ...]  # oldest first
    kept: Tuple[Partition, ...]
    past_cutoff_kept: Tuple[Partition, ...]  # sub-partitioned children past the cutoff, left alone
    pending: Tuple[Partition, ...]  # detach pending from an interrupted run: finished first
    concurrent: bool  # detach with DETACH PARTITION ... CONCURRENTLY

    @property
    def has_work(self):
        return bool(self.expired or self.pending)


def _comparable(value, key_type):
    """Bound and reference values on one axis: aware UTC for timestamptz, naive for timestamp and date."""
    if key_type not in TIME_KEY_TYPES or value is MINVALUE or value is MAXVALUE:
        return value
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if key_type == "timestamp with time zone":
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo is not None else value


def _reference_and_cutoff(state, policy):
    table = "%s.%s" % (state.schema, state.name)
    retention, reference = policy.retention, policy.reference_time
    if state.key_kind == "time":
        if not isinstance(retention, TimeRetention):
            raise PlanError("%s: the key %s is %s, so retention must be an interval such as '%d days', not a bare "
                            "number" % (table, state.key, state.key_type, retention.distance))
        if isinstance(reference, int):
            raise PlanError("%s: reference_time must be a date or date-time for the %s key %s, not %r"
                            % (table, state.key_type, state.key, reference))
        reference = _comparable(reference if reference is not None else state.server_now, state.key_type)
        return reference, retention.before(reference)
    if state.key_kind == "integer":
        if not isinstance(retention, IntegerRetention):
            raise PlanError("%s: the key %s is %s, so retention must be a positive integer distance below the "
                            "highest key (for Unix-time keys: in the key's unit, e.g. 7776000 for 90 days in "
                            "seconds), not %r" % (table, state.key, state.key_type, retention.text))
        if reference is not None and not isinstance(reference, int):
            raise PlanError("%s: reference_time must be an integer for the %s key %s, not %r"
                            % (table, state.key_type, state.key, str(reference)))
        reference = reference if reference is not None else state.max_key
        return reference, None if reference is None else retention.before(reference)
    raise PlanError("%s: retention supports date, timestamp, timestamptz and integer RANGE keys; the key %s is %s"
                    % (table, state.key, state.key_type))


def detach_concurrently(state: TableState, mode: str) -> bool:
    """Whether to detach with CONCURRENTLY: `auto` when the server can, `always` fails where it cannot."""
    if mode == "never":
        return False
    reason = None
    if state.server_version_num < CONCURRENT_DETACH_VERSION:
        reason = "the server is older than PostgreSQL 14"
    elif state.default_partition is not None:
        reason = "the set has a default partition (%s)" % state.default_partition.name
    if reason and mode == "always":
        raise PlanError("%s.%s: concurrently: always is impossible because %s; use concurrently: auto or never, "
                        "which take ACCESS EXCLUSIVE on the parent for a moment" % (state.schema, state.name, reason))
    return reason is None


def _sort_key(partition):
    lower = partition.bounds.lower
    return (0, None) if lower is MINVALUE else (1, lower)


def plan_retention(state: TableState, policy: RetentionPolicy) -> RetentionPlan:
    """Which partitions of a RANGE set lie wholly before the cutoff (upper bound <= reference - retention).

    Never expired: the default partition, anything whose upper bound is after the cutoff (so the partition
    holding the reference, and one straddling the cutoff), and sub-partitioned children, which are reported.
    """
    if state.strategy != "range":
        raise PlanError("%s.%s is %s partitioned: retention applies to RANGE partitioned tables only"
                        % (state.schema, state.name, state.strategy.upper()))
    reference, cutoff = _reference_and_cutoff(state, policy)
    expired, kept, past_cutoff_kept = [], [], []
    for partition in state.partitions:
        upper = partition.bounds.upper if isinstance(partition.bounds, RangeBounds) else MAXVALUE
        before_cutoff = cutoff is not None and upper is not MAXVALUE and (
            upper is MINVALUE or _comparable(upper, state.key_type) <= cutoff)
        if before_cutoff and partition.is_partitioned:
            past_cutoff_kept.append(partition)
        if before_cutoff and not partition.is_partitioned and not partition.is_default:
            expired.append(partition)
        elif not partition.detach_pending:
            kept.append(partition)
    return RetentionPlan(
        reference=reference, cutoff=cutoff, expired=tuple(sorted(expired, key=_sort_key)), kept=tuple(kept),
        past_cutoff_kept=tuple(past_cutoff_kept), pending=tuple(p for p in state.partitions if p.detach_pending),
        concurrent=detach_concurrently(state, policy.concurrently),
    )
