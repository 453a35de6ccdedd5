"""One ingestion pass: feeds -> fetch -> parse -> clean -> dedupe -> tag -> index.

Contract:
- :func:`ingest` runs every feed of a list through the stages into a store and returns a
  :class:`RunReport` with one :class:`FeedStats` per feed (fetched, new, duplicates,
  errors). One broken feed never stops the others: its error is recorded and the pass
  goes on.
- Entries whose ids are already stored are skipped before any article page is fetched.
- A feed's state (ETag, Last-Modified, health) is written to the store only after that
  feed's articles were indexed, so an interrupted run never marks an article as seen
  before it is safely stored.
- :func:`watch` repeats passes, each feed on its own timer (the feed's ttl or
  Cache-Control max-age when it declares one, else its configured interval), backing
  off exponentially for feeds that keep failing.

The same functions serve the CLI (``newswire run``) and the Airflow tasks
(:mod:`pipeline.tasks`), which split a pass into fetch, process and index steps.
"""

from __future__ import annotations

import logging
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.clean import decode_page
from pipeline.config import FeedConfig
from pipeline.dedupe import Deduper, note_pending, reconcile_pending
from pipeline.fetch import FetchResult, fetch_feeds_or_idle, fetch_pages, poll_hint
from pipeline.parse import parse_feed
from pipeline.redaction import redact
from pipeline.settings import Settings, get_settings
from pipeline.stores.base import Store
from pipeline.workers import Preparing, start

log = logging.getLogger(__name__)

#: Entries whose feed HTML has less text than this are treated as summaries when a
#: feed's ``full_text`` setting is left on auto.
SUMMARY_ONLY_CHARS = 400
#: Entries of one feed fetched (their pages) at a time: memory is flat in a feed's size (a chunk of
#: pages is held twice while it is decoded: 128 pages of ~180 KB, well above the fetch's concurrency).
FEED_CHUNK = 128
#: Entries whose pages the background thread may fetch ahead of the run (pages held: at most this plus a
#: chunk; the entries beyond wait without their pages).
PAGES_AHEAD = 128
#: New entries of any number of feeds processed and indexed together: one clean/tag/dedupe pass, one
#: bulk write and one refresh per batch instead of per feed (issue 15: most feeds bring a few new entries).
BATCH_ENTRIES = 256
#: Seconds without a completed feed after which the batch is written anyway (a slow feed never holds
#: back the articles of the others for longer).
BATCH_WAIT = 1.0


@dataclass
class FeedStats:
    name: str
    url: str
    status: str = "ok"  # ok | not_modified | gone | error
    fetched: int = 0  # entries in the feed document
    new: int = 0  # articles stored for the first time
    duplicates: int = 0  # new articles that joined an existing story's cluster
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    poll_seconds: float | None = None  # what the feed or server asks: ttl, max-age, Retry-After

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "status": self.status,
            "fetched": self.fetched,
            "new": self.new,
            "duplicates": self.duplicates,
            "errors": self.errors,
            "warnings": self.warnings,
            "poll_seconds": self.poll_seconds,
        }


@dataclass
class RunReport:
    feeds: list[FeedStats] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # failures of the pass itself (its reconcile)

    @property
    def new(self) -> int:
        return sum(f.new for f in self.feeds)

    @property
    def failed(self) -> int:
        return sum(1 for f in self.feeds if f.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "failed_feeds": self.failed,
            "errors": self.errors,
            "feeds": [f.as_dict() for f in self.feeds],
        }


def needs_full_text(feed: FeedConfig, entry: dict[str, Any]) -> bool:
    """Whether an entry's article page should be fetched for its full text."""
    if feed.full_text is not None:
        return bool(feed.full_text) and bool(entry.get("url"))
    html = entry.get("html") or ""
    return bool(entry.get("url")) and len(html) < SUMMARY_ONLY_CHARS


