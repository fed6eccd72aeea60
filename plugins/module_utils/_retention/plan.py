# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the pure retention planner, catalog state + retention + reference -> the
# partitions that expire, and the steps that remove each one. No database, no clock, no Ansible.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    MAXVALUE,
    MINVALUE,
    Partition,
    RangeBounds,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.intervals import IntegerRetention, TimeRetention
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import uuid7_instant
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import instant, on_key_axis
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.params import RetentionPolicy

CONCURRENT_DETACH_VERSION = 140000  # DETACH PARTITION ... CONCURRENTLY exists from PostgreSQL 14

# A table detached for dropping carries this comment until it is dropped, so a run that dies between the detach
# and the drop (or whose backend finished the detach after the client was gone) is completed by the next run.
DROP_MARKER = "pgfleet.partitions retention: detached from %s.%s, to be dropped"


@dataclass(frozen=True)
class RetentionPlan:
    reference: Any  # in the comparison domain of the key (aware UTC, naive, or int); None: no data, no reference
    cutoff: Any  # partitions whose upper bound is at or before it expire
    expired: Tuple[Partition, ...]  # oldest first
    kept: Tuple[Partition, ...]
    pending: Tuple[Partition, ...]  # detach pending from an interrupted run: finished first
    concurrent: bool  # detach with DETACH PARTITION ... CONCURRENTLY

    @property
    def has_work(self) -> bool:
        return bool(self.expired or self.pending)


def _reference_and_cutoff(state, policy):
    table = "%s.%s" % (state.schema, state.name)
    retention, reference = policy.retention, policy.reference_time
    if state.key_kind in ("time", "uuid"):
        if not isinstance(retention, TimeRetention):
            raise PlanError("%s: the key %s is %s, so retention must be an interval such as '%d days', not a bare "
                            "number" % (table, state.key, state.key_type, retention.distance))
        if isinstance(reference, int):
            raise PlanError("%s: reference_time must be a date or date-time for the %s key %s, not %r"
                            % (table, state.key_type, state.key, reference))
        reference = reference if reference is not None else state.server_now
        # A UUIDv7 key is measured by the time its bounds encode.
        reference = instant(reference) if state.key_kind == "uuid" else on_key_axis(reference, state.key_type)
        return reference, retention.before(reference)
    if state.key_kind == "integer":
        if not isinstance(retention, IntegerRetention):
            raise PlanError("%s: the key %s is %s, so retention must be a positive integer distance below the "
                            "highest key (for Unix-time keys: in the key's unit, e.g. 7776000 for 90 days in "
                            "seconds), not %r" % (table, state.key, state.key_type, retention.text))
        if reference is not None and not isinstance(reference, int):
            raise PlanError("%s: reference_time must be an integer for the %s key %s, not %r"
                            % (table, state.key_type, state.key, str(reference)))
        reference = reference if reference is not None else state.max_key
        return reference, None if reference is None else retention.before(reference)
    raise PlanError("%s: retention supports date, timestamp, timestamptz, integer and uuid (UUIDv7) RANGE keys; "
                    "the key %s is %s"
                    % (table, state.key, state.key_type))


def detach_concurrently(state: TableState, mode: str) -> bool:
    """Whether to detach with CONCURRENTLY: `auto` when the server can, `always` fails where it cannot."""
    if mode == "never":
        return False
    reason = None
    if state.server_version_num < CONCURRENT_DETACH_VERSION:
        reason = "the server is older than PostgreSQL 14"
    elif state.default_partition is not None:
        reason = "the set has a default partition (%s)" % state.default_partition.name
    if reason and mode == "always":
        raise PlanError("%s.%s: concurrently: always is impossible because %s; use concurrently: auto or never, "
                        "which take ACCESS EXCLUSIVE on the parent for a moment" % (state.schema, state.name, reason))
    return reason is None


def _sort_key(partition):
    lower = partition.bounds.lower
    return (0, None) if lower is MINVALUE else (1, lower)


def _on_axis(value: Any, state: TableState) -> Any:
    return uuid7_instant(value) if state.key_kind == "uuid" else on_key_axis(value, state.key_type)


def plan_retention(state: TableState, policy: RetentionPolicy) -> RetentionPlan:
    """Which partitions of a RANGE set lie wholly before the cutoff (upper bound <= reference - retention).

    Never expired: the default partition, and anything whose upper bound is after the cutoff (so the partition
    holding the reference, and one straddling the cutoff). A sub-partitioned partition expires whole.
    """
    if state.strategy != "range":
        raise PlanError("%s.%s is %s partitioned: retention applies to RANGE partitioned tables only"
                        % (state.schema, state.name, state.strategy.upper()))
    reference, cutoff = _reference_and_cutoff(state, policy)
    expired, kept = [], []
    for partition in state.partitions:
        upper = partition.bounds.upper if isinstance(partition.bounds, RangeBounds) else MAXVALUE
        before_cutoff = cutoff is not None and upper is not MAXVALUE and (
            upper is MINVALUE or _on_axis(upper, state) <= cutoff)
        if before_cutoff and not partition.is_default:
            expired.append(partition)
        elif not partition.detach_pending:
            kept.append(partition)
    return RetentionPlan(
        reference=reference, cutoff=cutoff, expired=tuple(sorted(expired, key=_sort_key)), kept=tuple(kept),
        pending=tuple(p for p in state.partitions if p.detach_pending),
        concurrent=detach_concurrently(state, policy.concurrently),
    )


