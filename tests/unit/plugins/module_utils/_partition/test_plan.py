from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.bounds import parse_bound
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.intervals import parse_retention
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    HashBounds,
    ListBounds,
    Partition,
    PartitionPolicy,
    RangeBounds,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.naming import partition_name, validate_template
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan import grid_for, plan
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.params import RetentionPolicy
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.plan import plan_retention

UTC = dt.timezone.utc
TSTZ = "timestamp with time zone"
TS = "timestamp without time zone"
PROPERTY = settings(max_examples=200, deadline=None)


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


NOW = utc(2025, 1, 15, 12)


def table(strategy="range", key_type=TSTZ, partitions=(), name="events", server_now=NOW, **facts):
    return TableState(oid=1, schema="public", name=name, strategy=strategy, key="k", key_type=key_type,
                      partitions=tuple(partitions), server_now=server_now, **facts)


def existing(name, expression, key_type=TSTZ):
    """A partition as the catalog reader builds it: bounds parsed from pg_get_expr(relpartbound)."""
    bounds = parse_bound(expression, key_type)
    return Partition("public", name, bounds, is_default=bounds is None)


def month_bound(lower, upper):
    return "FOR VALUES FROM ('%s 00:00:00+00') TO ('%s 00:00:00+00')" % (lower, upper)


def names(result):
    return [action.name for action in result.actions]


def applied(state, result):
    """The table after the plan ran: every created partition is in the catalog with the bounds it was given."""
    created = tuple(Partition(action.schema, action.name, action.bounds, is_default=action.is_default)
                    for action in result.actions)
    return dataclasses.replace(state, partitions=state.partitions + created)


MONTHS_AROUND_NOW = ["events_2025_%02d" % month for month in range(1, 13)] + ["events_2026_01", "events_2024_12"]

MONTHLY_KEYS = [
    pytest.param(TSTZ, utc(2025, 1, 1), utc(2025, 2, 1), id="a timestamptz key gets UTC instants"),
    pytest.param(TS, dt.datetime(2025, 1, 1), dt.datetime(2025, 2, 1), id="a timestamp key gets wall times"),
    pytest.param("date", dt.date(2025, 1, 1), dt.date(2025, 2, 1), id="a date key gets dates"),
]


@pytest.mark.parametrize("key_type, lower, upper", MONTHLY_KEYS)
def test_premake_12_and_backfill_1_give_14_monthly_partitions_current_first(key_type, lower, upper):
    result = plan(table(key_type=key_type), PartitionPolicy(interval="month", premake=12, backfill=1))
    assert names(result) == MONTHS_AROUND_NOW
    assert result.actions[0].bounds == result.current == RangeBounds(lower, upper)
    assert result.reference == NOW
    ranges = sorted((action.bounds for action in result.actions), key=lambda bounds: bounds.lower)
    assert all(earlier.upper == later.lower for earlier, later in zip(ranges, ranges[1:]))
    assert {action.schema for action in result.actions} == {"public"}


@pytest.mark.parametrize("key_type, lower, upper", MONTHLY_KEYS)
def test_the_month_holding_the_reference_time_is_current(key_type, lower, upper):
    policy = PartitionPolicy(interval="month", premake=0, reference_time=utc(2025, 1, 31, 23, 59))
    result = plan(table(key_type=key_type, server_now=utc(2030, 6, 1)), policy)
    assert (names(result), result.current) == (["events_2025_01"], RangeBounds(lower, upper))


def test_berlin_month_partitions_of_timestamptz_start_at_local_midnight():
    policy = PartitionPolicy(interval="month", premake=1, timezone="Europe/Berlin",
                             reference_time=utc(2025, 3, 15))
    assert [(action.name, action.bounds) for action in plan(table(), policy).actions] == [
        ("events_2025_03", RangeBounds(utc(2025, 2, 28, 23), utc(2025, 3, 31, 22))),
        ("events_2025_04", RangeBounds(utc(2025, 3, 31, 22), utc(2025, 4, 30, 22))),
    ]


DST_CURRENT = [
    pytest.param("hour", "Europe/Berlin", utc(2025, 10, 26, 1, 30), utc(2025, 10, 26, 1), utc(2025, 10, 26, 2),
                 id="in the repeated autumn hour in Berlin the current hourly partition is the second 02:00"),
    pytest.param("hour", "Europe/Berlin", utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 0), utc(2025, 10, 26, 1),
                 id="in the first 02:00 hour in Berlin the current hourly partition is the first 02:00"),
    pytest.param("hour", "America/New_York", utc(2025, 3, 9, 7, 30), utc(2025, 3, 9, 7), utc(2025, 3, 9, 8),
                 id="right after the spring gap in New York the current hourly partition is 03:00"),
    pytest.param("day", "America/New_York", utc(2025, 11, 3, 4, 30), utc(2025, 11, 2, 4), utc(2025, 11, 3, 5),
                 id="the 25-hour autumn day in New York is one daily partition"),
]


