# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: partition grids, i.e. calendar and integer bucket arithmetic. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.intervals import (
    SUB_DAY_UNITS,
    GridInterval,
    parse_grid_interval,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import (
    UUID_KEY_TYPE,
    epoch_instant,
    epoch_value,
    uuid7_floor,
    uuid7_instant,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import TIME_KEY_TYPES

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # Python < 3.9 cannot run the engine; the module reports it cleanly
    ZoneInfo = None
    ZoneInfoNotFoundError = Exception

UTC = dt.timezone.utc
_SECONDS = {"minute": 60, "hour": 3600}
_DAYS = {"day": 1, "week": 7}
_MONTHS = {"month": 1, "year": 12}
# Where a grid starts unless interval_anchor says otherwise: the epoch, its first Monday for weeks.
_DEFAULT_ANCHOR = {"week": dt.datetime(1970, 1, 5)}
EPOCH_WALL = dt.datetime(1970, 1, 1)


def instant(value: Any) -> Any:
    """Time values as aware UTC datetimes so date, timestamp and timestamptz compare and subtract alike.

    A date is its midnight and a naive timestamp is read as UTC: the catalog session runs in UTC. Other values
    (integers, MINVALUE, MAXVALUE) come back unchanged.
    """
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


def on_key_axis(value: Any, key_type: str) -> Any:
    """Bound and reference values of a time key on one axis: aware UTC for timestamptz, naive for timestamp and date.
    Other values (integers, MINVALUE, MAXVALUE) come back unchanged."""
    if key_type not in TIME_KEY_TYPES or not isinstance(value, dt.date):
        return value
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if key_type == "timestamp with time zone":
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def zone(name: str) -> ZoneInfo:
    if ZoneInfo is None:
        raise PlanError("time zones need Python 3.9 or newer on the managed host")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise PlanError("timezone %r is not a known IANA time zone name (e.g. 'UTC', 'Europe/Berlin')" % (name,))


def _add_months(day, months):
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1, day=1)


