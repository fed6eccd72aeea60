"""The scheduled runner as the roles install it: a separate Python process reading a JSON policy file."""

from __future__ import annotations

import fcntl
import json

import pytest

from tests.support import servers
from tests.support.launcher import run_runner, write_config


@pytest.fixture
def tables(pg):
    pg.sql("CREATE TABLE raw_ingestions (received_at timestamptz NOT NULL) PARTITION BY RANGE (received_at)")
    pg.sql("CREATE TABLE appointments (id int, is_completed boolean) PARTITION BY LIST (is_completed)")
    return [
        dict(db=pg.name, table="public.raw_ingestions", interval="month", premake=3, backfill=1,
             default_partition=True),
        dict(db=pg.name, table="appointments", list_partitions={"active": [False], "completed": [True]}),
    ]


def test_create_job_makes_partitions_writes_status_and_metrics_then_has_nothing_to_do(pg, tmp_path, tables):
    config = write_config(tmp_path, pg, tables)
    first = run_runner(config, "run", "create")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith(f"CHANGED {pg.name}/public.raw_ingestions create: created 6")
    assert lines[1].startswith(f"CHANGED {pg.name}/appointments create: created 2")
    assert pg.value("SELECT count(*) FROM pg_inherits WHERE inhparent = 'raw_ingestions'::regclass") == 6
    status = json.loads((tmp_path / "var" / "status.json").read_text())
    entry = status["tables"][f"{pg.name}/public.raw_ingestions"]
    assert entry["create"]["last_error"] is None and entry["create"]["last_success"]
    assert entry["runway"]["partitions"] == 3 and entry["default_rows"] == 0
    metrics = (tmp_path / "metrics" / "pgfleet_partitions.prom").read_text()
    assert f'pgfleet_partitions_runway_partitions{{db="{pg.name}",table="public.raw_ingestions"}} 3' in metrics
    assert 'job="create"' in metrics
    assert status["tables"][f"{pg.name}/appointments"]["runway"] == dict(partitions=None, until=None, interval=None,
                                                                         seconds=None)
    # The no-op pass takes its facts from the state it planned from: the same runway (its length in seconds counts
    # from now), and the default partition's rows counted again (a row beyond the last partition arrived meanwhile).
    pg.sql("INSERT INTO raw_ingestions VALUES ('2999-01-01 00:00+00')")
    second = run_runner(config, "run", "create")
    assert second.returncode == 0
    assert [line.split()[0] for line in second.stdout.splitlines()] == ["OK", "OK"]
    again = json.loads((tmp_path / "var" / "status.json").read_text())["tables"]
    runway = again[f"{pg.name}/public.raw_ingestions"]["runway"]
    assert (runway["partitions"], runway["until"]) == (3, entry["runway"]["until"])
    assert 0 < entry["runway"]["seconds"] - runway["seconds"] < 60
    assert again[f"{pg.name}/public.raw_ingestions"]["default_rows"] == 1
    assert again[f"{pg.name}/appointments"]["runway"] == status["tables"][f"{pg.name}/appointments"]["runway"]


def test_check_mode_runs_no_ddl_and_writes_no_status(pg, tmp_path, tables):
    config = write_config(tmp_path, pg, tables)
    result = run_runner(config, "run", "create", "--check")
    assert result.returncode == 0 and "CHANGED" in result.stdout
    assert pg.value("SELECT count(*) FROM pg_inherits") == 0
    assert not (tmp_path / "var" / "status.json").exists()


def test_a_failing_table_fails_the_run_but_not_the_other_tables(pg, tmp_path, tables):
    config = write_config(tmp_path, pg, [dict(db=pg.name, table="missing", interval="day")] + tables)
    result = run_runner(config, "run", "create")
    assert result.returncode == 1
    words = [line.split()[0] for line in result.stdout.splitlines()]
    assert words == ["FAILED", "CHANGED", "CHANGED"]
    status = json.loads((tmp_path / "var" / "status.json").read_text())
    assert "does not exist" in status["tables"][f"{pg.name}/missing"]["create"]["last_error"]