@pytest.mark.parametrize("interval, zone, reference, lower, upper", DST_CURRENT)
def test_the_current_partition_holds_the_reference_across_dst(interval, zone, reference, lower, upper):
    result = plan(table(), PartitionPolicy(interval=interval, premake=0, timezone=zone, reference_time=reference))
    assert result.current == result.actions[0].bounds == RangeBounds(lower, upper)


def test_a_day_the_zone_skipped_gets_no_partition_and_its_neighbours_touch():
    # Samoa went from UTC-10 to UTC+14 at the end of 2011-12-29: 2011-12-30 never happened in Pacific/Apia.
    policy = PartitionPolicy(interval="day", premake=2, backfill=0, timezone="Pacific/Apia",
                             reference_time=utc(2011, 12, 29, 12))
    result = plan(table(server_now=utc(2030, 1, 1)), policy)
    assert [(action.name, action.bounds) for action in result.actions] == [
        ("events_2011_12_29", RangeBounds(utc(2011, 12, 29, 10), utc(2011, 12, 30, 10))),
        ("events_2011_12_31", RangeBounds(utc(2011, 12, 30, 10), utc(2011, 12, 31, 10))),
    ]
    assert plan(applied(table(server_now=utc(2030, 1, 1)), result), policy).actions == ()


@pytest.mark.parametrize("zone, when", [
    pytest.param("Australia/Lord_Howe", utc(2025, 1, 15), id="Lord Howe moves its clocks by 30 minutes"),
    pytest.param("Australia/Lord_Howe", utc(2025, 6, 15), id="also in the half year without daylight saving"),
])
def test_hourly_partitions_are_refused_where_the_offset_changes_by_a_fraction_of_an_hour(zone, when):
    policy = PartitionPolicy(interval="hour", premake=3, timezone=zone, reference_time=when)
    with pytest.raises(PlanError, match=r"interval 'hour' cannot be used with timezone Australia/Lord_Howe: its "
                                        r"UTC offset changes by 0:30:00 around 20\d\d-\d\d-\d\d"):
        plan(table(), policy)
    assert plan(table(), dataclasses.replace(policy, interval="day")).actions  # daily partitions there are fine


@pytest.mark.parametrize("zone, when", [
    pytest.param("Asia/Kolkata", utc(2025, 1, 15), id="a constant offset of 5:30 has hours that never move"),
    pytest.param("Asia/Kathmandu", utc(2025, 1, 15), id="Kathmandu's change to 5:45 was in 1986, long before"),
    pytest.param("Europe/Berlin", utc(2025, 3, 30), id="whole-hour daylight saving"),
])
def test_hourly_partitions_are_planned_where_local_hours_stay_whole(zone, when):
    policy = PartitionPolicy(interval="hour", premake=48, timezone=zone, reference_time=when)
    bounds = sorted((action.bounds for action in plan(table(), policy).actions), key=lambda bound: bound.lower)
    assert len(bounds) == 49
    assert all(earlier.upper == later.lower for earlier, later in zip(bounds, bounds[1:]))
    assert {b.lower.astimezone(ZoneInfo(zone)).minute for b in bounds} == {0}


