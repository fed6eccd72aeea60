# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: partition_report
short_description: Judge and render the fleet partition report as one self-contained HTML page
version_added: 0.1.0
description:
  - Takes what C(playbooks/report.yml) gathered on each host (the results of
    M(pgfleet.partitions.postgres_partition_info) per policy table and the runner's status file) and returns the
    report as HTML, with the state of every table and the findings that made it.
  - The page has no external scripts, fonts, styles or images; its timelines are inline SVG.
  - A table is C(critical) when its runway is below the host's O(_input.min_runway), no partition holds the
    reference, a scheduled job has not succeeded within its period, its default partition holds at least
    O(default_rows_critical) rows, or it cannot be read; an unreachable or failed host is C(critical).
    Gaps, a few rows in the default partition, a runway close to the minimum, C(enable_partition_pruning) off, a
    parent never analyzed and partitions without the parent's indexes are C(warning).
positional: now
options:
  _input:
    description:
      - Host name to what was gathered there, or null when the play never reached the host.
      - Each value has C(info) (the registered loop of M(pgfleet.partitions.postgres_partition_info) over the
        resolved policy items), C(status) (the parsed status file, or null), C(min_runway),
        C(job_max_age_hours), C(scheduled) (false when the host runs no scheduled jobs, whose age is then not judged),
        C(backups) (false when the backup role is absent there), and C(unreachable), C(failed), C(msg) when the
        host could not be read.
    type: dict
    required: true
  title:
    description: The page's title.
    type: str
    default: Partition report
extends_documentation_fragment:
  - pgfleet.partitions.report_thresholds
author:
  - pgfleet.partitions contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Write the report on the controller
  ansible.builtin.copy:
    content: "{{ (gathered | pgfleet.partitions.partition_report).html }}"
    dest: ./partition-report.html
    mode: "0644"
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
  contains:
    html:
      description: The page.
      type: str
    state:
      description: The worst state of any row, C(ok), C(warning) or C(critical).
      type: str
    counts:
      description: The number of rows per state.
      type: dict
    critical:
      description: "One line per critical row: C(host db/table: findings)."
      type: list
      elements: str
"""

import datetime as dt  # noqa: E402 (documentation first, as in modules)

from ansible.errors import AnsibleFilterError  # noqa: E402

from ansible_collections.pgfleet.partitions.plugins.plugin_utils._report import html, judge  # noqa: E402


def report_time(now, filter_name):
    """The time a filter judges at: `now` (ISO 8601) or the controller's clock."""
    moment = judge.parse_instant(now) if now else dt.datetime.now(dt.timezone.utc)
    if moment is None:
        raise AnsibleFilterError("%s: now=%r is not an ISO 8601 date-time" % (filter_name, now))
    return moment


def partition_report(hosts, now=None, runway_warning=None, default_rows_critical=10000, title="Partition report"):
    if not isinstance(hosts, dict):
        raise AnsibleFilterError("partition_report expects a mapping of host name to gathered facts, got %s"
                                 % type(hosts).__name__)
    moment = report_time(now, "partition_report")
    thresholds = {host: judge.host_thresholds(gathered, runway_warning, default_rows_critical)
                  for host, gathered in hosts.items()}
    rows = judge.judge(dict(hosts), moment, thresholds)
    return {
        "html": html.render(rows, moment, title),
        "state": judge.worst(row.state for row in rows),
        "counts": {state: sum(1 for row in rows if row.state == state)
                   for state in (judge.OK, judge.WARNING, judge.CRITICAL)},
        "critical": ["%s %s: %s" % (row.host, row.key or "(host)", "; ".join(row.texts(judge.CRITICAL)))
                     for row in rows if row.state == judge.CRITICAL],
    }


class FilterModule(object):
    def filters(self):
        return {"partition_report": partition_report}
