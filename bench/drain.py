"""Benchmark 8: emptying a large default partition while the application writes and reads.

A monthly table whose default partition holds ROWS rows spread evenly over the MONTHS months before this one (in
time order, as a backlog of a failed cron or an import of old data lands), with partitions for this month and the
next; a btree index on the key. While a writer inserts RATE rows/s of current data into the parent, and a reader that
started half a second before keeps a transaction reading the parent open HOLD s, each contender moves every row of
the default partition into a partition of its own month:
- ours: the runner's create job with `default_rows: drain` (batches of `drain_batch_rows`, 10,000 by default, each
  a short transaction under lock_timeout; each partition attached once the default holds none of its rows);
- the floor: a psql script doing per month CREATE TABLE ... LIKE, one INSERT ... SELECT of the month's rows from the
  default partition, one DELETE of them, ATTACH PARTITION, in one transaction per month;
- pg_partman 4.7: `partition_data_proc` (which calls `partition_data_time` one month per transaction, committing in
  between, with no wait) on the same rows in its own default partition.
The baseline is the same writer and reader with no drain, for BASELINE_SECONDS. Each trial starts from a copy of a
template database (CREATE DATABASE ... STRATEGY FILE_COPY), so every contender moves exactly the same rows.

Measured: each contender's wall time; the writer's p99 and worst latency over the contender's run (from each insert's
scheduled time); the longest transaction any other session kept open meanwhile (pg_stat_activity, every 20 ms); the
writer's longest lock wait. PGFLEET_BENCH_DRAIN_ROWS overrides ROWS for a quicker look.
"""

from __future__ import annotations

import os
import time

from bench import sets
from bench.harness import WRITER_NAME, Bench, LockWatch, Reader, Watcher, Writer, latency_window, ratio, summary

NAME = "drain"
TITLE = "Draining a default partition while writing"
ROWS = int(os.environ.get("PGFLEET_BENCH_DRAIN_ROWS") or 5_000_000)
# Seconds ours pauses between batches (the policy's drain_pause); PGFLEET_BENCH_DRAIN_PAUSE overrides it.
DRAIN_PAUSE = float(os.environ.get("PGFLEET_BENCH_DRAIN_PAUSE") or 0)
MONTHS = 24
RATE = 200
HOLD = 3.0
BASELINE_SECONDS = 15.0
P99_TARGET = 2.0
LONGEST_TRANSACTION_LIMIT = 1.0
FLOOR_TARGET = 1.5
CONTENDERS = ("baseline", "ours", "floor", "partman")
TABLE = "drained"
INSERT = f"INSERT INTO public.{TABLE} (id, created_at, payload) VALUES (0, now(), 'writer')"
READER_NAME = "pgfleet-bench-reader"
WATCH_NAME = "pgfleet-bench-watch"
TEMPLATES = {"ours": "drain_template", "floor": "drain_template", "baseline": "drain_template",
             "partman": "drain_template_partman"}


def this_month():
    return sets.month_start(sets.today())


def backlog_months() -> list:
    return [sets.month_start(this_month(), shift) for shift in range(-MONTHS, 0)]


def fill(bench: Bench, db: str) -> None:
    """ROWS rows over the MONTHS months before this one, oldest first, into the parent (so: the default)."""
    first, end = sets.timestamp(backlog_months()[0]), sets.timestamp(this_month())
    bench.sql(db, f"INSERT INTO public.{TABLE} (id, created_at, payload) "
                  "SELECT g, %s::timestamptz + (%s::timestamptz - %s::timestamptz) * (g::float8 / %s), md5(g::text) "
                  "FROM generate_series(0, %s - 1) AS g", (first, end, first, ROWS, ROWS))
    bench.sql(db, "VACUUM ANALYZE")
    if bench.value(db, f"SELECT count(*) FROM ONLY public.{TABLE}_default") != ROWS:
        raise RuntimeError(f"{db}: the default partition does not hold the {ROWS} rows")


