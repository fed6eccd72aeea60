"""postgres_partition against real servers: the contract (check mode, run, catalog, idempotent rerun),
rows moved out of the default partition, lock-light DDL beside open transactions, concurrent runs, refusals."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import connection
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.job import ensure_partitions
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.params import policy_from_params
from tests.support.polling import wait_for

HEALTH_TABLES = {
    "raw_ingestions": ("received_at", "timestamptz"),
    "audit_log": ("created_at", "timestamptz"),
    "heart_rate_metrics": ("recorded_at", "timestamptz"),
    "blood_pressure_metrics": ("recorded_at", "timestamptz"),
    "activity_metrics": ("recorded_at", "timestamptz"),
    "sleep_metrics": ("sleep_date", "date"),
}


def relations(pg, schema="public"):
    """Every relation of the schema with its kind: a snapshot that any DDL changes."""
    return pg.sql(
        "SELECT c.relname::text, c.relkind::text, c.relispartition FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1", (schema,))


def partitions_of(pg, table):
    return [row[0] for row in pg.sql(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass ORDER BY 1", (table,))]


def create_health_tables(pg):
    for table, (column, column_type) in HEALTH_TABLES.items():
        pg.sql(f"CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY, {column} {column_type} NOT NULL, "
               f"payload jsonb DEFAULT '{{}}', PRIMARY KEY (id, {column})) PARTITION BY RANGE ({column})")
        pg.sql(f"CREATE INDEX ON {table} ({column})")


def test_health_api_tables_get_fourteen_monthly_partitions_through_a_play(pg, tmp_path):
    create_health_tables(pg)
    playbook = tmp_path / "play.yml"
    playbook.write_text(textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/pgfleet.partitions.postgres:
              login_unix_socket: "{pg.server.socket_dir}"
              port: {pg.server.port}
              login_user: postgres
              login_db: {pg.name}
          tasks:
            - name: Monthly partitions for the health-data API
              pgfleet.partitions.postgres_partition:
                table: "{{{{ item }}}}"
                interval: month
                premake: 12
                backfill: 1
                reference_time: "2025-01-15T12:00:00+00:00"
              loop: {json.dumps(sorted(HEALTH_TABLES))}
              register: partitioned
            - name: Show what a run reports
              ansible.builtin.copy:
                content: "{{{{ partitioned | to_json }}}}"
                dest: "{tmp_path}/result.json"
                mode: "0600"
        """))

    def play(*extra):
        completed = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", *extra,
             str(playbook)],
            capture_output=True, text=True, timeout=300, check=False,
            env=dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="false"),
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        return json.loads((tmp_path / "result.json").read_text())["results"]

    first = play()
    expected_suffixes = ["2024_12"] + ["2025_%02d" % month for month in range(1, 13)] + ["2026_01"]
    for table in HEALTH_TABLES:
        assert partitions_of(pg, table) == [f"{table}_{suffix}" for suffix in expected_suffixes]
    assert all(result["changed"] and len(result["created"]) == 14 for result in first)
    second = play()
    assert [result["changed"] for result in second] == [False] * len(HEALTH_TABLES)
    assert all(result["queries"] == [] for result in second)


def test_check_mode_runs_no_ddl_then_the_real_run_matches_it_and_a_rerun_is_a_no_op(pg, module_runner):
    pg.sql("CREATE TABLE events (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at)")
    args = pg.params(table="events", interval="day", premake=3, reference_time="2025-03-30T12:00:00+02:00",
                     timezone="Europe/Berlin")
    before = relations(pg)
    preview = module_runner("postgres_partition", args, check_mode=True, diff=True)
    assert relations(pg) == before
    assert preview["changed"] and preview["created"] == [
        "events_2025_03_30", "events_2025_03_31", "events_2025_04_01", "events_2025_04_02"]
    listing, statements = preview["diff"]
    assert "events_2025_03_31" in listing["after"] and listing["before"] == ""
    assert statements["before"] == "" and statements["after"].splitlines() == [
        " ".join(query.split()) + ";" for query in preview["queries"]]
    applied = module_runner("postgres_partition", args, diff=True)
    assert applied["changed"] and applied["created"] == preview["created"]
    assert applied["queries"] == preview["queries"]
    bounds = dict(pg.sql(
        "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass"))
    # The DST day in Berlin is 23 hours long: local midnight to local midnight.
    assert bounds["events_2025_03_30"] == (
        "FOR VALUES FROM ('2025-03-29 23:00:00+00') TO ('2025-03-30 22:00:00+00')")
    again = module_runner("postgres_partition", args)
    assert again["changed"] is False and again["queries"] == [] and again["created"] == []


