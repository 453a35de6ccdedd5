"""Tests of the gazetteer's token-level matcher (:meth:`Gazetteer.matches`, :meth:`Gazetteer.spans`) and of
its compact records (what the pickle holds and a process keeps until it reads them).

The gazetteers here are small and built by hand, so each test states exactly what must come out: every name,
nested and overlapping ones included, ordered by end and then longest first, as a left-to-right scan of the
tokens joined by single spaces finds them.
"""

from __future__ import annotations

import pickle
import random

import pytest

from pipeline.tag.gazetteer import Entity, Gazetteer, NameEntry, name_prefixes, packed_entity, packed_name

KEYS = [
    "new",
    "york",
    "new york",
    "new york city",
    "york city council",
    "city",
    "gulf of aden",  # "gulf" and "gulf of" are prefixes, not names
    "aden",
    "bay of bengal",
    "zz",
]


def small_gazetteer(keys: list[str]) -> Gazetteer:
    names = {k: NameEntry(k, [(f"id:{k}", 0)], (True,) * (k.count(" ") + 1)) for k in keys}
    return Gazetteer({}, names, name_prefixes(names), {}, {}, {})


def reference_spans(keys: list[str], norms: list[str]) -> list[tuple[int, int, str]]:
    """The specification, character by character: " name " found in " " + " ".join(norms) + " " where the
    name's first character opens a token; ordered by end, longest first."""
    text = " " + " ".join(norms) + " "
    opens: dict[int, int] = {}
    pos = 1
    for i, norm in enumerate(norms):
        opens[pos] = i
        pos += len(norm) + 1
    found = []
    for key in keys:
        at = text.find(f" {key} ")
        while at >= 0:
            if at + 1 in opens:
                first = opens[at + 1]
                found.append((at + len(key) + 1, -len(key), (first, first + key.count(" ") + 1, key)))
            at = text.find(f" {key} ", at + 1)
    return [span for _, _, span in sorted(found)]


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return small_gazetteer(KEYS)


def test_nested_and_overlapping_names_come_out_by_end_then_longest(gaz: Gazetteer) -> None:
    norms = ["in", "new", "york", "city", "council", "gulf", "of", "aden", "zz"]
    expected = [
        (1, 2, "new"),
        (1, 3, "new york"),
        (2, 3, "york"),
        (1, 4, "new york city"),
        (3, 4, "city"),
        (2, 5, "york city council"),
        (5, 8, "gulf of aden"),
        (7, 8, "aden"),
        (8, 9, "zz"),  # the last token of the text
    ]
    assert list(gaz.spans(norms)) == expected
    found = gaz.matches(norms)
    assert [(i, j, e.key) for i, j, e in found] == expected
    assert all(e is gaz.names[k] for (_, _, e), (_, _, k) in zip(found, expected, strict=True))


def test_a_prefix_alone_is_no_name_and_a_name_cut_short_is_none(gaz: Gazetteer) -> None:
    assert list(gaz.spans(["gulf", "of"])) == []
    assert list(gaz.spans(["bay", "of", "bengal"])) == [(0, 3, "bay of bengal")]
    assert list(gaz.spans(["bay", "of"])) == []
    assert gaz.matches([]) == []
    assert list(gaz.spans([])) == []


def test_tokens_holding_spaces_or_nothing_match_as_the_joined_text(gaz: Gazetteer) -> None:
    # a token holding a space is two words: a name may start at its first word, never at a later one, and
    # its end token counts the name's words from its first token
    assert list(gaz.spans(["new york", "city"])) == [
        (0, 1, "new"),
        (0, 2, "new york"),
        (0, 3, "new york city"),
        (1, 2, "city"),
    ]
    assert [(i, j, e.key) for i, j, e in gaz.matches(["x york", "city"])] == [(1, 2, "city")]
    # an empty token is an empty word no name holds: it cuts a name in two
    assert list(gaz.spans(["new", "", "york"])) == [(0, 1, "new"), (2, 3, "york")]
    assert list(gaz.spans(["", "zz", ""])) == [(1, 2, "zz")]
    assert list(gaz.spans(["zz "])) == [(0, 1, "zz")]
    assert list(gaz.spans([" zz"])) == []


