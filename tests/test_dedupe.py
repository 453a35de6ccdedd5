"""Dedupe stage: quality on our labelled set, exact rules, the filter contract, the store
lookups and cluster reconciliation with concurrent writers on a real SQLite store."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from pipeline.dedupe import Deduper, Signer, content_hash, is_duplicate, normalise, published_key, reconcile
from pipeline.records import run_filter
from pipeline.stores import open_store
from pipeline.stores.base import Store
from tests.data.dedupe.labelled import gold_pairs, load_labelled, predicted_pairs, prf

ROOT = Path(__file__).resolve().parent.parent
RECORDS, DIFFERENT = load_labelled()
GOLD = gold_pairs(RECORDS)
BY_ID = {r["id"]: r for r in RECORDS}


def fresh() -> list[dict[str, Any]]:
    return [dict(r) for r in RECORDS]


def assignment(out: list[dict[str, Any]]) -> dict[str, str]:
    return {r["id"]: r["cluster_id"] for r in out}


def clusters_of(assign: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for rid, cid in assign.items():
        groups.setdefault(cid, set()).add(rid)
    return {frozenset(g) for g in groups.values()}


def check_quality(assign: dict[str, str]) -> None:
    p, r, f = prf(predicted_pairs(assign), GOLD)
    merged = [(a, b) for a, b in DIFFERENT if assign[a] == assign[b]]
    wrong = [tuple(sorted(pair)) for pair in predicted_pairs(assign) - GOLD]
    assert not merged, f"different stories merged: {merged}"
    assert not wrong, f"pairs of different groups merged: {wrong}"
    assert f >= 0.97, f"pairwise P={p:.3f} R={r:.3f} F1={f:.3f}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'dedupe.db'}")
    yield s
    s.close()


# --- the labelled set -------------------------------------------------------------------


def test_labelled_set_has_the_required_cases() -> None:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in RECORDS:
        groups.setdefault(r["group"], []).append(r)
    dup_groups = [g for g in groups.values() if len(g) > 1]
    assert len(dup_groups) >= 10
    kinds = {r["kind"] for r in RECORDS}
    assert {
        "retitled",
        "trimmed",
        "truncated",
        "lead-only",
        "summary-only",
        "updated",
        "editors-note",
        "quotes-changed",
    } <= kinds
    assert len(DIFFERENT) >= 6


def test_labelled_set_quality_in_stream() -> None:
    out = list(Deduper().run(fresh()))
    check_quality(assignment(out))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quality_does_not_depend_on_order_or_batch_size(seed: int) -> None:
    records = fresh()
    random.Random(seed).shuffle(records)
    out = list(Deduper(batch_size=7).run(records))
    assert [r["id"] for r in out] == [r["id"] for r in records]
    check_quality(assignment(out))


def test_pair_rule_alone_separates_every_labelled_pair() -> None:
    """The similarity rule without LSH: every pair of the set, decided on signatures."""
    signer = Signer()
    sigs = signer.sign([normalise(r["text"]) for r in RECORDS])
    predicted = set()
    for i, j in combinations(range(len(RECORDS)), 2):
        if is_duplicate(signer.compare(sigs[i], sigs[j][None, :])[0]):
            predicted.add(frozenset((RECORDS[i]["id"], RECORDS[j]["id"])))
    assert not predicted - GOLD, sorted(tuple(sorted(p)) for p in predicted - GOLD)
    assert prf(predicted, GOLD)[2] >= 0.97


def test_jaccard_rule_misses_lopsided_copies_that_containment_keeps() -> None:
    """The reason for the default rule: a symmetric score cannot join a lead-only copy."""
    jac = assignment(list(Deduper(rule="jaccard", threshold=0.5).run(fresh())))
    con = assignment(list(Deduper().run(fresh())))
    for copy, original in [
        ("tabqa-lead", "tabqa-wire"),
        ("kharkiv-lead", "kharkiv-wire"),
        ("tabqa-two-paras", "tabqa-wire"),
    ]:
        assert jac[copy] != jac[original]
        assert con[copy] == con[original]


@pytest.mark.parametrize(
    ("copy", "original"),
    [
        ("tabqa-lead", "tabqa-wire"),  # feed item with only the lead sentence
        ("tabqa-two-paras", "tabqa-wire"),  # first two of eight paragraphs
        ("tabqa-updated", "tabqa-wire"),  # new paragraphs on top, next day
        ("odesa-updated", "odesa-wire"),  # three new paragraphs on top
        ("fasher-quotes", "fasher-wire"),  # quotes reworded
        ("fasher-note", "fasher-wire"),  # editor's note and correction added
        ("hodeidah-copy-edited", "hodeidah-wire"),  # trimmed and copy-edited
        ("sukkur-updated-trimmed", "sukkur-wire"),  # updated and trimmed
    ],
)
def test_lopsided_copies_join_their_original(copy: str, original: str) -> None:
    out = {r["id"]: r for r in Deduper().run([dict(BY_ID[original]), dict(BY_ID[copy])])}
    assert out[original]["duplicate_of"] is None
    assert out[copy]["cluster_id"] == out[original]["cluster_id"]


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_stories_stay_apart(a: str, b: str) -> None:
    out = list(Deduper().run([dict(BY_ID[a]), dict(BY_ID[b])]))
    assert out[0]["cluster_id"] != out[1]["cluster_id"]
    assert out[0]["duplicate_of"] is None
    assert out[1]["duplicate_of"] is None


# --- exact rules ------------------------------------------------------------------------


def test_normalisation_folds_case_quotes_punctuation_and_spacing() -> None:
    a = "“Repairs,” he said — ‘won’t’ resume   before MAY.\n\nCafé  closed!"
    b = "\"repairs\" he said - 'won't' resume before may. cafe closed"
    assert normalise(a) == normalise(b)
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash("Repairs, he said, will resume before June.")


def test_typographic_copy_is_an_exact_duplicate() -> None:
    out = {
        r["id"]: r for r in Deduper().run([dict(BY_ID["kharkiv-wire"]), dict(BY_ID["kharkiv-typography"])])
    }
    assert out["kharkiv-wire"]["content_hash"] == out["kharkiv-typography"]["content_hash"]
    assert out["kharkiv-typography"]["duplicate_of"] == "kharkiv-wire"


def test_same_feed_entry_with_a_new_url_joins_the_first() -> None:
    feed = {"feed": "https://a.example/rss", "name": "A", "domain": "a.example"}
    first = {
        "id": "x1",
        "feed_entry_id": "guid-77",
        "source": feed,
        "text": "Rain fell on the capital today.",
        "published_at": "2026-01-01T08:00:00Z",
    }
    moved = {
        "id": "x2",
        "feed_entry_id": "guid-77",
        "source": feed,
        "text": "A completely rewritten story about the harbour strike and the minister.",
        "published_at": "2026-01-01T09:00:00Z",
    }
    other_feed = dict(
        moved,
        id="x3",
        source={"feed": "https://b.example/rss"},
        text="Another feed reuses the same entry id for a story about wheat prices.",
    )
    out = list(Deduper().run([first, moved, other_feed]))
    assert out[1]["cluster_id"] == "x1"
    assert out[1]["duplicate_of"] == "x1"
    assert out[2]["cluster_id"] == "x3"  # entry ids are scoped by feed


def test_copies_in_one_batch_are_led_by_the_earliest() -> None:
    later = dict(BY_ID["fasher-note"])  # 09:10
    earliest = dict(BY_ID["fasher-wire"])  # 06:30
    middle = dict(BY_ID["fasher-trimmed"])  # 08:45
    out = list(Deduper().run([later, middle, earliest]))
    assert [r["cluster_id"] for r in out] == ["fasher-wire"] * 3
    assert [r["duplicate_of"] for r in out] == ["fasher-wire", "fasher-wire", None]


def test_published_key_orders_by_utc_time_then_id() -> None:
    a = {"id": "b", "published_at": "2026-01-01T10:00:00+02:00"}  # 08:00 UTC
    b = {"id": "a", "published_at": "2026-01-01T09:00:00Z"}
    c = {"id": "0"}  # no date: last
    assert sorted([c, b, a], key=published_key) == [a, b, c]


# --- the filter contract ----------------------------------------------------------------


def test_fields_added_and_bad_records_flagged() -> None:
    good = dict(BY_ID["gao-wire"], extra={"kept": True})
    title_only = {"id": "t1", "title": "Fuel convoy ambushed near Gao"}
    empty = {"id": "e1", "title": "  ", "text": ""}
    no_id = {"text": "Some text without any identity at all."}
    with_url = {"url": "https://Example.com/a?utm_source=x", "text": "A story about a bridge."}
    out = list(Deduper().run([good, title_only, empty, no_id, with_url]))
    assert len(out) == 5
    assert out[0]["extra"] == {"kept": True}
    for r in (out[0], out[1], out[4]):
        assert "error" not in r
        assert len(r["content_hash"]) == 16
        assert len(r["minhash"]) == 128 + 32
        assert all(isinstance(v, int) for v in r["minhash"])
    assert len(out[0]["lsh_bands"]) == 32 + 16
    assert all(isinstance(k, str) for k in out[0]["lsh_bands"])
    assert out[1]["cluster_id"] == "t1"
    assert out[1]["lsh_bands"] == []
    assert "no text, summary or title" in out[2]["error"]
    assert "cluster_id" not in out[2]
    assert "no id, url or feed_entry_id" in out[3]["error"]
    assert len(out[4]["id"]) == 16


def test_run_filter_keeps_state_across_its_batches() -> None:
    lines = []
    for i in range(300):  # run_filter calls the stage once per 256 lines
        lines.append(
            json.dumps({"id": f"n{i}", "text": f"Unrelated filler story number {i} about item {i * 7}."})
        )
    lines.insert(1, json.dumps(BY_ID["tabqa-wire"]))
    lines.append(json.dumps(BY_ID["tabqa-retitled"]))
    lines.append("not json")
    lines.append(json.dumps({"id": "bad"}))
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run_filter(Deduper().run, io.StringIO("\n".join(lines) + "\n"), stdout, stderr, name="dedupe")
    out = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert code == 1
    assert len(out) == 304
    by_id = {r.get("id"): r for r in out}
    assert by_id["tabqa-retitled"]["duplicate_of"] == "tabqa-wire"
    assert "error" in by_id["bad"]
    assert "bad" in stderr.getvalue()


def test_in_stream_state_is_bounded() -> None:
    d = Deduper(recent=5)
    list(
        d.run(
            {"id": f"s{i}", "text": f"Story {i} about the number {i} and nothing else {i * 3}."}
            for i in range(40)
        )
    )
    assert len(d.recent.entries) == 5
    assert len(d.recent.by_hash) <= 5
    assert len(d.recent.by_band) <= 5 * 48


def test_signatures_are_stable_across_processes() -> None:
    code = (
        "import json,sys; sys.path.insert(0, '.');"
        "from pipeline.dedupe import Deduper;"
        "r = next(Deduper().run([{'id': 'a', 'text': 'The river rose two metres overnight.'}]));"
        "print(json.dumps([r['minhash'], r['lsh_bands'], r['content_hash']]))"
    )
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"  # a different str hash than ours
    env = dict(os.environ, PYTHONHASHSEED=seed)
    other = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    mine = next(Deduper().run([{"id": "a", "text": "The river rose two metres overnight."}]))
    assert other == json.dumps([mine["minhash"], mine["lsh_bands"], mine["content_hash"]]) + "\n"


# --- against a real SQLite store --------------------------------------------------------


def test_copies_found_in_the_store_from_an_earlier_run(store: Store) -> None:
    originals = [r for r in fresh() if r["kind"] == "original"]
    copies = [r for r in fresh() if r["kind"] != "original"]
    first = list(Deduper(store).run(originals))
    store.index(first)
    calls: list[str] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(store, name)

    second = list(Deduper(Counting(), batch_size=100).run(copies))  # type: ignore[arg-type]
    check_quality(assignment(first + second))
    for r in second:
        assert r["cluster_id"] in {o["id"] for o in first}, r["id"]
    # one lookup of each kind per batch, no per-article queries
    assert sorted(calls) == ["find_band_keys", "find_content_hashes", "known_ids"]


def test_a_known_article_keeps_its_stored_cluster(store: Store) -> None:
    store.index(Deduper(store).run([dict(BY_ID["derna-wire"]), dict(BY_ID["derna-trimmed"])]))
    updated = dict(BY_ID["derna-trimmed"], text=BY_ID["derna-trimmed"]["text"] + "\n\nA new closing line.")
    again = list(Deduper(store).run([dict(BY_ID["derna-wire"]), updated]))
    assert [(r["cluster_id"], r["duplicate_of"]) for r in again] == [
        ("derna-wire", None),
        ("derna-wire", "derna-wire"),
    ]
    store.index(again)
    assert store.count() == 2
    rep = store.get("derna-wire")
    assert rep is not None
    assert [e["id"] for e in rep["also_published_by"]] == ["derna-trimmed"]


def _worker(url: str, shard: list[dict[str, Any]], barrier: Any) -> list[dict[str, Any]]:
    s = open_store(url)
    try:
        out = list(Deduper(s).run(shard))
        barrier.wait(timeout=60)  # every worker has looked up before any writes: a real race
        s.index(out)
        return out
    finally:
        s.close()


def _stored_assignment(store: Store) -> dict[str, str]:
    out = {}
    for r in RECORDS:
        doc = store.get(r["id"])
        assert doc is not None
        out[r["id"]] = doc["cluster_id"]
    return out


@pytest.mark.slow
def test_concurrent_writers_end_in_one_cluster_after_reconcile(tmp_path: Path) -> None:
    # the reference: one sequential writer
    ref_store = open_store(f"sqlite:///{tmp_path / 'ref.db'}")
    ref_out = list(Deduper(ref_store).run(fresh()))
    ref_store.index(ref_out)
    reconcile(ref_store, ref_out)
    expected = _stored_assignment(ref_store)
    ref_store.close()

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    open_store(url).close()
    records = fresh()
    random.Random(11).shuffle(records)
    shards = [records[i::3] for i in range(3)]
    ctx = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    with ctx.Manager() as manager, ProcessPoolExecutor(3, mp_context=ctx) as pool:
        barrier = manager.Barrier(3)
        outs = [f.result(timeout=120) for f in [pool.submit(_worker, url, sh, barrier) for sh in shards]]
    store = open_store(url)
    try:
        split = _stored_assignment(store)
        assert len(set(split.values())) > len(set(expected.values()))  # the writers did race

        report = reconcile(store, [r for out in outs for r in out])
        assert report.merged > 0
        assert report.rewritten > 0
        final = _stored_assignment(store)
        assert clusters_of(final) == clusters_of(expected)
        assert final == expected  # same ids: the earliest member names each cluster
        check_quality(final)
        for cid in set(final.values()):
            members = store.cluster_members(cid)
            earliest = min(members, key=published_key)
            assert cid == earliest["id"]
            assert members[0]["id"] == cid
            assert members[0]["duplicate_of"] is None
            assert all(m["duplicate_of"] == cid for m in members[1:])
            assert {e["id"] for e in members[0].get("also_published_by") or []} == {
                m["id"] for m in members[1:]
            }
        again = reconcile(store)  # whole-store scan: nothing left to do
        assert (again.merged, again.rewritten) == (0, 0)
        assert again.checked == len(RECORDS)
    finally:
        store.close()


def test_reconcile_renames_a_cluster_after_its_earliest_member(store: Store) -> None:
    late = list(Deduper(store).run([dict(BY_ID["gao-wire"])]))  # 08:20, stored first
    store.index(late)
    early = list(Deduper(store).run([dict(BY_ID["gao-lead"])]))  # 08:05, arrives later
    assert early[0]["cluster_id"] == "gao-wire"
    store.index(early)
    report = reconcile(store, early)
    assert report.renamed == 1
    assert report.merged == 0
    assert [m["id"] for m in store.cluster_members("gao-lead")] == ["gao-lead", "gao-wire"]
    assert store.cluster_members("gao-wire") == []


def test_records_that_failed_upstream_pass_through_untouched() -> None:
    failed = {"id": "f1", "error": "clean: no text", "text": "whatever text"}
    out = list(Deduper().run([failed, dict(BY_ID["mosul-wire"])]))
    assert out[0] is failed
    assert "cluster_id" not in out[0]
    assert out[1]["cluster_id"] == "mosul-wire"


def test_boilerplate_bodies_are_not_matched_by_content(store: Store) -> None:
    a = {"id": "r1", "summary": "Read more on our website.", "published_at": "2026-01-01T08:00:00Z"}
    b = {"id": "r2", "summary": "Read more on our website!", "published_at": "2026-01-01T09:00:00Z"}
    first = list(Deduper(store).run([a]))
    store.index(first)
    out = list(Deduper(store).run([b, dict(a)]))
    assert out[0]["content_hash"] == first[0]["content_hash"]
    assert (out[0]["cluster_id"], out[0]["duplicate_of"]) == ("r2", None)
    assert (out[1]["cluster_id"], out[1]["duplicate_of"]) == ("r1", None)  # same id: same article


def _templated(n_towns: int = 20) -> list[dict[str, Any]]:
    """Different short stories that share a newsroom's boilerplate (our own text)."""
    towns = [f"Town{chr(65 + i)}ville" for i in range(n_towns)]
    events = ["opened a library", "closed a bridge", "elected a mayor", "won a cup final",
              "lost power overnight", "flooded after rain", "hosted a fair", "banned fireworks",
              "raised bus fares", "found a fossil"]  # fmt: skip
    out = []
    for t in towns:
        for e in events:
            text = (
                f"On Tuesday the council of {t} {e}, officials said. This short item is part of our "
                "regional briefing service; sign up for the morning newsletter to read more stories like "
                "this one every day."
            )
            when = "2026-01-01T08:00:00Z"
            out.append({"id": f"{t}-{e}", "title": f"{t} {e}", "text": text, "published_at": when})
    return out