def build_templates(bench: Bench) -> None:
    """The two template databases: our shape (plain partitions for this month and the next, a default) and
    pg_partman's (create_parent made the same two, its default and its template table)."""
    this, after = this_month(), sets.month_start(this_month(), 1)
    for template in set(TEMPLATES.values()):
        bench.server.psql(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")
    ours = bench.fresh_database(TEMPLATES["ours"])
    sets.create_events(bench, ours, TABLE)
    for month in (this, after):
        bench.sql(ours, sets.partition_of(TABLE, sets.monthly_name(TABLE, month), month, sets.month_start(month, 1)))
    bench.sql(ours, f"CREATE TABLE public.{TABLE}_default PARTITION OF public.{TABLE} DEFAULT")
    fill(bench, ours)
    partman = bench.fresh_database(TEMPLATES["partman"], partman=True)
    sets.create_events(bench, partman, TABLE)
    sets.create_parent(bench, partman, TABLE, "created_at", "monthly", 1, this)
    fill(bench, partman)


def copy_of(bench: Bench, template: str) -> str:
    bench.server.psql("DROP DATABASE IF EXISTS drain_trial WITH (FORCE)")
    bench.server.psql(f"CREATE DATABASE drain_trial TEMPLATE {template} STRATEGY FILE_COPY")
    return "drain_trial"


def floor_script(bench: Bench) -> str:
    statements = []
    for month in backlog_months():
        name, upper = sets.monthly_name(TABLE, month), sets.month_start(month, 1)
        window = f"created_at >= '{sets.timestamp(month)}' AND created_at < '{sets.timestamp(upper)}'"
        statements += ["BEGIN;", f"CREATE TABLE public.{name} (LIKE public.{TABLE} INCLUDING ALL);",
                       f"INSERT INTO public.{name} SELECT * FROM public.{TABLE}_default WHERE {window};",
                       f"DELETE FROM public.{TABLE}_default WHERE {window};",
                       f"ALTER TABLE public.{TABLE} ATTACH PARTITION public.{name} FOR VALUES FROM "
                       f"('{sets.timestamp(month)}') TO ('{sets.timestamp(upper)}');", "COMMIT;"]
    path = bench.scratch / "drain_floor.sql"
    path.write_text("\n".join(statements) + "\n")
    return str(path)


class TransactionWatch(Watcher):
    """The longest transaction any session but the writer's and the reader's held open, polled every 20 ms."""

    def __init__(self, bench: Bench, db: str):
        super().__init__()
        self.bench, self.db = bench, db
        self.longest = 0.0

    def run(self) -> None:
        with self.bench.connect(self.db, application_name=WATCH_NAME) as conn:
            while not self.halt.is_set():
                age = conn.execute(
                    "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL "
                    "AND backend_type = 'client backend' AND application_name NOT IN (%s, %s)",
                    (READER_NAME, WRITER_NAME)).fetchone()[0]
                self.longest = max(self.longest, float(age))
                time.sleep(0.02)


def check_drained(bench: Bench, db: str, name: str, inserted: int) -> None:
    total = bench.value(db, f"SELECT count(*) FROM public.{TABLE}")
    default = bench.value(db, f"SELECT count(*) FROM ONLY public.{TABLE}_default")
    partitions = sets.partition_count(bench, db, TABLE)
    if name == "baseline":
        return
    if total != ROWS + inserted or default != 0 or partitions != MONTHS + 3:
        raise RuntimeError(f"{name}: {total} rows (want {ROWS + inserted}), {default} left in the default, "
                           f"{partitions} partitions (want {MONTHS + 3})")


def trial(bench: Bench, name: str) -> dict:
    db = copy_of(bench, TEMPLATES[name])
    policy = bench.write_policy("drain", [dict(db=db, table=f"public.{TABLE}", interval="month", premake=1,
                                               default_rows="drain", drain_pause=DRAIN_PAUSE, lock_timeout="1s",
                                               retries=20)])
    action = {"baseline": lambda: time.sleep(BASELINE_SECONDS),
              "ours": lambda: bench.run_runner(policy, "run", "create"),
              "floor": lambda: bench.run_psql(db, "-f", floor_script(bench)),
              "partman": lambda: bench.run_psql(db, "-c", "CALL partman.partition_data_proc('public.drained', "
                                                          "p_wait := 0, p_quiet := true)")}[name]
    # A report reading this minute's rows, its transaction open HOLD s.
    reader = Reader(bench, db, f"public.{TABLE}", HOLD, condition="created_at >= now() - interval '1 minute'",
                    application_name=READER_NAME)
    with Writer(bench, db, INSERT, RATE) as writer:
        reader.start()
        reader.reading.wait(30)
        time.sleep(0.5)
        with TransactionWatch(bench, db) as watch, LockWatch(bench, db) as locks:
            started = time.time()
            action()
            ended = time.time()
        reader.join()
    inserted = bench.value(db, f"SELECT count(*) FROM public.{TABLE} WHERE payload = 'writer'")
    check_drained(bench, db, name, inserted)
    window = latency_window(writer.samples, started, ended)
    window.update(locks.facts(), seconds=ended - started, longest_transaction_seconds=watch.longest)
    return window


def run(bench: Bench, repetitions: int) -> dict:
    build_templates(bench)
    trials = {name: [] for name in CONTENDERS}
    for repetition in range(repetitions):
        order = CONTENDERS[repetition % len(CONTENDERS):] + CONTENDERS[:repetition % len(CONTENDERS)]
        for name in order:
            trials[name].append(trial(bench, name))
    for database in ("drain_trial", *set(TEMPLATES.values())):
        bench.server.psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    contenders = {name: {key: summary([t[key] for t in observed])
                         for key in ("seconds", "p99_ms", "max_ms", "median_ms", "longest_transaction_seconds",
                                     "lock_wait_longest_ms")}
                  for name, observed in trials.items()}
    for name in CONTENDERS:
        contenders[name]["p99_ratio"] = ratio(contenders[name]["p99_ms"], contenders["baseline"]["p99_ms"])
    to_floor = {name: ratio(contenders[name]["seconds"], contenders["floor"]["seconds"])
                for name in ("ours", "floor", "partman")}
    longest = contenders["ours"]["longest_transaction_seconds"]["max"]
    p99 = contenders["ours"]["p99_ratio"]
    return {
        "name": NAME, "title": TITLE, "repetitions": repetitions, "rows": ROWS, "months": MONTHS,
        "drain_pause": DRAIN_PAUSE,
        "rate_per_second": RATE, "reader_hold_seconds": HOLD, "contenders": contenders, "ratios_to_floor": to_floor,
        "targets": [
            {"text": f"Writer p99 while ours drains {ROWS:,} rows: within {P99_TARGET}x of no drain",
             "value": p99["median"], "limit": P99_TARGET, "met": p99["median"] <= P99_TARGET, "ratio": p99},
            {"text": "No transaction of ours longer than 1 s", "value": longest, "unit": "s",
             "limit": LONGEST_TRANSACTION_LIMIT, "met": longest <= LONGEST_TRANSACTION_LIMIT},
            {"text": f"Drain time at most {FLOOR_TARGET}x the floor (INSERT ... SELECT + DELETE per month)",
             "value": to_floor["ours"]["median"], "limit": FLOOR_TARGET,
             "met": to_floor["ours"]["median"] <= FLOOR_TARGET, "ratio": to_floor["ours"]},
        ],
    }
