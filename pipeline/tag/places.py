"""Place resolution: whether a name that only towns bear is a town here, and which of several places it is.

Contract: :class:`PlaceRules` (a mixin over :class:`~pipeline.tag.article.ArticleBase`): ``town_ok`` applies
the context rules for names that are only towns (not inside a longer name, not a person's title and name,
common words only after a locative preposition); ``best_place`` picks among places of one name: those in the
article's countries first, then by kind and size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.tag.article import ArticleBase
from pipeline.tag.gazetteer import MAJOR_CITY, Entity, NameEntry
from pipeline.tag.lexicon import (
    ADMIN_WORDS,
    CALENDAR_WORDS,
    DIRECTIONS,
    FACILITY_WORDS,
    KIND_WORDS,
    LOC_PREPS,
    PERSON_TITLES,
    PLACE_SUFFIXES,
    STOP_WORDS,
)
from pipeline.tag.normalize import Token, norm_key

if TYPE_CHECKING:
    from pipeline.tag.resolver import GazetteerView


class PlaceRules(ArticleBase):
    """Which place a name is, and whether a town-only name is a town here."""

    def town_ok(self, i: int, j: int, entry: NameEntry) -> bool:
        """Context rules for a name that is only a town or region (not a country)."""
        if j - i > 1:
            return True
        tok = self.toks[i]
        low = tok.raw.lower()
        if low in STOP_WORDS or low in CALENDAR_WORDS:
            return False  # "One", "Of", "Along", "June": English words, whatever GeoNames says
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

    def followed_by_country(self, j: int) -> str | None:
        """The country code when ", <country>" and punctuation follow token j-1: how datelines and
        addresses name a place ("AIN ISSA, Syria (Wire) --"), unlike "Karim Nasser, Syria director"."""
        if j >= len(self.toks) or self.gap(j).strip() != "," or not self.toks[j].raw[0].isupper():
            return None
        for n in (1, 2, 3):
            entry = self.gaz.names.get(" ".join(t.norm for t in self.toks[j : j + n]))
            if entry is None or entry.demonym is not None:
                continue
            for eid, _ in entry.targets:
                e = self.gaz.entities[eid]
                if e.kind == "country" and (j + n >= len(self.toks) or self.gap(j + n).strip() != ""):
                    return e.country_code or ""
        return None

    def town_names(self, span: list[Token]) -> bool:
        """True when a span of 2+ words is made of names of towns a reader knows ("Ain Issa")."""
        entries = [self.gaz.known(t.norm) for t in span]
        return len(span) >= 2 and all(
            e is not None and e.demonym is None and self.only_towns(e) for e in entries
        )

    def only_towns(self, entry: NameEntry) -> bool:
        """True when every target of ``entry`` is a town (no country, region or actor)."""
        kinds = {(e.type, e.kind) for e in (self.gaz.entities[eid] for eid, _ in entry.targets)}
        return all(t == "location" and k not in ("country", "continent", "region") for t, k in kinds)

    def best_place(self, places: list[Entity], alt: frozenset[str] = frozenset()) -> Entity:
        """In the article's countries first; then by importance: countries, capitals, admin-1 regions and
        features, cities of ``MAJOR_CITY`` people or more (before an admin-1 of the same name: "Sumy",
        "Kano"), other towns, admin-2 districts; then a place so named before one with an alternate name
        (``alt``); then population. A place outside the article's countries beats the local ones only when it
        is fifty times as populous ("Moscow" in a story about the US is still Russia's capital; "Mansoura near
        Raqqa" is the Syrian village, Tripoli in a story about Lebanese politics is Lebanon's)."""

        def plain(e: Entity) -> tuple[int, bool, bool, int]:
            return place_rank(e, self.gaz.capitals, alt)

        best = _seat(max(places, key=plain), places)
        local = [e for e in places if e.country_code in self.context]
        if not local or best in local or best.country_code is None:
            return best  # a place spanning countries (a sea, a lake) belongs to every story
        near = _seat(max(local, key=plain), local)
        if near.population and best.population > 50 * near.population:
            return best  # "Moscow" in a story that mentions the US is still Russia's capital
        return near

    def locative_cue(self, i: int, j: int) -> bool:
        """A cue that the name at [i, j) is a place: a locative preposition before it ("in", "near", "the town
        of"), or ", <country or admin-1>" after it ("Konduga, Borno")."""
        if self.prev_word(self.coordination_head(i)) in LOC_PREPS:
            return True  # "in Nuuk and Sisimiut": the preposition governs the whole list
        end = self.coordination_end(j)
        if (
            end < len(self.toks)
            and self.gap(end) == " "
            and self.toks[end].raw.lower().rstrip("s") in ADMIN_WORDS
        ):
            return True  # "Sisaket province", "the Northwest and Southwest regions"
        if j < len(self.toks) and self.gap(j).strip() == "," and self.toks[j].raw[:1].isupper():
            for n in (3, 2, 1):
                entry = self.gaz.names.get(" ".join(t.norm for t in self.toks[j : j + n]))
                if entry is not None and any(
                    self.gaz.entities[eid].kind in ("country", "admin1") for eid, _ in entry.targets
                ):
                    return True
        return False

    def coordination_head(self, i: int) -> int:
        """The first token of a coordination of capitalised names ending with the one at token i ("Hvar and
        Vis", "Brac, Hvar and Vis"), or i."""
        k = i
        while k >= 2:
            link = self.toks[k - 1].raw if self.gap(k) == " " else ""
            if link in ("and", "or") and self._name_word(k - 2) and self.gap(k - 1) == " ":
                k -= 2
            elif self.gap(k).strip() == "," and self._name_word(k - 1):
                k -= 1
            else:
                break
            while k > 0 and self.gap(k) == " " and self._name_word(k - 1) and k > i - 8:
                k -= 1  # the previous name's other words ("Baton Rouge")
        return k

    def coordination_end(self, j: int) -> int:
        """The token after a coordination of capitalised names that starts before token j."""
        k = j
        while k + 1 < len(self.toks) and k < j + 8:
            if (
                self.gap(k).strip() in ("", ",")
                and self.toks[k].raw in ("and", "or")
                and self.toks[k + 1].raw[:1].isupper()
            ):
                k += 2
            elif self.gap(k).strip() == "," and self._name_word(k):
                k += 1
            else:
                break
            while k < len(self.toks) and self.gap(k) == " " and self._name_word(k):
                k += 1
        return k

    def _name_word(self, k: int) -> bool:
        """A capitalised word that can be part of a name (not "In", "The" opening a sentence)."""
        raw = self.toks[k].raw
        return raw[:1].isupper() and raw.lower() not in STOP_WORDS

    def spoken_by(self, i: int, j: int) -> bool:
        """Is the name at [i, j) the subject of a speech verb ("Jassem said")? People speak; towns do not."""
        if j >= len(self.toks) or self.gap(j) != " " or self.prev_word(i) != "":
            return False  # only a clause's subject: "Hoteliers in Dubrovnik and Zadar said" is no person
        return self.toks[j].raw in SPEECH_VERBS

    def context_countries(self, places: list[Entity]) -> set[str]:
        """The country a name places the article in: the country of its country, admin-1 or major-city reading
        when every such reading is in one country and it is ten times the size of any other reading elsewhere
        ("Borno" -> NG, "Lagos" -> NG; "Georgia" -> none: GE or US; "Mansoura" -> none: EG, DZ or QA)."""
        strong = [
            e
            for e in places
            if e.kind in ("country", "admin1") or (e.kind == "city" and e.population >= MAJOR_CITY)
        ]
        codes = {e.country_code for e in strong}
        if len(codes) != 1 or None in codes:
            return set()
        cc = str(next(iter(codes)))
        if any(e.kind in ("country", "admin1") for e in strong):
            return {cc}
        top = max(e.population for e in strong)
        if any(e.country_code != cc and e.population * 10 > top for e in places):
            return set()
        return {cc}


def place_kind(name: str) -> str:
    """The kind of a place the gazetteer lacks, from the generic word in its name ("Kelani River" ->
    river)."""
    words = name.lower().replace("-", " ").split()
    for word in (words[-1:] + words[:1]) if words else []:
        kind = KIND_WORDS.get(word)
        if kind:
            return kind
    return "facility" if words and words[-1] in FACILITY_WORDS else "place"


SPEECH_VERBS = frozenset(
    [
        "said",
        "says",
        "told",
        "tells",
        "added",
        "asked",
        "wrote",
        "tweeted",
        "explained",
        "noted",
        "insisted",
        "recalled",
    ]
)


def region_for(gaz: GazetteerView, place: Entity) -> str:
    """The id of the region a place's name stands for before "province", "region", "oblast"...: the admin-1
    (else admin-2) region of that name in the place's country, else the admin-1 region containing the place
    ("Kaliningrad Oblast" -> Kaliningradskaya oblast', "Daraa province" -> the governorate)."""
    if place.kind in ("admin1", "admin2"):
        return place.id
    entry = gaz.names.get(norm_key(place.name))
    regions = [
        gaz.entities[eid]
        for eid, _ in (entry.targets if entry else [])
        if gaz.entities[eid].kind in ("admin1", "admin2")
        and gaz.entities[eid].country_code == place.country_code
    ]
    if regions:
        return str(min(regions, key=lambda r: r.kind).id)  # admin1 before admin2
    for aid in place.ancestors:
        a = gaz.entities.get(aid)
        if a is not None and a.kind == "admin1":
            return str(a.id)
    return place.id


def _seat(place: Entity, candidates: list[Entity]) -> Entity:
    """A region and a town inside it that share a name: the town ("Daraa", "Kherson", "Deir ez-Zor"); news
    names the region with its type word ("Daraa province"), which the linker widens over."""
    if place.kind not in ("admin1", "admin2"):
        return place
    inside = [e for e in candidates if e.kind == "city" and place.id in e.ancestors]
    return max(inside, key=lambda e: e.population) if inside else place


def place_rank(
    e: Entity, capitals: dict[str, str], alt: frozenset[str] = frozenset()
) -> tuple[int, bool, bool, int]:
    """The order of places of one name when the article does not decide (see
    :meth:`PlaceRules.best_place`)."""
    return (importance(e, capitals), e.id not in alt, e.kind == "city", e.population)


def importance(e: Entity, capitals: dict[str, str]) -> int:
    """How salient a place is when nothing else decides: countries 4, capitals 3, admin-1 regions, features
    and cities of ``MAJOR_CITY`` 2, other towns 1, admin-2 districts 0."""
    if e.kind in ("country", "continent"):
        return 4
    if e.id in capitals:
        return 3
    if e.kind == "city":
        return 2 if e.population >= MAJOR_CITY else 1
    if e.kind == "admin2":
        return 0
    if e.country_code is None and e.kind in ("region", "sea"):
        return 3  # a macro-region or sea spanning countries ("Sahel") before a province of that name
    return 2  # admin-1 regions, seas, rivers, macro-regions, facilities
