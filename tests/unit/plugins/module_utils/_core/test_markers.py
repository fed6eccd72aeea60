"""Table-comment records: only a comment with our prefix and a JSON object after it is read back."""

from __future__ import annotations

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._core.markers import read_json_marker


@pytest.mark.parametrize("comment, expected", [
    pytest.param('pgfleet:{"stage": "fill"}', {"stage": "fill"}, id="our prefix and an object"),
    pytest.param(None, None, id="no comment"),
    pytest.param('other:{"stage": "fill"}', None, id="someone else's comment"),
    pytest.param("pgfleet:{not json", None, id="our prefix, broken JSON"),
    pytest.param("pgfleet:[1, 2]", None, id="our prefix, not an object"),
])
def test_only_our_records_are_read_back(comment, expected):
    assert read_json_marker(comment, "pgfleet:") == expected
