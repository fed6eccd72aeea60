# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: verified pg_dump backups of single tables (partitions): the tools, pg_dump in the
# snapshot the rows were counted in, pg_restore reading every row back, then the checksum and the manifest line
# (files.py). The password only ever travels in the environment.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any, Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._backup import files
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import BackupError
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog, render
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.connection import connection_kwargs
from ansible_collections.pgfleet.partitions.plugins.module_utils._db.driver import DatabaseError

# subprocess, not AnsibleModule.run_command: this engine runs without a module object (the scheduled runner), pg_dump
# writes straight into a file opened 0600, and pg_restore's output is streamed, never held in memory.
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")
_STDERR_TAIL = 2000

# libpq keywords that libpq also reads from the environment; pg_dump gets the connection only this way, so the
# password never appears on a command line. Keywords without a variable (e.g. keepalives) are not passed on.
LIBPQ_ENVIRONMENT = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER",
    "password": "PGPASSWORD", "passfile": "PGPASSFILE", "service": "PGSERVICE", "options": "PGOPTIONS",
    "application_name": "PGAPPNAME", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "sslcrl": "PGSSLCRL", "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI", "requirepeer": "PGREQUIREPEER", "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION", "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME", "gsslib": "PGGSSLIB", "connect_timeout": "PGCONNECT_TIMEOUT",
    "client_encoding": "PGCLIENTENCODING", "target_session_attrs": "PGTARGETSESSIONATTRS",
    "channel_binding": "PGCHANNELBINDING", "load_balance_hosts": "PGLOADBALANCEHOSTS",
}


@dataclass(frozen=True)
class DumpTools:
    pg_dump: str
    pg_restore: str
    major: int


@dataclass
class Backups:
    """What a run needs to take dumps: the tools, the directory, pg_dump's environment and role."""

    tools: DumpTools
    directory: str  # <backup_dir>/<database>
    environment: dict
    role: Optional[str] = None
    backup_dir: str = ""


@dataclass(frozen=True)
class BackupRecord:
    """One verified dump: where it is, what it holds, and its checksum."""

    partition: str  # schema.name
    path: str
    rows: int
    bytes: int
    sha256: str
    time: str  # ISO 8601, UTC, when the dump's snapshot was taken
    content_checksum: str = ""  # of the rows in the dump's snapshot (_db.catalog.rows_and_checksum)

    def facts(self) -> dict:
        return asdict(self)


