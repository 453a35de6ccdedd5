"""What a fetch returns and the knobs that are not operator settings.

Contract: :class:`FetchResult` is the public outcome of one URL (``status`` is ok,
not_modified, gone or error); :class:`FetchOptions` holds test/benchmark knobs (back-off,
Retry-After cap, unconditional-poll period, window); :class:`_Reply` is one raw HTTP reply
inside the package. The ``Accept`` headers sent for feeds and pages live here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.8"
ACCEPT_ENCODING = "gzip, deflate, br"


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


@dataclass
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str
