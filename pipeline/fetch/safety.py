"""Where the fetcher may connect: address policy, guarded connections, credentials per origin.

Contract: :class:`AddressPolicy` allows global unicast addresses plus the ``allow_hosts``
entries (host names, addresses, CIDR networks); :class:`_GuardedBackend` is the httpcore
network backend that resolves every host itself and connects only to allowed addresses
(so the check holds after redirects and against DNS rebinding); :func:`_check_scheme`
allows only http and https URLs with a host; :func:`_origin` and :func:`_strip_userinfo`
keep credentials from a feed URL to that URL's origin. Refusals raise
:class:`~pipeline.fetch.errors.UnsafeAddressError`.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpcore

from pipeline.fetch.errors import UnsafeAddressError


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
