# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the pure planner of inheritance: what a new partition must be given, how an
# existing one drifted from its parent (or template), and the changes that repair it. Inheritance + Carry in,
# Repair and Drift out; the same comparison serves all three, so "plan again after the repair gives nothing" holds.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import (
    Carry,
    Drift,
    Grant,
    IndexShape,
    Inheritance,
    Options,
    Repair,
)

IDENTITY_WORDS = {"d": "default", "f": "full", "n": "nothing", "i": "index"}


def refuse_template_mismatch(inheritance: Inheritance) -> None:
    """A template table must be a plain table with the parent's columns (names and types): its indexes and storage
    parameters are applied to partitions, which have the parent's columns."""
    if inheritance.template is None:
        return
    if inheritance.template_relkind != "r":
        raise PlanError("%s: template_table %s is not a plain table (relkind %r); give a table created with the "
                        "parent's columns, e.g. CREATE TABLE %s (LIKE %s)" % (
                            inheritance.qualified, inheritance.template, inheritance.template_relkind,
                            inheritance.template, inheritance.qualified))
    mismatch = column_mismatch(inheritance.parent_columns, inheritance.template_columns)
    if mismatch:
        raise PlanError("%s: the columns of template_table %s differ from the parent's (%s); nothing was changed. "
                        "Give the template exactly the parent's columns." % (
                            inheritance.qualified, inheritance.template, "; ".join(mismatch)))


def column_mismatch(parent: Sequence[Tuple[str, str]], template: Sequence[Tuple[str, str]]) -> List[str]:
    """How the template's (name, type) columns differ from the parent's, one sentence each; empty when they match."""
    parent_types, template_types = dict(parent), dict(template)
    found = ["%s is missing" % name for name, _type in parent if name not in template_types]
    found += ["%s is not a column of the parent" % name for name, _type in template if name not in parent_types]
    found += ["%s is %s, not %s" % (name, template_types[name], kind) for name, kind in parent
              if name in template_types and template_types[name] != kind]
    return found


def refuse_unownable(inheritance: Inheritance) -> None:
    """Partitions are given the parent's owner with ALTER TABLE ... OWNER TO, which the connecting role may do only
    as a superuser or as a member of the owner role (that can SET ROLE to it), and only when the owner may create in
    the schema. Refused before any DDL, naming the role and the remedy."""
    owner, creator = inheritance.owner, inheritance.creator
    if owner == creator or inheritance.creator_is_superuser:
        return
    if not inheritance.creator_can_become_owner:
        raise PlanError(
            "%s is owned by %s, and its partitions must be too, but the connecting role %s is neither a superuser "
            "nor a member of %s; nothing was changed. Connect as (or set session_role to) %s, or run GRANT %s TO %s."
            % (inheritance.qualified, owner, creator, owner, owner, owner, creator))
    if not inheritance.owner_can_create:
        raise PlanError(
            "%s is owned by %s, which has no CREATE privilege on schema %s, so partitions cannot be given to it; "
            "nothing was changed. Run GRANT CREATE ON SCHEMA %s TO %s, or connect as a superuser."
            % (inheritance.qualified, owner, inheritance.schema, inheritance.schema, owner))


def wanted_privileges(inheritance: Inheritance) -> FrozenSet[Grant]:
    """The parent's privileges and the template's, one entry per role, privilege and column (grantable wins)."""
    return normalized(list(inheritance.privileges) + list(inheritance.template_privileges))


def normalized(grants: Iterable[Grant]) -> FrozenSet[Grant]:
    grantable: Dict[tuple, bool] = {}
    for grant in grants:
        grantable[grant.key] = grantable.get(grant.key, False) or grant.grantable
    return frozenset(Grant(grantee, privilege, option, column)
                     for (grantee, privilege, column), option in grantable.items())


