"""The plain script a user would write instead of newswire: the baseline of ``bench/bench_e2e.py`` (issue 15).

For each feed URL: ``feedparser.parse(httpx.get(url).content)``; for each entry ``httpx.get(link)``,
``trafilatura.extract(page)``, spaCy ``nlp(text)`` and its entities; then one ``executemany`` into one SQLite
table (``--db``) or one ``elasticsearch.helpers.bulk`` into one index (``--es-url``, ``--index``). No
dedupe, no gazetteer, no politeness, no retries: what a user writes in 40 lines. ``--spacy-model NAME``
loads the model with ``spacy.load(NAME)`` (its default pipes, as spaCy's documentation shows);
``--spacy-model ''`` runs without spaCy (extraction and insert only). Prints one JSON line:
``{"entries", "entities", "spacy_model"}``.

    python -m bench.plain_script --feeds URL... --db PATH [--es-url URL --index NAME] [--spacy-model NAME]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from typing import Any

import feedparser
import httpx
import trafilatura


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", nargs="+", required=True, help="feed URLs")
    parser.add_argument("--db", default="", help="SQLite file (table articles)")
    parser.add_argument("--es-url", default="", help="Elasticsearch URL (instead of --db)")
    parser.add_argument("--index", default="articles", help="Elasticsearch index")
    parser.add_argument("--spacy-model", default="en_core_web_sm", help="'' for no spaCy")
    args = parser.parse_args(argv)
    if not args.db and not args.es_url:
        parser.error("give --db or --es-url")

    nlp = None
    if args.spacy_model:
        import spacy

        nlp = spacy.load(args.spacy_model)

    rows: list[dict[str, Any]] = []
    for feed_url in args.feeds:
        feed = feedparser.parse(httpx.get(feed_url).content)
        for entry in feed.entries:
            page = httpx.get(entry.link).text
            text = trafilatura.extract(page) or ""
            entities = [[ent.text, ent.label_] for ent in nlp(text).ents] if nlp else []
            rows.append(
                {
                    "url": entry.link,
                    "title": entry.get("title", ""),
                    "published": entry.get("published", ""),
                    "text": text,
                    "entities": entities,
                }
            )

    if args.es_url:
        from elasticsearch import Elasticsearch, helpers

        client = Elasticsearch(args.es_url)
        helpers.bulk(client, ({"_index": args.index, "_source": row} for row in rows))
        client.indices.refresh(index=args.index)
    else:
        with sqlite3.connect(args.db) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS articles (url TEXT, title TEXT, published TEXT, text TEXT, "
                "entities TEXT)"
            )
            conn.executemany(
                "INSERT INTO articles VALUES (?, ?, ?, ?, ?)",
                [(r["url"], r["title"], r["published"], r["text"], json.dumps(r["entities"])) for r in rows],
            )
        conn.close()
    summary = {
        "entries": len(rows),
        "entities": sum(len(r["entities"]) for r in rows),
        "spacy_model": args.spacy_model,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
