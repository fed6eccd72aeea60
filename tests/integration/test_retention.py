"""postgres_partition_retention against real servers: what expires, verified backups, failures that leave the
partition attached, archive, writers never blocked, interrupted runs completed, refusals without side effects."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pwd
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import servers
from tests.support.collection import REPO
from tests.support.polling import wait_for
from ansible_collections.pgfleet.partitions.plugins.module_utils._db import catalog
from ansible_collections.pgfleet.partitions.plugins.module_utils._retention.plan import DROP_MARKER

MODULE = "postgres_partition_retention"
REFERENCE = "2025-01-15"


def monthly_set(pg, first="2022-01-01", months=36, rows_per_month=3, table="events", default=False):
    """A timestamptz set with one partition per month from `first`, each holding a few rows."""
    pg.sql(f"""
        CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL, payload text,
                              PRIMARY KEY (id, at)) PARTITION BY RANGE (at)""")
    pg.sql(f"""
        DO $$
        DECLARE start date;
        BEGIN
          FOR i IN 0 .. {months - 1} LOOP
            start := date '{first}' + make_interval(months => i);
            EXECUTE format('CREATE TABLE %I PARTITION OF {table} FOR VALUES FROM (%L) TO (%L)',
                           '{table}_' || to_char(start, 'YYYY_MM'), start::timestamptz,
                           (start + interval '1 month')::timestamptz);
          END LOOP;
        END $$""")
    if default:
        pg.sql(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    pg.sql(f"""
        INSERT INTO {table} (at, payload)
        SELECT date '{first}' + make_interval(months => m) + make_interval(mins => r * 20),
               'row ' || m || '/' || r || E' with a tab\\t, a quote '' and a newline\\n' || md5(random()::text)
        FROM generate_series(0, {months - 1}) m, generate_series(1, {rows_per_month}) r""")


def attached(pg, table="events"):
    """{partition name: detach pending} of the set, as the catalog says."""
    return dict(pg.sql("SELECT c.relname::text, i.inhdetachpending FROM pg_inherits i "
                       "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass", (table,)))


def months(year_from, month_from, count, table="events"):
    names, index = [], year_from * 12 + month_from - 1
    for offset in range(count):
        names.append("%s_%04d_%02d" % (table, (index + offset) // 12, (index + offset) % 12 + 1))
    return names


def run(module_runner, pg, check_mode=False, diff=False, **args):
    args.setdefault("table", "events")
    return module_runner(MODULE, pg.params(**args), check_mode=check_mode, diff=diff)


def tools(pg):
    return {"pg_dump_path": str(pg.server.bin_dir / "pg_dump")}


def rows_of(pg, relation):
    return pg.sql(f"SELECT id, at, payload FROM {relation} ORDER BY id")


def test_partitions_wholly_before_the_cutoff_go_and_a_second_run_changes_nothing(pg, module_runner):
    monthly_set(pg)
    expired = months(2022, 1, 12)
    before = attached(pg)

    preview = run(module_runner, pg, check_mode=True, diff=True, retention="24 months", reference_time=REFERENCE)
    assert preview["changed"] is True
    assert preview["dropped"] == ["public.%s" % name for name in expired]
    assert preview["cutoff"] == "2023-01-15T00:00:00+00:00"
    assert preview["kept"] == 24 and preview["concurrently"] is True
    assert attached(pg) == before, "check mode changed the catalog"
    listing, statements = preview["diff"]
    assert "events_2022_12" in listing["before"] and "events_2022_12" not in listing["after"]
    assert "DROP TABLE" in statements["after"] and statements["after"].count(";\n") == len(preview["queries"])

    result = run(module_runner, pg, retention="24 months", reference_time=REFERENCE)
    assert result["changed"] is True, result
    assert result["dropped"] == preview["dropped"]
    assert result["queries"] == preview["queries"], "check mode must list what a real run executes"
    assert set(attached(pg)) == set(before) - set(expired)
    assert "events_2023_01" in attached(pg), "the partition straddling the cutoff must stay"
    assert pg.value("SELECT count(*) FROM pg_class WHERE relname = ANY (%s)", (expired,)) == 0
    assert result["kept"] == 24

    again = run(module_runner, pg, retention="24 months", reference_time=REFERENCE)
    assert again["changed"] is False and again["queries"] == [] and again["dropped"] == []


def test_dumps_restore_to_the_same_rows_and_checksums_match(pg, module_runner, tmp_path):
    monthly_set(pg, first="2024-04-01", months=10, rows_per_month=20)
    expired = months(2024, 4, 3)
    saved = {name: rows_of(pg, name) for name in expired}
    oids = [pg.value("SELECT %s::regclass::oid::int", (name,)) for name in expired]
    backup_dir = tmp_path / "backups"

    result = run(module_runner, pg, retention="6 months", reference_time=REFERENCE, backup_dir=str(backup_dir),
                 **tools(pg))

    assert result["changed"] is True and result["dropped"] == ["public.%s" % n for n in expired], result
    directory = backup_dir / pg.name
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700 and stat.S_IMODE(directory.stat().st_mode) == 0o700
    manifest = [json.loads(line) for line in (directory / "manifest.jsonl").read_text().splitlines()]
    assert [entry["partition"] for entry in manifest] == ["public.%s" % n for n in expired]
    assert stat.S_IMODE((directory / "manifest.jsonl").stat().st_mode) == 0o600
    for record, entry, name, oid in zip(result["backups"], manifest, expired, oids):
        dump = Path(record["path"])
        assert dump.parent == directory and dump.name.startswith(f"public.{name}.{oid}.") and dump.suffix == ".dump"
        assert entry["file"] == dump.name and entry["oid"] == oid
        assert stat.S_IMODE(dump.stat().st_mode) == 0o600
        assert record["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest() == entry["sha256"]
        assert Path(f"{dump}.sha256").read_text() == f"{record['sha256']}  {dump.name}\n"
        assert record["rows"] == entry["rows"] == 20 and record["bytes"] == dump.stat().st_size
        assert entry["lower"].startswith("2024-") and entry["parent"] == "public.events"

        scratch = f"{pg.name}_{name}"
        pg.server.psql(f"CREATE DATABASE {scratch} TEMPLATE template0")
        try:
            restore = pg.server.bin_dir / "pg_restore"
            listing = subprocess.run([str(restore), "-l", str(dump)], check=True, capture_output=True, text=True)
            entries = tmp_path / f"{name}.list"
            entries.write_text("".join(line + "\n" for line in listing.stdout.splitlines() if "ATTACH" not in line))
            subprocess.run([str(restore), "-h", pg.server.socket_dir, "-p", str(pg.server.port), "-U", "postgres",
                            "-d", scratch, "--exit-on-error", "-L", str(entries), str(dump)], check=True,
                           capture_output=True)
            copy = dataclasses.replace(pg, name=scratch)
            assert rows_of(copy, name) == saved[name] and len(saved[name]) == 20
        finally:
            pg.server.psql(f"DROP DATABASE {scratch} WITH (FORCE)")


@pytest.fixture
def tiny_mount(tmp_path):
    """Directories on tiny tmpfs mounts (options given per test), unmounted afterwards."""
    mounted = []

    def mount(options):
        target = tmp_path / f"mount{len(mounted)}"
        target.mkdir()
        completed = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True,
                                   check=False)
        if completed.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {completed.stderr.decode().strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], check=False)


def fake_pg_dump(directory, real_bin, exit_code=1, version="99.0"):
    """A pg_dump that reports a version, records its arguments and whether it got the password, and fails."""
    directory.mkdir(exist_ok=True)
    script = directory / "pg_dump"
    script.write_text(f"""#!/bin/sh
