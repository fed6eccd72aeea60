"""The pure planner of inheritance: what a new partition is given, how an existing one drifted, what repairs it, and
that planning again after a repair gives nothing."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import (
    Carry,
    Grant,
    IndexShape,
    Inheritance,
    Repair,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._inherit import plan

OWNER_DEFAULTS = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
ID_UNIQUE = IndexShape(True, "USING btree (id)")
PARENT_KEY = IndexShape(True, "USING btree (id, at)")


def owned_by(role, privileges=OWNER_DEFAULTS):
    return frozenset(Grant(role, privilege) for privilege in privileges)


def inheritance(**facts):
    """A parent owned by app_owner, partitions created by postgres (a superuser), nothing else inherited."""
    values = dict(schema="public", table="events", owner="app_owner", privileges=owned_by("app_owner"),
                  creator="postgres", creator_privileges=owned_by("postgres"), parent_indexes=frozenset({PARENT_KEY}))
    values.update(facts)
    return Inheritance(**values)


def carry(**facts):
    """An existing partition that carries what inheritance() gives."""
    values = dict(schema="public", name="events_2025_01", owner="app_owner", privileges=owned_by("app_owner"),
                  indexes=frozenset({PARENT_KEY}))
    values.update(facts)
    return Carry(**values)


def applied(partition: Carry, repair: Repair) -> Carry:
    """What the server makes of `repair` on `partition`: OWNER TO hands the old owner's privileges over, a revoke of
    a table privilege takes that privilege on every column too, a revoke of the grant option keeps the privilege."""
    privileges = set(partition.privileges)
    if repair.owner:
        privileges = set(plan.after_owner_change(privileges, partition.owner, repair.owner))
    for revoke in repair.revokes:
        matching = [g for g in privileges if (g.grantee, g.privilege) == (revoke.grantee, revoke.privilege)
                    and (g.column == revoke.column or revoke.column is None)]
        for grant in matching:
            privileges.discard(grant)
            if revoke.grantable:
                privileges.add(dataclasses.replace(grant, grantable=False))
    privileges = set(plan.normalized(list(privileges) + list(repair.grants)))
    identity, index = partition.replica_identity, partition.identity_index
    if repair.replica_identity:
        identity = repair.replica_identity
        index = repair.identity_index or (partition.parent_identity_match if identity == "i" else None)
    options = dict(partition.reloptions)
    options.update(repair.set_options)
    for name in repair.reset_options:
        options.pop(name)
    return dataclasses.replace(
        partition, owner=repair.owner or partition.owner, privileges=frozenset(privileges), replica_identity=identity,
        identity_index=index, reloptions=tuple(sorted(options.items())), new=False,
        indexes=partition.indexes | set(repair.create_indexes),
        invalid_indexes=tuple(i for i in partition.invalid_indexes if i[0] not in repair.drop_indexes))


GRANTED_BEYOND_OWNER = {Grant("app_reader", "SELECT"), Grant("app_writer", "UPDATE", column="note"),
                        Grant(None, "SELECT", True)}


NEW_PARTITIONS = [
    pytest.param(inheritance(), dict(owner="app_owner"),
                 id="a parent owned by another role gives new partitions its owner and nothing else to do"),
    pytest.param(inheritance(owner="postgres", privileges=owned_by("postgres")), dict(),
                 id="a parent owned by the connecting role needs nothing beyond the creation itself"),
    pytest.param(inheritance(privileges=owned_by("app_owner") | GRANTED_BEYOND_OWNER),
                 dict(owner="app_owner", grants=(Grant(None, "SELECT", True), Grant("app_reader", "SELECT"),
                                                 Grant("app_writer", "UPDATE", column="note"))),
                 id="table and column privileges of the parent reach a new partition, grant options and PUBLIC too"),
    pytest.param(inheritance(template_privileges=frozenset({Grant("auditor", "SELECT")})),
                 dict(owner="app_owner", grants=(Grant("auditor", "SELECT"),)),
                 id="the template's privileges are added to the parent's"),
    pytest.param(inheritance(privileges=owned_by("app_owner", OWNER_DEFAULTS[:4])),
                 dict(owner="app_owner", revokes=(Grant("app_owner", "REFERENCES"), Grant("app_owner", "TRIGGER"),
                                                  Grant("app_owner", "TRUNCATE"))),
                 id="privileges the parent's owner gave up on the parent are taken from it on new partitions"),
    pytest.param(inheritance(creator_privileges=owned_by("postgres") | {Grant("etl", "SELECT")}),
                 dict(owner="app_owner", revokes=(Grant("etl", "SELECT"),)),
                 id="a default privilege of the connecting role that the parent lacks is revoked"),
    pytest.param(inheritance(replica_identity="f"), dict(owner="app_owner", replica_identity="f"),
                 id="replica identity full is set on the new partition"),
    pytest.param(inheritance(replica_identity="i", identity_index="events_ri"),
                 dict(owner="app_owner", replica_identity="i", identity_index=None),
                 id="replica identity using an index is looked up after attach, the index name being chosen then"),
    pytest.param(inheritance(template="public.events_template", reloptions=(("fillfactor", "70"),),
                             template_indexes=(ID_UNIQUE, PARENT_KEY)),
                 dict(owner="app_owner", create_indexes=(ID_UNIQUE,)),
                 id="the template's unique index without the key is built, its storage goes in CREATE TABLE"),
]


@pytest.mark.parametrize("parent, expected", NEW_PARTITIONS)
def test_what_a_new_partition_is_given(parent, expected):
    assert plan.new_partition(parent, "public", "events_2025_02") == Repair("public", "events_2025_02", **expected)


@pytest.mark.parametrize("parent, expected", NEW_PARTITIONS)
def test_a_new_partition_given_what_it_inherits_has_no_drift(parent, expected):
    created = plan.fresh_carry(parent, "public", "events_2025_02")
    after = applied(dataclasses.replace(created, parent_identity_match="events_2025_02_id_idx"),
                    plan.new_partition(parent, "public", "events_2025_02"))
    assert plan.drift(parent, after) == [] and plan.repair_for(parent, after).empty


IDENTITY_PARENT = inheritance(replica_identity="i", identity_index="events_ri")
TEMPLATED_PARENT = inheritance(template="public.events_template", reloptions=(("fillfactor", "70"),),
                               template_indexes=(ID_UNIQUE,))
TEMPLATED = dict(reloptions=(("fillfactor", "70"),), indexes=frozenset({PARENT_KEY, ID_UNIQUE}))

DRIFTS = [
    pytest.param(inheritance(), carry(owner="postgres", privileges=owned_by("postgres")),
                 [("owner", "app_owner", "postgres")], dict(owner="app_owner"),
                 id="a partition owned by the connecting role is given to the parent's owner"),
    pytest.param(inheritance(), carry(privileges=owned_by("app_owner") | {Grant("intruder", "DELETE")}),
                 [("privileges", (), ("intruder DELETE",))], dict(revokes=(Grant("intruder", "DELETE"),)),
                 id="a privilege granted on the partition alone is reported and revoked"),
    pytest.param(inheritance(privileges=owned_by("app_owner") | {Grant("app_reader", "SELECT")}),
                 carry(privileges=owned_by("app_owner") | {Grant("app_reader", "SELECT", True)}),
                 [("privileges", (), ("app_reader SELECT with grant option",))],
                 dict(revokes=(Grant("app_reader", "SELECT", True),)),
                 id="a grant option the parent does not give is revoked alone, the privilege kept"),
    pytest.param(inheritance(privileges=owned_by("app_owner") | {Grant("app_reader", "SELECT", column="id")}),
                 carry(privileges=owned_by("app_owner") | {Grant("app_reader", "SELECT"),
                                                           Grant("app_reader", "SELECT", column="id")}),
                 [("privileges", (), ("app_reader SELECT",))],
                 dict(revokes=(Grant("app_reader", "SELECT"),), grants=(Grant("app_reader", "SELECT", column="id"),)),
                 id="a column privilege survives the revoke of the same privilege on the table"),
    pytest.param(IDENTITY_PARENT, carry(parent_identity_match="events_2025_01_id_at_idx"),
                 [("replica_identity", "index events_2025_01_id_at_idx", "default")],
                 dict(replica_identity="i", identity_index="events_2025_01_id_at_idx"),
                 id="replica identity using the parent's index maps to the partition's index attached to it"),
    pytest.param(IDENTITY_PARENT, carry(),
                 [("replica_identity", "index attached to events_ri (the partition has none)", "default")],
                 dict(replica_identity=None), id="a partition lacking the parent's identity index is reported only"),
    pytest.param(inheritance(replica_identity="f"), carry(replica_identity="n"),
                 [("replica_identity", "full", "nothing")], dict(replica_identity="f"),
                 id="replica identity nothing on a partition of a full parent is set to full"),
    pytest.param(TEMPLATED_PARENT, carry(reloptions=(("autovacuum_enabled", "off"), ("fillfactor", "100")),
                                         indexes=TEMPLATED["indexes"]),
                 [("reloptions", {"fillfactor": "70"}, {"autovacuum_enabled": "off", "fillfactor": "100"})],
                 dict(set_options=(("fillfactor", "70"),), reset_options=("autovacuum_enabled",)),
                 id="storage parameters differing from the template's are set and reset"),
    pytest.param(inheritance(), carry(tablespace="cold"), [("tablespace", None, "cold")], dict(),
                 id="a partition in another tablespace is reported, never moved"),
    pytest.param(TEMPLATED_PARENT, carry(reloptions=TEMPLATED["reloptions"],
                                         invalid_indexes=(("events_2025_01_id_idx", ID_UNIQUE),)),
                 [("template_indexes", ("UNIQUE USING btree (id)",), ()),
                  ("invalid_indexes", (), ("events_2025_01_id_idx",))],
                 dict(drop_indexes=("events_2025_01_id_idx",), create_indexes=(ID_UNIQUE,)),
                 id="a template index left invalid by a failed build is dropped and built again"),
    pytest.param(TEMPLATED_PARENT, carry(is_partitioned=True), [], dict(),
                 id="a sub-partitioned partition has no storage of its own to judge"),
    pytest.param(TEMPLATED_PARENT, carry(**TEMPLATED), [], dict(),
                 id="a partition that carries everything has no drift and needs no repair"),
]


def reported(found):
    return [(d.kind, d.missing, d.extra) if d.kind in ("privileges", "template_indexes", "invalid_indexes")
            else (d.kind, d.expected, d.actual) for d in found]


@pytest.mark.parametrize("parent, partition, found, expected", DRIFTS)
def test_drift_is_reported_and_repaired_and_nothing_is_left_after_the_repair(parent, partition, found, expected):
    assert reported(plan.drift(parent, partition)) == found
    repair = plan.repair_for(parent, partition)
    assert {field: getattr(repair, field) for field in expected} == expected
    assert plan.repair_for(parent, applied(partition, repair)).empty


def test_drift_facts_name_what_is_missing_and_extra_or_what_was_expected():
    owner, privileges = plan.drift(inheritance(), carry(owner="postgres", privileges=owned_by("postgres") | {
        Grant("intruder", "DELETE")}))
    assert owner.facts() == {"kind": "owner", "expected": "app_owner", "actual": "postgres"}
    assert privileges.facts() == {"kind": "privileges", "missing": [], "extra": ["intruder DELETE"]}


ROLES = st.sampled_from([None, "app_owner", "app_reader", "app_writer"])
GRANTS = st.frozensets(st.builds(Grant, ROLES, st.sampled_from(["SELECT", "UPDATE", "DELETE"]), st.booleans(),
                                 st.sampled_from([None, None, "id", "note"])), max_size=8)


@settings(max_examples=300, deadline=None)
@given(wanted=GRANTS, have=GRANTS)
def test_the_privilege_changes_turn_any_set_into_the_wanted_one(wanted, have):
    parent = inheritance(privileges=plan.normalized(wanted))
    partition = carry(privileges=plan.normalized(have))
    assert applied(partition, plan.repair_for(parent, partition)).privileges == plan.normalized(wanted)


REFUSALS = [
    pytest.param(dict(creator_is_superuser=False, creator_can_become_owner=False),
                 "the connecting role postgres is neither a superuser nor a member of app_owner; nothing was changed. "
                 "Connect as (or set session_role to) app_owner, or run GRANT app_owner TO postgres",
                 id="a connecting role that is no member of the owner is refused with both remedies"),
    pytest.param(dict(creator_is_superuser=False, owner_can_create=False),
                 "GRANT CREATE ON SCHEMA public TO app_owner",
                 id="an owner without CREATE on the schema is refused, as OWNER TO would fail"),
]


@pytest.mark.parametrize("facts, message", REFUSALS)
def test_a_role_that_cannot_give_partitions_their_owner_is_refused(facts, message):
    with pytest.raises(PlanError, match="public.events is owned by app_owner") as refused:
        plan.refuse_unownable(inheritance(**facts))
    assert message in str(refused.value)


@pytest.mark.parametrize("facts", [
    pytest.param(dict(), id="a superuser may give partitions any owner"),
    pytest.param(dict(creator_is_superuser=False), id="a member of the owner role may"),
    pytest.param(dict(owner="postgres", creator_is_superuser=False, creator_can_become_owner=False,
                      owner_can_create=False), id="the owner itself needs nothing"),
])
def test_a_role_that_can_give_partitions_their_owner_passes(facts):
    plan.refuse_unownable(inheritance(**facts))


COLUMNS = (("id", "bigint"), ("at", "date"), ("note", "text"))


@pytest.mark.parametrize("template, message", [
    pytest.param(dict(template_relkind="v", template_columns=COLUMNS), "is not a plain table (relkind 'v')",
                 id="a view is no template"),
    pytest.param(dict(template_relkind="r", template_columns=COLUMNS[:2] + (("extra", "int"),)),
                 "differ from the parent's (note is missing; extra is not a column of the parent)",
                 id="a template missing a column and holding another is refused"),
    pytest.param(dict(template_relkind="r", template_columns=(("id", "integer"),) + COLUMNS[1:]),
                 "(id is integer, not bigint)", id="a template column of another type is refused"),
])
def test_a_template_that_does_not_fit_the_parent_is_refused(template, message):
    parent = inheritance(template="public.events_template", parent_columns=COLUMNS, **template)
    with pytest.raises(PlanError, match="template_table public.events_template") as refused:
        plan.refuse_template_mismatch(parent)
    assert message in str(refused.value)


def test_a_template_with_the_parents_columns_in_another_order_fits():
    plan.refuse_template_mismatch(inheritance(template="public.t", template_relkind="r", parent_columns=COLUMNS,
                                              template_columns=tuple(reversed(COLUMNS))))
