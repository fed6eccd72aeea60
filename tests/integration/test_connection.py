"""The shared connection layer against real servers: TCP and unix socket, password and trust."""

from __future__ import annotations

import pytest

from tests.support import servers
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import ConnectError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog, connection, driver
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import script_in_transaction_with_retries

ROUTES = [
    pytest.param(dict(login_host="127.0.0.1"), "trust", id="tcp with trust auth"),
    pytest.param(dict(), "trust", id="unix socket with trust auth"),
    pytest.param(dict(login_host="127.0.0.1"), "password", id="tcp with a password"),
    pytest.param(dict(), "password", id="unix socket with a password"),
]


@pytest.mark.parametrize("route, auth", ROUTES)
def test_connects_and_reports_the_server_major(pg, route, auth):
    params = pg.params(**route)
    if auth == "password":
        params.update(login_user=servers.PASSWORD_USER, login_password=servers.PASSWORD)
    database = connection.connect(params)
    try:
        assert catalog.server_version_num(database) // 10000 == pg.major
        assert database.query_value("SELECT current_database()") == pg.name
    finally:
        database.close()


@pytest.mark.parametrize("route", [dict(login_host="127.0.0.1"), dict()], ids=["tcp", "unix socket"])
def test_wrong_password_is_a_clear_error_without_the_password(pg, route):
    wrong = "Wr0ng-" + servers.PASSWORD
    params = pg.params(login_user=servers.PASSWORD_USER, login_password=wrong, **route)
    with pytest.raises(ConnectError) as raised:
        connection.connect(params)
    message = str(raised.value)
    assert "password authentication failed" in message
    assert wrong not in message and servers.PASSWORD not in message


def test_session_role_switches_the_current_user(pg):
    pg.sql("CREATE ROLE app_owner NOLOGIN")
    database = connection.connect(pg.params(session_role="app_owner"))
    try:
        assert database.query_value("SELECT current_user") == "app_owner"
    finally:
        database.close()


def test_explicit_transaction_rolls_back_on_error(pg):
    pg.sql("CREATE TABLE t (id int)")
    database = connection.connect(pg.params())
    try:
        with pytest.raises(RuntimeError):
            with database.transaction():
                database.execute("INSERT INTO t VALUES (1)")
                raise RuntimeError("boom")
        assert database.query_value("SELECT count(*) FROM t") == 0
        assert database.queries == ["INSERT INTO t VALUES (1)"]
    finally:
        database.close()


def test_a_scripted_transaction_is_one_message_all_or_nothing_and_retried_past_a_held_lock(pg):
    pg.sql("CREATE TABLE t (id int)")
    database = connection.connect(pg.params())
    try:
        # A statement that fails stops the rest; nothing of the transaction stays and the session is usable.
        with pytest.raises(driver.DatabaseError, match="division by zero"):
            script_in_transaction_with_retries(
                database, ["INSERT INTO t VALUES (1)", "SELECT 1 / 0", "INSERT INTO t VALUES (2)"], "1s", 0, "t")
        assert database.query_value("SELECT count(*) FROM t") == 0
        assert database.query_value("SELECT current_setting('transaction_isolation')") is not None
        # Another session holds the table: the first attempts time out, one after its release succeeds.
        holder = pg.connect()
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        attempts = []

        def sleep(seconds):
            attempts.append(seconds)
            if len(attempts) == 2:
                holder.execute("ROLLBACK")

        script_in_transaction_with_retries(
            database, ["INSERT INTO t VALUES (3)", "ALTER TABLE t ADD COLUMN note text"], "50ms", 5, "t", sleep=sleep)
        holder.close()
        assert len(attempts) == 2
        assert pg.sql("SELECT id, note FROM t") == [(3, None)]
        assert not database.queries  # the caller records what the script meant
    finally:
        database.close()