if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) {version}"; exit 0; fi
echo "$@" > "{directory}/argv"
echo "${{PGPASSWORD:+password-in-environment}}" > "{directory}/env"
echo "pg_dump: error: simulated failure" >&2
exit {exit_code}
""")
    script.chmod(0o755)
    (directory / "pg_restore").symlink_to(real_bin / "pg_restore")
    return script


FAILURES = [
    pytest.param("unwritable", "not usable", id="an unwritable backup_dir fails before the partition is touched"),
    pytest.param("full", "No space left on device", id="a full disk fails and leaves the partition attached"),
    pytest.param("pg_dump fails", "pg_dump exited with 1", id="a pg_dump exiting non-zero fails clearly"),
    pytest.param("pg_dump too old", "no pg_dump of PostgreSQL", id="a pg_dump older than the server is refused"),
]


@pytest.mark.parametrize("failure, message", FAILURES)
def test_a_backup_that_cannot_be_taken_stops_before_the_partition_is_touched(
        pg, module_runner, tmp_path, tiny_mount, failure, message):
    monthly_set(pg, first="2024-05-01", months=9, rows_per_month=1500)
    first = "events_2024_05"
    saved = rows_of(pg, first)
    args = dict(retention="6 months", reference_time=REFERENCE, **tools(pg))
    if failure == "unwritable":
        args["backup_dir"] = str(tiny_mount("size=64k,ro") / "backups")
    elif failure == "full":
        args["backup_dir"] = str(tiny_mount("size=16k,mode=0700"))
    else:
        version = "99.0" if failure == "pg_dump fails" else "13.2"
        fake = fake_pg_dump(tmp_path / "bin", pg.server.bin_dir, version=version)
        args.update(backup_dir=str(tmp_path / "backups"), pg_dump_path=str(fake), login_host="127.0.0.1",
                    login_user=servers.PASSWORD_USER, login_password=servers.PASSWORD)

    result = run(module_runner, pg, **args)

    assert result.get("failed") is True, result
    named = "public.events" if failure in ("unwritable", "pg_dump too old") else "public.events_2024_05"
    assert message in result["msg"] and named in result["msg"], result["msg"]
    assert result.get("dropped", []) == []
    assert attached(pg)[first] is False and rows_of(pg, first) == saved
    assert len(attached(pg)) == 9
    if failure == "pg_dump fails":
        argv = (tmp_path / "bin" / "argv").read_text()
        assert servers.PASSWORD not in argv and "--snapshot=" in argv
        assert (tmp_path / "bin" / "env").read_text().strip() == "password-in-environment"
        assert servers.PASSWORD not in result["msg"]
        assert not list((tmp_path / "backups" / pg.name).glob("*.dump*")), "a failed dump left files behind"
    if failure == "full":
        assert not list(Path(args["backup_dir"]).glob(f"{pg.name}/*.dump*"))


def test_a_partition_created_again_under_the_same_name_never_replaces_the_earlier_ones_dump(pg, module_runner,
                                                                                            tmp_path):
    """Dropped with a dump, created again (empty, or with other rows), dropped again: both dumps stay, each restores
    its own rows and the manifest describes each file as it is."""
    monthly_set(pg, first="2024-05-01", months=9, rows_per_month=7)
    first_rows = rows_of(pg, "events_2024_05")
    args = dict(retention="6 months", reference_time=REFERENCE, backup_dir=str(tmp_path / "backups"), **tools(pg))
    first = run(module_runner, pg, **args)
    assert "public.events_2024_05" in first["dropped"], first
    pg.sql("CREATE TABLE events_2024_05 PARTITION OF events FOR VALUES FROM ('2024-05-01') TO ('2024-06-01')")
    pg.sql("INSERT INTO events (at, payload) VALUES ('2024-05-02', 'second life')")

    second = run(module_runner, pg, **args)

    assert second["dropped"] == ["public.events_2024_05"], second
    dumps = [b for b in first["backups"] + second["backups"] if b["partition"] == "public.events_2024_05"]
    assert len(dumps) == 2 and dumps[0]["path"] != dumps[1]["path"]
    manifest = {entry["file"]: entry for entry in map(json.loads, (tmp_path / "backups" / pg.name / "manifest.jsonl")
                                                      .read_text().splitlines())}
    restore = str(pg.server.bin_dir / "pg_restore")
    for dump, count, second_life in zip(dumps, (len(first_rows), 1), (False, True)):
        path = Path(dump["path"])
        assert manifest[path.name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() == dump["sha256"]
        assert manifest[path.name]["rows"] == dump["rows"] == count
        data = subprocess.run([restore, "--data-only", "--file=-", str(path)], capture_output=True, text=True,
                              check=True).stdout
        assert ("\tsecond life\n" in data) is second_life


def test_a_row_written_after_the_dump_is_never_dropped_unseen(pg, module_runner, tmp_path):
    """A pg_dump wrapper lets a row arrive in the partition once the dump's snapshot is taken."""
    monthly_set(pg, first="2024-05-01", months=9, rows_per_month=5)
    wrapper = tmp_path / "bin" / "pg_dump"
    wrapper.parent.mkdir()
    late_insert = "INSERT INTO events (at, payload) VALUES ('2024-05-20', 'late')"
    wrapper.write_text(f"""#!/bin/sh
if [ "$1" != "--version" ]; then
  {sys.executable} -c "import psycopg; psycopg.connect('', autocommit=True).execute(\\"{late_insert}\\")"
fi
exec {pg.server.bin_dir / "pg_dump"} "$@"
""")
    wrapper.chmod(0o755)
    (tmp_path / "bin" / "pg_restore").symlink_to(pg.server.bin_dir / "pg_restore")
    args = dict(retention="6 months", reference_time=REFERENCE, backup_dir=str(tmp_path / "backups"))

    failed = run(module_runner, pg, pg_dump_path=str(wrapper), **args)

    assert failed["failed"] is True and "6 rows now but 5 in its dump" in failed["msg"], failed
    assert [b["rows"] for b in failed["backups"]] == [5] and failed["dropped"] == []
    assert pg.value("SELECT obj_description('events_2024_05'::regclass)") == DROP_MARKER % ("public", "events")
    assert pg.value("SELECT count(*) FROM events_2024_05") == 6 and "events_2024_05" not in attached(pg)

    result = run(module_runner, pg, **tools(pg), **args)
    assert result["dropped"] == ["public.events_2024_05", "public.events_2024_06"], result
    assert [b["rows"] for b in result["backups"]] == [6, 5]


