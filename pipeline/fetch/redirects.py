"""Following redirects by hand, so that every hop is checked.

Contract: :func:`follow_redirects` sends the URL through ``send`` and follows 301, 302,
303, 307 and 308 replies at most ``max_redirects`` times. Each hop is checked before it is
sent: scheme (http and https only), robots.txt when ``robots_check`` is given, and a loop
(a URL seen before) fails. Credentials from the URL's user-info go only to hops on the
first URL's origin. It returns the last reply (with its ``url`` set to the final URL) and
whether the URL moved permanently (every hop 301 or 308); failures raise
:class:`~pipeline.fetch.errors.FetchError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urljoin, urlsplit

from pipeline.fetch.errors import FetchError, UnsafeAddressError
from pipeline.fetch.results import _Reply
from pipeline.fetch.safety import _check_scheme, _origin, _strip_userinfo
from pipeline.redaction import redact

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})


async def follow_redirects(
    url: str,
    send: Callable[[str, dict[str, str], str | None], Awaitable[_Reply]],
    *,
    accept: str,
    extra: dict[str, str] | None,
    max_redirects: int,
    robots_check: Callable[[str], Awaitable[str | None]] | None,
) -> tuple[_Reply, bool]:
    """GET ``url`` following redirects; ``send(target, headers, hop)`` performs one hop
    (``hop`` is the redacted target of a redirect, None for ``url`` itself)."""
    first_origin = _origin(url)
    current = url
    seen = {url.split("#")[0]}
    permanent = True
    _, credentials = _strip_userinfo(url)
    for _hop in range(max_redirects + 1):
        _check_scheme(current)
        target, _ = _strip_userinfo(current)
        if robots_check is not None:
            why = await robots_check(target)
            if why is not None:
                raise FetchError(why if current == url else f"redirected to {redact(current)}: {why}")
        headers = {"Accept": accept, **(extra or {})}
        if credentials and _origin(current) == first_origin:
            headers["Authorization"] = credentials
        reply = await send(target, headers, None if current == url else redact(current))
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
    raise FetchError(f"too many redirects (more than {max_redirects})")
