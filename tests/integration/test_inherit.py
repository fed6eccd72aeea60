"""Partitions inherit what the parent carries, against real servers: owner, table and column privileges, replica
identity, tablespace and persistence from the parent, storage parameters, indexes and privileges from a template
table; created by the module, by the installed runner and by convert; drift reported by info and repaired by
inherit: enforce; refused before any DDL when the connecting role cannot give partitions their owner."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from tests.support.launcher import run_runner, write_config
from tests.support.polling import wait_for

MODULE = "postgres_partition"
POLICY = dict(table="events", interval="month", premake=2, reference_time="2025-03-15T00:00:00+00:00",
              template_table="events_template")
NEW = ["events_2025_03", "events_2025_04", "events_2025_05"]

# What a relation carries: owner, table privileges, column privileges (grantor left out: a superuser's GRANT is
# recorded as the owner's), replica identity, storage parameters (in name order), tablespace, persistence.
CARRIED = """
SELECT pg_get_userbyid(c.relowner)::text,
       ARRAY(SELECT concat_ws(' ', coalesce(r.rolname::text, 'PUBLIC'), x.privilege_type, x.is_grantable::text)
             FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) x
             LEFT JOIN pg_roles r ON r.oid = x.grantee ORDER BY 1),
       ARRAY(SELECT concat(r.rolname, ' ', x.privilege_type, '(', a.attname, ') ', x.is_grantable::text)
             FROM pg_attribute a CROSS JOIN LATERAL aclexplode(a.attacl) x JOIN pg_roles r ON r.oid = x.grantee
             WHERE a.attrelid = c.oid ORDER BY 1),
       c.relreplident::text, ARRAY(SELECT o FROM unnest(c.reloptions) AS o ORDER BY 1),
       coalesce(t.spcname::text, 'default'),
       c.relpersistence::text
FROM pg_class c LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace
WHERE c.oid = %s::regclass
"""


def carried(pg, relation):
    return pg.sql(CARRIED, (relation,))[0]


def expected_of_parent(pg, parent="events", template="events_template"):
    """What each partition should carry: the parent's owner, privileges, identity, tablespace, persistence, and the
    template's storage parameters."""
    owner, privileges, columns, identity, _reloptions, tablespace, persistence = carried(pg, parent)
    return owner, privileges, columns, identity, carried(pg, template)[4], tablespace, persistence


