"""Faults a fleet has, on the namespaced hosts of the molecule `fleet` scenario (after its converge): a runner killed
half way, two site runs at once, a host whose PostgreSQL is down during a retention rollout, a failure budget spent,
and a hot standby in the middle of it all. Each test names the protection it proves; docs/fleet.md has the commands.

The tests share one fleet and run in file order; each leaves the fleet converged for the next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.support.polling import wait_for

HERE = Path(__file__).resolve().parent
POLICY_DB = "fleet"
RANGE_TABLES = ("app.samples", "app.readings")
NEW_RETENTION = "4 months"
ROLLOUT_SUMMARY = "per host"  # the end of the name of retention_rollout.yml's summary task
CREATE_TASK = "Create the partitions of every policy item"
RETENTION_TASK = "Enforce the retention of the items that have one"
MANAGED_TASK = "Enforce the retention (each partition dumped first, to the controller's disk)"
# db3 logs in over TCP with a password, which its runner reads from the password file (molecule/fleet/inventory).
PASSWORD_HOST, PASSWORD = "db3", "fleet-Pw-only-in-pgpass"


def partitions(connection, table: str) -> list[tuple[str, str]]:
    """(name, bound) of every partition of `table`, by name."""
    return connection.execute(
        "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass ORDER BY 1", (table,)).fetchall()


def value(connection, statement: str, args=None):
    return connection.execute(statement, args).fetchone()[0]


def expired(connection, table: str, retention: str) -> list[str]:
    """Partitions of `table` whose whole range lies before now() - retention."""
    return [row[0] for row in connection.execute(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' "
        "AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz "
        "    <= now() - %s::interval ORDER BY 1", (table, retention))]


def fleet_partitions(fleet, hosts) -> dict:
    snapshot = {}
    for host in hosts:
        with fleet.connect(host) as connection:
            snapshot[host] = {table: partitions(connection, table) for table in RANGE_TABLES}
    return snapshot


def caught_up(fleet, standby: str) -> dict:
    """The standby's partitions once it has replayed everything its primary wrote so far."""
    primary = fleet.hosts[standby]["standby_of"]
    with fleet.connect(primary) as connection:
        target = value(connection, "SELECT pg_current_wal_lsn()::text")
    with fleet.connect(standby) as connection:
        wait_for(lambda: value(connection, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)), 30,
                 f"{standby} to replay its primary's WAL up to {target}")
    return fleet_partitions(fleet, [standby])[standby]


def status_entry(fleet, host: str, table: str, job: str) -> dict:
    status = json.loads(fleet.ssh(host, "cat /var/lib/pgfleet/status.json").stdout)
    return status["tables"][f"{POLICY_DB}/{table}"][job]


# ---------------------------------------------------------------------------------------------------------------------
# The installed runner killed with SIGKILL half way through creating a partition.
# Protection: each partition is created, filled from the default partition and attached in one transaction.