def tool_major(binary: str, run=subprocess.run) -> int:
    """The major version `binary --version` reports (e.g. 15 for 'pg_dump (PostgreSQL) 15.18')."""
    try:
        completed = run(  # pylint: disable=ansible-bad-function
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackupError("cannot run %s --version: %s" % (binary, exc))
    match = _VERSION.search(completed.stdout or "")
    if completed.returncode != 0 or not match:
        raise BackupError("%s --version did not report a PostgreSQL version (exit %s): %s"
                          % (binary, completed.returncode, (completed.stdout + completed.stderr).strip()[:200]))
    return int(match.group(1))


def _candidates(server_major):
    yield "/usr/lib/postgresql/%d/bin/pg_dump" % server_major  # Debian, Ubuntu
    yield "/usr/pgsql-%d/bin/pg_dump" % server_major  # PGDG RPMs
    on_path = shutil.which("pg_dump")
    if on_path:
        yield on_path


def find_tools(server_major: int, pg_dump_path: Optional[str] = None, run=subprocess.run) -> DumpTools:
    """pg_dump (given, or found for the server's major) and the pg_restore beside it; pg_dump must be the
    server's major or newer, as an older pg_dump refuses (or misreads) a newer server."""
    candidates = [pg_dump_path] if pg_dump_path else list(_candidates(server_major))
    found = []
    for pg_dump in candidates:
        if not os.path.isfile(pg_dump) or not os.access(pg_dump, os.X_OK):
            if pg_dump_path:
                raise BackupError("pg_dump_path %s is not an executable file" % pg_dump)
            continue
        major = tool_major(pg_dump, run)
        found.append("%s (%d)" % (pg_dump, major))
        if major < server_major:
            continue
        pg_restore = os.path.join(os.path.dirname(pg_dump), "pg_restore")
        if not os.access(pg_restore, os.X_OK):
            raise BackupError("no executable pg_restore beside %s; it is needed to verify the dumps" % pg_dump)
        return DumpTools(pg_dump, pg_restore, major)
    raise BackupError(
        "no pg_dump of PostgreSQL %d or newer found (%s); install the client of the server's major version "
        "(e.g. postgresql-client-%d) or set pg_dump_path" % (
            server_major, "found: " + ", ".join(found) if found else "looked at " + ", ".join(candidates),
            server_major))


def libpq_environment(params: dict, database_name: str, base: Optional[dict] = None) -> dict:
    """The environment for pg_dump/pg_restore: the module's connection options as PG* variables."""
    environment = dict(os.environ if base is None else base)
    keywords = connection_kwargs(params)
    keywords["dbname"] = database_name
    keywords.setdefault("application_name", "pgfleet.partitions backup")
    for keyword, value in keywords.items():
        if keyword in LIBPQ_ENVIRONMENT:
            environment[LIBPQ_ENVIRONMENT[keyword]] = str(value)
    return environment


def _table_pattern(schema, name):
    """A pg_dump -t pattern that matches exactly this table (quoted, so wildcards are literal)."""
    return '"%s"."%s"' % (schema.replace('"', '""'), name.replace('"', '""'))


def _scrub(text, environment):
    secret = environment.get("PGPASSWORD")
    text = text.strip()[-_STDERR_TAIL:]
    return text.replace(secret, "********") if secret else text


def _run_pg_dump(tools, environment, schema, name, snapshot, partial, lock_timeout=None, role=None):
    command = [tools.pg_dump, "--format=custom", "--no-password", "--strict-names", "--snapshot=" + snapshot,
               "--table=" + _table_pattern(schema, name)]
    if lock_timeout:
        command.append("--lock-wait-timeout=" + lock_timeout)
    if role:
        command.append("--role=" + role)
    descriptor = files.open_private(partial)
    try:
        with os.fdopen(descriptor, "wb") as output:
            completed = subprocess.run(  # pylint: disable=ansible-bad-function
                command, stdout=output, stderr=subprocess.PIPE, env=environment, check=False)
            output.flush()
            os.fsync(output.fileno())
    except OSError as exc:
        raise BackupError("writing %s failed: %s" % (partial, exc.strerror or exc))
    if completed.returncode != 0:
        raise BackupError("pg_dump exited with %d: %s"
                          % (completed.returncode, _scrub(completed.stderr.decode("utf-8", "replace"), environment)))


def _verify(tools, environment, schema, name, partial, rows):
    """pg_restore reads the archive, finds the table's data, and streams exactly `rows` rows of it."""
    listing = subprocess.run(  # pylint: disable=ansible-bad-function
        [tools.pg_restore, "--list", partial], capture_output=True, env=environment, check=False)
    entry = " TABLE DATA %s %s " % (schema, name)
    if listing.returncode != 0 or entry not in listing.stdout.decode("utf-8", "replace"):
        raise BackupError("pg_restore --list cannot read the dump or finds no data of %s.%s in it (exit %d): %s"
                          % (schema, name, listing.returncode,
                             _scrub(listing.stderr.decode("utf-8", "replace"), environment)))
    restore = subprocess.Popen(  # pylint: disable=ansible-bad-function
        [tools.pg_restore, "--data-only", "--file=-", partial], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=environment)
    counted, in_copy = 0, False
    for line in restore.stdout:
        if in_copy:
            if line == b"\\.\n":
                in_copy = False
            else:
                counted += 1
        elif line.startswith(b"COPY "):
            in_copy = True
    stderr = restore.stderr.read().decode("utf-8", "replace")
    if restore.wait() != 0 or counted != rows:
        raise BackupError("the dump of %s.%s does not verify: pg_restore read %d rows where the table had %d "
                          "(exit %d) %s" % (schema, name, counted, rows, restore.returncode,
                                            _scrub(stderr, environment)))


def prepare(database, server_version_num: int, backup_dir: str, pg_dump_path: Optional[str],
            connection_params: dict) -> Backups:
    """Find pg_dump/pg_restore and work out the directory of this database's dumps; reads only (check mode uses it
    too), creates nothing."""
    database_name = catalog.current_database(database)
    return Backups(find_tools(server_version_num // 10000, pg_dump_path),
                   files.database_directory(backup_dir, database_name),
                   libpq_environment(connection_params, database_name), connection_params.get("session_role"),
                   backup_dir)


def dump_table(database, backups: Backups, schema: str, name: str, details: Optional[dict] = None,
               lock_timeout: Optional[str] = None, clock: Any = None) -> BackupRecord:
    """Dump one table with pg_dump -Fc into directory, verify it, checksum it, and record it in the manifest.

    The row count and the dump see the same data: the count runs in a REPEATABLE READ transaction whose
    snapshot pg_dump imports (--snapshot). The file is named for the table's oid and the snapshot's time, and is
    linked into place only where no file has that name, so no dump ever replaces another. A failed attempt removes
    the files it wrote and raises BackupError; the manifest line is written last, so a dump listed in the manifest
    is a verified one.
    """
    tools, environment, directory = backups.tools, backups.environment, backups.directory
    qualified = "%s.%s" % (schema, name)
    path, written = None, []
    try:
        with database.transaction():
            database.execute(render.REPEATABLE_READ_SNAPSHOT, record=False)
            if lock_timeout:
                database.execute(render.set_local_lock_timeout(lock_timeout), record=False)
            snapshot = catalog.export_snapshot(database)
            oid = catalog.relation_oid(database, schema, name)
            rows, content = catalog.rows_and_checksum(database, schema, name)
            taken = (clock or (lambda: dt.datetime.now(dt.timezone.utc)))()
            path = files.dump_path(directory, schema, name, oid, files.stamp(taken))
            partial, checksum_path = path + ".partial", path + ".sha256"
            written += [partial, checksum_path + ".partial"]
            _run_pg_dump(tools, environment, schema, name, snapshot, partial, lock_timeout, backups.role)
        _verify(tools, environment, schema, name, partial, rows)
        record = BackupRecord(partition=qualified, path=path, rows=rows, bytes=os.path.getsize(partial),
                              sha256=files.sha256(partial), time=taken.isoformat(), content_checksum=content)
        os.link(partial, path)  # fails where a file of that name exists: a dump is never replaced
        written.append(path)
        os.unlink(partial)
        files.write_private(checksum_path + ".partial", "%s  %s\n" % (record.sha256, os.path.basename(path)))
        os.link(checksum_path + ".partial", checksum_path)
        written.append(checksum_path)
        os.unlink(checksum_path + ".partial")
        line = dict(details or {}, **record.facts())
        line.update(file=os.path.basename(path), oid=oid)
        files.append_to_manifest(directory, line)
        return record
    except (BackupError, OSError, DatabaseError) as exc:
        files.remove_quietly(*written)
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc).strip()
        raise BackupError("backup of %s to %s failed: %s" % (qualified, path or directory, reason))