PARTMAN_MONTHS = [
    existing("events_p%04d%02d01" % (year, month),
             month_bound("%04d-%02d-01" % (year, month), "%04d-%02d-01" % (year + month // 12, month % 12 + 1)))
    for year, month in [(2024, 12)] + [(2025, month) for month in range(1, 13)] + [(2026, 1)]
]

ADOPTED = [
    pytest.param(PARTMAN_MONTHS, [], id="pg_partman partitions with the same bounds are adopted whatever their names"),
    pytest.param([existing("events_y2025", month_bound("2025-01-01", "2026-01-01"))],
                 ["events_2026_01", "events_2024_12"],
                 id="a hand-made yearly partition covers the months inside it"),
    pytest.param([existing("events_old", "FOR VALUES FROM (MINVALUE) TO ('2025-01-01 00:00:00+00')")],
                 MONTHS_AROUND_NOW[:-1], id="a partition from MINVALUE covers the backfill"),
    pytest.param([existing("events_future", "FOR VALUES FROM ('2025-02-01 00:00:00+00') TO (MAXVALUE)")],
                 ["events_2025_01", "events_2024_12"], id="a partition to MAXVALUE covers the premade months"),
    pytest.param([existing("events_jan", "FOR VALUES FROM ('2025-01-01 01:00:00+01') TO ('2025-02-01 01:00:00+01')")],
                 MONTHS_AROUND_NOW[1:], id="bounds printed in another offset are the same instants"),
    pytest.param([existing("events_2023_01", month_bound("2023-01-01", "2023-02-01"))], MONTHS_AROUND_NOW,
                 id="an old partition outside the window changes nothing"),
]


@pytest.mark.parametrize("partitions, created", ADOPTED)
def test_existing_partitions_are_adopted_never_created_again(partitions, created):
    result = plan(table(partitions=partitions), PartitionPolicy(interval="month", premake=12, backfill=1))
    assert names(result) == created


def test_pg_partman_date_partitions_are_adopted():
    partitions = [existing("events_p20250101", "FOR VALUES FROM ('2025-01-01') TO ('2025-02-01')", "date"),
                  existing("events_p20250201", "FOR VALUES FROM ('2025-02-01') TO ('2025-03-01')", "date")]
    result = plan(table(key_type="date", partitions=partitions), PartitionPolicy(interval="month", premake=2))
    assert names(result) == ["events_2025_03"]


OVERLAPS = [
    pytest.param(existing("events_half", month_bound("2025-01-15", "2025-02-15")), "events_2025_01",
                 id="a partition across the month boundary clashes with the current month"),
    pytest.param(existing("events_w03", month_bound("2025-01-13", "2025-01-20")), "events_2025_01",
                 id="a weekly partition inside the month clashes with it"),
    pytest.param(existing("events_berlin_06", "FOR VALUES FROM ('2025-06-01 00:00:00+02') TO "
                                              "('2025-07-01 00:00:00+02')"), "events_2025_05",
                 id="a Berlin June clashes with the last day of May of a UTC policy"),
    pytest.param(existing("events_tail", "FOR VALUES FROM ('2025-12-31 00:00:00+00') TO (MAXVALUE)"),
                 "events_2025_12", id="a partition to MAXVALUE from inside a month clashes with it"),
]


@pytest.mark.parametrize("partition, planned", OVERLAPS)
def test_an_overlap_with_different_bounds_is_an_error_naming_both(partition, planned):
    with pytest.raises(PlanError) as error:
        plan(table(partitions=[partition]), PartitionPolicy(interval="month", premake=12, backfill=1))
    assert planned in str(error.value) and partition.name in str(error.value)
    assert "public.events" in str(error.value)


INTEGER_CASES = [
    pytest.param(dict(), dict(interval=1000, premake=2), [("events_p0", 0, 1000), ("events_p1000", 1000, 2000),
                                                          ("events_p2000", 2000, 3000)],
                 id="an empty integer table starts at the bucket of zero"),
    pytest.param(dict(max_key=12345), dict(interval=1000, premake=1, backfill=1),
                 [("events_p12000", 12000, 13000), ("events_p13000", 13000, 14000), ("events_p11000", 11000, 12000)],
                 id="the current integer bucket holds max key"),
    pytest.param(dict(max_key=-5), dict(interval=1000, premake=1),
                 [("events_pm1000", -1000, 0), ("events_p0", 0, 1000)],
                 id="a negative max key is in the bucket below zero"),
    pytest.param(dict(max_key=12345), dict(interval=1000, premake=0, reference_time=500),
                 [("events_p0", 0, 1000)], id="reference_time overrides max key"),
    pytest.param(dict(max_key=2500), dict(interval="1000", premake=0), [("events_p2000", 2000, 3000)],
                 id="an integer step given as digits is a step"),
    pytest.param(dict(key_type="numeric", max_key=Decimal("12.5")), dict(interval=10, premake=0),
                 [("events_p10", 10, 20)], id="a fractional numeric max key is in its bucket"),
    pytest.param(dict(key_type="numeric", max_key=Decimal("-0.5")), dict(interval=10, premake=0),
                 [("events_pm10", -10, 0)], id="a negative fractional numeric max key is in the bucket below zero"),
]


@pytest.mark.parametrize("facts, options, created", INTEGER_CASES)
def test_integer_range_partitions(facts, options, created):
    state = table(**{"key_type": "bigint", **facts})
    result = plan(state, PartitionPolicy(**options))
    assert [(action.name, action.bounds.lower, action.bounds.upper) for action in result.actions] == created
    assert result.current == RangeBounds(created[0][1], created[0][2])


def test_existing_integer_partitions_are_adopted():
    partitions = [existing("events_p0", "FOR VALUES FROM (0) TO (1000)", "bigint"),
                  existing("events_neg", "FOR VALUES FROM (MINVALUE) TO (0)", "bigint")]
    result = plan(table(key_type="bigint", partitions=partitions, max_key=10),
                  PartitionPolicy(interval=1000, premake=1, backfill=3))
    assert names(result) == ["events_p1000"]


EPOCH_CASES = [
    pytest.param("seconds", dict(reference_time=1736000000), (1735689600, 1738368000),
                 id="an epoch in seconds given as reference is in its month"),
    pytest.param("milliseconds", dict(reference_time=1736000000123), (1735689600000, 1738368000000),
                 id="an epoch in milliseconds given as reference is in its month"),
    pytest.param("seconds", dict(), (1735689600, 1738368000), id="without a reference the server's now counts"),
    pytest.param("seconds", dict(reference_time=utc(2025, 1, 20)), (1735689600, 1738368000),
                 id="a datetime reference works on an epoch key"),
    pytest.param("seconds", dict(reference_time=1736000000, timezone="Europe/Berlin"), (1735686000, 1738364400),
                 id="epoch months follow the local midnight of the zone"),
]


@pytest.mark.parametrize("epoch, options, current", EPOCH_CASES)
def test_epoch_keys_are_partitioned_by_calendar(epoch, options, current):
    result = plan(table(key_type="bigint", max_key=5), PartitionPolicy(interval="month", epoch=epoch, premake=1,
                                                                       **options))
    assert names(result) == ["events_2025_01", "events_2025_02"]
    assert result.current == result.actions[0].bounds == RangeBounds(*current)


def test_existing_epoch_partitions_are_adopted():
    partitions = [existing("events_p20250101", "FOR VALUES FROM (1735689600) TO (1738368000)", "bigint")]
    result = plan(table(key_type="bigint", partitions=partitions),
                  PartitionPolicy(interval="month", epoch="seconds", premake=1))
    assert names(result) == ["events_2025_02"]


STATUS = {"active": [False], "completed": [True]}

LIST_CASES = [
    pytest.param([], STATUS, [("appointments_active", ("false",), (False,)),
                              ("appointments_completed", ("true",), (True,))],
                 id="each suffix becomes a partition of its values"),
    pytest.param([existing("appointments_open", "FOR VALUES IN (false)", "boolean")], STATUS,
                 [("appointments_completed", ("true",), (True,))],
                 id="an existing partition with the same values is adopted whatever its name"),
    pytest.param([existing("a_done", "FOR VALUES IN (true)", "boolean"),
                  existing("a_open", "FOR VALUES IN (false)", "boolean")], STATUS, [],
                 id="nothing is created when every value set exists"),
    pytest.param([], {"unknown": [None, "x"]}, [("appointments_unknown", (None, "x"), (None, "x"))],
                 id="NULL can be listed"),
    pytest.param([existing("appointments_misc", "FOR VALUES IN ('b', 'a')", "text")], {"misc": ["a", "b"]}, [],
                 id="the order of the values does not matter"),
]


@pytest.mark.parametrize("partitions, wanted, created", LIST_CASES)
def test_list_partitions(partitions, wanted, created):
    state = table("list", "boolean", partitions, name="appointments")
    result = plan(state, PartitionPolicy(list_partitions=wanted))
    assert [(action.name, action.bounds.values, action.values) for action in result.actions] == list(created)
    assert all(isinstance(action.bounds, ListBounds) for action in result.actions)


LIST_ERRORS = [
    pytest.param([], {"a": [1], "b": [1]}, "both", id="a value listed under two suffixes is refused"),
    pytest.param([], {"a": [1], "b": ["1"]}, "both", id="a value under two suffixes in two spellings is refused"),
    pytest.param([existing("appointments_x", "FOR VALUES IN (1, 2)", "integer")], {"a": [2, 3]},
                 "appointments_x", id="a value set that shares values with an existing partition is refused"),
    pytest.param([], {"a": []}, "non-empty", id="an empty value list is refused"),
    pytest.param([], {"a": 1}, "non-empty", id="a value that is not a list is refused"),
    pytest.param([], [["a", 1]], "mapping", id="list_partitions that is not a mapping is refused"),
]


@pytest.mark.parametrize("partitions, wanted, message", LIST_ERRORS)
def test_list_partition_errors(partitions, wanted, message):
    with pytest.raises(PlanError, match=message):
        plan(table("list", "integer", partitions, name="appointments"), PartitionPolicy(list_partitions=wanted))


HASH_CASES = [
    pytest.param([], 4, [0, 1, 2, 3], id="every remainder of the modulus is created"),
    pytest.param([existing("events_h1", "FOR VALUES WITH (modulus 4, remainder 1)", "bigint"),
                  existing("events_h3", "FOR VALUES WITH (modulus 4, remainder 3)", "bigint")], 4, [0, 2],
                 id="existing remainders are adopted whatever their names"),
    pytest.param([], 1, [0], id="a modulus of one has one partition"),
]


@pytest.mark.parametrize("partitions, modulus, remainders", HASH_CASES)
def test_hash_partitions(partitions, modulus, remainders):
    result = plan(table("hash", "bigint", partitions), PartitionPolicy(hash_modulus=modulus))
    assert [(action.name, action.bounds) for action in result.actions] == [
        ("events_hash_%d" % remainder, HashBounds(modulus, remainder)) for remainder in remainders]


def test_a_hash_set_with_another_modulus_is_refused():
    partitions = [existing("events_h0", "FOR VALUES WITH (modulus 8, remainder 0)", "bigint")]
    with pytest.raises(PlanError, match="events_h0.*modulus 8"):
        plan(table("hash", "bigint", partitions), PartitionPolicy(hash_modulus=4))


DEFAULT_CASES = [
    pytest.param(table(), PartitionPolicy(interval="month", premake=0, default_partition=True),
                 ["events_2025_01", "events_default"], id="a range table gets its default partition last"),
    pytest.param(table(partitions=[existing("events_def", "DEFAULT")]),
                 PartitionPolicy(interval="month", premake=0, default_partition=True), ["events_2025_01"],
                 id="an existing default partition is adopted whatever its name"),
    pytest.param(table("list", "text"), PartitionPolicy(list_partitions={"a": ["a"]}, default_partition=True),
                 ["events_a", "events_default"], id="a list table gets its default partition"),
    pytest.param(table(), PartitionPolicy(interval="month", premake=0), ["events_2025_01"],
                 id="no default partition unless asked"),
]


@pytest.mark.parametrize("state, policy, created", DEFAULT_CASES)
def test_default_partition(state, policy, created):
    result = plan(state, policy)
    assert names(result) == created
    assert [action.is_default for action in result.actions] == [name.endswith("default") for name in created]


REFUSED = [
    pytest.param(table(), dict(interval="month", list_partitions={"a": [1]}), "list_partitions",
                 id="a LIST option on a RANGE table is refused"),
    pytest.param(table(), dict(interval="month", hash_modulus=4), "hash_modulus",
                 id="hash_modulus on a RANGE table is refused"),
    pytest.param(table("list", "text"), dict(interval="month", list_partitions={"a": ["a"]}), "interval",
                 id="an interval on a LIST table is refused"),
    pytest.param(table("hash", "text"), dict(interval="month", hash_modulus=4), "interval",
                 id="an interval on a HASH table is refused"),
    pytest.param(table("list", "bigint"), dict(epoch="seconds", list_partitions={"a": [1]}), "epoch",
                 id="epoch on a LIST table is refused"),
    pytest.param(table("hash", "text"), dict(hash_modulus=4, default_partition=True), "default",
                 id="a default partition on a HASH table is refused"),
    pytest.param(table("hash", "text"), dict(), "hash_modulus", id="a HASH table without hash_modulus is refused"),
    pytest.param(table("hash", "text"), dict(hash_modulus=0), "hash_modulus", id="hash_modulus 0 is refused"),
    pytest.param(table(), dict(interval="month", premake=-1), "premake", id="premake below zero is refused"),
    pytest.param(table(), dict(interval="month", backfill=-1), "backfill", id="backfill below zero is refused"),
    pytest.param(table(), dict(), "interval", id="a RANGE table without interval is refused"),
    pytest.param(table(), dict(interval="fortnight"), "fortnight", id="an unknown interval on a time key is refused"),
    pytest.param(table(), dict(interval=7), "7", id="an integer step on a time key is refused"),
    pytest.param(table(key_type="bigint"), dict(interval="fortnight"), "fortnight",
                 id="an unknown interval on an integer key is refused"),
    pytest.param(table(key_type="bigint"), dict(interval=0), "positive", id="a zero step is refused"),
    pytest.param(table(key_type="bigint"), dict(interval="-5"), "positive", id="a negative step is refused"),
    pytest.param(table(key_type="bigint"), dict(interval="month"), "epoch",
                 id="a time interval on an integer key without epoch is refused"),
    pytest.param(table(key_type="bigint"), dict(interval=1000, epoch="seconds"), "epoch",
                 id="epoch with an integer step is refused"),
    pytest.param(table(key_type="bigint"), dict(interval="month", epoch="minutes"), "epoch",
                 id="an unknown epoch unit is refused"),
    pytest.param(table(), dict(interval="month", epoch="seconds"), "epoch", id="epoch on a time key is refused"),
    pytest.param(table(key_type="date"), dict(interval="hour"), "hour", id="hourly partitions of a date are refused"),
    pytest.param(table(key_type="text"), dict(interval="month"), "text", id="a text key on a RANGE table is refused"),
    pytest.param(table(), dict(interval="month", timezone="Mars/Olympus"), "Mars/Olympus",
                 id="an unknown time zone is refused"),
    pytest.param(table(), dict(interval="month", name_template="{parent}_{colour}"), "colour",
                 id="a name template with an unknown field is refused"),
    pytest.param(table(), dict(interval="month", name_template="{parent}_{lower}"), "lower",
                 id="an integer field in a time name template is refused"),
    pytest.param(table(key_type="bigint"), dict(interval=10, name_template="{parent}_{year}"), "year",
                 id="a calendar field in an integer name template is refused"),
    pytest.param(table(), dict(interval="month", name_template="{parent}_{"), "name_template",
                 id="a malformed name template is refused"),
    pytest.param(table(), dict(interval="month", name_template="{parent.upper}"), "parent.upper",
                 id="attribute access in a name template is refused"),
    pytest.param(table("list", "text"), dict(list_partitions={"a": ["a"]}, name_template="{parent}_{year}"),
                 "year", id="a calendar field in a LIST name template is refused"),
    pytest.param(table(), dict(interval="month", name_template="{parent}_x"), "events_x",
                 id="a name template that gives two partitions the same name is refused"),
    pytest.param(table("hash", "text"), dict(hash_modulus=2, name_template="{parent}"), "events",
                 id="a name template that gives hash partitions the same name is refused"),
    pytest.param(table(partitions=[existing("events_2025_02", month_bound("2024-11-01", "2024-12-01"))]),
                 dict(interval="month", premake=1), "events_2025_02",
                 id="a planned name taken by an existing partition with other bounds is refused"),
]


@pytest.mark.parametrize("state, options, message", REFUSED)
def test_refused_inputs(state, options, message):
    with pytest.raises(PlanError, match=message.replace(".", r"\.").replace("{", r"\{")):
        plan(state, PartitionPolicy(**options))


TEMPLATES = [
    pytest.param("month", "{parent}_p{year}{month}01", ["events_p20250101", "events_p20250201"],
                 id="a pg_partman style month template"),
    pytest.param("week", "{parent}_{isoyear}w{week}", ["events_2025w03", "events_2025w04"],
                 id="an ISO week template"),
    pytest.param("quarter", "q{quarter}_{year}_{parent}", ["q1_2025_events", "q2_2025_events"],
                 id="a template may put the parent last"),
    pytest.param("hour", "{parent}_{suffix}_h", ["events_2025_01_15_12_h", "events_2025_01_15_13_h"],
                 id="a template may wrap the default suffix"),
    pytest.param(100, "{parent}_from_{lower}", ["events_from_0", "events_from_100"],
                 id="an integer template uses the lower bound"),
]


@pytest.mark.parametrize("interval, template, created", TEMPLATES)
def test_name_templates(interval, template, created):
    key_type = "bigint" if isinstance(interval, int) else TSTZ
    result = plan(table(key_type=key_type), PartitionPolicy(interval=interval, premake=1, name_template=template))
    assert names(result) == created


LONG = "a" * 60

NAMES = [
    pytest.param("events", "2025_01", None, {}, "events_2025_01", id="a short name is parent underscore suffix"),
    pytest.param("e" * 55, "2025_01", None, {}, "e" * 55 + "_2025_01", id="a name of exactly 63 bytes is kept"),
    pytest.param("events", "2025_01", "{parent}_p{year}", dict(year="2025"), "events_p2025",
                 id="a template gets the fields"),
]


@pytest.mark.parametrize("parent, suffix, template, fields, name", NAMES)
def test_partition_name(parent, suffix, template, fields, name):
    assert partition_name(parent, suffix, template, fields) == name


LONG_PARENTS = [
    pytest.param(LONG + "_heart_rate", LONG + "_blood_pressure", id="two long parents sharing a 60-char prefix"),
    pytest.param("e" * 56, "e" * 57, id="a parent one byte longer than the other"),
    pytest.param("ä" * 40, "ä" * 39 + "ö", id="multibyte parents sharing a prefix"),
]


@pytest.mark.parametrize("first, second", LONG_PARENTS)
@pytest.mark.parametrize("suffix", ["2025_01", "2025_01_15_12", "2025_w03", "hash_3", "default", "pm1000"])
def test_names_over_63_bytes_keep_their_suffix_and_stay_unique(first, second, suffix):
    shortened = [partition_name(parent, suffix) for parent in (first, second)]
    assert shortened[0] != shortened[1]
    for name, parent in zip(shortened, (first, second)):
        assert len(name.encode()) <= 63
        assert name.endswith("_" + suffix)
        assert name.startswith(parent[:10])
        assert name == partition_name(parent, suffix)


def test_a_long_parent_keeps_the_name_template_shape():
    name = partition_name(LONG, "2025_01", "{parent}_p{year}{month}", dict(year="2025", month="01"))
    assert len(name.encode()) <= 63 and name.endswith("_p202501")


BACKFILL_AND_RETENTION = [
    pytest.param(dict(interval="month", backfill=28, retention="12 months"), "backfill 28 reaches past",
                 id="monthly backfill of 28 under a retention of 12 months is refused"),
    pytest.param(dict(interval="month", backfill=13, retention="12 months"), "Use backfill 12 or less",
                 id="the first month wholly before the cutoff is refused, and the message says what fits"),
    pytest.param(dict(interval="day", backfill=91, retention="90 days"), "Use backfill 90 or less",
                 id="daily backfill past 90 days is refused"),
    pytest.param(dict(interval=100, backfill=3, retention=250), "Use backfill 2 or less",
                 id="integer steps wholly below the highest key minus the retention are refused"),
    pytest.param(dict(interval="month", backfill=2, retention=90), "interval such as",
                 id="a number of key units as retention of a time key is refused"),
]


@pytest.mark.parametrize("options, message", BACKFILL_AND_RETENTION)
def test_a_backfill_that_retention_would_drop_at_once_is_refused(options, message):
    state = table(key_type="bigint", max_key=1050) if isinstance(options["interval"], int) else table()
    policy = PartitionPolicy(**dict(options, retention=parse_retention(options["retention"])))
    with pytest.raises(PlanError, match=message):
        plan(state, policy)


@pytest.mark.parametrize("options", [
    pytest.param(dict(interval="month", backfill=12, retention="12 months"),
                 id="monthly back to the month the cutoff falls in"),
    pytest.param(dict(interval="day", backfill=90, retention="90 days"), id="daily back to the cutoff's day"),
    pytest.param(dict(interval="month", backfill=0, retention="1 month"), id="no backfill at all"),
])
def test_a_backfill_within_the_retention_is_planned(options):
    policy = PartitionPolicy(**dict(options, premake=0, retention=parse_retention(options["retention"])))
    assert len(plan(table(), policy).actions) == 1 + options["backfill"]


@settings(max_examples=150, deadline=None)
@given(interval=st.sampled_from(["day", "week", "month", "quarter"]), backfill=st.integers(0, 60),
       retention=st.sampled_from(["30 days", "90 days", "6 months", "12 months", "1 year 6 months", "2 weeks"]),
       now=st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 12, 31),
                        timezones=st.just(UTC)))
def test_a_backfill_is_planned_exactly_when_retention_would_keep_every_partition_it_makes(interval, backfill,
                                                                                          retention, now):
    state = table(server_now=now)
    policy = PartitionPolicy(interval=interval, premake=0, backfill=backfill, retention=parse_retention(retention))
    try:
        actions = plan(state, policy).actions
    except PlanError as exc:
        fitting = int(re.search(r"Use backfill (\d+) or less", str(exc)).group(1))
        assert fitting < backfill
        plan(state, dataclasses.replace(policy, backfill=fitting))
        return
    created = table(server_now=now, partitions=[Partition("public", a.name, a.bounds) for a in actions])
    retention_plan = plan_retention(created, RetentionPolicy(retention=policy.retention))
    assert retention_plan.expired == ()


def test_a_suffix_too_long_for_any_name_is_refused():
    with pytest.raises(PlanError, match="63"):
        partition_name(LONG, "x" * 60)


def test_the_planner_shortens_long_parent_names():
    state = table(name=LONG + "_heart_rate")
    result = plan(state, PartitionPolicy(interval="month", premake=1, default_partition=True))
    assert [name[-8:] for name in names(result)] == ["_2025_01", "_2025_02", "_default"]
    assert all(len(name.encode()) <= 63 for name in names(result))


def test_validate_template_accepts_no_template_and_known_fields():
    validate_template(None, set())
    validate_template("{parent}_{suffix}", {"parent", "suffix"})


def test_grid_for_an_integer_epoch_key_gives_integer_bounds():
    grid = grid_for(table(key_type="bigint"), PartitionPolicy(interval="day", epoch="milliseconds"))
    assert grid.to_key(grid.floor(NOW)) == 1736899200000


# Properties: planning again after applying the plan gives nothing, whatever the reference, interval,
# key type, zone, premake and backfill; and the current partition holds the reference.
DST_CHANGES = {
    "Europe/Berlin": (utc(2025, 3, 30, 1), utc(2025, 10, 26, 1)),
    "America/New_York": (utc(2025, 3, 9, 7), utc(2025, 11, 2, 6)),
}
ZONES = ("UTC", "Asia/Kolkata") + tuple(DST_CHANGES)
KEY_KINDS = (TSTZ, TS, "date", "seconds", "milliseconds")


@st.composite
def time_plans(draw):
    """(table, policy, the reference as a key value) for a random time partitioned table."""
    interval = draw(st.sampled_from(("hour", "day", "week", "month", "quarter", "year")))
    kind = draw(st.sampled_from([kind for kind in KEY_KINDS if not (interval == "hour" and kind == "date")]))
    zone_name = draw(st.sampled_from(ZONES))
    uniform = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 1, 1),
                           timezones=st.just(UTC))
    near_change = st.builds(lambda change, minutes: change + dt.timedelta(minutes=minutes),
                            st.sampled_from(DST_CHANGES.get(zone_name, (NOW,))), st.integers(-90, 90))
    moment = draw(uniform | near_change)
    epoch = kind if kind in ("seconds", "milliseconds") else None
    state = table(key_type="bigint" if epoch else kind, server_now=moment)
    policy = PartitionPolicy(interval=interval, epoch=epoch, timezone=zone_name,
                             premake=draw(st.integers(0, 14)), backfill=draw(st.integers(0, 4)),
                             default_partition=draw(st.booleans()))
    local = moment.astimezone(grid_for(state, policy).tz).replace(tzinfo=None, fold=0)
    reference_key = {TSTZ: moment, TS: local, "date": local.date(),
                     "seconds": int(moment.timestamp()), "milliseconds": int(moment.timestamp() * 1000)}[kind]
    return state, policy, reference_key