def test_runner_killed_mid_run_leaves_no_half_created_partition_and_no_lost_row(fleet):
    host = PASSWORD_HOST
    table, default = "app.readings", "app.readings_default"
    user, command = fleet.scheduled_command(host, "create")
    with fleet.connect(host) as db:
        # Work for the next run: the newest day goes back into the default partition, rows and all.
        newest = partitions(db, table)[-2][0]  # the last one by name is readings_default
        with db.transaction():
            db.execute(f"ALTER TABLE {table} DETACH PARTITION app.{newest}")
            db.execute(f"INSERT INTO {table} SELECT * FROM app.{newest}")
            db.execute(f"DROP TABLE app.{newest}")
        rows, rows_in_default = value(db, f"SELECT count(*) FROM {table}"), value(db, f"SELECT count(*) FROM {default}")
        partitions_before = partitions(db, table)
        assert rows_in_default > 0

        # A reader holds the default partition, so the run stops at ATTACH, inside the transaction that has created
        # the new partition and moved the rows into it.
        with fleet.connect(host, autocommit=False) as reader:
            reader.execute(f"SELECT count(*) FROM {default}")
            runner = fleet.start(host, "echo $$; " + fleet.as_cron_would(user, command))
            runner_pid = int(runner.stdout.readline())
            backend = wait_for(lambda: db.execute(
                "SELECT pid FROM pg_locks WHERE relation = %s::regclass AND mode = 'AccessExclusiveLock' "
                "AND NOT granted", (default,)).fetchone(), 60, "the runner to wait for the default partition")[0]
            assert value(db, "SELECT backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = %s", (backend,)), (
                "the run is not inside a transaction that has written (created the partition, moved the rows)")
            processes = fleet.ssh(host, "ps -eo args").stdout
            assert "pgfleet-partitions" in processes
            assert PASSWORD not in processes, "the password shows in the process list"
            fleet.ssh(host, f"kill -KILL {runner_pid}")
            runner.wait(timeout=30)
            reader.rollback()
        wait_for(lambda: not value(db, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (backend,)), 30,
                 "the killed runner's session to end")

        assert value(db, f"SELECT count(*) FROM {table}") == rows, "rows were lost"
        assert value(db, f"SELECT count(*) FROM {default}") == rows_in_default
        assert partitions(db, table) == partitions_before, "a partition was attached by the killed run"
        assert not value(db, "SELECT count(*) FROM pg_class WHERE relname = %s", (newest,)), (
            f"{newest} exists outside the partition set: a half-created partition")

        # The next scheduled run (the same command line) converges.
        next_run = fleet.ssh(host, fleet.as_cron_would(user, command))
        assert f"CHANGED {POLICY_DB}/{table} create" in next_run.stdout, next_run.stdout
        assert newest in [name for name, _bound in partitions(db, table)]
        assert value(db, f"SELECT count(*) FROM {table}") == rows
        assert value(db, f"SELECT count(*) FROM {default}") == 0
    entry = status_entry(fleet, host, table, "create")
    assert entry["last_result"] == "changed" and entry["last_error"] is None, entry


# ---------------------------------------------------------------------------------------------------------------------
# Two site.yml runs at once against the same hosts.
# Protection: the per-table advisory lock, under which a run plans again before it creates anything.


def sessions_creating(connection) -> int:
    """Sessions of the policy database inside a partition creation: waiting for a lock (of the table, or of the
    transaction creating the same partition), or polling for the table's advisory lock."""
    return value(connection, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                 "AND (wait_event_type = 'Lock' OR query LIKE %s)", (POLICY_DB, "%pg_try_advisory_lock%"))


@pytest.fixture(scope="module")
def concurrent_site_runs(fleet, playbooks):
    primaries = fleet.primaries()
    converged = fleet_partitions(fleet, fleet.hosts)
    # Work for both runs: the two newest (empty, future) months of app.samples disappear from every primary.
    dropped = {}
    for host in primaries:
        with fleet.connect(host) as db:
            dropped[host] = [name for name, _bound in partitions(db, "app.samples")[-2:]]
            for name in dropped[host]:
                db.execute(f"DROP TABLE app.{name}")
    # A session holding db1's table in SHARE mode (as CREATE INDEX would) stops both runs in the creation step
    # there, so that they meet; it lets go once both are in, or after 15 s (a run gives up on the table after ~20 s).
    with fleet.connect("db1", autocommit=False) as holder, fleet.connect("db1") as db:
        holder.execute("LOCK TABLE app.samples IN SHARE MODE")
        started = [playbooks.start("site"), playbooks.start("site")]
        wait_for(lambda: sessions_creating(db) or any(process.poll() is not None for process, _record in started),
                 300, "a site run to reach db1's partition creation")
        met = False
        if sessions_creating(db):
            try:
                met = wait_for(lambda: sessions_creating(db) >= 2, 15, "both runs to reach db1's partition creation")
            except AssertionError:
                pass
        holder.rollback()
    runs = [playbooks.finish(f"site run {number}", *run) for number, run in enumerate(started, 1)]
    return {"runs": runs, "met": met, "converged": converged, "dropped": dropped}


def test_two_site_runs_at_once_both_succeed(concurrent_site_runs, fleet):
    for run in concurrent_site_runs["runs"]:
        assert run.returncode == 0, f"{run.name} failed:\n{run.failures() or run.tail()}"
        for host in fleet.hosts:
            assert run.stats(host)["failures"] == 0 and run.stats(host)["unreachable"] == 0, run.tail()
    assert concurrent_site_runs["met"], "the two runs never met in db1's partition creation: the test proved nothing"


