# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the plain data of converting a live table into a partitioned one: the names of
# the conversion's relations, the tables as the catalog has them, and the request. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Grant
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Relation, parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.naming import partition_name

STAGES = ("prepared", "filled", "swapped", "rolled_back")
STRATEGIES = ("range", "list", "hash")
MIRROR_TRIGGER = "pgfleet_convert_mirror"
TRUNCATE_TRIGGER = "pgfleet_convert_mirror_truncate"


@dataclass(frozen=True)
class Names:
    """The relations and functions of one conversion; all in the table's schema, all at most 63 bytes."""

    schema: str
    live: str
    partitioned: str
    retired: str
    forward_function: str
    backward_function: str


def names_for(schema: str, table: str) -> Names:
    return Names(schema, table, partition_name(table, "partitioned"), partition_name(table, "retired"),
                 partition_name(table, "pgfleet_mirror"), partition_name(table, "pgfleet_mirror_back"))


@dataclass(frozen=True)
class ConversionFacts:
    names: Names
    live: Optional[Relation]
    partitioned: Optional[Relation]
    retired: Optional[Relation]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type() with the type modifier, usable in a cast
    key_type: str = ""  # format_type() without it, as the engine names key types
    generated: bool = False


@dataclass(frozen=True)
class OwnedSequence:
    column: str
    identity: bool  # an identity column's own sequence (else a serial's sequence, shared through the default)
    oid: int
    schema: str
    name: str


@dataclass(frozen=True)
class Index:
    oid: int
    name: str
    columns: Tuple[str, ...]  # key columns; an expression leaves its place empty
    primary: bool = False
    unique: bool = False
    partial_or_expression: bool = False
    shape: str = ""  # pg_get_indexdef from USING on: the same for an index and its copy on the other table
    constraint: str = ""  # contype of the constraint the index backs, '' for a plain index


@dataclass(frozen=True)
class ForeignKey:
    name: str
    schema: str  # of the referencing table
    table: str
    columns: Tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: Tuple[str, ...]
    match: str = "s"
    on_update: str = "a"
    on_delete: str = "a"
    deferrable: bool = False
    deferred: bool = False
    table_is_partitioned: bool = False


@dataclass(frozen=True)
class SourceTable:
    """One table of the conversion (the regular one, or the partitioned one at a swap), as the catalog has it."""

    oid: int
    schema: str
    name: str
    owner: str
    columns: Tuple[Column, ...]
    indexes: Tuple[Index, ...] = ()
    incoming: Tuple[ForeignKey, ...] = ()  # foreign keys of other tables referencing this one
    outgoing: Tuple[ForeignKey, ...] = ()
    grants: Tuple[Grant, ...] = ()
    sequences: Tuple[OwnedSequence, ...] = ()
    relkind: str = "r"
    dependents: Tuple[str, ...] = ()  # views, rules and SQL functions that read the table by oid
    not_carried: Tuple[str, ...] = ()  # triggers, policies, publications: reported, not copied

    def column(self, name: str) -> Optional[Column]:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def primary_key(self) -> Optional[Index]:
        return next((i for i in self.indexes if i.primary), None)

    @property
    def copied_columns(self) -> Tuple[str, ...]:
        """Columns a copy writes: generated ones compute themselves."""
        return tuple(c.name for c in self.columns if not c.generated)

    def types(self, columns: Sequence[str]) -> Tuple[str, ...]:
        return tuple(self.column(c).type for c in columns)


@dataclass(frozen=True)
class ConvertRequest:
    state: str
    strategy: Optional[str] = None
    column: Optional[str] = None
    batch_size: int = 10000
    sleep: float = 0.0


def request_from_params(params: dict) -> ConvertRequest:
    """The validated request of postgres_partition_convert's own options (refusals before any connection)."""
    state, strategy = params.get("state"), params.get("strategy")
    if state not in STAGES:
        raise PlanError("state must be one of %s, not %r" % (", ".join(STAGES), state))
    column = params.get("column")
    if state != "rolled_back" and (not strategy or not column):
        raise PlanError("state=%s needs strategy and column (the partitioning to convert to)" % state)
    if column is not None:
        parsed = parse_table_name(column, option="column")
        if parsed.schema is not None:
            raise PlanError("column %r must be a plain column name" % (column,))
        column = parsed.name
    if strategy == "list" and not params.get("list_partitions"):
        raise PlanError("strategy=list needs list_partitions, e.g. {active: [false], completed: [true]}")
    if (params.get("batch_size") or 0) < 1 or (params.get("sleep") or 0) < 0:
        raise PlanError("batch_size must be 1 or more and sleep 0 or more (got %s and %s)"
                        % (params.get("batch_size"), params.get("sleep")))
    return ConvertRequest(state=state, strategy=strategy, column=column, batch_size=params["batch_size"],
                          sleep=float(params.get("sleep") or 0))