@dataclass(frozen=True)
class Operation:
    """One unit of work of a step: a backup, a statement in its own transaction, a concurrent detach, or the drop
    of a detached table that must still hold exactly the rows of its dump."""

    kind: str  # backup | transaction | concurrent | guarded_drop
    schema: str
    name: str
    # What the operation runs on schema.name (render.statement makes the SQL): drop | detach | detach_concurrently |
    # finalize | set_schema | set_tablespace | comment. A concurrent detach that a lock wait left pending is
    # finished by a finalize.
    statement: Optional[str] = None
    argument: Optional[str] = None  # the schema, tablespace or comment text of set_schema, set_tablespace, comment


@dataclass
class Step:
    """How one partition leaves the set (or how a leftover of an interrupted run is finished)."""

    partition: Partition
    outcome: str  # dropped | detached | finalized
    final_name: str  # schema.name of the table afterwards (for detached ones)
    operations: List[Operation] = field(default_factory=list)


def _move_leaves(step, partition, statement, target):
    """SET SCHEMA and SET TABLESPACE move a partitioned table alone: its leaves are moved too (those not there yet,
    after an interrupted run)."""
    for leaf_schema, leaf_name in partition.leaves:
        if statement != "set_schema" or leaf_schema != target:
            step.operations.append(Operation("transaction", leaf_schema, leaf_name, statement, target))


def _steps_for(state, policy, concurrent, partition, stage):
    """stage: attached (an expired partition), pending (detach pending), detached (marked for dropping).

    Order: backup; for detach, the move to archive_schema while still attached; the drop marker; the detach
    (CONCURRENTLY, plain, or FINALIZE of a pending one); then drop, or the archive moves.
    """
    schema, name = partition.schema, partition.name
    step = Step(partition, "dropped" if policy.action == "drop" else "detached", "%s.%s" % (schema, name))
    add = step.operations.append
    guarded = bool(policy.backup_dir)  # rows written after the dump must not be dropped unseen
    if guarded:  # a sub-partitioned partition: every leaf, each verified, before anything is done to it
        for leaf_schema, leaf_name in partition.leaves or ((schema, name),):
            add(Operation("backup", leaf_schema, leaf_name))
    archive = policy.archive_schema if policy.action == "detach" and policy.archive_schema != schema else None
    if stage == "attached" and archive:
        # Moved while still attached: a run interrupted later finds it, still a partition, and carries on.
        _move_leaves(step, partition, "set_schema", archive)
        add(Operation("transaction", schema, name, "set_schema", archive))
        schema, archive = archive, None
    if stage == "attached" and policy.action == "drop" and not concurrent and not guarded:
        add(Operation("transaction", schema, name, "drop"))
        return step
    if stage == "attached" and policy.action == "drop":
        add(Operation("transaction", schema, name, "comment", DROP_MARKER % (state.schema, state.name)))
    if stage == "attached" and concurrent:
        add(Operation("concurrent", schema, name, "detach_concurrently"))
    elif stage == "attached":
        add(Operation("transaction", schema, name, "detach"))
    elif stage == "pending":
        add(Operation("transaction", schema, name, "finalize"))
    if policy.action == "drop":
        add(Operation("guarded_drop" if guarded else "transaction", schema, name, "drop"))
        return step
    if archive:
        _move_leaves(step, partition, "set_schema", archive)
        add(Operation("transaction", schema, name, "set_schema", archive))
        schema = archive
    if policy.archive_tablespace:
        _move_leaves(step, partition, "set_tablespace", policy.archive_tablespace)
        add(Operation("transaction", schema, name, "set_tablespace", policy.archive_tablespace))
    if stage == "detached":
        add(Operation("transaction", schema, name, "comment", None))
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
            steps.append(Step(partition, "finalized", "%s.%s" % (partition.schema, partition.name),
                              [Operation("transaction", partition.schema, partition.name, "finalize")]))
    steps.extend(_steps_for(state, policy, retention_plan.concurrent, orphan, "detached") for orphan in orphans)
    steps.extend(_steps_for(state, policy, retention_plan.concurrent, partition, "attached")
                 for partition in retention_plan.expired if not partition.detach_pending)
    return steps


def moving_to_archive(policy: RetentionPolicy, steps: List[Step]) -> List[str]:
    """The partitions a detach moves into archive_schema (their names must be free there)."""
    if policy.action != "detach" or not policy.archive_schema:
        return []
    return [s.partition.name for s in steps if s.outcome == "detached" and s.partition.schema != policy.archive_schema]


def refuse_archive_clashes(state: TableState, policy: RetentionPolicy, taken_in_archive: List[str],
                           tablespace_exists: bool) -> None:
    """Names already taken in archive_schema, or a missing archive_tablespace, stop the run before any change."""
    if taken_in_archive:
        raise PlanError("%s.%s: archive_schema %s already holds %s; nothing was detached. Rename or remove them, "
                        "or choose another archive_schema" % (state.schema, state.name, policy.archive_schema,
                                                              ", ".join(sorted(taken_in_archive))))
    if policy.action == "detach" and policy.archive_tablespace and not tablespace_exists:
        raise PlanError("%s.%s: archive_tablespace %s does not exist; create it first (CREATE TABLESPACE) or leave "
                        "the option out" % (state.schema, state.name, policy.archive_tablespace))
