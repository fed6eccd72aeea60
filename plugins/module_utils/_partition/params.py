# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: postgres_partition's options as a validated PartitionPolicy; every refusal that
# needs no catalog happens here, before anything connects. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.intervals import (
    parse_grid_interval,
    parse_retention,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import INHERIT_MODES
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import PartitionPolicy, parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.naming import PLAIN_NAME, check_template_text
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import parse_reference_time
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import check_anchor
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan_sub import parse_subpartition
from ansible_collections.pgfleet.partitions.plugins.module_utils._drain.modes import (
    DEFAULT_ROWS_MODES,
    GAPS_MODES,
    LIST_NEW_VALUES_MODES,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    validate_count,
    validate_lock_timeout,
)


def _anchor(value, interval):
    """interval_anchor as a naive local date-time checked against the interval; None when not given."""
    if value is None:
        return None
    if not isinstance(interval, str):
        raise PlanError("interval_anchor applies to time intervals (such as '2 weeks'), not to %r" % (interval,))
    anchor = parse_reference_time(value)
    if isinstance(anchor, int):
        raise PlanError("interval_anchor %r must be a local date or date-time such as '2024-01-02 00:00'" % (value,))
    return check_anchor(anchor, parse_grid_interval(interval))


def policy_from_params(params: dict) -> PartitionPolicy:
    """The validated PartitionPolicy of postgres_partition's options (refusals before any connection)."""
    interval = params.get("interval")
    if isinstance(interval, str) and interval.strip().isdigit():
        interval = int(interval)
    elif isinstance(interval, str):
        interval = " ".join(interval.strip().lower().split())
    anchor = _anchor(params.get("interval_anchor"), interval)
    for suffix in (params.get("list_partitions") or {}):
        if not PLAIN_NAME.match(str(suffix)):
            raise PlanError("list_partitions key %r is not a plain name suffix (letters, digits, '_')" % (suffix,))
    if params.get("tablespace") is not None and not PLAIN_NAME.match(params["tablespace"]):
        raise PlanError("tablespace %r is not a plain name" % (params["tablespace"],))
    premake, backfill = params.get("premake", 12), params.get("backfill", 0)
    if premake is not None and premake < 0 or backfill is not None and backfill < 0:
        raise PlanError("premake and backfill must be 0 or more (got premake=%s, backfill=%s)" % (premake, backfill))
    validate_lock_timeout(params.get("lock_timeout", "3s"))
    for option, default in (("retries", 5), ("run_lock_wait", 60)):
        validate_count(option, params.get(option, default))
    check_template_text(params.get("name_template"))
    modes = {}
    for option, choices in (("default_rows", DEFAULT_ROWS_MODES), ("gaps", GAPS_MODES),
                            ("list_new_values", LIST_NEW_VALUES_MODES), ("inherit", INHERIT_MODES)):
        value = params.get(option) or choices[0]
        if value not in choices:
            raise PlanError("%s must be one of %s, not %r" % (option, ", ".join(choices), value))
        modes[option] = value
    for option, default in (("drain_max_partitions", 120), ("drain_batch_rows", 10000)):
        if validate_count(option, params.get(option, default) if params.get(option) is not None else default) < 1:
            raise PlanError("%s must be 1 or more" % option)
    pause = params.get("drain_pause") or 0
    if isinstance(pause, bool) or not isinstance(pause, (int, float)) or pause < 0:
        raise PlanError("drain_pause must be a number of seconds, 0 or more, not %r" % (pause,))
    template = params.get("template_table")
    return PartitionPolicy(
        drain_max_partitions=params.get("drain_max_partitions") or 120,
        drain_batch_rows=params.get("drain_batch_rows") or 10000, drain_pause=float(pause), **modes,
        interval=interval, interval_anchor=anchor, premake=premake, backfill=backfill, epoch=params.get("epoch"),
        reference_time=parse_reference_time(params.get("reference_time")),
        timezone=params.get("timezone") or "UTC", name_template=params.get("name_template"),
        default_partition=bool(params.get("default_partition")), list_partitions=params.get("list_partitions"),
        hash_modulus=params.get("hash_modulus"), tablespace=params.get("tablespace"),
        retention=parse_retention(params["retention"]) if params.get("retention") is not None else None,
        template_table=parse_table_name(template, "template_table") if template is not None else None,
        subpartition=parse_subpartition(params.get("subpartition")),
    )
