"""Benchmark: parse every feed document under ../shared/eval/feeds/ with pipeline.parse.

Reports how many documents yielded entries, how many ended with a (clear) error, how many
yielded nothing without an error (valid empty feeds), crashes (must be 0: ``parse_feed``
never raises), entries, warnings, and throughput (feeds/s, entries/s); then runs the clean
stage over the entries of the real news feeds and reports records/s. Files whose
feedparser test header carries a ``Header: Content-type: ...`` line get that header, as
feedparser's own harness does. Reads the files in place; copies nothing.

    .venv/bin/python -m bench.bench_feeds [--feeds-dir ../shared/eval/feeds] [--show-errors N]
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.figures import BenchRecord, add_json_out
from pipeline.clean import clean_records
from pipeline.parse import parse_feed

DEFAULT_FEEDS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "feeds"
_HEADER_RE = re.compile(rb"Header:\s*([A-Za-z-]+):\s*([^\r\n]*?)\s*(?:-->|\r|\n)")


def main() -> int:  # noqa: PLR0915 - a benchmark script: set up, measure, print one table in order
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds-dir", type=Path, default=DEFAULT_FEEDS)
    parser.add_argument("--show-errors", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1, help="parse everything N times (steadier timing)")
    add_json_out(parser, "bench_feeds")
    args = parser.parse_args()
    record = BenchRecord("bench_feeds")
    files = sorted(p for p in args.feeds_dir.rglob("*") if p.is_file() and p.suffix != ".tsv")
    docs = [(p, p.read_bytes()) for p in files]
    fetched_at = datetime.now(UTC)
    per_group: Counter[str] = Counter()
    groups: dict[str, Counter[str]] = {}
    errors: list[str] = []
    entries = warnings = crashes = estimated = 0
    real_entries: list[dict] = []
    start = time.perf_counter()
    cpu_start = time.process_time()
    for round_ in range(args.repeat):
        for path, body in docs:
            rel = path.relative_to(args.feeds_dir)
            group = "/".join(rel.parts[:2]) if rel.parts[0] == "feedparser" else rel.parts[0]
            headers = {k.decode(): v.decode("latin-1") for k, v in _HEADER_RE.findall(body[:2000])}
            try:
                result = parse_feed(
                    body,
                    url=f"https://feeds.example.test/{rel}",
                    headers=headers or None,
                    fetched_at=fetched_at,
                )
            except Exception as exc:  # noqa: BLE001 - counted: parse_feed must never raise
                crashes += 1
                errors.append(f"CRASH {rel}: {type(exc).__name__}: {exc}")
                continue
            if round_:
                continue
            counts = groups.setdefault(group, Counter())
            counts["files"] += 1
            if result.error:
                counts["errored"] += 1
                errors.append(result.error)
            elif result.entries:
                counts["with entries"] += 1
            else:
                counts["empty"] += 1
            entries += len(result.entries)
            if group == "real":
                real_entries.extend(result.entries)
            estimated += sum(1 for e in result.entries if e["published_at_estimated"])
            warnings += len(result.warnings)
            counts["skipped entries"] += sum("neither link nor id" in w for w in result.warnings)
            per_group[group] += len(result.entries)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    n = len(docs) * args.repeat
    print(f"{len(docs)} feed documents under {args.feeds_dir}")
    print("| set | files | with entries | no entries, no error | errored | entries | skipped (no link/id) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    total: Counter[str] = Counter()
    table_rows: list[list[object]] = []
    for group in sorted(groups):
        c = groups[group]
        total.update(c)
        table_rows.append(
            [
                group,
                c["files"],
                c["with entries"],
                c["empty"],
                c["errored"],
                per_group[group],
                c["skipped entries"],
            ]
        )
        print(
            f"| {group} | {c['files']} | {c['with entries']} | {c['empty']} | {c['errored']} "
            f"| {per_group[group]} "
            f"| {c['skipped entries']} |"
        )
    print(
        f"| **all** | {total['files']} | {total['with entries']} | {total['empty']} | {total['errored']} "
        f"| {entries} "
        f"| {total['skipped entries']} |"
    )
    table_rows.append(
        [
            "all",
            total["files"],
            total["with entries"],
            total["empty"],
            total["errored"],
            entries,
            total["skipped entries"],
        ]
    )
    record.table(
        f"every feed document under {args.feeds_dir.name}/",
        [
            "set",
            "files",
            "with entries",
            "no entries, no error",
            "errored",
            "entries",
            "skipped (no link/id)",
        ],
        table_rows,
    )
    record.figure("crashes", crashes, "", target=0)
    record.figure("warnings", warnings, "")
    record.figure("entries dated by fetch time", estimated, "")
    record.figure("parse speed per CPU second", round(n / cpu), "feeds/s")
    record.figure("parse speed per CPU second", round(entries * args.repeat / cpu), "entries/s")
    record.figure("parse speed, wall", round(n / elapsed), "feeds/s")
    print(f"crashes: {crashes}; warnings: {warnings}; entries dated by fetch time: {estimated}")
    print(
        f"speed: {n / elapsed:.0f} feeds/s, {entries * args.repeat / elapsed:.0f} entries/s wall "
        f"({elapsed:.2f} s for {n} documents); {n / cpu:.0f} feeds/s, "
        f"{entries * args.repeat / cpu:.0f} entries/s per CPU second (one core; load-independent)"
    )
    if real_entries:
        start, cpu_start = time.perf_counter(), time.process_time()
        cleaned = list(clean_records(real_entries))
        took, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        langs = Counter(r.get("language") or "none" for r in cleaned)
        failed = sum(1 for r in cleaned if r.get("error"))
        print(
            f"clean stage on the {len(cleaned)} real-feed entries (feed HTML, no page fetch): "
            f"{len(cleaned) / took:.0f} records/s wall, {len(cleaned) / cpu:.0f} per CPU second; "
            f"{failed} with an error (no html in the feed), "
            f"languages {dict(langs.most_common(6))}"
        )
        record.figure(
            "clean stage on real-feed entries, per CPU second", round(len(cleaned) / cpu), "records/s"
        )
    for line in errors[: args.show_errors]:
        print("  e.g.", line[:200])
    record.write(args.json_out)
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
