"""The httpx transport of a fetch run: one small guarded connection pool per origin.

Contract: :class:`_PerHostTransport` routes each request to a pool of at most
``per_host`` connections for its origin, all built on
:class:`~pipeline.fetch.safety._GuardedBackend` with one shared SSL context and no
environment (proxies, .netrc); idle pools beyond :attr:`_PerHostTransport.max_idle_pools`
are closed, least recently used first. A pool counts as busy until the response stream
is closed (:class:`_CountedStream`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpcore
import httpx

from pipeline.fetch.safety import AddressPolicy, _GuardedBackend


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
