# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the shell every module shares: validate, connect, run a job, report.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Callable

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PgfleetError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.connection import connect
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError


def run_job(module, subject: str, prepare: Callable[[], tuple], job: Callable[..., dict]) -> dict:
    """prepare() validates the options before any connection and returns job's extra arguments; then
    job(database, *arguments) runs. Engine errors become fail_json naming `subject`, with whatever the job had
    done (its `partial_result`) and the statements it ran. Returns the job's result for exit_json."""
    database = None
    try:
        arguments = prepare()
        database = connect(module.params)
        result = job(database, *arguments)
    except (PgfleetError, DatabaseError) as exc:
        failure = dict(getattr(exc, "partial_result", None) or {})
        failure.pop("diff", None)
        failure.setdefault("changed", False)
        failure["queries"] = list(database.queries) if database else []
        failure["msg"] = "%s: %s" % (subject, str(exc).strip()) if isinstance(exc, DatabaseError) else str(exc)
        module.fail_json(**failure)
    finally:
        if database is not None:
            database.close()
    if not module._diff:
        result.pop("diff", None)
    return result
