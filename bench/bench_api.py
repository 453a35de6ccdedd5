"""Benchmark: latency of ``GET /search`` over HTTP, facets and highlights on, on Elasticsearch.

Indexes N synthetic articles (default 100,000; the corpus generator of ``bench/bench_es.py``)
into a fresh index prefix of a real Elasticsearch, starts a real ``newswire serve`` (uvicorn)
on loopback over it, then times ``/search`` requests (text + a source or country filter, all
facets, highlights, 20 hits; the text is a word of a stored title, as a person searching
for a story types it) with 1 and with 20 concurrent clients (threads, one keep-alive
connection each). Loops are bounded: ``--queries`` requests per client, and no phase runs past
``--phase-seconds``. Prints p50/p95 per phase and writes them to ``bench/out/bench_api.json``.

Actor and location filters are not in the mix: the API resolves them by name through the
gazetteer, and the synthetic corpus carries made-up ids that no name resolves to.

    .venv/bin/python -m bench.bench_api                 # starts the local server (integ-test zip)
    .venv/bin/python -m bench.bench_api --url http://127.0.0.1:9200 --docs 20000

Target (issue 13): p95 < 80 ms with one client at 100k articles.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent

from bench.bench_es import drop, generate, percentile, server_or_url  # noqa: E402
from bench.figures import BenchRecord, add_json_out  # noqa: E402
from pipeline.devtools.esserver import free_port  # noqa: E402
from pipeline.stores.elasticsearch import ElasticsearchStore  # noqa: E402


def wait_for(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> float:
    """Seconds until ``/health`` answers 200 (the server is up and its store open)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"newswire serve exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("newswire serve did not answer /health in time")


