from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.bounds import parse_bound
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Partition, RangeBounds, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import TimeGrid
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.intervals import (
    IntegerRetention,
    TimeRetention,
    parse_retention,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.params import RetentionPolicy
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.plan import (
    detach_concurrently,
    plan_retention,
)

UTC = dt.timezone.utc
TSTZ = "timestamp with time zone"
TS = "timestamp without time zone"
NOW = dt.datetime(2025, 1, 15, 12, tzinfo=UTC)


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


def table(partitions, key_type=TSTZ, strategy="range", version=150000, **facts):
    return TableState(oid=1, schema="public", name="events", strategy=strategy, key="at", key_type=key_type,
                      partitions=tuple(partitions), server_now=NOW, server_version_num=version, **facts)


def part(name, expression, key_type=TSTZ, **flags):
    bounds = parse_bound(expression, key_type)
    return Partition("public", name, bounds, is_default=bounds is None, **flags)


def month(year, month_number, key_type=TSTZ, **flags):
    following = (year + month_number // 12, month_number % 12 + 1)
    suffix = " 00:00:00+00" if key_type == TSTZ else ""
    return part("events_%04d_%02d" % (year, month_number),
                "FOR VALUES FROM ('%04d-%02d-01%s') TO ('%04d-%02d-01%s')"
                % (year, month_number, suffix, following[0], following[1], suffix), key_type, **flags)


def monthly(first_year, first_month, count, key_type=TSTZ):
    index = first_year * 12 + first_month - 1
    return [month((index + i) // 12, (index + i) % 12 + 1, key_type) for i in range(count)]


def names(partitions):
    return [p.name for p in partitions]


RETENTIONS = [
    pytest.param("24 months", TimeRetention(24, 0, 0, "24 months"), id="months"),
    pytest.param("90 days", TimeRetention(0, 90, 0, "90 days"), id="days"),
    pytest.param("1 year", TimeRetention(12, 0, 0, "1 year"), id="a year is twelve months"),
    pytest.param(" 1  Year,  6 mons ", TimeRetention(18, 0, 0, "1 year, 6 mons"), id="several units, any case"),
    pytest.param("2 weeks 12 hours", TimeRetention(0, 14, 43200, "2 weeks 12 hours"), id="weeks and hours"),
    pytest.param("1 year 0 months", TimeRetention(12, 0, 0, "1 year 0 months"), id="a zero term beside others"),
    pytest.param(3000, IntegerRetention(3000), id="an integer"),
    pytest.param("3000", IntegerRetention(3000), id="an integer as text"),
]


@pytest.mark.parametrize("given_value, parsed", RETENTIONS)
def test_retention_is_read_as_an_interval_or_an_integer(given_value, parsed):
    assert parse_retention(given_value) == parsed


REFUSED = [
    pytest.param(0, "more than 0", id="zero"),
    pytest.param("0", "more than 0", id="zero as text"),
    pytest.param("0 days", "more than 0", id="an interval of nothing"),
    pytest.param(-5, "more than 0", id="a negative integer"),
    pytest.param("-1 month", "not an interval", id="a negative interval"),
    pytest.param("1.5 months", "not an interval", id="a fraction"),
    pytest.param("P1M", "not an interval", id="ISO 8601 durations"),
    pytest.param("banana", "not an interval", id="a word"),
    pytest.param("3 fortnights", "unknown unit", id="an unknown unit"),
    pytest.param("1 month 2 months", "twice", id="a unit twice"),
    pytest.param("1 month'; DROP TABLE x; --", "not an interval", id="SQL"),
    pytest.param("", "neither", id="empty"),
    pytest.param(None, "neither", id="missing"),
    pytest.param(True, "neither", id="a boolean"),
    pytest.param(1.5, "neither", id="a float"),
]


@pytest.mark.parametrize("given_value, message", REFUSED)
def test_bad_retention_is_refused(given_value, message):
    with pytest.raises(PlanError, match=message):
        parse_retention(given_value)


CUTOFFS = [
    pytest.param(utc(2025, 1, 15), "24 months", utc(2023, 1, 15), id="months keep the day"),
    pytest.param(utc(2024, 3, 31, 8), "1 month", utc(2024, 2, 29, 8), id="a month back from March 31 is Feb 29"),
    pytest.param(utc(2025, 3, 31), "1 month", utc(2025, 2, 28), id="and Feb 28 outside leap years"),
    pytest.param(utc(2024, 2, 29), "1 year", utc(2023, 2, 28), id="a year back from Feb 29"),
    pytest.param(utc(2025, 3, 31), "1 month 1 day", utc(2025, 2, 27), id="months first, then days"),
    pytest.param(utc(2025, 1, 1, 1), "2 hours", utc(2024, 12, 31, 23), id="hours across a year end"),
    pytest.param(dt.datetime(2025, 1, 15), "90 days", dt.datetime(2024, 10, 17), id="naive timestamps"),
]


@pytest.mark.parametrize("reference, retention, cutoff", CUTOFFS)
def test_cutoff_is_subtracted_like_postgresql_does(reference, retention, cutoff):
    assert parse_retention(retention).before(reference) == cutoff


def policy(retention="24 months", **options):
    return RetentionPolicy(retention=parse_retention(retention), **options)


def test_only_partitions_wholly_before_the_cutoff_expire():
    state = table(monthly(2022, 1, 37))
    result = plan_retention(state, policy(reference_time=dt.date(2025, 1, 15)))
    assert result.cutoff == utc(2023, 1, 15)
    assert names(result.expired) == names(monthly(2022, 1, 12))
    assert "events_2023_01" in names(result.kept), "straddles the cutoff"
    assert len(result.kept) == 25 and result.concurrent is True


def test_the_server_clock_is_the_default_reference():
    result = plan_retention(table(monthly(2022, 1, 37)), policy())
    assert result.reference == NOW and result.cutoff == utc(2023, 1, 15, 12)


def test_a_partition_ending_exactly_at_the_cutoff_expires():
    result = plan_retention(table(monthly(2022, 1, 37)), policy(reference_time=dt.datetime(2025, 1, 1)))
    assert names(result.expired)[-1] == "events_2022_12"


NEVER_EXPIRED = [
    pytest.param(part("events_default", "DEFAULT"), id="the default partition"),
    pytest.param(part("events_rest", "FOR VALUES FROM ('2024-01-01 00:00:00+00') TO (MAXVALUE)"), id="up to MAXVALUE"),
    pytest.param(month(2025, 1), id="the one holding the reference"),
]


@pytest.mark.parametrize("partition", NEVER_EXPIRED)
def test_some_partitions_never_expire(partition):
    result = plan_retention(table([partition]), policy("1 day"))
    assert result.expired == () and partition in result.kept


def test_a_sub_partitioned_partition_past_the_cutoff_expires_whole():
    old = month(2020, 1, is_partitioned=True)
    assert plan_retention(table([old]), policy()).expired == (old,)


def test_from_minvalue_expires_when_its_upper_bound_is_past():
    old = part("events_old", "FOR VALUES FROM (MINVALUE) TO ('2020-01-01 00:00:00+00')")
    result = plan_retention(table([month(2020, 1), old]), policy())
    assert names(result.expired) == ["events_old", "events_2020_01"]


def test_a_pending_detach_is_finished_and_still_expires():
    pending_old = month(2020, 1, detach_pending=True)
    pending_new = month(2025, 1, detach_pending=True)
    result = plan_retention(table([pending_old, pending_new, month(2025, 2)]), policy())
    assert result.pending == (pending_old, pending_new)
    assert names(result.expired) == ["events_2020_01"] and names(result.kept) == ["events_2025_02"]


@pytest.mark.parametrize("key_type", ["date", TS])
def test_date_and_timestamp_keys_compare_on_naive_utc(key_type):
    five_hours_east = dt.timezone(dt.timedelta(hours=5))
    result = plan_retention(table(monthly(2022, 1, 37, key_type), key_type=key_type),
                            policy(reference_time=dt.datetime(2025, 1, 15, 3, tzinfo=five_hours_east)))
    assert result.reference == dt.datetime(2025, 1, 14, 22)
    assert names(result.expired) == names(monthly(2022, 1, 12, key_type))


def integer_table(max_key):
    partitions = [part("orders_p%d" % low, "FOR VALUES FROM ('%d') TO ('%d')" % (low, low + 1000), "bigint")
                  for low in range(0, 10000, 1000)]
    return table(partitions, key_type="bigint", max_key=max_key)


INTEGER_CASES = [
    pytest.param(9500, None, 3000, ["orders_p%d" % low for low in range(0, 6000, 1000)], id="below the highest key"),
    pytest.param(9500, 5000, 3000, ["orders_p0", "orders_p1000"], id="below reference_time"),
    pytest.param(None, None, 1, [], id="an empty table has no reference"),
]


@pytest.mark.parametrize("max_key, reference, distance, expired", INTEGER_CASES)
def test_integer_keys(max_key, reference, distance, expired):
    result = plan_retention(integer_table(max_key), policy(distance, reference_time=reference))
    assert names(result.expired) == expired


MISFITS = [
    pytest.param(table([]), policy("30"), "must be an interval", id="a bare number for a time key"),
    pytest.param(table([]), policy(reference_time=5), "must be a date", id="an integer reference for a time key"),
    pytest.param(integer_table(10), policy("30 days"), "positive integer distance", id="an interval for integers"),
    pytest.param(integer_table(10), policy("5", reference_time=dt.date(2025, 1, 1)), "must be an integer",
                 id="a date reference for integers"),
    pytest.param(table([], strategy="list"), policy(), "RANGE partitioned tables only", id="a LIST table"),
    pytest.param(table([], strategy="hash"), policy(), "RANGE partitioned tables only", id="a HASH table"),
    pytest.param(table([], key_type="text"), policy(), "the key at is text", id="a text key"),
]


@pytest.mark.parametrize("state, given_policy, message", MISFITS)
def test_retention_that_does_not_fit_the_table_is_refused(state, given_policy, message):
    with pytest.raises(PlanError, match=message):
        plan_retention(state, given_policy)


CONCURRENCY = [
    pytest.param("auto", 150000, False, True, id="auto on 15 without default"),
    pytest.param("auto", 150000, True, False, id="auto with a default partition"),
    pytest.param("auto", 130000, False, False, id="auto on 13"),
    pytest.param("never", 180000, False, False, id="never"),
    pytest.param("always", 180000, False, True, id="always where possible"),
]


@pytest.mark.parametrize("mode, version, with_default, expected", CONCURRENCY)
def test_when_to_detach_concurrently(mode, version, with_default, expected):
    partitions = [part("events_default", "DEFAULT")] if with_default else []
    assert detach_concurrently(table(partitions, version=version), mode) is expected


@pytest.mark.parametrize("version, with_default, reason", [(150000, True, "default partition"),
                                                           (130000, False, "older than PostgreSQL 14")])
def test_always_fails_where_concurrent_detach_is_impossible(version, with_default, reason):
    partitions = [part("events_default", "DEFAULT")] if with_default else []
    with pytest.raises(PlanError, match=reason):
        detach_concurrently(table(partitions, version=version), "always")


CENTURY = table(monthly(1998, 1, 12 * 103))


@settings(max_examples=200, deadline=None)
@given(reference=st.datetimes(min_value=dt.datetime(2001, 1, 1), max_value=dt.datetime(2099, 1, 1)),
       months=st.integers(0, 60), days=st.integers(0, 400))
def test_nothing_at_or_after_the_cutoff_ever_expires(reference, months, days):
    reference = reference.replace(tzinfo=UTC)
    retention = "%d months %d days" % (months, days + 1)
    result = plan_retention(CENTURY, policy(retention, reference_time=reference))
    assert result.cutoff < reference
    assert all(p.bounds.upper <= result.cutoff for p in result.expired)
    assert all(p.bounds.upper > result.cutoff for p in result.kept)
    assert not any(p.bounds.lower <= reference < p.bounds.upper for p in result.expired)


def test_uuid7_partitions_expire_by_the_time_their_bounds_encode():
    grid = TimeGrid("month", "uuid")
    start = grid.floor(dt.datetime(2024, 1, 15, tzinfo=dt.timezone.utc))
    partitions = [Partition("public", "events_%d" % n, RangeBounds(grid.to_key(grid.shift(start, n)),
                                                                   grid.to_key(grid.shift(start, n + 1))))
                  for n in range(12)]
    state = TableState(oid=1, schema="public", name="events", strategy="range", key="id", key_type="uuid",
                       partitions=tuple(partitions), server_now=dt.datetime(2024, 12, 20, tzinfo=dt.timezone.utc))
    assert [p.name for p in plan_retention(state, policy("6 months")).expired] == [
        "events_%d" % n for n in range(5)]