def after_owner_change(grants: Iterable[Grant], old_owner: str, new_owner: str) -> FrozenSet[Grant]:
    """The privileges after ALTER TABLE ... OWNER TO: the old owner's entries become the new owner's."""
    return normalized(dataclasses.replace(grant, grantee=new_owner) if grant.grantee == old_owner else grant
                      for grant in grants)


def _ordered(grants: Iterable[Grant]) -> Tuple[Grant, ...]:
    return tuple(sorted(grants, key=lambda g: (g.grantee or "", g.column or "", g.privilege, g.grantable)))


Grants = Tuple[Grant, ...]


def privilege_difference(wanted: FrozenSet[Grant], have: FrozenSet[Grant]) -> Tuple[Grants, Grants]:
    """(missing, extra): what `have` lacks of `wanted` (a grant option included) and what it holds beyond it; an
    extra item with grantable=True is a grant option `wanted` does not give, the privilege itself being wanted."""
    have_by_key = {grant.key: grant for grant in have}
    wanted_by_key = {grant.key: grant for grant in wanted}
    missing = [grant for grant in wanted
               if grant.key not in have_by_key or grant.grantable and not have_by_key[grant.key].grantable]
    extra = [dataclasses.replace(grant, grantable=False) if grant.key not in wanted_by_key else grant
             for grant in have if grant.key not in wanted_by_key
             or grant.grantable and not wanted_by_key[grant.key].grantable]
    return _ordered(missing), _ordered(extra)


def privilege_changes(wanted: FrozenSet[Grant], have: FrozenSet[Grant]) -> Tuple[Grants, Grants]:
    """(grants, revokes) that turn `have` into `wanted`, revokes to run first; a revoke with grantable=True takes the
    grant option only.

    Revoking a privilege on the table revokes it on every column too, so the column privileges of that role and
    privilege that are wanted are granted again after it.
    """
    missing, revokes = privilege_difference(wanted, have)
    revoked_on_table = {(grant.grantee, grant.privilege) for grant in revokes if grant.column is None}
    again = [grant for grant in wanted if grant.column is not None and grant not in missing
             and (grant.grantee, grant.privilege) in revoked_on_table]
    return _ordered(list(missing) + again), revokes


def _identity_change(inheritance: Inheritance, carry: Carry) -> Tuple[Optional[str], Optional[str], bool]:
    """(kind, index, repairable): the replica identity the partition needs, None when it has it."""
    wanted = inheritance.replica_identity
    if wanted != "i":
        return (wanted if carry.replica_identity != wanted else None), None, True
    if carry.new:
        return "i", None, True
    match = carry.parent_identity_match
    if carry.replica_identity == "i" and carry.identity_index == match and match is not None:
        return None, None, True
    return "i", match, match is not None


def _option_changes(inheritance: Inheritance, carry: Carry) -> Tuple[Options, Tuple[str, ...]]:
    if inheritance.reloptions is None or carry.is_partitioned:
        return (), ()
    wanted, have = dict(inheritance.reloptions), dict(carry.reloptions)
    return (tuple(sorted((name, value) for name, value in wanted.items() if have.get(name) != value)),
            tuple(sorted(name for name in have if name not in wanted)))


def _index_changes(inheritance: Inheritance, carry: Carry) -> Tuple[Tuple[str, ...], Tuple[IndexShape, ...]]:
    """(invalid leftovers of the template's indexes to drop, the template's indexes to create)."""
    if carry.is_partitioned:
        return (), ()
    shapes = set(inheritance.template_indexes)
    return (tuple(sorted(name for name, shape in carry.invalid_indexes if shape in shapes)),
            tuple(shape for shape in inheritance.template_indexes if shape not in carry.indexes))


def fresh_carry(inheritance: Inheritance, schema: str, name: str) -> Carry:
    """What a partition created by CREATE TABLE (LIKE parent INCLUDING ALL) with the inherited clauses (access
    method, storage parameters, tablespace, persistence) carries before anything else runs."""
    return Carry(schema=schema, name=name, owner=inheritance.creator, privileges=inheritance.creator_privileges,
                 reloptions=inheritance.reloptions or (), tablespace=inheritance.expected_tablespace,
                 indexes=inheritance.parent_indexes, new=True)


