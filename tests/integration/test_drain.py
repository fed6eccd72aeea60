"""Draining a default partition against real servers: every row a partition can take moves in short batches into
partitions created for it (any age, within a limit), rows that no partition can take stay and are counted, a run
killed at any point loses and duplicates nothing, LIST sets grow partitions for new values, gaps fill."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import launcher

MODULE = "postgres_partition"
CHECKSUM = ("SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text "
            "FROM (SELECT id, at, payload FROM events) AS t")
MISPLACED = ("SELECT count(*) FROM events WHERE at IS NOT NULL AND tableoid::regclass::text <> "
             "'events_' || to_char(at AT TIME ZONE 'UTC', 'YYYY_MM')")


def events_with_only_a_default(pg, rows=4000, months=40, nulls=25, filler=0):
    pg.sql("CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz, payload text) "
           "PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE events_default PARTITION OF events DEFAULT")
    pg.sql("INSERT INTO events (at, payload) SELECT timestamptz '2022-01-01' + random() * (%s * interval '1 month'), "
           "md5(i::text) || repeat('x', %s) FROM generate_series(1, %s) AS i", (months, filler, rows))
    pg.sql("INSERT INTO events (at, payload) SELECT NULL, 'no key ' || i FROM generate_series(1, %s) AS i", (nulls,))


def drain_args(pg, **extra):
    return pg.params(**dict(dict(table="events", interval="month", premake=1, reference_time="2025-06-15",
                                 default_rows="drain", drain_batch_rows=200), **extra))


def test_check_mode_lists_the_partitions_and_their_rows_then_the_drain_moves_them_all(pg, module_runner):
    events_with_only_a_default(pg)
    before = pg.sql(CHECKSUM)
    preview = module_runner(MODULE, drain_args(pg), check_mode=True)
    assert preview["changed"] is True and pg.value("SELECT count(*) FROM pg_inherits") == 1
    assert sum(entry["rows"] for entry in preview["drained"]) == 4000
    assert len(preview["drained"]) == 40 and preview["left_in_default"] == [{"reason": "the key is NULL",
                                                                             "rows": 25}]

    result = module_runner(MODULE, drain_args(pg))

    assert result.get("failed") is not True, result
    assert [entry["partition"] for entry in result["drained"]] == [entry["partition"] for entry in preview["drained"]]
    assert result["moved_rows"] == 4000 and pg.sql(CHECKSUM) == before
    assert pg.value(MISPLACED) == 0
    assert pg.value("SELECT count(*) FROM events_default") == 25
    assert pg.value("SELECT count(*) FROM pg_description WHERE description LIKE 'pgfleet.partitions drain:%'") == 0
    again = module_runner(MODULE, drain_args(pg))
    assert again["changed"] is False and again["created"] == [] and again["drained"] == []


def test_rows_no_partition_can_take_stay_counted_and_a_limit_spreads_the_drain_over_runs(pg, module_runner):
    events_with_only_a_default(pg, rows=600, months=12, nulls=3)
    pg.sql("INSERT INTO events (at, payload) VALUES ('infinity', 'never'), ('-infinity', 'always')")
    first = module_runner(MODULE, drain_args(pg, drain_max_partitions=5))
    assert len(first["drained"]) == 5 and first["created"][:5] == [e["partition"] for e in first["drained"]]
    reasons = {entry["reason"]: entry["rows"] for entry in first["left_in_default"]}
    assert reasons["the key is NULL"] == 3
    assert reasons["the key lies outside every range this policy can create"] == 2
    assert reasons["more partitions than drain_max_partitions would be needed this run; the next run takes them"] \
        == 600 - sum(entry["rows"] for entry in first["drained"])
    second = module_runner(MODULE, drain_args(pg, drain_max_partitions=5))
    third = module_runner(MODULE, drain_args(pg, drain_max_partitions=5))
    assert len(second["drained"]) == 5 and len(third["drained"]) == 2
    assert pg.value("SELECT count(*) FROM events_default") == 5 and pg.value(MISPLACED) == 0


def test_a_large_default_partition_is_drained_without_blocking_a_writer_of_the_present(pg, module_runner):
    """Over 8 MB of default partition: each range is kept out of it by a validated constraint, so that ATTACH does
    not scan it under ACCESS EXCLUSIVE; a writer of the current month never waits more than a moment."""
    events_with_only_a_default(pg, rows=40000, months=6, nulls=0, filler=250)
    pg.sql("CREATE TABLE events_2025_06 PARTITION OF events FOR VALUES FROM ('2025-06-01') TO ('2025-07-01')")
    before = pg.sql(CHECKSUM)
    latencies, stop = [], threading.Event()

    def write():
        with pg.connect() as writer:
            while not stop.is_set():
                started = time.monotonic()
                writer.execute("INSERT INTO events (at, payload) VALUES ('2025-06-20', 'live')")
                latencies.append(time.monotonic() - started)
                time.sleep(0.005)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        result = module_runner(MODULE, drain_args(pg, drain_batch_rows=2000, premake=0))
    finally:
        stop.set()
        thread.join()
    assert result.get("failed") is not True, result
    assert len(result["drained"]) == 6 and result["moved_rows"] == 40000
    assert sum(1 for query in result["queries"] if "VALIDATE CONSTRAINT" in query) == 6
    live = pg.value("SELECT count(*) FROM events WHERE payload = 'live'")
    assert live == len(latencies) and pg.sql(CHECKSUM) != before
    assert pg.value("SELECT count(*) FROM events WHERE payload <> 'live'") == 40000 and pg.value(MISPLACED) == 0
    assert max(latencies) < 1.0, max(latencies)
    assert pg.value("SELECT count(*) FROM pg_constraint WHERE conname LIKE 'pgfleet%'") == 0


def test_a_writer_into_a_range_being_drained_loses_nothing_and_the_drain_converges(pg, module_runner):
    events_with_only_a_default(pg, rows=3000, months=3, nulls=0)
    errors, written, stop = [], [], threading.Event()

    def write():
        with pg.connect() as writer:
            while not stop.is_set():
                try:
                    writer.execute("INSERT INTO events (at, payload) VALUES ('2022-02-10', 'late')")
                    written.append(1)
                except Exception as exc:  # noqa: BLE001 (any failure of the writer fails the test)
                    errors.append(str(exc))
                time.sleep(0.002)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        result = module_runner(MODULE, drain_args(pg, drain_batch_rows=50, drain_pause=0.01))
    finally:
        stop.set()
        thread.join()
    assert result.get("failed") is not True, result
    assert errors == []
    assert pg.value("SELECT count(*) FROM events") == 3000 + len(written)
    assert pg.value("SELECT count(*) FROM events_default WHERE at IS NOT NULL") == 0 and pg.value(MISPLACED) == 0


def test_new_list_values_get_partitions_named_safely_and_a_second_run_is_a_no_op(pg, module_runner):
    pg.sql("CREATE TABLE tickets (id int, status text) PARTITION BY LIST (status)")
    pg.sql("CREATE TABLE tickets_open PARTITION OF tickets FOR VALUES IN ('open')")
    pg.sql("CREATE TABLE tickets_default PARTITION OF tickets DEFAULT")
    pg.sql("INSERT INTO tickets SELECT i, (ARRAY['open', 'closed', 'On Hold', 'x''; DROP TABLE tickets; --'])"
           "[i % 4 + 1] FROM generate_series(1, 400) AS i")
    args = pg.params(table="tickets", list_new_values="create", drain_batch_rows=20)
    preview = module_runner("postgres_partition", args, check_mode=True)
    assert sorted(entry["rows"] for entry in preview["drained"]) == [100, 100, 100]
    result = module_runner("postgres_partition", args)
    assert result.get("failed") is not True, result
    names = sorted(result["created"])
    assert names[0] == "tickets_closed" and names[1].startswith("tickets_on_hold_")
    assert names[2].startswith("tickets_x_drop_table_tickets_")
    assert pg.value("SELECT count(*) FROM tickets_default") == 0
    assert pg.value("SELECT count(*) FROM tickets WHERE tableoid = 'tickets_default'::regclass") == 0
    assert module_runner("postgres_partition", args)["changed"] is False


def test_a_new_list_value_whose_name_is_taken_is_refused_before_any_change(pg, module_runner):
    pg.sql("CREATE TABLE tickets (id int, status text) PARTITION BY LIST (status)")
    pg.sql("CREATE TABLE tickets_closed PARTITION OF tickets FOR VALUES IN ('shut')")
    pg.sql("CREATE TABLE tickets_default PARTITION OF tickets DEFAULT")
    pg.sql("INSERT INTO tickets VALUES (1, 'closed')")
    result = module_runner("postgres_partition", pg.params(table="tickets", list_new_values="create"))
    assert result.get("failed") is True and "would be named tickets_closed" in result["msg"], result
    assert pg.value("SELECT count(*) FROM tickets_default") == 1


def test_gaps_fill_creates_the_missing_partitions_and_moves_their_rows(pg, module_runner):
    pg.sql("CREATE TABLE events (at date NOT NULL, v int) PARTITION BY RANGE (at)")
    for month in ("01", "02", "05", "06"):
        pg.sql(f"CREATE TABLE events_2025_{month} PARTITION OF events FOR VALUES FROM ('2025-{month}-01') TO "
               f"(date '2025-{month}-01' + interval '1 month')")
    pg.sql("CREATE TABLE events_default PARTITION OF events DEFAULT")
    pg.sql("INSERT INTO events VALUES ('2025-03-03', 1), ('2025-04-04', 2)")
    args = pg.params(table="events", interval="month", premake=0, reference_time="2025-06-15", gaps="fill")
    result = module_runner("postgres_partition", args)
    assert sorted(result["created"]) == ["events_2025_03", "events_2025_04"] and result["moved_rows"] == 2
    assert module_runner("postgres_partition", args)["changed"] is False


def test_the_runner_prints_the_drain_as_it_goes_and_records_it(pg, tmp_path):
    events_with_only_a_default(pg, rows=300, months=3, nulls=1)
    config = tmp_path / "partitions.yml"
    config.write_text(json.dumps(dict(
        status_path=str(tmp_path / "status.json"), lock_path=str(tmp_path / "runner.lock"),
        connection=dict(login_unix_socket=pg.server.socket_dir, port=pg.server.port, login_user="postgres"),
        tables=[dict(db=pg.name, table="events", interval="month", premake=1, default_rows="drain",
                     drain_batch_rows=50)])))
    run = subprocess.run(launcher.command("--config", str(config), "run", "create"), capture_output=True, text=True,
                         env=launcher.environment(), timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    drains = [line for line in run.stdout.splitlines() if line.startswith("DRAIN ")]
    assert len(drains) == 3 and all(" attached, " in line for line in drains)
    assert "1 rows stay in the default partition: the key is NULL" in run.stdout
    record = json.loads((tmp_path / "status.json").read_text())["tables"][f"{pg.name}/events"]["drain"]
    assert sum(entry["rows"] for entry in record["partitions"].values()) == 300
    assert record["left"] == [{"reason": "the key is NULL", "rows": 1}]


def everywhere(pg):
    """CHECKSUM over the set and the tables an interrupted drain is filling (their rows are not attached yet)."""
    filling = [row[0] for row in pg.sql("SELECT c.relname::text FROM pg_class c JOIN pg_description d ON d.objoid = "
                                        "c.oid WHERE d.description LIKE 'pgfleet.partitions drain:%'")]
    union = " UNION ALL ".join(["SELECT id, at, payload FROM events"] + [
        f"SELECT id, at, payload FROM {name}" for name in filling])
    return pg.sql(f"SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM ({union}) AS t")


def runner_config(pg, tmp_path, **item):
    config = tmp_path / "partitions.yml"
    config.write_text(json.dumps(dict(
        status_path=str(tmp_path / "status.json"), lock_path=str(tmp_path / "runner.lock"),
        connection=dict(login_unix_socket=pg.server.socket_dir, port=pg.server.port, login_user="postgres"),
        tables=[dict(dict(db=pg.name, table="events", interval="month", premake=1, default_rows="drain"),
                     **item)])))
    return config


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2 ** 31), kills=st.lists(st.floats(0.05, 2.5), min_size=2, max_size=4))
def test_a_drain_killed_at_random_points_loses_and_duplicates_nothing(pg, tmp_path_factory, seed, kills):
    """SIGKILL at random points, then runs until one finishes: the multiset of rows (a checksum of every column) is
    what was inserted, and each row sits in the partition its key belongs to."""
    pg.sql("DROP TABLE IF EXISTS events")
    pg.sql("SELECT setseed(%s)", (seed / 2 ** 31,))
    events_with_only_a_default(pg, rows=1500, months=40, nulls=17)
    before = pg.sql(CHECKSUM)
    config = runner_config(pg, tmp_path_factory.mktemp("drain"), drain_batch_rows=60, drain_pause=0.002)
    command = launcher.command("--config", str(config), "run", "create")
    for delay in kills:
        process = subprocess.Popen(command, env=launcher.environment(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert everywhere(pg) == before
    for _attempt in range(5):
        done = subprocess.run(command, env=launcher.environment(), capture_output=True, text=True, timeout=300,
                              check=False)
        if done.returncode == 0 and pg.value("SELECT count(*) FROM events_default WHERE at IS NOT NULL") == 0:
            break
    assert done.returncode == 0, done.stdout + done.stderr
    assert pg.sql(CHECKSUM) == before
    assert pg.value(MISPLACED) == 0 and pg.value("SELECT count(*) FROM events_default") == 17
    assert pg.value("SELECT count(*) FROM pg_description WHERE description LIKE 'pgfleet.partitions drain:%'") == 0
    assert pg.value("SELECT count(*) FROM pg_constraint WHERE conname LIKE 'pgfleet%'") == 0


def test_info_shows_where_the_default_partitions_rows_would_go(pg, module_runner):
    events_with_only_a_default(pg, rows=0, nulls=2)
    pg.sql("INSERT INTO events (at, payload) VALUES ('2024-03-05', 'a'), ('2024-03-07', 'b'), ('2024-05-01', 'c')")
    facts = module_runner("postgres_partition_info", pg.params(table="events", interval="month"))["tables"]
    assert facts["public.events"]["default_rows_by_target"] == {
        "targets": [{"partition": "events_2024_03", "lower": "2024-03-01T00:00:00+00:00",
                     "upper": "2024-04-01T00:00:00+00:00", "rows": 2},
                    {"partition": "events_2024_05", "lower": "2024-05-01T00:00:00+00:00",
                     "upper": "2024-06-01T00:00:00+00:00", "rows": 1}],
        "left": [{"reason": "the key is NULL", "rows": 2}]}
    plain = module_runner("postgres_partition_info", pg.params(table="events"))["tables"]["public.events"]
    assert "default_rows_by_target" not in plain and plain["default_rows"] == 5
