# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: partition grids, i.e. calendar and integer bucket arithmetic. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import TIME_KEY_TYPES

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # Python < 3.9 cannot run the engine; the module reports it cleanly
    ZoneInfo = None
    ZoneInfoNotFoundError = Exception

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_SCALE = {"seconds": 1, "milliseconds": 1000}


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
    """Buckets of a calendar interval whose boundaries are wall-clock times in one time zone.

    A bucket is identified by its start as local wall time (a naive datetime). Day and longer intervals
    step in wall time, so a month in Europe/Berlin starts at local midnight on both sides of a DST change;
    hours step in absolute time, so the repeated hour in autumn is its own bucket.
    """

    def __init__(self, interval: Any, key_type: str, timezone: str = "UTC", epoch: Optional[str] = None):
        self.interval = interval
        self.key_type = key_type
        self.tz = zone(timezone)
        self.epoch = epoch
        self.aware = key_type == "timestamp with time zone" or epoch is not None
        if interval == "hour" and key_type == "date":
            raise PlanError("interval 'hour' does not fit a date key; use day or longer")

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

    def check_hours_around(self, moment: Any) -> None:
        """Refuse hourly buckets where local hours cannot all start on the hour: in a zone whose UTC offset changes
        by a fraction of an hour (Australia/Lord_Howe moves by 30 minutes) within two years of `moment`.

        There, an hour stepped across the change starts at half past, the grid would break into pieces of
        different lengths, and names would collide. Zones with a constant fractional offset (Asia/Kolkata) are
        fine: their hours never move against each other.
        """
        if self.interval != "hour" or not self.aware:
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

    def _wall_floor(self, moment):
        local = self._local(moment)
        if self.interval == "hour":
            return local.replace(minute=0, second=0, microsecond=0)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
        if self.interval == "day":
            return day
        if self.interval == "week":
            return day - dt.timedelta(days=day.weekday())
        if self.interval == "month":
            return day.replace(day=1)
        if self.interval == "quarter":
            return day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
        return day.replace(day=1, month=1)

    def shift(self, start: Any, count: int) -> Any:
        if self.interval == "hour":
            if not self.aware:
                return start + dt.timedelta(hours=count)
            instant = start.replace(tzinfo=self.tz).astimezone(UTC) + dt.timedelta(hours=count)
            local = instant.astimezone(self.tz)
            return local.replace(tzinfo=None, fold=local.fold)
        if self.interval == "day":
            return start + dt.timedelta(days=count)
        if self.interval == "week":
            return start + dt.timedelta(weeks=count)
        months = {"month": 1, "quarter": 3, "year": 12}[self.interval]
        return _add_months(start, months * count)

    def to_key(self, start: Any) -> Any:
        """The partition bound value for a bucket start, in the key's own type."""
        if self.key_type == "date" and self.epoch is None:
            return start.date()
        if not self.aware:
            return start
        instant = start.replace(tzinfo=self.tz).astimezone(UTC)
        if self.epoch is None:
            return instant
        delta = instant - EPOCH
        return (delta.days * 86400 + delta.seconds) * EPOCH_SCALE[self.epoch]

    def from_key(self, value: Any) -> Any:
        """A key value (e.g. an epoch integer given as reference_time) as a moment on this grid."""
        if self.epoch is not None and not isinstance(value, (dt.datetime, dt.date)):
            return EPOCH + dt.timedelta(seconds=int(value) / EPOCH_SCALE[self.epoch])
        return value

    def suffix(self, start: Any) -> str:
        if self.interval == "hour":
            return start.strftime("%Y_%m_%d_%H") + ("_b" if start.fold else "")
        if self.interval == "day":
            return start.strftime("%Y_%m_%d")
        if self.interval == "week":
            year, week = start.isocalendar()[:2]
            return "%04d_w%02d" % (year, week)
        if self.interval == "month":
            return start.strftime("%Y_%m")
        if self.interval == "quarter":
            return "%04d_q%d" % (start.year, (start.month - 1) // 3 + 1)
        return "%04d" % start.year

    def fields(self, start: Any) -> dict:
        """Values a name_template may use."""
        year, week = start.isocalendar()[:2]
        return dict(
            year="%04d" % start.year, month="%02d" % start.month, day="%02d" % start.day,
            hour="%02d" % start.hour, isoyear="%04d" % year, week="%02d" % week,
            quarter="%d" % ((start.month - 1) // 3 + 1),
        )


class IntegerGrid(object):
    """Buckets of a fixed integer step, aligned on multiples of the step."""

    def __init__(self, step: int):
        if isinstance(step, bool) or not isinstance(step, int) or step <= 0:
            raise PlanError("interval for an integer key must be a positive integer step, got %r" % (step,))
        self.step = step

    def floor(self, value: Any) -> Any:
        return (math.floor(value) // self.step) * self.step

    def shift(self, start: Any, count: int) -> Any:
        return start + count * self.step

    def to_key(self, start: Any) -> Any:
        return start

    def from_key(self, value: Any) -> Any:
        return value

    def suffix(self, start: Any) -> str:
        return "p%d" % start if start >= 0 else "pm%d" % -start

    def fields(self, start: Any) -> dict:
        return dict(lower=str(start))
