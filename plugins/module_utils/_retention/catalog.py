# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the catalog reads of retention beyond the table's state (_db/catalog.py):
# leftovers of interrupted runs and whether a detach is pending. SELECTs only.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
from typing import Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Partition, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.plan import DROP_MARKER

_ORPHANS_QUERY = """
SELECT n.nspname::text, c.relname::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND d.description = %s
ORDER BY c.oid
"""

# The leaf tables under each of some relations: none for a plain table (its tree is itself, at level 0).
_LEAVES_QUERY = """
SELECT r.schema, r.name, n.nspname::text, c.relname::text
FROM unnest(%s::text[], %s::text[]) AS r(schema, name)
CROSS JOIN LATERAL pg_partition_tree(format('%%I.%%I', r.schema, r.name)::regclass) AS t
JOIN pg_class c ON c.oid = t.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.isleaf AND t.level > 0
ORDER BY 1, 2, 3, 4
"""

_PENDING_QUERY = """
SELECT i.inhdetachpending
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""


def find_orphans(database, state: TableState) -> Tuple[Partition, ...]:
    """Tables a previous run detached for dropping but did not drop."""
    return tuple(Partition(schema, name, None)
                 for schema, name in database.query(_ORPHANS_QUERY, (DROP_MARKER % (state.schema, state.name),)))


def is_pending(database, schema: str, name: str) -> bool:
    """Whether the partition's detach is pending (a concurrent detach that did not finish)."""
    return bool(database.query_value(_PENDING_QUERY, (schema, name)))


def with_leaves(database, partitions: Sequence[Partition]) -> Tuple[Partition, ...]:
    """The partitions, each sub-partitioned one with its leaves (what a backup of it must dump); one query."""
    if not partitions:
        return ()
    leaves = {}
    for schema, name, leaf_schema, leaf_name in database.query(
            _LEAVES_QUERY, ([p.schema for p in partitions], [p.name for p in partitions])):
        leaves.setdefault((schema, name), []).append((leaf_schema, leaf_name))
    return tuple(dataclasses.replace(p, leaves=tuple(leaves[(p.schema, p.name)]), is_partitioned=True)
                 if (p.schema, p.name) in leaves else p for p in partitions)
