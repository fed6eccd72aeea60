# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: one small database API over psycopg 3 or psycopg2, whichever is installed.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import contextlib

from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import ConnectError, DriverMissing

try:
    import psycopg as _driver
    from psycopg import sql

    DRIVER = "psycopg"
except ImportError:
    try:
        import psycopg2 as _driver
        from psycopg2 import sql

        DRIVER = "psycopg2"
    except ImportError:
        _driver = None
        sql = None
        DRIVER = None

MISSING_DRIVER_MESSAGE = (
    "Neither psycopg (3) nor psycopg2 is importable by the Python that runs this module. "
    "Install one on the managed host, e.g. 'pip install psycopg[binary]' or the distribution package "
    "python3-psycopg2."
)

DatabaseError = _driver.Error if _driver else Exception


def sqlstate(exc):
    """The SQLSTATE of a driver error, or None (psycopg 3 calls it sqlstate, psycopg2 pgcode)."""
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def connection_kwargs(params):
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

    Transactions are explicit (`transaction()`), so the same code behaves the same under both drivers.
    """

    def __init__(self, raw):
        self.raw = raw
        self.queries = []

    @property
    def server_version_num(self):
        return int(self.query_value("SHOW server_version_num"))

    def as_string(self, statement):
        if isinstance(statement, str):
            return statement
        return statement.as_string(self.raw)

    def _run(self, statement, args, fetch):
        cursor = self.raw.cursor()
        try:
            cursor.execute(statement, args)
            return cursor.fetchall() if fetch else cursor.rowcount
        finally:
            cursor.close()

    def query(self, statement, args=None, record=False):
        """Run a statement that returns rows; catalog reads are not recorded in `queries`, work is."""
        if record:
            self.queries.append(self.as_string(statement))
        return self._run(statement, args, fetch=True)

    def query_value(self, statement, args=None, record=False):
        rows = self.query(statement, args, record)
        return rows[0][0] if rows else None

    def execute(self, statement, args=None, record=True):
        """Run a statement that changes something; returns the number of rows it touched."""
        if record:
            self.queries.append(self.as_string(statement))
        return self._run(statement, args, fetch=False)

    @contextlib.contextmanager
    def transaction(self):
        self._run("BEGIN", None, fetch=False)
        try:
            yield self
        except BaseException:
            self.rollback_quietly()
            raise
        self._run("COMMIT", None, fetch=False)

    def execute_script(self, statements):
        """Statements without parameters, sent as one message: the server runs them in order and stops at the
        first error (the simple query protocol, which both drivers use when there are no parameters). Not
        recorded in `queries`; the caller records what it means."""
        return self._run(";\n".join(self.as_string(statement) for statement in statements), None, fetch=False)

    def rollback_quietly(self):
        try:
            self._run("ROLLBACK", None, fetch=False)
        except DatabaseError:
            pass

    def close(self):
        with contextlib.suppress(Exception):
            self.raw.close()


def connect(params):
    """Open an autocommit connection from the module's connection options; errors never carry the password."""
    if _driver is None:
        raise DriverMissing(MISSING_DRIVER_MESSAGE)
    kwargs = connection_kwargs(params)
    try:
        raw = _driver.connect(**kwargs)
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
            database.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)), record=False)
        except DatabaseError as exc:
            database.close()
            raise ConnectError("Cannot switch to session_role %s: %s" % (role, str(exc).strip()))
    return database
