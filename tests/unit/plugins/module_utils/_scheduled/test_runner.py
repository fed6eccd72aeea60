from __future__ import annotations

import json

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled.config import (
    ConfigError,
    connection_params,
    load_config,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled.jobs import summarize
from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled.runner import Sessions
from ansible_collections.pgfleet.partitions.plugins.module_utils._scheduled.status import exclusive_lock, metrics_text

SUMMARIES = [
    pytest.param(None, ("SKIPPED", "not configured for this job"), id="a table without the job is skipped"),
    pytest.param({"changed": False, "skipped_reason": "standby"}, ("SKIPPED", "standby"),
                 id="a skip says why"),
    pytest.param({"changed": True, "created": ["a", "b"], "moved_rows": 3},
                 ("CHANGED", "created 2 (a, b); moved 3 rows from the default partition"),
                 id="creations and moved rows are both told"),
    pytest.param({"changed": False, "created": []}, ("OK", "nothing to do"), id="an idle run is OK"),
]


@pytest.mark.parametrize("result, expected", SUMMARIES)
def test_summarize(result, expected):
    assert summarize("create", result) == expected


def test_item_connection_overrides_the_shared_one_and_no_password_is_taken():
    config = {"connection": {"login_host": "db", "port": 5432, "login_password": "secret", "login_user": "u"}}
    params = connection_params(config, {"db": "app", "table": "t", "connection": {"port": 6432}})
    assert params == {"login_host": "db", "port": 6432, "login_user": "u", "login_db": "app"}


def test_metrics_name_each_table_and_job():
    status = {"tables": {"app/public.t": {"runway": {"partitions": 4, "seconds": 100}, "default_rows": 0,
                                          "create": {"last_success": "2026-01-01T00:00:00+00:00"}}}}
    text = metrics_text(status)
    assert 'pgfleet_partitions_runway_partitions{db="app",table="public.t"} 4' in text
    assert 'pgfleet_partitions_runway_seconds{db="app",table="public.t"} 100' in text
    assert 'pgfleet_partitions_last_success_timestamp_seconds{db="app",table="public.t",job="create"} 1767225600' \
        in text


def test_metrics_say_when_a_job_last_ran_and_failed_and_nothing_of_jobs_the_policy_does_not_ask_for():
    status = {"tables": {"app/t": {
        "create": {"last_start": "2026-01-02T00:00:00+00:00", "last_result": "failed", "last_error": "boom",
                   "last_success": "2026-01-01T00:00:00+00:00"},
        "retention": {"last_start": "2026-01-02T00:00:00+00:00", "last_result": "ok",
                      "last_success": "2026-01-02T00:00:00+00:00"},
        "brin": {"last_start": "2026-01-02T00:00:00+00:00", "last_result": "not_configured"}}}}
    lines = metrics_text(status).splitlines()
    assert 'pgfleet_partitions_last_run_failed{db="app",table="t",job="create"} 1' in lines
    assert 'pgfleet_partitions_last_run_failed{db="app",table="t",job="retention"} 0' in lines
    assert 'pgfleet_partitions_last_run_timestamp_seconds{db="app",table="t",job="create"} 1767312000' in lines
    assert 'pgfleet_partitions_last_success_timestamp_seconds{db="app",table="t",job="create"} 1767225600' in lines
    assert not [line for line in lines if 'job="brin"' in line]


BAD_CONFIGS = [
    pytest.param("tables: [", "is not JSON", id="YAML that is not JSON"),
    pytest.param(json.dumps({"tables": [{"db": "x"}]}), "needs 'db' and 'table'", id="an item without a table"),
    pytest.param(json.dumps([]), "must hold an object", id="a list instead of an object"),
]


@pytest.mark.parametrize("text, message", BAD_CONFIGS)
def test_bad_policy_files_are_refused(tmp_path, text, message):
    path = tmp_path / "policy.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(path))


def test_a_held_lock_is_waited_for_then_given_up(tmp_path):
    path = str(tmp_path / "lock")
    ticks = iter(range(100))
    with exclusive_lock(path, 10) as first:
        with exclusive_lock(path, 3, clock=lambda: next(ticks), sleep=lambda seconds: None) as second:
            assert first is True and second is False
    with exclusive_lock(path, 0) as again:
        assert again is True


class FakeDatabase:
    """Stands for a connection: whether it was closed, and the statements recorded on it."""

    def __init__(self, params):
        self.params, self.closed, self.queries = params, False, []

    def close(self):
        self.closed = True


def test_tables_with_the_same_connection_settings_share_one_connection_and_a_failed_one_is_replaced():
    sessions = Sessions(opener=FakeDatabase)
    first = sessions.get({"login_db": "app", "port": 5432})
    first.queries.append("CREATE TABLE ...")
    assert sessions.get({"port": 5432, "login_db": "app"}) is first
    assert first.queries == [], "a table's result must not list the statements of the table before it"
    other = sessions.get({"login_db": "other", "port": 5432})
    assert other is not first
    sessions.discard(first)
    assert first.closed and not other.closed
    fresh = sessions.get({"login_db": "app", "port": 5432})
    assert fresh is not first and not fresh.closed
    sessions.close()
    assert fresh.closed and other.closed and sessions.open == {}
