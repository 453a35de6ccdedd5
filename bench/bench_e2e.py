"""End-to-end benchmark: one ``newswire run --once`` over a corpus served on loopback (issue 15).

Builds a corpus of ``--articles`` N articles (default 600) from the extraction benchmark's real
news pages (read from ``../shared/eval/extraction`` at run time, never copied into the repo):
page ``i % P`` is published by outlet ``i // P``. Outlet 0 publishes the page as it is; every
other outlet publishes a syndicated copy edited the way syndication edits (a credit line added
after the first paragraph, a later publication time). Each outlet is its own loopback host
(127.0.0.{outlet+1}) serving summary-only RSS feeds (``--feed-size`` items each) and the article
pages. Pages whose bytes are valid UTF-8 are served with ``charset=utf-8`` except one in
``--no-charset-every``; every other page is served as ``text/html`` without a charset, as many
real servers do, so the pipeline's charset detection runs on them.

Runs ``python -m pipeline run --once`` as a child process into a fresh SQLite store (and into Elasticsearch
with ``--es``: a server started for the run by :class:`pipeline.devtools.esserver.LocalElasticsearch`, whose
CPU is counted too; or ``--es-url URL``: a running server, its CPU not counted; an index prefix unique to
the run either way; a started server is first warmed up with ``--es-warmup`` throw-away articles, as
``bench_es`` does: its first minute of JIT compilation doubled the server CPU of the first run measured) and
prints: articles/s by wall clock, articles per CPU-second (the child's user + system
time, plus the server's with ``--es``; the loopback feed servers run in this process and are not counted),
the child's peak RSS (its own, from ``os.wait4``), store bytes per article (SQLite: the database file and
its WAL), and checks the stored count equals N (each copy is stored; copies join their original's cluster:
the number of clusters is printed next to the number of distinct pages).

Measured against what users would write instead, in the same run, on the same corpus:

- **the plain script** (:mod:`bench.plain_script`: ``httpx.get`` + ``feedparser`` + ``trafilatura.extract``
  + spaCy ``nlp(text)`` with ``spacy.load(model)``, one ``executemany`` into SQLite or one
  ``helpers.bulk`` into an Elasticsearch index; no dedupe, no gazetteer), run as a child over the same feed
  URLs into each store and measured exactly as ``newswire run`` is (CPU, wall, peak RSS, the server's CPU
  with ``--es``): a row ``plain script, <store>`` and the ratio ``newswire / plain script`` in articles per
  CPU-second. Its model is the pipeline's (``NEWSWIRE_SPACY_MODEL`` or its default, else its installed
  alias); with ``--gazetteer-only`` it runs without spaCy (extraction and insert only), which is printed.
- **news-please extraction**: ``NewsPlease.from_html(html, url=..., fetch_images=False)`` over the corpus's
  distinct pages against our clean stage's extraction (``decode_page`` + ``extract_article``, as
  ``bench/bench_extract.py`` runs it), each in a child (:mod:`bench.extract_cpu`, CPU from
  ``time.process_time()``, imports excluded): pages per CPU-second and their ratio. news-please runs in its
  own interpreter, ``--news-please-python PATH`` (default ``/work/np-venv/bin/python`` if it exists; else
  skipped with a line saying how to enable it): it is not a dependency of the project. Install
  ``tinysegmenter`` next to it (newspaper4k's Japanese tokenizer), or the corpus's Japanese page fails.

Writes ``bench/out/bench_e2e.json`` (``python -m bench.report`` puts it in docs/benchmarks.md).

    .venv/bin/python -m bench.bench_e2e [--articles 600] [--gazetteer-only] [--es | --es-url URL]
        [--news-please-python PATH] [--no-plain]

``--full-content``: the feeds carry every article (the reference body as HTML paragraphs) in
``content:encoded`` and the feeds file says ``full_text: false``: no page is fetched or extracted (the
plain script, which fetches pages, is not run).

Per-stage CPU shares: ``--profile`` (cProfile of the run child).
"""

