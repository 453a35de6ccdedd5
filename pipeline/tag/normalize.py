"""The matching normal form of names, and word tokens with their character offsets.

Contract: :func:`tokens` splits a text into word tokens (letters/digits with inner apostrophes; hyphens, dots
and spaces separate) and gives each its normal form and offsets into the text; :func:`norm_key` gives the
normal form of a whole name as one space-joined string, so that a name and a text that spells it differently
("Al-Raqqah", "ar-Raqqa", "Raqa", "RAQQA") meet on the same key ("raka").

The normal form of one token: Unicode NFKD without combining marks, lower case, apostrophes and ʿ/ʼ removed,
possessive 's dropped, q -> k, ou -> u, runs of one letter collapsed, final h after a vowel dropped. Article
prefixes al-/el- are dropped everywhere; ar-/an-/as-/ad-/ash-/at-/az-/ath-/ed-/es-/ul-/ud- only when joined
by a hyphen or when written capitalised before a capitalised word ("Ar Raqqah", "As Suwayda"), so that the
English words "as", "at" and "an" stay. Written by hand because no library normalises Arabic-in-Latin
transliteration variants this way; it is ~40 lines and pure Python.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from itertools import accumulate, compress, repeat
from typing import NamedTuple

APOSTROPHES = "'’‘`´ʿʼʾʻ"
_TOKEN_RE = re.compile(rf"[^\W_]+(?:[{APOSTROPHES}][^\W_]+)*")
_ALWAYS_DROP = frozenset({"al", "el"})
_SOMETIMES_DROP = frozenset(
    {"ar", "an", "as", "ad", "ash", "at", "az", "ath", "ed", "es", "ez", "ul", "ud", "adh"}
)
_VOWELS = "aeiouy"
_APOS_TABLE = str.maketrans("", "", APOSTROPHES)
_SPLIT_RE = re.compile(f"({_TOKEN_RE.pattern})")
_MAYBE_DROPPED = _ALWAYS_DROP | _SOMETIMES_DROP | {""}
_NO_PREFIX = [-1]
_new_token = tuple.__new__


class Token(NamedTuple):
    """One word token: offsets into the text, the raw text and its normal form."""

    start: int
    end: int
    raw: str
    norm: str
    pre: int = -1  # start including a dropped article prefix ("al-" of "al-Assad"); -1: same as start


@lru_cache(maxsize=200_000)
def norm_word(raw: str) -> str:
    """The normal form of one word (see the module docstring)."""
    s = unicodedata.normalize("NFKD", raw)
    # NFKD turns a spacing accent ("U´K") into a space and a combining mark: a word never holds a space
    s = "".join(c for c in s if not unicodedata.combining(c) and not c.isspace()).lower()
    if len(s) > 2 and s[-2] in APOSTROPHES and s[-1] == "s":
        s = s[:-2]
    s = s.translate(_APOS_TABLE).replace("q", "k").replace("ou", "u")
    if not s:
        return s
    out = [s[0]]
    for c in s[1:]:
        if c != out[-1]:
            out.append(c)
    if len(out) > 2 and out[-1] == "h" and out[-2] in _VOWELS:
        out.pop()
    return "".join(out)


def tokens(text: str) -> list[Token]:
    """Word tokens of ``text`` with normal forms; dropped article prefixes are left out.

    Built column-wise (one regex split, running sums for the offsets, one ``map`` of :func:`norm_word`): only
    the words that may be dropped (an article prefix, or a word whose normal form is empty) take the slow
    path, the others become tokens without a Python-level loop of their own.
    """
    parts = _SPLIT_RE.split(text)  # separator, word, separator, word, ..., separator
    words: list[str] = parts[1::2]
    if not words:
        return []
    bounds = list(accumulate(map(len, parts)))
    starts, ends = bounds[0::2], bounds[1::2]  # starts has one extra: the end of the text
    norms = list(map(norm_word, words))
    special = [k for k, norm in enumerate(norms) if norm in _MAYBE_DROPPED]
    pres = _NO_PREFIX * len(words)
    rows: Iterable[tuple[int, int, str, str, int]]
    if special:
        keep = [True] * len(words)
        for k in special:
            keep[k] = False
        _drop_prefixes(text, words, starts, ends, norms, special, keep, pres)
        rows = compress(zip(starts, ends, words, norms, pres, strict=False), keep)
    else:
        rows = zip(starts, ends, words, norms, pres, strict=False)
    return list(map(_new_token, repeat(Token), rows))


def _drop_prefixes(
    text: str,
    words: list[str],
    starts: list[int],
    ends: list[int],
    norms: list[str],
    special: list[int],
    keep: list[bool],
    pres: list[int],
) -> None:
    """Settle the words that may be dropped (``special``, all marked not kept on entry): a word whose normal
    form is empty is dropped; an article prefix joined to the next word is dropped, and the start of the first
    prefix dropped before a kept token becomes that token's ``pre``; any other word is kept."""
    n = len(words)
    dropped: list[int] = []
    for i in special:
        norm, end, word = norms[i], ends[i], words[i]
        if not norm:
            continue
        close = i + 1 < n and starts[i + 1] - end <= 1
        drop = norm in _ALWAYS_DROP and close
        if not drop and norm in _SOMETIMES_DROP and close:
            hyphen = text[end : end + 1] in ("-", "‐", "–")
            capital = word[0].isupper() and words[i + 1][0].isupper()
            drop = hyphen or (capital and len(word) <= 3 and word[1:].islower())
        if drop:
            dropped.append(i)
        else:
            keep[i] = True
    for i in dropped:
        k = i + 1
        while k < n and not keep[k]:
            k += 1
        if k < n and pres[k] < 0:
            pres[k] = starts[i]


def norm_key(name: str) -> str:
    """The normal form of a whole name: normal forms of its tokens joined by single spaces."""
    return " ".join(t.norm for t in tokens(name))


def slug(name: str) -> str:
    """An ASCII slug of a name for ids: ``"Kurdistan Workers' Party"`` -> ``"kurdistan-workers-party"``."""
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    s = s.translate(_APOS_TABLE)
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")
