"""Dedupe stage: one story, every outlet that ran it — exact and near-duplicate clusters.

Contract (``newswire dedupe``, the filter contract of docs/architecture.md)
-----------------------------------------------------------------
:meth:`Deduper.run` maps records ``{id, title, text[, summary, url, feed_entry_id, source,
published_at]}`` one to one, in input order, to copies that gain:

- ``content_hash`` — :func:`pipeline.records.stable_hash` of the normalised body
  (:func:`normalise`: Unicode NFKD, accents, case, quotes, punctuation and whitespace folded).
  The body is ``text``, else ``summary``, else ``title``.
- ``minhash`` — the MinHash signature (``num_perm`` values over the body's word 5-shingles,
  then ``lead_perm`` values over its first ``lead_shingles`` shingles, the *lead*).
- ``lsh_bands`` — LSH band keys: ``b<i>:<hex>`` for the body, ``l<i>:<hex>`` for the lead.
  Stores index them (``Store.find_band_keys``).
- ``cluster_id`` — id of the cluster's representative; ``duplicate_of`` — the same id for a
  member, ``None`` for the representative itself.

A record with no usable body (no text, summary or title) or no id (and no url or
feed entry id to derive one) is yielded with an ``error`` field and changes no state.
A body of fewer than ``MIN_WORDS`` words ("Read more", a bare headline) is matched by
identity only (rules 1-2): it cannot tell a copy from boilerplate, so it gets no band keys
and its content hash is not looked up.

How a record is matched (first rule that fires wins)
----------------------------------------------------
1. Same article: its ``id`` (the hash of the canonical URL) is already stored or was
   seen earlier in this stream. It keeps its id and its stored cluster (``cluster_id`` and
   ``duplicate_of`` as stored), so an updated re-fetch overwrites the stored copy in place
   when indexed. It is *not* made a duplicate of itself.
2. Same feed entry id (in this stream, scoped by feed; in the store, via the id that
   :func:`pipeline.records.article_id` derives from an entry id) -> member of that cluster.
3. Same ``content_hash`` (stream or store) -> member of that cluster.
4. Near duplicate: a candidate that shares an LSH band key (stream or store) and passes
   the similarity rule (below) -> member of the best-scoring candidate's cluster.
5. Otherwise the record starts a cluster: ``cluster_id = id``, ``duplicate_of = None``.

Similarity rule (chosen by evaluation: ``bench/bench_dedupe.py``)
-----------------------------------------------------------------
Syndication is lopsided (lead-only feed items, copies cut to two paragraphs, stories
republished with new paragraphs on top), so symmetric Jaccard under-scores true copies
while a stock background paragraph shared by two different stories scores about as high.
The default rule is **containment of the shorter text**: the share of its shingles found in
the other. It is estimated from the two MinHash signatures alone (no sizes needed): for
each permutation, equal minima happen with probability |A∩B|/|A∪B| and a strictly
smaller minimum in A with probability |A\\B|/|A∪B|, so
``containment(A in B) ≈ eq / (eq + lt_A)``. A pair is a duplicate when
``max(containment(A in B), containment(B in A)) >= threshold`` (default 0.7) with at least
``min_support`` equal minima, on the body signature or on the lead signature (see
:func:`is_duplicate`). The measured comparison with Jaccard is in the README
(``rule="jaccard"`` remains available). A *short* smaller text (under ``SHORT_SHINGLES``
shingles, its size estimated from the signature) must be contained whole: short items of
one newsroom share a template that is most of their words, so 0.7 would cluster different
stories.

Candidates
----------
Each batch (``batch_size`` records) makes one call each to ``known_ids``,
``find_content_hashes`` and ``find_band_keys`` on the store, so a new article is compared
with the whole index, not only with the current run. Body bands (``bands`` bands of
``num_perm // bands`` rows) find re-edited copies; lead bands (``lead_bands`` of
``lead_perm // lead_bands`` rows) find lead-only and truncated copies whose body overlap
is too small for any banding. Records of the current run that are not stored yet are kept
in a bounded in-memory index (an LRU of the ``recent`` latest articles).

Clusters across batches and workers
-----------------------------------
Within a batch, records are decided in (``published_at``, ``id``) order, so the earliest
copy of a batch represents the cluster whatever the arrival order. A stored cluster keeps
its id. Parallel writers that did not see each other's copies create separate clusters;
:func:`reconcile` merges them afterwards with the same rule and makes every cluster's id
the id of its earliest member (by ``published_at``, then ``id``), so the final clusters do
not depend on arrival order or on how the work was split. Writers journal the ids they are
about to index (:func:`note_pending`); :func:`reconcile_pending` reconciles a run's articles
plus the journal, so a run killed before its reconcile is repaired by the next one.

MinHash is computed here with numpy (multiply-shift hashing over 64-bit shingle hashes,
all records of a batch at once) rather than with ``datasketch.MinHash``: the bench measures
it about five times faster, and the banding must write keys into our stores, which
``datasketch.MinHashLSH`` cannot do. ``datasketch`` is used by the bench as the reference.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pipeline.clusters import cluster_rewrite
from pipeline.clusters import earliest_key as published_key
from pipeline.records import Record, article_id, stable_hash
from pipeline.stores.base import ClusterRef, Store

Rule = Literal["containment", "jaccard"]

NUM_PERM = 128
BANDS = 32
LEAD_PERM = 32
LEAD_BANDS = 16
LEAD_SHINGLES = 24
SHINGLE_SIZE = 5
THRESHOLD = 0.7
MIN_SUPPORT = 3
RECENT = 10_000
SHORT_SHINGLES = 60  # a text with fewer shingles (about 64 words) is "short" for the pair rule
SHORT_THRESHOLD = 1.0  # a short text joins only a text that contains it whole (estimated)
#: A lead match also needs this much body containment: two different stories of one outlet that open
#: with the same credit line or byline share most of their leads, never their bodies (e2e corpus, full
#: content, 22 outlets: 6 merges of different stories at body containment 0.08-0.18 before this floor).
LEAD_BODY_FLOOR = 0.3
MIN_WORDS = 8  # shorter bodies ("Read more", a bare headline) are matched by identity only
BATCH_SIZE = 256
#: articles of a run checked per pair of store lookups by its reconcile: a story's stored copies are read
#: once per check, so fewer, larger checks read each of them fewer times (the lookups do not change between
#: checks: nothing is written before the rewrite)
RECONCILE_BATCH = 4096
WORD_CACHE = 200_000  # distinct words whose hash is remembered (~25 MB)

_U64 = np.uint64
_WORD = re.compile(r"\w+")
# combining marks left by NFKD (accents of Latin, Greek, Cyrillic; Arabic harakat; Hebrew points)
_COMBINING = re.compile(
    "[\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u064b-\u065f\u0670\u1ab0-\u1aff"
    "\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
)


# --- normalisation and hashing ------------------------------------------------------


def normalise(text: str) -> str:
    """Fold what copies of one text differ in: case, accents, quotes, punctuation, spacing.

    Returns the words joined by single spaces (``\\w+`` runs, so apostrophes and quote
    marks of every kind, dashes and punctuation all vanish).
    """
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return " ".join(_WORD.findall(text.casefold()))


def content_hash(text: str) -> str:
    """Exact-duplicate key: :func:`stable_hash` of :func:`normalise` (``text``)."""
    return stable_hash(normalise(text))


def _constants(label: str, n: int) -> np.ndarray:
    """``n`` odd 64-bit constants derived from SHA-256: identical on every machine, forever."""
    out = []
    for i in range(n):
        digest = hashlib.sha256(f"newswire-dedupe:{label}:{i}".encode()).digest()
        out.append(int.from_bytes(digest[:8], "little") | 1)
    return np.array(out, dtype=_U64)


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised (uint64 arithmetic wraps modulo 2**64)."""
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    out: np.ndarray = z ^ (z >> _U64(31))
    return out


