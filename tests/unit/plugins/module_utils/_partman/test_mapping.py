"""pg_partman's part_config rows (4.x and 5.x layouts) as policy items: intervals as PostgreSQL prints them, the
anchor from the bounds, pg_partman's names, retention, and every setting without an equivalent listed."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Partition, RangeBounds, TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.timeutil import TimeGrid
from ansible_collections.pgfleet.partitions.plugins.module_utils._partman.mapping import _grid_interval, map_set

UTC = dt.timezone.utc
TSTZ = "timestamp with time zone"
NOW = dt.datetime(2026, 12, 3, 6, 23, tzinfo=UTC)

ROW_47 = {"epoch": "none", "jobmon": True, "upsert": "", "control": "ts", "premake": 4, "retention": None,
          "inherit_fk": True, "parent_table": "public.events", "publications": None, "partition_type": "native",
          "template_table": "partman.template_public_events", "constraint_cols": None,
          "datetime_string": "YYYY_MM_DD", "drop_cascade_fk": False, "constraint_valid": True, "optimize_trigger": 4,
          "retention_schema": None, "undo_in_progress": False, "inherit_privileges": False,
          "partition_interval": "14 days", "ignore_default_data": False, "optimize_constraint": 30,
          "trigger_return_null": True, "retention_keep_index": True, "retention_keep_table": True,
          "subscription_refresh": None, "automatic_maintenance": "on", "sub_partition_set_full": False,
          "infinite_time_partitions": False, "trigger_exception_handling": False}
ROW_5 = {"parent_table": "public.events", "control": "ts", "time_encoder": None, "time_decoder": None,
         "partition_interval": "1 mon", "partition_type": "range", "premake": 4, "automatic_maintenance": "on",
         "template_table": None, "retention": "3 mons", "retention_schema": None, "retention_keep_index": True,
         "retention_keep_table": False, "epoch": "none", "constraint_cols": None, "optimize_constraint": 30,
         "infinite_time_partitions": True, "datetime_string": "YYYYMMDD", "jobmon": False,
         "sub_partition_set_full": False, "undo_in_progress": False, "inherit_privileges": True,
         "constraint_valid": True, "ignore_default_data": False, "date_trunc_interval": None,
         "maintenance_order": None, "retention_keep_publication": False, "maintenance_last_run": None,
         "default_table": True}


def state_of(interval, anchor=None, key_type=TSTZ, epoch=None, count=4, default=True):
    grid = TimeGrid(interval, key_type if not epoch else TSTZ, epoch=epoch, anchor=anchor)
    start = grid.floor(NOW)
    partitions = [Partition("public", "events_p%d" % n, RangeBounds(grid.to_key(grid.shift(start, n)),
                                                                    grid.to_key(grid.shift(start, n + 1))))
                  for n in range(-count, count + 1)]
    if default:
        partitions.append(Partition("public", "events_default", None, is_default=True))
    return TableState(oid=1, schema="public", name="events", strategy="range", key="ts", key_type=key_type,
                      partitions=tuple(partitions), server_now=NOW)


@pytest.mark.parametrize("text, ours", [
    pytest.param("00:15:00", "15 minutes", id="a quarter hour"),
    pytest.param("02:00:00", "2 hours", id="two hours"),
    pytest.param("01:00:00", "hour", id="one hour is the word"),
    pytest.param("1 day", "day", id="a day"),
    pytest.param("14 days", "2 weeks", id="fourteen days are two weeks"),
    pytest.param("7 days", "week", id="seven days are a week"),
    pytest.param("3 days", "3 days", id="three days"),
    pytest.param("3 mons", "3 months", id="three months"),
    pytest.param("1 year", "year", id="a year"),
    pytest.param("1 day 12:00:00", "36 hours", id="a day and a half in hours"),
    pytest.param("00:00:30", None, id="seconds have no equivalent"),
    pytest.param("1 mon 15 days", None, id="two units have no equivalent"),
])
def test_partman_intervals_as_printed_become_ours(text, ours):
    assert _grid_interval(text) == ours


def test_a_47_fortnight_set_maps_with_the_anchor_of_its_bounds_its_names_and_the_settings_without_equivalent():
    anchor = dt.datetime(2026, 11, 5)  # a Thursday: pg_partman counts from the day the set was made; the anchor
    # given back is the lower bound of the oldest partition, on the same grid
    mapped = map_set(ROW_47, state_of("2 weeks", anchor), "UTC")
    assert mapped.refusal is None
    assert mapped.item == {"table": "public.events", "interval": "2 weeks", "interval_anchor": "2026-10-08 00:00:00",
                           "premake": 4, "default_partition": True, "template_table": "partman.template_public_events",
                           "name_template": "{parent}_p{year}_{month}_{day}"}
    assert {entry["setting"] for entry in mapped.unmapped} == {
        "jobmon", "inherit_privileges", "infinite_time_partitions"}


def test_a_5x_monthly_set_on_the_default_grid_maps_retention_and_lists_nothing():
    mapped = map_set(ROW_5, state_of("month"), "UTC")
    assert mapped.unmapped == [] and mapped.refusal is None
    assert mapped.item == {"table": "public.events", "interval": "month", "premake": 4, "default_partition": True,
                           "name_template": "{parent}_p{year}{month}{day}", "retention": "3 mon",
                           "retention_action": "drop"}


def test_an_epoch_nanosecond_set_maps_its_retention_into_key_units():
    row = dict(ROW_47, control="id", epoch="nanoseconds", partition_interval="02:00:00", retention="2 days",
               datetime_string="YYYY_MM_DD_HH24MI", retention_schema="archive")
    mapped = map_set(row, state_of("2 hours", key_type="bigint", epoch="nanoseconds"), "Europe/Berlin")
    assert mapped.item["epoch"] == "nanoseconds" and mapped.item["retention"] == 2 * 86400 * 10 ** 9
    assert mapped.item["retention_action"] == "detach" and mapped.item["archive_schema"] == "archive"
    assert mapped.item["name_template"] == "{parent}_p{year}_{month}_{day}_{hour}{minute}"
    assert mapped.item["timezone"] == "Europe/Berlin"


def test_a_set_on_no_single_grid_is_refused_naming_its_first_partition():
    state = state_of("2 weeks", dt.datetime(2026, 11, 5))
    odd = Partition("public", "events_odd", RangeBounds(dt.datetime(2026, 1, 2, tzinfo=UTC),
                                                        dt.datetime(2026, 1, 9, tzinfo=UTC)))
    state = dataclasses.replace(state, partitions=(odd,) + state.partitions)
    mapped = map_set(ROW_47, state, "UTC")
    assert mapped.item is None and "events_odd" in mapped.refusal and "nothing from names" in mapped.refusal


def test_a_set_pg_partman_sub_partitioned_by_day_maps_to_a_range_subpartition():
    sub = {"sub_parent": "public.events", "sub_control": "ts", "sub_partition_interval": "daily", "sub_premake": 2,
           "sub_epoch": "none"}
    mapped = map_set(dict(ROW_5), state_of("month"), "UTC", sub=sub)
    assert mapped.refusal is None
    assert mapped.item["subpartition"] == {"strategy": "range", "column": "ts", "interval": "day"}
    assert [entry["setting"] for entry in mapped.unmapped] == ["sub_premake"]


def test_a_sub_parent_stays_with_partman_and_a_sub_partitioning_by_another_column_is_refused():
    kept = map_set(dict(ROW_5, parent_table="public.events_p2026_12"), state_of("day"), "UTC",
                   part_of="public.events")
    assert kept.item is None and kept.refusal is None and "stays with pg_partman" in kept.unmapped[0]["note"]
    sub = {"sub_parent": "public.events", "sub_control": "region", "sub_partition_interval": "1 day",
           "sub_epoch": "none"}
    assert "only a finer time interval" in map_set(dict(ROW_5), state_of("month"), "UTC", sub=sub).refusal


def test_a_set_pg_partman_is_undoing_is_refused():
    assert "undoing" in map_set(dict(ROW_47, undo_in_progress=True), state_of("2 weeks", dt.datetime(2026, 11, 5)),
                                "UTC").refusal


def test_an_unknown_setting_of_a_later_version_is_listed_not_dropped():
    mapped = map_set(dict(ROW_5, some_future_knob=7), state_of("month"), "UTC")
    assert mapped.unmapped == [{"setting": "some_future_knob", "value": 7, "note": "no equivalent here"}]
