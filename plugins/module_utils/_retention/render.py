# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the SQL of retention, composed with psycopg's sql module only.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import TableState
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import sql
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.render import comment_on_table, qualified
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.plan import Operation

_DETACH_MODES = {"detach": None, "detach_concurrently": "CONCURRENTLY", "finalize": "FINALIZE"}


def _detach_partition(state: TableState, schema: str, name: str, mode=None):
    """ALTER TABLE parent DETACH PARTITION child [CONCURRENTLY | FINALIZE]."""
    statement = sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
        qualified(state.schema, state.name), qualified(schema, name))
    return sql.SQL("{} {}").format(statement, sql.SQL(mode)) if mode else statement


def statement(state: TableState, operation: Operation, verb: str = None) -> sql.Composable:
    """The SQL of an operation (or of `verb` on the operation's table, e.g. finalize for a concurrent detach)."""
    verb = verb or operation.statement
    schema, name = operation.schema, operation.name
    if verb in _DETACH_MODES:
        return _detach_partition(state, schema, name, _DETACH_MODES[verb])
    if verb == "drop":
        return sql.SQL("DROP TABLE {}").format(qualified(schema, name))
    if verb == "set_schema":
        return sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(qualified(schema, name),
                                                              sql.Identifier(operation.argument))
    if verb == "set_tablespace":
        return sql.SQL("ALTER TABLE {} SET TABLESPACE {}").format(qualified(schema, name),
                                                                  sql.Identifier(operation.argument))
    if verb == "comment":
        return comment_on_table(schema, name, operation.argument)
    raise ValueError("unknown retention statement %r" % (verb,))


def create_schema(schema: str) -> sql.Composable:
    return sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))


def lock_exclusively(schema: str, name: str) -> sql.Composable:
    return sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(qualified(schema, name))