def partitions_of(pg, table="events"):
    return [row[0] for row in pg.sql("SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                     "WHERE i.inhparent = %s::regclass ORDER BY 1", (table,))]


def catalog_snapshot(pg):
    """Every relation of the schema with what it carries and its indexes: any change shows."""
    return pg.sql("SELECT c.relname::text, c.relkind::text, pg_get_userbyid(c.relowner)::text, c.relacl::text, "
                  "c.relreplident::text, c.reloptions::text, c.reltablespace, "
                  "ARRAY(SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x WHERE x.indrelid = c.oid ORDER BY 1) "
                  "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE n.nspname = 'public' ORDER BY 1")


def has_template_index(pg, partition):
    return pg.value("SELECT count(*) FROM pg_index x WHERE x.indrelid = %s::regclass AND x.indisunique "
                    "AND x.indisvalid AND pg_get_indexdef(x.indexrelid) LIKE '%%USING btree (id)'", (partition,)) == 1


@pytest.fixture
def roles(pg):
    for role in ("app_owner", "app_reader", "app_writer"):
        if not pg.value("SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)):
            pg.sql(f"CREATE ROLE {role}")
    pg.sql("GRANT CREATE, USAGE ON SCHEMA public TO app_owner")


@pytest.fixture
def tablespace(pg):
    """ts1, in a directory of the test server's own (the server user must own it)."""
    if not pg.value("SELECT count(*) FROM pg_tablespace WHERE spcname = 'ts1'"):
        location = pg.server.root / "ts1"
        location.mkdir(exist_ok=True)
        if pg.server.run_as:
            shutil.chown(location, pg.server.run_as)
        pg.sql(f"CREATE TABLESPACE ts1 LOCATION '{location}'")
    return "ts1"


@pytest.fixture
def events(pg, roles, tablespace):
    """A parent the application owns, in ts1, read by app_reader, with a column app_writer may update (and grant),
    REPLICA IDENTITY FULL (no primary key), and a template with fillfactor, autovacuum and a unique id."""
    pg.sql("""
        CREATE TABLE events (id bigint NOT NULL, at timestamptz NOT NULL, note text, amount int)
            PARTITION BY RANGE (at) TABLESPACE ts1;
        ALTER TABLE events OWNER TO app_owner;
        GRANT SELECT ON events TO app_reader;
        GRANT UPDATE (note) ON events TO app_writer WITH GRANT OPTION;
        ALTER TABLE events REPLICA IDENTITY FULL;
        CREATE TABLE events_template (LIKE events) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01);
        CREATE UNIQUE INDEX events_template_id ON events_template (id);
        GRANT CREATE ON TABLESPACE ts1 TO app_owner;
    """)


def assert_every_partition_carries_the_parents(pg, partitions):
    wanted = expected_of_parent(pg)
    assert wanted[0] == "app_owner" and wanted[3] == "f" and wanted[5] == "ts1"
    assert wanted[4] == ["autovacuum_vacuum_scale_factor=0.01", "fillfactor=70"]
    assert "app_reader SELECT false" in wanted[1] and wanted[2] == ["app_writer UPDATE(note) true"]
    for partition in partitions:
        assert carried(pg, partition) == wanted, partition
        assert has_template_index(pg, partition), partition


def as_role(pg, role, statement):
    """Run one statement as `role` (SET ROLE on a connection of its own); its rows."""
    with pg.connect() as conn:
        conn.execute(f"SET ROLE {role}")
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


def published_through_delete(pg, slot):
    """The messages pgoutput sends for events_pub (peeked: the slot keeps them), once they reach a DELETE."""
    messages = [bytes(row[0]) for row in pg.sql(
        "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, 'proto_version', '1', "
        "'publication_names', 'events_pub')", (slot,))]
    return messages if any(message[:1] == b"D" for message in messages) else None


def assert_the_application_can_use_them(pg, partition):
    """The owner migrates the parent (recursing into partitions), the reader reads a partition, the writer updates its
    column, and a publication on the parent sends UPDATE and DELETE of the partition with their old rows."""
    as_role(pg, "app_owner", "ALTER TABLE events ADD COLUMN migrated boolean")
    slot = "s_" + pg.name
    pg.sql("CREATE PUBLICATION events_pub FOR TABLE events")
    pg.value("SELECT lsn FROM pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    try:
        pg.sql(f"INSERT INTO {partition} (id, at, note) VALUES (1, '2025-03-20 10:00+00', 'first')")
        assert as_role(pg, "app_reader", f"SELECT id, note FROM {partition}") == [(1, "first")]
        as_role(pg, "app_writer", f"UPDATE {partition} SET note = 'second'")  # no WHERE: UPDATE (note) only
        pg.sql(f"DELETE FROM {partition} WHERE id = 1")
        # The test servers commit asynchronously (synchronous_commit off): decoding sees a commit once it is flushed.
        messages = wait_for(lambda: published_through_delete(pg, slot), 10, "the DELETE to reach the publication")
    finally:
        pg.sql("SELECT pg_drop_replication_slot(%s)", (slot,))
    relation = next(message for message in messages if message[:1] == b"R")
    assert partition.encode() in relation and b"public" in relation
    # 'U' relid 'O' <old row> 'N' <new row>, 'D' relid 'O' <old row>: the full old rows, as REPLICA IDENTITY FULL asks.
    assert [message[:1] + message[5:6] for message in messages if message[:1] in b"UD"] == [b"UO", b"DO"]
    assert b"first" in next(message for message in messages if message[:1] == b"U")


def test_partitions_the_module_creates_carry_what_the_parent_and_template_give(pg, module_runner, events):
    before = catalog_snapshot(pg)
    preview = module_runner(MODULE, pg.params(**POLICY), check_mode=True)
    assert preview["changed"] and preview["created"] == NEW and catalog_snapshot(pg) == before
    statements = "\n".join(preview["queries"])
    for part in ('WITH ("autovacuum_vacuum_scale_factor" = \'0.01\', "fillfactor" = \'70\') TABLESPACE "ts1"',
                 'CREATE UNIQUE INDEX ON "public"."events_2025_03" USING btree (id)',
                 'ALTER TABLE "public"."events_2025_03" OWNER TO "app_owner"',
                 'GRANT SELECT ON TABLE "public"."events_2025_03" TO "app_reader"',
                 'GRANT UPDATE ("note") ON TABLE "public"."events_2025_03" TO "app_writer" WITH GRANT OPTION',
                 'ALTER TABLE "public"."events_2025_03" REPLICA IDENTITY FULL'):
        assert part in statements
    applied = module_runner(MODULE, pg.params(**POLICY))
    assert applied["changed"] and applied["created"] == NEW and applied["queries"] == preview["queries"]
    assert partitions_of(pg) == NEW
    assert_every_partition_carries_the_parents(pg, NEW)
    again = module_runner(MODULE, pg.params(**POLICY, inherit="enforce"))
    assert (again["changed"], again["created"], again["repaired"], again["queries"]) == (False, [], [], [])
    assert_the_application_can_use_them(pg, "events_2025_03")
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.sql("INSERT INTO events_2025_04 (id, at) VALUES (7, '2025-04-02 00:00+00'), (7, '2025-04-03 00:00+00')")


def test_partitions_the_installed_runner_creates_connected_as_postgres_carry_the_same(pg, tmp_path, events):
    config = write_config(tmp_path, pg, [dict(db=pg.name, **POLICY)])
    before = catalog_snapshot(pg)
    preview = run_runner(config, "run", "create", "--check")
    assert preview.returncode == 0 and preview.stdout.startswith("CHANGED"), preview.stdout + preview.stderr
    assert catalog_snapshot(pg) == before
    applied = run_runner(config, "run", "create")
    assert applied.returncode == 0 and applied.stdout.startswith(f"CHANGED {pg.name}/events create: created 3")
    assert partitions_of(pg) == NEW
    assert_every_partition_carries_the_parents(pg, NEW)
    enforced = write_config(tmp_path, pg, [dict(db=pg.name, inherit="enforce", **POLICY)])
    again = run_runner(enforced, "run", "create")
    assert again.returncode == 0 and again.stdout.startswith("OK"), again.stdout + again.stderr
    assert_the_application_can_use_them(pg, "events_2025_03")


def test_partitions_a_drain_of_the_default_creates_carry_the_same(pg, module_runner, events):
    pg.sql("CREATE TABLE events_default PARTITION OF events DEFAULT")
    pg.sql("INSERT INTO events (id, at, note) SELECT i, timestamptz '2024-10-01 00:00+00' + i * interval '1 hour', "
           "'old' FROM generate_series(1, 2000) i")  # October to December 2024
    args = pg.params(**POLICY, default_rows="drain")
    before = catalog_snapshot(pg)
    preview = module_runner(MODULE, args, check_mode=True)
    assert catalog_snapshot(pg) == before
    drained = ["events_2024_10", "events_2024_11", "events_2024_12"]
    assert sorted(preview["created"]) == sorted(drained + NEW)
    applied = module_runner(MODULE, args)
    assert sorted(applied["created"]) == sorted(drained + NEW) and applied["moved_rows"] == 2000
    assert pg.value("SELECT count(*) FROM ONLY events_default") == 0
    assert_every_partition_carries_the_parents(pg, drained + NEW)
    again = module_runner(MODULE, args)
    assert (again["changed"], again["created"], again["queries"]) == (False, [], [])
    # The default partition was made by hand, as postgres, without the template's index: only it needs repairs.
    enforced = module_runner(MODULE, pg.params(**POLICY, default_rows="drain", inherit="enforce"))
    assert (enforced["created"], enforced["repaired"]) == ([], ["events_default"])


def test_drift_made_by_hand_is_reported_by_info_and_repaired_by_enforce(pg, module_runner, events):
    module_runner(MODULE, pg.params(**POLICY))
    pg.sql("""
        ALTER TABLE events_2025_04 OWNER TO postgres;
        REVOKE SELECT ON events_2025_04 FROM app_reader;
        GRANT DELETE ON events_2025_04 TO app_reader;
        ALTER TABLE events_2025_04 REPLICA IDENTITY NOTHING;
        ALTER TABLE events_2025_04 SET (fillfactor = 100);
        ALTER TABLE events_2025_04 RESET (autovacuum_vacuum_scale_factor);
    """)
    pg.sql("DROP INDEX " + pg.value("SELECT x.indexrelid::regclass::text FROM pg_index x "
                                    "WHERE x.indrelid = 'events_2025_04'::regclass"))
    info = module_runner("postgres_partition_info", pg.params(table="events", template_table="events_template"))
    drift = {p["name"]: p["drift"] for p in info["tables"]["public.events"]["partitions"]}
    assert drift["events_2025_03"] == [] and drift["events_2025_05"] == []
    assert drift["events_2025_04"] == [
        {"kind": "owner", "expected": "app_owner", "actual": "postgres"},
        {"kind": "privileges", "missing": ["app_reader SELECT"], "extra": ["app_reader DELETE"]},
        {"kind": "replica_identity", "expected": "full", "actual": "nothing"},
        {"kind": "reloptions", "expected": {"autovacuum_vacuum_scale_factor": "0.01", "fillfactor": "70"},
         "actual": {"fillfactor": "100"}},
        {"kind": "template_indexes", "missing": ["UNIQUE USING btree (id)"], "extra": []},
    ]
    before = catalog_snapshot(pg)
    preview = module_runner(MODULE, pg.params(**POLICY, inherit="enforce"), check_mode=True)
    assert preview["changed"] and preview["repaired"] == ["events_2025_04"] and preview["created"] == []
    assert catalog_snapshot(pg) == before
    assert preview["queries"] == [
        'ALTER TABLE "public"."events_2025_04" OWNER TO "app_owner"',
        'REVOKE DELETE ON TABLE "public"."events_2025_04" FROM "app_reader"',
        'GRANT SELECT ON TABLE "public"."events_2025_04" TO "app_reader"',
        'ALTER TABLE "public"."events_2025_04" SET ("autovacuum_vacuum_scale_factor" = \'0.01\', '
        '"fillfactor" = \'70\')',
        'ALTER TABLE "public"."events_2025_04" REPLICA IDENTITY FULL',
        'CREATE UNIQUE INDEX CONCURRENTLY ON "public"."events_2025_04" USING btree (id)']
    applied = module_runner(MODULE, pg.params(**POLICY, inherit="enforce"))
    assert applied["changed"] and applied["repaired"] == ["events_2025_04"]
    assert applied["queries"] == preview["queries"]
    assert_every_partition_carries_the_parents(pg, NEW)
    info = module_runner("postgres_partition_info", pg.params(table="events", template_table="events_template"))
    assert [p["drift"] for p in info["tables"]["public.events"]["partitions"]] == [[], [], []]
    again = module_runner(MODULE, pg.params(**POLICY, inherit="enforce"))
    assert (again["changed"], again["repaired"], again["queries"]) == (False, [], [])


def test_replica_identity_using_an_index_maps_to_each_partitions_index(pg, module_runner):
    pg.sql("""
        CREATE TABLE orders (id bigint NOT NULL, at date NOT NULL, total int) PARTITION BY RANGE (at);
        CREATE UNIQUE INDEX orders_identity ON orders (id, at);
        ALTER TABLE orders REPLICA IDENTITY USING INDEX orders_identity;
        CREATE TABLE orders_2025_01 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2025-02-01');
    """)
    args = pg.params(table="orders", interval="month", premake=1, reference_time="2025-01-15", inherit="enforce")
    preview = module_runner(MODULE, args, check_mode=True)
    assert preview["created"] == ["orders_2025_02"] and preview["repaired"] == ["orders_2025_01"]
    applied = module_runner(MODULE, args)
    assert applied["queries"] == preview["queries"]
    identities = pg.sql("SELECT x.indrelid::regclass::text, p.inhparent::regclass::text FROM pg_index x "
                        "JOIN pg_inherits p ON p.inhrelid = x.indexrelid WHERE x.indisreplident ORDER BY 1")
    assert identities == [("orders_2025_01", "orders_identity"), ("orders_2025_02", "orders_identity")]
    assert pg.sql("SELECT relname::text, relreplident::text FROM pg_class WHERE relname LIKE 'orders_2025%%' "
                  "AND relkind = 'r' ORDER BY 1") == [("orders_2025_01", "i"), ("orders_2025_02", "i")]
    again = module_runner(MODULE, args)
    assert (again["changed"], again["queries"]) == (False, [])


def test_replica_identity_using_an_index_is_given_to_the_partitions_a_drain_creates(pg, module_runner):
    pg.sql("""
        CREATE TABLE orders (id bigint NOT NULL, at date NOT NULL, total int) PARTITION BY RANGE (at);
        CREATE UNIQUE INDEX orders_identity ON orders (id, at);
        ALTER TABLE orders REPLICA IDENTITY USING INDEX orders_identity;
        CREATE TABLE orders_default PARTITION OF orders DEFAULT;
        ALTER TABLE orders_default REPLICA IDENTITY USING INDEX orders_default_id_at_idx;
        INSERT INTO orders SELECT i, date '2024-11-01' + i, i FROM generate_series(1, 40) i;
    """)
    args = pg.params(table="orders", interval="month", premake=0, reference_time="2025-01-15", default_rows="drain")
    applied = module_runner(MODULE, args)
    assert sorted(applied["created"]) == ["orders_2024_11", "orders_2024_12", "orders_2025_01"]
    identities = pg.sql("SELECT x.indrelid::regclass::text, p.inhparent::regclass::text FROM pg_index x "
                        "JOIN pg_inherits p ON p.inhrelid = x.indexrelid WHERE x.indisreplident "
                        "AND x.indrelid::regclass::text LIKE 'orders_20%%' ORDER BY 1")
    assert identities == [(name, "orders_identity") for name in applied["created"]]
    again = module_runner(MODULE, dict(args, inherit="enforce"))
    assert (again["changed"], again["queries"]) == (False, [])


def test_an_unlogged_parent_gives_unlogged_partitions_where_the_server_allows_one(pg, module_runner):
    if pg.major >= 18:
        with pytest.raises(psycopg.Error, match="partitioned tables cannot be unlogged"):
            pg.sql("CREATE UNLOGGED TABLE scratch (at date NOT NULL) PARTITION BY RANGE (at)")
        return
    pg.sql("CREATE UNLOGGED TABLE scratch (at date NOT NULL) PARTITION BY RANGE (at)")
    module_runner(MODULE, pg.params(table="scratch", interval="month", premake=0, reference_time="2025-01-15"))
    assert pg.value("SELECT relpersistence::text FROM pg_class WHERE relname = 'scratch_2025_01'") == "u"


def test_a_role_that_cannot_give_partitions_their_owner_is_refused_before_any_ddl(pg, module_runner, events):
    maintainer = "maint_" + pg.name
    pg.sql(f"CREATE ROLE {maintainer} LOGIN; GRANT CREATE, USAGE ON SCHEMA public TO {maintainer}")
    before = catalog_snapshot(pg)
    for check_mode in (True, False):
        refused = module_runner(MODULE, pg.params(login_user=maintainer, **POLICY), check_mode=check_mode)
        assert refused["failed"] and refused["queries"] == [] and catalog_snapshot(pg) == before
        assert (f"public.events is owned by app_owner, and its partitions must be too, but the connecting role "
                f"{maintainer} is neither a superuser nor a member of app_owner; nothing was changed. Connect as (or "
                f"set session_role to) app_owner, or run GRANT app_owner TO {maintainer}.") in refused["msg"]
    pg.sql(f"GRANT app_owner TO {maintainer}")
    applied = module_runner(MODULE, pg.params(login_user=maintainer, **POLICY))
    assert applied["created"] == NEW, applied.get("msg")
    assert_every_partition_carries_the_parents(pg, NEW)


def test_a_template_whose_columns_differ_is_refused_before_any_ddl(pg, module_runner, events):
    pg.sql("CREATE TABLE other_template (id bigint, at timestamptz, comment text)")
    before = catalog_snapshot(pg)
    refused = module_runner(MODULE, pg.params(**dict(POLICY, template_table="other_template")))
    assert refused["failed"] and refused["queries"] == [] and catalog_snapshot(pg) == before
    assert ("public.events: the columns of template_table public.other_template differ from the parent's (note is "
            "missing; amount is missing; comment is not a column of the parent); nothing was changed") in refused["msg"]


def test_the_catalog_reads_do_not_grow_with_the_partitions_created(pg, module_runner, events, monkeypatch):
    from ansible_collections.pgfleet.partitions.plugins.module_utils._db import connection

    reads = []
    original = connection.Database.query

    def counting(self, statement, args=None):
        reads.append(statement)
        return original(self, statement, args)

    monkeypatch.setattr(connection.Database, "query", counting)
    counts = {}
    for premake in (0, 11):
        reads.clear()
        result = module_runner(MODULE, pg.params(**dict(POLICY, premake=premake, reference_time="2026-01-15",
                                                        inherit="enforce")))
        counts[len(result["created"])] = len(reads)
    assert list(counts) == [1, 11] and counts[1] == counts[11]


def test_convert_gives_the_partitions_the_tables_owner_and_privileges(pg, module_runner, roles):
    pg.sql("""
        CREATE TABLE visits (id bigint NOT NULL, at date NOT NULL, PRIMARY KEY (id, at));
        ALTER TABLE visits OWNER TO app_owner;
        GRANT SELECT ON visits TO app_reader;
        GRANT UPDATE (at) ON visits TO app_writer;
        INSERT INTO visits VALUES (1, '2025-01-05'), (2, '2025-02-05');
    """)
    args = pg.params(table="visits", state="prepared", strategy="range", column="at", interval="month", premake=0,
                     reference_time="2025-02-15")
    preview = module_runner("postgres_partition_convert", args, check_mode=True)
    owner_changes = [query for query in preview["queries"] if query.endswith('OWNER TO "app_owner"')]
    assert len(owner_changes) == 3, preview.get("msg")  # the new table and its two partitions
    applied = module_runner("postgres_partition_convert", args)
    assert sorted(applied["created"]) == ["visits_2025_01", "visits_2025_02"], applied.get("msg")
    owner, privileges, columns = carried(pg, "visits")[:3]
    assert owner == "app_owner" and "app_reader SELECT false" in privileges
    assert columns == ["app_writer UPDATE(at) false"]
    for partition in applied["created"]:
        assert carried(pg, partition)[:3] == (owner, privileges, columns), partition
