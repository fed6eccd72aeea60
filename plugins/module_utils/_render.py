# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: SQL for the engine's actions, composed with psycopg's sql module only.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.pgfleet.partitions.plugins.module_utils._connection import sql
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import (
    INTEGER_KEY_TYPES,
    TIME_KEY_TYPES,
    HashBounds,
    ListBounds,
    RangeBounds,
)

BOUNDS_CHECK = "pgfleet_bounds"
DEFAULT_EXCLUSION = "pgfleet_not_in_new_partition"


def qualified(schema, name):
    return sql.Identifier(schema, name)


def typed(value, key_type):
    """A literal cast to the key's type, so PostgreSQL can prove constraints equal to partition bounds."""
    if key_type in TIME_KEY_TYPES:
        text = value.isoformat(" ") if hasattr(value, "hour") else value.isoformat()
        return sql.SQL("{}::{}").format(sql.Literal(text), sql.SQL(key_type))
    if key_type in INTEGER_KEY_TYPES:
        return sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(key_type))
    return sql.Literal(value)


def bound_spec(action):
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


def membership(state, action):
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


def create_like(state, action, tablespace=None):
    statement = sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL EXCLUDING IDENTITY)").format(
        qualified(action.schema, action.name), qualified(state.schema, state.name))
    if tablespace:
        statement = sql.SQL("{} TABLESPACE {}").format(statement, sql.Identifier(tablespace))
    return statement


def add_bounds_check(state, action):
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({})").format(
        qualified(action.schema, action.name), sql.Identifier(BOUNDS_CHECK), membership(state, action))


def drop_constraint(schema, name, constraint):
    return sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(qualified(schema, name), sql.Identifier(constraint))


def move_rows(state, action):
    """Rows of the default partition that belong in the new partition, moved in one statement."""
    default = state.default_partition
    columns = sql.SQL(", ").join(sql.Identifier(column) for column in state.columns)
    return sql.SQL("WITH moved AS (DELETE FROM {default} WHERE {predicate} RETURNING {columns}) "
                   "INSERT INTO {target} ({columns}) SELECT {columns} FROM moved").format(
        default=qualified(default.schema, default.name), predicate=membership(state, action), columns=columns,
        target=qualified(action.schema, action.name))


def count_rows_to_move(state, action):
    default = state.default_partition
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        qualified(default.schema, default.name), membership(state, action))


def any_rows_to_move(state, action):
    default = state.default_partition
    return sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(
        qualified(default.schema, default.name), membership(state, action))


def add_default_exclusion(state, action):
    default = state.default_partition
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (NOT ({})) NOT VALID").format(
        qualified(default.schema, default.name), sql.Identifier(DEFAULT_EXCLUSION), membership(state, action))


def validate_default_exclusion(state):
    default = state.default_partition
    return sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
        qualified(default.schema, default.name), sql.Identifier(DEFAULT_EXCLUSION))


def attach(state, action):
    return sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
        qualified(state.schema, state.name), qualified(action.schema, action.name), bound_spec(action))
