from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.bounds import parse_bound
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Partition, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.params import policy_from_params
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.plan import plan_retention, plan_steps
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.render import statement

TSTZ = "timestamp with time zone"
MARKER = "'pgfleet.partitions retention: detached from public.events, to be dropped'"


def partition(name, lower, upper, **flags):
    return Partition("public", name, parse_bound("FOR VALUES FROM ('%s') TO ('%s')" % (lower, upper), TSTZ), **flags)


OLD = partition("events_2020_01", "2020-01-01 00:00:00+00", "2020-02-01 00:00:00+00")
CURRENT = partition("events_2025_01", "2025-01-01 00:00:00+00", "2025-02-01 00:00:00+00")
DEFAULT = Partition("public", "events_default", None, is_default=True)
PENDING_CURRENT = partition("events_2025_01", "2025-01-01 00:00:00+00", "2025-02-01 00:00:00+00", detach_pending=True)


def state(*partitions):
    return TableState(oid=1, schema="public", name="events", strategy="range", key="at", key_type=TSTZ,
                      partitions=partitions, server_now=dt.datetime(2025, 1, 15, tzinfo=dt.timezone.utc),
                      server_version_num=150000)


def steps(table, orphans=(), **options):
    policy = policy_from_params(dict(dict(table="events", retention="1 year"), **options))
    return [(step.outcome, [(op.kind, statement(table, op).as_string(None) if op.statement is not None else None)
                            for op in step.operations])
            for step in plan_steps(table, policy, plan_retention(table, policy), orphans)]


DROP = 'DROP TABLE "public"."events_2020_01"'
COMMENT = 'COMMENT ON TABLE "public"."events_2020_01" IS ' + MARKER
DETACH = 'ALTER TABLE "public"."events" DETACH PARTITION "public"."events_2020_01"'
ARCHIVED_DETACH = 'ALTER TABLE "public"."events" DETACH PARTITION "archive"."events_2020_01"'

SCENARIOS = [
    pytest.param(state(OLD, CURRENT), {}, [("dropped", [
        ("transaction", COMMENT),
        ("concurrent", DETACH + " CONCURRENTLY"),
        ("transaction", DROP)])], id="drop: detach concurrently, then drop the plain table"),
    pytest.param(state(OLD, CURRENT, DEFAULT), {}, [("dropped", [("transaction", DROP)])],
                 id="drop beside a default partition: one DROP TABLE"),
    pytest.param(state(OLD, CURRENT, DEFAULT), {"backup_dir": "/b"}, [("dropped", [
        ("backup", None),
        ("transaction", COMMENT),
        ("transaction", DETACH),
        ("guarded_drop", DROP)])], id="drop with a backup: the drop checks the dumped rows after the detach"),
    pytest.param(state(OLD, CURRENT), {"action": "detach", "archive_schema": "archive", "archive_tablespace": "slow"},
                 [("detached", [
                     ("transaction", 'ALTER TABLE "public"."events_2020_01" SET SCHEMA "archive"'),
                     ("concurrent", ARCHIVED_DETACH + " CONCURRENTLY"),
                     ("transaction", 'ALTER TABLE "archive"."events_2020_01" SET TABLESPACE "slow"')])],
                 id="detach: moved to the archive while attached, tablespace after"),
    pytest.param(state(partition(OLD.name, "2020-01-01 00:00:00+00", "2020-02-01 00:00:00+00", detach_pending=True),
                       CURRENT), {}, [("dropped", [("transaction", DETACH + " FINALIZE"), ("transaction", DROP)])],
                 id="a pending detach of an expired partition is finalized, then dropped"),
    pytest.param(state(OLD, PENDING_CURRENT), {}, [
        ("finalized", [("transaction", 'ALTER TABLE "public"."events" DETACH PARTITION "public"."events_2025_01" '
                                       'FINALIZE')]),
        ("dropped", [("transaction", COMMENT), ("concurrent", DETACH + " CONCURRENTLY"), ("transaction", DROP)])],
        id="a pending detach of a kept partition is only finalized, and first"),
]

SUB_PARTITIONED = partition("events_2020_01", "2020-01-01 00:00:00+00", "2020-02-01 00:00:00+00", is_partitioned=True,
                            leaves=(("public", "events_2020_01_h0"), ("public", "events_2020_01_h1")))
SCENARIOS += [
    pytest.param(state(SUB_PARTITIONED, CURRENT, DEFAULT), {"backup_dir": "/b"}, [("dropped", [
        ("backup", None), ("backup", None),
        ("transaction", COMMENT),
        ("transaction", DETACH),
        ("guarded_drop", DROP)])], id="a sub-partitioned partition: every leaf dumped, then it leaves whole"),
    pytest.param(state(SUB_PARTITIONED, CURRENT), {"action": "detach", "archive_schema": "archive"}, [("detached", [
        ("transaction", 'ALTER TABLE "public"."events_2020_01_h0" SET SCHEMA "archive"'),
        ("transaction", 'ALTER TABLE "public"."events_2020_01_h1" SET SCHEMA "archive"'),
        ("transaction", 'ALTER TABLE "public"."events_2020_01" SET SCHEMA "archive"'),
        ("concurrent", ARCHIVED_DETACH + " CONCURRENTLY")])],
        id="a sub-partitioned partition moves to the archive with its leaves"),
]


@pytest.mark.parametrize("table, options, expected", SCENARIOS)
def test_each_partition_leaves_in_safe_steps(table, options, expected):
    assert steps(table, **options) == expected


def test_a_table_left_detached_for_dropping_is_dropped_first():
    orphan = Partition("public", "events_2019_12", None)
    result = steps(state(CURRENT), orphans=(orphan,))
    assert result == [("dropped", [("transaction", 'DROP TABLE "public"."events_2019_12"')])]


def test_with_action_detach_a_table_left_for_dropping_is_archived_instead():
    orphan = Partition("public", "events_2019_12", None)
    result = steps(state(CURRENT), orphans=(orphan,), action="detach", archive_schema="archive")
    assert result == [("detached", [
        ("transaction", 'ALTER TABLE "public"."events_2019_12" SET SCHEMA "archive"'),
        ("transaction", 'COMMENT ON TABLE "archive"."events_2019_12" IS NULL')])]


OPTIONS_REFUSED = [
    pytest.param({"archive_schema": "archive"}, "action: detach only", id="archive_schema with drop"),
    pytest.param({"action": "detach", "archive_schema": "a.b"}, "without a dot", id="a dotted archive_schema"),
    pytest.param({"action": "detach", "archive_tablespace": "x;y"}, "not a plain", id="SQL in archive_tablespace"),
    pytest.param({"lock_timeout": "3 parsecs"}, "lock_timeout", id="a bad lock_timeout"),
    pytest.param({"retries": -1}, "retries must be 0 or more", id="negative retries"),
    pytest.param({"backup_dir": "rel"}, "relative", id="a relative backup_dir"),
    pytest.param({"reference_time": "yesterday"}, "reference_time", id="an unreadable reference_time"),
]


@pytest.mark.parametrize("options, message", OPTIONS_REFUSED)
def test_options_are_refused_before_connecting_with_the_table_named(options, message):
    with pytest.raises(PlanError, match=message) as raised:
        policy_from_params(dict(dict(table="events", retention="1 year"), **options))
    assert str(raised.value).startswith("events: ")
