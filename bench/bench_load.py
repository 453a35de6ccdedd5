"""Load: many concurrent API clients against a real ``newswire serve`` while an ingestion runs.

For each store (SQLite file and/or Elasticsearch) this seeds ``--seed-docs`` synthetic articles
(the corpus generator of ``bench/bench_es.py``) through the store API, starts a real
``newswire serve`` (uvicorn) on loopback over it, starts an ingestion (a bounded loop of
``newswire run --once`` over loopback feeds served by :mod:`tests.support.feedserver`; each run finds
fresh items), then lets ``--clients`` threads (one keep-alive connection each) send requests
for ``--seconds``: every fifth one ``GET /health``, the others ``GET /search`` (a word of a
stored title, half with a source or country filter, facets and highlights on). Any answer
other than 200, or a failed connection, is an error. Prints per store and endpoint the
request count, errors, p50/p95/p99, and the articles the ingestion added meanwhile; writes
them with ``--json-out`` (default ``bench/out/bench_load.json``).

    .venv/bin/python -m bench.bench_load                         # SQLite and a started local ES
    .venv/bin/python -m bench.bench_load --stores sqlite --clients 20 --seconds 10
    .venv/bin/python -m bench.bench_load --es-url http://127.0.0.1:9200

Target (issue 14): error rate 0; ``/health`` p95 < 50 ms with 50 clients.
:func:`run_load` is what ``tests/test_load.py`` calls for its shorter variant.
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
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

from bench.bench_api import queries, wait_for  # noqa: E402
from bench.bench_es import drop, generate, percentile, server_or_url  # noqa: E402
from bench.figures import BenchRecord, add_json_out  # noqa: E402
from pipeline.devtools.esserver import free_port  # noqa: E402
from pipeline.stores import open_store  # noqa: E402
from pipeline.stores.base import Store  # noqa: E402
from pipeline.stores.elasticsearch import ElasticsearchStore  # noqa: E402
from tests.support.feedserver import FeedServer, Response  # noqa: E402

PLACES = ["Raqqa", "Mosul", "Kharkiv", "Nairobi", "Aleppo", "Kabul", "Benghazi", "Mogadishu"]
ROUNDS = 40  # the ingestion loop is bounded: at most this many runs
FEEDS = 3
ITEMS_PER_FEED = 8


def page(round_no: int, feed: int, item: int) -> bytes:
    """An article page of our own words naming two places."""
    rng = random.Random(round_no * 1000 + feed * 100 + item)
    a, b = rng.sample(PLACES, 2)
    paras = [
        f"Aid convoys reached {a} on Tuesday after roads from {b} reopened, officials said.",
        f"Residents of {a} described long queues for water and fuel during the week.",
        f"The agency said a second delivery to {b} was planned for round {round_no}.",
    ]
    body = "".join(f"<p>{p}</p>" for p in paras)
    title = f"Convoys reach {a} in round {round_no}, item {feed}-{item}"
    return (
        f"<html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><article><h1>{title}</h1>{body}</article></body></html>"
    ).encode()


def rss(server: FeedServer, feed: int, round_no: int) -> bytes:
    base = datetime(2026, 11, 2, 8, 0, tzinfo=UTC) + timedelta(hours=round_no)
    items = []
    for item in range(ITEMS_PER_FEED):
        link = server.add(f"/load/r{round_no}/f{feed}/{item}.html", page(round_no, feed, item))
        items.append(
            f"<item><title>Convoys, round {round_no} item {feed}-{item}</title><link>{link}</link>"
            f"<guid isPermaLink='false'>load-{round_no}-{feed}-{item}</guid>"
            f"<pubDate>{format_datetime(base + timedelta(minutes=item))}</pubDate>"
            f"<description>Convoys reached the city.</description></item>"
        )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Load {feed}</title>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


@dataclass
class Ingestion:
    """A bounded loop of ``newswire run --once`` in a thread; each run's feeds carry new items."""

    store_url: str
    env: dict[str, str]
    workdir: Path
    rounds: int = ROUNDS
    runs: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _server: FeedServer | None = None

    def start(self) -> Ingestion:
        self._server = FeedServer().start()
        self._server.add("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
        urls = [
            self._server.add_sequence(
                f"/load/feed{f}.xml",
                [
                    Response(rss(self._server, f, r), content_type="application/rss+xml")
                    for r in range(self.rounds)
                ],
            )
            for f in range(FEEDS)
        ]
        feeds_file = self.workdir / "load-feeds.yaml"
        feeds_file.write_text(
            "feeds:\n"
            + "".join(f"  - name: load {k}\n    url: {u}\n    full_text: true\n" for k, u in enumerate(urls)),
            encoding="utf-8",
        )
        cmd = [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            "--once",
            "--feeds",
            str(feeds_file),
            "--store",
            self.store_url,
        ]

        def loop() -> None:
            for _ in range(self.rounds):
                if self._stop.is_set():
                    return
                proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=False)
                self.runs += 1
                if proc.returncode != 0:
                    self.failures.append(proc.stderr.strip()[-500:])

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(300)
        if self._server is not None:
            self._server.stop()


