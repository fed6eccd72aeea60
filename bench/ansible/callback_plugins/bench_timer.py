# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark 5's timer: how long each task took on each host, from the moment the strategy started it for the
host to its result, written as JSON to the file named by PGFLEET_BENCH_TIMINGS when the play ends."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.started = {}
        self.timings = []

    def v2_runner_on_start(self, host, task):
        self.started[(host.get_name(), task._uuid)] = time.monotonic()

    def _record(self, result, status):
        key = (result._host.get_name(), result._task._uuid)
        started = self.started.pop(key, None)
        if started is not None:
            self.timings.append({"host": key[0], "action": result._task.action, "status": status,
                                 "seconds": time.monotonic() - started})

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["PGFLEET_BENCH_TIMINGS"], "w") as handle:
            json.dump(self.timings, handle)
