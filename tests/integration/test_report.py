"""playbooks/report.yml against a real server and an unreachable host: the page names every host and table with
its state, opens in headless Chromium without a single network request, and the play fails on critical when asked.
The screenshot is kept under tests/output/report/."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO / "tests" / "output" / "report"


class Case(NamedTuple):
    months: list[int]  # offsets from the current month that get a partition
    default: bool  # with a default partition
    policy: dict  # policy item options besides db, table and interval
    state: str  # what the report says


TABLES = {
    "healthy_events": Case(list(range(-4, 5)), False, {"retention": "2 months"}, "ok"),
    "short_runway": Case(list(range(-1, 2)), False, {}, "critical"),
    "default_rows": Case(list(range(-1, 5)), True, {}, "warning"),
    "gappy": Case([-4, -3, -1, 0, 1, 2, 3, 4, 5], False, {}, "warning"),
    "never_analyzed": Case(list(range(-1, 5)), False, {}, "warning"),
    "half_indexed": Case(list(range(-1, 5)), False, {}, "warning"),
}


def create_tables(pg):
    for table, case in TABLES.items():
        pg.sql(f"CREATE TABLE {table} (id bigint, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at)")
        for offset in case.months:
            pg.sql(f"""DO $$ DECLARE lower timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC')
                                                       AT TIME ZONE 'UTC' + make_interval(months => {offset});
                       BEGIN EXECUTE format('CREATE TABLE %I PARTITION OF {table} FOR VALUES FROM (%L) TO (%L)',
                                            '{table}_' || to_char(lower AT TIME ZONE 'UTC', 'YYYY_MM'),
                                            lower, lower + interval '1 month'); END $$""")
        if case.default:
            pg.sql(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    pg.sql("INSERT INTO default_rows SELECT n, now() + interval '3 years' FROM generate_series(1, 5) AS n")
    pg.sql("INSERT INTO healthy_events SELECT n, now() - make_interval(days => n) FROM generate_series(1, 100) AS n")
    # The parent's index ON ONLY, attached in none of the partitions: the planner cannot use it anywhere.
    pg.sql("CREATE INDEX half_indexed_id_idx ON ONLY half_indexed (id)")
    # Rows the planner knows of through the partitions' own statistics, as autovacuum leaves them, but none on
    # the parent: autovacuum never analyzes a partitioned table.
    pg.sql("INSERT INTO never_analyzed SELECT n, now() FROM generate_series(1, 50) AS n")
    pg.sql("ANALYZE " + ", ".join(partition for (partition,) in pg.sql(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'never_analyzed'::regclass")))
    for table in TABLES:
        if table != "never_analyzed":
            pg.sql(f"ANALYZE {table}")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_inventory(pg, tmp_path) -> Path:
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    record = {"last_start": now, "last_success": now, "last_error": None, "last_result": "ok", "changed": False}
    status = tmp_path / "status.json"
    status.write_text(json.dumps({"updated": now, "tables": {
        f"{pg.name}/public.{table}": {"create": record, "retention": record} for table in TABLES}}))
    policy = [{"db": pg.name, "table": table, "interval": "month", **case.policy} for table, case in TABLES.items()]
    policy.append({"db": pg.name, "table": "no_such_table", "interval": "month"})
    inventory = {"postgres": {"hosts": {
        "db-local": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "pgfleet_partitions_policy": policy, "pgfleet_partitions_status_path": str(status),
            "pgfleet_partitions_db_become_user": "",
            "pgfleet_partitions_connection": {"login_unix_socket": pg.server.socket_dir, "port": pg.server.port}},
        "db-gone": {
            "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": closed_port(),
            "ansible_user": "nobody", "ansible_ssh_common_args": "-o ConnectTimeout=5 -o StrictHostKeyChecking=no",
            "pgfleet_partitions_policy": policy[:1]},
    }}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def play(inventory: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), *extra,
         "pgfleet.partitions.report"],
        capture_output=True, text=True, timeout=300, check=False,
        env=dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="false", ANSIBLE_LOCALHOST_WARNING="false",
                 ANSIBLE_NOCOLOR="true"))


def chromium() -> str:
    if shutil.which("chromium") is None:
        if os.geteuid() != 0:
            pytest.skip("chromium is missing: apt-get install -y chromium (Debian package chromium)")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), capture_output=True)
    return shutil.which("chromium")


def open_in_chromium(page: Path, screenshot: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess:
    """Headless, every host name resolving nowhere, the browser's own background traffic off, logging on stderr."""
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--disable-features=NetworkTimeServiceQuerying",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=1",
         "--window-size=1280,2600", *mode, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True)


