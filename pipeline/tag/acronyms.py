"""Acronyms defined in an article: "Long Name (LN)" and "LN (Long Name)" make per-article aliases.

Contract: :class:`AcronymRules` (a mixin over :class:`~pipeline.tag.article.ArticleBase`) finds the
definitions, binds both forms to the gazetteer's actor of that name (or of that acronym when it is
unambiguous), or else to a new actor named by the long form, and links every later use (acronyms only when
written in capitals).
"""

from __future__ import annotations

import bisect
import re

from pipeline.tag.article import ArticleBase, Mention
from pipeline.tag.gazetteer import CONNECTORS
from pipeline.tag.lexicon import guess_kind
from pipeline.tag.normalize import Token, norm_key

_ACR_AFTER = re.compile(r"\(\s*([A-Z][A-Za-z]{0,2}[A-Z][A-Za-z\-]{0,8})\s*\)")
_ACR_BEFORE = re.compile(
    r"\b([A-Z][A-Za-z]{0,2}[A-Z][A-Za-z\-]{0,8})\s*\(\s*((?:the\s+)?[A-Z][^()]{3,90}?)\s*\)"
)


class AcronymRules(ArticleBase):
    """Acronyms and long forms defined in the text become per-article aliases."""

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
            if toks and initials_match(acr, toks):
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
            if run[s].raw[0].isupper() and initials_match(acr, run[s:]):
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
            target = self.t.new_actor(long_name, guess_kind(long_name))
        self.aliases[norm_key(acr)] = target
        self.aliases[long_key] = target

    def alias_mentions(self) -> list[Mention]:
        out: list[Mention] = []
        if not self.aliases:
            return out
        at: dict[str, list[int]] = {}  # normal form -> its token indices, in order
        for i, t in enumerate(self.toks):
            at.setdefault(t.norm, []).append(i)
        for key, eid in sorted(self.aliases.items(), key=lambda kv: -kv[0].count(" ")):
            parts = key.split(" ")
            n = len(parts)
            for i in at.get(parts[0], ()):
                if i > len(self.toks) - n or self.taken[i]:
                    continue
                if [t.norm for t in self.toks[i : i + n]] != parts or any(self.taken[i : i + n]):
                    continue
                if (n == 1 and not self.toks[i].raw.isupper()) or not self.toks[i].raw[0].isupper():
                    continue
                out.append(self.mention(i, i + n, eid, "acronym"))
        return out


def initials_match(acr: str, toks: list[Token]) -> bool:
    letters = [c.lower() for c in acr if c.isalpha()]
    initials = [t.raw[0].lower() for t in toks if t.norm not in CONNECTORS or t.raw[0].isupper()]
    if not letters or not initials or initials[0] != letters[0]:
        return False
    # every capital word's initial used in order; small words may be skipped
    it = iter(letters)
    need = [t.raw[0].lower() for t in toks if t.raw[0].isupper()]
    return all(any(c == x for x in it) for c in need) and len(need) >= len(letters) - 1 or need == letters
