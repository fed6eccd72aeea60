# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the SQL of converting a live table into a partitioned one (the new table, the
# mirror trigger, the copy in batches, the verification, the swap), composed with psycopg's sql module only.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.model import (
    MIRROR_TRIGGER,
    TRUNCATE_TRIGGER,
    ForeignKey,
    Index,
    Names,
    OwnedSequence,
    SourceTable,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    CreatePartition,
    HashBounds,
    ListBounds,
    Partition,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.naming import partition_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import sql
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition import render as partition_render

Relname = Tuple[str, str]  # (schema, name)
_FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_FK_MATCH = {"f": "MATCH FULL", "s": "MATCH SIMPLE"}


def membership(state: TableState, partition: Partition) -> sql.Composable:
    """A predicate true exactly for the rows that belong in one partition of `state`."""
    bounds = partition.bounds
    if isinstance(bounds, HashBounds):
        return sql.SQL("satisfies_hash_partition({}::oid, {}, {}, {})").format(
            sql.Literal(state.oid), sql.Literal(bounds.modulus), sql.Literal(bounds.remainder),
            sql.Identifier(state.key))
    values = bounds.values if isinstance(bounds, ListBounds) else ()
    return partition_render.membership(state, CreatePartition(partition.schema, partition.name, bounds, values=values))


def _ids(names, prefix=None):
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(name) for name in names)
    return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.SQL(prefix), sql.Identifier(name)) for name in names)


def _matches(columns, left, right):
    return sql.SQL(" AND ").join(sql.SQL("{}.{} = {}.{}").format(sql.SQL(left), sql.Identifier(c), sql.SQL(right),
                                                                 sql.Identifier(c)) for c in columns)


def create_partitioned(names: Names, source: SourceTable, strategy: str, column: str) -> sql.Composable:
    """The new table: columns, defaults, identity, generated columns, CHECK and NOT NULL constraints, indexes,
    comments, storage and statistics of the source (LIKE ... INCLUDING ALL), partitioned as asked."""
    return sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL) PARTITION BY {} ({})").format(
        sql.Identifier(names.schema, names.partitioned), sql.Identifier(source.schema, source.name),
        sql.SQL(strategy.upper()), sql.Identifier(column))


def foreign_key(fk: ForeignKey, ref_schema: str, ref_table: str, not_valid: bool = False) -> sql.Composable:
    """ALTER TABLE ... ADD CONSTRAINT for a foreign key, pointed at ref_schema.ref_table."""
    statement = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) {} ON UPDATE {} "
                        "ON DELETE {}").format(
        sql.Identifier(fk.schema, fk.table), sql.Identifier(fk.name), _ids(fk.columns),
        sql.Identifier(ref_schema, ref_table), _ids(fk.ref_columns), sql.SQL(_FK_MATCH.get(fk.match, "MATCH SIMPLE")),
        sql.SQL(_FK_ACTIONS[fk.on_update]), sql.SQL(_FK_ACTIONS[fk.on_delete]))
    if fk.deferrable:
        statement = sql.SQL("{} DEFERRABLE INITIALLY {}").format(
            statement, sql.SQL("DEFERRED" if fk.deferred else "IMMEDIATE"))
    return sql.SQL("{} NOT VALID").format(statement) if not_valid else statement


def validate_constraint(schema: str, table: str, name: str) -> sql.Composable:
    return sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(sql.Identifier(schema, table), sql.Identifier(name))


