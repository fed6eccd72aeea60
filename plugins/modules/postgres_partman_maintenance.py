#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgfleet.partitions contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: postgres_partman_maintenance
short_description: Turn pg_partman's automatic maintenance of some sets off or back on
version_added: 0.1.0
description:
  - Sets C(automatic_maintenance) in pg_partman's C(part_config) for the sets named in O(tables), so that
    C(run_maintenance()) (its background worker or a cron job) leaves them alone, or looks after them again.
    Nothing else of pg_partman changes; it stays installed, and its other sets keep their setting.
  - Only the sets not already in O(state) change; a set not in C(part_config) is refused before anything changes.
  - Used by C(playbooks/migrate_from_partman.yml) to hand sets over to this collection and back.
author:
  - pgfleet.partitions contributors (@pgfleet)
extends_documentation_fragment:
  - pgfleet.partitions.connection
attributes:
  check_mode:
    support: full
    description: Changes nothing; RV(switched) and RV(queries) say what would change.
  diff_mode:
    support: full
    description: Each set's C(automatic_maintenance) before and after.
options:
  tables:
    description:
      - The sets, schema-qualified as C(part_config.parent_table) names them, for example C(public.events).
    type: list
    elements: str
    required: true
  state:
    description:
      - C(off) stops pg_partman's maintenance of the sets; C(on) turns it back on.
    type: str
    choices: ["on", "off"]
    required: true
"""

EXAMPLES = r"""
- name: Hand two sets over from pg_partman
  pgfleet.partitions.postgres_partman_maintenance:
    login_db: app
    tables: [public.events, public.audit_log]
    state: "off"
"""

RETURN = r"""
switched:
  description: The sets whose setting changed (or would, in check mode).
  returned: always
  type: list
  elements: str
state:
  description: The setting the sets have now.
  returned: always
  type: str
queries:
  description: The statements run (in check mode, that would run).
  returned: always
  type: list
  elements: str
"""

import functools

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.argspec import argument_spec
from ansible_collections.pgfleet.partitions.plugins.module_utils._ansible.module import run_job
from ansible_collections.pgfleet.partitions.plugins.module_utils._partman.job import (
    MAINTENANCE_STATES,
    switch_maintenance,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(
        tables=dict(type="list", elements="str", required=True),
        state=dict(type="str", choices=list(MAINTENANCE_STATES), required=True)), supports_check_mode=True)
    params = module.params
    job = functools.partial(switch_maintenance, tables=params["tables"], state=params["state"],
                            check_mode=module.check_mode)
    module.exit_json(**run_job(module, "cannot switch pg_partman's maintenance of %s" % ", ".join(params["tables"]),
                               tuple, job))


if __name__ == "__main__":
    main()
