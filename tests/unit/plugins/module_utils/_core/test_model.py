from __future__ import annotations

import copy
import datetime as dt
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    CreatePartition,
    HashBounds,
    MAXVALUE,
    MINVALUE,
    Partition,
    RangeBounds,
    TableName,
    TableState,
    bound_before,
    parse_table_name,
)

ACCEPTED_NAMES = [
    pytest.param("events", TableName(None, "events"), id="a bare name has no schema"),
    pytest.param("app.events", TableName("app", "events"), id="schema and name are split on the dot"),
    pytest.param("App.Raw_Ingestions", TableName("app", "raw_ingestions"), id="unquoted names fold to lower case"),
    pytest.param("_t$1", TableName(None, "_t$1"), id="underscore, dollar and digits are allowed after the first"),
    pytest.param("a" * 63, TableName(None, "a" * 63), id="a name of exactly 63 bytes is accepted"),
    pytest.param("s" * 63 + "." + "t" * 63, TableName("s" * 63, "t" * 63), id="each part may have 63 bytes"),
]


@pytest.mark.parametrize("text, expected", ACCEPTED_NAMES)
def test_parse_table_name_accepts_plain_identifiers(text, expected):
    assert parse_table_name(text) == expected


def test_table_name_prints_as_schema_dot_name():
    assert [str(TableName("app", "events")), str(TableName(None, "events"))] == ["app.events", "events"]


REFUSED_NAMES = [
    pytest.param('"events"', id="double quotes are refused"),
    pytest.param("events'", id="a single quote is refused"),
    pytest.param("events; DROP TABLE users", id="a semicolon with a second statement is refused"),
    pytest.param("events;", id="a trailing semicolon is refused"),
    pytest.param("events--", id="a line comment is refused"),
    pytest.param("events/*x*/", id="a block comment is refused"),
    pytest.param("my events", id="a space is refused"),
    pytest.param(" events", id="a leading space is refused"),
    pytest.param("events\n", id="a trailing newline is refused"),
    pytest.param("db.app.events", id="three dotted parts are refused"),
    pytest.param("", id="the empty string is refused"),
    pytest.param(".events", id="an empty schema part is refused"),
    pytest.param("app.", id="an empty name part is refused"),
    pytest.param("1events", id="a leading digit is refused"),
    pytest.param("a" * 64, id="a name of 64 bytes is refused"),
    pytest.param("s" * 64 + ".events", id="a schema of 64 bytes is refused"),
    pytest.param("événements", id="non-ASCII letters are refused"),
    pytest.param(None, id="None is refused"),
    pytest.param(["events"], id="a list is refused"),
]


@pytest.mark.parametrize("text", REFUSED_NAMES)
def test_parse_table_name_refuses_anything_but_plain_identifiers(text):
    with pytest.raises(PlanError, match="table"):
        parse_table_name(text)


PLAIN_PART = re.compile(r"[a-z_][a-z0-9_$]*")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZ_$09.;'\"- \n\t/*é"), max_size=12) | st.text(max_size=8))
def test_parse_table_name_returns_only_plain_lower_case_identifiers_or_refuses(text):
    try:
        name = parse_table_name(text)
    except PlanError:
        return
    for part in filter(None, (name.schema, name.name)):
        assert PLAIN_PART.fullmatch(part) and len(part.encode()) <= 63
    assert str(name) == text.lower()


def test_parse_table_name_names_the_option_in_its_message():
    with pytest.raises(PlanError, match="^parent "):
        parse_table_name("a;b", option="parent")


JAN = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
FEB = dt.datetime(2025, 2, 1, tzinfo=dt.timezone.utc)
MAR = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)

BOUND_ORDER = [
    pytest.param(MINVALUE, JAN, True, id="MINVALUE is before any value"),
    pytest.param(JAN, MAXVALUE, True, id="any value is before MAXVALUE"),
    pytest.param(MINVALUE, MAXVALUE, True, id="MINVALUE is before MAXVALUE"),
    pytest.param(MAXVALUE, JAN, False, id="MAXVALUE is not before a value"),
    pytest.param(JAN, MINVALUE, False, id="a value is not before MINVALUE"),
    pytest.param(MINVALUE, MINVALUE, False, id="MINVALUE is not before itself"),
    pytest.param(MAXVALUE, MAXVALUE, False, id="MAXVALUE is not before itself"),
    pytest.param(-5, 0, True, id="plain values compare as themselves"),
    pytest.param(0, 0, False, id="equal plain values are not before each other"),
]


