# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: retention distances, as a calendar interval for time keys or a number of key units
# for integer keys, parsed from what a user writes ('24 months', '90 days', 7776000) and subtracted as PostgreSQL
# subtracts an interval. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Union

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError

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


# Partition grid intervals: today's words, or one unit with a count as PostgreSQL writes it ('15 minutes', '3 mons').
GRID_WORDS = {"hour": ("hour", 1), "day": ("day", 1), "week": ("week", 1), "month": ("month", 1),
              "quarter": ("month", 3), "year": ("year", 1)}
_GRID_UNITS = {"minute": "minute", "min": "minute", "hour": "hour", "day": "day", "week": "week",
               "month": "month", "mon": "month", "year": "year"}
_GRID_TEXT = re.compile(r"^(\d{1,6})\s*([a-z]+?)s?$")
SUB_DAY_UNITS = ("minute", "hour")


@dataclass(frozen=True)
class GridInterval:
    """The step of a time grid: `count` of `unit`; `word` is the word it was given as ('1 day' is 'day'), whose
    partition names and floors it keeps."""

    unit: str
    count: int
    word: Any = None

    @property
    def text(self) -> str:
        return self.word or "%d %s%s" % (self.count, self.unit, "s" if self.count > 1 else "")


def parse_grid_interval(value: Any) -> GridInterval:
    """A time `interval` as given: a word (hour ... year) or '<count> <unit>' with one unit, minutes to years."""
    text = " ".join(str(value).strip().lower().split())
    if text in GRID_WORDS:
        return GridInterval(*GRID_WORDS[text], word=text)
    match = _GRID_TEXT.match(text)
    unit = _GRID_UNITS.get(match.group(2)) if match else None
    if unit is None or int(match.group(1)) <= 0:
        raise PlanError("interval %r is neither a word (%s) nor a positive count of one unit such as '15 minutes', "
                        "'2 hours', '3 days', '2 weeks', '3 months' or '2 years'" % (value, ", ".join(GRID_WORDS)))
    count = int(match.group(1))
    return GridInterval(unit, count, unit if count == 1 and unit in GRID_WORDS else None)