def test_a_row_swapped_for_another_after_the_dump_is_never_dropped_unseen(pg, module_runner, tmp_path):
    """Once the dump's snapshot is taken, one row arrives and another goes: the count stays, the content does not.
    The drop is refused and the new row survives; the next run dumps it and drops the partition."""
    monthly_set(pg, first="2024-05-01", months=9, rows_per_month=5)
    wrapper = tmp_path / "bin" / "pg_dump"
    wrapper.parent.mkdir()
    swap = tmp_path / "swap.py"
    swap.write_text("import psycopg\n"
                    "with psycopg.connect('', autocommit=True) as conn:\n"
                    "    conn.execute(\"INSERT INTO events (at, payload) VALUES ('2024-05-20', 'late')\")\n"
                    "    conn.execute('DELETE FROM events WHERE id = (SELECT min(id) FROM events_2024_05)')\n")
    wrapper.write_text(f"""#!/bin/sh
if [ "$1" != "--version" ] && [ ! -e {tmp_path / "swapped"} ]; then
  touch {tmp_path / "swapped"}
  {sys.executable} {swap}
fi
exec {pg.server.bin_dir / "pg_dump"} "$@"
""")
    wrapper.chmod(0o755)
    (tmp_path / "bin" / "pg_restore").symlink_to(pg.server.bin_dir / "pg_restore")
    args = dict(retention="6 months", reference_time=REFERENCE, backup_dir=str(tmp_path / "backups"))

    failed = run(module_runner, pg, pg_dump_path=str(wrapper), **args)

    assert failed["failed"] is True and "as many rows as its dump (5) but other ones" in failed["msg"], failed
    assert failed["dropped"] == []
    assert pg.value("SELECT count(*) FROM events_2024_05 WHERE payload = 'late'") == 1

    result = run(module_runner, pg, pg_dump_path=str(wrapper), **args)
    assert result["dropped"] == ["public.events_2024_05", "public.events_2024_06"], result
    dump = next(b for b in result["backups"] if b["partition"] == "public.events_2024_05")
    restored = subprocess.run([str(pg.server.bin_dir / "pg_restore"), "--data-only", "--file=-", dump["path"]],
                              capture_output=True, text=True, check=True).stdout
    assert "\tlate\n" in restored