def test_runs_never_overlap(pg, tmp_path, tables):
    config = write_config(tmp_path, pg, tables)
    (tmp_path / "var").mkdir()
    with open(tmp_path / "var" / "runner.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        blocked = run_runner(config, "run", "create")
    assert blocked.returncode == 0 and blocked.stdout.startswith("SKIPPED create: another run holds")
    assert pg.value("SELECT count(*) FROM pg_inherits") == 0


def test_password_comes_from_the_passfile_and_never_from_the_command_line(pg, tmp_path, tables):
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{pg.server.port}:*:{servers.PASSWORD_USER}:{servers.PASSWORD}\n")
    passfile.chmod(0o600)
    config = write_config(tmp_path, pg, tables, connection=dict(
        login_host="127.0.0.1", port=pg.server.port, login_user=servers.PASSWORD_USER,
        connect_params=dict(passfile=str(passfile))))
    assert servers.PASSWORD not in config.read_text()
    result = run_runner(config, "run", "create")
    assert result.returncode == 0, result.stdout + result.stderr
    assert servers.PASSWORD not in result.stdout + result.stderr


def test_a_broken_policy_file_is_a_clear_error(tmp_path):
    config = tmp_path / "partitions.yml"
    config.write_text("tables: [")
    result = run_runner(config, "run", "create")
    assert result.returncode == 2 and "is not JSON" in result.stderr


def test_brin_job_summarizes_new_ranges_of_the_tables_that_ask_for_it(pg, tmp_path):
    pg.sql("CREATE TABLE heart_rate (at timestamptz NOT NULL, bpm int) PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE heart_rate_2025_01 PARTITION OF heart_rate FOR VALUES FROM ('2025-01-01') TO ('2025-02-01')")
    pg.sql("CREATE INDEX heart_rate_at_brin ON heart_rate USING brin (at) WITH (pages_per_range = 1)")
    pg.sql("INSERT INTO heart_rate SELECT timestamptz '2025-01-01' + i * interval '1 second', 60 "
           "FROM generate_series(1, 20000) i")
    config = write_config(tmp_path, pg, [dict(db=pg.name, table="heart_rate", interval="month", brin=True)])
    first = run_runner(config, "run", "brin")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"CHANGED {pg.name}/heart_rate brin: summarized ")
    second = run_runner(config, "run", "brin")
    assert second.stdout.startswith(f"OK      {pg.name}/heart_rate brin: nothing to do")


def test_on_a_standby_every_table_is_skipped_and_the_run_succeeds(pg, tmp_path, tables, standby):
    replica = standby()
    config = write_config(tmp_path, pg, tables, connection=dict(
        login_unix_socket=replica.socket_dir, port=replica.port, login_user="postgres"))
    result = run_runner(config, "run", "create")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["SKIPPED", "SKIPPED"]
    assert "hot standby" in result.stdout


def monthly_table_with_history(pg, tmp_path, months_back, **item):
    pg.sql("CREATE TABLE audit_log (created_at timestamptz NOT NULL, line text) PARTITION BY RANGE (created_at)")
    table = dict(db=pg.name, table="audit_log", interval="month", premake=1, backfill=months_back)
    settings = dict(backup_dir=str(tmp_path / "backups"), pg_dump_path=str(pg.server.bin_dir / "pg_dump"))
    # The history comes first, from a policy without the item's retention, which refuses a backfill it would expire.
    created = run_runner(write_config(tmp_path, pg, [table], **settings), "run", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    config = write_config(tmp_path, pg, [dict(table, **item)], **settings)
    # A row a day from the first day of the oldest partition's month (UTC, the policy's zone) to now: every
    # partition holds rows whatever today's date (31 days a month would overshoot after short months).
    pg.sql("INSERT INTO audit_log SELECT day, 'x' FROM generate_series("
           "(date_trunc('month', now() AT TIME ZONE 'UTC') - %s * interval '1 month') AT TIME ZONE 'UTC', now(), "
           "interval '1 day') AS day", (months_back,))
    return config


def test_retention_job_dumps_then_drops_what_expired(pg, tmp_path):
    config = monthly_table_with_history(pg, tmp_path, 5, retention="3 months", backup=True)
    before = pg.value("SELECT count(*) FROM pg_inherits")
    result = run_runner(config, "run", "retention")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"CHANGED {pg.name}/audit_log retention: dropped ")
    dropped = before - pg.value("SELECT count(*) FROM pg_inherits")
    assert dropped >= 2
    dumps = sorted((tmp_path / "backups" / pg.name).glob("*.dump"))
    assert len(dumps) == dropped
    again = run_runner(config, "run", "retention")
    assert again.stdout.startswith("OK")


