# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the plain data of what partitions inherit from their parent and template table
# (owner, privileges, replica identity, storage, indexes), what one partition carries now, and the changes that
# make it carry the rest. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

INHERIT_MODES = ("new", "enforce")  # give new partitions what the parent carries; also repair existing ones
Options = Tuple[Tuple[str, str], ...]  # storage parameters (reloptions) as (name, value), sorted by name


@dataclass(frozen=True)
class Grant:
    """One privilege of one role on a table, or on one of its columns (aclexplode's rows, grantor left out)."""

    grantee: Optional[str]  # None is PUBLIC
    privilege: str
    grantable: bool = False
    column: Optional[str] = None

    @property
    def key(self) -> Tuple[Optional[str], str, Optional[str]]:
        return (self.grantee, self.privilege, self.column)

    def __str__(self) -> str:
        return "%s %s%s%s" % (self.grantee or "PUBLIC", self.privilege, " (%s)" % self.column if self.column else "",
                              " with grant option" if self.grantable else "")


@dataclass(frozen=True)
class IndexShape:
    """An index as pg_get_indexdef prints it after `ON <table>` (for example `USING btree (id)`): two indexes of
    tables with the same columns are the same index when their shapes are equal."""

    unique: bool
    definition: str

    def __str__(self) -> str:
        return ("UNIQUE " if self.unique else "") + self.definition


@dataclass(frozen=True)
class Inheritance:
    """What every partition of one table should carry, read once per table (a constant number of queries).

    The parent gives owner, privileges (its owner's own included), replica identity, access method, tablespace
    and persistence; the template table gives storage parameters, the indexes the parent cannot have (a unique
    index without the partition key) and privileges of its own. `creator` is the role that creates partitions
    (current_user), with the privileges a table it creates in the schema starts with.
    """

    schema: str
    table: str
    owner: str
    privileges: FrozenSet[Grant]  # the parent's, its owner's own included
    template_privileges: FrozenSet[Grant] = frozenset()  # the template's, but for its owner's own
    replica_identity: str = "d"  # d(efault), f(ull), n(othing), i(ndex)
    identity_index: Optional[str] = None  # the parent's replica identity index (in `schema`) when "i"
    access_method: Optional[str] = None  # None: the server's default_table_access_method
    tablespace: Optional[str] = None  # of new partitions: the `tablespace` option, else the parent's; None: default
    expected_tablespace: Optional[str] = None  # the same with the database's default tablespace as None
    unlogged: bool = False
    parent_indexes: FrozenSet[IndexShape] = frozenset()
    template: Optional[str] = None  # schema.name of the template table
    template_relkind: Optional[str] = None
    parent_columns: Tuple[Tuple[str, str], ...] = ()  # (name, type) of the parent's columns
    template_columns: Tuple[Tuple[str, str], ...] = ()  # and of the template's
    reloptions: Optional[Options] = None  # the template's; None without a template: storage is then not judged
    template_indexes: Tuple[IndexShape, ...] = ()  # the template's (those the parent has too come with LIKE)
    creator: str = ""
    creator_privileges: FrozenSet[Grant] = frozenset()
    creator_is_superuser: bool = True
    creator_can_become_owner: bool = True  # may SET ROLE to the owner (MEMBER before 16) and has its privileges
    owner_can_create: bool = True  # the owner has CREATE on the schema, which OWNER TO needs of it

    @property
    def qualified(self) -> str:
        return "%s.%s" % (self.schema, self.table)


@dataclass(frozen=True)
class Carry:
    """What one partition carries now, as the catalog has it."""

    schema: str
    name: str
    owner: str
    privileges: FrozenSet[Grant]
    replica_identity: str = "d"
    identity_index: Optional[str] = None  # its replica identity index when "i"
    parent_identity_match: Optional[str] = None  # its index attached to the parent's replica identity index
    reloptions: Options = ()
    tablespace: Optional[str] = None  # None: the database's default tablespace
    indexes: FrozenSet[IndexShape] = frozenset()  # valid ones
    invalid_indexes: Tuple[Tuple[str, IndexShape], ...] = ()  # (name, shape) left by a failed CREATE INDEX
    is_partitioned: bool = False  # itself partitioned: no storage of its own
    new: bool = False  # a partition being created: its index for the parent's identity index exists after ATTACH


@dataclass(frozen=True)
class Repair:
    """The changes that make one partition carry what its Inheritance says (empty when it does).

    `revokes` with grantable=True revoke the grant option only. `identity_index` is None for "i" on a new
    partition: its index is the one ATTACH attaches to the parent's, looked up in the same transaction.
    """

    schema: str
    name: str
    owner: Optional[str] = None
    grants: Tuple[Grant, ...] = ()
    revokes: Tuple[Grant, ...] = ()
    replica_identity: Optional[str] = None
    identity_index: Optional[str] = None
    set_options: Options = ()
    reset_options: Tuple[str, ...] = ()
    drop_indexes: Tuple[str, ...] = ()
    create_indexes: Tuple[IndexShape, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.owner or self.grants or self.revokes or self.replica_identity or self.set_options
                    or self.reset_options or self.drop_indexes or self.create_indexes)


@dataclass(frozen=True)
class Drift:
    """One way a partition differs from what its parent (or template) gives it, as postgres_partition_info says it.

    Scalar kinds (owner, replica_identity, reloptions, tablespace) have `expected` and `actual`; set kinds
    (privileges, template_indexes, invalid_indexes) list what is `missing` and what is `extra`.
    """

    kind: str
    expected: object = None
    actual: object = None
    missing: Tuple[str, ...] = ()
    extra: Tuple[str, ...] = ()

    def facts(self) -> dict:
        if self.kind in SET_KINDS:
            return {"kind": self.kind, "missing": list(self.missing), "extra": list(self.extra)}
        return {"kind": self.kind, "expected": self.expected, "actual": self.actual}


SET_KINDS = ("privileges", "template_indexes", "invalid_indexes")