def test_parent_indexes_constraints_and_defaults_reach_every_new_partition(pg, module_runner):
    pg.sql("CREATE TABLE readings (id bigint GENERATED BY DEFAULT AS IDENTITY, at date NOT NULL, "
           "value numeric CHECK (value >= 0), note text DEFAULT 'none', PRIMARY KEY (id, at)) "
           "PARTITION BY RANGE (at)")
    pg.sql("CREATE INDEX readings_value ON readings (value)")
    module_runner("postgres_partition", pg.params(table="readings", interval="month", premake=1,
                                                  reference_time="2025-05-05"))
    pg.sql("INSERT INTO readings (at, value) VALUES ('2025-05-06', 1), ('2025-06-01', 2)")
    assert pg.sql("SELECT id, note FROM readings ORDER BY id") == [(1, "none"), (2, "none")]
    for partition in ("readings_2025_05", "readings_2025_06"):
        assert pg.value("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", (partition,)) == 2
        assert pg.value("SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'",
                        (partition,)) == 1
    with pytest.raises(Exception, match="check constraint"):
        pg.sql("INSERT INTO readings (at, value) VALUES ('2025-05-07', -1)")


MOMENTS = st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2025, 12, 31, 23, 59, 59),
                       timezones=st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=-5)),
                                                  dt.timezone(dt.timedelta(hours=2))]))
EDGES = st.sampled_from([
    "2024-03-31 01:59:59+00", "2024-03-31 00:59:59+00", "2024-10-27 00:59:59+00", "2024-10-27 01:00:00+00",
    "2024-02-29 23:00:00+00", "2024-12-31 22:59:59.999999+00", "2024-12-31 23:00:00+00", "2025-03-30 01:00:00+00",
])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(random_rows=st.lists(MOMENTS, min_size=1, max_size=40), edge_rows=st.lists(EDGES, max_size=6))
def test_rows_in_the_default_partition_move_into_new_partitions_and_none_is_lost(pg, random_rows, edge_rows):
    pg.sql("DROP TABLE IF EXISTS metrics")
    pg.sql("CREATE TABLE metrics (id serial, at timestamptz NOT NULL, v text) PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE metrics_default PARTITION OF metrics DEFAULT")
    with pg.connect() as conn:
        for moment in random_rows:
            conn.execute("INSERT INTO metrics (at, v) VALUES (%s, md5(%s::text))", (moment, str(moment)))
        for text in edge_rows:
            conn.execute("INSERT INTO metrics (at, v) VALUES (%s, 'edge')", (text,))
    before = pg.sql("SELECT id, at, v FROM metrics ORDER BY id")
    database = connection.connect(pg.params())
    try:
        result = ensure_partitions(database, parse_table_name("metrics"), policy_from_params(dict(
            interval="month", premake=12, backfill=13, reference_time="2025-01-01", timezone="Europe/Berlin")))
    finally:
        database.close()
    assert pg.sql("SELECT id, at, v FROM metrics ORDER BY id") == before
    assert result["moved_rows"] == len(before)
    assert pg.value("SELECT count(*) FROM metrics_default") == 0
    misplaced = pg.sql("SELECT id, tableoid::regclass::text, to_char(at AT TIME ZONE 'Europe/Berlin', 'YYYY_MM') "
                       "FROM metrics WHERE tableoid::regclass::text <> 'metrics_' || "
                       "to_char(at AT TIME ZONE 'Europe/Berlin', 'YYYY_MM')")
    assert misplaced == []


def test_rows_outside_every_new_range_stay_in_the_default_partition(pg, module_runner):
    pg.sql("CREATE TABLE logs (at date NOT NULL, line text) PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE logs_default PARTITION OF logs DEFAULT")
    pg.sql("INSERT INTO logs VALUES ('2020-01-01', 'old'), ('2025-02-03', 'current')")
    result = module_runner("postgres_partition", pg.params(table="logs", interval="month", premake=1,
                                                           reference_time="2025-02-10"))
    assert result["moved_rows"] == 1
    assert pg.sql("SELECT tableoid::regclass::text, line FROM logs ORDER BY at") == [
        ("logs_default", "old"), ("logs_2025_02", "current")]


