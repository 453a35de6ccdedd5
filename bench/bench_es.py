"""Benchmark: bulk indexing rate and search latency of ElasticsearchStore (prints figures).

Generates N synthetic articles (default 100,000: English-like text from a fixed vocabulary,
200 actors, 300 located places, 20 sources, 12 months of dates, 5% near-duplicates of
earlier stories), indexes them through ``ElasticsearchStore.index`` (the product's write
path: id lookups, streaming_bulk, representative updates, refresh), then runs Q searches
combining an actor filter, a location filter and a text query with all facets and
highlights, and prints docs/s, the server's and the client's CPU per document, and latency
p50/p95, with the server's heap size (``--heap``, default 512m).

A long-running server is the product's case, so the timed load is preceded by a warm-up
(``--warmup``, default 20,000 other articles into a throw-away index, then deleted), as
Elastic's Rally does with its warm-up period: a freshly started JVM spends its first
minute compiling, and that phase is printed separately ("cold start"), not hidden.

    .venv/bin/python -m bench.bench_es                  # starts the local server (integ-test zip)
    .venv/bin/python -m bench.bench_es --url http://127.0.0.1:9200 --docs 20000

Targets (issue 3): >= 3,000 docs/s, p95 < 50 ms on a 2-core machine with a 512 MiB heap.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.figures import BenchRecord, add_json_out
from pipeline.stores.base import SearchQuery
from pipeline.stores.elasticsearch import ElasticsearchStore

SYLLABLES = ["ra", "qa", "mo", "sul", "da", "mas", "cus", "al", "ep", "po", "ki", "ev", "ba", "gh", "dad",
             "tor", "lin", "ver", "an", "ter", "con", "vo", "ces", "fire", "strike", "aid", "front",
             "line"]  # fmt: skip
_COMMON_TEXT = """the of and to in a is that for on was with he it as at by from his an were are which this
be has fighting forces city troops government talks ceasefire attack residents officials said report
militants army civilians aid convoy shelling offensive border refugees minister election"""
COMMON = _COMMON_TEXT.split()


def vocabulary(rng: random.Random, n: int = 3000) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def generate(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    actors = [(f"actor:a{i}", f"Actor {vocab[i].title()}") for i in range(200)]
    places = [
        (f"geonames:{100000 + i}", vocab[200 + i].title(),
         rng.choice(["SY", "IQ", "UA", "KE", "FJ", "TR", "LB"]),
         rng.uniform(-40, 60), rng.uniform(-170, 170))
        for i in range(300)
    ]  # fmt: skip
    sources = [(f"Source {vocab[600 + i].title()}", f"{vocab[600 + i]}.example") for i in range(20)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    recent: list[dict[str, Any]] = []

    def sentence() -> str:
        words = [
            rng.choice(COMMON) if rng.random() < 0.45 else rng.choice(vocab)
            for _ in range(rng.randint(8, 20))
        ]
        return " ".join(words).capitalize() + "."

    for i in range(n):
        name, domain = rng.choice(sources)
        url = f"https://{domain}/story/{i}"
        aid = uuid.uuid5(uuid.NAMESPACE_URL, url).hex
        dup = recent and rng.random() < 0.05
        if dup:
            original = rng.choice(recent)
            title, text = original["title"], original["text"]
            story_actors, story_places = original["actors"], original["locations"]
            cluster, duplicate_of = original["cluster_id"], original["id"]
        else:
            title = " ".join(rng.choice(vocab) for _ in range(rng.randint(5, 9))).capitalize()
            text = " ".join(sentence() for _ in range(rng.randint(5, 12)))
            story_actors = [
                {"id": a[0], "name": a[1], "kind": "armed_group", "mentions": [a[1]], "count": 1}
                for a in rng.sample(actors, rng.randint(0, 3))
            ]
            story_places = [
                {"id": p[0], "name": p[1], "kind": "city", "country_code": p[2], "lat": p[3], "lon": p[4],
                 "mentions": [p[1]], "count": 1}
                for p in rng.sample(places, rng.randint(0, 3))
            ]  # fmt: skip
            cluster, duplicate_of = aid, None
        published = start + timedelta(seconds=rng.randint(0, 365 * 86400))
        doc = {
            "id": aid, "url": url,
            "source": {"feed": f"https://{domain}/rss", "name": name, "domain": domain},
            "title": title, "summary": text[:200], "text": text, "language": "en",
            "published_at": published.isoformat(), "published_at_estimated": False,
            "fetched_at": published.isoformat(), "authors": [], "feed_tags": ["world"],
            "feed_entry_id": url, "content_hash": uuid.uuid5(uuid.NAMESPACE_OID, text).hex,
            "minhash": [rng.getrandbits(32) for _ in range(64)],
            "lsh_bands": [f"b{j}:{rng.getrandbits(40):x}" for j in range(16)],
            "cluster_id": cluster, "duplicate_of": duplicate_of,
            "actors": story_actors, "locations": story_places,
        }  # fmt: skip
        if not dup:
            recent.append(doc)
            if len(recent) > 500:
                recent.pop(0)
        yield doc


def server_cpu_ms(store: ElasticsearchStore) -> int:
    """CPU milliseconds the (single-node) server process has used so far."""
    stats = store.client.nodes.stats(metric="process")["nodes"]
    return int(next(iter(stats.values()))["process"]["cpu"]["total_in_millis"])


def drop(store: ElasticsearchStore) -> None:
    """Delete the indices and template of ``store``'s prefix and close it."""
    try:
        store.client.options(ignore_status=404).indices.delete(
            index=f"{store.prefix}*", expand_wildcards="all"
        )
        store.client.options(ignore_status=404).indices.delete_index_template(name=f"{store.prefix}*")
    finally:
        store.close()


