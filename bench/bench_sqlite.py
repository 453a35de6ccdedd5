"""Benchmark SQLiteStore: bulk indexing rate and search latency at N generated articles.

Prints figures; not a test. Articles: Zipf-distributed text (60 news words + 8,000 invented words),
3 actors and 3 located places each (half drawn from a popular 10%), 40 sources, a year of dates,
one in ten a duplicate of the previous story; 16 LSH band keys and a 128-value signature each.
Indexing time excludes generating the articles; CPU figures are given too because the machine
is shared (see the printed load average).

    .venv/bin/python -m bench.bench_sqlite [--docs 100000] [--queries 100] [--db PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.figures import BenchRecord, add_json_out
from pipeline.stores.base import SearchQuery
from pipeline.stores.sqlite import SQLiteStore

_NEWS_TEXT = (
    "army city forces attack government talks ceasefire aid convoy refugees border shelling militants "
    "election protest minister police drought flood harvest market prices oil pipeline bridge hospital "
    "school water power strike airport port camp district village river road checkpoint offensive "
    "negotiations sanctions embassy summit court trial reporters statement spokesman civilians wounded"
)
NEWS_WORDS = _NEWS_TEXT.split()
_SYL = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "da", "pe", "ro", "zu", "an", "el", "is", "or"]
_vr = random.Random(3)
# Zipf-distributed vocabulary: news words first (frequent), then 8,000 invented words.
VOCAB = NEWS_WORDS + sorted({"".join(_vr.choices(_SYL, k=_vr.randint(2, 4))) for _ in range(12000)})[:8000]
CUM = list(__import__("itertools").accumulate(1.0 / (r + 1) for r in range(len(VOCAB))))
QUERY_WORDS = VOCAB[20:400]  # mid-frequency words: each in roughly 1-20% of the articles
ACTORS = [(f"actor:a{i}", f"Actor {i}") for i in range(300)]
PLACES = [
    (
        f"geonames:{1000 + i}",
        f"Place {i}",
        ("SY", "IQ", "UA", "KE", "YE")[i % 5],
        random.Random(i).uniform(-60, 60),
        random.Random(-i).uniform(-170, 170),
    )
    for i in range(2000)
]
SOURCES = [
    {"feed": f"https://s{i}.example/rss", "name": f"Source {i}", "domain": f"s{i}.example"} for i in range(40)
]
_pr = random.Random(5)
TEXTS = [" ".join(_pr.choices(VOCAB, cum_weights=CUM, k=_pr.randint(200, 450))) for _ in range(3000)]
SIGNATURES = [[_pr.getrandbits(32) for _ in range(128)] for _ in range(500)]


def article(i: int, rng: random.Random) -> dict[str, Any]:
    text = TEXTS[rng.randrange(len(TEXTS))]
    published = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 60 * 24 * 365))
    aid = f"{i:016x}"
    dup = i % 10 == 9  # one in ten is a duplicate of the previous story
    rep = f"{i - 1:016x}" if dup else aid
    return {
        "id": aid,
        "url": f"https://example.org/{i}",
        "source": rng.choice(SOURCES),
        "title": " ".join(rng.choices(VOCAB, cum_weights=CUM, k=8)),
        "summary": text[:200],
        "text": text,
        "language": "en",
        "published_at": published.isoformat(),
        "fetched_at": published.isoformat(),
        "content_hash": f"h{i}",
        "minhash": SIGNATURES[i % len(SIGNATURES)],
        "lsh_bands": [f"{b}:{rng.getrandbits(40):x}" for b in range(16)],
        "cluster_id": rep,
        "duplicate_of": rep if dup else None,
        "actors": [
            {"id": a, "name": n, "kind": "person", "mentions": [n], "count": 1}
            for a, n in rng.sample(ACTORS[:30] if rng.random() < 0.5 else ACTORS, 3)
        ],
        "locations": [
            {
                "id": p,
                "name": n,
                "kind": "city",
                "country_code": c,
                "lat": la,
                "lon": lo,
                "mentions": [n],
                "count": 1,
            }
            for p, n, c, la, lo in rng.sample(PLACES[:50] if rng.random() < 0.5 else PLACES, 3)
        ],
    }


class Timed:
    """Wraps the generator so that generation time is not counted as indexing time."""

    def __init__(self, n: int) -> None:
        self.n, self.gen_seconds = n, 0.0

    def __iter__(self) -> Any:
        rng = random.Random(42)
        for i in range(self.n):
            t = time.perf_counter()
            doc = article(i, rng)
            self.gen_seconds += time.perf_counter() - t
            yield doc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--db", default=None)
    ap.add_argument("--search-only", action="store_true", help="reuse --db as it is: skip indexing")
    add_json_out(ap, "bench_sqlite")
    args = ap.parse_args()
    record = BenchRecord("bench_sqlite")
    folder = tempfile.mkdtemp(prefix="bench-sqlite-")
    path = Path(args.db or Path(folder) / "bench.db")
    store = SQLiteStore(path)
    store.setup()
    if not args.search_only:
        docs = Timed(args.docs)
        t0, c0 = time.perf_counter(), time.process_time()
        report = store.index(docs)
        elapsed = time.perf_counter() - t0 - docs.gen_seconds
        cpu = time.process_time() - c0 - docs.gen_seconds
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        print(
            f"indexed {report.indexed} docs in {elapsed:.1f}s wall: {report.indexed / elapsed:,.0f} docs/s "
            f"({report.indexed / cpu:,.0f} docs per CPU-second; errors {len(report.errors)}), "
            f"file {size / 1e6:.0f} MB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        record.figure(
            f"bulk indexing, {report.indexed:,} articles (generation excluded)",
            round(report.indexed / elapsed),
            "docs/s",
            per_cpu_second=round(report.indexed / cpu),
            file_mb=round(size / 1e6),
            errors=len(report.errors),
        )
    qrng = random.Random(7)
    kinds = {
        "actor+location+text+facets": lambda: SearchQuery(
            text=qrng.choice(QUERY_WORDS),
            actor_ids=[[qrng.choice(ACTORS[:30])[0]]],
            location_ids=[[qrng.choice(PLACES[:50])[0]]],
        ),
        "actor+location (no text)+facets": lambda: SearchQuery(
            actor_ids=[[qrng.choice(ACTORS[:30])[0]]], location_ids=[[qrng.choice(PLACES[:50])[0]]]
        ),
        "text only (2 words) + facets": lambda: SearchQuery(text=" ".join(qrng.sample(QUERY_WORDS, 2))),
        "match all, date sort + facets": lambda: SearchQuery(sort="date"),
        "text, no facets": lambda: SearchQuery(text=qrng.choice(QUERY_WORDS), facets=False),
        "near 300 km + text + facets": lambda: SearchQuery(
            text=qrng.choice(QUERY_WORDS), near=(qrng.uniform(-50, 50), qrng.uniform(-150, 150), 300.0)
        ),
    }
    rows: list[list[object]] = []
    for name, make in kinds.items():
        times = []
        totals = []
        for _ in range(args.queries if "match all" not in name else max(20, args.queries // 10)):
            q = make()
            t = time.perf_counter()
            r = store.search(q)
            times.append((time.perf_counter() - t) * 1000)
            totals.append(r.total)
        times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        print(
            f"{name:32s} p50 {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms  "
            f"(median total {statistics.median(totals):,.0f}, n={len(times)})"
        )
        rows.append(
            [name, round(statistics.median(times), 1), round(p95, 1), statistics.median(totals), len(times)]
        )
    record.table(
        f"searches over {store.count():,} articles (wall ms)",
        ["query", "p50 ms", "p95 ms", "median total", "queries"],
        rows,
    )
    store.close()
    record.write(args.json_out)


if __name__ == "__main__":
    main()
