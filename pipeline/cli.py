"""The ``newswire`` command line (also ``python -m pipeline``).

Contract:
- ``newswire run --once|--watch`` ingests the feeds of a config file into a store, with a
  progress display and a per-feed table at the end.
- ``newswire search`` queries a store by text, actor, location, date, source, language,
  country and place; ``--json`` prints ``{"total", "hits", "facets", "next_after"}``; ``--after``
  takes the cursor of the previous page (the text output prints it).
- ``newswire parse|clean|dedupe|tag|index`` are JSON Lines filters (docs/architecture.md's filter
  contract, implemented once in :func:`pipeline.records.run_filter`).
- ``newswire es start|stop|status|setup`` runs a local Elasticsearch without Docker.
- ``newswire feeds status|check`` shows feed health and checks that feeds parse.
- ``newswire serve`` runs the HTTP search API (:mod:`pipeline.api`).
- ``newswire retag`` re-runs the current tagger over every stored article, resumably
  (:func:`pipeline.retag.retag`).
- ``newswire reconcile`` merges split clusters over the whole store
  (:func:`pipeline.dedupe.reconcile_pending`); a run also repairs what a killed run left.

Exit codes: 0 success; 1 some feeds or lines failed; 2 usage or configuration error.

Output never interprets data: rich markup is off on both consoles (styles are given as
:class:`rich.text.Text` spans), and every line that can carry a URL goes through
:func:`pipeline.redaction.redact`, so feed titles like ``[video] ...`` print as written
and no password leaves the process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from pipeline.redaction import install_log_filter, redact
from pipeline.settings import get_settings

log = logging.getLogger(__name__)

app = typer.Typer(
    help="newswire: fetch, clean, deduplicate, tag and index news; search it by actor and location.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: no <bool>/<list[str]> type tags, no boxes in a pipe
)
es_app = typer.Typer(help="A local Elasticsearch server for people without Docker.", no_args_is_help=True)
feeds_app = typer.Typer(help="Feed health and checks.", no_args_is_help=True)
app.add_typer(es_app, name="es")
app.add_typer(feeds_app, name="feeds")

# data is never markup (see the module docstring); output that is not a terminal (a pipe, a file)
# is never wrapped, so a long URL stays whole on its line
out = Console(markup=False, highlight=False, soft_wrap=not sys.stdout.isatty())
err = Console(stderr=True, markup=False, highlight=False, soft_wrap=not sys.stderr.isatty())

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help="store URL (sqlite:///path or http://host:port); default NEWSWIRE_STORE",
    ),
]
FeedsOpt = Annotated[
    Path | None,
    typer.Option(
        "--feeds", metavar="FILE", help="feeds YAML file; default NEWSWIRE_FEEDS_FILE (config/feeds.yaml)"
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(Text.assemble(("error:", "red"), " ", redact(message)), soft_wrap=True)
    raise typer.Exit(code)


def open_store_or_fail(url: str | None, must_exist: bool = False) -> Any:
    """The store at ``url``; a clear error (no traceback) when it cannot be opened. ``must_exist``:
    a SQLite file that does not exist is an error (a search must not create an empty store)."""
    from pipeline.stores import open_store, sqlite_path

    target = url or get_settings().store
    if (
        must_exist
        and target.lower().startswith("sqlite:///")
        and target[len("sqlite:///") :] not in ("", ":memory:")
    ):
        path = Path(sqlite_path(target))
        if not path.exists():
            fail(
                f"no such store: {path} does not exist (run `newswire run --once` to fill it, or pass "
                f"--store)"
            )
    try:
        return open_store(url)
    except ValueError as exc:
        fail(str(exc))
    except Exception as exc:  # a server that is down, a folder that can't be created: one line
        log.debug("opening the store failed", exc_info=True)
        fail(f"cannot open store {target}: {first_line(exc)}", 1)


def short_time(value: Any) -> str | None:
    """An ISO 8601 time as ``2017-06-07 08:00:05Z`` (seconds, no fraction); other values unchanged."""
    from datetime import UTC, datetime

    if not isinstance(value, str) or not value:
        return value
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if when.tzinfo is not None else "")


def first_line(exc: BaseException) -> str:
    """An exception as one short line (client libraries nest their causes in the message)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "…"


