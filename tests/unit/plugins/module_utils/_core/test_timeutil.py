from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import IntegerGrid
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import TimeGrid

UTC = dt.timezone.utc
TSTZ = "timestamp with time zone"
TS = "timestamp without time zone"
INTERVALS = ("hour", "day", "week", "month", "quarter", "year")
PROPERTY = settings(max_examples=100, deadline=None)


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


# floor and shift on the calendar, for a naive timestamp key (wall time is the key itself).
CALENDAR = [
    pytest.param("hour", dt.datetime(2025, 1, 31, 23, 59, 59, 999999), dt.datetime(2025, 1, 31, 23), 1,
                 dt.datetime(2025, 2, 1, 0), id="the last microsecond of a month floors to its hour and the next "
                 "hour is in the next month"),
    pytest.param("hour", dt.datetime(2024, 12, 31, 23, 0), dt.datetime(2024, 12, 31, 23), -24,
                 dt.datetime(2024, 12, 30, 23), id="an hour already on the grid floors to itself"),
    pytest.param("day", dt.datetime(2024, 2, 29, 12), dt.datetime(2024, 2, 29), 1, dt.datetime(2024, 3, 1),
                 id="the leap day is a day and the next day is March 1st"),
    pytest.param("day", dt.datetime(2023, 2, 28, 23, 59), dt.datetime(2023, 2, 28), 1, dt.datetime(2023, 3, 1),
                 id="February 28th of a common year is followed by March 1st"),
    pytest.param("day", dt.datetime(2025, 1, 1, 0, 0, 1), dt.datetime(2025, 1, 1), -1, dt.datetime(2024, 12, 31),
                 id="one day back from new year is new year's eve"),
    pytest.param("week", dt.datetime(2025, 1, 1, 12), dt.datetime(2024, 12, 30), 1, dt.datetime(2025, 1, 6),
                 id="a Wednesday floors to the Monday before, in the previous year"),
    pytest.param("week", dt.datetime(2021, 1, 3, 23, 59), dt.datetime(2020, 12, 28), 1, dt.datetime(2021, 1, 4),
                 id="a Sunday belongs to the week that started on the Monday before it"),
    pytest.param("week", dt.datetime(2025, 1, 13), dt.datetime(2025, 1, 13), -2, dt.datetime(2024, 12, 30),
                 id="a Monday midnight floors to itself"),
    pytest.param("month", dt.datetime(2025, 1, 31, 23, 59), dt.datetime(2025, 1, 1), 1, dt.datetime(2025, 2, 1),
                 id="January 31st floors to January 1st and the next month starts on February 1st"),
    pytest.param("month", dt.datetime(2024, 2, 29), dt.datetime(2024, 2, 1), 1, dt.datetime(2024, 3, 1),
                 id="leap February is followed by March"),
    pytest.param("month", dt.datetime(2025, 1, 15), dt.datetime(2025, 1, 1), -1, dt.datetime(2024, 12, 1),
                 id="one month back from January is December of the previous year"),
    pytest.param("month", dt.datetime(2025, 1, 15), dt.datetime(2025, 1, 1), 13, dt.datetime(2026, 2, 1),
                 id="thirteen months ahead crosses a year"),
    pytest.param("month", dt.datetime(2025, 3, 31), dt.datetime(2025, 3, 1), -25, dt.datetime(2023, 2, 1),
                 id="many months back lands on the first of the month"),
    pytest.param("quarter", dt.datetime(2025, 5, 15), dt.datetime(2025, 4, 1), 1, dt.datetime(2025, 7, 1),
                 id="May is in the second quarter"),
    pytest.param("quarter", dt.datetime(2025, 12, 31, 23, 59), dt.datetime(2025, 10, 1), 1, dt.datetime(2026, 1, 1),
                 id="the last quarter is followed by the first quarter of the next year"),
    pytest.param("quarter", dt.datetime(2025, 1, 1), dt.datetime(2025, 1, 1), -1, dt.datetime(2024, 10, 1),
                 id="one quarter back from January is October"),
    pytest.param("year", dt.datetime(2024, 12, 31, 23, 59), dt.datetime(2024, 1, 1), 1, dt.datetime(2025, 1, 1),
                 id="new year's eve floors to new year's day"),
    pytest.param("year", dt.datetime(2024, 2, 29), dt.datetime(2024, 1, 1), -4, dt.datetime(2020, 1, 1),
                 id="years shift by whole years from a leap year"),
]


