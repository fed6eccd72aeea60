# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the fleet partition report's judging: thresholds, the findings on each table and
# host, and the state they make. Pure: the gathered results and the time of the report come in; no clock, no Ansible.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.intervals import TimeRetention, parse_retention
from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled.config import JOBS

OK, WARNING, CRITICAL = "ok", "warning", "critical"
RANK = {OK: 0, WARNING: 1, CRITICAL: 2}
UTC = dt.timezone.utc
UNBOUNDED = ("MINVALUE", "MAXVALUE")
DRIFT_SHOWN = 5  # partitions named in a drift finding; the rest are counted


@dataclass(frozen=True)
class Thresholds:
    """When a table turns warning or critical. Per host: the role's variables may differ between hosts."""

    min_runway: int = 2  # critical below this many partitions ahead
    runway_warning: Optional[int] = None  # warning below this; None means min_runway + 1
    # Rows in the default partition: warning from 1, critical from this; None, never critical.
    default_rows_critical: Optional[int] = 10000
    job_max_age_hours: Dict[str, float] = field(
        default_factory=lambda: {"create": 26, "retention": 170, "brin": 26, "backup": 26})

    @property
    def runway_warning_below(self) -> int:
        return self.min_runway + 1 if self.runway_warning is None else self.runway_warning


def host_thresholds(gathered: Optional[dict], runway_warning: Optional[int] = None,
                    default_rows_critical: Optional[int] = 10000) -> Thresholds:
    """The thresholds of one host: its min_runway and job_max_age_hours as gathered (the maintenance role's
    variables), the rest as the caller asks."""
    gathered = gathered or {}
    defaults = Thresholds()
    return Thresholds(
        min_runway=int(gathered.get("min_runway", defaults.min_runway)),
        runway_warning=None if runway_warning is None else int(runway_warning),
        default_rows_critical=None if default_rows_critical is None else int(default_rows_critical),
        job_max_age_hours=dict(defaults.job_max_age_hours, **(gathered.get("job_max_age_hours") or {})),
    )


@dataclass(frozen=True)
class Finding:
    """One thing the report says about a table, and how bad it is."""

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
        return max((finding.state for finding in self.findings), key=RANK.get, default=OK)

    @property
    def key(self) -> str:
        """The table as the policy and the status file name it, db/table; empty for a row of the host itself."""
        return "%s/%s" % (self.database, self.table) if self.table else ""

    def texts(self, state: str) -> List[str]:
        """The text of each finding in `state`, in the order they were found."""
        return [finding.text for finding in self.findings if finding.state == state]


def worst(states) -> str:
    return max(states, key=RANK.get, default=OK)


def parse_instant(text) -> Optional[dt.datetime]:
    """ISO text (date, naive or aware date-time, any fraction) as aware UTC; naive values are UTC."""
    if not text or not isinstance(text, str) or text in UNBOUNDED:
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
        failed = record.get("last_result") == "failed"
        cells.append((job, "failed" if failed else _age(now - stamp),
                      "last run failed: %s" % error if failed else stamp.isoformat()))
        if hours > limit:
            findings.append(Finding(CRITICAL, "%s last succeeded %sh ago, more than %sh%s"
                                    % (job, hours, _number(limit), ": %s" % error if error else "")))
        elif failed:
            # The last success is recent, but the run after it failed: say so tonight, not once it is too old.
            findings.append(Finding(CRITICAL, "%s failed at its last run (%s): %s"
                                    % (job, record.get("last_start") or "time unknown", error or "no message")))
    return tuple(cells), findings


def _age(delta: dt.timedelta) -> str:
    """How long ago, as a person says it: minutes under two hours, hours under two days, then days."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 120:
        return "%d min" % minutes
    if minutes < 48 * 60:
        return "%d h" % (minutes // 60)
    return "%d days" % (minutes // (24 * 60))


def partition_count(count: int) -> str:
    return "%d partition%s" % (count, "" if count == 1 else "s")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def readable(value) -> str:
    """A bound or reference as a person reads it: midnights as dates, other times to the minute."""
    moment = parse_instant(value) if isinstance(value, str) else None
    if moment is None:
        return "" if value is None else str(value)
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M")


def runway_span(runway: dict) -> str:
    """The runway's reach in whole days for time keys (hours under two days), key units for integer keys."""
    interval = runway.get("interval")
    if runway.get("iso") is None or not isinstance(interval, (int, float)):
        return str(runway.get("text"))
    hours = int(interval // 3600)
    return "%d h" % hours if hours < 48 else "%d days" % (hours // 24)


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
                                    % (partition_count(ahead), runway_span(runway), thresholds.min_runway)))
        elif ahead < thresholds.runway_warning_below:
            findings.append(Finding(WARNING, "runway %s (%s), close to the minimum %s"
                                    % (partition_count(ahead), runway_span(runway), thresholds.min_runway)))
    gaps = facts.get("gaps") or []
    if gaps:
        findings.append(Finding(WARNING, "%d gap%s: %s" % (len(gaps), "" if len(gaps) == 1 else "s", ", ".join(
            "[%s, %s)" % (readable(gap.get("lower")), readable(gap.get("upper"))) for gap in gaps))))
    rows = facts.get("default_rows") or 0
    if rows:
        limit = thresholds.default_rows_critical
        state = CRITICAL if limit is not None and rows >= limit else WARNING
        findings.append(Finding(state, "%s rows in the default partition" % format(rows, ",")))
    # The four below need fields postgres_partition_info may not return yet; they are judged when present.
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
    drifted = ["%s (%s)" % (partition["name"], ", ".join(item["kind"].replace("_", " ") for item in partition["drift"]))
               for partition in facts.get("partitions") or [] if partition.get("drift")]
    if drifted:
        more = len(drifted) - DRIFT_SHOWN
        shown = "; ".join(drifted[:DRIFT_SHOWN]) + ("; and %d more" % more if more > 0 else "")
        findings.append(Finding(WARNING, "partitions that differ from what the parent gives them (postgres_partition "
                                         "with inherit: enforce repairs all but a tablespace): %s" % shown))
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
    return sorted(rows, key=lambda row: (-RANK[row.state], row.host, row.database, row.table))


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
