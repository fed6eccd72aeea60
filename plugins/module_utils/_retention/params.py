# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: postgres_partition_retention's options as a validated RetentionPolicy; every
# refusal that needs no catalog happens here, before anything connects. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._backup.files import validate_backup_dir
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.intervals import parse_retention
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import parse_table_name
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.results import parse_reference_time
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    validate_count,
    validate_lock_timeout,
)

ACTIONS = ("drop", "detach")
CONCURRENTLY = ("auto", "always", "never")


@dataclass(frozen=True)
class RetentionPolicy:
    """The options of postgres_partition_retention, validated."""

    retention: Any  # TimeRetention or IntegerRetention
    action: str = "drop"
    concurrently: str = "auto"
    reference_time: Any = None  # datetime, date or int; None means the server's now() or max(key)
    archive_schema: Optional[str] = None
    archive_tablespace: Optional[str] = None
    backup_dir: Optional[str] = None  # absolute; dumps go to <backup_dir>/<database>/
    pg_dump_path: Optional[str] = None


def policy_from_params(params: dict) -> RetentionPolicy:
    """The validated RetentionPolicy; every refusal that needs no catalog happens here, before connecting."""
    try:
        return _policy(params)
    except PlanError as exc:
        raise PlanError("%s: %s" % (params.get("table"), exc))


def _policy(params):
    action, concurrently = params.get("action") or "drop", params.get("concurrently") or "auto"
    if action not in ACTIONS:
        raise PlanError("action %r is not one of %s" % (action, ", ".join(ACTIONS)))
    if concurrently not in CONCURRENTLY:
        raise PlanError("concurrently %r is not one of %s" % (concurrently, ", ".join(CONCURRENTLY)))
    archive = {}
    for option in ("archive_schema", "archive_tablespace"):
        if params.get(option) is not None:
            if action != "detach":
                raise PlanError("%s applies to action: detach only (action is %s)" % (option, action))
            name = parse_table_name(params[option], option)
            if name.schema is not None:
                raise PlanError("%s %r must be a plain name, without a dot" % (option, params[option]))
            archive[option] = name.name
    validate_lock_timeout(params.get("lock_timeout") or "3s")
    for option, default in (("retries", 5), ("run_lock_wait", 60)):
        validate_count(option, params.get(option, default))
    backup_dir = params.get("backup_dir")
    return RetentionPolicy(
        retention=parse_retention(params.get("retention")), action=action, concurrently=concurrently,
        reference_time=parse_reference_time(params.get("reference_time")), **archive,
        backup_dir=validate_backup_dir(backup_dir) if backup_dir is not None else None,
        pg_dump_path=params.get("pg_dump_path"),
    )
