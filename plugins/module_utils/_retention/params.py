# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: postgres_partition_retention's options as a validated RetentionPolicy; every
# refusal that needs no catalog happens here, before anything connects. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Optional, Union

from ansible_collections.pgfleet.partitions.plugins.module_utils._backup.files import validate_backup_dir
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import parse_reference_time
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    validate_count,
    validate_lock_timeout,
)

ACTIONS = ("drop", "detach")
CONCURRENTLY = ("auto", "always", "never")

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
    def text(self) -> str:
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


def policy_from_params(params: dict) -> RetentionPolicy:
    """The validated RetentionPolicy; every refusal that needs no catalog happens here, before connecting."""
    try:
        return _policy(params)
    except PlanError as exc:
        raise PlanError("%s: %s" % (params.get("table"), exc))


def _policy(params):
    action, concurrently = params.get("action") or "drop", params.get("concurrently") or "auto"
    if action not in ACTIONS:
        raise PlanError("action %r is not one of %s" % (action, ", ".join(ACTIONS)))
    if concurrently not in CONCURRENTLY:
        raise PlanError("concurrently %r is not one of %s" % (concurrently, ", ".join(CONCURRENTLY)))
    archive = {}
    for option in ("archive_schema", "archive_tablespace"):
        if params.get(option) is not None:
            if action != "detach":
                raise PlanError("%s applies to action: detach only (action is %s)" % (option, action))
            name = parse_table_name(params[option], option)
            if name.schema is not None:
                raise PlanError("%s %r must be a plain name, without a dot" % (option, params[option]))
            archive[option] = name.name
    validate_lock_timeout(params.get("lock_timeout") or "3s")
    for option, default in (("retries", 5), ("run_lock_wait", 60)):
        validate_count(option, params.get(option, default))
    backup_dir = params.get("backup_dir")
    return RetentionPolicy(
        retention=parse_retention(params.get("retention")), action=action, concurrently=concurrently,
        reference_time=parse_reference_time(params.get("reference_time")), **archive,
        backup_dir=validate_backup_dir(backup_dir) if backup_dir is not None else None,
        pg_dump_path=params.get("pg_dump_path"),
    )
