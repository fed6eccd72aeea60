# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the SQL every job shares: transaction control, session settings, lock timeouts,
# advisory locks, table comments, owners and privileges. Composed with psycopg's sql module only.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from itertools import groupby
from typing import List, Optional, Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.inheritance import Grant
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


def change_owner(schema: str, table: str, owner: str) -> sql.Composable:
    return sql.SQL("ALTER TABLE {} OWNER TO {}").format(qualified(schema, table), sql.Identifier(owner))


def _by_role(items: Sequence[Grant]):
    """(grantee, grantable) -> that role's privileges with that grant option, as one privilege list."""
    for key, group in groupby(sorted(items, key=lambda g: (g.grantee or "", g.grantable)),
                              key=lambda g: (g.grantee, g.grantable)):
        privileges = sql.SQL(", ").join(
            sql.SQL("{}{}").format(sql.SQL(item.privilege), sql.SQL(" ({})").format(sql.Identifier(item.column))
                                   if item.column else sql.SQL("")) for item in group)
        yield key[0], key[1], privileges


def _role(grantee: Optional[str]) -> sql.Composable:
    return sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC")


def grants(schema: str, table: str, items: Sequence[Grant]) -> List[sql.Composable]:
    """GRANT statements, one per role and grant option, table and column privileges together."""
    statements = []
    for grantee, grantable, privileges in _by_role(items):
        statement = sql.SQL("GRANT {} ON TABLE {} TO {}").format(privileges, qualified(schema, table), _role(grantee))
        statements.append(sql.SQL("{} WITH GRANT OPTION").format(statement) if grantable else statement)
    return statements


def revokes(schema: str, table: str, items: Sequence[Grant]) -> List[sql.Composable]:
    """REVOKE statements, one per role; a grantable item revokes the grant option only."""
    return [sql.SQL("REVOKE {}{} ON TABLE {} FROM {}").format(
        sql.SQL("GRANT OPTION FOR " if option_only else ""), privileges, qualified(schema, table), _role(grantee))
        for grantee, option_only, privileges in _by_role(items)]
