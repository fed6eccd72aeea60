# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the SQL every job shares: transaction control, session settings, lock timeouts,
# advisory locks and table comments. Composed with psycopg's sql module only.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import sql

BEGIN = "BEGIN"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
RESET_LOCK_TIMEOUT = "RESET lock_timeout"
# Bounds are printed in the session's TimeZone and DateStyle; fixing both makes them parse the same everywhere.
SESSION_SETTINGS = ("SET TimeZone TO 'UTC'", "SET DateStyle TO 'ISO, YMD'", "SET IntervalStyle TO 'postgres'")
REPEATABLE_READ_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


def qualified(schema: str, name: str) -> sql.Composable:
    return sql.Identifier(schema, name)


def set_role(role: str) -> sql.Composable:
    return sql.SQL("SET ROLE {}").format(sql.Identifier(role))


def set_local_lock_timeout(lock_timeout: str) -> sql.Composable:
    return sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout))


def set_lock_timeout(lock_timeout: str) -> sql.Composable:
    return sql.SQL("SET lock_timeout = {}").format(sql.Literal(lock_timeout))


def set_setting(name: str, value: str) -> sql.Composable:
    return sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value))


def try_advisory_lock(namespace: int, oid: int) -> sql.Composable:
    return sql.SQL("SELECT pg_try_advisory_lock({}, {}::oid::int4)").format(sql.Literal(namespace), sql.Literal(oid))


def advisory_unlock(namespace: int, oid: int) -> sql.Composable:
    return sql.SQL("SELECT pg_advisory_unlock({}, {}::oid::int4)").format(sql.Literal(namespace), sql.Literal(oid))


def comment_on_table(schema: str, name: str, text: Optional[str]) -> sql.Composable:
    return sql.SQL("COMMENT ON TABLE {} IS {}").format(
        qualified(schema, name), sql.Literal(text) if text is not None else sql.SQL("NULL"))


def drop_constraint(schema: str, name: str, constraint: str) -> sql.Composable:
    return sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(qualified(schema, name), sql.Identifier(constraint))
