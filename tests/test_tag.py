"""Tests of the tagger (pipeline.tag): API contract, hard cases, linking accuracy on our labelled articles.

All texts here are our own sentences (modelled on wire copy about Syria and Iraq). Tests that need the spaCy
model run when it is installed; with CI=true a missing model is a failure, not a skip (CI pins it).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.tag import Tagger, get_tagger
from pipeline.tag.gazetteer import UPPER
from pipeline.tag.linker import Article
from pipeline.tag.ner import ner_segments
from pipeline.tag.normalize import Token, norm_key, norm_word, tokens

ROOT = Path(__file__).resolve().parent.parent
LINKING = ROOT / "tests" / "data" / "linking" / "articles.jsonl"
MODEL = os.environ.get("NEWSWIRE_TEST_SPACY_MODEL", "en_core_web_sm")

IS = "actor:islamic-state"
RAQQA = "geonames:172955"


@pytest.fixture(scope="module")
def gaz_tagger() -> Tagger:
    return Tagger(spacy_model="")


@pytest.fixture(scope="module")
def nlp_tagger() -> Tagger:
    t = Tagger(spacy_model=MODEL)
    if t.nlp is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"spaCy model {MODEL!r} (or its alias) is not installed; CI must install it")
        pytest.skip(f"spaCy model {MODEL!r} not installed")
    return t


def links(tagger: Tagger, text: str, title: str | None = None) -> dict[str, list[str]]:
    """surface form -> entity ids it was linked to."""
    out: dict[str, list[str]] = {}
    for m in tagger.mentions(text, title):
        out.setdefault(m.text, []).append(m.entity_id)
    return out


# ---- normal form --------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["Raqqa", "Raqa", "Al-Raqqah", "ar-Raqqa", "Ar Raqqah", "RAQQA", "Rakka"])
def test_spelling_variants_share_one_key(variant: str) -> None:
    assert norm_key(variant) == norm_key("Raqqah")


def test_normal_form_keeps_english_words_and_offsets() -> None:
    text = "Fighting as far as al-Bab, said Syria’s envoy."
    toks = tokens(text)
    assert [t.norm for t in toks][:4] == ["fighting", "as", "far", "as"]  # "as" is not an article here
    bab = next(t for t in toks if t.norm == "bab")
    assert text[bab.start : bab.end] == "Bab"
    assert text[bab.pre : bab.end] == "al-Bab"
    assert next(t for t in toks if t.raw.startswith("Syria")).norm == "syria"  # possessive dropped


def _loop_tokens(text: str) -> list[tuple[int, int, str, str, int]]:
    """The plain one-word-at-a-time statement of :func:`tokens` (the rules of its module docstring)."""
    raw = [(m.start(), m.end(), m.group()) for m in re.finditer(r"[^\W_]+(?:['’‘`´ʿʼʾʻ][^\W_]+)*", text)]
    always, sometimes = {"al", "el"}, {"ar", "an", "as", "ad", "ash", "at", "az", "ath", "ed", "es", "ez"}
    sometimes |= {"ul", "ud", "adh"}
    out, pre = [], -1
    for i, (start, end, word) in enumerate(raw):
        norm = norm_word(word)
        if not norm:
            continue
        close = i + 1 < len(raw) and raw[i + 1][0] - end <= 1
        if norm in always and close:
            pre = start if pre < 0 else pre
            continue
        if norm in sometimes and close:
            capital = word[0].isupper() and raw[i + 1][2][0].isupper()
            if text[end : end + 1] in ("-", "‐", "–") or (capital and len(word) <= 3 and word[1:].islower()):
                pre = start if pre < 0 else pre
                continue
        out.append((start, end, word, norm, pre))
        pre = -1
    return out


def test_tokens_match_the_word_by_word_rules() -> None:
    texts = [
        "Fighters in al-Bab and Ar Raqqah, as far as ad-Dawr; El-Al-Sham at an Al Qaim-checkpoint.",
        "al-´-Bab, al- ar-Raqqa AS SUWAYDA As Suwayda as Suwayda al",
        "U´K ´ ’s Syria’s Al–Nusra el‐Kebir ash-Shaddadi at-Tanf _al_ Bab",
        "",
        " - ",
    ]
    rng = random.Random(7)
    pieces = ["al", "Al", "el", "ar", "Ar", "as", "at", "Ash", "-", "–", " ", "´", "’", "s", "Bab", "X", "_"]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(3000)]
    for text in texts:
        toks = tokens(text)
        assert [tuple(t) for t in toks] == _loop_tokens(text), text
        assert all(isinstance(t, Token) for t in toks)


def test_tokens_keep_the_first_dropped_prefix_offset() -> None:
    text = "to al-al-Bab from Ar Raqqa"
    bab, raqqa = (t for t in tokens(text) if t.norm in ("bab", "raka"))
    assert text[bab.pre : bab.end] == "al-al-Bab"
    assert text[raqqa.pre : raqqa.end] == "Ar Raqqa"
    assert [t.pre for t in tokens("Bab Raqqa")] == [-1, -1]


# ---- API contract -------------------------------------------------------------------------------------
def test_tag_returns_record_shapes(gaz_tagger: Tagger) -> None:
    actors, locations = gaz_tagger.tag("Islamic State fighters left Raqqa. ISIS said Raqa was lost.")
    isis = next(a for a in actors if a["id"] == IS)
    assert isis["kind"] == "armed_group"
    assert isis["count"] == 2
    assert set(isis["mentions"]) == {"Islamic State", "ISIS"}
    raqqa = next(loc for loc in locations if loc["id"] == RAQQA)
    assert raqqa["country_code"] == "SY"
    assert raqqa["kind"] == "city"
    assert raqqa["count"] == 2
    assert 35 < raqqa["lat"] < 37
    assert 38 < raqqa["lon"] < 40
    assert set(raqqa["mentions"]) == {"Raqqa", "Raqa"}
    for rec in actors:
        assert set(rec) == {"id", "name", "kind", "mentions", "count"}
    for rec in locations:
        assert set(rec) == {"id", "name", "kind", "country_code", "lat", "lon", "mentions", "count"} | {
            "ancestors",
            "admin1",
        }
    assert raqqa["ancestors"][-1] == "geonames:163843"  # Syria, the farthest ancestor
    assert raqqa["admin1"]["name"] == "Ar Raqqah"
    assert raqqa["admin1"]["id"] in raqqa["ancestors"]


def test_tag_records_keeps_order_fields_and_flags_bad_records(gaz_tagger: Tagger) -> None:
    records: list[dict[str, Any]] = [
        {"id": "a", "text": "Hezbollah fighters moved toward Homs.", "extra": 1},
        {"id": "b", "title": "no text here"},
        {"id": "c", "text": 42},
        {"id": "d", "title": "Erdogan warns Kurdish militia", "text": "Turkey shelled positions near Afrin."},
    ]
    records += [{"id": f"n{i}", "text": "The SDF entered Tabqa."} for i in range(40)]  # spans several batches
    out = list(gaz_tagger.tag_records(records))
    assert [r["id"] for r in out] == [r["id"] for r in records]
    assert out[0]["extra"] == 1
    assert "actor:hezbollah" in {a["id"] for a in out[0]["actors"]}
    assert "text" in out[1]["error"]
    assert "actors" not in out[1]
    assert "text" in out[2]["error"]
    assert "actor:recep-tayyip-erdogan" in {a["id"] for a in out[3]["actors"]}  # the title is tagged too
    assert all(r["locations"][0]["id"] == "geonames:172374" for r in out[4:])


def test_resolve_user_spellings(gaz_tagger: Tagger) -> None:
    for name in ("ISIS", "ISIL", "Daesh", "Islamic State", "islamic state", "IS"):
        assert IS in gaz_tagger.resolve_actor(name), name
    for name in ("Raqa", "Raqqa", "Ar Raqqah", "al-raqqah"):
        assert gaz_tagger.resolve_location(name)[0] == RAQQA, name
    assert gaz_tagger.resolve_location("Syria") == ["geonames:163843"]
    assert gaz_tagger.resolve_actor("Raqqa") == []
    assert gaz_tagger.resolve_location("ISIS") == []
    assert gaz_tagger.resolve_actor("") == []
    assert gaz_tagger.resolve_actor("no such group zzz") == []
    assert gaz_tagger.entity_name(IS) == "Islamic State"
    assert gaz_tagger.entity_name(RAQQA) == "Ar Raqqah"
    assert gaz_tagger.entity_name("actor:nobody") is None


def test_get_tagger_is_cached_and_gazetteer_is_cached_on_disk() -> None:
    t = get_tagger()
    assert get_tagger() is t
    assert Tagger(spacy_model="").gaz.from_cache  # the first build wrote the cache


def test_bad_actors_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        Tagger(actors_file=tmp_path / "missing.yaml", spacy_model="")
    bad = tmp_path / "bad.yaml"
    bad.write_text("actors:\n- {name: Nameless, kind: party}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.yaml"):
        Tagger(actors_file=bad, spacy_model="")


def test_missing_model_falls_back_to_gazetteer_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.tag.tagger"):
        t1 = Tagger(spacy_model="xx_no_such_model")
        t2 = Tagger(spacy_model="xx_no_such_model")
    assert t1.nlp is None
    assert t2.nlp is None
    assert sum("xx_no_such_model" in r.getMessage() for r in caplog.records) == 1
    assert IS in {a["id"] for a in t1.tag("ISIS fighters fled.")[0]}


def test_actors_file_has_300_actors_with_required_fields() -> None:
    import yaml

    data = yaml.safe_load((ROOT / "config" / "actors.yaml").read_text(encoding="utf-8"))
    actors = data["actors"]
    assert len(actors) >= 300
    kinds = {"person", "organisation", "armed_group", "government", "party", "media", "military"}
    ids = [a["id"] for a in actors]
    assert len(ids) == len(set(ids))
    for a in actors:
        assert re.fullmatch(r"actor:[a-z0-9-]+", a["id"]), a
        assert a["kind"] in kinds, a
        assert a["name"], a


_CASE_TEXT = (
    "ISIS fighters left al-Raqqa for Deir ez-Zor; the Syrian army said Turkish troops near Aleppo, "
    "paris and the nile, and U.N. envoys in Damascus' old city met the EU's Foreign Affairs Council. "
    "A 2020 report by the U.S. army in Mosul found NATO and nato rarely agree. " * 80
)


def test_gazetteer_matches_are_the_spans_with_their_entries(gaz_tagger: Tagger) -> None:
    gaz = gaz_tagger.gaz
    norms = [t.norm for t in tokens(_CASE_TEXT)]
    found = gaz.matches(norms)
    assert [(i, j, e.key) for i, j, e in found] == list(gaz.spans(norms))
    assert all(e is gaz.names[e.key] for _, _, e in found)
    assert any(e.demonym is not None for _, _, e in found)  # "Syrian", "Turkish"
    # segmentation over the first 20,000 characters reads the matches of the whole text the same way
    toks = tokens(_CASE_TEXT)
    assert len(_CASE_TEXT) > 20_000
    assert ner_segments(gaz, _CASE_TEXT, toks, found) == ner_segments(gaz, _CASE_TEXT)


def test_lower_case_spans_never_pass_the_case_check(gaz_tagger: Tagger) -> None:
    art = Article(gaz_tagger, _CASE_TEXT[:600], None)
    lower = 0
    for i, j, entry in art.matches:
        flags = {f for _, f in entry.targets} | {0, UPPER}
        if art.lower_case(i, j):
            lower += 1
            assert not any(art.case_ok(i, j, entry, f) for f in flags), art.text[art.toks[i].start :]
    assert lower > 0  # "paris", "nile", "nato", "army", ...
    assert Article(gaz_tagger, "paris and nato", None).run() == []
    assert {m.text for m in Article(gaz_tagger, "Paris and NATO", None).run()} == {"Paris", "NATO"}


# ---- hard cases (our own sentences, modelled on wire copy) -------------------------------------------------
def test_acronyms_defined_in_text_link_later_bare_acronyms(gaz_tagger: Tagger) -> None:
    text = (
        "Units of the Euphrates Shield Volunteers (ESV) crossed the river on Friday. "
        "Later the ESV said it held two villages. The Kurdish Democratic Party (PYD) denied it."
    )
    got = links(gaz_tagger, text)
    assert got["ESV"] == ["actor:euphrates-shield-volunteers"] * 2
    assert got["Euphrates Shield Volunteers"] == ["actor:euphrates-shield-volunteers"]
    # a long form the gazetteer does not know takes the known acronym's identity
    assert got["Kurdish Democratic Party"] == got["PYD"] == ["actor:democratic-union-party"]
    assert gaz_tagger.entity_name("actor:euphrates-shield-volunteers") == "Euphrates Shield Volunteers"


def test_metonymy_capitals_and_countries_as_actors(gaz_tagger: Tagger) -> None:
    text = (
        "Moscow warned that the convoy would be stopped, and Washington said it had not been told. "
        "Talks are due in Moscow. Ankara views the militia as terrorists. The Kremlin declined to comment. "
        "Turkey has deployed tanks, while refugees keep arriving in Turkey."
    )
    got = links(gaz_tagger, text)
    assert got["Moscow"] == ["actor:russian-government", "geonames:524901"]
    assert got["Washington"] == ["actor:united-states-government"]
    assert got["Ankara"] == ["actor:turkish-government"]
    assert got["Kremlin"] == ["actor:russian-government"]
    assert got["Turkey"] == ["actor:turkish-government", "geonames:298795"]


def test_country_lists_and_state_titles_are_governments(gaz_tagger: Tagger) -> None:
    text = (
        "Countries that sent aircraft include Norway, Portugal, Spain and the United States. "
        "The Foreign Ministers of Egypt and Kuwait met in Geneva. "
        "U.S. service members and U.S., U.K. and French warships stayed in the U.S. 5th Fleet area. "
        "Refugees fled to Jordan, Lebanon and Turkey, and some reached the U.S. later."
    )
    got = links(gaz_tagger, text)
    # a list after "include", "by", "between" is states acting; after a locative preposition, places
    assert got["Norway"] == ["actor:norwegian-government"]
    assert got["United States"] == ["actor:united-states-government"]
    acting = links(gaz_tagger, "Chad, Niger and Mali said the talks had failed.")
    assert acting["Chad"] == ["actor:government-of-chad"]
    assert acting["Mali"] == ["actor:government-of-mali"]
    assert got["Egypt"] == ["actor:egyptian-government"]
    assert got["Geneva"][0].startswith("geonames:")  # the place where they met stays a place
    assert got["U.K."] == ["actor:uk-government"]
    assert got["Jordan"] == ["geonames:248816"]
    assert got["Turkey"] == ["geonames:298795"]
    us = "actor:united-states-government"
    assert got["U.S."] == [us, us, us, "geonames:6252001"]  # three adjectives, then the place reached


def test_backers_and_based(gaz_tagger: Tagger) -> None:
    got = links(gaz_tagger, "Iran-backed fighters and a London-based monitor both reported the US-led raid.")
    assert got["Iran"] == ["actor:iranian-government"]
    assert got["US"] == ["actor:united-states-government"]
    assert got["London"] == ["geonames:2643743"]


def test_demonyms_are_not_locations_but_give_context(gaz_tagger: Tagger) -> None:
    actors, locations = gaz_tagger.tag(
        "Syrian and Lebanese officials met in Tripoli. Kurdish fighters stayed away."
    )
    assert [loc["id"] for loc in locations] == ["geonames:266826"]  # Tripoli, Lebanon (Lebanese context)
    actors, locations = gaz_tagger.tag("Militias clashed in Tripoli overnight.")
    assert [loc["id"] for loc in locations] == ["geonames:2210247"]  # no context: the most populous


def test_surnames_link_to_the_full_name(gaz_tagger: Tagger, nlp_tagger: Tagger) -> None:
    text = "President Bashar al-Assad spoke on Sunday. Assad's allies include Hezbollah."
    got = links(gaz_tagger, text, title="Assad vows victory")
    assert got["Assad"] == ["actor:bashar-al-assad"]
    assert got["Assad's"] == ["actor:bashar-al-assad"]
    assert got["President Bashar al-Assad"] == ["actor:bashar-al-assad"]
    text = (
        "Rebel commander Yusuf Barakat Haddad was wounded near Hama. "
        "Haddad later told reporters he would return."
    )
    got = links(nlp_tagger, text)
    assert got["Haddad"] == ["actor:yusuf-barakat-haddad"]


def test_common_words_are_not_places(gaz_tagger: Tagger) -> None:
    text = (
        "Nice to see you, the envoy said. Reading from a statement, he thanked donors. Of the 40 dead, 12 "
        "were "
        "children. Mobile clinics were set up. One convoy reached Hama. A lorry attack in Nice killed dozens."
    )
    locations = gaz_tagger.tag(text)[1]
    assert {loc["id"]: loc["mentions"] for loc in locations} == {
        "geonames:170017": ["Hama"],
        "geonames:2990440": ["Nice"],
    }
    assert links(gaz_tagger, text)["Nice"] == ["geonames:2990440"]


def test_person_names_are_not_towns(gaz_tagger: Tagger) -> None:
    got = links(gaz_tagger, "Press secretary Peter Cook said the raid near Mosul killed a senior leader.")
    assert "Cook" not in got
    assert got["Mosul"] == ["geonames:99072"]


def test_a_town_name_inside_a_longer_unknown_name_is_not_a_town(gaz_tagger: Tagger) -> None:
    # "Ain" alone is Al Ain (UAE), "Issa" a village: together the Syrian camp town the gazetteer lacks
    got = links(gaz_tagger, "Families fled to crowded camps near Ain Issa, aid workers in Raqqa said.")
    assert "Ain" not in got
    assert "Issa" not in got
    assert got["Raqqa"] == ["geonames:172955"]


def test_hard_case_wire_story_of_our_own(gaz_tagger: Tagger) -> None:
    """A story in the style of the Raqqa fixture: repeated headline, two spellings, acronyms, metonymy."""
    title = "US-backed fighters push into Raqqa"
    text = (
        "US-backed fighters push into Raqqa\n\nUS-backed fighters push into Raqqa The Syrian Democratic "
        "Forces "
        "(SDF) advanced against the Islamic State of Iraq and the Levant (ISIL) in Raqqa on Tuesday.\n\n"
        "Raqa fell to the jihadists in 2014. SDF commanders said the old city was next. "
        "Moscow warned against strikes on government troops, and Washington denied hitting them. "
        "The Kurdish People's Protection Units (YPG) lead the SDF; Ankara calls the YPG an arm of the PKK."
    )
    actors, locations = gaz_tagger.tag(text, title)
    by_id = {a["id"]: a for a in actors}
    assert by_id["actor:syrian-democratic-forces"]["count"] == 4  # the long form and three "SDF"
    assert set(by_id[IS]["mentions"]) == {"Islamic State of Iraq and the Levant", "ISIL"}
    assert {
        "actor:russian-government",
        "actor:united-states-government",
        "actor:turkish-government",
        "actor:peoples-protection-units",
        "actor:kurdistan-workers-party",
    } <= set(by_id)
    loc_ids = [loc["id"] for loc in locations]
    assert loc_ids == [RAQQA]  # Moscow, Washington and Ankara act here: not places; "Syrian" is no place
    assert set(locations[0]["mentions"]) == {"Raqqa", "Raqa"}
    assert locations[0]["count"] == 5


# ---- spaCy ----------------------------------------------------------------------------------------------
def test_spacy_pipeline_runs_only_ner_when_ner_has_its_own_tok2vec(nlp_tagger: Tagger) -> None:
    ner_t2v = str(nlp_tagger.nlp.config["components"]["ner"]["model"]["tok2vec"])
    expected = ["tok2vec", "ner"] if "Listener" in ner_t2v else ["ner"]
    assert nlp_tagger.nlp.pipe_names == expected


def test_ner_segments_skip_sentences_the_gazetteer_covers(nlp_tagger: Tagger) -> None:
    text = (
        "Syria and Iraq agreed on the border. It rained all day in the desert.\n"
        "Spokesman Omar Faruq Aziz arrived late. The talks ended."
    )
    segs = [text[s:e] for s, e in nlp_tagger.ner_segments(text)]
    assert len(segs) == 1
    assert "Omar Faruq Aziz" in segs[0]
    assert "Syria" not in segs[0]
    assert "rained" not in segs[0]
    # the entities found on the segment carry offsets into the whole text
    ents = nlp_tagger.ner([text])[0].ents
    assert any(text[e.start_char : e.end_char] == "Omar Faruq Aziz" for e in ents)
    # the same entities as spaCy on the whole text, for the sentence it saw
    whole = {(e.start_char, e.end_char) for e in nlp_tagger.nlp(text).ents if e.label_ == "PERSON"}
    assert {(e.start_char, e.end_char) for e in ents if e.label_ == "PERSON"} == whole


class _CountingModel:
    """The real spaCy model, counting the texts it is asked to read (a spy, not a stand-in)."""

    def __init__(self, nlp: Any) -> None:
        self.nlp, self.read = nlp, list[str]()

    def pipe(self, texts: Any, **kw: Any) -> Any:
        texts = list(texts)
        self.read.extend(texts)
        return self.nlp.pipe(texts, **kw)


def test_syndicated_copies_send_only_their_edited_sentences_to_spacy(nlp_tagger: Tagger) -> None:
    from pipeline.tag.ner import run_ner

    story = (
        "Spokesman Omar Faruq Aziz arrived in Mosul late on Tuesday. "
        "Negotiator Helena Varga of the Danube Relief Fund met him there.\n"
        "Commander Tariq Bellamine said the road was open."
    )
    copy = story.replace("Commander Tariq Bellamine said", "Colonel Idris Kanuteh told reporters")
    model = _CountingModel(nlp_tagger.nlp)
    first = run_ner(model, nlp_tagger.gaz, [story, story])
    read_first = list(model.read)
    assert read_first
    assert len(read_first) == len(set(read_first))
    second = run_ner(model, nlp_tagger.gaz, [copy])
    edited = model.read[len(read_first) :]
    assert edited
    assert all("Kanuteh" in seg for seg in edited)
    # cached or not, the entities are those spaCy finds on each segment without any cache
    for text, got in ((story, first[0]), (story, first[1]), (copy, second[0])):
        uncached = {
            (ent.start_char + s, ent.end_char + s, ent.label_)
            for s, e in nlp_tagger.ner_segments(text)
            for ent in nlp_tagger.nlp(text[s:e]).ents
            if ent.label_ in {"PERSON", "ORG", "NORP", "GPE", "LOC", "FAC"}
        }
        assert {(e.start_char, e.end_char, e.label_) for e in got.ents} == uncached
    assert any(copy[e.start_char : e.end_char] == "Idris Kanuteh" for e in second[0].ents)


def test_unknown_people_and_organisations_become_actors(nlp_tagger: Tagger) -> None:
    actors, _ = nlp_tagger.tag(
        "Spokesman Omar Faruq Aziz of the Northern Sunrise Relief Committee spoke in Aleppo."
    )
    ids = {a["id"]: a["kind"] for a in actors}
    assert ids.get("actor:omar-faruq-aziz") == "person"
    assert any(i.startswith("actor:northern-sunrise-relief-committee") for i in ids)


def test_an_unknown_place_in_a_dateline_is_a_place_not_an_actor(nlp_tagger: Tagger) -> None:
    dateline = links(
        nlp_tagger, "AIN ISSA, Syria (Meridian Wire) — Landmines left by Islamic State killed 14 people."
    )
    # a place the gazetteer lacks gets the id its name gives, inside the country the dateline names
    assert dateline["AIN ISSA"] == ["place:ain-isa"]
    assert dateline["Syria"] == ["geonames:163843"]
    assert nlp_tagger.entity("place:ain-isa").ancestors == ("geonames:163843",)  # type: ignore[union-attr]
    assert nlp_tagger.resolve_location("Ain Issa") == ["place:ain-isa"]  # searchable by any spelling
    camps = links(nlp_tagger, "The office said camps at Ain Issa and Mabrouka were already over capacity.")
    assert camps.get("Ain Issa") == ["place:ain-isa"]  # spaCy calls it a PERSON: two town names are a town
    person = links(nlp_tagger, "Karim Nasser, Syria director of the group, said the camps were full.")
    assert person["Karim Nasser"] == ["actor:karim-nasser"]


def test_statistical_ner_runs_only_for_the_models_language(nlp_tagger: Tagger) -> None:
    text = "Spokesman Omar Faruq Aziz spoke in Aleppo on Monday."
    records = [
        {"id": "en", "text": text, "language": "en"},
        {"id": "fr", "text": text, "language": "fr"},
        {"id": "unknown", "text": text},
    ]
    out = {r["id"]: r for r in nlp_tagger.tag_records(records)}
    found = {k: {a["id"] for a in r["actors"]} for k, r in out.items()}
    assert "actor:omar-faruq-aziz" in found["en"]
    assert "actor:omar-faruq-aziz" in found["unknown"]
    assert "actor:omar-faruq-aziz" not in found["fr"]  # no English model for French text
    assert [loc["name"] for loc in out["fr"]["locations"]] == [loc["name"] for loc in out["en"]["locations"]]


def test_model_alias_is_tried() -> None:
    from pipeline.tag.ner import MODEL_ALIASES, load_spacy

    nlp = load_spacy(MODEL) or load_spacy(MODEL_ALIASES.get(MODEL, MODEL))
    if nlp is None:
        pytest.skip("no spaCy model installed")
    assert nlp.pipe_names[-1] == "ner"
    assert set(nlp.pipe_names) <= {"tok2vec", "ner"}


# ---- linking accuracy on our labelled set ---------------------------------------------------------------
def _linking_accuracy(tagger: Tagger) -> tuple[float, list[str]]:
    from bench.bench_tag import linking_accuracy

    acc, n, failures = linking_accuracy(tagger)
    assert n >= 100
    return acc, failures


def test_linking_set_is_ours_and_large_enough() -> None:
    arts = [json.loads(line) for line in LINKING.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(arts) >= 30
    assert len({a["id"] for a in arts}) == len(arts)


def test_linking_accuracy_gazetteer_only(gaz_tagger: Tagger) -> None:
    acc, failures = _linking_accuracy(gaz_tagger)
    assert acc >= 0.95, failures


def test_linking_accuracy_with_spacy(nlp_tagger: Tagger) -> None:
    acc, failures = _linking_accuracy(nlp_tagger)
    assert acc >= 0.95, failures


# ---- issue 11: datelines, look-alikes, ambiguity, countries and capitals, the world gazetteer -------------

LAGOS, NIGERIA, BORNO, MAIDUGURI = (
    "geonames:2332459",
    "geonames:2328926",
    "geonames:2346794",
    "geonames:2331447",
)


def locs(tagger: Tagger, text: str, title: str | None = None) -> dict[str, str]:
    """surface form -> country code of every location mention."""
    return {
        m.text: (tagger.entity(m.entity_id).country_code or "")  # type: ignore[union-attr]
        for m in tagger.mentions(text, title)
        if m.entity_id.startswith(("geonames:", "place:", "ne:", "wikidata:", "icao:"))
    }


@pytest.mark.parametrize(
    ("text", "surface", "expected"),
    [
        ("LAGOS — Fuel queues lengthened on Monday.", "LAGOS", LAGOS),
        ("Lagos, Nigeria (Wire) — Fuel queues lengthened on Monday.", "Lagos", LAGOS),
        ("ATHENS, Greece (Wire) — Ferries stayed in port.", "ATHENS", "geonames:264371"),
        ("KHERSON, Ukraine, May 4 (Wire) - Shelling resumed.", "KHERSON", "geonames:706448"),
        ("WASHINGTON (AP) -- The Senate met late.", "WASHINGTON", "geonames:4140963"),
        ("Nairobi, Kenya, 3 March: Traders protested.", "Nairobi", "geonames:184745"),
    ],
)
def test_datelines_in_any_case_are_the_place_filed_from(
    nlp_tagger: Tagger, text: str, surface: str, expected: str
) -> None:
    got = links(nlp_tagger, text)
    assert got[surface] == [expected]  # a capital in a dateline is a place, not its government
    assert not any("Wire" in s or s == "AP" for s in got)  # the agency is no name


def test_the_datelines_country_is_a_place(nlp_tagger: Tagger) -> None:
    got = links(nlp_tagger, "ATHENS, Greece (Wire) — Ferries stayed in port.")
    assert got["Greece"] == ["geonames:390903"]


def test_look_alike_words_and_people_are_not_towns(nlp_tagger: Tagger) -> None:
    text = (
        "Jassem said the convoy left in March. The Meridian hotel stayed open, and Police said Obama "
        "would visit. Orange said profits fell."
    )
    found = locs(nlp_tagger, text)
    for word in ("Jassem", "March", "Meridian", "Police", "Obama", "Orange"):
        assert word not in found, (word, found)
    assert links(nlp_tagger, text)["Obama"] == ["actor:barack-obama"]


def test_small_towns_need_a_locative_cue_in_their_country(gaz_tagger: Tagger) -> None:
    # Konduga (Borno, a town under 15,000) is linked after "in" in a story set in Nigeria ...
    assert locs(gaz_tagger, "Gunmen attacked Maiduguri. Residents in Konduga fled.")["Konduga"] == "NG"
    # ... but the same word as a surname in a story about somewhere else is nobody's town
    assert "Konduga" not in locs(gaz_tagger, "Konduga told reporters in Paris that talks would resume.")


@pytest.mark.parametrize(
    ("text", "surface", "country"),
    [
        ("Fighting in the Kasai region of Congo displaced thousands.", "Kasai region", "CD"),
        ("Obama visited Mansoura, a village near Raqqa.", "Mansoura", "SY"),
        ("Aid reached the Democratic Republic of Congo.", "Democratic Republic of Congo", "CD"),
        ("Gunmen killed farmers in Borno state.", "Borno state", "NG"),
        ("Gunmen killed farmers in Borno on Monday.", "Borno", "NG"),
    ],
)
def test_ambiguous_names_take_the_articles_country(
    gaz_tagger: Tagger, text: str, surface: str, country: str
) -> None:
    assert locs(gaz_tagger, text)[surface] == country


def test_countries_stay_places_unless_a_local_cue_makes_them_the_state(gaz_tagger: Tagger) -> None:
    got = links(gaz_tagger, "Troops from Chad, Niger and Cameroon patrol the border with Chad.")
    assert got["Chad"] == ["geonames:2434508", "geonames:2434508"]
    assert got["Niger"] == ["geonames:2440476"]
    assert got["Cameroon"] == ["geonames:2233387"]
    soldiers = links(gaz_tagger, "Nigerian soldiers repelled the attack.")
    assert soldiers == {}  # a demonym is neither a place nor the government
    assert links(gaz_tagger, "Rome and Athens objected to the plan.") == {
        "Rome": ["actor:italian-government"],
        "Athens": ["actor:greek-government"],
    }
    assert links(gaz_tagger, "Addis Ababa denies any role.")["Addis Ababa"] == ["actor:ethiopian-government"]
    assert links(gaz_tagger, "Diplomats met in Addis Ababa.")["Addis Ababa"] == ["geonames:344979"]
    state = links(gaz_tagger, "Argentina's President Javier Milei scrapped the tax.")
    assert "actor:government-of-argentina" in state["Argentina's President"]  # the state acts through it


def test_country_and_capital_names_resolve_to_the_government(gaz_tagger: Tagger) -> None:
    us = "actor:united-states-government"
    assert gaz_tagger.resolve_actor("Washington") == [us]
    assert gaz_tagger.resolve_actor("United States") == [us]
    assert gaz_tagger.resolve_actor("Russia") == ["actor:russian-government"]
    assert gaz_tagger.resolve_actor("Ankara") == ["actor:turkish-government"]
    assert gaz_tagger.resolve_actor("Islamic State") == [IS]  # an actor's own name is untouched


def test_institutions_generated_per_country_are_tagged(gaz_tagger: Tagger) -> None:
    text = (
        "India's Defence Ministry said the Ethiopian army and the Nigerian Air Force had joined the drill; "
        "Algeria's foreign ministry objected."
    )
    got = links(gaz_tagger, text)
    # the ministry, and the state it speaks for ("<Country>'s <institution>")
    assert got["India's Defence Ministry"] == [
        gaz_tagger.resolve_actor("India's Defence Ministry")[0],
        "actor:indian-government",
    ]
    assert got["Ethiopian army"] == ["actor:army-of-ethiopia"]
    assert got["Nigerian Air Force"] == ["actor:air-force-of-nigeria"]
    assert got["Algeria's foreign ministry"][0] == gaz_tagger.resolve_actor("Algerian Foreign Ministry")[0]


@pytest.mark.parametrize(
    "name",
    [
        "Sumy Oblast",
        "Deir ez-Zor Governorate",
        "North Kivu",
        "Tigray",
        "Sinai",
        "Golan Heights",
        "Strait of Hormuz",
        "Lake Chad",
        "Gulf of Guinea",
        "Blue Nile",
        "Nuba Mountains",
        "Kakhovka dam",
        "Al-Hol camp",
        "Horn of Africa",
        "Middle East",
        "Balkans",
        "Caucasus",
        "Kaliningrad Oblast",
        "Keflavik International Airport",
    ],
)
def test_the_world_gazetteer_knows_places_news_is_about(gaz_tagger: Tagger, name: str) -> None:
    ids = gaz_tagger.resolve_location(name)
    assert ids, name  # known to the gazetteer, not only by the id an unknown name gets
    text = f"Fighting was reported near {name} on Monday."
    assert ids[0] in links(gaz_tagger, text).get(name, [])  # the text's name links to what a search means


def test_a_region_named_with_its_type_word_is_the_region(gaz_tagger: Tagger) -> None:
    got = links(gaz_tagger, "Drones hit Kaliningrad Oblast, and Daraa province saw clashes near Daraa.")
    assert got["Kaliningrad Oblast"] == gaz_tagger.resolve_location("Kaliningrad Oblast")
    assert gaz_tagger.entity(got["Kaliningrad Oblast"][0]).kind == "admin1"  # type: ignore[union-attr]
    assert gaz_tagger.entity(got["Daraa province"][0]).kind == "admin1"  # type: ignore[union-attr]
    assert gaz_tagger.entity(got["Daraa"][0]).kind == "city"  # type: ignore[union-attr]


def test_locations_carry_their_ancestors(gaz_tagger: Tagger) -> None:
    _, locations = gaz_tagger.tag("Gunmen attacked Maiduguri overnight.")
    (maiduguri,) = [loc for loc in locations if loc["id"] == MAIDUGURI]
    assert BORNO in maiduguri["ancestors"]
    assert maiduguri["ancestors"][-1] == NIGERIA
    assert maiduguri["admin1"] == {"id": BORNO, "name": gaz_tagger.entity_name(BORNO)}


def test_the_samples_places_have_the_right_countries(gaz_tagger: Tagger) -> None:
    from pipeline.clean import clean_records
    from pipeline.parse import parse_feed

    records = [
        r
        for path in sorted((ROOT / "config" / "samples").glob("*.xml"))
        for r in parse_feed(path.read_bytes(), url=path.as_uri()).entries
    ]
    texts = [(r.get("title"), r.get("text") or "") for r in clean_records(records)]
    seen: dict[str, set[str]] = {}
    for title, text in texts:
        for m in gaz_tagger.mentions(text, title):
            e = gaz_tagger.entity(m.entity_id)
            if e is not None and e.type == "location":
                seen.setdefault(m.text, set()).add(e.country_code or "")
    expected = {
        "Raqqa": "SY",
        "Maiduguri": "NG",
        "Mansoura": "SY",
        "Nyala": "SD",
        "Kyiv": "UA",
        "Mosul": "IQ",
    }
    for surface, country in expected.items():
        assert seen.get(surface) == {country}, (surface, seen.get(surface))
    for word in ("March", "Meridian", "Jassem", "Obama"):
        assert word not in seen, (word, seen[word])


def test_places_the_gazetteer_lacks_are_named_by_their_kind(gaz_tagger: Tagger) -> None:
    from pipeline.tag.tagger import unknown_place_id

    got = links(gaz_tagger, "Mining has polluted the Ankobra and Pra rivers near the Bhote Koshi river.")
    assert got["Ankobra"] == ["place:ankobra"]
    assert got["Pra"] == ["place:pra"]
    assert got["Bhote Koshi river"] == [unknown_place_id("Bhote Koshi")]  # a search by the bare name finds it
    assert "Mining" not in got  # "Minning" (a Chinese town) reads "mining": a common word needs a cue
    islands = links(gaz_tagger, "Strikes cut ferries to the islands of Brac, Hvar and Vis on Monday.")
    assert islands["Brac"] == ["place:brac"]
    beira = links(gaz_tagger, "Mozambique said the Port of Beira reopened.")
    port = gaz_tagger.entity(beira["Port of Beira"][0])
    assert port is not None
    assert port.country_code == "MZ"
    assert port.ancestors[-1] == "geonames:1036973"


def test_bare_institutions_belong_to_the_datelines_country(gaz_tagger: Tagger) -> None:
    got = links(gaz_tagger, "PARIS (Wire) — The Interior Ministry put the figure at 450,000.")
    assert got["Interior Ministry"] == [gaz_tagger.resolve_actor("French Interior Ministry")[0]]
    other = links(gaz_tagger, "PARIS (Wire) — The Kenyan Interior Ministry said the talks would resume.")
    assert other.get("Interior Ministry") is None  # named with its country already


def test_the_stop_word_list_is_spacys() -> None:
    from spacy.lang.en.stop_words import STOP_WORDS as spacy_words

    from pipeline.tag.lexicon import STOP_WORDS

    assert frozenset(spacy_words) == STOP_WORDS  # refresh pipeline/tag/stop_words.txt when spaCy changes it
