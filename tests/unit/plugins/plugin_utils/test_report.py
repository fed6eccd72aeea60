from __future__ import annotations

import datetime as dt
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pgfleet.partitions.plugins.filter.partition_health import partition_health
from ansible_collections.pgfleet.partitions.plugins.filter.partition_report import partition_report
from ansible_collections.pgfleet.partitions.plugins.plugin_utils._report.html import render
from ansible_collections.pgfleet.partitions.plugins.plugin_utils._report.judge import (
    CRITICAL,
    OK,
    WARNING,
    Thresholds,
    judge,
    judge_host,
    retention_cutoff,
)

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.timezone.utc)
RECENT = "2026-03-15T02:17:00.123456+00:00"


def month(index):
    year, month_index = divmod(2026 * 12 + 2 + index, 12)  # index 0 is March 2026
    return "%04d-%02d-01T00:00:00+00:00" % (year, month_index + 1)


def facts(first=-2, last=3, missing=(), default_rows=None, **extra):
    """A monthly RANGE set with partitions for the month offsets first..last (March 2026 is 0)."""
    partitions = [{"name": "events_%d" % index, "schema": "public", "is_default": False, "lower": month(index),
                   "upper": month(index + 1), "size_bytes": 8192, "rows_estimate": 10}
                  for index in range(first, last + 1) if index not in missing]
    if default_rows is not None:
        partitions.append({"name": "events_default", "schema": "public", "is_default": True, "size_bytes": 0,
                           "rows_estimate": 0})
    contiguous = next((index - 1 for index in range(1, last + 1) if index in missing), last)
    current = None if 0 in missing or not first <= 0 <= last else "events_0"
    gaps = [{"lower": month(index), "upper": month(index + 1), "after": "events_%d" % (index - 1),
             "before": "events_%d" % (index + 1)} for index in missing]
    until = month(contiguous + 1) if current else None
    seconds = (dt.datetime.fromisoformat(until) - NOW).total_seconds() if until else 0
    result = {
        "strategy": "range", "key": "created_at", "key_type": "timestamp with time zone", "partitions": partitions,
        "default_rows": default_rows, "gaps": gaps, "reference": NOW.isoformat(), "brin_indexes": [],
        "runway": {"current": current, "partitions": contiguous if current else 0,
                   "until": until, "interval": seconds, "iso": "P%dD" % (seconds // 86400),
                   "text": "%d month%s" % (contiguous, "" if contiguous == 1 else "s")},
    }
    result.update(extra)
    return result


def gathered(*tables, status=None, **result_extra):
    """What report.yml keeps from one host: one loop result per (name, facts, policy item extras)."""
    results = [dict({"item": dict({"key": "app/public." + name, "db": "app", "table": name, "retention": None,
                                   "brin": None, "backup": False}, **item),
                     "tables": {"public." + name: table}, "in_recovery": False, "failed": False}, **result_extra)
               for name, table, item in tables]
    if status is None:
        status = {"tables": {"app/public." + table[0]: {"create": {"last_success": RECENT}} for table in tables}}
    return {"info": {"results": results}, "status": status, "min_runway": 2}


def findings(rows):
    return [(row.state, [finding.text for finding in row.findings]) for row in rows]


JUDGE_CASES = [
    ("a set with three months ahead and a recent create run is healthy",
     gathered(("events", facts(), {})), [(OK, ["healthy"])]),
    ("one partition ahead is below the minimum of two",
     gathered(("events", facts(last=1), {})), [(CRITICAL, ["runway 1 partition (46 days), below 2"])]),
    ("exactly the minimum ahead is a warning",
     gathered(("events", facts(last=2), {})), [(WARNING, ["runway 2 partitions (77 days), close to the minimum 2"])]),
    ("no partition for the reference is critical",
     gathered(("events", facts(first=1, last=4), {})),
     [(CRITICAL, ["no partition holds the reference 2026-03-15T12:00:00+00:00: new rows go to the default "
                  "partition or fail"])]),
    ("a hole in the past is a warning",
     gathered(("events", facts(missing=(-1,)), {})), [(WARNING, ["1 gap: [2026-02-01, 2026-03-01)"])]),
    ("a few rows in the default partition are a warning",
     gathered(("events", facts(default_rows=5), {})), [(WARNING, ["5 rows in the default partition"])]),
    ("many rows in the default partition are critical",
     gathered(("events", facts(default_rows=12000), {})), [(CRITICAL, ["12,000 rows in the default partition"])]),
    ("a retention job that never ran is critical, with its last error",
     gathered(("events", facts(), {"retention": {"retention": "3 months"}}),
              status={"tables": {"app/public.events": {"create": {"last_success": RECENT},
                                                       "retention": {"last_error": "lock timeout"}}}}),
     [(CRITICAL, ["retention has never succeeded: lock timeout"])]),
    ("a create run older than its period is critical",
     gathered(("events", facts(), {}), status={"tables": {"app/public.events": {
         "create": {"last_success": "2026-03-13T12:00:00+00:00"}}}}),
     [(CRITICAL, ["create last succeeded 48.0h ago, more than 26h"])]),
    ("a create run that failed tonight is critical though its last success is recent",
     gathered(("events", facts(), {}), status={"tables": {"app/public.events": {"create": {
         "last_success": RECENT, "last_start": "2026-03-15T11:00:00+00:00", "last_result": "failed",
         "last_error": "lock timeout"}}}}),
     [(CRITICAL, ["create failed at its last run (2026-03-15T11:00:00+00:00): lock timeout"])]),
    ("no status file means every job has never succeeded",
     gathered(("events", facts(), {"brin": {}}), status={}),
     [(CRITICAL, ["create has never succeeded", "brin has never succeeded"])]),
    ("a host that schedules no jobs is not judged on their age",
     dict(gathered(("events", facts(), {"retention": {"retention": "3 months"}}), status={}), scheduled=False),
     [(OK, ["healthy"])]),
    ("a table whose backups the host does not run is not judged on them",
     dict(gathered(("events", facts(), {"backup": True})), backups=False), [(OK, ["healthy"])]),
    ("a table whose backups the host runs is judged on them",
     gathered(("events", facts(), {"backup": True})), [(CRITICAL, ["backup has never succeeded"])]),
    ("on a hot standby the last start counts",
     gathered(("events", facts(), {}), status={"tables": {"app/public.events": {"create": {"last_start": RECENT}}}},
              in_recovery=True), [(OK, ["healthy"])]),
    ("pruning off, a parent never analyzed and a partition missing an index are warnings",
     gathered(("events", facts(parent_analyzed=False), {}), settings={"enable_partition_pruning": "off"}),
     [(WARNING, ["enable_partition_pruning is off: every query scans every partition",
                 "the partitioned table has never been analyzed (autovacuum does not analyze parents): run "
                 "ANALYZE on it"])]),
    ("an empty set never analyzed loses nothing: healthy",
     gathered(("events", facts(parent_analyzed=False, partitions=[]), {})), [(OK, ["healthy"])]),
    ("a table the module could not read is critical with the module's message",
     {"info": {"results": [{"item": {"db": "app", "table": "gone"}, "failed": True, "msg": "no such table"}]},
      "status": None}, [(CRITICAL, ["cannot read the table: no such table"])]),
    ("an unreachable host is one critical row",
     {"info": {"results": [{"item": {"db": "app", "table": "t"}, "unreachable": True, "msg": "refused"}]},
      "unreachable": True}, [(CRITICAL, ["host unreachable: refused"])]),
    ("a host whose policy failed its checks is one critical row",
     {"failed": True, "msg": "policy item 0 is not valid"}, [(CRITICAL, ["host failed: policy item 0 is not valid"])]),
    ("a host the play never reached is one critical row",
     None, [(CRITICAL, ["no facts gathered: the host was not in this run"])]),
]


@pytest.mark.parametrize("host, expected", [case[1:] for case in JUDGE_CASES], ids=[case[0] for case in JUDGE_CASES])
def test_judge_host(host, expected):
    assert findings(judge_host("db1", host, NOW, Thresholds())) == expected


def test_a_partition_missing_a_parent_index_is_named():
    table = facts()
    table["partitions"][0]["missing_indexes"] = ["events_created_at_idx"]
    rows = judge_host("db1", gathered(("events", table, {})), NOW, Thresholds())
    assert findings(rows) == [(WARNING, ["partitions without the parent's indexes: events_-2 (events_created_at_idx)"])]


@pytest.mark.parametrize("drifted, text", [
    pytest.param(1, "events_-2 (owner, replica identity)", id="a drifted partition is named with how it drifted"),
    pytest.param(7, "; ".join("events_%d (owner, replica identity)" % n for n in range(-2, 3)) + "; and 2 more",
                 id="many drifted partitions are named up to five and counted beyond"),
])
def test_partitions_that_drifted_from_the_parent_are_a_warning(drifted, text):
    table = facts(last=6)
    for partition in table["partitions"][:drifted]:
        partition["drift"] = [{"kind": "owner", "expected": "app", "actual": "postgres"},
                              {"kind": "replica_identity", "expected": "full", "actual": "default"}]
    rows = judge_host("db1", gathered(("events", table, {})), NOW, Thresholds())
    assert findings(rows) == [(WARNING, ["partitions that differ from what the parent gives them (postgres_partition "
                                         "with inherit: enforce repairs all but a tablespace): " + text])]


CUTOFF_CASES = [
    ("a month retention steps back calendar months", {"reference": "2026-03-31T10:00:00+00:00"}, "1 month",
     "2026-02-28T10:00:00+00:00"),
    ("an integer retention counts key units", {"reference": 5000}, 1200, 3800),
    ("no retention, no cutoff", {"reference": 5000}, None, None),
    ("a retention that does not parse draws no cutoff", {"reference": 5000}, "soon", None),
    ("no reference, no cutoff", {"reference": None}, "3 months", None),
]


@pytest.mark.parametrize("table, retention, expected", [case[1:] for case in CUTOFF_CASES],
                         ids=[case[0] for case in CUTOFF_CASES])
def test_retention_cutoff(table, retention, expected):
    assert retention_cutoff(table, retention) == expected


def test_rows_come_worst_first_then_by_host_and_table():
    hosts = {"b": gathered(("zeta", facts(), {}), ("alpha", facts(last=1), {})), "a": gathered(("mid", facts(), {})),
             "c": {"unreachable": True, "msg": "refused"}}
    rows = judge(hosts, NOW, {})
    assert [(row.host, row.table, row.state) for row in rows] == [
        ("b", "public.alpha", CRITICAL), ("c", "", CRITICAL), ("a", "public.mid", OK), ("b", "public.zeta", OK)]


def test_the_page_is_self_contained_escaped_and_marks_what_retention_removes():
    hostile = "<script>alert(1)</script>"
    host = gathered(("events", facts(first=-6), {"retention": {"retention": "3 months"}}))
    host["status"]["tables"]["app/public.events"]["retention"] = {"last_success": RECENT}
    page = render(judge({hostile: host}, NOW, {}), NOW)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert not re.search(r"https?://|<link|<img|@import", page)
    expired = re.findall(r'class="p-expired"[^>]*><title>(events_-?\d+) ', page)
    assert expired == ["events_-6", "events_-5", "events_-4"]  # they end on or before 2025-12-15
    assert "retention cutoff 2025-12-15 12:00 (3 months)" in page
    assert 'data-state="ok"' in page


def test_list_and_hash_sets_are_drawn_without_an_axis():
    table = {"strategy": "list", "key": "status", "key_type": "text", "gaps": [], "runway": None, "reference": None,
             "default_rows": 0, "brin_indexes": [], "partitions": [
                 {"name": "orders_open", "is_default": False, "values": ["open"], "size_bytes": 0, "rows_estimate": 0},
                 {"name": "orders_default", "is_default": True, "size_bytes": 0, "rows_estimate": 0}]}
    page = render(judge({"db1": gathered(("orders", table, {}))}, NOW, {}), NOW)
    assert "orders_open [&#x27;open&#x27;]" in page and "default 0 rows" in page and "n/a (list)" in page


def test_the_filter_reports_the_worst_state_and_the_critical_lines():
    result = partition_report({"db1": gathered(("events", facts(last=1), {})), "db2": None},
                              now=NOW.isoformat(), runway_warning=5)
    assert result["state"] == CRITICAL
    assert result["counts"] == {OK: 0, WARNING: 0, CRITICAL: 2}
    assert result["critical"] == ["db1 app/public.events: runway 1 partition (46 days), below 2",
                                  "db2 (host): no facts gathered: the host was not in this run"]
    assert result["html"].startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("ago, text", [(dt.timedelta(minutes=3), "3 min"), (dt.timedelta(minutes=119), "119 min"),
                                       (dt.timedelta(hours=2), "2 h"), (dt.timedelta(hours=47, minutes=59), "47 h"),
                                       (dt.timedelta(days=9, hours=5), "9 days")])
def test_job_ages_read_as_people_say_them(ago, text):
    host = gathered(("events", facts(), {}), status={"tables": {"app/public.events": {
        "create": {"last_success": (NOW - ago).isoformat()}}}})
    (row,) = judge_host("db1", host, NOW, Thresholds(job_max_age_hours={"create": 1000}))
    assert row.jobs[0][:2] == ("create", text)


def test_the_summary_gives_the_runway_in_partitions_and_days():
    page = render(judge({"db1": gathered(("events", facts(last=3), {}))}, NOW, {}), NOW)
    # From 2026-03-15 12:00 to 2026-07-01: 107 days and 12 hours.
    assert '<td>3 partitions, 107 days</td>' in page


def test_a_daily_set_over_years_is_drawn_in_a_bounded_number_of_blocks_that_cover_every_partition():
    first = dt.datetime(2024, 3, 15, tzinfo=dt.timezone.utc)
    days = [first + dt.timedelta(days=index) for index in range(2 * 365 + 30)]
    current = "events_%s" % NOW.strftime("%Y%m%d")
    partitions = [{"name": "events_%s" % day.strftime("%Y%m%d"), "schema": "public", "is_default": False,
                   "lower": day.isoformat(), "upper": (day + dt.timedelta(days=1)).isoformat(), "size_bytes": 8192,
                   "rows_estimate": 10} for day in days]
    ahead = sum(1 for day in days if day > NOW)
    runway = {"current": current, "partitions": ahead, "until": partitions[-1]["upper"], "interval": 0, "text": "",
              "iso": None}
    table = facts(partitions=partitions, runway=runway)
    item = {"retention": {"retention": "1 year"}}
    page = render(judge({"db1": gathered(("events", table, item))}, NOW, {}), NOW)
    titles = re.findall(r'<rect class="(p-[a-z]+)"[^>]*><title>(?:(\d+) partitions )?(events_\d+)', page)
    assert len(titles) <= 70
    assert sum(int(count or 1) for _css, count, _name in titles) == len(partitions)
    assert ("p-current", "", current) in titles  # the partition holding the reference keeps a block of its own
    assert [css for css, _count, _name in titles][:2] == ["p-expired", "p-expired"]
    assert len(page) < 40000


HEALTH_CASES = [
    ("a healthy host has no critical and no warning line",
     gathered(("events", facts(), {})), {}, (OK, [], [])),
    ("a runway below the host's min_runway is critical, in the report's words",
     dict(gathered(("events", facts(last=3), {})), min_runway="4"), {},
     (CRITICAL, ["app/public.events: runway 3 partitions (107 days), below 4"], [])),
    ("a job that never ran is critical",
     gathered(("events", facts(), {}), status={}), {},
     (CRITICAL, ["app/public.events: create has never succeeded"], [])),
    ("a host that schedules no jobs is judged on its partitions alone",
     dict(gathered(("events", facts(), {}), status={}), scheduled=False), {}, (OK, [], [])),
    ("many rows in the default partition are critical as in the report",
     gathered(("events", facts(default_rows=12000), {})), {},
     (CRITICAL, ["app/public.events: 12,000 rows in the default partition"], [])),
    ("without a default_rows_critical, rows in the default partition are a warning only",
     gathered(("events", facts(default_rows=12000), {})), {"default_rows_critical": None},
     (WARNING, [], ["app/public.events: 12,000 rows in the default partition"])),
    ("a table that cannot be read is critical with the module's message",
     {"info": {"results": [{"item": {"db": "app", "table": "gone"}, "failed": True, "msg": "no such table"}]},
      "status": None}, {}, (CRITICAL, ["app/gone: cannot read the table: no such table"], [])),
    ("a gap is a warning, printed and not failed on",
     gathered(("events", facts(missing=(-1,)), {})), {},
     (WARNING, [], ["app/public.events: 1 gap: [2026-02-01, 2026-03-01)"])),
]


@pytest.mark.parametrize("host, options, expected", [case[1:] for case in HEALTH_CASES],
                         ids=[case[0] for case in HEALTH_CASES])
def test_the_health_filter_judges_one_host_as_the_report_does(host, options, expected):
    health = partition_health(host, now=NOW.isoformat(), **options)
    assert (health["state"], health["critical"], health["warnings"]) == expected
    report = partition_report({"db1": host}, now=NOW.isoformat(), **options)
    assert [line.split(" ", 1)[1] for line in report["critical"]] == health["critical"]


def test_the_health_filter_lists_every_table_in_policy_order_with_its_runway_and_jobs():
    host = gathered(("zeta", facts(), {}), ("alpha", facts(last=1, default_rows=0), {"brin": {}}))
    tables = partition_health(host, now=NOW.isoformat())["tables"]
    assert [(table["table"], table["state"], table["runway"], table["default_rows"]) for table in tables] == [
        ("app/public.zeta", OK, 3, None), ("app/public.alpha", CRITICAL, 1, 0)]
    assert tables[1]["jobs"] == {"create": "9 h", "retention": "n/a", "brin": "never", "backup": "n/a"}
    assert tables[1]["critical"] == ["runway 1 partition (46 days), below 2", "brin has never succeeded"]


@pytest.mark.parametrize("value, options, message", [
    pytest.param(["db1"], {}, "expects what was gathered on one host", id="a list is not one host's facts"),
    pytest.param({}, {"now": "yesterday"}, "is not an ISO 8601 date-time", id="now must be ISO 8601"),
])
def test_the_health_filter_refuses_what_it_cannot_judge(value, options, message):
    with pytest.raises(AnsibleFilterError, match=message):
        partition_health(value, **options)
