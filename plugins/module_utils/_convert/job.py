# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the conversion job of postgres_partition_convert: read where the conversion stands,
# refuse what cannot work before the first change, plan the partitions that cover the data, run the steps to the
# wanted stage, report.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._convert import catalog, checks, stages
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.execute import STEP_METHODS, Conversion
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.model import (
    ConvertRequest,
    SourceTable,
    names_for,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PgfleetError, PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Inheritance
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    CreatePartition,
    Partition,
    PartitionPolicy,
    TableName,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import (
    jsonable,
    lock_skip_reason,
    ordered,
    partition_facts,
    standby_reason,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog as db_catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    acquire_table_lock,
    release_table_lock,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._inherit import job as inherit_job
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan import (
    grid_for,
    plan,
    refuse_taken_names,
)


def _refuse_other_shape(conversion: Conversion, name: str) -> None:
    state = db_catalog.read_table(conversion.database, TableName(conversion.names.schema, name), with_max_key=False)
    request = conversion.request
    if (state.strategy, state.key) != (request.strategy, request.column):
        raise PlanError("%s.%s is already partitioned by %s (%s), not %s (%s). Ask for that partitioning, or, "
                        "before a swap, drop %s (a copy) to start again." % (
                            state.schema, state.name, state.strategy.upper(), state.key, request.strategy.upper(),
                            request.column, conversion.names.partitioned))


def _plan_partitions(conversion: Conversion, source: SourceTable) -> Tuple[CreatePartition, ...]:
    """The partitions that hold every existing row, plus premake (RANGE); refused before any change when the
    existing keys do not fit the policy or a partition name is taken. Planned under the live table's name, so
    the partitions are named for the table they end up in."""
    database = conversion.database
    state = dataclasses.replace(conversion.partitioned_state(source), name=conversion.names.live)
    policy, table = conversion.policy, (source.schema, source.name)
    if conversion.request.strategy == "range":
        low, high, now = catalog.key_range(database, table, state.key)
        policy = checks.covering_policy(policy, grid_for(state, policy), low, high, now, "%s.%s" % table)
        state = dataclasses.replace(state, server_now=now)
    elif conversion.request.strategy == "list" and not policy.default_partition:
        missing = checks.uncovered_list_values(policy, catalog.key_values(database, table, state.key))
        if missing:
            raise PlanError("%s.%s: rows with %s in (%s) would have no partition; add the values to "
                            "list_partitions or set default_partition. Nothing was changed."
                            % (table + (state.key, ", ".join(missing))))
    actions = plan(state, policy).actions
    refuse_taken_names(state, actions, db_catalog.taken_names(database, state.schema, [a.name for a in actions]))
    return actions


def check(conversion: Conversion, todo: Sequence[str]) -> SourceTable:
    """Everything that would stop a step, found before the first change; returns the regular table."""
    facts, names = conversion.facts, conversion.names
    source = catalog.read_table(conversion.database, (facts.live if facts.live.relkind == "r" else facts.retired).oid)
    conversion.result["not_carried"] = ["%s.%s has %s, which the conversion does not carry to the new table"
                                        % (source.schema, source.name, item) for item in source.not_carried]
    if conversion.request.state != "rolled_back" and (facts.live.relkind == "p" or facts.partitioned is not None):
        _refuse_other_shape(conversion, names.partitioned if facts.live.relkind == "r" else names.live)
    if "prepare" in todo:
        checks.refuse_unconvertible(source, conversion.request.column)
        if facts.retired is not None:
            raise PlanError("%s.%s exists; the swap needs that name for the retired table. Rename it first."
                            % (names.schema, names.retired))
        conversion.planned = _plan_partitions(conversion, source)
        conversion.inheritance = _inheritance(conversion, source)
    return source


def _inheritance(conversion: Conversion, source: SourceTable) -> Inheritance:
    """What the new partitions inherit, read before the partitioned table exists: what it will carry, that is the
    source's owner and privileges (the prepare step copies them), and the template's additions; replica identity,
    access method, tablespace and persistence as CREATE TABLE ... PARTITION BY leaves them (defaults)."""
    policy = conversion.policy
    read = inherit_job.read(conversion.database, source.oid, policy.template_table, policy.tablespace)
    return dataclasses.replace(
        read, table=conversion.names.partitioned, replica_identity="d", identity_index=None, access_method=None,
        tablespace=policy.tablespace, expected_tablespace=read.expected_tablespace if policy.tablespace else None,
        unlogged=False)


def convert(database, table: TableName, request: ConvertRequest, policy: PartitionPolicy, check_mode: bool = False,
            lock_timeout: str = "3s", retries: int = 5, run_lock_wait: int = 60,
            sleep: Callable[[float], Any] = time.sleep) -> dict:
    """Walk `table` to request.state; the result dict is what the module returns."""
    db_catalog.prepare_session(database)
    schema = db_catalog.resolve_schema(database, table)
    names = names_for(schema, table.name)
    result = {"changed": False, "table": "%s.%s" % (schema, names.live),
              "partitioned_table": "%s.%s" % (schema, names.partitioned),
              "retired_table": "%s.%s" % (schema, names.retired)}
    conversion = Conversion(database, names, request, policy, check_mode, lock_timeout, retries, sleep)
    if db_catalog.in_recovery(database):
        return dict(_finish(conversion, result), stage=None, steps=[], skipped_reason=standby_reason())
    stage = stages.current_stage(conversion.facts)
    todo = stages.steps(stage, request.state)
    result.update(stage_before=stage, stage=stage, steps=list(todo))
    if not todo:
        return _finish(conversion, result)
    facts = conversion.facts
    lock_oid = (facts.live if facts.live.relkind == "r" else facts.retired).oid
    if not check_mode and not acquire_table_lock(database, lock_oid, run_lock_wait):
        return dict(_finish(conversion, result), skipped_reason=lock_skip_reason(
            "conversion", result["table"], run_lock_wait))
    try:
        if not check_mode:  # another run may have moved on while this one waited for the lock
            stage = stages.current_stage(conversion.refresh())
            todo = stages.steps(stage, request.state)
            result.update(stage_before=stage, steps=list(todo))
        source = check(conversion, todo) if todo else None
        for step in todo:
            getattr(conversion, STEP_METHODS[step])(source)
        result.update(changed=bool(todo), stage=stages.stage_after(stage, todo))
    except (PgfleetError, DatabaseError) as exc:
        exc.partial_result = _finish(conversion, result, safely=True)
        raise
    finally:
        if not check_mode:
            release_table_lock(database, lock_oid)
    return _finish(conversion, result)


def _finish(conversion: Conversion, result: dict, safely: bool = False) -> dict:
    """The counters, and the partitions of the partitioned table (with the planned ones in check mode)."""
    result.update(conversion.result, queries=list(conversion.database.queries))
    try:
        names, facts = conversion.names, conversion.refresh()
        holder = next((name for name, relation in ((names.live, facts.live), (names.partitioned, facts.partitioned))
                       if relation is not None and relation.relkind == "p"), None)
        partitions = () if holder is None else db_catalog.read_table(
            conversion.database, TableName(names.schema, holder), with_max_key=False).partitions
    except (PgfleetError, DatabaseError):
        if not safely:
            raise
        partitions = ()
    if conversion.check_mode:
        partitions += tuple(Partition(a.schema, a.name, a.bounds, is_default=a.is_default) for a in conversion.planned)
    result["partitions"] = [partition_facts(p) for p in ordered(partitions)]
    return jsonable(result)
