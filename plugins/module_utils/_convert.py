# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the pure side of converting a live table into a partitioned one. Stages and the
# steps between them, refusals, the partition coverage of existing data, and the SQL of every step (composed with
# psycopg's sql module only). No database, no clock.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils import _render as render
from ansible_collections.pgfleet.partitions.plugins.module_utils._bounds import canonical_list_value
from ansible_collections.pgfleet.partitions.plugins.module_utils._connection import sql
from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import (
    CreatePartition,
    HashBounds,
    ListBounds,
    parse_table_name,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._planner import partition_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._timeutil import IntegerGrid

STAGES = ("prepared", "filled", "swapped", "rolled_back")
MARKER = "pgfleet.partitions convert: "
MIRROR_TRIGGER = "pgfleet_convert_mirror"
TRUNCATE_TRIGGER = "pgfleet_convert_mirror_truncate"
# More partitions than this to cover the existing keys means the interval is too fine for the data.
MAX_COVERING_PARTITIONS = 5000

# Where each observed stage stands on the way to `swapped`.
_PROGRESS = {"original": 0, "rolled_back": 0, "preparing": 0, "prepared": 1, "filled": 2, "swapped": 3,
             "partitioned": 3, "rolling_back": 3}
_WANTED = {"prepared": 1, "filled": 2, "swapped": 3}
_FORWARD_STEPS = ("prepare", "fill", "swap")
_FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_FK_MATCH = {"f": "MATCH FULL", "s": "MATCH SIMPLE"}


@dataclass(frozen=True)
class Names:
    """The relations and functions of one conversion; all in the table's schema, all at most 63 bytes."""

    schema: str
    live: str
    partitioned: str
    retired: str
    forward_function: str
    backward_function: str


def names_for(schema, table):
    return Names(schema, table, partition_name(table, "partitioned"), partition_name(table, "retired"),
                 partition_name(table, "pgfleet_mirror"), partition_name(table, "pgfleet_mirror_back"))


@dataclass(frozen=True)
class Relation:
    oid: int
    relkind: str
    comment: Optional[str] = None
    mirrored: bool = False  # carries an enabled mirror trigger of this module


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
class Grant:
    grantee: Optional[str]  # None is PUBLIC
    privilege: str
    grantable: bool = False
    column: Optional[str] = None


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

    def column(self, name):
        return next((c for c in self.columns if c.name == name), None)

    @property
    def primary_key(self):
        return next((i for i in self.indexes if i.primary), None)

    @property
    def copied_columns(self):
        """Columns a copy writes: generated ones compute themselves."""
        return tuple(c.name for c in self.columns if not c.generated)

    def types(self, columns):
        return tuple(self.column(c).type for c in columns)


@dataclass(frozen=True)
class ConvertRequest:
    state: str
    strategy: Optional[str] = None
    column: Optional[str] = None
    batch_size: int = 10000
    sleep: float = 0.0


def request_from_params(params):
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


# ---------------------------------------------------------------------------------------------------------- stages

def read_marker(comment):
    """The progress record this module keeps in a table comment, or None when the comment is not ours."""
    if not comment or not comment.startswith(MARKER):
        return None
    try:
        marker = json.loads(comment[len(MARKER):])
    except ValueError:
        return None
    return marker if isinstance(marker, dict) else None


def marker_comment(marker):
    return MARKER + json.dumps(marker, sort_keys=True)


def current_stage(facts):
    """Where the conversion of facts.names.live stands, read from relation kinds, markers and mirror triggers."""
    names, live, partitioned, retired = facts.names, facts.live, facts.partitioned, facts.retired
    table = "%s.%s" % (names.schema, names.live)
    if live is None:
        raise PlanError("table %s does not exist" % table)
    if live.relkind == "p":
        if retired is None:
            return "partitioned"
        if retired.relkind != "r" or read_marker(retired.comment) is None:
            raise PlanError("%s.%s exists but was not retired by this module; rename it before converting %s"
                            % (names.schema, names.retired, table))
        return "rolling_back" if live.mirrored else "swapped"
    if live.relkind != "r":
        raise PlanError("%s is not a regular table (relkind %r); only ordinary tables can be converted"
                        % (table, live.relkind))
    if partitioned is None:
        return "original"
    marker = read_marker(partitioned.comment)
    if partitioned.relkind != "p" or marker is None:
        raise PlanError("%s.%s exists and was not made by this module; rename or drop it before converting %s"
                        % (names.schema, names.partitioned, table))
    if live.mirrored:
        return "filled" if marker.get("synced") else "prepared"
    return "rolled_back" if marker.get("stage") == "rolled_back" else "preparing"


def steps(stage, wanted):
    """The steps from the observed stage to the wanted one; a stage already passed needs none."""
    if wanted == "rolled_back":
        if stage == "partitioned":
            raise PlanError("the table is partitioned and its retired original no longer exists: there is nothing "
                            "to roll back to")
        if stage in ("swapped", "rolling_back"):
            return ("catch_up", "swap_back")
        return ("stop_mirror",) if stage in ("preparing", "prepared", "filled") else ()
    if stage == "rolling_back":
        return ("stop_mirror",) if wanted == "swapped" else ()
    have = _PROGRESS[stage]
    return _FORWARD_STEPS[have:_WANTED[wanted]]


def stage_after(stage, done_steps):
    final = {"prepare": "prepared", "fill": "filled", "swap": "swapped", "swap_back": "rolled_back"}
    if not done_steps:
        return stage
    last = done_steps[-1]
    if last == "stop_mirror":
        return "swapped" if stage == "rolling_back" else "rolled_back"
    return final.get(last, stage)


# -------------------------------------------------------------------------------------------------------- refusals

def refuse_unconvertible(source, column):
    """Everything that cannot work, found before the first change, with what to do about it."""
    table = "%s.%s" % (source.schema, source.name)
    key = source.column(column)
    if key is None or key.generated:
        raise PlanError("%s has no column %s to partition by" % (table, column) if key is None else
                        "%s: the generated column %s cannot be the partition key" % (table, column))
    if source.primary_key is None:
        raise PlanError("%s has no primary key; the copy and the mirror trigger need one. Add a primary key that "
                        "includes %s, e.g. ALTER TABLE %s ADD PRIMARY KEY (id, %s)" % (table, column, table, column))
    for index in source.indexes:
        if not index.unique:
            continue
        what = "primary key" if index.primary else "unique %s" % ("constraint" if index.constraint else "index")
        if index.partial_or_expression:
            raise PlanError("%s: %s %s has expressions or a WHERE clause; a partitioned table cannot enforce it. "
                            "Replace it by a plain unique key that includes %s" % (table, what, index.name, column))
        if column not in index.columns:
            dependent = [fk for fk in source.incoming if frozenset(fk.ref_columns) == frozenset(index.columns)]
            raise PlanError(
                "%s: %s %s (%s) does not include the partition column %s, and a partitioned table can only enforce "
                "uniqueness when the key includes the partition column. Extend the key with the partition column "
                "(e.g. ALTER TABLE %s DROP CONSTRAINT %s, ADD PRIMARY KEY (%s, %s)) or partition by a column the "
                "key already has.%s Nothing was changed."
                % (table, what, index.name, ", ".join(index.columns), column, table, index.name,
                   ", ".join(index.columns), column, _foreign_keys_note(dependent, column)))
    refuse_unmovable(source)


def _foreign_keys_note(foreign_keys, column):
    if not foreign_keys:
        return ""
    return (" Foreign keys reference that key and must be extended with %s as well (or dropped before converting): "
            "%s." % (column, ", ".join("%s.%s.%s (%s)" % (fk.schema, fk.table, fk.name, ", ".join(fk.columns))
                                       for fk in foreign_keys)))


def refuse_unmovable(source):
    """Views and rules read a table by oid and would keep reading the retired one; foreign keys must find a
    unique key on the partitioned table. Checked before the first change and again before a swap."""
    table = "%s.%s" % (source.schema, source.name)
    if source.dependents:
        raise PlanError(
            "%s is read by %s, which would keep reading the retired table after the swap. Drop them before the "
            "swap and recreate them after it. Nothing was changed." % (table, ", ".join(source.dependents)))
    keys = [frozenset(i.columns) for i in source.indexes if i.unique and not i.partial_or_expression]
    blocked = [fk for fk in source.incoming if frozenset(fk.ref_columns) not in keys
               or (fk.schema, fk.table) == (source.schema, source.name)]
    if blocked:
        listing = "; ".join("%s.%s.%s (%s) -> %s (%s)" % (fk.schema, fk.table, fk.name, ", ".join(fk.columns),
                                                          source.name, ", ".join(fk.ref_columns)) for fk in blocked)
        raise PlanError(
            "%s: foreign keys referencing it cannot be recreated against the partitioned table, because their "
            "referenced columns are not a unique key there (which must include the partition column) or they "
            "reference the table itself: %s. Extend each foreign key and its referenced key with the partition "
            "column, or drop the foreign key before converting. Nothing was changed." % (table, listing))


# -------------------------------------------------------------------------------------------------- partitioning

def buckets_between(grid, first, last, table):
    """How many grid steps lead from bucket start `first` to `last` (0 when last is not after first)."""
    if isinstance(grid, IntegerGrid):
        count = max(0, (last - first) // grid.step)
    else:
        count, start = 0, first
        while start < last and count <= MAX_COVERING_PARTITIONS:
            start, count = grid.shift(start, 1), count + 1
    if count > MAX_COVERING_PARTITIONS:
        raise PlanError("%s: covering the existing keys needs more than %d partitions; choose a coarser interval"
                        % (table, MAX_COVERING_PARTITIONS))
    return count


def covering_policy(policy, grid, low, high, now, table):
    """The RANGE policy whose plan covers every existing key from low to high: backfill reaches back to the
    lowest key, premake runs on past the later of the reference and the highest key."""
    integer = isinstance(grid, IntegerGrid)
    reference = policy.reference_time
    if reference is None:
        reference = (int(high) if high is not None else 0) if integer else now
    current = grid.floor(grid.from_key(reference))
    backfill, premake = policy.backfill, policy.premake
    if low is not None:
        backfill = max(backfill, buckets_between(grid, grid.floor(grid.from_key(low)), current, table))
        premake += buckets_between(grid, current, grid.floor(grid.from_key(high)), table)
    return dataclasses.replace(policy, reference_time=reference, backfill=backfill, premake=premake)


def uncovered_list_values(policy, values):
    """Existing key values (as text) that no LIST partition would take."""
    listed = {canonical_list_value(value) for values_of in (policy.list_partitions or {}).values()
              for value in (values_of or [])}
    return sorted(value for value in values if value not in listed)


def membership(state, partition):
    """A predicate true exactly for the rows that belong in one partition of `state`."""
    bounds = partition.bounds
    if isinstance(bounds, HashBounds):
        return sql.SQL("satisfies_hash_partition({}::oid, {}, {}, {})").format(
            sql.Literal(state.oid), sql.Literal(bounds.modulus), sql.Literal(bounds.remainder),
            sql.Identifier(state.key))
    values = bounds.values if isinstance(bounds, ListBounds) else ()
    return render.membership(state, CreatePartition(partition.schema, partition.name, bounds, values=values))


# ---------------------------------------------------------------------------------------------------------- SQL

def _ids(names, prefix=None):
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(name) for name in names)
    return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.SQL(prefix), sql.Identifier(name)) for name in names)