def drive(port: int, paths: list[str], clients: int, seconds: float) -> dict[str, dict[str, Any]]:
    """``clients`` threads for ``seconds``: figures per endpoint (``search``, ``health``)."""
    lat: dict[str, list[float]] = {"search": [], "health": []}
    errors: dict[str, list[str]] = {"search": [], "health": []}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(k: int) -> None:
        rng = random.Random(k)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: dict[str, list[float]] = {"search": [], "health": []}
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            kind = "health" if n % 5 == 0 else "search"
            path = "/health" if kind == "health" else rng.choice(paths)
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                body, status = repr(exc).encode(), 0
            elapsed = (time.perf_counter() - t0) * 1000
            if status != 200:
                with lock:
                    errors[kind].append(f"{status}: {body[:200]!r}")
                continue
            mine[kind].append(elapsed)
        conn.close()
        with lock:
            for key, values in mine.items():
                lat[key].extend(values)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    out = {}
    for kind, values in lat.items():
        total = len(values) + len(errors[kind])
        out[kind] = {
            "requests": total, "errors": len(errors[kind]), "first_errors": errors[kind][:3],
            "error_rate": len(errors[kind]) / total if total else None,
            "p50_ms": round(statistics.median(values), 1) if values else None,
            "p95_ms": round(percentile(values, 95), 1) if values else None,
            "p99_ms": round(percentile(values, 99), 1) if values else None,
            "rps": round(total / wall, 1),
        }  # fmt: skip
    return out


def _open(store_url: str, prefix: str) -> Store:
    """The store at ``store_url``, Elasticsearch under ``prefix`` (the server gets it by environment)."""
    if store_url.startswith("sqlite:"):
        return open_store(store_url)
    store = ElasticsearchStore(store_url, prefix=prefix)
    store.setup()
    return store


def run_load(
    store_url: str, clients: int, seconds: float, seed_docs: int = 2000, prefix: str | None = None
) -> dict[str, Any]:
    """Seed, serve, ingest and drive one store; the figures (see :func:`drive`) and what ingestion did."""
    prefix = prefix or f"load{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "NEWSWIRE_INDEX_PREFIX": prefix,
        "NEWSWIRE_ALLOW_HOSTS": '["127.0.0.0/8"]',
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    corpus = list(generate(seed_docs))
    store = _open(store_url, prefix)
    try:
        store.index(corpus)
        before = store.count()
    finally:
        store.close()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        port = free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "serve", "--port", str(port), "--store", store_url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ingestion = Ingestion(store_url, env, Path(tmp))
        try:
            wait_for(port, api)
            paths = queries(corpus, 2000, seed=5)
            ingestion.start()
            figures = drive(port, paths, clients, seconds)
            load = os.getloadavg()
        finally:
            ingestion.stop()
            api.terminate()
            try:
                api.wait(15)
            except subprocess.TimeoutExpired:
                api.kill()
    store = _open(store_url, prefix)
    try:
        after = store.count()
    finally:
        store.close()
    return {
        **figures,
        "clients": clients,
        "seconds": seconds,
        "ingestion_runs": ingestion.runs,
        "ingestion_failures": ingestion.failures[:3],
        "articles_added": after - before,
        "load_average": [round(x, 2) for x in load],
        "prefix": prefix,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--stores", default="sqlite,elasticsearch", help="comma-separated: sqlite, elasticsearch"
    )
    parser.add_argument("--es-url", help="an Elasticsearch URL (default: start the local integ-test server)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed-docs", type=int, default=2000)
    add_json_out(parser, "bench_load")
    args = parser.parse_args()
    record = BenchRecord("bench_load")
    wanted = [s.strip() for s in args.stores.split(",") if s.strip()]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-load-db-") as tmp:
        if "sqlite" in wanted:
            results["sqlite"] = run_load(
                f"sqlite:///{Path(tmp) / 'load.db'}", args.clients, args.seconds, args.seed_docs
            )
        if "elasticsearch" in wanted:
            server, url = server_or_url(args.es_url, "512m")
            try:
                results["elasticsearch"] = run_load(url, args.clients, args.seconds, args.seed_docs)
                drop(ElasticsearchStore(url, prefix=results["elasticsearch"]["prefix"]))
            finally:
                if server is not None:
                    server.stop()
                    shutil.rmtree(server.config.data_dir, ignore_errors=True)
    rows = []
    for store, res in results.items():
        print(
            f"{store}: {res['clients']} clients, {res['seconds']:.0f} s, ingestion {res['ingestion_runs']} "
            f"runs "
            f"(+{res['articles_added']} articles, failures {len(res['ingestion_failures'])}), "
            f"load average {res['load_average']}"
        )
        for kind in ("search", "health"):
            r = res[kind]
            rows.append(
                [store, kind, r["requests"], r["errors"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["rps"]]
            )
            target = "< 50 ms" if kind == "health" else ""
            record.figure(f"{store} /{kind} p95, {res['clients']} clients", r["p95_ms"], "ms", target=target)
            record.figure(f"{store} /{kind} errors", r["errors"], "", requests=r["requests"])
            if r["first_errors"]:
                print(f"  {kind} errors: {r['first_errors']}")
    print("| store | endpoint | requests | errors | p50 ms | p95 ms | p99 ms | req/s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")
    record.table(
        "load", ["store", "endpoint", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s"], rows
    )
    record.write(args.json_out)
    print(
        json.dumps(
            {k: {kk: v[kk] for kk in ("ingestion_runs", "articles_added")} for k, v in results.items()}
        )
    )


if __name__ == "__main__":
    main()
