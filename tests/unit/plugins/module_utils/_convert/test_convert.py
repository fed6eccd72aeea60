from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._convert import checks
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert import model
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert import render
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert import stages
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.bounds import parse_bound
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.model import (
    Column,
    ConversionFacts,
    ForeignKey,
    Index,
    OwnedSequence,
    SourceTable,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Relation
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import (
    Partition,
    PartitionPolicy,
    TableState,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._partition.plan import grid_for, plan

UTC = dt.timezone.utc
TSTZ = "timestamp with time zone"
NAMES = model.names_for("public", "appointments")


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


def text(composed):
    return composed.as_string(None)


def appointments(**overrides):
    """appointments(id, starts_at, is_completed, total generated), primary key (id, starts_at)."""
    facts = dict(
        oid=10, schema="public", name="appointments", owner="clinic",
        columns=(Column("id", "bigint", "bigint"), Column("starts_at", TSTZ, TSTZ),
                 Column("is_completed", "boolean", "boolean"), Column("total", "numeric(10,2)", "numeric", True)),
        indexes=(Index(1, "appointments_pkey", ("id", "starts_at"), primary=True, unique=True,
                       shape=" USING btree (id, starts_at)", constraint="p"),
                 Index(2, "appointments_done_idx", ("is_completed",), shape=" USING btree (is_completed)")),
    )
    facts.update(overrides)
    return SourceTable(**facts)


def marked(stage="prepared", **fields):
    return stages.marker_comment(dict(stages.initial_marker("appointments", stage), **fields))


def facts(live=None, partitioned=None, retired=None):
    return ConversionFacts(NAMES, live, partitioned, retired)


REGULAR, MIRRORED = Relation(10, "r", "who sees whom"), Relation(10, "r", "who sees whom", mirrored=True)
STAGES = [
    pytest.param(facts(REGULAR), "original", id="a plain table with no copy is original"),
    pytest.param(facts(REGULAR, Relation(20, "p", marked("preparing"))), "preparing",
                 id="a copy without the mirror trigger is preparing"),
    pytest.param(facts(MIRRORED, Relation(20, "p", marked())), "prepared", id="a mirrored copy is prepared"),
    pytest.param(facts(MIRRORED, Relation(20, "p", marked(synced=True))), "filled",
                 id="a mirrored copy whose copy finished is filled"),
    pytest.param(facts(REGULAR, Relation(20, "p", marked("rolled_back"))), "rolled_back",
                 id="a copy left by a roll-back is rolled back"),
    pytest.param(facts(Relation(20, "p", "who sees whom"), retired=Relation(10, "r", marked("swapped"))), "swapped",
                 id="a partitioned table with its retired original is swapped"),
    pytest.param(facts(Relation(20, "p", mirrored=True), retired=Relation(10, "r", marked("rolling_back"))),
                 "rolling_back", id="a swapped table mirroring back is rolling back"),
    pytest.param(facts(Relation(20, "p")), "partitioned", id="a partitioned table without retired original"),
]


@pytest.mark.parametrize("observed, stage", STAGES)
def test_the_stage_is_read_from_relations_markers_and_triggers(observed, stage):
    assert stages.current_stage(observed) == stage


FOREIGN_RELATIONS = [
    pytest.param(facts(), "does not exist", id="a missing table"),
    pytest.param(facts(Relation(10, "v")), "not a regular table", id="a view"),
    pytest.param(facts(REGULAR, Relation(20, "r")), "was not made by this module",
                 id="a plain table under the copy's name"),
    pytest.param(facts(REGULAR, Relation(20, "p", "someone else's")), "was not made by this module",
                 id="a partitioned table under the copy's name without marker"),
    pytest.param(facts(Relation(20, "p"), retired=Relation(10, "r", "old stuff")), "was not retired by this module",
                 id="a table under the retired name without marker"),
]


@pytest.mark.parametrize("observed, message", FOREIGN_RELATIONS)
def test_relations_this_module_did_not_make_stop_it(observed, message):
    with pytest.raises(PlanError, match=message):
        stages.current_stage(observed)


STEPS = [
    ("original", "prepared", ("prepare",)),
    ("original", "swapped", ("prepare", "fill", "swap")),
    ("preparing", "filled", ("prepare", "fill")),
    ("prepared", "swapped", ("fill", "swap")),
    ("filled", "swapped", ("swap",)),
    ("filled", "prepared", ()),
    ("swapped", "prepared", ()),
    ("swapped", "swapped", ()),
    ("partitioned", "swapped", ()),
    ("rolled_back", "swapped", ("prepare", "fill", "swap")),
    ("swapped", "rolled_back", ("catch_up", "swap_back")),
    ("rolling_back", "rolled_back", ("catch_up", "swap_back")),
    ("rolling_back", "swapped", ("stop_mirror",)),
    ("rolling_back", "filled", ()),
    ("prepared", "rolled_back", ("stop_mirror",)),
    ("original", "rolled_back", ()),
    ("rolled_back", "rolled_back", ()),
]


@pytest.mark.parametrize("stage, wanted, expected", STEPS, ids=[
    "%s to %s runs %s" % (stage, wanted, ", ".join(steps) or "nothing") for stage, wanted, steps in STEPS])
def test_each_stage_runs_the_steps_not_done_yet(stage, wanted, expected):
    assert stages.steps(stage, wanted) == expected


def test_rolling_back_a_table_whose_original_is_gone_is_refused():
    with pytest.raises(PlanError, match="nothing to roll back to"):
        stages.steps("partitioned", "rolled_back")


@pytest.mark.parametrize("stage, done, after", [
    ("original", ("prepare", "fill", "swap"), "swapped"),
    ("swapped", ("catch_up", "swap_back"), "rolled_back"),
    ("rolling_back", ("stop_mirror",), "swapped"),
    ("filled", ("stop_mirror",), "rolled_back"),
    ("swapped", (), "swapped"),
], ids=["a whole conversion ends swapped", "a roll-back ends rolled back", "stopping a roll-back stays swapped",
        "stopping before the swap is a roll-back", "no step keeps the stage"])
def test_the_stage_after_the_steps(stage, done, after):
    assert stages.stage_after(stage, done) == after


def with_index(**index):
    return appointments(indexes=appointments().indexes + (Index(3, **index),))


REFUSALS = [
    pytest.param(appointments(indexes=()), "starts_at", "has no primary key", id="a table without primary key"),
    pytest.param(appointments(), "is_completed", "primary key appointments_pkey (id, starts_at) does not include the "
                 "partition column is_completed", id="a primary key without the partition column"),
    pytest.param(with_index(name="appointments_id_key", columns=("id",), unique=True, constraint="u"), "starts_at",
                 "unique constraint appointments_id_key", id="a unique constraint without the partition column"),
    pytest.param(with_index(name="one_open", columns=("id", "starts_at"), unique=True, partial_or_expression=True),
                 "starts_at", "has expressions or a WHERE clause", id="a partial unique index"),
    pytest.param(appointments(), "nope", "has no column nope", id="a column that does not exist"),
    pytest.param(appointments(), "total", "generated column total", id="a generated column"),
    pytest.param(appointments(dependents=("view public.todays_appointments",)), "starts_at",
                 "read by view public.todays_appointments", id="a view reading the table"),
    pytest.param(appointments(incoming=(ForeignKey("follow_up", "public", "appointments", ("prev_id", "prev_at"),
                                                   "public", "appointments", ("id", "starts_at")),)),
                 "starts_at", "reference the table itself", id="a foreign key of the table to itself"),
]


@pytest.mark.parametrize("source, column, message", REFUSALS)
def test_what_cannot_be_converted_is_refused_with_the_remedy(source, column, message):
    with pytest.raises(PlanError, match=re.escape(message)):
        checks.refuse_unconvertible(source, column)


def test_the_key_refusal_names_the_remedy_and_the_foreign_keys_hanging_on_the_key():
    visits = ForeignKey("visits_appointment_fkey", "public", "visits", ("appointment_id",), "public", "appointments",
                        ("id",))
    source = appointments(indexes=(Index(1, "appointments_pkey", ("id",), primary=True, unique=True),),
                          incoming=(visits,))
    with pytest.raises(PlanError) as refused:
        checks.refuse_unconvertible(source, "starts_at")
    assert "Extend the key with the partition column" in str(refused.value)
    assert "public.visits.visits_appointment_fkey (appointment_id)" in str(refused.value)
    assert "ADD PRIMARY KEY (id, starts_at)" in str(refused.value)


def test_a_foreign_key_on_the_full_key_is_carried():
    follow = ForeignKey("reminders_fkey", "public", "reminders", ("appointment_id", "at"), "public", "appointments",
                        ("starts_at", "id"))
    checks.refuse_unconvertible(appointments(incoming=(follow,)), "starts_at")


def months(policy, low, high, now=utc(2025, 1, 15, 12)):
    state = TableState(oid=0, schema="public", name="appointments", strategy="range", key="starts_at", key_type=TSTZ,
                       partitions=(), server_now=now)
    covering = checks.covering_policy(policy, grid_for(state, policy), low, high, now, "public.appointments")
    names = sorted(action.name for action in plan(state, covering).actions)
    return names[0], names[-1], len(names)


COVERAGE = [
    pytest.param(PartitionPolicy(interval="month", premake=2), utc(2024, 1, 10), utc(2024, 11, 20),
                 ("appointments_2024_01", "appointments_2025_03", 15),
                 id="past data is covered back to its first month"),
    pytest.param(PartitionPolicy(interval="month", premake=2), utc(2024, 12, 1), utc(2025, 6, 3),
                 ("appointments_2024_12", "appointments_2025_08", 9),
                 id="future data is covered, and premake runs on past the highest key"),
    pytest.param(PartitionPolicy(interval="month", premake=1, reference_time=utc(2024, 6, 1)), utc(2024, 5, 2),
                 utc(2024, 5, 3), ("appointments_2024_05", "appointments_2024_07", 3),
                 id="a reference time replaces now"),
    pytest.param(PartitionPolicy(interval="month", premake=1, backfill=1), None, None,
                 ("appointments_2024_12", "appointments_2025_02", 3), id="an empty table gets the policy as it is"),
]


@pytest.mark.parametrize("policy, low, high, expected", COVERAGE)
def test_range_partitions_cover_every_existing_key(policy, low, high, expected):
    assert months(policy, low, high) == expected


def test_integer_keys_are_covered_from_the_lowest_to_the_highest_key():
    state = TableState(oid=0, schema="public", name="orders", strategy="range", key="id", key_type="bigint",
                       partitions=())
    policy = PartitionPolicy(interval=1000, premake=1)
    covering = checks.covering_policy(policy, grid_for(state, policy), 5, 4500, None, "public.orders")
    assert sorted(a.bounds.lower for a in plan(state, covering).actions) == [0, 1000, 2000, 3000, 4000, 5000]


def test_a_key_range_needing_too_many_partitions_is_refused():
    with pytest.raises(PlanError, match="choose a coarser interval"):
        months(PartitionPolicy(interval="hour"), utc(2020, 1, 1), utc(2024, 1, 1))


def test_list_values_no_partition_takes_are_found():
    policy = PartitionPolicy(list_partitions={"active": [False], "completed": [True]})
    assert checks.uncovered_list_values(policy, ["false", "true"]) == []
    assert checks.uncovered_list_values(PartitionPolicy(list_partitions={"a": [1, 2]}), ["1", "3", "2", "4"]) == [
        "3", "4"]


REQUESTS = [
    pytest.param({"state": "swapped", "column": "starts_at"}, "needs strategy and column", id="no strategy"),
    pytest.param({"state": "prepared", "strategy": "range"}, "needs strategy and column", id="no column"),
    pytest.param({"state": "prepared", "strategy": "range", "column": "a.b"}, "plain column name",
                 id="a qualified column"),
    pytest.param({"state": "prepared", "strategy": "range", "column": "x; drop"}, "is not a plain",
                 id="a hostile column"),
    pytest.param({"state": "prepared", "strategy": "list", "column": "k"}, "needs list_partitions",
                 id="LIST without list_partitions"),
    pytest.param({"state": "prepared", "strategy": "hash", "column": "k", "batch_size": 0}, "batch_size",
                 id="a batch of no rows"),
    pytest.param({"state": "done"}, "state must be one of", id="an unknown state"),
]


@pytest.mark.parametrize("params, message", REQUESTS)
def test_invalid_requests_are_refused_before_connecting(params, message):
    with pytest.raises(PlanError, match=message):
        model.request_from_params(dict({"batch_size": 100, "sleep": 0}, **params))


def test_a_roll_back_needs_no_partitioning_and_columns_fold_to_lower_case():
    assert model.request_from_params({"state": "rolled_back", "batch_size": 10}).strategy is None
    request = model.request_from_params({"state": "filled", "strategy": "hash", "column": "Patient_Id",
                                         "batch_size": 10, "sleep": 0.5})
    assert (request.column, request.sleep) == ("patient_id", 0.5)


def test_the_progress_marker_round_trips_and_foreign_comments_are_not_markers():
    marker = dict(stages.initial_marker("appointments"), watermark=["42", "2025-01-01 00:00:00+00"])
    assert stages.read_marker(stages.marker_comment(marker)) == marker
    assert stages.read_marker("who sees whom") is None
    assert stages.read_marker(stages.MARKER + "{broken") is None
    assert stages.read_marker(None) is None


def test_a_restarted_mirror_copies_into_an_empty_target_and_refreshes_a_filled_one():
    old = dict(stages.initial_marker("appointments"), watermark=["7"], rows_copied=7, synced=True)
    assert stages.restart_marker(old, True, "prepared")["mode"] == "copy"
    fresh = stages.restart_marker(old, False, "rolling_back")
    assert (fresh["mode"], fresh["watermark"], fresh["synced"], fresh["stage"]) == ("refresh", None, False,
                                                                                    "rolling_back")


def test_the_mirror_moves_rows_whose_key_changes_and_skips_generated_columns():
    source = appointments()
    body = text(render.mirror_body("public", "appointments_partitioned", source.copied_columns,
                                   source.primary_key.columns))
    assert 'IF ROW(OLD."id", OLD."starts_at") IS DISTINCT FROM ROW(NEW."id", NEW."starts_at") THEN' in body
    assert 'DELETE FROM "public"."appointments_partitioned" AS t WHERE t."id" = OLD."id" AND ' \
           't."starts_at" = OLD."starts_at";' in body
    assert 'ON CONFLICT ("id", "starts_at") DO UPDATE SET "is_completed" = EXCLUDED."is_completed";' in body
    assert "total" not in body and 'TRUNCATE "public"."appointments_partitioned"' in body


def test_a_table_of_key_columns_only_mirrors_with_do_nothing():
    body = text(render.mirror_body("public", "t", ("a", "b"), ("a", "b")))
    assert 'ON CONFLICT ("a", "b") DO NOTHING;' in body


def test_the_mirror_triggers_are_created_or_replaced_without_a_drop_first():
    statements = [text(s) for s in render.create_mirror("public", "appointments", "appointments_pgfleet_mirror")]
    assert statements == [
        'CREATE OR REPLACE TRIGGER "pgfleet_convert_mirror" AFTER INSERT OR UPDATE OR DELETE ON '
        '"public"."appointments" FOR EACH ROW EXECUTE FUNCTION "public"."appointments_pgfleet_mirror"()',
        'CREATE OR REPLACE TRIGGER "pgfleet_convert_mirror_truncate" AFTER TRUNCATE ON "public"."appointments" '
        'FOR EACH STATEMENT EXECUTE FUNCTION "public"."appointments_pgfleet_mirror"()']


def test_the_mirror_function_is_security_definer_with_a_fixed_search_path():
    statement = text(render.mirror_function("public", "appointments_pgfleet_mirror", "BEGIN RETURN NULL; END"))
    assert "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'BEGIN RETURN NULL; END'" in statement


BATCHES = [
    pytest.param(None, False, ["WHERE true", "FOR KEY SHARE", "DO NOTHING"],
                 id="a first copy batch reads from the start"),
    pytest.param(["42", "2025-01-01 00:00:00+00"], False,
                 ["WHERE ROW(\"id\", \"starts_at\") > ROW('42'::bigint, '2025-01-01 00:00:00+00'::timestamp with "
                  "time zone)", "LIMIT 500 FOR KEY SHARE"], id="a later copy batch starts after the watermark"),
    pytest.param(None, True, ["FOR SHARE", 'DO UPDATE SET "is_completed" = EXCLUDED."is_completed" WHERE ROW(t."id", '
                              't."starts_at", t."is_completed")::text IS DISTINCT FROM ROW(EXCLUDED."id", '
                              'EXCLUDED."starts_at", EXCLUDED."is_completed")::text'],
                 id="a refresh batch updates only rows that differ"),
]


@pytest.mark.parametrize("after, refresh, fragments", BATCHES)
def test_copy_batches_read_in_key_order_and_lock_what_they_copy(after, refresh, fragments):
    source = appointments()
    statement = text(render.copy_batch(("public", "appointments"), ("public", "appointments_partitioned"),
                                       source.copied_columns, source.primary_key.columns,
                                       source.types(source.primary_key.columns), after, 500, refresh))
    assert 'ORDER BY "id", "starts_at"' in statement and "OVERRIDING SYSTEM VALUE" in statement
    for fragment in fragments:
        assert fragment in statement


def test_a_refresh_removes_rows_the_source_no_longer_has_within_the_batch_window():
    statement = text(render.delete_orphans(("public", "appointments"), ("public", "appointments_retired"), ("id",),
                                           ("bigint",), ["10"], ["20"]))
    assert statement == (
        'DELETE FROM "public"."appointments_retired" AS t WHERE ROW(t."id") > ROW(\'10\'::bigint) AND '
        'ROW(t."id") <= ROW(\'20\'::bigint) AND NOT EXISTS (SELECT 1 FROM "public"."appointments" AS s WHERE '
        's."id" = t."id")')


def partition(name, expression, key_type="boolean"):
    bounds = parse_bound(expression, key_type)
    return Partition("public", name, bounds, is_default=bounds is None)


def test_verification_routes_rows_of_the_regular_table_by_the_partition_bounds():
    state = TableState(oid=77, schema="public", name="appointments_partitioned", strategy="list", key="is_completed",
                       key_type="boolean", partitions=(partition("appointments_active", "FOR VALUES IN (false)"),
                                                       partition("appointments_default", "DEFAULT")))
    statement = text(render.verification(("public", "appointments"), state, ("id", "is_completed")))
    assert "CASE WHEN (\"is_completed\" IN ('false')) THEN 'appointments_active' ELSE 'appointments_default' END" \
        in statement
    assert 'sum(hashtextextended(ROW("id", "is_completed")::text, 0))' in statement
    hashed = dataclasses.replace(state, strategy="hash", key="id", key_type="bigint", partitions=(
        partition("appointments_hash_1", "FOR VALUES WITH (modulus 4, remainder 1)", "bigint"),))
    assert 'satisfies_hash_partition(77::oid, 4, 1, "id")' in text(
        render.verification(("public", "appointments"), hashed, ("id",)))


def test_verification_reports_every_partition_and_names_those_that_differ():
    rows = [("regular", "a_active", 10, 5), ("partitioned", "a_active", 10, 5),
            ("regular", "a_completed", 4, 9), ("partitioned", "a_completed", 4, 8), ("regular", None, 1, 1)]
    report, mismatched = checks.compare_verification(rows, ["a_active", "a_completed", "a_default"])
    assert [item["partition"] for item in report] == ["a_active", "a_completed", "a_default", "(no partition)"]
    assert mismatched == ["a_completed", "(no partition)"]
    assert report[2] == {"partition": "a_default", "rows": 0, "rows_partitioned": 0, "checksum_matches": True}


def test_index_names_go_to_the_matching_indexes_of_the_arriving_table():
    leaving = appointments().indexes
    arriving = (Index(5, "appointments_partitioned_pkey", ("id", "starts_at"), primary=True, unique=True,
                      shape=" USING btree (id, starts_at)", constraint="p"),
                Index(6, "appointments_partitioned_is_completed_idx", ("is_completed",),
                      shape=" USING btree (is_completed)"),
                Index(7, "only_here", ("id",), shape=" USING hash (id)"))
    assert [text(s) for s in render.index_renames("public", leaving, arriving, "retired")] == [
        'ALTER INDEX "public"."appointments_pkey" RENAME TO "appointments_pkey_retired"',
        'ALTER INDEX "public"."appointments_partitioned_pkey" RENAME TO "appointments_pkey"',
        'ALTER INDEX "public"."appointments_done_idx" RENAME TO "appointments_done_idx_retired"',
        'ALTER INDEX "public"."appointments_partitioned_is_completed_idx" RENAME TO "appointments_done_idx"',
    ]


def test_serial_sequences_change_owner_and_identity_sequences_continue_and_trade_names():
    leaving = (OwnedSequence("booking_no", False, 1, "public", "appointments_booking_no_seq"),
               OwnedSequence("id", True, 2, "public", "appointments_id_seq"))
    arriving = (OwnedSequence("id", True, 3, "public", "appointments_partitioned_id_seq"),)
    assert [text(s) for s in render.sequence_handover(leaving, arriving, "public", "appointments", "retired")] == [
        'ALTER SEQUENCE "public"."appointments_booking_no_seq" OWNED BY "public"."appointments"."booking_no"',
        "SELECT setval(3::oid::regclass, last_value, is_called) FROM \"public\".\"appointments_id_seq\"",
        'ALTER SEQUENCE "public"."appointments_id_seq" RENAME TO "appointments_id_seq_retired"',
        'ALTER SEQUENCE "public"."appointments_partitioned_id_seq" RENAME TO "appointments_id_seq"',
    ]


def test_foreign_keys_are_recreated_against_the_live_table_not_valid_first():
    fk = ForeignKey("reminders_fkey", "public", "reminders", ("appointment_id", "at"), "public", "appointments",
                    ("id", "starts_at"), "s", "c", "c", True, True)
    assert text(render.foreign_key(fk, "public", "appointments", not_valid=True)) == (
        'ALTER TABLE "public"."reminders" ADD CONSTRAINT "reminders_fkey" FOREIGN KEY ("appointment_id", "at") '
        'REFERENCES "public"."appointments" ("id", "starts_at") MATCH SIMPLE ON UPDATE CASCADE ON DELETE CASCADE '
        "DEFERRABLE INITIALLY DEFERRED NOT VALID")


def test_names_stay_within_63_bytes_and_apart():
    names = model.names_for("public", "a" * 63)
    assert all(len(name.encode()) <= 63 for name in (names.partitioned, names.retired, names.forward_function))
    assert len({names.live, names.partitioned, names.retired, names.forward_function, names.backward_function}) == 5