# Chromium's own background requests, which --disable-background-networking does not stop; never the page's.
BROWSER_OWN = re.compile(r"https?://(update\.googleapis\.com/service/update2|accounts\.google\.com/ListAccounts"
                         r"|clients2\.google\.com/time/|www\.google\.com/async/folae\?)")


def page_requests(log: str) -> set[str]:
    """The network requests in a --v=1 log (every one passes NotifyBeforeURLRequest), but the browser's own."""
    return {url for url in re.findall(r"NotifyBeforeURLRequest: (\S+)", log) if not BROWSER_OWN.match(url)}


class Mark(NamedTuple):
    tag: str
    css: str | None
    host: str | None
    table: str | None
    state: str


class Marked(HTMLParser):
    """Every element carrying data-state, with its data-host and data-table, and the text of the page."""

    def __init__(self):
        super().__init__()
        self.marked, self.text = [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "data-state" in attributes:
            self.marked.append(Mark(tag, attributes.get("class"), attributes.get("data-host"),
                                    attributes.get("data-table"), attributes["data-state"]))

    def handle_data(self, data):
        self.text.append(data)


def test_report_shows_every_host_and_table_with_its_state_offline(pg, tmp_path):
    create_tables(pg)
    inventory = write_inventory(pg, tmp_path)
    page = tmp_path / "partition-report.html"

    rendered = play(inventory, "-e", f"report_path={page}")
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    source = page.read_text()

    # Self-contained: nothing that could load from elsewhere, only links inside the page.
    assert not re.search(r"https?:|//[a-z]|@import|<script|<link|<img", source, re.IGNORECASE)
    anchors = {f"#{anchor}" for anchor in re.findall(r' id="([^"]+)"', source)}
    assert set(re.findall(r"(?:href|src)=\"([^\"]*)\"", source)) <= anchors
    assert set(re.findall(r"url\(([^)]*)\)", source)) == {"#hatch-expired", "#hatch-gap"}

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTEFACTS / f"report-pg{pg.major}.png"
    dumped = open_in_chromium(page, screenshot, tmp_path / "profile-dom", "--dump-dom")
    shot = open_in_chromium(page, screenshot, tmp_path / "profile-shot", f"--screenshot={screenshot}")
    assert screenshot.stat().st_size > 10000
    shutil.copy(page, ARTEFACTS / f"report-pg{pg.major}.html")

    # No request but the page itself; the control page shows that a request of the page would be seen.
    assert page_requests(dumped.stderr) == page_requests(shot.stderr) == set()
    control = tmp_path / "control.html"
    control.write_text('<html><body><img src="http://example.invalid/x.png"></body></html>')
    assert page_requests(open_in_chromium(control, screenshot, tmp_path / "profile-control", "--dump-dom").stderr) == {
        "http://example.invalid/x.png"}

    dom = Marked()
    dom.feed(dumped.stdout)
    summary = {(mark.host, mark.table): mark.state for mark in dom.marked if mark.tag == "tr"}
    sections = {(mark.host, mark.table): mark.state for mark in dom.marked
                if mark.tag == "section" and mark.css == "table"}
    expected = {("db-local", f"{pg.name}/public.{table}"): case.state for table, case in TABLES.items()}
    assert {key: summary.get(key) for key in expected} == expected
    assert sections == expected
    assert summary[("db-local", f"{pg.name}/no_such_table")] == "critical"
    assert summary[("db-gone", "")] == "critical"
    assert [mark.state for mark in dom.marked if mark.tag == "section" and mark.css == "host"] == [
        "critical", "critical"]
    # Worst first: every critical row before every warning row, every warning before every ok.
    ranks = [{"critical": 0, "warning": 1, "ok": 2}[mark.state] for mark in dom.marked if mark.tag == "tr"]
    assert ranks == sorted(ranks)

    text = " ".join(dom.text)
    assert "host unreachable" in text
    assert "runway 1 partition (" in text
    assert "5 rows in the default partition" in text
    assert "1 gap: [" in text
    assert "default 5 rows" in text
    assert "retention cutoff" in text
    assert "the partitioned table has never been analyzed" in text
    assert "partitions without the parent's indexes: half_indexed_" in text
    expired = re.findall(r"<title>(healthy_events_\d{4}_\d{2}) \[[^<]*expires at the next retention run", source)
    assert len(expired) == 2  # the months -4 and -3 end before now - 2 months

    failing = play(inventory, "-e", f"report_path={page}", "-e", "report_fail_on_critical=true")
    assert failing.returncode != 0
    assert f"db-local {pg.name}/public.short_runway: runway 1 partition (" in failing.stdout
    assert "db-gone (host): host unreachable" in failing.stdout