@pytest.mark.parametrize("interval, moment, floor, count, shifted", CALENDAR)
def test_floor_and_shift_on_the_calendar(interval, moment, floor, count, shifted):
    grid = TimeGrid(interval, TS)
    assert grid.floor(moment) == floor
    assert grid.shift(floor, count) == shifted
    assert grid.to_key(floor) == floor


@pytest.mark.parametrize("interval, moment, floor, count, shifted",
                         [case for case in CALENDAR if case.values[0] != "hour"])
def test_date_keys_use_the_same_calendar_as_dates(interval, moment, floor, count, shifted):
    grid = TimeGrid(interval, "date")
    start = grid.floor(moment.date())
    assert grid.to_key(start) == floor.date()
    assert grid.to_key(grid.shift(start, count)) == shifted.date()


SUFFIXES = [
    pytest.param("hour", dt.datetime(2025, 1, 5, 7), "2025_01_05_07", id="an hour is YYYY_MM_DD_HH"),
    pytest.param("day", dt.datetime(2025, 1, 5), "2025_01_05", id="a day is YYYY_MM_DD"),
    pytest.param("week", dt.datetime(2025, 1, 13), "2025_w03", id="a week is IYYY_wIW"),
    pytest.param("week", dt.datetime(2024, 12, 30), "2025_w01", id="a week starting in December can be ISO week 1"),
    pytest.param("week", dt.datetime(2020, 12, 28), "2020_w53", id="ISO week 53 exists"),
    pytest.param("week", dt.datetime(2026, 12, 28), "2026_w53",
                 id="the week of December 28th 2026 is week 53"),
    pytest.param("month", dt.datetime(2025, 1, 1), "2025_01", id="a month is YYYY_MM"),
    pytest.param("quarter", dt.datetime(2025, 10, 1), "2025_q4", id="a quarter is YYYY_qN"),
    pytest.param("quarter", dt.datetime(2025, 1, 1), "2025_q1", id="January starts quarter one"),
    pytest.param("year", dt.datetime(2025, 1, 1), "2025", id="a year is YYYY"),
    pytest.param("year", dt.datetime(999, 1, 1), "0999", id="years are four digits wide"),
]


@pytest.mark.parametrize("interval, start, suffix", SUFFIXES)
def test_suffix(interval, start, suffix):
    assert TimeGrid(interval, TS).suffix(start) == suffix


def test_fields_offer_calendar_and_iso_parts_to_name_templates():
    assert TimeGrid("week", TS).fields(dt.datetime(2024, 12, 30)) == dict(
        year="2024", month="12", day="30", hour="00", minute="00", isoyear="2025", week="01", quarter="4")


INTEGER_SUFFIXES = [
    pytest.param(0, "p0", id="the bucket at zero is p0"),
    pytest.param(12000, "p12000", id="a positive lower bound is p<lower>"),
    pytest.param(-1000, "pm1000", id="a negative lower bound is pm<minus lower> so the name stays plain"),
]


@pytest.mark.parametrize("start, suffix", INTEGER_SUFFIXES)
def test_integer_suffix(start, suffix):
    assert IntegerGrid(1000).suffix(start) == suffix
    assert IntegerGrid(1000).fields(start) == dict(lower=str(start))


# timestamptz month buckets start at local midnight on both sides of a DST change.
LOCAL_MONTHS = [
    pytest.param("Europe/Berlin", utc(2025, 3, 15), utc(2025, 2, 28, 23), utc(2025, 3, 31, 22),
                 id="March in Berlin starts at midnight CET and ends at midnight CEST"),
    pytest.param("Europe/Berlin", utc(2025, 10, 31, 22, 30), utc(2025, 9, 30, 22), utc(2025, 10, 31, 23),
                 id="October in Berlin starts at midnight CEST and ends at midnight CET"),
    pytest.param("Europe/Berlin", utc(2024, 12, 31, 23, 30), utc(2024, 12, 31, 23), utc(2025, 1, 31, 23),
                 id="the last UTC hour of the year is already January in Berlin"),
    pytest.param("America/New_York", utc(2025, 3, 9, 12), utc(2025, 3, 1, 5), utc(2025, 4, 1, 4),
                 id="March in New York starts at midnight EST and ends at midnight EDT"),
    pytest.param("America/New_York", utc(2025, 11, 1, 3, 59), utc(2025, 10, 1, 4), utc(2025, 11, 1, 4),
                 id="a UTC moment on November 1st can still be October in New York"),
    pytest.param("America/New_York", utc(2025, 11, 2, 6, 30), utc(2025, 11, 1, 4), utc(2025, 12, 1, 5),
                 id="November in New York starts at midnight EDT and ends at midnight EST"),
    pytest.param("UTC", utc(2025, 1, 31, 23, 59), utc(2025, 1, 1), utc(2025, 2, 1),
                 id="in UTC a month is its calendar month"),
]


