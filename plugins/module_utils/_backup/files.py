# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the files of partition backups: where dumps go, the private (0700) directories and
# (0600) files they live in, written durably, checksummed, and the JSON-lines manifest that lists verified dumps.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import json
import os
from typing import Dict

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import BackupError, PlanError

MANIFEST = "manifest.jsonl"
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
_CHUNK = 1024 * 1024


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


def open_private(path: str) -> int:
    if os.path.lexists(path):
        os.unlink(path)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_private(path: str, text: str, append: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(path, flags, FILE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, FILE_MODE)


def fsync_directory(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_quietly(*paths: str) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


def read_manifest(directory: str) -> Dict[str, dict]:
    """The newest manifest line of each dump file that still exists with the size it was recorded with."""
    newest = {}
    try:
        with open(os.path.join(directory, MANIFEST)) as manifest:
            lines = [json.loads(line) for line in manifest if line.strip()]
    except (OSError, ValueError):
        return newest
    for line in lines:
        path = os.path.join(directory, line.get("file", ""))
        if os.path.isfile(path) and os.path.getsize(path) == line.get("bytes"):
            newest[line["partition"]] = line
    return newest


def append_to_manifest(directory: str, line: dict) -> None:
    """One verified dump's line, appended last, so that a dump the manifest lists is a verified one."""
    write_private(os.path.join(directory, MANIFEST), json.dumps(line, sort_keys=True) + "\n", append=True)
    fsync_directory(directory)