def test_random_token_sequences_agree_with_the_character_level_specification(gaz: Gazetteer) -> None:
    rng = random.Random(15)
    words = sorted({w for k in KEYS for w in k.split(" ")} | {"x", "of"})
    pool = [*words, *words, "", "new york", " zz", "aden ", "of aden", "x y"]
    for _ in range(400):
        norms = [rng.choice(pool) for _ in range(rng.randrange(0, 14))]
        expected = reference_spans(KEYS, norms)
        assert list(gaz.spans(norms)) == expected, norms
        assert [(i, j, e.key) for i, j, e in gaz.matches(norms)] == expected, norms


def test_prefixes_survive_the_pickle_and_share_the_names_keys(gaz: Gazetteer) -> None:
    assert gaz.prefixes == {"new", "new york", "york", "york city", "gulf", "gulf of", "bay", "bay of"}
    loaded: Gazetteer = pickle.loads(pickle.dumps(gaz, protocol=pickle.HIGHEST_PROTOCOL))
    keys = {k: k for k in dict.keys(loaded.names)}
    assert all(keys[p] is p for p in loaded.prefixes if p in keys)  # one string object, not two
    assert list(loaded.spans(["new", "york", "city"])) == list(gaz.spans(["new", "york", "city"]))


def test_a_name_that_is_not_single_spaced_words_is_refused() -> None:
    with pytest.raises(ValueError, match="'gulf  of aden'"):
        name_prefixes({"gulf  of aden": None})


def test_packed_records_survive_the_pickle_unread_and_read() -> None:
    """In the pickle (and in memory until read) records are compact bytes with "geonames:" shortened: every
    field comes back, non-ASCII names and ids that merely contain "geonames" included."""
    town = Entity(
        "geonames:2",
        "Ağrı Dağı",
        "city",
        "location",
        "TR",
        39.7,
        44.3,
        20_000,
        False,
        ("geonames:1", "x:geonames:3"),
    )
    other = Entity("x:geonames:3", "Zürich geonames: see", "region", "location", None)
    entries = {
        "agri dagi": NameEntry(
            "agri dagi", [("geonames:2", 8), ("x:geonames:3", 16)], (True, True), None, True
        ),
        "zurich": NameEntry("zurich", [("x:geonames:3", 0)], (True,), "CH"),
    }
    gaz = Gazetteer({e.id: e for e in (town, other)}, entries, name_prefixes(entries), {}, {}, {})
    once: Gazetteer = pickle.loads(pickle.dumps(gaz, protocol=pickle.HIGHEST_PROTOCOL))
    assert all(isinstance(v, bytes) for v in dict.values(once.names))  # nothing unpacked before it is read
    assert once.names["zurich"] == entries["zurich"]
    twice: Gazetteer = pickle.loads(pickle.dumps(once, protocol=pickle.HIGHEST_PROTOCOL))  # half read
    for g in (once, twice):
        assert g.entities["geonames:2"] == town
        assert g.entities.get("x:geonames:3") == other
        assert g.names["agri dagi"] == entries["agri dagi"]
        assert g.names.get("zurich") == entries["zurich"]
    assert [packed_entity(v) for v in dict.values(twice.entities)] == [
        packed_entity(town),
        packed_entity(other),
    ]
    assert packed_name(dict.__getitem__(twice.names, "zurich")) == packed_name(entries["zurich"])


def test_a_record_holding_the_reserved_character_is_refused() -> None:
    bad = Entity("geonames:9", "Bad\x1dName", "city", "location")
    gaz = Gazetteer({bad.id: bad}, {}, frozenset(), {}, {}, {})
    with pytest.raises(ValueError, match="reserved character"):
        pickle.dumps(gaz)
