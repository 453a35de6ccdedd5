"""SQLiteStore specifics the engine-neutral contract suite does not reach: the simple_query_string
-> FTS5 translation, store URLs, several processes writing one file, representative election and
FTS consistency after updates. (Behaviour shared with Elasticsearch lives in test_store_contract.py.)
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import struct
import subprocess
import sys
import threading
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.stores import open_store, sqlite_path
from pipeline.stores.base import SearchQuery
from pipeline.stores.sqlite import BATCH_SIZE, SQLiteStore, compile_text_query

ROOT = Path(__file__).resolve().parent.parent


def doc(aid: str, text: str = "", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": aid,
        "url": f"https://example.org/{aid}",
        "source": {"feed": "https://example.org/rss", "name": "Example Wire", "domain": "example.org"},
        "title": f"Story {aid}",
        "text": text or f"Report {aid} about rainfall in the valley.",
        "published_at": "2024-03-01T12:00:00+00:00",
        "cluster_id": aid,
        "duplicate_of": None,
    }
    base.update(extra)
    return base


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SQLiteStore(tmp_path / "s.db")
    s.setup()
    yield s
    s.close()


def ids(result: Any) -> set[str]:
    return {h["id"] for h in result.hits}


# --- query translation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("raqqa", ("pos", '"raqqa"')),
        ("Raqqa fighting", ("pos", '("raqqa" AND "fighting")')),
        # Lucene's SimpleQueryParser reads left to right without precedence
        ("x | y z", ("pos", '(("x" OR "y") AND "z")')),
        ("x y | z", ("pos", '(("x" AND "y") OR "z")')),
        ("x (y | z)", ("pos", '("x" AND ("y" OR "z"))')),
        ("war -syria", ("pos", '("war" NOT "syria")')),
        ("-syria", ("neg", '"syria"')),
        ("war | -syria", ("neg", '("syria" NOT "war")')),
        ("- - war", ("pos", '"war"')),
        ('"old city"', ("pos", '"old city"')),
        ('"battle for raqqa"', ("pos", 'NEAR("battle" "raqqa", 1)')),  # stopword = a gap
        ('"the war"', ("pos", '"war"')),
        ('"old city"~3', ("pos", 'NEAR("old" "city", 3)')),
        ("raq*", ("pos", '"raq"*')),
        ("al-Qaeda", ("pos", '("al" AND "qaeda")')),
        ("Assad's", ("pos", '"assad"')),
        ("fighting~2", ("pos", '"fighting"')),
        ("the of", ("none", "")),
        ("   ", ("all", "")),
        ("*", ("all", "")),
        ('"', ("none", "")),
        ('x "', ("pos", '"x"')),
    ],
)
def test_simple_query_string_translation(text: str, expected: tuple[str, str]) -> None:
    assert compile_text_query(text) == expected


def test_no_user_input_makes_an_invalid_fts_expression() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(a, tokenize='porter unicode61 remove_diacritics 2')")
    conn.execute("INSERT INTO t VALUES ('old city of raqqa near the river')")
    pieces = [
        '"',
        "(",
        ")",
        "-",
        "+",
        "|",
        "*",
        "~",
        "~2",
        "\\",
        "'",
        ":",
        "^",
        "NEAR",
        "AND",
        "OR",
        "NOT",
        "raqqa",
        "old",
        "city",
        "the",
        "é",
        "x-y",
        "{",
        "}",
        "[",
        "]",
        "\x00",
        " ",
        " ",
        " ",
    ]
    rng = random.Random(1234)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        kind, expr = compile_text_query(text)
        assert kind in ("pos", "neg", "all", "none"), text
        if kind in ("pos", "neg"):
            conn.execute("SELECT count(*) FROM t WHERE t MATCH ?", (expr,)).fetchone()  # must not raise


# --- URLs -------------------------------------------------------------------------------


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = open_store("sqlite:///rel/dir/a.db")  # relative to the working folder, folders created
    assert (tmp_path / "rel" / "dir" / "a.db").exists()
    assert isinstance(s, SQLiteStore)
    assert s.url == "sqlite:///rel/dir/a.db"
    s.close()
    s = open_store(f"sqlite:///{tmp_path / 'abs' / 'b.db'}")  # sqlite:////abs/path
    assert (tmp_path / "abs" / "b.db").exists()
    s.close()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sqlite_path("sqlite:///~/n.db") == str(tmp_path / "home" / "n.db")
    # None -> the configured store (NEWSWIRE_STORE)
    from pipeline.settings import get_settings

    monkeypatch.setenv("NEWSWIRE_STORE", f"sqlite:///{tmp_path / 'env' / 'c.db'}")
    get_settings.cache_clear()
    s = open_store()
    assert Path(s.path) == tmp_path / "env" / "c.db"  # type: ignore[attr-defined]
    s.close()
    memory = open_store("sqlite:///:memory:")
    memory.index([doc("m1")])
    assert memory.count() == 1
    memory.close()


@pytest.mark.parametrize(
    "url", ["postgres://db/news", "sqlite://relative.db", "sqlite:///", "news.db", "ftp://x"]
)
def test_unsupported_store_urls_are_named(url: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(url))):
        open_store(url)


def test_a_store_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SQLiteStore(path).setup()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="schema version 0"):
        SQLiteStore(path).setup()


# --- concurrency ------------------------------------------------------------------------

WRITER = """
import sys
from pipeline.stores import open_store
url, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_store(url)
docs = [{"id": f"{who}-{i}", "title": f"{who} story {i}", "text": f"shared words {who}w{i}",
         "published_at": "2024-01-01T00:00:00Z"} for i in range(n)]