from __future__ import annotations

import argparse
import gzip
import html
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from bench.figures import BenchRecord, add_json_out
from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_EVAL = ROOT.parent / "shared" / "eval" / "extraction"
DEFAULT_NEWS_PLEASE = Path("/work/np-venv/bin/python")


def load_pages(eval_dir: Path) -> list[tuple[str, bytes, str]]:
    """(page id, raw page bytes, reference body) of each benchmark page, in id order."""
    truth = json.loads((eval_dir / "ground-truth.json").read_text(encoding="utf-8"))
    return [
        (
            pid,
            gzip.decompress((eval_dir / "pages" / f"{pid}.html.gz").read_bytes()),
            truth[pid]["articleBody"],
        )
        for pid in sorted(truth)
    ]


def syndicated(body: bytes, outlet: int) -> bytes:
    """An edited copy: a credit paragraph after the first paragraph of the page body."""
    credit = f"<p>Reporting for Outlet {outlet} was contributed by its regional desk.</p>".encode()
    start = body.lower().find(b"<body")
    end = body.lower().find(b"</p>", max(start, 0))
    if end < 0:
        return body + credit
    return body[: end + 4] + credit + body[end + 4 :]


def is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def rss(title: str, items: list[dict[str, str]]) -> bytes:
    parts = [
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        f'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>{html.escape(title)}</title>'
    ]
    for it in items:
        content = (
            f"<content:encoded>{html.escape(it['content'])}</content:encoded>" if it.get("content") else ""
        )
        parts.append(
            f"<item><title>{html.escape(it['title'])}</title><link>{html.escape(it['link'])}</link>"
            f'<guid isPermaLink="false">{html.escape(it["guid"])}</guid><pubDate>{it["date"]}</pubDate>'
            f"<description>{html.escape(it['summary'])}</description>{content}</item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def full_content(reference: str, outlet: int) -> str:
    """The article as a full-content feed carries it: the reference body as HTML paragraphs (syndicated
    copies with the credit paragraph after the first, as :func:`syndicated` edits the page)."""
    paragraphs = [html.escape(p) for p in reference.split("\n") if p.strip()]
    if outlet:
        paragraphs.insert(1, f"Reporting for Outlet {outlet} was contributed by its regional desk.")
    return "".join(f"<p>{p}</p>" for p in paragraphs)


def build_corpus(
    pages: list[tuple[str, bytes, str]],
    n: int,
    feed_size: int,
    no_charset_every: int,
    with_content: bool = False,
) -> tuple[list[FeedServer], list[str], dict[str, int]]:
    """Start one loopback server per outlet, register feeds and pages; return (servers, feed URLs, stats).
    ``with_content``: every item carries the article in ``content:encoded`` (a full-content feed)."""
    outlets = (n + len(pages) - 1) // len(pages)
    servers = [FeedServer(host=f"127.0.0.{k + 1}").start() for k in range(outlets)]
    base_time = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    feed_urls: list[str] = []
    stats = {"outlets": outlets, "pages_without_charset": 0, "distinct_pages": min(n, len(pages))}
    for outlet, server in enumerate(servers):
        items: list[dict[str, str]] = []
        for k, (pid, body, reference) in enumerate(pages):
            i = outlet * len(pages) + k
            if i >= n:
                break
            page = body if outlet == 0 else syndicated(body, outlet)
            if is_utf8(page) and i % no_charset_every:
                ctype = "text/html; charset=utf-8"
            else:
                ctype = "text/html"
                stats["pages_without_charset"] += 1
            link = server.add(f"/news/{pid[:16]}.html", page, content_type=ctype)
            words = reference.split()
            items.append(
                {
                    "title": " ".join(words[:9]) or pid[:16],
                    "link": link,
                    "guid": f"outlet{outlet}-{pid}",
                    "date": format_datetime(base_time + timedelta(minutes=k, hours=outlet)),
                    "summary": " ".join(words[:30])[:300],
                    "content": full_content(reference, outlet) if with_content else "",
                }
            )
        server.add("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
        for f, start in enumerate(range(0, len(items), feed_size)):
            feed_urls.append(
                server.add(
                    f"/feed{f}.xml", rss(f"Outlet {outlet} feed {f}", items[start : start + feed_size])
                )
            )
    return servers, feed_urls, stats


def run_once(
    feeds_file: Path,
    store: str,
    gazetteer_only: bool,
    env_extra: dict[str, str],
    profile: Path | None = None,
) -> dict[str, Any]:
    """One ``newswire run --once`` child: wall, CPU (user+sys), peak RSS and its JSON report (and, with
    ``profile``, the child's cProfile statistics written there: ``python -m pstats`` reads them)."""
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "NEWSWIRE_ALLOW_HOSTS": '["127.0.0.0/8"]',
            "NEWSWIRE_CACHE_DIR": env.get(
                "NEWSWIRE_CACHE_DIR", str(Path(tempfile.gettempdir()) / "newswire-bench-cache")
            ),
            **env_extra,
        }
    )
    if gazetteer_only:
        env["NEWSWIRE_SPACY_MODEL"] = ""
    cmd = [
        sys.executable,
        *(["-m", "cProfile", "-o", str(profile)] if profile else []),
        "-m",
        "pipeline",
        "run",
        "--once",
        "--feeds",
        str(feeds_file),
        "--store",
        store,
        "--json",
    ]
    child = measure_child(cmd, env)
    stdout, stderr = child.pop("stdout"), child.pop("stderr")
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        print(stdout[-2000:], stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"run failed with exit code {child['exit_code']}") from None
    errors = [e for f in report["feeds"] for e in f["errors"]]
    return {**child, "new": report["new"], "errors": errors[:20], "n_errors": len(errors)}


