"""Sending one request again after failures: back-off, Retry-After, the time budget.

Contract: :func:`send_with_retries` runs one exchange and repeats it on connection errors,
timeouts of a single read and retryable statuses (408, 425, 429, 5xx except 501/505/511),
up to ``retries`` times per URL (the count is shared by all redirect hops of that URL via
:class:`_Attempts`), waiting an exponential back-off with jitter (:func:`_backoff`) or the
server's ``Retry-After`` (capped at ``FetchOptions.retry_after_cap``). A wait that would
overrun the URL's :class:`_Budget` (``total_timeout``) fails at once. It returns the first
reply with a non-retryable status, else raises :class:`~pipeline.fetch.errors.FetchError`
whose message says what went wrong and after how many attempts.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from pipeline.fetch.errors import FetchError, _reason
from pipeline.fetch.results import FetchOptions, _Reply
from pipeline.settings import Settings


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
class _Attempts:
    """Retries spent on one URL so far (all its redirect hops together) and the last problem seen."""

    count: int = 0
    last_problem: str = ""


def _backoff(options: FetchOptions, attempt: int) -> float:
    ceiling = min(options.backoff_cap, options.backoff_base * (2**attempt))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


async def send_with_retries(
    exchange: Callable[[], Awaitable[_Reply]],
    *,
    attempts: _Attempts,
    retries: int,
    budget: _Budget,
    settings: Settings,
    options: FetchOptions,
    hop: str | None,
) -> _Reply:
    """The reply of ``exchange()``, retried as the module says; ``hop`` is the redacted URL of a
    redirect target (None for the URL asked for), named in error messages."""
    while True:
        try:
            reply = await exchange()
        except FetchError as exc:
            if attempts.last_problem and exc.timed_out:
                exc.args = (f"{exc}; before that: {attempts.last_problem}",)
            if hop is not None:
                exc.args = (f"redirected to {hop}: {exc}",)
            raise
        except httpx.TransportError as exc:
            message = attempts.last_problem = _describe(exc, settings)
            if hop is not None:
                message = f"redirected to {hop}: {message}"
            if attempts.count < retries:
                delay = _backoff(options, attempts.count)
                if delay < budget.remaining():
                    attempts.count += 1
                    await asyncio.sleep(delay)
                    continue
            attempt = attempts.count
            raise FetchError(f"{message} (after {attempt + 1} attempt{'s' * (attempt > 0)})") from exc
        if not _retryable_status(reply.status):
            return reply
        attempts.last_problem = _reason(reply.status)
        retry_after = _parse_retry_after(reply.headers.get("retry-after"))
        if attempts.count < retries:
            delay = _backoff(options, attempts.count)
            if retry_after is not None:
                delay = min(retry_after, options.retry_after_cap) + random.uniform(0, 0.1)
            if retry_after is not None and retry_after > options.retry_after_cap:
                raise FetchError(
                    f"{_reason(reply.status)}, Retry-After {retry_after:g}s is longer than "
                    f"the {options.retry_after_cap:g}s cap; try again later",
                    http_status=reply.status,
                    retry_after=retry_after,
                    headers=reply.headers,
                )
            if delay >= budget.remaining():
                raise FetchError(
                    f"{_reason(reply.status)}, waiting {delay:.1f}s to retry would exceed the "
                    f"{settings.total_timeout:g}s total timeout",
                    http_status=reply.status,
                    retry_after=retry_after,
                    headers=reply.headers,
                )
            attempts.count += 1
            await asyncio.sleep(delay)
            continue
        attempt = attempts.count
        raise FetchError(
            f"{_reason(reply.status)} (after {attempt + 1} attempt{'s' * (attempt > 0)})",
            http_status=reply.status,
            retry_after=retry_after,
            headers=reply.headers,
        )