docs += [{"id": f"common-{i}", "title": "common", "text": "shared common", "published_at": None}
         for i in range(40)]
for start in range(0, len(docs), 25):  # many small transactions interleave with the other writers
    report = store.index(docs[start:start + 25])
    assert not report.errors, report.errors
store.close()
"""


@pytest.mark.slow
def test_several_processes_write_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    open_store(url).close()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"p{n}", "150"], cwd=ROOT, stderr=subprocess.PIPE
        )
        for n in range(3)
    ]
    for w in writers:
        _, err = w.communicate(timeout=240)
        assert w.returncode == 0, err.decode()
    store = open_store(url)
    assert store.count() == 3 * 150 + 40
    assert store.search(SearchQuery(text="shared", limit=1, facets=False)).total == 3 * 150 + 40
    assert ids(store.search(SearchQuery(text="p1w77", facets=False))) == {"p1-77"}
    store.close()


def test_searches_run_while_another_connection_holds_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = SQLiteStore(path)
    store.index([doc("a1"), doc("a2")])
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE articles SET language = 'xx'")
    try:
        assert store.search(SearchQuery(text="rainfall")).total == 2  # WAL: readers never wait
        assert store.get("a1") is not None
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    store.close()


def test_threads_share_one_store(store: SQLiteStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                store.index([doc(f"t{n}-{i}")])
                store.search(SearchQuery(text="rainfall", limit=5))
        except BaseException as exc:  # noqa: BLE001 - any error in a thread is reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 80


# --- clusters and updates ---------------------------------------------------------------


def test_earliest_member_stands_in_until_the_representative_arrives(store: SQLiteStore) -> None:
    late = doc("m-late", published_at="2024-03-01T15:00:00Z", cluster_id="rep", duplicate_of="rep")
    early = doc("m-early", published_at="2024-03-01T13:00:00Z", cluster_id="rep", duplicate_of="rep")
    store.index([late, early])
    assert ids(store.search(SearchQuery(text="rainfall"))) == {"m-early"}
    store.index([doc("rep", published_at="2024-03-01T12:00:00Z")])
    result = store.search(SearchQuery(text="rainfall"))
    assert ids(result) == {"rep"}
    assert result.total == 1
    assert {e["id"] for e in result.hits[0]["also_published_by"]} == {"m-late", "m-early"}
    assert [m["id"] for m in store.cluster_members("rep")] == ["rep", "m-early", "m-late"]


def test_a_member_that_changes_cluster_leaves_its_old_representative(store: SQLiteStore) -> None:
    store.index([doc("r1"), doc("r2"), doc("m", cluster_id="r1", duplicate_of="r1")])
    assert [e["id"] for e in store.get("r1")["also_published_by"]] == ["m"]  # type: ignore[index]
    store.index([doc("m", cluster_id="r2", duplicate_of="r2")])
    assert store.get("r1")["also_published_by"] == []  # type: ignore[index]
    assert [e["id"] for e in store.get("r2")["also_published_by"]] == ["m"]  # type: ignore[index]
    assert [m["id"] for m in store.cluster_members("r2")] == ["r2", "m"]


def test_updates_keep_the_full_text_index_consistent(store: SQLiteStore) -> None:
    n = BATCH_SIZE + 7  # crosses a batch boundary; the same id twice in one call
    docs = [doc(f"d{i}", text=f"original wording number{i}") for i in range(n)]
    report = store.index([*docs, doc("d3", text="replacement phrasing")])
    assert (report.indexed, report.created, report.errors) == (n + 1, n, [])
    assert store.count() == n
    assert ids(store.search(SearchQuery(text="replacement", facets=False))) == {"d3"}
    assert store.search(SearchQuery(text="number3", facets=False)).total == 0
    changed = [doc(f"d{i}", text=f"revised wording number{i}") for i in range(0, n, 2)]
    store.index(changed)
    untouched = [i for i in range(n) if i % 2 and i != 3]  # d3 was replaced in the first call
    assert store.search(SearchQuery(text="original", facets=False, limit=1)).total == len(untouched)
    assert store.search(SearchQuery(text="revised", facets=False, limit=1)).total == len(changed)
    store._conn.execute(
        "INSERT INTO fts (fts, rank) VALUES ('integrity-check', 1)"
    )  # raises if index != content


def test_bad_cursors_and_bad_articles_are_named(store: SQLiteStore) -> None:
    store.index([doc(f"c{i}") for i in range(5)])
    page = store.search(SearchQuery(text="rainfall", limit=2, sort="date"))
    assert page.next_after is not None
    with pytest.raises(ValueError, match="date sort"):
        store.search(SearchQuery(text="rainfall", limit=2, sort="relevance", after=page.next_after))
    with pytest.raises(ValueError, match="invalid search cursor"):
        store.search(SearchQuery(limit=2, after=["nonsense"]))
    report = store.index([["not", "an", "object"], doc("ok"), {"id": "x", "minhash": "abc"}])  # type: ignore[list-item]
    assert report.indexed == 1
    assert [e["id"] for e in report.errors] == [None, "x"]
    assert "JSON object" in report.errors[0]["error"]
    assert "minhash" in report.errors[1]["error"]


def test_stored_json_is_the_article(store: SQLiteStore) -> None:
    article = doc(
        "u1", title="Ünïcode – “quotes”", minhash=[1, 2, 2**40], lsh_bands=["0:ab", "1:cd"], extra={"k": [1]}
    )
    store.index([article])
    assert store.get("u1") == article
    raw = sqlite3.connect(store.path).execute("SELECT doc, minhash FROM articles WHERE id = 'u1'").fetchone()
    assert "minhash" not in json.loads(zlib.decompress(raw[0]))
    assert json.loads(raw[1]) == [1, 2, 2**40]  # wider than 32 bits: kept as JSON text


def test_documents_and_signatures_are_stored_compactly(store: SQLiteStore) -> None:
    """Schema 5: the document is compressed JSON, a 32-bit signature 4 bytes a value; both read back
    exactly, and full-text search, highlights and the FTS index's own check read the compressed rows."""
    text = " ".join(f"Flood waters rose in district {i} of the delta overnight." for i in range(60))
    signature = [0, 1, 2**32 - 1] + [(i * 2654435761) % 2**32 for i in range(157)]
    article = doc("big", text=text, minhash=signature)
    store.index([article])
    assert store.get("big") == article
    raw_doc, raw_minhash = store._conn.execute(
        "SELECT doc, minhash FROM articles WHERE id = 'big'"
    ).fetchone()
    assert isinstance(raw_doc, bytes)
    assert len(raw_doc) < len(json.dumps(article)) / 3  # compressed, not just stored as a blob
    assert raw_minhash == struct.pack("<160I", *signature)
    found = store.search(SearchQuery(text="delta district", highlight=True))
    assert [h["id"] for h in found.hits] == ["big"]
    assert "<mark>" in " ".join(found.hits[0]["_highlight"])
    store.index(
        [doc("big", text="Drought in the highlands.", minhash=signature)]
    )  # FTS delete reads the old row
    assert ids(store.search(SearchQuery(text="delta"))) == set()
    assert ids(store.search(SearchQuery(text="highlands"))) == {"big"}
    store._conn.execute("INSERT INTO fts (fts, rank) VALUES ('integrity-check', 1)")


