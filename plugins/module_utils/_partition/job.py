# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the partition job postgres_partition, postgres_partition_convert and the scheduled
# runner share, from a connection to a JSON-ready result: read -> plan -> apply -> read back.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Inheritance
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    CreatePartition,
    Partition,
    PartitionPolicy,
    TableName,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import (
    jsonable,
    lock_skip_reason,
    ordered,
    partition_facts,
    standby_reason,
    with_listing,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PgfleetError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog as db_catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    acquire_table_lock,
    release_table_lock,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition import (
    catalog,
    execute,
    plan,
    plan_creation,
    plan_values,
    render,
)


@dataclass
class CreationResult:
    created: List[str] = field(default_factory=list)
    moved_rows: int = 0


def create_partitions(database, state: TableState, actions: Sequence[CreatePartition], check_mode: bool,
                      lock_timeout: str, retries: int, inheritance: Inheritance) -> CreationResult:
    """Create each planned partition in its own transaction, with what `inheritance` (_inherit.job.read) says it
    inherits; a failure leaves earlier ones created. The statements (run, or in check mode that would run) go to
    database.queries."""
    names = [action.name for action in actions] + [child.name for action in actions for child in action.children]
    plan.refuse_taken_names(state, actions, db_catalog.taken_names(database, state.schema, names))
    from ansible_collections.pgfleet.partitions.plugins.module_utils._inherit import plan as inherit_plan
    result = CreationResult()

    def statements_of(creation):
        action = creation.action
        new = inherit_plan.new_sub_parent if action.children else inherit_plan.new_partition
        leaves = [inherit_plan.new_leaf(inheritance, child.schema, child.name) for child in action.children]
        return render.creation_statements(state, creation, inheritance, new(inheritance, action.schema, action.name),
                                          database.as_string, leaves)

    if state.default_partition is None:
        # No rows to move, nothing to measure: the creations run in batches.
        creations = [plan_creation.creation_for(state, action, 0, 0) for action in actions]
        for batch in plan_creation.batches(state, creations):
            statements = [statements_of(creation) for creation in batch]
            if not check_mode:
                execute.create_together(database, state, [creation.action for creation in batch], statements,
                                        lock_timeout, retries)
            for creation, each in zip(batch, statements):
                result.created.append(creation.action.name)
                database.record(each.all)
        return result
    for action in actions:
        rows, default_bytes = catalog.rows_to_move_and_default_size(database, state, action)
        creation = plan_creation.creation_for(state, action, rows, default_bytes)
        statements = statements_of(creation)
        if not check_mode:
            if creation.proves_absent and not execute.prove_absent(database, state, action, statements,
                                                                   lock_timeout, retries):
                # Rows of the range arrived in the default partition meanwhile: they are moved instead.
                statements = statements_of(plan_creation.creation_for(state, action, 1, default_bytes))
            moved = execute.create(database, state, action, statements, lock_timeout, retries)
            rows = moved if moved is not None else rows
        result.created.append(action.name)
        result.moved_rows += rows
        database.record(statements.all)
    return result


def ensure_partitions(database, table: TableName, policy: PartitionPolicy, check_mode: bool = False,
                      lock_timeout: str = "3s", retries: int = 5, run_lock_wait: int = 60,
                      progress: Optional[Callable[[str, int, bool], None]] = None) -> dict:
    """Make `table` have the partitions the policy asks for; the result dict is what the module returns."""
    return ensure_partitions_reading(database, table, policy, check_mode, lock_timeout, retries, run_lock_wait,
                                     progress)[0]


def _drains(policy: PartitionPolicy) -> bool:
    return policy.default_rows == "drain" or policy.list_new_values == "create"


def _drain(database, state, policy, inheritance, first_plan, check_mode, lock_timeout, retries, progress, result):
    """Drain the default partition (before the window's partitions are created, which then have no rows to move);
    the result says what moved where and what stays."""
    # Imported here: only policies that drain the default partition need it, and a no-op pass starts faster.
    from ansible_collections.pgfleet.partitions.plugins.module_utils._drain import job as drain_job
    live = drain_job.live_bounds(state, first_plan.actions, first_plan.reference)
    drained = drain_job.drain(database, state, policy, inheritance, live, check_mode, lock_timeout, retries, progress)
    result.update(drained=drained.drained, left_in_default=drained.left)
    result["created"] += drained.created
    result["moved_rows"] += drained.rows
    return drained


def ensure_partitions_reading(database, table: TableName, policy: PartitionPolicy, check_mode: bool = False,
                              lock_timeout: str = "3s", retries: int = 5, run_lock_wait: int = 60,
                              progress: Optional[Callable[[str, int, bool], None]] = None
                              ) -> Tuple[dict, Optional[TableState]]:
    """ensure_partitions, and the TableState it read last (after its creations, if any), None when it skipped the
    table for another run's lock: the runner takes its status facts from that state instead of reading the catalog
    again."""
    db_catalog.prepare_session(database)
    state = db_catalog.read_table(database, table)
    result = {"changed": False, "created": [], "repaired": [], "moved_rows": 0, "queries": [],
              "strategy": state.strategy, "key": state.key, "key_type": state.key_type,
              "table": "%s.%s" % (state.schema, state.name)}
    if state.in_recovery:
        return _finish(result, state, state.partitions, skipped_reason=standby_reason()), state
    if state.strategy == "list":
        plan_values.refuse_inexact_list_values(state, catalog.list_values_as_key(
            database, state, plan_values.list_values(policy)))
    first_plan = plan.plan(state, policy)
    result["reference"] = jsonable(first_plan.reference)
    enforce = policy.inherit == "enforce"
    drains = _drains(policy) and state.default_partition is not None
    if not first_plan.actions and not drains and not enforce:
        return _finish(result, state, state.partitions), state
    # Imported here, as the drain: a pass with nothing to create or repair needs neither.
    from ansible_collections.pgfleet.partitions.plugins.module_utils._inherit import job as inherit_job
    inheritance = inherit_job.read(database, state.oid, policy.template_table, policy.tablespace)
    repairs = inherit_job.repairs(database, state.oid, inheritance) if enforce else []
    if not first_plan.actions and not drains and not repairs:
        return _finish(result, state, state.partitions), state
    if check_mode:
        drained = _drain(database, state, policy, inheritance, first_plan, True, lock_timeout, retries, progress,
                         result) if drains else None
        taken = {entry["partition"] for entry in drained.drained} if drained else set()
        actions = [a for a in first_plan.actions if a.name not in taken]
        created = create_partitions(database, state, actions, True, lock_timeout, retries, inheritance)
        repaired = inherit_job.apply(database, repairs, True, lock_timeout, retries)
        planned = tuple(Partition(a.schema, a.name, a.bounds, is_default=a.is_default) for a in actions) + tuple(
            Partition(state.schema, t, None) for t in (drained.created if drained else ()))
        result.update(changed=bool(result["created"] or created.created or repaired),
                      created=result["created"] + created.created, repaired=repaired,
                      moved_rows=result["moved_rows"] + created.moved_rows, queries=list(database.queries))
        return _finish(result, state, state.partitions + planned), state
    if not acquire_table_lock(database, state.oid, run_lock_wait):
        return _finish(result, state, state.partitions, skipped_reason=lock_skip_reason(
            "maintenance", result["table"], run_lock_wait)), None
    try:
        state = db_catalog.read_table(database, table)
        if drains:
            _drain(database, state, policy, inheritance, plan.plan(state, policy), False, lock_timeout, retries,
                   progress, result)
            state = db_catalog.read_table(database, table)
        created = create_partitions(database, state, plan.plan(state, policy).actions, False, lock_timeout, retries,
                                    inheritance)
        # Read again under the lock: another run may have repaired them meanwhile.
        repairs = inherit_job.repairs(database, state.oid, inheritance) if enforce else []
        repaired = inherit_job.apply(database, repairs, False, lock_timeout, retries)
    except PgfleetError as exc:
        result.update(changed=bool(database.queries), queries=list(database.queries))
        exc.partial_result = result
        raise
    finally:
        release_table_lock(database, state.oid)
    result.update(changed=bool(result["created"] or created.created or repaired),
                  created=result["created"] + created.created, repaired=repaired,
                  moved_rows=result["moved_rows"] + created.moved_rows, queries=list(database.queries))
    # Only repairs, or another run made the partitions while this one waited for the lock.
    if not result["created"] and not result.get("drained"):
        return _finish(result, state, state.partitions), state
    # The max key (integer keys' reference) is the one read under the lock: creating partitions moves no key
    # value, and reading it again would scan a set without an index on its key.
    after = dataclasses.replace(db_catalog.read_table(database, table, with_max_key=False), max_key=state.max_key)
    return _finish(result, state, after.partitions), after


def _finish(result, before, after_partitions, skipped_reason=None):
    result["partitions"] = [partition_facts(p) for p in ordered(after_partitions)]
    return with_listing(result, before.partitions, after_partitions, skipped_reason)
