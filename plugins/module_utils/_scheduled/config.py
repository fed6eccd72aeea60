# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the scheduled runner's policy file (JSON, which is also YAML, so the runner needs
# no YAML library), its defaults, and the connection of each policy item.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import json

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PgfleetError, PlanError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.locking import (
    validate_count,
    validate_lock_timeout,
)

JOBS = ("create", "retention", "brin", "backup")
NOT_CONFIGURED = "not_configured"  # a job's last result for a table whose policy does not ask for it
CONNECTION_KEYS = ("login_user", "login_host", "login_unix_socket", "port", "ssl_mode", "ca_cert", "ssl_cert",
                   "ssl_key", "connect_params", "session_role")
DEFAULTS = {
    "status_path": "/var/lib/pgfleet/status.json",
    "lock_path": "/var/lib/pgfleet/runner.lock",
    "lock_wait_seconds": 600,
    "metrics_dir": None,
    "lock_timeout": "3s",
    "retries": 5,
}


class ConfigError(PgfleetError):
    pass


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def load_config(path: str) -> dict:
    """The policy file: JSON (which is also YAML), with defaults filled in."""
    try:
        with open(path) as handle:
            config = json.load(handle)
    except OSError as exc:
        raise ConfigError("cannot read the policy file %s: %s" % (path, exc.strerror))
    except ValueError as exc:
        raise ConfigError("the policy file %s is not JSON: %s" % (path, exc))
    if not isinstance(config, dict) or not isinstance(config.get("tables", []), list):
        raise ConfigError("the policy file %s must hold an object with a list 'tables'" % path)
    for index, item in enumerate(config.get("tables", [])):
        if not isinstance(item, dict) or not item.get("db") or not item.get("table"):
            raise ConfigError("tables[%d] in %s needs 'db' and 'table'" % (index, path))
    config = dict(DEFAULTS, **config)
    try:
        validate_lock_timeout(config["lock_timeout"])
        validate_count("retries", config["retries"])
    except PlanError as exc:
        raise ConfigError("the policy file %s: %s" % (path, exc))
    return config


def table_id(item: dict) -> str:
    return "%s/%s" % (item["db"], item["table"])


def connection_params(config: dict, item: dict) -> dict:
    """Shared connection settings, overridden per table; the database is the item's. No password: libpq reads
    it from the passfile given in connect_params, so it never appears in a command line or this file."""
    params = {key: value for key, value in (config.get("connection") or {}).items() if key in CONNECTION_KEYS}
    params.update({key: value for key, value in (item.get("connection") or {}).items() if key in CONNECTION_KEYS})
    params.setdefault("port", 5432)
    params.setdefault("login_user", "postgres")
    params["login_db"] = item["db"]
    return params
