"""Benchmark 1: a maintenance pass with nothing to do, on one table of 100, 1,000 and 5,000 daily partitions.

One table per size, made by pg_partman (create_parent, premake 4) and extended backwards with plain SQL to the
size, with one row per past day. Both tools look at that same table with the same policy (4 days ahead):
- ours: the scheduled runner `run create` as a separate process, end to end (what cron starts), and the same
  runner code in the bench process (the engine without interpreter start);
- pg_partman: `psql -c "SELECT partman.run_maintenance('public.events')"` as a process (what cron starts), and
  the call alone on an open connection.
Round trips and statements come from pg_stat_statements (track = all) on the server.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import time

from bench import sets
from bench.harness import COLLECTIONS_ROOT, Bench, ratio, summary

NAME = "noop_maintenance"
TITLE = "No-op maintenance pass"
SIZES = (100, 1000, 5000)
PREMAKE = 4
TARGET_SIZE = 1000
TARGET_RATIO = 0.2
MAINTENANCE = "SELECT partman.run_maintenance(p_parent_table := 'public.events')"
IMPORTS_ONLY = ("import sys; sys.path.insert(0, %r); "
                "import ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled.runner"
                % str(COLLECTIONS_ROOT))


def build(bench: Bench, size: int) -> str:
    db = bench.fresh_database(f"noop_{size}", partman=True)
    sets.create_events(bench, db)
    sets.create_parent(bench, db, "events", "created_at", "daily", PREMAKE)
    made = sets.partition_count(bench, db, "events") - 1  # less the default partition
    oldest = sets.today() - dt.timedelta(days=PREMAKE)
    sets.add_daily_partitions(bench, db, "events", [oldest - dt.timedelta(days=back)
                                                    for back in range(1, size - made + 1)])
    bench.sql(db, "INSERT INTO public.events SELECT g, date_trunc('day', now()) - g * interval '1 day' + "
                  "interval '1 hour', 'reading' FROM generate_series(0, %s) AS g", (size - PREMAKE - 1,))
    bench.sql(db, "ANALYZE public.events")
    if sets.partition_count(bench, db, "events") != size + 1:
        raise RuntimeError(f"the {size}-partition set has {sets.partition_count(bench, db, 'events')} partitions")
    return db


def measure_size(bench: Bench, size: int, repetitions: int) -> dict:
    db = build(bench, size)
    policy = bench.write_policy(f"noop_{size}", [dict(db=db, table="public.events", interval="day",
                                                      premake=PREMAKE)])
    from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled import config
    from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled import runner

    config = config.load_config(str(policy))
    times = {key: [] for key in ("ours_process", "partman_process", "ours_engine", "partman_call", "ours_startup")}
    counts = {key: [] for key in ("ours_process", "partman_process")}
    with bench.connect(db) as conn:
        def ours_process():
            with bench.statement_counts(db) as count:
                elapsed, output = bench.run_runner(policy, "run", "create")
            if "nothing to do" not in output:
                raise RuntimeError(f"the runner had something to do on the complete set: {output}")
            counts["ours_process"].append(count)
            return elapsed

        def partman_process():
            with bench.statement_counts(db) as count:
                elapsed = bench.run_psql(db, "-c", MAINTENANCE)
            counts["partman_process"].append(count)
            return elapsed

        def ours_engine():
            out = io.StringIO()
            started = time.perf_counter()
            runner.run(config, "create", out=out)
            elapsed = time.perf_counter() - started
            if "nothing to do" not in out.getvalue():
                raise RuntimeError(f"the runner had something to do on the complete set: {out.getvalue()}")
            return elapsed

        def partman_call():
            started = time.perf_counter()
            conn.execute(MAINTENANCE)
            return time.perf_counter() - started

        def ours_startup():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", IMPORTS_ONLY], check=True)
            return time.perf_counter() - started

        runs = dict(ours_process=ours_process, partman_process=partman_process, ours_engine=ours_engine,
                    partman_call=partman_call, ours_startup=ours_startup)
        for function in runs.values():  # warm caches once, unmeasured
            function()
        for key in counts:
            counts[key].clear()
        for repetition in range(repetitions):
            for key, function in runs.items():
                times[key].append(function())
    if sets.partition_count(bench, db, "events") != size + 1:
        raise RuntimeError("a no-op pass changed the partition set")
    bench.server.psql(f"DROP DATABASE {db}")
    result = {"partitions": size}
    result.update({key: summary(samples) for key, samples in times.items()})
    for key, observed in counts.items():
        result[key]["round_trips"] = sorted({c["round_trips"] for c in observed})
        result[key]["statements"] = sorted({c["statements"] for c in observed})
    result["ratio_process"] = ratio(result["ours_process"], result["partman_process"])
    result["ratio_engine"] = ratio(result["ours_engine"], result["partman_call"])
    return result


def run(bench: Bench, repetitions: int) -> dict:
    sizes = [measure_size(bench, size, repetitions) for size in SIZES]
    at_target = next(entry for entry in sizes if entry["partitions"] == TARGET_SIZE)
    trips = sorted({trip for entry in sizes for trip in entry["ours_process"]["round_trips"]})
    return {
        "name": NAME,
        "title": TITLE,
        "repetitions": repetitions,
        "sizes": sizes,
        "targets": [
            {"text": f"No-op pass at {TARGET_SIZE:,} partitions: at most {TARGET_RATIO}x pg_partman's time "
                     "(runner process vs psql running run_maintenance)",
             "value": at_target["ratio_process"]["median"], "limit": TARGET_RATIO, "ratio": at_target["ratio_process"],
             "met": at_target["ratio_process"]["median"] <= TARGET_RATIO,
             "engine_value": at_target["ratio_engine"]["median"]},
            {"text": "A constant number of round trips, whatever the partition count",
             "value": trips, "limit": "one value for every size", "met": len(trips) == 1},
        ],
    }
