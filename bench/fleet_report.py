"""Benchmark 6: the fleet report at fleet size.

What playbooks/report.yml gathers from N hosts x 10 policy tables (36 monthly partitions each: two years back, a
year ahead, a default partition; some with a gap, a short runway, rows in the default partition or a late job) is
built synthetically, then judged and rendered by the partition_report filter as the play does. Needs no server.
Baseline, in the same repetition: json.dumps of the same gathered facts, the least any consumer of them pays.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import tracemalloc

from bench.harness import ratio, summary

from ansible_collections.pgfleet.partitions.plugins.filter.partition_report import partition_report

NAME = "fleet_report"
TITLE = "Fleet report: rendering time and page size"
HOSTS = (10, 25, 50, 100)
TABLES = 10
TARGET_HOSTS = 50
TARGET_SECONDS = 3.0
TARGET_MEGABYTES = 5.0
NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.timezone.utc)


def month(index: int) -> str:
    year, month_index = divmod(2026 * 12 + 2 + index, 12)
    return "%04d-%02d-01T00:00:00+00:00" % (year, month_index + 1)


def table_result(db: str, name: str, number: int) -> dict:
    """One loop result of postgres_partition_info, as report.yml registers it."""
    ahead = 1 if number % 7 == 3 else 12
    missing = {-5} if number % 11 == 4 else set()
    partitions = [{"name": f"{name}_{index + 24}", "schema": "public", "is_default": False, "lower": month(index),
                   "upper": month(index + 1), "size_bytes": 8192 * 1000 * (index + 25), "rows_estimate": 100000,
                   "missing_indexes": []}
                  for index in range(-24, ahead + 1) if index not in missing]
    partitions.append({"name": f"{name}_default", "schema": "public", "is_default": True, "size_bytes": 8192,
                       "rows_estimate": 0, "missing_indexes": []})
    until = month(ahead + 1)
    seconds = (dt.datetime.fromisoformat(until) - NOW).total_seconds()
    facts = {
        "strategy": "range", "key": "created_at", "key_type": "timestamp with time zone", "partitions": partitions,
        "default_rows": 42 if number % 5 == 2 else 0, "reference": NOW.isoformat(), "brin_indexes": [],
        "gaps": [{"lower": month(index), "upper": month(index + 1), "after": "", "before": ""} for index in missing],
        "runway": {"current": f"{name}_24", "partitions": ahead, "until": until, "interval": seconds,
                   "text": "%d days" % (seconds // 86400), "iso": "P%dD" % (seconds // 86400)},
        "parent_analyzed": True, "parent_last_analyzed": NOW.isoformat(),
    }
    item = {"key": f"{db}/public.{name}", "db": db, "table": name, "retention": {"retention": "18 months"},
            "brin": {}, "backup": False}
    return {"item": item, "tables": {f"public.{name}": facts}, "in_recovery": False, "failed": False,
            "settings": {"enable_partition_pruning": "on"}}


def fleet(hosts: int, tables: int = TABLES) -> dict:
    """Host name -> what report.yml keeps from the host (the facts of its tables and its runner's status file)."""
    success = (NOW - dt.timedelta(hours=3)).isoformat()
    gathered = {}
    for host in range(hosts):
        results = [table_result("app", f"events_{table}", host * tables + table) for table in range(tables)]
        status = {"tables": {f"app/public.events_{table}": {
            "create": {"last_success": success}, "retention": {"last_success": success},
            "brin": {"last_success": success if (host + table) % 13 else None}} for table in range(tables)}}
        gathered[f"db{host:03d}"] = {"info": {"results": results}, "status": status, "min_runway": 2}
    return gathered


def measure(gathered: dict) -> tuple[float, float, int, int, int]:
    """(render seconds, json.dumps seconds, HTML bytes, JSON bytes, peak bytes allocated while rendering)."""
    started = time.perf_counter()
    page = partition_report(gathered, now=NOW.isoformat())["html"]
    render = time.perf_counter() - started
    started = time.perf_counter()
    text = json.dumps(gathered)
    baseline = time.perf_counter() - started
    tracemalloc.start()
    partition_report(gathered, now=NOW.isoformat())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return render, baseline, len(page.encode()), len(text.encode()), peak


def run(bench, repetitions: int) -> dict:
    del bench  # synthetic data: no server
    sizes = []
    for hosts in HOSTS:
        gathered = fleet(hosts)
        partition_report(gathered, now=NOW.isoformat())  # warm: imports, regular expressions
        samples = [measure(gathered) for _repetition in range(repetitions)]
        render, baseline = summary([s[0] for s in samples]), summary([s[1] for s in samples])
        sizes.append({"hosts": hosts, "tables": hosts * TABLES, "render": render, "json_dumps": baseline,
                      "ratio": ratio(render, baseline), "html_bytes": samples[0][2], "json_bytes": samples[0][3],
                      "peak_bytes": max(s[4] for s in samples)})
    at_target = next(entry for entry in sizes if entry["hosts"] == TARGET_HOSTS)
    megabytes = at_target["html_bytes"] / 1e6
    return {
        "name": NAME, "title": TITLE, "repetitions": repetitions, "sizes": sizes,
        "targets": [
            {"text": f"Fleet report over {TARGET_HOSTS} hosts x {TABLES} tables rendered in under "
                     f"{TARGET_SECONDS:g} s", "value": at_target["render"]["median"], "limit": TARGET_SECONDS,
             "unit": "s", "met": at_target["render"]["max"] < TARGET_SECONDS},
            {"text": f"Its HTML under {TARGET_MEGABYTES:g} MB", "value": megabytes, "limit": TARGET_MEGABYTES,
             "unit": "MB", "met": megabytes < TARGET_MEGABYTES},
        ],
    }
