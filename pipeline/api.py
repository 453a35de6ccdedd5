"""The search API (FastAPI): ``uvicorn pipeline.api:app`` (docker-compose's ``api`` service).

Contract:
- The store is ``get_settings().store`` (``NEWSWIRE_STORE``), opened once per process when
  the app starts (lifespan) and closed when it shuts down. A store that cannot be opened
  stops the server from starting.
- ``GET /health`` -> ``{"status": "ok", "store": <store URL without its password>,
  "articles": <stored documents, copies included>}``; 503 with ``"status": "unavailable"``
  and ``"error"`` when the store does not answer.
- ``GET /search`` takes the options of ``newswire search`` as query parameters: ``q``,
  ``actor``, ``location``, ``since``, ``until``, ``source``, ``language``, ``country``
  (the list ones repeatable: ``?actor=ISIL&actor=SDF``), ``near``, ``bbox``, ``sort``,
  ``limit``, ``all_copies``; they go through :func:`pipeline.search.build_query` exactly as
  the CLI's do. The answer is the JSON of ``newswire search --json``: ``{"total", "hits",
  "facets"}``, hits without the private fields (:data:`pipeline.search.PRIVATE_FIELDS`). A value
  ``build_query`` rejects (:class:`~pipeline.search.QueryError`) -> 422 ``{"detail":
  message}``, the message naming the option (in its CLI spelling, e.g. ``--since``) and
  the value.
  A search that runs past ``search_timeout`` (:class:`~pipeline.stores.base.SearchTimeout`)
  or a store that does not answer (Elasticsearch down, a SQLite file that cannot be read)
  -> 503 ``{"detail": reason}``. ``notes`` (only when there are some) lists what the user should know about
  how names were searched (a capital searched as its government, an unknown actor with close names).
- Every 422 has one shape, ``{"detail": "<message>"}``: FastAPI's own validation errors (a
  ``limit`` that is not a number, a missing ``kind``) are answered in it too.
- ``GET /articles/{id}`` -> the stored article (private fields removed) or 404.
- ``GET /clusters/{cluster_id}`` -> ``{"cluster_id", "members"}``, every stored article of
  the cluster with the representative first (private fields removed), or 404 when no
  stored article is in that cluster.
- ``GET /search?after=<cursor>``: the next page; every answer carries ``next_after`` (an opaque
  string, :mod:`pipeline.cursor`, or null on the last page). A cursor that is not one, or belongs
  to another sort -> 422 naming ``--after``.
- ``GET /suggest?kind=actor|location&prefix=...&limit=10`` -> ``{"suggestions": [{"id", "name",
  "kind", "country_code", "match"}]}`` from the gazetteer, best first (:mod:`pipeline.suggest`).
- ``GET /entities?id=...&id=...`` -> ``{"entities": [{"id", "name", "type", "kind",
  "country_code", "lat", "lon"}]}`` for the known ids (labels and map points of the page).
- ``GET /``: the search page (static HTML, JS and CSS from ``pipeline/web``, served under
  ``/static``; vendored libraries and the world map under ``/static/vendor``).
- Interactive documentation at ``/docs`` (the compose health check requests it), served from
  the vendored Swagger UI so it works offline.

Endpoints are plain ``def`` functions, so FastAPI runs the blocking store calls in its
thread pool; both store engines are safe to share between threads. That pool runs at most
:data:`STORE_THREADS` calls at once (more only queue for the GIL and the store).
``/health`` is ``async`` and answers from :class:`HealthCount`: the store's count, taken in
threads of its own (:data:`HEALTH_THREADS`) at most every :data:`HEALTH_FRESH_S` and served
from memory meanwhile (never older than :data:`HEALTH_MAX_AGE_S`; a count that fails drops
the remembered one, so a store that went away is reported by the next request). Under load
a count waits behind searches inside the store itself (Elasticsearch runs both in its search
pool), so ``/health`` must not wait for every one (issue 14: p95 < 50 ms with 50 clients
searching, ``tests/test_load.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from pipeline.cursor import decode_cursor
from pipeline.redaction import redact
from pipeline.search import QueryError, build_query, public_article, search_payload
from pipeline.settings import get_settings
from pipeline.stores import open_store
from pipeline.stores.base import SearchTimeout, Store

log = logging.getLogger(__name__)

__all__ = ["app", "create_app"]

WEB = Path(__file__).resolve().parent / "web"
STORE_THREADS = 8  # FastAPI's thread pool (every sync endpoint): searches, articles, clusters
HEALTH_THREADS = 2  # /health's own threads, never behind a queue of searches
HEALTH_FRESH_S = 0.5  # a remembered count younger than this is served without asking the store
HEALTH_MAX_AGE_S = 30.0  # older than this, /health waits for the store's answer
# The page renders article text as text, never as markup; this policy is a second line of defence.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the store cannot be reached or read (not a bug in the request)."""
    import sqlite3

    if isinstance(exc, (sqlite3.OperationalError, sqlite3.DatabaseError, ConnectionError, TimeoutError)):
        return True
    try:
        from elastic_transport import ApiError, TransportError
    except ImportError:  # pragma: no cover - the client is a dependency
        return False
    status = getattr(getattr(exc, "meta", None), "status", 0)
    return isinstance(exc, TransportError) or (
        isinstance(exc, ApiError) and isinstance(status, int) and status >= 500
    )


