# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the fleet partition report rendered as one self-contained HTML page: a summary
# worst first, then a section per host with a timeline per table (timeline.py). Pure: the judged rows (judge.py)
# and the time of the report come in, the HTML text goes out.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime as dt
import re
from typing import Dict, List, Sequence

from ansible_collections.pgfleet.partitions.plugins.plugin_utils._report.judge import (
    CRITICAL,
    OK,
    RANK,
    UTC,
    WARNING,
    TableReport,
    partition_count,
    runway_span,
    worst,
)
from ansible_collections.pgfleet.partitions.plugins.plugin_utils._report.timeline import (
    LEGEND,
    PATTERNS,
    escape,
    size_text,
    timeline_svg,
)

_MARK = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1b1b}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;
vertical-align:top}th{background:#eee}td.num{text-align:right}
.state{font-weight:bold;padding:1px 6px;border-radius:3px;white-space:nowrap}
.s-ok{background:#d6f0d6;color:#0b4d0b}.s-warning{background:#ffe9a8;color:#5c4100}
.s-critical{background:#f7c4c4;color:#7a0000}
section.table{border:1px solid #ccc;margin:1em 0;padding:.3em .8em}h2{margin-top:1.5em}
svg.timeline{width:100%;height:auto;max-width:960px;font-size:11px}
.p-ahead{fill:#9fc7e8;stroke:#fff}.p-current{fill:#2f6fa3;stroke:#fff}.p-past{fill:#c9d3dc;stroke:#fff}
.p-expired{fill:url(#hatch-expired);stroke:#7a0000}.p-gap{fill:url(#hatch-gap);stroke:#7a0000}
.p-default{fill:#e3e3e3;stroke:#666}.p-default-rows{fill:#f3b2b2;stroke:#7a0000;stroke-width:2}
.on-block{fill:#000}.gap-label{fill:#7a0000;font-weight:bold}.runway{stroke:#0b4d0b;stroke-width:3}
.runway-label{fill:#0b4d0b}.cutoff{stroke:#7a0000;stroke-width:2;stroke-dasharray:4 3}
.reference{stroke:#000;stroke-width:2}ul.findings{margin:.2em 0}.tick{stroke:#666}.tick-label{fill:#444}
td.nowrap{white-space:nowrap}
.legend span{margin-right:1.2em}.swatch{display:inline-block;width:1.4em;height:.9em;vertical-align:middle;
border:1px solid #666}
"""


def _state_badge(state: str) -> str:
    return '<span class="state s-%s" data-state="%s">%s</span>' % (state, state, _MARK[state])


def _findings(row: TableReport) -> str:
    return '<ul class="findings">%s</ul>' % "".join(
        '<li class="f-%s">%s %s</li>' % (finding.state, _MARK[finding.state], escape(finding.text))
        for finding in sorted(row.findings, key=lambda finding: -RANK[finding.state]))


def _table_size(row: TableReport) -> int:
    return sum(p.get("size_bytes") or 0 for p in (row.facts or {}).get("partitions") or [])


def _summary_row(row: TableReport) -> str:
    facts = row.facts or {}
    runway = facts.get("runway")
    runway_text = "" if not facts else ("%s, %s" % (partition_count(runway.get("partitions") or 0), runway_span(runway))
                                        if runway else "n/a (%s)" % facts.get("strategy"))
    default_rows = facts.get("default_rows")
    jobs = dict((job, (text, tooltip)) for job, text, tooltip in row.jobs)
    cells = [_state_badge(row.state), escape(row.host), escape(row.database),
             '<a href="#%s">%s</a>' % (_anchor_id(row), escape(row.table)) if row.facts else escape(row.table),
             escape(runway_text), escape(len(facts.get("gaps") or []) if facts else ""),
             escape("" if default_rows is None else format(default_rows, ",")),
             escape(size_text(_table_size(row)) if facts else "")]
    cells += ['<span title="%s">%s</span>' % (escape(jobs[job][1]), escape(jobs[job][0])) if job in jobs else ""
              for job in ("create", "retention", "brin")]
    cells.append("; ".join(escape(f.text) for f in sorted(row.findings, key=lambda finding: -RANK[finding.state])))
    classes = ((' class="nowrap"',) * 3 + ("", "") + (' class="num"',) * 2 + (' class="num nowrap"',)
               + (' class="nowrap"',) * 3 + (' class="findings"',))
    return '<tr data-host="%s" data-table="%s" data-state="%s">%s</tr>' % (
        escape(row.host), escape(row.key), row.state,
        "".join("<td%s>%s</td>" % (css, cell) for css, cell in zip(classes, cells)))


def _anchor_id(row: TableReport) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_.-]", "_", "%s-%s-%s" % (row.host, row.database, row.table))


def _host_section(host: str, rows: Sequence[TableReport]) -> str:
    state = worst(row.state for row in rows)
    standby = " (hot standby)" if any(row.in_recovery for row in rows) else ""
    parts = ['<section class="host" data-host="%s" data-state="%s"><h2>%s %s%s</h2>'
             % (escape(host), state, _state_badge(state), escape(host), standby)]
    for row in rows:
        if not row.facts:
            parts.append('<div class="hostnote" data-table="%s">%s</div>' % (escape(row.key), _findings(row)))
            continue
        facts = row.facts
        parts.append(
            '<section class="table" id="%s" data-host="%s" data-table="%s" data-state="%s">'
            '<h3>%s %s / %s <small>%s on %s (%s), %d partitions</small></h3>%s%s</section>'
            % (_anchor_id(row), escape(host), escape(row.key), row.state, _state_badge(row.state),
               escape(row.database), escape(row.table), escape(facts.get("strategy")), escape(facts.get("key")),
               escape(facts.get("key_type")), len(facts.get("partitions") or []), _findings(row), timeline_svg(row)))
    return "".join(parts) + "</section>"


def render(rows: Sequence[TableReport], generated_at: dt.datetime, title: str = "Partition report") -> str:
    """The whole page: summary first (rows as judge() sorted them), then one section per host, worst first."""
    counts = {state: sum(1 for row in rows if row.state == state) for state in (CRITICAL, WARNING, OK)}
    hosts: Dict[str, List[TableReport]] = {}
    for row in rows:
        hosts.setdefault(row.host, []).append(row)
    head = ("<th>state</th><th>host</th><th>database</th><th>table</th><th>runway</th><th>gaps</th>"
            "<th>default rows</th><th>size</th><th>create</th><th>retention</th><th>brin</th><th>findings</th>")
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        'img-src data:">',
        "<title>%s</title><style>%s</style></head><body>" % (escape(title), _CSS),
        PATTERNS,
        "<h1>%s</h1><p>Generated %s. %s</p>" % (
            escape(title), escape(generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")),
            ", ".join('%s <span class="state s-%s">%s</span>' % (counts[state], state, _MARK[state])
                      for state in counts)),
        '<table id="summary"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>'
        % (head, "".join(_summary_row(row) for row in rows)),
        "<p>create, retention, brin: time since the runner's last successful run of that job (its last start on a "
        "hot standby); n/a when the table's policy has no such job.</p>",
        LEGEND,
        "".join(_host_section(host, host_rows) for host, host_rows in hosts.items()),
        "</body></html>\n",
    ])
