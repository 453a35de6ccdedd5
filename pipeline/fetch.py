"""Fetch stage: polite, bounded, incremental HTTP for feeds and article pages.

Contract (the public names are used by ``pipeline.run`` and the DAG tasks):

- :func:`fetch_feeds` takes ``(feed URL, previous state or None)`` pairs and yields one
  :class:`FetchResult` per feed **as each completes** (a slow feed never holds the others
  up). :func:`afetch_feeds` is the same as an async generator.
- :func:`fetch_pages` fetches article pages (robots.txt honoured, safety checks on) and
  returns ``{url: FetchResult}``; :func:`afetch_pages` is the async twin.
- Nothing raises for a bad URL or a misbehaving server: every failure is a result with
  ``status="error"`` and an ``error`` that starts with the URL (password redacted), e.g.
  ``"http://x/feed.xml: body larger than 5242880 bytes"``.
- ``FetchResult.state`` is the feed's new state. The caller stores it only AFTER the
  feed's articles are indexed, so a crash never marks unindexed articles as seen.

Behaviour, from :class:`~pipeline.settings.Settings`:

- Limits: ``concurrency`` requests in flight overall, ``per_host_concurrency`` per host
  name. Timeouts: ``connect_timeout``, ``read_timeout`` (between bytes) and
  ``total_timeout``, which bounds the whole fetch of one URL (every redirect hop, retry
  and back-off), counted from the moment it got its first connection slot.
- Retries: up to ``max_retries`` on connection errors, timeouts of a single read, 408, 429
  and 5xx (not 501/505), with exponential back-off and jitter; ``Retry-After`` (seconds or
  HTTP date) is honoured, capped at :attr:`FetchOptions.retry_after_cap`; a wait that
  would overrun the time budget fails at once with a message saying so.
- Redirects are followed by hand, at most ``max_redirects``, loops detected, so that each
  hop is checked (scheme, address, robots.txt for pages).
- Bodies: gzip, deflate and brotli are decoded here with bounded decompressors, so the
  ``max_body_bytes`` limit applies to *decoded* bytes while streaming (a 100 MB gzip bomb
  costs at most ``max_body_bytes`` of memory); a larger ``Content-Length`` fails before
  reading.
- Safety: only http and https (``file://`` and plain paths only for feed URLs from the
  configuration, never for article links or redirect targets). Every connection resolves
  the host itself and connects only to addresses that are global unicast, unless the host
  name or a network in ``allow_hosts`` permits it; the check lives in the connection
  layer, so it holds after every redirect and against DNS rebinding. Credentials in a
  feed URL (``https://user:pw@host/feed``) are sent only to that URL's origin, never
  after a redirect to another one; cookies are never stored; proxies and ``.netrc`` from
  the environment are ignored.
- Conditional GET: ETag / Last-Modified from the state; 304 -> ``not_modified``; a 200
  whose body is byte-identical to the last one (``body_hash``) is also ``not_modified``.
  Stale-validator guard: every ``unconditional_every``-th poll is unconditional; when it
  shows a changed body under an unchanged strong ETag (or, without ETag, an unchanged
  Last-Modified), the server is caught answering stale 304s and conditional GET is turned
  off for that feed (``state["conditional"] = False``). 410 -> ``gone``.

State keys (all optional in the input): ``etag``, ``last_modified``, ``body_hash``,
``polls`` (conditional polls since the last unconditional one), ``conditional``,
``stale_caught``, ``gone``, ``moved_to`` (target of permanent redirects), ``final_url``,
``http_status``, ``checked_at``, ``last_ok_at``, ``failures`` (consecutive),
``last_error``, ``retry_after`` (seconds the server asked for), ``mtime`` (file feeds).

Written on httpx rather than by hand; what httpx does not offer (bounded decoding,
address checks at connect time, per-host limits, Retry-After) is the code below.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import email.utils
import hashlib
import ipaddress
import os
import random
import socket
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from urllib.request import url2pathname

import brotli
import httpcore
import httpx

from pipeline.redaction import redact
from pipeline.robots import MAX_BYTES as ROBOTS_MAX_BYTES
from pipeline.robots import RobotsCache
from pipeline.settings import Settings, get_settings

__all__ = [
    "FetchOptions",
    "FetchResult",
    "AddressPolicy",
    "afetch_feeds",
    "afetch_pages",
    "fetch_feeds",
    "fetch_pages",
    "poll_hint",
]

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.8"
ACCEPT_ENCODING = "gzip, deflate, br"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchOptions:
    """Knobs that are not operator settings (tests and benchmarks shorten them)."""

    unconditional_every: int = 10  #: every Nth poll of a feed ignores its validators
    backoff_base: float = 0.5  #: first back-off, seconds (doubles per retry, with jitter)
    backoff_cap: float = 30.0  #: longest back-off, seconds
    retry_after_cap: float = 60.0  #: longest Retry-After honoured inside one fetch, seconds
    window: int = 0  #: feeds started ahead of the consumer (0: 4 x concurrency, at least 64)


@dataclass
class FetchResult:
    """The outcome of fetching one URL; ``status`` is ok, not_modified, gone or error."""

    url: str
    final_url: str
    status: str
    http_status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    elapsed: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# --------------------------------------------------------------------------- errors


class FetchError(Exception):
    """A failure of one URL; the message does not repeat the URL (the caller prefixes it)."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        unsafe: bool = False,
        headers: dict[str, str] | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.http_status = http_status
        self.retry_after = retry_after
        self.unsafe = unsafe
        self.headers = headers or {}


