# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the fleet partition report, judged and rendered as one self-contained HTML page.
# Pure: the gathered results and the time of the report come in, the HTML text goes out; no clock, no Ansible.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention import TimeRetention, parse_retention

OK, WARNING, CRITICAL = "ok", "warning", "critical"
_RANK = {OK: 0, WARNING: 1, CRITICAL: 2}
_MARK = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}
JOBS = ("create", "retention", "brin", "backup")
UTC = dt.timezone.utc
_UNBOUNDED = ("MINVALUE", "MAXVALUE")


@dataclass(frozen=True)
class Thresholds:
    """When a table turns warning or critical. Per host: the role's variables may differ between hosts."""

    min_runway: int = 2  # critical below this many partitions ahead
    runway_warning: Optional[int] = None  # warning below this; None means min_runway + 1
    default_rows_critical: int = 10000  # rows in the default partition: warning from 1, critical from this
    job_max_age_hours: Dict[str, float] = field(
        default_factory=lambda: {"create": 26, "retention": 170, "brin": 26, "backup": 26})

    @property
    def runway_warning_below(self) -> int:
        return self.min_runway + 1 if self.runway_warning is None else self.runway_warning


@dataclass(frozen=True)
class Finding:
    state: str
    text: str


@dataclass(frozen=True)
class TableReport:
    """One row of the summary and one timeline: a policy table of a host, or the host itself when unreadable."""

    host: str
    database: str
    table: str
    findings: Tuple[Finding, ...]
    facts: Optional[dict] = None
    jobs: Tuple[Tuple[str, str, str], ...] = ()  # (job, shown text, tooltip)
    retention: Any = None
    in_recovery: bool = False

    @property
    def state(self) -> str:
        return max((finding.state for finding in self.findings), key=_RANK.get, default=OK)


def worst(states) -> str:
    return max(states, key=_RANK.get, default=OK)


# ---------------------------------------------------------------------------------------------------- judging


def parse_instant(text) -> Optional[dt.datetime]:
    """ISO text (date, naive or aware date-time, any fraction) as aware UTC; naive values are UTC."""
    if not text or not isinstance(text, str) or text in _UNBOUNDED:
        return None
    text = re.sub(r"\.\d+", "", text.strip().replace("Z", "+00:00"))
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _hours_ago(stamp: dt.datetime, now: dt.datetime) -> float:
    return round((now - stamp).total_seconds() / 3600, 1)


def _judge_jobs(status: dict, item: dict, in_recovery: bool, now: dt.datetime, thresholds: Thresholds,
                schedule: dict):
    """The summary cells of the jobs (job, text, tooltip) and the findings of those that are late.

    `schedule` says what the host runs on its own: `scheduled` false (the role's scheduler `none`) means no job
    is expected to have run; `backups` false (the backup role's state `absent`) means no backup job is."""
    wanted = {"create": True, "retention": item.get("retention") is not None,
              "brin": item.get("brin") not in (None, False),
              "backup": bool(item.get("backup")) and schedule.get("backups", True)}
    cells, findings = [], []
    for job in JOBS:
        if not wanted[job]:
            cells.append((job, "n/a", "not in this table's policy"))
            continue
        if not schedule.get("scheduled", True):
            cells.append((job, "not scheduled", "pgfleet_partitions_scheduler is none on this host"))
            continue
        record = status.get(job) or {}
        # On a hot standby the runner skips every job, so there the last start shows it is scheduled and running.
        stamp = parse_instant(record.get("last_start" if in_recovery else "last_success"))
        limit = float(thresholds.job_max_age_hours.get(job, 26))
        error = record.get("last_error")
        if stamp is None:
            cells.append((job, "never", error or "no successful run in the status file"))
            findings.append(Finding(CRITICAL, "%s has never succeeded%s" % (job, ": %s" % error if error else "")))
            continue
        hours = _hours_ago(stamp, now)
        cells.append((job, _age(now - stamp), stamp.isoformat()))
        if hours > limit:
            findings.append(Finding(CRITICAL, "%s last succeeded %sh ago, more than %sh%s"
                                    % (job, hours, _number(limit), ": %s" % error if error else "")))
    return tuple(cells), findings