def test_short_stories_sharing_only_a_template_stay_apart(store: Store) -> None:
    items = _templated()
    out = list(Deduper(store).run(items))
    assert sum(1 for r in out if r["duplicate_of"]) == 0, "different short stories were clustered"
    store.index(out)
    report = reconcile(store, out)  # the reconcile pass applies the same rule
    assert report.merged == 0
    assert report.rewritten == 0
    # a genuine short copy (a word of the byline changed, the story kept) still joins its original
    copy = dict(items[0], id="copy-1", text=items[0]["text"] + " Reporting by the desk.")
    (joined,) = Deduper(store).run([copy])
    assert joined["duplicate_of"] == items[0]["id"]


def _long_story(seed: int, words: int = 300) -> str:
    rng = random.Random(seed)
    vocabulary = [
        f"{stem}{seed}x{k}" for k, stem in enumerate(("harbour", "ridge", "grain", "mill", "ferry") * 60)
    ]
    return " ".join(rng.choice(vocabulary) for _ in range(words)) + "."


def test_stories_opening_with_the_same_credit_line_stay_apart(store: Store) -> None:
    """Two different long stories of one outlet whose leads are the same credit line and byline (as a
    desk inserts them on top of everything it runs): the leads agree, the bodies do not: apart. The
    lead-only item of one of them, and an edited full copy, still join it."""
    credit = (
        "Reporting for the Northern Ledger was contributed by its regional desk, with additional "
        "reporting by staff correspondents in the capital and editing by the night desk. "
    )
    a = {
        "id": "story-a",
        "title": "A",
        "text": credit + _long_story(1),
        "published_at": "2026-01-01T08:00:00Z",
    }
    b = {
        "id": "story-b",
        "title": "B",
        "text": credit + _long_story(2),
        "published_at": "2026-01-01T09:00:00Z",
    }
    signer = Signer()
    sig_a, sig_b = signer.sign([normalise(a["text"]), normalise(b["text"])])
    (sim,) = signer.compare(sig_a, sig_b[None, :])
    assert sim.lead_containment >= 0.7  # the lead rule alone would merge them
    out = list(Deduper(store).run([a, b]))
    assert [r["duplicate_of"] for r in out] == [None, None]
    store.index(out)
    assert reconcile(store, out).merged == 0
    lead_only = {
        "id": "lead-a",
        "title": "A",
        "text": " ".join(a["text"].split()[:90]),
        "published_at": "2026-01-01T10:00:00Z",
    }
    edited = {
        "id": "copy-a",
        "title": "A",
        "text": a["text"].replace("harbour", "port", 3),
        "published_at": "2026-01-01T11:00:00Z",
    }
    assert [r["duplicate_of"] for r in Deduper(store).run([lead_only, edited])] == ["story-a", "story-a"]


