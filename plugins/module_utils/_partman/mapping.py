# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: a pg_partman set (its part_config row, 4.x or 5.x layout, and its partitions as the
# catalog has them) as the equivalent policy item of this collection, and the settings that have no equivalent.
# Pure: nothing is inferred from partition names, the grid's anchor comes from the bounds.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.keygrid import EPOCH_SCALE
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import RangeBounds, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import ordered
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import TimeGrid, anchor_fitting

# Settings whose value here means what this collection does anyway; any other value is listed.
SAME_AS_OURS = {
    "partition_type": ("native", "range"), "upsert": ("",), "inherit_fk": (True,), "publications": (None,),
    "constraint_cols": (None,), "drop_cascade_fk": (False,), "constraint_valid": (True,), "undo_in_progress": (False,),
    "trigger_return_null": (True,), "trigger_exception_handling": (False,), "subscription_refresh": (None,),
    "retention_keep_index": (True,), "retention_keep_publication": (False, None), "infinite_time_partitions": (True,),
    "inherit_privileges": (True,), "ignore_default_data": (False,), "date_trunc_interval": (None,),
    "maintenance_order": (None,), "sub_partition_set_full": (False,), "time_encoder": (None,), "time_decoder": (None,),
    "async_partitioning_in_progress": (None,), "jobmon": (False,),
}
# Read into the policy, or bookkeeping of pg_partman's own.
MAPPED = ("parent_table", "control", "partition_interval", "premake", "epoch", "retention", "retention_schema",
          "retention_keep_table", "template_table", "datetime_string", "automatic_maintenance", "default_table",
          "maintenance_last_run", "optimize_trigger", "optimize_constraint")
WHY = {
    "jobmon": "pg_jobmon logging: this collection reports in task results, the runner's status file and metrics",
    "infinite_time_partitions": "this collection premakes from now whether or not new rows arrive; pg_partman did "
                                "so only from the newest row",
    "inherit_privileges": "this collection gives new partitions the parent's privileges (inherit: new)",
    "retention_keep_index": "a detached partition keeps its indexes here",
    "constraint_cols": "no extra constraints are added on older partitions",
    "publications": "partitions are not added to publications",
    "undo_in_progress": "pg_partman is undoing this set's partitioning: migrate after it finished",
    "time_encoder": "bounds are the smallest UUIDv7 of each interval start, checked against the set's bounds",
    "time_decoder": "see time_encoder",
}
_CLOCK = re.compile(r"(?:(\d+) days? )?(\d+):(\d\d):(\d\d)$")
_UNIT_TEXT = re.compile(r"^(\d+) (year|mon|day)s?$")
_NAME_TOKENS = (("IYYY", "{isoyear}"), ("YYYY", "{year}"), ('"w"IW', "w{week}"), ("IW", "{week}"),
                ('"q"Q', "q{quarter}"), ("HH24", "{hour}"), ("MM", "{month}"), ("DD", "{day}"), ("MI", "{minute}"))


@dataclass
class MappedSet:
    """One pg_partman set: the policy item (None when it cannot be expressed), what has no equivalent, and why a set
    cannot be migrated (None when it can)."""

    table: str
    automatic_maintenance: str
    item: Optional[dict] = None
    unmapped: List[dict] = field(default_factory=list)
    refusal: Optional[str] = None