def test_a_version_4_store_keeps_its_plain_rows_readable(tmp_path: Path) -> None:
    """A version 4 file (plain JSON rows, the view over them) migrates to 5 without rewriting rows:
    the old row is still found and read; new rows are compact; both are searchable."""
    path = tmp_path / "v4.db"
    old = doc("old", text="Harvest festival in the valley.", minhash=[5, 6, 7])
    first = SQLiteStore(path)
    first.setup()
    first.index([old])
    first.close()
    conn = sqlite3.connect(path)  # what a version 4 file wrote: plain JSON, JSON signatures, the old view
    conn.create_function("nw_doc", 1, lambda v: zlib.decompress(v).decode() if isinstance(v, bytes) else v)
    conn.execute("UPDATE articles SET doc = nw_doc(doc), minhash = '[5,6,7]' WHERE id = 'old'")
    conn.executescript(
        "DROP VIEW article_text; CREATE VIEW article_text AS SELECT rid, "
        "json_extract(doc, '$.title') AS title, json_extract(doc, '$.summary') AS summary, "
        "json_extract(doc, '$.text') AS text FROM articles; "
        "UPDATE meta SET value = '4' WHERE key = 'schema_version';"
    )
    conn.close()
    migrated = SQLiteStore(path)
    migrated.setup()
    try:
        assert migrated._schema_version() == "5"
        assert migrated.get("old") == old
        migrated.index([doc("new", text="Harvest fair in the hills.")])
        assert ids(migrated.search(SearchQuery(text="harvest"))) == {"old", "new"}
        assert isinstance(
            migrated._conn.execute("SELECT doc FROM articles WHERE id = 'new'").fetchone()[0], bytes
        )
        migrated._conn.execute("INSERT INTO fts (fts, rank) VALUES ('integrity-check', 1)")
    finally:
        migrated.close()


