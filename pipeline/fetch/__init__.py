"""Fetch stage: polite, bounded, incremental HTTP for feeds and article pages.

Contract (the public names are used by ``pipeline.run`` and the DAG tasks):

- :func:`fetch_feeds` takes ``(feed URL, previous state or None)`` pairs and yields one
  :class:`FetchResult` per feed **as each completes** (a slow feed never holds the others
  up). :func:`afetch_feeds` is the same as an async generator; :func:`fetch_feeds_or_idle` also
  yields ``None`` when no feed completed for a while (the run writes its batch meanwhile).
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
address checks at connect time, per-host limits, Retry-After) is this package:

- :mod:`~pipeline.fetch.api`: the entry points above and :func:`poll_hint`;
- :mod:`~pipeline.fetch.client`: :class:`Fetcher`, one run's client, limits and robots cache;
- :mod:`~pipeline.fetch.feeds`: conditional GET, feed state, file feeds;
- :mod:`~pipeline.fetch.redirects`: redirects followed by hand, each hop checked;
- :mod:`~pipeline.fetch.retry`: back-off, Retry-After, the total-timeout budget;
- :mod:`~pipeline.fetch.decoding`: bounded gzip/deflate/brotli decoding and size limits;
- :mod:`~pipeline.fetch.transport`: one guarded connection pool per origin;
- :mod:`~pipeline.fetch.safety`: address policy, guarded connections, credentials per origin;
- :mod:`~pipeline.fetch.results` and :mod:`~pipeline.fetch.errors`: what is returned and raised.
"""

from pipeline.fetch.api import (
    afetch_feeds,
    afetch_pages,
    fetch_feeds,
    fetch_feeds_or_idle,
    fetch_pages,
    poll_hint,
)
from pipeline.fetch.client import Fetcher as Fetcher
from pipeline.fetch.errors import FetchError as FetchError
from pipeline.fetch.errors import UnsafeAddressError as UnsafeAddressError
from pipeline.fetch.results import FetchOptions, FetchResult
from pipeline.fetch.safety import AddressPolicy
from pipeline.fetch.transport import _PerHostTransport as _PerHostTransport  # tests shrink its pool limit
from pipeline.redaction import redact as redact  # importable from here, as before the split

__all__ = [
    "FetchOptions",
    "FetchResult",
    "AddressPolicy",
    "afetch_feeds",
    "afetch_pages",
    "fetch_feeds",
    "fetch_feeds_or_idle",
    "fetch_pages",
    "poll_hint",
]
