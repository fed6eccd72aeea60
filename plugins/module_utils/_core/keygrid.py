# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: how a grid moment becomes a key value that is not a time (Unix time in an integer
# unit, a UUIDv7) and back, and the grid of plain integer steps. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
# Key units per second of a key holding Unix time.
EPOCH_SCALE = {"seconds": 1, "milliseconds": 1000, "microseconds": 1000000, "nanoseconds": 1000000000}
_MICROSECONDS = 1000000
# A UUIDv7 starts with 48 bits of Unix milliseconds, then version 7; its variant bits are 10.
UUID_KEY_TYPE = "uuid"
_UUID7_REST = "7000-8000-000000000000"


def _microseconds(instant: dt.datetime) -> int:
    delta = instant - EPOCH
    return (delta.days * 86400 + delta.seconds) * _MICROSECONDS + delta.microseconds


def epoch_value(instant: dt.datetime, unit: str) -> int:
    """Unix time of an aware instant in `unit`; grid starts are whole seconds, so nothing is rounded."""
    scale = EPOCH_SCALE[unit]
    if scale >= _MICROSECONDS:
        return _microseconds(instant) * (scale // _MICROSECONDS)
    return _microseconds(instant) // (_MICROSECONDS // scale)


def epoch_instant(value: Any, unit: str) -> dt.datetime:
    """The instant of a Unix time in `unit`, in integers so a nanosecond below a bound stays below it."""
    scale = EPOCH_SCALE[unit]
    seconds, rest = divmod(int(value), scale)
    return EPOCH + dt.timedelta(seconds=seconds, microseconds=rest * _MICROSECONDS // scale)


def uuid7_floor(instant: dt.datetime) -> str:
    """The smallest UUIDv7 of the instant's millisecond: every UUIDv7 made in that millisecond or later sorts at or
    above it, every one made earlier below it."""
    milliseconds = _microseconds(instant) // 1000
    if not 0 <= milliseconds < 2 ** 48:
        raise PlanError("%s is outside the time a UUIDv7 can hold (1970 to 10889)" % instant)
    text = "%012x" % milliseconds
    return "%s-%s-%s" % (text[:8], text[8:], _UUID7_REST)


def uuid7_instant(value: Any) -> dt.datetime:
    """The millisecond a UUIDv7 was made in, from its first 48 bits."""
    text = str(value).replace("-", "").lower()
    try:
        milliseconds = int(text[:12], 16)
    except ValueError:
        raise PlanError("%r is not a UUID" % (value,))
    if len(text) != 32:
        raise PlanError("%r is not a UUID" % (value,))
    return EPOCH + dt.timedelta(milliseconds=milliseconds)


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

    def on_grid(self, value: Any) -> bool:
        return value % self.step == 0

    def suffix(self, start: Any) -> str:
        return "p%d" % start if start >= 0 else "pm%d" % -start

    def fields(self, start: Any) -> dict:
        return dict(lower=str(start))