class UnsafeAddressError(FetchError):
    """Refused by the safety policy (scheme or address); never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, unsafe=True)


# --------------------------------------------------------------------------- safety


def _address_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` is not a public unicast address, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour  # ::ffff:a.b.c.d and 2002:AABB:CCDD::/48 reach a.b.c.d
        if embedded is not None:
            return _address_kind(embedded)
    for attr, name in (
        ("is_loopback", "loopback"),
        ("is_unspecified", "unspecified"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attr):
            return name
    if not ip.is_global:
        return "non-global"
    return None


class AddressPolicy:
    """Which addresses may be connected to: global unicast, plus ``allow_hosts`` entries.

    An entry is a host name (``localhost``: any address it resolves to is allowed), an IP
    address or a network in CIDR notation (``10.0.0.0/8``).
    """

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow_hosts:
            entry = entry.strip().lower().strip("[]")
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry.rstrip("."))

    def name_allowed(self, host: str) -> bool:
        return host.lower().strip("[]").rstrip(".") in self.names

    def refusal(self, host: str, ip_text: str) -> str | None:
        """None when connecting to ``ip_text`` (resolved from ``host``) is allowed, else why not."""
        ip = ipaddress.ip_address(ip_text.split("%")[0])
        kind = _address_kind(ip)
        if kind is None or self.name_allowed(host):
            return None
        candidates = [ip] + (
            [ip.ipv4_mapped] if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else []
        )
        if any(c in net for c in candidates for net in self.networks if c.version == net.version):
            return None
        return f"address {ip} of {host!r} is {kind}; refused (allow it with NEWSWIRE_ALLOW_HOSTS)"


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself and connects only to addresses the policy allows.

    Doing this in the connection layer (not as a pre-check on the URL) means the address
    actually connected to is the one checked: no window for DNS rebinding, and every
    redirect hop and every new connection is covered.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        host = host.strip("[]")
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=timeout
            )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"DNS lookup of {host!r} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in addresses if self.policy.refusal(host, a) is None]
        if not allowed:
            reason = self.policy.refusal(host, addresses[0]) if addresses else f"{host!r} has no address"
            raise UnsafeAddressError(reason or "refused")
        last: Exception | None = None
        for address in allowed:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeAddressError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose network backend is :class:`_GuardedBackend`.

    httpx builds its pool in ``__init__`` (and loads CA certificates there, ~0.1 s); this
    subclass builds the pool itself from a shared SSL context instead and reuses httpx's
    request/response conversion and exception mapping unchanged.
    """

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:  # no super().__init__: see above
        self._pool = pool


