"""The pure cluster rules of pipeline.clusters and the date reader of pipeline.records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.clusters import (
    Placement,
    append_publication,
    cluster_rewrite,
    earliest_key,
    merge_publications,
    plan_batch,
    publication,
    representative_key,
)
from pipeline.records import parse_iso, parse_iso_or_none


def art(aid: str, when: str | None = None, **fields: object) -> dict[str, object]:
    return {
        "id": aid,
        "published_at": when,
        "source": {"name": f"src-{aid}"},
        "url": f"https://x.test/{aid}",
        **fields,
    }


def test_publication_entry_has_exactly_the_four_fields() -> None:
    doc = art("a1", "2026-01-02T03:04:05Z", title="t", text="body", cluster_id="c")
    assert publication(doc) == {
        "id": "a1",
        "source": {"name": "src-a1"},
        "url": "https://x.test/a1",
        "published_at": "2026-01-02T03:04:05Z",
    }


def test_earliest_member_leads_undated_last_then_id() -> None:
    a = art("b", "2026-01-01T10:00:00+02:00")  # 08:00 UTC
    b = art("a", "2026-01-01T09:00:00Z")
    c = art("c", "2026-01-01T08:00:00Z")  # same instant as a: the id breaks the tie
    undated = art("0", None)
    bad = art("00", "not a date")
    ordered = sorted([undated, bad, b, a, c], key=earliest_key)
    assert [d["id"] for d in ordered] == ["b", "c", "a", "0", "00"]


def test_representative_key_prefers_the_cluster_id_then_non_duplicates() -> None:
    early_dup = art("x", "2020-01-01T00:00:00Z", duplicate_of="y")
    late_rep = art("y", "2026-01-01T00:00:00Z")
    other = art("z", "2021-01-01T00:00:00Z")
    assert min([early_dup, other, late_rep], key=lambda d: representative_key(d, "y"))["id"] == "y"
    # the cluster's own article missing: a non-duplicate wins over an earlier duplicate
    assert min([early_dup, other], key=lambda d: representative_key(d, "y"))["id"] == "z"
    # without a cluster (content-hash lookups) the same order minus the first rule
    assert min([early_dup, other, late_rep], key=representative_key)["id"] == "z"


def test_merge_publications_later_replaces_in_place_and_drops() -> None:
    old = [{"id": "m1", "url": "u1"}, {"id": "m2", "url": "u2"}, "junk", {"url": "no id"}, {"id": 7}]
    new = [{"id": "m2", "url": "u2b"}, {"id": "m3", "url": "u3"}, {"id": "rep", "url": "self"}]
    merged = merge_publications(old, None, new, drop=["rep"])
    assert merged == [{"id": "m1", "url": "u1"}, {"id": "m2", "url": "u2b"}, {"id": "m3", "url": "u3"}]


def test_append_publication_moves_the_member_last() -> None:
    entries = [{"id": "m1", "url": "u1"}, {"id": "m2", "url": "u2"}]
    assert append_publication(entries, {"id": "m1", "url": "new"}) == [
        {"id": "m2", "url": "u2"},
        {"id": "m1", "url": "new"},
    ]
    assert append_publication(None, {"id": "m1"}) == [{"id": "m1"}]


def test_plan_of_a_batch() -> None:
    stored = {
        "d1": Placement("d1", "r1", "r1", "2026-01-01T00:00:00Z"),  # moves to r2
        "d2": Placement("d2", "r1", "r1", "2026-01-01T00:00:00Z"),  # becomes a representative
        "s": Placement("s", "s", None, "2026-01-01T00:00:00Z"),  # unchanged
        "t": Placement("t", "t", None, "2026-01-01T00:00:00Z"),  # only its date changes
    }
    items = [
        (Placement("d1", "r2", "r2", "2026-01-01T00:00:00Z"), art("d1", "2026-01-01T00:00:00Z")),
        (Placement("d2", "d2", None, "2026-01-01T00:00:00Z"), art("d2", "2026-01-01T00:00:00Z")),
        (Placement("s", "s", None, "2026-01-01T00:00:00Z"), art("s", "2026-01-01T00:00:00Z")),
        (Placement("t", "t", None, "2026-02-01T00:00:00Z"), art("t", "2026-02-01T00:00:00Z")),
        (Placement("n", "r3", None, None), art("n")),  # new, no duplicate, in a foreign cluster
        (Placement("d3", "r2", "r2", None), art("d3")),  # new duplicate
    ]
    plan = plan_batch(items, stored, reps_with_stored_members=["s"])
    assert plan.touched == {"r1", "r2", "d2", "t", "r3", "s"}
    assert plan.moved == {"r1": {"d1", "d2"}}
    assert [e["id"] for e in plan.adds["r2"]] == ["d1", "d3"]
    assert set(plan.adds) == {"r2"}
    assert plan.adds["r2"][1] == publication(art("d3"))


def test_cluster_rewrite_leads_with_the_earliest_and_skips_settled_members() -> None:
    rep = art("late", "2026-03-01T00:00:00Z", cluster_id="late", also_published_by=[{"id": "early"}])
    early = art("early", "2026-01-01T00:00:00Z", cluster_id="late", duplicate_of="late")
    mid = art("mid", "2026-02-01T00:00:00Z", cluster_id="early", duplicate_of="early")
    changes = {c["id"]: c for c in cluster_rewrite([rep, early, mid])}
    assert changes["early"] == {
        "id": "early",
        "cluster_id": "early",
        "duplicate_of": None,
        "also_published_by": [publication(mid), publication(rep)],
    }
    assert changes["late"]["duplicate_of"] == "early"
    assert changes["late"]["also_published_by"] == []
    assert "mid" not in changes  # already a duplicate of the earliest with an empty list
    settled = [{**early, **changes["early"]}, mid, {**rep, **changes["late"]}]
    assert cluster_rewrite(settled) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (" 2026-01-02T03:04:05z ", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_parse_iso(text: str | None, expected: datetime | None) -> None:
    got = parse_iso(text)
    assert got == expected
    if got is not None:
        offset = got.utcoffset()
        assert offset is not None
        assert offset.total_seconds() == 0


def test_parse_iso_rejects_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="yesterday"):
        parse_iso("yesterday")
    with pytest.raises(ValueError, match="not an ISO 8601 date"):
        parse_iso(1700000000)
    assert parse_iso_or_none("2026-13-01") is None
