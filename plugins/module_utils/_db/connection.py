# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: one small database API over psycopg 3 or psycopg2, whichever is installed.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import contextlib
from typing import Any, Iterator, List, Optional, Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import ConnectError, DriverMissing
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import render
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import (
    MISSING_DRIVER_MESSAGE,
    DatabaseError,
    driver,
)


def connection_kwargs(params: dict) -> dict:
    """libpq keywords from the module's connection options; empty values are left to libpq's defaults."""
    host = params.get("login_host") or params.get("login_unix_socket") or None
    kwargs = {
        "host": host,
        "port": params.get("port"),
        "user": params.get("login_user"),
        "password": params.get("login_password") or None,
        "dbname": params.get("login_db"),
        "sslmode": params.get("ssl_mode"),
        "sslrootcert": params.get("ca_cert"),
        "sslcert": params.get("ssl_cert"),
        "sslkey": params.get("ssl_key"),
    }
    kwargs.update(params.get("connect_params") or {})
    return {key: value for key, value in kwargs.items() if value is not None}


def _scrub(message, secret):
    return message.replace(secret, "********") if secret else message


class Database(object):
    """An autocommit connection that records every statement it runs, as text, in `queries`.

    Transactions are explicit (`transaction()`), so the same code behaves the same under both drivers. Reads
    (`query`, `query_value`) belong in the catalog files; work goes through `execute` and `execute_returning`.
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.queries: List[str] = []

    def as_string(self, statement: Any) -> str:
        if isinstance(statement, str):
            return statement
        return statement.as_string(self.raw)

    def record(self, statements: Sequence[Any]) -> None:
        """Add statements to `queries` as text (work run apart from execute, or that check mode would run)."""
        self.queries.extend(self.as_string(statement) for statement in statements)

    def _run(self, statement, args, fetch):
        cursor = self.raw.cursor()
        try:
            cursor.execute(statement, args)
            return cursor.fetchall() if fetch else cursor.rowcount
        finally:
            cursor.close()

    def query(self, statement: Any, args: Any = None) -> list:
        """Run a statement that reads; its rows. Reads are not recorded in `queries`."""
        return self._run(statement, args, fetch=True)

    def query_value(self, statement: Any, args: Any = None) -> Any:
        rows = self.query(statement, args)
        return rows[0][0] if rows else None

    def execute(self, statement: Any, args: Any = None, record: bool = True) -> int:
        """Run a statement that changes something; returns the number of rows it touched."""
        if record:
            self.queries.append(self.as_string(statement))
        return self._run(statement, args, fetch=False)

    def execute_returning(self, statement: Any, args: Any = None, record: bool = True) -> Optional[tuple]:
        """Run a statement that changes something and returns a row (a function call, DML with RETURNING): the
        first row, None when there is none."""
        if record:
            self.queries.append(self.as_string(statement))
        rows = self._run(statement, args, fetch=True)
        return tuple(rows[0]) if rows else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Database"]:
        self._run(render.BEGIN, None, fetch=False)
        try:
            yield self
        except BaseException:
            self.rollback_quietly()
            raise
        self._run(render.COMMIT, None, fetch=False)

    def execute_script(self, statements: Sequence[Any]) -> int:
        """Statements without parameters, sent as one message: the server runs them in order and stops at the
        first error (the simple query protocol, which both drivers use when there are no parameters). Not
        recorded in `queries`; the caller records what it means."""
        return self._run(";\n".join(self.as_string(statement) for statement in statements), None, fetch=False)

    def rollback_quietly(self) -> None:
        try:
            self._run(render.ROLLBACK, None, fetch=False)
        except DatabaseError:
            pass

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()


def connect(params: dict) -> Database:
    """Open an autocommit connection from the module's connection options; errors never carry the password."""
    if driver is None:
        raise DriverMissing(MISSING_DRIVER_MESSAGE)
    kwargs = connection_kwargs(params)
    try:
        raw = driver.connect(**kwargs)
        raw.autocommit = True
    except DatabaseError as exc:
        where = kwargs.get("host") or "the default unix socket"
        raise ConnectError(
            "Cannot connect to PostgreSQL at %s port %s as %s: %s"
            % (where, kwargs.get("port"), kwargs.get("user"), _scrub(str(exc).strip(), kwargs.get("password")))
        )
    database = Database(raw)
    role = params.get("session_role")
    if role:
        try:
            database.execute(render.set_role(role), record=False)
        except DatabaseError as exc:
            database.close()
            raise ConnectError("Cannot switch to session_role %s: %s" % (role, str(exc).strip()))
    return database