def test_backup_job_dumps_closed_partitions_once_and_refreshes_old_dumps(pg, tmp_path):
    config = monthly_table_with_history(pg, tmp_path, 2, backup=True)
    first = run_runner(config, "run", "backup")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.startswith(f"CHANGED {pg.name}/audit_log backup: backed up 2 partitions")
    directory = tmp_path / "backups" / pg.name
    assert len(list(directory.glob("*.dump"))) == 2 and len(list(directory.glob("*.sha256"))) == 2
    assert oct((directory / "manifest.jsonl").stat().st_mode & 0o777) == "0o600"
    assert run_runner(config, "run", "backup").stdout.startswith("OK")
    settings = json.loads(config.read_text())
    config.write_text(json.dumps(dict(settings, backup_keep_days=-1)))
    refreshed = run_runner(config, "run", "backup")
    assert refreshed.stdout.startswith(f"CHANGED {pg.name}/audit_log backup: backed up 2 partitions")
    assert len(list(directory.glob("*.dump"))) == 2


def test_a_backfill_past_the_retention_is_refused_by_the_create_job(pg, tmp_path):
    pg.sql("CREATE TABLE audit_log (created_at timestamptz NOT NULL, line text) PARTITION BY RANGE (created_at)")
    config = write_config(tmp_path, pg, [dict(db=pg.name, table="audit_log", interval="month", premake=2,
                                              backfill=28, retention="12 months", backup=True)])
    result = run_runner(config, "run", "create")
    assert result.returncode == 1
    assert "backfill 28 reaches past the retention cutoff" in result.stdout
    assert "Use backfill 12 or less" in result.stdout
    assert pg.value("SELECT count(*) FROM pg_inherits") == 0


def test_the_backup_job_dumps_a_partition_created_again_and_keeps_the_earlier_ones_dump(pg, tmp_path):
    config = monthly_table_with_history(pg, tmp_path, 2, backup=True)
    assert run_runner(config, "run", "backup").returncode == 0
    directory = tmp_path / "backups" / pg.name
    closed = pg.value("SELECT min(c.relname::text) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                      "WHERE i.inhparent = 'audit_log'::regclass")
    bound = pg.value("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s", (closed,))
    pg.sql(f"DROP TABLE {closed}")
    pg.sql(f"CREATE TABLE {closed} PARTITION OF audit_log {bound}")
    earlier = {path.name for path in directory.glob(f"public.{closed}.*.dump")}

    again = run_runner(config, "run", "backup")

    assert again.stdout.startswith(f"CHANGED {pg.name}/audit_log backup: backed up 1 partitions"), again.stdout
    now = {path.name for path in directory.glob(f"public.{closed}.*.dump")}
    assert earlier < now and len(now) == 2


def test_metrics_show_a_failed_last_run_and_nothing_of_a_job_a_table_does_not_ask_for(pg, tmp_path, tables):
    config = write_config(tmp_path, pg, tables)
    assert run_runner(config, "run", "create").returncode == 0
    assert run_runner(config, "run", "brin").returncode == 0
    pg.sql("DROP TABLE appointments")
    assert run_runner(config, "run", "create").returncode == 1
    metrics = (tmp_path / "metrics" / "pgfleet_partitions.prom").read_text().splitlines()
    assert f'pgfleet_partitions_last_run_failed{{db="{pg.name}",table="appointments",job="create"}} 1' in metrics
    assert f'pgfleet_partitions_last_run_failed{{db="{pg.name}",table="public.raw_ingestions",job="create"}} 0' \
        in metrics
    assert not [line for line in metrics if 'job="brin"' in line]
    status = json.loads((tmp_path / "var" / "status.json").read_text())["tables"]
    assert status[f"{pg.name}/appointments"]["create"]["last_result"] == "failed"
    assert status[f"{pg.name}/appointments"]["brin"] == {"last_start": status[f"{pg.name}/appointments"]["brin"]
                                                         ["last_start"], "last_result": "not_configured"}