@pytest.mark.parametrize("zone, moment, lower, upper", LOCAL_MONTHS)
def test_month_partitions_of_timestamptz_start_at_local_midnight(zone, moment, lower, upper):
    grid = TimeGrid("month", TSTZ, zone)
    start = grid.floor(moment)
    assert (grid.to_key(start), grid.to_key(grid.shift(start, 1))) == (lower, upper)
    assert start.time() == dt.time(0) and start.day == 1


# Hourly buckets across DST: (zone, first hour in UTC, the local hours that follow each other).
DST_HOURS = [
    pytest.param("Europe/Berlin", utc(2025, 3, 30, 0), ["2025_03_30_01", "2025_03_30_03", "2025_03_30_04"],
                 id="Berlin skips the local hour 02 in spring"),
    pytest.param("Europe/Berlin", utc(2025, 10, 25, 23), ["2025_10_26_01", "2025_10_26_02", "2025_10_26_02",
                                                          "2025_10_26_03"],
                 id="Berlin has the local hour 02 twice in autumn"),
    pytest.param("America/New_York", utc(2025, 3, 9, 6), ["2025_03_09_01", "2025_03_09_03", "2025_03_09_04"],
                 id="New York skips the local hour 02 in spring"),
    pytest.param("America/New_York", utc(2025, 11, 2, 4), ["2025_11_02_00", "2025_11_02_01", "2025_11_02_01",
                                                           "2025_11_02_02"],
                 id="New York has the local hour 01 twice in autumn"),
]


@pytest.mark.parametrize("zone, first, hours", DST_HOURS)
def test_hourly_buckets_across_dst_are_one_hour_contiguous_and_distinctly_named(zone, first, hours):
    grid = TimeGrid("hour", TSTZ, zone)
    starts = [grid.shift(grid.floor(first), n) for n in range(len(hours) + 1)]
    instants = [grid.to_key(start) for start in starts]
    assert instants == [first + dt.timedelta(hours=n) for n in range(len(hours) + 1)]
    suffixes = [grid.suffix(start) for start in starts[:-1]]
    assert [suffix[:13] for suffix in suffixes] == hours
    assert len(set(suffixes)) == len(suffixes)