def load_feeds_or_fail(path: Path | None) -> list[Any]:
    from pipeline.config import ConfigError, load_feeds

    try:
        return load_feeds(path or get_settings().feeds_file)
    except ConfigError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")


# --- ingestion ------------------------------------------------------------------------


def feed_table(report: Any) -> Table:
    table = Table(title="newswire run", show_lines=False)
    for column in ("feed", "status", "fetched", "new", "duplicates", "errors"):
        table.add_column(
            column, justify="right" if column in ("fetched", "new", "duplicates", "errors") else "left"
        )
    for f in report.feeds:
        table.add_row(
            Text(redact(f.name)),
            f.status,
            str(f.fetched),
            str(f.new),
            str(f.duplicates),
            Text(str(len(f.errors)), style="red") if f.errors else "0",
        )
    table.add_row(
        Text("total", style="bold"),
        "",
        str(sum(f.fetched for f in report.feeds)),
        str(report.new),
        str(sum(f.duplicates for f in report.feeds)),
        str(sum(len(f.errors) for f in report.feeds)),
    )
    return table


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="one pass over every feed, then exit")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="keep polling, each feed on its own schedule")
    ] = False,
    feeds: FeedsOpt = None,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the run report as JSON")] = False,
    max_passes: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Ingest feeds into a store: fetch, parse, clean, dedupe, tag, index."""
    from pipeline.run import RunReport, ingest
    from pipeline.run import watch as watch_feeds

    if once == watch:
        fail("choose exactly one of --once and --watch")
    feed_list = load_feeds_or_fail(feeds)
    st = open_store_or_fail(store)
    report = RunReport()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as progress:
        task = progress.add_task("ingesting feeds", total=len(feed_list))

        def on_feed(stats: Any) -> None:
            report.feeds.append(stats)
            progress.advance(task)
            progress.update(task, description=redact(f"{stats.name}: {stats.new} new"))
            for e in stats.errors:
                err.print(Text.assemble((redact(stats.name), "yellow"), ": ", redact(e)), soft_wrap=True)

        if once:
            report.errors = ingest(feed_list, st, on_feed=on_feed).errors
            for e in report.errors:
                err.print(Text.assemble(("run", "yellow"), ": ", redact(e)), soft_wrap=True)
        else:
            with contextlib.suppress(KeyboardInterrupt):
                watch_feeds(feed_list, st, on_feed=on_feed, max_passes=max_passes)
    st.close()
    if as_json:
        print(redact(json.dumps(report.as_dict(), ensure_ascii=False)))
    else:
        out.print(feed_table(report))
        out.print(
            f"{report.new} new articles from {len(report.feeds)} feeds; {report.failed} feeds had errors"
        )
    raise typer.Exit(1 if report.failed or report.errors else 0)


@app.command()
def prepare() -> None:
    """Build what tagging and search read (the gazetteer cache, the search lookup file) and load the spaCy
    model once: run it at install or image build time, and a first run starts tagging within seconds."""
    import time

    from pipeline.tag import get_resolver, get_tagger

    started = time.perf_counter()
    try:
        tagger = get_tagger()
        get_resolver()
    except (OSError, ValueError) as exc:  # a missing actors file or spaCy model, an unwritable cache
        fail(f"prepare failed: {exc}", 1)
    gaz = tagger.gaz
    how = "read from the cache" if gaz.from_cache else "built and cached"
    out.print(f"gazetteer: {len(gaz.names):,} names, {how} in {gaz.build_seconds:.1f} s")
    out.print(f"search lookup file and gazetteer cache in {get_settings().cache_dir / 'tag'}")
    if not tagger.model_name:
        out.print("spaCy model: none configured (gazetteer only)")
    else:
        state = "loaded" if tagger.nlp is not None else "NOT installed: tagging from the gazetteer only"
        out.print(f"spaCy model: {tagger.model_name} ({state})")
    out.print(f"ready in {time.perf_counter() - started:.1f} s")


@app.command()
def reconcile(store: StoreOpt = None) -> None:
    """Merge split clusters and repair publisher lists over the whole store (after a killed run)."""
    from pipeline.dedupe import reconcile_pending

    st = open_store_or_fail(store)
    try:
        result = reconcile_pending(st, whole_store=True)
    except Exception as exc:  # the store went away: nothing is lost, run it again
        log.debug("reconcile failed", exc_info=True)
        st.close()
        fail(f"reconcile stopped: {exc}; run `newswire reconcile` again", 1)
    st.close()
    out.print(
        f"reconcile: {result.checked} articles checked, {result.merged} clusters merged, "
        f"{result.renamed} renamed, {result.rewritten} articles rewritten",
        highlight=False,
        soft_wrap=True,
    )


# --- search ---------------------------------------------------------------------------


def hit_line(hit: dict[str, Any]) -> Text:
    """One search hit as styled text; its values are shown as written, never as markup."""
    when = str(hit.get("published_at") or "")[:16].replace("T", " ")
    if when and hit.get("published_at_estimated"):
        when = f"~{when} (estimated)"
    src = (hit.get("source") or {}).get("name", "")
    also = hit.get("also_published_by") or []
    outlets = sorted(
        {
            str((a.get("source") or {}).get("name", "?"))
            if isinstance(a.get("source"), dict)
            else str(a.get("source"))
            for a in also
            if isinstance(a, dict)
        }
    )
    extra = f" (+{len(also)} outlets: {', '.join(outlets)})" if also else ""
    return Text.assemble(
        (redact(str(hit.get("title", ""))), "bold"),
        redact(f"\n  {when}  {src}  {hit.get('url', '')}"),
        (redact(extra), "dim"),
    )


@app.command()
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", hidden=True)] = "",
    actor: Annotated[
        list[str], typer.Option("--actor", "-a", metavar="NAME", help="actor in any spelling; repeat for AND")
    ] = [],  # noqa: B006
    location: Annotated[
        list[str],
        typer.Option("--location", "-l", metavar="PLACE", help="place in any spelling; repeat for AND"),
    ] = [],  # noqa: B006
    since: Annotated[
        str | None, typer.Option(metavar="WHEN", help="from: 2017-06-07, today, yesterday, monday, 3d, 12h")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="WHEN", help="until (inclusive), same forms as --since")
    ] = None,
    source: Annotated[
        list[str], typer.Option("--source", metavar="SOURCE", help="source name or domain; repeat for OR")
    ] = [],  # noqa: B006
    language: Annotated[
        list[str], typer.Option("--language", metavar="CODE", help="ISO 639-1 code; repeat for OR")
    ] = [],  # noqa: B006
    country: Annotated[
        list[str], typer.Option("--country", metavar="CC", help="ISO country code of a tagged place")
    ] = [],  # noqa: B006
    near: Annotated[
        str | None, typer.Option(metavar="LAT,LON,KM", help="lat,lon,km: places within km of a point")
    ] = None,
    bbox: Annotated[
        str | None, typer.Option(metavar="T,L,B,R", help="top,left,bottom,right: places in a box")
    ] = None,
    sort: Annotated[str, typer.Option(metavar="relevance|date", help="relevance or date")] = "relevance",
    limit: Annotated[int, typer.Option(metavar="N", help="hits to return (1-1000)")] = 20,
    all_copies: Annotated[
        bool, typer.Option("--all-copies", help="every outlet's copy, not one hit per story")
    ] = False,
    store: StoreOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print {total, hits, facets, next_after} as JSON")
    ] = False,
    after: Annotated[
        str | None,
        typer.Option("--after", metavar="CURSOR", help="next page: the cursor the last page printed"),
    ] = None,
) -> None:
    """Search stored articles by text, actor, location, date, source and place.

    QUERY is a full-text query: words, "phrases", -excluded, prefix*.
    """
    from pipeline.cursor import decode_cursor
    from pipeline.search import QueryError, build_query, search_payload

    try:
        q = build_query(
            text=query,
            actors=actor,
            locations=location,
            since=since,
            until=until,
            sources=source,
            languages=language,
            countries=country,
            near=near,
            bbox=bbox,
            sort=sort,
            limit=limit,
            collapse=not all_copies,
        )
        if after is not None:
            q.after = decode_cursor(after)
    except QueryError as exc:
        fail(str(exc))
    from pipeline.stores.base import SearchTimeout

    st = open_store_or_fail(store, must_exist=True)
    try:
        result = st.search(q)
    except SearchTimeout as exc:
        fail(str(exc), 1)
    except ValueError as exc:
        if q.after is None:
            raise
        fail(f"--after: {exc}")  # a cursor of another sort
    except Exception as exc:  # a store server that is down or went away: one line, no traceback
        log.debug("search failed", exc_info=True)
        fail(f"cannot search {st.url}: {first_line(exc)}", 1)
    finally:
        st.close()
    payload = search_payload(result, q.notes)
    if as_json:
        print(redact(json.dumps(payload, ensure_ascii=False, default=str)))
        return
    for note in q.notes:
        out.print(Text(redact(note), style="dim"))
    out.print(f"{result.total} {'story' if result.total == 1 else 'stories'}")
    for hit in result.hits:
        out.print(hit_line(hit))
    if result.facets:
        for name in ("actors", "locations", "sources"):
            buckets = result.facets.get(name) or []
            if buckets:
                values = ", ".join(f"{b.get('name') or b['key']} ({b['count']})" for b in buckets[:8])
                out.print(Text.assemble((f"{name}:", "dim"), " ", redact(values)))
    if payload["next_after"]:
        out.print(
            Text.assemble(("next page: --after ", "dim"), (payload["next_after"], "dim")), soft_wrap=True
        )


# --- JSON Lines filters -----------------------------------------------------------------


@app.command()
def parse(
    sources: Annotated[list[str], typer.Argument(metavar="SOURCE", hidden=True)],
    name: Annotated[str | None, typer.Option(metavar="NAME", help="source name for the records")] = None,
) -> None:
    """Feed documents -> one JSON article record per entry on stdout.

    SOURCE... are feed files or http(s)/file URLs.
    """
    from pipeline.fetch import fetch_feeds
    from pipeline.parse import parse_feed
    from pipeline.records import dumps

    urls = [s if "://" in s else Path(s).resolve().as_uri() for s in sources]
    failed = 0
    for result in fetch_feeds([(u, None) for u in urls]):
        if result.status != "ok":
            failed += 1
            print(redact(f"newswire parse: {result.error or result.status}"), file=sys.stderr)
            continue
        parsed = parse_feed(
            result.body, url=result.final_url or result.url, feed_name=name, headers=result.headers
        )
        for warning in parsed.warnings:
            print(redact(f"newswire parse: {result.url}: {warning}"), file=sys.stderr)
        if parsed.error:
            failed += 1
            print(redact(f"newswire parse: {result.url}: {parsed.error}"), file=sys.stderr)
        for entry in parsed.entries:
            sys.stdout.write(dumps(entry) + "\n")
    raise typer.Exit(1 if failed else 0)


@app.command()
def clean() -> None:
    """{id, html[, url, title]} -> adds {text, title, language}."""
    from pipeline.clean import clean_records
    from pipeline.records import run_filter

    raise typer.Exit(run_filter(clean_records, name="clean"))


@app.command()
def dedupe(
    store: StoreOpt = None,
    in_stream: Annotated[
        bool,
        typer.Option(
            "--in-stream/--against-store", help="compare within the input only (default) or with a store too"
        ),
    ] = True,
) -> None:
    """{id, title, text} -> adds {content_hash, cluster_id, duplicate_of}."""
    from pipeline.dedupe import Deduper
    from pipeline.records import run_filter

    st = open_store_or_fail(store) if (store or not in_stream) else None
    code = run_filter(Deduper(st).run, name="dedupe")
    if st:
        st.close()
    raise typer.Exit(code)


@app.command()
def tag() -> None:
    """{id, text[, title]} -> adds {actors, locations}."""
    from pipeline.records import run_filter
    from pipeline.tag import get_tagger

    raise typer.Exit(run_filter(get_tagger().tag_records, name="tag"))


@app.command()
def index(store: StoreOpt = None) -> None:
    """Articles (JSON Lines) -> the store; a summary on stderr, articles echoed with errors marked."""
    from pipeline.records import run_filter

    st = open_store_or_fail(store)
    totals = {"indexed": 0, "created": 0, "errors": 0}

    def write(records: Any) -> Any:
        batch = list(records)
        report = st.index([r for r in batch if r.get("id")])
        errors = {e["id"]: e["error"] for e in report.errors}
        totals["indexed"] += report.indexed
        totals["created"] += report.created
        totals["errors"] += len(errors) + sum(1 for r in batch if not r.get("id"))
        for r in batch:
            if not r.get("id"):
                r["error"] = "record has no id"
            elif r["id"] in errors:
                r["error"] = errors[r["id"]]
            yield r

    code = run_filter(write, name="index")
    st.close()
    print(
        f"newswire index: {totals['indexed']} indexed ({totals['created']} new), {totals['errors']} failed "
        f"into {redact(st.url)}",
        file=sys.stderr,
    )
    raise typer.Exit(code)


@app.command()
def retag(
    store: StoreOpt = None,
    batch: Annotated[
        int, typer.Option("--batch", metavar="N", help="articles per batch (tagged, written, checkpointed)")
    ] = 500,
    restart: Annotated[
        bool, typer.Option("--restart", help="start over instead of continuing a stopped run")
    ] = False,
    max_batches: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Re-tag every stored article with the current tagger; an interrupted run continues where it stopped."""
    from pipeline.retag import retag as retag_store
    from pipeline.tag import get_tagger

    if batch < 1:
        fail(f"--batch: {batch} is not a positive number")
    st = open_store_or_fail(store)
    tagger = get_tagger()

    def on_batch(result: Any) -> None:
        err.print(
            f"retag: {result.processed} articles tagged, {result.changed} changed, "
            f"{len(result.errors)} failed (last id {result.last_id})",
            highlight=False,
        )

    try:
        result = retag_store(
            st, tagger, batch=batch, restart=restart, max_batches=max_batches, on_batch=on_batch
        )
    except KeyboardInterrupt:
        st.close()
        err.print("retag: interrupted; run `newswire retag` again to continue", highlight=False)
        raise typer.Exit(1) from None
    except Exception as exc:  # the store went away mid-run: the batches done so far are kept
        log.debug("retag failed", exc_info=True)
        st.close()
        fail(f"retag stopped: {exc}; run `newswire retag` again to continue", 1)
    st.close()
    for e in result.errors[:20]:
        err.print(
            Text.assemble((str(e.get("id")), "yellow"), ": ", redact(str(e.get("error")))), soft_wrap=True
        )
    if result.skipped:
        out.print(
            f"retag: already complete for tagger version {result.version}; nothing to do "
            "(--restart to run it again)",
            highlight=False,
        )
    else:
        where = f" (continued after {result.resumed_after})" if result.resumed_after else ""
        state = "complete" if result.done else "stopped before the end; run it again to continue"
        out.print(
            f"retag{where}: {result.processed} articles tagged, {result.changed} changed, "
            f"{len(result.errors)} failed; tagger version {result.version}; {state}",
            highlight=False,
        )
    raise typer.Exit(1 if result.errors else 0)