def test_a_partition_whose_rows_sit_in_the_default_is_created_while_a_writer_keeps_adding_to_them(pg, module_runner):
    """The move and the ATTACH run in one transaction; rows a writer adds to the default partition after the move's
    snapshot would make ATTACH fail (23514). The default partition is locked before the move, so the writer waits
    for the transaction instead, and its rows then go to the new partition."""
    pg.sql("CREATE TABLE readings (id bigserial, at timestamptz NOT NULL, v int) PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE readings_default PARTITION OF readings DEFAULT")
    pg.sql("INSERT INTO readings (at, v) SELECT timestamptz '2025-01-01' + i * interval '20 seconds', i "
           "FROM generate_series(1, 50000) i")
    stop, written, errors = threading.Event(), [], []

    def write():
        with pg.connect() as writer:
            writer.execute("SET statement_timeout = '20s'")
            while not stop.is_set():
                try:
                    writer.execute("INSERT INTO readings (at, v) VALUES ('2025-01-20 12:00+00', -1)")
                    written.append(1)
                except Exception as exc:  # noqa: BLE001 (any failure of the writer fails the test below)
                    errors.append(str(exc))

    writer_thread = threading.Thread(target=write)
    writer_thread.start()
    try:
        wait_for(lambda: len(written) > 20, 10, "the writer's first rows")
        result = module_runner("postgres_partition", pg.params(table="readings", interval="month", premake=0,
                                                               reference_time="2025-01-15", lock_timeout="5s"))
        if not result.get("failed"):
            wait_for(lambda: pg.value("SELECT count(*) FROM ONLY readings_2025_01 WHERE v = -1") > 0, 10,
                     "the writer's rows reaching the new partition")
    finally:
        stop.set()
        writer_thread.join()
    assert result.get("failed") is not True, result
    assert result["created"] == ["readings_2025_01"]
    assert errors == []
    assert pg.value("SELECT count(*) FROM readings") == 50000 + len(written)
    assert pg.value("SELECT count(*) FROM readings_default") == 0
    assert result["moved_rows"] >= 50000


def collect_notices(raw) -> list:
    """The server's notices to this connection, whichever driver made it."""
    notices = []
    if hasattr(raw, "add_notice_handler"):
        raw.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary))
    else:
        # psycopg2 appends each notice to any object put in place of its capped list.
        raw.notices = notices
    return notices


def test_a_large_default_partition_is_not_scanned_under_access_exclusive(pg):
    pg.sql("CREATE TABLE big (at timestamp NOT NULL, filler text) PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE big_default PARTITION OF big DEFAULT")
    pg.sql("INSERT INTO big SELECT timestamp '2019-01-01' + i * interval '1 minute', repeat('x', 200) "
           "FROM generate_series(1, 60000) i")
    database = connection.connect(pg.params())
    notices = collect_notices(database.raw)
    database.execute("SET client_min_messages TO debug1", record=False)
    try:
        result = ensure_partitions(database, parse_table_name("big"), policy_from_params(dict(
            interval="month", premake=0, reference_time="2025-01-15")))
    finally:
        database.close()
    assert result["created"] == ["big_2025_01"] and result["moved_rows"] == 0
    # PostgreSQL says so when ATTACH skips the scan of the default partition.
    assert any("default partition" in notice and "implied by existing constraints" in notice for notice in notices)
    statements = result["queries"]
    validate = next(i for i, s in enumerate(statements) if "VALIDATE CONSTRAINT" in s)
    attach = next(i for i, s in enumerate(statements) if "ATTACH PARTITION" in s)
    assert validate < attach
    assert pg.value("SELECT count(*) FROM pg_constraint WHERE conrelid = 'big_default'::regclass "
                    "AND conname LIKE 'pgfleet%'") == 0
    assert pg.value("SELECT count(*) FROM big") == 60000


