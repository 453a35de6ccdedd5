"""A loopback HTTP server that serves fixtures and misbehaves on purpose (pytest plugin).

Contract:

- :class:`FeedServer` is a real HTTP/1.1 server (stdlib ``ThreadingHTTPServer``, real
  sockets) bound to a loopback address and a free port. Register what it serves with
  :meth:`FeedServer.add` (a static response: body, status, headers, delay),
  :meth:`FeedServer.add_sequence` (one response per hit, the last one repeats),
  :meth:`FeedServer.add_fault` (a named misbehaviour, see :data:`FAULTS`),
  :meth:`FeedServer.add_handler` (any callable) and :meth:`FeedServer.serve_dir` (a folder,
  e.g. ``config/samples/``). Each returns the absolute URL; :meth:`FeedServer.url` builds one.
- It records every request (path, headers) so tests can assert what a client sent, counts
  hits per path and the highest number of requests in flight at once.
- Static routes support ETag / Last-Modified and answer 304 to matching conditional
  requests, like a well-behaved server.
- The pytest fixture ``feed_server`` (session-scoped) yields a started server; paths are
  global to the session, so tests register unique paths (the ``unique_path`` fixture
  helps). The server is stopped at the end of the session.
- Run as a script (``python -m tests.support.feedserver DIR``) it serves a folder until Ctrl-C.
"""

from __future__ import annotations

import gzip
import itertools
import os
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import brotli
import pytest

Handler = Callable[["_RequestHandler"], None]

CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass
class Response:
    """A static response. ``delay`` sleeps before answering; ``etag``/``last_modified``
    enable conditional requests (``stale`` keeps answering 304 to any If-None-Match, like
    servers that never notice a change)."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/rss+xml"
    etag: str | None = None
    last_modified: str | None = None
    stale: bool = False


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    at: float


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        owner._enter(self)
        try:
            handler = owner._route(self.path)
            if handler is None:
                self.send_plain(404, b"not found\n")
            else:
                handler(self)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True
        finally:
            owner._leave()

    do_HEAD = do_GET

    # helpers for handlers
    def send_plain(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if status not in (204, 304) and "content-length" not in {k.lower() for k in (headers or {})}:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)
            self.server.owner._sent(len(body))

    def write_chunked(self, chunks: Iterator[bytes]) -> None:
        for chunk in chunks:
            if not chunk:
                continue
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.server.owner._sent(len(chunk))
        self.wfile.write(b"0\r\n\r\n")

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    owner: FeedServer


# ----------------------------------------------------------------------------- payloads

_BOMBS: dict[str, bytes] = {}


def gzip_bomb(decoded_mb: int = 100) -> bytes:
    """gzip of ``decoded_mb`` MiB of zeros (about 1000:1)."""
    key = f"gzip{decoded_mb}"
    if key not in _BOMBS:
        c = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        block = bytes(1024 * 1024)
        _BOMBS[key] = b"".join(c.compress(block) for _ in range(decoded_mb)) + c.flush()
    return _BOMBS[key]


def brotli_bomb(decoded_mb: int = 100) -> bytes:
    key = f"br{decoded_mb}"
    if key not in _BOMBS:
        c = brotli.Compressor(quality=5)
        block = bytes(1024 * 1024)
        _BOMBS[key] = b"".join(c.process(block) for _ in range(decoded_mb)) + c.finish()
    return _BOMBS[key]


def rss(title: str, n_items: int = 3, base: str = "http://example.org", charset: str = "utf-8") -> bytes:
    """A small valid RSS 2.0 document (our own text)."""
    items = "".join(
        f"<item><title>{title} item {i}</title><link>{base}/{title}/{i}</link>"
        f"<guid>{base}/{title}/{i}</guid><description>Story {i} of {title}.</description>"
        f"<pubDate>Mon, 06 Nov 2023 {10 + i % 10:02d}:00:00 GMT</pubDate></item>"
        for i in range(n_items)
    )
    doc = (
        f'<?xml version="1.0" encoding="{charset}"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>{base}/</link><description>Test feed {title}</description>{items}</channel></rss>"
    )
    return doc.encode(charset if charset.lower() != "us-ascii" else "ascii", errors="xmlcharrefreplace")


# ----------------------------------------------------------------------------- faults


def _hang(req: _RequestHandler) -> None:
    req.server.owner._stopping.wait(120)
    req.close_connection = True


def _drip(req: _RequestHandler, interval: float = 0.3, chunks: int = 1000) -> None:
    """Headers at once, then one byte per ``interval``: read timeouts never fire, totals do."""
    req.send_response(200)
    req.send_header("Content-Type", "application/rss+xml")
    req.send_header("Content-Length", str(chunks))
    req.end_headers()
    for _ in range(chunks):
        if req.server.owner._stopping.wait(interval):
            break
        req.wfile.write(b" ")
        req.wfile.flush()
    req.close_connection = True


def _lying_length(req: _RequestHandler) -> None:
    body = rss("liar")
    req.send_response(200)
    req.send_header("Content-Type", "application/rss+xml")
    req.send_header("Content-Length", str(len(body) * 10))
    req.end_headers()
    req.wfile.write(body)
    req.wfile.flush()
    req.close_connection = True


def _huge(req: _RequestHandler, size: int = 50 * 1024 * 1024, with_length: bool = False) -> None:
    """A ``size``-byte body (default 50 MiB), chunked or with a truthful Content-Length."""
    req.send_response(200)
    req.send_header("Content-Type", "application/rss+xml")
    if with_length:
        req.send_header("Content-Length", str(size))
    else:
        req.send_header("Transfer-Encoding", "chunked")
    req.end_headers()
    block = b"<item>" + b"x" * (64 * 1024 - 13) + b"</item>"

    def blocks() -> Iterator[bytes]:
        left = size
        while left > 0:
            yield block[:left]
            left -= len(block)

    if with_length:
        for b in blocks():
            req.wfile.write(b)
            req.server.owner._sent(len(b))
    else:
        req.write_chunked(blocks())
    req.close_connection = True


def _bomb(encoding: str) -> Handler:
    def handler(req: _RequestHandler) -> None:
        body = gzip_bomb() if encoding == "gzip" else brotli_bomb()
        req.send_plain(200, body, {"Content-Encoding": encoding}, "application/rss+xml")

    return handler


def _reset(req: _RequestHandler) -> None:
    req.reset()


def _reset_midway(req: _RequestHandler) -> None:
    body = rss("midway", 50)
    req.send_response(200)
    req.send_header("Content-Type", "application/rss+xml")
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body[: len(body) // 3])
    req.wfile.flush()
    time.sleep(0.05)
    req.reset()


#: named misbehaviours for :meth:`FeedServer.add_fault` (callables take the request handler)
FAULTS: dict[str, Handler] = {
    "hang": _hang,
    "drip": _drip,
    "reset": _reset,
    "reset_midway": _reset_midway,
    "lying_length": _lying_length,
    "huge": _huge,
    "huge_with_length": lambda req: _huge(req, with_length=True),
    "gzip_bomb": _bomb("gzip"),
    "brotli_bomb": _bomb("br"),
}


# ----------------------------------------------------------------------------- the server


class FeedServer:
    """See the module docstring. ``host`` may be any 127.x.y.z address (benchmarks use
    several to simulate several hosts)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._routes: dict[str, Handler] = {}
        self._prefixes: list[tuple[str, Path]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Seen] = []
        self.hits: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.bytes_sent = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> FeedServer:
        self._httpd = _Server((self.host, 0), _RequestHandler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"feedserver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addressing
    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str, host: str | None = None) -> str:
        """Absolute URL of ``path``; ``host`` swaps the host name (e.g. ``localhost``)."""
        if not path.startswith("/"):
            path = "/" + path
        return f"http://{host or self.host}:{self.port}{path}"

    # registration
    def add_handler(self, path: str, handler: Handler) -> str:
        with self._lock:
            self._routes[path] = handler
        return self.url(path)

    def add(
        self,
        path: str,
        body: bytes | str = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        content_type: str = "application/rss+xml",
        etag: str | None = None,
        last_modified: str | None = None,
        stale: bool = False,
    ) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        resp = Response(body, status, dict(headers or {}), delay, content_type, etag, last_modified, stale)
        return self.add_handler(path, lambda req: self._respond(req, resp))

    def add_sequence(self, path: str, responses: Sequence[Response | Handler]) -> str:
        """One response per hit, in order; the last one repeats."""
        counter = itertools.count()
        items = list(responses)

        def handler(req: _RequestHandler) -> None:
            item = items[min(next(counter), len(items) - 1)]
            if isinstance(item, Response):
                self._respond(req, item)
            else:
                item(req)

        return self.add_handler(path, handler)

    def add_fault(self, path: str, kind: str) -> str:
        if kind not in FAULTS:
            raise KeyError(f"unknown fault {kind!r}; known: {', '.join(sorted(FAULTS))}")
        if kind == "gzip_bomb":  # build payloads now, not while a client waits on the socket
            gzip_bomb()
        elif kind == "brotli_bomb":
            brotli_bomb()
        return self.add_handler(path, FAULTS[kind])

    def add_redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.add(path, b"", status, {"Location": location})

    def serve_dir(self, directory: str | Path, prefix: str = "/") -> str:
        """Serve the files under ``directory`` at ``prefix`` (with ETag/Last-Modified)."""
        prefix = "/" + prefix.strip("/")
        with self._lock:
            self._prefixes.append((prefix.rstrip("/") + "/", Path(directory).resolve()))
        return self.url(prefix.rstrip("/") + "/")

    # observations
    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.requests if s.path == path]

    def reset_stats(self) -> None:
        with self._lock:
            self.max_in_flight = self.in_flight
            self.bytes_sent = 0

    # internals
    def _enter(self, req: _RequestHandler) -> None:
        path = req.path
        with self._lock:
            self.requests.append(Seen(path, {k.lower(): v for k, v in req.headers.items()}, time.monotonic()))
            if len(self.requests) > 20000:
                del self.requests[:10000]
            self.hits[path] = self.hits.get(path, 0) + 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _sent(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    def _route(self, raw_path: str) -> Handler | None:
        path = urlsplit(raw_path).path
        with self._lock:
            handler = self._routes.get(raw_path) or self._routes.get(path)
            prefixes = list(self._prefixes)
        if handler is not None:
            return handler
        for prefix, root in prefixes:
            if path.startswith(prefix):
                target = (root / path[len(prefix) :]).resolve()
                if target.is_file() and target.is_relative_to(root):
                    return lambda req, t=target: self._serve_file(req, t)  # type: ignore[misc]
        return None

    def _serve_file(self, req: _RequestHandler, path: Path) -> None:
        stat = path.stat()
        resp = Response(
            path.read_bytes(),
            200,
            {},
            0.0,
            CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"),
            etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"',
            last_modified=formatdate(stat.st_mtime, usegmt=True),
        )
        self._respond(req, resp)

    def _respond(self, req: _RequestHandler, resp: Response) -> None:
        if resp.delay and self._stopping.wait(resp.delay):
            return
        headers = dict(resp.headers)
        if resp.etag:
            headers["ETag"] = resp.etag
        if resp.last_modified:
            headers["Last-Modified"] = resp.last_modified
        if resp.status == 200 and (resp.etag or resp.last_modified):
            inm = req.headers.get("If-None-Match")
            ims = req.headers.get("If-Modified-Since")
            if (inm and (resp.stale or inm == resp.etag)) or (not inm and ims and ims == resp.last_modified):
                req.send_plain(304, b"", headers)
                return
        body = resp.body
        encoding = headers.get("Content-Encoding", "").lower()
        if encoding == "gzip-auto":  # compress on the fly (tests of decoding)
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        elif encoding == "deflate-auto":
            body, headers["Content-Encoding"] = zlib.compress(body), "deflate"
        elif encoding == "rawdeflate-auto":
            c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            body, headers["Content-Encoding"] = c.compress(body) + c.flush(), "deflate"
        elif encoding == "br-auto":
            body, headers["Content-Encoding"] = brotli.compress(body), "br"
        req.send_plain(resp.status, body, headers, resp.content_type)


# ----------------------------------------------------------------------------- pytest

_counter = itertools.count()


@pytest.fixture(scope="session")
def feed_server() -> Iterator[FeedServer]:
    """A started loopback :class:`FeedServer` shared by the session."""
    server = FeedServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unique_path(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique_path("feed.xml")`` -> ``/t42-test_name/feed.xml`` (no clashes between tests)."""
    stem = f"/t{next(_counter)}-{request.node.name[:40]}".replace("[", "-").replace("]", "")

    def make(name: str) -> str:
        return f"{stem}/{name.lstrip('/')}"

    return make


def main(argv: list[str]) -> int:
    directory = argv[0] if argv else os.getcwd()
    with FeedServer() as server:
        print(server.serve_dir(directory), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
