"""Datelines: the place a wire story was filed from, the most reliable place in it.

Contract: :class:`DatelineRules` (a mixin over :class:`~pipeline.tag.article.ArticleBase`) finds a dateline at
the start of the text or of its first paragraphs, in any case: ``LAGOS —``, ``ATHENS, Greece (Wire) —``,
``Kherson, Ukraine, May 4 (Wire) -``, ``WASHINGTON (AP) --``, ``Nairobi, Kenya, 3 March:``. The place part
links to a place of that name (a town, else a region), in the country or region the dateline names when it
names one, else the capital or the most populous; the country part links to the country as a place, never to
its government. The dateline's tokens are then taken, so no later rule re-reads them (a capital in a dateline
is not a government, a town in capitals is not an acronym).
"""

from __future__ import annotations

import re

from pipeline.tag.article import ArticleBase, Mention
from pipeline.tag.gazetteer import Entity

_WORD = r"[A-Z][\w'’.\-]*"
_DATELINE = re.compile(
    rf"(?P<place>{_WORD}(?:[ \-](?:{_WORD}|al|el|de|du|la|of|es|ez|ar|as|an|ad|az)){{0,4}}?)"
    rf"(?:\s*,\s*(?P<region>{_WORD}(?: {_WORD}){{0,3}}?))?"
    r"(?:\s*,\s*(?P<date>(?:[A-Z][a-z]{2,8}\.? \d{1,2}|\d{1,2} [A-Z][a-z]{2,8})))?"
    r"\s*(?:\((?P<agency>[^()\n]{1,40})\))?"
    r"\s*(?:—|–|--|-|:)\s"
)
#: A dateline sits at the text's start or at the start of one of its first paragraphs.
_MAX_OFFSET = 600
#: Kinds a dateline's place part may be (where reporters file from), most likely first.
_DATELINE_KINDS = ("city", "admin2", "admin1", "region", "island", "facility", "camp", "country")


class DatelineRules(ArticleBase):
    """Finds the dateline and links its place and country."""

    def dateline_mentions(self) -> list[Mention]:
        for start in self._paragraph_starts():
            m = _DATELINE.match(self.text, start)
            if m is None or m.end("place") - m.start("place") < 2:
                continue
            place_toks = self._toks_between(m.start("place"), m.end("place"))
            if not place_toks:
                continue
            i, j = place_toks
            key = " ".join(t.norm for t in self.toks[i:j])
            entry = self.gaz.names.get(key)
            if entry is None:
                continue
            places = [self.gaz.entities[eid] for eid, _ in entry.targets]
            places = [e for e in places if e.type == "location"]
            if not places:
                continue
            out: list[Mention] = []
            region: Entity | None = None
            if m.group("agency"):  # "(Meridian Wire)": the agency filing the story, no place or actor
                agency = self._toks_between(m.start("agency"), m.end("agency"))
                if agency:
                    for k in range(*agency):
                        self.taken[k] = True
            if m.group("region"):
                span = self._toks_between(m.start("region"), m.end("region"))
                if span:
                    r_entry = self.gaz.names.get(" ".join(t.norm for t in self.toks[span[0] : span[1]]))
                    regions = [
                        self.gaz.entities[eid]
                        for eid, _ in (r_entry.targets if r_entry else [])
                        if self.gaz.entities[eid].kind in ("country", "admin1")
                    ]
                    if regions:
                        region = max(regions, key=lambda e: e.kind == "country")
                        if region.country_code:
                            self.context.add(region.country_code)
                        out.append(self.mention(span[0], span[1], region.id, "dateline"))
            place = self._dateline_place(places, region)
            if place is None:
                return out
            if place.country_code:
                self.context.add(place.country_code)
            out.insert(0, self.mention(i, j, place.id, "dateline"))
            return out
        return []

    def _paragraph_starts(self) -> list[int]:
        starts = [0]
        for m in re.finditer(r"\n\s*", self.text[:_MAX_OFFSET]):
            starts.append(m.end())
        return starts[:4]

    def _toks_between(self, start: int, end: int) -> tuple[int, int] | None:
        i = next((k for k, t in enumerate(self.toks) if t.end > start), None)
        if i is None:
            return None
        j = i
        while j < len(self.toks) and self.toks[j].start < end:
            j += 1
        return (i, j) if j > i else None

    def _dateline_place(self, places: list[Entity], region: Entity | None) -> Entity | None:
        if region is not None:
            inside = [
                e
                for e in places
                if e.id != region.id and (region.id in e.ancestors or e.country_code == region.country_code)
            ]
            if inside:
                places = inside
            elif region.kind == "country":
                return None  # "Paris, Texas" when Texas is no country here: not a place we can place
        ranked = sorted(
            places,
            key=lambda e: (
                e.id in self.gaz.capitals,
                e.kind == "city",
                e.kind in _DATELINE_KINDS[:3],
                e.kind != "country",
                e.population,
            ),
            reverse=True,
        )
        return ranked[0] if ranked else None
