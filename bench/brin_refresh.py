"""Benchmark 4: BRIN upkeep of a 10-million-row monthly set.

`readings` has 11 monthly partitions (9 months back to next month) and a BRIN index on its time key (pages per
range 128, autosummarize off; autovacuum is off on the bench server, so nothing summarizes behind our back).
10 million rows, spread evenly over the 9 months before the last day, come from one INSERT ... SELECT
generate_series; a full summary follows. Then the last day's rows arrive (10 million / days covered): the ranges
they fill are unsummarized, as they are every day before the nightly job. Each trial starts from that state
(the ranges from the first new row's block on are desummarized again) with a writer inserting 200 rows/s into
the parent, and runs one of:
- ours, the engine: `refresh_brin(mode='summarize')` on an open connection (what postgres_brin_refresh runs);
- ours, the runner's `run brin` job as a process, end to end;
- REINDEX INDEX of the partitioned BRIN index (psql process): rebuilds every partition's index;
- REINDEX INDEX CONCURRENTLY (psql process), for reference: the rebuild that does not block writers.
The writer's latencies (from the scheduled times) over at least one second from the start are compared with a
trial that runs nothing.
"""

from __future__ import annotations

import time

from bench import sets
from bench.harness import Bench, LockWatch, Writer, latency_window, ratio, summary

NAME = "brin_refresh"
TITLE = "BRIN refresh of a 10-million-row monthly set"
ROWS = 10_000_000
MONTHS_BACK = 9
RATE = 200
LEAD = 0.5
MIN_WINDOW = 1.0
INDEX = "public.readings_recorded_at_brin"
INSERT = "INSERT INTO public.readings (recorded_at, device, value) VALUES (now(), 1, 1.0)"
TARGET_RATIO = 0.1
OPERATIONS = ("baseline", "ours_engine", "ours_runner", "reindex", "reindex_concurrently")


def build(bench: Bench) -> dict:
    """The loaded set; returns where the day of new rows starts in the current partition, and the sizes."""
    db = bench.fresh_database("brin")
    bench.sql(db, "CREATE TABLE public.readings (recorded_at timestamptz NOT NULL, device int NOT NULL, value float8) "
                  "PARTITION BY RANGE (recorded_at)")
    this = sets.month_start(sets.today())
    for shift in range(-MONTHS_BACK, 2):
        month = sets.month_start(this, shift)
        bench.sql(db, sets.partition_of("readings", sets.monthly_name("readings", month), month,
                                        sets.month_start(month, 1)))
    bench.sql(db, "CREATE INDEX readings_recorded_at_brin ON public.readings USING brin (recorded_at) "
                  "WITH (autosummarize = off)")
    first = sets.timestamp(sets.month_start(this, -MONTHS_BACK))
    started = time.perf_counter()
    bench.sql(db, "INSERT INTO public.readings SELECT %(first)s::timestamptz + (now() - interval '1 day' - "
                  "%(first)s::timestamptz) * (g::float8 / %(rows)s), g %% 1000, g * 0.5 "
                  "FROM generate_series(0, %(rows)s - 1) AS g", {"first": first, "rows": ROWS})
    load_seconds = time.perf_counter() - started
    bench.sql(db, f"REINDEX INDEX {INDEX}")
    current = sets.monthly_name("readings", this)
    tail_block = bench.value(db, "SELECT pg_relation_size(%s::regclass) / 8192", (f"public.{current}",))
    days = float(bench.value(db, "SELECT extract(epoch FROM now() - %s::timestamptz) / 86400", (first,)))
    day_rows = int(ROWS / days)
    bench.sql(db, "INSERT INTO public.readings SELECT now() - interval '1 day' + interval '1 day' * (g::float8 / %s), "
                  "g %% 1000, g * 0.5 FROM generate_series(0, %s - 1) AS g", (day_rows, day_rows))
    sizes = bench.sql(db, "SELECT pg_size_pretty(sum(pg_relation_size(relid))), sum(pg_relation_size(relid)) "
                          "FROM pg_partition_tree('public.readings') WHERE isleaf")[0]
    return {"db": db, "current": current, "tail_block": int(tail_block), "day_rows": day_rows,
            "load_seconds": load_seconds, "heap": sizes[0], "heap_bytes": int(sizes[1])}