def test_ddl_passes_a_reader_holding_an_open_transaction_and_writers_are_not_queued(pg, module_runner):
    pg.sql("CREATE TABLE orders (at timestamptz NOT NULL, amount int) PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE orders_2025_01 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2025-02-01')")
    reader = pg.connect()
    reader.autocommit = False
    reader.execute("SELECT count(*) FROM orders").fetchall()  # ACCESS SHARE on the parent, held
    stop = threading.Event()
    latencies = []

    def write():
        with pg.connect() as writer:
            writer.execute("SET statement_timeout = '5s'")
            while not stop.is_set():
                started = time.monotonic()
                writer.execute("INSERT INTO orders VALUES ('2025-01-10', 1)")
                latencies.append(time.monotonic() - started)
                time.sleep(0.005)

    writer_thread = threading.Thread(target=write)
    writer_thread.start()
    try:
        # The control: the plain DDL a cron job would run cannot get past the reader.
        with pg.connect() as plain:
            plain.execute("SET lock_timeout = '300ms'")
            with pytest.raises(Exception, match="lock timeout"):
                plain.execute("CREATE TABLE orders_2025_02 PARTITION OF orders "
                              "FOR VALUES FROM ('2025-02-01') TO ('2025-03-01')")
        started = time.monotonic()
        result = module_runner("postgres_partition", pg.params(
            table="orders", interval="month", premake=3, reference_time="2025-01-15", lock_timeout="1s",
            retries=0))
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        writer_thread.join()
        reader.rollback()
        reader.close()
    assert result.get("failed") is not True, result
    assert result["created"] == ["orders_2025_02", "orders_2025_03", "orders_2025_04"]
    assert elapsed < 5
    assert latencies and max(latencies) < 1.0, max(latencies)


def test_two_runs_started_together_both_succeed_with_the_same_end_state(pg):
    pg.sql("CREATE TABLE sessions (started timestamptz NOT NULL) PARTITION BY RANGE (started)")
    policy = policy_from_params(dict(interval="day", premake=60, backfill=5, reference_time="2025-06-01"))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        database = connection.connect(pg.params())
        try:
            barrier.wait()
            results.append(ensure_partitions(database, parse_table_name("sessions"), policy))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=run), threading.Thread(target=run)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(len(result["created"]) for result in results) == [0, 66]
    assert results[0]["partitions"] == results[1]["partitions"]
    assert len(partitions_of(pg, "sessions")) == 66


def test_integer_keys_follow_the_highest_key_and_epoch_keys_follow_the_clock(pg, module_runner):
    pg.sql("CREATE TABLE tickets (id bigint NOT NULL) PARTITION BY RANGE (id)")
    pg.sql("CREATE TABLE tickets_first PARTITION OF tickets FOR VALUES FROM (0) TO (1000)")
    pg.sql("INSERT INTO tickets VALUES (999)")
    by_key = module_runner("postgres_partition", pg.params(table="tickets", interval="1000", premake=2))
    assert by_key["created"] == ["tickets_p1000", "tickets_p2000"]
    pg.sql("CREATE TABLE clicks (at_ms bigint NOT NULL) PARTITION BY RANGE (at_ms)")
    by_clock = module_runner("postgres_partition", pg.params(table="clicks", interval="month", epoch="milliseconds",
                                                             premake=1, reference_time="2025-01-20T00:00:00Z"))
    assert by_clock["created"] == ["clicks_2025_01", "clicks_2025_02"]
    assert by_clock["partitions"][0]["lower"] == 1735689600000


def test_list_hash_and_default_partitions(pg, module_runner):
    pg.sql("CREATE TABLE appointments (id int, is_completed boolean) PARTITION BY LIST (is_completed)")
    pg.sql("CREATE TABLE appointments_default PARTITION OF appointments DEFAULT")
    pg.sql("INSERT INTO appointments VALUES (1, false), (2, true), (3, NULL)")
    listed = module_runner("postgres_partition", pg.params(
        table="appointments", list_partitions={"active": [False], "completed": [True]}))
    assert listed["created"] == ["appointments_active", "appointments_completed"] and listed["moved_rows"] == 2
    assert pg.sql("SELECT id, tableoid::regclass::text FROM appointments ORDER BY id") == [
        (1, "appointments_active"), (2, "appointments_completed"), (3, "appointments_default")]
    pg.sql("CREATE TABLE visits (patient int) PARTITION BY HASH (patient)")
    hashed = module_runner("postgres_partition", pg.params(table="visits", hash_modulus=4))
    assert hashed["created"] == ["visits_hash_0", "visits_hash_1", "visits_hash_2", "visits_hash_3"]
    pg.sql("INSERT INTO visits SELECT generate_series(1, 100)")
    assert module_runner("postgres_partition", pg.params(table="visits", hash_modulus=4))["changed"] is False
    pg.sql("CREATE TABLE users (role text) PARTITION BY LIST (role)")
    defaulted = module_runner("postgres_partition", pg.params(table="users", default_partition=True))
    assert defaulted["created"] == ["users_default"]


