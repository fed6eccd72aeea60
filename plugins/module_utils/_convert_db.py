# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the database side of converting a live table into a partitioned one. Catalog
# reads (a constant number of SELECTs per relation) and the execution of each step, every change in short
# transactions under lock_timeout with retries; check mode renders the same statements and runs none of them.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
import functools
import time

from ansible_collections.pgfleet.partitions.plugins.module_utils import _catalog as catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils import _convert as plan
from ansible_collections.pgfleet.partitions.plugins.module_utils import _render as render
from ansible_collections.pgfleet.partitions.plugins.module_utils._connection import DatabaseError, sqlstate
from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import (
    CatalogError,
    ExecutionError,
    PgfleetError,
    PlanError,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._executor import create_partitions, refuse_taken_names
from ansible_collections.pgfleet.partitions.plugins.module_utils._jobs import (
    STANDBY_REASON,
    jsonable,
    ordered,
    partition_facts,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._locking import (
    acquire_table_lock,
    backoff_delays,
    in_transaction_with_retries,
    release_table_lock,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import Partition, TableName, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._planner import grid_for
from ansible_collections.pgfleet.partitions.plugins.module_utils._planner import plan as plan_partitions

SERIALIZATION_FAILURE = "40001"
# Copy batches retried after a serialization failure, the batch shrinking each time (a lock wait is retried apart).
SERIALIZATION_RETRIES = 7
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN")

_SCHEMA_QUERY = """
SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(name)s
  AND (n.nspname = %(schema)s::text OR (%(schema)s::text IS NULL AND n.nspname = ANY (current_schemas(false))))
ORDER BY array_position(current_schemas(false), n.nspname) NULLS LAST
LIMIT 1
"""

_RELATIONS_QUERY = """
SELECT c.relname::text, c.oid, c.relkind::text, obj_description(c.oid, 'pg_class'),
       EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = %(trigger)s AND t.tgenabled <> 'D')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY (%(names)s)
"""

_RELATION_QUERY = """
SELECT n.nspname::text, c.relname::text, pg_get_userbyid(c.relowner)::text, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %(oid)s
"""

_COLUMNS_QUERY = """
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, NULL), a.attgenerated <> ''
FROM pg_attribute a WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""

_INDEXES_QUERY = """
SELECT i.indexrelid, ic.relname::text,
       ARRAY(SELECT coalesce(a.attname::text, '') FROM generate_series(0, i.indnkeyatts - 1) AS k(n)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n] ORDER BY k.n),
       i.indisprimary, i.indisunique, i.indexprs IS NOT NULL OR i.indpred IS NOT NULL,
       substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$'),
       coalesce((SELECT con.contype::text FROM pg_constraint con
                 WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                   AND con.contype IN ('p', 'u', 'x')), '')
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = %(oid)s
ORDER BY ic.relname
"""

_FOREIGN_KEYS_QUERY = """
SELECT con.conname::text, cn.nspname::text, cr.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       fn.nspname::text, fr.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o),
       con.confmatchtype::text, con.confupdtype::text, con.confdeltype::text, con.condeferrable, con.condeferred,
       cr.relkind = 'p', con.confrelid = %(oid)s
FROM pg_constraint con
JOIN pg_class cr ON cr.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cr.relnamespace
JOIN pg_class fr ON fr.oid = con.confrelid JOIN pg_namespace fn ON fn.oid = fr.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0 AND (con.confrelid = %(oid)s OR con.conrelid = %(oid)s)
ORDER BY 1, 2, 3
"""

_GRANTS_QUERY = """
SELECT r.rolname::text, x.privilege_type, x.is_grantable, NULL::text
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS x LEFT JOIN pg_roles r ON r.oid = x.grantee
WHERE c.oid = %(oid)s AND x.grantee <> c.relowner
UNION ALL
SELECT r.rolname::text, x.privilege_type, x.is_grantable, a.attname::text
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
CROSS JOIN LATERAL aclexplode(a.attacl) AS x LEFT JOIN pg_roles r ON r.oid = x.grantee
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped AND x.grantee <> c.relowner
"""

_SEQUENCES_QUERY = """
SELECT a.attname::text, d.deptype = 'i', s.oid, sn.nspname::text, s.relname::text
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = %(oid)s
  AND d.deptype IN ('a', 'i')
ORDER BY 1
"""

# Objects that read the table by oid: after a swap they would read the retired table.
_DEPENDENTS_QUERY = """
SELECT DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass THEN
         (SELECT CASE v.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
                 ELSE 'rule ' || w.rulename || ' on ' END || vn.nspname || '.' || v.relname
          FROM pg_rewrite w JOIN pg_class v ON v.oid = w.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
          WHERE w.oid = d.objid)
       ELSE 'function ' || d.objid::regprocedure::text END
FROM pg_depend d
WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %(oid)s AND d.deptype = 'n'
  AND (d.classid = 'pg_proc'::regclass
       OR d.classid = 'pg_rewrite'::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_rewrite w WHERE w.oid = d.objid AND w.ev_class = %(oid)s))
