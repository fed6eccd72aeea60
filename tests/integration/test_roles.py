"""The maintenance and backup roles against throwaway servers, with every path they install to redirected under a
temporary root: --check --diff shows the plan and changes nothing, a converge applies the policy and installs the
runner, a second converge changes nothing, the installed runner (run as the run user, as cron runs it) creates
partitions, dumps closed ones and writes its status and metrics; no password leaves the password file; bad policy
items stop the play before anything changes; schedulers switch and uninstall cleanly."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import PASSWORD, PASSWORD_USER
from tests.support.hosts import (SAMPLE_TABLES, Host, PlayResult, create_database, months, partitions_of, query,
                                 require_host_python, roles_play, sample_policy)

REPO = Path(__file__).resolve().parents[2]
JOBS = {"create", "retention", "brin", "backup"}


def role_policy(dbname, server):
    """The sample policy with a retention that drops the three old partitions, and one table reached over the unix
    socket as postgres where the shared connection is TCP with a password."""
    return sample_policy(dbname, raw_ingestions={"retention": "3 months", "brin_recent_partitions": 2}, sleep_metrics={
        "connection": {"login_host": "", "login_unix_socket": server.socket_dir, "login_user": "postgres"}})


def mode_and_owner(path: Path) -> tuple[str, str, str]:
    info = path.stat()
    return (oct(stat.S_IMODE(info.st_mode)), pwd.getpwuid(info.st_uid).pw_name,
            grp.getgrgid(info.st_gid).gr_name)


@dataclass
class Converged:
    host: Host
    db: str
    preview: PlayResult
    unchanged_by_preview: bool
    first: PlayResult
    second: PlayResult


# The converged host's tests run against PostgreSQL 15 only: three plays per major would double the slowest part of
# the suite, and what they prove is the role's orchestration; the playbooks' tests run the role against 18, and every
# module and the runner are tested on both majors.
ON_PG15 = pytest.mark.parametrize("pg_server", ["15"], indirect=True)

RELATIONS = "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1"


@pytest.fixture(scope="module")
def converged(pg_server):
    """One host previewed with --check --diff, then converged twice (the second run at -vvv, to show that even
    then no password is printed)."""
    require_host_python()
    db = create_database(pg_server, f"roles_{pg_server.major}_{os.getpid()}")
    host = Host(pg_server, role_policy(db, pg_server), variables={
        "pgfleet_partitions_connection": {"login_host": "127.0.0.1", "port": pg_server.port,
                                          "login_user": PASSWORD_USER},
        "pgfleet_partitions_login_password": PASSWORD,
    })
    try:
        playbook = str(roles_play(host))
        before = (query(pg_server, db, RELATIONS), sorted(host.root.rglob("*")))
        preview = host.play(playbook, "--check", "--diff")
        unchanged = (query(pg_server, db, RELATIONS), sorted(host.root.rglob("*"))) == before
        first = host.play(playbook, "-v")
        second = host.play(playbook, "-vvv")
        yield Converged(host, db, preview, unchanged, first, second)
    finally:
        host.remove()
        pg_server.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


@ON_PG15
def test_check_mode_on_a_new_host_shows_the_plan_and_changes_nothing(converged):
    assert converged.unchanged_by_preview
    assert converged.preview.recap()["changed"] > 0
    # --diff shows what retention would remove, and the policy file that would be written.
    assert f"-raw_ingestions_{months(converged.host.server, converged.db, -8, -8)[0]}" in converged.preview.output
    assert '"_managed": "Ansible managed"' in converged.preview.output


@ON_PG15
def test_a_converge_applies_the_policy_at_once_and_dumps_what_retention_drops(converged):
    server, db, host = converged.host.server, converged.db, converged.host
    assert partitions_of(server, db, "raw_ingestions") == [
        f"raw_ingestions_{month}" for month in months(server, db, -2, 3)]
    assert partitions_of(server, db, "heart_rate_metrics") == sorted(
        [f"heart_rate_metrics_{month}" for month in months(server, db, 0, 3)] + ["heart_rate_metrics_default"])
    assert partitions_of(server, db, "sleep_metrics") == [
        f"sleep_metrics_{month}" for month in months(server, db, 0, 2)]
    assert partitions_of(server, db, "appointments") == ["appointments_active", "appointments_completed"]
    assert partitions_of(server, db, "appointments_by_patient") == [
        f"appointments_by_patient_hash_{remainder}" for remainder in range(4)]
    dumps = sorted(host.path(f"var/backups/pgfleet/{db}").glob("*.dump"))
    assert [dump.name.split(".")[1] for dump in dumps] == [
        f"raw_ingestions_{month}" for month in months(server, db, -8, -6)]
    for dump in dumps:
        # Written by the database tasks as the run user, so the scheduled backup job can read and prune them.
        assert mode_and_owner(dump)[:2] == ("0o600", "postgres")
        assert Path(f"{dump}.sha256").exists()
    assert converged.first.recap()["changed"] > 0


@ON_PG15
def test_a_second_converge_changes_nothing(converged):
    assert converged.second.changed() == []
    assert converged.second.recap()["changed"] == 0


@ON_PG15
def test_the_runner_is_installed_with_its_engine_policy_and_password_file(converged):
    host, db = converged.host, converged.db
    engine = host.path("usr/local/lib/pgfleet/ansible_collections/pgfleet/partitions/plugins/module_utils")
    source = REPO / "plugins/module_utils"
    shipped = sorted(str(path.relative_to(source)) for path in source.rglob("*.py"))
    assert "_scheduled/runner.py" in shipped and "_core/errors.py" in shipped
    assert sorted(str(path.relative_to(engine)) for path in engine.rglob("*.py")) == shipped
    assert all((engine / name).read_bytes() == (source / name).read_bytes() for name in shipped)

    runner = host.path("usr/local/bin/pgfleet-partitions")
    assert mode_and_owner(runner)[:2] == ("0o755", "root")
    assert runner.read_text().startswith("#!/usr/bin/python3\n#\n# Ansible managed")

    config_path = host.path("etc/pgfleet/partitions.yml")
    assert mode_and_owner(config_path) == ("0o640", "root", "postgres")
    config = json.loads(config_path.read_text())
    assert config["_managed"] == "Ansible managed"
    assert config["connection"] == {"login_host": "127.0.0.1", "port": host.server.port, "login_user": PASSWORD_USER,
                                    "connect_params": {"passfile": str(host.path("etc/pgfleet/pgpass"))}}
    assert [item["table"] for item in config["tables"]] == [item["table"] for item in host.policy]
    assert config["tables"][2]["connection"] == {"login_host": "", "login_unix_socket": host.server.socket_dir,
                                                 "login_user": "postgres"}
    assert config["status_path"] == str(host.path("var/lib/pgfleet/status.json"))

    passfile = host.path("etc/pgfleet/pgpass")
    assert mode_and_owner(passfile)[:2] == ("0o600", "postgres")
    entries = [line for line in passfile.read_text().splitlines() if not line.startswith("#")]
    assert entries == [f"127.0.0.1:{host.server.port}:{db}:{PASSWORD_USER}:{PASSWORD}",
                       f"*:{host.server.port}:{db}:postgres:{PASSWORD}"]
    assert mode_and_owner(host.path("var/lib/pgfleet")) == ("0o750", "postgres", "postgres")
    assert mode_and_owner(host.path("var/backups/pgfleet")) == ("0o700", "postgres", "postgres")


@ON_PG15
def test_one_cron_file_schedules_the_four_jobs_as_the_run_user(converged):
    host = converged.host
    command = f"{host.path('usr/local/bin/pgfleet-partitions')} --config {host.path('etc/pgfleet/partitions.yml')} run"
    lines = [line for line in host.path("etc/cron.d/pgfleet-partitions").read_text().splitlines()
             if not line.startswith("#")]
    assert lines == [
        f"17 2 * * * postgres {command} create",
        f"17 3 * * 0 postgres {command} retention",
        f"47 4 * * * postgres {command} brin",
        f"47 1 * * * postgres {command} backup",
    ]
    assert list(host.path("etc/systemd/system").iterdir()) == []


def watch_processes(command: list[str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run a command while sampling the process list (`ps -eo args`) until it exits."""
    samples = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while process.poll() is None:
        samples.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout)
        time.sleep(0.01)
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), samples


