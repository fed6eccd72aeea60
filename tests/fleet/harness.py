"""Helpers of the fleet fault tests: polling, and ansible-playbook runs against the fleet whose every task result the
fleet_record callback (callback_plugins/) writes down for the tests to assert on."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Run:
    """One ansible-playbook run: exit code, its output, and every task result the fleet_record callback saw."""

    name: str
    returncode: int
    output: str
    records: list

    def results(self, task: str, host: str) -> list[dict]:
        """The module results of `task` on `host` (one per loop item, or the one result), in order."""
        found = [record["result"] for record in self.records if record["event"] == "result"
                 and record["status"] != "item failed" and record["task"].endswith(task) and record["host"] == host]
        return [item for result in found for item in result.get("results", [result])]

    def statuses(self, host: str) -> list[str]:
        return [record["status"] for record in self.records if record["event"] == "result" and record["host"] == host]

    def stats(self, host: str) -> dict:
        """The PLAY RECAP counts of `host` (all zero when the run never reached it)."""
        found = [record for record in self.records if record["event"] == "stats" and record["host"] == host]
        return found[-1] if found else {"ok": 0, "changed": 0, "failures": 0, "unreachable": 0, "skipped": 0}

    def message(self, task: str) -> object:
        found = [record["result"].get("msg") for record in self.records
                 if record["event"] == "result" and record["task"].endswith(task)]
        assert found, f"{self.name}: no result of task {task!r}\n{self.tail()}"
        return found[-1]

    def failures(self) -> str:
        """Each failed task or loop item of the run: host, task and what it said."""
        return "\n".join(f"{record['host']}: {record['task']}: {record['result'].get('msg', '')}"
                         for record in self.records if record["event"] == "result"
                         and record["status"] in ("failed", "item failed"))

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


class Playbooks:
    """Starts playbooks against the fleet, as an operator would: the collection's by name (`site`), others by path."""

    def __init__(self, inventory: str):
        self.inventory = inventory

    def start(self, playbook: str, *args: str, inventory: str | None = None) -> tuple[subprocess.Popen, Path]:
        record = Path(tempfile.mkstemp(prefix="pgfleet-record-", suffix=".jsonl")[1])
        enabled = ",".join(filter(None, [os.environ.get("ANSIBLE_CALLBACKS_ENABLED"), "fleet_record"]))
        env = dict(os.environ, PGFLEET_RECORD=str(record), ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"),
                   ANSIBLE_CALLBACKS_ENABLED=enabled)
        target = playbook if playbook.endswith(".yml") else f"pgfleet.partitions.{playbook}"
        process = subprocess.Popen(["ansible-playbook", "-i", inventory or self.inventory, target, *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        return process, record

    @staticmethod
    def finish(name: str, process: subprocess.Popen, record: Path, timeout: float = 600) -> Run:
        output = process.communicate(timeout=timeout)[0]
        records = [json.loads(line) for line in record.read_text().splitlines()]
        record.unlink()
        print(f"--- {name}: exit {process.returncode}\n" + "\n".join(output.splitlines()[-12:]))
        return Run(name, process.returncode, output, records)

    def run(self, playbook: str, *args: str, name: str | None = None, inventory: str | None = None) -> Run:
        started = time.monotonic()
        run = self.finish(name or playbook, *self.start(playbook, *args, inventory=inventory))
        print(f"    ({time.monotonic() - started:.0f}s)")
        return run