def parse_fetched(
    feed: FeedConfig, result: FetchResult, stats: FeedStats, settings: Settings | None = None
) -> list[dict[str, Any]]:
    """Feed document -> entry records, one per id (a link listed twice is one entry), at most
    ``settings.max_entries_per_feed`` (errors and warnings recorded in ``stats``)."""
    settings = settings or get_settings()
    parsed = parse_feed(
        result.body,
        url=result.final_url or feed.url,
        feed_name=feed.name,
        headers=result.headers,
        language=feed.language,
        feed_tags=list(feed.tags),
        max_entries=settings.max_entries_per_feed,
    )
    parsed.entries = list({e["id"]: e for e in reversed(parsed.entries)}.values())[::-1]  # first listing wins
    shown = redact(feed.url)
    stats.warnings.extend(f"{shown}: {w}" for w in parsed.warnings)
    if parsed.error:
        stats.errors.append(f"{shown}: {parsed.error}")
    for entry in parsed.entries:  # the configured feed URL (its password hidden) identifies the source
        entry.setdefault("source", {})["feed"] = shown
    stats.fetched = len(parsed.entries)
    hints = [h for h in (parsed.ttl_seconds, poll_hint(result)) if h]
    stats.poll_seconds = max(hints) if hints else None
    return parsed.entries


def add_full_text(
    feed: FeedConfig, entries: list[dict[str, Any]], stats: FeedStats, settings: Settings
) -> None:
    """Replace summary-only HTML by the article page (cleaned later); keep the summary on failure."""
    wanted = [e["url"] for e in entries if needs_full_text(feed, e)]
    if not wanted:
        return
    pages = fetch_pages(wanted, settings)
    for entry in entries:
        page = pages.get(entry.get("url", ""))
        if page is None:
            continue
        if page.status == "ok" and page.body:
            ctype = {k.lower(): v for k, v in page.headers.items()}.get("content-type")
            entry["html"] = decode_page(page.body, ctype)
        else:
            stats.warnings.append(f"{entry['url']}: page not fetched ({page.error}); kept the feed summary")


def process(records: Iterable[dict[str, Any]], store: Store | None) -> list[dict[str, Any]]:
    """clean -> tag -> dedupe; records that fail a stage keep their ``error`` and skip the rest.

    Clean and tag run where ``settings.workers`` says (:mod:`pipeline.workers`); dedupe reads the store
    and runs here, after them (tagging does not read what dedupe adds)."""
    return dedupe_prepared(start(records, get_settings().workers).result(), store)


def dedupe_prepared(prepared: list[dict[str, Any]], store: Store | None) -> list[dict[str, Any]]:
    """Dedupe cleaned and tagged records against ``store``; the failed ones come back last, unchanged."""
    failed = [r for r in prepared if r.get("error")]
    ok = [r for r in prepared if not r.get("error")]
    return list(Deduper(store).run(ok)) + failed


#: The fields :func:`pipeline.dedupe.reconcile` needs of each article indexed in a run (it computes the LSH
#: band keys from the ``minhash``).
RECONCILE_FIELDS = ("id", "cluster_id", "duplicate_of", "content_hash", "minhash", "published_at")


def kept_for_reconcile(record: dict[str, Any]) -> dict[str, Any]:
    """What a run keeps of an indexed article until its reconcile: :data:`RECONCILE_FIELDS`, the signature
    as 32-bit integers (0.7 KB instead of 6 KB as a list of Python ints; 10 KB -> 1.3 KB an article with the
    band keys left out), so a run's memory grows slowly with the articles it indexes."""
    kept = {k: record.get(k) for k in RECONCILE_FIELDS}
    if isinstance(kept["minhash"], list):
        kept["minhash"] = array("I", kept["minhash"])
    return kept


