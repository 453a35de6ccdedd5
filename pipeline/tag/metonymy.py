"""Metonymy: a country or capital named as the state that acts ("Moscow warned", "US-backed", "sanctions
against Iran").

Contract: :class:`MetonymyRules` (a mixin over :class:`~pipeline.tag.article.ArticleBase`) answers, for a
country or capital name at a token range, whether a strong local cue makes it its government: the subject of a
reporting or decision verb, "X-backed", a country written in capitals used as an adjective ("U.S. forces"),
"X's government". A place is the default: when no such cue is there, the name stays a place.
"""

from __future__ import annotations

from pipeline.tag.article import ArticleBase
from pipeline.tag.lexicon import (
    ADDRESS_VERBS,
    AUXILIARIES,
    BACKER_WORDS,
    GOV_NOUNS,
    GOV_PREPS,
    INSTITUTIONS,
    LIST_AGENT_CUES,
    LOC_PREPS,
    MODALS,
    OF_GOVERNMENT,
    OFFICE_ADJECTIVES,
    OFFICE_WORDS,
    PERSON_TITLES,
    RELATION_NOUNS,
    REPORT_VERBS,
    STOP_WORDS,
)


class MetonymyRules(ArticleBase):
    """Is a country or capital the state acting, or the place?"""

    def followed_by_verb(self, j: int, loose: bool = False, after_comma: bool = False) -> bool:
        """Is the name ending before token j the subject of a reporting or action verb ("Moscow warned",
        "the United States will provide")? ``loose`` also takes any -s/-ed word after a clause-initial
        name."""
        k = j
        after_modal = False
        while k < len(self.toks) and k < j + 5:
            gap = self.gap(k)
            if k == j and len(self.toks[j - 1].raw) == 1:
                gap = gap.lstrip(".")  # "The U.S. reaffirms"
            if k == j and after_comma:
                gap = gap.replace(",", "", 1)  # the verb after an aside
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

    def verb_after_aside(self, j: int) -> bool:
        """The subject of a verb after an aside: an appositive ("France, the former colonial power, urged") or
        a relative clause ("Hungary and Poland, which have long opposed relocation, said")."""
        if j >= len(self.toks) or self.gap(j).strip() != ",":
            return False
        word = self.toks[j].raw.lower()
        if word in ("which", "who", "that"):
            return self.followed_by_verb(j + 1)  # "which have long opposed": the clause's own verb
        if word not in ("the", "a", "an", "its", "their", "whose"):
            return False
        for k in range(j + 1, min(j + 10, len(self.toks))):
            if self.gap(k).strip() == ",":
                return self.followed_by_verb(k, after_comma=True)
            if self.gap(k).strip() not in ("", "-"):  # "the so-called E3"
                return False
        return False

    def office_follows(self, j: int) -> bool:
        """After "<Country>'s": a state office or state noun, possibly after one adjective ("Oman's Foreign
        Minister", "Iran's president", "South Korea's new president", "the UK's commitment")."""
        for k in (j, j + 1):
            if k >= len(self.toks) or self.gap(k).strip(". ") != "":
                return False
            low = self.toks[k].raw.lower()
            if low in GOV_NOUNS or low in PERSON_TITLES or low in INSTITUTIONS or low in OFFICE_WORDS:
                return True
            if k == j and not (self.toks[k].raw.islower() and low in OFFICE_ADJECTIVES):
                return False
        return False

    def backer(self, j: int) -> bool:
        """ "US-backed", "Iran-led": the country's government acting (but "Britain-based" is a place)."""
        if j >= len(self.toks):
            return False
        return self.gap(j) in ("-", ".-", "‐") and self.toks[j].raw.lower() in BACKER_WORDS

    def list_head(self, i: int) -> int:
        """First token of a list of country names that ends with the one at token i ("Iran, Egypt and
        Iraq")."""
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

    def list_span(self, i: int) -> tuple[int, int]:
        """(number of country names, token after the last one) of the list holding the one starting at i."""
        starts = {s: e for e, s in self.country_spans.items()}
        k = self.list_head(i)
        n = 0
        end = i
        while k in starts:
            n += 1
            k = end = starts[k]
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
        return n, end

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

    def capital_is_government(self, i: int, j: int) -> bool:
        """A capital as the subject of a reporting verb, alone or in a pair ("Addis Ababa denies", "Rome and
        Athens objected"); never after a locative preposition ("talks in Moscow")."""
        prev = self.prev_word(i)
        if prev in LOC_PREPS:
            return False
        if self.followed_by_verb(j) or self.verb_after_aside(j):
            return True
        if prev in ("with", "against") and i >= 2 and self.toks[i - 2].raw.lower() in RELATION_NOUNS:
            return True  # "ties with Washington", "in constant contact with Washington"
        if j + 1 < len(self.toks) and self.toks[j].raw == "and" and self.gap(j).strip() == "":
            for n in (3, 2, 1):
                k = j + 1 + n
                entry = self.gaz.names.get(" ".join(t.norm for t in self.toks[j + 1 : k]))
                if entry is not None and any(eid in self.gaz.capitals for eid, _ in entry.targets):
                    return self.followed_by_verb(k)
        return False

    def country_is_government(self, i: int, j: int) -> bool:
        """Metonymy for a country name at tokens [i, j): the government acting, or the place?"""
        head = self.list_head(i)
        prev = self.prev_word(head)
        if (self.followed_by_verb(j) or self.verb_after_aside(j)) and prev not in LOC_PREPS:
            return True  # "..., the United States is committed"; but "troops from Chad and Niger joined"
        if prev in LOC_PREPS:
            if self.attributive(i, j, strict=True):
                return True  # "in the U.S. 5th Fleet area"
            return prev == "of" and self.word_before_of(head) in OF_GOVERNMENT  # "Foreign Ministers of Iran"
        if prev in ADDRESS_VERBS:
            return True  # "Mirziyoyev asked Afghanistan to consult", "Kinshasa accused Rwanda of arming"
        size, end = self.list_span(i)
        if size >= 2 and (self.followed_by_verb(end) or self.verb_after_aside(end)):
            return True  # "Chad, Niger and Mali said": the list is the subject; a bare list stays places
        if size >= 3 and prev in LIST_AGENT_CUES:
            return True  # "strikes by Australia, Belgium and Canada", "the coalition includes A, B, C"
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
            k = self.list_head(i) - 1
            if prev in ("with", "between"):  # "talks with Iran", "ties between Egypt and Sudan"; but "the
                # border with Iraq", "squeezed between Colombia and Peru" are places
                return k > 0 and self.toks[k - 1].raw.lower() in RELATION_NOUNS
            return True
        return self.government_compound(i, j)

    def government_compound(self, i: int, j: int) -> bool:
        """A country name at tokens [i, j) joined to what follows as its government's: "UK-France",
        "U.S. strikes", "Oman's Foreign Minister"."""
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
            if raw[-2:] in ("’s", "'s") and self.office_follows(j):
                return True  # "the UK's commitment", "Oman's Foreign Minister", "South Korea's new president"
        return False
