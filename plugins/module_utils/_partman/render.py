# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the one statement that changes pg_partman: its automatic_maintenance for some sets.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Sequence

from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import sql


def set_automatic_maintenance(schema: str, parent_tables: Sequence[str], state: str) -> sql.Composable:
    """pg_partman's run_maintenance() skips a set whose automatic_maintenance is 'off'; nothing else changes."""
    return sql.SQL("UPDATE {} SET automatic_maintenance = {} WHERE parent_table IN ({})").format(
        sql.Identifier(schema, "part_config"), sql.Literal(state),
        sql.SQL(", ").join(sql.Literal(table) for table in parent_tables))
