# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the SQL of postgres_partition, composed with psycopg's sql module only.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Inheritance, Repair
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    INTEGER_KEY_TYPES,
    TIME_KEY_TYPES,
    CreatePartition,
    HashBounds,
    ListBounds,
    RangeBounds,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import sql
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.render import drop_constraint, qualified
from ansible_collections.pgfleet.partitions.plugins.module_utils._inherit import render as inherit_render
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan_creation import Creation

BOUNDS_CHECK = "pgfleet_bounds"
DEFAULT_EXCLUSION = "pgfleet_not_in_new_partition"


@dataclass
class CreationStatements:
    """The statements of one partition creation, grouped by the transaction they run in."""

    prepare: List[Any] = field(default_factory=list)  # each its own short transaction, before the main one
    main: List[Any] = field(default_factory=list)
    move: Any = None  # the statement of `main` that moves rows out of the default partition
    undo_prepare: Any = None  # what removes the prepared constraint when it cannot be validated

    @property
    def all(self) -> List[Any]:
        return self.prepare + self.main


def typed(value: Any, key_type: str) -> sql.Composable:
    """A literal cast to the key's type, so PostgreSQL can prove constraints equal to partition bounds."""
    if key_type in TIME_KEY_TYPES:
        text = value.isoformat(" ") if hasattr(value, "hour") else value.isoformat()
        return sql.SQL("{}::{}").format(sql.Literal(text), sql.SQL(key_type))
    if key_type in INTEGER_KEY_TYPES:
        return sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(key_type))
    return sql.Literal(value)


def bound_spec(action: CreatePartition) -> sql.Composable:
    """FOR VALUES ... / DEFAULT for a CreatePartition."""
    bounds = action.bounds
    if bounds is None:
        return sql.SQL("DEFAULT")
    if isinstance(bounds, RangeBounds):
        return sql.SQL("FOR VALUES FROM ({}) TO ({})").format(sql.Literal(bounds.lower), sql.Literal(bounds.upper))
    if isinstance(bounds, ListBounds):
        return sql.SQL("FOR VALUES IN ({})").format(sql.SQL(", ").join(sql.Literal(v) for v in action.values))
    if isinstance(bounds, HashBounds):
        return sql.SQL("FOR VALUES WITH (MODULUS {}, REMAINDER {})").format(
            sql.Literal(bounds.modulus), sql.Literal(bounds.remainder))
    raise TypeError("unknown bounds %r" % (bounds,))


def membership(state: TableState, action: CreatePartition) -> sql.Composable:
    """A predicate true exactly for the rows that belong in the partition the action creates."""
    column, key_type = sql.Identifier(state.key), state.key_type
    bounds = action.bounds
    if isinstance(bounds, RangeBounds):
        return sql.SQL("{key} IS NOT NULL AND {key} >= {lower} AND {key} < {upper}").format(
            key=column, lower=typed(bounds.lower, key_type), upper=typed(bounds.upper, key_type))
    values = [v for v in action.values if v is not None]
    parts = []
    if values:
        parts.append(sql.SQL("{} IN ({})").format(column, sql.SQL(", ").join(sql.Literal(v) for v in values)))
    if len(values) != len(action.values):
        parts.append(sql.SQL("{} IS NULL").format(column))
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))


def add_bounds_check(state: TableState, action: CreatePartition) -> sql.Composable:
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({})").format(
        qualified(action.schema, action.name), sql.Identifier(BOUNDS_CHECK), membership(state, action))


def move_rows(state: TableState, action: CreatePartition) -> sql.Composable:
    """Rows of the default partition that belong in the new partition, moved in one statement."""
    default = state.default_partition
    columns = sql.SQL(", ").join(sql.Identifier(column) for column in state.columns)
    return sql.SQL("WITH moved AS (DELETE FROM {default} WHERE {predicate} RETURNING {columns}) "
                   "INSERT INTO {target} ({columns}) SELECT {columns} FROM moved").format(
        default=qualified(default.schema, default.name), predicate=membership(state, action), columns=columns,
        target=qualified(action.schema, action.name))