class HealthCount:
    """The article count ``/health`` reports for one store: stale-while-revalidate.

    ``read()`` starts a count in the background when the remembered one is older than
    :data:`HEALTH_FRESH_S` (one at a time) and answers with the remembered count while it is
    younger than :data:`HEALTH_MAX_AGE_S`; otherwise (first call, last count failed, store
    slow for longer) it waits for the count and raises what the store raised.
    """

    def __init__(self, store: Store, limiter: anyio.CapacityLimiter) -> None:
        self.store = store
        self.limiter = limiter
        self.value: int | None = None
        self.error: BaseException | None = None
        self.taken_at = 0.0
        self.task: asyncio.Task[None] | None = None

    async def _refresh(self) -> None:
        try:
            value = await anyio.to_thread.run_sync(self.store.count, limiter=self.limiter)
        except Exception as exc:  # noqa: BLE001 - reported by read()
            self.value, self.error = None, exc
        else:
            self.value, self.error, self.taken_at = value, None, time.monotonic()
        finally:
            self.task = None

    async def read(self) -> int:
        age = time.monotonic() - self.taken_at
        if self.task is None and (self.value is None or age > HEALTH_FRESH_S):
            self.task = asyncio.ensure_future(self._refresh())
        if self.value is not None and age <= HEALTH_MAX_AGE_S:
            return self.value
        if self.task is not None:
            await asyncio.shield(self.task)
        if self.value is None:
            raise self.error or RuntimeError("the store did not answer")
        return self.value


async def get_store(request: Request) -> Store:
    """The store the app opened at startup."""
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]
Repeated = Annotated[list[str] | None, Query()]


