"""What every benchmark shares: the bench server (PostgreSQL 15 with pg_partman and pg_stat_statements), the
collection on sys.path, the runner as a separate process, server-side statement counts, a steady-rate writer,
a long reader, and the statistics every figure is reported with."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from typing import Optional
from dataclasses import dataclass
from pathlib import Path

from tests.support import launcher, servers  # noqa: E402
# The collection measured, which the benchmarks import from here.
from tests.support.collection import COLLECTIONS_ROOT, REPO  # noqa: E402,F401  # pylint: disable=unused-import

# Durability is off on the bench server (as on the test servers): every contender runs on the same server, so the
# ratios hold; absolute DDL times on a durable server are higher for all of them. Autovacuum is off so that no
# background VACUUM summarizes BRIN ranges or takes locks behind a measurement's back.
BENCH_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.track_utility": "on",
    "pg_stat_statements.max": "20000",
    "autovacuum": "off",
    "timezone": "UTC",
    "max_wal_size": "4GB",
    "shared_buffers": "256MB",
}
PARTMAN_CONTROL = Path("/usr/share/postgresql/15/extension/pg_partman.control")


@dataclass
class Bench:
    """The bench server and a scratch directory; one per `make bench`."""

    server: servers.PgServer
    scratch: Path

    @property
    def psql_path(self) -> str:
        return str(self.server.bin_dir / "psql")

    def params(self, db: str) -> dict:
        """Connection options as the modules and the runner take them."""
        return dict(login_unix_socket=self.server.socket_dir, port=self.server.port, login_user=servers.SUPERUSER,
                    login_db=db)

    def connect(self, db: str, **kwargs):
        import psycopg

        return psycopg.connect(host=self.server.socket_dir, port=self.server.port, user=servers.SUPERUSER,
                               dbname=db, autocommit=True, **kwargs)

    def sql(self, db: str, statement: str, args=None) -> list[tuple]:
        with self.connect(db) as conn:
            cursor = conn.execute(statement, args)
            return cursor.fetchall() if cursor.description else []

    def value(self, db: str, statement: str, args=None):
        rows = self.sql(db, statement, args)
        return rows[0][0] if rows else None

    def fresh_database(self, name: str, partman: bool = False) -> str:
        self.server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.server.psql(f"CREATE DATABASE {name} TEMPLATE template0")
        if partman:
            self.sql(name, "CREATE SCHEMA partman")
            self.sql(name, "CREATE EXTENSION pg_partman SCHEMA partman")
        return name

    def psql_command(self, db: str, *arguments: str) -> list[str]:
        return [self.psql_path, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.server.socket_dir,
                "-p", str(self.server.port), "-U", servers.SUPERUSER, "-d", db, *arguments]

    def run_psql(self, db: str, *arguments: str) -> float:
        """Run psql as a separate process (what a cron job would start); its wall time in seconds."""
        started = time.perf_counter()
        subprocess.run(self.psql_command(db, *arguments), check=True, capture_output=True, text=True, timeout=900)
        return time.perf_counter() - started

    def write_policy(self, name: str, tables: list[dict], **settings) -> Path:
        """A runner policy file (docs/runner.md) in the scratch directory."""
        directory = self.scratch / name
        directory.mkdir(parents=True, exist_ok=True)
        config = dict(status_path=str(directory / "status.json"), lock_path=str(directory / "runner.lock"),
                      lock_wait_seconds=5, metrics_dir=None,
                      connection=dict(login_unix_socket=self.server.socket_dir, port=self.server.port,
                                      login_user=servers.SUPERUSER),
                      tables=tables)
        config.update(settings)
        path = directory / "partitions.yml"
        path.write_text(json.dumps(config))
        return path

    def runner_command(self, policy: Path, *arguments: str) -> list[str]:
        return launcher.command("--config", str(policy), *arguments)

    def run_runner(self, policy: Path, *arguments: str) -> tuple[float, str]:
        """The scheduled runner as a separate process, end to end: (wall seconds, its output)."""
        started = time.perf_counter()
        done = subprocess.run(self.runner_command(policy, *arguments), capture_output=True, text=True, timeout=900,
                              env=dict(os.environ, PYTHONPATH=""), check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0 or "FAILED" in done.stdout:
            raise RuntimeError(f"runner {' '.join(arguments)} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return elapsed, done.stdout

    @contextlib.contextmanager
    def statement_counts(self, db: str):
        """Statements the server executed for `db` inside the block, from pg_stat_statements (track = all):
        yields a dict filled on exit with `round_trips` (top-level statements: what a client sent) and
        `statements` (top-level plus those run inside functions, such as pg_partman's PL/pgSQL)."""
        counts: dict = {}
        with self.connect("postgres") as conn:
            oid = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (db,)).fetchone()[0]
            conn.execute("SELECT pg_stat_statements_reset()")
            yield counts
            top, everything = conn.execute(
                "SELECT coalesce(sum(calls) FILTER (WHERE toplevel), 0), coalesce(sum(calls), 0) "
                "FROM pg_stat_statements WHERE dbid = %s", (oid,)).fetchone()
            counts.update(round_trips=int(top), statements=int(everything))


def start_bench(scratch: Path) -> Bench:
    """PostgreSQL 15 from the system packages with pg_stat_statements preloaded; pg_partman must be installed."""
    if not PARTMAN_CONTROL.exists():
        raise SystemExit(f"pg_partman for PostgreSQL 15 is missing ({PARTMAN_CONTROL}); bench/run installs it with "
                         "apt-get install -y postgresql-15-partman")
    servers.install_cleanup()
    server = servers.start_server("15", servers.SYSTEM_BIN)
    # Appended after the test settings, so these win; pg_stat_statements' own settings need a restart anyway.
    with open(server.data_dir / "postgresql.conf", "a") as conf:
        conf.writelines(f"{name} = '{value}'\n" for name, value in BENCH_SETTINGS.items())
    restarted = server._run("pg_ctl", "-D", str(server.data_dir), "-l", str(server.root / "server.log"), "-w",
                            "-t", "60", "restart", check=False)
    if restarted.returncode != 0:
        raise RuntimeError(f"the bench server did not restart: {restarted.stderr}")
    server.psql("CREATE EXTENSION pg_stat_statements")
    return Bench(server, scratch)


