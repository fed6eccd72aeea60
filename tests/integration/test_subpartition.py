"""Two-level sets: each new top-level partition is created partitioned with all its sub-partitions and then
attached; the sub-partitions carry what the parent gives (owner, privileges, template storage parameters)."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

REFERENCE = "2025-03-14T12:00:00+00:00"


def tree(pg, table):
    """(relation, its parent, level, whether it is partitioned) of the whole set, the root left out."""
    return pg.sql("SELECT relid::regclass::text, parentrelid::regclass::text, level, NOT isleaf "
                  "FROM pg_partition_tree(%s) WHERE level > 0 ORDER BY 3, 1", (table,))


def make_set(pg):
    for role in ("sub_owner", "sub_reader"):  # roles belong to the server, which the tests share
        pg.sql(f"DO $$ BEGIN CREATE ROLE {role}; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    pg.sql("CREATE TABLE events (id bigint NOT NULL, created_at timestamptz NOT NULL, region text NOT NULL, "
           "PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)")
    pg.sql("ALTER TABLE events OWNER TO sub_owner")
    pg.sql("GRANT SELECT ON events TO sub_reader")
    pg.sql("CREATE TABLE events_template (LIKE events) WITH (fillfactor = 70)")


SUBS = [
    pytest.param(dict(strategy="hash", column="id", hash_modulus=4), 4, id="hash by id into four"),
    pytest.param(dict(strategy="range", column="created_at", interval="day"), 31, id="range by day"),
]


@pytest.mark.parametrize("sub, leaves_of_march", SUBS)
def test_new_partitions_come_sub_partitioned_and_their_leaves_inherit(module_runner, pg, sub, leaves_of_march):
    make_set(pg)
    args = pg.params(table="events", interval="month", premake=1, reference_time=REFERENCE, subpartition=sub,
                     template_table="events_template")
    preview = module_runner("postgres_partition", args, check_mode=True)
    assert preview.get("failed") is not True, preview.get("msg")
    assert preview["changed"] is True and tree(pg, "events") == []
    applied = module_runner("postgres_partition", args)
    assert applied["changed"] is True and applied["created"] == ["events_2025_03", "events_2025_04"]
    relations = tree(pg, "events")
    assert [row[0] for row in relations if row[2] == 1] == ["events_2025_03", "events_2025_04"]
    assert all(row[3] for row in relations if row[2] == 1)
    march = [row[0] for row in relations if row[1] == "events_2025_03"]
    assert len(march) == leaves_of_march and not any(row[3] for row in relations if row[2] == 2)
    leaves = [row[0] for row in relations if row[2] == 2]
    carried = pg.sql("SELECT relname::text, pg_get_userbyid(relowner)::text, has_table_privilege('sub_reader', "
                     "oid, 'SELECT'), coalesce(reloptions, '{}')::text FROM pg_class WHERE relname = ANY(%s)",
                     (leaves + ["events_2025_03"],))
    for name, owner, readable, options in carried:
        assert owner == "sub_owner" and readable, name
        assert options == ("{}" if name == "events_2025_03" else "{fillfactor=70}"), name
    pg.sql("INSERT INTO events SELECT n, '2025-03-01'::timestamptz + n * interval '1 hour', 'eu' "
           "FROM generate_series(0, 200) AS n")
    assert pg.value("SELECT count(DISTINCT tableoid) FROM events WHERE created_at < '2025-04-01'") == min(
        leaves_of_march, 9)
    assert module_runner("postgres_partition", args)["changed"] is False


def test_a_sub_interval_that_does_not_divide_the_partitions_is_refused_before_anything_changes(module_runner, pg):
    make_set(pg)
    refused = module_runner("postgres_partition", pg.params(
        table="events", interval="month", premake=1, reference_time=REFERENCE,
        subpartition=dict(strategy="range", column="created_at", interval="week")))
    assert refused["failed"] is True and "does not divide" in refused["msg"] and tree(pg, "events") == []


def _restored_rows(pg, dump, table, tmp_path):
    """The rows of `table` restored from its dump into a scratch database (the leaf alone, without its ATTACH)."""
    scratch = f"{pg.name}_{table}"
    restore = str(pg.server.bin_dir / "pg_restore")
    pg.server.psql(f"CREATE DATABASE {scratch} TEMPLATE template0")
    try:
        listing = subprocess.run([restore, "-l", dump], check=True, capture_output=True, text=True).stdout
        entries = tmp_path / f"{table}.list"
        entries.write_text("".join(line + "\n" for line in listing.splitlines() if "ATTACH" not in line))
        subprocess.run([restore, "-h", pg.server.socket_dir, "-p", str(pg.server.port), "-U", "postgres", "-d",
                        scratch, "--exit-on-error", "-L", str(entries), dump], check=True, capture_output=True)
        return sorted(dataclasses.replace(pg, name=scratch).sql(f"SELECT id, created_at FROM {table}"))
    finally:
        pg.server.psql(f"DROP DATABASE {scratch} WITH (FORCE)")


@pytest.mark.parametrize("action", ["drop", "detach"])
def test_retention_dumps_every_leaf_of_a_sub_partitioned_partition_then_removes_it_whole(
        module_runner, pg, tmp_path, action):
    make_set(pg)
    module_runner("postgres_partition", pg.params(
        table="events", interval="month", premake=2, reference_time=REFERENCE,
        subpartition=dict(strategy="hash", column="id", hash_modulus=4)))
    pg.sql("INSERT INTO events SELECT n, '2025-03-01'::timestamptz + n * interval '2 hours', 'eu' "
           "FROM generate_series(0, 99) AS n")
    leaves = {row[0]: sorted(pg.sql(f"SELECT id, created_at FROM {row[0]}")) for row in tree(pg, "events")
              if row[1] == "events_2025_03"}
    args = pg.params(table="events", retention="2 months", reference_time="2025-06-15T00:00:00+00:00",
                     action=action, backup_dir=str(tmp_path / "backups"),
                     pg_dump_path=str(pg.server.bin_dir / "pg_dump"))
    preview = module_runner("postgres_partition_retention", args, check_mode=True)
    assert preview["changed"] is True and sorted(b["partition"] for b in preview["backups"]) == sorted(
        "public.%s" % leaf for leaf in leaves)
    assert len(tree(pg, "events")) == 3 + 3 * 4
    result = module_runner("postgres_partition_retention", args)
    assert result.get("failed") is not True, result.get("msg")
    assert result["dropped" if action == "drop" else "detached"] == ["public.events_2025_03"]
    assert sorted(b["partition"] for b in result["backups"]) == sorted("public.%s" % leaf for leaf in leaves)
    assert sum(b["rows"] for b in result["backups"]) == 100
    assert "events_2025_03" not in [row[0] for row in tree(pg, "events")]
    for backup in result["backups"]:
        leaf = backup["partition"].split(".")[1]
        assert _restored_rows(pg, backup["path"], leaf, tmp_path) == leaves[leaf]
    kept = pg.value("SELECT count(*) FROM events_2025_03") if action == "detach" else None
    assert kept in (None, 100)
    assert module_runner("postgres_partition_retention", args)["changed"] is False


def test_info_counts_a_sub_partitioned_partition_by_its_leaves(module_runner, pg):
    make_set(pg)
    module_runner("postgres_partition", pg.params(table="events", interval="month", premake=0,
                                                  reference_time=REFERENCE,
                                                  subpartition=dict(strategy="hash", column="id", hash_modulus=2)))
    pg.sql("CREATE TABLE events_2025_04 PARTITION OF events FOR VALUES FROM ('2025-04-01') TO ('2025-05-01') "
           "PARTITION BY HASH (id)")  # no leaves yet
    pg.sql("INSERT INTO events SELECT n, '2025-03-01'::timestamptz + n * interval '1 minute', 'eu' "
           "FROM generate_series(1, 1000) AS n")
    pg.sql("ANALYZE events")
    info = module_runner("postgres_partition_info", pg.params(table=["events"]))
    partitions = {p["name"]: p for p in info["tables"]["public.events"]["partitions"]}
    assert partitions["events_2025_03"]["rows_estimate"] == 1000 and partitions["events_2025_03"]["size_bytes"] > 0
    assert partitions["events_2025_04"]["rows_estimate"] == 0


def test_a_hand_made_hash_sub_partitioned_set_is_adopted_as_it_is_and_extended_alike(module_runner, pg):
    make_set(pg)
    for month in ("2025_02", "2025_03"):
        lower = month.replace("_", "-") + "-01"
        pg.sql(f"CREATE TABLE events_{month} PARTITION OF events FOR VALUES FROM ('{lower}') TO "
               f"('{lower}'::date + interval '1 month') PARTITION BY HASH (id)")
        for remainder in range(4):
            pg.sql(f"CREATE TABLE events_{month}_h{remainder} PARTITION OF events_{month} "
                   f"FOR VALUES WITH (MODULUS 4, REMAINDER {remainder})")
    args = pg.params(table="events", interval="month", premake=0, backfill=1, reference_time=REFERENCE,
                     subpartition=dict(strategy="hash", column="id", hash_modulus=4))
    assert module_runner("postgres_partition", args, check_mode=True)["changed"] is False
    before = tree(pg, "events")
    extended = module_runner("postgres_partition", dict(args, premake=1))
    assert extended["created"] == ["events_2025_04"]
    assert tree(pg, "events") == sorted(before + [
        ("events_2025_04", "events", 1, True)] + [("events_2025_04_h%d" % r, "events_2025_04", 2, False)
                                                  for r in range(4)], key=lambda row: (row[2], row[0]))


def test_the_runner_creates_sub_partitioned_months_and_its_backup_job_dumps_their_leaves(pg, tmp_path):
    from tests.support.launcher import run_runner, write_config

    pg.sql("CREATE TABLE audit_log (id bigint NOT NULL, created_at timestamptz NOT NULL, line text) "
           "PARTITION BY RANGE (created_at)")
    item = dict(db=pg.name, table="audit_log", interval="month", premake=1, backfill=2,
                subpartition=dict(strategy="hash", column="id", hash_modulus=2), backup=True)
    config = write_config(tmp_path, pg, [item], backup_dir=str(tmp_path / "backups"),
                          pg_dump_path=str(pg.server.bin_dir / "pg_dump"))
    created = run_runner(config, "run", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    assert pg.value("SELECT count(*) FROM pg_partition_tree('audit_log') WHERE isleaf") == 4 * 2
    pg.sql("INSERT INTO audit_log SELECT n, now() - n * interval '1 day', 'x' FROM generate_series(1, 40) AS n "
           "WHERE now() - n * interval '1 day' >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
           "- interval '2 months'")
    backed_up = run_runner(config, "run", "backup")
    assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
    assert backed_up.stdout.startswith(f"CHANGED {pg.name}/audit_log backup: backed up 4 partitions"), \
        backed_up.stdout
    dumps = sorted(path.name for path in (tmp_path / "backups" / pg.name).glob("*.dump"))
    assert len(dumps) == 4 and all("_h" in name for name in dumps)
    assert run_runner(config, "run", "backup").stdout.startswith("OK")


def test_list_sub_partitions_take_their_values(module_runner, pg):
    pg.sql("CREATE TABLE visits (at timestamptz NOT NULL, region text NOT NULL) PARTITION BY RANGE (at)")
    regions = {"eu": ["eu", "uk"], "us": ["us"]}
    args = pg.params(table="visits", interval="month", premake=0, reference_time=REFERENCE,
                     subpartition=dict(strategy="list", column="region", list_partitions=regions))
    assert module_runner("postgres_partition", args)["created"] == ["visits_2025_03"]
    assert [row[0] for row in tree(pg, "visits") if row[2] == 2] == ["visits_2025_03_eu", "visits_2025_03_us"]
    pg.sql("INSERT INTO visits VALUES ('2025-03-02', 'uk'), ('2025-03-03', 'us')")
    assert dict(pg.sql("SELECT region, tableoid::regclass::text FROM visits")) == {
        "uk": "visits_2025_03_eu", "us": "visits_2025_03_us"}
    assert module_runner("postgres_partition", args)["changed"] is False
