#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_partition_convert
short_description: Turn a live PostgreSQL table into a partitioned one without downtime, resumably and reversibly
version_added: 0.1.0
description:
  - Converts an ordinary table that is being written to into a partitioned table of the same name, in stages that
    are each safe to re-run after an interruption. O(state) names the stage to reach; the stages before it that are
    not done yet run first, so O(state=swapped) on an untouched table does the whole conversion in one run.
  - C(prepared) creates C(<table>_partitioned) with the columns, defaults, identity and sequence use, generated
    columns, CHECK and NOT NULL constraints, indexes, comments, grants, owner and outgoing foreign keys of the
    table, partitioned as asked, with partitions covering the existing data (RANGE from the lowest to the highest
    key, plus O(premake)); each partition gets the table's owner and grants too, and what O(template_table) adds
    (storage parameters, indexes, grants). It then installs a trigger on the table that replays every INSERT,
    UPDATE, DELETE and TRUNCATE on the new table in the writer's own transaction, so no write made during the copy
    is lost. An UPDATE that changes the primary key (and so maybe the partition) moves the row.
  - C(filled) copies the existing rows in batches of O(batch_size) in primary key order, pausing O(sleep) seconds
    between batches. Each batch locks its rows against deletes and key changes while it copies them (never against
    readers or other updates; a refresh of a copy left from earlier also against updates) and skips rows the
    trigger wrote already. Progress is kept in the comment of the new
    table in the same transaction as each batch, so a run that is killed resumes where it stopped, without
    duplicates or losses.
  - C(swapped) first verifies, in one snapshot, that both tables hold the same rows per partition (count and a
    checksum over the primary key, which holds the partition key), then in one short transaction under
    O(lock_timeout) renames the table to C(<table>_retired) and the new one to C(<table>), moves serial sequence
    ownership (identity sequences continue where the old ones stopped), gives the new indexes and constraints the
    old names, recreates the foreign keys of other tables that referenced the table against the new one (C(NOT
    VALID), then validated without blocking writers), and drops the trigger. The retired table is never dropped by
    this module.
  - C(rolled_back) after C(swapped) installs the reverse trigger on the partitioned table, refreshes the retired
    table from it (rows written, changed or deleted since the swap), verifies both and swaps back;
    C(<table>_partitioned) is kept, stale. Before a swap it removes the trigger and keeps the copy. A later
    C(prepared) refreshes a kept copy instead of starting over.
  - Refused before any change, with what to do in the message. A table without primary key; a primary key or unique
    constraint that does not include the partition column (a partitioned table cannot enforce it; extend the key
    with the partition column); a foreign key of another table referencing columns that are not a unique key
    including the partition column; views, rules or SQL functions that read the table (they would keep reading the
    retired table); LIST keys with values no partition takes.
  - Triggers, rules, row level security policies and publications of the table are not carried over; the result
    lists them in RV(not_carried) and warns.
  - The automated tests convert 20,000 rows to LIST, RANGE and HASH under a concurrent writer on PostgreSQL 15 and
    18. The 1-million-row acceptance run was done once by hand on PostgreSQL 15 (2 cores, monthly RANGE, writer
    running throughout, batch_size 10000); prepare 1 s, copy 22 s in 101 batches (36 s on a loaded machine), swap
    3.5 s (7.6 s loaded), mostly the verification scan outside the lock; every row identical to the writer's
    reference copy; the longest write waited 0.54 s (loaded run).
extends_documentation_fragment:
  - pgfleet.partitions.connection
  - pgfleet.partitions.partition_policy
  - pgfleet.partitions.locking
  - pgfleet.partitions.locking.RUN_LOCK
attributes:
  check_mode:
    support: full
    description:
      - Changes nothing; RV(queries) lists the statements of the stages that would run (the copy's first batch
        stands for all of them), RV(partitions) the partitions that would exist and RV(rows_to_copy) the rows the
        copy would read.
  diff_mode:
    support: none
    description: The stages change relations, not a listing; RV(stage_before) and RV(stage) tell what moved.