@dataclass(frozen=True)
class Similarity:
    """Signature-based estimates for one pair (body and lead)."""

    jaccard: float
    containment: float  # of the more contained text (usually the shorter)
    support: int  # equal body minima
    lead_containment: float
    lead_support: int
    shingles: float = float("inf")  # estimated distinct shingles of the smaller text (from the signatures)


class Signer:
    """MinHash signatures and LSH band keys for many texts at once (numpy).

    Why by hand: ``datasketch.MinHash`` hashes each shingle with SHA-1 in Python and
    signs one text at a time; this signs a whole batch with a few vectorised passes
    (see ``bench/bench_dedupe.py`` for the measured difference) and exposes the lead
    signature and band-key format the stores index.
    """

    def __init__(
        self,
        *,
        num_perm: int = NUM_PERM,
        bands: int = BANDS,
        lead_perm: int = LEAD_PERM,
        lead_bands: int = LEAD_BANDS,
        lead_shingles: int = LEAD_SHINGLES,
        shingle_size: int = SHINGLE_SIZE,
    ) -> None:
        if num_perm % bands or lead_perm % lead_bands:
            raise ValueError("num_perm must be a multiple of bands, lead_perm of lead_bands")
        if lead_perm > num_perm:
            raise ValueError("lead_perm cannot exceed num_perm")
        self.num_perm, self.bands, self.rows = num_perm, bands, num_perm // bands
        self.lead_perm, self.lead_bands, self.lead_rows = lead_perm, lead_bands, lead_perm // lead_bands
        self.lead_shingles, self.shingle_size = lead_shingles, shingle_size
        self._a = _constants("a", num_perm)
        self._b = _constants("b", num_perm)
        self._shingle_mult = _constants("shingle", shingle_size)
        self._band_salt = _constants("band", max(self.rows, self.lead_rows))
        self._word_cache: dict[str, int] = {}
        self._key_prefixes = [f"b{b}:" for b in range(bands)] + [f"l{b}:" for b in range(lead_bands)]

    @property
    def width(self) -> int:
        return self.num_perm + self.lead_perm

    def _word_hashes(self, words: list[str]) -> np.ndarray:
        """CRC-32 of each word (stable across processes, unlike ``hash``), through a bounded cache."""
        cache = self._word_cache
        missing = set(words).difference(cache)
        if missing:
            if len(cache) + len(missing) > WORD_CACHE:
                cache.clear()
            for word in missing:
                cache[word] = zlib.crc32(word.encode())
        return np.fromiter(map(cache.__getitem__, words), dtype=_U64, count=len(words))

    def _shingle_batch(self, normalised_texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Shingle hashes of many texts, concatenated, and each text's start offset."""
        k = self.shingle_size
        word_lists = [t.split() for t in normalised_texts]
        if any(not words for words in word_lists):
            raise ValueError("every text needs at least one word")
        # pad short texts to k words with zeros so that each yields exactly one shingle
        w = self._word_hashes([w for words in word_lists for w in words + [""] * (k - len(words))])
        lengths = np.fromiter((max(k, len(words)) for words in word_lists), dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        n = len(w) - k + 1
        acc = np.zeros(n, dtype=_U64)
        for j in range(k):
            acc += w[j : j + n] * self._shingle_mult[j]
        counts = lengths - k + 1  # shingles per text
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
        # positions of the shingles that do not straddle two texts
        pos = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(offsets - starts, counts)
        return _mix64(acc[pos]), offsets

    def _minhash(self, flat: np.ndarray, offsets: np.ndarray, num_perm: int) -> np.ndarray:
        out = np.empty((len(offsets), num_perm), dtype=np.uint32)
        step = max(1, min(num_perm, 1_000_000 // max(1, len(flat))))
        buf = np.empty((step, len(flat)), dtype=_U64)
        for lo in range(0, num_perm, step):
            hi = min(num_perm, lo + step)
            v = buf[: hi - lo]
            # multiply-shift hashing: ((a*x + b) mod 2**64) >> 32 is a 32-bit universal family
            np.multiply(flat[None, :], self._a[lo:hi, None], out=v)
            v += self._b[lo:hi, None]
            v >>= _U64(32)
            out[:, lo:hi] = np.minimum.reduceat(v, offsets, axis=1).T
        return out

    def sign(self, normalised_texts: Sequence[str]) -> np.ndarray:
        """Signatures (len(texts) x width, uint32): body MinHash then lead MinHash.

        The minimum over a multiset equals the minimum over its set, so repeated
        shingles need no de-duplication."""
        if not normalised_texts:
            return np.zeros((0, self.width), dtype=np.uint32)
        flat, offsets = self._shingle_batch(normalised_texts)
        body = self._minhash(flat, offsets, self.num_perm)
        counts = np.diff(np.append(offsets, len(flat)))
        lead_counts = np.minimum(counts, self.lead_shingles)
        lead_offsets = np.concatenate(([0], np.cumsum(lead_counts)[:-1]))
        lead_pos = np.arange(int(lead_counts.sum()), dtype=np.int64) + np.repeat(
            offsets - lead_offsets, lead_counts
        )
        lead = self._minhash(flat[lead_pos], lead_offsets, self.lead_perm)
        return np.hstack([body, lead])

    def band_keys(self, signatures: np.ndarray) -> list[list[str]]:
        """LSH band keys per signature: ``b<i>:<12 hex>`` (body), ``l<i>:<12 hex>`` (lead)."""
        n = len(signatures)
        if n == 0:
            return []
        parts = (
            (signatures[:, : self.num_perm], self.bands, self.rows),
            (signatures[:, self.num_perm :], self.lead_bands, self.lead_rows),
        )
        accs = []
        for sig, bands, rows in parts:
            vals = sig.astype(_U64).reshape(n, bands, rows)
            acc = np.zeros((n, bands), dtype=_U64)
            for j in range(rows):
                acc = _mix64(acc ^ (vals[:, :, j] + self._band_salt[j]))
            accs.append(acc >> _U64(16))
        # 48-bit values as 12 hex digits: one hex() for the batch, then slicing (fast)
        hexes = np.hstack(accs).astype(">u8").tobytes().hex()
        prefixes = self._key_prefixes
        per = len(prefixes)
        return [
            [prefixes[b] + hexes[(i * per + b) * 16 + 4 : (i * per + b) * 16 + 16] for b in range(per)]
            for i in range(n)
        ]

    def compare(self, sig: np.ndarray, others: np.ndarray) -> list[Similarity]:
        """Similarity of ``sig`` (width,) with each row of ``others`` (m x width)."""
        if len(others) == 0:
            return []
        k = self.num_perm
        body_a, body_o = sig[:k], others[:, :k]
        lead_a, lead_o = sig[k:], others[:, k:]
        eq = (body_o == body_a).sum(axis=1)
        a_lt = (body_a < body_o).sum(axis=1)
        o_lt = (body_o < body_a).sum(axis=1)
        leq = (lead_o == lead_a).sum(axis=1)
        la_lt = (lead_a < lead_o).sum(axis=1)
        lo_lt = (lead_o < lead_a).sum(axis=1)
        sizes = np.minimum(self.estimate_shingles(others), self.estimate_shingles(sig[None, :])[0])
        result = []
        for i in range(len(others)):
            e, le = int(eq[i]), int(leq[i])
            contain = e / (e + min(int(a_lt[i]), int(o_lt[i]))) if e else 0.0
            lcontain = le / (le + min(int(la_lt[i]), int(lo_lt[i]))) if le else 0.0
            result.append(Similarity(e / k, contain, e, lcontain, le, float(sizes[i])))
        return result

    def estimate_shingles(self, signatures: np.ndarray) -> np.ndarray:
        """Distinct shingles of each text, estimated from its body signature alone: each of the
        ``num_perm`` minima of n uniform 32-bit hashes is about 2**32 / (n + 1), so
        n ~ (num_perm - 1) / sum(min / 2**32) (the MinHash cardinality estimate, ~10% error)."""
        mins = signatures[:, : self.num_perm].astype(np.float64) / 2.0**32
        estimate: np.ndarray = (self.num_perm - 1) / np.maximum(mins.sum(axis=1), 1e-12)
        return estimate


def is_duplicate(
    s: Similarity, *, rule: Rule = "containment", threshold: float = THRESHOLD, min_support: int = MIN_SUPPORT
) -> bool:
    """The pair decision. ``jaccard``: symmetric estimate >= threshold. ``containment``:
    the more contained text's share found in the other >= threshold, on the body signature
    (with at least ``min_support`` equal minima) or on the lead signature (at least twice
    that: the lead signature is short, so it needs more agreement, and the body containment must
    reach :data:`LEAD_BODY_FLOOR`: a shared credit line or byline makes two leads alike, not two
    bodies; a lead-only copy is a subset of its story, whose body estimate is 1.0). When the smaller text is
    short (fewer than :data:`SHORT_SHINGLES` estimated shingles) it must be contained whole
    (:data:`SHORT_THRESHOLD`): short items of one newsroom share a template (a byline, a
    newsletter plug) that is most of their shingles while their stories differ in a few words,
    so a short text joins a lead-only or extended copy of itself, never an edited neighbour.
    When A is a subset of B no permutation gives A a strictly smaller minimum, so the estimate
    is exactly 1.0; a pair differing in 5 of 35 shingles (one word in the middle) reaches it
    with probability ~1e-8. One word at the very start or end changes a single shingle: such a
    pair cannot be told from a corrected copy and may still join."""
    if s.shingles < SHORT_SHINGLES:  # the body signature sees all of a short text: no lead rule
        threshold = max(threshold, SHORT_THRESHOLD)
        return s.support >= min_support and (s.jaccard if rule == "jaccard" else s.containment) >= threshold
    if rule == "jaccard":
        return s.jaccard >= threshold
    body = s.support >= min_support and s.containment >= threshold
    lead = (
        s.lead_support >= 2 * min_support
        and s.lead_containment >= threshold
        and s.containment >= LEAD_BODY_FLOOR  # the bodies do not contradict it
    )
    return body or lead


def _score(s: Similarity) -> tuple[float, float]:
    return (max(s.containment, s.lead_containment if s.lead_support else 0.0), s.jaccard)


# --- records ------------------------------------------------------------------------


def _body(record: Record) -> str:
    for name in ("text", "summary", "title"):
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _entry_key(record: Record) -> str | None:
    entry = record.get("feed_entry_id")
    if not isinstance(entry, str) or not entry.strip():
        return None
    source = record.get("source") or {}
    feed = (source.get("feed") or source.get("domain") or "") if isinstance(source, dict) else ""
    return f"{feed}\x00{entry.strip()}"


@dataclass
class _Entry:
    id: str
    cluster_id: str
    duplicate_of: str | None
    signature: np.ndarray
    keys: list[str]
    content_hash: str | None  # None: not matched by content (a body under MIN_WORDS words)
    entry_key: str | None


@dataclass
class _Recent:
    """Bounded in-stream state: the ``capacity`` latest articles and their lookup keys."""

    capacity: int
    entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    by_band: dict[str, str] = field(default_factory=dict)
    by_hash: dict[str, str] = field(default_factory=dict)
    by_entry: dict[str, str] = field(default_factory=dict)

    def add(self, e: _Entry) -> None:
        self.entries[e.id] = e
        self.entries.move_to_end(e.id)
        for key in e.keys:
            self.by_band[key] = e.id
        if e.content_hash:
            self.by_hash.setdefault(e.content_hash, e.id)
        if e.entry_key:
            self.by_entry.setdefault(e.entry_key, e.id)
        while len(self.entries) > self.capacity:
            _, old = self.entries.popitem(last=False)
            for key in old.keys:
                if self.by_band.get(key) == old.id:
                    del self.by_band[key]
            if old.content_hash and self.by_hash.get(old.content_hash) == old.id:
                del self.by_hash[old.content_hash]
            if old.entry_key and self.by_entry.get(old.entry_key) == old.id:
                del self.by_entry[old.entry_key]

    def get(self, article: str | None) -> _Entry | None:
        return self.entries.get(article) if article else None


@dataclass
class _Prepared:
    index: int
    record: Record
    id: str
    normalised: str
    content_hash: str
    entry_key: str | None
    tiny: bool
    signature: np.ndarray | None = None
    keys: list[str] = field(default_factory=list)


class Deduper:
    """The dedupe stage. ``store=None`` dedupes within the stream only (bounded memory).

    One instance per worker (not thread-safe); its in-stream state lasts across ``run``
    calls, so :func:`pipeline.records.run_filter` may call ``run`` once per chunk of input.
    The signature parameters must be the same for every writer of one store.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        num_perm: int = NUM_PERM,
        bands: int = BANDS,
        threshold: float = THRESHOLD,
        rule: Rule = "containment",
        min_support: int = MIN_SUPPORT,
        lead_perm: int = LEAD_PERM,
        lead_bands: int = LEAD_BANDS,
        lead_shingles: int = LEAD_SHINGLES,
        shingle_size: int = SHINGLE_SIZE,
        recent: int = RECENT,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.store = store
        self.signer = Signer(
            num_perm=num_perm,
            bands=bands,
            lead_perm=lead_perm,
            lead_bands=lead_bands,
            lead_shingles=lead_shingles,
            shingle_size=shingle_size,
        )
        if rule not in ("containment", "jaccard"):
            raise ValueError(f"unknown similarity rule {rule!r}: use 'containment' or 'jaccard'")
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold {threshold} must be in (0, 1]")
        self.threshold, self.rule, self.min_support = threshold, rule, min_support
        self.batch_size = batch_size
        self.recent = _Recent(recent)

    # -- public ----------------------------------------------------------------------

    def run(self, records: Iterable[Record]) -> Iterator[Record]:
        """Yield each record with the dedupe fields added, one per input, in input order."""
        batch: list[Record] = []
        for record in records:
            batch.append(record)
            if len(batch) >= self.batch_size:
                yield from self._run_batch(batch)
                batch = []
        if batch:
            yield from self._run_batch(batch)

    # -- internals -------------------------------------------------------------------

    def _prepare(self, batch: list[Record]) -> tuple[list[Record | None], list[_Prepared]]:
        out: list[Record | None] = [None] * len(batch)
        ready: list[_Prepared] = []
        for i, record in enumerate(batch):
            if record.get("error"):  # failed upstream: passed through untouched
                out[i] = record
                continue
            rec = dict(record)
            body = _body(rec)
            norm = normalise(body) if body else ""
            rid = rec.get("id")
            if not rid:
                try:
                    rid = article_id(rec.get("url") or None, rec.get("feed_entry_id") or None)
                except ValueError:
                    rid = None
                rec["id"] = rid
            if not norm:
                rec["error"] = "dedupe: record has no text, summary or title to compare"
                out[i] = rec
            elif not rid:
                rec["error"] = "dedupe: record has no id, url or feed_entry_id"
                out[i] = rec
            else:
                tiny = norm.count(" ") + 1 < MIN_WORDS
                ready.append(_Prepared(i, rec, str(rid), norm, stable_hash(norm), _entry_key(rec), tiny))
        sigs = self.signer.sign([p.normalised for p in ready])
        for p, sig, keys in zip(ready, sigs, self.signer.band_keys(sigs), strict=True):
            p.signature, p.keys = sig, ([] if p.tiny else keys)
            p.record["content_hash"] = p.content_hash
            p.record["minhash"] = sig.tolist()
            p.record["lsh_bands"] = p.keys
        return out, ready

    def _run_batch(self, batch: list[Record]) -> list[Record]:
        out, ready = self._prepare(batch)
        known: set[str] = set()
        by_hash: dict[str, ClusterRef] = {}
        by_band: dict[str, list[ClusterRef]] = {}
        if self.store is not None and ready:
            entry_ids = {}
            for p in ready:
                entry = p.record.get("feed_entry_id")
                if isinstance(entry, str) and entry.strip():
                    entry_ids[p.id] = article_id(entry_id=entry)
            known = self.store.known_ids({p.id for p in ready} | set(entry_ids.values()))
            by_hash = self.store.find_content_hashes({p.content_hash for p in ready if not p.tiny})
            # a stored exact copy settles a record (rules 1-3): only the others need candidates
            need = {k for p in ready if p.content_hash not in by_hash for k in p.keys}
            by_band = self.store.find_band_keys(need)
        else:
            entry_ids = {}
        stored_cluster: dict[str, str] = {}
        for ref in by_hash.values():
            stored_cluster[ref.id] = ref.cluster_id
        for refs in by_band.values():
            for ref in refs:
                stored_cluster[ref.id] = ref.cluster_id

        for p in sorted(ready, key=lambda p: published_key(p.record)):
            cluster, dup = self._decide(p, known, entry_ids.get(p.id), stored_cluster, by_hash, by_band)
            p.record["cluster_id"], p.record["duplicate_of"] = cluster, dup
            assert p.signature is not None
            self.recent.add(
                _Entry(
                    p.id, cluster, dup, p.signature, p.keys, None if p.tiny else p.content_hash, p.entry_key
                )
            )
            out[p.index] = p.record
        return [r for r in out if r is not None]

    def _stored_cluster_of(self, article: str, stored_cluster: dict[str, str]) -> str:
        if article in stored_cluster:
            return stored_cluster[article]
        assert self.store is not None
        doc = self.store.get(article)  # rare: a known article whose text changed beyond recognition
        cluster = str((doc or {}).get("cluster_id") or article)
        stored_cluster[article] = cluster
        return cluster

    def _decide(
        self,
        p: _Prepared,
        known: set[str],
        entry_article: str | None,
        stored_cluster: dict[str, str],
        by_hash: dict[str, ClusterRef],
        by_band: dict[str, list[ClusterRef]],
    ) -> tuple[str, str | None]:
        def member_of(cluster: str) -> tuple[str, str | None]:
            return cluster, (None if cluster == p.id else cluster)

        # 1. the same article again (same canonical URL -> same id)
        seen = self.recent.get(p.id)
        if seen is not None:
            return seen.cluster_id, seen.duplicate_of
        if p.id in known:
            if p.id not in stored_cluster and not p.tiny and p.content_hash in by_hash:
                # unchanged text: articles with one content hash share one cluster
                return member_of(by_hash[p.content_hash].cluster_id)
            return member_of(self._stored_cluster_of(p.id, stored_cluster))
        # 2. same feed entry
        seen = self.recent.get(self.recent.by_entry.get(p.entry_key or ""))
        if seen is not None:
            return member_of(seen.cluster_id)
        if entry_article and entry_article != p.id and entry_article in known:
            return member_of(self._stored_cluster_of(entry_article, stored_cluster))
        if p.tiny:  # too short to tell a copy from boilerplate: identity only
            return p.id, None
        # 3. same normalised body
        seen = self.recent.get(self.recent.by_hash.get(p.content_hash))
        if seen is not None:
            return member_of(seen.cluster_id)
        if p.content_hash in by_hash:
            return member_of(by_hash[p.content_hash].cluster_id)
        # 4. near duplicate among candidates sharing a band key
        near = self._near_cluster(p, by_band)
        if near is not None:
            return member_of(near)
        # 5. a new story
        return p.id, None

    def _near_cluster(self, p: _Prepared, by_band: dict[str, list[ClusterRef]]) -> str | None:
        """The cluster of the best near duplicate of ``p`` among the recent and stored articles
        sharing a band key with it (highest score, then the smaller cluster id); None when none."""
        ids: list[str] = []
        clusters: list[str] = []
        sigs: list[np.ndarray] = []
        seen_ids: set[str] = set()
        for key in p.keys:
            local = self.recent.get(self.recent.by_band.get(key))
            if local is not None and local.id not in seen_ids:
                seen_ids.add(local.id)
                ids.append(local.id)
                clusters.append(local.cluster_id)
                sigs.append(local.signature)
            for ref in by_band.get(key, ()):
                if ref.id in seen_ids or not ref.signature or len(ref.signature) != self.signer.width:
                    continue
                seen_ids.add(ref.id)
                ids.append(ref.id)
                clusters.append(ref.cluster_id)
                sigs.append(np.asarray(ref.signature, dtype=np.uint32))
        if not sigs:
            return None
        assert p.signature is not None
        best: tuple[tuple[float, float], str] | None = None
        for cluster, s in zip(clusters, self.signer.compare(p.signature, np.vstack(sigs)), strict=True):
            if is_duplicate(s, rule=self.rule, threshold=self.threshold, min_support=self.min_support):
                score = _score(s)
                if best is None or score > best[0] or (score == best[0] and cluster < best[1]):
                    best = (score, cluster)
        return None if best is None else best[1]


# --- reconciliation -----------------------------------------------------------------


@dataclass
class ReconcileReport:
    """What :func:`reconcile` did."""

    checked: int = 0  # articles whose candidates were looked up
    merged: int = 0  # clusters folded into another
    renamed: int = 0  # clusters whose id changed to their earliest member's
    rewritten: int = 0  # articles re-indexed with a new cluster_id / duplicate_of


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _iter_store(store: Store, page: int = 500) -> Iterator[Record]:
    from pipeline.stores.base import SearchQuery

    after = None
    while True:
        result = store.search(
            SearchQuery(collapse=False, sort="date", limit=page, after=after, facets=False, highlight=False)
        )
        yield from result.hits
        if not result.next_after or not result.hits:
            return
        after = result.next_after


def reconcile(
    store: Store,
    articles: Iterable[Record] | None = None,
    *,
    deduper: Deduper | None = None,
    batch_size: int = BATCH_SIZE,
) -> ReconcileReport:
    """Merge clusters that parallel writers split, and name each cluster by its earliest member.

    ``articles`` are the records the writers indexed (they carry ``id``, ``cluster_id``,
    ``content_hash``, ``minhash`` and ``lsh_bands``, which are computed from ``minhash`` when
    missing); ``None`` checks the whole store. For
    each of them, stored articles sharing its content hash or an LSH band key and passing
    ``deduper``'s rule join its cluster (union-find over cluster ids). The clusters the
    union-find merged, and those the articles joined as members, are then read in one call
    (``store.clusters_members``) and, where their members or id change, rewritten in one
    call (``store.rewrite_clusters``): ``cluster_id`` = id of the earliest member (``published_at``,
    then ``id``), ``duplicate_of`` = that id for the others, and the representative's
    ``also_published_by`` rebuilt. Idempotent: a second call rewrites nothing. Run it once
    the parallel writers are done (the final task of an ingestion run).
    """
    checker = _Checker(store, deduper or Deduper(), ReconcileReport())
    batch: list[Record] = []
    for article in articles if articles is not None else _iter_store(store):
        batch.append(article)
        if len(batch) >= batch_size:
            checker.check(batch)
            batch = []
    checker.check(batch)
    report = checker.report
    groups: dict[str, set[str]] = {}
    for cid in checker.touched:
        groups.setdefault(checker.uf.find(cid), set()).add(cid)
    # a cluster is read only when the union-find merged it or the articles added a member to it
    wanted = [cids for cids in groups.values() if len(cids) > 1 or cids & checker.suspects]
    stored_members = store.clusters_members({c for cids in wanted for c in cids}) if wanted else {}
    rewrite: list[Record] = []
    for cids in wanted:
        members: dict[str, Record] = {}
        for cid in sorted(cids):
            for m in stored_members.get(cid, ()):
                members.setdefault(m["id"], m)
        if not members:
            continue
        rep = min(members.values(), key=published_key)["id"]
        stored = {str(m.get("cluster_id") or m["id"]) for m in members.values()}
        report.merged += len(stored) - 1
        if len(stored) == 1 and rep not in stored:
            report.renamed += 1
        rewrite.extend(cluster_rewrite(members.values()))
    if rewrite:  # one call for the whole pass (one bulk request and one refresh on Elasticsearch)
        done = store.rewrite_clusters(rewrite)
        if done.errors:
            raise RuntimeError(f"reconcile: {len(done.errors)} rewrites failed, e.g. {done.errors[0]}")
        report.rewritten += len(rewrite)
    return report


class _Checker:
    """The first pass of :func:`reconcile`: stored articles that share a content hash or pass the
    deduper's rule with a checked record join its cluster (union-find over cluster ids)."""

    def __init__(self, store: Store, deduper: Deduper, report: ReconcileReport) -> None:
        self.store, self.deduper, self.report = store, deduper, report
        self.uf = _UnionFind()
        self.touched: set[str] = set()
        self.suspects: set[str] = set()  # clusters an article joined as a member

    def check(self, batch: list[Record]) -> None:
        batch = [r for r in batch if r.get("id") and r.get("cluster_id")]
        if not batch:
            return
        self.report.checked += len(batch)
        bands = self._band_keys(batch)
        by_hash = self.store.find_content_hashes({r["content_hash"] for r in batch if r.get("content_hash")})
        by_band = self.store.find_band_keys({k for keys in bands for k in keys})
        for r, keys in zip(batch, bands, strict=True):
            refs: dict[str, ClusterRef] = {}
            for key in keys:
                for ref in by_band.get(key, ()):
                    refs.setdefault(ref.id, ref)
            own = refs.pop(r["id"], None)  # the stored copy of r itself: its current cluster
            cid = own.cluster_id if own is not None else str(r["cluster_id"])
            self.touched.add(cid)
            self.uf.find(cid)
            if cid != r["id"]:  # r joined a cluster: its representative's list and date order are checked
                self.suspects.add(cid)
            same = by_hash.get(r.get("content_hash") or "")
            if same is not None:
                self.uf.union(cid, same.cluster_id)
                self.touched.add(same.cluster_id)
            self._near(r, cid, refs)

    def _band_keys(self, batch: list[Record]) -> list[list[str]]:
        """Each record's LSH band keys: its ``lsh_bands``, else computed from its ``minhash`` by the
        deduper's signer (a run keeps only the signatures of what it indexed: a tenth of the memory)."""
        out = [list(r.get("lsh_bands") or ()) for r in batch]
        width = self.deduper.signer.width
        need = [i for i, r in enumerate(batch) if not out[i] and len(r.get("minhash") or ()) == width]
        if need:
            sigs = np.array([np.asarray(batch[i]["minhash"], dtype=np.uint32) for i in need])
            for i, keys in zip(need, self.deduper.signer.band_keys(sigs), strict=True):
                out[i] = keys
        return out

    def _near(self, r: Record, cid: str, refs: dict[str, ClusterRef]) -> None:
        """Union ``cid`` with the clusters of the band neighbours ``refs`` near-duplicate to ``r``."""
        signer, deduper = self.deduper.signer, self.deduper
        sig = r.get("minhash")
        cands = [c for c in refs.values() if c.signature and len(c.signature) == signer.width]
        if not sig or len(sig) != signer.width or not cands:
            return
        sims = signer.compare(
            np.asarray(sig, dtype=np.uint32), np.array([c.signature for c in cands], dtype=np.uint32)
        )
        for ref, s in zip(cands, sims, strict=True):
            if is_duplicate(
                s, rule=deduper.rule, threshold=deduper.threshold, min_support=deduper.min_support
            ):
                self.uf.union(cid, ref.cluster_id)
                self.touched.add(ref.cluster_id)


#: Store state key of the journal: ids indexed by runs whose reconcile has not finished yet.
PENDING_STATE = "reconcile_pending"


def note_pending(store: Store, ids: Iterable[str]) -> None:
    """Journal ``ids`` before they are indexed, so that a run killed before its reconcile is
    repaired by the next one (:func:`reconcile_pending`)."""
    ids = [i for i in ids if isinstance(i, str)]
    if not ids:
        return
    state = store.get_state(PENDING_STATE) or {}
    store.put_state(PENDING_STATE, {"ids": list(dict.fromkeys([*(state.get("ids") or []), *ids]))})


def reconcile_pending(
    store: Store,
    articles: Iterable[Record] = (),
    *,
    whole_store: bool = False,
    deduper: Deduper | None = None,
) -> ReconcileReport:
    """:func:`reconcile` over ``articles`` (a run's indexed articles) plus every article the
    journal holds (indexed by a run that was killed before its reconcile), or over the whole
    store when ``whole_store`` (``newswire reconcile``); then the reconciled ids leave the
    journal. Raises what the store raises (the journal is then kept for the next run)."""
    journal = list((store.get_state(PENDING_STATE) or {}).get("ids") or [])
    if whole_store:
        report = reconcile(store, None, deduper=deduper)
    else:
        given = list(articles)
        have = {a.get("id") for a in given}
        extra = [doc for i in journal if i not in have and (doc := store.get(i)) is not None]
        if not given and not extra:
            return ReconcileReport()
        report = reconcile(store, [*given, *extra], deduper=deduper, batch_size=RECONCILE_BATCH)
    if journal:
        done = set(journal)
        left = [i for i in (store.get_state(PENDING_STATE) or {}).get("ids") or [] if i not in done]
        store.put_state(PENDING_STATE, {"ids": left})  # ids journaled meanwhile by another run stay
    return report
