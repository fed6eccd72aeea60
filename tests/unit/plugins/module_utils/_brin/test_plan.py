from __future__ import annotations

import zlib
from decimal import Decimal

import pytest

from ansible_collections.pgfleet.partitions.plugins.module_utils._brin.plan import (
    BrinIndex,
    STANDBY_REASON,
    check_indexes,
    check_table,
    newest_leaves,
    plan_refresh,
)
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.model import Relation
from ansible_collections.pgfleet.partitions.plugins.module_utils._core.errors import CatalogError, PlanError

NONE = Decimal("-Infinity")


def brin(table, root=1, path=(), oid=None, blocks=10, index=None, pages_per_range=128):
    """A BRIN index on leaf `table`; its oid defaults to a number taken from the name so tests read easily."""
    return BrinIndex(
        index_schema="public", index_name=index or table + "_idx", table_schema="public", table_name=table,
        index_regclass="public.%s" % (index or table + "_idx"), table_regclass="public.%s" % table,
        table_oid=oid if oid is not None else zlib.crc32(table.encode()), root_oid=root,
        bound_path=tuple(Decimal(value) for value in path), heap_blocks=blocks, pages_per_range=pages_per_range,
    )


def tables(indexes):
    return [index.table_name for index in indexes]


NEWEST_CASES = [
    pytest.param(
        [brin("m03", path=[300], oid=10), brin("m01", path=[100], oid=11), brin("m02", path=[200], oid=12)],
        1, ["m03"], id="the highest range bound wins over the latest created",
    ),
    pytest.param(
        [brin("m01", path=[100], oid=10), brin("m02", path=[200], oid=11), brin("m03", path=[300], oid=12)],
        2, ["m02", "m03"], id="two newest keep the catalog's order",
    ),
    pytest.param(
        [brin("m01", path=[100]), brin("m02", path=[200]), brin("m03", path=[300], blocks=0)],
        1, ["m02"], id="an empty partition made ahead is passed over",
    ),
    pytest.param(
        [brin("a01", root=1, path=[1]), brin("a02", root=1, path=[2]), brin("b01", root=2, path=[1]),
         brin("b02", root=2, path=[2])],
        1, ["a02", "b02"], id="each partitioned table keeps its own newest",
    ),
    pytest.param(
        [brin("jan_h0", path=[100, NONE], oid=20), brin("feb_h0", path=[200, NONE], oid=5),
         brin("feb_h1", path=[200, NONE], oid=6)],
        1, ["feb_h1"], id="a newer parent's leaves are newer, and hash siblings go by creation",
    ),
    pytest.param(
        [brin("m01", path=[100]), brin("m01", path=[100], index="m01_other_idx"), brin("m00", path=[0])],
        1, ["m01", "m01"], id="every BRIN index of a chosen partition is visited",
    ),
    pytest.param(
        [brin("dflt", path=[NONE], oid=99), brin("m01", path=[100], oid=1)],
        1, ["m01"], id="a default partition is older than any range partition",
    ),
    pytest.param(
        [brin("m01", path=[100]), brin("m02", path=[200])], 5, ["m01", "m02"], id="asking for more gives all",
    ),
]


@pytest.mark.parametrize("candidates, count, expected", NEWEST_CASES)
def test_newest_leaves(candidates, count, expected):
    assert tables(newest_leaves(candidates, count)) == expected


PLAN_CASES = [
    pytest.param(dict(mode="summarize"), ["m01", "m02", "m03"], True, id="summarize visits every leaf, oldest first"),
    pytest.param(dict(mode="resummarize", recent_partitions=1), ["m03"], True,
                 id="resummarize of the newest partition only"),
    pytest.param(dict(mode="reindex_concurrently", recent_partitions=2), ["m02", "m03"], True,
                 id="reindex of the two newest"),
    pytest.param(dict(mode="summarize", in_recovery=True), [], False, id="a hot standby gets no visits"),
]


