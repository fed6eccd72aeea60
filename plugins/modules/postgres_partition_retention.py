#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_partition_retention
short_description: Drop or archive the partitions of a RANGE set that lie wholly before a retention window
version_added: 0.1.0
description:
  - Enforces a retention window on a RANGE partitioned table. A partition expires only when its whole range lies
    before the cutoff, that is when its upper bound is at or before O(reference_time) minus O(retention). A
    partition straddling the cutoff is kept. Bounds come from the catalog, never from partition names.
  - Never touched are the default partition, the partition holding the reference, anything newer than the
    cutoff. A sub-partitioned partition expires whole; with O(backup_dir) every one of its leaves is dumped and
    verified first.
  - Each expired partition is its own step, oldest first. With O(backup_dir) the step starts with a verified
    C(pg_dump -Fc) of the partition; a dump that fails or does not verify stops the run before that partition is
    touched. Partitions handled earlier in the same run stay handled.
  - "Locks: with O(concurrently) in effect, the partition leaves with C(DETACH PARTITION ... CONCURRENTLY), which
    takes only SHARE UPDATE EXCLUSIVE on the parent, so readers and writers of the parent are never blocked; it
    waits for older transactions that may use the partition. A dropped partition is then dropped as a plain
    table, which locks only that table. Without it (a default partition exists, the server is older than 14, or
    O(concurrently=never)), C(DROP TABLE) or C(DETACH PARTITION) takes ACCESS EXCLUSIVE on the parent: readers and
    writers of the parent queue behind the waiting statement for at most O(lock_timeout) per attempt."
  - "Interrupted runs are completed by the next run: a detach left pending (C(pg_inherits.inhdetachpending)) is
    finished with C(DETACH PARTITION ... FINALIZE) first; a table detached for dropping carries a comment
    (C(pgfleet.partitions retention: detached from <parent>, to be dropped)) until it is dropped, so the next run
    drops it. The module's session sets C(client_connection_check_interval), so a killed run's server process
    gives up its wait instead of completing the detach on its own."
  - A per-table advisory lock, the same one M(pgfleet.partitions.postgres_partition) takes, keeps retention and
    partition creation from running on one table at the same time.
  - On a hot standby nothing is changed and RV(skipped_reason) says so.
extends_documentation_fragment:
  - pgfleet.partitions.connection
  - pgfleet.partitions.locking
  - pgfleet.partitions.locking.RUN_LOCK
attributes:
  check_mode:
    support: full
    description: Lists exactly what would be dropped, detached and dumped; writes nothing to the database or to
      O(backup_dir), and creates no directory.
  diff_mode:
    support: full
    description: Shows the partition list before and after, and the statements (in check mode, the
      ones that would run), so that C(--check --diff) says exactly what would happen.
