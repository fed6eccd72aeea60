# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: pure, how each planned partition is created (attached after, or in place on a set
# with no partition yet; rows moved from the default partition or proved absent from it) and which creations share
# a transaction.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    CreatePartition,
    RangeBounds,
    TableState,
)

# Attaching next to a default partition scans it under ACCESS EXCLUSIVE unless a constraint proves the new
# range absent. Below this size the scan is shorter than the extra transactions that avoid it.
DEFAULT_SCAN_LIMIT_BYTES = 8 * 1024 * 1024
# Creations sharing one transaction (one message to the server) where that slows nobody down. With no default
# partition, ATTACH scans nothing but its own new table, and the lock it keeps on the parent until COMMIT (SHARE
# UPDATE EXCLUSIVE) lets readers and writers pass; the batch is kept small because that lock still waits for, and
# holds off, VACUUM, ANALYZE and other DDL on the parent. A set with no partitions at all holds no rows anyone can
# read or write: its batches are larger and made with PARTITION OF.
LIVE_BATCH = 20
NEW_SET_BATCH = 250


@dataclass(frozen=True)
class Creation:
    """How one planned partition is created: as a table of its own that is then attached, except on a set with no
    partition at all (in_place).

    moves_rows: rows of the default partition that belong in it move in the same transaction (a CHECK matching
    its bounds lets ATTACH skip scanning them). proves_absent: a large default partition holding none of its rows
    first gets a NOT VALID constraint excluding the range, validated without blocking writers, so that ATTACH
    skips scanning the default partition under ACCESS EXCLUSIVE.
    """

    action: CreatePartition
    moves_rows: bool = False
    proves_absent: bool = False
    in_place: bool = False  # created attached (CREATE TABLE ... PARTITION OF), on a set with no partition yet

    @property
    def bounds_checked(self) -> bool:
        return self.moves_rows and isinstance(self.action.bounds, RangeBounds)


def creation_for(state: TableState, action: CreatePartition, rows_to_move: int, default_bytes: int) -> Creation:
    """How to create `action`'s partition, from the rows of the default partition it would take and that
    partition's size (both 0 when the set has no default partition)."""
    if not state.partitions and action.partition_by is None:
        return Creation(action, in_place=True)
    if state.default_partition is None or action.is_default:
        return Creation(action)
    if rows_to_move:
        return Creation(action, moves_rows=True)
    return Creation(action, proves_absent=default_bytes > DEFAULT_SCAN_LIMIT_BYTES)


def batches(state: TableState, creations: Sequence[Creation]) -> List[Tuple[Creation, ...]]:
    """The creations grouped into the transactions they run in, in their order. Next to a default partition each
    one is alone: its ATTACH scans (or has proved absent) the default's rows under lock, and a shorter lock wins.
    So is a sub-partitioned one."""
    if state.default_partition is not None:
        return [(creation,) for creation in creations]
    size = NEW_SET_BATCH if not state.partitions else LIVE_BATCH
    batches: List[Tuple[Creation, ...]] = []
    for creation in creations:
        # A sub-partitioned partition is a batch of its own: it brings its sub-partitions' locks with it.
        if creation.action.children or not batches or len(batches[-1]) >= size or batches[-1][0].action.children:
            batches.append((creation,))
        else:
            batches[-1] += (creation,)
    return batches
