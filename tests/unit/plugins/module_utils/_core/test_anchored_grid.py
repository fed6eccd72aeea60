"""Time grids counted from an anchor ('15 minutes', '2 weeks' from a Tuesday, '3 months' from February), Unix time in
four units and UUIDv7 keys: floor, shift and the key values hold together for any interval and anchor."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.intervals import (
    GridInterval,
    parse_grid_interval,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import (
    EPOCH_SCALE,
    epoch_instant,
    epoch_value,
    uuid7_floor,
    uuid7_instant,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import (
    TimeGrid,
    anchor_fitting,
    check_anchor,
)

UTC = dt.timezone.utc
TSTZ = "timestamp with time zone"
TS = "timestamp without time zone"
PROPERTY = settings(max_examples=150, deadline=None)

INTERVAL_TEXTS = [
    pytest.param("15 minutes", GridInterval("minute", 15), id="fifteen minutes is a count of minutes"),
    pytest.param("2 hours", GridInterval("hour", 2), id="two hours is a count of hours"),
    pytest.param("1 hour", GridInterval("hour", 1, "hour"), id="one hour is the word hour"),
    pytest.param("3 days", GridInterval("day", 3), id="three days"),
    pytest.param("2 weeks", GridInterval("week", 2), id="two weeks"),
    pytest.param("3 mons", GridInterval("month", 3), id="PostgreSQL's spelling of months is read"),
    pytest.param("quarter", GridInterval("month", 3, "quarter"), id="the word quarter is three months"),
    pytest.param(" 2   Years ", GridInterval("year", 2), id="case and spacing do not matter"),
]


@pytest.mark.parametrize("text, expected", INTERVAL_TEXTS)
def test_grid_intervals_are_read_as_one_unit_with_a_count(text, expected):
    assert parse_grid_interval(text) == expected


@pytest.mark.parametrize("text", ["0 days", "fortnight", "1 month 2 days", "-2 hours", "5 seconds", "2.5 days"])
def test_anything_but_one_positive_unit_of_minutes_to_years_is_refused(text):
    with pytest.raises(PlanError, match="15 minutes"):
        parse_grid_interval(text)


ANCHOR_REFUSALS = [
    pytest.param("2 weeks", dt.datetime(2024, 1, 2, 6), "a midnight", id="a week anchor must be a midnight"),
    pytest.param("3 months", dt.datetime(2024, 2, 2), "the first day of a month",
                 id="a month anchor must be the first of a month"),
    pytest.param("15 minutes", dt.datetime(2024, 2, 2, 0, 7, 30), "whole minutes",
                 id="a minute anchor must be whole minutes"),
    pytest.param("day", dt.datetime(2024, 2, 2, tzinfo=UTC), "without a UTC offset",
                 id="an anchor is wall time and carries no offset"),
]


@pytest.mark.parametrize("interval, anchor, message", ANCHOR_REFUSALS)
def test_anchors_off_their_unit_are_refused(interval, anchor, message):
    with pytest.raises(PlanError, match=message):
        check_anchor(anchor, parse_grid_interval(interval))


FLOORS = [
    pytest.param("2 weeks", dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 29, 12), dt.datetime(2024, 1, 16),
                 dt.datetime(2024, 1, 30), id="two weeks from a Tuesday run Tuesday to Tuesday"),
    pytest.param("3 months", dt.datetime(2024, 2, 1), dt.datetime(2024, 1, 31), dt.datetime(2023, 11, 1),
                 dt.datetime(2024, 2, 1), id="quarters from February put January in the one from November"),
    pytest.param("15 minutes", None, dt.datetime(2024, 3, 1, 10, 44, 59), dt.datetime(2024, 3, 1, 10, 30),
                 dt.datetime(2024, 3, 1, 10, 45), id="fifteen minutes from the epoch are quarter hours"),
    pytest.param("2 hours", None, dt.datetime(2024, 3, 1, 1, 0), dt.datetime(2024, 3, 1, 0),
                 dt.datetime(2024, 3, 1, 2), id="two hours from the epoch start at even hours"),
    pytest.param("3 days", None, dt.datetime(1970, 1, 3, 23), dt.datetime(1970, 1, 1), dt.datetime(1970, 1, 4),
                 id="three days from the epoch"),
    pytest.param("year", dt.datetime(2020, 4, 1), dt.datetime(2025, 3, 31), dt.datetime(2024, 4, 1),
                 dt.datetime(2025, 4, 1), id="fiscal years from April"),
]


@pytest.mark.parametrize("interval, anchor, moment, start, following", FLOORS)
def test_a_moment_floors_to_the_bucket_of_the_anchored_grid(interval, anchor, moment, start, following):
    grid = TimeGrid(interval, TS, anchor=anchor)
    assert grid.floor(moment) == start
    assert grid.shift(start, 1) == following


def test_the_word_week_keeps_its_iso_names_and_counted_weeks_are_named_by_their_first_day():
    assert TimeGrid("week", TS).suffix(dt.datetime(2024, 12, 30)) == "2025_w01"
    assert TimeGrid("2 weeks", TS).suffix(dt.datetime(2024, 12, 30)) == "2024_12_30"
    assert TimeGrid("15 minutes", TS).suffix(dt.datetime(2024, 12, 30, 10, 45)) == "2024_12_30_1045"


def test_minutes_do_not_fit_a_date_key():
    with pytest.raises(PlanError, match="does not fit a date key"):
        TimeGrid("15 minutes", "date")


UNITS = st.sampled_from(["minute", "hour", "day", "week", "month", "year"])
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])


@st.composite
def anchored_grids(draw):
    unit = draw(UNITS)
    count = draw(st.integers(1, {"minute": 120, "hour": 48}.get(unit, 12)))
    anchor = draw(st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2030, 1, 1)))
    if unit in ("minute", "hour"):
        anchor = anchor.replace(second=0, microsecond=0)
    else:
        anchor = anchor.replace(hour=0, minute=0, second=0, microsecond=0)
        if unit in ("month", "year"):
            anchor = anchor.replace(day=1)
    key_type = draw(st.sampled_from([TS, TSTZ]))
    zone = draw(ZONES) if key_type == TSTZ else "UTC"
    return TimeGrid(GridInterval(unit, count), key_type, zone, anchor=anchor)


MOMENTS = st.datetimes(dt.datetime(1980, 1, 1), dt.datetime(2040, 1, 1))


def _on_axis(grid, moment):
    return moment.replace(tzinfo=UTC) if grid.aware else moment


@PROPERTY
@given(anchored_grids(), MOMENTS)
def test_floor_holds_the_moment_and_its_neighbours_are_contiguous(grid, moment):
    moment = _on_axis(grid, moment)
    start = grid.floor(moment)
    lower, upper = grid.to_key(start), grid.to_key(grid.shift(start, 1))
    assert lower <= moment < upper
    assert grid.shift(grid.shift(start, 1), -1) == start
    assert grid.to_key(grid.shift(start, -1)) < lower
    assert grid.on_grid(lower) and grid.on_grid(upper)
    assert grid.floor(grid.from_key(upper)) == grid.shift(start, 1)


@PROPERTY
@given(anchored_grids())
def test_the_anchor_lies_on_its_own_grid(grid):
    key = grid.to_key(grid.anchor)
    if grid.aware and grid._instant(grid.anchor).astimezone(grid.tz).replace(tzinfo=None) != grid.anchor:
        return  # an anchor in a local hour the zone skipped names no instant of its own
    assert grid.on_grid(key)


@PROPERTY
@given(anchored_grids(), MOMENTS)
def test_the_anchor_fitting_a_bucket_of_any_grid_rebuilds_that_grid_there(grid, moment):
    start = grid.floor(_on_axis(grid, moment))
    lower, upper = grid.to_key(start), grid.to_key(grid.shift(start, 1))
    anchor = anchor_fitting(grid, lower)
    fitted = TimeGrid(grid.step, grid.key_type, grid.tz.key, anchor=anchor)
    assert fitted.on_grid(lower) and fitted.on_grid(upper)


@PROPERTY
@given(st.sampled_from(list(EPOCH_SCALE)), st.datetimes(dt.datetime(1971, 1, 1), dt.datetime(2200, 1, 1)))
def test_epoch_values_round_trip_and_one_unit_below_a_bound_is_in_the_bucket_before(unit, moment):
    grid = TimeGrid("15 minutes", TSTZ, epoch=unit)
    start = grid.floor(moment.replace(tzinfo=UTC))
    bound = grid.to_key(start)
    assert bound == epoch_value(start.replace(tzinfo=UTC), unit)
    assert epoch_instant(bound, unit) == start.replace(tzinfo=UTC)
    assert grid.floor(grid.from_key(bound - 1)) == grid.shift(start, -1)


def test_a_nanosecond_key_is_read_exactly():
    assert epoch_value(dt.datetime(2024, 1, 1, tzinfo=UTC), "nanoseconds") == 1704067200 * 10 ** 9
    assert epoch_instant(1704067200 * 10 ** 9 - 1, "nanoseconds") < dt.datetime(2024, 1, 1, tzinfo=UTC)


def _uuid7(milliseconds, rest):
    """A UUIDv7 as RFC 9562 lays it out: 48 bits of milliseconds, version 7, 12 random bits, variant 10, 62 bits."""
    value = milliseconds << 80 | 7 << 76 | (rest >> 62 & 0xFFF) << 64 | 2 << 62 | rest & (2 ** 62 - 1)
    return str(uuid.UUID(int=value))


@PROPERTY
@given(st.integers(0, 2 ** 44), st.integers(0, 2 ** 74 - 1))
def test_every_uuid7_of_a_millisecond_sorts_between_that_milliseconds_bound_and_the_next(milliseconds, rest):
    instant = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=milliseconds)
    following = instant + dt.timedelta(milliseconds=1)
    made = _uuid7(milliseconds, rest)
    assert uuid.UUID(made).version == 7
    assert uuid7_floor(instant) <= made < uuid7_floor(following)
    assert uuid7_instant(made) == instant


def test_uuid_bounds_of_a_monthly_grid_are_the_smallest_uuid7_of_each_month():
    grid = TimeGrid("month", "uuid")
    start = grid.floor(dt.datetime(2025, 3, 14, 15, 9, tzinfo=UTC))
    assert grid.to_key(start) == "01954f00-b000-7000-8000-000000000000"
    assert uuid7_instant(grid.to_key(start)) == dt.datetime(2025, 3, 1, tzinfo=UTC)
    assert grid.on_grid(grid.to_key(start)) and not grid.on_grid("01954f00-b001-7000-8000-000000000000")
