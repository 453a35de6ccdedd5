"""Benchmark: fetch N local feeds over loopback, a fraction of them misbehaving on purpose.

Prints feeds/s, entries/s (entries counted with feedparser as results stream in), the
status breakdown, the slowest single feed and the total time, to show that the total is
bounded by the slowest single timeout rather than by the sum of the bad feeds' delays.

The servers (tests/support/feedserver.py, real sockets) run in a child process so that the
client's figures are not skewed by serving threads in the same interpreter; feeds are
spread over several loopback addresses (127.0.1.x) so the per-host limit behaves as it
would across real hosts.

    .venv/bin/python -m bench.bench_fetch [--feeds 500] [--bad 0.2] [--hosts 50]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import time
from collections import Counter
from multiprocessing.connection import Connection

import feedparser

from bench.figures import BenchRecord, add_json_out
from pipeline.fetch import FetchOptions, fetch_feeds
from pipeline.settings import Settings

#: misbehaviours of the bad feeds, round-robin (fault names: tests/support/feedserver.FAULTS, or local)
BAD_KINDS = [
    "hang",
    "drip",
    "reset",
    "reset_midway",
    "lying_length",
    "gzip_bomb",
    "brotli_bomb",
    "huge",
    "status500",
    "status503",
    "status429",
    "loop",
    "gone",
    "slow",
    "truncated",
    "html",
    "charset",
]


def serve(conn: Connection, n_feeds: int, bad: float, hosts: int, entries: int, seed: int) -> None:
    from tests.support.feedserver import FeedServer, brotli_bomb, gzip_bomb, rss

    gzip_bomb(), brotli_bomb()  # build the payloads before the clock starts
    servers = [FeedServer(f"127.0.1.{i + 1}").start() for i in range(hosts)]
    rng = random.Random(seed)
    n_bad = int(n_feeds * bad)
    kinds = ["good"] * (n_feeds - n_bad) + [BAD_KINDS[i % len(BAD_KINDS)] for i in range(n_bad)]
    rng.shuffle(kinds)
    plan: list[tuple[str, str]] = []
    for i, kind in enumerate(kinds):
        srv = servers[i % hosts]
        path = f"/feed{i}.xml"
        body = rss(f"feed{i}", entries, base=f"http://news{i}.example")
        if kind == "good":
            url = srv.add(path, body, etag=f'"{i}"')
        elif kind == "status500":
            url = srv.add(path, b"", 500)
        elif kind == "status503":
            url = srv.add(path, b"", 503, {"Retry-After": "1"})
        elif kind == "status429":
            url = srv.add(path, b"", 429, {"Retry-After": "600"})
        elif kind == "loop":
            srv.add_redirect(path + "x", path)
            url = srv.add_redirect(path, path + "x")
        elif kind == "gone":
            url = srv.add(path, b"", 410)
        elif kind == "slow":
            url = srv.add(path, body, delay=1.0)
        elif kind == "truncated":
            url = srv.add(path, body[: len(body) // 2])
        elif kind == "html":
            url = srv.add(path, b"<html><body><p>Not a feed</p></body></html>", content_type="text/html")
        elif kind == "charset":
            url = srv.add(path, body.replace(b'encoding="utf-8"', b'encoding="utf-16"'))
        else:
            url = srv.add_fault(path, kind)
        plan.append((url, kind))
    conn.send(plan)
    conn.recv()  # wait until the client is done
    for srv in servers:
        srv.stop()


def run(plan: list[tuple[str, str]], settings: Settings, parse: bool) -> dict[str, float | int | str]:
    kinds = dict(plan)
    statuses: Counter[str] = Counter()
    entries = 0
    bozo_no_entries = 0
    slowest = 0.0
    last_good = 0.0
    t0 = time.monotonic()
    cpu0 = time.process_time()
    for r in fetch_feeds([(u, None) for u, _ in plan], settings, FetchOptions()):
        statuses[r.status] += 1
        slowest = max(slowest, r.elapsed)
        if kinds[r.url] == "good":
            last_good = time.monotonic() - t0
        if parse and r.status == "ok":
            parsed = feedparser.parse(r.body)
            entries += len(parsed.entries)
            if not parsed.entries:
                bozo_no_entries += 1
    total = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    return {
        "feeds": len(plan),
        "total_s": round(total, 2),
        "feeds_per_s": round(len(plan) / total, 1),
        "entries": entries,
        "entries_per_s": round(entries / total, 1) if parse else "-",
        "slowest_feed_s": round(slowest, 2),
        "client_cpu_s": round(cpu, 2),
        "last_good_feed_s": round(last_good, 2),
        "ok": statuses["ok"],
        "error": statuses["error"],
        "gone": statuses["gone"],
        "ok_without_entries": bozo_no_entries if parse else "-",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--bad", type=float, default=0.2, help="fraction of misbehaving feeds")
    ap.add_argument("--hosts", type=int, default=50, help="loopback hosts the feeds are spread over")
    ap.add_argument("--entries", type=int, default=20, help="entries per good feed")
    ap.add_argument("--total-timeout", type=float, default=5.0)
    ap.add_argument("--read-timeout", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=7)
    add_json_out(ap, "bench_fetch")
    args = ap.parse_args()
    record = BenchRecord("bench_fetch")

    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(
        target=serve, args=(child, args.feeds, args.bad, args.hosts, args.entries, args.seed), daemon=True
    )
    proc.start()
    try:
        plan: list[tuple[str, str]] = parent.recv()
        print(
            f"{len(plan)} feeds on {args.hosts} loopback hosts, {sum(k != 'good' for _, k in plan)} "
            f"misbehaving "
            f"({', '.join(sorted(set(k for _, k in plan) - {'good'}))})"
        )
        print(
            f"timeouts: connect 2s, read {args.read_timeout:g}s, total {args.total_timeout:g}s; max_retries "
            f"2\n"
        )
        rows = []
        for label, conc, per_host, parse in [
            ("16/2 (defaults), fetch only", 16, 2, False),
            ("64/4, fetch only", 64, 4, False),
            ("16/2 (defaults), fetch+parse", 16, 2, True),
            ("64/4, fetch+parse", 64, 4, True),
        ]:
            settings = Settings(
                allow_hosts=["127.0.0.0/8"],
                concurrency=conc,
                per_host_concurrency=per_host,
                connect_timeout=2.0,
                read_timeout=args.read_timeout,
                total_timeout=args.total_timeout,
                max_retries=2,
            )
            row = run(plan, settings, parse)
            rows.append((label, row))
        keys = list(rows[0][1])
        print("| run | " + " | ".join(keys) + " |")
        print("|---" * (len(keys) + 1) + "|")
        for label, row in rows:
            print(f"| {label} | " + " | ".join(str(row[k]) for k in keys) + " |")
        record.table(
            f"{len(plan)} feeds on {args.hosts} loopback hosts, {sum(k != 'good' for _, k in plan)} "
            f"misbehaving; "
            f"timeouts connect 2 s, read {args.read_timeout:g} s, total {args.total_timeout:g} s; 2 retries",
            ["run", *keys],
            [[label, *(row[k] for k in keys)] for label, row in rows],
        )
        default = rows[0][1]
        record.figure(
            "feeds/s, defaults 16/2, fetch only",
            default["feeds_per_s"],
            "feeds/s",
            target="total bounded by the slowest timeout",
            total_s=default["total_s"],
            slowest_feed_s=default["slowest_feed_s"],
        )
        record.write(args.json_out)
    finally:
        parent.send("done")
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()


if __name__ == "__main__":
    main()
