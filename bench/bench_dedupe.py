"""Dedupe benchmark: prints (1) the Jaccard vs containment comparison on our labelled set
and (2) signature + lookup throughput against a SQLite store holding 100k articles.

Usage: ``.venv/bin/python -m bench.bench_dedupe [--index-size 100000] [--new 5000] [--quick]``

(1) For each rule and threshold: pairwise precision / recall / F1 of the pair decision
alone (signature estimates, every pair of the set) and of the full Deduper (LSH candidates,
clustering), plus the number of different-story pairs merged.
(2) Synthetic articles (Zipf-distributed words from the shared Raqqa fixture and our labelled
set, 150-600 words each) are indexed once into ``bench/out/dedupe-<N>.db`` (reused by later
runs); then ``--new`` unseen articles, a fifth of them edited copies of stored ones, go
through ``Deduper(store).run`` on one core. Signature speed alone is compared with
``datasketch.MinHash`` on the same shingles.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from bench.figures import BenchRecord, add_json_out  # noqa: E402
from pipeline.dedupe import Deduper, Rule, Signer, is_duplicate, normalise  # noqa: E402
from pipeline.stores import open_store  # noqa: E402
from tests.data.dedupe.labelled import gold_pairs, load_labelled, predicted_pairs, prf  # noqa: E402

FIXTURE = ROOT.parent / "shared" / "fixtures" / "000_052631305eea7bf1.txt"


def rule_table(record: BenchRecord) -> None:
    records, different = load_labelled()
    gold = gold_pairs(records)
    signer = Signer()
    sigs = signer.sign([normalise(r["text"]) for r in records])
    sims = {}
    for i, j in combinations(range(len(records)), 2):
        sims[frozenset((records[i]["id"], records[j]["id"]))] = signer.compare(sigs[i], sigs[j][None, :])[0]
    n_groups = len({r["group"] for r in records if sum(x["group"] == r["group"] for x in records) > 1})
    print(
        f"labelled set: {len(records)} articles, {n_groups} duplicate groups, {len(gold)} duplicate pairs, "
        f"{len(sims) - len(gold)} different-story pairs ({len(different)} hard ones listed)"
    )
    print()
    print(
        "| rule | threshold | pairs: P | R | F1 | different merged | Deduper: P | R | F1 | different merged |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rules: tuple[Rule, ...] = ("jaccard", "containment")
    rows: list[list[object]] = []
    for rule in rules:
        for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
            pred = {p for p, s in sims.items() if is_duplicate(s, rule=rule, threshold=t)}
            pp, pr, pf = prf(pred, gold)
            pair_merged = len(pred - gold)
            out = list(Deduper(rule=rule, threshold=t).run([dict(r) for r in records]))
            assign = {r["id"]: r["cluster_id"] for r in out}
            dp, dr, df = prf(predicted_pairs(assign), gold)
            merged = len(predicted_pairs(assign) - gold)
            hard = sum(assign[a] == assign[b] for a, b in different)
            pairs = f"{pp:.3f} | {pr:.3f} | {pf:.3f} | {pair_merged}"
            print(f"| {rule} | {t:.1f} | {pairs} | {dp:.3f} | {dr:.3f} | {df:.3f} | {merged} ({hard} hard) |")
            rows.append(
                [
                    rule,
                    t,
                    round(pp, 3),
                    round(pr, 3),
                    round(pf, 3),
                    pair_merged,
                    round(dp, 3),
                    round(dr, 3),
                    round(df, 3),
                    f"{merged} ({hard} hard)",
                ]
            )
            if rule == "containment" and t == 0.7:
                record.figure(
                    "labelled set F1, containment 0.7 (Deduper)",
                    round(df, 3),
                    "",
                    target=">= 0.97",
                    different_merged=merged,
                )
    record.table(
        f"rules on the labelled set ({len(records)} articles, {len(sims)} pairs): "
        "'pairs' = the rule alone, 'Deduper' = LSH + clustering",
        [
            "rule",
            "threshold",
            "pairs: P",
            "R",
            "F1",
            "different merged",
            "Deduper: P",
            "R",
            "F1",
            "different merged",
        ],
        rows,
    )
    print()


def vocabulary() -> list[str]:
    texts = [r["text"] for r in load_labelled()[0]]
    if FIXTURE.exists():
        texts.append(FIXTURE.read_text(encoding="utf-8", errors="replace"))
    words = sorted({w for t in texts for w in t.split() if w.isalpha()})
    return words


class TextMaker:
    def __init__(self, seed: int) -> None:
        self.words = vocabulary()
        self.rng = random.Random(seed)
        ranks = np.arange(1, len(self.words) + 1)
        self.weights = (1.0 / ranks).tolist()

    def article(self) -> str:
        n = self.rng.randint(150, 600)
        words = self.rng.choices(self.words, weights=self.weights, k=n)
        paras = [" ".join(words[i : i + 60]) + "." for i in range(0, n, 60)]
        return "\n\n".join(paras)


def build_index(size: int) -> str:
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{out / f'dedupe-{size}.db'}"
    store = open_store(url)
    have = store.count()
    if have >= size:
        print(f"index: reusing {url} ({have} articles)")
        store.close()
        return url
    maker = TextMaker(seed=1)
    deduper = Deduper(recent=1000)
    t0 = time.perf_counter()
    batch = []
    for i in range(have, size):
        batch.append(
            {
                "id": f"idx{i:07d}",
                "title": f"Article {i}",
                "text": maker.article(),
                "published_at": f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                "source": {"name": "Synthetic", "domain": "synthetic.example"},
            }
        )
        if len(batch) == 2000:
            store.index(deduper.run(batch))
            batch = []
            print(f"  indexed {i + 1}", end="\r", file=sys.stderr)
    if batch:
        store.index(deduper.run(batch))
    print(f"index: built {url} with {store.count()} articles in {time.perf_counter() - t0:.0f} s")
    store.close()
    return url


def new_articles(n: int, size: int) -> list[dict]:
    maker = TextMaker(seed=2)
    copier = TextMaker(seed=1)  # regenerates the indexed texts to make edited copies
    indexed = [copier.article() for _ in range(min(size, 5 * n))]
    rng = random.Random(3)
    out = []
    for i in range(n):
        if i % 5 == 0:
            paras = rng.choice(indexed).split("\n\n")
            text = "\n\n".join(paras[: max(2, len(paras) - 2)]) + "\n\nEditor's note: updated."
        else:
            text = maker.article()
        out.append(
            {"id": f"new{i:06d}", "title": f"New {i}", "text": text, "published_at": "2026-02-01T00:00:00Z"}
        )
    return out


def throughput(size: int, n: int, record: BenchRecord) -> None:
    url = build_index(size)
    articles = new_articles(n, size)
    texts = [normalise(a["text"]) for a in articles]
    signer = Signer()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), 256):
        signer.band_keys(signer.sign(texts[i : i + 256]))
    numpy_rate = (len(texts) / (time.perf_counter() - t0), len(texts) / (time.process_time() - c0))

    from datasketch import MinHash

    sample = texts[:1000]
    t0, c0 = time.perf_counter(), time.process_time()
    for t in sample:
        words = t.split()
        shingles = {" ".join(words[j : j + 5]).encode() for j in range(max(1, len(words) - 4))}
        m = MinHash(num_perm=signer.width)
        m.update_batch(list(shingles))
    ds_rate = (len(sample) / (time.perf_counter() - t0), len(sample) / (time.process_time() - c0))

    rates = {}
    for label, store_url in (
        ("in-stream only (copies are of stored articles)", None),
        (f"SQLite store of {size:,} articles", url),
    ):
        store = open_store(store_url) if store_url else None
        deduper = Deduper(store)
        load0 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        out = list(deduper.run(dict(a) for a in articles))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        load = (load0 + os.getloadavg()[0]) / 2
        rates[label] = (len(out) / wall, len(out) / cpu, sum(1 for r in out if r["duplicate_of"]), load)
        print(
            f"{label}: {cpu:.2f} s CPU, {wall:.2f} s wall, load average {load:.1f} (1 min, mean of start/end)"
        )
        if store:
            store.close()
    avg_words = sum(len(t.split()) for t in texts) / len(texts)
    print(
        f"throughput: {n} new articles ({avg_words:.0f} words on average, "
        "1 in 5 an edited copy of a stored one), one core"
    )
    print()
    print("| stage | articles/s (CPU time) | articles/s (wall clock) | copies found |")
    print("|---|---|---|---|")
    cpu, wall = numpy_rate[1], numpy_rate[0]
    print(f"| signature + band keys, numpy (pipeline.dedupe.Signer) | {cpu:,.0f} | {wall:,.0f} | |")
    print(
        f"| signature only, datasketch.MinHash ({signer.width} perm, update_batch) | {ds_rate[1]:,.0f} | "
        f"{ds_rate[0]:,.0f} | |"
    )
    for label, (wall_rate, cpu_rate, dups, _load) in rates.items():
        print(f"| Deduper.run, {label} | {cpu_rate:,.0f} | {wall_rate:,.0f} | {dups} of {n // 5} |")
    record.table(
        f"speed: {n} new articles against a SQLiteStore of {size:,} articles, 1 in 5 an edited copy; one "
        f"core",
        ["stage", "articles/s (CPU time)", "articles/s (wall clock)", "copies found"],
        [
            ["signature + band keys, numpy (pipeline.dedupe.Signer)", round(cpu), round(wall), ""],
            [
                f"signature only, datasketch.MinHash ({signer.width} perm, update_batch)",
                round(ds_rate[1]),
                round(ds_rate[0]),
                "",
            ],
            *[
                [f"Deduper.run, {label}", round(c), round(w), f"{d} of {n // 5}"]
                for label, (w, c, d, _l) in rates.items()
            ],
        ],
    )
    stored = rates[f"SQLite store of {size:,} articles"]
    record.figure(
        f"signature + lookup vs {size:,} stored",
        round(stored[1]),
        "articles per CPU-s",
        target=">= 1,000 on one core",
        wall=round(stored[0]),
        load=round(stored[3], 1),
    )
    loads = ", ".join(f"{v[3]:.1f}" for v in rates.values())
    print(
        f"\nCPU time = the process's own time (the machine is shared; 1-min load average during the Deduper "
        f"rows: {loads} on {os.cpu_count()} cores); the target is >= 1,000 articles/s."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index-size", type=int, default=100_000)
    ap.add_argument("--new", type=int, default=5_000)
    ap.add_argument("--quick", action="store_true", help="rule table only")
    add_json_out(ap, "bench_dedupe")
    args = ap.parse_args()
    record = BenchRecord("bench_dedupe")
    rule_table(record)
    if not args.quick:
        throughput(args.index_size, args.new, record)
    record.write(args.json_out)


if __name__ == "__main__":
    main()