@app.command()
def serve(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port to listen on")] = 8000,
    store: StoreOpt = None,
) -> None:
    """Serve the HTTP search API (GET /search, /articles/{id}, /clusters/{id}, /health; docs at /docs)."""
    import os

    from pipeline.extras import MissingExtra, require

    try:
        require("fastapi", "newswire serve")
        uvicorn = require("uvicorn", "newswire serve")
    except MissingExtra as exc:
        fail(str(exc))
    if store:  # kept: uvicorn imports pipeline.api:app, which opens get_settings().store, not an argument
        os.environ["NEWSWIRE_STORE"] = store
        get_settings.cache_clear()
    open_store_or_fail(store).close()  # a bad URL or a store that is down: one clear line, no traceback
    uvicorn.run("pipeline.api:app", host=host, port=port)


# --- Elasticsearch for people without Docker --------------------------------------------------


@es_app.command("start")
def es_start(
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="HTTP port (default: the last one, if free)")
    ] = None,
) -> None:
    """Download (once) and start the local Elasticsearch; prints its URL."""
    from pipeline.devtools import esserver

    if port is not None and not 1 <= port <= 65535:
        fail(f"--port: {port} is not a port number (1-65535)")
    shown = {"at": -10.0, "live": 0.0}

    def on_wait(seconds: float) -> None:  # a live line on a terminal, a line every 10 s otherwise
        if err.is_terminal:
            shown["live"] = 1.0
            err.print(f"\rwaiting for Elasticsearch to start: {seconds:.0f} s", end="")
        elif seconds - shown["at"] >= 10:
            shown["at"] = seconds
            err.print(f"waiting for Elasticsearch to start: {seconds:.0f} s")

    try:
        url = esserver.start(port=port, on_wait=on_wait)["url"]
    except Exception as exc:  # any start-up failure is one line for the user
        log.debug("Elasticsearch start failed", exc_info=True)
        fail(f"Elasticsearch did not start: {exc}", 1)
    if shown["live"]:
        err.print()
    out.print(redact(url))


