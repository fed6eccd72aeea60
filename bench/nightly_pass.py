"""Benchmark 7: a host's nightly pass: 50 tables of 100 daily partitions and 5 of 1,000, in one database.

Every table is made by pg_partman (create_parent, premake 4, so each has pg_partman's default partition) and
extended backwards with plain SQL to its size, with one row per past day. Both tools look at the same 55 tables
with the same policy (4 days ahead), each as the one process cron starts for all of them:
- ours: the scheduled runner `run create` with one policy file listing the 55 tables;
- pg_partman: `psql -c "SELECT partman.run_maintenance()"`, which maintains every table of its part_config.
Two situations, each repetition measuring both tools back to back:
- a new day (the target): every table lacks its newest partition (4 days ahead), as each night when the day has
  moved on, so every pass creates 55 partitions; the newest partitions are dropped again before each pass;
- nothing to do: the sets are complete.
The runner's code in the bench process ("engine") is timed too, without the interpreter start. Round trips per
table come from passes over one table of each size alone (pg_stat_statements, track = all).
"""

from __future__ import annotations

import datetime as dt
import io
import resource
import time

from bench import sets
from bench.harness import Bench, ratio, summary

NAME = "nightly_pass"
TITLE = "A host's nightly pass: 55 tables in one process"
LAYOUT = (("small", 50, 100), ("large", 5, 1000))  # (kind, tables, daily partitions each)
PREMAKE = 4
TARGET_RATIO = 0.7
DB = "nightly"
MAINTENANCE = "SELECT partman.run_maintenance()"
SITUATIONS = ("new_day", "noop")
CONTENDERS = ("ours_process", "partman_process", "ours_engine")


def tables() -> list[tuple[str, int]]:
    return [(f"events_{kind}_{number:02d}", size) for kind, count, size in LAYOUT for number in range(1, count + 1)]


def build(bench: Bench) -> None:
    bench.fresh_database(DB, partman=True)
    oldest = sets.today() - dt.timedelta(days=PREMAKE)
    for table, size in tables():
        sets.create_events(bench, DB, table)
        sets.create_parent(bench, DB, table, "created_at", "daily", PREMAKE)
        made = sets.partition_count(bench, DB, table) - 1  # less the default partition
        sets.add_daily_partitions(bench, DB, table, [oldest - dt.timedelta(days=back)
                                                     for back in range(1, size - made + 1)])
        bench.sql(DB, f"INSERT INTO public.{table} SELECT g, date_trunc('day', now()) - g * interval '1 day' + "
                      "interval '1 hour', 'reading' FROM generate_series(0, %s) AS g", (size - PREMAKE - 1,))
    bench.sql(DB, "ANALYZE")
    check_complete(bench)


def check_complete(bench: Bench) -> None:
    for table, size in tables():
        count = sets.partition_count(bench, DB, table)
        if count != size + 1:
            raise RuntimeError(f"{table} has {count} partitions, not {size} and the default")


def newest_day() -> dt.date:
    return sets.today() + dt.timedelta(days=PREMAKE)


