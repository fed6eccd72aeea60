"""Sets made by pg_partman 4.7 (Debian's, PostgreSQL 15): adopted by postgres_partition with the equivalent policy
(no-op, then exactly the partitions a raised premake adds), refused when off the grid; UUIDv7 keys on 15 and 18."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from pathlib import Path

import pytest

from tests.conftest import PgDatabase

PARTMAN_CONTROL = Path("/usr/share/postgresql/15/extension/pg_partman.control")
# name: (key type, pg_partman's interval, epoch, our interval)
SETS = {
    "quarter_hours": ("timestamptz", "15 minutes", "none", "15 minutes"),
    "two_hours": ("timestamptz", "2 hours", "none", "2 hours"),
    "three_days": ("timestamptz", "3 days", "none", "3 days"),
    "fortnights": ("timestamptz", "2 weeks", "none", "2 weeks"),
    "quarters": ("timestamptz", "3 months", "none", "3 months"),
    "years": ("timestamptz", "1 year", "none", "1 year"),
    "epoch_ms_days": ("bigint", "daily", "milliseconds", "day"),
    "epoch_ns_hours": ("bigint", "2 hours", "nanoseconds", "2 hours"),
}
PARTMAN_PREMAKE = 2
_numbers = itertools.count(1)


def bounds_of(pg, table):
    """(name, lower, upper) of each non-default partition in key order, as the catalog prints them."""
    return pg.sql(
        "SELECT c.relname::text, (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''?([^'')]*)'))[1], "
        "(regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''?([^'')]*)'))[1] FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass "
        "AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' ORDER BY 2::text COLLATE \"C\"", (table,))


@pytest.fixture(scope="module")
def partman_template(pg_server):
    """One database per module holding every set, made by pg_partman in one transaction (so one now()), that each
    test copies: (template name, the now() pg_partman planned from)."""
    if pg_server.major != "15" or not PARTMAN_CONTROL.exists():
        if pg_server.major == "15" and os.environ.get("CI") == "true":
            pytest.fail("pg_partman for PostgreSQL 15 is missing: scripts/ensure-system-packages installs it")
        pytest.skip("Debian's pg_partman exists for PostgreSQL 15 only")
    name = "partman_sets_%d" % os.getpid()
    pg_server.psql(f"CREATE DATABASE {name} TEMPLATE template0")
    template = PgDatabase(pg_server, name)
    template.sql("CREATE SCHEMA partman")
    template.sql("CREATE EXTENSION pg_partman SCHEMA partman")
    statements = []
    for table, (key_type, interval, epoch, _ours) in SETS.items():
        statements.append(f"CREATE TABLE {table} (k {key_type} NOT NULL, payload text) PARTITION BY RANGE (k)")
        statements.append(f"SELECT partman.create_parent('public.{table}', 'k', 'native', '{interval}', "
                          f"p_premake := {PARTMAN_PREMAKE}, p_epoch := '{epoch}')")
    statements.append("CREATE TABLE made_at AS SELECT now() AS at")
    with template.connect() as conn, conn.transaction():
        for statement in statements:
            conn.execute(statement)
    made_at = template.value("SELECT at FROM made_at")
    yield name, made_at
    pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sets(pg_server, partman_template):
    name = "partman_%d_%d" % (next(_numbers), os.getpid())
    pg_server.psql(f"CREATE DATABASE {name} TEMPLATE {partman_template[0]}")
    yield PgDatabase(pg_server, name), partman_template[1]
    pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _anchor(pg, table, epoch):
    """The lower bound of pg_partman's oldest partition as local (UTC) wall time: the anchor that fits its grid."""
    lower = bounds_of(pg, table)[0][1]
    if epoch == "none":
        return lower.replace("+00", "")
    scale = {"milliseconds": 10 ** 3, "nanoseconds": 10 ** 9}[epoch]
    return (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(lower) // scale)).isoformat(" ")


def _policy(pg, table, made_at, premake, anchor=True):
    _key_type, _interval, epoch, ours = SETS[table]
    args = pg.params(table=table, interval=ours, premake=premake, default_partition=True,
                     reference_time=made_at.isoformat())
    if epoch != "none":
        args["epoch"] = epoch
    if anchor:
        args["interval_anchor"] = _anchor(pg, table, epoch)
    return args


@pytest.mark.parametrize("table", sorted(SETS))
def test_an_equivalent_policy_adopts_a_partman_set_unchanged_and_premake_plus_three_adds_three(
        module_runner, sets, table):
    pg, made_at = sets
    before = bounds_of(pg, table)
    same = module_runner("postgres_partition", _policy(pg, table, made_at, PARTMAN_PREMAKE), check_mode=True)
    assert same.get("failed") is not True, same.get("msg")
    assert same["changed"] is False and same["queries"] == []
    preview = module_runner("postgres_partition", _policy(pg, table, made_at, PARTMAN_PREMAKE + 3), check_mode=True)
    assert preview["changed"] is True and bounds_of(pg, table) == before
    applied = module_runner("postgres_partition", _policy(pg, table, made_at, PARTMAN_PREMAKE + 3))
    assert applied["changed"] is True, applied.get("msg")
    after = bounds_of(pg, table)
    assert after[:len(before)] == before and len(after) == len(before) + 3
    assert all(left[2] == right[1] for left, right in zip(after, after[1:]))
    again = module_runner("postgres_partition", _policy(pg, table, made_at, PARTMAN_PREMAKE + 3))
    assert again["changed"] is False


def test_a_partman_fortnight_off_the_default_monday_grid_is_refused_with_the_anchor_that_fits(module_runner, sets):
    pg, made_at = sets
    fitting = _anchor(pg, "fortnights", "none")
    refused = module_runner("postgres_partition", _policy(pg, "fortnights", made_at, PARTMAN_PREMAKE, anchor=False))
    since_first_monday = dt.datetime.fromisoformat(fitting) - dt.datetime(1970, 1, 5)
    if since_first_monday.days % 14 == 0 and not since_first_monday.seconds:
        pytest.skip("pg_partman's fortnights happen to lie on the default grid today")
    assert refused["failed"] is True and refused["changed"] is False
    assert bounds_of(pg, "fortnights")[0][0] in refused["msg"]
    assert "interval_anchor '%s' would fit it" % fitting.replace("+00", "") in refused["msg"]


# A UUIDv7 made for a given moment, as RFC 9562 lays it out: 48 bits of Unix milliseconds, version 7, random bits
# (PostgreSQL 18's uuidv7() makes the same; 15 has no generator).
UUID7_AT = """
CREATE FUNCTION uuid7_at(moment timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(set_byte(overlay(uuid_send(gen_random_uuid())
                                 PLACING substring(int8send((extract(epoch FROM moment) * 1000)::bigint) FROM 3)
                                 FROM 1 FOR 6), 6, 112 + get_byte(uuid_send(gen_random_uuid()), 6) % 16), 'hex')::uuid
$$"""


def test_uuid7_keys_land_in_their_month_and_a_lookup_by_id_prunes_to_one_partition(module_runner, pg):
    pg.sql("CREATE TABLE orders (id uuid NOT NULL PRIMARY KEY, note text) PARTITION BY RANGE (id)")
    pg.sql(UUID7_AT)
    args = pg.params(table="orders", interval="month", premake=2, backfill=2,
                     reference_time="2025-03-14T15:09:26+00:00")
    assert module_runner("postgres_partition", args, check_mode=True)["changed"] is True
    created = module_runner("postgres_partition", args)
    assert created["changed"] is True, created.get("msg")
    assert module_runner("postgres_partition", args)["changed"] is False
    moments = ["2025-01-01 00:00:00+00", "2025-01-31 23:59:59.999+00", "2025-02-01 00:00:00+00",
               "2025-03-14 15:09:26.535+00", "2025-05-31 23:59:59.999+00"]
    for moment in moments:
        pg.sql("INSERT INTO orders VALUES (uuid7_at(%s), %s)", (moment, moment))
    if pg.major >= 18:  # the server's own generator, shifted from now into the set's window
        pg.sql("INSERT INTO orders VALUES (uuidv7('2025-04-20 12:00:00+00'::timestamptz - now()), "
               "'2025-04-20 12:00:00+00')")
        moments.append("2025-04-20 12:00:00+00")
    landed = dict(pg.sql("SELECT note, tableoid::regclass::text FROM orders"))
    expected = {
        "2025-01-01 00:00:00+00": "orders_2025_01", "2025-01-31 23:59:59.999+00": "orders_2025_01",
        "2025-02-01 00:00:00+00": "orders_2025_02", "2025-03-14 15:09:26.535+00": "orders_2025_03",
        "2025-05-31 23:59:59.999+00": "orders_2025_05", "2025-04-20 12:00:00+00": "orders_2025_04"}
    assert landed == {moment: expected[moment] for moment in moments}
    literal = pg.value("SELECT id::text FROM orders WHERE note = '2025-03-14 15:09:26.535+00'")
    plan = "\n".join(row[0] for row in pg.sql("EXPLAIN (COSTS OFF) SELECT * FROM orders WHERE id = '%s'" % literal))
    assert "orders_2025_03" in plan
    assert [name for name in ("orders_2025_01", "orders_2025_02", "orders_2025_04", "orders_2025_05")
            if name in plan] == []
    info = module_runner("postgres_partition_info", pg.params(table=["orders"],
                                                              reference_time="2025-03-14T15:09:26+00:00"))
    runway = info["tables"]["public.orders"]["runway"]
    assert runway["current"] == "orders_2025_03" and runway["partitions"] == 2, runway
    assert runway["until"] == "2025-06-01T00:00:00+00:00"  # the time the last bound encodes
    expired = module_runner("postgres_partition_retention", pg.params(
        table="orders", retention="3 months", reference_time="2025-05-15T00:00:00+00:00"))
    assert expired.get("failed") is not True, expired.get("msg")
    assert expired["dropped"] == ["public.orders_2025_01"]
    assert pg.value("SELECT count(*) FROM orders WHERE note LIKE '2025-01%'") == 0


def test_partman_info_maps_every_set_to_a_policy_that_plans_nothing_and_names_like_partman(module_runner, sets):
    pg, made_at = sets
    info = module_runner("postgres_partman_info", pg.params(), check_mode=True)
    assert info["installed"] is True and info["version"] == "4.7.2" and info["changed"] is False
    mapped = {entry["table"]: entry for entry in info["sets"]}
    assert sorted(mapped) == sorted("public.%s" % table for table in SETS)
    for table, entry in mapped.items():
        assert entry["refusal"] is None and entry["policy"]["table"] == table
        assert {"jobmon", "infinite_time_partitions"} <= {unmapped["setting"] for unmapped in entry["unmapped"]}
        policy = dict(entry["policy"], reference_time=made_at.isoformat())
        plan = module_runner("postgres_partition", pg.params(**policy), check_mode=True)
        assert plan.get("failed") is not True and plan["changed"] is False, (table, plan.get("msg"))
    policy = dict(mapped["public.quarter_hours"]["policy"], reference_time=made_at.isoformat())
    policy["premake"] += 1
    created = module_runner("postgres_partition", pg.params(**policy))
    newest = bounds_of(pg, "quarter_hours")[-1]
    assert created["changed"] is True
    assert newest[0] == "quarter_hours_p" + dt.datetime.fromisoformat(newest[1]).strftime("%Y_%m_%d_%H%M")


def _partitions(pg, table):
    return [row[0] for row in bounds_of(pg, table)]


def test_switched_off_sets_are_left_alone_by_partman_until_switched_back_on(module_runner, sets):
    pg = sets[0]
    handed_over = ["public.three_days", "public.years"]
    args = pg.params(tables=handed_over, state="off")
    preview = module_runner("postgres_partman_maintenance", args, check_mode=True, diff=True)
    assert preview["changed"] is True and preview["switched"] == handed_over
    assert preview["diff"]["after"] == {table: "off" for table in handed_over}
    assert pg.value("SELECT count(*) FROM partman.part_config WHERE automatic_maintenance = 'off'") == 0
    assert module_runner("postgres_partman_maintenance", args)["changed"] is True
    assert module_runner("postgres_partman_maintenance", args)["changed"] is False
    unknown = pg.params(tables=["public.nope", *handed_over], state="on")
    refused = module_runner("postgres_partman_maintenance", unknown)
    assert refused["failed"] is True and "public.nope" in refused["msg"]
    assert pg.value("SELECT count(*) FROM partman.part_config WHERE automatic_maintenance = 'off'") == 2

    # pg_partman would now make two more partitions of every set it maintains (without rows in them, only with
    # infinite_time_partitions).
    pg.sql("UPDATE partman.part_config SET premake = premake + 2, infinite_time_partitions = true")
    before = {table: _partitions(pg, table) for table in ("three_days", "years", "fortnights")}
    pg.sql("SELECT partman.run_maintenance(p_analyze := false)")
    assert _partitions(pg, "three_days") == before["three_days"] and _partitions(pg, "years") == before["years"]
    assert len(_partitions(pg, "fortnights")) == len(before["fortnights"]) + 2

    assert module_runner("postgres_partman_maintenance", pg.params(tables=handed_over, state="on"))["changed"]
    pg.sql("SELECT partman.run_maintenance(p_analyze := false)")
    assert len(_partitions(pg, "three_days")) == len(before["three_days"]) + 2


MIGRATED = ("quarter_hours", "fortnights", "quarters", "epoch_ms_days", "epoch_ns_hours")


def test_the_migration_playbook_writes_the_policy_proves_a_no_op_plan_switches_and_rolls_back(sets):
    import yaml

    from tests.support.hosts import Host, require_host_python

    require_host_python()
    pg = sets[0]
    for table in set(SETS) - set(MIGRATED):  # a host with five sets
        pg.sql(f"DELETE FROM partman.part_config WHERE parent_table = 'public.{table}'")
        pg.sql(f"DROP TABLE {table}")
    host = Host(pg.server, [], variables={
        "pgfleet_partitions_connection": {"login_unix_socket": pg.server.socket_dir, "port": pg.server.port}})
    config, cron = host.path("etc/pgfleet/partitions.yml"), host.path("etc/cron.d")
    migrate = ("pgfleet.partitions.migrate_from_partman", "-e", json.dumps({"pgfleet_migrate_databases": [pg.name]}))
    try:
        review = host.play(*migrate)
        written = yaml.safe_load((host.controller / "partman_policies" / "db1.yml").read_text())
        items = {item["table"]: item for item in written["pgfleet_migrated_policy"]}
        assert sorted(items) == sorted("public.%s" % table for table in MIGRATED)
        assert items["public.fortnights"]["interval"] == "2 weeks" and items["public.fortnights"]["db"] == pg.name
        assert items["public.epoch_ns_hours"]["epoch"] == "nanoseconds"
        assert {"public.quarters", "jobmon"} <= {value for entry in written["pgfleet_migrated_unmapped"]
                                                 for value in (entry["table"], entry["setting"])}
        assert review.output.count("no-op plan") == len(MIGRATED), review.output[-6000:]
        assert not config.exists() and not any(cron.iterdir())
        assert pg.value("SELECT count(*) FROM partman.part_config WHERE automatic_maintenance = 'on'") == 5

        host.play(*migrate, "-e", "pgfleet_migrate_apply=true")
        assert pg.value("SELECT count(*) FROM partman.part_config WHERE automatic_maintenance = 'off'") == 5
        installed = yaml.safe_load(config.read_text())
        assert sorted(MIGRATED) == sorted(item["table"].split(".")[1] for item in installed["tables"]), installed
        assert any(cron.iterdir())
        pg.sql("UPDATE partman.part_config SET premake = premake + 2, infinite_time_partitions = true")
        before = {table: _partitions(pg, table) for table in MIGRATED}
        pg.sql("SELECT partman.run_maintenance(p_analyze := false)")
        assert {table: _partitions(pg, table) for table in MIGRATED} == before

        host.play(*migrate, "-e", "pgfleet_migrate_rollback=true")
        assert pg.value("SELECT count(*) FROM partman.part_config WHERE automatic_maintenance = 'on'") == 5
        assert yaml.safe_load(config.read_text())["tables"] == []
        pg.sql("SELECT partman.run_maintenance(p_analyze := false)")
        assert len(_partitions(pg, "quarters")) == len(before["quarters"]) + 2
    finally:
        host.remove()


def test_a_partman_set_sub_partitioned_by_day_is_adopted_extended_whole_and_expired_leaf_by_leaf(
        module_runner, sets, tmp_path):
    pg = sets[0]
    pg.sql("CREATE TABLE subbed (k timestamptz NOT NULL, payload text) PARTITION BY RANGE (k)")
    pg.sql("SELECT partman.create_parent('public.subbed', 'k', 'native', 'monthly', p_premake := 1)")
    pg.sql("SELECT partman.create_sub_parent('public.subbed', 'k', 'native', 'daily', p_premake := 2, "
           "p_native_check := 'yes')")
    now = pg.value("SELECT now()")
    entries = {entry["table"]: entry for entry in module_runner("postgres_partman_info", pg.params())["sets"]}
    subbed = entries["public.subbed"]
    assert subbed["refusal"] is None and subbed["policy"]["subpartition"] == {
        "strategy": "range", "column": "k", "interval": "day"}
    sub_parents = [table for table in entries if table.startswith("public.subbed_p")]
    assert len(sub_parents) == 3 and all(entries[t]["policy"] is None and entries[t]["refusal"] is None
                                         for t in sub_parents)
    policy = dict(subbed["policy"], reference_time=now.isoformat())
    assert module_runner("postgres_partition", pg.params(**policy), check_mode=True)["changed"] is False
    policy["premake"] += 1
    created = module_runner("postgres_partition", pg.params(**policy))
    assert len(created["created"]) == 1, created.get("msg")
    newest = created["created"][0]
    days = pg.value("SELECT count(*) FROM pg_partition_tree(%s) WHERE isleaf", (newest,))
    first = pg.value("SELECT date_trunc('month', now() + interval '2 months')")
    assert days == ((first + dt.timedelta(days=32)).replace(day=1) - first).days

    oldest = bounds_of(pg, "subbed")[0]
    pg.sql("INSERT INTO subbed SELECT %s::timestamptz + n * interval '7 hours', 'x' FROM generate_series(0, 99) n",
           (oldest[1],))
    leaves = [row[0] for row in pg.sql("SELECT relid::regclass::text FROM pg_partition_tree(%s) WHERE isleaf",
                                       (oldest[0],))]
    just_past = pg.value("SELECT %s::timestamptz + interval '1 day'", (oldest[2],))
    expired = module_runner("postgres_partition_retention", pg.params(
        table="subbed", retention="1 day", reference_time=just_past.isoformat(),
        backup_dir=str(tmp_path / "backups"), pg_dump_path=str(pg.server.bin_dir / "pg_dump")))
    assert expired.get("failed") is not True, expired.get("msg")
    assert expired["dropped"] == ["public." + oldest[0]]
    assert sorted(b["partition"] for b in expired["backups"]) == sorted("public." + leaf for leaf in leaves)
    assert sum(b["rows"] for b in expired["backups"]) == 100 and oldest[0] not in _partitions(pg, "subbed")
