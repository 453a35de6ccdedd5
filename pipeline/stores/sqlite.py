"""SQLiteStore: the embedded engine of the store contract (:mod:`pipeline.stores.base`).

Contract: every method of :class:`~pipeline.stores.base.Store`, with the same answers as
:class:`~pipeline.stores.elasticsearch.ElasticsearchStore` for the same queries (relevance
scores aside); ``tests/test_store_contract.py`` runs one suite against both. The shared
semantics are written down in the README ("Store semantics") and summarised here:

- Text goes through :func:`compile_text_query`, a port of Lucene's ``SimpleQueryParser``
  (what Elasticsearch's ``simple_query_string`` uses) with ``default_operator AND``:
  ``+`` AND, ``|`` OR, ``-`` NOT, ``"phrase"``, ``"phrase"~N``, ``prefix*``, ``( )``,
  evaluated left to right like Lucene (no operator precedence), English stopwords dropped
  like the ``english`` analyzer. The result is always a well-formed FTS5 expression with
  every user word quoted, so no input (a stray quote, ``NEAR(``, ``*``) can raise a SQL error.
- Full text: an FTS5 table (``porter unicode61`` tokenizer: Porter stemming as in the
  ``english`` analyzer, diacritics folded) over ``title``, ``summary``, ``text``. It is an
  *external-content* table reading a view over the JSON documents, so article text is
  stored once.
- Filters use side tables (actor ids, locations with country code and point, the
  locations' ancestors, their admin-1 divisions, LSH band keys) kept in step with each
  document; a location filter matches ``article_locations`` UNION ``article_location_ancestors``
  (the place hierarchy of :mod:`pipeline.stores.base`); facets are ``GROUP BY`` over the
  matching set, which is materialised once per search in a temporary table.
- Schema version 3 added the hierarchy tables; a version 2 file is migrated in place by
  ``setup()`` (tables created, rows filled from the stored documents). Version 4: an estimated
  ``published_at`` (``published_at_estimated: true``) is stored as no date (``published_ms`` =
  :data:`MISSING_DATE`: no date filter matches it, date order puts it last); a version 3 file is
  migrated in place (one ``UPDATE``). Version 5 stores documents compactly (issue 15: 16.9 -> 11.1 KB
  per article on the end-to-end bench corpus): ``doc`` is zlib-compressed JSON (:func:`pack_doc`), a
  MinHash of 32-bit values is packed 4 bytes a value (:func:`~pipeline.stores.base.pack_signature`);
  the full-text view reads documents through the ``nw_doc`` SQL function every connection of the
  store registers. A version 4 file is migrated in place by replacing the view: its text rows stay
  readable as they are, and every row written later is compact.
- Collapse (the default) returns cluster representatives only: the article whose id is
  its ``cluster_id`` (or, when that one was never stored, the cluster's earliest member).
  ``total`` and facets count the same set.
- Writes: WAL journal, ``BEGIN IMMEDIATE`` batches of :data:`BATCH_SIZE` articles,
  a busy timeout, so several processes (Airflow workers, a CLI run, the API) can share a
  file. Indexing is idempotent by ``id``; a duplicate adds itself once to its
  representative's ``also_published_by``.

Why hand-written: no maintained library translates ``simple_query_string`` syntax to FTS5,
and an ORM would add nothing to these few tables but per-row overhead on the 100k-article
bulk path.
"""

from __future__ import annotations

import html
import json
import math
import re
import secrets
import sqlite3
import threading
import time
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from pipeline.clusters import Placement, append_publication, merge_publications, plan_batch, publication
from pipeline.records import parse_iso
from pipeline.stores.base import (
    Article,
    ClusterRef,
    IndexReport,
    SearchQuery,
    SearchResult,
    SearchTimeout,
    admin1_of,
    country_name,
    location_ancestors,
    pack_signature,
    stored_form,
    unpack_signature,
)

