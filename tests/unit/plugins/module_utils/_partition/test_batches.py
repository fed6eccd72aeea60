"""How planned creations are grouped into transactions: batches only where no default partition is scanned, made
in place (PARTITION OF) only on a set with no partition yet, and always the same creations in the same order as
one transaction each would make."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Inheritance, Repair
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    CreatePartition,
    HashBounds,
    Partition,
    RangeBounds,
    SubPartitioning,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition import plan_creation as plan
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition import render

UTC = dt.timezone.utc
PARENT = Inheritance(schema="public", table="events", owner="app_owner", privileges=frozenset())


def day(offset):
    return dt.datetime(2025, 1, 1, tzinfo=UTC) + dt.timedelta(days=offset)


def action(offset):
    return CreatePartition("public", "events_%04d" % offset, RangeBounds(day(offset), day(offset + 1)))


def state(existing=0, default=False):
    partitions = tuple(Partition("public", "events_old_%d" % n, RangeBounds(day(-n - 1), day(-n)))
                       for n in range(existing))
    if default:
        partitions += (Partition("public", "events_default", None, is_default=True),)
    return TableState(oid=1, schema="public", name="events", strategy="range", key="created_at",
                      key_type="timestamp with time zone", partitions=partitions, columns=("id", "created_at"))


def text(statement):
    return statement.as_string(None)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(0, 700), existing=st.integers(0, 3), default=st.booleans())
def test_batches_hold_every_creation_once_in_order_and_within_the_limit(count, existing, default):
    table = state(existing, default)
    creations = [plan.creation_for(table, action(n), 0, 0) for n in range(count)]
    batches = plan.batches(table, creations)
    assert [c for batch in batches for c in batch] == creations
    assert all(batch for batch in batches)
    limit = 1 if table.default_partition else plan.NEW_SET_BATCH if not table.partitions else plan.LIVE_BATCH
    assert all(len(batch) <= limit for batch in batches)
    assert len(batches) == -(-count // limit)


def test_only_a_set_without_any_partition_gets_its_partitions_created_in_place():
    assert plan.creation_for(state(0), action(1), 0, 0).in_place
    assert not plan.creation_for(state(1), action(1), 0, 0).in_place
    assert not plan.creation_for(state(0, default=True), action(1), 0, 0).in_place


def statements_of(table, creation):
    return [text(s) for s in render.creation_statements(table, creation, PARENT,
                                                        Repair("public", creation.action.name), str).main]


def test_in_place_creation_is_one_partition_of_and_the_lock_light_one_creates_then_attaches():
    in_place = statements_of(state(0), plan.creation_for(state(0), action(3), 0, 0))
    assert in_place == ['CREATE TABLE "public"."events_0003" PARTITION OF "public"."events" FOR VALUES FROM '
                        "('2025-01-04 00:00:00+00:00'::timestamptz) TO ('2025-01-05 00:00:00+00:00'::timestamptz)"]
    lock_light = statements_of(state(1), plan.creation_for(state(1), action(3), 0, 0))
    assert lock_light[0].startswith('CREATE TABLE "public"."events_0003" (LIKE "public"."events" INCLUDING ALL')
    assert lock_light[1].startswith('ALTER TABLE "public"."events" ATTACH PARTITION "public"."events_0003" '
                                    'FOR VALUES FROM')
    assert in_place[0].endswith(lock_light[1][lock_light[1].index("FOR VALUES"):])


def test_in_place_creation_carries_the_storage_the_lock_light_one_gives():
    parent = Inheritance(schema="public", table="events", owner="o", privileges=frozenset(),
                         reloptions=(("fillfactor", "70"),), tablespace="ts1")
    statement = text(render.creation_statements(state(0), plan.creation_for(state(0), action(0), 0, 0), parent,
                                                Repair("public", "events_0000"), str).main[0])
    assert statement.endswith('WITH ("fillfactor" = \'70\') TABLESPACE "ts1"')


def sub_partitioned(offset):
    whole = action(offset)
    children = tuple(CreatePartition("public", "%s_h%d" % (whole.name, n), HashBounds(4, n)) for n in range(4))
    return dataclasses.replace(whole, partition_by=SubPartitioning("hash", "id", hash_modulus=4), children=children)


@settings(max_examples=100, deadline=None)
@given(kinds=st.lists(st.booleans(), max_size=60), existing=st.integers(0, 1))
def test_a_sub_partitioned_creation_is_a_batch_of_its_own_and_never_made_in_place(kinds, existing):
    table = state(existing)
    creations = [plan.creation_for(table, sub_partitioned(n) if sub else action(n), 0, 0)
                 for n, sub in enumerate(kinds)]
    batches = plan.batches(table, creations)
    assert [c for batch in batches for c in batch] == creations
    for batch in batches:
        assert len(batch) == 1 or not any(c.action.children for c in batch)
    assert not any(c.in_place for c in creations if c.action.children)