def test_a_backup_directory_that_is_a_symbolic_link_is_refused_before_anything_changes(pg, module_runner, tmp_path):
    """A link planted at <backup_dir>/<db> (say to /etc) was followed: its target made 0700 and written into."""
    monthly_set(pg, first="2024-05-01", months=9)
    target = tmp_path / "etc"
    target.mkdir()
    target.chmod(0o755)
    (target / "hosts").write_text("127.0.0.1 localhost\n")
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / pg.name).symlink_to(target)
    before = attached(pg)

    result = run(module_runner, pg, retention="6 months", reference_time=REFERENCE, backup_dir=str(backups),
                 **tools(pg))

    assert result["failed"] is True and "is a symbolic link" in result["msg"], result
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert sorted(path.name for path in target.iterdir()) == ["hosts"]
    assert attached(pg) == before and result["dropped"] == []


def test_detach_moves_partitions_into_the_archive_schema_and_tablespace(pg, module_runner):
    monthly_set(pg, first="2024-05-01", months=9, rows_per_month=4)
    expired = months(2024, 5, 2)
    counts = {name: pg.value(f"SELECT count(*) FROM {name}") for name in expired}
    location = pg.server.root / f"tablespace_{pg.name}"  # the server's user must reach it; tmp_path is private
    location.mkdir()
    if pg.server.run_as:
        owner = pwd.getpwnam(pg.server.run_as)
        os.chown(location, owner.pw_uid, owner.pw_gid)
    tablespace = f"archive_{pg.name}"
    pg.sql(f"CREATE TABLESPACE {tablespace} LOCATION '{location}'")
    args = dict(retention="6 months", reference_time=REFERENCE, action="detach", archive_schema="archive",
                archive_tablespace=tablespace)
    try:
        preview = run(module_runner, pg, check_mode=True, **args)
        assert preview["detached"] == ["archive.%s" % n for n in expired]
        assert pg.value("SELECT count(*) FROM pg_namespace WHERE nspname = 'archive'") == 0

        result = run(module_runner, pg, **args)
        assert result["changed"] is True and result["detached"] == preview["detached"], result
        assert result["queries"][0] == 'CREATE SCHEMA IF NOT EXISTS "archive"'
        for name in expired:
            assert name not in attached(pg)
            relispartition, schema, space = pg.sql(
                "SELECT c.relispartition, n.nspname::text, t.spcname::text FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace "
                "WHERE c.relname = %s", (name,))[0]
            assert (relispartition, schema, space) == (False, "archive", tablespace)
            assert pg.value(f"SELECT count(*) FROM archive.{name}") == counts[name]
        assert run(module_runner, pg, **args)["changed"] is False
    finally:
        for name in expired:
            pg.sql(f"DROP TABLE IF EXISTS archive.{name}")
        pg.sql(f"DROP TABLESPACE IF EXISTS {tablespace}")


