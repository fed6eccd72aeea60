# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the catalog reads of draining the default partition, SELECTs only: its rows
# grouped by partition and block chunk (one scan), its size, the tables an interrupted drain was filling, and the
# constraints an interrupted run left on the default partition.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._drain import render
from ansible_collections.pgfleet.partitions.plugins.module_utils._drain.plan import MARKER, Group

_MARKED_QUERY = """
SELECT c.relname::text, d.description
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
WHERE n.nspname = %s AND c.relkind = 'r' AND NOT c.relispartition AND d.description LIKE %s
ORDER BY c.relname
"""

_LEFT_CONSTRAINTS_QUERY = """
SELECT con.conname::text FROM pg_constraint con
WHERE con.conrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = %s AND c.relname = %s)
  AND con.contype = 'c' AND con.conname LIKE 'pgfleet\\_%%'
ORDER BY 1
"""


def pages_and_tuples(database, state: TableState) -> Tuple[int, float]:
    pages, tuples = database.query(render.pages_and_tuples(state))[0]
    return int(pages or 0), float(tuples or 0)


# Chunks of blocks one grouping scan of a drain reads: each scan is its own short statement, so grouping a default
# partition of any size never holds one snapshot (and the xmin horizon of vacuum) for long.
SCAN_CHUNKS = 32


def grouped_rows(database, state: TableState, grid: Any, blocks: int,
                 pages: Optional[int] = None) -> Tuple[List[Group], int, int]:
    """The default partition's rows as groups (bucket and chunk), and the rows with a NULL key and those outside
    every range a partition can have. With its size in `pages`, read in scans of SCAN_CHUNKS chunks each (the
    last one open-ended, for blocks added since), else in one scan."""
    if pages is None:
        windows = [(None, None)]
    else:
        step = blocks * SCAN_CHUNKS
        starts = list(range(0, pages, step)) or [0]
        windows = [(start, start + step) for start in starts[:-1]] + [(starts[-1], None)]
    found, nulls, outside = [], 0, 0
    for first_block, last_block in windows:
        for kind, low, high, rows, chunk in database.query(render.groups(state, grid, blocks, first_block,
                                                                         last_block)):
            if kind == render.NULL_KEY:
                nulls += int(rows)
            elif kind == render.OUTSIDE:
                outside += int(rows)
            else:
                found.append(Group(low, high, int(rows), int(chunk)))
    return found, nulls, outside


def marked_tables(database, state: TableState) -> List[Tuple[str, str]]:
    """(name, comment) of the tables an interrupted drain of any set in this schema was filling."""
    return [tuple(row) for row in database.query(_MARKED_QUERY, (state.schema, MARKER.replace("_", "\\_") + "%"))]


def left_constraints(database, state: TableState) -> List[str]:
    """The engine's constraints on the default partition: only an interrupted run leaves one there."""
    default = state.default_partition
    return [row[0] for row in database.query(_LEFT_CONSTRAINTS_QUERY, (default.schema, default.name))]
