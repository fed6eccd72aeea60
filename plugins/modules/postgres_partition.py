#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_partition
short_description: Ensure the partitions of a PostgreSQL partitioned table exist, ahead and behind
version_added: 0.1.0
description:
  - Makes sure an existing partitioned table has the partitions its policy asks for; RANGE partitions around the
    reference time (or the highest key), LIST partitions for given values, HASH partitions for every remainder,
    and optionally a default partition.
  - Strategy and key are read from the catalog; bounds of existing partitions come from the catalog, never from
    their names, so partitions made by hand or by pg_partman are adopted as they are.
  - New partitions are created as plain tables with a CHECK matching their bounds, then attached with
    C(ATTACH PARTITION), which takes only SHARE UPDATE EXCLUSIVE on the parent, so readers and writers of the
    parent keep flowing. Each transaction runs under O(lock_timeout), retried with backoff; next to a default
    partition each partition has its own, otherwise up to 20 share one (sent as one message).
  - A set with no partition at all (a new table, a backfill before any row exists) holds no row anyone can read or
    write, so its partitions are created attached, C(CREATE TABLE ... PARTITION OF), up to 250 per transaction
    (ACCESS EXCLUSIVE on the parent for that transaction). They get the same inheritance as the others.
  - Rows that sit in the default partition and belong to a new partition are moved into it in the same
    transaction as the attach. No row is ever deleted. That transaction first locks the parent in SHARE mode, which
    readers pass and writers through the parent wait for, so that no row can reach the default partition's part of
    the range after the move (it would make the attach fail); the writers' rows then go to the new partition. Writers
    wait as long as the move takes, so this suits the rows a missed run leaves, not a large backlog.
  - When a large default partition exists and holds no row of the new range, a NOT VALID constraint is added to
    it and validated without blocking writers, so the attach does not scan it under ACCESS EXCLUSIVE. While that
    constraint exists (usually milliseconds), an insert into the new range would be refused instead of landing
    in the default partition.
  - Every new partition inherits, in the transaction that creates it, what the parent carries and C(LIKE) does not
    copy; the parent's owner (C(OWNER TO), so the application's later C(ALTER TABLE) on the parent works); its
    table and column privileges, grant options included (the connecting role's default privileges that the parent
    lacks are revoked); its C(REPLICA IDENTITY) (C(DEFAULT), C(FULL), C(NOTHING), or C(USING INDEX) mapped to the
    partition's index that C(ATTACH) attaches to the parent's, so publications replicate C(UPDATE) and C(DELETE)
    with the same before-images); its access method, tablespace (unless O(tablespace) says otherwise) and
    C(UNLOGGED) (PostgreSQL 17 and older, where a partitioned table can be unlogged); and what O(template_table)
    adds (storage parameters, indexes, privileges). The partition is not attached yet when these run, so they
    lock nothing anyone waits for.
  - Giving partitions the parent's owner needs a connecting role that is a superuser, or a member of the owner role
    (able to C(SET ROLE) to it) while the owner has C(CREATE) on the schema; otherwise the module fails before any
    DDL and names the role and the remedy (O(session_role) or a C(GRANT)).
  - O(inherit=enforce) also repairs existing partitions that drifted (see RV(repaired)), each partition in one
    short transaction under O(lock_timeout) with retries. C(ALTER TABLE ... OWNER TO) and C(REPLICA IDENTITY) take
    ACCESS EXCLUSIVE on the partition for the few milliseconds of the catalog change, so they wait for (and, until
    O(lock_timeout), queue) the partition's readers and writers; C(SET)/C(RESET) of storage parameters take SHARE
    UPDATE EXCLUSIVE, which readers and writers pass; C(GRANT) and C(REVOKE) take no table lock on PostgreSQL 15
    and ACCESS SHARE on 18, which only ACCESS EXCLUSIVE waits for. A missing template index is built with
    C(CREATE INDEX CONCURRENTLY) (SHARE UPDATE EXCLUSIVE, writers go on) outside a transaction; one that fails
    leaves an invalid index, which the next run drops and builds again. A partition in another tablespace is
    reported by M(pgfleet.partitions.postgres_partition_info), never moved (C(SET TABLESPACE) rewrites it under
    ACCESS EXCLUSIVE).
  - A per-table advisory lock serializes concurrent runs; a second run waits up to O(run_lock_wait) seconds and
    then does its own (usually empty) plan, or reports that it skipped.
  - On a hot standby nothing is changed and RV(skipped_reason) says so.