def test_signatures_estimate_the_number_of_shingles() -> None:
    signer = Signer()
    rng = random.Random(5)
    for words in (30, 200, 2000):
        text = " ".join(f"w{rng.randrange(10**9)}" for _ in range(words))
        sig = signer.sign([normalise(text)])[0]
        estimate = signer.compare(sig, sig[None, :])[0].shingles
        assert abs(estimate - (words - 4)) < 0.35 * (words - 4), (words, estimate)


def test_reconcile_does_not_depend_on_its_batch_size(tmp_path: Path) -> None:
    """The run reconciles its articles in large checks (``RECONCILE_BATCH``): the lookups see the same
    stored articles whatever the checks' size, so small checks end in the same clusters and lists."""
    records = fresh()
    random.Random(5).shuffle(records)
    shards = [list(Deduper().run(records[i::3])) for i in range(3)]  # three writers that never met
    finals = []
    for batch_size in (7, 4096):
        store = open_store(f"sqlite:///{tmp_path / f'b{batch_size}.db'}")
        try:
            for shard in shards:
                assert store.index([dict(r) for r in shard]).errors == []
            report = reconcile(store, [r for shard in shards for r in shard], batch_size=batch_size)
            assert report.merged > 0
            lists = {
                r["id"]: sorted(e["id"] for e in (store.get(r["id"]) or {}).get("also_published_by") or [])
                for r in RECORDS
            }
            finals.append((_stored_assignment(store), lists, report.rewritten))
        finally:
            store.close()
    assert finals[0] == finals[1]