def test_partitions_named_by_others_are_adopted_and_long_names_keep_their_suffix(pg, module_runner):
    pg.sql("CREATE TABLE events (at timestamptz NOT NULL) PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE events_p20250101 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2025-02-01')")
    pg.sql("CREATE TABLE events_whole_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')")
    result = module_runner("postgres_partition", pg.params(table="events", interval="month", premake=1, backfill=2,
                                                           reference_time="2025-01-10"))
    assert result["created"] == ["events_2025_02"]
    long_parent = "a" * 60
    pg.sql(f"CREATE TABLE {long_parent} (at date NOT NULL) PARTITION BY RANGE (at)")
    named = module_runner("postgres_partition", pg.params(table=long_parent, interval="day", premake=1,
                                                          reference_time="2025-01-01"))
    assert len(named["created"]) == 2
    assert all(len(name) <= 63 and name.endswith(suffix) for name, suffix in
               zip(named["created"], ["_2025_01_01", "_2025_01_02"]))


REFUSED = [
    pytest.param(dict(table='events"; DROP TABLE events; --'), "not a plain", id="a table name with a quote"),
    pytest.param(dict(table="events; DROP TABLE events"), "not a plain", id="a table name with a semicolon"),
    pytest.param(dict(table="events/* x */"), "not a plain", id="a table name with a comment"),
    pytest.param(dict(table="nowhere.events"), "does not exist", id="an unknown schema"),
    pytest.param(dict(table="missing"), "does not exist", id="an unknown table"),
    pytest.param(dict(table="plain"), "not a partitioned table", id="a table that is not partitioned"),
    pytest.param(dict(table="by_day", interval="hour"), "does not fit a date key", id="hourly on a date key"),
    pytest.param(dict(table="by_name", interval="month"), "not supported", id="a text RANGE key"),
    pytest.param(dict(premake=-1), "premake and backfill", id="a negative premake"),
    pytest.param(dict(interval="fortnight"), "is neither a word", id="an unknown interval"),
    pytest.param(dict(list_partitions={"a": [1]}), "LIST tables only", id="a LIST option on a RANGE table"),
    pytest.param(dict(name_template="{parent}_x"), "given to two partitions", id="a template that repeats names"),
    pytest.param(dict(name_template="{parent}_{nope}"), "unknown field", id="a template with an unknown field"),
    pytest.param(dict(lock_timeout="1s; SELECT 1"), "lock_timeout", id="SQL in lock_timeout"),
    pytest.param(dict(name_template='{parent}_"{year}'), "has '\"' outside its fields", id="a quote in a template"),
    pytest.param(dict(name_template="{parent};{month}"), "has ';' outside its fields", id="a semicolon in a template"),
    pytest.param(dict(name_template="{parent}\n{month}"), "outside its fields", id="a newline in a template"),
    pytest.param(dict(name_template="{parent} {month}"), "outside its fields", id="a space in a template"),
    pytest.param(dict(retries=-1), "retries must be 0 or more", id="negative retries"),
    pytest.param(dict(run_lock_wait=-5), "run_lock_wait must be 0 or more", id="a negative run_lock_wait"),
]


@pytest.mark.parametrize("overrides, message", REFUSED)
def test_bad_input_is_refused_clearly_and_changes_nothing(pg, module_runner, overrides, message):
    pg.sql("CREATE TABLE events (at timestamptz NOT NULL) PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE plain (at timestamptz)")
    pg.sql("CREATE TABLE by_day (at date NOT NULL) PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE by_name (name text NOT NULL) PARTITION BY RANGE (name)")
    before = relations(pg)
    args = pg.params(table="events", interval="month", premake=2, reference_time="2025-01-01")
    args.update(overrides)
    result = module_runner("postgres_partition", args)
    assert result.get("failed") is True, result
    assert message in result["msg"]
    assert result["queries"] == []
    assert relations(pg) == before


