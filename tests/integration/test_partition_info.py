"""postgres_partition_info against real servers: facts of RANGE, LIST and HASH sets, read with SELECTs only."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.support import servers
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import connection

MODULE = "postgres_partition_info"


def create_monthly(pg, table, first, count, skip=()):
    """A timestamptz set partitioned by month: `count` months from `first` (a date), leaving out `skip` offsets."""
    statements = ["CREATE TABLE %s (id bigint, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at)"
                  % table]
    for offset in range(count):
        if offset in skip:
            continue
        index = first.year * 12 + first.month - 1 + offset
        lower, upper = dt.date(index // 12, index % 12 + 1, 1), dt.date((index + 1) // 12, (index + 1) % 12 + 1, 1)
        statements.append("CREATE TABLE %s_%s PARTITION OF %s FOR VALUES FROM ('%s 00:00+00') TO ('%s 00:00+00')"
                          % (table, lower.strftime("%Y_%m"), table, lower, upper))
    pg.sql(";\n".join(statements))


def create_steps(pg, table, count, step=10):
    """A bigint set partitioned in steps: [0, step), [step, 2 step), ... `count` partitions."""
    pg.sql(";\n".join(
        ["CREATE TABLE %s (id bigint NOT NULL, payload text) PARTITION BY RANGE (id)" % table]
        + ["CREATE TABLE %s_p%d PARTITION OF %s FOR VALUES FROM (%d) TO (%d)"
           % (table, lower, table, lower, lower + step) for lower in range(0, count * step, step)]
    ))


def test_a_monthly_set_with_a_gap_reports_it_and_check_mode_reports_the_same(pg, module_runner):
    create_monthly(pg, "events", dt.date(2025, 1, 1), 6, skip={2})
    pg.sql("INSERT INTO events SELECT g, timestamptz '2025-01-01 00:00+00' + g * interval '1 minute' "
           "FROM generate_series(1, 100) g")
    pg.sql("ANALYZE events")
    args = pg.params(table="events", reference_time="2025-01-15")
    checked = module_runner(MODULE, args, check_mode=True)
    result = module_runner(MODULE, args)
    assert checked == result
    assert result["changed"] is False and result["queries"] == [] and result["in_recovery"] is False
    facts = result["tables"]["public.events"]
    assert (facts["strategy"], facts["key"], facts["key_type"]) == ("range", "created_at", "timestamp with time zone")
    assert facts["gaps"] == [dict(lower="2025-03-01T00:00:00+00:00", upper="2025-04-01T00:00:00+00:00",
                                  after="events_2025_02", before="events_2025_04")]
    assert facts["reference"] == "2025-01-15T00:00:00+00:00"
    assert facts["runway"] == dict(current="events_2025_01", partitions=1, until="2025-03-01T00:00:00+00:00",
                                   interval=45 * 86400, text="45 days", iso="P45D")
    assert [p["name"] for p in facts["partitions"]] == [
        "events_2025_01", "events_2025_02", "events_2025_04", "events_2025_05", "events_2025_06"]
    assert [(p["size_bytes"] > 0, p["rows_estimate"]) for p in facts["partitions"]] == [
        (True, 100), (False, 0), (False, 0), (False, 0), (False, 0)]
    assert facts["default_rows"] is None


def test_runway_from_the_server_now_counts_the_partitions_ahead(pg, module_runner):
    this_month = pg.value("SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date")
    create_monthly(pg, "readings", dt.date(this_month.year - 1, this_month.month, 1), 16)
    result = module_runner(MODULE, pg.params(table="public.readings"))
    runway = result["tables"]["public.readings"]["runway"]
    assert runway["current"] == "readings_%s" % this_month.strftime("%Y_%m")
    assert runway["partitions"] == 3
    reference = dt.datetime.fromisoformat(result["tables"]["public.readings"]["reference"])
    until = dt.datetime.fromisoformat(runway["until"])
    assert until.day == 1 and 3 * 28 < (until - reference).days < 4 * 31
    assert abs(runway["interval"] - (until - reference).total_seconds()) < 1e-3
    assert runway["text"].startswith("%d days " % (until - reference).days)


def test_default_rows_are_counted_exactly(pg, module_runner):
    create_monthly(pg, "audit_log", dt.date(2025, 1, 1), 2)
    pg.sql("CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT")
    pg.sql("INSERT INTO audit_log SELECT g, timestamptz '2024-06-01 00:00+00' + g * interval '1 minute' "
           "FROM generate_series(1, 1234) g")
    pg.sql("INSERT INTO audit_log VALUES (0, '2025-01-02 00:00+00')")
    result = module_runner(MODULE, pg.params(table="audit_log", reference_time="2025-01-02"))
    facts = result["tables"]["public.audit_log"]
    assert facts["default_rows"] == 1234
    assert facts["partitions"][-1]["name"] == "audit_log_default" and facts["partitions"][-1]["is_default"] is True
    assert facts["gaps"] == []


def test_integer_keys_are_measured_from_the_highest_key(pg, module_runner):
    create_steps(pg, "orders", 6, step=100)
    pg.sql("INSERT INTO orders SELECT g FROM generate_series(1, 250) g")
    facts = module_runner(MODULE, pg.params(table="orders"))["tables"]["public.orders"]
    assert facts["reference"] == 250
    assert facts["runway"] == dict(current="orders_p200", partitions=3, until=600, interval=350, text="350", iso=None)


def test_list_and_hash_sets(pg, module_runner):
    pg.sql("""
        CREATE TABLE appointments (id bigint, completed boolean) PARTITION BY LIST (completed);
        CREATE TABLE appointments_active PARTITION OF appointments FOR VALUES IN (false);
        CREATE TABLE appointments_completed PARTITION OF appointments FOR VALUES IN (true, NULL);
        CREATE TABLE appointments_default PARTITION OF appointments DEFAULT;
        CREATE TABLE patients (id bigint) PARTITION BY HASH (id);
        CREATE TABLE patients_hash_0 PARTITION OF patients FOR VALUES WITH (MODULUS 2, REMAINDER 0);
        CREATE TABLE patients_hash_1 PARTITION OF patients FOR VALUES WITH (MODULUS 2, REMAINDER 1);
    """)
    tables = module_runner(MODULE, pg.params(table=["appointments", "patients"]))["tables"]
    assert list(tables) == ["public.appointments", "public.patients"]
    listed, hashed = tables["public.appointments"], tables["public.patients"]
    assert listed["strategy"] == "list" and listed["key_type"] == "boolean"
    assert [(p["name"], p.get("values")) for p in listed["partitions"]] == [
        ("appointments_active", ["false"]), ("appointments_completed", ["true", None]),
        ("appointments_default", None)]
    assert listed["default_rows"] == 0
    assert hashed["strategy"] == "hash"
    assert [(p["name"], p["modulus"], p["remainder"]) for p in hashed["partitions"]] == [
        ("patients_hash_0", 2, 0), ("patients_hash_1", 2, 1)]
    for facts in (listed, hashed):
        assert (facts["gaps"], facts["runway"], facts["reference"]) == ([], None, None)


def test_every_partitioned_table_when_none_is_named(pg, module_runner):
    pg.sql("CREATE SCHEMA metrics; CREATE TABLE plain (id int)")
    create_monthly(pg, "metrics.heart_rate", dt.date(2025, 1, 1), 2)
    create_steps(pg, "orders", 2)
    pg.sql("CREATE TABLE tags (name text) PARTITION BY LIST (name)")
    result = module_runner(MODULE, pg.params())
    assert sorted(result["tables"]) == ["metrics.heart_rate", "public.orders", "public.tags"]
    assert result["tables"]["public.tags"]["partitions"] == []


def test_an_empty_database_has_no_tables(pg, module_runner):
    result = module_runner(MODULE, pg.params())
    assert "failed" not in result and result["tables"] == {} and result["in_recovery"] is False


def test_brin_indexes_of_the_set_with_autosummarize(pg, module_runner):
    create_monthly(pg, "heart_rate", dt.date(2025, 1, 1), 2)
    pg.sql("CREATE INDEX heart_rate_brin ON heart_rate USING brin (created_at) "
           "WITH (autosummarize = on, pages_per_range = 32)")
    pg.sql("CREATE INDEX heart_rate_2025_01_id_brin ON heart_rate_2025_01 USING brin (id)")
    pg.sql("CREATE INDEX heart_rate_id ON heart_rate (id)")
    brin = module_runner(MODULE, pg.params(table="heart_rate"))["tables"]["public.heart_rate"]["brin_indexes"]
    summary = {(b["table"], b["level"], b["autosummarize"], b["pages_per_range"]) for b in brin}
    assert summary == {
        ("heart_rate", 0, True, 32),
        ("heart_rate_2025_01", 1, True, 32),
        ("heart_rate_2025_02", 1, True, 32),
        ("heart_rate_2025_01", 1, False, 128),
    }
    assert "heart_rate_brin" in {b["name"] for b in brin} and "heart_rate_id" not in {b["name"] for b in brin}


@pytest.mark.parametrize("table, message", [
    pytest.param("no_such_table", "table no_such_table does not exist in the search_path", id="an unknown table"),
    pytest.param("nowhere.events", "table events does not exist in schema nowhere", id="an unknown schema"),
    pytest.param("plain", "public.plain is not a partitioned table", id="a table that is not partitioned"),
    pytest.param("events; DROP TABLE plain", "is not a plain '[schema.]name'", id="a name carrying SQL"),
])
def test_a_table_that_is_not_a_partition_set_is_a_clear_error(pg, module_runner, table, message):
    pg.sql("CREATE TABLE plain (id int)")
    result = module_runner(MODULE, pg.params(table=table))
    assert result["failed"] is True and message in result["msg"]
    assert pg.value("SELECT count(*) FROM pg_class WHERE relname = 'plain'") == 1


def test_a_reference_time_that_does_not_fit_the_key_names_the_table(pg, module_runner):
    create_steps(pg, "orders", 2)
    result = module_runner(MODULE, pg.params(table="orders", reference_time="2025-01-01"))
    assert result["failed"] is True
    assert "public.orders: reference_time '2025-01-01' does not fit the bigint key id" in result["msg"]


def count_statements(monkeypatch):
    """Every statement the connection layer sends, counted."""
    sent = []
    original = connection.Database._run

    def counting(self, statement, args, fetch):
        sent.append(statement)
        return original(self, statement, args, fetch)

    monkeypatch.setattr(connection.Database, "_run", counting)
    return sent


@pytest.mark.parametrize("key", ["time", "integer"])
def test_the_number_of_queries_does_not_grow_with_the_partition_count(pg, module_runner, monkeypatch, key):
    sent = count_statements(monkeypatch)
    counts = {}
    for size in (10, 200):
        table = "set_%d" % size
        if key == "time":
            create_monthly(pg, table, dt.date(2000, 1, 1), size)
        else:
            create_steps(pg, table, size)
        pg.sql("CREATE TABLE %s_default PARTITION OF %s DEFAULT" % (table, table))
        pg.sql("CREATE INDEX ON %s USING brin (id)" % table)
        sent.clear()
        result = module_runner(MODULE, pg.params(table=table))
        assert len(result["tables"]["public." + table]["partitions"]) == size + 1
        assert len(result["tables"]["public." + table]["brin_indexes"]) == size + 2
        counts[size] = len(sent)
    # At most 10 before drift was reported, and two queries more for it: what the parent gives, what every partition
    # carries.
    assert counts[10] == counts[200] <= 12


def test_a_wrong_password_over_tcp_fails_clearly_without_the_password(pg, module_runner):
    wrong = "Wr0ng-" + servers.PASSWORD
    result = module_runner(MODULE, pg.params(login_host="127.0.0.1", login_user=servers.PASSWORD_USER,
                                             login_password=wrong))
    assert result["failed"] is True
    assert result["msg"].startswith("Cannot connect to PostgreSQL at 127.0.0.1 port %d as %s: "
                                    % (pg.server.port, servers.PASSWORD_USER))
    assert "password authentication failed" in result["msg"]
    output = json.dumps(result)
    assert wrong not in output and servers.PASSWORD not in output


def test_what_the_fleet_report_judges_analyze_missing_indexes_and_pruning(pg, module_runner):
    create_monthly(pg, "readings", dt.date(2025, 1, 1), 3)
    create_monthly(pg, "visits", dt.date(2025, 1, 1), 2)
    # ON ONLY leaves the parent's index invalid until each partition's index is attached: here only January's.
    pg.sql("""
        CREATE INDEX readings_id_idx ON ONLY readings (id);
        CREATE INDEX readings_2025_01_id_idx ON readings_2025_01 (id);
        ALTER INDEX readings_id_idx ATTACH PARTITION readings_2025_01_id_idx;
        CREATE INDEX readings_created_at_idx ON readings (created_at);
        CREATE INDEX visits_id_idx ON visits (id);
        INSERT INTO visits VALUES (1, '2025-01-02 00:00+00');
        ANALYZE visits;
    """)
    pg.sql("ALTER DATABASE %s SET enable_partition_pruning = off" % pg.name)
    result = module_runner(MODULE, pg.params(table=["readings", "visits"]))
    assert result["settings"] == {"enable_partition_pruning": "off"}
    readings, visits = result["tables"]["public.readings"], result["tables"]["public.visits"]
    assert [(p["name"], p["missing_indexes"]) for p in readings["partitions"]] == [
        ("readings_2025_01", []), ("readings_2025_02", ["readings_id_idx"]),
        ("readings_2025_03", ["readings_id_idx"])]
    assert [p["missing_indexes"] for p in visits["partitions"]] == [[], []]
    assert (readings["parent_analyzed"], readings["parent_last_analyzed"]) == (False, None)
    assert visits["parent_analyzed"] is True
    analyzed = dt.datetime.fromisoformat(visits["parent_last_analyzed"])
    assert abs((analyzed - pg.value("SELECT now()")).total_seconds()) < 300