SCHEMA_VERSION = "5"  # 3: hierarchy tables; 4: estimated dates count as none; 5: compressed documents
BATCH_SIZE = 2000  # articles per write transaction
MISSING_DATE = -(2**62)  # published_ms of an article without a date: sorts last in "date desc"
EARTH_RADIUS_KM = 6371.0087714  # mean radius, as Elasticsearch's arc distance
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180.0
BM25_WEIGHTS = (3.0, 1.5, 1.0)  # title, summary, text
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IN_CHUNK = 500  # values per "IN (...)" in lookups

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (the english analyzer of Elasticsearch).
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    }
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    published_ms INTEGER NOT NULL,   -- UTC epoch milliseconds, {MISSING_DATE} when unknown
    cluster TEXT NOT NULL,           -- cluster_id, or the article's own id
    duplicate_of TEXT,
    is_rep INTEGER NOT NULL DEFAULT 1,
    content_hash TEXT,
    language TEXT,
    source_name TEXT,
    source_name_lc TEXT,
    source_domain_lc TEXT,
    -- the large columns last: filters read the small ones without walking overflow pages
    minhash BLOB,                    -- packed 32-bit values (JSON text if any is wider), or NULL
    doc BLOB NOT NULL                -- the article as zlib-compressed JSON, without "minhash"
);
CREATE INDEX IF NOT EXISTS articles_date ON articles (published_ms DESC, id);
CREATE INDEX IF NOT EXISTS articles_cluster ON articles (cluster);
CREATE INDEX IF NOT EXISTS articles_hash ON articles (content_hash) WHERE content_hash IS NOT NULL;
CREATE INDEX IF NOT EXISTS articles_source ON articles (source_name_lc);
CREATE INDEX IF NOT EXISTS articles_domain ON articles (source_domain_lc);
CREATE INDEX IF NOT EXISTS articles_language ON articles (language);
CREATE TABLE IF NOT EXISTS article_actors (
    actor_id TEXT NOT NULL, art INTEGER NOT NULL, name TEXT,
    PRIMARY KEY (actor_id, art)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS article_actors_art ON article_actors (art, actor_id);
CREATE TABLE IF NOT EXISTS article_locations (
    loc_id TEXT NOT NULL, art INTEGER NOT NULL, name TEXT, country_code TEXT, lat REAL, lon REAL,
    PRIMARY KEY (loc_id, art)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS article_locations_art ON article_locations (art, loc_id);
CREATE INDEX IF NOT EXISTS article_locations_country ON article_locations (country_code, art);
CREATE INDEX IF NOT EXISTS article_locations_point ON article_locations (lat, lon) WHERE lat IS NOT NULL;
CREATE TABLE IF NOT EXISTS article_location_ancestors (
    anc_id TEXT NOT NULL, art INTEGER NOT NULL, PRIMARY KEY (anc_id, art)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS article_location_ancestors_art ON article_location_ancestors (art);
CREATE TABLE IF NOT EXISTS article_admin1 (
    admin1_id TEXT NOT NULL, art INTEGER NOT NULL, name TEXT, PRIMARY KEY (admin1_id, art)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS article_admin1_art ON article_admin1 (art);
CREATE TABLE IF NOT EXISTS band_keys (
    key TEXT NOT NULL, art INTEGER NOT NULL, PRIMARY KEY (key, art)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed_state (url TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE VIEW IF NOT EXISTS article_text AS SELECT rid,
    CASE WHEN json_type(j, '$.title') = 'text' THEN json_extract(j, '$.title') END AS title,
    CASE WHEN json_type(j, '$.summary') = 'text' THEN json_extract(j, '$.summary') END AS summary,
    CASE WHEN json_type(j, '$.text') = 'text' THEN json_extract(j, '$.text') END AS text
    FROM (SELECT rid, nw_doc(doc) AS j FROM articles);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    title, summary, text, content='article_text', content_rowid='rid',
    tokenize='porter unicode61 remove_diacritics 2'
);
"""


# --------------------------------------------------------------------------------------
# simple_query_string -> FTS5
# --------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
_POSSESSIVE = re.compile(r"(?<=[^\W_])['’]s\b", re.IGNORECASE)
_TOKEN_END = frozenset(' \t\n\r"|+()')
_FUZZY = re.compile(r"~\d*$")


@dataclass
class _Node:
    kind: Literal["term", "phrase", "and", "or", "not", "all"]
    children: list[_Node] = field(default_factory=list)
    words: list[str | None] = field(default_factory=list)  # None marks a dropped stopword
    prefix: bool = False
    slop: int = 0


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(unicodedata.normalize("NFC", text))]


def _term_node(raw: str) -> _Node | None:
    prefix = raw.endswith("*")
    if prefix:
        raw = raw.rstrip("*")
        if not raw:
            return _Node("all")  # a bare "*" matches every document
    else:
        raw = _FUZZY.sub("", raw)  # fuzziness (~N) is not supported by FTS5: exact term
    words = _words(_POSSESSIVE.sub("", raw))
    if not prefix:
        words = [w for w in words if w not in STOPWORDS]
    if not words:
        return None  # analyses to nothing: Lucene drops the clause
    return _Node("term", words=list(words), prefix=prefix)


def _phrase_node(raw: str, slop: int) -> _Node | None:
    words: list[str | None] = [None if w in STOPWORDS else w for w in _words(raw)]
    while words and words[0] is None:
        words.pop(0)
    while words and words[-1] is None:
        words.pop()
    if not words:
        return None
    return _Node("phrase", words=words, slop=slop)


class _Parser:
    """Lucene ``SimpleQueryParser`` state machine (left to right, no precedence)."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def parse(self, depth: int = 0) -> _Node | None:
        top: _Node | None = None
        op: str | None = None  # operator seen since the last clause
        prev: str | None = None  # operator of the boolean node at ``top``
        nots = 0
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            branch: _Node | None
            if c in " \t\n\r":
                self.i += 1
                continue
            if c == "|" or c == "+":
                if op is None and top is not None:
                    op = "or" if c == "|" else "and"
                self.i += 1
                continue
            if c == "-":
                nots += 1
                self.i += 1
                continue
            if c == ")":
                self.i += 1
                if depth > 0:
                    return top
                continue  # a stray closing bracket is ignored
            if c == "(":
                self.i += 1
                branch = self.parse(depth + 1)
            elif c == '"':
                branch = self._phrase()
            else:
                branch = self._term()
            if branch is not None:
                if nots % 2:
                    branch = _Node("not", [branch])
                if top is None:
                    top = branch
                else:
                    current = op or "and"
                    if prev != current:
                        top = _Node(current, [top])  # type: ignore[arg-type]
                    top.children.append(branch)
                    prev = current
                op = None
            nots = 0
        return top

    def _read(self, stop: frozenset[str]) -> str:
        out = []
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c == "\\" and self.i + 1 < len(s):
                out.append(s[self.i + 1])
                self.i += 2
                continue
            if c in stop:
                break
            out.append(c)
            self.i += 1
        return "".join(out)

    def _term(self) -> _Node | None:
        return _term_node(self._read(_TOKEN_END))

    def _phrase(self) -> _Node | None:
        self.i += 1  # opening quote; an unterminated phrase runs to the end
        raw = self._read(frozenset('"'))
        self.i += 1
        slop = 0
        if self.i < len(self.s) and self.s[self.i] == "~":
            m = re.match(r"~(\d*)", self.s[self.i :])
            assert m is not None
            self.i += len(m.group(0))
            slop = int(m.group(1) or 0)
        return _phrase_node(raw, slop)


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _fts_leaf(node: _Node) -> str:
    if node.kind == "term":
        parts = [_quote(w) for w in node.words if w]
        if node.prefix:
            parts[-1] += "*"
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
    # phrase: stopwords become gaps (as the english analyzer's position increments)
    segments: list[list[str]] = [[]]
    gaps = 0
    for w in node.words:
        if w is None:
            gaps += 1
            if segments[-1]:
                segments.append([])
        else:
            segments[-1].append(w)
    if node.slop:
        words = [w for w in node.words if w]
        if len(words) == 1:
            return _quote(words[0])
        return "NEAR(" + " ".join(_quote(w) for w in words) + f", {node.slop + gaps})"
    if len(segments) == 1:
        return _quote(" ".join(segments[0]))
    return "NEAR(" + " ".join(_quote(" ".join(seg)) for seg in segments) + f", {gaps})"


Kind = Literal["pos", "neg", "all", "none"]


def _compile(node: _Node) -> tuple[Kind, str]:
    """Set algebra: "pos" e = docs matching e; "neg" e = docs NOT matching e."""
    if node.kind in ("term", "phrase"):
        return "pos", _fts_leaf(node)
    if node.kind == "all":
        return "all", ""
    if node.kind == "not":
        kind, expr = _compile(node.children[0])
        return {"pos": ("neg", expr), "neg": ("pos", expr), "all": ("none", ""), "none": ("all", "")}[kind]  # type: ignore[return-value]
    parts = [_compile(c) for c in node.children]
    pos = [e for k, e in parts if k == "pos"]
    neg = [e for k, e in parts if k == "neg"]
    if node.kind == "and":
        if any(k == "none" for k, _ in parts):
            return "none", ""
        if not pos and not neg:
            return "all", ""
        if pos:
            p = _join(pos, "AND")
            return "pos", (f"({p} NOT {_join(neg, 'OR')})" if neg else p)
        return "neg", _join(neg, "OR")
    # or
    if any(k == "all" for k, _ in parts):
        return "all", ""
    if not pos and not neg:
        return "none", ""
    if neg:  # P or not N1 or not N2 = not ((N1 and N2) not P)
        n = _join(neg, "AND")
        return "neg", (f"({n} NOT {_join(pos, 'OR')})" if pos else n)
    return "pos", _join(pos, "OR")


def _join(exprs: list[str], op: str) -> str:
    return exprs[0] if len(exprs) == 1 else "(" + f" {op} ".join(exprs) + ")"


def compile_text_query(text: str) -> tuple[Kind, str]:
    """A ``simple_query_string`` (default operator AND) as an FTS5 MATCH expression.

    Returns ``("pos", expr)`` (documents matching expr), ``("neg", expr)`` (documents *not*
    matching expr, e.g. ``-syria``), ``("all", "")`` (no text constraint: blank text or
    ``*``) or ``("none", "")`` (nothing left to search for, e.g. only stopwords).
    """
    if not text.strip():
        return "all", ""
    node = _Parser(text).parse()
    if node is None:
        return "none", ""
    return _compile(node)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _to_ms(value: Any) -> int | None:
    """UTC epoch milliseconds of an ISO 8601 string / datetime / epoch-millis number."""
    if isinstance(value, bool):
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    if value is not None and not isinstance(value, (str, datetime)):
        raise ValueError(f"not a date: {value!r}")
    dt = parse_iso(value)
    return None if dt is None else (dt - _EPOCH) // timedelta(milliseconds=1)


def _haversine(lat1: float | None, lon1: float | None, lat2: float, lon2: float) -> float | None:
    if lat1 is None or lon1 is None:
        return None
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def pack_doc(doc: dict[str, Any]) -> bytes:
    """A document as schema 5 stores it: compact JSON, zlib-compressed (text is ~55% of a
    document and compresses about 3:1; level 6 costs ~0.2 ms per write)."""
    return zlib.compress(_dumps(doc).encode("utf-8"), 6)


def doc_json(stored: bytes | str) -> str:
    """The JSON text of a stored document: compressed (schema 5) or plain (rows of older files).
    Registered as the SQL function ``nw_doc`` the full-text view reads through."""
    return zlib.decompress(stored).decode("utf-8") if isinstance(stored, bytes) else stored


def _unpack_doc(stored: bytes | str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(doc_json(stored))
    return doc


def _unpack_minhash(stored: bytes | str | None) -> list[Any] | None:
    if stored is None:
        return None
    if isinstance(stored, bytes):
        return unpack_signature(stored)
    values: list[Any] = json.loads(stored)
    return values


def _register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("nw_distance_km", 4, _haversine, deterministic=True)
    conn.create_function("nw_doc", 1, doc_json, deterministic=True)


def _chunks(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(values)
    while chunk := list(islice(it, size)):
        yield chunk


def _json_list(values: Iterable[Any]) -> str:
    """The distinct strings of ``values`` as one JSON array, bound as a single parameter and
    read back with ``json_each``: one statement for any number of lookups (no chunks of
    ``?`` marks, no re-preparing a statement per chunk size)."""
    return json.dumps(sorted({v for v in values if isinstance(v, str)}), ensure_ascii=False)


def _marks(n: int) -> str:
    return ",".join("?" * n)


@dataclass
class _Prepared:
    """An article validated and split into the columns and side rows it is stored as."""

    id: str
    doc: dict[str, Any]
    minhash: bytes | str | None
    published_ms: int
    cluster: str
    duplicate_of: str | None
    actors: list[tuple[str, str | None]]
    locations: list[tuple[str, str | None, str | None, float | None, float | None]]
    ancestors: list[str]  # of every tagged location (the place hierarchy)
    admin1: list[tuple[str, str]]  # (id, name) of the admin-1 divisions the locations roll up to
    bands: list[str]


def _prepare(article: Any) -> _Prepared:
    if not isinstance(article, dict):
        raise ValueError(f"an article must be a JSON object, got {type(article).__name__}")
    aid = article.get("id")
    if not isinstance(aid, str) or not aid:
        raise ValueError("an article needs a non-empty string 'id'")
    try:
        ms = _to_ms(article.get("published_at"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"published_at {article.get('published_at')!r} is not an ISO 8601 date") from exc
    doc = stored_form(article)
    minhash = doc.pop("minhash", None)
    if minhash is not None and not isinstance(minhash, list):
        raise ValueError("minhash must be a list of integers")
    duplicate_of = _text(doc.get("duplicate_of")) or None
    if duplicate_of == aid:
        duplicate_of = None
    cluster = _text(doc.get("cluster_id")) or duplicate_of or aid
    actors: dict[str, str | None] = {}
    for a in doc.get("actors") or []:
        if isinstance(a, dict) and isinstance(a.get("id"), str):
            actors.setdefault(a["id"], _text(a.get("name")))
    locations: dict[str, tuple[str, str | None, str | None, float | None, float | None]] = {}
    ancestors: set[str] = set()
    admin1: dict[str, str] = {}
    for loc in doc.get("locations") or []:
        if isinstance(loc, dict) and isinstance(loc.get("id"), str):
            ancestors.update(location_ancestors(loc))
            if (a1 := admin1_of(loc)) is not None:
                admin1.setdefault(*a1)
            lat, lon = _float(loc.get("lat")), _float(loc.get("lon"))
            if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
                lat = lon = None
            cc = _text(loc.get("country_code"))
            locations.setdefault(
                loc["id"], (loc["id"], _text(loc.get("name")), cc.upper() if cc else None, lat, lon)
            )
    bands = sorted({b for b in doc.get("lsh_bands") or [] if isinstance(b, str)})
    return _Prepared(
        id=aid,
        doc=doc,
        minhash=(pack_signature(minhash) or _dumps(minhash)) if minhash is not None else None,
        # an estimated date (the fetch time of an undated feed item) is shown but never
        # filtered or sorted on: it counts as no date
        published_ms=MISSING_DATE if ms is None or article.get("published_at_estimated") is True else ms,
        cluster=cluster,
        duplicate_of=duplicate_of,
        actors=list(actors.items()),
        locations=list(locations.values()),
        ancestors=sorted(ancestors),
        admin1=sorted(admin1.items()),
        bands=bands,
    )


def _source(doc: dict[str, Any]) -> dict[str, Any]:
    src = doc.get("source")
    return src if isinstance(src, dict) else {}


def _geo_sides(q: SearchQuery) -> list[tuple[str, list[Any]]]:
    """Side queries (SQL, parameters) of the ``near`` and ``bbox`` filters over ``article_locations``."""
    out: list[tuple[str, list[Any]]] = []
    if q.near is not None:
        lat, lon, km = (float(v) for v in q.near)
        dlat = km / KM_PER_DEGREE * 1.01 + 1e-9
        cond = "lat BETWEEN ? AND ?"
        args: list[Any] = [lat - dlat, lat + dlat]
        if abs(lat) + dlat < 89.0:
            dlon = dlat / math.cos(math.radians(abs(lat) + dlat))
            if lon - dlon >= -180.0 and lon + dlon <= 180.0:
                cond += " AND lon BETWEEN ? AND ?"
                args += [lon - dlon, lon + dlon]
        out.append(
            (
                f"SELECT art FROM article_locations WHERE lat IS NOT NULL AND {cond} "
                "AND nw_distance_km(lat, lon, ?, ?) <= ?",
                [*args, lat, lon, km],
            )
        )
    if q.bbox is not None:
        top, left, bottom, right = (float(v) for v in q.bbox)
        lon_cond = "lon BETWEEN ? AND ?" if left <= right else "(lon >= ? OR lon <= ?)"
        out.append(
            (
                "SELECT art FROM article_locations WHERE lat IS NOT NULL AND lat BETWEEN ? AND ? AND "
                f"{lon_cond}",
                [bottom, top, left, right],
            )
        )
    return out


def _row_values(p: _Prepared) -> tuple[tuple[Any, ...], tuple[str | None, ...]]:
    """The ``articles`` column values (doc .. source_domain_lc) and the full-text columns of an article."""
    doc = p.doc
    src = _source(doc)
    name, domain = _text(src.get("name")), _text(src.get("domain"))
    language = _text(doc.get("language"))
    values = (
        pack_doc(doc),
        p.minhash,
        p.published_ms,
        p.cluster,
        p.duplicate_of,
        _text(doc.get("content_hash")),
        language.lower() if language else None,
        name,
        name.lower() if name else None,
        domain.lower() if domain else None,
    )
    return values, (_text(doc.get("title")), _text(doc.get("summary")), _text(doc.get("text")))


# --------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------


class SQLiteStore:
    """The store contract on one SQLite file (see the module docstring)."""

    def __init__(
        self, path: str | Path, *, url: str | None = None, timeout: float = 60.0, search_timeout: float = 10.0
    ) -> None:
        self.path = str(path)
        self.url = url or f"sqlite:///{self.path}"
        self.search_timeout = search_timeout
        self._timeout = timeout
        self._lock = threading.RLock()
        self._reader: sqlite3.Connection | None = None  # count() on its own connection: see count()
        self._reader_lock = threading.Lock()
        self._closed = False
        self._ready = False
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        _register_functions(self._conn)
        pragmas = [
            f"PRAGMA busy_timeout = {int(timeout * 1000)}",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA temp_store = MEMORY",
            "PRAGMA cache_size = -65536",
        ]
        for pragma in pragmas:
            self._conn.execute(pragma)
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # --- lifecycle --------------------------------------------------------------------
    def setup(self) -> None:
        """Create tables, indexes and the FTS5 table (idempotent, safe from several processes)."""
        with self._lock:
            conn = self._conn
            version = self._schema_version()
            if version is None:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _split_sql(_SCHEMA):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                        (SCHEMA_VERSION,),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                version = self._schema_version()
            if version == "2":
                self._migrate_from_2()
                version = self._schema_version()
            if version == "3":
                self._migrate_from_3()
                version = self._schema_version()
            if version == "4":
                self._migrate_from_4()
                version = self._schema_version()
            if version != SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: schema version {version} is not {SCHEMA_VERSION}; re-create the store"
                )
            self._ready = True

    def _migrate_from_2(self) -> None:
        """Version 2 -> 3: the hierarchy side tables, filled from the stored documents (only
        documents that mention ``ancestors``/``admin1`` can have rows). One transaction."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._schema_version() == "2":  # not migrated by a concurrent process meanwhile
                for statement in _split_sql(_SCHEMA):
                    conn.execute(statement)
                rows = conn.execute(
                    "SELECT rid, doc FROM articles WHERE nw_doc(doc) LIKE '%\"ancestors\"%' "
                    "OR nw_doc(doc) LIKE '%\"admin1\"%'"
                ).fetchall()
                for rid, doc in rows:
                    p = _prepare(_unpack_doc(doc) | {"minhash": None})
                    conn.executemany(
                        "INSERT OR IGNORE INTO article_location_ancestors (anc_id, art) VALUES (?, ?)",
                        [(anc, rid) for anc in p.ancestors],
                    )
                    conn.executemany(
                        "INSERT OR IGNORE INTO article_admin1 (admin1_id, art, name) VALUES (?, ?, ?)",
                        [(a1, rid, name) for a1, name in p.admin1],
                    )
                conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _migrate_from_3(self) -> None:
        """Version 3 -> 4: estimated dates become no date. One transaction."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._schema_version() == "3":
                conn.execute(
                    "UPDATE articles SET published_ms = ? WHERE json_extract(nw_doc(doc), "
                    "'$.published_at_estimated') = 1",
                    (MISSING_DATE,),
                )
                conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _migrate_from_4(self) -> None:
        """Version 4 -> 5: the full-text view reads documents through ``nw_doc`` (plain rows stay
        as they are; rows written from now on are compressed). One transaction."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._schema_version() == "4":
                conn.execute("DROP VIEW IF EXISTS article_text")
                for statement in _split_sql(_SCHEMA):
                    if statement.lstrip().startswith("CREATE VIEW"):
                        conn.execute(statement)
                conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _schema_version(self) -> str | None:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None

    def _ensure(self) -> None:
        if not self._ready:
            self.setup()

    def housekeeping(self, retention_months: int = 0, now: datetime | None = None) -> dict[str, Any]:
        """Nothing to do: one file, no monthly indices and no retention (see :class:`Store`)."""
        return {}

    def close(self) -> None:
        with self._reader_lock:
            self._closed = True
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ----------------------------------------------------------------------
    def index(self, articles: Iterable[Article]) -> IndexReport:
        """Write articles in batches of :data:`BATCH_SIZE`, each batch one transaction."""
        self._ensure()
        report = IndexReport()
        for batch in _chunks(articles, BATCH_SIZE):
            prepared: list[_Prepared] = []
            for article in batch:
                try:
                    prepared.append(_prepare(article))
                except (ValueError, TypeError) as exc:
                    aid = article.get("id") if isinstance(article, dict) else None
                    report.errors.append({"id": aid, "error": str(exc)})
            if prepared:
                with self._lock:
                    self._write_batch(prepared, report)
        return report

    def _write_batch(self, batch: list[_Prepared], report: IndexReport) -> None:
        """One transaction: new articles in bulk (``executemany``), known ones one by one."""
        latest: dict[str, _Prepared] = {}
        for p in batch:  # the same id twice in one batch: the last copy wins
            latest.pop(p.id, None)
            latest[p.id] = p
        report.indexed += len(batch)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            touched = self._write_items(list(latest.values()), report)
            for cluster in touched:
                self._elect_representative(cluster)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _write_items(self, items: list[_Prepared], report: IndexReport) -> set[str]:
        """Write distinct articles; return the clusters whose representative must be elected again."""
        existing = self._stored_rows([p.id for p in items])
        stored_members = self._stored_members(
            [p.id for p in items if p.duplicate_of is None], exclude={p.id for p in items}
        )
        for p in items:  # representatives keep their stored publishers and gain those of stored duplicates
            if p.duplicate_of is not None:
                continue
            # an explicit list in the input is authoritative (pipeline.dedupe.reconcile rewrites whole
            # clusters); without one the stored list is kept. Stored members always count.
            given = p.doc.get("also_published_by")
            if not isinstance(given, list):
                old = existing.get(p.id)
                given = (old[1] if old else {}).get("also_published_by") or []
            members = [publication(m) for m in stored_members.get(p.id, [])]
            entries = merge_publications(given, members, drop=[p.id])
            if entries or "also_published_by" in p.doc:
                p.doc["also_published_by"] = entries
        plan = plan_batch(
            [(Placement(p.id, p.cluster, p.duplicate_of, p.doc.get("published_at")), p.doc) for p in items],
            {
                aid: Placement(aid, cluster, dup, doc.get("published_at"))
                for aid, (_rid, doc, cluster, dup) in existing.items()
            },
            stored_members,
        )
        self._write_rows(items, existing, report)
        for rep_id, member_ids in plan.moved.items():
            for member_id in sorted(member_ids):
                self._remove_publication(rep_id, member_id)
        for rep_id, entries in plan.adds.items():
            for entry in entries:
                if not self._add_publication(rep_id, entry):
                    plan.touched.add(rep_id)  # its representative is not stored: elect the earliest member
        return plan.touched

    def _stored_rows(self, ids: list[str]) -> dict[str, tuple[int, dict[str, Any], str, str | None]]:
        """id -> (rid, doc, cluster, duplicate_of) of the stored articles among ``ids``."""
        existing: dict[str, tuple[int, dict[str, Any], str, str | None]] = {}
        for chunk in _chunks(ids, _IN_CHUNK):
            for rid, aid, doc, cluster, dup in self._conn.execute(
                "SELECT rid, id, doc, cluster, duplicate_of FROM articles WHERE id IN "
                f"({_marks(len(chunk))})",
                chunk,
            ):
                existing[aid] = (rid, _unpack_doc(doc), cluster, dup)
        return existing

    def _stored_members(self, rep_ids: list[str], exclude: set[str]) -> dict[str, list[dict[str, Any]]]:
        """cluster -> stored duplicates (documents) of the clusters ``rep_ids``, minus ``exclude``."""
        stored_members: dict[str, list[dict[str, Any]]] = {}
        for chunk in _chunks(rep_ids, _IN_CHUNK):
            for cluster, aid, doc in self._conn.execute(
                f"SELECT cluster, id, doc FROM articles WHERE cluster IN ({_marks(len(chunk))}) "
                "AND duplicate_of IS NOT NULL",
                chunk,
            ):
                if aid not in exclude:
                    stored_members.setdefault(cluster, []).append(_unpack_doc(doc))
        return stored_members

    def _write_rows(
        self,
        items: list[_Prepared],
        existing: dict[str, tuple[int, dict[str, Any], str, str | None]],
        report: IndexReport,
    ) -> None:
        """Insert new articles in bulk, update known ones, and rewrite their entity and band rows."""
        conn = self._conn
        row = conn.execute("SELECT coalesce(max(rid), 0) FROM articles").fetchone()
        next_rid = int(row[0]) + 1
        new_rows: list[tuple[Any, ...]] = []
        fts_rows: list[tuple[Any, ...]] = []
        actor_rows: list[tuple[Any, ...]] = []
        loc_rows: list[tuple[Any, ...]] = []
        anc_rows: list[tuple[Any, ...]] = []
        admin1_rows: list[tuple[Any, ...]] = []
        band_rows: list[tuple[Any, ...]] = []
        for p in items:
            values, texts = _row_values(p)
            old = existing.get(p.id)
            if old is None:
                rid = next_rid
                next_rid += 1
                is_rep = 1 if p.duplicate_of is None and p.cluster == p.id else 0
                new_rows.append((rid, p.id, *values, is_rep))
                fts_rows.append((rid, *texts))
            else:
                rid = old[0]
                self._update_row(rid, old[1], values, texts)
            actor_rows.extend((aid, rid, aname) for aid, aname in p.actors)
            loc_rows.extend((lid, rid, lname, cc, lat, lon) for lid, lname, cc, lat, lon in p.locations)
            anc_rows.extend((anc, rid) for anc in p.ancestors)
            admin1_rows.extend((a1, rid, a1_name) for a1, a1_name in p.admin1)
            band_rows.extend((b, rid) for b in p.bands)
        if new_rows:
            conn.executemany(
                "INSERT INTO articles (rid, id, doc, minhash, published_ms, cluster, duplicate_of, "
                "content_hash, "
                "language, source_name, source_name_lc, source_domain_lc, is_rep) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                new_rows,
            )
            conn.executemany("INSERT INTO fts (rowid, title, summary, text) VALUES (?, ?, ?, ?)", fts_rows)
            report.created += len(new_rows)
        conn.executemany(
            "INSERT OR IGNORE INTO article_actors (actor_id, art, name) VALUES (?, ?, ?)", actor_rows
        )
        conn.executemany(
            "INSERT OR IGNORE INTO article_locations (loc_id, art, name, country_code, lat, lon) VALUES "
            "(?,?,?,?,?,?)",
            loc_rows,
        )
        conn.executemany(
            "INSERT OR IGNORE INTO article_location_ancestors (anc_id, art) VALUES (?, ?)", anc_rows
        )
        conn.executemany(
            "INSERT OR IGNORE INTO article_admin1 (admin1_id, art, name) VALUES (?, ?, ?)", admin1_rows
        )
        conn.executemany("INSERT OR IGNORE INTO band_keys (key, art) VALUES (?, ?)", band_rows)

    def _update_row(
        self, rid: int, old_doc: dict[str, Any], values: tuple[Any, ...], texts: tuple[str | None, ...]
    ) -> None:
        """Overwrite a stored article (its full-text row when the texts changed) and drop its entity rows."""
        conn = self._conn
        old_texts = (_text(old_doc.get("title")), _text(old_doc.get("summary")), _text(old_doc.get("text")))
        if old_texts != texts:
            conn.execute(
                "INSERT INTO fts (fts, rowid, title, summary, text) VALUES ('delete', ?, ?, ?, ?)",
                (rid, *old_texts),
            )
            conn.execute("INSERT INTO fts (rowid, title, summary, text) VALUES (?, ?, ?, ?)", (rid, *texts))
        conn.execute(
            "UPDATE articles SET doc = ?, minhash = ?, published_ms = ?, cluster = ?, duplicate_of = ?, "
            "content_hash = ?, language = ?, source_name = ?, source_name_lc = ?, source_domain_lc = ? "
            "WHERE rid = ?",
            (*values, rid),
        )
        conn.execute("DELETE FROM article_actors WHERE art = ?", (rid,))
        conn.execute("DELETE FROM article_locations WHERE art = ?", (rid,))
        conn.execute("DELETE FROM article_location_ancestors WHERE art = ?", (rid,))
        conn.execute("DELETE FROM article_admin1 WHERE art = ?", (rid,))
        conn.executemany(  # no index on band_keys.art (it would double the cost of the largest table)
            "DELETE FROM band_keys WHERE key = ? AND art = ?",
            [(b, rid) for b in {b for b in old_doc.get("lsh_bands") or [] if isinstance(b, str)}],
        )

    def _update_doc(self, article_id: str, change: Any) -> bool:
        """Apply ``change(doc) -> changed`` to a stored document; False when there is none."""
        row = self._conn.execute("SELECT rid, doc FROM articles WHERE id = ?", (article_id,)).fetchone()
        if row is None:
            return False
        doc = _unpack_doc(row[1])
        if change(doc):
            self._conn.execute("UPDATE articles SET doc = ? WHERE rid = ?", (pack_doc(doc), row[0]))
        return True

    def _add_publication(self, rep_id: str, entry: dict[str, Any]) -> bool:
        def change(doc: dict[str, Any]) -> bool:
            if doc.get("duplicate_of") not in (None, doc["id"]):
                return False  # the named representative is itself a duplicate: leave it
            before = doc.get("also_published_by") or []
            doc["also_published_by"] = append_publication(before, entry)
            return bool(before != doc["also_published_by"])

        return self._update_doc(rep_id, change)

    def _remove_publication(self, rep_id: str, member_id: str) -> None:
        def change(doc: dict[str, Any]) -> bool:
            entries = doc.get("also_published_by") or []
            kept = [e for e in entries if not (isinstance(e, dict) and e.get("id") == member_id)]
            if len(kept) == len(entries):
                return False
            doc["also_published_by"] = kept
            return True

        self._update_doc(rep_id, change)

    def _elect_representative(self, cluster: str) -> None:
        """Exactly one representative per cluster: the cluster's own article, else the earliest."""
        self._conn.execute(
            "UPDATE articles SET is_rep = (rid = (SELECT rid FROM articles WHERE cluster = :c "
            "ORDER BY id = :c DESC, duplicate_of IS NULL DESC, published_ms = :missing, published_ms, id "
            "LIMIT 1)) "
            "WHERE cluster = :c",
            {"c": cluster, "missing": MISSING_DATE},
        )

    # --- reading ----------------------------------------------------------------------
    @staticmethod
    def _load(doc: bytes | str, minhash: bytes | str | None) -> Article:
        article: Article = _unpack_doc(doc)
        if minhash is not None:
            article["minhash"] = _unpack_minhash(minhash)
        return article

    def get(self, article_id: str) -> Article | None:
        self._ensure()
        with self._lock:
            row = self._conn.execute(
                "SELECT doc, minhash FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
        return self._load(*row) if row else None

    def count(self) -> int:
        """Stored documents, read on a connection of its own (WAL: readers never wait for the
        search or the writer holding the main one), so the API's ``/health`` stays fast."""
        self._ensure()
        if self.path != ":memory:":
            with self._reader_lock:
                if self._reader is None:
                    if self._closed:
                        raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
                    self._reader = sqlite3.connect(
                        self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
                    )
                    self._reader.execute("PRAGMA query_only = 1")
                return int(self._reader.execute("SELECT count(*) FROM articles").fetchone()[0])
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM articles").fetchone()[0])

    def cluster_members(self, cluster_id: str) -> list[Article]:
        self._ensure()
        with self._lock:
            rows = self._conn.execute(
                "SELECT doc, minhash FROM articles WHERE cluster = ? "
                "ORDER BY is_rep DESC, published_ms = ? , published_ms, id",
                (cluster_id, MISSING_DATE),
            ).fetchall()
        return [self._load(*r) for r in rows]

    def clusters_members(self, cluster_ids: Iterable[str]) -> dict[str, list[Article]]:
        self._ensure()
        out: dict[str, list[Article]] = {}
        for chunk in _chunks(sorted(set(cluster_ids)), 500):
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT cluster, doc FROM articles WHERE cluster IN ({_marks(len(chunk))})", chunk
                ).fetchall()
            for cluster, doc in rows:
                out.setdefault(cluster, []).append(_unpack_doc(doc))
        return out

    def rewrite_clusters(self, changes: list[Article]) -> IndexReport:
        """Whole documents re-indexed with the new cluster fields (local: a read costs little)."""
        fields = ("cluster_id", "duplicate_of", "also_published_by")
        docs = []
        for change in changes:
            doc = self.get(change["id"])
            if doc is not None:
                docs.append({**doc, **{k: change.get(k) for k in fields}})
        return self.index(docs)

    def known_ids(self, ids: Iterable[str]) -> set[str]:
        self._ensure()
        wanted = _json_list(ids)
        with self._lock:
            rows = self._conn.execute(
                "SELECT id FROM articles WHERE id IN (SELECT value FROM json_each(?))", (wanted,)
            )
            return {r[0] for r in rows}

    def find_content_hashes(self, hashes: Iterable[str]) -> dict[str, ClusterRef]:
        self._ensure()
        out: dict[str, ClusterRef] = {}
        wanted = _json_list(hashes)
        with self._lock:
            rows = self._conn.execute(
                "SELECT content_hash, id, cluster, minhash FROM articles "
                "WHERE content_hash IN (SELECT value FROM json_each(?)) "
                "ORDER BY content_hash, duplicate_of IS NOT NULL, published_ms = ?, published_ms, id",
                (wanted, MISSING_DATE),
            )
            for h, aid, cluster, minhash in rows:
                if h not in out:
                    out[h] = ClusterRef(aid, cluster, _unpack_minhash(minhash))
        return out

    def find_band_keys(self, keys: Iterable[str]) -> dict[str, list[ClusterRef]]:
        """One query for all keys (a JSON array bound once, read with ``json_each``); each
        matching article's signature is parsed once and its :class:`ClusterRef` shared by
        every key it carries (refs are frozen; dedupe only reads the signatures)."""
        self._ensure()
        out: dict[str, list[ClusterRef]] = {}
        refs: dict[int, ClusterRef] = {}
        wanted = _json_list(keys)
        with self._lock:
            rows = self._conn.execute(
                "SELECT b.key, b.art, a.id, a.cluster, a.minhash FROM band_keys b JOIN articles a ON "
                "a.rid = b.art "
                "WHERE b.key IN (SELECT value FROM json_each(?)) ORDER BY b.key, b.art",
                (wanted,),
            )
            for key, rid, aid, cluster, minhash in rows:
                ref = refs.get(rid)
                if ref is None:
                    ref = refs[rid] = ClusterRef(aid, cluster, _unpack_minhash(minhash))
                out.setdefault(key, []).append(ref)
        return out

    def articles_after(self, after_id: str | None, size: int) -> list[Article]:
        self._ensure()
        with self._lock:
            rows = self._conn.execute(
                "SELECT doc, minhash FROM articles WHERE id > ? ORDER BY id LIMIT ?",
                (after_id if after_id is not None else "", max(0, int(size))),
            ).fetchall()
        return [self._load(*r) for r in rows]

    # --- other pipeline state: "state:<key>" rows of the meta table --------------------
    def get_state(self, key: str) -> dict[str, Any] | None:
        self._ensure()
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (f"state:{key}",)).fetchone()
        return json.loads(row[0]) if row else None

    def put_state(self, key: str, state: dict[str, Any]) -> None:
        self._ensure()
        with self._lock:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                "excluded.value",
                (f"state:{key}", _dumps(state)),
            )

    # --- feed state -------------------------------------------------------------------
    def get_feed_state(self, feed_url: str) -> dict[str, Any] | None:
        self._ensure()
        with self._lock:
            row = self._conn.execute("SELECT state FROM feed_state WHERE url = ?", (feed_url,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_feed_state(self, feed_url: str, state: dict[str, Any]) -> None:
        self._ensure()
        with self._lock:
            self._conn.execute(
                "INSERT INTO feed_state (url, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (url) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (feed_url, _dumps(state), datetime.now(UTC).isoformat()),
            )

    def put_feed_states(self, states: Mapping[str, dict[str, Any]]) -> None:
        self._ensure()
        now = datetime.now(UTC).isoformat()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")  # one transaction (one sync) for all of them
            try:
                self._conn.executemany(
                    "INSERT INTO feed_state (url, state, updated_at) VALUES (?, ?, ?) ON CONFLICT (url) "
                    "DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                    [(url, _dumps(state), now) for url, state in states.items()],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def all_feed_states(self) -> dict[str, dict[str, Any]]:
        self._ensure()
        with self._lock:
            rows = self._conn.execute("SELECT url, state FROM feed_state ORDER BY url").fetchall()
        return {url: json.loads(state) for url, state in rows}

    # --- search -----------------------------------------------------------------------
    def _filters(self, q: SearchQuery) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        # side-table filters are intersected on the (covering) side indexes before any article is read
        sides: list[str] = []
        side_params: list[Any] = []

        def side(table: str, column: str, values: Iterable[Any]) -> None:
            vals = sorted(set(values))
            sides.append(f"SELECT art FROM {table} WHERE {column} IN ({_marks(len(vals))})")
            side_params.extend(vals)

        for group in q.actor_ids:
            if group:
                side("article_actors", "actor_id", group)
            else:
                where.append("0")  # an entity with no ids matches nothing
        for group in q.location_ids:
            if group:  # the place itself or any place it contains
                vals = sorted(set(group))
                m = _marks(len(vals))
                sides.append(
                    f"SELECT art FROM (SELECT art FROM article_locations WHERE loc_id IN ({m}) "
                    f"UNION SELECT art FROM article_location_ancestors WHERE anc_id IN ({m}))"
                )
                side_params.extend(vals + vals)
            else:
                where.append("0")
        if q.since is not None or q.until is not None:
            where.append("a.published_ms != ?")
            params.append(MISSING_DATE)
        if q.since is not None:
            where.append("a.published_ms >= ?")
            params.append(_to_ms(q.since))
        if q.until is not None:
            where.append("a.published_ms <= ?")
            params.append(_to_ms(q.until))
        if q.sources:
            vals = sorted({s.strip().lower() for s in q.sources})
            m = _marks(len(vals))
            where.append(f"(a.source_name_lc IN ({m}) OR a.source_domain_lc IN ({m}))")
            params.extend(vals + vals)
        if q.languages:
            vals = sorted({v.strip().lower() for v in q.languages})
            where.append(f"a.language IN ({_marks(len(vals))})")
            params.extend(vals)
        if q.country_codes:
            side("article_locations", "country_code", (c.strip().upper() for c in q.country_codes))
        for sql, args in _geo_sides(q):
            sides.append(sql)
            side_params.extend(args)
        if sides:
            where.append(f"a.rid IN ({' INTERSECT '.join(sides)})")
            params.extend(side_params)
        if q.collapse:
            where.append("+a.is_rep = 1")  # "+": never drive the search by this unselective column
        return where, params

    def search(self, query: SearchQuery) -> SearchResult:
        """Filters, text, facets, highlights, sort and keyset paging (see module docstring)."""
        self._ensure()
        q = query
        kind, match = compile_text_query(q.text or "")
        where, params = self._filters(q)
        source = "articles a"
        score_sql = "NULL"
        if kind == "pos":
            source = "fts CROSS JOIN articles a ON a.rid = fts.rowid"  # CROSS: the full-text match drives
            where.insert(0, "fts MATCH ?")
            params.insert(0, match)
            w = ", ".join(str(x) for x in BM25_WEIGHTS)
            score_sql = f"-bm25(fts, {w})"
        elif kind == "neg":
            where.append("a.rid NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
            params.append(match)
        elif kind == "none":
            where.append("0")
        by_score = q.sort == "relevance" and kind == "pos"
        mode = "relevance" if by_score else "date"
        where_sql = " WHERE " + " AND ".join(where) if where else ""
        base = (
            f"SELECT a.rid AS r, {score_sql} AS score, a.published_ms AS pub, a.id AS id, "
            f"a.source_name AS src FROM {source}{where_sql}"
        )
        order = "score DESC, id ASC" if by_score else "pub DESC, id ASC"
        keyset, kparams = self._keyset(q.after, mode)
        limit = max(0, int(q.limit))
        with self._lock, self._time_bound():
            conn = self._conn
            # the matching set is materialised once when it is read several times (facets) or is
            # costly to evaluate (full text); otherwise count and page read the indexes directly
            materialise = q.facets or kind == "pos"
            if materialise:
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS _m (r INTEGER PRIMARY KEY, score REAL, pub INTEGER, "
                    "id TEXT, src TEXT)"
                )
                conn.execute("DELETE FROM _m")
                conn.execute(f"INSERT INTO _m {base}", params)
                matched, mparams = "SELECT * FROM _m", []
            else:
                matched, mparams = base, params
            total = int(conn.execute(f"SELECT count(*) FROM ({matched})", mparams).fetchone()[0])
            rows = []
            if limit:
                rows = conn.execute(
                    f"SELECT r, score, pub, id FROM ({matched}) {keyset} ORDER BY {order} LIMIT ?",
                    [*mparams, *kparams, limit + 1],
                ).fetchall()
            facets = self._facets(q.facet_size) if q.facets else {}
            more = len(rows) > limit
            rows = rows[:limit]
            hits = self._hits(rows, by_score)
            if q.highlight and kind == "pos" and rows:
                self._highlight(hits, rows, match)
            if materialise:
                conn.execute("DELETE FROM _m")
        next_after = None
        if more and rows:
            last = rows[-1]
            next_after = [mode, last[1] if by_score else last[2], last[3]]
        return SearchResult(total=total, hits=hits, facets=facets, next_after=next_after)

    @contextmanager
    def _time_bound(self) -> Iterator[None]:
        """Interrupt the statements run inside past ``search_timeout`` (SQLite's progress
        handler) and raise :class:`SearchTimeout`; the temporary match table is emptied."""
        deadline = time.monotonic() + self.search_timeout
        self._conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                raise
            self._conn.set_progress_handler(None, 0)
            with suppress(sqlite3.OperationalError):  # no match table when the search did not need one
                self._conn.execute("DELETE FROM _m")
            raise SearchTimeout(self.search_timeout) from None
        finally:
            self._conn.set_progress_handler(None, 0)

    @staticmethod
    def _keyset(after: list[Any] | None, mode: str) -> tuple[str, list[Any]]:
        if not after:
            return "", []
        if not (isinstance(after, (list, tuple)) and len(after) == 3 and after[0] in ("relevance", "date")):
            raise ValueError(f"invalid search cursor {after!r}: pass SearchResult.next_after unchanged")
        if after[0] != mode:
            raise ValueError(f"search cursor {after!r} belongs to a {after[0]} sort, not {mode}")
        col = "score" if mode == "relevance" else "pub"
        return f"WHERE ({col} < ? OR ({col} = ? AND id > ?))", [after[1], after[1], after[2]]

    def _hits(self, rows: list[Any], by_score: bool) -> list[Article]:
        if not rows:
            return []
        rids = [r[0] for r in rows]
        docs = {
            rid: self._load(doc, mh)
            for rid, doc, mh in self._conn.execute(
                f"SELECT rid, doc, minhash FROM articles WHERE rid IN ({_marks(len(rids))})", rids
            )
        }
        hits = []
        for rid, score, _pub, _id in rows:
            hit = docs[rid]
            hit["_score"] = float(score) if by_score and score is not None else None
            hit["_highlight"] = []
            hits.append(hit)
        return hits

    def _highlight(self, hits: list[Article], rows: list[Any], match: str) -> None:
        """``<mark>`` snippets as safe HTML: FTS5 marks matches with random sentinels, the
        article text is escaped, then the sentinels become ``<mark>``/``</mark>``."""
        rids = [r[0] for r in rows]
        token = secrets.token_hex(8)  # text cannot guess it, so it cannot forge a mark
        start, end = f"\ue000{token}\ue001", f"\ue002{token}\ue003"
        snippets = {
            rid: [t, s, x]
            for rid, t, s, x in self._conn.execute(
                "SELECT rowid, highlight(fts, 0, ?, ?), snippet(fts, 1, ?, ?, '…', 40), "
                "snippet(fts, 2, ?, ?, '…', 32) FROM fts WHERE fts MATCH ? AND rowid IN "
                f"({_marks(len(rids))})",
                [start, end, start, end, start, end, match, *rids],
            )
        }
        for hit, rid in zip(hits, rids, strict=True):
            hit["_highlight"] = [
                html.escape(s).replace(start, "<mark>").replace(end, "</mark>")
                for s in snippets.get(rid, [])
                if s and start in s
            ]

    def _facets(self, size: int) -> dict[str, list[dict[str, Any]]]:
        conn = self._conn
        size = max(0, int(size))

        def entity(table: str, column: str) -> list[dict[str, Any]]:
            rows = conn.execute(
                f"SELECT t.{column}, count(*) AS c FROM _m CROSS JOIN {table} t ON t.art = _m.r "
                f"GROUP BY t.{column} ORDER BY c DESC, t.{column} ASC LIMIT ?",
                (size,),
            ).fetchall()
            out = []
            for key, count in rows:
                name = conn.execute(
                    f"SELECT name FROM {table} WHERE {column} = ? AND name IS NOT NULL LIMIT 1",
                    (key,),
                ).fetchone()
                out.append({"key": key, "name": name[0] if name else key, "count": count})
            return out

        sources = [
            {"key": k, "name": k, "count": c}
            for k, c in conn.execute(
                "SELECT src, count(*) AS c FROM _m WHERE src IS NOT NULL GROUP BY src ORDER BY c DESC, "
                "src ASC LIMIT ?",
                (size,),
            )
        ]
        dates = [
            {"key": k, "count": c}
            for k, c in conn.execute(
                "SELECT date(pub / 1000.0, 'unixepoch') AS d, count(*) FROM _m WHERE pub != ? GROUP BY d "
                "ORDER BY d",
                (MISSING_DATE,),
            )
        ]
        countries = [
            {"key": k, "name": country_name(k), "count": c}
            for k, c in conn.execute(
                "SELECT t.country_code, count(DISTINCT t.art) AS c FROM _m CROSS JOIN article_locations t "
                "ON t.art = _m.r WHERE t.country_code IS NOT NULL "
                "GROUP BY t.country_code ORDER BY c DESC, t.country_code ASC LIMIT ?",
                (size,),
            )
        ]
        return {
            "actors": entity("article_actors", "actor_id"),
            "locations": entity("article_locations", "loc_id"),
            "location_countries": countries,
            "location_admin1": entity("article_admin1", "admin1_id"),
            "sources": sources,
            "dates": dates,
        }


def _split_sql(script: str) -> list[str]:
    """Statements of a schema script (no semicolons inside our literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
