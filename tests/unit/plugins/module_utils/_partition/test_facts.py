from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.plan import BrinIndex
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.facts import (
    Gap,
    Runway,
    find_gaps,
    interval_iso,
    interval_text,
    measure_runway,
    reference_for,
    runway_facts,
    table_facts,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    HashBounds,
    ListBounds,
    MAXVALUE,
    MINVALUE,
    Partition,
    RangeBounds,
    TableState,
)

UTC = dt.timezone.utc


def month(year, number):
    return dt.datetime(year, number, 1, tzinfo=UTC)


def months(*starts, parent="events"):
    """Monthly timestamptz partitions starting at the given (year, month) pairs, listed in a scrambled order."""
    partitions = [
        Partition("public", "%s_%d_%02d" % (parent, year, number),
                  RangeBounds(month(year, number), month(year + number // 12, number % 12 + 1)))
        for year, number in starts
    ]
    return tuple(reversed(partitions))


def steps(*lowers, step=100):
    return tuple(Partition("public", "ids_p%d" % lower, RangeBounds(lower, lower + step)) for lower in lowers)


DEFAULT = Partition("public", "events_default", None, is_default=True)
OPEN_ENDS = (Partition("public", "low", RangeBounds(MINVALUE, 0)),
             Partition("public", "high", RangeBounds(100, MAXVALUE)))
UNBOUNDED_TAIL = steps(0) + (Partition("public", "ids_rest", RangeBounds(100, MAXVALUE)),)
DATE_MONTHS = (Partition("public", "d_2025_01", RangeBounds(dt.date(2025, 1, 1), dt.date(2025, 2, 1))),
               Partition("public", "d_2025_02", RangeBounds(dt.date(2025, 2, 1), dt.date(2025, 3, 1))))
JAN_TO_JUN = months((2025, 1), (2025, 2), (2025, 3), (2025, 4), (2025, 5), (2025, 6))
WITHOUT_MARCH = months((2025, 1), (2025, 2), (2025, 4), (2025, 5))
MID_JANUARY = dt.datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

GAP_CASES = [
    pytest.param(JAN_TO_JUN, [], id="contiguous months have no gap"),
    pytest.param(WITHOUT_MARCH, [Gap(month(2025, 3), month(2025, 4), "events_2025_02", "events_2025_04")],
                 id="a missing month is a gap between its neighbours"),
    pytest.param(months((2025, 1), (2025, 4), (2025, 6)),
                 [Gap(month(2025, 2), month(2025, 4), "events_2025_01", "events_2025_04"),
                  Gap(month(2025, 5), month(2025, 6), "events_2025_04", "events_2025_06")],
                 id="several gaps come in key order and a gap may span months"),
    pytest.param(WITHOUT_MARCH + (DEFAULT,), [Gap(month(2025, 3), month(2025, 4), "events_2025_02", "events_2025_04")],
                 id="the default partition neither fills nor makes a gap"),
    pytest.param(steps(0, 100, 300), [Gap(200, 300, "ids_p100", "ids_p300")], id="integer keys have gaps too"),
    pytest.param(OPEN_ENDS, [Gap(0, 100, "low", "high")], id="MINVALUE and MAXVALUE ends are open ends, not gaps"),
    pytest.param((Partition("public", "a", ListBounds(("x",))), Partition("public", "b", ListBounds(("y",)))), [],
                 id="a LIST set has no gaps"),
    pytest.param((), [], id="an empty set has no gaps"),
]


@pytest.mark.parametrize("partitions, expected", GAP_CASES)
def test_find_gaps(partitions, expected):
    assert find_gaps(partitions) == expected


RUNWAY_CASES = [
    pytest.param(JAN_TO_JUN, MID_JANUARY,
                 Runway("events_2025_01", 5, month(2025, 7), month(2025, 7) - MID_JANUARY),
                 id="five months follow the one holding the reference"),
    pytest.param(months((2025, 1), (2025, 2), (2025, 3), (2025, 4)), month(2025, 1),
                 Runway("events_2025_01", 3, month(2025, 5), dt.timedelta(days=120)),
                 id="three partitions ahead from the first instant of the current one"),
    pytest.param(WITHOUT_MARCH, MID_JANUARY,
                 Runway("events_2025_01", 1, month(2025, 3), month(2025, 3) - MID_JANUARY),
                 id="runway stops at the first gap"),
    pytest.param(WITHOUT_MARCH, dt.datetime(2025, 3, 10, tzinfo=UTC), Runway(None, 0, None, dt.timedelta(0)),
                 id="a reference in a gap has no runway"),
    pytest.param(JAN_TO_JUN + (DEFAULT,), dt.datetime(2026, 1, 1, tzinfo=UTC), Runway(None, 0, None, dt.timedelta(0)),
                 id="a reference past the last partition has no runway even with a default partition"),
    pytest.param(months((2025, 6)), dt.datetime(2025, 6, 30, 23, tzinfo=UTC),
                 Runway("events_2025_06", 0, month(2025, 7), dt.timedelta(hours=1)),
                 id="only the current partition leaves the rest of it as runway"),
    pytest.param(steps(0, 100, 200, 300), 150, Runway("ids_p100", 2, 400, 250),
                 id="integer keys count in key units"),
    pytest.param(steps(0, 100), 100, Runway("ids_p100", 0, 200, 100),
                 id="an upper bound is exclusive, so the reference on it belongs to the next partition"),
    pytest.param(UNBOUNDED_TAIL, 5, Runway("ids_p0", 1, MAXVALUE, None),
                 id="a MAXVALUE partition makes the runway unbounded"),
    pytest.param(DATE_MONTHS, MID_JANUARY, Runway("d_2025_01", 1, dt.date(2025, 3, 1), month(2025, 3) - MID_JANUARY),
                 id="date bounds are midnights in UTC"),
    pytest.param((Partition("public", "n_low", RangeBounds(Decimal("0.5"), Decimal("1.5"))),),
                 Decimal("1"), Runway("n_low", 0, Decimal("1.5"), Decimal("0.5")), id="numeric bounds stay exact"),
]


@pytest.mark.parametrize("partitions, reference, expected", RUNWAY_CASES)
def test_measure_runway(partitions, reference, expected):
    assert measure_runway(partitions, reference) == expected


TEXT_CASES = [
    pytest.param(dt.timedelta(days=334), "334 days", "P334D", id="whole days"),
    pytest.param(dt.timedelta(days=1, hours=5, minutes=30), "1 day 05:30:00", "P1DT5H30M", id="a day and a time"),
    pytest.param(dt.timedelta(minutes=20, seconds=1, microseconds=900000), "00:20:01", "PT20M1S",
                 id="less than a day, fractions of a second dropped"),
    pytest.param(dt.timedelta(0), "00:00:00", "PT0S", id="nothing"),
]


@pytest.mark.parametrize("delta, text, iso", TEXT_CASES)
def test_interval_text_and_iso(delta, text, iso):
    assert (interval_text(delta), interval_iso(delta)) == (text, iso)


FACT_CASES = [
    pytest.param(Runway("events_2025_01", 3, month(2025, 5), dt.timedelta(days=100, seconds=1, microseconds=5)),
                 dict(current="events_2025_01", partitions=3, until="2025-05-01T00:00:00+00:00",
                      interval=8640001.000005, text="100 days 00:00:01", iso="P100DT1S"),
                 id="time keys give seconds, PostgreSQL-style text and ISO 8601"),
    pytest.param(Runway("ids_p100", 2, 400, 250),
                 dict(current="ids_p100", partitions=2, until=400, interval=250, text="250", iso=None),
                 id="integer keys give a number"),
    pytest.param(Runway("ids_low", 1, MAXVALUE, None),
                 dict(current="ids_low", partitions=1, until="MAXVALUE", interval=None, text="unbounded", iso=None),
                 id="an unbounded runway has no interval"),
    pytest.param(Runway(None, 0, None, dt.timedelta(0)),
                 dict(current=None, partitions=0, until=None, interval=0, text="00:00:00", iso="PT0S"),
                 id="no current partition is a zero runway"),
]


@pytest.mark.parametrize("runway, expected", FACT_CASES)
def test_runway_facts(runway, expected):
    assert runway_facts(runway) == expected


def state(strategy="range", key_type="timestamp with time zone", partitions=JAN_TO_JUN, max_key=None):
    return TableState(oid=1, schema="public", name="events", strategy=strategy, key="created_at", key_type=key_type,
                      partitions=partitions, server_now=MID_JANUARY, max_key=max_key)


REFERENCE_CASES = [
    pytest.param(state(), None, MID_JANUARY, id="time keys default to the server's now"),
    pytest.param(state(), dt.date(2025, 3, 2), dt.datetime(2025, 3, 2, tzinfo=UTC), id="a date is its UTC midnight"),
    pytest.param(state(), dt.datetime(2025, 3, 2, 10), dt.datetime(2025, 3, 2, 10, tzinfo=UTC),
                 id="a naive date-time is UTC"),
    pytest.param(state(), dt.datetime(2025, 3, 2, 10, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                 dt.datetime(2025, 3, 2, 8, tzinfo=UTC), id="an offset is honoured"),
    pytest.param(state(key_type="bigint", max_key=4711), None, 4711, id="integer keys default to max(key)"),
    pytest.param(state(key_type="bigint"), None, 0, id="an empty integer-keyed table is measured from 0"),
    pytest.param(state(key_type="integer", max_key=4711), 20, 20, id="an integer reference_time wins"),
    pytest.param(state(strategy="list", partitions=()), dt.date(2025, 1, 1), None, id="LIST sets have no reference"),
    pytest.param(state(strategy="hash", key_type="bigint", partitions=()), 5, None, id="HASH sets have no reference"),
    pytest.param(state(key_type="text"), None, None, id="a text RANGE key has no runway"),
]


@pytest.mark.parametrize("table, reference_time, expected", REFERENCE_CASES)
def test_reference_for(table, reference_time, expected):
    assert reference_for(table, reference_time) == expected


@pytest.mark.parametrize("table, reference_time", [
    pytest.param(state(), 20, id="an integer for a time key"),
    pytest.param(state(key_type="bigint"), dt.date(2025, 1, 1), id="a date for an integer key"),
])
def test_reference_that_does_not_fit_the_key_is_refused_naming_the_table(table, reference_time):
    with pytest.raises(PlanError, match=r"public\.events: reference_time .* does not fit the"):
        reference_for(table, reference_time)


def test_table_facts_are_json_ready_and_complete():
    partitions = WITHOUT_MARCH + (Partition("public", "events_default", None, is_default=True, size_bytes=8192,
                                            rows_estimate=3),)
    brin = BrinIndex(index_schema="public", index_name="events_brin", table_schema="public", table_name="events",
                     index_regclass="public.events_brin", table_regclass="public.events", table_oid=1, root_oid=1,
                     bound_path=(), heap_blocks=0, pages_per_range=32, autosummarize=True, on_leaf=False)
    facts = table_facts(state(partitions=partitions), MID_JANUARY, 7, [brin])
    assert json.loads(json.dumps(facts)) == facts
    assert [p["name"] for p in facts["partitions"]] == [
        "events_2025_01", "events_2025_02", "events_2025_04", "events_2025_05", "events_default"]
    assert facts["partitions"][-1] == dict(name="events_default", schema="public", is_default=True, size_bytes=8192,
                                           rows_estimate=3)
    assert facts["partitions"][0]["lower"] == "2025-01-01T00:00:00+00:00"
    assert facts["gaps"] == [dict(lower="2025-03-01T00:00:00+00:00", upper="2025-04-01T00:00:00+00:00",
                                  after="events_2025_02", before="events_2025_04")]
    assert facts["runway"]["partitions"] == 1 and facts["runway"]["current"] == "events_2025_01"
    assert facts["reference"] == "2025-01-15T12:00:00+00:00"
    assert facts["default_rows"] == 7
    assert facts["brin_indexes"] == [dict(schema="public", name="events_brin", table="events", level=0,
                                          autosummarize=True, pages_per_range=32)]


def test_list_and_hash_sets_have_no_runway_or_gaps():
    hashed = tuple(Partition("public", "h_%d" % r, HashBounds(2, r)) for r in (1, 0))
    facts = table_facts(state(strategy="hash", key_type="bigint", partitions=hashed), None, None, [])
    assert (facts["runway"], facts["gaps"], facts["reference"], facts["default_rows"]) == (None, [], None, None)
    assert [(p["name"], p["modulus"], p["remainder"]) for p in facts["partitions"]] == [("h_0", 2, 0), ("h_1", 2, 1)]