class Writer(threading.Thread):
    """Inserts into the current partition in a loop and records how long each insert took."""

    def __init__(self, pg):
        super().__init__(daemon=True)
        self.connection = pg.connect()
        self.latencies = []
        self.running = True

    def run(self):
        while self.running:
            started = time.monotonic()
            self.connection.execute("INSERT INTO events (at, payload) VALUES ('2025-01-10', 'live')")
            self.latencies.append(time.monotonic() - started)
            time.sleep(0.01)

    def stop(self):
        self.running = False
        self.join(timeout=30)
        self.connection.close()


def hold_reader(pg, seconds):
    """An open transaction that has read the parent (so it holds locks on every partition) for `seconds`."""
    reader = pg.connect()
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchall()
    timer = threading.Timer(seconds, lambda: (reader.execute("COMMIT"), reader.close()))
    timer.start()
    return timer


@pytest.mark.parametrize("concurrently, blocks_writers", [
    pytest.param("auto", False, id="a concurrent detach never blocks writers"),
    pytest.param("never", True, id="a plain drop would block them, which the measurement sees"),
])
def test_writers_are_not_blocked_while_partitions_leave(pg, module_runner, concurrently, blocks_writers):
    monthly_set(pg, first="2024-05-01", months=9, rows_per_month=2)
    writer = Writer(pg)
    writer.start()
    time.sleep(0.2)
    reader = hold_reader(pg, 2.5)
    try:
        result = run(module_runner, pg, retention="6 months", reference_time=REFERENCE, lock_timeout="1s",
                     retries=8, concurrently=concurrently)
    finally:
        reader.join()
        writer.stop()
    assert result["changed"] is True and len(result["dropped"]) == 2, result
    assert len(writer.latencies) > 50
    worst = max(writer.latencies)
    if blocks_writers:
        assert worst > 0.6, "the reader should have made the plain DROP wait with writers queued behind it"
    else:
        assert any("FINALIZE" in query for query in result["queries"]), "the reader should have made the detach wait"
        assert worst < 0.5, "a writer waited %.2fs during a concurrent detach (lock_timeout 1s)" % worst


RUNNER = """
import json, sys
from tests.support.modules import patch_module_args
from ansible_collections.pgfleet.partitions.plugins.modules import postgres_partition_retention as module
with patch_module_args(json.loads(sys.argv[1])):
    module.main()
"""