def queries(corpus: list[dict[str, Any]], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    sample = corpus[:5000]
    paths = []
    for _ in range(n):
        doc = rng.choice(sample)
        words = [w for w in doc["title"].split() if len(w) > 3] or ["fighting"]
        params: list[tuple[str, str]] = [("q", rng.choice(words)), ("limit", "20")]
        if rng.random() < 0.5:
            params.append(("source", doc["source"]["name"]))
        elif doc["locations"]:
            params.append(("country", doc["locations"][0]["country_code"]))
        paths.append("/search?" + urlencode(params))
    return paths


def run_phase(port: int, paths: list[str], clients: int, per_client: int, limit_s: float) -> dict[str, Any]:
    """``clients`` threads, each sending ``per_client`` requests (or stopping at ``limit_s``)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + limit_s

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        for i in range(per_client):
            if time.perf_counter() > deadline:
                break
            path = paths[(k * per_client + i) % len(paths)]
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            elapsed = (time.perf_counter() - t0) * 1000
            if resp.status != 200:
                with lock:
                    errors.append(f"{resp.status}: {body[:200]!r}")
                continue
            payload = json.loads(body)
            assert "facets" in payload
            assert "hits" in payload
            mine.append(elapsed)
        conn.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "clients": clients, "requests": len(latencies), "errors": len(errors), "first_errors": errors[:3],
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "throughput_rps": round(len(latencies) / wall, 1),
    }  # fmt: skip


def run_direct(store: ElasticsearchStore, paths: list[str], count: int) -> dict[str, Any]:
    """The same searches in-process (``build_query`` + ``store.search``, no HTTP): what the API adds."""
    from urllib.parse import parse_qs, urlsplit

    from pipeline.search import build_query

    latencies = []
    for path in paths[:count]:
        params = parse_qs(urlsplit(path).query)
        t0 = time.perf_counter()
        query = build_query(
            params["q"][0], sources=params.get("source", []), countries=params.get("country", [])
        )
        store.search(query)
        latencies.append((time.perf_counter() - t0) * 1000)
    return {
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
    }


def write_record(
    record: BenchRecord,
    articles: int,
    errors: int,
    index_s: float,
    startup_s: float,
    one: dict[str, Any],
    many: dict[str, Any],
    direct: dict[str, Any],
) -> None:
    """The run's figures in the shape of ``bench/figures.py`` (read by ``bench/report.py``)."""
    record.figure("articles indexed", articles, "", errors=errors, seconds=round(index_s, 1))
    record.figure("API start (until /health answers)", round(startup_s, 2), "s")
    record.figure("/search over HTTP, facets + highlights, 1 client, p50", one["p50_ms"], "ms")
    record.figure(
        "/search over HTTP, facets + highlights, 1 client, p95", one["p95_ms"], "ms", target="< 80 ms"
    )
    record.figure("/search over HTTP, 20 clients, p50", many["p50_ms"], "ms")
    record.figure("/search over HTTP, 20 clients, p95", many["p95_ms"], "ms")
    record.figure("same searches in-process (no HTTP), p95", direct["p95_ms"], "ms")
    record.table("/search latency over HTTP",
                 ["clients", "requests", "errors", "p50 ms", "p95 ms", "max ms", "req/s"],
                 [[p["clients"], p["requests"], p["errors"], p["p50_ms"], p["p95_ms"], p["max_ms"],
                   p["throughput_rps"]]
                  for p in (one, many)])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an Elasticsearch URL (default: start the local integ-test server)")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300, help="requests per client in the 1-client phase")
    parser.add_argument(
        "--queries-concurrent", type=int, default=30, help="requests per client with 20 clients"
    )
    parser.add_argument("--phase-seconds", type=float, default=180.0, help="upper bound on each timed phase")
    parser.add_argument("--heap", default="512m", help="heap of the started server (default 512m)")
    add_json_out(parser, "bench_api")
    args = parser.parse_args()
    record = BenchRecord("bench_api")

    server, url = server_or_url(args.url, args.heap)
    prefix = f"benchapi-{uuid.uuid4().hex[:8]}"
    store = ElasticsearchStore(url, prefix=prefix)
    api: subprocess.Popen[bytes] | None = None
    try:
        store.setup()
        corpus = list(generate(args.docs))
        t0 = time.perf_counter()
        report = store.index(corpus)
        index_s = time.perf_counter() - t0
        port = free_port()
        env = {
            **os.environ,
            "NEWSWIRE_STORE": url,
            "NEWSWIRE_INDEX_PREFIX": prefix,
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        api = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "serve", "--port", str(port), "--store", url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        startup_s = wait_for(port, api)
        paths = queries(corpus, 2000, seed=11)
        run_phase(port, paths[-20:], 1, 20, 60)  # warm-up, not counted
        one = run_phase(port, paths, 1, args.queries, args.phase_seconds)
        many = run_phase(port, paths, 20, args.queries_concurrent, args.phase_seconds)
        direct = run_direct(store, paths, args.queries)
        load = os.getloadavg()
        write_record(record, report.indexed, len(report.errors), index_s, startup_s, one, many, direct)
        print(
            f"{report.indexed:,} articles indexed in {index_s:.0f} s; API up in {startup_s:.1f} s; "
            f"load average {load[0]:.2f}"
        )
        print("| clients | requests | errors | p50 ms | p95 ms | max ms | req/s |")
        print("|---|---|---|---|---|---|---|")
        for phase in (one, many):
            print(
                f"| {phase['clients']} | {phase['requests']} | {phase['errors']} | {phase['p50_ms']} | "
                f"{phase['p95_ms']} | {phase['max_ms']} | {phase['throughput_rps']} |"
            )
        print(f"same searches in-process (no HTTP): p50 {direct['p50_ms']} ms, p95 {direct['p95_ms']} ms")
        record.write(args.json_out)
    finally:
        if api is not None:
            api.terminate()
            try:
                api.wait(10)
            except subprocess.TimeoutExpired:
                api.kill()
        try:
            drop(store)
        finally:
            if server is not None:
                server.stop()
                shutil.rmtree(server.config.data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