def assert_a_consistent_range_set(partitions):
    ranges = sorted((p.bounds for p in partitions if isinstance(p.bounds, RangeBounds)), key=lambda b: b.lower)
    assert all(earlier.upper <= later.lower for earlier, later in zip(ranges, ranges[1:]))
    assert all(bounds.lower < bounds.upper for bounds in ranges)
    assert len({p.name for p in partitions}) == len(partitions)


@PROPERTY
@given(case=time_plans())
def test_property_plan_again_after_applying_the_plan_gives_nothing(case):
    state, policy = case[:2]
    result = plan(state, policy)
    assert len(result.actions) == 1 + policy.premake + policy.backfill + policy.default_partition
    after = applied(state, result)
    assert_a_consistent_range_set(after.partitions)
    assert plan(after, policy).actions == ()


@PROPERTY
@given(case=time_plans(), later=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=800)))
def test_property_a_later_run_only_adds_partitions_that_fit_the_existing_ones(case, later):
    state, policy = case[:2]
    after = applied(state, plan(state, policy))
    later_state = dataclasses.replace(after, server_now=state.server_now + later)
    result = plan(later_state, policy)
    assert len(result.actions) <= 1 + policy.premake + policy.backfill
    final = applied(later_state, result)
    assert_a_consistent_range_set(final.partitions)
    assert plan(final, policy).actions == ()


@PROPERTY
@given(case=time_plans())
def test_property_the_current_partition_holds_the_reference(case):
    state, policy, reference_key = case
    current = plan(state, policy).current
    assert current.lower <= reference_key < current.upper


@PROPERTY
@given(max_key=st.none() | st.integers(-(10**12), 10**12), step=st.integers(1, 10**6),
       premake=st.integers(0, 20), backfill=st.integers(0, 5))
def test_property_integer_plans_hold_max_key_and_are_idempotent(max_key, step, premake, backfill):
    state = table(key_type="bigint", max_key=max_key)
    policy = PartitionPolicy(interval=step, premake=premake, backfill=backfill)
    result = plan(state, policy)
    assert result.current.lower <= (max_key or 0) < result.current.upper
    after = applied(state, result)
    assert_a_consistent_range_set(after.partitions)
    assert len(after.partitions) == 1 + premake + backfill
    assert plan(after, policy).actions == ()
