# -*- coding: utf-8 -*-
# Private to pgfleet.partitions: the JSON records the engine keeps in table comments (a conversion's progress, a
# drain's table being filled), read back without trusting a comment someone else wrote.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
from typing import Optional


def read_json_marker(comment: Optional[str], prefix: str) -> Optional[dict]:
    """The JSON object after `prefix` in a table comment; None when the comment is not one of ours."""
    if not comment or not comment.startswith(prefix):
        return None
    try:
        record = json.loads(comment[len(prefix):])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
