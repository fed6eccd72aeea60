# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: where a conversion stands and the steps to the wanted stage, read from relation
# kinds, the progress record kept in a table comment, and mirror triggers. Pure.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
from typing import Optional, Sequence, Tuple

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.markers import read_json_marker
from ansible_collections.pgfleet.partitions.plugins.module_utils._convert.model import ConversionFacts
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import PlanError

MARKER = "pgfleet.partitions convert: "

# Where each observed stage stands on the way to `swapped`.
_PROGRESS = {"original": 0, "rolled_back": 0, "preparing": 0, "prepared": 1, "filled": 2, "swapped": 3,
             "partitioned": 3, "rolling_back": 3}
_WANTED = {"prepared": 1, "filled": 2, "swapped": 3}
_FORWARD_STEPS = ("prepare", "fill", "swap")


def read_marker(comment: Optional[str]) -> Optional[dict]:
    """The progress record this module keeps in a table comment, or None when the comment is not ours."""
    return read_json_marker(comment, MARKER)


def marker_comment(marker: dict) -> str:
    return MARKER + json.dumps(marker, sort_keys=True)


def current_stage(facts: ConversionFacts) -> str:
    """Where the conversion of facts.names.live stands, read from relation kinds, markers and mirror triggers."""
    names, live, partitioned, retired = facts.names, facts.live, facts.partitioned, facts.retired
    table = "%s.%s" % (names.schema, names.live)
    if live is None:
        raise PlanError("table %s does not exist" % table)
    if live.relkind == "p":
        if retired is None:
            return "partitioned"
        if retired.relkind != "r" or read_marker(retired.comment) is None:
            raise PlanError("%s.%s exists but was not retired by this module; rename it before converting %s"
                            % (names.schema, names.retired, table))
        return "rolling_back" if live.mirrored else "swapped"
    if live.relkind != "r":
        raise PlanError("%s is not a regular table (relkind %r); only ordinary tables can be converted"
                        % (table, live.relkind))
    if partitioned is None:
        return "original"
    marker = read_marker(partitioned.comment)
    if partitioned.relkind != "p" or marker is None:
        raise PlanError("%s.%s exists and was not made by this module; rename or drop it before converting %s"
                        % (names.schema, names.partitioned, table))
    if live.mirrored:
        return "filled" if marker.get("synced") else "prepared"
    return "rolled_back" if marker.get("stage") == "rolled_back" else "preparing"


def steps(stage: str, wanted: str) -> Tuple[str, ...]:
    """The steps from the observed stage to the wanted one; a stage already passed needs none."""
    if wanted == "rolled_back":
        if stage == "partitioned":
            raise PlanError("the table is partitioned and its retired original no longer exists: there is nothing "
                            "to roll back to")
        if stage in ("swapped", "rolling_back"):
            return ("catch_up", "swap_back")
        return ("stop_mirror",) if stage in ("preparing", "prepared", "filled") else ()
    if stage == "rolling_back":
        return ("stop_mirror",) if wanted == "swapped" else ()
    have = _PROGRESS[stage]
    return _FORWARD_STEPS[have:_WANTED[wanted]]


def stage_after(stage: str, done_steps: Sequence[str]) -> str:
    final = {"prepare": "prepared", "fill": "filled", "swap": "swapped", "swap_back": "rolled_back"}
    if not done_steps:
        return stage
    last = done_steps[-1]
    if last == "stop_mirror":
        return "swapped" if stage == "rolling_back" else "rolled_back"
    return final.get(last, stage)


def initial_marker(source_name: str, stage: str = "preparing") -> dict:
    return {"stage": stage, "source": source_name, "mode": "copy", "watermark": None, "rows_copied": 0,
            "synced": False}


def restart_marker(marker: Optional[dict], target_empty: bool, stage: str) -> dict:
    """Progress starts over when a mirror is (re)installed: a plain copy into an empty target, else a refresh that
    also corrects and removes rows the target holds from earlier."""
    return dict(marker or {}, stage=stage, mode="copy" if target_empty else "refresh", watermark=None,
                rows_copied=0, synced=False)
