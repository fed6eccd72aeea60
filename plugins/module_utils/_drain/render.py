# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the SQL of draining the default partition, composed with psycopg's sql module only:
# the one scan that groups its rows by partition and block chunk, the batch that moves one chunk's rows, the
# constraint that lets ATTACH skip scanning the default partition, and the marker of a table being filled.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    TIME_KEY_TYPES,
    CreatePartition,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import EPOCH_SCALE, IntegerGrid
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import sql
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.render import comment_on_table, qualified
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.render import (
    add_default_exclusion,
    membership,
    validate_default_exclusion,
)

EXCLUSION = "pgfleet_drain_excluded"
# Kinds of rows the grouping scan tells apart.
GROUPED, NULL_KEY, OUTSIDE = 0, 1, 2
# Keys beyond these have no Python date: no partition of this engine can hold them.
_FIRST_DAY, _LAST_DAY = "0001-01-02", "9999-12-30"


def _bucket(state: TableState, grid: Any, key: sql.Composable) -> sql.Composable:
    """The server's expression for the grid bucket of a key: every row of one bucket gets the same value."""
    if grid is None:  # LIST: each value its own bucket
        return sql.SQL("{}::text").format(key)
    if isinstance(grid, IntegerGrid):
        return sql.SQL("floor({}::numeric / {})").format(key, sql.Literal(grid.step))
    # Buckets no coarser than the grid's (a grid counted from an anchor may split date_trunc's): the job groups
    # them into the grid's buckets from their lowest and highest keys.
    unit = sql.Literal(grid.trunc_unit)
    if grid.epoch is not None or grid.uuid:
        if grid.uuid:
            moment = sql.SQL("to_timestamp(('x' || left(replace({}::text, '-', ''), 12))::bit(48)::bigint "
                             "/ 1000.0)").format(key)
        else:
            moment = sql.SQL("to_timestamp({}::double precision / {})").format(
                key, sql.Literal(EPOCH_SCALE[grid.epoch]))
        return sql.SQL("date_trunc({}, {} AT TIME ZONE {})").format(unit, moment, sql.Literal(grid.tz.key))
    if state.key_type == "timestamp with time zone":
        return sql.SQL("date_trunc({}, {} AT TIME ZONE {})").format(unit, key, sql.Literal(grid.tz.key))
    return sql.SQL("date_trunc({}, {}::timestamp)").format(unit, key)


def _in_range(state: TableState, key: sql.Composable) -> sql.Composable:
    if state.key_type not in TIME_KEY_TYPES:
        return sql.SQL("true")
    return sql.SQL("{key} BETWEEN {first}::{type} AND {last}::{type}").format(
        key=key, first=sql.Literal(_FIRST_DAY), last=sql.Literal(_LAST_DAY), type=sql.SQL(state.key_type))


def _key_as_read(state: TableState, grid: Any, key: sql.Composable) -> sql.Composable:
    return sql.SQL("{}::text").format(key) if grid is None else key


def groups(state: TableState, grid: Any, blocks: int, first_block: Optional[int] = None,
           last_block: Optional[int] = None) -> sql.Composable:
    """One scan of the default partition (of its blocks from first_block, before last_block, where given): per kind
    (grouped, NULL key, outside), bucket and chunk of `blocks` blocks, the lowest and highest key and the rows."""
    default = state.default_partition
    key = sql.Identifier(state.key)
    kind = sql.SQL(
        "CASE WHEN {key} IS NULL THEN {null} WHEN NOT ({in_range}) THEN {outside} ELSE {grouped} END").format(
        key=key, null=sql.Literal(NULL_KEY), in_range=_in_range(state, key), outside=sql.Literal(OUTSIDE),
        grouped=sql.Literal(GROUPED))
    return sql.SQL(
        "SELECT kind, min(key), max(key), count(*), chunk FROM ("
        "SELECT {kind} AS kind, CASE WHEN {kind} = {grouped} THEN {bucket} END AS bucket, "
        "CASE WHEN {kind} = {grouped} THEN {as_read} END AS key, "
        "(ctid::text::point)[0]::bigint / {blocks} AS chunk FROM {default} WHERE {window}) AS rows "
        "GROUP BY kind, bucket, chunk ORDER BY kind, chunk"
    ).format(kind=kind, grouped=sql.Literal(GROUPED), bucket=_bucket(state, grid, key),
             as_read=_key_as_read(state, grid, key), blocks=sql.Literal(blocks),
             default=qualified(default.schema, default.name), window=_blocks(first_block, last_block))


def _blocks(first_block: Optional[int], last_block: Optional[int]) -> sql.Composable:
    """The rows in blocks [first_block, last_block) (a TID range scan reads only those), either end open if None."""
    window = []
    if first_block is not None:
        window.append(sql.SQL("ctid >= {}::tid").format(sql.Literal("(%d,0)" % first_block)))
    if last_block is not None:
        window.append(sql.SQL("ctid < {}::tid").format(sql.Literal("(%d,0)" % last_block)))
    return sql.SQL(" AND ").join(window) if window else sql.SQL("true")


def pages_and_tuples(state: TableState) -> sql.Composable:
    default = state.default_partition
    return sql.SQL("SELECT pg_relation_size(c.oid) / current_setting('block_size')::int, c.reltuples "
                   "FROM pg_class c WHERE c.oid = to_regclass({})").format(
        sql.Literal("%s.%s" % (_quoted(default.schema), _quoted(default.name))))


def _quoted(name: str) -> str:
    return '"%s"' % name.replace('"', '""')


def move_chunk(state: TableState, action: CreatePartition, first_block: Optional[int],
               last_block: Optional[int]) -> sql.Composable:
    """The rows of the action's partition in blocks [first_block, last_block) of the default partition (all its
    blocks when both are None), moved into the (not yet attached) partition in one statement."""
    default = state.default_partition
    columns = sql.SQL(", ").join(sql.Identifier(column) for column in state.columns)
    window = _blocks(first_block, last_block)
    return sql.SQL("WITH moved AS (DELETE FROM {default} WHERE {window} AND {predicate} RETURNING {columns}) "
                   "INSERT INTO {target} ({columns}) SELECT {columns} FROM moved").format(
        default=qualified(default.schema, default.name), window=window, predicate=membership(state, action),
        columns=columns, target=qualified(action.schema, action.name))


def mark(action: CreatePartition, text: Optional[str]) -> sql.Composable:
    return comment_on_table(action.schema, action.name, text)


def exclude_from_default(state: TableState, action: CreatePartition) -> sql.Composable:
    return add_default_exclusion(state, action, EXCLUSION)


def validate_exclusion(state: TableState) -> sql.Composable:
    return validate_default_exclusion(state, EXCLUSION)
