# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # How the fleet report and the health check judge (filters partition_report and partition_health).
    DOCUMENTATION = r"""
options:
  now:
    description: The time of the judgement, ISO 8601; job ages are measured from it. Default, the controller's clock.
    type: str
  runway_warning:
    description: A table with fewer partitions ahead is C(warning); default, the host's C(min_runway) plus one.
    type: int
  default_rows_critical:
    description:
      - Rows in a default partition from which the table is C(critical) rather than C(warning).
      - Null, rows in a default partition are a C(warning) however many there are.
    type: int
    default: 10000
"""