def mirror_body(target_schema: str, target: str, columns: Sequence[str], primary_key: Sequence[str]) -> sql.Composable:
    """The PL/pgSQL body that replays each row change of the source table on the target, keyed by primary key.

    An UPDATE that changes the key deletes the old key first, so a row whose partition key changes moves. Upserts
    make the target converge on the source whatever it held: a row the copy has not reached yet is inserted.
    """
    target_id = sql.Identifier(target_schema, target)
    others = [c for c in columns if c not in primary_key]
    on_conflict = sql.SQL("DO NOTHING") if not others else sql.SQL("DO UPDATE SET {}").format(
        sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others))
    delete_old = sql.SQL("DELETE FROM {} AS t WHERE {};").format(target_id, _matches(primary_key, "t", "OLD"))
    return sql.SQL(
        "BEGIN\n"
        "  IF TG_OP = 'TRUNCATE' THEN\n    TRUNCATE {target};\n    RETURN NULL;\n  END IF;\n"
        "  IF TG_OP = 'DELETE' THEN\n    {delete_old}\n    RETURN NULL;\n  END IF;\n"
        "  IF TG_OP = 'UPDATE' THEN\n    IF ROW({old_key}) IS DISTINCT FROM ROW({new_key}) THEN\n      {delete_old}\n"
        "    END IF;\n  END IF;\n"
        "  INSERT INTO {target} AS t ({columns}) OVERRIDING SYSTEM VALUE VALUES ({new_values})\n"
        "    ON CONFLICT ({key}) {on_conflict};\n"
        "  RETURN NULL;\n"
        "END"
    ).format(target=target_id, delete_old=delete_old, old_key=_ids(primary_key, "OLD"),
             new_key=_ids(primary_key, "NEW"), columns=_ids(columns), new_values=_ids(columns, "NEW"),
             key=_ids(primary_key), on_conflict=on_conflict)


def mirror_function(schema: str, function: Optional[str], body_text: str) -> sql.Composable:
    """SECURITY DEFINER so writers of the source need no privileges on the target; a fixed search_path because
    every name in the body is qualified."""
    return sql.SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
                   "SET search_path = pg_catalog, pg_temp AS {}").format(
        sql.Identifier(schema, function), sql.Literal(body_text))


def drop_mirror(schema: str, table: str, function: Optional[str] = None) -> List[sql.Composable]:
    table_id = sql.Identifier(schema, table)
    statements = [sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(trigger), table_id)
                  for trigger in (MIRROR_TRIGGER, TRUNCATE_TRIGGER)]
    if function:
        statements.append(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(schema, function)))
    return statements


def create_mirror(schema: str, table: str, function: Optional[str]) -> List[sql.Composable]:
    """OR REPLACE (PostgreSQL 14+) takes SHARE ROW EXCLUSIVE like CREATE, where a DROP first would take ACCESS
    EXCLUSIVE and stop readers too; it also re-enables a trigger someone disabled."""
    return [
        sql.SQL("CREATE OR REPLACE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW "
                "EXECUTE FUNCTION {}()").format(
            sql.Identifier(MIRROR_TRIGGER), sql.Identifier(schema, table), sql.Identifier(schema, function)),
        sql.SQL("CREATE OR REPLACE TRIGGER {} AFTER TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION {}()").format(
            sql.Identifier(TRUNCATE_TRIGGER), sql.Identifier(schema, table), sql.Identifier(schema, function)),
    ]


def _row_literal(values, types):
    return sql.SQL("ROW({})").format(sql.SQL(", ").join(
        sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(type_name)) for value, type_name in zip(values, types)))


