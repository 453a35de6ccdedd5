"""Benchmark: what ``pipeline.dedupe.reconcile`` costs on Elasticsearch (requests, refreshes, seconds).

Builds N synthetic stories (English-like text from a fixed vocabulary, our own generation)
and C edited copies of each, written by two "workers" that cannot see each other (both
dedupe against the store before either indexes, as parallel Airflow tasks do), so the
copies form split clusters. Then times one ``reconcile`` over everything indexed and
counts the HTTP requests it sends (from the client's request log), the ``_search`` and
``_refresh`` ones among them, and checks the result: one cluster per story.

    .venv/bin/python -m bench.bench_reconcile --url http://127.0.0.1:9200 --stories 150 --copies 3
    .venv/bin/python -m bench.bench_reconcile --root /path/to/other/checkout ...   # A/B another version

Issue 15 item 2 measured 258 requests (219 ``_search``) and 144 refreshes for this step.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

WORDS = [
    "harbour",
    "council",
    "river",
    "bridge",
    "market",
    "school",
    "doctor",
    "nurse",
    "farmer",
    "police",
    "court",
    "judge",
    "minister",
    "vote",
    "budget",
    "road",
    "train",
    "station",
    "airport",
    "storm",
    "flood",
    "drought",
    "harvest",
    "price",
    "wage",
    "strike",
    "union",
    "factory",
    "mine",
    "election",
    "mayor",
    "village",
    "city",
    "province",
    "border",
    "army",
    "truce",
    "talks",
    "aid",
    "camp",
    "water",
    "power",
    "grid",
    "fuel",
    "bank",
    "loan",
    "debt",
    "tax",
    "reform",
    "survey",
    "report",
    "study",
    "museum",
    "library",
    "festival",
    "match",
    "team",
    "coach",
    "season",
    "record",
]


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.paths: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()  # "POST http://host:port/index/_search?... [status:200 duration:...]"
        if " [status:" in msg:
            method, url = msg.split(" ", 2)[:2]
            path = url.split("?", 1)[0].rsplit("/", 1)[-1]
            self.paths[f"{method} {path if path.startswith('_') else 'doc'}"] += 1


def story(rng: random.Random, n: int) -> str:
    sentences = []
    for _ in range(n // 10):
        words = rng.choices(WORDS, k=10)
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def edited(rng: random.Random, text: str) -> str:
    sentences = text.split(". ")
    cut = sentences[: max(3, int(len(sentences) * rng.uniform(0.7, 1.0)))]  # a shortened copy
    i = rng.randrange(len(cut))
    cut[i] = cut[i] + " officials said"
    return ". ".join(cut)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--stories", type=int, default=150)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = ap.parse_args()
    sys.path.insert(0, str(args.root))
    from pipeline.dedupe import Deduper, reconcile
    from pipeline.stores.elasticsearch import ElasticsearchStore

    rng = random.Random(14)
    base = datetime(2026, 3, 1, tzinfo=UTC)
    a_side: list[dict[str, Any]] = []
    b_side: list[dict[str, Any]] = []
    for s in range(args.stories):
        text = story(rng, 150)
        when = base + timedelta(minutes=7 * s)
        original = {
            "id": f"s{s}",
            "title": f"Story {s}",
            "text": text,
            "url": f"http://a.example/{s}",
            "source": {"name": "A"},
            "published_at": when.isoformat(),
        }
        copies = [{"id": f"s{s}c{c}", "title": f"Story {s}", "text": edited(rng, text), "url": f"http://c{c}.example/{s}",
                   "source": {"name": f"C{c}"}, "published_at": (when + timedelta(minutes=1 + c)).isoformat()}
                  for c in range(args.copies)]  # fmt: skip
        group = [original, *copies]
        rng.shuffle(group)
        a_side += group[: len(group) // 2]
        b_side += group[len(group) // 2 :]
    store = ElasticsearchStore(args.url, prefix=f"benchrec{uuid.uuid4().hex[:8]}")
    store.setup()
    try:
        out_a = list(Deduper(store).run(a_side))  # the two workers dedupe before either indexes
        out_b = list(Deduper(store).run(b_side))
        indexed = out_a + out_b
        assert not store.index(out_a).errors
        assert not store.index(out_b).errors
        clusters_before = len({r["cluster_id"] for r in indexed})
        counter = _Counter()
        transport = logging.getLogger("elastic_transport.transport")
        transport.setLevel(logging.INFO)
        transport.addHandler(counter)
        started = time.perf_counter()
        report = reconcile(store, indexed)
        seconds = time.perf_counter() - started
        transport.removeHandler(counter)
        final = {m["cluster_id"] for m in (store.get(r["id"]) or {} for r in indexed)}
        total = sum(counter.paths.values())
        print(f"code: {args.root}")
        print(
            f"articles {len(indexed)} ({args.stories} stories x {1 + args.copies}); clusters before "
            f"{clusters_before}, "
            f"after {len(final)}; merged {report.merged}, renamed {report.renamed}, rewritten "
            f"{report.rewritten}"
        )
        print(
            f"reconcile: {seconds:.2f} s, {total} requests: "
            + ", ".join(f"{k} {v}" for k, v in counter.paths.most_common())
        )
        again = reconcile(store, indexed)
        print(f"second reconcile rewrites {again.rewritten} (idempotent)")
    finally:
        store.client.options(ignore_status=404).indices.delete(
            index=f"{store.prefix}*", expand_wildcards="all"
        )
        store.client.options(ignore_status=404).indices.delete_index_template(name=f"{store.prefix}*")
        store.close()


if __name__ == "__main__":
    main()
