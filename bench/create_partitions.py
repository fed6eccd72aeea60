"""Benchmark 2: 1,000 daily partitions created on an empty partitioned table.

The same range (995 days back to 4 days ahead) on the same fresh table each time, every contender as the process
a scheduler or an operator would start:
- ours: the runner `run create` with premake 4, backfill 995 on the empty table: CREATE TABLE ... PARTITION OF in
  batches, each transaction sent as one message under lock_timeout;
- ours on a live set: the same run on the table holding one partition (the day before the range) already, so the
  lock-light path: CREATE TABLE ... LIKE, then ATTACH PARTITION, several per transaction;
- the floor the issue names: a psql script of 1,000 CREATE TABLE ... PARTITION OF in one transaction;
- the same script without BEGIN/COMMIT (one transaction per partition), for reference;
- pg_partman: create_parent(p_start_partition := 995 days back, p_premake := 4), which also makes its default
  partition and template table.
"""

from __future__ import annotations

import datetime as dt

from bench import sets
from bench.harness import Bench, ratio, summary

NAME = "create_partitions"
TITLE = "Creating 1,000 daily partitions"
PARTITIONS = 1000
PREMAKE = 4
TARGET_RATIO = 1.3
LIVE_TARGET_RATIO = 1.8
CONTENDERS = ("ours", "ours_live", "plain_one_transaction", "plain_autocommit", "partman")


def run(bench: Bench, repetitions: int) -> dict:
    db = bench.fresh_database("create_1000", partman=True)
    first = sets.today() - dt.timedelta(days=PARTITIONS - PREMAKE - 1)
    days = [first + dt.timedelta(days=offset) for offset in range(PARTITIONS)]
    statements = "".join(sets.partition_of("events", sets.daily_name("events", day), day, day + dt.timedelta(days=1))
                         + ";\n" for day in days)
    one_transaction = bench.scratch / "create_one_transaction.sql"
    one_transaction.write_text("BEGIN;\n" + statements + "COMMIT;\n")
    autocommit = bench.scratch / "create_autocommit.sql"
    autocommit.write_text(statements)
    policy = bench.write_policy("create", [dict(db=db, table="public.events", interval="day", premake=PREMAKE,
                                                backfill=PARTITIONS - PREMAKE - 1)])
    partman = ("SELECT partman.create_parent(p_parent_table := 'public.events', p_control := 'created_at', "
               f"p_type := 'native', p_interval := 'daily', p_premake := {PREMAKE}, "
               f"p_start_partition := '{sets.timestamp(first)}')")
    actions = {
        "ours": lambda: bench.run_runner(policy, "run", "create")[0],
        "ours_live": lambda: bench.run_runner(policy, "run", "create")[0],
        "plain_one_transaction": lambda: bench.run_psql(db, "-f", str(one_transaction)),
        "plain_autocommit": lambda: bench.run_psql(db, "-f", str(autocommit)),
        "partman": lambda: bench.run_psql(db, "-c", partman),
    }
    before_range = first - dt.timedelta(days=1)
    expected = {"ours": PARTITIONS, "ours_live": PARTITIONS + 1, "plain_one_transaction": PARTITIONS,
                "plain_autocommit": PARTITIONS, "partman": PARTITIONS + 1}  # pg_partman adds its default partition
    times = {name: [] for name in CONTENDERS}
    round_trips = {name: set() for name in CONTENDERS}
    for repetition in range(repetitions):
        # Rotated order: no contender always runs first (or right after the biggest cleanup).
        order = CONTENDERS[repetition % len(CONTENDERS):] + CONTENDERS[:repetition % len(CONTENDERS)]
        for name in order:
            sets.drop_partman_set(bench, db, "events")
            sets.create_events(bench, db)
            if name == "ours_live":
                bench.sql(db, sets.partition_of("events", sets.daily_name("events", before_range), before_range, first))
            with bench.statement_counts(db) as counts:
                times[name].append(actions[name]())
            round_trips[name].add(counts["round_trips"])
            made = sets.partition_count(bench, db, "events")
            if made != expected[name]:
                raise RuntimeError(f"{name} made {made} partitions, not {expected[name]}")
    bench.server.psql(f"DROP DATABASE {db}")
    result = {name: dict(summary(samples), round_trips=sorted(round_trips[name])) for name, samples in times.items()}
    ratios = {name: ratio(result[name], result["plain_one_transaction"]) for name in CONTENDERS}
    return {
        "name": NAME,
        "title": TITLE,
        "repetitions": repetitions,
        "partitions": PARTITIONS,
        "contenders": result,
        "ratios_to_floor": ratios,
        "targets": [
            {"text": f"Creating {PARTITIONS:,} partitions: at most {TARGET_RATIO}x the plain-SQL floor "
                     "(CREATE TABLE ... PARTITION OF in one transaction)",
             "value": ratios["ours"]["median"], "limit": TARGET_RATIO, "met": ratios["ours"]["median"] <= TARGET_RATIO,
             "ratio": ratios["ours"]},
            {"text": f"The same {PARTITIONS:,} on a live set (the lock-light path): at most {LIVE_TARGET_RATIO}x "
                     "the floor",
             "value": ratios["ours_live"]["median"], "limit": LIVE_TARGET_RATIO,
             "met": ratios["ours_live"]["median"] <= LIVE_TARGET_RATIO, "ratio": ratios["ours_live"]},
        ],
    }
