"""Language of an article: normalise declared tags, detect undeclared ones with py3langid.

Contract
--------
- :func:`normalize_language` ``(tag) -> str | None``: a declared language (``en-US``, ``EN``,
  ``eng``, ``English``, ``zh_Hant``) as an ISO 639-1 code (``en``), or None when unknown.
- :func:`detect_language` ``(text) -> str | None``: the ISO 639-1 code (ISO 639-3 when the
  language has no 639-1 code) of ``text`` by py3langid's naive-Bayes model over byte n-grams
  (97 languages, fast, maintained, no network), or None when the text is too short or the
  model is not confident (probability below :data:`MIN_CONFIDENCE`).

The model loads once per process on first use (about 0.7 s) and is shared afterwards.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

#: Fewest letters worth classifying; below this a guess is noise.
MIN_LETTERS = 12
#: Smallest normalised probability accepted from the detector.
MIN_CONFIDENCE = 0.4
#: Characters of text classified (the start of an article says enough, and it bounds the cost).
MAX_CHARS = 3000

# py3langid labels that are varieties of a language with an ISO 639-1 code
_VARIETIES = {
    "arz": "ar",
    "ary": "ar",
    "uzs": "uz",
    "yue": "zh",
    "wuu": "zh",
    "gug": "gn",
    "fuv": "ff",
    "sdh": "ku",
    "hbo": "he",
    "grc": "el",
    "gcf": "fr",
    "gcr": "fr",
}
_NO_LANGUAGE = {"zxx", "und", "mul", "mis"}
_LETTER_RE = re.compile(r"[^\W\d_]")


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    if hasattr(LanguageIdentifier, "from_model_file"):  # py3langid >= 0.4
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)  # py3langid 0.2/0.3


@lru_cache(maxsize=512)
def normalize_language(tag: str | None) -> str | None:
    """ISO 639-1 code of a declared language tag or name; None when it names no language."""
    if not tag or not isinstance(tag, str):
        return None
    value = tag.strip().replace("_", "-")
    if not value:
        return None
    primary = value.split("-")[0].lower()
    if primary in _NO_LANGUAGE or primary in {"x", "i"}:
        return None
    if primary in _VARIETIES:
        return _VARIETIES[primary]
    import pycountry

    if len(primary) == 2 and primary.isalpha():
        return primary if pycountry.languages.get(alpha_2=primary) else None
    if len(primary) == 3 and primary.isalpha():
        found = pycountry.languages.get(alpha_3=primary)
        if found is None:
            try:
                found = pycountry.languages.get(bibliographic=primary)
            except (KeyError, LookupError):
                found = None
        if found is None:
            return None
        return getattr(found, "alpha_2", None) or primary
    try:
        found = pycountry.languages.lookup(value)
    except LookupError:
        return None
    return getattr(found, "alpha_2", None) or getattr(found, "alpha_3", None)


def detect_language(text: str | None) -> str | None:
    """ISO code of the language ``text`` is written in, or None when unsure (see module doc)."""
    if not text:
        return None
    sample = text[:MAX_CHARS]
    if len(_LETTER_RE.findall(sample)) < MIN_LETTERS:
        return None
    label, confidence = _identifier().classify(sample)
    if confidence < MIN_CONFIDENCE or label in _NO_LANGUAGE:
        return None
    if label in _VARIETIES:
        return _VARIETIES[label]
    return str(label)