def index_entries(
    store: Store,
    entries: list[dict[str, Any]],
    stats_of: Callable[[dict[str, Any]], FeedStats],
    preparing: Preparing | None = None,
) -> list[dict[str, Any]]:
    """Process and index new entries (of one feed or several: ``stats_of(entry)`` is the feed's
    :class:`FeedStats`), recording counts and errors in each feed's stats. ``preparing``: the entries
    already on their way through clean and tag (:func:`pipeline.workers.start`), else started here.

    Returns the indexed articles cut down to what reconcile needs (:func:`kept_for_reconcile`)."""
    owner = {e["id"]: stats_of(e) for e in entries}
    preparing = preparing or start(entries, get_settings().workers)
    good: list[dict[str, Any]] = []
    for record in dedupe_prepared(preparing.result(), store):
        if record.get("error"):
            stats = owner.get(str(record.get("id"))) or next(iter(owner.values()))
            stats.errors.append(f"{record.get('url') or record.get('id')}: {record['error']}")
        else:
            good.append(record)
    note_pending(store, [r["id"] for r in good])  # a run killed from here on is repaired by the next
    report = store.index(good)
    failed_ids = {e["id"] for e in report.errors}
    causes: dict[tuple[int, str], list[str]] = {}  # one line per feed and distinct cause
    for e in report.errors:
        if (failed := owner.get(e["id"])) is None:
            continue
        failed.status = "error"  # the feed is not marked seen: the next run fetches it again
        causes.setdefault((id(failed), str(e["error"])), []).append(str(e["id"]))
    for (_, cause), ids in causes.items():
        owner[ids[0]].errors.append(
            f"{ids[0]}: {cause}" if len(ids) == 1 else f"{len(ids)} articles not stored: {cause}"
        )
    for r in good:
        if r["id"] not in failed_ids:
            owner[r["id"]].new += 1
            owner[r["id"]].duplicates += bool(r.get("duplicate_of"))
    return [kept_for_reconcile(r) for r in good if r["id"] not in failed_ids]


def feed_state_after(
    fetch_state: dict[str, Any] | None, previous: dict[str, Any] | None, stats: FeedStats
) -> dict[str, Any]:
    """The feed's new state: the fetch's validators (``FetchResult.state``) plus a health record.

    Plain data in, plain data out, so the CLI run and the Airflow index step (which reads the
    validators back from staging) call it alike.
    """
    now = datetime.now(UTC).isoformat()
    state = dict(previous or {})
    health = dict(state.get("health") or {})
    if stats.errors and stats.status == "error":
        health["last_error"] = stats.errors[0]
        health["last_error_at"] = now
        health["consecutive_failures"] = int(health.get("consecutive_failures", 0)) + 1
    else:
        state.update(fetch_state or {})
        health["last_success_at"] = now
        health["consecutive_failures"] = 0
        if stats.errors:
            health["last_error"] = stats.errors[0]
            health["last_error_at"] = now
        days = health.setdefault("new_per_day", {})
        day = now[:10]
        days[day] = int(days.get(day, 0)) + stats.new
        for old in sorted(days)[:-14]:  # keep two weeks
            del days[old]
    health["status"] = stats.status
    health["last_poll_at"] = now
    state["health"] = health
    if stats.status == "ok":  # a feed that was parsed says afresh how often to poll it
        state["poll_seconds"] = stats.poll_seconds
    return state