class _CountedStream(httpx.AsyncByteStream):
    """A response stream that tells its pool when it is closed (for idle-pool eviction)."""

    def __init__(self, inner: httpx.AsyncByteStream, done: Callable[[], None]) -> None:
        self.inner = inner
        self.done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            if self.done is not None:
                self.done()
                self.done = None


@dataclass
class _HostPool:
    transport: _GuardedTransport
    active: int = 0


class _PerHostTransport(httpx.AsyncBaseTransport):
    """One small connection pool per origin; idle pools beyond :attr:`max_idle_pools` are closed.

    httpcore's pool scans every pooled connection for every request (quadratic with
    hundreds of keep-alive connections to different hosts: it capped a 500-feed run at
    ~60 feeds/s); per-origin pools of ``per_host_concurrency`` connections keep that scan
    short. Closing the least recently used idle pools keeps open sockets bounded when a
    run touches thousands of hosts (httpcore only expires keep-alive connections when
    their own pool is used again).
    """

    max_idle_pools = 64

    def __init__(self, policy: AddressPolicy, per_host: int) -> None:
        self.backend = _GuardedBackend(policy)
        self.per_host = max(1, per_host)
        self.ssl_context = httpx.create_ssl_context(trust_env=False)
        self.pools: OrderedDict[tuple[bytes, bytes, int | None], _HostPool] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        pool = self.pools.get(key)
        if pool is None:
            await self._evict()
            pool = self.pools[key] = _HostPool(
                _GuardedTransport(
                    httpcore.AsyncConnectionPool(
                        ssl_context=self.ssl_context,
                        max_connections=self.per_host,
                        max_keepalive_connections=self.per_host,
                        keepalive_expiry=5.0,
                        network_backend=self.backend,
                    )
                )
            )
        self.pools.move_to_end(key)
        pool.active += 1

        def done() -> None:
            pool.active -= 1

        try:
            response = await pool.transport.handle_async_request(request)
        except BaseException:
            done()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CountedStream(response.stream, done)
        return response

    async def _evict(self) -> None:
        idle = [key for key, pool in self.pools.items() if pool.active == 0]
        for key in idle[: max(0, len(idle) - self.max_idle_pools + 1)]:
            await self.pools.pop(key).transport.aclose()

    async def aclose(self) -> None:
        pools, self.pools = list(self.pools.values()), OrderedDict()
        for pool in pools:
            await pool.transport.aclose()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _strip_userinfo(url: str) -> tuple[str, str | None]:
    """(url without user:password, Basic credentials or None)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    netloc = parts.netloc.rsplit("@", 1)[1]
    token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return urlunsplit(parts._replace(netloc=netloc)), "Basic " + base64.b64encode(token.encode()).decode()


def _check_scheme(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsafeAddressError(f"scheme {parts.scheme or '(none)'!r} not allowed (only http and https)")
    if not parts.hostname:
        raise UnsafeAddressError("URL has no host")


def _file_path(url: str) -> Path | None:
    """The local path of a ``file://`` URL or of a plain path; None for other URLs."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise UnsafeAddressError(f"file URL on another host ({parts.netloc!r})")
        return Path(url2pathname(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and os.name == "nt"):
        return Path(url)
    return None


# --------------------------------------------------------------------------- decoding


class _BoundedDecoder:
    """Content-Encoding decoder that never produces more than ``limit`` bytes in total.

    httpx's own decoders inflate a whole network chunk at once (64 KiB of gzip can become
    64 MiB); these pass ``max_length`` / ``output_buffer_limit`` so memory stays bounded.
    """

    def __init__(self, encodings: Sequence[str], limit: int, truncate: bool) -> None:
        self.limit = limit
        self.truncate = truncate
        self.produced = 0
        self.full = False
        self.stages: list[Callable[[bytes, int], bytes]] = []
        for encoding in reversed(list(encodings)):  # applied in order, so undone in reverse
            self.stages.append(self._stage(encoding))

    def _stage(self, encoding: str) -> Callable[[bytes, int], bytes]:
        if encoding in ("gzip", "x-gzip"):
            return _ZlibStage(zlib.MAX_WBITS | 16, gzip=True)
        if encoding == "deflate":
            return _ZlibStage(zlib.MAX_WBITS, gzip=False)
        if encoding == "br":
            return _BrotliStage()
        raise FetchError(f"unsupported Content-Encoding {encoding!r}")

    def feed(self, data: bytes) -> bytes:
        for stage in self.stages:
            data = stage(data, self.limit - self.produced + 1)
        self.produced += len(data)
        if self.produced > self.limit:
            if self.truncate:
                self.full = True
                return data[: len(data) - (self.produced - self.limit)]
            raise FetchError(f"body larger than {self.limit} bytes (decoded)")
        return data


class _ZlibStage:
    def __init__(self, wbits: int, gzip: bool) -> None:
        self.wbits = wbits
        self.gzip = gzip
        self.d = zlib.decompressobj(wbits)
        self.first = True

    def __call__(self, data: bytes, room: int) -> bytes:
        out = bytearray()
        try:
            while data:
                try:
                    chunk = self.d.decompress(data, max(room - len(out), 1))
                except zlib.error:
                    if self.first and not self.gzip:  # "deflate" sent as raw deflate (common)
                        self.d = zlib.decompressobj(-zlib.MAX_WBITS)
                        self.first = False
                        continue
                    raise
                self.first = False
                out += chunk
                if len(out) >= room:
                    break
                if self.d.unconsumed_tail:
                    data = self.d.unconsumed_tail
                elif self.d.eof and self.d.unused_data and self.gzip:  # concatenated gzip members
                    data = self.d.unused_data
                    self.d = zlib.decompressobj(self.wbits)
                else:
                    data = b""
        except zlib.error as exc:
            raise FetchError(f"invalid {'gzip' if self.gzip else 'deflate'} body: {exc}") from exc
        return bytes(out)


class _BrotliStage:
    def __init__(self) -> None:
        self.d = brotli.Decompressor()

    def __call__(self, data: bytes, room: int) -> bytes:
        try:
            out = bytearray(self.d.process(data, output_buffer_limit=room))
            while len(out) < room and not self.d.can_accept_more_data():
                out += self.d.process(b"", output_buffer_limit=room - len(out))
        except brotli.error as exc:
            raise FetchError(f"invalid brotli body: {exc}") from exc
        return bytes(out)


# --------------------------------------------------------------------------- helpers


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _retryable_status(status: int) -> bool:
    return status in (408, 425, 429) or (status >= 500 and status not in (501, 505, 511))


def _root_text(exc: BaseException) -> str:
    """The first non-empty message along the exception's cause chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if str(current):
            return str(current)
        current = current.__cause__ or current.__context__
    return ""


def _describe(exc: httpx.TransportError, settings: Settings) -> str:
    text = _root_text(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timeout after {settings.connect_timeout:g}s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"read timeout: no data for {settings.read_timeout:g}s"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout: {text}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"broken response: {text}"
    if isinstance(exc, httpx.ReadError):
        return f"connection error while reading: {text or 'connection reset or closed by the server'}"
    return f"{type(exc).__name__}: {text or 'no details'}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reason(status: int) -> str:
    try:
        from http import HTTPStatus

        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


class _Budget:
    """The total_timeout of one URL, started when it first gets a connection slot."""

    def __init__(self, total: float) -> None:
        self.total = total
        self.deadline: float | None = None

    def start(self) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.total

    def remaining(self) -> float:
        return self.total if self.deadline is None else self.deadline - time.monotonic()


@dataclass
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str


# --------------------------------------------------------------------------- fetcher


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
                            body = await self._read_body(resp, hdrs, max_bytes, truncate)
                        return _Reply(resp.status_code, hdrs, body, url)
            except TimeoutError as exc:
                raise FetchError(
                    f"timed out: no complete response within {budget.total:g}s (total timeout)",
                    timed_out=True,
                ) from exc

    async def _read_body(
        self, resp: httpx.Response, headers: dict[str, str], max_bytes: int, truncate: bool
    ) -> bytes:
        length = headers.get("content-length", "").strip()
        if length.isdigit() and int(length) > max_bytes and not truncate:
            raise FetchError(f"body larger than {max_bytes} bytes (Content-Length: {length})")
        encodings = [
            e.strip().lower()
            for e in headers.get("content-encoding", "").split(",")
            if e.strip() and e.strip().lower() != "identity"
        ]
        decoder = _BoundedDecoder(encodings, max_bytes, truncate)
        out = bytearray()
        raw = 0
        async for chunk in resp.aiter_raw(_READ_CHUNK):
            raw += len(chunk)
            if raw > max_bytes and not truncate:
                raise FetchError(
                    f"body larger than {max_bytes} bytes" + (" (compressed)" if encodings else "")
                )
            out += decoder.feed(chunk)
            if decoder.full:
                break
        return bytes(out)

    # ---- retries and redirects

    def _backoff(self, attempt: int) -> float:
        o = self.options
        ceiling = min(o.backoff_cap, o.backoff_base * (2**attempt))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))

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
        first_origin = _origin(url)
        current = url
        seen = {url.split("#")[0]}
        permanent = True
        attempt = 0
        last_problem = ""
        _, credentials = _strip_userinfo(url)
        for _hop in range(s.max_redirects + 1):
            _check_scheme(current)
            target, _ = _strip_userinfo(current)
            if robots:
                why = await self.robots.check(target)
                if why is not None:
                    raise FetchError(why if current == url else f"redirected to {redact(current)}: {why}")
            headers = {"Accept": accept, **(extra or {})}
            if credentials and _origin(current) == first_origin:
                headers["Authorization"] = credentials
            while True:
                try:
                    reply = await self._exchange(target, headers, budget, limit, truncate)
                except FetchError as exc:
                    if last_problem and exc.timed_out:
                        exc.args = (f"{exc}; before that: {last_problem}",)
                    if current != url:
                        exc.args = (f"redirected to {redact(current)}: {exc}",)
                    raise
                except httpx.TransportError as exc:
                    message = last_problem = _describe(exc, s)
                    if current != url:
                        message = f"redirected to {redact(current)}: {message}"
                    if attempt < retries:
                        delay = self._backoff(attempt)
                        if delay < budget.remaining():
                            attempt += 1
                            await asyncio.sleep(delay)
                            continue
                    raise FetchError(f"{message} (after {attempt + 1} attempt{'s' * (attempt > 0)})") from exc
                if _retryable_status(reply.status):
                    last_problem = _reason(reply.status)
                    retry_after = _parse_retry_after(reply.headers.get("retry-after"))
                    if attempt < retries:
                        delay = self._backoff(attempt)
                        if retry_after is not None:
                            delay = min(retry_after, self.options.retry_after_cap) + random.uniform(0, 0.1)
                        if retry_after is not None and retry_after > self.options.retry_after_cap:
                            raise FetchError(
                                f"{_reason(reply.status)}, Retry-After {retry_after:g}s is longer than "
                                f"the {self.options.retry_after_cap:g}s cap; try again later",
                                http_status=reply.status,
                                retry_after=retry_after,
                                headers=reply.headers,
                            )
                        if delay >= budget.remaining():
                            raise FetchError(
                                f"{_reason(reply.status)}, waiting {delay:.1f}s to retry would exceed the "
                                f"{s.total_timeout:g}s total timeout",
                                http_status=reply.status,
                                retry_after=retry_after,
                                headers=reply.headers,
                            )
                        attempt += 1
                        await asyncio.sleep(delay)
                        continue
                    raise FetchError(
                        f"{_reason(reply.status)} (after {attempt + 1} attempt{'s' * (attempt > 0)})",
                        http_status=reply.status,
                        retry_after=retry_after,
                        headers=reply.headers,
                    )
                break
            location = reply.headers.get("location")
            if reply.status in REDIRECT_STATUSES and location:
                permanent = permanent and reply.status in PERMANENT_REDIRECTS
                nxt = urljoin(current, location.strip()).split("#")[0]
                if urlsplit(nxt).scheme.lower() not in ("http", "https"):
                    raise UnsafeAddressError(f"redirect to {redact(nxt)!r} refused (only http and https)")
                if nxt in seen:
                    raise FetchError(
                        f"redirect loop: {redact(current)} -> {redact(nxt)}", http_status=reply.status
                    )
                seen.add(nxt)
                current = nxt
                continue
            reply.url = current
            return reply, permanent and current != url
        raise FetchError(f"too many redirects (more than {s.max_redirects})")

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
                result = await self._fetch_file(url, path, prev)
            else:
                result = await self._fetch_feed_http(url, prev)
        except FetchError as exc:
            result = self._error_result(url, prev, exc)
        except Exception as exc:  # a bug here must not stop the other feeds
            result = self._error_result(url, prev, FetchError(f"unexpected {type(exc).__name__}: {exc}"))
        result.elapsed = time.monotonic() - t0
        return result

    def _conditional_headers(self, prev: dict[str, Any]) -> dict[str, str]:
        if not prev.get("conditional", True):
            return {}
        if int(prev.get("polls", 0)) + 1 >= max(1, self.options.unconditional_every):
            return {}
        headers = {}
        if prev.get("etag"):
            headers["If-None-Match"] = str(prev["etag"])
        if prev.get("last_modified"):
            headers["If-Modified-Since"] = str(prev["last_modified"])
        return headers

    async def _fetch_feed_http(self, url: str, prev: dict[str, Any]) -> FetchResult:
        conditional = self._conditional_headers(prev)
        reply, moved = await self._get(url, FEED_ACCEPT, extra=conditional)
        state = self._base_state(prev, reply)
        if moved:
            state["moved_to"] = reply.url
        else:
            state.pop("moved_to", None)
        result = FetchResult(url, reply.url, "ok", reply.status, b"", reply.headers, None, 0.0, state)
        if reply.status == 304:
            if not conditional:
                raise FetchError("HTTP 304 Not Modified to an unconditional request", http_status=304)
            state["polls"] = int(prev.get("polls", 0)) + 1
            if reply.headers.get("etag"):
                state["etag"] = reply.headers["etag"]
            result.status = "not_modified"
            return result
        if reply.status == 410:
            state["gone"] = True
            result.status = "gone"
            result.error = f"{redact(url)}: {_reason(410)}: the feed is retired"
            return result
        if not 200 <= reply.status < 300:
            raise FetchError(_reason(reply.status), http_status=reply.status, headers=reply.headers)
        digest = hashlib.sha256(reply.body).hexdigest()
        etag = reply.headers.get("etag")
        last_modified = reply.headers.get("last-modified")
        if not conditional and prev.get("body_hash") and digest != prev["body_hash"]:
            same_etag = etag is not None and etag == prev.get("etag") and not etag.startswith("W/")
            same_lm = not etag and bool(last_modified) and last_modified == prev.get("last_modified")
            if same_etag or same_lm:
                state["conditional"] = False  # caught answering stale 304s: poll unconditionally
                state["stale_caught"] = int(prev.get("stale_caught", 0)) + 1
        state["polls"] = 0 if not conditional else int(prev.get("polls", 0)) + 1
        state["etag"] = etag
        state["last_modified"] = last_modified
        state["body_hash"] = digest
        result.body = reply.body
        if digest == prev.get("body_hash"):
            result.status = "not_modified"  # byte-identical to what was last indexed
        return result

    def _base_state(self, prev: dict[str, Any], reply: _Reply) -> dict[str, Any]:
        state = dict(prev)
        now = _now()
        state.update(
            final_url=reply.url,
            http_status=reply.status,
            checked_at=now,
            last_ok_at=now,
            failures=0,
            last_error=None,
            gone=False,
        )
        state.pop("retry_after", None)
        return state

    async def _fetch_file(self, url: str, path: Path, prev: dict[str, Any]) -> FetchResult:
        limit = self.settings.max_body_bytes
        try:
            stat = path.stat()
        except OSError as exc:
            raise FetchError(f"cannot read file: {exc.strerror or exc}") from exc
        if not path.is_file():
            raise FetchError("not a regular file")
        if stat.st_size > limit:
            raise FetchError(f"body larger than {limit} bytes (file size {stat.st_size})")
        mtime = f"{stat.st_mtime_ns}:{stat.st_size}"
        state = dict(prev)
        now = _now()
        state.update(
            final_url=url, http_status=None, checked_at=now, last_ok_at=now, failures=0, last_error=None
        )
        unconditional = int(prev.get("polls", 0)) + 1 >= max(1, self.options.unconditional_every)
        if prev.get("mtime") == mtime and not unconditional:
            state["polls"] = int(prev.get("polls", 0)) + 1
            return FetchResult(url, url, "not_modified", None, b"", {}, None, 0.0, state)
        try:
            body = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise FetchError(f"cannot read file: {exc.strerror or exc}") from exc
        digest = hashlib.sha256(body).hexdigest()
        state.update(mtime=mtime, body_hash=digest, polls=0)
        status = "not_modified" if digest == prev.get("body_hash") else "ok"
        return FetchResult(url, url, status, None, body, {}, None, 0.0, state)

    def _error_result(self, url: str, prev: dict[str, Any], exc: FetchError) -> FetchResult:
        message = f"{redact(url)}: {exc}"
        state = dict(prev)
        state.update(
            checked_at=_now(),
            failures=int(prev.get("failures", 0)) + 1,
            last_error=message,
            http_status=exc.http_status,
        )
        if exc.retry_after is not None:
            state["retry_after"] = exc.retry_after
        return FetchResult(url, url, "error", exc.http_status, b"", exc.headers, message, 0.0, state)

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
        except Exception as exc:
            result = FetchResult(
                url, url, "error", None, b"", {}, f"{redact(url)}: unexpected {type(exc).__name__}: {exc}"
            )
        result.elapsed = time.monotonic() - t0
        return result


# --------------------------------------------------------------------------- public API


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


def _iterate_in_thread(make: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
    """Drive an async generator on a private event loop in a thread; yield its items here.

    The loop keeps running between items, so fetches progress while the caller works on a
    result; closing the iterator early cancels what is still in flight.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="newswire-fetch", daemon=True)
    thread.start()
    agen = make()
    try:
        while True:
            future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(_anext(agen), loop)
            try:
                item = future.result()
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
    return _iterate_in_thread(lambda: afetch_feeds(requests, settings, options))


def fetch_pages(
    urls: Sequence[str] | Iterable[str], settings: Settings | None = None, options: FetchOptions | None = None
) -> dict[str, FetchResult]:
    """Fetch article pages concurrently; ``{url: FetchResult}`` for every distinct URL."""
    settings = settings or get_settings()
    out: dict[str, FetchResult] = {}

    async def one() -> AsyncIterator[dict[str, FetchResult]]:
        yield await afetch_pages(urls, settings, options)

    for batch in _iterate_in_thread(one):
        out.update(batch)
    return out
