from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pgfleet.partitions.plugins.module_utils._core import bounds
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.bounds import canonical_list_value, parse_bound
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import CatalogError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    HashBounds,
    ListBounds,
    MAXVALUE,
    MINVALUE,
    RangeBounds,
)

UTC = dt.timezone.utc
TSTZ = "timestamp with time zone"
TS = "timestamp without time zone"


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


PARSED = [
    pytest.param("FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2025-02-01 00:00:00+00')", TSTZ,
                 RangeBounds(utc(2025, 1, 1), utc(2025, 2, 1)), id="a timestamptz month in UTC"),
    pytest.param("FOR VALUES FROM ('2025-01-01 00:00:00.5+00') TO ('2025-01-01 00:00:01.123456+00')", TSTZ,
                 RangeBounds(utc(2025, 1, 1, 0, 0, 0, 500000), utc(2025, 1, 1, 0, 0, 1, 123456)),
                 id="fractional seconds trimmed by PostgreSQL are read as microseconds"),
    pytest.param("FOR VALUES FROM ('2025-01-01 00:00:00+01') TO ('2025-02-01 00:00:00+01')", TSTZ,
                 RangeBounds(utc(2024, 12, 31, 23), utc(2025, 1, 31, 23)),
                 id="a positive offset is converted to UTC"),
    pytest.param("FOR VALUES FROM ('2025-03-01 00:00:00-05') TO ('2025-04-01 00:00:00-04')", TSTZ,
                 RangeBounds(utc(2025, 3, 1, 5), utc(2025, 4, 1, 4)),
                 id="negative offsets that differ across DST are converted to UTC"),
    pytest.param("FOR VALUES FROM ('2025-01-01 00:00:00+05:30') TO ('2025-01-02 00:00:00+05:45')", TSTZ,
                 RangeBounds(utc(2024, 12, 31, 18, 30), utc(2025, 1, 1, 18, 15)),
                 id="offsets with minutes are converted to UTC"),
    pytest.param("FOR VALUES FROM ('1890-01-01 00:00:00+00:53:28') TO ('1900-01-01 00:00:00+00:53:28')", TSTZ,
                 RangeBounds(utc(1889, 12, 31, 23, 6, 32), utc(1899, 12, 31, 23, 6, 32)),
                 id="local mean time offsets with seconds are converted to UTC"),
    pytest.param("FOR VALUES FROM (MINVALUE) TO ('2025-01-01 00:00:00+00')", TSTZ,
                 RangeBounds(MINVALUE, utc(2025, 1, 1)), id="MINVALUE is the lower sentinel"),
    pytest.param("FOR VALUES FROM ('2025-01-01 00:00:00+00') TO (MAXVALUE)", TSTZ,
                 RangeBounds(utc(2025, 1, 1), MAXVALUE), id="MAXVALUE is the upper sentinel"),
    pytest.param("FOR VALUES FROM ('-infinity') TO ('infinity')", TSTZ, RangeBounds(MINVALUE, MAXVALUE),
                 id="minus and plus infinity read as unbounded"),
    pytest.param("FOR VALUES FROM ('2025-01-01') TO ('2025-02-01')", "date",
                 RangeBounds(dt.date(2025, 1, 1), dt.date(2025, 2, 1)), id="date bounds are dates"),
    pytest.param("FOR VALUES FROM ('2025-01-01 00:00:00') TO ('2025-02-01 00:00:00')", TS,
                 RangeBounds(dt.datetime(2025, 1, 1), dt.datetime(2025, 2, 1)),
                 id="timestamp bounds are naive datetimes"),
    pytest.param("FOR VALUES FROM ('2025-01-01 00:00:00.25') TO (MAXVALUE)", TS,
                 RangeBounds(dt.datetime(2025, 1, 1, 0, 0, 0, 250000), MAXVALUE),
                 id="naive timestamps keep their fractional seconds"),
    pytest.param("FOR VALUES FROM (0) TO (1000)", "bigint", RangeBounds(0, 1000), id="integer bounds are ints"),
    pytest.param("FOR VALUES FROM ('-5') TO (0)", "integer", RangeBounds(-5, 0),
                 id="a negative integer bound is quoted by PostgreSQL"),
    pytest.param("FOR VALUES FROM ('-1000') TO ('-500')", "smallint", RangeBounds(-1000, -500),
                 id="both bounds may be negative"),
    pytest.param("FOR VALUES FROM (MINVALUE) TO (0)", "bigint", RangeBounds(MINVALUE, 0),
                 id="an integer range can start at MINVALUE"),
    pytest.param("FOR VALUES FROM (0.5) TO (10.25)", "numeric", RangeBounds(Decimal("0.5"), Decimal("10.25")),
                 id="numeric bounds with fractions are Decimals"),
    pytest.param("FOR VALUES FROM (10.0) TO (20)", "numeric", RangeBounds(10, 20),
                 id="numeric bounds without a fraction compare as ints"),
    pytest.param("FOR VALUES FROM (1735689600000) TO (1738368000000)", "bigint",
                 RangeBounds(1735689600000, 1738368000000), id="epoch millisecond bounds are ints"),
    pytest.param("FOR VALUES IN (false)", "boolean", ListBounds(("false",)), id="a boolean list value"),
    pytest.param("FOR VALUES IN (true, false)", "boolean", ListBounds(("true", "false")),
                 id="several boolean list values keep their order"),
    pytest.param("FOR VALUES IN ('a', 'it''s')", "text", ListBounds(("a", "it's")),
                 id="doubled quotes inside a text value are one quote"),
    pytest.param("FOR VALUES IN ('a, b', '(x)')", "text", ListBounds(("a, b", "(x)")),
                 id="commas and parentheses inside quotes belong to the value"),
    pytest.param("FOR VALUES IN (NULL, 'x')", "text", ListBounds((None, "x")), id="NULL is None"),
    pytest.param("FOR VALUES IN ('NULL')", "text", ListBounds(("NULL",)), id="the quoted text NULL is not NULL"),
    pytest.param("FOR VALUES IN ('')", "text", ListBounds(("",)), id="the empty string is a value"),
    pytest.param("FOR VALUES IN (1, '-2', 3)", "integer", ListBounds(("1", "-2", "3")),
                 id="integer list values are their text"),
    pytest.param("FOR VALUES WITH (modulus 4, remainder 3)", "bigint", HashBounds(4, 3), id="a hash bound"),
    pytest.param("FOR VALUES WITH (MODULUS 8, REMAINDER 0)", "text", HashBounds(8, 0),
                 id="hash keywords are read in any case"),
    pytest.param("DEFAULT", "date", None, id="the default partition has no bounds"),
    pytest.param("  DEFAULT\n", "date", None, id="surrounding white space is ignored"),
]