@dataclass
class _Batch:
    """New entries of one or more feeds waiting to be processed and indexed together, and the feeds
    whose state is saved once the entries they contributed are indexed."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    owner: dict[str, tuple[FeedConfig, FeedStats]] = field(default_factory=dict)  # entry id -> its feed
    done: list[tuple[FeedConfig, FetchResult, FeedStats]] = field(default_factory=list)  # fetched whole

    def add(self, feed: FeedConfig, stats: FeedStats, entries: list[dict[str, Any]]) -> None:
        """Add ``entries`` of ``feed`` (:meth:`_Pass.add` leaves out the ids another feed gave first)."""
        for e in entries:
            self.owner[e["id"]] = (feed, stats)
            self.entries.append(e)

    def holds(self, stats: FeedStats) -> bool:
        return any(s is stats for _, s in self.owner.values())


@dataclass
class _Pending:
    """A chunk of a feed's new entries waiting for its article pages (``last``: the feed's last chunk)."""

    feed: FeedConfig
    result: FetchResult
    stats: FeedStats
    entries: list[dict[str, Any]]
    last: bool
    future: Future[None] | None = None


class _PageFetches:
    """Article pages fetched in one background thread while the run cleans, tags and indexes what it has
    (the run's own thread would otherwise wait for every page). One :func:`add_full_text` at a time, in
    the order asked: its per-host limits hold as when the run fetched them itself. At most
    :data:`PAGES_AHEAD` entries (one chunk more when a chunk is bigger) are handed to the thread and not
    taken yet: the rest wait without their pages, so memory stays flat however many entries are asked."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._backlog: deque[tuple[_Pending, Settings]] = deque()  # not handed to the thread yet
        self._queue: deque[_Pending] = deque()  # handed to the thread, not taken yet
        self._waiting = 0  # entries in the queue

    def submit(self, pending: _Pending, settings: Settings) -> None:
        self._backlog.append((pending, settings))
        self._hand_over()

    def _hand_over(self) -> None:
        while self._backlog and (not self._queue or self._waiting < PAGES_AHEAD):
            pending, settings = self._backlog.popleft()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="newswire-pages")
            p = pending
            p.future = self._pool.submit(add_full_text, p.feed, p.entries, p.stats, settings)
            self._queue.append(p)
            self._waiting += len(p.entries)

    def ready(self, wait: bool) -> Iterator[tuple[_Pending, BaseException | None]]:
        """The chunks whose pages are in, in the order asked, each with the exception its fetch raised (or
        None); with ``wait``, every chunk asked for, waiting for each."""
        while self._queue:
            head = self._queue[0]
            assert head.future is not None
            if not (wait or head.future.done()):
                return
            error = head.future.exception()
            self._queue.popleft()
            self._waiting -= len(head.entries)
            self._hand_over()
            yield head, error

    def close(self) -> None:
        """Stop the thread (at the end of the pass; what it still fetches is dropped)."""
        self._backlog.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class _Pass:
    """The state of one :func:`ingest` pass: the open batch, the batch in flight (being cleaned and
    tagged while the open one fills), what was indexed, the report."""

    def __init__(
        self, store: Store, previous: dict[str, Any], on_feed: Callable[[FeedStats], None] | None
    ) -> None:
        self.store, self.previous, self.on_feed = store, previous, on_feed
        self.batch = _Batch()
        self.in_flight: tuple[_Batch, Preparing | None] | None = None
        self.indexed: list[dict[str, Any]] = []
        self.report = RunReport()
        self.broken: set[int] = set()  # id() of the stats of feeds failed by an exception
        self.taken: set[str] = set()  # ids of the entries this pass put in a batch
        self.pages = _PageFetches()

    def feed(self, feed: FeedConfig, result: FetchResult, settings: Settings) -> None:
        """Gather one fetched feed's new entries: at once, or once their article pages are in (fetched in
        the background while the run works on what it has); flush whenever the batch is full."""
        stats = FeedStats(name=feed.name, url=feed.url, status=result.status)
        try:
            chunks = list(fresh_entries(feed, result, self.store, stats, settings))
        except Exception as exc:  # a bug on one feed must not end the pass
            log.debug("feed %s failed", redact(feed.url), exc_info=True)
            self.failed(feed, stats, exc)
            chunks = []
        fetch = [settings.fetch_full_text and any(needs_full_text(feed, e) for e in c) for c in chunks]
        for chunk in (c for c, pages in zip(chunks, fetch, strict=True) if not pages):
            self.add(feed, stats, chunk)
        paged = [c for c, pages in zip(chunks, fetch, strict=True) if pages]
        if not paged:
            self.close(feed, result, stats)
            return
        for k, chunk in enumerate(paged):
            self.pages.submit(_Pending(feed, result, stats, chunk, last=k == len(paged) - 1), settings)
        self.take_pages(wait=False)

    def take_pages(self, wait: bool) -> None:
        """Add the entries whose pages are in, in the order they were asked for (with ``wait``: all of
        them, waiting for each)."""
        for pending, error in self.pages.ready(wait):
            if error is not None:
                log.debug("feed %s: pages failed", redact(pending.feed.url), exc_info=error)
                self.failed(pending.feed, pending.stats, error)
            else:
                self.add(pending.feed, pending.stats, pending.entries)
            if pending.last:
                self.close(pending.feed, pending.result, pending.stats)

    def add(self, feed: FeedConfig, stats: FeedStats, fresh: list[dict[str, Any]]) -> None:
        """Add a feed's new entries to the open batch, but none this pass already took (another feed listed
        it); a batch never holds more than BATCH_ENTRIES: the rest goes to the next."""
        try:
            fresh = [e for e in fresh if e["id"] not in self.taken]
            self.taken.update(e["id"] for e in fresh)
            while fresh:
                room = max(1, BATCH_ENTRIES - len(self.batch.entries))
                part, fresh = fresh[:room], fresh[room:]
                self.batch.add(feed, stats, part)
                if len(self.batch.entries) >= BATCH_ENTRIES:
                    self.flush()
        except Exception as exc:  # a bug on one feed must not end the pass
            log.debug("feed %s failed", redact(feed.url), exc_info=True)
            self.failed(feed, stats, exc)

    def close(self, feed: FeedConfig, result: FetchResult, stats: FeedStats) -> None:
        """All of a feed's entries are in batches: save its state now, or once they are indexed."""
        if self.batch.holds(stats) or (self.in_flight and self.in_flight[0].holds(stats)):
            self.batch.done.append((feed, result, stats))  # saved when all its entries are indexed
        else:
            self.finish(feed, result, stats)

    def flush(self) -> None:
        """Start cleaning and tagging the open batch (:func:`pipeline.workers.start`), then index the
        batch in flight: the next batch is prepared while this one is written and more feeds fetched."""
        current, self.batch = self.batch, _Batch()
        started = (current, self._start(current))
        if started[1] is not None:  # the batch is held by its Preparing: keep the ids only, not the pages
            current.entries = [{"id": e["id"]} for e in current.entries]
        self._index_in_flight()
        self.in_flight = started

    def drain(self, last: bool = False) -> None:
        """Index the open batch (with the entries whose pages are in) and the one in flight, now: nothing
        else is waiting. ``last``: then wait for the pages still being fetched and index those entries too
        (a slow site's pages never hold back the articles of the others)."""
        for wait in (False, True) if last else (False,):
            self.take_pages(wait=wait)
            self.flush()
            self._index_in_flight()

    def _start(self, batch: _Batch) -> Preparing | None:
        if not batch.entries:
            return None
        try:
            return start(batch.entries, get_settings().workers)
        except Exception:  # e.g. no worker process could start: index_entries tries again, fails the feeds
            log.warning("could not start preparing %d entries", len(batch.entries), exc_info=True)
            return None

    def _index_in_flight(self) -> None:
        """Index the batch in flight; then save the state of the feeds it completes."""
        if self.in_flight is None:
            return
        (current, preparing), self.in_flight = self.in_flight, None
        if current.entries:
            try:
                owner = current.owner
                self.indexed.extend(
                    index_entries(self.store, current.entries, lambda e: owner[e["id"]][1], preparing)
                )
            except Exception as exc:  # a bug or a store outage: one line for each feed of the batch
                log.debug("batch of %d entries failed", len(current.entries), exc_info=True)
                for feed, stats in {id(s): (f, s) for f, s in current.owner.values()}.values():
                    self.failed(feed, stats, exc)
        self.finish_all(current.done)

    def finish(self, feed: FeedConfig, result: FetchResult, stats: FeedStats) -> None:
        """Save the state of a feed whose entries are all indexed (not of a failed one); report it."""
        self.finish_all([(feed, result, stats)])

    def finish_all(self, done: list[tuple[FeedConfig, FetchResult, FeedStats]]) -> None:
        """:meth:`finish` for several feeds, their states saved in one store write (a batch completes
        several feeds: one request and one sync instead of one per feed)."""
        states: dict[str, tuple[FeedConfig, FeedStats, dict[str, Any]]] = {}
        for feed, result, stats in done:
            if id(stats) not in self.broken:
                try:
                    states[feed.url] = (
                        feed,
                        stats,
                        feed_state_after(result.state, self.previous[feed.url], stats),
                    )
                except Exception as exc:  # a bug on one feed must not fail the others
                    log.debug("feed %s: state not computed", redact(feed.url), exc_info=True)
                    self.failed(feed, stats, exc)
        if states:
            try:
                self.store.put_feed_states({url: state for url, (_, _, state) in states.items()})
            except Exception:  # e.g. bulk requests refused: each feed alone, as its own write retries
                log.debug("%d feed states not saved together", len(states), exc_info=True)
                self._save_one_by_one(states)
        for _, _, stats in done:
            self.report.feeds.append(stats)
            if self.on_feed:
                self.on_feed(stats)

    def _save_one_by_one(self, states: dict[str, tuple[FeedConfig, FeedStats, dict[str, Any]]]) -> None:
        for url, (feed, stats, state) in states.items():
            try:
                self.store.put_feed_state(url, state)
            except Exception as exc:  # a store outage: the feed is not marked seen
                log.debug("feed %s: state not saved", redact(feed.url), exc_info=True)
                self.failed(feed, stats, exc)

    def failed(self, feed: FeedConfig, stats: FeedStats, exc: BaseException) -> None:
        """One line per feed in the report (a dead store fails every feed alike); never twice."""
        if id(stats) not in self.broken:
            self.broken.add(id(stats))
            log.info("feed %s failed: %s", redact(feed.url), redact(_one_line(exc)))
            record_feed_failure(feed, stats, exc)


