"""The linker: every rule family composed over one article, in order.

Contract: ``Article(tagger, text, doc, toks).run()`` returns the article's linked mentions sorted by offset:
(1) acronyms defined in the text, (2) gazetteer matches, longest first, each linked by :meth:`Article.pick`
(capitalisation, actors before towns, place resolution, metonymy), (3) spaCy spans not already covered, (4)
bare surnames of people named in full, (5) names widened to titles and place suffixes.
"""

from __future__ import annotations

import bisect
import re

from pipeline.tag.acronyms import AcronymRules
from pipeline.tag.article import Mention
from pipeline.tag.datelines import DatelineRules
from pipeline.tag.gazetteer import ALT, MINOR, SEAT, SURNAME, Entity, NameEntry
from pipeline.tag.lexicon import (
    ADMIN_WORDS,
    BARE_INSTITUTIONS,
    CALENDAR_WORDS,
    DIRECTIONS,
    FACILITY_WORDS,
    FEATURE_HEADS,
    FEATURE_WORDS,
    LOC_PREPS,
    LOWER_FEATURE_HEADS,
    OF_PLACES,
    PERSON_TITLES,
    PLACE_SUFFIXES,
    PLURAL_FEATURES,
    STOP_WORDS,
    STRONG_LOC_PREPS,
    TITLE_WORDS,
    guess_kind,
)
from pipeline.tag.metonymy import MetonymyRules
from pipeline.tag.ner import SPACY_LABELS
from pipeline.tag.normalize import tokens
from pipeline.tag.places import PlaceRules, place_kind, region_for

_BARE_INSTITUTION = re.compile(
    r"\b(?:Interior|Home|Foreign(?: Affairs)?|Defen[cs]e) Ministry\b"
    r"|\bMinistry of (?:the )?(?:Interior|Foreign Affairs|Defen[cs]e)\b(?! of)"
    r"|\bCentral Bank\b(?! of)"
)


def clean_name(name: str) -> str:
    """A name as spaCy's span gives it, without what is not part of the name: a possessive, a quoted nickname
    (Joaquin "El Chapo" Guzman), an unclosed parenthesis ("Electoral Service (Servel")."""
    name = re.sub(r"\s*[\"“][^\"”]{1,30}[\"”]\s*", " ", name).strip()
    if "(" in name and ")" not in name:
        name = name.split("(", 1)[0].strip()
    return name[:-2] if name[-2:] in ("'s", "’s") else name