def key_window(primary_key: Sequence[str], types: Sequence[str], after: Optional[Sequence[str]] = None,
               through: Optional[Sequence[str]] = None, alias: Optional[str] = None) -> sql.Composable:
    """The primary keys after one watermark and up to another (both as text, None for open)."""
    key = sql.SQL("ROW({})").format(_ids(primary_key, alias))
    parts = []
    if after is not None:
        parts.append(sql.SQL("{} > {}").format(key, _row_literal(after, types)))
    if through is not None:
        parts.append(sql.SQL("{} <= {}").format(key, _row_literal(through, types)))
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def copy_batch(source: Relname, target: Relname, columns: Sequence[str], primary_key: Sequence[str],
               types: Sequence[str], after: Optional[Sequence[str]], batch_size: int, refresh: bool) -> sql.Composable:
    """One batch: the next rows of the source by primary key, locked, written to the target.

    FOR KEY SHARE keeps a row from being deleted (or its key changed) between reading and writing it, so a delete
    the mirror trigger already replayed cannot be undone by the copy; ON CONFLICT DO NOTHING skips rows the
    trigger already wrote. A refresh (the target holds older versions) uses FOR SHARE, so no update slips between
    the read and the write, and updates only the rows that differ. Returns rows read, rows written, and the last
    key as text.
    """
    if refresh:
        differs = sql.SQL("ROW({})::text IS DISTINCT FROM ROW({})::text").format(_ids(columns, "t"),
                                                                                 _ids(columns, "EXCLUDED"))
        others = [c for c in columns if c not in primary_key]
        on_conflict = sql.SQL("DO UPDATE SET {} WHERE {}").format(
            sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others), differs) \
            if others else sql.SQL("DO NOTHING")
    else:
        on_conflict = sql.SQL("DO NOTHING")
    return sql.SQL(
        "WITH batch AS (SELECT {columns} FROM {source} WHERE {window} ORDER BY {key} LIMIT {limit} FOR {lock}), "
        "written AS (INSERT INTO {target} AS t ({columns}) OVERRIDING SYSTEM VALUE SELECT {columns} FROM batch "
        "ON CONFLICT ({key}) {on_conflict} RETURNING 1) "
        "SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM written), "
        "(SELECT ARRAY[{key_text}] FROM batch ORDER BY {key_desc} LIMIT 1)"
    ).format(columns=_ids(columns), source=sql.Identifier(*source), window=key_window(primary_key, types, after),
             key=_ids(primary_key), limit=sql.Literal(batch_size), lock=sql.SQL("SHARE" if refresh else "KEY SHARE"),
             target=sql.Identifier(*target), on_conflict=on_conflict,
             key_text=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in primary_key),
             key_desc=sql.SQL(", ").join(sql.SQL("{} DESC").format(sql.Identifier(c)) for c in primary_key))


def delete_orphans(source: Relname, target: Relname, primary_key: Sequence[str], types: Sequence[str],
                   after: Optional[Sequence[str]], through: Optional[Sequence[str]]) -> sql.Composable:
    """Rows of the target within one key window that the source no longer has (a refresh only)."""
    return sql.SQL("DELETE FROM {target} AS t WHERE {window} AND NOT EXISTS (SELECT 1 FROM {source} AS s WHERE "
                   "{match})").format(target=sql.Identifier(*target), source=sql.Identifier(*source),
                                      window=key_window(primary_key, types, after, through, alias="t"),
                                      match=_matches(primary_key, "s", "t"))


def key_range(source: Relname, column: str) -> sql.Composable:
    return sql.SQL("SELECT min({key}), max({key}), now() FROM {table}").format(
        key=sql.Identifier(column), table=sql.Identifier(*source))


def key_values(source: Relname, column: str, limit: int = 1000) -> sql.Composable:
    """The distinct values of a LIST key as text, as canonical_list_value spells them."""
    return sql.SQL("SELECT {key}::text FROM {table} WHERE {key} IS NOT NULL GROUP BY 1 ORDER BY 1 "
                   "LIMIT {limit}").format(
        key=sql.Identifier(column), table=sql.Identifier(*source), limit=sql.Literal(limit))


def any_row(table: Relname) -> sql.Composable:
    return sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(*table))


def count_after(source: Relname, primary_key: Sequence[str], types: Sequence[str],
                after: Optional[Sequence[str]]) -> sql.Composable:
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(*source),
                                                              key_window(primary_key, types, after))


