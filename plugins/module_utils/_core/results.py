# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: what every job's result shares: JSON-ready values, partition facts and listings,
# the reference time as given, and the reasons a job skips. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import cmp_to_key
from typing import Any, Iterable, List, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    HashBounds,
    ListBounds,
    Partition,
    RangeBounds,
    bound_before,
)

_STANDBY_REASON = "the server is a hot standby (pg_is_in_recovery); %s"
PARTITIONS_ON_STANDBY = "partitions arrive through replication"


def standby_reason(what: str = PARTITIONS_ON_STANDBY) -> str:
    """Why a job changed nothing on a hot standby: `what` says where the change comes from instead."""
    return _STANDBY_REASON % what


def lock_skip_reason(lock: str, table: str, seconds: int) -> str:
    """Why a run skipped a table: another run held its advisory lock (`lock` names which) for `seconds`."""
    return "another run holds the %s lock of %s for more than %ss; it is doing this work" % (lock, table, seconds)


def jsonable(value: Any) -> Any:
    """Values Ansible can serialize: datetimes as ISO text, Decimals as int or str, containers walked."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if value is not None and type(value).__name__ == "_Unbounded":
        return repr(value)
    return value


def parse_reference_time(value: Any) -> Any:
    """reference_time as given: an integer (integer keys) or an ISO date / date-time (naive or with offset)."""
    if value is None or isinstance(value, (int, dt.datetime, dt.date)) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if re.match(r"^-?\d+$", text):
        return int(text)
    try:
        if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("T", " "))
    except ValueError:
        raise PlanError("reference_time %r is neither an integer nor an ISO date/time such as 2025-01-15 or "
                        "2025-01-15T10:00:00+01:00" % (value,))


def partition_facts(partition: Partition) -> dict:
    facts = {"name": partition.name, "schema": partition.schema, "is_default": partition.is_default}
    bounds = partition.bounds
    if isinstance(bounds, RangeBounds):
        facts.update(lower=jsonable(bounds.lower), upper=jsonable(bounds.upper))
    elif isinstance(bounds, ListBounds):
        facts.update(values=list(bounds.values))
    elif isinstance(bounds, HashBounds):
        facts.update(modulus=bounds.modulus, remainder=bounds.remainder)
    return facts


def _by_lower(a, b):
    if bound_before(a.bounds.lower, b.bounds.lower):
        return -1
    return 1 if bound_before(b.bounds.lower, a.bounds.lower) else 0


def ordered(partitions: Iterable[Partition]) -> List[Partition]:
    """Range partitions by lower bound, LIST ones by name, HASH ones by remainder, the default partition last."""
    partitions = list(partitions)
    ranges = sorted((p for p in partitions if isinstance(p.bounds, RangeBounds)), key=cmp_to_key(_by_lower))
    lists = sorted((p for p in partitions if isinstance(p.bounds, ListBounds)), key=lambda p: p.name)
    hashes = sorted((p for p in partitions if isinstance(p.bounds, HashBounds)), key=lambda p: p.bounds.remainder)
    return ranges + lists + hashes + [p for p in partitions if p.is_default]


def _bounds_text(bounds) -> str:
    if isinstance(bounds, RangeBounds):
        return " [%s, %s)" % (jsonable(bounds.lower), jsonable(bounds.upper))
    if isinstance(bounds, ListBounds):
        return " IN (%s)" % ", ".join("NULL" if value is None else repr(value) for value in bounds.values)
    if isinstance(bounds, HashBounds):
        return " (%s)" % bounds
    return " DEFAULT"


def partition_listing(partitions: Iterable[Partition]) -> str:
    """One line a partition, with its bounds: what --diff shows before and after."""
    return "".join("%s%s\n" % (p.name, _bounds_text(p.bounds)) for p in ordered(partitions))


def with_listing(result: dict, before: Iterable[Partition], after: Iterable[Partition],
                 skipped_reason: Optional[str] = None) -> dict:
    """The result with its diff and, when the run skipped, why. The diff is two: the partition listings before and
    after, and the statements that ran (in check mode, would run), so that --check --diff shows them without -v."""
    if skipped_reason:
        result["skipped_reason"] = skipped_reason
    statements = "".join("%s;\n" % " ".join(query.split()) for query in result.get("queries") or ())
    result["diff"] = [
        {"before_header": "partitions", "after_header": "partitions", "before": partition_listing(before),
         "after": partition_listing(after)},
        {"before_header": "statements", "after_header": "statements", "before": "", "after": statements},
    ]
    return result