def test_a_run_killed_during_a_concurrent_detach_is_completed_by_the_next_run(pg, module_runner):
    monthly_set(pg, first="2024-05-01", months=9, rows_per_month=2)
    expired = months(2024, 5, 2)
    reader = pg.connect()
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchall()
    args = pg.params(table="events", retention="6 months", reference_time=REFERENCE, lock_timeout="60s",
                     connect_params={"application_name": "killed_run"})
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([os.environ["ANSIBLE_COLLECTIONS_PATH"], str(REPO)]))
    victim = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(args)], env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(attached(pg).values()), 30, "the detach to become pending")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    wait_for(lambda: not pg.value("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'killed_run'"),
             10, "the killed run's backend to give up")
    reader.execute("COMMIT")
    reader.close()
    assert attached(pg)[expired[0]] is True, "the killed run's backend finished the detach on its own"

    result = run(module_runner, pg, retention="6 months", reference_time=REFERENCE)

    assert result["changed"] is True and result["dropped"] == ["public.%s" % n for n in expired], result
    assert result["queries"][0].endswith("FINALIZE")
    assert not any(attached(pg).values()) and not set(expired) & set(attached(pg))
    assert pg.value("SELECT count(*) FROM pg_class WHERE relname = ANY (%s)", (expired,)) == 0


def test_a_table_detached_for_dropping_by_an_interrupted_run_is_dropped_by_the_next(pg, module_runner):
    monthly_set(pg, first="2024-05-01", months=9)
    pg.sql("COMMENT ON TABLE events_2024_05 IS '%s'" % (DROP_MARKER % ("public", "events")))
    pg.sql("ALTER TABLE events DETACH PARTITION events_2024_05")
    pg.sql("CREATE TABLE unrelated (x int)")
    pg.sql("COMMENT ON TABLE unrelated IS '%s'" % (DROP_MARKER % ("public", "other")))

    preview = run(module_runner, pg, check_mode=True, retention="6 months", reference_time=REFERENCE)
    assert preview["dropped"] == ["public.events_2024_05", "public.events_2024_06"]
    assert pg.value("SELECT count(*) FROM pg_class WHERE relname = 'events_2024_05'") == 1

    result = run(module_runner, pg, retention="6 months", reference_time=REFERENCE)
    assert result["dropped"] == preview["dropped"]
    assert pg.value("SELECT count(*) FROM pg_class WHERE relname IN ('events_2024_05', 'events_2024_06')") == 0
    assert pg.value("SELECT count(*) FROM pg_class WHERE relname = 'unrelated'") == 1


def test_check_mode_drops_nothing_and_creates_no_file(pg, module_runner, tmp_path):
    monthly_set(pg, first="2024-05-01", months=9)
    backup_dir = tmp_path / "not-yet" / "backups"
    before = attached(pg)

    result = run(module_runner, pg, check_mode=True, retention="6 months", reference_time=REFERENCE,
                 backup_dir=str(backup_dir), **tools(pg))

    assert result["changed"] is True and len(result["dropped"]) == 2
    assert [b["path"] for b in result["backups"]] == [
        str(backup_dir / pg.name / f"public.{name}.{oid}.<time of the dump>.dump")
        for name, oid in ((name, pg.value("SELECT %s::regclass::oid::int", (name,))) for name in months(2024, 5, 2))]
    assert attached(pg) == before
    assert not (tmp_path / "not-yet").exists()


@pytest.mark.parametrize("check_mode", [False, True], ids=["a real run", "check mode"])
def test_a_missing_pg_dump_fails_even_when_nothing_expires_yet(pg, module_runner, tmp_path, check_mode):
    monthly_set(pg, first="2024-12-01", months=3)
    result = run(module_runner, pg, check_mode=check_mode, retention="6 months", reference_time=REFERENCE,
                 backup_dir=str(tmp_path / "backups"), pg_dump_path=str(tmp_path / "no" / "pg_dump"))
    assert result["failed"] is True and "pg_dump_path" in result["msg"] and "not an executable" in result["msg"]
    assert not (tmp_path / "backups").exists()