def test_two_site_runs_at_once_create_each_partition_once_and_end_in_the_same_state(concurrent_site_runs, fleet):
    runs, dropped = concurrent_site_runs["runs"], concurrent_site_runs["dropped"]
    assert fleet_partitions(fleet, fleet.primaries()) == {
        host: concurrent_site_runs["converged"][host] for host in fleet.primaries()}
    for host, names in dropped.items():
        created = [[name for result in run.results(CREATE_TASK, host)
                    if result["item"]["table"] == "app.samples" for name in result.get("created", [])]
                   for run in runs]
        assert not set(created[0]) & set(created[1]), f"{host}: both runs created {created}"
        if not fleet.hosts[host]["cron"]:  # where cron runs the create job each minute, it may have been first
            assert sorted(created[0] + created[1]) == sorted(names), (host, created)
        finals = [[result.get("partitions") for result in run.results(CREATE_TASK, host)] for run in runs]
        assert finals[0] == finals[1], f"{host}: the runs report different end states"


def test_standby_is_skipped_by_site_runs_and_receives_the_new_partitions(concurrent_site_runs, fleet):
    for standby in fleet.standbys():
        for run in concurrent_site_runs["runs"]:
            results = run.results(CREATE_TASK, standby)
            assert results and all(not result.get("failed") and not result["changed"]
                                   and "standby" in result.get("skipped_reason", "") for result in results), results
        primary = fleet.hosts[standby]["standby_of"]
        assert caught_up(fleet, standby) == concurrent_site_runs["converged"][primary]


# ---------------------------------------------------------------------------------------------------------------------
# A retention rollout while db3's PostgreSQL is down.
# Protections: serial + max_fail_percentage (the budget run), per-host failure isolation (the all-at-once run), the
# summary play, and the idempotent rollout (the rerun).


@pytest.fixture(scope="module")
def rollout(fleet, playbooks):
    down = "db3"
    settings = {"fleet_samples_retention": NEW_RETENTION}
    expected = {}
    for host in fleet.primaries():
        with fleet.connect(host) as db:
            expected[host] = expired(db, "app.samples", NEW_RETENTION)
    assert all(expected.values()), f"nothing to expire: {expected}"
    fleet.pg_ctl(down, "stop")
    try:
        budget = playbooks.run("retention_rollout", "-e", json.dumps(
            dict(settings, pgfleet_rollout_serial=[2, 1], pgfleet_rollout_max_fail_percentage=0)),
            name="rollout in batches of 2, 1, 1..., failure budget 0%")
        after_budget = fleet_partitions(fleet, [host for host in fleet.primaries() if host != down])
        policy_after_budget = {host: fleet.ssh(host, "cat /etc/pgfleet/partitions.yml").stdout for host in fleet.hosts}
        all_at_once = playbooks.run("retention_rollout", "-e", json.dumps(
            dict(settings, pgfleet_rollout_serial="100%", pgfleet_rollout_max_fail_percentage=100)),
            name="rollout to every host at once, failure budget 100%")
        after_all_at_once = fleet_partitions(fleet, [host for host in fleet.primaries() if host != down])
    finally:
        fleet.pg_ctl(down, "start")
    # What docs/fleet.md tells the operator: once the cause is fixed, run the rollout again for the failed host.
    rerun = playbooks.run("retention_rollout", "--limit", down, "-e", json.dumps(settings),
                          name=f"rollout again, limited to {down}")
    return dict(down=down, expected=expected, budget=budget, after_budget=after_budget,
                policy_after_budget=policy_after_budget, all_at_once=all_at_once,
                after_all_at_once=after_all_at_once, rerun=rerun)


def names(snapshot: dict, table: str = "app.samples") -> set[str]:
    return {name for name, _bound in snapshot[table]}


def test_failure_budget_stops_the_rollout_before_later_batches(rollout, fleet):
    budget, down = rollout["budget"], rollout["down"]
    order = list(fleet.hosts)
    later = order[order.index(down) + 1:]
    assert later, "the down host must not be the last one for this test"
    assert budget.returncode != 0, budget.tail()
    assert rollout["down"] in budget.failures(), budget.failures()
    assert budget.stats(down)["failures"] >= 1, budget.tail()
    for host in order[:order.index(down)]:
        assert budget.stats(host)["failures"] == 0, budget.tail()
    first = order[0]
    assert not names(rollout["after_budget"][first]) & set(rollout["expected"][first]), "the first batch did not run"
    for host in later:
        assert budget.statuses(host) == [], f"{host} was touched after the budget was spent: {budget.statuses(host)}"
        assert set(rollout["expected"][host]) <= names(rollout["after_budget"][host])
        assert '"retention": "12 months"' in rollout["policy_after_budget"][host]