def ingest(
    feeds: list[FeedConfig],
    store: Store,
    settings: Settings | None = None,
    on_feed: Callable[[FeedStats], None] | None = None,
) -> RunReport:
    """One pass over ``feeds`` into ``store``; ``on_feed`` is called as each feed finishes.

    Feeds are processed as their fetches complete (the article pages of summary-only entries are
    fetched in a background thread meanwhile: an entry joins a batch once its page is in), their new
    entries gathered across feeds into batches of :data:`BATCH_ENTRIES` (one clean/tag/dedupe pass,
    one bulk write and one refresh per batch, not per feed), written when full, when no feed
    completed for :data:`BATCH_WAIT` seconds, and at the end. A full batch is cleaned and tagged
    (:mod:`pipeline.workers`) while the next one fills, then deduped and indexed here, one batch at a
    time and in order; a feed's state is saved once every entry it contributed is indexed. So a
    copy may be indexed before its original; the pass ends with
    :func:`pipeline.dedupe.reconcile_pending` over the articles it indexed and those a killed run
    left, which names every touched cluster after its earliest member. A store that fails mid-pass
    costs one error line per feed (the feed is not marked seen) and, when the reconcile fails too,
    one in ``RunReport.errors``.
    """
    settings = settings or get_settings()
    by_url = {f.url: f for f in feeds}
    run = _Pass(store, {f.url: store.get_feed_state(f.url) for f in feeds}, on_feed)
    try:
        for result in fetch_feeds_or_idle(
            [(f.url, run.previous[f.url]) for f in feeds], BATCH_WAIT, settings
        ):
            if result is None:  # no feed completed for BATCH_WAIT seconds: write what the batches hold
                run.drain()
            else:
                run.feed(by_url[result.url], result, settings)
        run.drain(last=True)
    finally:
        run.pages.close()
    try:  # also repairs what a run killed before its reconcile left (the journal of note_pending)
        reconcile_pending(store, run.indexed)
    except Exception as exc:  # the journal keeps the ids: the next run or `newswire reconcile` repairs
        log.debug("reconcile failed", exc_info=True)
        run.report.errors.append(
            redact(f"reconcile: {_one_line(exc)}; run `newswire reconcile` once the store is back")
        )
    return run.report


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, at most 300 characters (client errors can be long)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def record_feed_failure(feed: FeedConfig, stats: FeedStats, exc: BaseException) -> None:
    """Mark one feed failed by an unexpected exception: status ``error`` and one redacted line
    (``<feed url>: Type: message``, at most 300 characters of message) in ``stats.errors``."""
    stats.status = "error"
    stats.errors.append(redact(f"{feed.url}: {_one_line(exc)}"))