@ON_PG15
def test_the_installed_runner_creates_what_is_missing_and_writes_status_and_metrics(converged):
    host, server, db = converged.host, converged.host.server, converged.db
    newest = f"heart_rate_metrics_{months(server, db, 3, 3)[0]}"
    server.psql(f"DROP TABLE {newest}", dbname=db)

    completed, samples = watch_processes(host.runner_command("run", "create"))

    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert f"CHANGED {db}/heart_rate_metrics create: created 1 ({newest})" in lines
    assert sum(line.startswith("OK      ") for line in lines) == 4
    assert newest in partitions_of(server, db, "heart_rate_metrics")
    assert not any(PASSWORD in sample for sample in samples)

    status = json.loads(host.path("var/lib/pgfleet/status.json").read_text())
    assert set(status["tables"]) == {f"{db}/{item['table']}" for item in host.policy}
    for entry in status["tables"].values():
        assert entry["create"]["last_result"] in {"ok", "changed"} and entry["create"]["last_success"]
    assert status["tables"][f"{db}/raw_ingestions"]["runway"]["partitions"] == 3
    assert status["tables"][f"{db}/heart_rate_metrics"]["default_rows"] == 0
    assert mode_and_owner(host.path("var/lib/pgfleet/status.json"))[1] == "postgres"

    metrics = host.path("var/lib/node_exporter/pgfleet_partitions.prom").read_text()
    assert f'pgfleet_partitions_runway_partitions{{db="{db}",table="raw_ingestions"}} 3' in metrics
    assert f'pgfleet_partitions_default_rows{{db="{db}",table="heart_rate_metrics"}} 0' in metrics
    assert f'pgfleet_partitions_last_success_timestamp_seconds{{db="{db}",table="raw_ingestions",job="create"}}' \
        in metrics