ORDER BY 1
"""

# What a conversion does not carry over to the new table: reported, so nobody finds out in production.
_NOT_CARRIED_QUERY = """
SELECT 'trigger ' || t.tgname FROM pg_trigger t
WHERE t.tgrelid = %(oid)s AND NOT t.tgisinternal AND t.tgparentid = 0 AND t.tgname <> ALL (%(ours)s)
UNION ALL SELECT 'rule ' || r.rulename FROM pg_rewrite r WHERE r.ev_class = %(oid)s AND r.rulename <> '_RETURN'
UNION ALL SELECT 'row level security policy ' || p.polname FROM pg_policy p WHERE p.polrelid = %(oid)s
UNION ALL SELECT 'row level security' FROM pg_class c WHERE c.oid = %(oid)s AND c.relrowsecurity
UNION ALL SELECT 'publication ' || pub.pubname FROM pg_publication_rel pr
          JOIN pg_publication pub ON pub.oid = pr.prpubid WHERE pr.prrelid = %(oid)s
ORDER BY 1
"""

_MIRROR_ENABLED_QUERY = ("SELECT count(*) FROM pg_trigger WHERE tgrelid = %s AND tgname = %s AND tgenabled <> 'D'")


def resolve_schema(database, table):
    schema = database.query_value(_SCHEMA_QUERY, {"name": table.name, "schema": table.schema})
    if schema is None:
        where = "schema %s" % table.schema if table.schema else "the search_path (%s)" % ", ".join(
            database.query_value("SELECT current_schemas(false)::text[]") or [])
        raise CatalogError("table %s does not exist in %s" % (table.name, where))
    return schema


def read_facts(database, names):
    found = {}
    for name, oid, relkind, comment, mirrored in database.query(_RELATIONS_QUERY, {
            "trigger": plan.MIRROR_TRIGGER, "schema": names.schema,
            "names": [names.live, names.partitioned, names.retired]}):
        found[name] = plan.Relation(oid, relkind, comment, mirrored)
    live = found.get(names.live)
    return plan.ConversionFacts(names, live, found.get(names.partitioned), found.get(names.retired))


def read_table(database, oid):
    """The SourceTable of any relation of the conversion: columns, keys, foreign keys, grants, sequences."""
    rows = database.query(_RELATION_QUERY, {"oid": oid})
    if not rows:
        raise CatalogError("relation %s disappeared during the run" % oid)
    schema, name, owner, relkind = rows[0]
    args = {"oid": oid, "ours": [plan.MIRROR_TRIGGER, plan.TRUNCATE_TRIGGER]}
    columns = tuple(plan.Column(*row) for row in database.query(_COLUMNS_QUERY, args))
    indexes = tuple(plan.Index(oid=row[0], name=row[1], columns=tuple(row[2]), primary=row[3], unique=row[4],
                               partial_or_expression=row[5], shape=row[6] or "", constraint=row[7])
                    for row in database.query(_INDEXES_QUERY, args))
    incoming, outgoing = [], []
    for row in database.query(_FOREIGN_KEYS_QUERY, args):
        fk = plan.ForeignKey(row[0], row[1], row[2], tuple(row[3]), row[4], row[5], tuple(row[6]), *row[7:13])
        (incoming if row[13] else outgoing).append(fk)
    grants = tuple(plan.Grant(grantee, privilege, grantable, column)
                   for grantee, privilege, grantable, column in database.query(_GRANTS_QUERY, args)
                   if privilege in PRIVILEGES)
    sequences = tuple(plan.OwnedSequence(*row) for row in database.query(_SEQUENCES_QUERY, args))
    return plan.SourceTable(
        oid=oid, schema=schema, name=name, owner=owner, columns=columns, indexes=indexes, incoming=tuple(incoming),
        outgoing=tuple(outgoing), grants=grants, sequences=sequences, relkind=relkind,
        dependents=tuple(row[0] for row in database.query(_DEPENDENTS_QUERY, args)),
        not_carried=tuple(row[0] for row in database.query(_NOT_CARRIED_QUERY, args)))


class Conversion(object):
    """One run: the steps from the observed stage to the wanted one, and what they did."""

    def __init__(self, database, names, request, policy, check_mode, lock_timeout, retries, sleep=time.sleep):
        self.database = database
        self.names = names
        self.request = request
        self.policy = policy
        self.check_mode = check_mode
        self.lock_timeout = lock_timeout
        self.retries = retries
        self.sleep = sleep
        self.planned = ()  # CreatePartition actions of the prepare step
        self.batch_limit = request.batch_size  # rows in the next copy batch: smaller after serialization failures
        self.markers = {}  # progress records written in this run (check mode reads them back from here)
        self.result = {"created": [], "rows_copied": 0, "rows_deleted": 0, "batches": 0, "batches_retried": 0,
                       "foreign_keys": [], "not_carried": []}

    # ----------------------------------------------------------------------------------------------- helpers
    def qualified(self, name):
        return (self.names.schema, name)

    def record(self, statements):
        self.database.queries.extend(self.database.as_string(s) for s in statements if not callable(s))

    def transaction(self, statements, what):
        """Run statements in one transaction under lock_timeout, with retries; a callable among them is a check
        run at that point (it raises to abandon the transaction). In check mode, record only."""
        if not self.check_mode:
            def run(db):
                for statement in statements:
                    statement(db) if callable(statement) else db.execute(statement, record=False)

            in_transaction_with_retries(self.database, run, self.lock_timeout, self.retries, what)
        self.record(statements)

    def facts(self):
        return read_facts(self.database, self.names)

    def relation(self, name):
        """The Relation that now has `name` (one of the conversion's three), or None."""
        facts, names = self.facts(), self.names
        return {names.live: facts.live, names.partitioned: facts.partitioned, names.retired: facts.retired}[name]

    def marker(self, name):
        if name in self.markers:
            return self.markers[name]
        relation = self.relation(name)
        return plan.read_marker(relation.comment) if relation else None

    def write_marker(self, name, marker):
        self.markers[name] = marker
        return plan.comment(self.names.schema, name, plan.marker_comment(marker))

    # ------------------------------------------------------------------------------------------- refusals
    def check(self, stage, todo):
        """Everything that would stop a step, found before the first change; returns the regular table."""
        facts = self.facts()
        source = read_table(self.database, (facts.live if facts.live.relkind == "r" else facts.retired).oid)
        self.result["not_carried"] = ["%s.%s has %s, which the conversion does not carry to the new table"
                                      % (source.schema, source.name, item) for item in source.not_carried]
        if self.request.state != "rolled_back":
            shaped = self.names.partitioned if facts.live.relkind == "r" else self.names.live
            if facts.live.relkind == "p" or facts.partitioned is not None:
                self.refuse_other_shape(shaped)
        if "prepare" in todo:
            plan.refuse_unconvertible(source, self.request.column)
            if facts.retired is not None:
                raise PlanError("%s.%s exists; the swap needs that name for the retired table. Rename it first."
                                % (self.names.schema, self.names.retired))
            self.planned = self.plan_partitions(source, facts)
        return source

    def refuse_other_shape(self, name):
        state = catalog.read_table(self.database, TableName(self.names.schema, name), with_max_key=False)
        if (state.strategy, state.key) != (self.request.strategy, self.request.column):
            raise PlanError("%s.%s is already partitioned by %s (%s), not %s (%s). Ask for that partitioning, or, "
                            "before a swap, drop %s (a copy) to start again." % (
                                state.schema, state.name, state.strategy.upper(), state.key,
                                self.request.strategy.upper(), self.request.column, self.names.partitioned))

    def partitioned_state(self, source):
        """The catalog state of the new table, or (before it exists) the one it will have."""
        names = self.names
        if self.facts().partitioned is not None:
            return catalog.read_table(self.database, TableName(names.schema, names.partitioned), with_max_key=False)
        column = source.column(self.request.column)
        return TableState(oid=0, schema=names.schema, name=names.partitioned, strategy=self.request.strategy,
                          key=column.name, key_type=column.key_type, partitions=())

    def plan_partitions(self, source, facts):
        """The partitions that hold every existing row, plus premake (RANGE); refused before any change when the
        existing keys do not fit the policy or a partition name is taken. Planned under the live table's name, so
        the partitions are named for the table they end up in."""
        state = dataclasses.replace(self.partitioned_state(source), name=self.names.live)
        policy, table = self.policy, (source.schema, source.name)
        if self.request.strategy == "range":
            low, high, now = self.database.query(plan.key_range(table, state.key))[0]
            policy = plan.covering_policy(policy, grid_for(state, policy), low, high, now, "%s.%s" % table)
            state = dataclasses.replace(state, server_now=now)
        elif self.request.strategy == "list" and not policy.default_partition:
            values = [row[0] for row in self.database.query(plan.key_values(table, state.key))]
            missing = plan.uncovered_list_values(policy, values)
            if missing:
                raise PlanError("%s.%s: rows with %s in (%s) would have no partition; add the values to "
                                "list_partitions or set default_partition. Nothing was changed."
                                % (table + (state.key, ", ".join(missing))))
        actions = plan_partitions(state, policy).actions
        refuse_taken_names(self.database, state, actions)
        return actions

    # --------------------------------------------------------------------------------------------- prepare
    def prepare(self, source):
        names = self.names
        if self.facts().partitioned is None:
            statements = [plan.create_partitioned(names, source, self.request.strategy, self.request.column)]
            if source.owner != self.database.query_value("SELECT current_user::text"):
                statements.append(plan.change_owner(names.schema, names.partitioned, source.owner))
            statements += [plan.grant(names.schema, names.partitioned, item) for item in source.grants]
            statements += [plan.foreign_key(dataclasses.replace(fk, schema=names.schema, table=names.partitioned),
                                            fk.ref_schema, fk.ref_table) for fk in source.outgoing]
            statements.append(self.write_marker(names.partitioned, plan.initial_marker(names.live)))
            self.transaction(statements, "%s.%s: creating %s" % (names.schema, names.live, names.partitioned))
        created = create_partitions(self.database, self.partitioned_state(source), self.planned, self.check_mode,
                                    self.lock_timeout, self.retries, self.policy.tablespace)
        self.result["created"] += created.created
        self.install_mirror(names.live, names.partitioned, names.forward_function, source, "prepared")

    def install_mirror(self, source_name, target_name, function, source, stage):
        """The trigger that replays every change of the source on the target, and a fresh progress record: from now
        on the target misses no write, whatever the copy has reached. A target that holds rows already (an earlier
        attempt, or the retired table when rolling back) is refreshed rather than copied into."""
        schema = self.names.schema
        body = plan.mirror_body(schema, target_name, source.copied_columns, source.primary_key.columns)
        statements = [plan.mirror_function(schema, function, self.database.as_string(body))]
        statements += plan.create_mirror(schema, source_name, function)
        empty = self.relation(target_name) is None or not self.database.query_value(
            plan.any_row(self.qualified(target_name)))
        statements.append(self.write_marker(target_name, plan.restart_marker(self.marker(target_name), empty, stage)))
        self.transaction(statements, "%s.%s: installing the mirror trigger" % (schema, source_name))

    # ------------------------------------------------------------------------------------------------ fill
    def synchronize(self, source_name, target_name, regular):
        """Copy the source into the target in primary-key batches, resumable from the watermark kept in the
        target's comment, which each batch advances in its own transaction."""
        source, target = self.qualified(source_name), self.qualified(target_name)
        marker = self.marker(target_name) or plan.initial_marker(self.names.live)
        columns, primary_key = regular.copied_columns, regular.primary_key.columns
        types = regular.types(primary_key)
        refresh = marker.get("mode") == "refresh"
        if self.check_mode and not marker.get("synced"):
            self.result["rows_to_copy"] = int(self.database.query_value(
                plan.count_after(source, primary_key, types, marker.get("watermark"))))
            self.record([plan.copy_batch(source, target, columns, primary_key, types, marker.get("watermark"),
                                         self.request.batch_size, refresh), plan.analyze(*target)])
        while not marker.get("synced") and not self.check_mode:
            marker = self.copy_batch(source, target, marker, regular, refresh)
            if not marker["synced"] and self.request.sleep:
                self.sleep(self.request.sleep)
            if marker["synced"]:
                analyze = plan.analyze(*target)
                self.database.execute(analyze, record=False)
                self.record([analyze])
        self.result["progress"] = {key: marker.get(key) for key in ("watermark", "rows_copied", "synced")}

    def copy_batch(self, source, target, marker, regular, refresh):
        """One batch and its progress record, in one transaction; the first batch of a run goes into queries.

        Locking a row of a partitioned source (the live table, when rolling back) that a concurrent UPDATE moved to
        another partition fails with a serialization failure. The batch is then read again (the mirror has replayed
        the move), each time a quarter of the size: the fewer rows a batch locks, the fewer a busy writer can move
        under it. Each batch that succeeds doubles the size again, up to batch_size.
        """
        primary_key = regular.primary_key.columns
        types, after = regular.types(primary_key), marker.get("watermark")
        done = []

        def work(db, batch, limit):
            read, written, last = db.query(batch)[0]
            finished = read < limit
            statements, deleted = [batch], 0
            if refresh:
                statements.append(plan.delete_orphans(source, target, primary_key, types, after,
                                                      None if finished else last))
                deleted = db.execute(statements[-1], record=False)
            advanced = dict(marker, watermark=last if last is not None else after, synced=finished,
                            rows_copied=marker.get("rows_copied", 0) + written)
            db.execute(plan.comment(target[0], target[1], plan.marker_comment(advanced)), record=False)
            done[:] = [advanced, written, deleted, statements]

        what = "%s.%s: copying rows into %s" % (source + (target[1],))
        for delay in backoff_delays(SERIALIZATION_RETRIES, base=0.05) + [None]:
            limit = self.batch_limit
            batch = plan.copy_batch(source, target, regular.copied_columns, primary_key, types, after, limit, refresh)
            try:
                in_transaction_with_retries(self.database, functools.partial(work, batch=batch, limit=limit),
                                            self.lock_timeout, self.retries, what)
                break
            except DatabaseError as exc:
                if sqlstate(exc) != SERIALIZATION_FAILURE or delay is None:
                    raise
                self.batch_limit = max(1, limit // 4)
                self.result["batches_retried"] += 1
                self.sleep(delay)
        self.batch_limit = min(self.request.batch_size, self.batch_limit * 2)
        advanced, written, deleted, statements = done
        if not self.result["batches"]:
            self.record(statements)
        self.result["rows_copied"] += written
        self.result["rows_deleted"] += deleted
        self.result["batches"] += 1
        self.markers[target[1]] = advanced
        return advanced

    # ------------------------------------------------------------------------------------------------ swap
    def verify(self, regular, partitioned):
        """Rows and a checksum of the primary key (which holds the partition key) per partition, both tables in one
        snapshot. The mirror writes both in the writer's transaction, so every snapshot must see them equal."""
        state = catalog.read_table(self.database, TableName(partitioned.schema, partitioned.name), with_max_key=False)
        rows = self.database.query(plan.verification((regular.schema, regular.name), state,
                                                     regular.primary_key.columns))
        report, mismatched = plan.compare_verification(rows, [p.name for p in ordered(state.partitions)])
        self.result["verification"] = report
        if mismatched:
            raise ExecutionError(
                "%s.%s and %s.%s differ in partition(s) %s; nothing was swapped. Run state=rolled_back, then the same "
                "state again: the copy is then refreshed from the table." % (
                    regular.schema, regular.name, partitioned.schema, partitioned.name, ", ".join(mismatched)))

    def swap(self, arriving_name, leaving_new_name, function, leaving_marker):
        """Verify, then one short transaction: the live table takes leaving_new_name and the arriving one the live
        name, with sequences, index names, comments and foreign keys following; the mirror goes."""
        names = self.names
        schema, live = names.schema, names.live
        live_relation, arriving_relation = self.relation(live), self.relation(arriving_name)
        leaving = read_table(self.database, live_relation.oid)
        arriving = read_table(self.database, arriving_relation.oid) if arriving_relation is not None else None
        plan.refuse_unmovable(leaving)
        if not self.check_mode:
            self.verify(*((leaving, arriving) if leaving.relkind == "r" else (arriving, leaving)))

        def mirror_still_there(db):
            if not db.query_value(_MIRROR_ENABLED_QUERY, (leaving.oid, plan.MIRROR_TRIGGER)):
                raise ExecutionError("%s.%s: the mirror trigger was dropped or disabled after the verification; "
                                     "nothing was swapped" % (schema, live))

        statements = [plan.lock_tables((schema, live), (schema, arriving_name)), mirror_still_there,
                      plan.rename("TABLE", schema, live, leaving_new_name),
                      plan.rename("TABLE", schema, arriving_name, live)]
        suffix = "retired" if leaving_new_name == names.retired else "partitioned"
        statements += plan.drop_mirror(schema, leaving_new_name, function)
        statements += plan.sequence_handover(leaving.sequences, arriving.sequences if arriving else (), schema, live,
                                             suffix)
        statements += plan.index_renames(schema, leaving.indexes, arriving.indexes if arriving else (), suffix)
        validate = []
        for fk in leaving.incoming:
            # NOT VALID keeps the swap short; a partitioned referencing table accepts it from PostgreSQL 18 on.
            not_valid = not fk.table_is_partitioned or self.database.server_version_num >= 180000
            statements += [render.drop_constraint(fk.schema, fk.table, fk.name),
                           plan.foreign_key(fk, schema, live, not_valid=not_valid)]
            validate += [plan.validate_constraint(fk.schema, fk.table, fk.name)] if not_valid else []
            self.result["foreign_keys"].append("%s.%s.%s" % (fk.schema, fk.table, fk.name))
        statements += [plan.comment(schema, live, live_relation.comment),
                       self.write_marker(leaving_new_name, leaving_marker)]
        self.transaction(statements, "%s.%s: swapping with %s" % (schema, live, arriving_name))
        for statement in validate:
            self.transaction([statement], "%s.%s: validating a foreign key after the swap" % (schema, live))

    # ------------------------------------------------------------------------------------------------- steps
    def fill(self, source):
        self.synchronize(self.names.live, self.names.partitioned, source)

    def forward_swap(self, source):
        self.swap(self.names.partitioned, self.names.retired, self.names.forward_function,
                  dict(plan.initial_marker(self.names.live, "swapped"), synced=True))

    def catch_up(self, source):
        """Rolling back: first mirror the live (partitioned) table's writes into the retired one, then refresh the
        retired table from it, so it gains every row written since the swap and loses every row deleted."""
        names = self.names
        if not self.facts().live.mirrored:
            self.install_mirror(names.live, names.retired, names.backward_function, source, "rolling_back")
        self.synchronize(names.live, names.retired, source)

    def swap_back(self, source):
        self.swap(self.names.retired, self.names.partitioned, self.names.backward_function,
                  plan.initial_marker(self.names.live, "rolled_back"))

    def stop_mirror(self, source):
        """Abandon the direction the mirror goes: before a swap the copy stays as it is (stale from now on, refreshed
        if the conversion is taken up again); while rolling back, the table stays swapped."""
        names = self.names
        forward = self.facts().live.relkind == "r"
        target = names.partitioned if forward else names.retired
        statements = plan.drop_mirror(names.schema, names.live,
                                      names.forward_function if forward else names.backward_function)
        statements.append(self.write_marker(target, dict(self.marker(target) or {},
                                                         stage="rolled_back" if forward else "swapped")))
        self.transaction(statements, "%s.%s: removing the mirror trigger" % (names.schema, names.live))


STEP_METHODS = {"prepare": "prepare", "fill": "fill", "swap": "forward_swap", "catch_up": "catch_up",
                "swap_back": "swap_back", "stop_mirror": "stop_mirror"}


def convert(database, table, request, policy, check_mode=False, lock_timeout="3s", retries=5, run_lock_wait=60,
            sleep=time.sleep):
    """Walk `table` to request.state; the result dict is what the module returns."""
    catalog.prepare_session(database)
    schema = resolve_schema(database, table)
    names = plan.names_for(schema, table.name)
    result = {"changed": False, "table": "%s.%s" % (schema, names.live),
              "partitioned_table": "%s.%s" % (schema, names.partitioned),
              "retired_table": "%s.%s" % (schema, names.retired)}
    conversion = Conversion(database, names, request, policy, check_mode, lock_timeout, retries, sleep)
    if catalog.in_recovery(database):
        return dict(_finish(conversion, result), stage=None, steps=[], skipped_reason=STANDBY_REASON)
    facts = conversion.facts()
    stage = plan.current_stage(facts)
    todo = plan.steps(stage, request.state)
    result.update(stage_before=stage, stage=stage, steps=list(todo))
    if not todo:
        return _finish(conversion, result)
    lock_oid = (facts.live if facts.live.relkind == "r" else facts.retired).oid
    if not check_mode and not acquire_table_lock(database, lock_oid, run_lock_wait):
        return dict(_finish(conversion, result), skipped_reason=(
            "another run holds the conversion lock of %s for more than %ss" % (result["table"], run_lock_wait)))
    try:
        if not check_mode:  # another run may have moved on while this one waited for the lock
            stage = plan.current_stage(conversion.facts())
            todo = plan.steps(stage, request.state)
            result.update(stage_before=stage, steps=list(todo))
        source = conversion.check(stage, todo) if todo else None
        for step in todo:
            getattr(conversion, STEP_METHODS[step])(source)
        result.update(changed=bool(todo), stage=plan.stage_after(stage, todo))
    except (PgfleetError, DatabaseError) as exc:
        exc.partial_result = _finish(conversion, result, safely=True)
        raise
    finally:
        if not check_mode:
            release_table_lock(database, lock_oid)
    return _finish(conversion, result)


def _finish(conversion, result, safely=False):
    """The counters, and the partitions of the partitioned table (with the planned ones in check mode)."""
    result.update(conversion.result, queries=list(conversion.database.queries))
    try:
        names, facts = conversion.names, conversion.facts()
        holder = next((name for name, relation in ((names.live, facts.live), (names.partitioned, facts.partitioned))
                       if relation is not None and relation.relkind == "p"), None)
        partitions = () if holder is None else catalog.read_table(
            conversion.database, TableName(names.schema, holder), with_max_key=False).partitions
    except (PgfleetError, DatabaseError):
        if not safely:
            raise
        partitions = ()
    if conversion.check_mode:
        partitions += tuple(Partition(a.schema, a.name, a.bounds, is_default=a.is_default) for a in conversion.planned)
    result["partitions"] = [partition_facts(p) for p in ordered(partitions)]
    return jsonable(result)
