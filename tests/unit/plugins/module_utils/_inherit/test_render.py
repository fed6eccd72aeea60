"""The SQL of inheritance: a new partition's CREATE TABLE and the statements around its ATTACH, the repairs of an
existing partition, and the privilege statements every job shares."""

from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import (
    Grant,
    IndexShape,
    Inheritance,
    Repair,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import render as db_render
from ansible_collections.pgfleet.partitions.plugins.module_utils._inherit import render


def text(composed):
    return composed.as_string(None)


def texts(statements):
    return [text(statement) for statement in statements]


PARENT = Inheritance(schema="public", table="events", owner="app_owner", privileges=frozenset())


@pytest.mark.parametrize("facts, expected", [
    pytest.param(dict(), 'CREATE TABLE "public"."events_1" (LIKE "public"."events" INCLUDING ALL EXCLUDING IDENTITY)',
                 id="a plain parent gives a plain LIKE"),
    pytest.param(dict(unlogged=True, access_method="heap2", tablespace="ts1",
                      reloptions=(("autovacuum_vacuum_scale_factor", "0.01"), ("fillfactor", "70"))),
                 'CREATE UNLOGGED TABLE "public"."events_1" (LIKE "public"."events" INCLUDING ALL EXCLUDING IDENTITY) '
                 'USING "heap2" WITH ("autovacuum_vacuum_scale_factor" = \'0.01\', "fillfactor" = \'70\') '
                 'TABLESPACE "ts1"',
                 id="persistence, access method, storage parameters and tablespace go in CREATE TABLE"),
])
def test_a_new_partition_is_created_with_what_like_does_not_copy(facts, expected):
    assert text(render.create_like(dataclasses.replace(PARENT, **facts), "public", "events_1")) == expected


@pytest.mark.parametrize("grants, expected", [
    pytest.param([Grant(None, "SELECT")], ['GRANT SELECT ON TABLE "public"."t" TO PUBLIC'], id="PUBLIC is a keyword"),
    pytest.param([Grant("app", "UPDATE", True, "notes")],
                 ['GRANT UPDATE ("notes") ON TABLE "public"."t" TO "app" WITH GRANT OPTION'],
                 id="a column privilege keeps its column and grant option"),
    pytest.param([Grant("app", "SELECT"), Grant("app", "UPDATE", column="note"), Grant("app", "INSERT", True),
                  Grant("bob", "SELECT")],
                 ['GRANT SELECT, UPDATE ("note") ON TABLE "public"."t" TO "app"',
                  'GRANT INSERT ON TABLE "public"."t" TO "app" WITH GRANT OPTION',
                  'GRANT SELECT ON TABLE "public"."t" TO "bob"'],
                 id="one statement per role and grant option"),
])
def test_grants_are_one_statement_per_role_and_grant_option(grants, expected):
    assert texts(db_render.grants("public", "t", grants)) == expected


def test_revokes_take_the_privilege_or_the_grant_option_only():
    assert texts(db_render.revokes("public", "t", [Grant("app", "DELETE"), Grant("app", "SELECT", True)])) == [
        'REVOKE DELETE ON TABLE "public"."t" FROM "app"',
        'REVOKE GRANT OPTION FOR SELECT ON TABLE "public"."t" FROM "app"']


def test_a_new_partition_gets_owner_privileges_and_identity_before_attach_and_an_identity_index_after():
    repair = Repair("public", "events_1", owner="app_owner", revokes=(Grant("etl", "SELECT"),),
                    grants=(Grant("app_reader", "SELECT"),), replica_identity="i",
                    create_indexes=(IndexShape(True, "USING btree (id)"),))
    parent = Inheritance(schema="public", table="events", owner="app_owner", privileges=frozenset(),
                         replica_identity="i", identity_index="events_ri")
    before, after = render.new_partition(parent, repair, text)
    assert texts(before) == [
        'CREATE UNIQUE INDEX ON "public"."events_1" USING btree (id)',
        'ALTER TABLE "public"."events_1" OWNER TO "app_owner"',
        'REVOKE SELECT ON TABLE "public"."events_1" FROM "etl"',
        'GRANT SELECT ON TABLE "public"."events_1" TO "app_reader"']
    assert texts(after) == [
        "DO 'BEGIN EXECUTE format(''ALTER TABLE %s REPLICA IDENTITY USING INDEX %I'', "
        "''\"public\".\"events_1\"''::regclass, (SELECT c.relname FROM pg_inherits i JOIN pg_index x ON x.indexrelid "
        "= i.inhrelid JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = ''\"public\".\"events_ri\"''::regclass "
        "AND x.indrelid = ''\"public\".\"events_1\"''::regclass)); END'"]


def test_a_repair_is_one_transaction_then_the_index_builds_concurrently():
    repair = Repair("public", "events_1", replica_identity="f", set_options=(("fillfactor", "70"),),
                    reset_options=("autovacuum_enabled",), drop_indexes=("events_1_id_idx",),
                    create_indexes=(IndexShape(True, "USING btree (id)"),))
    transaction, concurrent = render.repair_statements(repair)
    assert texts(transaction) == ['ALTER TABLE "public"."events_1" SET ("fillfactor" = \'70\')',
                                  'ALTER TABLE "public"."events_1" RESET ("autovacuum_enabled")',
                                  'ALTER TABLE "public"."events_1" REPLICA IDENTITY FULL']
    assert texts(concurrent) == ['DROP INDEX CONCURRENTLY IF EXISTS "public"."events_1_id_idx"',
                                 'CREATE UNIQUE INDEX CONCURRENTLY ON "public"."events_1" USING btree (id)']