def rows_to_move_and_default_size(state: TableState, action: CreatePartition) -> sql.Composable:
    """The default partition's rows that belong in the new partition, and the default partition's size in bytes."""
    default = state.default_partition
    return sql.SQL("SELECT (SELECT count(*) FROM {default} WHERE {predicate}), "
                   "pg_relation_size(to_regclass(quote_ident({schema}) || '.' || quote_ident({name})))").format(
        default=qualified(default.schema, default.name), predicate=membership(state, action),
        schema=sql.Literal(default.schema), name=sql.Literal(default.name))


def add_default_exclusion(state: TableState, action: CreatePartition,
                          constraint: str = DEFAULT_EXCLUSION) -> sql.Composable:
    """A NOT VALID constraint keeping the action's range out of the default partition."""
    default = state.default_partition
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (NOT ({})) NOT VALID").format(
        qualified(default.schema, default.name), sql.Identifier(constraint), membership(state, action))


def validate_default_exclusion(state: TableState, constraint: str = DEFAULT_EXCLUSION) -> sql.Composable:
    default = state.default_partition
    return sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
        qualified(default.schema, default.name), sql.Identifier(constraint))


def attach(state: TableState, action: CreatePartition) -> sql.Composable:
    return sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
        qualified(state.schema, state.name), qualified(action.schema, action.name), bound_spec(action))


def list_values_as_key(state: TableState, values: Sequence[str]) -> sql.Composable:
    """Each value and the key type's own text of it."""
    return sql.SQL("SELECT v, v::{}::text FROM unnest({}::text[]) AS v").format(
        sql.SQL(state.key_type), sql.Literal(list(values)))


def lock_out_writers(state: TableState) -> sql.Composable:
    """Writes through the parent wait (before they route their rows); readers do not."""
    return sql.SQL("LOCK TABLE ONLY {} IN SHARE MODE").format(qualified(state.schema, state.name))


def creation_statements(state: TableState, creation: Creation, inheritance: Inheritance, inherited: Repair,
                        as_string: Callable[[Any], str], children_inherited: Sequence[Repair] = ()
                        ) -> CreationStatements:
    """The statements that create, fill and attach one partition as `creation` says, giving it in the same
    transaction what the parent (and template) carry: `inherited` (_inherit.plan.new_partition) of `inheritance`.
    `as_string` quotes as the connection does.

    Moving rows first locks the parent against writers (SHARE, which readers pass): a row a writer added to the
    default partition after the move's snapshot would make ATTACH fail. Writers then wait for this transaction before
    routing their rows, and route them to the new partition once it is attached. Locking the default partition
    instead would not do: a writer routes its row before it waits for that lock, and fails after the attach.
    """
    action, default = creation.action, state.default_partition
    statements = CreationStatements()
    if creation.moves_rows:
        statements.main.append(lock_out_writers(state))
    before_attach, after_attach = inherit_render.new_partition(inheritance, inherited, as_string)
    if creation.in_place:
        statements.main.append(inherit_render.create_attached(inheritance, action.schema, action.name,
                                                              bound_spec(action)))
        statements.main += before_attach + after_attach
        return statements
    statements.main.append(inherit_render.create_like(inheritance, action.schema, action.name, action.partition_by))
    statements.main += before_attach
    # A sub-partitioned partition gets its sub-partitions before ATTACH: the set sees it whole or not at all.
    for child, child_inherited in zip(action.children, children_inherited):
        statements.main.append(inherit_render.create_sub_partition(inheritance, child.schema, child.name,
                                                                   action.schema, action.name, bound_spec(child)))
        child_before, child_after = inherit_render.new_partition(inheritance, child_inherited, as_string, depth=2)
        statements.main += child_before
        after_attach = after_attach + child_after
    if creation.bounds_checked:
        statements.main.append(add_bounds_check(state, action))
    if creation.moves_rows:
        statements.move = move_rows(state, action)
        statements.main.append(statements.move)
    statements.main.append(attach(state, action))
    statements.main += after_attach
    if creation.bounds_checked:
        statements.main.append(drop_constraint(action.schema, action.name, BOUNDS_CHECK))
    if creation.proves_absent:
        statements.prepare = [add_default_exclusion(state, action), validate_default_exclusion(state)]
        statements.undo_prepare = drop_constraint(default.schema, default.name, DEFAULT_EXCLUSION)
        statements.main.append(statements.undo_prepare)
    return statements
