"""One article being tagged: its tokens, the state the rules share, and the text helpers they all read.

Contract: :class:`ArticleBase` holds the text, its tokens (:mod:`pipeline.tag.normalize`), the gazetteer, the
per-article context (countries seen, acronyms defined, tokens already linked) and the helpers every rule
family uses (gaps between tokens, sentence starts, capitalisation checks, the gazetteer's matches). The rule
families (:mod:`~pipeline.tag.datelines`, :mod:`~pipeline.tag.acronyms`, :mod:`~pipeline.tag.metonymy`,
:mod:`~pipeline.tag.places`) are mixins over it; :mod:`pipeline.tag.linker` composes them. :class:`Mention` is
one linked mention with character offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pipeline.tag.gazetteer import CONNECTORS, UPPER, Match, NameEntry
from pipeline.tag.lexicon import (
    PERSON_TITLES,
)
from pipeline.tag.normalize import Token, tokens

if TYPE_CHECKING:
    from pipeline.tag.tagger import Tagger


_SENT_END = re.compile(r"[.!?:;\"”»\n]\s*$")


@dataclass(slots=True)
class Mention:
    """One linked mention: character offsets, the surface form and the entity."""

    start: int
    end: int
    text: str
    entity_id: str
    source: str  # "gazetteer", "acronym", "surname", "spacy", "metonymy"


class ArticleBase:
    """Tagging state for one text and the helpers every rule family reads."""

    def __init__(
        self,
        tagger: Tagger,
        text: str,
        doc: Any,
        toks: list[Token] | None = None,
        matches: list[Match] | None = None,
    ) -> None:
        self.t = tagger
        self.gaz = tagger.gaz
        self.text = text
        self.doc = doc
        self.toks: list[Token] = tokens(text) if toks is None else toks
        self.matches = self.gaz.matches([t.norm for t in self.toks]) if matches is None else matches
        self.starts: list[int] = list(map(itemgetter(0), self.toks))
        self.context: set[str] = set()
        self.aliases: dict[str, str] = {}  # normal form -> entity id, defined in this article
        self.taken = [False] * len(self.toks)
        self.char_to_tok: dict[int, int] = dict(zip(self.starts, range(len(self.toks)), strict=True))
        self.country_spans: dict[int, int] = {}  # end token -> start token of country names
        self.inside_spacy_name = [False] * len(self.toks)  # tokens inside a spaCy PERSON/ORG of 2+ words
        self.inside_spacy_org = [False] * len(self.toks)  # tokens inside an unknown spaCy ORG of 2+ words
        self.spacy_person = [False] * len(self.toks)  # tokens inside a spaCy PERSON
        # tokens not opening with a lower-case letter: a span with none never passes :meth:`case_ok`
        self.capital = [not t.raw[0].islower() for t in self.toks]
        self._case: dict[tuple[int, int, str, int], bool] = {}  # case_ok's answers

    # -- helpers
    def gap(self, i: int) -> str:
        """The characters between token i-1 and token i (a dropped article prefix, "ar-", is the token's)."""
        if not 0 < i < len(self.toks):
            return "\n"
        tok = self.toks[i]
        return self.text[self.toks[i - 1].end : tok.pre if tok.pre >= 0 else tok.start]

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
        """Is the span written as the name must be (capitals for an acronym, the capitalised words of its
        mask)? False whenever every word opens with a lower-case letter (see :meth:`lower_case`). Only the
        UPPER flag matters; the answer is remembered per span, name and UPPER (the context pass and the linker
        ask the same)."""
        key = (i, j, entry.key, flags & UPPER)
        found = self._case.get(key)
        if found is None:
            found = self._case[key] = self._case_ok(i, j, entry, flags & UPPER)
        return found

    def _case_ok(self, i: int, j: int, entry: NameEntry, flags: int) -> bool:
        span = self.toks[i:j]
        if flags & UPPER:  # "EU", "EU's", "U.N."
            letters = [c for t in span for c in _without_possessive(t.raw) if c.isalpha()]
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

    def lower_case(self, i: int, j: int) -> bool:
        """Does every word of tokens i..j open with a lower-case letter? Then :meth:`case_ok` is False for
        every flag (an acronym needs capitals, any other name a capitalised word): most gazetteer matches in
        running text are such common words, and this skips their checks."""
        return not any(self.capital[i:j])

    def prev_word(self, i: int) -> str:
        """The lower-cased word before token i within the sentence ('' at a sentence start), skipping
        'the'."""
        while i > 0 and not self.sentence_start(i):
            w = self.toks[i - 1].raw.lower()
            if self.gap(i).strip() not in ("", ",") or w not in ("the",):
                return w if self.gap(i).strip() in ("",) else ""
            i -= 1
        return ""

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
    def gazetteer_matches(self) -> list[Match]:
        """The gazetteer's names in the text, longest first, then in text order."""
        # a name written all in lower case links nothing (:meth:`lower_case`), a demonym aside
        capital, found = self.capital, []
        for m in self.matches:
            if m[2].demonym is not None or True in capital[m[0] : m[1]]:
                found.append(m)
        return sorted(found, key=lambda m: (-(m[1] - m[0]), m[0]))


def _without_possessive(word: str) -> str:
    return word[:-2] if word[-2:] in ("'s", "’s") else word