extends_documentation_fragment:
  - pgfleet.partitions.connection
  - pgfleet.partitions.partition_policy
  - pgfleet.partitions.locking
  - pgfleet.partitions.locking.RUN_LOCK
attributes:
  check_mode:
    support: full
    description:
      - Executes no DDL; RV(queries) lists the statements that would run and RV(moved_rows) the rows that would move.
  diff_mode:
    support: full
    description: Shows the partition list before and after, and the statements (in check mode, the
      ones that would run), so that C(--check --diff) says exactly what would happen.
options:
  table:
    description:
      - C([schema.]name) of an existing partitioned table. Without a schema the search_path decides.
      - Plain identifiers only; they are folded to lower case as PostgreSQL folds unquoted names.
    type: str
    required: true
  inherit:
    description:
      - V(new) gives each partition this run creates what the parent (and O(template_table)) carries.
      - V(enforce) also compares every existing partition with it and repairs what differs (owner, privileges,
        replica identity, storage parameters, template indexes); a second run then changes nothing. Check mode lists
        every statement and runs none.
    type: str
    choices: [new, enforce]
    default: new
  subpartition:
    description:
      - Two-level sets. Each new top-level partition is created partitioned, with all its sub-partitions, in one
        transaction before it is attached (lock-light as any partition), so the set never sees it half made. Its
        sub-partitions get what the parent carries as any partition does (owner, privileges, replica identity,
        storage parameters and template indexes, tablespace). Existing partitions are left as they are.
      - C(strategy) V(range) with C(interval), a finer interval of the partition key itself (for example months
        by day); the sub-partitions cover the whole partition, so C(premake) is not needed. V(list) with
        C(list_partitions) (suffix to values, as O(list_partitions)); V(hash) with C(hash_modulus). C(column) is
        the column sub-partitioned by. Sub-partitions are named C(<partition>_<suffix>), for HASH C(<partition>_hN).
      - The default partition and partitions made by O(default_rows=drain) are not sub-partitioned.
    type: dict
  retention:
    description:
      - The retention the table also has (as in M(pgfleet.partitions.postgres_partition_retention)), an interval
        such as C(12 months) for time keys, a number of key units for integer keys. Nothing is dropped here; a
        O(backfill) that reaches past it is refused, because retention would drop those partitions at its next run
        and this module would create them again at its next, over and over.
    type: raw
  default_rows:
    description:
      - C(window) moves the rows of the default partition that belong in a partition this run creates, in the
        transaction that creates it (the partitions the policy asks for around the reference).
      - C(drain) also empties the default partition of every other row a partition can take, whatever its age; see
        the description of draining in the notes. Rows whose key is NULL, or that no partition of the policy's grid
        can hold, stay and are counted in RV(left_in_default) with the reason.
    type: str
    choices: [window, drain]
    default: window
  drain_max_partitions:
    description:
      - At most this many partitions are created for draining a run, oldest first, so that a wild key cannot create
        a million tables; the rest of the rows stay for the next run (counted in RV(left_in_default)). The limit
        also bounds O(gaps=fill).
    type: int
    default: 120
  drain_batch_rows:
    description:
      - About how many rows' worth of the default partition's blocks one batch of a drain reads; each batch is one
        short transaction under O(lock_timeout).
    type: int
    default: 10000
  drain_pause:
    description:
      - Seconds to pause between a drain's batches, to leave I/O to production.
    type: float
    default: 0
  gaps:
    description:
      - C(fill) creates the partitions of the grid that are missing between existing partitions (their rows in the
        default partition move as O(default_rows) says); C(report) only reports them (see
        M(pgfleet.partitions.postgres_partition_info)).
    type: str
    choices: [report, fill]
    default: report
  list_new_values:
    description:
      - LIST tables. C(create) makes a partition for every value found in the default partition that no partition
        lists, named C(<parent>_<value>) with the value made safe for a name (lower case letters, digits and C(_),
        and a short hash where that changed it), then drains its rows into it. Values that would get the same name
        as each other or as an existing partition are refused before any change.
    type: str
    choices: [ignore, create]
    default: ignore