def test_a_version_2_store_is_migrated_with_its_hierarchy_rows(tmp_path: Path) -> None:
    """Schema 3 added the place-hierarchy tables; a version 2 file gains them, filled from its documents."""
    path = tmp_path / "v2.db"
    goma = {
        "id": "geonames:216281",
        "name": "Goma",
        "kind": "city",
        "country_code": "CD",
        "ancestors": ["geonames:206938", "geonames:203312"],
        "admin1": {"id": "geonames:206938", "name": "North Kivu"},
    }
    first = SQLiteStore(path)
    first.setup()
    first.index([doc("a", locations=[goma]), doc("b", locations=[dict(goma, ancestors=None, admin1=None)])])
    first.close()
    conn = sqlite3.connect(path)  # what a version 2 file looks like
    conn.executescript(
        "DROP TABLE article_location_ancestors; DROP TABLE article_admin1; "
        "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
    )
    conn.close()
    migrated = SQLiteStore(path)
    migrated.setup()
    try:
        assert migrated._schema_version() == "5"
        assert ids(migrated.search(SearchQuery(location_ids=[["geonames:203312"]]))) == {"a"}
        assert ids(migrated.search(SearchQuery(location_ids=[["geonames:216281"]]))) == {"a", "b"}
        facet = migrated.search(SearchQuery()).facets["location_admin1"]
        assert facet == [{"key": "geonames:206938", "name": "North Kivu", "count": 1}]
    finally:
        migrated.close()


def test_a_version_3_store_stops_sorting_and_filtering_on_estimated_dates(tmp_path: Path) -> None:
    """Schema 4: an estimated ``published_at`` counts as no date; a version 3 file is migrated."""
    path = tmp_path / "v3.db"
    first = SQLiteStore(path)
    first.setup()
    first.index(
        [
            doc("dated", published_at="2017-06-07T08:00:00+00:00"),
            doc("guess", published_at="2017-06-09T08:00:00+00:00", published_at_estimated=True),
        ]
    )
    first.close()
    conn = sqlite3.connect(path)  # what a version 3 file wrote: the estimate as a date
    conn.execute("UPDATE articles SET published_ms = 1497002400000 WHERE id = 'guess'")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    migrated = SQLiteStore(path)
    migrated.setup()
    try:
        assert migrated._schema_version() == "5"
        assert [h["id"] for h in migrated.search(SearchQuery(sort="date")).hits] == ["dated", "guess"]
        june = SearchQuery(since=datetime(2017, 6, 1, tzinfo=UTC), until=datetime(2017, 6, 30, tzinfo=UTC))
        assert ids(migrated.search(june)) == {"dated"}
        guess = migrated.get("guess")
        assert guess is not None
        assert guess["published_at"] == "2017-06-09T08:00:00+00:00"
    finally:
        migrated.close()
