# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: which BRIN indexes a refresh visits, and how; pure (no database, no clock).
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import CatalogError, PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Relation
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import standby_reason

MODES = ("summarize", "resummarize", "reindex_concurrently")

STANDBY_REASON = standby_reason("BRIN summaries arrive through replication, refresh them on the primary")

RELKIND_WORDS = {
    "r": "table", "p": "partitioned table", "m": "materialized view", "v": "view", "f": "foreign table",
    "i": "index", "I": "partitioned index", "S": "sequence", "c": "composite type", "t": "TOAST table",
}
TABLE_KINDS = ("r", "p", "m")
INDEX_KINDS = ("i", "I")


@dataclass(frozen=True)
class BrinIndex:
    """One BRIN index of a set: on a leaf table (a partition without partitions, or a plain table), which a refresh
    visits, or on a partitioned table (on_leaf false), which only stands for its partitions' indexes."""

    index_schema: str
    index_name: str
    table_schema: str
    table_name: str
    index_regclass: str  # quoted by the server (quote_ident), for a ::regclass literal
    table_regclass: str
    table_oid: int
    root_oid: int  # the table the set was walked from; "newest" is decided among its leaves
    bound_path: Tuple[Decimal, ...]  # range lower bounds from the root down to the leaf; -Infinity when none
    heap_blocks: int
    pages_per_range: int
    autosummarize: bool = False
    on_leaf: bool = True
    visitable: bool = True  # false for an invalid index a failed REINDEX ... CONCURRENTLY left behind

    @property
    def index(self) -> str:
        return "%s.%s" % (self.index_schema, self.index_name)

    @property
    def table(self) -> str:
        return "%s.%s" % (self.table_schema, self.table_name)

    @property
    def block_ranges(self) -> int:
        return -(-self.heap_blocks // self.pages_per_range)

    @property
    def level(self) -> int:
        """0 for the set's root, 1 for its partitions, and so on."""
        return len(self.bound_path)


@dataclass(frozen=True)
class Visit:
    """One index a refresh visits, and how."""

    index: BrinIndex
    mode: str

    @property
    def what(self) -> str:
        """The visit as messages name it."""
        return "BRIN index %s on %s (%s)" % (self.index.index, self.index.table, self.mode)


@dataclass(frozen=True)
class RefreshPlan:
    """The visits of one run, in order; none, with the reason, when the run must change nothing."""

    visits: Tuple[Visit, ...]
    mode: str
    skipped_reason: Optional[str] = None

    @property
    def expects_change(self) -> bool:
        """What check mode can know: a rebuild always changes; summarizing can only find work in a table with
        pages (whether those pages' ranges are already summarized is not visible without running it)."""
        if self.mode == "reindex_concurrently":
            return bool(self.visits)
        return any(visit.index.heap_blocks > 0 for visit in self.visits)


def _kind(relation: Relation) -> str:
    return RELKIND_WORDS.get(relation.relkind, "relation of kind %r" % relation.relkind)


def check_table(relation: Relation) -> None:
    """The `table` option must name an existing table (partitioned, plain or materialized view)."""
    if relation.oid is None:
        raise CatalogError("table %s does not exist (check the name, the schema and the search_path)"
                           % relation.given)
    if relation.relkind not in TABLE_KINDS:
        hint = "; to refresh chosen indexes, list them in indexes" if relation.relkind in INDEX_KINDS else ""
        raise CatalogError("%s is a %s, not a table%s" % (relation.given, _kind(relation), hint))


def check_indexes(relations: Sequence[Relation]) -> None:
    """Every name in `indexes` must be an existing BRIN index (a partitioned one stands for its leaves)."""
    for relation in relations:
        if relation.oid is None:
            raise CatalogError("index %s does not exist (check the name, the schema and the search_path)"
                               % relation.given)
        if relation.relkind not in INDEX_KINDS:
            raise CatalogError("%s is a %s, not an index" % (relation.given, _kind(relation)))
        if relation.access_method != "brin":
            raise CatalogError("index %s is a %s index, not a BRIN index; list only BRIN indexes in indexes"
                               % (relation.given, relation.access_method))


def newest_leaves(candidates: Sequence[BrinIndex], count: int) -> Tuple[BrinIndex, ...]:
    """The indexes on the `count` newest leaf tables of each set that hold data.

    Newest means the highest range lower bounds from the root down (a leaf under a newer parent is newer);
    where no range bound orders them (LIST, HASH, default partitions), the later created (higher oid) wins.
    Empty leaves, such as partitions created ahead, have nothing to summarize and are passed over.
    """
    by_root = {}
    for candidate in candidates:
        if candidate.heap_blocks > 0:
            by_root.setdefault(candidate.root_oid, set()).add((candidate.bound_path, candidate.table_oid))
    chosen = set()
    for leaves in by_root.values():
        chosen.update(table_oid for bound_path, table_oid in sorted(leaves, reverse=True)[:count])
    return tuple(candidate for candidate in candidates if candidate.table_oid in chosen)


def plan_refresh(candidates: Sequence[BrinIndex], mode: str, recent_partitions: Optional[int] = None,
                 in_recovery: bool = False) -> RefreshPlan:
    """The visits of one run, oldest leaf first; nothing on a hot standby."""
    if mode not in MODES:
        raise PlanError("mode %r is not one of %s" % (mode, ", ".join(MODES)))
    if recent_partitions is not None and recent_partitions < 1:
        raise PlanError("recent_partitions must be 1 or more (omit it to visit every partition), not %r"
                        % recent_partitions)
    if in_recovery:
        return RefreshPlan(visits=(), mode=mode, skipped_reason=STANDBY_REASON)
    candidates = [candidate for candidate in candidates if candidate.on_leaf and candidate.visitable]
    chosen = candidates if recent_partitions is None else newest_leaves(candidates, recent_partitions)
    ordered = sorted(chosen, key=lambda c: (c.root_oid, c.bound_path, c.table_oid, c.index))
    return RefreshPlan(visits=tuple(Visit(index=candidate, mode=mode) for candidate in ordered), mode=mode)
