# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the files of partition backups: where dumps go, the private (0700) directories and
# (0600) files they live in, written durably, checksummed, and the JSON-lines manifest that lists verified dumps.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from typing import Dict, List, Optional, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import BackupError, PlanError

MANIFEST = "manifest.jsonl"
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
_CHUNK = 1024 * 1024
# In check mode a dump's time is not known yet; its planned path says so in its place.
PLANNED_STAMP = "<time of the dump>"


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


def dump_path(directory: str, schema: str, name: str, oid: int, stamp: str) -> str:
    """<directory>/<schema>.<table>.<oid>.<stamp>.dump: a name no later dump takes, not even one of a partition that
    was dropped and created again under the same name (its oid differs) or a refresh (its time differs)."""
    return os.path.join(directory, "%s.%s.%s.%s.dump" % (_file_safe(schema), _file_safe(name), oid, stamp))


def stamp(moment: dt.datetime) -> str:
    """A dump's time as its file name carries it: UTC, to the microsecond."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def _refuse_foreign(path: str) -> None:
    """A directory of the backups must be a real directory (not a symbolic link) that the run user owns: a planted
    link would otherwise have its target made private and written into."""
    status = os.lstat(path)
    if stat.S_ISLNK(status.st_mode):
        raise BackupError("backup directory %s is not usable: it is a symbolic link, and backups are never written "
                          "through one; make it a directory of its own, or point backup_dir at the real one" % path)
    if not stat.S_ISDIR(status.st_mode):
        raise BackupError("backup directory %s is not usable: it is not a directory" % path)
    if status.st_uid != os.geteuid():
        raise BackupError("backup directory %s is not usable: it belongs to uid %d, not to the user the backups run "
                          "as (uid %d); chown it to that user or choose another backup_dir"
                          % (path, status.st_uid, os.geteuid()))


def prepare_directory(directory: str, backup_dir: Optional[str] = None) -> None:
    """Create the directory (and missing parents) 0700 and prove it writable, before any partition is touched.

    From backup_dir (by default the directory's parent) down, nothing may be a symbolic link or belong to another
    user; only directories that pass are made private."""
    backup_dir = os.path.normpath(backup_dir or os.path.dirname(directory))
    below = os.path.relpath(directory, backup_dir).split(os.sep)
    guarded = [backup_dir] if below[0] != os.pardir else []
    for part in (below if guarded and below != ["."] else []):
        guarded.append(os.path.join(guarded[-1], part))
    missing = []
    path = directory
    while not os.path.lexists(path) and path != os.path.dirname(path):
        missing.append(path)
        path = os.path.dirname(path)
    try:
        for path in guarded:
            if os.path.lexists(path):
                _refuse_foreign(path)
        for path in reversed(missing):
            os.mkdir(path, DIRECTORY_MODE)
            os.chmod(path, DIRECTORY_MODE)  # mkdir's mode passes through the umask
        os.chmod(directory, DIRECTORY_MODE)
        probe = os.path.join(directory, ".pgfleet-write-test")
        remove_quietly(probe)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE))
        os.unlink(probe)
    except OSError as exc:
        raise BackupError("backup directory %s is not usable: %s; make it writable for the user the module runs "
                          "as, or choose another backup_dir" % (directory, exc.strerror or exc))


def open_private(path: str) -> int:
    if os.path.lexists(path):
        os.unlink(path)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_private(path: str, text: str, append: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC) | os.O_NOFOLLOW
    descriptor = os.open(path, flags, FILE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, FILE_MODE)


def fsync_directory(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
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


def read_manifest(directory: str) -> Dict[Tuple[str, Optional[int]], List[dict]]:
    """The verified dumps the manifest lists whose file still exists with the size it was recorded with, oldest
    first, per partition incarnation: (schema.name, oid). Dumps written before oids were recorded have oid None.
    Lines recording a pruned dump are not dumps."""
    dumps: Dict[Tuple[str, Optional[int]], List[dict]] = {}
    try:
        with open(os.path.join(directory, MANIFEST)) as manifest:
            lines = [json.loads(line) for line in manifest if line.strip()]
    except (OSError, ValueError):
        return dumps
    for line in lines:
        path = os.path.join(directory, line.get("file", ""))
        if "event" not in line and os.path.isfile(path) and os.path.getsize(path) == line.get("bytes"):
            dumps.setdefault((line["partition"], line.get("oid")), []).append(line)
    for listed in dumps.values():
        listed.sort(key=lambda line: line.get("time", ""))
    return dumps


def prune(directory: str, line: dict, when: dt.datetime) -> None:
    """Remove one dump and its checksum file, the manifest saying so first: a dump the manifest lists as a dump
    is always there."""
    append_to_manifest(directory, {"event": "pruned", "file": line["file"], "partition": line["partition"],
                                   "oid": line.get("oid"), "time": when.isoformat()})
    path = os.path.join(directory, line["file"])
    remove_quietly(path, path + ".sha256")


def append_to_manifest(directory: str, line: dict) -> None:
    """One verified dump's line, appended last, so that a dump the manifest lists is a verified one."""
    write_private(os.path.join(directory, MANIFEST), json.dumps(line, sort_keys=True) + "\n", append=True)
    fsync_directory(directory)
