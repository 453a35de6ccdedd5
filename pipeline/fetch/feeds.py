"""Feed polling: conditional GET, the feed state, stale-validator guard, file feeds.

Contract: :func:`fetch_feed_http` polls one http(s) feed through a ``get`` function (the
fetcher's redirect-following GET) and turns the reply into a
:class:`~pipeline.fetch.results.FetchResult` with the feed's new state: ETag /
Last-Modified sent from the state (:func:`conditional_headers`), 304 or a byte-identical
body -> ``not_modified``, 410 -> ``gone``, permanent moves in ``moved_to``, and every
``unconditional_every``-th poll unconditional so that a server answering stale 304s is
caught (``conditional`` turned off). :func:`fetch_file` does the same for ``file://`` URLs
and local paths (:func:`_file_path`) by size and mtime. :func:`error_result` records a
failure in the state (``failures``, ``last_error``, ``retry_after``). The state keys are
listed in :mod:`pipeline.fetch`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from pipeline.fetch.errors import FetchError, UnsafeAddressError, _reason
from pipeline.fetch.results import FEED_ACCEPT, FetchOptions, FetchResult, _Reply
from pipeline.redaction import redact
from pipeline.settings import Settings

FeedGet = Callable[[str, str, dict[str, str]], Awaitable[tuple[_Reply, bool]]]
"""``get(url, accept, extra headers)`` -> (final reply, moved permanently)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def conditional_headers(prev: dict[str, Any], options: FetchOptions) -> dict[str, str]:
    """The validators to send (none on every ``unconditional_every``-th poll or when turned off)."""
    if not prev.get("conditional", True):
        return {}
    if int(prev.get("polls", 0)) + 1 >= max(1, options.unconditional_every):
        return {}
    headers = {}
    if prev.get("etag"):
        headers["If-None-Match"] = str(prev["etag"])
    if prev.get("last_modified"):
        headers["If-Modified-Since"] = str(prev["last_modified"])
    return headers


async def fetch_feed_http(get: FeedGet, url: str, prev: dict[str, Any], options: FetchOptions) -> FetchResult:
    """One poll of an http(s) feed through ``get(url, accept, extra_headers)``."""
    conditional = conditional_headers(prev, options)
    reply, moved = await get(url, FEED_ACCEPT, conditional)
    state = base_state(prev, reply)
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


def base_state(prev: dict[str, Any], reply: _Reply) -> dict[str, Any]:
    """The feed's state after a successful HTTP exchange (failures reset, retry_after dropped)."""
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


async def fetch_file(
    url: str, path: Path, prev: dict[str, Any], settings: Settings, options: FetchOptions
) -> FetchResult:
    """One poll of a local feed file: unchanged size and mtime -> not_modified without reading it."""
    limit = settings.max_body_bytes
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
    state.update(final_url=url, http_status=None, checked_at=now, last_ok_at=now, failures=0, last_error=None)
    unconditional = int(prev.get("polls", 0)) + 1 >= max(1, options.unconditional_every)
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


def error_result(url: str, prev: dict[str, Any], exc: FetchError) -> FetchResult:
    """The error result of a feed, its failure counted in the state."""
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
