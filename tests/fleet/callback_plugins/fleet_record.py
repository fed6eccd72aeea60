# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Records every task result and the closing per-host stats of a playbook run as JSON lines, for the fleet fault
tests (tests/fleet/test_faults.py) to assert on what each module returned on each host."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: fleet_record
type: aggregate
short_description: every task result of a run as JSON lines, for the fleet tests
description:
  - Appends one JSON object per task result (play, task, host, status, the module's result), one per failed loop
    item, and one per host at the end (the PLAY RECAP counts) to the file named by E(PGFLEET_RECORD).
requirements:
  - enabled in callbacks_enabled, and PGFLEET_RECORD set
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleet_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("PGFLEET_RECORD")
        self._play = None

    def _write(self, record):
        if self._path:
            with open(self._path, "a") as stream:
                stream.write(json.dumps(record, default=str) + "\n")

    def _result(self, result, status):
        self._write({"event": "result", "play": self._play, "task": result._task.get_name(),
                     "host": result._host.get_name(), "status": status, "result": result._result})

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def v2_runner_on_ok(self, result):
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "ignored" if ignore_errors else "failed")

    def v2_runner_item_on_failed(self, result):
        self._result(result, "item failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed):
            self._write({"event": "stats", "host": host, **stats.summarize(host)})