def warm_up(url: str, docs: int) -> float:
    """Index ``docs`` articles (another seed) into a throw-away prefix, delete it; their rate."""
    prefix = f"warmup-{uuid.uuid4().hex[:8]}"
    store = ElasticsearchStore(url, prefix=prefix)
    try:
        store.setup()
        corpus = list(generate(docs, seed=3))
        started = time.perf_counter()
        indexed = store.index(corpus).indexed
        return indexed / (time.perf_counter() - started)
    finally:
        drop(store)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def server_or_url(url: str | None, heap: str) -> tuple[Any, str]:
    """The Elasticsearch to measure: ``url`` when given, else a started local integ-test server (returned so
    the caller stops it)."""
    if url:
        return None, url
    from pipeline.devtools.esserver import LocalElasticsearch, make_config

    config = make_config()
    config.heap = heap
    server = LocalElasticsearch(config).start()
    return server, server.url


def main() -> None:  # noqa: PLR0915 - a benchmark script: set up, measure, print one table in order
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an Elasticsearch URL (default: start the local integ-test server)")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--heap", default="512m", help="heap of the started server (default 512m)")
    parser.add_argument(
        "--warmup", type=int, default=20_000, help="articles indexed and deleted first (0: none)"
    )
    add_json_out(parser, "bench_es")
    args = parser.parse_args()
    record = BenchRecord("bench_es")

    server, url = server_or_url(args.url, args.heap)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    store = ElasticsearchStore(url, prefix=prefix)
    try:
        cold = warm_up(url, args.warmup) if args.warmup else None
        store.setup()
        nodes = store.client.nodes.info()["nodes"]
        node = next(iter(nodes.values()))
        heap_mb = node["jvm"]["mem"]["heap_max_in_bytes"] / 2**20
        corpus = list(generate(args.docs))  # generated before timing: the figure is the store's
        server_cpu0, client_cpu0 = server_cpu_ms(store), time.process_time()
        started = time.perf_counter()
        report = store.index(corpus)
        elapsed = time.perf_counter() - started
        client_ms = (time.process_time() - client_cpu0) * 1000 / max(1, report.indexed)
        server_ms = (server_cpu_ms(store) - server_cpu0) / max(1, report.indexed)
        rate = report.indexed / elapsed

        rng = random.Random(11)
        sample = [d for d in corpus[:3000] if d["actors"] and d["locations"]]
        latencies: list[float] = []
        totals: list[int] = []
        for i in range(args.queries + 20):
            doc = rng.choice(sample)
            words = [w for w in doc["title"].split() if len(w) > 3] or ["fighting"]
            query = SearchQuery(
                text=rng.choice(words) + (" | " + rng.choice(["ceasefire", "shelling", "talks"])),
                actor_ids=[[doc["actors"][0]["id"]]],
                location_ids=[[doc["locations"][0]["id"]]],
                facets=True,
                highlight=True,
                limit=20,
            )
            t0 = time.perf_counter()
            result = store.search(query)
            if i >= 20:  # warm-up excluded
                latencies.append((time.perf_counter() - t0) * 1000)
                totals.append(result.total)
        # also plain facet-only browsing (no text): the dashboard's first page
        browse: list[float] = []
        for _ in range(50):
            t0 = time.perf_counter()
            store.search(SearchQuery(limit=20, facets=True))
            browse.append((time.perf_counter() - t0) * 1000)

        print(
            f"Elasticsearch {node['version']} at {url}, heap {heap_mb:.0f} MiB, "
            f"analysis={store.analysis_kind}"
        )
        print()
        print("| measure | value |")
        print("|---|---|")
        print(
            f"| documents indexed | {report.indexed:,} ({len(report.errors)} errors, {report.created:,} "
            f"created) |"
        )
        print(f"| bulk indexing time | {elapsed:.1f} s |")
        print(f"| bulk indexing rate | {rate:,.0f} docs/s |")
        if cold is not None:
            print(f"| cold start: rate of the {args.warmup:,} warm-up articles | {cold:,.0f} docs/s |")
        print(f"| CPU per document: server / client | {server_ms:.3f} / {client_ms:.3f} ms |")
        print(
            f"| actor+location+text search, facets + highlights: p50 | {statistics.median(latencies):.1f} "
            f"ms |"
        )
        print(f"| same, p95 | {percentile(latencies, 95):.1f} ms |")
        print(f"| same, mean hits per query | {statistics.mean(totals):.1f} |")
        print(f"| browse (no filter, all facets): p50 / p95 | {statistics.median(browse):.1f} / "
              f"{percentile(browse, 95):.1f} ms |")  # fmt: skip
        print(f"| queries timed | {len(latencies)} (after 20 warm-up) |")
        record.data["machine"]["elasticsearch"] = (
            f"{node['version']}, heap {heap_mb:.0f} MiB, {store.analysis_kind}"
        )
        n = f"{report.indexed:,} articles"
        record.figure(
            f"bulk indexing, {n}", round(rate), "docs/s", target=">= 3,000", errors=len(report.errors)
        )
        if cold is not None:
            record.figure(f"cold start, the {args.warmup:,} warm-up articles", round(cold), "docs/s")
        record.figure("CPU per document, server", round(server_ms, 3), "ms")
        record.figure("CPU per document, client", round(client_ms, 3), "ms")
        record.figure(
            "actor+location+text search, facets + highlights, p50",
            round(statistics.median(latencies), 1),
            "ms",
        )
        record.figure(
            "actor+location+text search, facets + highlights, p95",
            round(percentile(latencies, 95), 1),
            "ms",
            target="< 50",
            queries=len(latencies),
        )
        record.figure("browse (no filter, all facets), p50", round(statistics.median(browse), 1), "ms")
        record.figure("browse (no filter, all facets), p95", round(percentile(browse, 95), 1), "ms")
        record.write(args.json_out)
    finally:
        try:
            drop(store)
        finally:
            if server is not None:
                server.stop()
                shutil.rmtree(server.config.data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
