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
    parent keep flowing. Each partition is its own transaction under O(lock_timeout), retried with backoff.
  - Rows that sit in the default partition and belong to a new partition are moved into it in the same
    transaction as the attach. No row is ever deleted.
  - When a large default partition exists and holds no row of the new range, a NOT VALID constraint is added to
    it and validated without blocking writers, so the attach does not scan it under ACCESS EXCLUSIVE. While that
    constraint exists (usually milliseconds), an insert into the new range would be refused instead of landing
    in the default partition.
  - A per-table advisory lock serializes concurrent runs; a second run waits up to O(run_lock_wait) seconds and
    then does its own (usually empty) plan, or reports that it skipped.
  - On a hot standby nothing is changed and RV(skipped_reason) says so.
extends_documentation_fragment:
  - pgfleet.partitions.connection
attributes:
  check_mode:
    support: full
    description:
      - Executes no DDL; RV(queries) lists the statements that would run and RV(moved_rows) the rows that would move.
  diff_mode:
    support: full
    description: Shows the partition list before and after.
options:
  table:
    description:
      - C([schema.]name) of an existing partitioned table. Without a schema the search_path decides.
      - Plain identifiers only; they are folded to lower case as PostgreSQL folds unquoted names.
    type: str
    required: true
  interval:
    description:
      - RANGE tables only. For a C(date), C(timestamp) or C(timestamptz) key one of C(hour), C(day), C(week),
        C(month), C(quarter), C(year).
      - For an integer key (C(smallint), C(integer), C(bigint), C(numeric)) a positive integer step, or a time
        word together with O(epoch) when the key holds Unix time.
    type: str
  epoch:
    description:
      - The integer key holds Unix time in these units; O(interval) is then a time word.
    type: str
    choices: [seconds, milliseconds]
  premake:
    description:
      - RANGE partitions to ensure after the one holding the reference time.
    type: int
    default: 12
  backfill:
    description:
      - RANGE partitions to ensure before the one holding the reference time.
    type: int
    default: 0
  reference_time:
    description:
      - Overrides "now", the server's C(now()). An ISO date or date-time (a naive one is read in O(timezone)),
        or an integer for integer keys.
      - For integer keys without O(epoch) the default is the highest key in the table (0 when it is empty).
    type: raw
  timezone:
    description:
      - IANA zone whose local midnights (or hours) bound C(timestamptz) and epoch partitions. A monthly
        partition in C(Europe/Berlin) starts at local midnight on both sides of a DST change.
      - Hourly partitions are refused in a zone whose UTC offset changes by a fraction of an hour within two years
        of the reference (C(Australia/Lord_Howe) moves by 30 minutes), where local hours cannot all start on the
        hour. A day the zone skipped (C(Pacific/Apia) on 2011-12-30) gets no partition.
    type: str
    default: UTC
  name_template:
    description:
      - Python format template for partition names. Fields C({parent}), C({suffix}), and for time intervals
        C({year}), C({month}), C({day}), C({hour}), C({isoyear}), C({week}), C({quarter}); for integer steps
        C({lower}).
      - The default C({parent}_{suffix}) gives suffixes C(YYYY_MM), C(YYYY_MM_DD), C(YYYY_MM_DD_HH),
        C(IYYY_wIW), C(YYYY_qN), C(YYYY) or C(p<lower>). Names over 63 bytes are shortened in the parent part,
        with a hash that keeps them unique, never in the suffix.
    type: str
  default_partition:
    description:
      - Ensure the default partition C(<parent>_default) exists (RANGE and LIST only).
    type: bool
    default: false
  list_partitions:
    description:
      - "LIST tables only. A mapping of name suffix to the list of values of that partition, for example
        C({active: [false], completed: [true]})."
    type: dict
  hash_modulus:
    description:
      - HASH tables only. Ensure remainders C(0) to C(N-1), named C(<parent>_hash_<r>).
    type: int
  tablespace:
    description:
      - Tablespace for new partitions.
    type: str
  lock_timeout:
    description:
      - C(lock_timeout) for each DDL transaction, as a PostgreSQL duration.
    type: str
    default: 3s
  retries:
    description:
      - How often a transaction that could not get its locks is retried, with exponential backoff and jitter.
    type: int
    default: 5
  run_lock_wait:
    description:
      - Seconds to wait for another run on the same table to finish before reporting a skip.
    type: int
    default: 60
notes:
  - Supports PostgreSQL 14 and newer; tested on 15 and 18.
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

- name: Only a default partition for a LIST table
  pgfleet.partitions.postgres_partition:
    login_db: app
    table: users
    default_partition: true
"""

RETURN = r"""
changed:
  description: Whether partitions were (or in check mode would be) created.
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
moved_rows:
  description: Rows moved from the default partition into new partitions.
  returned: always
  type: int
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
  description: Partition lists before and after, in diff mode.
  returned: when diff mode is on
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgfleet.partitions.plugins.module_utils._argspec import (
    LOCKING_OPTIONS,
    PARTITION_POLICY_OPTIONS,
    argument_spec,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._jobs import ensure_partitions, policy_from_params
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._module import run_job


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            table=dict(type="str", required=True),
            **dict(PARTITION_POLICY_OPTIONS, **LOCKING_OPTIONS)
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = run_job(
        module, params["table"],
        lambda: (parse_table_name(params["table"]), policy_from_params(params)),
        lambda database, table, policy: ensure_partitions(database, table, policy, module.check_mode,
                                                          params["lock_timeout"], params["retries"],
                                                          params["run_lock_wait"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
