"""robots.txt for article pages: fetched once per origin, parsed with Protego, cached.

Contract:

- :class:`RobotsCache.check` returns ``None`` when ``url`` may be fetched by our user agent
  and otherwise a short reason (``"disallowed by robots.txt"``), never raises.
- The robots.txt of an origin (scheme, host, port) is fetched at most once per
  :data:`TTL` seconds per process, even when many pages of that host are fetched
  concurrently (one fetch, the others wait for it).
- Status rules follow RFC 9309: 2xx -> parse the rules (first 512 KiB); 4xx other than 429
  -> everything allowed; 429, 5xx and network errors -> "unreachable", everything
  disallowed, remembered for :data:`ERROR_TTL` seconds only.
- Feeds themselves are never checked (a feed is published to be polled); the operator
  turns the check off with ``NEWSWIRE_RESPECT_ROBOTS=false`` for sites they own.

Protego (Scrapy's parser) is used rather than :mod:`urllib.robotparser` because the
standard library ignores the ``*`` and ``$`` wildcards and longest-match precedence that
Google's and RFC 9309's rules require.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

log = logging.getLogger(__name__)

#: seconds a parsed robots.txt is trusted
TTL = 24 * 3600.0
#: seconds an "unreachable" robots.txt (5xx, 429, network error) blocks its host
ERROR_TTL = 600.0
#: bytes of robots.txt parsed (RFC 9309 asks for at least 500 KiB)
MAX_BYTES = 512 * 1024

#: fetches robots.txt: returns (HTTP status or None on a network error, body, unsafe flag)
RobotsFetcher = Callable[[str], Awaitable[tuple[int | None, bytes, bool]]]


@dataclass
class _Policy:
    parser: Protego | None  # None: `allow_all` decides
    allow_all: bool
    reason: str  # why everything is allowed/disallowed (for messages)
    expires: float

    def reason_for(self, url: str, agent: str) -> str | None:
        if self.parser is not None:
            return None if self.parser.can_fetch(url, agent) else "disallowed by robots.txt"
        return None if self.allow_all else f"disallowed: {self.reason}"


# Process-wide cache shared by every fetch run (each sync call has its own event loop).
_SHARED: dict[str, _Policy] = {}
_SHARED_LOCK = threading.Lock()


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def agent_token(user_agent: str) -> str:
    """The product token robots.txt groups match against (``newswire/0.1 (...)`` -> ``newswire``)."""
    token = user_agent.strip().split("/")[0].split()
    return token[0] if token else "*"


def clear_cache() -> None:
    """Forget every cached robots.txt (tests)."""
    with _SHARED_LOCK:
        _SHARED.clear()


class RobotsCache:
    """Per-run view of the shared cache; one instance per event loop (it owns asyncio locks)."""

    def __init__(self, user_agent: str, fetch: RobotsFetcher) -> None:
        self.agent = agent_token(user_agent)
        self._fetch = fetch
        self._locks: dict[str, asyncio.Lock] = {}

    async def check(self, url: str) -> str | None:
        origin = origin_of(url)
        policy = self._cached(origin)
        if policy is None:
            lock = self._locks.setdefault(origin, asyncio.Lock())
            async with lock:
                policy = self._cached(origin)
                if policy is None:
                    policy = await self._load(origin)
                    with _SHARED_LOCK:
                        _SHARED[origin] = policy
        return policy.reason_for(url, self.agent)

    @staticmethod
    def _cached(origin: str) -> _Policy | None:
        with _SHARED_LOCK:
            policy = _SHARED.get(origin)
        if policy is not None and policy.expires > time.monotonic():
            return policy
        return None

    async def _load(self, origin: str) -> _Policy:
        now = time.monotonic()
        try:
            status, body, unsafe = await self._fetch(origin + "/robots.txt")
        except Exception as exc:  # a fetcher bug must not stop the pages
            log.warning("robots.txt of %s: fetch failed", origin, exc_info=True)
            return _Policy(None, False, f"robots.txt unreachable ({exc})", now + ERROR_TTL)
        if unsafe:
            # The page fetch itself will be refused with the safety message; do not mask it.
            return _Policy(None, True, "address refused", now + ERROR_TTL)
        if status is None:
            return _Policy(None, False, "robots.txt unreachable (network error)", now + ERROR_TTL)
        if 200 <= status < 300:
            text = body[:MAX_BYTES].decode("utf-8", errors="replace")
            return _Policy(Protego.parse(text), True, "", now + TTL)
        if status == 429 or status >= 500:
            return _Policy(None, False, f"robots.txt unreachable (HTTP {status})", now + ERROR_TTL)
        return _Policy(None, True, f"no robots.txt (HTTP {status})", now + TTL)
