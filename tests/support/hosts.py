"""A database host for the roles' and playbooks' integration tests: the paths the roles install to (/etc,
/usr/local, /var) redirected under a temporary root, an inventory pointing the roles there, ansible-playbook runs
against it (local connection), and the installed runner run as the run user."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import servers

# The host's own Python runs the runner as the unprivileged run user, and the modules too (the database tasks
# become that user), so it must be readable by that user and have psycopg: Debian's python3-psycopg2.
HOST_PYTHON = "/usr/bin/python3"
RUN_USER = "postgres"
SYSTEM_DIRS = ("etc/cron.d", "etc/systemd/system", "usr/local/bin", "usr/local/lib", "var/lib", "var/backups")
RECAP = re.compile(r"^(?P<host>\S+)\s*: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                   r"\s+failed=(?P<failed>\d+)", re.MULTILINE)


def require_host_python():
    """Skip (fail under CI) where the host Python cannot import psycopg2."""
    probe = subprocess.run([HOST_PYTHON, "-c", "import psycopg2"], capture_output=True, check=False)
    if probe.returncode != 0:
        message = f"{HOST_PYTHON} cannot import psycopg2: apt-get install python3-psycopg2"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class PlayResult:
    returncode: int
    output: str

    def recap(self, host: str = "db1") -> dict:
        for match in RECAP.finditer(self.output):
            if match.group("host") == host:
                return {key: int(value) for key, value in match.groupdict().items() if key != "host"}
        raise AssertionError(f"no PLAY RECAP line for {host} in:\n{self.output}")

    def changed(self) -> list[str]:
        """The tasks that reported a change, each with its changed lines (the default callback's output)."""
        changed, task = [], None
        for line in self.output.splitlines():
            if line.startswith("TASK ["):
                task = line.rstrip("* ")
            elif line.startswith("changed: "):
                changed.append(f"{task}: {line[:200]}")
        return changed

    def results(self, task: str) -> dict:
        """The result of a task per host (`ok: [db1 -> localhost] => {...}` lines, one-line JSON here)."""
        results, current = {}, None
        for line in self.output.splitlines():
            if line.startswith("TASK ["):
                current = line[len("TASK ["):line.index("]")].split(" : ")[-1]
            elif current == task and " => {" in line:
                host = line[line.index("[") + 1:line.index("]")].split(" -> ")[0]
                results[host] = json.loads(line[line.index(" => {") + 4:])
        assert results, f"no result of task {task!r} in:\n{self.output[-12000:]}"
        return results


@dataclass
class Host:
    """One database host (inventory name db1, group postgres) with its installed paths under `root`."""

    server: servers.PgServer | None
    policy: list
    variables: dict = field(default_factory=dict)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgfleet-host-")))
    # The controller's side (inventory, playbooks, Ansible's home), apart from the host's files.
    controller: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgfleet-controller-")))

    def __post_init__(self):
        # The run user walks into the root to reach the runner, its policy and the state directory.
        os.chmod(self.root, 0o755)
        for directory in SYSTEM_DIRS:
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        for parent in (self.root / "etc", self.root / "usr", self.root / "usr/local", self.root / "var"):
            os.chmod(parent, 0o755)

    def path(self, relative: str) -> Path:
        return self.root / relative

    @property
    def paths(self) -> dict:
        return {
            "pgfleet_partitions_lib_dir": str(self.path("usr/local/lib/pgfleet")),
            "pgfleet_partitions_runner_path": str(self.path("usr/local/bin/pgfleet-partitions")),
            "pgfleet_partitions_config_path": str(self.path("etc/pgfleet/partitions.yml")),
            "pgfleet_partitions_passfile": str(self.path("etc/pgfleet/pgpass")),
            "pgfleet_partitions_state_dir": str(self.path("var/lib/pgfleet")),
            "pgfleet_partitions_metrics_dir": str(self.path("var/lib/node_exporter")),
            "pgfleet_partitions_cron_dir": str(self.path("etc/cron.d")),
            "pgfleet_partitions_systemd_dir": str(self.path("etc/systemd/system")),
            "pgfleet_backup_dir": str(self.path("var/backups/pgfleet")),
        }

    def host_variables(self, **overrides) -> dict:
        return {
            "ansible_connection": "local",
            "ansible_python_interpreter": HOST_PYTHON,
            "ansible_become_method": "su",
            "pgfleet_partitions_python": HOST_PYTHON,
            "pgfleet_partitions_run_user": RUN_USER,
            **({"pgfleet_backup_pg_dump_path": str(self.server.bin_dir / "pg_dump")} if self.server else {}),
            **self.paths,
            "pgfleet_partitions_policy": self.policy,
            **self.variables,
            **overrides,
        }

    def write_inventory(self, extra_hosts: dict | None = None) -> Path:
        hosts = {"db1": self.host_variables(), **(extra_hosts or {})}
        inventory = self.controller / "inventory.yml"
        inventory.write_text(json.dumps({"all": {"children": {"postgres": {"hosts": hosts}}}}, indent=2))
        return inventory

    def play(self, playbook: str, *args: str, expect_failure: bool = False,
             extra_hosts: dict | None = None, wrapper: tuple[str, ...] = (),
             environment: dict | None = None) -> PlayResult:
        """Run a playbook (a path, or a FQCN such as pgfleet.partitions.site) against this host; `wrapper` is a
        command that runs ansible-playbook (its arguments) in a changed environment; `environment` replaces
        variables of the test process's environment (e.g. ANSIBLE_COLLECTIONS_PATH)."""
        inventory = self.write_inventory(extra_hosts)
        # Results as one-line JSON, which PlayResult.results reads back.
        environment = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_PIPELINING="true",
                           ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="false",
                           ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_CALLBACK_FORMAT_PRETTY="false",
                           ANSIBLE_HOME=str(self.controller / "ansible-home"), **(environment or {}))
        completed = subprocess.run(
            [*wrapper, str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), *args, playbook],
            capture_output=True, text=True, timeout=600, env=environment, cwd=self.controller, check=False,
        )
        output = completed.stdout + completed.stderr
        # The end of a failed run says what failed; verbose runs are long.
        assert (completed.returncode != 0) == expect_failure, output[-12000:]
        return PlayResult(completed.returncode, output)

    def runner_command(self, *args: str) -> list[str]:
        return ["runuser", "-u", RUN_USER, "--", str(self.path("usr/local/bin/pgfleet-partitions")),
                "--config", str(self.path("etc/pgfleet/partitions.yml")), *args]

    def runner(self, *args: str) -> subprocess.CompletedProcess:
        """The installed runner, as cron would start it: as the run user, with the launcher's Python."""
        return subprocess.run(self.runner_command(*args), capture_output=True, text=True, timeout=300, check=False)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.controller, ignore_errors=True)


