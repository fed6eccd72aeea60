# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: carries out retention plans. Each expired partition is its own step: a
# verified backup first, then detach (CONCURRENTLY where possible) and drop or archive. Leftovers of an
# interrupted run (a pending detach, a detached table marked for dropping) are finished first.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, List, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils import _backup as backup
from ansible_collections.pgfleet.partitions.plugins.module_utils import _catalog as catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._connection import DatabaseError, sql
from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import (
    BackupError,
    ExecutionError,
    PgfleetError,
    PlanError,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._jobs import (
    STANDBY_REASON,
    jsonable,
    parse_reference_time,
    partition_listing,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._locking import (
    acquire_table_lock,
    in_transaction_with_retries,
    release_table_lock,
    under_session_lock_timeout,
    validate_lock_timeout,
    with_retries,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import (
    Partition,
    RangeBounds,
    TableName,
    TableState,
    parse_table_name,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._render import qualified
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention import (
    ACTIONS,
    CONCURRENT_DETACH_VERSION,
    CONCURRENTLY,
    RetentionPlan,
    RetentionPolicy,
    parse_retention,
    plan_retention,
)

# A table detached for dropping carries this comment until it is dropped, so a run that dies between the detach
# and the drop (or whose backend finished the detach after the client was gone) is completed by the next run.
DROP_MARKER = "pgfleet.partitions retention: detached from %s.%s, to be dropped"

# A killed run's backend notices the lost client within this time and aborts its wait, instead of finishing a
# DETACH ... CONCURRENTLY later on its own (PostgreSQL 14+, where the platform supports it).
CLIENT_CHECK_INTERVAL = "1s"

_ORPHANS_QUERY = """
SELECT n.nspname::text, c.relname::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND d.description = %s
ORDER BY c.oid
"""

_PENDING_QUERY = """
SELECT i.inhdetachpending
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""


def policy_from_params(params: dict) -> RetentionPolicy:
    """The validated RetentionPolicy; every refusal that needs no catalog happens here, before connecting."""
    try:
        return _policy(params)
    except PlanError as exc:
        raise PlanError("%s: %s" % (params.get("table"), exc))


def _policy(params):
    action, concurrently = params.get("action") or "drop", params.get("concurrently") or "auto"
    if action not in ACTIONS:
        raise PlanError("action %r is not one of %s" % (action, ", ".join(ACTIONS)))
    if concurrently not in CONCURRENTLY:
        raise PlanError("concurrently %r is not one of %s" % (concurrently, ", ".join(CONCURRENTLY)))
    archive = {}
    for option in ("archive_schema", "archive_tablespace"):
        if params.get(option) is not None:
            if action != "detach":
                raise PlanError("%s applies to action: detach only (action is %s)" % (option, action))
            name = parse_table_name(params[option], option)
            if name.schema is not None:
                raise PlanError("%s %r must be a plain name, without a dot" % (option, params[option]))
            archive[option] = name.name
    validate_lock_timeout(params.get("lock_timeout") or "3s")
    for option in ("retries", "run_lock_wait"):
        if (params.get(option) or 0) < 0:
            raise PlanError("%s must be 0 or more, got %s" % (option, params[option]))
    backup_dir = params.get("backup_dir")
    return RetentionPolicy(
        retention=parse_retention(params.get("retention")), action=action, concurrently=concurrently,
        reference_time=parse_reference_time(params.get("reference_time")), **archive,
        backup_dir=backup.validate_backup_dir(backup_dir) if backup_dir is not None else None,
        pg_dump_path=params.get("pg_dump_path"),
    )


# SQL, composed with psycopg's sql module only.

def drop_table(schema, name):
    return sql.SQL("DROP TABLE {}").format(qualified(schema, name))


def detach_partition(state, schema, name, mode=""):
    """ALTER TABLE parent DETACH PARTITION child [CONCURRENTLY | FINALIZE]."""
    statement = sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
        qualified(state.schema, state.name), qualified(schema, name))
    return sql.SQL("{} {}").format(statement, sql.SQL(mode)) if mode else statement


def set_schema(schema, name, target):
    return sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(qualified(schema, name), sql.Identifier(target))


def set_tablespace(schema, name, tablespace):
    return sql.SQL("ALTER TABLE {} SET TABLESPACE {}").format(qualified(schema, name), sql.Identifier(tablespace))


def create_schema(schema):
    return sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))


def comment_on_table(schema, name, text):
    return sql.SQL("COMMENT ON TABLE {} IS {}").format(
        qualified(schema, name), sql.Literal(text) if text is not None else sql.SQL("NULL"))


@dataclass(frozen=True)
class Operation:
    """One unit of work of a step: a backup, a statement in its own transaction, a concurrent detach, or the drop
    of a detached table that must still hold exactly the rows of its dump."""

    kind: str  # backup | transaction | concurrent | guarded_drop
    schema: str
    name: str
    statement: Any = None
    finalize: Any = None  # for `concurrent`: what finishes the detach when a lock wait left it pending


@dataclass
class Step:
    """How one partition leaves the set (or how a leftover of an interrupted run is finished)."""

    partition: Partition
    outcome: str  # dropped | detached | finalized
    final_name: str  # schema.name of the table afterwards (for detached ones)
    operations: List[Operation] = field(default_factory=list)


def _steps_for(state, policy, concurrent, partition, stage):
    """stage: attached (an expired partition), pending (detach pending), detached (marked for dropping).

    Order: backup; for detach, the move to archive_schema while still attached; the drop marker; the detach
    (CONCURRENTLY, plain, or FINALIZE of a pending one); then drop, or the archive moves.
    """
    schema, name = partition.schema, partition.name
    step = Step(partition, "dropped" if policy.action == "drop" else "detached", "%s.%s" % (schema, name))
    add = step.operations.append
    guarded = bool(policy.backup_dir)  # rows written after the dump must not be dropped unseen
    if guarded:
        add(Operation("backup", schema, name))
    archive = policy.archive_schema if policy.action == "detach" and policy.archive_schema != schema else None
    if stage == "attached" and archive:
        # Moved while still attached: a run interrupted later finds it, still a partition, and carries on.
        add(Operation("transaction", schema, name, set_schema(schema, name, archive)))
        schema, archive = archive, None
    if stage == "attached" and policy.action == "drop" and not concurrent and not guarded:
        add(Operation("transaction", schema, name, drop_table(schema, name)))
        return step
    if stage == "attached" and policy.action == "drop":
        add(Operation("transaction", schema, name, comment_on_table(schema, name, DROP_MARKER % (state.schema,
                                                                                                 state.name))))
    if stage == "attached" and concurrent:
        add(Operation("concurrent", schema, name, detach_partition(state, schema, name, "CONCURRENTLY"),
                      detach_partition(state, schema, name, "FINALIZE")))
    elif stage == "attached":
        add(Operation("transaction", schema, name, detach_partition(state, schema, name)))
    elif stage == "pending":
        add(Operation("transaction", schema, name, detach_partition(state, schema, name, "FINALIZE")))
    if policy.action == "drop":
        add(Operation("guarded_drop" if guarded else "transaction", schema, name, drop_table(schema, name)))
        return step
    if archive:
        add(Operation("transaction", schema, name, set_schema(schema, name, archive)))
        schema = archive
    if policy.archive_tablespace:
        add(Operation("transaction", schema, name, set_tablespace(schema, name, policy.archive_tablespace)))
    if stage == "detached":
        add(Operation("transaction", schema, name, comment_on_table(schema, name, None)))
    step.final_name = "%s.%s" % (schema, name)
    return step


def plan_steps(state: TableState, policy: RetentionPolicy, retention_plan: RetentionPlan,
               orphans: Tuple[Partition, ...]) -> List[Step]:
    """Leftovers first (pending detaches, then tables marked for dropping), then expired partitions, oldest first.

    A pending detach of a partition that has not expired is only finished (FINALIZE): PostgreSQL allows no
    other concurrent detach on the set while one is pending.
    """
    expired = {(p.schema, p.name) for p in retention_plan.expired}
    steps = []
    for partition in retention_plan.pending:
        if (partition.schema, partition.name) in expired:
            steps.append(_steps_for(state, policy, retention_plan.concurrent, partition, "pending"))
        else:
            finalize = detach_partition(state, partition.schema, partition.name, "FINALIZE")
            steps.append(Step(partition, "finalized", "%s.%s" % (partition.schema, partition.name),
                              [Operation("transaction", partition.schema, partition.name, finalize)]))
    steps.extend(_steps_for(state, policy, retention_plan.concurrent, orphan, "detached") for orphan in orphans)
    steps.extend(_steps_for(state, policy, retention_plan.concurrent, partition, "attached")
                 for partition in retention_plan.expired if not partition.detach_pending)
    return steps


def find_orphans(database, state):
    """Tables a previous run detached for dropping but did not drop."""
    return tuple(Partition(schema, name, None)
                 for schema, name in database.query(_ORPHANS_QUERY, (DROP_MARKER % (state.schema, state.name),)))


def refuse_archive_clashes(database, state, policy, steps):
    """Names already taken in archive_schema, or a missing archive_tablespace, stop the run before any change."""
    if policy.action != "detach":
        return
    if policy.archive_schema:
        moving = [s.partition.name for s in steps
                  if s.outcome == "detached" and s.partition.schema != policy.archive_schema]
        taken = database.query("SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                               "WHERE n.nspname = %s AND c.relname = ANY (%s)", (policy.archive_schema, moving))
        if taken:
            raise PlanError("%s.%s: archive_schema %s already holds %s; nothing was detached. Rename or remove them, "
                            "or choose another archive_schema" % (
                                state.schema, state.name, policy.archive_schema,
                                ", ".join(sorted(row[0] for row in taken))))
    if policy.archive_tablespace and not database.query_value(
            "SELECT count(*) FROM pg_tablespace WHERE spcname = %s", (policy.archive_tablespace,)):
        raise PlanError("%s.%s: archive_tablespace %s does not exist; create it first (CREATE TABLESPACE) or leave "
                        "the option out" % (state.schema, state.name, policy.archive_tablespace))


@dataclass
class Backups:
    """What a run needs to take dumps: the tools, the directory, and pg_dump's environment."""

    tools: Any
    directory: str
    environment: dict
    role: Any = None


def prepare_backups(database, state, policy, connection_params):
    """Find pg_dump/pg_restore and work out the directory; reads only (check mode uses it too)."""
    if not policy.backup_dir:
        return None
    database_name = database.query_value("SELECT current_database()")
    tools = backup.find_tools(state.server_version_num // 10000, policy.pg_dump_path)
    return Backups(tools, backup.database_directory(policy.backup_dir, database_name),
                   backup.libpq_environment(connection_params, database_name), connection_params.get("session_role"))


def _is_pending(database, schema, name):
    return bool(database.query_value(_PENDING_QUERY, (schema, name)))


def _what(state, operation):
    return "%s.%s: partition %s.%s" % (state.schema, state.name, operation.schema, operation.name)


def _detach_concurrently(database, state, operation, lock_timeout, retries, sleep=time.sleep):
    """DETACH ... CONCURRENTLY outside a transaction block. When its wait for older transactions times out, the
    detach stays pending; later attempts then run FINALIZE, which waits again without blocking writers."""
    def attempt(number):
        if number > 0 and _is_pending(database, operation.schema, operation.name):
            in_transaction_with_retries(database, lambda db: db.execute(operation.finalize, record=False),
                                        lock_timeout, 0, _what(state, operation), sleep)
            database.queries.append(database.as_string(operation.finalize))
            return
        if number == 0:
            database.queries.append(database.as_string(operation.statement))
        under_session_lock_timeout(database, lock_timeout, operation.statement, record=False)

    with_retries(attempt, lock_timeout, retries, _what(state, operation), sleep=sleep, advice=(
        "Writers were not blocked; a detach left pending is finished by the next run."))


def _run_statement(database, statement, lock_timeout, retries, what):
    """One statement in its own transaction under lock_timeout, retried; recorded once it has run."""
    in_transaction_with_retries(database, lambda db: db.execute(statement, record=False), lock_timeout, retries,
                                what)
    database.queries.append(database.as_string(statement))


def _guarded_drop(database, state, operation, lock_timeout, retries, dumped_rows):
    """Drop a detached table only if it still has the rows its dump has; the lock is on that table alone."""
    def work(db):
        db.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
            qualified(operation.schema, operation.name)), record=False)
        rows = int(db.query_value(sql.SQL("SELECT count(*) FROM {}").format(
            qualified(operation.schema, operation.name))))
        if rows != dumped_rows:
            raise BackupError(
                "partition %s.%s has %d rows now but %d in its dump: rows were written after the dump. It stays, "
                "detached and marked for dropping; the next run dumps it again and drops it"
                % (operation.schema, operation.name, rows, dumped_rows))
        db.execute(operation.statement, record=False)

    in_transaction_with_retries(database, work, lock_timeout, retries, _what(state, operation))
    database.queries.append(database.as_string(operation.statement))


def _run(database, state, operation, lock_timeout, retries, backups, details, dumped):
    if operation.kind == "backup":
        return backup.dump_table(database, backups.tools, backups.environment, operation.schema, operation.name,
                                 backups.directory, details, lock_timeout, backups.role)
    if operation.kind == "concurrent":
        return _detach_concurrently(database, state, operation, lock_timeout, retries)
    if operation.kind == "guarded_drop":
        return _guarded_drop(database, state, operation, lock_timeout, retries, dumped.rows)
    return _run_statement(database, operation.statement, lock_timeout, retries, _what(state, operation))


def _bounds_details(state, partition):
    details = {"parent": "%s.%s" % (state.schema, state.name)}
    if isinstance(partition.bounds, RangeBounds):
        details.update(lower=jsonable(partition.bounds.lower), upper=jsonable(partition.bounds.upper))
    return details


def _record(result, step):
    name = step.final_name if step.outcome == "detached" else "%s.%s" % (step.partition.schema, step.partition.name)
    result[step.outcome].append(name)


def execute_steps(database, state, steps, result, lock_timeout, retries, backups):
    """Run each step in order; a failure stops the run with earlier steps done and this one's state named."""
    for step in steps:
        dumped = None
        for operation in step.operations:
            try:
                record = _run(database, state, operation, lock_timeout, retries, backups,
                              _bounds_details(state, step.partition), dumped)
            except BackupError as exc:
                untouched = " Nothing was done to that partition." if operation.kind == "backup" else ""
                raise BackupError("%s.%s: %s.%s Partitions handled before it stay handled; fix the cause and rerun."
                                  % (state.schema, state.name, exc, untouched))
            except DatabaseError as exc:
                raise ExecutionError(
                    "%s: %s failed: %s. Partitions handled before it stay handled; fix the cause and rerun, the next "
                    "run carries on where this one stopped." % (
                        _what(state, operation), database.as_string(operation.statement), str(exc).strip()))
            if record is not None:
                dumped = record
                result["backups"].append(record.facts())
        _record(result, step)


def _listing_after(state, steps):
    gone = {(s.partition.schema, s.partition.name) for s in steps}
    return tuple(p for p in state.partitions if (p.schema, p.name) not in gone)


def _check_mode_backups(steps, backups):
    return [dict(partition="%s.%s" % (op.schema, op.name), rows=None, bytes=None, sha256=None, time=None,
                 path=backup.dump_path(backups.directory, op.schema, op.name))
            for step in steps for op in step.operations if op.kind == "backup"]


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
        return _finish(result, state, state.partitions, skipped_reason=STANDBY_REASON)
    if state.server_version_num >= CONCURRENT_DETACH_VERSION:
        _watch_for_lost_client(database)
    retention_plan = plan_retention(state, policy)
    steps = plan_steps(state, policy, retention_plan, find_orphans(database, state))
    result.update(reference=jsonable(retention_plan.reference), cutoff=jsonable(retention_plan.cutoff),
                  concurrently=retention_plan.concurrent,
                  kept_past_cutoff=["%s.%s" % (p.schema, p.name) for p in retention_plan.past_cutoff_kept])
    if not steps:
        return _finish(result, state, state.partitions)
    refuse_archive_clashes(database, state, policy, steps)
    backups = _naming(state, prepare_backups, database, state, policy, connection_params)
    if check_mode:
        for step in steps:
            _record(result, step)
        result.update(changed=True, backups=_check_mode_backups(steps, backups) if backups else [],
                      queries=_would_run(database, policy, steps))
        return _finish(result, state, _listing_after(state, steps))
    if not acquire_table_lock(database, state.oid, run_lock_wait):
        return _finish(result, state, state.partitions, skipped_reason=(
            "another run holds the maintenance lock of %s.%s for more than %ss; it is doing this work"
            % (state.schema, state.name, run_lock_wait)))
    try:
        state = catalog.read_table(database, table)
        retention_plan = plan_retention(state, policy)
        steps = plan_steps(state, policy, retention_plan, find_orphans(database, state))
        refuse_archive_clashes(database, state, policy, steps)
        if backups and steps:
            _naming(state, backup.prepare_directory, backups.directory)
        if _needs_archive_schema(policy, steps):
            _run_statement(database, create_schema(policy.archive_schema), lock_timeout, retries,
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


def _naming(state, function, *args):
    """function(*args), with the table named in a BackupError (pg_dump not found, directory unusable)."""
    try:
        return function(*args)
    except BackupError as exc:
        raise BackupError("%s.%s: %s" % (state.schema, state.name, exc))


def _needs_archive_schema(policy, steps):
    return bool(policy.action == "detach" and policy.archive_schema and any(
        s.outcome == "detached" and s.partition.schema != policy.archive_schema for s in steps))


def _would_run(database, policy, steps):
    statements = [create_schema(policy.archive_schema)] if _needs_archive_schema(policy, steps) else []
    statements += [op.statement for step in steps for op in step.operations if op.kind != "backup"]
    return [database.as_string(statement) for statement in statements]


def _watch_for_lost_client(database):
    try:
        database.execute(sql.SQL("SET client_connection_check_interval = {}").format(
            sql.Literal(CLIENT_CHECK_INTERVAL)), record=False)
    except DatabaseError:
        pass  # not supported on this platform: a killed run's backend then finishes its wait on its own


def _finish(result, before, after_partitions, skipped_reason=None):
    if skipped_reason:
        result["skipped_reason"] = skipped_reason
    result["kept"] = len(after_partitions)
    result["diff"] = {"before": partition_listing(before.partitions), "after": partition_listing(after_partitions)}
    return result
