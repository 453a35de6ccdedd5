"""Benchmark: main-text extraction quality and speed on ../shared/eval/extraction.

Scores each extractor (trafilatura with favor_precision, the same with ``fast=True`` i.e. without
its fallback comparison, trafilatura with favor_recall, readability-lxml, our BeautifulSoup rules) with the
scrapinghub article-extraction-benchmark metric: word 4-grams (words = runs of ``\\w``) of the
extracted body against ``articleBody``, counted as multisets; precision, recall and F1 per page,
each page weighted equally (F1 reported as the mean of per-page F1, and as the F1 of mean P/R
the way the source benchmark's table does). Also reports ``accuracy`` (identical word sequence)
and pages/s. The ``extract_article`` row scores what the pipeline really returns (the default
extractor followed by our repeated-headline rules, plus the metadata/date/canonical work, so
its pages/s is the product's speed); ``extract_article:NAME`` scores that path with extractor NAME.
``--fields`` sets what ``extract_article`` looks for (default all; the clean stage asks only for what a
feed record lacks, so ``--fields text,title`` is its work for a record with a date, authors and URL).
Only the extraction is timed (before 2026-12-06 22:30 UTC the scoring of each page, 1-2 ms, was timed
with it: the pages per CPU-s of older runs are about a tenth lower for the same code). Every extractor
first runs once on the first page, untimed: its imports (trafilatura, htmldate,
readability...) and first-call set-up are paid once per process, not per page, and would otherwise
be charged to whichever extractor runs first (0.36 CPU-s for trafilatura's imports, a quarter of
the product path's time over the 91 pages). Prints a table and the pick rule of issue 15: the
best F1, unless another product path is within 0.005 F1 and faster. Reads the pages in place, copies nothing.

    .venv/bin/python -m bench.bench_extract [--eval-dir ../shared/eval/extraction] [--limit N]
        [--fields text,title]

``rs-trafilatura`` (PyPI) is not measured: it ships only a source distribution for this platform
(a Rust build), not a wheel.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from statistics import mean

from bench.figures import BenchRecord, add_json_out
from pipeline.clean import ARTICLE_FIELDS, DEFAULT_EXTRACTOR, decode_page, extract_article, extract_body

DEFAULT_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "extraction"
EXTRACTORS = ("trafilatura", "trafilatura-fast", "trafilatura-recall", "readability", "rules")
PRODUCT_PATHS = ("extract_article:trafilatura", "extract_article:trafilatura-fast")
F1_TOLERANCE = 0.005
_TOKEN_RE = re.compile(r"\w+")


def shingles(text: str, n: int = 4) -> Counter[str]:
    tokens = _TOKEN_RE.findall(text or "")
    return Counter(" ".join(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens)


def score(truth: str, pred: str) -> tuple[float, float, float, bool]:
    t, p = shingles(truth), shingles(pred)
    tp = sum((t & p).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    precision = tp / (tp + fp) if tp + fp else (1.0 if not t else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, _TOKEN_RE.findall(truth) == _TOKEN_RE.findall(pred)


def run_extractor(name: str, page: str, url: str, fields: frozenset[str] = ARTICLE_FIELDS) -> str:
    """The text extractor ``name`` (an extractor, or ``extract_article[:NAME]``, which looks for
    ``fields``) gets from ``page``."""
    if name.startswith("extract_article"):
        chosen = name.partition(":")[2] or DEFAULT_EXTRACTOR
        return str(extract_article(page, url, extractor=chosen, fields=fields)["text"])  # type: ignore[arg-type]
    return extract_body(page, url, extractor=name)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument(
        "--extractors",
        default=",".join((*EXTRACTORS, *PRODUCT_PATHS)),
        help="'extract_article[:NAME]' scores the product path (extractor NAME, default the configured one)",
    )
    parser.add_argument(
        "--fields",
        default=",".join(sorted(ARTICLE_FIELDS)),
        help="the fields extract_article looks for (default all; 'text,title' is the clean stage's work "
        "for a feed record that already has its date, authors and URL)",
    )
    add_json_out(parser, "bench_extract")
    args = parser.parse_args()
    fields = frozenset(args.fields.split(","))
    truth = json.loads((args.eval_dir / "ground-truth.json").read_text(encoding="utf-8"))
    ids = sorted(truth)[: args.limit or None]
    pages = {
        i: decode_page(gzip.decompress((args.eval_dir / "pages" / f"{i}.html.gz").read_bytes())) for i in ids
    }
    rows = []
    for name in args.extractors.split(","):
        ps, rs, fs, acc, errors = [], [], [], 0, 0
        if ids:  # warm-up, untimed: the lazy imports and first-call set-up are paid once per process
            with contextlib.suppress(Exception):
                run_extractor(name, pages[ids[0]], truth[ids[0]]["url"], fields)
        texts: dict[str, str] = {}
        start, cpu_start = time.perf_counter(), time.process_time()
        for i in ids:  # timed: the extraction only (scoring a page cost 1-2 ms, a tenth of it)
            try:
                texts[i] = run_extractor(name, pages[i], truth[i]["url"], fields)
            except Exception as exc:  # noqa: BLE001 - a failing page scores 0, the bench goes on
                print(f"{name}: {i}: {type(exc).__name__}: {exc}", file=sys.stderr)
                texts[i], errors = "", errors + 1
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        for i in ids:
            p, r, f, same = score(truth[i]["articleBody"], texts[i])
            ps.append(p)
            rs.append(r)
            fs.append(f)
            acc += same
        mp, mr = mean(ps), mean(rs)
        rows.append(
            (
                name,
                mp,
                mr,
                mean(fs),
                2 * mp * mr / (mp + mr) if mp + mr else 0.0,
                acc / len(ids),
                len(ids) / elapsed,
                len(ids) / cpu,
                errors,
            )
        )
    rows.sort(key=lambda row: row[3], reverse=True)
    print(f"{len(ids)} pages from {args.eval_dir}; extract_article looks for {', '.join(sorted(fields))}")
    print(
        "| extractor | precision | recall | F1 (mean per page) | F1 (of mean P/R) | accuracy "
        "| pages/s wall | pages per CPU s | errors |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, p, r, f, f_of_means, a, speed, cpu_speed, errors in rows:
        print(
            f"| {name} | {p:.3f} | {r:.3f} | {f:.3f} | {f_of_means:.3f} | {a:.3f} | {speed:.1f} "
            f"| {cpu_speed:.1f} | {errors} |"
        )
    best = (
        f"best by F1: {rows[0][0]}; extract_article uses {DEFAULT_EXTRACTOR!r} "
        "(+ metadata, date, canonical URL and the headline rules)"
    )
    print(best)
    product = [row for row in rows if row[0].startswith("extract_article")]
    if product:
        best_f1 = max(row[3] for row in product)
        pick = max((row for row in product if row[3] >= best_f1 - F1_TOLERANCE), key=lambda row: row[7])
        print(
            f"pick (best F1 {best_f1:.3f}, or within {F1_TOLERANCE} of it and faster per CPU s): {pick[0]} "
            f"(F1 {pick[3]:.3f}, {pick[7]:.1f} pages per CPU s)"
        )
    record = BenchRecord("bench_extract")
    for name, _p, _r, f, *_ in rows:
        target = {"target": "best of the extractors"} if name == "extract_article" else {}
        record.figure(f"extraction F1 (mean per page), {name}", round(f, 3), "", pages=len(ids), **target)
    record.table(
        f"{len(ids)} pages of {args.eval_dir.name}: word 4-gram multiset P/R/F1 per page, pages weighted "
        f"equally",
        [
            "extractor",
            "precision",
            "recall",
            "F1 (mean per page)",
            "F1 (of mean P/R)",
            "accuracy",
            "pages/s wall",
            "pages per CPU s",
            "errors",
        ],
        [
            [
                name,
                round(p, 3),
                round(r, 3),
                round(f, 3),
                round(fm, 3),
                round(a, 3),
                round(sp, 1),
                round(cs, 1),
                e,
            ]
            for name, p, r, f, fm, a, sp, cs, e in rows
        ],
    )
    record.note(best)
    if fields != ARTICLE_FIELDS:
        record.note(f"extract_article looked for {', '.join(sorted(fields))} only")
    record.write(args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