@ON_PG15
def test_the_installed_runner_dumps_closed_partitions_without_showing_the_password(converged):
    host, server, db = converged.host, converged.host.server, converged.db
    server.psql("INSERT INTO raw_ingestions (received_at) SELECT date_trunc('month', now()) - make_interval(days => n) "
                "FROM generate_series(1, 40) AS n", dbname=db)

    completed, samples = watch_processes(host.runner_command("run", "backup"))

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"CHANGED {db}/raw_ingestions backup: backed up 2 partitions" in completed.stdout.splitlines()
    assert not any(PASSWORD in sample for sample in samples)
    closed = [f"public.raw_ingestions_{month}.*.dump" for month in months(server, db, -2, -1)]
    assert all(len(list(host.path(f"var/backups/pgfleet/{db}").glob(name))) == 1 for name in closed)


@ON_PG15
def test_no_password_outside_the_password_file_or_in_ansible_output(converged):
    host = converged.host
    passfile = host.path("etc/pgfleet/pgpass")
    holding = [path for path in host.root.rglob("*")
               if path.is_file() and path != passfile and PASSWORD.encode() in path.read_bytes()]
    assert holding == []
    assert PASSWORD not in converged.first.output
    assert PASSWORD not in converged.second.output


BAD_ITEMS = [
    pytest.param({"table": "no_such_table", "interval": "month"}, "does not exist", id="an unknown table"),
    pytest.param({"table": "sleep_metrics", "interval": "fortnight"}, "fortnight", id="a bad interval"),
    pytest.param({"table": "appointments", "list_partitions": {"active": [False]}, "retention": "1 month"},
                 "LIST", id="retention on a LIST table"),
    pytest.param({"table": "raw_ingestions", "interval": "month", "backfill": 6, "retention": "3 months"},
                 "backfill 6 reaches past the retention cutoff", id="a backfill that retention would remove again"),
]