def _grid_interval(text: str) -> Optional[str]:
    """pg_partman's partition_interval as printed by PostgreSQL ('00:15:00', '14 days', '3 mons') as our interval."""
    clock = _CLOCK.match(text)
    if clock:
        days, hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
        if total <= 0 or total % 60:
            return None
        if total % 3600:
            return "%d minutes" % (total // 60)
        return "hour" if total == 3600 else "%d hours" % (total // 3600)
    unit = _UNIT_TEXT.match(text)
    if not unit:
        return None
    count, name = int(unit.group(1)), unit.group(2)
    if name == "day" and count % 7 == 0:
        count, name = count // 7, "week"
    if name == "mon":
        name = "month"
    return name if count == 1 else "%d %ss" % (count, name)


def _retention(value: Any, key_kind: str, epoch: Optional[str]) -> Tuple[Any, Optional[str]]:
    """(our retention, None) or (None, why it cannot be expressed)."""
    text = str(value).strip()
    if key_kind == "integer" and not epoch:
        return (int(text), None) if text.isdigit() else (None, "not a whole number of key units")
    clock = _CLOCK.search(text)
    words = _CLOCK.sub("", text).strip() if clock else text
    parts = ["%s %s" % (count, unit) for count, unit in re.findall(r"(\d+) (year|mon|day)s?", words)]
    if clock:
        days, hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        parts += ["%d days" % days] * bool(days) + ["%d hours" % hours] * bool(hours)
        parts += ["%d minutes" % minutes] * bool(minutes) + ["%d seconds" % seconds] * bool(seconds)
    if not parts:
        return None, "not an interval this collection reads"
    if not epoch:
        return " ".join(parts), None
    if re.search(r"year|mon", words):
        return None, "months and years have no fixed length in %s" % epoch
    seconds = 0
    for part in parts:
        count, unit = part.split()
        seconds += int(count) * {"day": 86400, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}[unit]
    return seconds * EPOCH_SCALE[epoch], None


def _name_template(datetime_string: Optional[str], key_kind: str, epoch: Optional[str]) -> Optional[str]:
    """pg_partman's names, <parent>_p<datetime_string> (or <parent>_p<lower> for ids), as a name_template."""
    if key_kind == "integer" and not epoch:
        return "{parent}_p{lower}"
    text = datetime_string or ""
    for token, replacement in _NAME_TOKENS:
        text = text.replace(token, replacement)
    return "{parent}_p" + text if text and not re.search(r"[A-Z]", text) else None


def _anchor(state: TableState, interval: str, timezone: str, epoch: Optional[str]) -> Tuple[Any, Optional[str]]:
    """The interval_anchor that puts every partition of the set on the grid: None (the default) when that one does;
    (None, refusal) when no anchor does."""
    ranges = [p for p in ordered(state.partitions) if isinstance(p.bounds, RangeBounds)]
    key_type = "timestamp with time zone" if epoch else state.key_type
    if key_type not in ("timestamp with time zone", "uuid"):
        timezone = "UTC"  # naive keys are their own wall time
    grid = TimeGrid(interval, key_type, timezone, epoch=epoch)

    def fits(candidate):
        return all(candidate.on_grid(p.bounds.lower) and candidate.on_grid(p.bounds.upper) for p in ranges)

    if not ranges or fits(grid):
        return None, None
    anchor = anchor_fitting(grid, ranges[0].bounds.lower)
    if anchor is not None and fits(TimeGrid(interval, key_type, timezone, epoch=epoch, anchor=anchor)):
        return anchor.isoformat(" "), None
    return None, ("its partitions do not lie on one grid of %s (first: %s.%s); this collection infers nothing from "
                  "names" % (interval, ranges[0].schema, ranges[0].name))


_OLD_WORDS = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month", "quarterly": "quarter",
              "yearly": "year"}


def _subpartition(row: dict, sub: dict) -> Tuple[Optional[dict], Optional[str]]:
    """create_sub_parent's template (a part_config_sub row) as our subpartition option, or why it has none."""
    text = str(sub.get("sub_partition_interval") or "")
    interval = _OLD_WORDS.get(text) or _grid_interval(text)
    if sub.get("sub_control") != row.get("control") or sub.get("sub_epoch") not in (None, "none") or not interval:
        return None, ("sub-partitioned by %s every %s: only a finer time interval of the key itself has an "
                      "equivalent" % (sub.get("sub_control"), text))
    return {"strategy": "range", "column": sub["sub_control"], "interval": interval}, None


def map_set(row: dict, state: TableState, timezone: str, sub: Optional[dict] = None,
            part_of: Optional[str] = None) -> MappedSet:
    """The policy item of one pg_partman set, and every setting that has no equivalent, with why. `sub`: its
    part_config_sub row (create_sub_parent); `part_of`: the set whose partition this one is (a sub-parent)."""
    mapped = MappedSet(row["parent_table"], row.get("automatic_maintenance") or "on")
    if part_of is not None:
        mapped.unmapped.append(dict(setting="parent_table", value=row["parent_table"], note=(
            "a partition of %s, sub-partitioned by pg_partman: it stays with pg_partman, which keeps adding its "
            "sub-partitions; partitions this collection creates get all theirs at once" % part_of)))
        return mapped
    for setting in sorted(row):
        if setting in MAPPED:
            continue
        value = row[setting]
        if setting in SAME_AS_OURS and value in SAME_AS_OURS[setting] or setting == "optimize_constraint":
            continue
        mapped.unmapped.append(dict(setting=setting, value=value, note=WHY.get(setting, "no equivalent here")))
    if row.get("undo_in_progress"):
        mapped.refusal = WHY["undo_in_progress"]
    subpartition = None
    if sub is not None:
        subpartition, why = _subpartition(row, sub)
        mapped.refusal = mapped.refusal or why
        if sub.get("sub_premake") is not None:
            mapped.unmapped.append(dict(setting="sub_premake", value=sub["sub_premake"],
                                        note="new partitions get sub-partitions covering all of them"))
    kind = state.key_kind
    epoch = row.get("epoch") if row.get("epoch") not in (None, "none") else None
    interval_text = str(row.get("partition_interval") or "")
    if kind == "integer" and not epoch:
        interval, anchor = (int(interval_text) if interval_text.isdigit() else None), None
    else:
        interval = _grid_interval(interval_text)
        anchor, refusal = _anchor(state, interval, timezone, epoch) if interval else (None, None)
        mapped.refusal = mapped.refusal or refusal
    if interval is None:
        mapped.refusal = mapped.refusal or "partition_interval %r has no equivalent interval" % interval_text
    if mapped.refusal:
        return mapped
    item = dict(table=row["parent_table"], interval=interval, premake=int(row.get("premake") or 4),
                default_partition=state.default_partition is not None)
    # pg_partman steps time in the session's zone, the server's TimeZone when run by its background worker or cron.
    zoned = timezone != "UTC" and (epoch or state.key_type in ("timestamp with time zone", "uuid"))
    for option, value in (("interval_anchor", anchor), ("epoch", epoch), ("template_table", row.get("template_table")),
                          ("subpartition", subpartition),
                          ("name_template", _name_template(row.get("datetime_string"), kind, epoch)),
                          ("timezone", timezone if zoned else None)):
        if value is not None:
            item[option] = value
    if row.get("retention") is not None:
        retention, why = _retention(row["retention"], kind, epoch)
        if why:
            mapped.unmapped.append(dict(setting="retention", value=row["retention"], note=why))
        else:
            item["retention"] = retention
            item["retention_action"] = "detach" if row.get("retention_keep_table", True) else "drop"
            if row.get("retention_schema"):
                item["retention_action"], item["archive_schema"] = "detach", row["retention_schema"]
    mapped.item = item
    return mapped


def refuse_if_unmigratable(mapped: MappedSet) -> None:
    if mapped.refusal:
        raise PlanError("%s cannot be migrated: %s" % (mapped.table, mapped.refusal))