def _matches(columns, left, right):
    return sql.SQL(" AND ").join(sql.SQL("{}.{} = {}.{}").format(sql.SQL(left), sql.Identifier(c), sql.SQL(right),
                                                                 sql.Identifier(c)) for c in columns)


def create_partitioned(names, source, strategy, column):
    """The new table: columns, defaults, identity, generated columns, CHECK and NOT NULL constraints, indexes,
    comments, storage and statistics of the source (LIKE ... INCLUDING ALL), partitioned as asked."""
    return sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL) PARTITION BY {} ({})").format(
        sql.Identifier(names.schema, names.partitioned), sql.Identifier(source.schema, source.name),
        sql.SQL(strategy.upper()), sql.Identifier(column))


def change_owner(schema, table, owner):
    return sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(schema, table), sql.Identifier(owner))


def grant(schema, table, item):
    statement = sql.SQL("GRANT {}{} ON TABLE {} TO {}").format(
        sql.SQL(item.privilege), sql.SQL(" ({})").format(sql.Identifier(item.column)) if item.column else sql.SQL(""),
        sql.Identifier(schema, table), sql.Identifier(item.grantee) if item.grantee else sql.SQL("PUBLIC"))
    return sql.SQL("{} WITH GRANT OPTION").format(statement) if item.grantable else statement


