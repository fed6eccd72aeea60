"""The subpartition option: refusals before any connection, and the children each new partition is planned with."""

from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import HashBounds, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.params import policy_from_params
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan import plan
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan_sub import parse_subpartition

UTC = dt.timezone.utc
STATE = TableState(oid=1, schema="public", name="events", strategy="range", key="at",
                   key_type="timestamp with time zone", partitions=(), columns=("id", "at", "region"),
                   server_now=dt.datetime(2024, 2, 10, tzinfo=UTC))

REFUSED = [
    pytest.param({"strategy": "range"}, "plain column name", id="a column is required"),
    pytest.param({"strategy": "tree", "column": "id"}, "strategy must be one of", id="an unknown strategy"),
    pytest.param({"strategy": "hash", "column": "id"}, "takes hash_modulus", id="hash needs a modulus"),
    pytest.param({"strategy": "hash", "column": "id", "hash_modulus": 4, "interval": "day"}, "none of the other",
                 id="options of another strategy are refused"),
    pytest.param({"strategy": "hash", "column": "id", "hash_modulus": 0}, "positive integer", id="modulus 0"),
    pytest.param({"strategy": "list", "column": "region", "list_partitions": {"eu": []}}, "non-empty lists",
                 id="an empty list"),
    pytest.param({"strategy": "hash", "column": "id", "hash_modulus": 2, "premake": 3}, "unknown option",
                 id="an unknown option"),
]


@pytest.mark.parametrize("value, message", REFUSED)
def test_a_bad_subpartition_is_refused_before_connecting(value, message):
    with pytest.raises(PlanError, match=message):
        parse_subpartition(value)


def _plan(subpartition, **options):
    return plan(STATE, policy_from_params(dict(dict(interval="month", premake=0, subpartition=subpartition),
                                               **options)))


def test_each_new_partition_is_planned_with_all_its_children():
    daily = _plan({"strategy": "range", "column": "at", "interval": "day"}).actions
    assert [len(action.children) for action in daily] == [29]  # February of a leap year
    assert daily[0].children[0].name == "events_2024_02_2024_02_01"
    hashed = _plan({"strategy": "hash", "column": "id", "hash_modulus": 3}).actions[0]
    assert [child.bounds for child in hashed.children] == [HashBounds(3, r) for r in range(3)]


@pytest.mark.parametrize("subpartition, message", [
    pytest.param({"strategy": "range", "column": "region", "interval": "day"}, "by the RANGE key at itself",
                 id="range by another column"),
    pytest.param({"strategy": "hash", "column": "nope", "hash_modulus": 2}, "no column nope", id="a missing column"),
    pytest.param({"strategy": "range", "column": "at", "interval": "week"}, "does not divide",
                 id="weeks do not divide months"),
])
def test_sub_partitionings_that_cannot_work_are_refused_before_any_change(subpartition, message):
    with pytest.raises(PlanError, match=message):
        _plan(subpartition)
