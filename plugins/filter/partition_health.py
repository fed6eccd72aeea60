# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: partition_health
short_description: Judge the partition health of one host as the fleet partition report does
version_added: 0.1.0
description:
  - Takes what C(playbooks/health_check.yml) gathered on one host (the results of
    M(pgfleet.partitions.postgres_partition_info) per policy table and the runner's status file) and judges each
    table with the same rules and words as the P(pgfleet.partitions.partition_report#filter) filter.
  - A table is C(critical) when its runway is below the host's O(_input.min_runway), no partition holds the
    reference, a scheduled job has not succeeded within its period, its default partition holds at least
    O(default_rows_critical) rows, or it cannot be read. Gaps, a few rows in the default partition, a runway close
    to the minimum, C(enable_partition_pruning) off, a parent never analyzed and partitions without the parent's
    indexes are C(warning).
positional: now
options:
  _input:
    description:
      - What was gathered on the host, as one value of the input of P(pgfleet.partitions.partition_report#filter).
      - C(info) (the registered loop of M(pgfleet.partitions.postgres_partition_info) over the resolved policy
        items), C(status) (the parsed status file, or null), C(min_runway), C(job_max_age_hours), C(scheduled)
        (false when the host runs no scheduled jobs, whose age is then not judged) and C(backups) (false when the
        backup role is absent there).
    type: dict
    required: true
extends_documentation_fragment:
  - pgfleet.partitions.report_thresholds
author:
  - pgfleet.partitions contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Fail when a table of this host is critical
  ansible.builtin.assert:
    that: health.critical | length == 0
    fail_msg: "{{ health.critical | join(' | ') }}"
  vars:
    health: "{{ gathered | pgfleet.partitions.partition_health }}"
"""

RETURN = r"""
_value:
  description: The health of the host's policy tables.
  type: dict
  contains:
    state:
      description: The worst state of any table, C(ok), C(warning) or C(critical).
      type: str
    tables:
      description: One entry per policy table, in the policy's order.
      type: list
      elements: dict
      contains:
        table:
          description: C(db/schema.table).
          type: str
        state:
          description: C(ok), C(warning) or C(critical).
          type: str
        strategy:
          description: C(range), C(list) or C(hash); null when the table could not be read.
          type: str
        runway:
          description: Partitions ahead of the one holding the reference (RANGE tables), else null.
          type: int
        runway_until:
          description: Where the runway ends (RANGE tables), else null.
          type: raw
        gaps:
          description: The number of gaps between partitions.
          type: int
        default_rows:
          description: Rows in the default partition, null without one.
          type: int
        jobs:
          description: Job name to how long ago it last succeeded, C(never), C(n/a) or C(not scheduled).
          type: dict
        critical:
          description: The critical findings.
          type: list
          elements: str
        warnings:
          description: The warnings.
          type: list
          elements: str
    critical:
      description: "One line per critical table: C(db/table: findings)."
      type: list
      elements: str
    warnings:
      description: "One line per table with warnings: C(db/table: findings)."
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError  # noqa: E402 (documentation first, as in modules)

from ansible_collections.pgfleet.partitions.plugins.filter.partition_report import report_time  # noqa: E402
from ansible_collections.pgfleet.partitions.plugins.plugin_utils._report import judge  # noqa: E402


def _table(row):
    facts = row.facts or {}
    runway = facts.get("runway") or {}
    return {
        "table": row.key,
        "state": row.state,
        "strategy": facts.get("strategy"),
        "runway": runway.get("partitions"),
        "runway_until": runway.get("until"),
        "gaps": len(facts.get("gaps") or []),
        "default_rows": facts.get("default_rows"),
        "jobs": dict((job, text) for job, text, _tooltip in row.jobs),
        "critical": row.texts(judge.CRITICAL),
        "warnings": row.texts(judge.WARNING),
    }


def _lines(rows, state):
    return ["%s: %s" % (row.key or "(host)", "; ".join(row.texts(state))) for row in rows if row.texts(state)]


def partition_health(gathered, now=None, runway_warning=None, default_rows_critical=10000):
    if not isinstance(gathered, dict):
        raise AnsibleFilterError("partition_health expects what was gathered on one host (a mapping), got %s"
                                 % type(gathered).__name__)
    moment = report_time(now, "partition_health")
    rows = judge.judge_host("", gathered, moment, judge.host_thresholds(gathered, runway_warning,
                                                                        default_rows_critical))
    return {
        "state": judge.worst(row.state for row in rows),
        "tables": [_table(row) for row in rows if row.table],
        "critical": _lines(rows, judge.CRITICAL),
        "warnings": _lines(rows, judge.WARNING),
    }


class FilterModule(object):
    def filters(self):
        return {"partition_health": partition_health}
