# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the SQL of inheritance, composed with psycopg's sql module only: the CREATE TABLE of
# a new partition with what it inherits (persistence, access method, storage parameters, tablespace), and the
# statements of a Repair, in the creation transaction of a new partition or as repairs of an existing one.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any, Callable, List, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import (
    IndexShape,
    Inheritance,
    Options,
    Repair,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import sql
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.render import (
    change_owner,
    grants,
    qualified,
    revokes,
)

_IDENTITY = {"d": "DEFAULT", "f": "FULL", "n": "NOTHING"}


def _options(options: Options) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(name), sql.Literal(value))
                              for name, value in options)


def create_like(inheritance: Inheritance, schema: str, name: str, partition_by: Any = None) -> sql.Composable:
    """The new partition as a table of its own: the parent's columns, defaults, constraints, indexes, comments and
    statistics (LIKE ... INCLUDING ALL; identity columns belong to the parent), and what LIKE does not copy but a
    partition created by PARTITION OF would have: persistence, access method, tablespace; plus the template's
    storage parameters. Partitioned by `partition_by` (a SubPartitioning), it has no storage: only the tablespace,
    which its sub-partitions take."""
    if partition_by is not None:
        statement = sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL EXCLUDING IDENTITY) PARTITION BY {} ({})").format(
            qualified(schema, name), qualified(inheritance.schema, inheritance.table),
            sql.SQL(partition_by.strategy.upper()), sql.Identifier(partition_by.column))
        if inheritance.tablespace:
            statement = sql.SQL("{} TABLESPACE {}").format(statement, sql.Identifier(inheritance.tablespace))
        return statement
    statement = sql.SQL("CREATE {}TABLE {} (LIKE {} INCLUDING ALL EXCLUDING IDENTITY)").format(
        sql.SQL("UNLOGGED " if inheritance.unlogged else ""), qualified(schema, name),
        qualified(inheritance.schema, inheritance.table))
    return _storage_clauses(inheritance, statement)


def create_attached(inheritance: Inheritance, schema: str, name: str, bounds: sql.Composable) -> sql.Composable:
    """The new partition created attached (PARTITION OF ... `bounds`), with the storage create_like gives it."""
    return _partition_of(inheritance, schema, name, qualified(inheritance.schema, inheritance.table), bounds)


def create_sub_partition(inheritance: Inheritance, schema: str, name: str, parent_schema: str, parent_name: str,
                         bounds: sql.Composable) -> sql.Composable:
    """A sub-partition of a partition being created (not attached yet, so no lock on the set): PARTITION OF gives
    it the indexes and tablespace; persistence, access method and storage parameters are given here."""
    return _partition_of(inheritance, schema, name, qualified(parent_schema, parent_name), bounds, tablespace=False)


def _partition_of(inheritance: Inheritance, schema: str, name: str, parent: sql.Composable, bounds: sql.Composable,
                  tablespace: bool = True) -> sql.Composable:
    statement = sql.SQL("CREATE {}TABLE {} PARTITION OF {} {}").format(
        sql.SQL("UNLOGGED " if inheritance.unlogged else ""), qualified(schema, name), parent, bounds)
    return _storage_clauses(inheritance, statement, tablespace)


def _storage_clauses(inheritance: Inheritance, statement: sql.Composable, tablespace: bool = True) -> sql.Composable:
    if inheritance.access_method:
        statement = sql.SQL("{} USING {}").format(statement, sql.Identifier(inheritance.access_method))
    if inheritance.reloptions:
        statement = sql.SQL("{} WITH ({})").format(statement, _options(inheritance.reloptions))
    if inheritance.tablespace and tablespace:
        statement = sql.SQL("{} TABLESPACE {}").format(statement, sql.Identifier(inheritance.tablespace))
    return statement


def replica_identity(schema: str, name: str, kind: str, index: Any = None) -> sql.Composable:
    if kind == "i":
        return sql.SQL("ALTER TABLE {} REPLICA IDENTITY USING INDEX {}").format(
            qualified(schema, name), sql.Identifier(index))
    return sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(qualified(schema, name), sql.SQL(_IDENTITY[kind]))