def test_bad_policy_items_stop_the_play_before_anything_changes_on_the_host(pg):
    require_host_python()
    pg.server.psql(SAMPLE_TABLES, dbname=pg.name)
    before = query(pg.server, pg.name, RELATIONS)
    good = {"db": pg.name, "table": "heart_rate_metrics", "interval": "month"}
    bad = [dict(case.values[0], db=pg.name) for case in BAD_ITEMS]
    host = Host(pg.server, [good, *bad], variables={
        "pgfleet_partitions_connection": {"login_unix_socket": pg.server.socket_dir, "port": pg.server.port}})
    try:
        failed = host.play(str(roles_play(host)), expect_failure=True)
        assert query(pg.server, pg.name, RELATIONS) == before
        assert not host.path("etc/pgfleet").exists()
        assert not host.path("etc/cron.d/pgfleet-partitions").exists()
        message = next(line for line in failed.output.splitlines() if "The policy cannot be applied" in line)
        for item, case in zip(bad, BAD_ITEMS):
            assert f"policy item {pg.name}/{item['table']}:" in message, case.id
            assert case.values[1] in message.split(f"policy item {pg.name}/{item['table']}:")[1], case.id
        assert f"policy item {pg.name}/heart_rate_metrics:" not in message
    finally:
        host.remove()


def test_schedulers_switch_without_leftovers_and_uninstall_keeps_status_and_backups():
    # No policy, so no database: what is checked here is the same whatever the server.
    host = Host(None, [], variables={"pgfleet_partitions_scheduler": "systemd"})
    playbook = str(roles_play(host))
    units = host.path("etc/systemd/system")
    cron_file = host.path("etc/cron.d/pgfleet-partitions")
    try:
        host.play(playbook)
        assert sorted(path.name for path in units.iterdir()) == sorted(
            f"pgfleet-partitions-{job}.{kind}" for job in JOBS for kind in ("service", "timer"))
        service = (units / "pgfleet-partitions-backup.service").read_text()
        assert "User=postgres\n" in service
        assert (f"ExecStart={host.path('usr/local/bin/pgfleet-partitions')} --config "
                f"{host.path('etc/pgfleet/partitions.yml')} run backup\n") in service
        assert "OnCalendar=Sun *-*-* 03:17:00\n" in (units / "pgfleet-partitions-retention.timer").read_text()
        assert not cron_file.exists()

        host.variables["pgfleet_partitions_scheduler"] = "cron"
        host.play(playbook)
        assert list(units.iterdir()) == []
        assert len([line for line in cron_file.read_text().splitlines() if not line.startswith("#")]) == 4

        status = host.path("var/lib/pgfleet/status.json")
        status.write_text("{}")
        dump = host.path("var/backups/pgfleet/db/public.t_2020_01.dump")
        dump.parent.mkdir(parents=True)
        dump.write_text("kept")
        host.variables.update(pgfleet_partitions_state="absent", pgfleet_backup_state="absent")
        host.play(playbook)
        for removed in ("etc/cron.d/pgfleet-partitions", "usr/local/bin/pgfleet-partitions", "usr/local/lib/pgfleet",
                        "etc/pgfleet/partitions.yml", "etc/pgfleet/pgpass"):
            assert not host.path(removed).exists(), removed
        assert status.exists() and dump.exists()
    finally:
        host.remove()


