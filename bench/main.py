"""`make bench`: start the bench server, run the benchmarks, write bench/results/<name>.json, the plots and
docs/benchmarks.md. `--only NAME ...` runs some of them; the report is always rebuilt from every result file."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ansible_overhead
from bench import brin_refresh
from bench import create_partitions
from bench import drain
from bench import fleet_report
from bench import harness
from bench import nightly_pass
from bench import noop_maintenance
from bench import plots
from bench import production_impact
from bench import report

BENCHMARKS = {module.NAME: module
              for module in (noop_maintenance, create_partitions, production_impact, brin_refresh, ansible_overhead,
                             fleet_report, nightly_pass, drain)}
REPETITIONS = {noop_maintenance.NAME: 5, create_partitions.NAME: 4, production_impact.NAME: 4,
               brin_refresh.NAME: 4, ansible_overhead.NAME: 3, fleet_report.NAME: 5,
               nightly_pass.NAME: 3, drain.NAME: 3}
RESULTS = harness.REPO / "bench" / "results"


def collection_version() -> dict:
    """Which engine was measured: the collection's path, its commit, and its uncommitted changes to plugins/."""
    measured = harness.COLLECTIONS_ROOT / "ansible_collections" / "pgfleet" / "partitions"

    def git(*arguments: str) -> str:
        done = subprocess.run(["git", "-C", str(measured.resolve()), *arguments], capture_output=True, text=True,
                              check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    top = git("rev-parse", "--show-toplevel")
    inside = top and Path(top).resolve() == measured.resolve()
    return {"path": str(measured.resolve()), "commit": git("rev-parse", "HEAD") if inside else None,
            "uncommitted": git("status", "--porcelain", "--", "plugins").splitlines() if inside else None}


def environment(bench: harness.Bench) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
        "postgresql": bench.value("postgres", "SHOW server_version"),
        "pg_partman": harness.PARTMAN_CONTROL.read_text().split("default_version", 1)[1].split("'")[1],
        "server_settings": dict(harness.servers.SERVER_SETTINGS, **harness.BENCH_SETTINGS),
        "collection": collection_version(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--repetitions", type=int, help="override every benchmark's repetition count")
    parser.add_argument("--report-only", action="store_true", help="redraw the plots and the report from the results")
    args = parser.parse_args(argv)
    if not args.report_only:
        measure(args.only or list(BENCHMARKS), args.repetitions)
    results = [json.loads(path.read_text()) for name in BENCHMARKS
               if (path := RESULTS / f"{name}.json").exists()]
    for result in results:
        plots.draw(result)
    report.write(results)
    print(f"bench: wrote {report.REPORT.relative_to(harness.REPO)} and {len(results)} plots", flush=True)
    return 0


class LoadSampler(harness.Watcher):
    """The one-minute load average every few seconds while a benchmark runs: what the report says the machine's load
    was during it (before and after alone miss a burst in the middle)."""

    def __init__(self, interval: float = 5.0):
        super().__init__()
        self.interval, self.samples = interval, [os.getloadavg()[0]]

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            self.samples.append(os.getloadavg()[0])

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict:
        return {"median": statistics.median(self.samples), "min": min(self.samples), "max": max(self.samples),
                "n": len(self.samples), "interval_seconds": self.interval}


def measure(names: list[str], repetitions: int | None) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="pgfleet-bench-"))
    bench = harness.start_bench(scratch)
    try:
        machine = environment(bench)
        for name in names:
            started, load = time.monotonic(), os.getloadavg()
            print(f"bench: {name} ...", flush=True)
            with LoadSampler() as sampler:
                result = BENCHMARKS[name].run(bench, repetitions or REPETITIONS[name])
            result["environment"] = dict(machine, load_average_before=load, load_average_during=sampler.summary())
            result["environment"]["load_average_after"] = os.getloadavg()
            result["wall_seconds"] = round(time.monotonic() - started, 1)
            (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
            for target in result["targets"]:
                print(f"bench: {name}: {'met   ' if target['met'] else 'MISSED'} {target['text']}: "
                      f"{report.measured_text(target)}", flush=True)
            print(f"bench: {name} done in {result['wall_seconds']} s", flush=True)
    finally:
        bench.server.stop()
        harness.remove_scratch(scratch)


if __name__ == "__main__":
    sys.exit(main())