@pytest.mark.parametrize("a, b, expected", BOUND_ORDER)
def test_bound_before(a, b, expected):
    assert bound_before(a, b) is expected


RANGE_RELATIONS = [
    pytest.param(RangeBounds(JAN, FEB), RangeBounds(JAN, FEB), True, True, id="equal ranges overlap and contain"),
    pytest.param(RangeBounds(JAN, FEB), RangeBounds(FEB, MAR), False, False,
                 id="adjacent ranges neither overlap nor contain since upper is exclusive"),
    pytest.param(RangeBounds(JAN, MAR), RangeBounds(FEB, MAR), True, True, id="a wider range contains a narrower one"),
    pytest.param(RangeBounds(FEB, MAR), RangeBounds(JAN, MAR), True, False,
                 id="a narrower range overlaps but does not contain a wider one"),
    pytest.param(RangeBounds(MINVALUE, FEB), RangeBounds(JAN, FEB), True, True,
                 id="a range from MINVALUE contains everything below its upper bound"),
    pytest.param(RangeBounds(FEB, MAXVALUE), RangeBounds(JAN, FEB), False, False,
                 id="a range to MAXVALUE starting at the other's upper bound does not overlap it"),
    pytest.param(RangeBounds(FEB, MAXVALUE), RangeBounds(JAN, MAR), True, False,
                 id="a range to MAXVALUE overlaps a range crossing its lower bound"),
    pytest.param(RangeBounds(MINVALUE, MAXVALUE), RangeBounds(-10, 10), True, True,
                 id="MINVALUE to MAXVALUE contains any range"),
    pytest.param(RangeBounds(0, 1000), RangeBounds(-1000, 0), False, False,
                 id="negative integer buckets touch but do not overlap"),
]


@pytest.mark.parametrize("outer, inner, overlaps, contains", RANGE_RELATIONS)
def test_range_bounds_overlap_and_containment(outer, inner, overlaps, contains):
    assert (outer.overlaps(inner), outer.contains(inner)) == (overlaps, contains)
    assert inner.overlaps(outer) is overlaps


@pytest.mark.parametrize("copier", [copy.deepcopy, lambda value: pickle.loads(pickle.dumps(value))],
                         ids=["a deep copy keeps the sentinels", "a pickle round trip keeps the sentinels"])
def test_unbounded_sentinels_survive_copies_as_the_same_objects(copier):
    bounds = copier(RangeBounds(MINVALUE, MAXVALUE))
    assert bounds.lower is MINVALUE and bounds.upper is MAXVALUE
    assert bounds == RangeBounds(MINVALUE, MAXVALUE)
    assert [repr(MINVALUE), repr(MAXVALUE)] == ["MINVALUE", "MAXVALUE"]


def _state(key_type, partitions=()):
    return TableState(oid=1, schema="public", name="events", strategy="range", key="k", key_type=key_type,
                      partitions=tuple(partitions))


KEY_KINDS = [
    pytest.param("date", "time", id="date is a time key"),
    pytest.param("timestamp without time zone", "time", id="timestamp is a time key"),
    pytest.param("timestamp with time zone", "time", id="timestamptz is a time key"),
    pytest.param("smallint", "integer", id="smallint is an integer key"),
    pytest.param("integer", "integer", id="integer is an integer key"),
    pytest.param("bigint", "integer", id="bigint is an integer key"),
    pytest.param("numeric", "integer", id="numeric is an integer key"),
    pytest.param("text", "other", id="text is neither"),
    pytest.param("uuid", "uuid", id="uuid is a UUIDv7 key"),
]


@pytest.mark.parametrize("key_type, kind", KEY_KINDS)
def test_key_kind(key_type, kind):
    assert _state(key_type).key_kind == kind


def test_default_partition_is_the_one_marked_default():
    monthly = Partition("public", "events_2025_01", RangeBounds(JAN, FEB))
    default = Partition("public", "events_default", None, is_default=True)
    assert _state("date", [monthly, default]).default_partition == default
    assert _state("date", [monthly]).default_partition is None


def test_a_create_action_without_bounds_is_the_default_partition():
    assert CreatePartition("public", "events_default", None).is_default
    assert not CreatePartition("public", "events_hash_0", HashBounds(4, 0)).is_default
