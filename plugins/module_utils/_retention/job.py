# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the retention job postgres_partition_retention and the scheduled runner share:
# read -> plan -> (dump,) detach, drop or archive -> read back. Leftovers of an interrupted run (a pending detach, a
# detached table marked for dropping) are finished first.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses

from typing import List, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._backup import dump, files
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import BackupError, PgfleetError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import TableName, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import (
    jsonable,
    lock_skip_reason,
    standby_reason,
    with_listing,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import render as db_render
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    acquire_table_lock,
    release_table_lock,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention import catalog as retention_catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention import render
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.execute import (
    execute_steps,
    record_step,
    run_statement,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.params import RetentionPolicy
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.plan import (
    CONCURRENT_DETACH_VERSION,
    Step,
    moving_to_archive,
    plan_retention,
    plan_steps,
    refuse_archive_clashes,
)

# A killed run's backend notices the lost client within this time and aborts its wait, instead of finishing a
# DETACH ... CONCURRENTLY later on its own (PostgreSQL 14+, where the platform supports it).
CLIENT_CHECK_INTERVAL = "1s"


def _plan(database, state: TableState, policy: RetentionPolicy):
    """The retention plan and its steps, refused before any change when the archive cannot take them."""
    partitioned = [p for p in state.partitions if p.is_partitioned]
    if partitioned:
        leaves = {(p.schema, p.name): p for p in retention_catalog.with_leaves(database, partitioned)}
        state = dataclasses.replace(state, partitions=tuple(leaves.get((p.schema, p.name), p)
                                                            for p in state.partitions))
    retention_plan = plan_retention(state, policy)
    orphans = retention_catalog.with_leaves(database, retention_catalog.find_orphans(database, state))
    steps = plan_steps(state, policy, retention_plan, orphans)
    moving = moving_to_archive(policy, steps)
    refuse_archive_clashes(
        state, policy, sorted(catalog.taken_names(database, policy.archive_schema, moving)) if moving else [],
        catalog.tablespace_exists(database, policy.archive_tablespace) if policy.archive_tablespace else True)
    return retention_plan, steps


def enforce_retention(database, table: TableName, policy: RetentionPolicy, connection_params: dict,
                      check_mode: bool = False, lock_timeout: str = "3s", retries: int = 5,
                      run_lock_wait: int = 60) -> dict:
    """Apply the retention policy to `table`; the result dict is what the module returns.

    On failure the exception carries `partial_result`: what was done before it.
    """
    catalog.prepare_session(database)
    state = catalog.read_table(database, table)
    result = {"changed": False, "table": "%s.%s" % (state.schema, state.name), "retention": policy.retention.text,
              "action": policy.action, "dropped": [], "detached": [], "finalized": [], "backups": [],
              "queries": []}
    if state.in_recovery:
        return _finish(result, state, state.partitions, skipped_reason=standby_reason())
    if state.server_version_num >= CONCURRENT_DETACH_VERSION:
        _watch_for_lost_client(database)
    retention_plan, steps = _plan(database, state, policy)
    result.update(reference=jsonable(retention_plan.reference), cutoff=jsonable(retention_plan.cutoff),
                  concurrently=retention_plan.concurrent)
    # pg_dump is looked for on every run, in check mode too: a deployment that cannot back up fails on its first
    # run, not on the night its first partition expires.
    backups = _naming(state, _prepare_backups, database, state, policy, connection_params)
    if not steps:
        return _finish(result, state, state.partitions)
    if check_mode:
        for step in steps:
            record_step(result, step)
        result.update(changed=True, backups=_check_mode_backups(state, steps, backups) if backups else [],
                      queries=_would_run(database, state, policy, steps))
        return _finish(result, state, _listing_after(state, steps))
    if not acquire_table_lock(database, state.oid, run_lock_wait):
        return _finish(result, state, state.partitions, skipped_reason=lock_skip_reason(
            "maintenance", result["table"], run_lock_wait))
    try:
        state = catalog.read_table(database, table)
        retention_plan, steps = _plan(database, state, policy)
        if backups and steps:
            _naming(state, files.prepare_directory, backups.directory, backups.backup_dir)
        if moving_to_archive(policy, steps):
            run_statement(database, render.create_schema(policy.archive_schema), lock_timeout, retries,
                          "%s.%s: creating archive_schema %s" % (state.schema, state.name, policy.archive_schema))
        execute_steps(database, state, steps, result, lock_timeout, retries, backups)
    except (PgfleetError, DatabaseError) as exc:
        result.update(changed=bool(database.queries or result["backups"]), queries=list(database.queries))
        exc.partial_result = result
        raise
    finally:
        release_table_lock(database, state.oid)
    result.update(changed=bool(steps), queries=list(database.queries))
    return _finish(result, state, catalog.read_table(database, table, with_max_key=False).partitions)


def _prepare_backups(database, state: TableState, policy: RetentionPolicy,
                     connection_params: dict) -> Optional[dump.Backups]:
    if not policy.backup_dir:
        return None
    return dump.prepare(database, state.server_version_num, policy.backup_dir, policy.pg_dump_path,
                        connection_params)


def _naming(state, function, *args):
    """function(*args), with the table named in a BackupError (pg_dump not found, directory unusable)."""
    try:
        return function(*args)
    except BackupError as exc:
        raise BackupError("%s.%s: %s" % (state.schema, state.name, exc))


def _would_run(database, state: TableState, policy: RetentionPolicy, steps: List[Step]) -> List[str]:
    statements = [render.create_schema(policy.archive_schema)] if moving_to_archive(policy, steps) else []
    statements += [render.statement(state, op) for step in steps for op in step.operations if op.kind != "backup"]
    return [database.as_string(statement) for statement in statements]


def _check_mode_backups(state: TableState, steps: List[Step], backups: dump.Backups) -> List[dict]:
    oids = {(p.schema, p.name): p.oid for p in state.partitions}
    return [dict(partition="%s.%s" % (op.schema, op.name), rows=None, bytes=None, sha256=None, time=None,
                 path=files.dump_path(backups.directory, op.schema, op.name, oids.get((op.schema, op.name), 0),
                                      files.PLANNED_STAMP))
            for step in steps for op in step.operations if op.kind == "backup"]


def _listing_after(state: TableState, steps: List[Step]) -> tuple:
    gone = {(s.partition.schema, s.partition.name) for s in steps}
    return tuple(p for p in state.partitions if (p.schema, p.name) not in gone)


def _watch_for_lost_client(database) -> None:
    try:
        database.execute(db_render.set_setting("client_connection_check_interval", CLIENT_CHECK_INTERVAL),
                         record=False)
    except DatabaseError:
        pass  # not supported on this platform: a killed run's backend then finishes its wait on its own


def _finish(result: dict, before: TableState, after_partitions, skipped_reason=None) -> dict:
    result["kept"] = len(after_partitions)
    return with_listing(result, before.partitions, after_partitions, skipped_reason)