def test_integer_keys_expire_below_the_highest_key(pg, module_runner):
    pg.sql("CREATE TABLE orders (id bigint NOT NULL, note text) PARTITION BY RANGE (id)")
    for lower in range(0, 10000, 1000):
        pg.sql(f"CREATE TABLE orders_p{lower} PARTITION OF orders FOR VALUES FROM ({lower}) TO ({lower + 1000})")
    pg.sql("INSERT INTO orders SELECT i, 'o' FROM generate_series(1, 9500, 7) i")

    preview = run(module_runner, pg, check_mode=True, table="orders", retention=3000, reference_time=5000)
    assert preview["cutoff"] == 2000 and preview["dropped"] == ["public.orders_p0", "public.orders_p1000"]

    result = run(module_runner, pg, table="orders", retention="3000")
    assert result["reference"] == pg.value("SELECT max(id) FROM orders")
    assert result["dropped"] == ["public.orders_p%d" % lower for lower in range(0, 6000, 1000)], result
    assert "orders_p6000" in attached(pg, "orders")


def test_the_default_stays_a_sub_partitioned_child_expires_whole_and_always_refuses_with_a_default(pg, module_runner):
    monthly_set(pg, first="2024-05-01", months=9, default=True)
    pg.sql("CREATE TABLE events_old PARTITION OF events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01') "
           "PARTITION BY RANGE (at)")
    pg.sql("CREATE TABLE events_old_h1 PARTITION OF events_old FOR VALUES FROM ('2020-01-01') TO ('2020-07-01')")

    refused = run(module_runner, pg, retention="6 months", reference_time=REFERENCE, concurrently="always")
    assert refused["failed"] is True and "default partition" in refused["msg"] and "events" in refused["msg"]
    assert len(attached(pg)) == 11

    result = run(module_runner, pg, retention="6 months", reference_time=REFERENCE)
    assert result["dropped"] == ["public.events_old", "public.events_2024_05", "public.events_2024_06"], result
    assert result["concurrently"] is False
    assert result["queries"] == ['DROP TABLE "public"."events_old"', 'DROP TABLE "public"."events_2024_05"',
                                 'DROP TABLE "public"."events_2024_06"']
    assert "events_default" in attached(pg) and "events_old" not in attached(pg)
    assert pg.value("SELECT to_regclass('events_old_h1')") is None


def test_a_hot_standby_is_left_alone(pg, module_runner, monkeypatch):
    monthly_set(pg, first="2024-05-01", months=9)
    real = catalog.read_table
    monkeypatch.setattr(catalog, "read_table", lambda *a, **k: dataclasses.replace(real(*a, **k), in_recovery=True))
    result = run(module_runner, pg, retention="6 months", reference_time=REFERENCE)
    assert result["changed"] is False and "standby" in result["skipped_reason"]
    assert len(attached(pg)) == 9


BAD_INPUT = [
    pytest.param(dict(retention=0), "more than 0", id="retention 0"),
    pytest.param(dict(retention="0 days"), "more than 0", id="retention of zero days"),
    pytest.param(dict(retention=-3), "more than 0", id="a negative retention"),
    pytest.param(dict(retention="-3 months"), "not an interval", id="a negative interval"),
    pytest.param(dict(retention="two fortnights"), "not an interval", id="an unparsable retention"),
    pytest.param(dict(retention="1 month'; DROP TABLE events; --"), "not an interval", id="SQL in the retention"),
    pytest.param(dict(retention="30"), "must be an interval", id="a bare number for a time key"),
    pytest.param(dict(table="calls"), "RANGE partitioned tables only", id="a LIST table"),
    pytest.param(dict(backup_dir="relative/backups"), "is relative", id="a relative backup_dir"),
    pytest.param(dict(table="events; DROP TABLE events"), "not a plain", id="a table carrying SQL"),
    pytest.param(dict(table='events"--'), "not a plain", id="a table carrying a quote and a comment"),
    pytest.param(dict(archive_schema="archive"), "action: detach only", id="archive_schema with action drop"),
]


@pytest.mark.parametrize("overrides, message", BAD_INPUT)
def test_bad_input_is_refused_without_side_effect(pg, module_runner, tmp_path, monkeypatch, overrides, message):
    monthly_set(pg, first="2024-05-01", months=9)
    pg.sql("CREATE TABLE calls (id int, done boolean) PARTITION BY LIST (done)")
    pg.sql("CREATE TABLE calls_open PARTITION OF calls FOR VALUES IN (false)")
    monkeypatch.chdir(tmp_path)
    before = attached(pg), attached(pg, "calls")
    args = dict(dict(retention="6 months", reference_time=REFERENCE), **overrides)

    result = run(module_runner, pg, **args)

    assert result.get("failed") is True and message in result["msg"], result
    assert result.get("queries") == []
    assert (attached(pg), attached(pg, "calls")) == before
    assert list(tmp_path.iterdir()) == []