@pytest.mark.parametrize("zone, first, hours", DST_HOURS)
def test_every_moment_around_dst_floors_to_the_hour_bucket_that_holds_it(zone, first, hours):
    grid = TimeGrid("hour", TSTZ, zone)
    for minutes in range(0, len(hours) * 60, 15):
        moment = first + dt.timedelta(minutes=minutes)
        start = grid.floor(moment)
        assert grid.to_key(start) == first + dt.timedelta(hours=minutes // 60), moment


REPEATED_WALL_TIME = [
    pytest.param("hour", "Europe/Berlin", utc(2025, 10, 26, 1, 30),
                 id="the second 02:30 of an autumn night in Berlin is in the second 02:00 hour"),
    pytest.param("hour", "America/New_York", utc(2025, 11, 2, 6, 59, 59),
                 id="the last second of the second 01:00 hour in New York is in that hour"),
    pytest.param("day", "America/St_Johns", utc(2000, 10, 29, 2, 31),
                 id="when clocks fell back across midnight in St John's the repeated 23:31 is after the day's end"),
]


@pytest.mark.parametrize("interval, zone, moment", REPEATED_WALL_TIME)
def test_a_moment_in_repeated_wall_time_lies_in_the_bucket_it_floors_to(interval, zone, moment):
    grid = TimeGrid(interval, TSTZ, zone)
    start = grid.floor(moment)
    assert grid.to_key(start) <= moment < grid.to_key(grid.shift(start, 1))


def test_a_naive_timestamp_key_has_no_repeated_hour_even_when_now_is_in_one():
    """Wall-clock keys have a single 02:00 bucket; the fold of the zone conversion must not leak into it."""
    grid = TimeGrid("hour", TS, "Europe/Berlin")
    first, second = grid.floor(utc(2025, 10, 26, 0, 30)), grid.floor(utc(2025, 10, 26, 1, 30))
    assert grid.to_key(first) == grid.to_key(second) == dt.datetime(2025, 10, 26, 2)
    assert grid.suffix(first) == grid.suffix(second) == "2025_10_26_02"


REFERENCE_CONVERSIONS = [
    pytest.param("month", "date", "Europe/Berlin", utc(2025, 2, 28, 23, 30), dt.date(2025, 3, 1),
                 id="a date key takes the local date of an aware reference"),
    pytest.param("month", "date", "UTC", utc(2025, 2, 28, 23, 30), dt.date(2025, 2, 1),
                 id="the same reference in UTC is still February"),
    pytest.param("day", TS, "America/New_York", utc(2025, 1, 1, 3), dt.datetime(2024, 12, 31),
                 id="a naive timestamp key takes the wall time in the zone"),
    pytest.param("day", TS, "UTC", dt.datetime(2025, 1, 1, 3), dt.datetime(2025, 1, 1),
                 id="a naive reference is already wall time"),
    pytest.param("day", TSTZ, "Europe/Berlin", dt.date(2025, 7, 1), utc(2025, 6, 30, 22),
                 id="a date reference on a timestamptz key means local midnight"),
]


@pytest.mark.parametrize("interval, key_type, zone, reference, key", REFERENCE_CONVERSIONS)
def test_references_become_local_wall_time_before_flooring(interval, key_type, zone, reference, key):
    grid = TimeGrid(interval, key_type, zone)
    assert grid.to_key(grid.floor(reference)) == key


EPOCH_KEYS = [
    pytest.param("seconds", "UTC", 1736000000, 1735689600, 1738368000,
                 id="an epoch in seconds in January 2025 is in the January bucket"),
    pytest.param("milliseconds", "UTC", 1736000000123, 1735689600000, 1738368000000,
                 id="milliseconds scale the bounds by a thousand"),
    pytest.param("milliseconds", "UTC", 1735689599999, 1733011200000, 1735689600000,
                 id="the last millisecond of 2024 is in December"),
    pytest.param("seconds", "UTC", -1, -2678400, 0, id="one second before the epoch is in December 1969"),
    pytest.param("seconds", "Europe/Berlin", 1735689600, 1735686000, 1738364400,
                 id="epoch buckets follow the local midnight of the zone"),
]


@pytest.mark.parametrize("epoch, zone, key, lower, upper", EPOCH_KEYS)
def test_epoch_keys_are_integers_on_a_calendar_grid(epoch, zone, key, lower, upper):
    grid = TimeGrid("month", TSTZ, zone, epoch=epoch)
    start = grid.floor(grid.from_key(key))
    assert (grid.to_key(start), grid.to_key(grid.shift(start, 1))) == (lower, upper)
    assert isinstance(grid.to_key(start), int)


def test_from_key_passes_datetimes_through_on_an_epoch_grid():
    assert TimeGrid("day", TSTZ, epoch="seconds").from_key(utc(2025, 1, 1)) == utc(2025, 1, 1)


REFUSED_GRIDS = [
    pytest.param(lambda: TimeGrid("hour", "date"), "date", id="an hourly grid on a date key is refused"),
    pytest.param(lambda: TimeGrid("day", TSTZ, "Mars/Olympus"), "time zone", id="an unknown time zone is refused"),
    pytest.param(lambda: TimeGrid("day", TSTZ, ""), "time zone", id="an empty time zone is refused"),
    pytest.param(lambda: TimeGrid("day", TSTZ, None), "time zone", id="no time zone is refused"),
    pytest.param(lambda: IntegerGrid(0), "positive", id="a zero integer step is refused"),
    pytest.param(lambda: IntegerGrid(-10), "positive", id="a negative integer step is refused"),
    pytest.param(lambda: IntegerGrid(True), "positive", id="a boolean step is refused"),
    pytest.param(lambda: IntegerGrid(1.5), "positive", id="a fractional step is refused"),
    pytest.param(lambda: IntegerGrid("10"), "positive", id="a string step is refused"),
]


@pytest.mark.parametrize("build, message", REFUSED_GRIDS)
def test_grids_refuse_what_does_not_fit(build, message):
    with pytest.raises(PlanError, match=message):
        build()


INTEGER_BUCKETS = [
    pytest.param(1000, 0, 0, id="zero is the start of its bucket"),
    pytest.param(1000, 999, 0, id="the last value of a bucket floors to its start"),
    pytest.param(1000, 12345, 12000, id="a value floors to the multiple of the step below it"),
    pytest.param(1000, -1, -1000, id="minus one is in the bucket below zero"),
    pytest.param(1000, -1000, -1000, id="a negative multiple of the step floors to itself"),
    pytest.param(10, Decimal("12.5"), 10, id="a fractional numeric value floors to its bucket"),
    pytest.param(10, Decimal("-0.5"), -10, id="a negative fractional numeric value floors below zero"),
    pytest.param(10, Decimal("-10.5"), -20, id="a negative fractional value just below a multiple floors below it"),
]


@pytest.mark.parametrize("step, value, start", INTEGER_BUCKETS)
def test_integer_buckets(step, value, start):
    grid = IntegerGrid(step)
    assert grid.floor(value) == start
    assert grid.shift(start, 1) == start + step
    assert grid.to_key(start) == grid.from_key(start) == start


# Properties over random moments, zones and intervals. Moments are drawn uniformly and also close to the
# DST changes of the zones, where calendar arithmetic goes wrong.
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Sao_Paulo", "America/Santiago",
         "America/Havana", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham", "Europe/London")


@lru_cache(maxsize=None)
def transitions(zone_name):
    """The instants (UTC) at which the zone's UTC offset changes, 2000-2039, to the second."""
    zone = ZoneInfo(zone_name)
    found = []
    moment = utc(2000, 1, 1)
    while moment.year < 2040:
        following = moment + dt.timedelta(days=7)
        if moment.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            low, high = moment, following
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high)
        moment = following
    return tuple(found) or (utc(2025, 1, 1),)


