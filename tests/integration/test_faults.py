"""The fault suite: the engine's long jobs killed at points spread over their run (SIGKILL of the runner or the
module), the server stopped at once mid-run, and two runs at the same time. After every fault and after the run that
finishes the work, every row is in the table (or a table the engine is still filling) or in a verified dump that
restores it; nothing is duplicated in the table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import launcher
from tests.support.collection import COLLECTIONS_ROOT, REPO

ROWS_PER_MONTH = 40
# When a fault strikes, in seconds after the job started: spread over a run of a few seconds (the dump wrapper and
# the batch pauses stretch each step), so that faults land before, between and inside its steps.
FAULT_DELAYS = (0.15, 0.4, 0.8, 1.3, 2.0, 2.8)


def history(pg, months=12, default=False):
    """events: monthly partitions from 2024-01 on, ROWS_PER_MONTH rows each, ids 1..; returns the ids."""
    pg.sql("CREATE TABLE events (id bigint NOT NULL, at timestamptz NOT NULL, payload text, PRIMARY KEY (id, at)) "
           "PARTITION BY RANGE (at)")
    for month in range(months):
        year, number = 2024 + month // 12, month % 12 + 1
        pg.sql(f"CREATE TABLE events_{year:04d}_{number:02d} PARTITION OF events FOR VALUES FROM "
               f"('{year:04d}-{number:02d}-01') TO (date '{year:04d}-{number:02d}-01' + interval '1 month')")
    if default:
        pg.sql("CREATE TABLE events_default PARTITION OF events DEFAULT")
    pg.sql("INSERT INTO events SELECT m * %s + r, timestamptz '2024-01-01' + make_interval(months => m) "
           "+ make_interval(hours => r), md5((m * 1000 + r)::text) FROM generate_series(0, %s) m, "
           "generate_series(1, %s) r", (ROWS_PER_MONTH, months - 1, ROWS_PER_MONTH))
    return set(range(1, months * ROWS_PER_MONTH + 1))


def ids_in_tables(pg):
    """Every id in a table of the schema that holds events' columns (the set, and tables detached or being filled),
    with how often each appears in the set itself."""
    tables = [row[0] for row in pg.sql(
        "SELECT c.relname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'payload' "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition")]
    found = set()
    for table in tables:
        found |= {row[0] for row in pg.sql(f"SELECT id FROM {table}")}
    in_set = pg.sql("SELECT id, count(*) FROM events GROUP BY id HAVING count(*) > 1")
    return found, in_set


def ids_in_dumps(pg, directory: Path):
    """The ids every verified dump the manifest lists restores (pg_restore --data-only, read back)."""
    found = set()
    manifest = directory / "manifest.jsonl"
    if not manifest.exists():
        return found
    for line in manifest.read_text().splitlines():
        entry = json.loads(line)
        if "event" in entry or not (directory / entry["file"]).exists():
            continue
        data = subprocess.run([str(pg.server.bin_dir / "pg_restore"), "--data-only", "--file=-",
                               str(directory / entry["file"])], capture_output=True, text=True, check=True).stdout
        rows = data.split("FROM stdin;\n", 1)[1].split("\\.\n", 1)[0].splitlines()
        assert len(rows) == entry["rows"], entry
        found |= {int(row.split("\t", 1)[0]) for row in rows}
    return found


def assert_nothing_lost(pg, expected, backups=None):
    in_tables, duplicated = ids_in_tables(pg)
    in_dumps = ids_in_dumps(pg, backups) if backups else set()
    assert duplicated == []
    assert expected - in_tables - in_dumps == set()


def kill_at(command, delay, env=None):
    process = subprocess.Popen(command, env=env or launcher.environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()


def slow_pg_dump(pg, directory: Path) -> Path:
    """A pg_dump that takes a moment longer, so that faults land inside the dump step too."""
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "pg_dump"
    wrapper.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] || sleep 0.2\nexec {pg.server.bin_dir / 'pg_dump'} \"$@\"\n")
    wrapper.chmod(0o755)
    (directory / "pg_restore").symlink_to(pg.server.bin_dir / "pg_restore")
    return wrapper


def runner_config(pg, tmp_path, name="partitions.yml", **item):
    config = tmp_path / name
    config.write_text(json.dumps(dict(
        status_path=str(tmp_path / ("%s.status.json" % name)), lock_path=str(tmp_path / ("%s.lock" % name)),
        backup_dir=str(tmp_path / "backups"), pg_dump_path=str(slow_pg_dump(pg, tmp_path / ("bin-%s" % name))),
        connection=dict(login_unix_socket=pg.server.socket_dir, port=pg.server.port, login_user="postgres"),
        tables=[dict(dict(db=pg.name, table="events", interval="month", premake=0), **item)])))
    return config


def finish(command, env=None):
    done = subprocess.run(command, env=env or launcher.environment(), capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
@pytest.mark.parametrize("action", ["drop", "detach"])
def test_retention_killed_at_any_step_loses_no_row_and_the_next_run_finishes(pg, tmp_path, action):
    expected = history(pg)
    backups = tmp_path / "backups" / pg.name
    config = runner_config(pg, tmp_path, retention="4 months", retention_action=action, backup=True)
    command = launcher.command("--config", str(config), "run", "retention")
    for delay in FAULT_DELAYS:
        kill_at(command, delay)
        assert_nothing_lost(pg, expected, backups)
    finish(command)
    assert_nothing_lost(pg, expected, backups)
    assert pg.value("SELECT count(*) FROM pg_description WHERE description LIKE 'pgfleet.partitions%'") == 0
    assert pg.value("SELECT count(*) FROM pg_inherits i WHERE i.inhdetachpending") == 0
    assert "OK" in finish(command).stdout.split()[0]


@pytest.mark.slow
def test_a_drain_cut_short_by_an_immediate_server_stop_loses_nothing_and_the_next_run_finishes(pg, tmp_path):
    pg.sql("CREATE TABLE events (id bigint NOT NULL, at timestamptz, payload text) PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE events_default PARTITION OF events DEFAULT")
    pg.sql("INSERT INTO events SELECT i, timestamptz '2023-01-01' + i * interval '7 hours', md5(i::text) "
           "FROM generate_series(1, 6000) AS i")
    expected = set(range(1, 6001))
    config = runner_config(pg, tmp_path, default_rows="drain", drain_batch_rows=100, drain_pause=0.005,
                           reference_time="2025-06-15")
    command = launcher.command("--config", str(config), "run", "create")
    for delay in (0.5, 1.5):
        runner = subprocess.Popen(command, env=launcher.environment(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(delay)
        pg.server.stop_immediately()
        runner.wait(timeout=60)
        pg.server.restart()
        assert_nothing_lost(pg, expected)
    finish(command)
    assert_nothing_lost(pg, expected)
    assert pg.value("SELECT count(*) FROM events_default") == 0


@pytest.mark.slow
def test_a_conversion_killed_at_any_step_loses_no_row_and_the_next_run_finishes(pg, module_runner, tmp_path):
    pg.sql("CREATE TABLE events (id bigint NOT NULL, at timestamptz NOT NULL, payload text, PRIMARY KEY (id, at))")
    pg.sql("INSERT INTO events SELECT i, timestamptz '2024-01-01' + i * interval '1 hour', md5(i::text) "
           "FROM generate_series(1, 8000) AS i")
    expected = set(range(1, 8001))
    args = pg.params(table="events", state="swapped", strategy="range", column="at", interval="month", premake=1,
                     batch_size=200, sleep=0.02)
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    command = [sys.executable, str(REPO / "plugins" / "modules" / "postgres_partition_convert.py"), str(args_file)]
    environment = dict(os.environ, PYTHONPATH=str(COLLECTIONS_ROOT))
    for delay in FAULT_DELAYS:
        kill_at(command, delay, environment)
        in_tables, _duplicated = ids_in_tables(pg)
        assert expected - in_tables == set()
        live = {row[0] for row in pg.sql("SELECT id FROM events")}
        assert live == expected
    result = module_runner("postgres_partition_convert", args)
    assert result.get("failed") is not True and result["stage"] == "swapped", result.get("msg")
    assert {row[0] for row in pg.sql("SELECT id FROM events")} == expected
    assert pg.value("SELECT count(*) FROM (SELECT id FROM events GROUP BY id HAVING count(*) > 1) AS twice") == 0


@pytest.mark.slow
def test_two_runs_at_once_share_the_work_and_lose_nothing(pg, tmp_path):
    expected = history(pg, default=True)
    pg.sql("INSERT INTO events SELECT 100000 + i, timestamptz '2023-01-01' + i * interval '1 day', 'early' "
           "FROM generate_series(1, 300) AS i")
    expected |= set(range(100001, 100301))
    # Two policy files with their own run lock: only the engine's per-table advisory lock keeps them apart.
    first, second = (runner_config(pg, tmp_path, name, retention="4 months", backup=True, default_rows="drain",
                                   drain_batch_rows=50, reference_time="2024-12-15")
                     for name in ("a.yml", "b.yml"))
    processes = [subprocess.Popen(launcher.command("--config", str(config), "run", job), env=launcher.environment(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for config in (first, second) for job in ("create", "retention")]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert_nothing_lost(pg, expected, tmp_path / "backups" / pg.name)
    assert pg.value("SELECT count(*) FROM events_default") == 0
