# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: inheritance as the partition job (postgres_partition, the runner, convert) and
# postgres_partition_info use it: read what a table's partitions should carry, refuse what cannot work before any
# DDL, report drift, and (inherit: enforce) repair existing partitions. The creation of a partition adds what
# _inherit.plan.new_partition gives to its own transaction (_partition/render.py).
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Inheritance, Repair
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import TableName
from ansible_collections.pgfleet.partitions.plugins.module_utils._inherit import catalog, execute, plan, render


def read(database, table_oid: int, template: Optional[TableName] = None, tablespace: Optional[str] = None,
         for_ddl: bool = True) -> Inheritance:
    """What the table's partitions should carry (a constant number of queries); a template that does not fit, and
    (for_ddl) a connecting role that cannot give partitions their owner, are refused here, before any DDL."""
    inheritance = catalog.read_inheritance(database, table_oid, template, tablespace)
    plan.refuse_template_mismatch(inheritance)
    if for_ddl:
        plan.refuse_unownable(inheritance)
    return inheritance


def drift(database, table_oid: int, inheritance: Inheritance) -> Dict[Tuple[str, str], List[dict]]:
    """{(schema, partition): its drift as postgres_partition_info reports it}, for every partition (one query)."""
    return {(carry.schema, carry.name): [found.facts() for found in plan.drift(inheritance, carry)]
            for carry in catalog.read_carries(database, table_oid)}


def repairs(database, table_oid: int, inheritance: Inheritance) -> List[Repair]:
    """What inherit: enforce changes on the existing partitions (one query), those that need nothing left out."""
    planned = (plan.repair_for(inheritance, carry) for carry in catalog.read_carries(database, table_oid))
    return [repair for repair in planned if not repair.empty]


def apply(database, repairs_to_make: List[Repair], check_mode: bool, lock_timeout: str, retries: int) -> List[str]:
    """Run each repair (in check mode, none) and record its statements; the names of the partitions repaired."""
    repaired = []
    for repair in repairs_to_make:
        transaction, concurrent = render.repair_statements(repair)
        if not check_mode:
            execute.repair(database, "%s.%s: giving the partition what its parent carries" % (
                repair.schema, repair.name), transaction, concurrent, lock_timeout, retries)
        database.record(transaction + concurrent)
        repaired.append(repair.name)
    return repaired
