"""The public entry points: fetch feeds and pages concurrently, and read a server's polling hint.

Contract: :func:`fetch_feeds` yields one :class:`~pipeline.fetch.results.FetchResult` per
feed as each completes (an async generator driven on a private event loop in a thread);
:func:`fetch_pages` returns ``{url: FetchResult}``; :func:`afetch_feeds` and
:func:`afetch_pages` are the async twins; at most ``window`` fetches are started ahead of
the consumer. :func:`poll_hint` reads Retry-After, Cache-Control max-age and Expires.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pipeline.fetch.client import Fetcher
from pipeline.fetch.results import FetchOptions, FetchResult
from pipeline.settings import Settings, get_settings


def poll_hint(result: FetchResult) -> float | None:
    """Seconds the server asks us to wait before the next poll, from HTTP alone, or None.

    ``Retry-After`` (on 429/503) wins; else ``Cache-Control: max-age`` minus ``Age``; else
    ``Expires`` minus ``Date``. Watch mode combines it with the feed's own ttl /
    sy:updatePeriod (parse stage) and the configured interval.
    """
    retry_after = result.state.get("retry_after")
    if isinstance(retry_after, int | float):
        return float(retry_after)
    headers = result.headers
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip().strip('"').isdigit():
            age = headers.get("age", "0").strip()
            return max(0.0, float(value.strip().strip('"')) - (float(age) if age.isdigit() else 0.0))
    expires, date = headers.get("expires"), headers.get("date")
    if expires:
        try:
            end = email.utils.parsedate_to_datetime(expires)
            start = email.utils.parsedate_to_datetime(date) if date else datetime.now(UTC)
        except (TypeError, ValueError):
            return None
        if end.tzinfo is None or start.tzinfo is None:
            return None
        return max(0.0, (end - start).total_seconds())
    return None


T = TypeVar("T")
R = TypeVar("R")


async def _bounded_map(
    items: Iterable[T], work: Callable[[T], Awaitable[R]], window: int
) -> AsyncIterator[R]:
    """Run ``work`` over ``items`` with at most ``window`` unfinished-or-unconsumed tasks;
    yield results in completion order. Pending tasks are cancelled if the consumer stops."""
    source = iter(items)
    pending: set[asyncio.Task[R]] = set()

    def refill() -> None:
        while len(pending) < window:
            try:
                item = next(source)
            except StopIteration:
                return
            pending.add(asyncio.ensure_future(work(item)))

    refill()
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                pending.discard(task)
                yield task.result()
                refill()
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _window(settings: Settings, options: FetchOptions) -> int:
    return options.window or max(64, 4 * max(1, settings.concurrency))


async def afetch_feeds(
    requests: Iterable[tuple[str, dict[str, Any] | None]],
    settings: Settings | None = None,
    options: FetchOptions | None = None,
) -> AsyncIterator[FetchResult]:
    """Async generator twin of :func:`fetch_feeds`."""
    settings = settings or get_settings()
    options = options or FetchOptions()
    async with Fetcher(settings, options) as fetcher:
        async for result in _bounded_map(
            requests, lambda req: fetcher.fetch_feed(req[0], req[1]), _window(settings, options)
        ):
            yield result


async def afetch_pages(
    urls: Iterable[str], settings: Settings | None = None, options: FetchOptions | None = None
) -> dict[str, FetchResult]:
    """Async twin of :func:`fetch_pages`."""
    settings = settings or get_settings()
    options = options or FetchOptions()
    results: dict[str, FetchResult] = {}
    async with Fetcher(settings, options) as fetcher:
        async for result in _bounded_map(dict.fromkeys(urls), fetcher.fetch_page, _window(settings, options)):
            results[result.url] = result
    return results


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


def _iterate_in_thread(make: Callable[[], AsyncIterator[T]], idle: float | None = None) -> Iterator[T | None]:
    """Drive an async generator on a private event loop in a thread; yield its items here.

    The loop keeps running between items, so fetches progress while the caller works on a
    result; closing the iterator early cancels what is still in flight. With ``idle``, ``None``
    is yielded whenever no item came for ``idle`` seconds (the caller may do other work).
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="newswire-fetch", daemon=True)
    thread.start()
    agen = make()
    try:
        while True:
            future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(_anext(agen), loop)
            while True:
                try:
                    item = future.result(timeout=idle)
                    break
                except concurrent.futures.TimeoutError:
                    yield None
                except StopAsyncIteration:
                    return
            yield item
    finally:
        try:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                asyncio.run_coroutine_threadsafe(aclose(), loop).result()
            asyncio.run_coroutine_threadsafe(loop.shutdown_default_executor(), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


def fetch_feeds(
    requests: Sequence[tuple[str, dict[str, Any] | None]] | Iterable[tuple[str, dict[str, Any] | None]],
    settings: Settings | None = None,
    options: FetchOptions | None = None,
) -> Iterator[FetchResult]:
    """Fetch feeds concurrently; yield a :class:`FetchResult` per feed as each completes.

    ``requests`` holds (feed URL, previous state or None). Feed URLs may be http(s),
    ``file://`` URLs or local paths (from the operator's configuration only).
    """
    settings = settings or get_settings()
    for result in _iterate_in_thread(lambda: afetch_feeds(requests, settings, options)):
        if result is not None:  # always (no idle ticks without ``idle``)
            yield result


def fetch_feeds_or_idle(
    requests: Iterable[tuple[str, dict[str, Any] | None]], idle: float, settings: Settings | None = None
) -> Iterator[FetchResult | None]:
    """:func:`fetch_feeds`, yielding ``None`` whenever no feed completed for ``idle`` seconds (so a
    caller gathering feeds into batches can write what it holds while a slow feed is still coming)."""
    settings = settings or get_settings()
    return _iterate_in_thread(lambda: afetch_feeds(requests, settings, None), idle)


def fetch_pages(
    urls: Sequence[str] | Iterable[str], settings: Settings | None = None, options: FetchOptions | None = None
) -> dict[str, FetchResult]:
    """Fetch article pages concurrently; ``{url: FetchResult}`` for every distinct URL."""
    settings = settings or get_settings()
    out: dict[str, FetchResult] = {}

    async def one() -> AsyncIterator[dict[str, FetchResult]]:
        yield await afetch_pages(urls, settings, options)

    for batch in _iterate_in_thread(one):
        out.update(batch or {})
    return out
