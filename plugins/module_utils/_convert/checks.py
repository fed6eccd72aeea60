# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: what must hold before a conversion changes anything (refusals with what to do),
# the partitions that cover the existing data, and the comparison of the two tables before a swap. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, List, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.model import SourceTable
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.bounds import canonical_list_value
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import PartitionPolicy
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import IntegerGrid

# More partitions than this to cover the existing keys means the interval is too fine for the data.
MAX_COVERING_PARTITIONS = 5000


def refuse_unconvertible(source: SourceTable, column: str) -> None:
    """Everything that cannot work, found before the first change, with what to do about it."""
    table = "%s.%s" % (source.schema, source.name)
    key = source.column(column)
    if key is None or key.generated:
        raise PlanError("%s has no column %s to partition by" % (table, column) if key is None else
                        "%s: the generated column %s cannot be the partition key" % (table, column))
    if source.primary_key is None:
        raise PlanError("%s has no primary key; the copy and the mirror trigger need one. Add a primary key that "
                        "includes %s, e.g. ALTER TABLE %s ADD PRIMARY KEY (id, %s)" % (table, column, table, column))
    for index in source.indexes:
        if not index.unique:
            continue
        what = "primary key" if index.primary else "unique %s" % ("constraint" if index.constraint else "index")
        if index.partial_or_expression:
            raise PlanError("%s: %s %s has expressions or a WHERE clause; a partitioned table cannot enforce it. "
                            "Replace it by a plain unique key that includes %s" % (table, what, index.name, column))
        if column not in index.columns:
            dependent = [fk for fk in source.incoming if frozenset(fk.ref_columns) == frozenset(index.columns)]
            raise PlanError(
                "%s: %s %s (%s) does not include the partition column %s, and a partitioned table can only enforce "
                "uniqueness when the key includes the partition column. Extend the key with the partition column "
                "(e.g. ALTER TABLE %s DROP CONSTRAINT %s, ADD PRIMARY KEY (%s, %s)) or partition by a column the "
                "key already has.%s Nothing was changed."
                % (table, what, index.name, ", ".join(index.columns), column, table, index.name,
                   ", ".join(index.columns), column, _foreign_keys_note(dependent, column)))
    refuse_unmovable(source)


def _foreign_keys_note(foreign_keys, column):
    if not foreign_keys:
        return ""
    return (" Foreign keys reference that key and must be extended with %s as well (or dropped before converting): "
            "%s." % (column, ", ".join("%s.%s.%s (%s)" % (fk.schema, fk.table, fk.name, ", ".join(fk.columns))
                                       for fk in foreign_keys)))


def refuse_unmovable(source: SourceTable) -> None:
    """Views and rules read a table by oid and would keep reading the retired one; foreign keys must find a
    unique key on the partitioned table. Checked before the first change and again before a swap."""
    table = "%s.%s" % (source.schema, source.name)
    if source.dependents:
        raise PlanError(
            "%s is read by %s, which would keep reading the retired table after the swap. Drop them before the "
            "swap and recreate them after it. Nothing was changed." % (table, ", ".join(source.dependents)))
    keys = [frozenset(i.columns) for i in source.indexes if i.unique and not i.partial_or_expression]
    blocked = [fk for fk in source.incoming if frozenset(fk.ref_columns) not in keys
               or (fk.schema, fk.table) == (source.schema, source.name)]
    if blocked:
        listing = "; ".join("%s.%s.%s (%s) -> %s (%s)" % (fk.schema, fk.table, fk.name, ", ".join(fk.columns),
                                                          source.name, ", ".join(fk.ref_columns)) for fk in blocked)
        raise PlanError(
            "%s: foreign keys referencing it cannot be recreated against the partitioned table, because their "
            "referenced columns are not a unique key there (which must include the partition column) or they "
            "reference the table itself: %s. Extend each foreign key and its referenced key with the partition "
            "column, or drop the foreign key before converting. Nothing was changed." % (table, listing))


def buckets_between(grid: Any, first: Any, last: Any, table: str) -> int:
    """How many grid steps lead from bucket start `first` to `last` (0 when last is not after first)."""
    if isinstance(grid, IntegerGrid):
        count = max(0, (last - first) // grid.step)
    else:
        count, start = 0, first
        while start < last and count <= MAX_COVERING_PARTITIONS:
            start, count = grid.shift(start, 1), count + 1
    if count > MAX_COVERING_PARTITIONS:
        raise PlanError("%s: covering the existing keys needs more than %d partitions; choose a coarser interval"
                        % (table, MAX_COVERING_PARTITIONS))
    return count


def covering_policy(policy: PartitionPolicy, grid: Any, low: Any, high: Any, now: Any, table: str) -> PartitionPolicy:
    """The RANGE policy whose plan covers every existing key from low to high: backfill reaches back to the
    lowest key, premake runs on past the later of the reference and the highest key."""
    integer = isinstance(grid, IntegerGrid)
    reference = policy.reference_time
    if reference is None:
        reference = (int(high) if high is not None else 0) if integer else now
    current = grid.floor(grid.from_key(reference))
    backfill, premake = policy.backfill, policy.premake
    if low is not None:
        backfill = max(backfill, buckets_between(grid, grid.floor(grid.from_key(low)), current, table))
        premake += buckets_between(grid, current, grid.floor(grid.from_key(high)), table)
    return dataclasses.replace(policy, reference_time=reference, backfill=backfill, premake=premake)


def uncovered_list_values(policy: PartitionPolicy, values: Iterable[str]) -> List[str]:
    """Existing key values (as text) that no LIST partition would take."""
    listed = {canonical_list_value(value) for values_of in (policy.list_partitions or {}).values()
              for value in (values_of or [])}
    return sorted(value for value in values if value not in listed)


def compare_verification(rows: Iterable[Sequence[Any]], partitions: Sequence[str] = ()) -> Tuple[List[dict], List[str]]:
    """Per partition (every one of `partitions`, and any that rows name), the rows of both tables and whether
    their checksums match; and the partitions where the two differ."""
    sides = {"regular": {}, "partitioned": {}}
    for side, partition, count, checksum in rows:
        sides[side][partition] = (int(count), str(checksum))
    report, mismatched = [], []
    others = (set(sides["regular"]) | set(sides["partitioned"])) - set(partitions)
    for partition in list(partitions) + sorted(others, key=lambda name: (name is None, name or "")):
        regular, partitioned = sides["regular"].get(partition, (0, "0")), sides["partitioned"].get(partition, (0, "0"))
        item = {"partition": partition or "(no partition)", "rows": regular[0], "rows_partitioned": partitioned[0],
                "checksum_matches": regular[1] == partitioned[1]}
        report.append(item)
        if regular != partitioned:
            mismatched.append(item["partition"])
    return report, mismatched


def recreated_not_valid(foreign_key: Any, server_version_num: int) -> bool:
    """Whether a foreign key moved at a swap is recreated NOT VALID (and validated after it, without blocking
    writers), which keeps the swap short: a partitioned referencing table accepts that from PostgreSQL 18 on."""
    return not foreign_key.table_is_partitioned or server_version_num >= 180000