# Statistics: every figure is a median with its spread (min-max), samples kept in the order they were taken.

def summary(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "n": len(samples),
            "samples": list(samples)}


def ratio(numerator: dict, denominator: dict) -> dict:
    """The ratio of two measurements taken in the same repetitions: the median and range of the per-repetition
    ratios (each pair ran close together, so a load burst on the machine hits both sides of a pair)."""
    pairs = [top / bottom for top, bottom in zip(numerator["samples"], denominator["samples"])]
    return {"median": statistics.median(pairs), "low": min(pairs), "high": max(pairs), "pairs": pairs}


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[index]


# Production-impact machinery: a writer at a steady rate in its own process, and a reader holding a transaction.

WRITER_NAME = "pgfleet-bench-writer"


class Writer:
    """INSERTs at a steady rate in a separate process (bench/writer.py) until the block ends; latencies measured
    from each insert's scheduled time, on the wall clock so they line up with what the main process records."""

    def __init__(self, bench: Bench, db: str, statement: str, rate: float):
        dsn = dict(host=bench.server.socket_dir, port=bench.server.port, user=servers.SUPERUSER, dbname=db,
                   application_name=WRITER_NAME)
        self.arguments = [sys.executable, str(Path(__file__).with_name("writer.py")),
                          json.dumps(dict(dsn=dsn, statement=statement, rate=rate))]
        self.samples: list[tuple[float, float]] = []

    def __enter__(self) -> "Writer":
        self.process = subprocess.Popen(self.arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            self.process.kill()
            raise RuntimeError("the writer did not start")
        return self

    def __exit__(self, *exc) -> None:
        output = self.process.communicate(timeout=600)[0]
        if self.process.returncode != 0:
            raise RuntimeError(f"the writer failed ({self.process.returncode})")
        self.samples = [tuple(sample) for sample in json.loads(output)]


class Reader(threading.Thread):
    """A transaction that reads the table (the rows matching `condition`, where given) and then stays open `hold`
    seconds (a report, a dump)."""

    def __init__(self, bench: Bench, db: str, table: str, hold: float, condition: Optional[str] = None,
                 application_name: Optional[str] = None):
        super().__init__(daemon=True)
        self.bench, self.db, self.table, self.hold = bench, db, table, hold
        self.condition, self.application_name = condition, application_name
        self.reading = threading.Event()
        self.ended = None

    def run(self) -> None:
        names = {"application_name": self.application_name} if self.application_name else {}
        with self.bench.connect(self.db, **names) as conn:
            conn.execute("BEGIN")
            conn.execute(f"SELECT count(*) FROM {self.table}" + (f" WHERE {self.condition}" if self.condition else ""))
            self.reading.set()
            time.sleep(self.hold)
            conn.execute("COMMIT")
            self.ended = time.time()


class Watcher(threading.Thread):
    """A daemon thread that a with-block runs: started on entry, asked to stop (`halt`) and joined on exit."""

    def __init__(self):
        super().__init__(daemon=True)
        self.halt = threading.Event()

    def __enter__(self) -> "Watcher":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.halt.set()
        self.join()


class LockWatch(Watcher):
    """Polls pg_stat_activity every few milliseconds while it runs: did the writer wait for a lock, how long at
    most in one go, how long in all. A stall is that: a writer queued behind a lock, not a busy CPU."""

    def __init__(self, bench: Bench, db: str, interval: float = 0.005):
        super().__init__()
        self.bench, self.db, self.interval = bench, db, interval
        self.longest = self.total = 0.0

    def run(self) -> None:
        waiting_since = previous = None
        with self.bench.connect(self.db) as conn:
            while not self.halt.is_set():
                waiting = conn.execute("SELECT coalesce(bool_or(wait_event_type = 'Lock'), false) "
                                       "FROM pg_stat_activity WHERE application_name = %s",
                                       (WRITER_NAME,)).fetchone()[0]
                now = time.monotonic()
                if waiting:
                    waiting_since = waiting_since or now
                    if previous is not None:
                        self.total += now - previous
                    self.longest = max(self.longest, now - waiting_since)
                    previous = now
                else:
                    waiting_since = previous = None
                time.sleep(self.interval)

    def facts(self) -> dict:
        return {"lock_wait_longest_ms": self.longest * 1000, "lock_wait_total_ms": self.total * 1000}


def latency_window(samples: list[tuple[float, float]], start: float, end: float) -> dict:
    """Max and p99 of the inserts scheduled in [start, end], in milliseconds."""
    latencies = [latency * 1000 for scheduled, latency in samples if start <= scheduled <= end]
    return {"p99_ms": percentile(latencies, 0.99), "max_ms": max(latencies), "median_ms": statistics.median(latencies),
            "inserts": len(latencies)}


def binned_max(points: list[tuple[float, float]], width: float = 0.05) -> list[tuple[float, float]]:
    """The worst latency in each `width`-second bin of a timeline: what the plots draw, and small enough to keep."""
    bins: dict[int, float] = {}
    for second, latency in points:
        key = int(second // width)
        bins[key] = max(bins.get(key, 0.0), latency)
    return [(round(key * width, 3), bins[key]) for key in sorted(bins)]


def remove_scratch(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