def test_reconcile_computes_band_keys_from_the_signatures_a_run_keeps(tmp_path: Path) -> None:
    """A run keeps only :func:`pipeline.run.kept_for_reconcile` of what it indexed (no band keys, the
    signature as 32-bit integers): reconcile finds the same neighbours and ends in the same clusters."""
    from array import array

    from pipeline.run import kept_for_reconcile

    records = fresh()
    random.Random(7).shuffle(records)
    shards = [list(Deduper().run(records[i::3])) for i in range(3)]  # three writers that never met
    kept = [kept_for_reconcile(r) for shard in shards for r in shard]
    assert all("lsh_bands" not in k and isinstance(k["minhash"], array) for k in kept)
    assert all(
        k["minhash"].itemsize == 4 and list(k["minhash"]) == r["minhash"]
        for k, r in zip(kept, [r for shard in shards for r in shard], strict=True)
    )
    finals = []
    for name, given in (("full", [r for shard in shards for r in shard]), ("kept", kept)):
        store = open_store(f"sqlite:///{tmp_path / f'{name}.db'}")
        try:
            for shard in shards:
                assert store.index([dict(r) for r in shard]).errors == []
            report = reconcile(store, given)
            assert report.merged > 0
            finals.append((_stored_assignment(store), report.merged, report.rewritten))
        finally:
            store.close()
    assert finals[0] == finals[1]