def _fractional_offset_change(tz, first_year, last_year):
    """(about when, by how much) of the first change of the zone's UTC offset by a fraction of an hour between
    the two years, sampled daily; None when every change is whole hours."""
    moment = dt.datetime(first_year, 1, 1, tzinfo=UTC)
    end = dt.datetime(last_year, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(tz).utcoffset()
    while moment < end:
        moment += dt.timedelta(days=1)
        following = moment.astimezone(tz).utcoffset()
        if (following - offset).total_seconds() % 3600:
            return moment, abs(following - offset)
        offset = following
    return None


class TimeGrid(object):
    """Buckets of a calendar interval whose boundaries are wall-clock times in one time zone, counted from an anchor.

    A bucket is identified by its start as local wall time (a naive datetime). Day and longer intervals
    step in wall time, so a month in Europe/Berlin starts at local midnight on both sides of a DST change;
    minutes and hours step in absolute time, so the repeated hour in autumn is its own bucket. The word 'hour'
    floors to the local hour, as it always has; a count of minutes or hours floors to the anchor's grid.
    """

    def __init__(self, interval: Any, key_type: str, timezone: str = "UTC", epoch: Optional[str] = None,
                 anchor: Optional[dt.datetime] = None):
        self.step = interval if isinstance(interval, GridInterval) else parse_grid_interval(interval)
        self.interval = self.step.text
        self.key_type = key_type
        self.tz = zone(timezone)
        self.epoch = epoch
        self.uuid = key_type == UUID_KEY_TYPE
        self.aware = key_type in ("timestamp with time zone", UUID_KEY_TYPE) or epoch is not None
        if self.step.unit in SUB_DAY_UNITS and key_type == "date" and epoch is None:
            raise PlanError("interval %r does not fit a date key; use day or longer" % (self.interval,))
        default = _DEFAULT_ANCHOR.get(self.step.unit, EPOCH_WALL)
        self.anchor = check_anchor(anchor, self.step) if anchor is not None else default
        self.wall_hours = self.step.word == "hour" and self.anchor == default

    @property
    def trunc_unit(self) -> str:
        """The coarsest date_trunc unit whose buckets each lie inside one bucket of this grid."""
        unit, anchor = self.step.unit, self.anchor
        if self.step.word == "quarter" and anchor == EPOCH_WALL:
            return "quarter"
        if unit == "hour" and anchor.minute or unit == "week" and anchor.weekday() or unit == "year" and (
                anchor.month != 1):
            return {"hour": "minute", "week": "day", "year": "month"}[unit]
        return unit

    def _local(self, moment):
        """A reference moment as local wall time: aware values are converted into the zone."""
        if isinstance(moment, dt.datetime):
            if moment.tzinfo is not None:
                local = moment.astimezone(self.tz).replace(tzinfo=None)
            else:
                local = moment
            return local if self.aware else local.replace(fold=0)
        return dt.datetime(moment.year, moment.month, moment.day)

    def floor(self, moment: Any) -> Any:
        start = self._wall_floor(moment)
        if self.aware and isinstance(moment, dt.datetime) and moment.tzinfo is not None:
            # Wall-clock flooring can land one bucket off where local time repeats; settle it in instants.
            while self._instant(start) > moment:
                start = self.shift(start, -1)
            while self._instant(self.shift(start, 1)) <= moment:
                start = self.shift(start, 1)
        return start

    def on_grid(self, value: Any) -> bool:
        """Whether a key value (a partition bound) is the start of a bucket of this grid."""
        return self.to_key(self.floor(self.from_key(value))) == value

    def check_hours_around(self, moment: Any) -> None:
        """Refuse hourly buckets where local hours cannot all start on the hour: in a zone whose UTC offset changes
        by a fraction of an hour (Australia/Lord_Howe moves by 30 minutes) within two years of `moment`.

        There, an hour stepped across the change starts at half past, the grid would break into pieces of
        different lengths, and names would collide. Zones with a constant fractional offset (Asia/Kolkata) are
        fine: their hours never move against each other.
        """
        if not self.wall_hours or not self.aware:
            return
        instant = moment if isinstance(moment, dt.datetime) and moment.tzinfo is not None else None
        if instant is None:
            instant = self._instant(self._local(moment))
        change = _fractional_offset_change(self.tz, instant.year - 2, instant.year + 3)
        if change is not None:
            raise PlanError(
                "interval 'hour' cannot be used with timezone %s: its UTC offset changes by %s around %s, so "
                "its local hours do not all start on the hour; use timezone UTC (or a zone whose offset changes "
                "by whole hours) for hourly partitions, or interval 'day' or longer"
                % (self.tz.key, change[1], change[0].strftime("%Y-%m-%d")))

    def _instant(self, start):
        return start.replace(tzinfo=self.tz).astimezone(UTC)

    def _wall(self, instant):
        local = instant.astimezone(self.tz)
        return local.replace(tzinfo=None, fold=local.fold)

    def _wall_floor(self, moment):
        local = self._local(moment)
        unit, count, anchor = self.step.unit, self.step.count, self.anchor
        if unit in SUB_DAY_UNITS:
            if self.wall_hours:
                return local.replace(minute=0, second=0, microsecond=0)
            width = dt.timedelta(seconds=_SECONDS[unit] * count)
            if not self.aware:
                return anchor + (local - anchor) // width * width
            aware = isinstance(moment, dt.datetime) and moment.tzinfo is not None
            instant, origin = moment.astimezone(UTC) if aware else self._instant(local), self._instant(anchor)
            return self._wall(origin + (instant - origin) // width * width)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
        if unit in _DAYS:
            width = _DAYS[unit] * count
            return anchor + dt.timedelta(days=(day - anchor).days // width * width)
        width = _MONTHS[unit] * count
        months = (day.year - anchor.year) * 12 + day.month - anchor.month
        return _add_months(anchor, months // width * width)

    def shift(self, start: Any, count: int) -> Any:
        unit, steps = self.step.unit, self.step.count * count
        if unit in SUB_DAY_UNITS:
            width = dt.timedelta(seconds=_SECONDS[unit] * steps)
            return self._wall(self._instant(start) + width) if self.aware else start + width
        if unit in _DAYS:
            return start + dt.timedelta(days=_DAYS[unit] * steps)
        return _add_months(start, _MONTHS[unit] * steps)

    def to_key(self, start: Any) -> Any:
        """The partition bound value for a bucket start, in the key's own type."""
        if self.key_type == "date" and self.epoch is None:
            return start.date()
        if not self.aware:
            return start
        instant = self._instant(start)
        if self.uuid:
            return uuid7_floor(instant)
        return instant if self.epoch is None else epoch_value(instant, self.epoch)

    def from_key(self, value: Any) -> Any:
        """A key value (an epoch integer, a UUIDv7, a bound) as a moment on this grid."""
        if isinstance(value, (dt.datetime, dt.date)):
            return value
        if self.uuid:
            return uuid7_instant(value)
        return epoch_instant(value, self.epoch) if self.epoch is not None else value

    def suffix(self, start: Any) -> str:
        unit, word = self.step.unit, self.step.word
        if unit in SUB_DAY_UNITS:
            return start.strftime("%Y_%m_%d_%H" + ("%M" if unit == "minute" else "")) + ("_b" if start.fold else "")
        if word == "week":
            year, week = start.isocalendar()[:2]
            return "%04d_w%02d" % (year, week)
        if unit in _DAYS:
            return start.strftime("%Y_%m_%d")
        if word == "quarter":
            return "%04d_q%d" % (start.year, (start.month - 1) // 3 + 1)
        return start.strftime("%Y_%m") if unit == "month" else "%04d" % start.year

    def fields(self, start: Any) -> dict:
        """Values a name_template may use."""
        year, week = start.isocalendar()[:2]
        return dict(
            year="%04d" % start.year, month="%02d" % start.month, day="%02d" % start.day,
            hour="%02d" % start.hour, minute="%02d" % start.minute, isoyear="%04d" % year, week="%02d" % week,
            quarter="%d" % ((start.month - 1) // 3 + 1),
        )


def check_anchor(anchor: Any, step: GridInterval) -> dt.datetime:
    """interval_anchor as the local wall time a bucket starts at: whole minutes for minutes and hours, a midnight
    for days and weeks, the first of a month at midnight for months and years."""
    if isinstance(anchor, dt.date) and not isinstance(anchor, dt.datetime):
        anchor = dt.datetime(anchor.year, anchor.month, anchor.day)
    if not isinstance(anchor, dt.datetime) or anchor.tzinfo is not None:
        raise PlanError("interval_anchor %r must be a local date-time without a UTC offset (it is read in the "
                        "policy's timezone), e.g. '2024-01-02 00:00'" % (anchor,))
    unit = step.unit
    if anchor.second or anchor.microsecond:
        wrong = "whole minutes"
    elif unit not in SUB_DAY_UNITS and (anchor.hour or anchor.minute):
        wrong = "a midnight"
    elif unit in _MONTHS and anchor.day != 1:
        wrong = "the first day of a month"
    else:
        return anchor
    raise PlanError("interval_anchor %s does not fit interval %r: it must be %s"
                    % (anchor.isoformat(" "), step.text, wrong))


def anchor_fitting(grid: TimeGrid, value: Any) -> Optional[dt.datetime]:
    """The interval_anchor that puts a bound on the grid; None when no anchor can (a month bound that is not the
    first of a month)."""
    start = grid.from_key(value)
    local = grid._local(start)
    try:
        return check_anchor(local, grid.step)
    except PlanError:
        return None
