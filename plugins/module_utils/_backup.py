# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: verified pg_dump backups of single tables (partitions), with a sha256 file and
# a JSON-lines manifest. Files are 0600, directories 0700; the password only ever travels in the environment.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Optional

from ansible_collections.pgfleet.partitions.plugins.module_utils._connection import (
    DatabaseError,
    connection_kwargs,
    sql,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._errors import BackupError, PlanError

MANIFEST = "manifest.jsonl"
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
# subprocess, not AnsibleModule.run_command: this engine runs without a module object (the scheduled runner), pg_dump
# writes straight into a file opened 0600, and pg_restore's output is streamed, never held in memory.
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")
_CHUNK = 1024 * 1024
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


@dataclass(frozen=True)
class BackupRecord:
    """One verified dump: where it is, what it holds, and its checksum."""

    partition: str  # schema.name
    path: str
    rows: int
    bytes: int
    sha256: str
    time: str  # ISO 8601, UTC, when the dump's snapshot was taken

    def facts(self):
        return asdict(self)


def validate_backup_dir(path: str) -> str:
    """An absolute directory path, refused before anything connects or is written."""
    if not isinstance(path, str) or not path.strip():
        raise PlanError("backup_dir must be a non-empty absolute path")
    if not os.path.isabs(path):
        raise PlanError("backup_dir %r is relative; give an absolute path, as the module's working directory "
                        "on the managed host is not defined" % (path,))
    return os.path.normpath(path)


def _file_safe(text):
    """A database, schema or table name as one path component: '%' and '/' escaped, never '.' or '..'."""
    escaped = text.replace("%", "%25").replace("/", "%2F")
    return escaped.replace(".", "%2E") if escaped.strip(".") == "" else escaped


def database_directory(backup_dir: str, database_name: str) -> str:
    return os.path.join(backup_dir, _file_safe(database_name))


def dump_path(directory: str, schema: str, name: str) -> str:
    """<directory>/<schema>.<table>.dump"""
    return os.path.join(directory, "%s.%s.dump" % (_file_safe(schema), _file_safe(name)))


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


def prepare_directory(directory: str) -> None:
    """Create the directory (and missing parents) 0700 and prove it writable, before any partition is touched."""
    missing = []
    path = directory
    while not os.path.isdir(path) and path != os.path.dirname(path):
        missing.append(path)
        path = os.path.dirname(path)
    try:
        for path in reversed(missing):
            os.mkdir(path, DIRECTORY_MODE)
            os.chmod(path, DIRECTORY_MODE)  # mkdir's mode passes through the umask
        os.chmod(directory, DIRECTORY_MODE)
        probe = os.path.join(directory, ".pgfleet-write-test")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE))
        os.unlink(probe)
    except OSError as exc:
        raise BackupError("backup directory %s is not usable: %s; make it writable for the user the module runs "
                          "as, or choose another backup_dir" % (directory, exc.strerror or exc))


def _open_private(path):
    if os.path.lexists(path):
        os.unlink(path)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)


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
    descriptor = _open_private(partial)
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


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_private(path, text, append=False):
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(path, flags, FILE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, FILE_MODE)


def _fsync_directory(directory):
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_quietly(*paths):
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


def dump_table(database, tools: DumpTools, environment: dict, schema: str, name: str, directory: str,
               details: Optional[dict] = None, lock_timeout: Optional[str] = None, role: Optional[str] = None,
               clock=None) -> BackupRecord:
    """Dump one table with pg_dump -Fc into directory, verify it, checksum it, and record it in the manifest.

    The row count and the dump see the same data: the count runs in a REPEATABLE READ transaction whose
    snapshot pg_dump imports (--snapshot). A failed attempt removes the files it wrote and raises BackupError;
    the manifest line is written last, so a dump listed in the manifest is a verified one.
    """
    path = dump_path(directory, schema, name)
    partial, checksum_path = path + ".partial", path + ".sha256"
    qualified = "%s.%s" % (schema, name)
    written = [partial, checksum_path + ".partial"]
    try:
        with database.transaction():
            database.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", record=False)
            if lock_timeout:
                database.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout)),
                                 record=False)
            snapshot = database.query_value("SELECT pg_export_snapshot()")
            rows = int(database.query_value(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))))
            taken = (clock or (lambda: dt.datetime.now(dt.timezone.utc)))()
            _run_pg_dump(tools, environment, schema, name, snapshot, partial, lock_timeout, role)
        _verify(tools, environment, schema, name, partial, rows)
        record = BackupRecord(partition=qualified, path=path, rows=rows, bytes=os.path.getsize(partial),
                              sha256=_sha256(partial), time=taken.isoformat())
        written += [path, checksum_path]
        os.replace(partial, path)
        _write_private(checksum_path + ".partial", "%s  %s\n" % (record.sha256, os.path.basename(path)))
        os.replace(checksum_path + ".partial", checksum_path)
        line = dict(details or {}, **record.facts())
        line["file"] = os.path.basename(path)
        _write_private(os.path.join(directory, MANIFEST), json.dumps(line, sort_keys=True) + "\n", append=True)
        _fsync_directory(directory)
        return record
    except (BackupError, OSError, DatabaseError) as exc:
        _remove_quietly(*written)
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc).strip()
        raise BackupError("backup of %s to %s failed: %s" % (qualified, path, reason))
