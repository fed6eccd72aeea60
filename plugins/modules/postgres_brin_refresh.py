#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_brin_refresh
short_description: Keep the BRIN indexes of partitioned tables summarized without heavy locks
version_added: 0.1.0
description:
  - New rows land in BRIN block ranges that stay unsummarized until a VACUUM reaches them, and until then the
    index cannot exclude those blocks. This module summarizes them at a fraction of the cost of a C(REINDEX).
  - O(mode=summarize) calls C(brin_summarize_new_values) on each BRIN index of each leaf partition. It takes
    only SHARE UPDATE EXCLUSIVE on the partition and the index, which does not conflict with INSERT, UPDATE,
    DELETE or SELECT, so writers are never queued behind it, not even while it waits for its lock.
  - O(mode=resummarize) rebuilds the summaries of every block range of the chosen partitions, one range at a
    time (C(brin_desummarize_range), then C(brin_summarize_range)), under the same light lock. Writes only
    ever widen a summary, so after UPDATEs, DELETEs or corrections the summaries of the hot partitions are
    wider than their data. BRIN keeps no record of which ranges were written to, so every range of the
    chosen partitions counts as changed; limit it with O(recent_partitions).
  - O(mode=reindex_concurrently) rebuilds each index with C(REINDEX INDEX CONCURRENTLY), outside any
    transaction. It waits for older transactions but does not block writers; it is the remedy for an
    invalid or bloated index, not for routine upkeep. When O(lock_timeout) runs out after the new index was
    built (a long transaction wrote to the table), PostgreSQL leaves it behind as an invalid
    C(<index>_ccnew); the module then stops, names it in the error, and does not retry (each try would
    leave another). Such leftovers are never visited.
  - Each index is its own transaction under O(lock_timeout), retried with backoff and jitter.
  - On a hot standby nothing is changed and RV(skipped_reason) says so, so one play can target primaries and
    replicas alike.
extends_documentation_fragment:
  - pgfleet.partitions.connection
  - pgfleet.partitions.locking
attributes:
  check_mode:
    support: full
    description:
      - Reads the catalog only. RV(indexes) lists the indexes that would be visited and RV(queries) the
        statements that would run.
      - Whether a range is still unsummarized cannot be seen without summarizing it, so in check mode
        O(mode=summarize) reports C(changed) when at least one visited index is on a table holding data.
  diff_mode:
    support: none
    description: There is nothing to show as a diff; RV(indexes) and RV(queries) say what was done.
options:
  table:
    description:
      - C([schema.]name) of a partitioned or plain table; the BRIN indexes of every leaf partition under it
        are refreshed. Without a schema the search_path decides.
      - Plain identifiers only; they are folded to lower case as PostgreSQL folds unquoted names.
      - Without O(table) and O(indexes), every BRIN index in the database is refreshed.
    type: str
  indexes:
    description:
      - C([schema.]name) of BRIN indexes to refresh instead. A partitioned index stands for its indexes on
        every leaf partition. An unknown name or an index of another kind is an error and nothing runs.
    type: list
    elements: str
  mode:
    description:
      - How the indexes are refreshed, see the description.
    type: str
    choices: [summarize, resummarize, reindex_concurrently]
    default: summarize
  recent_partitions:
    description:
      - Only the indexes of the N newest leaf partitions that hold data, per partitioned table (the hot
        ones). Newest means the highest range bound, level by level from the top; where no range bound
        orders them (LIST, HASH, default partitions) the later created wins. Empty partitions made ahead are
        passed over. Omitted, every leaf partition is visited.
      - With O(indexes), a partitioned index is a set of its own and each other listed index is one by itself.
    type: int
  lock_timeout:
    description:
      - C(lock_timeout) for each index's statement, as a PostgreSQL duration.
notes:
  - The connecting role must own the indexes (or, on PostgreSQL 17 and later, hold MAINTAIN on their tables).
  - Supports PostgreSQL 12 and newer; tested on 15 and 18.
seealso:
  - module: pgfleet.partitions.postgres_partition
author:
  - pgfleet.partitions contributors (@pgfleet)
"""

EXAMPLES = r"""
- name: Summarize new block ranges of every BRIN index under a partitioned table
  pgfleet.partitions.postgres_brin_refresh:
    login_db: health
    table: public.heart_rate_metrics

- name: Rebuild the summaries of the two hot partitions after a backfill corrected their data
  pgfleet.partitions.postgres_brin_refresh:
    login_db: health
    table: raw_ingestions
    mode: resummarize
    recent_partitions: 2

- name: Every BRIN index of the database, waiting at most half a second for each lock
  pgfleet.partitions.postgres_brin_refresh:
    login_db: health
    lock_timeout: 500ms
    retries: 10

- name: Rebuild chosen indexes (a partitioned index means all its partitions' indexes)
  pgfleet.partitions.postgres_brin_refresh:
    login_db: health
    indexes:
      - public.audit_log_created_at_brin
    mode: reindex_concurrently
"""

RETURN = r"""
changed:
  description:
    - Whether block ranges were summarized or an index was rebuilt.
    - In check mode, whether that is expected; see the C(check_mode) attribute.
  returned: always
  type: bool
mode:
  description: The mode of the run.
  returned: always
  type: str
  sample: summarize
indexes:
  description:
    - The indexes visited, oldest partition first, each with C(index) and C(table) (schema-qualified) and
      C(ranges_summarized).
    - For O(mode=reindex_concurrently), C(ranges_summarized) is the number of block ranges of the table as
      read before the rebuild; the new index summarizes all of them. In check mode it is 0.
  returned: always
  type: list
  elements: dict
  sample: [{index: public.events_2025_01_ts_idx, table: public.events_2025_01, ranges_summarized: 12}]
ranges_summarized:
  description: The sum of C(ranges_summarized) over RV(indexes).
  returned: always
  type: int
queries:
  description: Every statement executed, or that would be in check mode (a retried statement appears again).
  returned: always
  type: list
  elements: str
skipped_reason:
  description: Why nothing was done (the server is a hot standby).
  returned: when skipped
  type: str
"""

import functools

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.argspec import (
    LOCKING_OPTIONS,
    argument_spec,
    locking_settings,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.module import run_job
from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.job import refresh_brin
from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.plan import MODES
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import parse_table_name


OPTIONS = dict(
    table=dict(type="str"),
    indexes=dict(type="list", elements="str"),
    mode=dict(type="str", choices=list(MODES), default="summarize"),
    recent_partitions=dict(type="int"),
    **LOCKING_OPTIONS,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(**OPTIONS), mutually_exclusive=[("table", "indexes")],
                           supports_check_mode=True)
    params = module.params

    def prepare():
        table = parse_table_name(params["table"]) if params["table"] is not None else None
        indexes = None if params["indexes"] is None else [parse_table_name(text, "indexes")
                                                          for text in params["indexes"]]
        return table, indexes

    job = functools.partial(refresh_brin, mode=params["mode"], recent_partitions=params["recent_partitions"],
                            check_mode=module.check_mode, **locking_settings(params))
    module.exit_json(**run_job(module, params["table"] or ", ".join(params["indexes"] or ["every BRIN index"]),
                               prepare, job))


if __name__ == "__main__":
    main()
