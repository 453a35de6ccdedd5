"""The fetcher of one run: an httpx client with the run's limits, safety policy and robots cache.

Contract: :class:`Fetcher` is used as ``async with Fetcher(settings, options) as f`` and
offers :meth:`Fetcher.fetch_feed` and :meth:`Fetcher.fetch_page`, which never raise (every
failure is a ``status="error"`` :class:`~pipeline.fetch.results.FetchResult`; an
unexpected exception is also logged with its traceback). Each request waits for a slot
per host name and one overall (``per_host_concurrency``, ``concurrency``); the
``total_timeout`` budget of a URL starts with its first slot and covers every hop, retry
and back-off. Redirects (:mod:`~pipeline.fetch.redirects`), retries
(:mod:`~pipeline.fetch.retry`), bodies (:mod:`~pipeline.fetch.decoding`), connections
(:mod:`~pipeline.fetch.transport`) and feed state (:mod:`~pipeline.fetch.feeds`) are
the other modules; cookies, proxies and ``.netrc`` are never used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import httpx

from pipeline.fetch.decoding import read_body
from pipeline.fetch.errors import FetchError, _reason
from pipeline.fetch.feeds import _file_path, error_result, fetch_feed_http, fetch_file
from pipeline.fetch.redirects import follow_redirects
from pipeline.fetch.results import ACCEPT_ENCODING, PAGE_ACCEPT, FetchOptions, FetchResult, _Reply
from pipeline.fetch.retry import _Attempts, _Budget, send_with_retries
from pipeline.fetch.safety import AddressPolicy
from pipeline.fetch.transport import _PerHostTransport
from pipeline.redaction import redact
from pipeline.robots import MAX_BYTES as ROBOTS_MAX_BYTES
from pipeline.robots import RobotsCache
from pipeline.settings import Settings, get_settings

log = logging.getLogger(__name__)


class Fetcher:
    """One async HTTP client with the limits, safety policy and robots cache of a run.

    Use as ``async with Fetcher(settings) as f: await f.fetch_feed(url, state)``.
    """

    def __init__(self, settings: Settings | None = None, options: FetchOptions | None = None) -> None:
        self.settings = settings or get_settings()
        self.options = options or FetchOptions()
        self.policy = AddressPolicy(self.settings.allow_hosts)
        self._global = asyncio.Semaphore(max(1, self.settings.concurrency))
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._client: httpx.AsyncClient | None = None
        self.robots = RobotsCache(self.settings.user_agent, self._fetch_robots)

    async def __aenter__(self) -> Fetcher:
        s = self.settings
        self._client = httpx.AsyncClient(
            transport=_PerHostTransport(self.policy, s.per_host_concurrency),
            timeout=httpx.Timeout(
                connect=s.connect_timeout, read=s.read_timeout, write=s.read_timeout, pool=s.total_timeout
            ),
            follow_redirects=False,
            trust_env=False,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            headers={"User-Agent": s.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---- one HTTP exchange, under the limits

    @asynccontextmanager
    async def _slot(self, url: str) -> AsyncIterator[None]:
        host = (urlsplit(url).hostname or "").lower()
        sem = self._hosts.get(host)
        if sem is None:
            sem = self._hosts[host] = asyncio.Semaphore(max(1, self.settings.per_host_concurrency))
        async with sem, self._global:  # host first: a queued host never holds a global slot
            yield

    async def _exchange(
        self, url: str, headers: dict[str, str], budget: _Budget, max_bytes: int, truncate: bool
    ) -> _Reply:
        assert self._client is not None, "use Fetcher as an async context manager"
        async with self._slot(url):
            budget.start()
            remaining = budget.remaining()
            if remaining <= 0:
                raise FetchError(
                    f"timed out: no complete response within {budget.total:g}s (total timeout)",
                    timed_out=True,
                )
            try:
                async with asyncio.timeout(remaining):
                    async with self._client.stream("GET", url, headers=headers) as resp:
                        hdrs = {k.lower(): v for k, v in resp.headers.items()}
                        body = b""
                        if 200 <= resp.status_code < 300 and resp.status_code != 204:
                            body = await read_body(resp, hdrs, max_bytes, truncate)
                        return _Reply(resp.status_code, hdrs, body, url)
            except TimeoutError as exc:
                raise FetchError(
                    f"timed out: no complete response within {budget.total:g}s (total timeout)",
                    timed_out=True,
                ) from exc

    # ---- one URL: redirects, each hop with retries

    async def _get(
        self,
        url: str,
        accept: str,
        *,
        extra: dict[str, str] | None = None,
        max_bytes: int | None = None,
        truncate: bool = False,
        robots: bool = False,
        max_retries: int | None = None,
    ) -> tuple[_Reply, bool]:
        """GET ``url`` following redirects; returns (last reply, whether all hops were permanent)."""
        s = self.settings
        budget = _Budget(s.total_timeout)
        retries = s.max_retries if max_retries is None else max_retries
        limit = s.max_body_bytes if max_bytes is None else max_bytes
        attempts = _Attempts()

        async def send(target: str, headers: dict[str, str], hop: str | None) -> _Reply:
            return await send_with_retries(
                lambda: self._exchange(target, headers, budget, limit, truncate),
                attempts=attempts,
                retries=retries,
                budget=budget,
                settings=s,
                options=self.options,
                hop=hop,
            )

        return await follow_redirects(
            url,
            send,
            accept=accept,
            extra=extra,
            max_redirects=s.max_redirects,
            robots_check=self.robots.check if robots else None,
        )

    async def _fetch_robots(self, robots_url: str) -> tuple[int | None, bytes, bool]:
        try:
            reply, _ = await self._get(
                robots_url, "text/plain, */*;q=0.5", max_bytes=ROBOTS_MAX_BYTES, truncate=True, max_retries=1
            )
            return reply.status, reply.body, False
        except FetchError as exc:
            return exc.http_status, b"", exc.unsafe

    # ---- feeds

    async def fetch_feed(self, url: str, state: dict[str, Any] | None = None) -> FetchResult:
        """Fetch one feed; never raises (failures are ``status="error"`` results)."""
        t0 = time.monotonic()
        prev = dict(state or {})
        try:
            path = _file_path(url)
            if path is not None:
                result = await fetch_file(url, path, prev, self.settings, self.options)
            else:
                result = await fetch_feed_http(self._get_feed, url, prev, self.options)
        except FetchError as exc:
            result = error_result(url, prev, exc)
        except Exception as exc:  # a bug here must not stop the other feeds
            log.warning("unexpected error fetching feed %s", redact(url), exc_info=True)
            result = error_result(url, prev, FetchError(f"unexpected {type(exc).__name__}: {exc}"))
        result.elapsed = time.monotonic() - t0
        return result

    async def _get_feed(self, url: str, accept: str, extra: dict[str, str]) -> tuple[_Reply, bool]:
        return await self._get(url, accept, extra=extra)

    # ---- pages

    async def fetch_page(self, url: str) -> FetchResult:
        """Fetch one article page (http/https only, robots.txt honoured); never raises."""
        t0 = time.monotonic()
        try:
            reply, _ = await self._get(url, PAGE_ACCEPT, robots=self.settings.respect_robots)
            if reply.status == 410:
                result = FetchResult(
                    url, reply.url, "gone", 410, b"", reply.headers, f"{redact(url)}: {_reason(410)}"
                )
            elif not 200 <= reply.status < 300:
                raise FetchError(_reason(reply.status), http_status=reply.status, headers=reply.headers)
            else:
                result = FetchResult(url, reply.url, "ok", reply.status, reply.body, reply.headers)
        except FetchError as exc:
            result = FetchResult(
                url, url, "error", exc.http_status, b"", exc.headers, f"{redact(url)}: {exc}"
            )
        except Exception as exc:  # a bug here must not stop the other pages
            log.warning("unexpected error fetching page %s", redact(url), exc_info=True)
            result = FetchResult(
                url, url, "error", None, b"", {}, f"{redact(url)}: unexpected {type(exc).__name__}: {exc}"
            )
        result.elapsed = time.monotonic() - t0
        return result
