# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the partition report's timelines, one inline SVG per table (RANGE sets on an axis
# of their key, LIST and HASH sets side by side), and the hatchings and legend they share. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import html
from typing import List, Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.plugin_utils._report.judge import (
    UNBOUNDED,
    TableReport,
    parse_instant,
    partition_count,
    readable,
    retention_cutoff,
    runway_span,
)


def size_text(count: Optional[int]) -> str:
    value = float(count or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (value, unit)
        value /= 1024
    raise AssertionError("unreachable")


def escape(value) -> str:
    return html.escape(str(value), quote=True)


def _position(value, time_key: bool) -> Optional[float]:
    """A key value on the axis: seconds since the epoch for time keys, the number itself for integer keys."""
    if value is None or value in UNBOUNDED:
        return None
    if time_key:
        moment = parse_instant(value)
        return None if moment is None else moment.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_WIDTH, _LEFT, _RIGHT_DEFAULT = 960, 10, 130  # the default partition's box sits right of the axis
_BAND_TOP, _BAND_HEIGHT = 34, 30


def _rect(x: float, width: float, css: str, title: str, y: int = _BAND_TOP, height: int = _BAND_HEIGHT) -> str:
    return ('<rect class="%s" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s</title></rect>'
            % (css, x, y, max(width, 1.0), height, escape(title)))


def _text(x: float, y: int, words: str, css: str = "", anchor: str = "start") -> str:
    return '<text x="%.1f" y="%d" text-anchor="%s"%s>%s</text>' % (
        x, y, anchor, ' class="%s"' % css if css else "", escape(words))


def _anchor(x: float) -> str:
    return "end" if x > _WIDTH - _RIGHT_DEFAULT - 150 else "start"


def _default_box(facts: dict) -> List[str]:
    default = next((p for p in facts.get("partitions") or [] if p.get("is_default")), None)
    if default is None:
        return []
    rows = facts.get("default_rows") or 0
    x = _WIDTH - _RIGHT_DEFAULT + 20
    css = "p-default-rows" if rows else "p-default"
    return [_rect(x, _RIGHT_DEFAULT - 30, css, "%s: default partition, %s rows, %s"
                  % (default["name"], format(rows, ","), size_text(default.get("size_bytes")))),
            _text(x + 4, _BAND_TOP + 19, "default %s rows" % format(rows, ","), "on-block")]


_MAX_BLOCKS = 60  # a timeline's width holds about this many distinct blocks; more would be slivers and megabytes


def _blocks(partitions: Sequence[Tuple[dict, Tuple[str, str]]]) -> List[List[Tuple[dict, Tuple[str, str]]]]:
    """The blocks a timeline draws: one per partition up to _MAX_BLOCKS partitions, beyond that consecutive
    partitions of the same role that touch each other share a block (daily sets over years stay a few kB)."""
    per_block = -(-len(partitions) // _MAX_BLOCKS)
    blocks: List[List[Tuple[dict, Tuple[str, str]]]] = []
    for partition, role in partitions:
        current = blocks[-1] if blocks else None
        if (current is not None and len(current) < per_block and current[-1][1] == role
                and current[-1][0].get("upper") == partition.get("lower")):
            current.append((partition, role))
        else:
            blocks.append([(partition, role)])
    return blocks


def _range_timeline(facts: dict, retention) -> List[str]:
    time_key = not isinstance(facts.get("reference"), (int, float))
    partitions = [p for p in facts.get("partitions") or [] if not p.get("is_default") and "lower" in p]
    reference = _position(facts.get("reference"), time_key)
    cutoff_value = retention_cutoff(facts, retention)
    cutoff = _position(cutoff_value, time_key)
    runway = facts.get("runway") or {}
    until = _position(runway.get("until"), time_key)
    points = [position for p in partitions for position in (_position(p.get("lower"), time_key),
                                                            _position(p.get("upper"), time_key))]
    points = [point for point in points + [reference, cutoff, until] if point is not None]
    if not points:
        return [_text(_LEFT, _BAND_TOP + 19, "no bounded partitions")] + _default_box(facts)
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    low, high = low - span * 0.03, high + span * 0.03
    scale = (_WIDTH - _RIGHT_DEFAULT - _LEFT) / (high - low)

    def x_of(value: Optional[float], unbounded_at: float) -> float:
        return unbounded_at if value is None else _LEFT + (value - low) * scale

    axis_end = _WIDTH - _RIGHT_DEFAULT
    parts, gap_labels = [], []

    def role_of(partition) -> Tuple[str, str]:
        upper = _position(partition.get("upper"), time_key)
        if cutoff is not None and upper is not None and upper <= cutoff:
            return "p-expired", "expires at the next retention run"
        if partition["name"] == runway.get("current"):
            return "p-current", "current"
        if reference is not None and upper is not None and upper <= reference:
            return "p-past", "past"
        return "p-ahead", "ahead"

    for run in _blocks([(partition, role_of(partition)) for partition in partitions]):
        first, last = run[0][0], run[-1][0]
        css, role = run[0][1]
        start = x_of(_position(first.get("lower"), time_key), _LEFT)
        end = x_of(_position(last.get("upper"), time_key), axis_end)
        members = [partition for partition, _role in run]
        size = size_text(sum(partition.get("size_bytes") or 0 for partition in members))
        rows = format(sum(int(partition.get("rows_estimate") or 0) for partition in members), ",")
        if len(run) == 1:
            title = "%s [%s, %s): %s, %s, ~%s rows" % (
                first["name"], readable(first.get("lower")), readable(last.get("upper")), role, size, rows)
        else:
            title = "%d partitions %s ... %s [%s, %s): %s, %s, ~%s rows" % (
                len(run), first["name"], last["name"], readable(first.get("lower")), readable(last.get("upper")), role,
                size, rows)
        parts.append(_rect(start, end - start, css, title))
    for gap in facts.get("gaps") or []:
        start = x_of(_position(gap.get("lower"), time_key), _LEFT)
        end = x_of(_position(gap.get("upper"), time_key), axis_end)
        parts.append(_rect(start, end - start, "p-gap", "gap [%s, %s): no partition, rows go to the default "
                           "partition or fail" % (readable(gap.get("lower")), readable(gap.get("upper")))))
        parts.append(_text((start + end) / 2, _BAND_TOP + _BAND_HEIGHT + 14, "gap", "gap-label", "middle"))
        gap_labels.append((start + end) / 2)
    if partitions:
        first_x = x_of(_position(partitions[0].get("lower"), time_key), _LEFT)
        last_x = x_of(_position(partitions[-1].get("upper"), time_key), axis_end)
        parts.append(_text(first_x, _BAND_TOP + _BAND_HEIGHT + 14, readable(partitions[0].get("lower"))))
        parts.append(_text(last_x, _BAND_TOP + _BAND_HEIGHT + 14, readable(partitions[-1].get("upper")), "", "end"))
        parts.extend(_ticks(partitions, time_key, x_of, first_x, last_x, gap_labels))
    if reference is not None and until is not None and until > reference:
        start, end = x_of(reference, _LEFT), x_of(until, axis_end)
        y = _BAND_TOP + _BAND_HEIGHT + 24
        parts.append('<line class="runway" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (start, y, end, y))
        parts.append(_text(end, y + 14, "runway %s (%s) until %s"
                           % (partition_count(runway.get("partitions") or 0), runway_span(runway),
                              readable(runway.get("until"))),
                           "runway-label", "end" if end - _LEFT > 300 else "start"))
    if cutoff is not None:
        x = x_of(cutoff, _LEFT)
        parts.append('<line class="cutoff" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                     % (x, 16, x, _BAND_TOP + _BAND_HEIGHT + 4))
        parts.append(_text(x, 14, "retention cutoff %s (%s)" % (readable(cutoff_value), retention), "", _anchor(x)))
    if reference is not None:
        x = x_of(reference, _LEFT)
        parts.append('<line class="reference" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                     % (x, 20, x, _BAND_TOP + _BAND_HEIGHT + 4))
        parts.append(_text(x, 28, "reference %s" % readable(facts.get("reference")), "", _anchor(x)))
    return parts + _default_box(facts)


def _label(partition_name: str, table: str) -> str:
    """A partition's name without its table's, which every block would repeat: events_2026_03 -> 2026_03."""
    prefix = table.rsplit(".", 1)[-1] + "_"
    if partition_name.startswith(prefix) and partition_name != prefix:
        return partition_name[len(prefix):]
    return partition_name


def _ticks(partitions, time_key: bool, x_of, first_x: float, last_x: float, taken: Sequence[float]) -> List[str]:
    """Labels at partition boundaries between the two end labels, as many as fit without touching each other or
    the labels already `taken` on that line (the gaps')."""
    # Bound labels are up to 16 characters of 11px text (80px at most); the end labels reach inwards, ticks are
    # centred on their boundary.
    room, ticks, last_label = 85.0, [], first_x + 45.0
    for partition in partitions[1:]:
        x = x_of(_position(partition.get("lower"), time_key), first_x)
        clear = all(abs(x - other) >= room / 2 + 10 for other in taken)
        if x - last_label >= room and last_x - x >= room + 45 and clear:
            ticks.append('<line class="tick" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                         % (x, _BAND_TOP + _BAND_HEIGHT, x, _BAND_TOP + _BAND_HEIGHT + 4))
            ticks.append(_text(x, _BAND_TOP + _BAND_HEIGHT + 14, readable(partition.get("lower")), "tick-label",
                               "middle"))
            last_label = x
    return ticks


def _block_timeline(facts: dict, table: str) -> List[str]:
    """LIST and HASH sets have no axis: their partitions side by side, in the order the module lists them."""
    partitions = [p for p in facts.get("partitions") or [] if not p.get("is_default")]
    if not partitions:
        return [_text(_LEFT, _BAND_TOP + 19, "no partitions")] + _default_box(facts)
    width = (_WIDTH - _RIGHT_DEFAULT - _LEFT) / len(partitions)
    parts = []
    for index, partition in enumerate(partitions):
        bounds = partition.get("values", "remainder %s of %s" % (partition.get("remainder"), partition.get("modulus")))
        x = _LEFT + index * width
        parts.append(_rect(x + 1, width - 2, "p-ahead", "%s %s: %s, ~%s rows" % (
            partition["name"], bounds, size_text(partition.get("size_bytes")),
            format(int(partition.get("rows_estimate") or 0), ","))))
        label = _label(partition["name"], table)
        if width > 7 * len(label) + 8:
            parts.append(_text(x + 4, _BAND_TOP + 19, label, "on-block"))
    return parts + _default_box(facts)


def timeline_svg(row: TableReport) -> str:
    facts = row.facts or {}
    body = (_range_timeline(facts, row.retention) if facts.get("runway") is not None
            else _block_timeline(facts, row.table))
    return ('<svg class="timeline" viewBox="0 0 %d 112" role="img" aria-label="partitions of %s">%s</svg>'
            % (_WIDTH, escape(row.table), "".join(body)))


# One definition of the hatchings, referenced by every timeline: they read without colour too.
PATTERNS = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="hatch-expired" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    '<rect width="6" height="6" fill="#f3d0d0"/><line x1="0" y1="0" x2="0" y2="6" stroke="#7a0000" stroke-width="2"/>'
    '</pattern>'
    '<pattern id="hatch-gap" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<rect width="6" height="6" fill="#fff"/><path d="M0 0L6 6M6 0L0 6" stroke="#b00000" stroke-width="1.2"/>'
    '</pattern></defs></svg>'
)

LEGEND = (
    '<p class="legend">'
    + "".join('<span><svg width="22" height="12"><rect class="%s" width="22" height="12"/></svg> %s</span>' % pair
              for pair in (("p-past", "past"), ("p-current", "holds the reference"), ("p-ahead", "ahead (runway)"),
                           ("p-expired", "removed by the next retention run"), ("p-gap", "gap"),
                           ("p-default-rows", "default partition with rows")))
    + "</p>"
)