@pytest.mark.parametrize("expression, key_type, bounds", PARSED)
def test_parse_bound(expression, key_type, bounds):
    parsed = parse_bound(expression, key_type)
    assert parsed == bounds
    if isinstance(bounds, RangeBounds):
        assert [type(value) for value in (parsed.lower, parsed.upper)] == [
            type(value) for value in (bounds.lower, bounds.upper)]


def test_timestamptz_bounds_are_utc_so_they_compare_with_planned_ones():
    bounds = parse_bound("FOR VALUES FROM ('2025-01-01 00:00:00+01') TO ('2025-02-01 00:00:00+01')", TSTZ)
    assert bounds.lower.utcoffset() == dt.timedelta(0)


GARBAGE = [
    pytest.param("", "date", id="an empty expression"),
    pytest.param("nonsense", "date", id="a word that is no bound"),
    pytest.param("FOR VALUES", "date", id="a bound with no kind"),
    pytest.param("FOR VALUES FROM", "date", id="a range with no values"),
    pytest.param("FOR VALUES FROM (0)", "integer", id="a range with a lower bound only"),
    pytest.param("FOR VALUES FROM (0, 0) TO (1, 1)", "integer", id="a multi-column range"),
    pytest.param("FOR VALUES FROM ('2025-01-01) TO ('2025-02-01')", "date", id="an unterminated quote"),
    pytest.param("FOR VALUES FROM ('yesterday') TO ('today')", "date", id="dates that are words"),
    pytest.param("FOR VALUES FROM ('2025-02-30') TO ('2025-03-01')", "date", id="a day that does not exist"),
    pytest.param("FOR VALUES FROM ('2025-01-01 00:00:00') TO ('2025-02-01 00:00:00')", TSTZ,
                 id="timestamptz bounds without an offset"),
    pytest.param("FOR VALUES FROM ('abc') TO (10)", "integer", id="an integer bound that is not a number"),
    pytest.param("FOR VALUES FROM (1e) TO (10)", "numeric", id="a malformed number"),
    pytest.param("FOR VALUES IN", "text", id="a list with no values"),
    pytest.param("FOR VALUES IN (", "text", id="a list that is never closed"),
    pytest.param("FOR VALUES WITH (modulus 4)", "integer", id="a hash bound without a remainder"),
    pytest.param("FOR VALUES WITH (modulus four, remainder 1)", "integer", id="a hash modulus that is a word"),
    pytest.param("FOR VALUES WITH", "integer", id="a hash bound with no values"),
]


@pytest.mark.parametrize("expression, key_type", GARBAGE)
def test_garbage_is_a_catalog_error(expression, key_type):
    with pytest.raises(CatalogError):
        parse_bound(expression, key_type)


CANONICAL = [
    pytest.param(False, "false", id="false prints as false"),
    pytest.param(True, "true", id="true prints as true"),
    pytest.param(None, None, id="None stays None for NULL"),
    pytest.param(7, "7", id="an int prints as itself"),
    pytest.param(-2, "-2", id="a negative int keeps its sign"),
    pytest.param("it's", "it's", id="text is itself"),
    pytest.param(dt.date(2025, 1, 1), "2025-01-01", id="a date prints in ISO form"),
]


@pytest.mark.parametrize("value, text", CANONICAL)
def test_canonical_list_value(value, text):
    assert canonical_list_value(value) == text


