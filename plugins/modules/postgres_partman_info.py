#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_partman_info
short_description: Read the pg_partman sets of a database as the equivalent pgfleet.partitions policy
version_added: 0.1.0
description:
  - Reads C(part_config) of pg_partman (the 4.x and the 5.x layouts) and each set's partitions, and gives per set
    the policy item that M(pgfleet.partitions.postgres_partition) and the C(maintenance) role take for the same
    partitions, and every setting that has no equivalent here, with why. Nothing is dropped silently.
  - Nothing is inferred from partition names. The grid's
    O(pgfleet.partitions.postgres_partition#module:interval_anchor) comes from the partitions' bounds
    (pg_partman counts custom intervals from the day a set was made). A set whose partitions lie on no single
    grid, a sub-partitioned set or one pg_partman is undoing gets a C(refusal) and no policy.
  - pg_partman's names (C(<parent>_p<datetime_string>)) become the
    O(pgfleet.partitions.postgres_partition#module:name_template), so new partitions are named like the old ones.
  - Changes nothing; used by C(playbooks/migrate_from_partman.yml).
author:
  - pgfleet.partitions contributors (@pgfleet)
extends_documentation_fragment:
  - pgfleet.partitions.connection
attributes:
  check_mode:
    support: full
    description: Reads only, in check mode as in a normal run.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
options: {}
"""

EXAMPLES = r"""
- name: Read the pg_partman sets of the app database
  pgfleet.partitions.postgres_partman_info:
    login_db: app
  register: partman

- name: Show what has no equivalent
  ansible.builtin.debug:
    msg: "{{ partman.sets | map(attribute='unmapped') | list }}"
"""

RETURN = r"""
installed:
  description: Whether pg_partman is installed in the database.
  returned: always
  type: bool
version:
  description: pg_partman's version.
  returned: when installed
  type: str
  sample: 4.7.2
schema:
  description: The schema pg_partman is installed in.
  returned: when installed
  type: str
  sample: partman
timezone:
  description: The server's TimeZone, the zone pg_partman steps time in; it becomes the policy's timezone.
  returned: when installed
  type: str
sets:
  description:
    - One entry per C(part_config) row, with C(table), C(automatic_maintenance), C(policy) (the policy item, or
      null), C(unmapped) (a list of C(setting), C(value), C(note)), C(refusal) (why the set cannot be migrated, or
      null), C(partitions) (their number), C(span) (C(lower) of the oldest and C(upper) of the newest partition)
      and C(part_config) (the row as read).
  returned: always
  type: list
  elements: dict
queries:
  description: Always empty; this module only reads.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.argspec import argument_spec
from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.module import run_job
from ansible_collections.pgfleet.partitions.plugins.module_utils._partman.job import read_partman


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.exit_json(**run_job(module, "cannot read pg_partman's sets", tuple, read_partman))


if __name__ == "__main__":
    main()
