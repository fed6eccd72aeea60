#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_partition_info
short_description: Report the partitions, gaps, runway and BRIN indexes of PostgreSQL partitioned tables
version_added: 0.1.0
description:
  - Reads, with SELECTs only, what the catalog says about one, several or all partitioned tables of a database;
    changes nothing.
  - Bounds come from the catalog (C(pg_get_expr(relpartbound))), never from partition names.
  - The number of queries per table is constant, whatever the number of partitions. Only the row count of a
    default partition scans data (C(count(*)) of that partition).
  - Works on a hot standby; RV(in_recovery) tells which kind of server answered.
extends_documentation_fragment:
  - pgfleet.partitions.connection
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode returns the same facts.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
options:
  table:
    description:
      - C([schema.]name) of the partitioned tables to report, one name or a list. Without a schema the
        search_path decides. Plain identifiers only; they are folded to lower case.
      - Omitted, every top-level partitioned table of the database outside the system schemas.
      - A name that is not a partitioned table fails the module.
    type: list
    elements: str
  reference_time:
    description:
      - The moment RV(tables.qualified_name.runway) is measured from. An ISO date or date-time for tables with
        a C(date), C(timestamp) or C(timestamptz) key (a naive value is read as UTC), or an integer for tables
        with an integer key. It must fit the key of every table reported.
      - Default, for time keys the server's C(now()); for integer keys the highest key in the table (0 when it
        is empty), as M(pgfleet.partitions.postgres_partition) plans.
    type: raw
  interval:
    description:
      - The grid of the RANGE tables reported, as O(pgfleet.partitions.postgres_partition#module:interval); with it,
        RV(tables.qualified_name.default_rows_by_target) says how many of the default partition's rows each partition
        of that grid would receive (what O(pgfleet.partitions.postgres_partition#module:default_rows=drain) would move
        where). LIST sets always get it per value.
    type: str
  interval_anchor:
    description:
      - With O(interval), where its grid is counted from, as
        O(pgfleet.partitions.postgres_partition#module:interval_anchor).
    type: raw
  epoch:
    description:
      - With O(interval), the integer key holds Unix time in these units.
    type: str
    choices: [seconds, milliseconds, microseconds, nanoseconds]
  timezone:
    description:
      - With O(interval), the zone whose local midnights bound the partitions.
    type: str
    default: UTC
  template_table:
    description:
      - The template table of the one table named in O(table), as given to M(pgfleet.partitions.postgres_partition).
        The storage parameters and indexes its partitions should carry are judged against it (without one, storage
        parameters are not judged), and its privileges are expected on them too.
    type: str
  tablespace:
    description:
      - The tablespace option of the one table named in O(table), as given to
        M(pgfleet.partitions.postgres_partition); partitions are then expected there rather than in the parent's
        tablespace.
    type: str
notes:
  - Supports PostgreSQL 14 and newer; tested on 15 and 18.
  - Integer keys that hold Unix time are measured in key units; give O(reference_time) as an integer there.
seealso:
  - module: pgfleet.partitions.postgres_partition
author:
  - pgfleet.partitions contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Facts of one partition set
  pgfleet.partitions.postgres_partition_info:
    login_db: health
    table: public.raw_ingestions
  register: raw_ingestions_info

- name: Fail when a table has less than three months of partitions ahead or a hole
  ansible.builtin.assert:
    that:
      - raw_ingestions_info.tables['public.raw_ingestions'].runway.partitions >= 3
      - raw_ingestions_info.tables['public.raw_ingestions'].gaps | length == 0
    fail_msg: "public.raw_ingestions needs postgres_partition: runway
      {{ raw_ingestions_info.tables['public.raw_ingestions'].runway.text }}"

- name: Every partitioned table of the database
  pgfleet.partitions.postgres_partition_info:
    login_db: health
  register: health_partitions

- name: Tables whose default partition holds rows
  ansible.builtin.debug:
    msg: "{{ health_partitions.tables | dict2items | selectattr('value.default_rows') | map(attribute='key') }}"

- name: Runway of integer-keyed tables measured from a given id
  pgfleet.partitions.postgres_partition_info:
    login_db: shop
    table: [orders, order_lines]
    reference_time: 250000000
"""

RETURN = r"""
changed:
  description: Always false; the module only reads.
  returned: always
  type: bool
in_recovery:
  description: Whether the server is a hot standby (C(pg_is_in_recovery())).
  returned: always
  type: bool
settings:
  description:
    - Server settings that decide whether partitioning pays off for queries, as the module's session sees them
      (so with the database's and the role's own settings applied).
    - C(enable_partition_pruning) is C(on) or C(off); with C(off) every query scans every partition.
  returned: always
  type: dict
  sample: {enable_partition_pruning: "on"}
queries:
  description: Statements that changed something; always empty, as the module runs SELECTs only.
  returned: always
  type: list
  elements: str
tables:
  description: One entry per table, keyed by C(schema.name).
  returned: always
  type: dict
  contains:
    qualified_name:
      description: The facts of one partitioned table; the key is its schema-qualified name, for example
        C(public.events).
      type: dict
      returned: always
      contains:
        strategy:
          description: The partition strategy, C(range), C(list) or C(hash).
          type: str
          returned: always
        key:
          description: The partition key column.
          type: str
          returned: always
        key_type:
          description: The type of the partition key column.
          type: str
          returned: always
          sample: timestamp with time zone
        partitions:
          description:
            - The partitions, RANGE ones by lower bound, LIST ones by name, HASH ones by remainder, the default
              partition last.
            - Each has C(name), C(schema), C(is_default), C(size_bytes) (C(pg_total_relation_size)),
              C(rows_estimate) (C(reltuples), 0 before the first ANALYZE) and its bounds as C(lower)/C(upper)
              (ISO text for time keys, C(MINVALUE)/C(MAXVALUE) when unbounded), C(values) or
              C(modulus)/C(remainder).
            - C(missing_indexes) lists the parent's indexes the partition has no attached index for, which
              C(CREATE INDEX ON ONLY) leaves until each partition's index is attached (the parent's index stays
              invalid meanwhile); empty when it has them all.
          type: list
          elements: dict
          returned: always
            - C(drift) lists how the partition differs from what its parent (and the template table) gives it, each
              item with a C(kind). C(owner), C(replica_identity), C(reloptions) (storage parameters, judged with a
              template table only) and C(tablespace) (null means the database's default) have C(expected) and
              C(actual). C(privileges) has C(missing) and C(extra), each as C(role PRIVILEGE [(column)]);
              C(template_indexes) lists the template's indexes the partition lacks in C(missing), C(invalid_indexes)
              the invalid ones a failed build left in C(extra). Empty when the partition carries everything;
              M(pgfleet.partitions.postgres_partition) with C(inherit=enforce) repairs all but the tablespace.
          sample:
            - {name: raw_ingestions_2025_01, schema: public, is_default: false, lower: "2025-01-01T00:00:00+00:00",
               upper: "2025-02-01T00:00:00+00:00", size_bytes: 16384, rows_estimate: 0, missing_indexes: [],
               drift: [{kind: owner, expected: app_owner, actual: postgres}]}
        default_rows:
          description: The exact number of rows in the default partition (a C(count(*)) of it); null when the set
            has no default partition, so 0 means a default partition that is empty.
          type: int
          returned: always
        gaps:
          description:
            - Holes between consecutive RANGE partitions, in key order; keys in C([lower, upper)) have no
              partition of their own. The open ends before the first and after the last partition are not gaps.
            - Each has C(lower), C(upper), C(after) (the partition ending at C(lower)) and C(before) (the
              partition starting at C(upper)). Empty for LIST and HASH sets.
          type: list
          elements: dict
          returned: always
          sample:
            - {lower: "2025-03-01T00:00:00+00:00", upper: "2025-04-01T00:00:00+00:00",
               after: raw_ingestions_2025_02, before: raw_ingestions_2025_04}
        runway:
          description:
            - How far the RANGE partitions reach past RV(tables.qualified_name.reference) without a hole.
            - Null for LIST and HASH sets and for RANGE keys that are neither time nor integer.
          type: dict
          returned: always
          contains:
            current:
              description: The partition holding the reference; null when none does (the reference falls in a
                gap, before the first or after the last partition, or only in the default partition).
              type: str
            partitions:
              description: The number of partitions after RV(tables.qualified_name.runway.current) that follow each
                other without a hole (each starts where the previous one ends); 0 when no partition holds the
                reference.
              type: int
            until:
              description: The upper bound of the last of those partitions (of the current one when none follows);
                null when no partition holds the reference, C(MAXVALUE) when it is unbounded.
              type: raw
            interval:
              description:
                - C(until) minus the reference; for time keys in seconds, for integer keys in key units. It includes
                  the rest of the current partition.
                - 0 when no partition holds the reference; null when C(until) is C(MAXVALUE).
              type: raw
              sample: 28857600
            text:
              description: The interval as PostgreSQL prints it for time keys (whole seconds), the number as text
                for integer keys, C(unbounded) when C(until) is C(MAXVALUE).
              type: str
              sample: 334 days
            iso:
              description: The interval as an ISO 8601 duration with days as the largest unit (time keys only;
                null otherwise).
              type: str
              sample: P334D
        reference:
          description: The key value runway is measured from (ISO text in UTC for time keys, a number for integer
            keys); null when there is no runway.
          type: raw
          returned: always
          sample: "2025-01-27T10:15:00+00:00"
        parent_analyzed:
          description:
            - Whether the partitioned table itself was ever analyzed (C(pg_class.reltuples) is no longer -1, or the
              statistics views hold an analyze time). Autovacuum never analyzes a partitioned table, and without
              its statistics the planner misjudges joins and aggregates over the whole set; run C(ANALYZE) on it.
          type: bool
          returned: always
        parent_last_analyzed:
          description: When the partitioned table was last analyzed, by hand or by autovacuum, as the statistics
            views say (ISO text in UTC); null when they do not know, as on a hot standby or after a statistics
            reset.
          type: str
          returned: always
          sample: "2025-01-27T03:00:12.345678+00:00"
        default_rows_by_target:
          description:
            - Where the default partition's rows would go (only when it holds rows); one scan of it.
            - C(targets) lists, for RANGE sets with O(interval), each partition of the grid that would receive rows,
              with C(partition) (its name), C(lower), C(upper) and C(rows); for LIST sets each value with C(value)
              and C(rows). C(left) lists the rows no partition can take, with C(reason) and C(rows).
          type: dict
          returned: when the default partition holds rows (RANGE sets with O(interval))
          sample: {targets: [{partition: events_2023_04, lower: "2023-04-01T00:00:00+00:00",
                   upper: "2023-05-01T00:00:00+00:00", rows: 1200}], left: [{reason: the key is NULL, rows: 3}]}
        brin_indexes:
          description:
            - The BRIN indexes of the set (the partitioned table and every partition, at any depth), from one
              catalog query for all reported tables.
            - Each has C(name), C(schema), C(table) (the table or partition it indexes), C(level) (0 for the
              partitioned table itself, 1 for its partitions, and so on), C(autosummarize) and
              C(pages_per_range).
          type: list
          elements: dict
          returned: always
          sample:
            - {name: raw_ingestions_2025_01_received_at_idx, schema: public, table: raw_ingestions_2025_01,
               level: 1, autosummarize: true, pages_per_range: 128}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.argspec import argument_spec
from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.module import run_job
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import parse_reference_time
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import EPOCH_SCALE
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.info import read_facts
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.params import policy_from_params


def main():
    module = AnsibleModule(argument_spec=argument_spec(
        table=dict(type="list", elements="str"), reference_time=dict(type="raw"), interval=dict(type="str"),
        interval_anchor=dict(type="raw"), epoch=dict(type="str", choices=list(EPOCH_SCALE)),
        timezone=dict(type="str", default="UTC"),
        template_table=dict(type="str"), tablespace=dict(type="str")),
        supports_check_mode=True)
    params = module.params
    names = params["table"]
    subject = "cannot read the partition facts of %s" % ", ".join(names or ["the partitioned tables"])

    def prepare():
        template = params["template_table"]
        if (template or params["tablespace"]) and len(names or []) != 1:
            raise PlanError("template_table and tablespace describe one table: name exactly one in table")
        grid = policy_from_params(dict(interval=params["interval"], epoch=params["epoch"],
                                       interval_anchor=params["interval_anchor"],
                                       timezone=params["timezone"])) if params["interval"] else None
        return ([parse_table_name(name) for name in names or []], parse_reference_time(params["reference_time"]),
                grid, parse_table_name(template, "template_table") if template else None)

    def job(database, tables, reference_time, grid, template):
        return read_facts(database, tables, reference_time, grid, template=template, tablespace=params["tablespace"])

    module.exit_json(**run_job(module, subject, prepare, job))


if __name__ == "__main__":
    main()
