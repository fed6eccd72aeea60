"""Benchmark 3: what partition DDL does to a writer while a long reader is open.

A monthly table (15 months back to this month, 200 rows a month). A writer process inserts into the parent at a
steady 200 rows/s; a reader runs SELECT count(*) over the parent and keeps its transaction open for HOLD s. Half
a second into the reader, the DDL starts. The writer's latencies are taken from each insert's scheduled time
(a stalled writer's backlog counts), over the inserts scheduled from the DDL's start to the end of the trial.

Creating next month's partition: ours (the runner, premake 1: the engine the module runs), plain CREATE TABLE ...
PARTITION OF, pg_partman's run_maintenance (premake 1, after its newest partition was dropped).
Retention (keep 12 months: the two oldest partitions go): ours (the runner's retention job, action drop: DETACH
... CONCURRENTLY then DROP), plain DROP TABLE of both, pg_partman's run_maintenance with retention = '12 months',
retention_keep_table = false. pg_partman 4.7 always has a default partition; the other sets have none.
The baseline is the same writer and reader with no DDL at all.
"""

from __future__ import annotations

import time

from bench import sets
from bench.harness import Bench, LockWatch, Reader, Writer, binned_max, latency_window, ratio, summary

NAME = "production_impact"
TITLE = "Production impact: a writer during partition DDL, with a long reader open"
RATE = 200
HOLD = 3.0
READER_LEAD = 0.5
TAIL = 0.5
BACK = 14  # months before this one
TARGET_RATIO = 2.0
INSERT = "INSERT INTO public.metrics (id, recorded_at, value) VALUES (1, now(), 1.0)"
SCENARIOS = ("baseline", "ours_create", "plain_create", "partman_create", "ours_retention", "plain_retention",
             "partman_retention")


def months(first: int, last: int) -> list:
    this = sets.month_start(sets.today())
    return [sets.month_start(this, shift) for shift in range(first, last + 1)]


def create_metrics(bench: Bench, db: str, partman: bool, through: int) -> None:
    """The metrics table with months -BACK..`through` (pg_partman: made by create_parent), filled up to now."""
    sets.drop_partman_set(bench, db, "metrics")
    bench.sql(db, "CREATE TABLE public.metrics (id bigint NOT NULL, recorded_at timestamptz NOT NULL, value float8) "
                  "PARTITION BY RANGE (recorded_at)")
    bench.sql(db, "CREATE INDEX ON public.metrics (recorded_at)")
    if partman:
        sets.create_parent(bench, db, "metrics", "recorded_at", "monthly", 1, months(-BACK, -BACK)[0])
        for month in months(through + 1, 1):
            bench.sql(db, f"DROP TABLE public.{sets.monthly_name('metrics', month)}")
    else:
        for month in months(-BACK, through):
            bench.sql(db, sets.partition_of("metrics", sets.monthly_name("metrics", month), month,
                                            sets.month_start(month, 1)))
    bench.sql(db, "INSERT INTO public.metrics SELECT g, %s::timestamptz + (now() - %s::timestamptz) * g / 3000.0, g "
                  "FROM generate_series(0, 2999) AS g", (sets.timestamp(months(-BACK, -BACK)[0]),) * 2)


def prepare(bench: Bench, db: str, scenario: str) -> None:
    partman = scenario.startswith("partman")
    create_metrics(bench, db, partman, through=0 if scenario.endswith("create") or scenario == "baseline" else 1)
    if scenario == "partman_retention":
        bench.sql(db, "UPDATE partman.part_config SET retention = '12 months', retention_keep_table = false "
                      "WHERE parent_table = 'public.metrics'")


