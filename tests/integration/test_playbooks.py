"""The collection's playbooks, called by FQCN, against a throwaway PostgreSQL 18 (what they do does not depend on
the server's version; the roles' converge tests run on 15, so the role meets both): site then health_check, a
retention rollout previewed with --check and then run over a primary, a hot standby and a host with a bad policy, a
partition restored from its dump (into its database, and into another one without its parent), and emergency
partitions."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.hosts import Host, create_database, months, partitions_of, query, require_host_python, sample_policy

pytestmark = pytest.mark.parametrize("pg_server", ["18"], indirect=True)


def socket_connection(server):
    return {"pgfleet_partitions_connection": {"login_unix_socket": server.socket_dir, "port": server.port}}


@dataclass
class Fleet:
    host: Host
    db: str


@pytest.fixture(scope="module")
def fleet(pg_server):
    """One host where site.yml has run: the policy applied, the runner installed and scheduled."""
    require_host_python()
    db = create_database(pg_server, f"playbooks_{os.getpid()}")
    host = Host(pg_server, sample_policy(db), variables=socket_connection(pg_server))
    try:
        host.play("pgfleet.partitions.site")
        yield Fleet(host, db)
    finally:
        host.remove()
        pg_server.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


SUMMARY = "Dropped, detached, backed up, skipped (standby) and failed, per host"


def test_health_check_fails_until_every_job_has_run_and_on_a_short_runway(fleet):
    host, db = fleet.host, fleet.db
    never = host.play("pgfleet.partitions.health_check", expect_failure=True)
    assert f"{db}/public.raw_ingestions: create has never succeeded" in never.output
    # A host that schedules no jobs (maintenance from playbooks only) is judged on its partitions alone.
    unscheduled = host.play("pgfleet.partitions.health_check", "-e", "pgfleet_partitions_scheduler=none")
    assert "5 tables healthy" in unscheduled.output

    for job in ("create", "brin", "backup"):
        completed = host.runner("run", job)
        assert completed.returncode == 0, completed.stdout + completed.stderr

    healthy = host.play("pgfleet.partitions.health_check")
    assert "5 tables healthy" in healthy.output
    short = host.play("pgfleet.partitions.health_check", "-e", "pgfleet_partitions_min_runway=4",
                      expect_failure=True)
    assert re.search(rf"{db}/public\.raw_ingestions: runway 3 partitions \(\d+ days\), below 4", short.output), \
        short.output[-4000:]


def test_retention_rollout_removes_exactly_what_check_mode_listed_and_a_dump_restores_a_partition(fleet, standby):
    host, server, db = fleet.host, fleet.host.server, fleet.db
    host.policy = sample_policy(db, raw_ingestions={"retention": "3 months"})
    replica = standby()
    standby_host = Host(replica, host.policy, variables=socket_connection(replica))
    broken_host = Host(server, [*host.policy, {"db": db, "table": "no_such_table", "interval": "month"}],
                       variables=socket_connection(server))
    extra = {"db2": standby_host.host_variables(), "db3": broken_host.host_variables()}
    rollout = ("pgfleet.partitions.retention_rollout", "-e", "pgfleet_rollout_max_fail_percentage=100")
    old = [f"public.raw_ingestions_{month}" for month in months(server, db, -8, -6)]
    try:
        # db3 fails, so both runs end with a non-zero exit; max_fail_percentage=100 lets the rollout go on.
        preview = host.play(*rollout, "--check", "--diff", extra_hosts=extra, expect_failure=True)
        planned = preview.results(SUMMARY)["db1"]["msg"]
        assert planned["db1"]["dropped"] == old
        assert planned["db1"]["status"] == "ok"
        assert planned["db2"]["status"] == "skipped (standby)" and planned["db2"]["dropped"] == []
        assert planned["db3"]["status"] == "failed" and "no_such_table" in planned["db3"]["error"]
        assert preview.recap("db3")["failed"] == 1 and preview.recap("db1")["failed"] == 0
        assert [f"public.{name}" for name in partitions_of(server, db, "raw_ingestions")][:3] == old

        applied = host.play(*rollout, extra_hosts=extra, expect_failure=True)
        done = applied.results(SUMMARY)["db1"]["msg"]
        assert done["db1"]["dropped"] == planned["db1"]["dropped"]
        # The planned path holds the place of the dump's time; all the rest (directory, partition, oid) is the same.
        assert [re.sub(r"\.\d{8}T\d{12}Z\.dump$", ".<time of the dump>.dump", path)
                for path in done["db1"]["backed_up"]] == planned["db1"]["backed_up"]
        assert done["db1"]["backed_up"] and all(Path(path).exists() for path in done["db1"]["backed_up"])
        assert [done["db2"]["status"], done["db3"]["status"]] == ["skipped (standby)", "failed"]
        assert not set(old) & {f"public.{name}" for name in partitions_of(server, db, "raw_ingestions")}
    finally:
        standby_host.remove()
        broken_host.remove()

    attached, detached, damaged = old
    # The newest dump of the partition (the names sort by time), the one restore_partition.yml takes.
    dump = sorted(host.path(f"var/backups/pgfleet/{db}").glob(f"{damaged}.*.dump"))[-1]
    dump.write_bytes(dump.read_bytes() + b"tampered")

    def restore(partition, *extra_args, expect_failure=False):
        return host.play("pgfleet.partitions.restore_partition", "-e", "pgfleet_restore_host=db1",
                         "-e", f"pgfleet_restore_db={db}", "-e", f"pgfleet_restore_partition={partition}",
                         *extra_args, expect_failure=expect_failure)

    refused = restore(damaged, expect_failure=True)
    assert "does not match" in refused.output
    restore(attached)
    restore(detached, "-e", "pgfleet_restore_attach=false")
    assert attached.split(".")[1] in partitions_of(server, db, "raw_ingestions")
    assert detached.split(".")[1] not in partitions_of(server, db, "raw_ingestions")
    assert query(server, db, f"SELECT count(*) FROM {attached}") == [["100"]]
    assert query(server, db, f"SELECT count(*) FROM {detached}") == [["100"]]
    assert query(server, db, f"SELECT to_regclass('{damaged}') IS NULL") == [["t"]]

    # Into a database that has neither the parent nor the partition's schema: a table of its own, with every row.
    scratch = f"scratch_{os.getpid()}"
    server.psql(f"CREATE DATABASE {scratch} TEMPLATE template0")
    try:
        server.psql("DROP SCHEMA public", dbname=scratch)
        restored = restore(attached, "-e", f"pgfleet_restore_into_db={scratch}")
        assert f"{attached} restored into {scratch}" in restored.output and "as a table of its own" in restored.output
        assert query(server, scratch, f"SELECT count(*), count(DISTINCT id) FROM {attached}") == [["100", "100"]]
        assert query(server, scratch, f"SELECT relispartition, to_regclass('public.raw_ingestions') IS NULL "
                                      f"FROM pg_class WHERE oid = '{attached}'::regclass") == [["f", "t"]]
        # Restored again, it clashes with the table now there and changes nothing.
        restore(attached, "-e", f"pgfleet_restore_into_db={scratch}", expect_failure=True)
        assert query(server, scratch, f"SELECT count(*) FROM {attached}") == [["100"]]
    finally:
        server.psql(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")


def test_emergency_partitions_make_the_current_and_next_partition_now(fleet):
    host, server, db = fleet.host, fleet.host.server, fleet.db
    current, following, last = (f"sleep_metrics_{month}" for month in months(server, db, 0, 2))
    server.psql(f"DROP TABLE {current}; DROP TABLE {following}", dbname=db)

    host.play("pgfleet.partitions.emergency_partitions")

    assert partitions_of(server, db, "sleep_metrics") == [current, following, last]