def roles_play(host: Host, roles: tuple = ("maintenance", "backup")) -> Path:
    """A play applying the roles to the postgres group, on the host's controller side."""
    playbook = host.controller / "roles.yml"
    listed = "".join(f"    - role: pgfleet.partitions.{role}\n" for role in roles)
    playbook.write_text(f"- name: Roles under test\n  hosts: postgres\n  gather_facts: false\n  roles:\n{listed}")
    return playbook


# Tables of a health-data API, small: a RANGE table with three old monthly partitions holding rows (retention
# removes them, dumping each first), a RANGE table with a default partition, a date-keyed one, LIST and HASH sets.
SAMPLE_TABLES = """
CREATE TABLE raw_ingestions (id bigint GENERATED ALWAYS AS IDENTITY, received_at timestamptz NOT NULL,
    payload jsonb DEFAULT '{}', PRIMARY KEY (id, received_at)) PARTITION BY RANGE (received_at);
CREATE INDEX raw_ingestions_received_at_brin ON raw_ingestions USING brin (received_at);
CREATE TABLE heart_rate_metrics (recorded_at timestamptz NOT NULL, bpm int) PARTITION BY RANGE (recorded_at);
CREATE TABLE sleep_metrics (sleep_date date NOT NULL, minutes int) PARTITION BY RANGE (sleep_date);
CREATE TABLE appointments (id bigint, is_completed boolean NOT NULL) PARTITION BY LIST (is_completed);
CREATE TABLE appointments_by_patient (id bigint, patient_id bigint NOT NULL) PARTITION BY HASH (patient_id);
DO $$
DECLARE
    month timestamptz;
BEGIN
    FOR back IN 6..8 LOOP
        month := date_trunc('month', now() - make_interval(months => back));
        EXECUTE format('CREATE TABLE %I PARTITION OF raw_ingestions FOR VALUES FROM (%L) TO (%L)',
                       'raw_ingestions_' || to_char(month, 'YYYY_MM'), month, month + interval '1 month');
        INSERT INTO raw_ingestions (received_at)
            SELECT month + make_interval(hours => n) FROM generate_series(1, 100) AS n;
    END LOOP;
END $$;
"""


def sample_policy(dbname: str, **extra: dict) -> list[dict]:
    """The policy of the sample tables; `extra` adds keys to the item of a table, e.g. raw_ingestions={...}."""
    items = [
        {"table": "raw_ingestions", "interval": "month", "premake": 3, "backfill": 2, "backup": True, "brin": True},
        {"table": "heart_rate_metrics", "interval": "month", "premake": 3, "default_partition": True},
        {"table": "public.sleep_metrics", "interval": "month", "premake": 2},
        {"table": "appointments", "list_partitions": {"active": [False], "completed": [True]}},
        {"table": "appointments_by_patient", "hash_modulus": 4},
    ]
    return [{"db": dbname, **item, **extra.get(item["table"].rsplit(".", maxsplit=1)[-1], {})} for item in items]


def months(server: servers.PgServer, dbname: str, first: int, last: int) -> list[str]:
    """YYYY_MM of the UTC months from `first` to `last` months away from the server's now."""
    return [row[0] for row in query(server, dbname, (
        "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n), 'YYYY_MM') "
        f"FROM generate_series({first}, {last}) AS n ORDER BY n"))]


def create_database(server: servers.PgServer, name: str) -> str:
    """A database with the sample tables (for module-scoped fixtures; the `pg` fixture is per test)."""
    server.psql(f"CREATE DATABASE {name} TEMPLATE template0")
    server.psql(SAMPLE_TABLES, dbname=name)
    return name


def query(server: servers.PgServer, dbname: str, statement: str) -> list[list[str]]:
    """Rows as lists of text, through the server's psql."""
    output = server.psql(statement, dbname=dbname)
    return [line.split("|") for line in output.splitlines() if line]


def partitions_of(server: servers.PgServer, dbname: str, table: str) -> list[str]:
    return [row[0] for row in query(server, dbname, (
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        f"WHERE i.inhparent = '{table}'::regclass ORDER BY 1"))]
