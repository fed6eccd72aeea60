# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the engine's exceptions; only modules turn them into fail_json.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class PgfleetError(Exception):
    """Base of every error the engine raises on purpose; its message is meant for the user.

    A job that fails part way sets `partial_result` to what it had done, so the module can report it.
    """

    partial_result = None


class DriverMissing(PgfleetError):
    pass


class ConnectError(PgfleetError):
    pass


class CatalogError(PgfleetError):
    pass


class PlanError(PgfleetError):
    pass


class LockBusy(PgfleetError):
    pass


class ExecutionError(PgfleetError):
    pass


class BackupError(PgfleetError):
    pass