def foreign_key(fk, ref_schema, ref_table, not_valid=False):
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


def validate_constraint(schema, table, name):
    return sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(sql.Identifier(schema, table), sql.Identifier(name))


def comment(schema, table, text):
    return sql.SQL("COMMENT ON TABLE {} IS {}").format(sql.Identifier(schema, table),
                                                       sql.Literal(text) if text is not None else sql.SQL("NULL"))


def mirror_body(target_schema, target, columns, primary_key):
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


def mirror_function(schema, function, body_text):
    """SECURITY DEFINER so writers of the source need no privileges on the target; a fixed search_path because
    every name in the body is qualified."""
    return sql.SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
                   "SET search_path = pg_catalog, pg_temp AS {}").format(
        sql.Identifier(schema, function), sql.Literal(body_text))


def drop_mirror(schema, table, function=None):
    table_id = sql.Identifier(schema, table)
    statements = [sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(trigger), table_id)
                  for trigger in (MIRROR_TRIGGER, TRUNCATE_TRIGGER)]
    if function:
        statements.append(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(schema, function)))
    return statements


def create_mirror(schema, table, function):
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


def key_window(primary_key, types, after=None, through=None, alias=None):
    """The primary keys after one watermark and up to another (both as text, None for open)."""
    key = sql.SQL("ROW({})").format(_ids(primary_key, alias))
    parts = []
    if after is not None:
        parts.append(sql.SQL("{} > {}").format(key, _row_literal(after, types)))
    if through is not None:
        parts.append(sql.SQL("{} <= {}").format(key, _row_literal(through, types)))
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def copy_batch(source, target, columns, primary_key, types, after, batch_size, refresh):
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


