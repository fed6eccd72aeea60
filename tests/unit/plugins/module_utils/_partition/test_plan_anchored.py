"""Plans on grids counted from an anchor, Unix time in micro- and nanoseconds and UUIDv7 keys: adopting a set whose
bounds lie on the grid changes nothing, raising premake adds exactly the partitions after the newest, and a set off
the grid is refused with the anchor that would fit it."""

from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    Partition,
    RangeBounds,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import TimeGrid
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.params import policy_from_params
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan import plan

UTC = dt.timezone.utc
TSTZ = "timestamp with time zone"
NOW = dt.datetime(2025, 1, 15, 12, 7, tzinfo=UTC)


def table(key_type, partitions):
    return TableState(oid=1, schema="public", name="events", strategy="range", key="k", key_type=key_type,
                      partitions=tuple(partitions), server_now=NOW)


def made_like_partman(grid, before, after):
    """The partitions pg_partman would have: `before` back and `after` ahead of the one holding NOW."""
    current = grid.floor(NOW)
    return [Partition("public", "events_p%d" % offset, RangeBounds(
        grid.to_key(grid.shift(current, offset)), grid.to_key(grid.shift(current, offset + 1))))
        for offset in range(-before, after + 1)]


SETS = [
    pytest.param(TSTZ, "15 minutes", None, None, id="fifteen minutes"),
    pytest.param(TSTZ, "2 hours", "2025-01-01 01:00", None, id="two hours from an odd hour"),
    pytest.param("date", "3 days", "2025-01-13", None, id="three days from a Monday"),
    pytest.param(TSTZ, "2 weeks", "2025-01-07", None, id="two weeks from a Tuesday"),
    pytest.param("timestamp without time zone", "3 months", "2024-12-01", None, id="three months from December"),
    pytest.param(TSTZ, "1 year", None, None, id="one year"),
    pytest.param("bigint", "day", None, "milliseconds", id="days of Unix milliseconds"),
    pytest.param("bigint", "2 hours", None, "nanoseconds", id="two hours of Unix nanoseconds"),
    pytest.param("uuid", "month", None, None, id="months of UUIDv7"),
]


def _policy(interval, anchor, epoch, premake):
    return policy_from_params(dict(interval=interval, interval_anchor=anchor, epoch=epoch, premake=premake))


@pytest.mark.parametrize("key_type, interval, anchor, epoch", SETS)
def test_an_equivalent_policy_is_a_no_op_and_premake_plus_three_adds_three_after_the_newest(
        key_type, interval, anchor, epoch):
    policy = _policy(interval, anchor, epoch, premake=4)
    grid = TimeGrid(interval, key_type if key_type != "bigint" else TSTZ, epoch=epoch,
                    anchor=policy.interval_anchor)
    partitions = made_like_partman(grid, before=4, after=4)
    assert plan(table(key_type, partitions), policy).actions == ()
    added = plan(table(key_type, partitions), _policy(interval, anchor, epoch, premake=7)).actions
    assert len(added) == 3
    edges = [partitions[-1].bounds] + [action.bounds for action in added]
    assert all(left.upper == right.lower for left, right in zip(edges, edges[1:]))


def test_a_set_off_the_default_grid_is_refused_naming_its_first_partition_and_the_anchor_that_fits():
    grid = TimeGrid("2 weeks", TSTZ, anchor=dt.datetime(2025, 1, 7))
    partitions = made_like_partman(grid, before=2, after=2)
    with pytest.raises(PlanError) as error:
        plan(table(TSTZ, partitions), _policy("2 weeks", None, None, premake=2))
    message = str(error.value)
    assert "events_p-2" in message and "interval_anchor '2024-12-10 00:00:00' would fit it" in message
    assert "nothing was created" in message


def test_a_partition_of_another_width_is_refused_with_no_anchor_to_offer():
    month = Partition("public", "events_odd", RangeBounds(dt.datetime(2020, 1, 3, tzinfo=UTC),
                                                          dt.datetime(2020, 1, 10, tzinfo=UTC)))
    with pytest.raises(PlanError, match="events_odd.*No interval_anchor puts its bounds on a grid of 2 weeks"):
        plan(table(TSTZ, [month]), _policy("2 weeks", "2025-01-07", None, premake=2))


def test_an_integer_set_off_its_step_is_refused():
    odd = Partition("public", "events_odd", RangeBounds(5, 1005))
    with pytest.raises(PlanError, match="events_odd.*off the grid of the integer step 1000"):
        plan(table("bigint", [odd]), policy_from_params(dict(interval="1000", premake=1)))


def test_an_anchor_is_refused_for_an_integer_step():
    with pytest.raises(PlanError, match="interval_anchor applies to time intervals"):
        policy_from_params(dict(interval="1000", interval_anchor="2025-01-01"))


def test_a_partition_starting_on_the_grid_but_ending_off_it_is_refused_and_one_spanning_buckets_is_not():
    grid = TimeGrid("month", TSTZ)
    partitions = made_like_partman(grid, before=2, after=2)
    wide = Partition("public", "events_2023", RangeBounds(dt.datetime(2023, 1, 1, tzinfo=UTC),
                                                          dt.datetime(2024, 1, 1, tzinfo=UTC)))
    assert plan(table(TSTZ, [wide] + partitions), _policy("month", None, None, premake=2)).actions == ()
    short = Partition("public", "events_2024_01", RangeBounds(dt.datetime(2024, 1, 1, tzinfo=UTC),
                                                              dt.datetime(2024, 1, 15, tzinfo=UTC)))
    with pytest.raises(PlanError, match="events_2024_01 .* bound 2024-01-15 00:00:00"):
        plan(table(TSTZ, [wide, short] + partitions), _policy("month", None, None, premake=2))