def measure_child(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd`` to its end: its exit code, wall, CPU (its user + system time, its waited-for children's,
    and that of descendants it does not wait for, sampled from /proc), its peak RSS and its output.

    The child's own rusage comes from ``os.wait4``, so each child's peak RSS is its own (not the largest of
    every child this process has run, as ``RUSAGE_CHILDREN`` would give). Linux keeps ``ru_maxrss`` across
    fork and exec, so a child's figure is at least this process's size when it started: keep it small."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        helpers: dict[int, tuple[float, float]] = {}  # worker processes: (CPU s last seen, peak RSS MB)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            for hpid, (cpu, rss) in descendants_usage(child.pid).items():
                helpers[hpid] = (cpu, max(rss, helpers.get(hpid, (0.0, 0.0))[1]))
            time.sleep(0.2)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return {
        "exit_code": child.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime + sum(cpu for cpu, _ in helpers.values()),
        "worker_processes": len(helpers),
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "workers_rss_mb": sum(rss for _, rss in helpers.values()),
        "stdout": stdout,
        "stderr": stderr,
    }


def plain_spacy_model(gazetteer_only: bool) -> str:
    """The spaCy package the pipeline loads (``NEWSWIRE_SPACY_MODEL`` or its default, else its known alias:
    the one installed), for the plain script; '' with ``--gazetteer-only`` or when the pipeline's is ''."""
    if gazetteer_only:
        return ""
    from pipeline.settings import get_settings
    from pipeline.tag.ner import MODEL_ALIASES

    name = get_settings().spacy_model
    for candidate in (name, MODEL_ALIASES.get(name)):
        if candidate and importlib.util.find_spec(candidate) is not None:
            return candidate
    return name  # not installed: the plain script fails to load it, as a user's would


def run_plain(
    feed_urls: list[str], target: list[str], spacy_model: str, env_extra: dict[str, str]
) -> dict[str, Any]:
    """One :mod:`bench.plain_script` child over the same feeds, measured as :func:`run_once` measures
    ``newswire run`` (``target``: ``--db PATH`` or ``--es-url URL --index NAME``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    cmd = [
        sys.executable,
        "-m",
        "bench.plain_script",
        "--feeds",
        *feed_urls,
        *target,
        "--spacy-model",
        spacy_model,
    ]
    child = measure_child(cmd, env)
    stdout, stderr = child.pop("stdout"), child.pop("stderr")
    try:
        summary = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        summary = {}
    if child["exit_code"] or not summary:
        print(stdout[-2000:], stderr[-4000:], sep="\n", file=sys.stderr)
    last = stderr.strip().splitlines()[-1:]
    errors = (last or [f"exit code {child['exit_code']}"]) if child["exit_code"] else []
    return {**child, "new": summary.get("entries", 0), "errors": errors, "n_errors": len(errors), **summary}


def compare_extraction(
    eval_dir: Path, distinct: int, news_please_python: str, tmp: Path
) -> dict[str, Any] | None:
    """Pages per CPU-second of our clean stage's extraction and of news-please's ``from_html`` over the
    corpus's distinct pages, each in its own child (:mod:`bench.extract_cpu`); None without news-please."""
    if not news_please_python or not Path(news_please_python).exists():
        print(
            "news-please: skipped (no interpreter; enable with `python3.11 -m venv /work/np-venv && "
            "/work/np-venv/bin/pip install news-please tinysegmenter`, or --news-please-python PATH)"
        )
        return None
    truth = json.loads((eval_dir / "ground-truth.json").read_text(encoding="utf-8"))
    listing = tmp / "pages.json"
    listing.write_text(
        json.dumps(
            [
                {"path": str(eval_dir / "pages" / f"{pid}.html.gz"), "url": truth[pid]["url"]}
                for pid in sorted(truth)[:distinct]
            ]
        ),
        encoding="utf-8",
    )
    script = str(ROOT / "bench" / "extract_cpu.py")
    out: dict[str, Any] = {}
    for name, python in (("newswire", sys.executable), ("news-please", news_please_python)):
        env = {**os.environ, "PYTHONPATH": str(ROOT) if name == "newswire" else ""}
        done = subprocess.run(
            [python, script, "--pages", str(listing), "--extractor", name],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            result = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            print(
                f"{name}: extraction child failed ({done.returncode}):\n{done.stderr[-3000:]}",
                file=sys.stderr,
            )
            return None
        result["pages_per_cpu_s"] = result["pages"] / result["cpu_s"] if result["cpu_s"] else 0.0
        out[name] = result
    out["ratio"] = out["newswire"]["pages_per_cpu_s"] / max(out["news-please"]["pages_per_cpu_s"], 1e-9)
    return out


def _proc_table() -> tuple[dict[int, int], dict[int, tuple[float, float]]]:
    """Every live process's parent pid and (user + system CPU seconds, RSS MB), from /proc."""
    tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    parent: dict[int, int] = {}
    usage: dict[int, tuple[float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        usage[pid] = ((int(fields[11]) + int(fields[12])) / tick, int(fields[21]) * page / 2**20)
    return parent, usage


def descendants_usage(root_pid: int) -> dict[int, tuple[float, float]]:
    """(CPU seconds, RSS MB) of every live descendant of ``root_pid``, not ``root_pid`` itself (worker
    processes: a forkserver and its workers are not waited for by the run, so its rusage misses them)."""
    parent, usage = _proc_table()
    out = {}
    for pid in usage:
        up = parent.get(pid)
        while up and up != root_pid:
            up = parent.get(up)
        if up == root_pid:
            out[pid] = usage[pid]
    return out


def tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a live process and all its descendants (from /proc)."""
    tree = descendants_usage(root_pid)
    own = _proc_table()[1].get(root_pid, (0.0, 0.0))[0]
    return own + sum(cpu for cpu, _ in tree.values())


def sqlite_counts(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        count = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        clusters = conn.execute("SELECT count(DISTINCT cluster) FROM articles").fetchone()[0]
    return int(count), int(clusters)


def plain_count(path: Path) -> int:
    """Rows the plain script stored (0 when it stored nothing)."""
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        count = int(conn.execute("SELECT count(*) FROM articles").fetchone()[0])
    conn.close()
    return count


def es_counts(url: str, prefix: str, clusters: bool = True) -> tuple[int, int | None, int, dict[str, int]]:
    """Documents, distinct clusters (None with ``clusters=False``), store bytes of an index or alias right
    after the run, and ``{"deleted", "merged_bytes"}``: the deleted copies its segments still hold (every
    update rewrites a document; Lucene reclaims the old copy when it merges that segment, which an idle index
    never does) and the store bytes once merged (``_forcemerge`` expunging deletes, then to one segment)."""
    from elasticsearch import Elasticsearch

    client = Elasticsearch(url)
    client.indices.refresh(index=prefix)
    count = int(client.count(index=prefix)["count"])
    found: int | None = None
    if clusters:
        aggs = client.search(index=prefix, size=0, aggs={"c": {"cardinality": {"field": "cluster_id"}}})
        found = int(aggs["aggregations"]["c"]["value"])
    stats = client.indices.stats(index=prefix, metric=["store", "docs"])["_all"]["primaries"]
    # Soft-deleted copies stay until the shard's history retention lease moves past them (renewed every
    # ~30 s): merge again until none is left (at most 3 minutes). The merged size is the sum of the live
    # segments (files of merged-away segments can stay a while for readers still open, e.g. a scroll).
    deadline = time.monotonic() + 180
    while True:
        client.options(request_timeout=600).indices.forcemerge(index=prefix, max_num_segments=1)
        client.indices.flush(index=prefix, force=True)
        client.indices.refresh(index=prefix)
        listed: Any = client.cat.segments(index=prefix, format="json", bytes="b").body
        segments: list[dict[str, Any]] = list(listed)
        deleted = sum(int(s["docs.deleted"]) for s in segments)
        if not deleted or time.monotonic() > deadline:
            break
        time.sleep(5)
    merged = sum(int(s["size"]) for s in segments)
    after = {"deleted": int(stats["docs"]["deleted"]), "merged_bytes": int(merged)}
    return count, found, int(stats["store"]["size_in_bytes"]), after


def add_counts(run: dict[str, Any], count: int, clusters: int | None, size: int, expected: int) -> None:
    """The stored count, its check against N, and the per-article figures of one measured run."""
    run.update(
        {
            "stored": count,
            "clusters": clusters,
            "count_ok": count == expected,
            "articles_per_s_wall": count / run["wall_s"],
            "articles_per_cpu_s": count / run["cpu_s"] if run["cpu_s"] else 0.0,
            "store_bytes": size,
            "store_kb_per_article": size / 1024 / max(count, 1),
        }
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--articles", type=int, default=600, help="corpus size N (issue 15 asks >= 2000)")
    parser.add_argument("--feed-size", type=int, default=30, help="items per feed")
    parser.add_argument(
        "--no-charset-every", type=int, default=4, help="also serve every k-th UTF-8 page without charset"
    )
    parser.add_argument(
        "--gazetteer-only", action="store_true", help="NEWSWIRE_SPACY_MODEL='' (no spaCy NER)"
    )
    parser.add_argument(
        "--es", action="store_true", help="also run into a local Elasticsearch started for the run"
    )
    parser.add_argument(
        "--es-url", default="", help="also run into this running Elasticsearch (fresh index prefix)"
    )
    parser.add_argument("--label", default="", help="a name for this run in the JSON output")
    parser.add_argument(
        "--profile", type=Path, help="write each run's cProfile statistics to PROFILE.<store> (slower run)"
    )
    parser.add_argument(
        "--news-please-python",
        default=str(DEFAULT_NEWS_PLEASE) if DEFAULT_NEWS_PLEASE.exists() else "",
        help=f"interpreter with news-please installed (default {DEFAULT_NEWS_PLEASE} if it exists; '' skips)",
    )
    parser.add_argument("--no-plain", action="store_true", help="do not run the plain script")
    parser.add_argument(
        "--es-warmup",
        type=int,
        default=20_000,
        help="with --es: articles indexed into a throw-away index first, as bench_es does (0: none)",
    )
    parser.add_argument(
        "--full-content",
        action="store_true",
        help="feeds carry each article in content:encoded (no page fetched; no plain script)",
    )
    parser.add_argument(
        "--workers",
        default=None,
        help="NEWSWIRE_WORKERS for the run (default: the pipeline's, 1 = a clean worker beside the run)",
    )
    add_json_out(parser, "bench_e2e")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    spacy_model = plain_spacy_model(args.gazetteer_only)

    pages = load_pages(args.eval_dir)
    servers, feed_urls, corpus = build_corpus(
        pages, args.articles, args.feed_size, args.no_charset_every, args.full_content
    )
    if args.full_content:
        args.no_plain = True  # the plain script fetches pages: it has no full-content counterpart here
    results: dict[str, Any] = {
        "label": args.label,
        "articles": args.articles,
        "feeds": len(feed_urls),
        "spacy": not args.gazetteer_only,
        "full_content": args.full_content,
        "workers": args.workers if args.workers is not None else os.environ.get("NEWSWIRE_WORKERS", "1"),
        "plain_spacy_model": spacy_model,
        **corpus,
        "runs": {},
    }
    es_server = None
    try:
        if args.es and not args.es_url:
            from pipeline.devtools.esserver import LocalElasticsearch

            es_server = LocalElasticsearch().start()
            args.es_url = es_server.url
            if args.es_warmup:  # a production server is long-running: JIT compilation is not the run's cost
                from bench.bench_es import warm_up

                rate = warm_up(args.es_url, args.es_warmup)
                print(
                    f"Elasticsearch warmed up: {args.es_warmup:,} throw-away articles at {rate:,.0f} docs/s"
                )
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
            feeds_file = Path(tmp) / "feeds.yaml"
            full_text = "false" if args.full_content else "true"
            feeds_file.write_text(
                "feeds:\n"
                + "".join(
                    f"  - name: bench {k}\n    url: {u}\n    full_text: {full_text}\n"
                    for k, u in enumerate(feed_urls)
                ),
                encoding="utf-8",
            )
            targets = [("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
            if args.es_url:
                targets.append(("elasticsearch", args.es_url))
            for name, store in targets:
                prefix = f"bench{uuid.uuid4().hex[:8]}"
                server_pid = (
                    es_server._executor.process.pid if es_server and name == "elasticsearch" else None
                )
                server_before = tree_cpu_seconds(server_pid) if server_pid else 0.0
                run = run_once(
                    feeds_file,
                    store,
                    args.gazetteer_only,
                    {
                        "NEWSWIRE_INDEX_PREFIX": prefix,
                        **({"NEWSWIRE_WORKERS": args.workers} if args.workers is not None else {}),
                    },
                    args.profile.with_suffix(f".{name}") if args.profile else None,
                )
                run["server_cpu_s"] = tree_cpu_seconds(server_pid) - server_before if server_pid else None
                if run["server_cpu_s"] is not None:
                    run["cpu_s"] += run["server_cpu_s"]
                clusters: int | None
                if name == "sqlite":
                    db = Path(tmp) / "bench.db"
                    count, clusters = sqlite_counts(db)
                    size = sum(p.stat().st_size for p in Path(tmp).glob("bench.db*"))
                else:
                    count, clusters, size, merge = es_counts(args.es_url, prefix)
                    run["store_kb_per_article_merged"] = merge["merged_bytes"] / 1024 / max(count, 1)
                    run["deleted_copies"] = merge["deleted"]
                add_counts(run, count, clusters, size, args.articles)
                results["runs"][name] = run
                if args.no_plain:
                    continue
                results["runs"][f"plain script, {name}"] = measure_plain(
                    name, Path(tmp), args, feed_urls, spacy_model, prefix, server_pid
                )
            if not args.full_content:  # no page is extracted in that mode
                results["extraction"] = compare_extraction(
                    args.eval_dir, corpus["distinct_pages"], args.news_please_python, Path(tmp)
                )
    finally:
        for server in servers:
            server.stop()
        if es_server is not None:
            es_server.stop()

    print(
        f"corpus: {args.articles} articles ({corpus['distinct_pages']} distinct pages x {corpus['outlets']} "
        f"outlets), "
        + (
            f"{len(feed_urls)} full-content feeds (no page fetched); "
            if args.full_content
            else f"{len(feed_urls)} summary-only feeds, {corpus['pages_without_charset']} pages served "
            f"without a charset; "
        )
        + f"NER: {'spaCy + gazetteer' if not args.gazetteer_only else 'gazetteer only'}"
    )
    if not args.no_plain:
        print(plain_description(spacy_model))
    report(args, corpus, results)
    return 0 if all(r["count_ok"] for r in results["runs"].values()) else 1


def measure_plain(
    name: str,
    tmp: Path,
    args: argparse.Namespace,
    feed_urls: list[str],
    spacy_model: str,
    prefix: str,
    server_pid: int | None,
) -> dict[str, Any]:
    """The plain script into the store ``name`` (``sqlite``: a fresh file in ``tmp``; ``elasticsearch``: a
    fresh index ``plain-<prefix>``), measured and counted as the ``newswire run`` into that store is."""
    plain_db = tmp / "plain.db"
    index = f"plain-{prefix}"
    target = ["--db", str(plain_db)] if name == "sqlite" else ["--es-url", args.es_url, "--index", index]
    server_before = tree_cpu_seconds(server_pid) if server_pid else 0.0
    plain = run_plain(feed_urls, target, spacy_model, {})
    plain["server_cpu_s"] = tree_cpu_seconds(server_pid) - server_before if server_pid else None
    if plain["server_cpu_s"] is not None:
        plain["cpu_s"] += plain["server_cpu_s"]
    if name == "sqlite":
        count = plain_count(plain_db)
        size = sum(p.stat().st_size for p in tmp.glob("plain.db*"))
    else:
        count, _, size, merge = es_counts(args.es_url, index, clusters=False)
        plain["store_kb_per_article_merged"] = merge["merged_bytes"] / 1024 / max(count, 1)
        plain["deleted_copies"] = merge["deleted"]
    add_counts(plain, count, None, size, args.articles)
    return plain


def plain_description(spacy_model: str) -> str:
    """What the plain script rows ran (printed, and noted in the JSON record)."""
    ner = (
        f"spacy.load({spacy_model!r}), its default pipes"
        if spacy_model
        else "no spaCy (--gazetteer-only: extraction and insert only, paired with newswire's gazetteer-only "
        "run)"
    )
    return (
        "plain script (bench/plain_script.py): httpx.get + feedparser + trafilatura.extract, "
        f"NER: {ner}; one executemany / helpers.bulk; no dedupe, no gazetteer"
    )


def ratios(results: dict[str, Any]) -> list[tuple[str, float]]:
    """(store, newswire art/CPU-s / plain script art/CPU-s) of each store both ran into."""
    runs = results["runs"]
    return [
        (name, runs[name]["articles_per_cpu_s"] / runs[f"plain script, {name}"]["articles_per_cpu_s"])
        for name in runs
        if f"plain script, {name}" in runs and runs[f"plain script, {name}"]["articles_per_cpu_s"]
    ]


def merged_cell(run: dict[str, Any]) -> str:
    """Elasticsearch's deleted copies right after the run, and its KB per article once merged."""
    if "deleted_copies" not in run:
        return "–"
    return f"{run['deleted_copies']}, {run['store_kb_per_article_merged']:.1f}"


def report(args: argparse.Namespace, corpus: dict[str, Any], results: dict[str, Any]) -> None:
    """Print the run table and write it (with the raw results) to the JSON figures file."""
    columns = [
        "store",
        "stored / expected",
        "clusters / pages",
        "wall s",
        "CPU s",
        "art/s wall",
        "art/CPU-s",
        "peak RSS MB",
        "store KB/article",
        "feed errors",
        "ES: deleted copies, KB/article merged",
    ]
    rows = []
    for name, r in results["runs"].items():
        server_cpu = f" (server {r['server_cpu_s']:.1f})" if r["server_cpu_s"] else ""
        workers = f" + workers {r['workers_rss_mb']:.0f}" if r["worker_processes"] else ""
        rows.append(
            [
                name,
                f"{r['stored']} / {args.articles}",
                f"{r['clusters']} / {corpus['distinct_pages']}" if r["clusters"] is not None else "–",
                round(r["wall_s"], 1),
                f"{r['cpu_s']:.1f}{server_cpu}",
                round(r["articles_per_s_wall"], 1),
                round(r["articles_per_cpu_s"], 1),
                f"{r['peak_rss_mb']:.0f}{workers}",
                round(r["store_kb_per_article"], 1),
                r["n_errors"],
                merged_cell(r),
            ]
        )
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for row, r in zip(rows, results["runs"].values(), strict=True):
        print("| " + " | ".join(str(c) for c in row) + " |")
        for e in r["errors"][:5]:
            print(f"  error: {e}")
    for name, ratio in ratios(results):
        print(f"newswire / plain script ({name}), articles per CPU-second: {ratio:.2f}")
    extraction = results.get("extraction")
    ext_columns = ["extractor", "pages", "errors", "CPU s", "pages per CPU-s"]
    ext_rows = []
    if extraction:
        for name, label in (("newswire", "newswire clean (extract_article)"), ("news-please", "news-please")):
            e = extraction[name]
            for message in e.get("error_messages", []):
                print(f"  {label}: error: {message}")
            ext_rows.append(
                [label, e["pages"], e["errors"], round(e["cpu_s"], 2), round(e["pages_per_cpu_s"], 1)]
            )
        print(
            f"extraction of the {corpus['distinct_pages']} distinct pages, one child each "
            "(bench/extract_cpu.py):"
        )
        print("| " + " | ".join(ext_columns) + " |")
        print("|" + " --- |" * len(ext_columns))
        for row in ext_rows:
            print("| " + " | ".join(str(c) for c in row) + " |")
        print(f"newswire clean / news-please, pages per CPU-second: {extraction['ratio']:.2f}")
    record = BenchRecord("bench_e2e")
    title = (
        f"{args.articles} articles, NER: {'gazetteer only' if args.gazetteer_only else 'spaCy + gazetteer'}"
    )
    if args.label:
        title += f" ({args.label})"
    record.table(title, columns, rows)
    for name, r in results["runs"].items():
        record.figure(f"{name}: articles per second (wall)", round(r["articles_per_s_wall"], 1), "art/s")
        record.figure(f"{name}: articles per CPU-second", round(r["articles_per_cpu_s"], 1), "art/CPU-s")
        record.figure(f"{name}: store per article", round(r["store_kb_per_article"], 1), "KB")
        if "store_kb_per_article_merged" in r:
            merged = round(r["store_kb_per_article_merged"], 1)
            record.figure(f"{name}: store per article, merged", merged, "KB")
    for name, ratio in ratios(results):
        record.figure(f"newswire / plain script ({name}), articles per CPU-second", round(ratio, 2), "x")
    if any(name.startswith("plain script") for name in results["runs"]):
        record.note(plain_description(results["plain_spacy_model"]))
    if extraction:
        record.table(
            f"extraction, {corpus['distinct_pages']} distinct pages: newswire clean vs news-please "
            "(NewsPlease.from_html, fetch_images=False)",
            ext_columns,
            ext_rows,
        )
        record.figure(
            "newswire clean / news-please, pages per CPU-second", round(extraction["ratio"], 2), "x"
        )
    else:
        record.note("news-please: not measured (no --news-please-python interpreter)")
    record.data["results"] = results
    record.write(args.json_out)


if __name__ == "__main__":
    raise SystemExit(main())
