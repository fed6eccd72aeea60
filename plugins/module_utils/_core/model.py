# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the plain data the engine passes from catalog to planner to executor.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError

TIME_KEY_TYPES = ("date", "timestamp without time zone", "timestamp with time zone")
INTEGER_KEY_TYPES = ("smallint", "integer", "bigint", "numeric")
TIME_INTERVALS = ("hour", "day", "week", "month", "quarter", "year")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class TableName:
    schema: Optional[str]
    name: str

    def __str__(self):
        return "%s.%s" % (self.schema, self.name) if self.schema else self.name


def parse_table_name(text: str, option: str = "table") -> TableName:
    """'[schema.]name' with plain identifiers only, folded to lower case as PostgreSQL folds unquoted names.

    Anything else (quotes, semicolons, comments, spaces) is refused here, before any SQL is built.
    """
    if not isinstance(text, str) or not text:
        raise PlanError("%s must be a non-empty '[schema.]name'" % option)
    parts = text.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) and len(part.encode()) <= 63 for part in parts):
        raise PlanError(
            "%s %r is not a plain '[schema.]name': use letters, digits, '_' and '$' only (at most 63 bytes each)"
            % (option, text)
        )
    parts = [part.lower() for part in parts]
    return TableName(parts[0], parts[1]) if len(parts) == 2 else TableName(None, parts[0])


@dataclass(frozen=True)
class Relation:
    """A relation as the catalog has it; oid is None when a name the user gave (`given`) does not exist."""

    oid: Optional[int] = None
    relkind: Optional[str] = None
    comment: Optional[str] = None
    mirrored: bool = False  # carries an enabled mirror trigger of postgres_partition_convert
    given: str = ""
    access_method: Optional[str] = None
    table_oid: Optional[int] = None  # for an index, the table it is on


# Sentinels for MINVALUE / MAXVALUE range bounds; they order below and above every value.
class _Unbounded(object):
    def __init__(self, label: str, sign: int):
        self.label = label
        self.sign = sign

    def __repr__(self):
        return self.label

    def __reduce__(self):
        return (_unbounded, (self.label,))


def _unbounded(label):
    return MINVALUE if label == "MINVALUE" else MAXVALUE


MINVALUE = _Unbounded("MINVALUE", -1)
MAXVALUE = _Unbounded("MAXVALUE", 1)


def bound_before(a: Any, b: Any) -> bool:
    """a < b for range bound values, MINVALUE and MAXVALUE included."""
    if isinstance(a, _Unbounded) or isinstance(b, _Unbounded):
        rank_a = a.sign if isinstance(a, _Unbounded) else 0
        rank_b = b.sign if isinstance(b, _Unbounded) else 0
        return rank_a < rank_b
    return a < b


@dataclass(frozen=True)
class RangeBounds:
    lower: Any
    upper: Any  # exclusive

    def overlaps(self, other: RangeBounds) -> bool:
        return bound_before(self.lower, other.upper) and bound_before(other.lower, self.upper)

    def contains(self, other: RangeBounds) -> bool:
        return not bound_before(other.lower, self.lower) and not bound_before(self.upper, other.upper)


@dataclass(frozen=True)
class ListBounds:
    """FOR VALUES IN (...)."""

    values: Tuple[str, ...]  # canonical text of each value; None for NULL


@dataclass(frozen=True)
class HashBounds:
    """FOR VALUES WITH (MODULUS m, REMAINDER r)."""

    modulus: int
    remainder: int

    def __str__(self) -> str:
        return "modulus %d, remainder %d" % (self.modulus, self.remainder)


@dataclass(frozen=True)
class Partition:
    """One partition of a set as the catalog has it (bounds from pg_get_expr, never from its name)."""

    schema: str
    name: str
    bounds: Any  # RangeBounds, ListBounds, HashBounds, or None for the default partition
    is_default: bool = False
    is_partitioned: bool = False  # itself sub-partitioned
    detach_pending: bool = False
    size_bytes: int = 0
    rows_estimate: int = 0
    oid: int = 0  # tells a partition from an earlier one of the same name
    leaves: Tuple[Tuple[str, str], ...] = ()  # (schema, name) of a sub-partitioned one's leaves, where read


@dataclass(frozen=True)
class TableState:
    """What the catalog says about one partitioned table, plus the server facts a plan depends on."""

    oid: int
    schema: str
    name: str
    strategy: str  # range | list | hash
    key: str
    key_type: str
    partitions: Tuple[Partition, ...]
    columns: Tuple[str, ...] = ()
    server_now: Any = None  # aware datetime (UTC)
    max_key: Any = None  # for integer range keys
    in_recovery: bool = False
    server_version_num: int = 0

    @property
    def default_partition(self) -> Optional["Partition"]:
        return next((p for p in self.partitions if p.is_default), None)

    @property
    def key_kind(self) -> str:
        if self.key_type in TIME_KEY_TYPES:
            return "time"
        if self.key_type in INTEGER_KEY_TYPES:
            return "integer"
        if self.key_type == "uuid":
            return "uuid"
        return "other"


SUB_STRATEGIES = ("range", "list", "hash")


@dataclass(frozen=True)
class SubPartitioning:
    """How each new top-level partition is itself partitioned: by `column`, with RANGE children of `interval`
    covering the whole partition, a LIST child per `list_partitions` entry, or `hash_modulus` HASH children."""

    strategy: str
    column: str
    interval: Any = None
    list_partitions: Any = None
    hash_modulus: Optional[int] = None


@dataclass(frozen=True)
class PartitionPolicy:
    """The options of postgres_partition, validated."""

    interval: Any = None  # a TIME_INTERVALS word, '<count> <unit>' or a positive int
    premake: int = 12
    backfill: int = 0
    epoch: Optional[str] = None  # a keygrid.EPOCH_SCALE unit
    interval_anchor: Any = None  # naive local datetime a bucket of a time grid starts at; None: the unit's default
    reference_time: Any = None  # datetime or int; None means the server's now() or max(key)
    timezone: str = "UTC"
    name_template: Optional[str] = None
    default_partition: bool = False
    list_partitions: Any = None  # dict suffix -> list of values
    hash_modulus: Optional[int] = None
    tablespace: Optional[str] = None
    retention: Any = None  # a _core.intervals retention the set also has: backfill must not reach past it
    default_rows: str = "window"  # window: rows of planned partitions move; drain: every row a partition can take
    drain_max_partitions: int = 120
    drain_batch_rows: int = 10000
    drain_pause: float = 0.0
    gaps: str = "report"  # fill: missing partitions between existing ones are created
    list_new_values: str = "ignore"  # create: a LIST partition for every value found in the default partition
    template_table: Optional[TableName] = None  # whose indexes, storage parameters and grants partitions also get
    inherit: str = "new"  # new: partitions get what the parent carries when created; enforce: existing ones too
    subpartition: Optional[SubPartitioning] = None  # new top-level partitions are created partitioned so


@dataclass(frozen=True)
class CreatePartition:
    """Create one partition (detached, then attached); rows of the default partition it covers move into it."""

    schema: str
    name: str
    bounds: Any  # RangeBounds, ListBounds (with the values as given), HashBounds, or None for DEFAULT
    values: Tuple[Any, ...] = field(default=())  # LIST values as the user gave them, for rendering literals
    partition_by: Optional[SubPartitioning] = None  # created partitioned, with `children`, then attached
    children: Tuple["CreatePartition", ...] = field(default=())

    @property
    def is_default(self) -> bool:
        return self.bounds is None