def delete_orphans(source, target, primary_key, types, after, through):
    """Rows of the target within one key window that the source no longer has (a refresh only)."""
    return sql.SQL("DELETE FROM {target} AS t WHERE {window} AND NOT EXISTS (SELECT 1 FROM {source} AS s WHERE "
                   "{match})").format(target=sql.Identifier(*target), source=sql.Identifier(*source),
                                      window=key_window(primary_key, types, after, through, alias="t"),
                                      match=_matches(primary_key, "s", "t"))


def key_range(source, column):
    return sql.SQL("SELECT min({key}), max({key}), now() FROM {table}").format(
        key=sql.Identifier(column), table=sql.Identifier(*source))


def key_values(source, column, limit=1000):
    """The distinct values of a LIST key as text, as canonical_list_value spells them."""
    return sql.SQL("SELECT {key}::text FROM {table} WHERE {key} IS NOT NULL GROUP BY 1 ORDER BY 1 "
                   "LIMIT {limit}").format(
        key=sql.Identifier(column), table=sql.Identifier(*source), limit=sql.Literal(limit))


def any_row(table):
    return sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(*table))


def count_after(source, primary_key, types, after):
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(*source),
                                                              key_window(primary_key, types, after))


def verification(regular, state, checksum_columns):
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


def compare_verification(rows, partitions=()):
    """Per partition (every one of `partitions`, and any that rows name), the rows of both tables and whether
    their checksums match; and the partitions where the two differ."""
    sides = {"regular": {}, "partitioned": {}}
    for side, partition, count, checksum in rows:
        sides[side][partition] = (int(count), str(checksum))
    report, mismatched = [], []
    others = (set(sides["regular"]) | set(sides["partitioned"])) - set(partitions)
    for partition in list(partitions) + sorted(others, key=lambda name: (name is None, name or "")):
        regular, partitioned = sides["regular"].get(partition, (0, "0")), sides["partitioned"].get(partition, (0, "0"))
        item = {"partition": partition or "(no partition)", "rows": regular[0], "rows_partitioned": partitioned[0],
                "checksum_matches": regular[1] == partitioned[1]}
        report.append(item)
        if regular != partitioned:
            mismatched.append(item["partition"])
    return report, mismatched


def lock_tables(first, second):
    """The live table first, as its writers (and their mirror trigger) lock them, so the swap cannot deadlock."""
    return sql.SQL("LOCK TABLE {}, {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(*first), sql.Identifier(*second))


def rename(kind, schema, name, new_name):
    """ALTER TABLE | INDEX | SEQUENCE ... RENAME TO ..."""
    return sql.SQL("ALTER {} {} RENAME TO {}").format(sql.SQL(kind), sql.Identifier(schema, name),
                                                      sql.Identifier(new_name))


def index_renames(schema, leaving, arriving, suffix):
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


def sequence_handover(leaving, arriving, schema, live, suffix):
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


def analyze(schema, table):
    return sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table))


def initial_marker(source_name, stage="preparing"):
    return {"stage": stage, "source": source_name, "mode": "copy", "watermark": None, "rows_copied": 0,
            "synced": False}


def restart_marker(marker, target_empty, stage):
    """Progress starts over when a mirror is (re)installed: a plain copy into an empty target, else a refresh that
    also corrects and removes rows the target holds from earlier."""
    return dict(marker or {}, stage=stage, mode="copy" if target_empty else "refresh", watermark=None,
                rows_copied=0, synced=False)
