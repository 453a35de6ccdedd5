"""The tagger's word lists, loaded once from ``words.yaml`` beside this module.

Contract: every list of ``words.yaml`` is a module-level frozenset named after its key in capitals
(``REPORT_VERBS``, ``LOC_PREPS``, ...), and :func:`guess_kind` gives the kind of an organisation the gazetteer
does not know from the words of its name. The lists are English function words and news phrasing, written by
the project's authors; names of entities live in the gazetteer's data, never here.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

_DATA = yaml.safe_load((Path(__file__).with_name("words.yaml")).read_text(encoding="utf-8"))


def _words(key: str) -> frozenset[str]:
    return frozenset(str(_DATA[key]).split())


REPORT_VERBS = _words("report_verbs")
BACKER_WORDS = _words("backer_words")
LOC_PREPS = _words("loc_preps")
GOV_PREPS = _words("gov_preps")
OF_GOVERNMENT = _words("of_government")
GOV_NOUNS = _words("gov_nouns")
INSTITUTIONS = _words("institutions")
DIRECTIONS = _words("directions")
PLACE_SUFFIXES = _words("place_suffixes")
TITLE_WORDS = _words("title_words")
MODALS = _words("modals")
AUXILIARIES = _words("auxiliaries")
PERSON_TITLES = _words("person_titles")
GENERIC_PLACE_WORDS = _words("generic_place_words")
CALENDAR_WORDS = _words("calendar_words")
OFFICE_WORDS = _words("office_words")
FACILITY_WORDS = _words("facility_words")
LIST_AGENT_CUES = _words("list_agent_cues")
ADMIN_WORDS = _words("admin_words")
OFFICE_ADJECTIVES = _words("office_adjectives")
RELATION_NOUNS = _words("relation_nouns")
FEATURE_HEADS = _words("feature_heads")
LOWER_FEATURE_HEADS = _words("lower_feature_heads")
FEATURE_WORDS = _words("feature_words")
ADDRESS_VERBS = _words("address_verbs")
STRONG_LOC_PREPS = _words("strong_loc_preps")


def _mapping(key: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _DATA[key].items()}


KIND_WORDS = _mapping("kind_words")
BARE_INSTITUTIONS = _mapping("bare_institutions")
PLURAL_FEATURES = _mapping("plural_features")
OF_PLACES = _mapping("of_places")
ORG_KIND_HINTS: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (str(kind), frozenset(str(w) for w in hints)) for kind, hints in _DATA["org_kind_hints"].items()
)


def _stop_words() -> frozenset[str]:
    """spaCy's English stop words, from ``stop_words.txt`` beside this module (a copy of spaCy's list, so a
    process that only resolves names or tags from the gazetteer imports no spaCy; a test keeps it equal)."""
    text = Path(__file__).with_name("stop_words.txt").read_text(encoding="utf-8")
    return frozenset(w for w in text.splitlines() if w and not w.startswith("#"))


#: English stop words (spaCy's list): never a name on their own ("One", "Along").
STOP_WORDS = _stop_words()


def guess_kind(name: str) -> str:
    """The kind of an organisation from its name's words ("... Brigade" -> armed_group), else organisation."""
    words = {w.lower() for w in re.findall(r"\w+", name)}
    for kind, hints in ORG_KIND_HINTS:
        if words & hints:
            return kind
    return "organisation"