def repair_for(inheritance: Inheritance, carry: Carry) -> Repair:
    """The changes that make `carry` carry what `inheritance` says; empty when it does. The tablespace is never
    changed here: moving a partition rewrites it under ACCESS EXCLUSIVE, which is no short repair."""
    owner = inheritance.owner if carry.owner != inheritance.owner else None
    have = after_owner_change(carry.privileges, carry.owner, inheritance.owner)
    grants, revokes = privilege_changes(wanted_privileges(inheritance), have)
    identity, index, repairable = _identity_change(inheritance, carry)
    set_options, reset_options = _option_changes(inheritance, carry)
    drop_indexes, create_indexes = _index_changes(inheritance, carry)
    return Repair(carry.schema, carry.name, owner=owner, grants=grants, revokes=revokes,
                  replica_identity=identity if repairable else None, identity_index=index, set_options=set_options,
                  reset_options=reset_options, drop_indexes=drop_indexes, create_indexes=create_indexes)


def new_partition(inheritance: Inheritance, schema: str, name: str) -> Repair:
    """What a partition being created must be given in its creation transaction, beyond the clauses of its
    CREATE TABLE: the one function every path that creates partitions calls."""
    return repair_for(inheritance, fresh_carry(inheritance, schema, name))


def new_sub_parent(inheritance: Inheritance, schema: str, name: str) -> Repair:
    """What a partition created partitioned (LIKE parent ... PARTITION BY) must be given: it has no storage, so no
    storage parameters or template indexes (its leaves get those)."""
    carry = dataclasses.replace(fresh_carry(inheritance, schema, name), reloptions=(), is_partitioned=True)
    return repair_for(inheritance, carry)


def new_leaf(inheritance: Inheritance, schema: str, name: str) -> Repair:
    """What a sub-partition created PARTITION OF a new partitioned partition must be given; its CREATE TABLE carries
    the storage parameters and access method, PARTITION OF the parent's indexes and tablespace."""
    return new_partition(inheritance, schema, name)


def identity_text(kind: Optional[str], index: Optional[str]) -> Optional[str]:
    if kind is None:
        return None
    return "index %s" % index if kind == "i" and index else IDENTITY_WORDS[kind]


def drift(inheritance: Inheritance, carry: Carry) -> List[Drift]:
    """How an existing partition differs from what its parent (or template) gives it; empty when it does not."""
    found = []
    if carry.owner != inheritance.owner:
        found.append(Drift("owner", inheritance.owner, carry.owner))
    have = after_owner_change(carry.privileges, carry.owner, inheritance.owner)
    missing, extra = privilege_difference(wanted_privileges(inheritance), have)
    if missing or extra:
        found.append(Drift("privileges", missing=tuple(str(g) for g in missing), extra=tuple(str(g) for g in extra)))
    identity, index, repairable = _identity_change(inheritance, carry)
    if identity is not None:
        wanted = identity_text(identity, index) if repairable else "index attached to %s (the partition has none)" % (
            inheritance.identity_index,)
        found.append(Drift("replica_identity", wanted, identity_text(carry.replica_identity, carry.identity_index)))
    set_options, reset_options = _option_changes(inheritance, carry)
    if set_options or reset_options:
        found.append(Drift("reloptions", dict(inheritance.reloptions or ()), dict(carry.reloptions)))
    if carry.tablespace != inheritance.expected_tablespace:
        found.append(Drift("tablespace", inheritance.expected_tablespace, carry.tablespace))
    drop_indexes, create_indexes = _index_changes(inheritance, carry)
    if create_indexes:
        found.append(Drift("template_indexes", missing=tuple(str(shape) for shape in create_indexes)))
    if drop_indexes:
        found.append(Drift("invalid_indexes", extra=drop_indexes))
    return found
