from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._backup import dump
from ansible_collections.pgfleet.partitions.plugins.module_utils._backup import files
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import BackupError, PlanError


@pytest.mark.parametrize("path", ["backups", "./backups", "../x", ""], ids=repr)
def test_a_relative_backup_dir_is_refused(path):
    with pytest.raises(PlanError, match="relative|non-empty"):
        files.validate_backup_dir(path)


def test_an_absolute_backup_dir_is_normalized():
    assert files.validate_backup_dir("/var//backups/./pg/") == "/var/backups/pg"


PATHS = [
    pytest.param("public", "events_2024_01", "/b/db/public.events_2024_01.16384.20250115T030002120000Z.dump",
                 id="plain names"),
    pytest.param("we/ird", "a%b/c", "/b/db/we%2Fird.a%25b%2Fc.16384.20250115T030002120000Z.dump",
                 id="slashes and percent signs are escaped"),
]


@pytest.mark.parametrize("schema, name, expected", PATHS)
def test_dump_paths_stay_inside_the_database_directory(schema, name, expected):
    moment = dt.datetime(2025, 1, 15, 4, 0, 2, 120000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert files.dump_path("/b/db", schema, name, 16384, files.stamp(moment)) == expected


def test_each_incarnation_of_a_partition_and_each_dump_of_it_get_a_file_of_their_own():
    moment = dt.datetime(2025, 1, 15, tzinfo=dt.timezone.utc)
    paths = {files.dump_path("/b/db", "public", "events_2024_01", oid, files.stamp(when))
             for oid in (16384, 20001) for when in (moment, moment + dt.timedelta(microseconds=1))}
    assert len(paths) == 4


def test_the_manifest_lists_dumps_per_incarnation_oldest_first_and_skips_pruned_and_missing_ones(tmp_path):
    def dump(name, oid, time, size=3):
        (tmp_path / name).write_bytes(b"x" * size)
        return {"partition": "public.e", "oid": oid, "file": name, "bytes": 3, "time": time}
    lines = [dump("b", 1, "2025-02-01"), dump("a", 1, "2025-01-01"), dump("c", 2, "2025-03-01"),
             dump("short", 2, "2025-04-01", size=2), {"partition": "public.e", "oid": 2, "file": "gone", "bytes": 3,
                                                      "time": "2025-05-01"},
             {"event": "pruned", "file": "c", "partition": "public.e", "oid": 2, "time": "2025-06-01"},
             dump("legacy", None, "2024-01-01")]
    (tmp_path / files.MANIFEST).write_text("".join(json.dumps(line) + "\n" for line in lines))
    listed = files.read_manifest(str(tmp_path))
    assert {key: [line["file"] for line in value] for key, value in listed.items()} == {
        ("public.e", 1): ["a", "b"], ("public.e", 2): ["c"], ("public.e", None): ["legacy"]}


@pytest.mark.parametrize("database, expected", [("app", "/b/app"), ("..", "/b/%2E%2E"), ("a/b", "/b/a%2Fb")])
def test_the_database_directory_is_one_path_component(database, expected):
    assert files.database_directory("/b", database) == expected


def fake_run(stdout, returncode=0):
    def run(command, **kwargs):
        return subprocess.CompletedProcess(command, returncode, stdout, "")
    return run


VERSIONS = [
    pytest.param("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", 15, id="debian"),
    pytest.param("pg_dump (PostgreSQL) 18.1\n", 18, id="plain"),
    pytest.param("pg_dump (PostgreSQL) 9.6.24\n", 9, id="old numbering"),
]


@pytest.mark.parametrize("output, major", VERSIONS)
def test_the_major_version_is_read_from_version_output(output, major):
    assert dump.tool_major("pg_dump", run=fake_run(output)) == major


def test_a_binary_that_reports_no_version_is_refused():
    with pytest.raises(BackupError, match="did not report"):
        dump.tool_major("pg_dump", run=fake_run("hello\n"))


def tool(directory, name, text="#!/bin/sh\n"):
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_pg_dump_path_must_be_new_enough_and_have_pg_restore_beside_it(tmp_path):
    pg_dump = tool(tmp_path, "pg_dump")
    with pytest.raises(BackupError, match="no executable pg_restore"):
        dump.find_tools(15, pg_dump, run=fake_run("pg_dump (PostgreSQL) 16.2"))
    tool(tmp_path, "pg_restore")
    assert dump.find_tools(15, pg_dump, run=fake_run("pg_dump (PostgreSQL) 16.2")) == dump.DumpTools(
        pg_dump, str(tmp_path / "pg_restore"), 16)
    with pytest.raises(BackupError, match=r"no pg_dump of PostgreSQL 17 or newer found \(found: .*\(16\)\)"):
        dump.find_tools(17, pg_dump, run=fake_run("pg_dump (PostgreSQL) 16.2"))


def test_a_missing_pg_dump_path_is_a_clear_error(tmp_path):
    with pytest.raises(BackupError, match="not an executable file"):
        dump.find_tools(15, str(tmp_path / "nowhere" / "pg_dump"))


def test_connection_options_reach_pg_dump_through_the_environment_only():
    params = dict(login_host="db.example", port=5433, login_user="owner", login_password="s3cret", login_db="x",
                  ssl_mode="verify-full", ca_cert="/ca.pem", connect_params={"connect_timeout": 5, "keepalives": 1})
    environment = dump.libpq_environment(params, "app", base={"PATH": "/bin", "PGSERVICE": "kept"})
    assert environment == {
        "PATH": "/bin", "PGSERVICE": "kept", "PGHOST": "db.example", "PGPORT": "5433", "PGUSER": "owner",
        "PGPASSWORD": "s3cret", "PGDATABASE": "app", "PGSSLMODE": "verify-full", "PGSSLROOTCERT": "/ca.pem",
        "PGCONNECT_TIMEOUT": "5", "PGAPPNAME": "pgfleet.partitions backup",
    }


def test_directories_are_created_private_whatever_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        target = tmp_path / "new" / "db"
        files.prepare_directory(str(target))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert list(target.iterdir()) == []


def test_a_directory_path_through_a_file_is_not_usable(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(BackupError, match="not usable"):
        files.prepare_directory(str(tmp_path / "file" / "db"))


@pytest.mark.parametrize("linked", ["db", "backups"], ids=["the database directory", "backup_dir itself"])
def test_a_symbolic_link_in_the_backup_path_is_refused_and_its_target_left_alone(tmp_path, linked):
    target = tmp_path / "etc"
    target.mkdir(mode=0o755)
    (target / "passwd").write_text("root:x:0:0\n")
    backups = tmp_path / "backups"
    if linked == "db":
        backups.mkdir()
        (backups / "db").symlink_to(target)
    else:
        backups.symlink_to(target)
    with pytest.raises(BackupError, match="is a symbolic link"):
        files.prepare_directory(str(backups / "db"), str(backups))
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert sorted(path.name for path in target.iterdir()) == ["passwd"]


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a directory to another user needs root")
def test_a_directory_of_another_user_in_the_backup_path_is_refused(tmp_path):
    backups = tmp_path / "backups"
    (backups / "db").mkdir(parents=True)
    os.chown(backups / "db", 65534, 65534)
    with pytest.raises(BackupError, match="belongs to uid 65534"):
        files.prepare_directory(str(backups / "db"), str(backups))
    assert stat.S_IMODE((backups / "db").stat().st_mode) == 0o755 & ~os.umask(os.umask(0))
