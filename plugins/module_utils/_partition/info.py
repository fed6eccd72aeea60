# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the facts of partition sets read from a database, for
# postgres_partition_info and the scheduled runner's status file.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any, Optional, Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._brin import catalog as brin_catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import PartitionPolicy, TableName
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import jsonable
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog as db_catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._drain.job import rows_by_target
from ansible_collections.pgfleet.partitions.plugins.module_utils._inherit import job as inherit_job
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition import catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.facts import reference_for, table_facts


def read_facts(database, names: Sequence[TableName], reference_time: Any, grid: Optional[PartitionPolicy] = None,
               with_sizes: bool = True, with_health: bool = True, template: Optional[TableName] = None,
               tablespace: Optional[str] = None) -> dict:
    """The module's result: every named table (all partitioned tables when none is named), read with SELECTs.

    with_health adds what the fleet report judges (parent analyzed, partitions lacking the parent's indexes, how
    each partition drifted from what the parent, the template table and the tablespace option give it, the
    settings); the runner, which records runway and default rows only, leaves it out. `grid` (a policy with an
    interval, epoch and timezone) says where the default partition's rows of RANGE sets would go.
    """
    db_catalog.prepare_session(database)
    if not names:
        names = [TableName(schema, name) for schema, name in db_catalog.list_partitioned_tables(database)]
    states = {}
    for name in names:
        state = db_catalog.read_table(database, name, with_sizes=with_sizes, with_max_key=reference_time is None)
        states["%s.%s" % (state.schema, state.name)] = state
    # Every reference is checked against its key before the first count(*) of a default partition scans rows.
    references = {qualified: reference_for(state, reference_time) for qualified, state in states.items()}
    oids = [state.oid for state in states.values()]
    brin = {oid: [] for oid in oids}
    for index in brin_catalog.brin_indexes(database, roots=oids) if oids else ():
        brin[index.root_oid].append(index)
    health = catalog.table_health(database, oids) if with_health else {}
    tables = {}
    for qualified, state in states.items():
        default = state.default_partition
        default_rows = db_catalog.count_rows(database, default.schema, default.name) if default else None
        drift = inherit_job.drift(database, state.oid, inherit_job.read(
            database, state.oid, template, tablespace, for_ddl=False)) if with_health else None
        tables[qualified] = table_facts(state, references[qualified], default_rows, brin[state.oid],
                                        health.get(state.oid), drift)
        if default_rows:
            by_target = rows_by_target(database, state, grid)
            if by_target:
                tables[qualified]["default_rows_by_target"] = jsonable(by_target)
    recovering, settings = catalog.server_facts(database, with_settings=with_health)
    result = {"changed": False, "tables": tables, "in_recovery": recovering, "queries": database.queries}
    if settings is not None:
        result["settings"] = settings
    return result