def _age(delta: dt.timedelta) -> str:
    """How long ago, as a person says it: minutes under two hours, hours under two days, then days."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 120:
        return "%d min" % minutes
    if minutes < 48 * 60:
        return "%d h" % (minutes // 60)
    return "%d days" % (minutes // (24 * 60))


def _partitions(count: int) -> str:
    return "%d partition%s" % (count, "" if count == 1 else "s")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _judge_facts(facts: dict, settings: dict, thresholds: Thresholds) -> List[Finding]:
    findings = []
    runway = facts.get("runway")
    if facts.get("strategy") == "range" and runway is not None:
        ahead = runway.get("partitions") or 0
        if runway.get("current") is None:
            findings.append(Finding(CRITICAL, "no partition holds the reference %s: new rows go to the default "
                                              "partition or fail" % facts.get("reference")))
        elif ahead < thresholds.min_runway:
            findings.append(Finding(CRITICAL, "runway %s (%s), below %s"
                                    % (_partitions(ahead), _span(runway), thresholds.min_runway)))
        elif ahead < thresholds.runway_warning_below:
            findings.append(Finding(WARNING, "runway %s (%s), close to the minimum %s"
                                    % (_partitions(ahead), _span(runway), thresholds.min_runway)))
    gaps = facts.get("gaps") or []
    if gaps:
        findings.append(Finding(WARNING, "%d gap%s: %s" % (len(gaps), "" if len(gaps) == 1 else "s", ", ".join(
            "[%s, %s)" % (_short(gap.get("lower")), _short(gap.get("upper"))) for gap in gaps))))
    rows = facts.get("default_rows") or 0
    if rows:
        state = CRITICAL if rows >= thresholds.default_rows_critical else WARNING
        findings.append(Finding(state, "%s rows in the default partition" % format(rows, ",")))
    # The three below need fields postgres_partition_info may not return yet; they are judged when present.
    if str(settings.get("enable_partition_pruning", "on")).lower() in ("off", "false", "0"):
        findings.append(Finding(WARNING, "enable_partition_pruning is off: every query scans every partition"))
    # An empty set loses nothing without statistics; one whose partitions hold rows plans blind across them.
    holds_rows = any((partition.get("rows_estimate") or 0) > 0 for partition in facts.get("partitions") or [])
    if facts.get("parent_analyzed") is False and holds_rows:
        findings.append(Finding(WARNING, "the partitioned table has never been analyzed (autovacuum does not "
                                         "analyze parents): run ANALYZE on it"))
    lacking = ["%s (%s)" % (partition["name"], ", ".join(partition["missing_indexes"]))
               for partition in facts.get("partitions") or [] if partition.get("missing_indexes")]
    if lacking:
        findings.append(Finding(WARNING, "partitions without the parent's indexes: %s" % "; ".join(lacking)))
    return findings


def _result_error(result: dict) -> Optional[str]:
    if result.get("unreachable") or result.get("failed"):
        return str(result.get("msg") or "failed without a message")
    return None


def judge_host(host: str, gathered: Optional[dict], now: dt.datetime, thresholds: Thresholds) -> List[TableReport]:
    """The rows of one host from what report.yml gathered there.

    `gathered` holds `info` (the registered loop of postgres_partition_info over the resolved policy items),
    `status` (the runner's status file, parsed; None when absent), and `unreachable`/`failed`/`msg` when the
    host could not be read at all. None means the play never reached the host.
    """
    if gathered is None:
        return [TableReport(host, "", "", (Finding(CRITICAL, "no facts gathered: the host was not in this run"),))]
    results = list((gathered.get("info") or {}).get("results") or [])
    unreachable = gathered.get("unreachable") or any(result.get("unreachable") for result in results)
    if unreachable or gathered.get("failed"):
        reason = gathered.get("msg") or next(filter(None, map(_result_error, results)), None) or "no message"
        kind = "unreachable" if unreachable else "failed"
        return [TableReport(host, "", "", (Finding(CRITICAL, "host %s: %s" % (kind, reason)),))]
    if not results:
        return [TableReport(host, "", "", (Finding(OK, "no tables in this host's policy"),))]
    status_tables = (gathered.get("status") or {}).get("tables") or {}
    reports = []
    for result in results:
        item = result.get("item") or {}
        database = item.get("db", "")
        error = _result_error(result)
        tables = result.get("tables") or {}
        if error or not tables:
            reports.append(TableReport(host, database, item.get("table", ""),
                                       (Finding(CRITICAL, "cannot read the table: %s" % (error or "not found")),)))
            continue
        name, facts = next(iter(tables.items()))
        in_recovery = bool(result.get("in_recovery"))
        status = status_tables.get("%s/%s" % (database, name)) or status_tables.get(item.get("key", "")) or {}
        jobs, findings = _judge_jobs(status, item, in_recovery, now, thresholds, gathered)
        findings = _judge_facts(facts, result.get("settings") or {}, thresholds) + findings
        retention = (item.get("retention") or {}).get("retention")
        reports.append(TableReport(host, database, name, tuple(findings) or (Finding(OK, "healthy"),), facts, jobs,
                                   retention, in_recovery))
    return reports


def judge(hosts: Dict[str, Optional[dict]], now: dt.datetime, thresholds: Dict[str, Thresholds]) -> List[TableReport]:
    """Every row of the report, worst first, then by host, database and table."""
    rows = [row for host in hosts for row in judge_host(host, hosts[host], now, thresholds.get(host, Thresholds()))]
    return sorted(rows, key=lambda row: (-_RANK[row.state], row.host, row.database, row.table))


# ---------------------------------------------------------------------------------------------------- rendering


def _short(value) -> str:
    """A bound or reference as a person reads it: midnights as dates, other times to the minute."""
    moment = parse_instant(value) if isinstance(value, str) else None
    if moment is None:
        return "" if value is None else str(value)
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M")


def _span(runway: dict) -> str:
    """The runway's reach in whole days for time keys (hours under two days), key units for integer keys."""
    interval = runway.get("interval")
    if runway.get("iso") is None or not isinstance(interval, (int, float)):
        return str(runway.get("text"))
    hours = int(interval // 3600)
    return "%d h" % hours if hours < 48 else "%d days" % (hours // 24)


def _size(count: Optional[int]) -> str:
    value = float(count or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (value, unit)
        value /= 1024
    raise AssertionError("unreachable")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _position(value, time_key: bool) -> Optional[float]:
    """A key value on the axis: seconds since the epoch for time keys, the number itself for integer keys."""
    if value is None or value in _UNBOUNDED:
        return None
    if time_key:
        moment = parse_instant(value)
        return None if moment is None else moment.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def retention_cutoff(facts: dict, retention) -> Optional[Any]:
    """reference - retention, as the retention job computes it (ISO text for time keys, a number for integers)."""
    reference = facts.get("reference")
    if retention is None or reference is None:
        return None
    try:
        parsed = parse_retention(retention)
    except PlanError:
        return None
    if isinstance(parsed, TimeRetention):
        moment = parse_instant(reference)
        return None if moment is None else parsed.before(moment).isoformat()
    return parsed.before(int(reference)) if isinstance(reference, (int, float)) else None


_WIDTH, _LEFT, _RIGHT_DEFAULT = 960, 10, 130  # the default partition's box sits right of the axis
_BAND_TOP, _BAND_HEIGHT = 34, 30


def _rect(x: float, width: float, css: str, title: str, y: int = _BAND_TOP, height: int = _BAND_HEIGHT) -> str:
    return ('<rect class="%s" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s</title></rect>'
            % (css, x, y, max(width, 1.0), height, _e(title)))


def _text(x: float, y: int, words: str, css: str = "", anchor: str = "start") -> str:
    return '<text x="%.1f" y="%d" text-anchor="%s"%s>%s</text>' % (
        x, y, anchor, ' class="%s"' % css if css else "", _e(words))


def _anchor(x: float) -> str:
    return "end" if x > _WIDTH - _RIGHT_DEFAULT - 150 else "start"


def _default_box(facts: dict) -> List[str]:
    default = next((p for p in facts.get("partitions") or [] if p.get("is_default")), None)
    if default is None:
        return []
    rows = facts.get("default_rows") or 0
    x = _WIDTH - _RIGHT_DEFAULT + 20
    css = "p-default-rows" if rows else "p-default"
    return [_rect(x, _RIGHT_DEFAULT - 30, css, "%s: default partition, %s rows, %s"
                  % (default["name"], format(rows, ","), _size(default.get("size_bytes")))),
            _text(x + 4, _BAND_TOP + 19, "default %s rows" % format(rows, ","), "on-block")]


_MAX_BLOCKS = 60  # a timeline's width holds about this many distinct blocks; more would be slivers and megabytes


def _blocks(partitions: Sequence[Tuple[dict, Tuple[str, str]]]) -> List[List[Tuple[dict, Tuple[str, str]]]]:
    """The blocks a timeline draws: one per partition up to _MAX_BLOCKS partitions, beyond that consecutive
    partitions of the same role that touch each other share a block (daily sets over years stay a few kB)."""
    per_block = -(-len(partitions) // _MAX_BLOCKS)
    blocks: List[List[Tuple[dict, Tuple[str, str]]]] = []
    for partition, role in partitions:
        current = blocks[-1] if blocks else None
        if (current is not None and len(current) < per_block and current[-1][1] == role
                and current[-1][0].get("upper") == partition.get("lower")):
            current.append((partition, role))
        else:
            blocks.append([(partition, role)])
    return blocks


def _range_timeline(facts: dict, retention) -> List[str]:
    time_key = not isinstance(facts.get("reference"), (int, float))
    partitions = [p for p in facts.get("partitions") or [] if not p.get("is_default") and "lower" in p]
    reference = _position(facts.get("reference"), time_key)
    cutoff_value = retention_cutoff(facts, retention)
    cutoff = _position(cutoff_value, time_key)
    runway = facts.get("runway") or {}
    until = _position(runway.get("until"), time_key)
    points = [position for p in partitions for position in (_position(p.get("lower"), time_key),
                                                            _position(p.get("upper"), time_key))]
    points = [point for point in points + [reference, cutoff, until] if point is not None]
    if not points:
        return [_text(_LEFT, _BAND_TOP + 19, "no bounded partitions")] + _default_box(facts)
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    low, high = low - span * 0.03, high + span * 0.03
    scale = (_WIDTH - _RIGHT_DEFAULT - _LEFT) / (high - low)

    def x_of(value: Optional[float], unbounded_at: float) -> float:
        return unbounded_at if value is None else _LEFT + (value - low) * scale

    axis_end = _WIDTH - _RIGHT_DEFAULT
    parts, gap_labels = [], []

    def role_of(partition) -> Tuple[str, str]:
        upper = _position(partition.get("upper"), time_key)
        if cutoff is not None and upper is not None and upper <= cutoff:
            return "p-expired", "expires at the next retention run"
        if partition["name"] == runway.get("current"):
            return "p-current", "current"
        if reference is not None and upper is not None and upper <= reference:
            return "p-past", "past"
        return "p-ahead", "ahead"

    for run in _blocks([(partition, role_of(partition)) for partition in partitions]):
        first, last = run[0][0], run[-1][0]
        css, role = run[0][1]
        start = x_of(_position(first.get("lower"), time_key), _LEFT)
        end = x_of(_position(last.get("upper"), time_key), axis_end)
        members = [partition for partition, _role in run]
        size = _size(sum(partition.get("size_bytes") or 0 for partition in members))
        rows = format(sum(int(partition.get("rows_estimate") or 0) for partition in members), ",")
        if len(run) == 1:
            title = "%s [%s, %s): %s, %s, ~%s rows" % (
                first["name"], _short(first.get("lower")), _short(last.get("upper")), role, size, rows)
        else:
            title = "%d partitions %s ... %s [%s, %s): %s, %s, ~%s rows" % (
                len(run), first["name"], last["name"], _short(first.get("lower")), _short(last.get("upper")), role,
                size, rows)
        parts.append(_rect(start, end - start, css, title))
    for gap in facts.get("gaps") or []:
        start = x_of(_position(gap.get("lower"), time_key), _LEFT)
        end = x_of(_position(gap.get("upper"), time_key), axis_end)
        parts.append(_rect(start, end - start, "p-gap", "gap [%s, %s): no partition, rows go to the default "
                           "partition or fail" % (_short(gap.get("lower")), _short(gap.get("upper")))))
        parts.append(_text((start + end) / 2, _BAND_TOP + _BAND_HEIGHT + 14, "gap", "gap-label", "middle"))
        gap_labels.append((start + end) / 2)
    if partitions:
        first_x = x_of(_position(partitions[0].get("lower"), time_key), _LEFT)
        last_x = x_of(_position(partitions[-1].get("upper"), time_key), axis_end)
        parts.append(_text(first_x, _BAND_TOP + _BAND_HEIGHT + 14, _short(partitions[0].get("lower"))))
        parts.append(_text(last_x, _BAND_TOP + _BAND_HEIGHT + 14, _short(partitions[-1].get("upper")), "", "end"))
        parts.extend(_ticks(partitions, time_key, x_of, first_x, last_x, gap_labels))
    if reference is not None and until is not None and until > reference:
        start, end = x_of(reference, _LEFT), x_of(until, axis_end)
        y = _BAND_TOP + _BAND_HEIGHT + 24
        parts.append('<line class="runway" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (start, y, end, y))
        parts.append(_text(end, y + 14, "runway %s (%s) until %s"
                           % (_partitions(runway.get("partitions") or 0), _span(runway),
                              _short(runway.get("until"))),
                           "runway-label", "end" if end - _LEFT > 300 else "start"))
    if cutoff is not None:
        x = x_of(cutoff, _LEFT)
        parts.append('<line class="cutoff" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                     % (x, 16, x, _BAND_TOP + _BAND_HEIGHT + 4))
        parts.append(_text(x, 14, "retention cutoff %s (%s)" % (_short(cutoff_value), retention), "", _anchor(x)))
    if reference is not None:
        x = x_of(reference, _LEFT)
        parts.append('<line class="reference" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                     % (x, 20, x, _BAND_TOP + _BAND_HEIGHT + 4))
        parts.append(_text(x, 28, "reference %s" % _short(facts.get("reference")), "", _anchor(x)))
    return parts + _default_box(facts)


def _label(partition_name: str, table: str) -> str:
    """A partition's name without its table's, which every block would repeat: events_2026_03 -> 2026_03."""
    prefix = table.rsplit(".", 1)[-1] + "_"
    if partition_name.startswith(prefix) and partition_name != prefix:
        return partition_name[len(prefix):]
    return partition_name


def _ticks(partitions, time_key: bool, x_of, first_x: float, last_x: float, taken: Sequence[float]) -> List[str]:
    """Labels at partition boundaries between the two end labels, as many as fit without touching each other or
    the labels already `taken` on that line (the gaps')."""
    # Bound labels are up to 16 characters of 11px text (80px at most); the end labels reach inwards, ticks are
    # centred on their boundary.
    room, ticks, last_label = 85.0, [], first_x + 45.0
    for partition in partitions[1:]:
        x = x_of(_position(partition.get("lower"), time_key), first_x)
        clear = all(abs(x - other) >= room / 2 + 10 for other in taken)
        if x - last_label >= room and last_x - x >= room + 45 and clear:
            ticks.append('<line class="tick" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                         % (x, _BAND_TOP + _BAND_HEIGHT, x, _BAND_TOP + _BAND_HEIGHT + 4))
            ticks.append(_text(x, _BAND_TOP + _BAND_HEIGHT + 14, _short(partition.get("lower")), "tick-label",
                               "middle"))
            last_label = x
    return ticks


def _block_timeline(facts: dict, table: str) -> List[str]:
    """LIST and HASH sets have no axis: their partitions side by side, in the order the module lists them."""
    partitions = [p for p in facts.get("partitions") or [] if not p.get("is_default")]
    if not partitions:
        return [_text(_LEFT, _BAND_TOP + 19, "no partitions")] + _default_box(facts)
    width = (_WIDTH - _RIGHT_DEFAULT - _LEFT) / len(partitions)
    parts = []
    for index, partition in enumerate(partitions):
        bounds = partition.get("values", "remainder %s of %s" % (partition.get("remainder"), partition.get("modulus")))
        x = _LEFT + index * width
        parts.append(_rect(x + 1, width - 2, "p-ahead", "%s %s: %s, ~%s rows" % (
            partition["name"], bounds, _size(partition.get("size_bytes")),
            format(int(partition.get("rows_estimate") or 0), ","))))
        label = _label(partition["name"], table)
        if width > 7 * len(label) + 8:
            parts.append(_text(x + 4, _BAND_TOP + 19, label, "on-block"))
    return parts + _default_box(facts)


def timeline_svg(row: TableReport) -> str:
    facts = row.facts or {}
    body = (_range_timeline(facts, row.retention) if facts.get("runway") is not None
            else _block_timeline(facts, row.table))
    return ('<svg class="timeline" viewBox="0 0 %d 112" role="img" aria-label="partitions of %s">%s</svg>'
            % (_WIDTH, _e(row.table), "".join(body)))


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1b1b}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;
vertical-align:top}th{background:#eee}td.num{text-align:right}
.state{font-weight:bold;padding:1px 6px;border-radius:3px;white-space:nowrap}
.s-ok{background:#d6f0d6;color:#0b4d0b}.s-warning{background:#ffe9a8;color:#5c4100}
.s-critical{background:#f7c4c4;color:#7a0000}
section.table{border:1px solid #ccc;margin:1em 0;padding:.3em .8em}h2{margin-top:1.5em}
svg.timeline{width:100%;height:auto;max-width:960px;font-size:11px}
.p-ahead{fill:#9fc7e8;stroke:#fff}.p-current{fill:#2f6fa3;stroke:#fff}.p-past{fill:#c9d3dc;stroke:#fff}
.p-expired{fill:url(#hatch-expired);stroke:#7a0000}.p-gap{fill:url(#hatch-gap);stroke:#7a0000}
.p-default{fill:#e3e3e3;stroke:#666}.p-default-rows{fill:#f3b2b2;stroke:#7a0000;stroke-width:2}
.on-block{fill:#000}.gap-label{fill:#7a0000;font-weight:bold}.runway{stroke:#0b4d0b;stroke-width:3}
.runway-label{fill:#0b4d0b}.cutoff{stroke:#7a0000;stroke-width:2;stroke-dasharray:4 3}
.reference{stroke:#000;stroke-width:2}ul.findings{margin:.2em 0}.tick{stroke:#666}.tick-label{fill:#444}
td.nowrap{white-space:nowrap}
.legend span{margin-right:1.2em}.swatch{display:inline-block;width:1.4em;height:.9em;vertical-align:middle;
border:1px solid #666}
"""

# One definition of the hatchings, referenced by every timeline: they read without colour too.
_PATTERNS = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="hatch-expired" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    '<rect width="6" height="6" fill="#f3d0d0"/><line x1="0" y1="0" x2="0" y2="6" stroke="#7a0000" stroke-width="2"/>'
    '</pattern>'
    '<pattern id="hatch-gap" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<rect width="6" height="6" fill="#fff"/><path d="M0 0L6 6M6 0L0 6" stroke="#b00000" stroke-width="1.2"/>'
    '</pattern></defs></svg>'
)

_LEGEND = (
    '<p class="legend">'
    + "".join('<span><svg width="22" height="12"><rect class="%s" width="22" height="12"/></svg> %s</span>' % pair
              for pair in (("p-past", "past"), ("p-current", "holds the reference"), ("p-ahead", "ahead (runway)"),
                           ("p-expired", "removed by the next retention run"), ("p-gap", "gap"),
                           ("p-default-rows", "default partition with rows")))
    + "</p>"
)


def _state_badge(state: str) -> str:
    return '<span class="state s-%s" data-state="%s">%s</span>' % (state, state, _MARK[state])


def _findings(row: TableReport) -> str:
    return '<ul class="findings">%s</ul>' % "".join(
        '<li class="f-%s">%s %s</li>' % (finding.state, _MARK[finding.state], _e(finding.text))
        for finding in sorted(row.findings, key=lambda finding: -_RANK[finding.state]))


def _table_size(row: TableReport) -> int:
    return sum(p.get("size_bytes") or 0 for p in (row.facts or {}).get("partitions") or [])


def _summary_row(row: TableReport) -> str:
    facts = row.facts or {}
    runway = facts.get("runway")
    runway_text = "" if not facts else ("%s, %s" % (_partitions(runway.get("partitions") or 0), _span(runway))
                                        if runway else "n/a (%s)" % facts.get("strategy"))
    default_rows = facts.get("default_rows")
    jobs = dict((job, (text, tooltip)) for job, text, tooltip in row.jobs)
    cells = [_state_badge(row.state), _e(row.host), _e(row.database),
             '<a href="#%s">%s</a>' % (_anchor_id(row), _e(row.table)) if row.facts else _e(row.table),
             _e(runway_text), _e(len(facts.get("gaps") or []) if facts else ""),
             _e("" if default_rows is None else format(default_rows, ",")),
             _e(_size(_table_size(row)) if facts else "")]
    cells += ['<span title="%s">%s</span>' % (_e(jobs[job][1]), _e(jobs[job][0])) if job in jobs else ""
              for job in ("create", "retention", "brin")]
    cells.append("; ".join(_e(f.text) for f in sorted(row.findings, key=lambda finding: -_RANK[finding.state])))
    classes = ((' class="nowrap"',) * 3 + ("", "") + (' class="num"',) * 2 + (' class="num nowrap"',)
               + (' class="nowrap"',) * 3 + (' class="findings"',))
    return '<tr data-host="%s" data-table="%s" data-state="%s">%s</tr>' % (
        _e(row.host), _e(_table_key(row)), row.state,
        "".join("<td%s>%s</td>" % (css, cell) for css, cell in zip(classes, cells)))


def _table_key(row: TableReport) -> str:
    return "%s/%s" % (row.database, row.table) if row.table else ""


def _anchor_id(row: TableReport) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_.-]", "_", "%s-%s-%s" % (row.host, row.database, row.table))


def _host_section(host: str, rows: Sequence[TableReport]) -> str:
    state = worst(row.state for row in rows)
    standby = " (hot standby)" if any(row.in_recovery for row in rows) else ""
    parts = ['<section class="host" data-host="%s" data-state="%s"><h2>%s %s%s</h2>'
             % (_e(host), state, _state_badge(state), _e(host), standby)]
    for row in rows:
        if not row.facts:
            parts.append('<div class="hostnote" data-table="%s">%s</div>' % (_e(_table_key(row)), _findings(row)))
            continue
        facts = row.facts
        parts.append(
            '<section class="table" id="%s" data-host="%s" data-table="%s" data-state="%s">'
            '<h3>%s %s / %s <small>%s on %s (%s), %d partitions</small></h3>%s%s</section>'
            % (_anchor_id(row), _e(host), _e(_table_key(row)), row.state, _state_badge(row.state),
               _e(row.database), _e(row.table), _e(facts.get("strategy")), _e(facts.get("key")),
               _e(facts.get("key_type")), len(facts.get("partitions") or []), _findings(row), timeline_svg(row)))
    return "".join(parts) + "</section>"


def render(rows: Sequence[TableReport], generated_at: dt.datetime, title: str = "Partition report") -> str:
    """The whole page: summary first (rows as judge() sorted them), then one section per host, worst first."""
    counts = {state: sum(1 for row in rows if row.state == state) for state in (CRITICAL, WARNING, OK)}
    hosts: Dict[str, List[TableReport]] = {}
    for row in rows:
        hosts.setdefault(row.host, []).append(row)
    head = ("<th>state</th><th>host</th><th>database</th><th>table</th><th>runway</th><th>gaps</th>"
            "<th>default rows</th><th>size</th><th>create</th><th>retention</th><th>brin</th><th>findings</th>")
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        'img-src data:">',
        "<title>%s</title><style>%s</style></head><body>" % (_e(title), _CSS),
        _PATTERNS,
        "<h1>%s</h1><p>Generated %s. %s</p>" % (
            _e(title), _e(generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")),
            ", ".join('%s <span class="state s-%s">%s</span>' % (counts[state], state, _MARK[state])
                      for state in counts)),
        '<table id="summary"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>'
        % (head, "".join(_summary_row(row) for row in rows)),
        "<p>create, retention, brin: time since the runner's last successful run of that job (its last start on a "
        "hot standby); n/a when the table's policy has no such job.</p>",
        _LEGEND,
        "".join(_host_section(host, host_rows) for host, host_rows in hosts.items()),
        "</body></html>\n",
    ])