notes:
  - Supports PostgreSQL 14 and newer; tested on 15 and 18.
  - "Draining (O(default_rows=drain), O(list_new_values=create)): one scan of the default partition groups its rows
    by the partition they belong in and by chunks of its blocks. Each such partition is created as a table of its own
    with a CHECK matching its bounds and a comment marking it (one short transaction; locks the new table only).
    Its rows then move chunk by chunk, each chunk one transaction under O(lock_timeout) that deletes them from the
    default partition (reading only that chunk's blocks, a TID range scan, ROW EXCLUSIVE on the default partition)
    and inserts them into the new table; writers and readers of other partitions are never blocked. Until the
    partition is attached, the rows already moved are not visible through the parent."
  - "Attaching a drained partition: with a default partition up to 8 MB, one transaction takes SHARE on the parent
    (writers through the parent wait, readers do not), moves the rows that arrived meanwhile, and attaches
    (ACCESS EXCLUSIVE on the default partition for its short scan). With a larger one, a NOT VALID constraint keeps
    the range out of the default partition (ACCESS EXCLUSIVE on it for a moment), is validated (SHARE UPDATE
    EXCLUSIVE: writers go on; an insert into that range is refused until the attach), and the attach then skips
    the default partition's scan (ACCESS EXCLUSIVE on it for milliseconds). The ranges from the one holding the
    reference on are never drained in batches: their rows move with their partition's creation in one
    transaction, as with O(default_rows=window), since writers are at work there."
  - A run killed at any point loses and duplicates nothing (every move is one transaction); the next run finds the
    marked tables and the constraints it left, and finishes them.
seealso:
  - module: pgfleet.partitions.postgres_partition_info
  - module: pgfleet.partitions.postgres_partition_retention
author:
  - pgfleet.partitions contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Monthly partitions a year ahead and one month back
  pgfleet.partitions.postgres_partition:
    login_db: health
    table: public.raw_ingestions
    interval: month
    premake: 12
    backfill: 1

- name: Daily partitions, bounded at midnight in Berlin, with a default partition as a safety net
  pgfleet.partitions.postgres_partition:
    login_db: health
    table: audit_log
    interval: day
    premake: 14
    timezone: Europe/Berlin
    default_partition: true

- name: Integer key in steps of one million ids
  pgfleet.partitions.postgres_partition:
    login_db: shop
    table: orders
    interval: "1000000"
    premake: 4

- name: Integer key holding Unix time in milliseconds, monthly
  pgfleet.partitions.postgres_partition:
    login_db: iot
    table: readings
    interval: month
    epoch: milliseconds

- name: LIST partitions of appointments by completion
  pgfleet.partitions.postgres_partition:
    login_db: clinic
    table: appointments
    list_partitions:
      active: [false]
      completed: [true]

- name: HASH partitions in four
  pgfleet.partitions.postgres_partition:
    login_db: clinic
    table: appointments_by_patient
    hash_modulus: 4

- name: Monthly partitions owned by the application, with fillfactor and autovacuum settings from a template table
  # CREATE TABLE events_template (LIKE events) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01);
  # CREATE UNIQUE INDEX ON events_template (id);  -- unique per partition, the parent cannot have it
  pgfleet.partitions.postgres_partition:
    login_db: app
    table: events
    interval: month
    template_table: events_template
    inherit: enforce

- name: Only a default partition for a LIST table
  pgfleet.partitions.postgres_partition:
    login_db: app
    table: users
    default_partition: true
"""

RETURN = r"""
changed:
  description: Whether partitions were (or in check mode would be) created or repaired.
  returned: always
  type: bool
table:
  description: The table, schema-qualified.
  returned: always
  type: str
  sample: public.raw_ingestions
created:
  description: Names of the partitions created, in the order they were created (current first, then ahead, then behind).
  returned: always
  type: list
  elements: str
  sample: [raw_ingestions_2025_01, raw_ingestions_2025_02]
repaired:
  description: Existing partitions given what they lacked of their parent's (O(inherit=enforce)); in check mode,
    those that would be.
  returned: always
  type: list
  elements: str
  sample: [raw_ingestions_2024_11]
moved_rows:
  description: Rows moved from the default partition into new partitions.
  returned: always
  type: int
drained:
  description: The partitions a drain filled (or in check mode would fill), each with C(partition) and C(rows) moved
    (in check mode, counted), in the order they were done.
  returned: when draining
  type: list
  elements: dict
  sample: [{partition: events_2023_04, rows: 120340}]
left_in_default:
  description: Rows that stay in the default partition after a drain, each entry with C(reason) and C(rows).
  returned: when draining
  type: list
  elements: dict
  sample: [{reason: the key is NULL, rows: 12}]
partitions:
  description: The partitions after the run (in check mode, as they would be), each with C(name), C(schema),
    C(is_default) and C(lower)/C(upper), C(values), or C(modulus)/C(remainder).
  returned: always
  type: list
  elements: dict
strategy:
  description: The partition strategy, C(range), C(list) or C(hash).
  returned: always
  type: str
key:
  description: The partition key column.
  returned: always
  type: str
key_type:
  description: The type of the partition key column.
  returned: always
  type: str
reference:
  description: The reference time or key the RANGE plan was computed from.
  returned: when the table is not on a standby
  type: raw
queries:
  description: Every DDL/DML statement executed, or that would be in check mode.
  returned: always
  type: list
  elements: str
skipped_reason:
  description: Why nothing was done (hot standby, or another run holding the table's lock).
  returned: when skipped
  type: str
diff:
  description:
    - In diff mode, two diffs; the partition lists before and after, then the statements that ran (in check mode,
      that would run), one a line.
  returned: when diff mode is on
  type: list
  elements: dict
"""

import functools

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.argspec import (
    LOCKING_OPTIONS,
    PARTITION_POLICY_OPTIONS,
    RUN_LOCK_OPTIONS,
    argument_spec,
    locking_settings,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.module import run_job
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._drain.modes import (
    DEFAULT_ROWS_MODES,
    GAPS_MODES,
    LIST_NEW_VALUES_MODES,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.job import ensure_partitions
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.params import policy_from_params


OPTIONS = dict(PARTITION_POLICY_OPTIONS, table=dict(type="str", required=True), retention=dict(type="raw"),
               default_rows=dict(type="str", choices=list(DEFAULT_ROWS_MODES), default="window"),
               drain_max_partitions=dict(type="int", default=120), drain_batch_rows=dict(type="int", default=10000),
               drain_pause=dict(type="float", default=0), gaps=dict(type="str", choices=list(GAPS_MODES),
                                                                    default="report"),
               list_new_values=dict(type="str", choices=list(LIST_NEW_VALUES_MODES), default="ignore"),
               inherit=dict(type="str", choices=["new", "enforce"], default="new"), subpartition=dict(type="dict"),
               **LOCKING_OPTIONS,
               **RUN_LOCK_OPTIONS)


def main():
    module = AnsibleModule(argument_spec=argument_spec(**OPTIONS), supports_check_mode=True)
    params = module.params
    job = functools.partial(ensure_partitions, check_mode=module.check_mode, **locking_settings(params))
    module.exit_json(**run_job(module, params["table"],
                               lambda: (parse_table_name(params["table"]), policy_from_params(params)), job))


if __name__ == "__main__":
    main()