def verification(regular: Relname, state: TableState, checksum_columns: Sequence[str]) -> sql.Composable:
    """One statement, so one snapshot: rows and a checksum of the given columns per partition, for the regular
    table (rows routed by the partition bounds) and for the partitioned one (rows where they are)."""
    default = state.default_partition
    branches = [sql.SQL("WHEN {} THEN {}").format(membership(state, p), sql.Literal(p.name))
                for p in state.partitions if not p.is_default]
    route = sql.SQL("CASE {} ELSE {} END").format(
        sql.SQL(" ").join(branches) if branches else sql.SQL("WHEN false THEN NULL"),
        sql.Literal(default.name) if default is not None else sql.SQL("NULL::text"))
    checksum = sql.SQL("sum(hashtextextended(ROW({})::text, 0))").format(_ids(checksum_columns))
    return sql.SQL("SELECT 'regular', {route}, count(*), {checksum} FROM {regular} GROUP BY 2 "
                   "UNION ALL SELECT 'partitioned', c.relname::text, x.count, x.sum FROM (SELECT tableoid, count(*), "
                   "{checksum} FROM {partitioned} GROUP BY 1) AS x JOIN pg_class AS c ON c.oid = x.tableoid"
                   ).format(route=route, checksum=checksum, regular=sql.Identifier(*regular),
                            partitioned=sql.Identifier(state.schema, state.name))


def lock_tables(first: Relname, second: Relname) -> sql.Composable:
    """The live table first, as its writers (and their mirror trigger) lock them, so the swap cannot deadlock."""
    return sql.SQL("LOCK TABLE {}, {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(*first), sql.Identifier(*second))


def rename(kind: str, schema: str, name: str, new_name: str) -> sql.Composable:
    """ALTER TABLE | INDEX | SEQUENCE ... RENAME TO ..."""
    return sql.SQL("ALTER {} {} RENAME TO {}").format(sql.SQL(kind), sql.Identifier(schema, name),
                                                      sql.Identifier(new_name))


def index_renames(schema: str, leaving: Sequence[Index], arriving: Sequence[Index],
                  suffix: str) -> List[sql.Composable]:
    """The leaving table's index names go to the matching indexes of the arriving table (same definition); the
    leaving ones get `suffix`. Constraints backed by an index are renamed with it."""
    statements, pool = [], list(arriving)
    for index in leaving:
        match = next((i for i in pool if (i.shape, i.primary, i.unique, i.constraint)
                      == (index.shape, index.primary, index.unique, index.constraint)), None)
        if match is None:
            continue
        pool.remove(match)
        if match.name == index.name:
            continue
        statements.append(rename("INDEX", schema, index.name, partition_name(index.name, suffix)))
        statements.append(rename("INDEX", schema, match.name, index.name))
    return statements


def sequence_handover(leaving: Sequence[OwnedSequence], arriving: Sequence[OwnedSequence], schema: str, live: str,
                      suffix: str) -> List[sql.Composable]:
    """Serial sequences change owner to the column of the table that becomes live. An identity sequence of the
    arriving table continues where the leaving table's stopped and takes its name (the leaving one gets `suffix`).
    No writer can take a value meanwhile: the swap transaction holds both tables."""
    statements = []
    for sequence in leaving:
        if not sequence.identity:
            statements.append(sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(
                sql.Identifier(sequence.schema, sequence.name), sql.Identifier(schema, live, sequence.column)))
            continue
        twin = next((s for s in arriving if s.identity and s.column == sequence.column), None)
        if twin is None:
            continue
        statements.append(sql.SQL("SELECT setval({}::oid::regclass, last_value, is_called) FROM {}").format(
            sql.Literal(twin.oid), sql.Identifier(sequence.schema, sequence.name)))
        if twin.name != sequence.name:
            statements += [rename("SEQUENCE", sequence.schema, sequence.name, partition_name(sequence.name, suffix)),
                           rename("SEQUENCE", twin.schema, twin.name, sequence.name)]
    return statements


def analyze(schema: str, table: str) -> sql.Composable:
    return sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table))
