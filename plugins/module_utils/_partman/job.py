# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the jobs of postgres_partman_info (every pg_partman set of a database as the
# equivalent policy) and postgres_partman_maintenance (pg_partman's automatic_maintenance on or off for some sets).
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import CatalogError, PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import RangeBounds, parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import jsonable, ordered
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog as db_catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._partman import catalog, render
from ansible_collections.pgfleet.partitions.plugins.module_utils._partman.mapping import map_set

MAINTENANCE_STATES = ("on", "off")


def _span(state) -> dict:
    """The lowest and highest bound of the set's RANGE partitions: a plan that adds nothing inside it fills no gap."""
    ranges = [p for p in ordered(state.partitions) if isinstance(p.bounds, RangeBounds)]
    if not ranges:
        return {}
    return {"lower": jsonable(ranges[0].bounds.lower), "upper": jsonable(ranges[-1].bounds.upper)}


def read_partman(database) -> dict:
    """pg_partman's version and schema, and per set its part_config row, the policy item, and what has no
    equivalent. Changes nothing."""
    found = catalog.extension(database)
    if found is None:
        return {"changed": False, "installed": False, "sets": [], "queries": []}
    schema, version, timezone = found
    subs = {row["sub_parent"]: row for row in catalog.part_config_sub(database, schema)}
    rows = catalog.part_config(database, schema)
    states = {row["parent_table"]: db_catalog.read_table(
        database, parse_table_name(row["parent_table"], "parent_table"), with_max_key=False) for row in rows}
    owner_of = {"%s.%s" % (p.schema, p.name): table for table, state in states.items() for p in state.partitions}
    sets = []
    for row in rows:
        state = states[row["parent_table"]]
        mapped = map_set(row, state, timezone, sub=subs.get(row["parent_table"]),
                         part_of=owner_of.get(row["parent_table"]))
        sets.append({"table": mapped.table, "automatic_maintenance": mapped.automatic_maintenance,
                     "policy": mapped.item, "unmapped": jsonable(mapped.unmapped), "refusal": mapped.refusal,
                     "partitions": len(state.partitions), "span": _span(state), "part_config": jsonable(row)})
    return {"changed": False, "installed": True, "schema": schema, "version": version, "timezone": timezone,
            "sets": sets, "queries": []}


def switch_maintenance(database, tables: Sequence[str], state: str, check_mode: bool) -> dict:
    """Set pg_partman's automatic_maintenance of `tables` (as part_config names them, schema-qualified) to `state`;
    only the sets not already there change. Unknown sets are refused before anything changes."""
    if state not in MAINTENANCE_STATES:
        raise PlanError("state must be on or off, not %r" % (state,))
    found = catalog.extension(database)
    if found is None:
        raise CatalogError("pg_partman is not installed in this database: there is no maintenance to switch")
    schema = found[0]
    before = {row["parent_table"]: row.get("automatic_maintenance") for row in catalog.part_config(database, schema)}
    missing = [table for table in tables if table not in before]
    if missing:
        raise PlanError("%s not in %s.part_config (name sets schema-qualified, as pg_partman does); nothing was "
                        "changed" % (", ".join(missing), schema))
    switching = [table for table in tables if before[table] != state]
    if switching:
        statement = render.set_automatic_maintenance(schema, switching, state)
        if check_mode:
            database.record([statement])
        else:
            database.execute(statement)
    after = dict(before, **{table: state for table in switching})
    return {"changed": bool(switching), "switched": switching, "state": state, "queries": list(database.queries),
            "diff": {"before": {table: before[table] for table in tables},
                     "after": {table: after[table] for table in tables}}}