def new_entries(
    feed: FeedConfig, result: FetchResult, store: Store, stats: FeedStats, settings: Settings
) -> Iterator[list[dict[str, Any]]]:
    """The fetch step of one feed after its HTTP fetch: status -> parse -> drop stored ids -> full text.

    Yields the feed's entries whose ids are not in ``store`` yet, at most :data:`FEED_CHUNK` at a
    time (memory stays flat in a feed's size), with the article page fetched for summary-only
    entries when ``settings.fetch_full_text``; records status, errors and warnings in ``stats``.
    Reads the store (known ids) and writes nothing to it. The one home of this step: the CLI run
    (:func:`ingest`, which fetches the pages of :func:`fresh_entries` in the background) gathers chunks of
    several feeds into batches, the Airflow fetch task stages them (:func:`pipeline.tasks.fetch_group`).
    """
    for fresh in fresh_entries(feed, result, store, stats, settings):
        if settings.fetch_full_text:
            add_full_text(feed, fresh, stats, settings)
        yield fresh


def fresh_entries(
    feed: FeedConfig, result: FetchResult, store: Store, stats: FeedStats, settings: Settings
) -> Iterator[list[dict[str, Any]]]:
    """:func:`new_entries` before the article pages: the feed's entries not in ``store``, in chunks."""
    if result.status == "error":
        stats.errors.append(redact(result.error or f"{feed.url}: fetch failed"))
        return
    if result.status in ("not_modified", "gone"):
        if result.status == "gone":
            stats.warnings.append(f"{redact(feed.url)}: 410 Gone: the feed is retired")
        return
    entries = parse_fetched(feed, result, stats, settings)
    if stats.errors and not entries:
        stats.status = "error"
        return
    known = store.known_ids(e["id"] for e in entries)
    chunks = [entries[i : i + FEED_CHUNK] for i in range(0, len(entries), FEED_CHUNK)]
    del entries
    while chunks:
        fresh = [e for e in chunks.pop(0) if e["id"] not in known]
        if fresh:
            yield fresh