@pytest.mark.parametrize("python, cause", [
    pytest.param("private", "Permission denied", id="a Python the run user may not execute"),
    pytest.param("bare", "neither psycopg (3) nor psycopg2 is importable", id="a Python without psycopg"),
])
def test_a_run_user_who_cannot_use_the_hosts_python_stops_the_play_with_the_cause(pg, python, cause):
    require_host_python()
    pg.server.psql(SAMPLE_TABLES, dbname=pg.name)
    before = query(pg.server, pg.name, RELATIONS)
    reachable = Path(tempfile.mkdtemp(prefix="pgfleet-python-"))  # the run user can walk into it
    reachable.chmod(0o755)
    private = reachable / "private"
    private.mkdir(mode=0o700)
    interpreter = private / "python3"
    if python == "private":
        interpreter.symlink_to("/usr/bin/python3")
    else:
        # A Python that runs for everybody but finds no psycopg: the host's own, isolated from its packages.
        private.chmod(0o755)
        interpreter.write_text("#!/bin/sh\nexec /usr/bin/python3 -I -S \"$@\"\n")
        interpreter.chmod(0o755)
    host = Host(pg.server, [{"db": pg.name, "table": "heart_rate_metrics", "interval": "month"}], variables={
        "pgfleet_partitions_python": str(interpreter),
        "pgfleet_partitions_connection": {"login_unix_socket": pg.server.socket_dir, "port": pg.server.port}})
    try:
        failed = host.play(str(roles_play(host)), expect_failure=True)
        assert f"postgres cannot use {interpreter}" in failed.output and cause in failed.output, failed.output[-3000:]
        assert "Module result deserialization failed" not in failed.output
        assert query(pg.server, pg.name, RELATIONS) == before
        assert not host.path("etc/pgfleet").exists()
    finally:
        host.remove()
        shutil.rmtree(reachable, ignore_errors=True)


def test_a_typo_in_a_policy_key_is_one_line_naming_the_item(pg):
    host = Host(pg.server, [{"db": pg.name, "table": "events", "interval": "month", "premakee": 3},
                            {"db": pg.name, "table": "logs", "interval": "day", "connection": {"prot": 5433}}])
    try:
        failed = host.play(str(roles_play(host)), expect_failure=True)
        assert f"policy item 0 ({pg.name}/events): unsupported key premakee (supported: db, table," in failed.output
        assert f"policy item 1 ({pg.name}/logs): unsupported connection key prot (supported:" in failed.output
        assert "argument_spec" not in failed.output
    finally:
        host.remove()


# crontab hidden from the play (a private mount namespace in which /dev/null, which is not executable, covers it),
# as on a host without the cron package.
WITHOUT_CRONTAB = ("unshare", "--mount", "--", "sh", "-c",
                   'mount --bind /dev/null "$(command -v crontab)" && exec "$@"', "without-crontab")


@pytest.mark.parametrize("pg_server", ["15"], indirect=True)
def test_a_host_without_crontab_stops_the_play_before_any_database_changes(pg):
    require_host_python()
    pg.server.psql(SAMPLE_TABLES, dbname=pg.name)
    before = query(pg.server, pg.name, RELATIONS)
    host = Host(pg.server, [{"db": pg.name, "table": "heart_rate_metrics", "interval": "month", "premake": 2}],
                variables={"pgfleet_partitions_connection": {"login_unix_socket": pg.server.socket_dir,
                                                             "port": pg.server.port}})
    try:
        failed = host.play(str(roles_play(host)), expect_failure=True, wrapper=WITHOUT_CRONTAB)
        assert "crontab is missing on db1 and pgfleet_partitions_scheduler is cron" in failed.output, \
            failed.output[-3000:]
        assert query(pg.server, pg.name, RELATIONS) == before
        assert not host.path("etc/pgfleet").exists()
        # Without the cron scheduler, crontab is not asked for.
        host.play(str(roles_play(host, roles=("maintenance",))), "-e", "pgfleet_partitions_scheduler=none",
                  wrapper=WITHOUT_CRONTAB)
        assert query(pg.server, pg.name, RELATIONS) != before
    finally:
        host.remove()
