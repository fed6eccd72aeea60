# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the steps of a conversion (prepare, fill, swap, and their way back), every change
# in short transactions under lock_timeout with retries; check mode renders the same statements and runs none.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._convert import catalog, render, stages
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.checks import (
    compare_verification,
    recreated_not_valid,
    refuse_unmovable,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.model import (
    ConversionFacts,
    ConvertRequest,
    Names,
    SourceTable,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import ExecutionError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Inheritance
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    CreatePartition,
    PartitionPolicy,
    Relation,
    TableName,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import ordered
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog as db_catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError, sqlstate
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    backoff_delays,
    in_transaction_with_retries,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.render import (
    change_owner,
    comment_on_table,
    drop_constraint,
    grants,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.job import create_partitions

SERIALIZATION_FAILURE = "40001"
# Copy batches retried after a serialization failure, the batch shrinking each time (a lock wait is retried apart).
SERIALIZATION_RETRIES = 7


class Conversion(object):
    """One run: the steps from the observed stage to the wanted one, and what they did.

    `facts` (the three relations) is read once and again after each transaction that changed them; progress records
    written in this run are kept in `markers`, which check mode reads back too.
    """

    def __init__(self, database, names: Names, request: ConvertRequest, policy: PartitionPolicy, check_mode: bool,
                 lock_timeout: str, retries: int, sleep: Callable[[float], Any] = time.sleep) -> None:
        self.database = database
        self.names = names
        self.request = request
        self.policy = policy
        self.check_mode = check_mode
        self.lock_timeout = lock_timeout
        self.retries = retries
        self.sleep = sleep
        self.planned: Sequence[CreatePartition] = ()  # the partitions the prepare step creates
        self.inheritance: Optional[Inheritance] = None  # and what they inherit
        self.batch_limit = request.batch_size  # rows in the next copy batch: smaller after serialization failures
        self.markers: dict = {}
        self.facts: ConversionFacts = catalog.read_facts(database, names)
        self.result = {"created": [], "rows_copied": 0, "rows_deleted": 0, "batches": 0, "batches_retried": 0,
                       "foreign_keys": [], "not_carried": []}

    # ----------------------------------------------------------------------------------------------- helpers
    def qualified(self, name: str) -> Tuple[str, str]:
        return (self.names.schema, name)

    def refresh(self) -> ConversionFacts:
        self.facts = catalog.read_facts(self.database, self.names)
        return self.facts

    def record(self, statements: Sequence[Any]) -> None:
        self.database.record([statement for statement in statements if not callable(statement)])

    def transaction(self, statements: Sequence[Any], what: str) -> None:
        """Run statements in one transaction under lock_timeout, with retries; a callable among them is a check
        run at that point (it raises to abandon the transaction). In check mode, record only."""
        if not self.check_mode:
            def run(db):
                for statement in statements:
                    statement(db) if callable(statement) else db.execute(statement, record=False)

            in_transaction_with_retries(self.database, run, self.lock_timeout, self.retries, what)
            self.refresh()
        self.record(statements)

    def relation(self, name: str) -> Optional[Relation]:
        """The Relation that now has `name` (one of the conversion's three), or None."""
        facts, names = self.facts, self.names
        return {names.live: facts.live, names.partitioned: facts.partitioned, names.retired: facts.retired}[name]

    def marker(self, name: str) -> Optional[dict]:
        if name in self.markers:
            return self.markers[name]
        relation = self.relation(name)
        return stages.read_marker(relation.comment) if relation else None

    def write_marker(self, name: str, marker: dict) -> Any:
        self.markers[name] = marker
        return comment_on_table(self.names.schema, name, stages.marker_comment(marker))

    def partitioned_state(self, source: SourceTable) -> TableState:
        """The catalog state of the new table, or (before it exists) the one it will have."""
        names = self.names
        if self.facts.partitioned is not None:
            return db_catalog.read_table(self.database, TableName(names.schema, names.partitioned),
                                         with_max_key=False)
        column = source.column(self.request.column)
        return TableState(oid=0, schema=names.schema, name=names.partitioned, strategy=self.request.strategy,
                          key=column.name, key_type=column.key_type, partitions=())

    # --------------------------------------------------------------------------------------------- prepare
    def prepare(self, source: SourceTable) -> None:
        names = self.names
        if self.facts.partitioned is None:
            statements = [render.create_partitioned(names, source, self.request.strategy, self.request.column)]
            if source.owner != db_catalog.current_user(self.database):
                statements.append(change_owner(names.schema, names.partitioned, source.owner))
            statements += grants(names.schema, names.partitioned, source.grants)
            statements += [render.foreign_key(dataclasses.replace(fk, schema=names.schema, table=names.partitioned),
                                              fk.ref_schema, fk.ref_table) for fk in source.outgoing]
            statements.append(self.write_marker(names.partitioned, stages.initial_marker(names.live)))
            self.transaction(statements, "%s.%s: creating %s" % (names.schema, names.live, names.partitioned))
        created = create_partitions(self.database, self.partitioned_state(source), self.planned, self.check_mode,
                                    self.lock_timeout, self.retries, self.inheritance)
        self.result["created"] += created.created
        self.install_mirror(names.live, names.partitioned, names.forward_function, source, "prepared")

    def install_mirror(self, source_name: str, target_name: str, function: str, source: SourceTable,
                       stage: str) -> None:
        """The trigger that replays every change of the source on the target, and a fresh progress record: from now
        on the target misses no write, whatever the copy has reached. A target that holds rows already (an earlier
        attempt, or the retired table when rolling back) is refreshed rather than copied into."""
        schema = self.names.schema
        body = render.mirror_body(schema, target_name, source.copied_columns, source.primary_key.columns)
        statements = [render.mirror_function(schema, function, self.database.as_string(body))]
        statements += render.create_mirror(schema, source_name, function)
        empty = self.relation(target_name) is None or not catalog.holds_rows(self.database,
                                                                             self.qualified(target_name))
        statements.append(self.write_marker(target_name,
                                            stages.restart_marker(self.marker(target_name), empty, stage)))
        self.transaction(statements, "%s.%s: installing the mirror trigger" % (schema, source_name))

    # ------------------------------------------------------------------------------------------------ fill
    def synchronize(self, source_name: str, target_name: str, regular: SourceTable) -> None:
        """Copy the source into the target in primary-key batches, resumable from the watermark kept in the
        target's comment, which each batch advances in its own transaction."""
        source, target = self.qualified(source_name), self.qualified(target_name)
        marker = self.marker(target_name) or stages.initial_marker(self.names.live)
        columns, primary_key = regular.copied_columns, regular.primary_key.columns
        types = regular.types(primary_key)
        refresh = marker.get("mode") == "refresh"
        if self.check_mode and not marker.get("synced"):
            self.result["rows_to_copy"] = catalog.rows_after(self.database, source, primary_key, types,
                                                             marker.get("watermark"))
            self.record([render.copy_batch(source, target, columns, primary_key, types, marker.get("watermark"),
                                           self.request.batch_size, refresh), render.analyze(*target)])
        while not marker.get("synced") and not self.check_mode:
            marker = self.copy_batch(source, target, marker, regular, refresh)
            if not marker["synced"] and self.request.sleep:
                self.sleep(self.request.sleep)
            if marker["synced"]:
                analyze = render.analyze(*target)
                self.database.execute(analyze)
        self.result["progress"] = {key: marker.get(key) for key in ("watermark", "rows_copied", "synced")}

    def copy_batch(self, source: Tuple[str, str], target: Tuple[str, str], marker: dict, regular: SourceTable,
                   refresh: bool) -> dict:
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
            read, written, last = db.execute_returning(batch, record=False)
            finished = read < limit
            statements, deleted = [batch], 0
            if refresh:
                statements.append(render.delete_orphans(source, target, primary_key, types, after,
                                                        None if finished else last))
                deleted = db.execute(statements[-1], record=False)
            advanced = dict(marker, watermark=last if last is not None else after, synced=finished,
                            rows_copied=marker.get("rows_copied", 0) + written)
            db.execute(comment_on_table(target[0], target[1], stages.marker_comment(advanced)), record=False)
            done[:] = [advanced, written, deleted, statements]

        what = "%s.%s: copying rows into %s" % (source + (target[1],))
        for delay in backoff_delays(SERIALIZATION_RETRIES, base=0.05) + [None]:
            limit = self.batch_limit
            batch = render.copy_batch(source, target, regular.copied_columns, primary_key, types, after, limit,
                                      refresh)
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
    def verify(self, regular: SourceTable, partitioned: SourceTable) -> None:
        """Rows and a checksum of the primary key (which holds the partition key) per partition, both tables in one
        snapshot. The mirror writes both in the writer's transaction, so every snapshot must see them equal."""
        state = db_catalog.read_table(self.database, TableName(partitioned.schema, partitioned.name),
                                      with_max_key=False)
        rows = catalog.verification_rows(self.database, (regular.schema, regular.name), state,
                                         regular.primary_key.columns)
        report, mismatched = compare_verification(rows, [p.name for p in ordered(state.partitions)])
        self.result["verification"] = report
        if mismatched:
            raise ExecutionError(
                "%s.%s and %s.%s differ in partition(s) %s; nothing was swapped. Run state=rolled_back, then the same "
                "state again: the copy is then refreshed from the table." % (
                    regular.schema, regular.name, partitioned.schema, partitioned.name, ", ".join(mismatched)))

    def swap(self, arriving_name: str, leaving_new_name: str, function: str, leaving_marker: dict) -> None:
        """Verify, then one short transaction: the live table takes leaving_new_name and the arriving one the live
        name, with sequences, index names, comments and foreign keys following; the mirror goes."""
        names = self.names
        schema, live = names.schema, names.live
        live_relation, arriving_relation = self.relation(live), self.relation(arriving_name)
        leaving = catalog.read_table(self.database, live_relation.oid)
        arriving = catalog.read_table(self.database, arriving_relation.oid) if arriving_relation is not None else None
        refuse_unmovable(leaving)
        if not self.check_mode:
            self.verify(*((leaving, arriving) if leaving.relkind == "r" else (arriving, leaving)))

        def mirror_still_there(db):
            if not catalog.mirror_enabled(db, leaving.oid):
                raise ExecutionError("%s.%s: the mirror trigger was dropped or disabled after the verification; "
                                     "nothing was swapped" % (schema, live))

        statements = [render.lock_tables((schema, live), (schema, arriving_name)), mirror_still_there,
                      render.rename("TABLE", schema, live, leaving_new_name),
                      render.rename("TABLE", schema, arriving_name, live)]
        suffix = "retired" if leaving_new_name == names.retired else "partitioned"
        statements += render.drop_mirror(schema, leaving_new_name, function)
        statements += render.sequence_handover(leaving.sequences, arriving.sequences if arriving else (), schema,
                                               live, suffix)
        statements += render.index_renames(schema, leaving.indexes, arriving.indexes if arriving else (), suffix)
        validate: List[Any] = []
        server_version_num = db_catalog.server_version_num(self.database)
        for fk in leaving.incoming:
            not_valid = recreated_not_valid(fk, server_version_num)
            statements += [drop_constraint(fk.schema, fk.table, fk.name),
                           render.foreign_key(fk, schema, live, not_valid=not_valid)]
            validate += [render.validate_constraint(fk.schema, fk.table, fk.name)] if not_valid else []
            self.result["foreign_keys"].append("%s.%s.%s" % (fk.schema, fk.table, fk.name))
        statements += [comment_on_table(schema, live, live_relation.comment),
                       self.write_marker(leaving_new_name, leaving_marker)]
        self.transaction(statements, "%s.%s: swapping with %s" % (schema, live, arriving_name))
        for statement in validate:
            self.transaction([statement], "%s.%s: validating a foreign key after the swap" % (schema, live))

    # ------------------------------------------------------------------------------------------------- steps
    def fill(self, source: SourceTable) -> None:
        self.synchronize(self.names.live, self.names.partitioned, source)

    def forward_swap(self, source: SourceTable) -> None:
        self.swap(self.names.partitioned, self.names.retired, self.names.forward_function,
                  dict(stages.initial_marker(self.names.live, "swapped"), synced=True))

    def catch_up(self, source: SourceTable) -> None:
        """Rolling back: first mirror the live (partitioned) table's writes into the retired one, then refresh the
        retired table from it, so it gains every row written since the swap and loses every row deleted."""
        names = self.names
        if not self.facts.live.mirrored:
            self.install_mirror(names.live, names.retired, names.backward_function, source, "rolling_back")
        self.synchronize(names.live, names.retired, source)

    def swap_back(self, source: SourceTable) -> None:
        self.swap(self.names.retired, self.names.partitioned, self.names.backward_function,
                  stages.initial_marker(self.names.live, "rolled_back"))

    def stop_mirror(self, source: SourceTable) -> None:
        """Abandon the direction the mirror goes: before a swap the copy stays as it is (stale from now on, refreshed
        if the conversion is taken up again); while rolling back, the table stays swapped."""
        names = self.names
        forward = self.facts.live.relkind == "r"
        target = names.partitioned if forward else names.retired
        statements = render.drop_mirror(names.schema, names.live,
                                        names.forward_function if forward else names.backward_function)
        statements.append(self.write_marker(target, dict(self.marker(target) or {},
                                                         stage="rolled_back" if forward else "swapped")))
        self.transaction(statements, "%s.%s: removing the mirror trigger" % (names.schema, names.live))


STEP_METHODS = {"prepare": "prepare", "fill": "fill", "swap": "forward_swap", "catch_up": "catch_up",
                "swap_back": "swap_back", "stop_mirror": "stop_mirror"}