def drop_newest(bench: Bench) -> None:
    """A night has passed: every table lacks the partition 4 days ahead (whichever tool made it last)."""
    lower = sets.timestamp(newest_day())
    names = bench.sql(DB, "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                          "WHERE pg_get_expr(c.relpartbound, c.oid) LIKE %s", (f"FOR VALUES FROM ('{lower}')%",))
    if len(names) != len(tables()):
        raise RuntimeError(f"{len(names)} partitions start at {lower}, not {len(tables())}")
    bench.sql(DB, "DROP TABLE " + ", ".join(f"public.{name}" for (name,) in names))


def policy_items(selected: list[tuple[str, int]]) -> list[dict]:
    """The policy: pg_partman's names (parent_pYYYY_MM_DD), which its run_maintenance() reads bounds from."""
    return [dict(db=DB, table=f"public.{table}", interval="day", premake=PREMAKE, name_template="{parent}_p{suffix}")
            for table, size in selected]


def expect(output: str, situation: str, count: int) -> None:
    word = "CHANGED" if situation == "new_day" else "OK"
    lines = [line for line in output.splitlines() if line.strip()]
    if len(lines) != count or not all(line.startswith(word) for line in lines):
        raise RuntimeError(f"the runner's {situation} pass did not report {word} for {count} tables:\n{output}")


def round_trips_per_table(bench: Bench) -> dict:
    """Round trips of a runner pass over one table alone, per table size and situation (the same in both tools'
    passes over all tables when it is constant)."""
    counts = {}
    for kind, count, size in LAYOUT:
        table = next(entry for entry in tables() if entry[1] == size)
        policy = bench.write_policy(f"nightly_{kind}", policy_items([table]))
        for situation in SITUATIONS:
            if situation == "new_day":
                bench.sql(DB, f"DROP TABLE public.{table[0]}_p{newest_day():%Y_%m_%d}")
            with bench.statement_counts(DB) as count:
                output = bench.run_runner(policy, "run", "create")[1]
            expect(output, situation, 1)
            counts[f"{kind}_{situation}"] = {"partitions": size, "round_trips": count["round_trips"]}
    check_complete(bench)
    return counts


def server_time(bench: Bench) -> dict:
    """What the server spent on the statements of `DB` since the last reset (pg_stat_statements): the top-level
    statements' execution time, and the three costliest statements (top level or inside PL/pgSQL)."""
    oid = bench.value("postgres", "SELECT oid FROM pg_database WHERE datname = %s", (DB,))
    total = bench.value("postgres", "SELECT coalesce(sum(total_exec_time) FILTER (WHERE toplevel), 0) "
                                    "FROM pg_stat_statements WHERE dbid = %s", (oid,))
    costliest = bench.sql("postgres", "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90), calls, "
                                      "total_exec_time FROM pg_stat_statements WHERE dbid = %s "
                                      "ORDER BY total_exec_time DESC LIMIT 3", (oid,))
    return {"server_seconds": float(total) / 1000,
            "costliest": [{"statement": text, "calls": int(calls), "seconds": float(ms) / 1000}
                          for text, calls, ms in costliest]}


def where_time_goes(bench: Bench, policy) -> dict:
    """One more new-day pass of each tool, taken apart: its wall time, the CPU of the process cron starts (the
    runner, or psql), and the server's execution time of what it sent."""
    found = {}
    for name, command in (("ours_process", lambda: bench.run_runner(policy, "run", "create")),
                          ("partman_process", lambda: bench.run_psql(DB, "-c", MAINTENANCE))):
        drop_newest(bench)
        with bench.statement_counts(DB):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            command()
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            found[name] = dict(server_time(bench), wall_seconds=wall, client_cpu_seconds=(
                after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
        check_complete(bench)
    return found


def run(bench: Bench, repetitions: int) -> dict:
    build(bench)
    policy = bench.write_policy("nightly", policy_items(tables()))
    from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled import config as runner_config
    from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled import runner

    loaded = runner_config.load_config(str(policy))
    times = {(situation, name): [] for situation in SITUATIONS for name in CONTENDERS}
    trips = {(situation, name): set() for situation in SITUATIONS for name in CONTENDERS}

    def ours_process(situation: str) -> float:
        elapsed, output = bench.run_runner(policy, "run", "create")
        expect(output, situation, len(tables()))
        return elapsed

    def partman_process(situation: str) -> float:
        return bench.run_psql(DB, "-c", MAINTENANCE)

    def ours_engine(situation: str) -> float:
        out = io.StringIO()
        started = time.perf_counter()
        runner.run(loaded, "create", out=out)
        elapsed = time.perf_counter() - started
        expect(out.getvalue(), situation, len(tables()))
        return elapsed

    functions = dict(ours_process=ours_process, partman_process=partman_process, ours_engine=ours_engine)

    def one(situation: str, name: str) -> float:
        if situation == "new_day":
            drop_newest(bench)
        with bench.statement_counts(DB) as count:
            elapsed = functions[name](situation)
        trips[(situation, name)].add(count["round_trips"])
        check_complete(bench)
        return elapsed

    for situation in SITUATIONS:  # warm caches once, unmeasured
        for name in CONTENDERS:
            one(situation, name)
    for repetition in range(repetitions):
        order = CONTENDERS[repetition % len(CONTENDERS):] + CONTENDERS[:repetition % len(CONTENDERS)]
        for situation in SITUATIONS:
            for name in order:
                times[(situation, name)].append(one(situation, name))
    per_table = round_trips_per_table(bench)
    breakdown = where_time_goes(bench, policy)
    bench.server.psql(f"DROP DATABASE {DB}")
    result = {}
    for situation in SITUATIONS:
        entry = {name: dict(summary(times[(situation, name)]), round_trips=sorted(trips[(situation, name)]))
                 for name in CONTENDERS}
        entry["ratio_process"] = ratio(entry["ours_process"], entry["partman_process"])
        entry["ratio_engine"] = ratio(entry["ours_engine"], entry["partman_process"])
        result[situation] = entry
    constant = all(per_table[f"small_{situation}"]["round_trips"] == per_table[f"large_{situation}"]["round_trips"]
                   for situation in SITUATIONS)
    new_day = result["new_day"]["ratio_process"]
    return {
        "name": NAME, "title": TITLE, "repetitions": repetitions, "premake": PREMAKE,
        "layout": [{"kind": kind, "tables": count, "partitions": size} for kind, count, size in LAYOUT],
        "situations": result, "round_trips_per_table": per_table, "where_time_goes": breakdown,
        "targets": [
            {"text": f"A host's nightly pass (50 tables x 100 daily partitions and 5 x 1,000, each gaining its "
                     f"newest partition): at most {TARGET_RATIO}x pg_partman's run_maintenance() through psql "
                     "(one runner process vs one psql call)",
             "value": new_day["median"], "limit": TARGET_RATIO, "met": new_day["median"] <= TARGET_RATIO,
             "ratio": new_day},
            {"text": "The nightly pass: round trips per table the same for 100 and 1,000 partitions",
             "value": sorted({entry["round_trips"] for entry in per_table.values()}),
             "limit": "one value per situation", "met": constant},
        ],
    }