options:
  table:
    description:
      - C([schema.]name) of an existing RANGE partitioned table (LIST and HASH sets are refused). Without a schema
        the search_path decides. Plain identifiers only; they are folded to lower case.
    type: str
    required: true
  retention:
    description:
      - How much to keep, back from the reference.
      - For a C(date), C(timestamp) or C(timestamptz) key, an interval of whole positive numbers with the units
        C(year), C(month), C(week), C(day), C(hour), C(minute), C(second), for example C(24 months), C(90 days) or
        C(1 year 6 months). It is subtracted as PostgreSQL does in UTC, months first (March 31 minus one month is
        the end of February), then days, then time.
      - For an integer key, a positive integer distance below the reference (by default the highest key). For an
        integer key holding Unix time, give the distance in the key's unit, for example C(7776000) for 90 days of
        seconds.
    type: raw
    required: true
  action:
    description:
      - C(drop) drops each expired partition; C(detach) detaches it and keeps it as a plain table.
    type: str
    choices: [drop, detach]
    default: drop
  archive_schema:
    description:
      - With O(action=detach), the schema that receives the detached tables; created if missing. The table moves
        while still attached, so an interrupted run leaves it where the next run finds it. The move changes only the
        catalog but takes ACCESS EXCLUSIVE on that partition (not on the parent), so queries reading that old
        partition wait for it, and it waits at most O(lock_timeout) per attempt for them.
    type: str
  archive_tablespace:
    description:
      - With O(action=detach), the tablespace the detached tables move to (C(ALTER TABLE ... SET TABLESPACE)
        rewrites the table under ACCESS EXCLUSIVE on it alone, after the detach). It must exist.
    type: str
  backup_dir:
    description:
      - Absolute directory on the managed host. Each expired partition is first dumped with C(pg_dump -Fc) to
        C(<backup_dir>/<database>/<schema>.<partition>.<oid>.<time>.dump), a file of its own that no later dump
        replaces, not even one of a partition created again under the same name (its oid differs).
      - The row count and the dump come from the same snapshot (the count runs in a REPEATABLE READ transaction
        whose snapshot C(pg_dump --snapshot) imports). The dump is verified by C(pg_restore --list), which must find
        the table's data, and by streaming the data back with C(pg_restore), which must give exactly the counted
        rows. Then C(<file>.sha256) (C(sha256sum) format) is written, and a line (partition, oid, parent, bounds,
        rows, bytes, sha256, content_checksum, time, file) is appended to C(manifest.jsonl) in the same directory.
      - Files are mode 0600, directories the module creates 0700. A relative path is refused, and so is a symbolic
        link or a directory owned by another user anywhere from O(backup_dir) down, before any partition is
        touched.
      - With O(action=drop), a dumped partition is detached first (marked for dropping), then read again under a
        lock on that table alone; its row count and a checksum of its rows' content must equal the dump's (taken in
        the dump's snapshot). If any row was inserted, deleted or changed after the dump, it stays detached and the
        run fails; the next run dumps it again and drops it. With a default partition (no concurrent detach) that
        first detach takes ACCESS EXCLUSIVE on the parent for a moment.
      - To restore a dump into another database, create its schema there, then run
        C(pg_restore -d <db> -L <(pg_restore -l <file> | grep -v ATTACH) <file>); restored into the original
        database, its C(ATTACH PARTITION) entry re-attaches it.
    type: path
  pg_dump_path:
    description:
      - The C(pg_dump) binary to use; C(pg_restore) must sit beside it. It must be the server's major version or
        newer, else the module fails before touching anything.
      - By default C(/usr/lib/postgresql/<major>/bin/pg_dump), C(/usr/pgsql-<major>/bin/pg_dump), then C(pg_dump)
        on the PATH, the first one new enough.
      - C(pg_dump) gets the connection options through C(PGHOST), C(PGPORT), C(PGUSER), C(PGPASSWORD) and the
        other libpq environment variables, never on its command line; O(connect_params) without such a variable
        are not passed on.
    type: path
  concurrently:
    description:
      - C(auto) detaches with C(CONCURRENTLY) when the server is PostgreSQL 14 or newer and the set has no default
        partition; C(always) fails (before touching anything) where that is impossible; C(never) uses C(DROP TABLE)
        or a plain C(DETACH PARTITION), which take ACCESS EXCLUSIVE on the parent.
    type: str
    choices: [auto, always, never]
    default: auto
  reference_time:
    description:
      - Overrides "now", the server's C(now()). An ISO date or date-time (a naive one is read as UTC), or an integer
        for integer keys, where the default is the highest key in the table. An empty integer-keyed table without
        O(reference_time) has no reference, and nothing expires.
    type: raw
  lock_timeout:
    description:
      - C(lock_timeout) of each statement, as a PostgreSQL duration. A concurrent detach whose wait for older
        transactions times out stays pending and is finished by the next attempt.
notes:
  - Supports PostgreSQL 14 and newer (concurrent detach); tested on 15 and 18.
  - A run interrupted after a detach but before O(archive_tablespace) moved the table leaves it in its old
    tablespace; move it by hand.
seealso:
  - module: pgfleet.partitions.postgres_partition
  - module: pgfleet.partitions.postgres_partition_info
author:
  - pgfleet.partitions contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Keep two years of monthly partitions, dumping each one before it is dropped
  pgfleet.partitions.postgres_partition_retention:
    login_db: health
    table: public.raw_ingestions
    retention: 24 months
    backup_dir: /var/backups/pgfleet

- name: Archive audit partitions older than 90 days into a schema on cheap storage
  pgfleet.partitions.postgres_partition_retention:
    login_db: health
    table: audit_log
    retention: 90 days
    action: detach
    archive_schema: archive
    archive_tablespace: slow_disks

- name: Integer key, keep the last 10 million ids
  pgfleet.partitions.postgres_partition_retention:
    login_db: shop
    table: orders
    retention: 10000000

- name: Preview with a fixed reference time (check mode writes nothing)
  pgfleet.partitions.postgres_partition_retention:
    login_db: health
    table: heart_rate
    retention: 1 year
    reference_time: "2025-01-15"
  check_mode: true
"""

RETURN = r"""
changed:
  description: Whether partitions were (or in check mode would be) dropped, detached or finalized.
  returned: always
  type: bool
table:
  description: The table, schema-qualified.
  returned: always
  type: str
  sample: public.raw_ingestions
retention:
  description: The retention as understood, normalized.
  returned: always
  type: str
  sample: 24 months
action:
  description: The action, C(drop) or C(detach).
  returned: always
  type: str
reference:
  description: The reference the cutoff was computed from (ISO date-time in UTC, or an integer).
  returned: when the table is not on a standby
  type: raw
  sample: "2025-01-15T00:00:00+00:00"
cutoff:
  description: Partitions whose upper bound is at or before this value expire; null when an integer-keyed table
    is empty and has no reference.
  returned: when the table is not on a standby
  type: raw
  sample: "2023-01-15T00:00:00+00:00"
concurrently:
  description: Whether partitions leave with C(DETACH PARTITION ... CONCURRENTLY).
  returned: when the table is not on a standby
  type: bool
dropped:
  description: Partitions dropped (or that would be), as C(schema.name), in order.
  returned: always
  type: list
  elements: str
  sample: [public.raw_ingestions_2022_12]
detached:
  description: Partitions detached (or that would be), as C(schema.name) of the table afterwards, in order.
  returned: always
  type: list
  elements: str
  sample: [archive.audit_log_2024_09]
finalized:
  description: Partitions not past the cutoff whose pending detach (from an interrupted run) was finished.
  returned: always
  type: list
  elements: str
backups:
  description: The dumps taken, each with C(partition), C(path), C(rows), C(bytes), C(sha256), C(content_checksum)
    and C(time). In check mode the planned paths (with C(<time of the dump>) in place of the time), the other values
    null.
  returned: always
  type: list
  elements: dict
  sample:
    - partition: public.raw_ingestions_2022_12
      path: /var/backups/pgfleet/health/public.raw_ingestions_2022_12.16523.20250115T030002120000Z.dump
      rows: 81234
      bytes: 1843200
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      time: "2025-01-15T03:00:02.120000+00:00"
      content_checksum: "-8127364519283746512"
kept:
  description: The number of partitions left in the set after the run (in check mode, that would be left).
  returned: always
  type: int
queries:
  description: Every DDL statement executed, or that would be in check mode.
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
    RUN_LOCK_OPTIONS,
    argument_spec,
    locking_settings,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.module import run_job
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.job import enforce_retention
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.params import (
    ACTIONS,
    CONCURRENTLY,
    policy_from_params,
)


OPTIONS = dict(
    table=dict(type="str", required=True),
    retention=dict(type="raw", required=True),
    action=dict(type="str", choices=list(ACTIONS), default="drop"),
    archive_schema=dict(type="str"),
    archive_tablespace=dict(type="str"),
    backup_dir=dict(type="path"),
    pg_dump_path=dict(type="path"),
    concurrently=dict(type="str", choices=list(CONCURRENTLY), default="auto"),
    reference_time=dict(type="raw"),
    **LOCKING_OPTIONS,
    **RUN_LOCK_OPTIONS,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(**OPTIONS), supports_check_mode=True)
    params = module.params
    # The connection options go to the job too: pg_dump connects with them.
    job = functools.partial(enforce_retention, connection_params=params, check_mode=module.check_mode,
                            **locking_settings(params))
    module.exit_json(**run_job(module, params["table"],
                               lambda: (parse_table_name(params["table"]), policy_from_params(params)), job))


if __name__ == "__main__":
    main()
