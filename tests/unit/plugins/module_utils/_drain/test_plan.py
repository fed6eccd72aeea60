from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    CreatePartition,
    ListBounds,
    Partition,
    RangeBounds,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.naming import PLAIN_NAME
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import TimeGrid
from ansible_collections.pgfleet.partitions.plugins.module_utils._drain import plan

UTC = dt.timezone.utc
TSTZ = "timestamp with time zone"


def table(strategy="range", partitions=()):
    return TableState(oid=1, schema="public", name="events", strategy=strategy, key="k", key_type=TSTZ,
                      partitions=tuple(partitions))


def action(name, lower=None, upper=None):
    return CreatePartition("public", name, RangeBounds(lower, upper))


@pytest.mark.parametrize("batch_rows, pages, tuples, blocks", [
    pytest.param(10000, 1000, 100000, 100, id="a hundred rows a block reads a hundred blocks a batch"),
    pytest.param(10, 1000, 100000, 1, id="never less than one block"),
    pytest.param(10000, 0, 0, 100, id="an empty or never analyzed table guesses a hundred rows a block"),
])
def test_a_batch_reads_about_batch_rows_rows_worth_of_blocks(batch_rows, pages, tuples, blocks):
    assert plan.chunk_blocks(batch_rows, pages, tuples) == blocks


def test_groups_count_per_bucket_and_a_group_across_two_buckets_reaches_both():
    grid = TimeGrid("month", TSTZ)
    groups = [plan.Group(dt.datetime(2024, 1, 3, tzinfo=UTC), dt.datetime(2024, 1, 9, tzinfo=UTC), 5, 0),
              plan.Group(dt.datetime(2024, 1, 10, tzinfo=UTC), dt.datetime(2024, 1, 30, tzinfo=UTC), 2, 3),
              plan.Group(dt.datetime(2024, 2, 28, tzinfo=UTC), dt.datetime(2024, 3, 1, tzinfo=UTC), 4, 7)]
    buckets, outside = plan.buckets_of(groups, grid.floor)
    assert outside == 0
    assert {start: (b.rows, sorted(b.chunks)) for start, b in buckets.items()} == {
        dt.datetime(2024, 1, 1): (7, [0, 3]), dt.datetime(2024, 2, 1): (4, [7]), dt.datetime(2024, 3, 1): (0, [7])}


def test_keys_no_bucket_can_hold_are_counted_outside():
    def floor(value):
        raise OverflowError(value)
    assert plan.buckets_of([plan.Group(1, 2, 9, 0)], floor) == ({}, 9)


def test_the_oldest_ranges_come_first_up_to_the_limit_and_interrupted_ones_always():
    wanted = {month: (action("events_2024_%02d" % month), 10 * month, [month]) for month in (5, 1, 3, 2)}
    adopted = [action("events_2024_03")]
    drained = plan.plan_drain(table(), wanted, adopted, [(plan.NULL_KEY, 4)], limit=2, blocks=8)
    assert [(t.action.name, t.rows, t.chunks, t.adopted) for t in drained.targets] == [
        ("events_2024_03", 30, (3,), True), ("events_2024_01", 10, (1,), False), ("events_2024_02", 20, (2,), False)]
    assert drained.left == ((plan.NULL_KEY, 4), (plan.OVER_LIMIT, 50))
    assert drained.chunk_blocks == 8


def test_a_limit_below_one_is_refused():
    with pytest.raises(PlanError, match="drain_max_partitions"):
        plan.plan_drain(table(), {}, [], [], limit=0, blocks=1)


def test_a_marker_records_the_parent_and_the_bounds_and_reads_back():
    made = action("events_2024_01", dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 1, tzinfo=UTC))
    record = plan.read_marker(plan.marker(made, "public.events"))
    assert record == {"parent": "public.events", "lower": "2024-01-01T00:00:00+00:00",
                      "upper": "2024-02-01T00:00:00+00:00"}
    assert plan.read_marker("a comment of someone else") is None
    assert plan.read_marker(plan.MARKER + "{not json") is None


@given(st.text(min_size=1, max_size=80))
def test_a_suffix_made_from_any_value_is_a_plain_name_and_values_that_differ_get_different_ones(value):
    suffix = plan.value_suffix(value)
    assert PLAIN_NAME.match(suffix) and len(suffix.encode()) <= 48
    assert plan.value_suffix(value + "!") != suffix


def test_new_values_get_one_partition_each_and_values_already_listed_none():
    state = table("list", [Partition("public", "events_open", ListBounds(("open",)))])
    actions = plan.new_value_actions(state, ["open", "closed", "On Hold"])
    assert [(a.name.startswith(prefix), a.values) for a, prefix in zip(actions, ("events_on_hold_", "events_closed"))] \
        == [(True, ("On Hold",)), (True, ("closed",))]


def test_a_new_value_whose_name_is_taken_is_refused():
    state = table("list", [Partition("public", "events_closed", ListBounds(("shut",)))])
    with pytest.raises(PlanError, match="would be named events_closed, like the existing partition"):
        plan.new_value_actions(state, ["closed"])