@pytest.mark.parametrize("value, key_type, expression", [
    pytest.param(False, "boolean", "FOR VALUES IN (false)", id="a YAML false matches the printed false"),
    pytest.param(None, "text", "FOR VALUES IN (NULL)", id="a YAML null matches the printed NULL"),
    pytest.param(-2, "integer", "FOR VALUES IN ('-2')", id="a negative int matches its quoted print"),
    pytest.param("it's", "text", "FOR VALUES IN ('it''s')", id="a quote in text matches its doubled print"),
])
def test_canonical_values_match_what_the_catalog_prints(value, key_type, expression):
    assert parse_bound(expression, key_type).values == (canonical_list_value(value),)


PROPERTY = settings(max_examples=200, deadline=None)


def pg_text(moment, offset):
    """A timestamptz as PostgreSQL prints it: trailing zeros of the fraction trimmed, offset as +HH[:MM[:SS]]."""
    local = moment.astimezone(dt.timezone(offset))
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if local.microsecond:
        text += ("." + "%06d" % local.microsecond).rstrip("0")
    seconds = int(offset.total_seconds())
    sign, seconds = ("-" if seconds < 0 else "+"), abs(seconds)
    text += "%s%02d" % (sign, seconds // 3600)
    if seconds % 3600:
        text += ":%02d" % (seconds % 3600 // 60)
        if seconds % 60:
            text += ":%02d" % (seconds % 60)
    return text


moments = st.datetimes(min_value=dt.datetime(1800, 1, 2), max_value=dt.datetime(9998, 12, 30),
                       timezones=st.just(UTC))
offsets = st.integers(-15 * 3600, 15 * 3600).map(lambda seconds: dt.timedelta(seconds=seconds))


@PROPERTY
@given(lower=moments, upper=moments, lower_offset=offsets, upper_offset=offsets)
def test_property_timestamptz_bounds_read_back_as_the_instants_printed(lower, upper, lower_offset, upper_offset):
    expression = "FOR VALUES FROM ('%s') TO ('%s')" % (pg_text(lower, lower_offset), pg_text(upper, upper_offset))
    assert parse_bound(expression, TSTZ) == RangeBounds(lower, upper)


@PROPERTY
@given(values=st.lists(st.none() | st.text(alphabet=st.characters(exclude_categories=("Cs",))), min_size=1))
def test_property_text_list_values_read_back_as_the_values_printed(values):
    printed = ", ".join("NULL" if value is None else "'%s'" % value.replace("'", "''") for value in values)
    assert parse_bound("FOR VALUES IN (%s)" % printed, "text") == ListBounds(tuple(values))


@PROPERTY
@given(lower=st.integers(-(2**63), 2**63 - 1), upper=st.integers(-(2**63), 2**63 - 1))
def test_property_integer_bounds_read_back_as_printed(lower, upper):
    def printed(value):
        return "'%d'" % value if value < 0 else "%d" % value

    assert parse_bound("FOR VALUES FROM (%s) TO (%s)" % (printed(lower), printed(upper)), "bigint") == RangeBounds(
        lower, upper)


def read_or_refuse(reader, *args):
    try:
        return reader(*args)
    except CatalogError:
        return "refused"


printed_values = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=("Cs",))).map(lambda text: "'%s'" % text.replace("'", "''")),
    st.integers(-(2**63), 2**63 - 1).map(str),
    moments.map(lambda moment: "'%s'" % pg_text(moment, dt.timedelta(0))),
    moments.map(lambda moment: "'%s'" % moment.date().isoformat()),
    st.sampled_from(["MINVALUE", "MAXVALUE", "'infinity'", "'-infinity'", "''", "'x'''", "NULL", "'2025-02-30'"]),
)


@PROPERTY
@given(lower=printed_values, upper=printed_values,
       key_type=st.sampled_from([TSTZ, TS, "date", "bigint", "integer", "text"]))
def test_property_single_value_ranges_read_as_the_tokenizer_reads_them(lower, upper, key_type):
    """parse_bound reads one-value ranges with one regular expression (the runner's no-op pass parses every bound);
    whatever it reads or refuses, the general tokenizer reads or refuses the same."""
    expression = "FOR VALUES FROM (%s) TO (%s)" % (lower, upper)
    assert read_or_refuse(parse_bound, expression, key_type) == read_or_refuse(
        bounds._parse_tokens, expression, key_type)


@PROPERTY
@given(moment=moments.map(lambda moment: moment.replace(microsecond=0)))
def test_property_utc_whole_seconds_read_fast_as_the_offset_reader_reads_them(moment):
    text = pg_text(moment, dt.timedelta(0))
    assert bounds.parse_timestamp(text, TSTZ) == bounds._with_offset(text) == moment


@pytest.mark.parametrize("text", ["'INF'", "'Infinity'", "'NaN'", "'sNaN'"])
def test_a_non_finite_number_on_an_integer_key_is_refused_as_unreadable(text):
    """Decimal reads these; no integer key can hold them (an OverflowError escaped here once)."""
    for reader in (parse_bound, bounds._parse_tokens):
        with pytest.raises(CatalogError, match="cannot read partition bound value"):
            reader("FOR VALUES FROM (%s) TO ('10')" % text, "bigint")