@st.composite
def zoned_moments(draw, zone_names=ZONES):
    """(zone name, aware UTC moment), the moment uniform in 1971-2099 or within 3 hours of a DST change."""
    zone_name = draw(st.sampled_from(zone_names))
    uniform = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 12, 31),
                           timezones=st.just(UTC))
    near_change = st.builds(lambda change, minutes: change + dt.timedelta(minutes=minutes),
                            st.sampled_from(transitions(zone_name)), st.integers(-180, 180))
    return zone_name, draw(uniform | near_change)


KEY_KINDS = (TSTZ, TS, "date", "seconds", "milliseconds")


def grid_and_key(interval, kind, zone_name, moment):
    """The grid of a key kind ("seconds"/"milliseconds": an epoch integer key) and the key of a row at moment."""
    if kind in ("seconds", "milliseconds"):
        grid = TimeGrid(interval, TSTZ, zone_name, epoch=kind)
        return grid, int(moment.timestamp() * (1000 if kind == "milliseconds" else 1))
    grid = TimeGrid(interval, kind, zone_name)
    local = moment.astimezone(grid.tz).replace(tzinfo=None, fold=0)
    return grid, {TSTZ: moment, TS: local, "date": local.date()}[kind]


def key_kinds(interval):
    return st.sampled_from([kind for kind in KEY_KINDS if not (interval == "hour" and kind == "date")])


@pytest.mark.parametrize("interval", INTERVALS)
@PROPERTY
@given(data=st.data(), zoned=zoned_moments())
def test_property_a_key_lies_in_the_bucket_it_floors_to_and_that_floor_is_idempotent(interval, data, zoned):
    zone_name, moment = zoned
    grid, key = grid_and_key(interval, data.draw(key_kinds(interval), label="key kind"), zone_name, moment)
    start = grid.floor(grid.from_key(key))
    lower, upper = grid.to_key(start), grid.to_key(grid.shift(start, 1))
    assert lower <= key < upper
    again = grid.floor(grid.from_key(lower))
    assert (grid.to_key(again), grid.suffix(again)) == (lower, grid.suffix(start))


@pytest.mark.parametrize("interval", INTERVALS)
@PROPERTY
@given(data=st.data(), zoned=zoned_moments(), count=st.integers(-30, 30))
def test_property_shifted_buckets_are_contiguous_increasing_distinct_and_their_own_floor(
        interval, data, zoned, count):
    zone_name, moment = zoned
    kind = data.draw(key_kinds(interval), label="key kind")
    grid, key = grid_and_key(interval, kind, zone_name, moment)
    first = grid.shift(grid.floor(grid.from_key(key)), count)
    starts = [grid.shift(first, n) for n in range(4)]
    keys = [grid.to_key(start) for start in starts]
    assert keys == sorted(set(keys))
    assert [grid.to_key(grid.shift(start, 1)) for start in starts[:-1]] == keys[1:]
    assert [grid.to_key(grid.floor(grid.from_key(key))) for key in keys] == keys
    assert len({grid.suffix(start) for start in starts}) == len(starts)
    if interval == "hour" and kind == TSTZ:
        assert {later - earlier for earlier, later in zip(keys, keys[1:])} == {dt.timedelta(hours=1)}


@PROPERTY
@given(step=st.integers(1, 10**6), value=st.integers(-(10**12), 10**12), count=st.integers(-5, 5))
def test_property_integer_buckets_hold_their_value_negative_values_included(step, value, count):
    grid = IntegerGrid(step)
    start = grid.floor(value)
    assert start <= value < grid.shift(start, 1)
    assert start % step == 0
    assert grid.floor(grid.shift(start, count)) == grid.shift(start, count)