def identity_from_parent_index(inheritance: Inheritance, schema: str, name: str,
                               as_string: Callable[[Any], str], depth: int = 1) -> sql.Composable:
    """REPLICA IDENTITY USING the partition's index that ATTACH attached to the parent's identity index, whose
    name PostgreSQL chose when LIKE copied it: looked up in the same transaction, right after ATTACH. `as_string`
    turns the block's body into text (the connection's quoting), as a DO statement takes a string. A sub-partition
    (depth 2) has its index attached to its parent partition's, which is attached to the parent's."""
    partition = sql.Literal(as_string(qualified(schema, name)))
    via = sql.SQL("JOIN pg_inherits i2 ON i2.inhparent = i.inhrelid " if depth == 2 else "")
    leaf = sql.SQL("i2" if depth == 2 else "i")
    lookup = sql.SQL(
        "SELECT c.relname FROM pg_inherits i {via}JOIN pg_index x ON x.indexrelid = {leaf}.inhrelid "
        "JOIN pg_class c ON c.oid = {leaf}.inhrelid WHERE i.inhparent = {index}::regclass "
        "AND x.indrelid = {partition}::regclass").format(
        via=via, leaf=leaf, index=sql.Literal(as_string(qualified(inheritance.schema, inheritance.identity_index))),
        partition=partition)
    body = sql.SQL("BEGIN EXECUTE format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', {}::regclass, ({})); "
                   "END").format(partition, lookup)
    return sql.SQL("DO {}").format(sql.Literal(as_string(body)))


def set_options(schema: str, name: str, options: Options) -> sql.Composable:
    return sql.SQL("ALTER TABLE {} SET ({})").format(qualified(schema, name), _options(options))


def reset_options(schema: str, name: str, names: Sequence[str]) -> sql.Composable:
    return sql.SQL("ALTER TABLE {} RESET ({})").format(
        qualified(schema, name), sql.SQL(", ").join(sql.Identifier(option) for option in names))


def create_index(schema: str, name: str, shape: IndexShape, concurrently: bool = False) -> sql.Composable:
    """The template's index on a partition, named by PostgreSQL as LIKE names the parent's. The shape is the
    server's own text (pg_get_indexdef), so it goes in as it is."""
    return sql.SQL("CREATE {}INDEX {}ON {} {}").format(
        sql.SQL("UNIQUE " if shape.unique else ""), sql.SQL("CONCURRENTLY " if concurrently else ""),
        qualified(schema, name), sql.SQL(shape.definition))


def drop_index(schema: str, index: str) -> sql.Composable:
    return sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(qualified(schema, index))


def _table_changes(repair: Repair) -> List[sql.Composable]:
    """Owner first (OWNER TO hands the old owner's privileges to the new one), then revokes, then grants."""
    statements = [change_owner(repair.schema, repair.name, repair.owner)] if repair.owner else []
    statements += revokes(repair.schema, repair.name, repair.revokes)
    statements += grants(repair.schema, repair.name, repair.grants)
    if repair.set_options:
        statements.append(set_options(repair.schema, repair.name, repair.set_options))
    if repair.reset_options:
        statements.append(reset_options(repair.schema, repair.name, repair.reset_options))
    return statements


def new_partition(inheritance: Inheritance, repair: Repair, as_string: Callable[[Any], str],
                  depth: int = 1) -> Tuple[List[sql.Composable], List[sql.Composable]]:
    """The statements a new partition's creation transaction runs (before ATTACH, after ATTACH) so that it carries
    what `repair` (from _inherit.plan.new_partition) says. The template's indexes are built on the empty table."""
    schema, name = repair.schema, repair.name
    before = [create_index(schema, name, shape) for shape in repair.create_indexes] + _table_changes(repair)
    after = []
    if repair.replica_identity == "i" and repair.identity_index is None:
        after.append(identity_from_parent_index(inheritance, schema, name, as_string, depth))
    elif repair.replica_identity is not None:
        before.append(replica_identity(schema, name, repair.replica_identity, repair.identity_index))
    return before, after


def repair_statements(repair: Repair) -> Tuple[List[sql.Composable], List[sql.Composable]]:
    """The statements that repair an existing partition: (one short transaction, then each outside a transaction:
    invalid leftovers dropped and the template's missing indexes built CONCURRENTLY, so writers go on)."""
    schema, name = repair.schema, repair.name
    transaction = _table_changes(repair)
    if repair.replica_identity is not None:
        transaction.append(replica_identity(schema, name, repair.replica_identity, repair.identity_index))
    concurrent = [drop_index(schema, index) for index in repair.drop_indexes]
    concurrent += [create_index(schema, name, shape, concurrently=True) for shape in repair.create_indexes]
    return transaction, concurrent