def next_poll_delay(feed: FeedConfig, state: dict[str, Any] | None, settings: Settings) -> float:
    """Seconds until ``feed`` is due again: what the feed or server asked when it did (ttl,
    sy:updatePeriod, Cache-Control max-age, Retry-After), else the feed's configured interval,
    else the global one; doubled for each consecutive failure (at most a day)."""
    state = state or {}
    base = float(state.get("poll_seconds") or feed.interval or settings.poll_interval)
    failures = int((state.get("health") or {}).get("consecutive_failures", 0))
    return float(min(base * (2 ** min(failures, 6)), 24 * 3600.0))


def watch(
    feeds: list[FeedConfig],
    store: Store,
    settings: Settings | None = None,
    on_feed: Callable[[FeedStats], None] | None = None,
    max_passes: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll feeds forever (or ``max_passes`` times), each on its own schedule."""
    settings = settings or get_settings()
    due = {f.url: 0.0 for f in feeds}
    passes = 0
    while max_passes is None or passes < max_passes:
        now = time.monotonic()
        ready = [f for f in feeds if due[f.url] <= now]
        if ready:
            ingest(ready, store, settings, on_feed)
            passes += 1
            for f in ready:
                due[f.url] = time.monotonic() + next_poll_delay(f, store.get_feed_state(f.url), settings)
        if max_passes is not None and passes >= max_passes:
            break
        sleep(max(0.5, min(due.values()) - time.monotonic()))