class Article(DatelineRules, AcronymRules, MetonymyRules, PlaceRules):
    """Links the mentions of one text: every rule family composed, in order."""

    def pick(self, i: int, j: int, entry: NameEntry) -> tuple[str, str] | None:
        """The entity a gazetteer match links to here, with the link's source, or None (rejected)."""
        if self.lower_case(i, j):
            return None  # no flag passes case_ok
        by_flag = {f: self.case_ok(i, j, entry, f) for f in {f for _, f in entry.targets}}
        ok = [(eid, f) for eid, f in entry.targets if by_flag[f]]
        if not ok:
            return None
        ents = [(self.gaz.entities[eid], f) for eid, f in ok]
        countries = [e for e, _ in ents if e.kind in ("country", "continent")]
        actors = [(e, f) for e, f in ents if e.type == "actor"]
        places = [e for e, f in ents if e.type == "location" and not f & MINOR]
        minor = [e for e, f in ents if e.type == "location" and f & MINOR]
        if actors and not countries:
            # an actor's name beats a town of the same name ("Obama", "Kerry"); plain names before
            # seats/surnames
            plain = [e for e, f in actors if not f & (SEAT | SURNAME)]
            return (plain or [e for e, _ in actors])[0].id, "gazetteer"
        if not places and not minor:
            return None
        if not countries and self.spoken_by(i, j) and not any(e.id in self.gaz.capitals for e in places):
            return None  # "Jassem said": people speak, towns do not (capitals speak for their states)
        if not countries and not self.town_ok(i, j, entry):
            return None
        if countries and self.inside_spacy_org[i] and all(self.inside_spacy_org[i:j]):
            return (
                None  # "U.S. 5th Fleet", "United States Treasury Department": part of an organisation's name
            )
        longer = j < len(self.toks) and self.gap(j) == " " and self.toks[j].raw[:1].isupper()
        # a cue, and neither a name spaCy reads as a person's nor the start of a longer name ("Black Sea")
        cue = self.locative_cue(i, j) and not self.spacy_person[i] and not longer
        local_minor = [e for e in minor if e.country_code in self.context] if cue else []
        if not places or (
            local_minor and not any(e.country_code in self.context or e.country_code is None for e in places)
        ):
            if not local_minor:
                return (
                    None  # a small town or a common word: only with a locative cue in its country's context
                )
            places = local_minor
        place = self.best_place(places, frozenset(eid for eid, f in ok if f & ALT))
        if place.kind == "country" and self.country_is_government(i, j):
            gov = self.gaz.government_of.get(place.country_code or "")
            if gov:
                return gov, "metonymy"
        elif self.gaz.capitals.get(place.id) and self.capital_is_government(i, j):
            gov = self.gaz.government_of.get(self.gaz.capitals[place.id])
            if gov:
                return gov, "metonymy"
        return place.id, "gazetteer"

    def state_prefix(self, i: int, j: int, actor_id: str) -> str | None:
        """The government of the country that opens an institution's name, possessive or attributive
        ("Argentina's President", "U.S. President", "Japan's Defense Ministry"): the state acts through it.
        A demonym ("Argentine Congress") names no state here."""
        e = self.gaz.entities.get(actor_id)
        if e is None or e.type != "actor" or j - i < 2:
            return None
        for k in range(i + 1, min(j, i + 4)):
            raw = self.toks[k - 1].raw
            possessive = raw[-2:] in ("'s", "’s")
            attributive = raw.isupper() and self.gap(k).strip(". ") == ""
            if not (possessive or attributive):
                continue
            entry = self.gaz.names.get(" ".join(t.norm for t in self.toks[i:k]))
            if entry is None or entry.demonym is not None:
                continue
            for eid, _ in entry.targets:
                place = self.gaz.entities[eid]
                if place.kind == "country" and place.country_code:
                    gov = self.gaz.government_of.get(place.country_code)
                    return gov if gov != actor_id else None
        return None

    def run(self) -> list[Mention]:
        out: list[Mention] = []
        self.define_acronyms()
        matches = self.gazetteer_matches()
        spacy_ents = self.spacy_spans()
        self.mark_spacy_names(spacy_ents)
        self.collect_context(matches)
        # the dateline, then article aliases (acronyms and long forms defined in this text)
        out.extend(self.dateline_mentions())
        out.extend(self.alias_mentions())
        out.extend(self.gazetteer_mentions(matches))
        out.extend(self.unknown_feature_mentions())
        out.extend(self.spacy_mentions(spacy_ents))
        out.extend(self.bare_institution_mentions(out))
        out.extend(self.surname_mentions(out))
        out.sort(key=lambda m: m.start)
        return self.widen(out)

    def mark_spacy_names(self, spacy_ents: list[tuple[int, int, str]]) -> None:
        """Flag the tokens inside spaCy's people and multi-word names (organisations the gazetteer lacks)."""
        for i, j, label in spacy_ents:
            if label == "PERSON":
                for k in range(i, j):
                    self.spacy_person[k] = True
            if label in ("PERSON", "ORG") and j - i >= 2:
                whole = self.gaz.known(" ".join(t.norm for t in self.toks[i:j]))
                for k in range(i, j):
                    self.inside_spacy_name[k] = True
                    self.inside_spacy_org[k] = label == "ORG" and whole is None

    def collect_context(self, matches: list[tuple[int, int, NameEntry]]) -> None:
        """The context: the countries of countries, demonyms, admin-1 regions and major cities named in the
        article."""
        for i, j, entry in matches:
            if entry.demonym is not None:
                if entry.demonym:
                    self.context.add(entry.demonym)
                continue
            if entry.common or self.lower_case(i, j) or not self.case_ok(i, j, entry, 0):
                continue  # a common word ("Orange", "Split") places no article
            places = [  # alternate names place no article ("Acropolis" is also a name of Little Rock)
                self.gaz.entities[eid]
                for eid, f in entry.targets
                if eid.startswith("geonames:") and not f & (MINOR | ALT)
            ]
            if any(e.kind == "country" for e in places):
                self.country_spans[j] = i
            self.context.update(self.context_countries(places))

    def gazetteer_mentions(self, matches: list[tuple[int, int, NameEntry]]) -> list[Mention]:
        """The gazetteer names not already taken, each resolved by :meth:`pick` (plus the government a
        state prefix names)."""
        out: list[Mention] = []
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
                gov = self.state_prefix(i, j, picked[0])
                out.append(self.mention(i, j, *picked))
                if gov is not None:
                    out.append(Mention(out[-1].start, out[-1].end, out[-1].text, gov, "metonymy"))
        return out

    def widen(self, found: list[Mention]) -> list[Mention]:
        """Whole names: titles before people ("Foreign Secretary Boris Johnson"), "Idlib province", "Northern
        Iraq". "Sarmada, Syria" stays two mentions: the town and the country, each searchable."""
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
                        oe = self.t.entity(other.entity_id)
                        if (
                            other is not m
                            and new_start <= other.start < m.start
                            and oe
                            and oe.type != "actor"
                        ):
                            drop.add(id(other))  # a place inside the title; the state or office stays
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
                    if self.toks[j].raw.lower() in ADMIN_WORDS:
                        m.entity_id = region_for(self.gaz, e)  # "Daraa province": the region, not its town
                    continue
                self.name_after_place(m, i, j, e)
        return [m for m in found if id(m) not in drop]

    def bare_institution_mentions(self, found: list[Mention]) -> list[Mention]:
        """ "the Interior Ministry said" in a story from one country: that country's ministry. The home
        country is the dateline's, else the one country the article's places and states belong to."""
        home = self.home_country(found)
        if home is None:
            return []
        out: list[Mention] = []
        for m in _BARE_INSTITUTION.finditer(self.text):
            i = self.char_to_tok.get(m.start())
            if i is None or self.taken[i]:
                continue
            if (
                i > 0
                and self.gap(i) == " "
                and self.toks[i - 1].raw[:1].isupper()
                and self.toks[i - 1].raw != "The"
            ):
                continue  # "French Interior Ministry", "Kenya's Central Bank": named with a country already
            role = BARE_INSTITUTIONS.get(" ".join(m.group().lower().split()))
            actor = self.gaz.institutions.get(f"{home}:{role}") if role else None
            if actor is not None:
                j = bisect.bisect_left(self.starts, m.end())
                out.append(self.mention(i, j, actor, "context"))
        return out

    def unknown_feature_mentions(self) -> list[Mention]:
        """Places the gazetteer lacks, named by their kind: "the Bhote Koshi river", "the Svartsengi
        geothermal power plant", "the Ankobra and Pra rivers", "the islands of Brac, Hvar and Vis". Each gets
        the id its name gives (without the generic words), so a search by the bare name finds it."""
        out: list[Mention] = []
        for k, tok in enumerate(self.toks):
            head = tok.raw.lower()
            if self.taken[k] or (
                head not in FEATURE_HEADS and head not in PLURAL_FEATURES and head not in OF_PLACES
            ):
                continue
            if head in OF_PLACES:  # "the islands of Brac, Hvar and Vis", "the villages of Sarbuland and ..."
                if k + 1 < len(self.toks) and self.toks[k + 1].raw == "of" and self.gap(k + 1) == " ":
                    out.extend(self._coordinated_places(k + 2, forward=True, kind=OF_PLACES[head]))
                continue
            i = k
            while i > 0 and self.gap(i) == " " and self.toks[i - 1].raw.lower() in FEATURE_WORDS:
                i -= 1  # "geothermal power" before "plant"
            start = i
            while i > 0 and self.gap(i) == " " and self._unknown_name_word(i - 1) and start - i < 4:
                i -= 1
            if i == start:
                continue
            if head in PLURAL_FEATURES:  # "the Ankobra and Pra rivers": each name is one
                out.extend(self._coordinated_places(start - 1, forward=False, kind=PLURAL_FEATURES[head]))
                continue
            name = self.text[self.toks[i].start : tok.end]
            out.append(self.mention(i, k + 1, self.t.new_place(name, place_kind(name), None), "context"))
        return out

    def _unknown_name_word(self, k: int) -> bool:
        raw = self.toks[k].raw
        return (
            raw[:1].isupper()
            and not self.taken[k]
            and raw.lower() not in STOP_WORDS
            and not (self.sentence_start(k) and raw.lower() in CALENDAR_WORDS)
        )

    def _coordinated_places(self, k: int, forward: bool, kind: str) -> list[Mention]:
        """Each capitalised name of a coordination ("A, B and C") starting (forward) or ending (backward) at
        token k, as a place the gazetteer lacks (names it knows were linked already)."""
        names: list[tuple[int, int]] = []
        step = 1 if forward else -1
        while 0 <= k < len(self.toks) and len(names) < 8:
            a = b = k
            while (
                0 <= b + step < len(self.toks)
                and self._unknown_name_word(b + step)
                and (self.gap(max(b, b + step)) == " ")
            ):
                b += step
            if not self._unknown_name_word(k):
                break
            lo, hi = min(a, b), max(a, b) + 1
            names.append((lo, hi))
            nxt = hi if forward else lo - 1
            if forward:
                if nxt < len(self.toks) and self.toks[nxt].raw in ("and", "or") and self.gap(nxt) == " ":
                    k = nxt + 1
                elif nxt < len(self.toks) and self.gap(nxt).strip() == ",":
                    k = nxt
                else:
                    break
            else:
                if nxt >= 0 and self.toks[nxt].raw in ("and", "or") and self.gap(nxt + 1) == " ":
                    k = nxt - 1
                elif lo > 0 and self.gap(lo).strip() == ",":
                    k = lo - 1
                else:
                    break
        out = []
        for lo, hi in names:
            if not any(self.taken[lo:hi]):
                name = self.text[self.toks[lo].start : self.toks[hi - 1].end]
                out.append(self.mention(lo, hi, self.t.new_place(name, kind, None), "context"))
        return out

    def home_country(self, found: list[Mention]) -> str | None:
        dateline = [m for m in found if m.source == "dateline"]
        codes = [self.t.entity(m.entity_id) for m in (dateline or found)]
        countries = {e.country_code for e in codes if e is not None and e.country_code}
        return next(iter(countries)) if len(countries) == 1 else None

    def name_after_place(self, m: Mention, i: int, j: int, place: Entity) -> None:
        """A feature or facility named after a known place: "Dnipro River", "Port of Beira", "Hwange Thermal
        Power Station", "Zamzam camp". The mention becomes that feature (an id from its name, lying in the
        place), unless the gazetteer knew the whole name (it would have matched, longest first)."""
        k = j
        while (
            k < len(self.toks)
            and k < j + 4
            and self.gap(k) == " "
            and self.toks[k].raw.lower() in FEATURE_WORDS
        ):
            k += 1
        while k > j and self.toks[k - 1].raw.lower() not in FEATURE_HEADS:
            k -= 1
        start = m.start
        if k == j and i >= 2 and self.toks[i - 2].raw == "Port" and self.toks[i - 1].raw == "of":
            start = self.toks[i - 2].start  # "Port of Beira"
        elif k == j:
            return
        elif not (self.toks[j].raw[0].isupper() or self.toks[k - 1].raw.lower() in LOWER_FEATURE_HEADS):
            # "Beira port", "the Goma airport" name the town's port; "Kelani river", "Zamzam camp" a feature
            return
        end = self.toks[k - 1].end if k > j else m.end
        name = self.text[start:end]
        for x in range(i, max(k, j)):
            self.taken[x] = True
        m.start, m.end, m.text = start, end, name
        # it lies in the place it is named after when that place is in the story's countries ("Victoria
        # reservoir" in a story about Sri Lanka does not lie in Hong Kong's Victoria)
        within = place if place.country_code in self.context else None
        m.entity_id = self.t.new_place(name, place_kind(name), None, within=within)

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
            found = self.spacy_mention(i, j, label)
            if found is not None:
                out.append(found)
        return out

    def spacy_mention(self, i: int, j: int, label: str) -> Mention | None:
        """One spaCy span not taken: an article alias, a gazetteer name, or a place or actor the gazetteer
        lacks (None: nothing to link)."""
        span = self.toks[i:j]
        if not span[0].raw[0].isupper() or span[0].raw.isdigit():
            return None
        key = " ".join(t.norm for t in span)
        entry = self.gaz.names.get(key)
        if entry is not None and entry.demonym is not None:
            return None
        if key in self.aliases:
            return self.mention(i, j, self.aliases[key], "spacy")
        if entry is not None:
            picked = self.pick(i, j, entry)
            if picked is not None:
                return self.mention(i, j, picked[0], "spacy")
            if self.gaz.known(key) is not None:
                return None  # a known name, rejected here by the linker's rules
            # else only small towns bear it: spaCy's person or organisation stands
        name = clean_name(self.text[span[0].start : span[-1].end])
        country = self.followed_by_country(j)
        if country is not None or self.town_names(span):
            # "AIN ISSA, Syria (Wire) --", "camps at Ain Issa and Mabrouka": a place the gazetteer lacks
            return self.mention(i, j, self.t.new_place(name, place_kind(name), country or None), "spacy")
        if label in ("ORG", "FAC", "GPE", "LOC") and span[-1].raw.lower() in FACILITY_WORDS:
            # "Alau Dam", "Herat Regional Hospital", "Medupi power station": a facility, not an actor
            return self.mention(i, j, self.t.new_place(name, "facility", None), "spacy")
        return self.new_spacy_entity(i, j, label, name)

    def new_spacy_entity(self, i: int, j: int, label: str, name: str) -> Mention | None:
        """A person, organisation or place the gazetteer lacks, by spaCy's label (None: not linked)."""
        span = self.toks[i:j]
        if label == "PERSON":
            if j - i >= 2:  # surname-only mentions are linked in surname_mentions, or not at all
                return self.mention(i, j, self.t.new_actor(name, "person"), "spacy")
        elif label == "ORG":
            if j - i >= 2 or (span[0].raw.isupper() and len(span[0].raw) >= 2):
                return self.mention(i, j, self.t.new_actor(name, guess_kind(name)), "spacy")
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
                    return self.mention(i, j, self.best_place(places).id, "spacy")
            return self.mention(i, j, self.t.new_place(name, place_kind(name), None), "spacy")
        elif (
            label in ("GPE", "LOC", "FAC")
            and len(name) > 2
            and (self.prev_word(self.coordination_head(i)) in STRONG_LOC_PREPS or place_kind(name) != "place")
        ):
            # a place the gazetteer lacks, named as a place ("at Diboli", "the Kelani river"): searchable
            # under the id its name gives
            return self.mention(i, j, self.t.new_place(name, place_kind(name), None), "spacy")
        return None

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