def test_a_hot_standby_is_left_alone_and_receives_the_partitions_through_replication(pg, standby, module_runner):
    pg.sql("CREATE TABLE events (at timestamptz NOT NULL) PARTITION BY RANGE (at)")
    replica = standby()
    args = pg.params(table="events", interval="month", premake=2, reference_time="2025-01-01")
    on_standby = module_runner("postgres_partition", dict(args, login_unix_socket=replica.socket_dir,
                                                          port=replica.port))
    assert on_standby.get("failed") is not True, on_standby
    assert on_standby["changed"] is False and on_standby["queries"] == []
    assert "hot standby" in on_standby["skipped_reason"]
    assert module_runner("postgres_partition", args)["changed"] is True
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replicated = replica.psql("SELECT count(*) FROM pg_inherits", dbname=pg.name)
        if replicated == "3":
            break
        time.sleep(0.2)
    assert replicated == "3"


def test_a_day_samoa_skipped_gets_no_partition_and_the_rows_around_it_land(pg, module_runner):
    pg.sql("CREATE TABLE visits (at timestamptz NOT NULL) PARTITION BY RANGE (at)")
    args = pg.params(table="visits", interval="day", premake=2, backfill=1, reference_time="2011-12-29T12:00:00",
                     timezone="Pacific/Apia")
    result = module_runner("postgres_partition", args)
    assert result["created"] == ["visits_2011_12_29", "visits_2011_12_31", "visits_2011_12_28"]  # 30th: none
    # The last moment of 29 December in Apia (UTC-10) is followed by the first of 31 December (UTC+14).
    pg.sql("INSERT INTO visits VALUES ('2011-12-29 23:59:59-10'), ('2011-12-31 00:00:00+14')")
    assert pg.sql("SELECT tableoid::regclass::text FROM visits ORDER BY at") == [
        ("visits_2011_12_29",), ("visits_2011_12_31",)]
    assert module_runner("postgres_partition", args)["changed"] is False


LIST_VALUES = [
    pytest.param("text", {"off": [False]}, "holds False, a bool, but the key status is text",
                 id="a YAML false for text"),
    pytest.param("text", {"n": [3]}, "holds 3, a int, but the key status is text", id="a YAML number for text"),
    pytest.param("integer", {"one": ["01"]}, "LIST value '01' is '1' as integer; write it as '1'",
                 id="an integer spelled otherwise than PostgreSQL spells it"),
    pytest.param("integer", {"one": ["1"], "x": ["x"]}, "LIST value 'x' is not a valid integer",
                 id="a value that is no integer"),
    pytest.param("boolean", {"on": ["TRUE"]}, "write it as 'true'", id="a boolean in capitals"),
]


@pytest.mark.parametrize("key_type, list_partitions, message", LIST_VALUES)
def test_list_values_that_do_not_fit_the_key_exactly_are_refused_before_any_ddl(pg, module_runner, key_type,
                                                                                list_partitions, message):
    pg.sql(f"CREATE TABLE tickets (id int, status {key_type}) PARTITION BY LIST (status)")
    before = relations(pg)
    result = module_runner("postgres_partition", pg.params(table="tickets", list_partitions=list_partitions))
    assert result.get("failed") is True and message in result["msg"], result
    assert result["queries"] == [] and relations(pg) == before


def test_list_partitions_show_their_values_in_the_diff_and_a_rerun_is_a_no_op(pg, module_runner):
    pg.sql("CREATE TABLE tickets (id int, priority integer, done boolean) PARTITION BY LIST (priority)")
    args = pg.params(table="tickets", list_partitions={"low": [1, 2], "high": ["3"], "none": [None]})
    preview = module_runner("postgres_partition", args, check_mode=True, diff=True)
    assert preview["diff"][0]["after"].splitlines() == [
        "tickets_high IN ('3')", "tickets_low IN ('1', '2')", "tickets_none IN (NULL)"]
    assert module_runner("postgres_partition", args)["changed"] is True
    assert module_runner("postgres_partition", args)["changed"] is False
