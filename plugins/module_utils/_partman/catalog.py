# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the reads of a pg_partman installation, SELECTs only: where the extension lives, its
# version, the server's time zone, and every row of its part_config (and part_config_sub) as JSON, so the 4.x and 5.x
# layouts read alike.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
from typing import List, Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import sql

_EXTENSION = ("SELECT n.nspname::text, e.extversion::text, pg_catalog.current_setting('TimeZone') "
              "FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
              "WHERE e.extname = 'pg_partman'")


def extension(database) -> Optional[Tuple[str, str, str]]:
    """(schema, version, the server's TimeZone) of pg_partman in this database, None where it is not installed."""
    rows = database.query(_EXTENSION)
    return tuple(rows[0]) if rows else None


def _rows(database, schema: str, table: str, order: str) -> List[dict]:
    statement = sql.SQL("SELECT pg_catalog.to_jsonb(c)::text FROM {} c ORDER BY c.{}").format(
        sql.Identifier(schema, table), sql.Identifier(order))
    return [json.loads(row[0]) for row in database.query(statement)]


def part_config(database, schema: str) -> List[dict]:
    """Every set pg_partman maintains, one dict per part_config row with the columns of its version."""
    return _rows(database, schema, "part_config", "parent_table")


def part_config_sub(database, schema: str) -> List[dict]:
    """The sub-partitioning templates of create_sub_parent, one dict per part_config_sub row."""
    return _rows(database, schema, "part_config_sub", "sub_parent")
