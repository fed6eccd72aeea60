"""postgres_brin_refresh against real servers: summaries that make BRIN prune, light locks, the N newest
partitions, the other modes, refusals, and a hot standby."""

from __future__ import annotations

import json
import threading
import time

import pytest


MODULE = "postgres_brin_refresh"

# pages_per_range = 1 makes every heap page its own block range: effects show in EXPLAIN as single pages.
BRIN_OPTIONS = "WITH (pages_per_range = 1, autosummarize = off)"


def make_events(pg, partitions, key_type="timestamptz", fillfactor=100):
    """A partitioned table `events` with a BRIN index on its key, partitions created in the order given as
    (name, lower, upper); autovacuum is off on each so no background VACUUM summarizes behind the test's back."""
    pg.sql(f"CREATE TABLE events (id bigint, ts {key_type}, payload text) PARTITION BY RANGE (ts)")
    for name, lower, upper in partitions:
        pg.sql(f"CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ('{lower}') TO ('{upper}') "
               f"WITH (autovacuum_enabled = off, fillfactor = {fillfactor})")
    pg.sql(f"CREATE INDEX events_ts_brin ON events USING brin (ts) {BRIN_OPTIONS}")


def fill_january(pg, rows=20000):
    """Rows in ts order, one a second from 2025-01-01: each page holds a narrow, distinct time window."""
    pg.sql("INSERT INTO events SELECT g, timestamptz '2025-01-01 00:00:00+00' + g * interval '1 second', "
           "'reading ' || g FROM generate_series(1, %s) AS g", (rows,))


def heap_blocks(pg, table):
    return pg.value("SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int", (table,))


def bitmap_scan(pg, where, table="events_2025_01"):
    """(lossy heap blocks, rows removed by index recheck) of a BRIN bitmap scan of `table` WHERE `where`."""
    with pg.connect() as conn:
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM {table} WHERE {where}").fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node["Node Type"] == "Bitmap Heap Scan":
            return node.get("Lossy Heap Blocks", 0), node.get("Rows Removed by Index Recheck", 0)
        nodes.extend(node.get("Plans", []))
    raise AssertionError(f"no bitmap heap scan in {plan}")


NARROW_QUERY = "ts >= '2025-01-01 02:00:00+00' AND ts < '2025-01-01 02:00:10+00'"
JANUARY_AND_AHEAD = [("events_2025_01", "2025-01-01", "2025-02-01"), ("events_2025_02", "2025-02-01", "2025-03-01")]


def test_summarize_makes_the_index_prune_and_a_rerun_changes_nothing(pg, module_runner):
    make_events(pg, JANUARY_AND_AHEAD)
    fill_january(pg)
    blocks = heap_blocks(pg, "events_2025_01")
    lossy_before, removed_before = bitmap_scan(pg, NARROW_QUERY)
    assert lossy_before >= blocks - 1, "unsummarized ranges must be returned whole by the index"

    checked = module_runner(MODULE, pg.params(table="events"), check_mode=True)
    assert checked["changed"] is True and checked["ranges_summarized"] == 0
    assert [entry["index"] for entry in checked["indexes"]] == [
        "public.events_2025_01_ts_idx", "public.events_2025_02_ts_idx"]
    assert checked["queries"] == [
        "SELECT pg_catalog.brin_summarize_new_values('public.events_2025_01_ts_idx'::regclass)",
        "SELECT pg_catalog.brin_summarize_new_values('public.events_2025_02_ts_idx'::regclass)",
    ]
    assert bitmap_scan(pg, NARROW_QUERY) == (lossy_before, removed_before), "check mode summarized something"

    result = module_runner(MODULE, pg.params(table="events"))
    assert result["changed"] is True, result
    assert [(entry["index"], entry["table"]) for entry in result["indexes"]] == [
        ("public.events_2025_01_ts_idx", "public.events_2025_01"),
        ("public.events_2025_02_ts_idx", "public.events_2025_02"),
    ]
    # Up to 15 the index build on the empty partition already summarized (an empty) range 0.
    assert blocks - 1 <= result["indexes"][0]["ranges_summarized"] <= blocks
    assert result["indexes"][1]["ranges_summarized"] == 0
    assert result["ranges_summarized"] == result["indexes"][0]["ranges_summarized"]
    assert result["queries"] == checked["queries"]

    lossy_after, removed_after = bitmap_scan(pg, NARROW_QUERY)
    assert lossy_after <= 2 and lossy_after * 10 < lossy_before
    assert removed_after * 10 < removed_before

    again = module_runner(MODULE, pg.params(table="events"))
    assert again["changed"] is False and again["ranges_summarized"] == 0, again