@es_app.command("stop")
def es_stop() -> None:
    """Stop the local Elasticsearch started by `newswire es start` (says whether one was running)."""
    from pipeline.devtools import esserver

    if esserver.stop():
        out.print("stopped the local Elasticsearch")
    else:
        out.print("no local Elasticsearch was running")


@es_app.command("status")
def es_status() -> None:
    """Say whether the local Elasticsearch runs, and where."""
    from pipeline.devtools import esserver

    status = esserver.status()
    out.print_json(data=status)
    raise typer.Exit(0 if status.get("running") else 1)


@es_app.command("setup")
def es_setup(store: StoreOpt = None) -> None:
    """Create the index template and aliases (idempotent)."""
    st = open_store_or_fail(store)
    st.setup()
    out.print(f"ready: {redact(st.url)}")


# --- feeds ----------------------------------------------------------------------------------


@feeds_app.command("status")
def feeds_status(
    feeds: FeedsOpt = None, store: StoreOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Health per feed: last success, last error, consecutive failures, new items per day."""
    from pipeline.feedhealth import health_row

    feed_list = load_feeds_or_fail(feeds)
    with open_store_or_fail(store) as st:
        rows = [health_row(f, st.get_feed_state(f.url)) for f in feed_list]
    if as_json:
        print(redact(json.dumps(rows, ensure_ascii=False)))
        return
    table = Table(title="feed health")
    columns = ("name", "status", "last_success_at", "consecutive_failures", "new_per_day", "last_error")
    for col in columns:  # cells fold rather than end in "…": nothing is cut off
        table.add_column(col, overflow="fold")
    for r in rows:
        r = {**r, "last_success_at": short_time(r["last_success_at"])}
        table.add_row(*(Text(redact(str(r[c] if r[c] is not None else ""))) for c in columns))
    if out.is_terminal:
        out.print(table)
    else:  # a pipe or a file gets whole lines: a console as wide as the table needs
        Console(file=out.file, width=10_000, markup=False, highlight=False).print(table)


@feeds_app.command("check")
def feeds_check(feeds: FeedsOpt = None) -> None:
    """Fetch and parse every configured feed now (stores nothing)."""
    from pipeline.feedhealth import check_feeds

    feed_list = load_feeds_or_fail(feeds)
    failed = 0
    for url, error, entries in check_feeds(feed_list):
        if error:
            failed += 1
            out.print(Text.assemble(("FAIL", "red"), " ", redact(f"{url}: {error}")))
        else:
            out.print(Text.assemble(("ok", "green"), "   ", redact(f"{url}: {entries} entries")))
    raise typer.Exit(1 if failed else 0)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # the Elasticsearch client logs every failed attempt with its traceback; the command says what failed
    logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    install_log_filter()
    app()