def create_app(store_url: str | None = None) -> FastAPI:  # noqa: C901, PLR0915 - the app factory: every route is a closure over the app
    """A new app over ``store_url`` (default: the configured store, read at startup)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(store_url or get_settings().store)
        app.state.store = store
        anyio.to_thread.current_default_thread_limiter().total_tokens = STORE_THREADS
        app.state.health_limiter = anyio.CapacityLimiter(HEALTH_THREADS)
        app.state.health_count = HealthCount(store, app.state.health_limiter)
        await app.state.health_count.read()  # the first /health need not wait behind searches
        try:
            yield
        finally:
            store.close()

    api = FastAPI(
        title="newswire",
        description="Search news articles by text, actor, location, date, source and place.",
        lifespan=lifespan,
        docs_url=None,  # served below from the vendored Swagger UI
        redoc_url=None,
    )
    api.mount("/static", StaticFiles(directory=WEB), name="static")

    @api.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's validation errors in the API's one 422 shape: ``{"detail": "<message>"}``."""
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body"))
            parts.append(
                f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid"))
            )
        return JSONResponse(
            status_code=422, content={"detail": redact("; ".join(parts) or "invalid request")}
        )

    @api.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB / "index.html", headers={"Content-Security-Policy": PAGE_CSP})

    @api.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=api.openapi_url or "/openapi.json",
            title="newswire API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
        )

    @api.get("/health")
    async def health(request: Request, store: StoreDep) -> Any:
        """Liveness and the number of stored articles."""
        url = redact(store.url)
        counter: HealthCount | None = getattr(request.app.state, "health_count", None)
        if counter is None or counter.store is not store:  # one per store (tests swap the store)
            counter = request.app.state.health_count = HealthCount(store, request.app.state.health_limiter)
        try:
            count = await counter.read()
        except Exception as exc:  # /health answers 503 for any store failure, never crashes
            log.warning("health: counting the store failed", exc_info=True)
            return JSONResponse(
                status_code=503, content={"status": "unavailable", "store": url, "error": redact(str(exc))}
            )
        return {"status": "ok", "store": url, "articles": count}

    @api.get("/search")
    def search(
        store: StoreDep,
        q: Annotated[str, Query(description='full-text query (words, "phrases", -excluded, prefix*)')] = "",
        actor: Repeated = None,
        location: Repeated = None,
        since: Annotated[
            str | None, Query(description="from: 2017-06-07, today, yesterday, monday, 3d")
        ] = None,
        until: Annotated[str | None, Query(description="until (inclusive), same forms as since")] = None,
        source: Repeated = None,
        language: Repeated = None,
        country: Repeated = None,
        near: Annotated[str | None, Query(description="lat,lon,km")] = None,
        bbox: Annotated[str | None, Query(description="top,left,bottom,right")] = None,
        sort: Annotated[str, Query(description="relevance or date")] = "relevance",
        limit: Annotated[int, Query(description="hits to return (1-1000)")] = 20,
        all_copies: Annotated[bool, Query(description="every outlet's copy, not one hit per story")] = False,
        after: Annotated[str | None, Query(description="next_after of the previous page")] = None,
    ) -> Response:
        """The same search as ``newswire search --json``."""
        try:
            query = build_query(
                q,
                actor or [],
                location or [],
                since,
                until,
                source or [],
                language or [],
                country or [],
                near,
                bbox,
                sort,
                limit,
                collapse=not all_copies,
            )
            if after is not None:
                query.after = decode_cursor(after)
        except QueryError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        try:
            result = store.search(query)
        except SearchTimeout as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        except ValueError as exc:
            if query.after is None:
                raise
            raise HTTPException(
                status_code=422, detail=f"--after: {exc}"
            ) from None  # a cursor of another sort
        except Exception as exc:
            if not unavailable(exc):
                raise
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HTTPException(
                status_code=503, detail=redact(f"store unavailable: {reason[:300]}")
            ) from None
        payload = search_payload(result, query.notes)
        # encoded once with orjson: FastAPI's generic encoder walks every hit's fields (measured with
        # bench/bench_api.py, it was a third of the time the API added to a search)
        return Response(orjson.dumps(payload, default=str), media_type="application/json")

    @api.get("/suggest")
    def suggest(
        kind: Annotated[str, Query(description="actor or location")],
        prefix: Annotated[str, Query(description="what the user typed so far, in any spelling")] = "",
        limit: Annotated[int, Query(description="suggestions to return (1-50)")] = 10,
    ) -> dict[str, Any]:
        """Actors or places whose canonical name or an alias starts with ``prefix``, best first."""
        from pipeline.suggest import get_suggester

        try:
            return {"suggestions": get_suggester().suggest(kind, prefix, limit)}
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None

    @api.get("/entities")
    def entities(id: Repeated = None) -> dict[str, Any]:
        """Canonical name, kind, country and point of actors and places by id (unknown ids left out)."""
        from pipeline.suggest import default_gazetteer, entity_info

        ids = [i for i in (id or []) if i][:200]
        return {"entities": entity_info(default_gazetteer(), ids) if ids else []}

    @api.get("/articles/{article_id}")
    def article(article_id: str, store: StoreDep) -> dict[str, Any]:
        """One stored article by id."""
        found = store.get(article_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no article with id {article_id!r}")
        return public_article(found)

    @api.get("/clusters/{cluster_id}")
    def cluster(cluster_id: str, store: StoreDep) -> dict[str, Any]:
        """Every stored copy of one story, the representative first."""
        members = store.cluster_members(cluster_id)
        if not members:
            raise HTTPException(status_code=404, detail=f"no cluster with id {cluster_id!r}")
        return {"cluster_id": cluster_id, "members": [public_article(m) for m in members]}

    return api


app = create_app()