NEWEST_CASES = [
    pytest.param(
        "timestamptz",
        [("events_2025_03", "2025-03-01", "2025-04-01"), ("events_2025_01", "2025-01-01", "2025-02-01"),
         ("events_2025_02", "2025-02-01", "2025-03-01"), ("events_2025_04", "2025-04-01", "2025-05-01")],
        "events_2025_03",
        id="by time bound, not by creation order, passing over an empty partition made ahead",
    ),
    pytest.param(
        "bigint",
        [("events_p100", 100, 1000), ("events_p3", 3, 20), ("events_p20", 20, 100), ("events_p1000", 1000, 2000)],
        "events_p100",
        id="by numeric bound, where text order would pick p3 and creation order p20",
    ),
]


@pytest.mark.parametrize("key_type, partitions, newest", NEWEST_CASES)
def test_recent_partitions_visits_only_the_newest_partition(pg, module_runner, key_type, partitions, newest):
    make_events(pg, partitions, key_type=key_type)
    for name, lower, upper in partitions[:3]:  # a few pages each: range 0 may already carry an empty summary
        pg.sql(f"INSERT INTO {name} (id, ts) SELECT g, '{lower}' FROM generate_series(1, 1000) AS g")

    result = module_runner(MODULE, pg.params(table="public.events", recent_partitions=1))

    assert [entry["table"] for entry in result["indexes"]] == [f"public.{newest}"], result
    assert result["changed"] is True and result["ranges_summarized"] >= 1


def test_summarize_waiting_for_its_lock_does_not_queue_a_writer(pg, module_runner):
    """Another session holds SHARE UPDATE EXCLUSIVE on the partition, so the module must wait for its lock;
    a writer inserting all the while is never held up, and the only lock the module asks for is that one."""
    make_events(pg, JANUARY_AND_AHEAD)
    fill_january(pg, rows=2000)
    stop = threading.Event()
    insert_seconds, waiting_modes = [], set()

    def writer():
        with pg.connect() as conn:
            number = 100000
            while not stop.is_set():
                number += 1
                started = time.monotonic()
                conn.execute("INSERT INTO events VALUES (%s, timestamptz '2025-01-20 00:00:00+00', 'w')", (number,))
                insert_seconds.append(time.monotonic() - started)
                time.sleep(0.01)

    def lock_watcher():
        with pg.connect() as conn:
            while not stop.is_set():
                waiting_modes.update(mode for (mode,) in conn.execute(
                    "SELECT mode FROM pg_locks WHERE NOT granted AND relation = 'events_2025_01'::regclass"))
                time.sleep(0.02)

    blocker = pg.connect()
    blocker.execute("BEGIN")
    blocker.execute("LOCK TABLE events_2025_01 IN SHARE UPDATE EXCLUSIVE MODE")
    release = threading.Timer(1.5, blocker.execute, ("COMMIT",))
    threads = [threading.Thread(target=writer), threading.Thread(target=lock_watcher), release]
    for thread in threads:
        thread.start()
    try:
        started = time.monotonic()
        result = module_runner(MODULE, pg.params(table="events", lock_timeout="1s", retries=4))
        module_seconds = time.monotonic() - started
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        blocker.close()

    assert result["changed"] is True and result["ranges_summarized"] > 0, result
    assert module_seconds > 1.0, "the module should have had to wait for the blocker"
    assert len(insert_seconds) > 20, "the writer should have kept writing while the module waited"
    assert max(insert_seconds) < 0.5, f"an insert waited {max(insert_seconds):.2f}s behind the module"
    assert waiting_modes == {"ShareUpdateExclusiveLock"}


def test_resummarize_narrows_a_summary_widened_by_an_update(pg, module_runner):
    make_events(pg, [("events_2025", "2025-01-01", "2026-01-01")], fillfactor=90)
    fill_january(pg, rows=5000)
    far_future = "ts >= '2025-12-01 00:00:00+00'"
    module_runner(MODULE, pg.params(table="events"))
    # The row's new version stays on its page (fillfactor leaves room), widening that page's summary to
    # December; once it is deleted and vacuumed away, the summary stays wide until it is rebuilt.
    pg.sql("UPDATE events SET ts = '2025-12-31 00:00:00+00' WHERE id = 1")
    pg.sql("DELETE FROM events WHERE id = 1")
    pg.sql("VACUUM events_2025")
    assert bitmap_scan(pg, far_future, table="events_2025")[0] >= 1
    assert module_runner(MODULE, pg.params(table="events"))["changed"] is False

    result = module_runner(MODULE, pg.params(table="events", mode="resummarize", recent_partitions=1))

    assert result["changed"] is True
    assert result["ranges_summarized"] == heap_blocks(pg, "events_2025")
    assert "brin_desummarize_range('public.events_2025_ts_idx'::regclass" in result["queries"][0]
    assert bitmap_scan(pg, far_future, table="events_2025")[0] == 0