@pytest.mark.parametrize("options, expected, expects_change", PLAN_CASES)
def test_plan_refresh(options, expected, expects_change):
    candidates = [brin("m03", path=[300], oid=1), brin("m01", path=[100], oid=2), brin("m02", path=[200], oid=3)]
    plan = plan_refresh(candidates, **options)
    assert tables(visit.index for visit in plan.visits) == expected
    assert all(visit.mode == options["mode"] for visit in plan.visits)
    assert plan.expects_change is expects_change
    assert plan.skipped_reason == (STANDBY_REASON if options.get("in_recovery") else None)


EXPECTS_CHANGE_CASES = [
    pytest.param("summarize", [0, 0], False, id="summarizing empty tables cannot change anything"),
    pytest.param("summarize", [0, 3], True, id="summarizing a table with pages may change it"),
    pytest.param("resummarize", [5], True, id="resummarizing a table with pages rebuilds its ranges"),
    pytest.param("reindex_concurrently", [0], True, id="a rebuild changes even an empty table's index"),
    pytest.param("reindex_concurrently", [], False, id="nothing to visit changes nothing"),
]


@pytest.mark.parametrize("mode, blocks, expected", EXPECTS_CHANGE_CASES)
def test_what_check_mode_expects(mode, blocks, expected):
    candidates = [brin("t%d" % number, blocks=count) for number, count in enumerate(blocks)]
    assert plan_refresh(candidates, mode).expects_change is expected


PLAN_ERRORS = [
    pytest.param(dict(mode="vacuum"), "mode 'vacuum' is not one of summarize", id="an unknown mode"),
    pytest.param(dict(mode="summarize", recent_partitions=0), "recent_partitions must be 1 or more",
                 id="zero recent partitions"),
    pytest.param(dict(mode="summarize", recent_partitions=-2, in_recovery=True), "recent_partitions",
                 id="a bad option is refused on a standby too"),
]


@pytest.mark.parametrize("options, message", PLAN_ERRORS)
def test_plan_refresh_refuses(options, message):
    with pytest.raises(PlanError, match=message):
        plan_refresh([brin("m01")], **options)


@pytest.mark.parametrize("blocks, pages_per_range, ranges", [
    pytest.param(0, 128, 0, id="an empty table has no ranges"),
    pytest.param(1, 128, 1, id="a partial range counts"),
    pytest.param(256, 128, 2, id="whole ranges"),
    pytest.param(257, 128, 3, id="whole ranges and a partial one"),
])
def test_block_ranges(blocks, pages_per_range, ranges):
    assert brin("t", blocks=blocks, pages_per_range=pages_per_range).block_ranges == ranges


TABLE_ERRORS = [
    pytest.param(Relation(given="public.nope"), "table public.nope does not exist", id="a missing table"),
    pytest.param(Relation(given="v", oid=5, relkind="v"), "v is a view, not a table", id="a view"),
    pytest.param(Relation(given="i", oid=5, relkind="i", access_method="brin"),
                 "not a table; to refresh chosen indexes", id="an index points to the indexes option"),
]


@pytest.mark.parametrize("relation, message", TABLE_ERRORS)
def test_check_table_refuses(relation, message):
    with pytest.raises(CatalogError, match=message):
        check_table(relation)


@pytest.mark.parametrize("relkind", ["r", "p", "m"])
def test_check_table_accepts_tables(relkind):
    check_table(Relation(given="t", oid=5, relkind=relkind))


INDEX_ERRORS = [
    pytest.param([Relation(given="gone")], "index gone does not exist", id="a missing index"),
    pytest.param([Relation(given="t", oid=5, relkind="r")], "t is a table, not an index", id="a table"),
    pytest.param([Relation(given="ok", oid=4, relkind="i", access_method="brin"),
                  Relation(given="ids", oid=5, relkind="I", access_method="btree")],
                 "index ids is a btree index, not a BRIN index", id="a btree index after a BRIN one"),
]


@pytest.mark.parametrize("relations, message", INDEX_ERRORS)
def test_check_indexes_refuses(relations, message):
    with pytest.raises(CatalogError, match=message):
        check_indexes(relations)


def test_check_indexes_accepts_plain_and_partitioned_brin_indexes():
    check_indexes([Relation(given="a", oid=1, relkind="i", access_method="brin"),
                   Relation(given="b", oid=2, relkind="I", access_method="brin")])