options:
  table:
    description:
      - C([schema.]name) of the table to convert. Without a schema the search_path decides. Plain identifiers only.
    type: str
    required: true
  state:
    description:
      - The stage to reach. C(prepared), C(filled) and C(swapped) run the stages before them that are not done;
        asking for a stage that is already passed changes nothing.
    type: str
    required: true
    choices: [prepared, filled, swapped, rolled_back]
  strategy:
    description:
      - How the new table is partitioned. Required unless O(state=rolled_back).
    type: str
    choices: [range, list, hash]
  column:
    description:
      - The partition key column. It must be part of the primary key and of every unique constraint. Required unless
        O(state=rolled_back).
    type: str
  premake:
    description:
      - RANGE partitions to create after the later of the reference time and the highest existing key.
  backfill:
    description:
      - RANGE partitions to create before the reference time at least; the partitions always reach back to the
        lowest existing key.
  reference_time:
    description:
      - Overrides "now" (the server's C(now())) for RANGE on a time key; for an integer key the default is the
        highest existing key.
  name_template:
    description:
      - Partition name template, as in M(pgfleet.partitions.postgres_partition). Partitions are named for the
        table they end up in, C(<table>_<suffix>), not for C(<table>_partitioned).
  default_partition:
    description:
      - Create C(<table>_default) (RANGE and LIST). With LIST, rows whose values no partition lists go there.
  batch_size:
    description:
      - Rows per copy batch (one transaction each).
    type: int
    default: 10000
  sleep:
    description:
      - Seconds to pause between copy batches, to leave I/O to production.
    type: float
    default: 0
  lock_timeout:
    description:
      - C(lock_timeout) of every transaction of the conversion (creating the mirror trigger, each batch, the swap).
notes:
  - Supports PostgreSQL 14 and newer; tested on 15 and 18.
  - Run it as the table's owner or a superuser. The mirror trigger function is C(SECURITY DEFINER), owned by that
    role, so writers need no privileges on the new table.
  - While the mirror is installed, a write the new table refuses (for example a RANGE key beyond the last partition
    without a default partition) fails in the writer's transaction, exactly as it will after the swap. Choose
    O(premake) (or O(default_partition)) for the time the conversion takes.
seealso:
  - module: pgfleet.partitions.postgres_partition
author:
  - pgfleet.partitions contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Convert appointments to LIST partitions by completion, in one run
  pgfleet.partitions.postgres_partition_convert:
    login_db: clinic
    table: appointments
    state: swapped
    strategy: list
    column: is_completed
    list_partitions:
      active: [false]
      completed: [true]

- name: Prepare a monthly RANGE conversion (new table, partitions, mirror trigger)
  pgfleet.partitions.postgres_partition_convert:
    login_db: clinic
    table: public.appointments
    state: prepared
    strategy: range
    column: starts_at
    interval: month
    premake: 6

- name: Copy the rows, gently; re-run the same task if it is interrupted
  pgfleet.partitions.postgres_partition_convert:
    login_db: clinic
    table: public.appointments
    state: filled
    strategy: range
    column: starts_at
    interval: month
    batch_size: 5000
    sleep: 0.2

- name: Swap in a quiet moment
  pgfleet.partitions.postgres_partition_convert:
    login_db: clinic
    table: public.appointments
    state: swapped
    strategy: range
    column: starts_at
    interval: month
    lock_timeout: 1s
    retries: 20

- name: HASH partitions in four
  pgfleet.partitions.postgres_partition_convert:
    login_db: clinic
    table: appointments
    state: swapped
    strategy: hash
    column: patient_id
    hash_modulus: 4

- name: Go back to the original table, with every row written since the swap
  pgfleet.partitions.postgres_partition_convert:
    login_db: clinic
    table: appointments
    state: rolled_back
"""

RETURN = r"""
changed:
  description: Whether a stage ran (or in check mode would run).
  returned: always
  type: bool
table:
  description: The table, schema-qualified.
  returned: always
  type: str
  sample: public.appointments
partitioned_table:
  description: The name of the new table before the swap (and of the kept copy after a roll-back).
  returned: always
  type: str
  sample: public.appointments_partitioned
retired_table:
  description: The name of the original table after the swap.
  returned: always
  type: str
  sample: public.appointments_retired
stage_before:
  description: >-
    The stage found: C(original), C(preparing) (new table without mirror), C(prepared), C(filled), C(swapped),
    C(rolling_back), C(rolled_back) or C(partitioned) (the table is partitioned and has no retired original).
  returned: unless on a standby
  type: str
stage:
  description: The stage after the run (in check mode, the stage the run would reach).
  returned: always
  type: str
  sample: swapped
steps:
  description: The steps run (or that would run), in order, among C(prepare), C(fill), C(swap), C(catch_up),
    C(swap_back) and C(stop_mirror).
  returned: always
  type: list
  elements: str
  sample: [prepare, fill, swap]
created:
  description: Partitions created (or that would be).
  returned: always
  type: list
  elements: str
  sample: [appointments_active, appointments_completed]
partitions:
  description: The partitions of the partitioned table after the run (in check mode, as they would be), each with
    C(name), C(schema), C(is_default) and C(lower)/C(upper), C(values), or C(modulus)/C(remainder).
  returned: always
  type: list
  elements: dict
rows_copied:
  description: Rows written by the copy in this run (rows the trigger had written already are not counted).
  returned: always
  type: int
rows_deleted:
  description: Rows a refresh removed from the copy because the table no longer has them.
  returned: always
  type: int
batches:
  description: Copy batches run.
  returned: always
  type: int
batches_retried:
  description:
    - Copy batches read again because a concurrent UPDATE moved one of their rows to another partition while the batch
      locked them (a serialization failure; only a partitioned source, when rolling back, has partitions to move
      between). Each retry reads a quarter as many rows, so a busy table gets smaller batches; each batch that
      succeeds doubles the size again, up to O(batch_size).
  returned: always
  type: int
rows_to_copy:
  description: In check mode, the rows the copy would read.
  returned: in check mode, when a copy would run
  type: int
progress:
  description: The copy's progress record after the run, C(watermark) (the last primary key copied, as text),
    C(rows_copied) (all runs) and C(synced).
  returned: when a copy ran or would run
  type: dict
verification:
  description: Per partition, C(rows) of the regular table routed to it, C(rows_partitioned) and C(checksum_matches).
  returned: when a swap ran
  type: list
  elements: dict
foreign_keys:
  description: Foreign keys of other tables moved to the table that became live, as C(schema.table.constraint).
  returned: always
  type: list
  elements: str
not_carried:
  description: What the conversion does not carry to the new table (triggers, rules, policies, publications); each
    is also a warning.
  returned: always
  type: list
  elements: str
queries:
  description: Every statement that changed something, executed or (in check mode) planned; the copy's first batch
    of a run stands for the others.
  returned: always
  type: list
  elements: str
skipped_reason:
  description: Why nothing was done (hot standby, or another run converting the table).
  returned: when skipped
  type: str
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
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.job import convert
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.model import (
    STAGES,
    STRATEGIES,
    request_from_params,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.params import policy_from_params


OPTIONS = dict(
    PARTITION_POLICY_OPTIONS,
    table=dict(type="str", required=True),
    state=dict(type="str", required=True, choices=list(STAGES)),
    strategy=dict(type="str", choices=list(STRATEGIES)),
    column=dict(type="str"),
    batch_size=dict(type="int", default=10000),
    sleep=dict(type="float", default=0),
    **LOCKING_OPTIONS,
    **RUN_LOCK_OPTIONS,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(**OPTIONS), supports_check_mode=True)
    params = module.params

    def prepare():
        return parse_table_name(params["table"]), request_from_params(params), policy_from_params(params)

    result = run_job(module, params["table"], prepare,
                     functools.partial(convert, check_mode=module.check_mode, **locking_settings(params)))
    for warning in result["not_carried"]:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