def test_reindex_concurrently_rebuilds_the_leaf_indexes_of_a_partitioned_index(pg, module_runner):
    make_events(pg, JANUARY_AND_AHEAD)
    fill_january(pg, rows=3000)
    filenode_before = pg.value("SELECT pg_relation_filenode('events_2025_01_ts_idx')")

    result = module_runner(MODULE, pg.params(indexes=["events_ts_brin"], mode="reindex_concurrently"))

    assert result["changed"] is True
    assert result["queries"] == ['REINDEX INDEX CONCURRENTLY "public"."events_2025_01_ts_idx"',
                                 'REINDEX INDEX CONCURRENTLY "public"."events_2025_02_ts_idx"']
    assert result["indexes"][0]["ranges_summarized"] == heap_blocks(pg, "events_2025_01")
    assert pg.value("SELECT pg_relation_filenode('events_2025_01_ts_idx')") != filenode_before
    assert bitmap_scan(pg, NARROW_QUERY)[0] <= 2, "a rebuilt BRIN index summarizes every range"


def test_a_rebuild_held_up_by_an_open_transaction_leaves_one_invalid_index_and_names_it(pg, module_runner):
    make_events(pg, JANUARY_AND_AHEAD)
    fill_january(pg, rows=1000)
    with pg.connect() as writer:
        writer.execute("BEGIN")
        writer.execute("INSERT INTO events_2025_01 VALUES (0, '2025-01-15 00:00:00+00', 'not yet committed')")
        result = module_runner(MODULE, pg.params(indexes=["events_2025_01_ts_idx"], mode="reindex_concurrently",
                                                 lock_timeout="200ms", retries=3))
        writer.execute("ROLLBACK")

    assert result.get("failed") is True, result
    assert "left the invalid index public.events_2025_01_ts_idx_ccnew behind" in result["msg"]
    assert "DROP INDEX CONCURRENTLY" in result["msg"]
    invalid = pg.sql("SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE NOT x.indisvalid")
    assert invalid == [("events_2025_01_ts_idx_ccnew",)], "a retry after the new index was built adds another"
    later = module_runner(MODULE, pg.params(table="events"))
    assert [entry["index"] for entry in later["indexes"]] == [
        "public.events_2025_01_ts_idx", "public.events_2025_02_ts_idx"], "the leftover is nobody's index to refresh"


def test_a_table_without_brin_indexes_is_not_an_error(pg, module_runner):
    pg.sql("CREATE TABLE plain (id bigint PRIMARY KEY, ts timestamptz)")
    pg.sql("CREATE INDEX plain_ts ON plain (ts)")
    pg.sql("INSERT INTO plain SELECT g, now() FROM generate_series(1, 100) g")

    result = module_runner(MODULE, pg.params(table="PLAIN"))

    assert result.get("failed") is not True, result
    assert (result["changed"], result["indexes"], result["queries"]) == (False, [], [])


REFUSALS = [
    pytest.param(dict(table="nope"), "table nope does not exist", id="an unknown table"),
    pytest.param(dict(table="other.events"), "table other.events does not exist", id="an unknown schema"),
    pytest.param(dict(table="events_ts_brin"), "is a partitioned index, not a table", id="an index given as table"),
    pytest.param(dict(indexes=["events_ts_brin", "events_id_btree"]),
                 "index events_id_btree is a btree index, not a BRIN index", id="a btree index among the indexes"),
    pytest.param(dict(indexes=["events_2025_01"]), "is a table, not an index", id="a table among the indexes"),
    pytest.param(dict(indexes=["public.missing_idx"]), "index public.missing_idx does not exist",
                 id="an unknown index"),
    pytest.param(dict(table="events; DROP TABLE events_2025_01"), "is not a plain '[schema.]name'",
                 id="a table name carrying a statement"),
    pytest.param(dict(indexes=['"Events_ts_brin"']), "is not a plain '[schema.]name'", id="a quoted index name"),
    pytest.param(dict(table="events", recent_partitions=0), "recent_partitions must be 1 or more",
                 id="zero recent partitions"),
    pytest.param(dict(table="events", lock_timeout="3 fortnights"), "is not a duration",
                 id="a lock_timeout that is no duration"),
]


@pytest.mark.parametrize("args, message", REFUSALS)
def test_invalid_input_is_refused_before_anything_runs(pg, module_runner, args, message):
    make_events(pg, JANUARY_AND_AHEAD)
    fill_january(pg, rows=500)
    pg.sql("CREATE INDEX events_id_btree ON events (id)")

    result = module_runner(MODULE, pg.params(**args))

    assert result.get("failed") is True and message in result["msg"], result
    assert result["queries"] == [] and result["changed"] is False
    assert pg.value("SELECT count(*) FROM events") == 500
    assert module_runner(MODULE, pg.params(table="events"))["ranges_summarized"] > 0, "nothing was summarized"


def test_on_a_hot_standby_nothing_runs_and_the_result_says_why(pg, standby, module_runner):
    make_events(pg, JANUARY_AND_AHEAD)
    fill_january(pg, rows=2000)
    replica = standby()

    result = module_runner(MODULE, pg.params(login_unix_socket=replica.socket_dir, port=replica.port,
                                             table="events"))

    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["indexes"] == [] and result["queries"] == []
    assert "hot standby" in result["skipped_reason"]
    assert module_runner(MODULE, pg.params(table="events"))["ranges_summarized"] > 0
