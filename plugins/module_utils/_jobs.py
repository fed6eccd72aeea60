# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the jobs the modules and the scheduled runner share, from a connection to a
# JSON-ready result. One engine: read -> plan -> apply -> read back.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import cmp_to_key

from ansible_collections.pgfleet.partitions.plugins.module_utils import _catalog as catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._executor import create_partitions
from ansible_collections.pgfleet.partitions.plugins.module_utils._locking import (
    acquire_table_lock,
    release_table_lock,
    validate_lock_timeout,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._model import (
    HashBounds,
    ListBounds,
    Partition,
    PartitionPolicy,
    RangeBounds,
    bound_before,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._planner import plan

STANDBY_REASON = "the server is a hot standby (pg_is_in_recovery); partitions arrive through replication"
_SUFFIX = re.compile(r"^[A-Za-z0-9_$]+$")


def jsonable(value):
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


def parse_reference_time(value):
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


def policy_from_params(params):
    """The validated PartitionPolicy of postgres_partition's options (refusals before any connection)."""
    interval = params.get("interval")
    if isinstance(interval, str) and interval.strip().isdigit():
        interval = int(interval)
    elif isinstance(interval, str):
        interval = interval.strip().lower()
    for suffix in (params.get("list_partitions") or {}):
        if not _SUFFIX.match(str(suffix)):
            raise PlanError("list_partitions key %r is not a plain name suffix (letters, digits, '_')" % (suffix,))
    if params.get("tablespace") is not None and not _SUFFIX.match(params["tablespace"]):
        raise PlanError("tablespace %r is not a plain name" % (params["tablespace"],))
    premake, backfill = params.get("premake", 12), params.get("backfill", 0)
    if premake is not None and premake < 0 or backfill is not None and backfill < 0:
        raise PlanError("premake and backfill must be 0 or more (got premake=%s, backfill=%s)" % (premake, backfill))
    validate_lock_timeout(params.get("lock_timeout", "3s"))
    return PartitionPolicy(
        interval=interval, premake=premake, backfill=backfill, epoch=params.get("epoch"),
        reference_time=parse_reference_time(params.get("reference_time")),
        timezone=params.get("timezone") or "UTC", name_template=params.get("name_template"),
        default_partition=bool(params.get("default_partition")), list_partitions=params.get("list_partitions"),
        hash_modulus=params.get("hash_modulus"), tablespace=params.get("tablespace"),
    )


def partition_facts(partition):
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


def ordered(partitions):
    """Range partitions by lower bound, LIST ones by name, HASH ones by remainder, the default partition last."""
    ranges = sorted((p for p in partitions if isinstance(p.bounds, RangeBounds)), key=cmp_to_key(_by_lower))
    lists = sorted((p for p in partitions if isinstance(p.bounds, ListBounds)), key=lambda p: p.name)
    hashes = sorted((p for p in partitions if isinstance(p.bounds, HashBounds)), key=lambda p: p.bounds.remainder)
    return ranges + lists + hashes + [p for p in partitions if p.is_default]


def partition_listing(partitions):
    return "".join(
        "%s%s\n" % (p.name, " [%s, %s)" % (jsonable(p.bounds.lower), jsonable(p.bounds.upper))
                    if isinstance(p.bounds, RangeBounds) else "")
        for p in ordered(partitions)
    )


def ensure_partitions(database, table, policy, check_mode=False, lock_timeout="3s", retries=5, run_lock_wait=60):
    """Make `table` have the partitions the policy asks for; the result dict is what the module returns."""
    return ensure_partitions_reading(database, table, policy, check_mode, lock_timeout, retries, run_lock_wait)[0]


def ensure_partitions_reading(database, table, policy, check_mode=False, lock_timeout="3s", retries=5,
                              run_lock_wait=60):
    """ensure_partitions, and the TableState it read last when the run left the table as read (it created nothing),
    else None: the runner takes its status facts from that state instead of reading the catalog again."""
    catalog.prepare_session(database)
    state = catalog.read_table(database, table)
    result = {"changed": False, "created": [], "moved_rows": 0, "queries": [], "strategy": state.strategy,
              "key": state.key, "key_type": state.key_type, "table": "%s.%s" % (state.schema, state.name)}
    if state.in_recovery:
        return _finish(result, state, state.partitions, skipped_reason=STANDBY_REASON), state
    first_plan = plan(state, policy)
    result["reference"] = jsonable(first_plan.reference)
    if not first_plan.actions:
        return _finish(result, state, state.partitions), state
    if check_mode:
        created = create_partitions(database, state, first_plan.actions, True, lock_timeout, retries,
                                    policy.tablespace)
        planned = tuple(Partition(a.schema, a.name, a.bounds, is_default=a.is_default) for a in first_plan.actions)
        result.update(changed=True, created=created.created, moved_rows=created.moved_rows, queries=created.queries)
        return _finish(result, state, state.partitions + planned), state
    if not acquire_table_lock(database, state.oid, run_lock_wait):
        return _finish(result, state, state.partitions, skipped_reason=(
            "another run holds the maintenance lock of %s.%s for more than %ss; it is doing this work"
            % (state.schema, state.name, run_lock_wait))), None
    try:
        state = catalog.read_table(database, table)
        created = create_partitions(database, state, plan(state, policy).actions, False, lock_timeout, retries,
                                    policy.tablespace)
    finally:
        release_table_lock(database, state.oid)
    result.update(changed=bool(created.created), created=created.created, moved_rows=created.moved_rows,
                  queries=created.queries)
    if not created.created:  # another run made them while this one waited for the lock
        return _finish(result, state, state.partitions), state
    after = catalog.read_table(database, table, with_max_key=False)
    return _finish(result, state, after.partitions), None


def _finish(result, before, after_partitions, skipped_reason=None):
    if skipped_reason:
        result["skipped_reason"] = skipped_reason
    result["partitions"] = [partition_facts(p) for p in ordered(after_partitions)]
    result["diff"] = {"before": partition_listing(before.partitions), "after": partition_listing(after_partitions)}
    return result
