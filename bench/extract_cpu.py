"""Extraction CPU time of one extractor over page files, run as a child by ``bench/bench_e2e.py`` (issue 15).

``--pages`` is a directory (every ``*.html`` / ``*.html.gz`` in it, no URL) or a JSON file holding a list of
``{"path": ..., "url": ...}``. ``--extractor newswire`` runs our clean stage's extraction as
``bench/bench_extract.py`` does (``pipeline.clean.decode_page`` then ``extract_article``; needs the project
on ``PYTHONPATH``); ``--extractor news-please`` runs
``NewsPlease.from_html(html, url=..., fetch_images=False)`` (no image downloads) on the page decoded as
UTF-8 (errors replaced). Only the standard library is imported at the top, so news-please's own
interpreter runs this file by path (``python bench/extract_cpu.py ...``).

Imports and page reads are outside the timing; the extraction of every page is inside it (its first-call
set-up included). Prints one JSON line:
``{"extractor", "pages", "errors", "cpu_s", "wall_s", "chars", "error_messages"}``,
``cpu_s`` from ``time.process_time()`` (this process's user + system CPU).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path


def read_pages(spec: Path) -> list[tuple[bytes, str]]:
    """(raw bytes, URL) of every page ``spec`` names (gzip-compressed files are decompressed)."""
    if spec.is_dir():
        items = [
            {"path": str(p), "url": ""}
            for p in sorted(spec.iterdir())
            if p.name.endswith((".html", ".html.gz"))
        ]
    else:
        items = json.loads(spec.read_text(encoding="utf-8"))
    pages = []
    for item in items:
        raw = Path(item["path"]).read_bytes()
        pages.append((gzip.decompress(raw) if item["path"].endswith(".gz") else raw, item.get("url") or ""))
    return pages


def extractor(name: str) -> Callable[[bytes, str], str]:
    """A function (page bytes, URL) -> main text."""
    if name == "newswire":
        from pipeline.clean import decode_page, extract_article

        return lambda body, url: str(extract_article(decode_page(body), url)["text"] or "")
    if name == "news-please":
        from newsplease import NewsPlease

        def news_please(body: bytes, url: str) -> str:
            article = NewsPlease.from_html(
                body.decode("utf-8", "replace"), url=url or None, fetch_images=False
            )
            return str(getattr(article, "maintext", None) or "")

        return news_please
    raise SystemExit(f"unknown extractor {name!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, required=True, help="a directory or a JSON list of {path, url}")
    parser.add_argument("--extractor", choices=("newswire", "news-please"), required=True)
    args = parser.parse_args(argv)
    pages = read_pages(args.pages)
    extract = extractor(args.extractor)
    errors = chars = 0
    messages: list[str] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for body, url in pages:
        try:
            chars += len(extract(body, url))
        except Exception as exc:  # noqa: BLE001 - a failing page counts as an error, the run goes on
            errors += 1
            messages.append(f"{url}: {type(exc).__name__}: {str(exc).strip()[:200]}")
            print(messages[-1], file=sys.stderr)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result = {
        "extractor": args.extractor,
        "pages": len(pages),
        "errors": errors,
        "cpu_s": cpu,
        "wall_s": wall,
        "chars": chars,
        "error_messages": messages[:5],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