def actions(bench: Bench, db: str) -> dict:
    table = dict(db=db, table="public.metrics", interval="month", premake=1, retention="12 months",
                 retention_action="drop")
    policy = bench.write_policy("impact", [table])
    newest = months(1, 1)[0]
    oldest = [sets.monthly_name("metrics", month) for month in months(-BACK, -BACK + 1)]
    maintenance = "SELECT partman.run_maintenance(p_parent_table := 'public.metrics')"
    return {
        "baseline": None,
        "ours_create": lambda: bench.run_runner(policy, "run", "create"),
        "plain_create": lambda: bench.run_psql(db, "-c", sets.partition_of(
            "metrics", sets.monthly_name("metrics", newest), newest, sets.month_start(newest, 1))),
        "partman_create": lambda: bench.run_psql(db, "-c", maintenance),
        "ours_retention": lambda: bench.run_runner(policy, "run", "retention"),
        "plain_retention": lambda: bench.run_psql(db, "-c", "DROP TABLE " + ", ".join(oldest)),
        "partman_retention": lambda: bench.run_psql(db, "-c", maintenance),
    }


def expected_partitions(scenario: str) -> int:
    default = 1 if scenario.startswith("partman") else 0
    if scenario == "baseline":
        return BACK + 1
    if scenario.endswith("create"):
        return BACK + 2 + default
    return BACK + 2 - 2 + default


def trial(bench: Bench, db: str, scenario: str, action) -> dict:
    prepare(bench, db, scenario)
    reader = Reader(bench, db, "public.metrics", HOLD)
    with Writer(bench, db, INSERT, RATE) as writer:
        time.sleep(READER_LEAD)
        reader.start()
        reader.reading.wait(30)
        time.sleep(READER_LEAD)
        with LockWatch(bench, db) as watch:
            ddl_start = time.time()
            if action is not None:
                action()
            ddl_end = time.time()
            reader.join()
            time.sleep(TAIL)
            window_end = time.time()
    made = sets.partition_count(bench, db, "metrics")
    if made != expected_partitions(scenario):
        raise RuntimeError(f"{scenario}: the set has {made} partitions, not {expected_partitions(scenario)}")
    window = latency_window(writer.samples, ddl_start, window_end)
    window.update(watch.facts(), ddl_seconds=ddl_end - ddl_start, reader_left_seconds=reader.ended - ddl_start,
                  timeline=[(round(scheduled - ddl_start, 4), round(latency * 1000, 2))
                            for scheduled, latency in writer.samples if ddl_start - 0.5 <= scheduled <= window_end])
    return window


def run(bench: Bench, repetitions: int) -> dict:
    db = bench.fresh_database("impact", partman=True)
    runs = actions(bench, db)
    trials = {scenario: [] for scenario in SCENARIOS}
    for repetition in range(repetitions):
        for scenario in SCENARIOS:
            trials[scenario].append(trial(bench, db, scenario, runs[scenario]))
    bench.server.psql(f"DROP DATABASE {db}")
    scenarios = {}
    for scenario, observed in trials.items():
        scenarios[scenario] = {key: summary([t[key] for t in observed])
                               for key in ("p99_ms", "max_ms", "median_ms", "ddl_seconds", "reader_left_seconds",
                                           "lock_wait_longest_ms", "lock_wait_total_ms")}
        # The timeline of the repetition with the median p99, for the plot.
        middle = sorted(observed, key=lambda t: t["p99_ms"])[len(observed) // 2]
        scenarios[scenario]["timeline"] = binned_max(middle["timeline"])
        scenarios[scenario]["inserts"] = [t["inserts"] for t in observed]
    for scenario in SCENARIOS:
        scenarios[scenario]["p99_ratio"] = ratio(scenarios[scenario]["p99_ms"], scenarios["baseline"]["p99_ms"])
    targets = []
    for job, label in (("create", "creating next month's partition"), ("retention", "retention")):
        spread = scenarios[f"ours_{job}"]["p99_ratio"]
        targets.append({"text": f"Writer p99 while ours runs {label}: within {TARGET_RATIO}x of no DDL",
                        "value": spread["median"], "limit": TARGET_RATIO, "met": spread["median"] <= TARGET_RATIO,
                        "ratio": spread})
    return {"name": NAME, "title": TITLE, "repetitions": repetitions, "rate_per_second": RATE,
            "reader_hold_seconds": HOLD, "scenarios": scenarios, "targets": targets}