def desummarize_tail(bench: Bench, state: dict) -> int:
    """Put the day of new rows (and whatever the writer added since) back to unsummarized; the ranges affected."""
    return int(bench.value(state["db"], f"""
        SELECT count(brin_desummarize_range('public.{state["current"]}_recorded_at_idx'::regclass, block))
        FROM generate_series(%s, pg_relation_size('public.{state["current"]}'::regclass) / 8192 - 1, 128) AS block""",
                           (state["tail_block"] - state["tail_block"] % 128,)))


def operations(bench: Bench, state: dict, database) -> dict:
    from ansible_collections.pgfleet.partitions.plugins.module_utils._brin import job
    from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import parse_table_name

    db = state["db"]
    policy = bench.write_policy("brin", [dict(db=db, table="public.readings", brin=True)])

    def ours_engine():
        database.queries.clear()
        result = job.refresh_brin(database, parse_table_name("public.readings"), mode="summarize")
        if not result["ranges_summarized"]:
            raise RuntimeError("the summarize run found nothing to summarize")

    def ours_runner():
        output = bench.run_runner(policy, "run", "brin")[1]
        if "summarized" not in output:
            raise RuntimeError(f"the runner's brin job summarized nothing: {output}")

    return {
        "baseline": None,
        "ours_engine": ours_engine,
        "ours_runner": ours_runner,
        "reindex": lambda: bench.run_psql(db, "-c", f"REINDEX INDEX {INDEX}"),
        "reindex_concurrently": lambda: bench.run_psql(db, "-c", f"REINDEX INDEX CONCURRENTLY {INDEX}"),
    }


def trial(bench: Bench, state: dict, action) -> dict:
    desummarize_tail(bench, state)
    with Writer(bench, state["db"], INSERT, RATE) as writer:
        time.sleep(LEAD)
        with LockWatch(bench, state["db"]) as watch:
            started = time.time()
            if action is not None:
                action()
            ended = time.time()
            time.sleep(max(0.0, started + MIN_WINDOW - time.time()) + 0.2)
    window = latency_window(writer.samples, started, max(ended, started + MIN_WINDOW))
    window.update(watch.facts(), seconds=ended - started)
    return window


def run(bench: Bench, repetitions: int) -> dict:
    from ansible_collections.pgfleet.partitions.plugins.module_utils._db.connection import connect

    state = build(bench)
    database = connect(bench.params(state["db"]))
    runs = operations(bench, state, database)
    trials = {name: [] for name in OPERATIONS}
    try:
        for name in ("ours_engine", "ours_runner"):  # warm the engine's imports and caches once, unmeasured
            trial(bench, state, runs[name])
        for repetition in range(repetitions):
            for name in OPERATIONS:
                trials[name].append(trial(bench, state, runs[name]))
    finally:
        database.close()
    bench.server.psql(f"DROP DATABASE {state['db']}")
    results = {}
    for name, observed in trials.items():
        results[name] = {key: summary([t[key] for t in observed])
                         for key in ("seconds", "p99_ms", "max_ms", "lock_wait_longest_ms")}
    for name in OPERATIONS:
        results[name]["p99_ratio"] = ratio(results[name]["p99_ms"], results["baseline"]["p99_ms"])
        results[name]["time_ratio"] = ratio(results[name]["seconds"], results["reindex"]["seconds"])
    engine, runner = results["ours_engine"], results["ours_runner"]
    return {
        "name": NAME, "title": TITLE, "repetitions": repetitions, "rows": ROWS, "rate_per_second": RATE,
        "set": {key: value for key, value in state.items() if key != "db"},
        "operations": results,
        "targets": [
            {"text": f"BRIN summarize: at most {TARGET_RATIO}x the time of REINDEX (the engine, as "
                     "postgres_brin_refresh runs it)",
             "value": engine["time_ratio"]["median"], "limit": TARGET_RATIO, "ratio": engine["time_ratio"],
             "met": engine["time_ratio"]["median"] <= TARGET_RATIO,
             "runner_value": runner["time_ratio"]["median"]},
            {"text": "BRIN summarize: no writer stall (the writer never waits for a lock)",
             "value": max(engine["lock_wait_longest_ms"]["max"], runner["lock_wait_longest_ms"]["max"]),
             "unit": "ms", "limit": 0,
             "met": max(engine["lock_wait_longest_ms"]["max"], runner["lock_wait_longest_ms"]["max"]) == 0,
             "p99_ratio": engine["p99_ratio"]["median"], "runner_p99_ratio": runner["p99_ratio"]["median"]},
        ],
    }
