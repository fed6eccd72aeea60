# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the database driver, psycopg 3 or psycopg2, whichever is installed, and what the
# engine needs of it: psycopg's sql module, the driver's error class and an error's SQLSTATE.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import importlib
import os
from typing import Optional

# psycopg2 first when both are installed: it imports in a fifth of psycopg 3's time, which is most of what a no-op
# module run or runner pass costs. PGFLEET_DB_DRIVER (psycopg or psycopg2) puts one first where both are installed.
PREFERENCE = ("psycopg2", "psycopg")


def _load():
    chosen = os.environ.get("PGFLEET_DB_DRIVER")
    for name in sorted(PREFERENCE, key=lambda name: name != chosen):
        try:
            return name, importlib.import_module(name), importlib.import_module(name + ".sql")
        except ImportError:
            continue
    return None, None, None


DRIVER, driver, sql = _load()

__all__ = ["DRIVER", "DatabaseError", "MISSING_DRIVER_MESSAGE", "driver", "sql", "sqlstate"]

MISSING_DRIVER_MESSAGE = (
    "Neither psycopg (3) nor psycopg2 is importable by the Python that runs this module. "
    "Install one on the managed host, e.g. 'pip install psycopg[binary]' or the distribution package "
    "python3-psycopg2."
)

DatabaseError = driver.Error if driver else Exception


def sqlstate(exc: BaseException) -> Optional[str]:
    """The SQLSTATE of a driver error, or None (psycopg 3 calls it sqlstate, psycopg2 pgcode)."""
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