def test_down_host_fails_alone_and_the_summary_names_it(rollout, fleet):
    run, down = rollout["all_at_once"], rollout["down"]
    assert run.returncode != 0, run.tail()
    assert run.stats(down)["failures"] >= 1
    summary = run.message(ROLLOUT_SUMMARY)
    assert summary[down]["status"] == "failed", summary
    for host in fleet.hosts:
        if host == down:
            continue
        assert run.stats(host)["failures"] == 0 and run.stats(host)["unreachable"] == 0, run.tail()
        assert summary[host]["status"] in ("ok", "skipped (standby)"), summary
    for host in fleet.primaries():
        if host != down:
            assert not names(rollout["after_all_at_once"][host]) & set(rollout["expected"][host]), host


def test_rerun_after_the_restart_converges(rollout, fleet):
    run, down = rollout["rerun"], rollout["down"]
    assert run.returncode == 0, run.tail()
    summary = run.message(ROLLOUT_SUMMARY)
    assert summary[down]["status"] == "ok", summary
    assert sorted(summary[down]["dropped"]) == sorted(f"app.{name}" for name in rollout["expected"][down]), summary
    for host in fleet.primaries():
        with fleet.connect(host) as db:
            assert not expired(db, "app.samples", NEW_RETENTION), host
        listing = fleet.ssh(host, f"ls /var/backups/pgfleet/{POLICY_DB}").stdout.split()
        for name in rollout["expected"][host]:
            assert any(entry.startswith(f"app.{name}") and entry.endswith(".dump") for entry in listing), (
                f"{host}: no dump of {name} in {listing}")


def test_standby_is_skipped_by_every_rollout_and_follows_its_primary(rollout, fleet):
    for standby in fleet.standbys():
        for run in (rollout["budget"], rollout["all_at_once"]):
            results = run.results(RETENTION_TASK, standby)
            assert results, f"{run.name}: {standby} was not reached"
            for result in results:
                assert not result.get("failed") and not result["changed"], result
                assert "standby" in result.get("skipped_reason", ""), result
        assert rollout["all_at_once"].message(ROLLOUT_SUMMARY)[standby]["status"] == "skipped (standby)"
        primary = fleet.hosts[standby]["standby_of"]
        assert caught_up(fleet, standby) == fleet_partitions(fleet, [primary])[primary]


# ---------------------------------------------------------------------------------------------------------------------
# Databases nobody can SSH to (docs/fleet.md, "Managed databases"): tests/fleet/managed_retention.yml runs the module
# on the controller (delegate_to) against each database's address, in check mode.
# Protection: check mode plans against the live catalog and changes nothing; a replica is skipped like any standby.


def test_managed_databases_are_reached_from_the_controller_with_delegate_to(fleet, playbooks, tmp_path):
    inventory = tmp_path / "managed.json"
    inventory.write_text(json.dumps({"managed_postgres": {"hosts": {
        name: {"db_endpoint": host["address"], "db_name": POLICY_DB, "db_user": "postgres",
               "db_pg_dump_path": f"{host['pg_bin']}/pg_dump"}
        for name, host in fleet.hosts.items()}}}))
    before = fleet_partitions(fleet, fleet.hosts)
    run = playbooks.run(str(HERE / "managed_retention.yml"), "--check", "-e",
                        json.dumps({"table": "app.samples", "retention": "1 month"}),
                        inventory=str(inventory), name="managed-database retention, check mode")
    assert run.returncode == 0, run.failures() or run.tail()
    for host in fleet.hosts:
        [result] = run.results(MANAGED_TASK, host)
        if fleet.hosts[host]["standby_of"]:
            assert not result["changed"] and "standby" in result.get("skipped_reason", ""), result
        else:
            assert result["changed"] and result["dropped"], f"{host}: check mode listed nothing to drop: {result}"
    assert fleet_partitions(fleet, fleet.hosts) == before, "check mode changed a partition set"
