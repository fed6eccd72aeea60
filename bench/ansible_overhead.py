"""Benchmark 5: what Ansible adds around the engine.

Hosts are local aliases (`ansible_connection: local`, the bench venv's Python as the interpreter), each with its
own database holding a complete 30-day set, so the postgres_partition task has nothing to do.
- Per task on one host: bench/ansible/alternate.yml runs ping and the no-op postgres_partition task alternately,
  five times each; the bench_timer callback records each task's time on the host (start to result).
- Fleet: bench/ansible/ping.yml and partition.yml (one task each) on N = 1, 10 and 100 hosts with forks 10; the
  wall time of the ansible-playbook process, and divided by N.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import sets
from bench.harness import COLLECTIONS_ROOT, REPO, Bench, ratio, summary

NAME = "ansible_overhead"
TITLE = "Ansible overhead: the no-op postgres_partition task vs ping"
FLEET = (1, 10, 100)
FORKS = 10
DAYS = 30
PLAYBOOKS = REPO / "bench" / "ansible"
TARGET_RATIO = 1.3
FLEET_TARGET_RATIO = 1.5


def ansible_playbook() -> str:
    for candidate in (REPO / ".venv" / "bin" / "ansible-playbook", Path("/tmp/probe-venv/bin/ansible-playbook")):
        if candidate.exists():
            return str(candidate)
    raise SystemExit("ansible-playbook is in neither .venv/bin nor /tmp/probe-venv/bin: run `make venv`")


def host_name(number: int) -> str:
    return f"h{number:03d}"


def prepare_hosts(bench: Bench) -> None:
    for number in range(1, max(FLEET) + 1):
        db = bench.fresh_database(f"ansible_{host_name(number)}")
        sets.create_events(bench, db)
        sets.add_daily_partitions(bench, db, "events", [sets.today() + dt.timedelta(days=offset)
                                                        for offset in range(4 - DAYS + 1, 5)])


def write_inventory(bench: Bench, hosts: int) -> Path:
    inventory = {"all": {"children": {"bench": {
        "hosts": {host_name(n): {"bench_db": f"ansible_{host_name(n)}"} for n in range(1, hosts + 1)},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "bench_socket": bench.server.socket_dir, "bench_port": bench.server.port},
    }}}}
    path = bench.scratch / f"inventory-{hosts}.yml"
    path.write_text(json.dumps(inventory))  # JSON is YAML
    return path


def play(bench: Bench, playbook: str, hosts: int, **settings: str) -> tuple[float, list[dict]]:
    """ansible-playbook as a process: (wall seconds, per-host task timings from the bench_timer callback);
    `settings` are more ANSIBLE_* variables."""
    home = bench.scratch / "ansible-home"
    timings = bench.scratch / "timings.json"
    config = bench.scratch / "ansible.cfg"
    config.write_text("# benchmark 5: settings come from the environment\n")
    env = dict(os.environ, ANSIBLE_HOME=str(home), ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
               ANSIBLE_REMOTE_TMP=str(home / "remote-tmp"), ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_CALLBACK_PLUGINS=str(PLAYBOOKS / "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="bench_timer", ANSIBLE_FORKS=str(FORKS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_CONFIG=str(config), PGFLEET_BENCH_TIMINGS=str(timings))
    env.update(settings)
    env.pop("PYTHONPATH", None)
    started = time.perf_counter()
    done = subprocess.run([ansible_playbook(), "-i", str(write_inventory(bench, hosts)), str(PLAYBOOKS / playbook)],
                          cwd=bench.scratch, env=env, capture_output=True, text=True, timeout=900, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or "changed=1" in done.stdout:
        raise RuntimeError(f"{playbook} on {hosts} hosts: rc {done.returncode}\n{done.stdout}\n{done.stderr}")
    return elapsed, json.loads(timings.read_text())


def import_seconds(stderr: str) -> dict:
    """From `python -X importtime` output: the seconds of the top-level imports of the engine and of the rest."""
    found = {"engine": 0.0, "other": 0.0}
    for line in stderr.splitlines():
        fields = line.split("|")
        if len(fields) == 3 and fields[1].strip().isdigit() and not fields[2].startswith("  "):  # top level
            kind = "engine" if fields[2].strip().startswith("ansible_collections.") else "other"
            found[kind] += int(fields[1]) / 1e6
    return found


def payloads(bench: Bench) -> dict:
    """Each task's AnsiballZ payload, kept on the host (ANSIBLE_KEEP_REMOTE_FILES): its size, and its imports when
    run again by hand under `python -X importtime` (the same module arguments: the partition task has nothing to do)."""
    found = {}
    remote = bench.scratch / "ansible-home" / "remote-tmp"
    for kind, module in (("ping", "ping"), ("partition", "postgres_partition")):
        shutil.rmtree(remote, ignore_errors=True)
        play(bench, f"{kind}.yml", 1, ANSIBLE_KEEP_REMOTE_FILES="1")
        payload = next(remote.glob(f"*/AnsiballZ_{module}.py"))
        runs = [subprocess.run([sys.executable, "-X", "importtime", str(payload)], capture_output=True, text=True,
                               check=True, cwd=bench.scratch) for repeat in range(3)]
        imports = [import_seconds(done.stderr) for done in runs]
        found[kind] = {"bytes": payload.stat().st_size,
                       "engine_import_seconds": statistics.median(entry["engine"] for entry in imports),
                       "other_import_seconds": statistics.median(entry["other"] for entry in imports)}
    shutil.rmtree(remote, ignore_errors=True)
    return found


def run(bench: Bench, repetitions: int) -> dict:
    prepare_hosts(bench)
    play(bench, "alternate.yml", 1)  # warm: ansible's caches, the module's first compile
    per_task = {"ansible.builtin.ping": [], "pgfleet.partitions.postgres_partition": []}
    fleet_times = {(kind, hosts): [] for kind in ("ping", "partition") for hosts in FLEET}
    for repetition in range(repetitions):
        for entry in play(bench, "alternate.yml", 1)[1]:
            if entry["action"] in per_task:
                per_task[entry["action"]].append(entry["seconds"])
        for hosts in FLEET:
            for kind in ("ping", "partition"):
                fleet_times[(kind, hosts)].append(play(bench, f"{kind}.yml", hosts)[0])
    payload = payloads(bench)
    for number in range(1, max(FLEET) + 1):
        bench.server.psql(f"DROP DATABASE ansible_{host_name(number)}")
    ping, partition = (summary(per_task[action]) for action in per_task)
    task_ratio = ratio(partition, ping)
    fleet = []
    for hosts in FLEET:
        entry = {"hosts": hosts}
        for kind in ("ping", "partition"):
            entry[kind] = summary(fleet_times[(kind, hosts)])
            entry[f"{kind}_per_host"] = summary([seconds / hosts for seconds in fleet_times[(kind, hosts)]])
        entry["ratio"] = ratio(entry["partition"], entry["ping"])
        fleet.append(entry)
    largest = fleet[-1]
    return {
        "name": NAME, "title": TITLE, "repetitions": repetitions, "forks": FORKS,
        "task": {"ping": ping, "partition": partition, "ratio": task_ratio},
        "fleet": fleet, "payloads": payload,
        "targets": [
            {"text": f"Ansible: the no-op postgres_partition task at most {TARGET_RATIO}x ping (per task, one host)",
             "value": task_ratio["median"], "limit": TARGET_RATIO, "met": task_ratio["median"] <= TARGET_RATIO,
             "ratio": task_ratio},
            {"text": f"Ansible: the no-op postgres_partition playbook on a {max(FLEET)}-host local fleet (forks "
                     f"{FORKS}) within {FLEET_TARGET_RATIO}x ping's over the same hosts",
             "value": largest["ratio"]["median"], "limit": FLEET_TARGET_RATIO,
             "met": largest["ratio"]["median"] <= FLEET_TARGET_RATIO, "ratio": largest["ratio"]},
        ],
    }
