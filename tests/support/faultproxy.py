"""Proxies on loopback in front of a real server, for fault tests (one home for them).

- :class:`TcpProxy`: a raw TCP forwarder; :meth:`TcpProxy.stop` is the server dying (the
  listener closes and every open connection is cut).
- :class:`FaultProxy`: an HTTP/1.1 proxy in front of a real Elasticsearch server that answers
  some requests itself, like an overloaded cluster does:

  - :meth:`FaultProxy.reject` adds a rule: requests of the given kinds (the first path segment
    that starts with ``_``: ``_bulk``, ``_search``, ``_doc``, ``_mget`` ...; ``methods``
    narrows it) are answered with ``status`` (429: an ``es_rejected_execution_exception``
    body, 503: ``unavailable_shards_exception``) without reaching the server: every
    ``every``-th matching request, at most ``first`` of them (``None``: no limit).
  - :meth:`FaultProxy.reject_documents`: inside forwarded ``_bulk`` requests, every
    ``every``-th document (at most ``first`` in all) is withheld from the server and answered
    in place with a per-item ``429`` (``"errors": true``), as a node whose write queue is
    full does: a rejected document is really not written, so a client that drops it loses it.
  - :meth:`FaultProxy.heal` drops every rule; :meth:`FaultProxy.stop` closes the proxy.

  It counts what it did: ``injected[(status, kind)]`` (requests answered by the proxy),
  ``rejected_documents``, ``forwarded[kind]``. Responses are relayed whole (the body is read,
  then sent with a Content-Length), request bodies as they came (``Accept-Encoding`` is
  dropped so bulk responses can be read).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

#: Request headers not passed on (hop-by-hop, or recomputed).
_DROP_REQUEST = {"host", "connection", "keep-alive", "accept-encoding", "content-length", "transfer-encoding"}
_DROP_RESPONSE = {"connection", "keep-alive", "content-length", "transfer-encoding"}

ERROR_BODIES = {
    429: {
        "type": "es_rejected_execution_exception",
        "reason": "rejected execution of coordinating operation [injected by faultproxy]",
    },
    503: {
        "type": "unavailable_shards_exception",
        "reason": "primary shard is not active [injected by faultproxy]",
    },
}


def error_body(status: int) -> bytes:
    """An Elasticsearch-style error document for ``status`` (429 or 503)."""
    if status not in ERROR_BODIES:
        raise ValueError(f"faultproxy: no error body for status {status}; known: 429, 503")
    cause = ERROR_BODIES[status]
    return json.dumps({"error": {"root_cause": [cause], **cause}, "status": status}).encode()


def request_kind(path: str) -> str:
    """``/news/_search?x`` -> ``_search``; ``/news-feeds/_doc/1`` -> ``_doc``; ``/`` -> ``/``."""
    for segment in urlsplit(path).path.split("/"):
        if segment.startswith("_"):
            return segment
    return "/"


@dataclass
class _Every:
    """Fires on every ``every``-th occasion, at most ``first`` times (None: no limit)."""

    every: int
    first: int | None
    seen: int = 0
    fired: int = 0

    def fires(self) -> bool:
        self.seen += 1
        if self.seen % self.every or (self.first is not None and self.fired >= self.first):
            return False
        self.fired += 1
        return True


@dataclass
class Rule(_Every):
    """A :class:`_Every` over the requests of some kinds (and methods), answered with ``status``."""

    status: int = 503
    kinds: frozenset[str] = frozenset()
    methods: frozenset[str] | None = None

    def fires_on(self, method: str, kind: str) -> bool:
        if kind not in self.kinds or (self.methods is not None and method not in self.methods):
            return False
        return self.fires()


@dataclass
class _Counts:
    injected: Counter[tuple[int, str]] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)
    rejected_documents: int = 0


class FaultProxy:
    """See the module docstring. ``target_url``: ``http://host:port`` of the real server."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 9200)
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._doc_rule: _Every | None = None
        self._counts = _Counts()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    # configuration
    def reject(
        self,
        status: int,
        kinds: tuple[str, ...] = ("_bulk",),
        *,
        methods: tuple[str, ...] | None = None,
        every: int = 1,
        first: int | None = None,
    ) -> FaultProxy:
        error_body(status)  # refuses a status without a body now, not in the middle of a request
        if every < 1:
            raise ValueError(f"faultproxy: every must be >= 1, got {every}")
        with self._lock:
            self._rules.append(
                Rule(
                    every,
                    first,
                    status=status,
                    kinds=frozenset(kinds),
                    methods=frozenset(methods) if methods else None,
                )
            )
        return self

    def reject_documents(self, every: int, first: int | None = None) -> FaultProxy:
        if every < 1:
            raise ValueError(f"faultproxy: every must be >= 1, got {every}")
        with self._lock:
            self._doc_rule = _Every(every, first)
        return self

    def heal(self) -> None:
        with self._lock:
            self._rules.clear()
            self._doc_rule = None

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # observations
    @property
    def injected(self) -> Counter[tuple[int, str]]:
        with self._lock:
            return Counter(self._counts.injected)

    @property
    def forwarded(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts.forwarded)

    @property
    def rejected_documents(self) -> int:
        with self._lock:
            return self._counts.rejected_documents

    # internals (called by the handler)
    def _injection(self, method: str, kind: str) -> int | None:
        with self._lock:
            for rule in self._rules:
                if rule.fires_on(method, kind):
                    self._counts.injected[(rule.status, kind)] += 1
                    return rule.status
            self._counts.forwarded[kind] += 1
            return None

    def _split_bulk(self, body: bytes) -> tuple[bytes, list[tuple[str, dict[str, Any]] | None]]:
        """The bulk body to forward and, per document in order, ``None`` (forwarded) or the
        rejected document's ``(op, metadata)``."""
        with self._lock:
            rule = self._doc_rule
            if rule is None:
                return body, []
            lines = [line for line in body.split(b"\n") if line.strip()]
            kept: list[bytes] = []
            plan: list[tuple[str, dict[str, Any]] | None] = []
            i = 0
            while i < len(lines):
                action = json.loads(lines[i])
                op = next(iter(action))
                width = 1 if op == "delete" else 2
                if rule.fires():
                    self._counts.rejected_documents += 1
                    plan.append((op, action[op]))
                else:
                    kept.extend(lines[i : i + width])
                    plan.append(None)
                i += width
        return (b"\n".join(kept) + b"\n" if kept else b""), plan


def _spliced(upstream: dict[str, Any] | None, plan: list[tuple[str, dict[str, Any]] | None]) -> bytes:
    """The bulk response: the server's items for forwarded documents, a 429 item for each
    rejected one, in the request's order."""
    theirs = iter((upstream or {}).get("items") or [])
    items: list[dict[str, Any]] = []
    for entry in plan:
        if entry is None:
            items.append(next(theirs))
            continue
        op, meta = entry
        info = {k: v for k, v in meta.items() if k in ("_index", "_id")}
        items.append({op: {**info, "status": 429, "error": ERROR_BODIES[429]}})
    took = (upstream or {}).get("took", 0)
    return json.dumps({"errors": True, "took": took, "items": items}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _any(self) -> None:
        owner: FaultProxy = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        kind = request_kind(self.path)
        status = owner._injection(self.command, kind)
        if status is not None:
            self._send(status, {"Content-Type": "application/json"}, error_body(status))
            return
        plan: list[tuple[str, dict[str, Any]] | None] = []
        if kind == "_bulk" and body:
            body, plan = owner._split_bulk(body)
        if plan and not body:  # every document rejected: nothing reaches the server
            self._send(200, {"Content-Type": "application/json"}, _spliced(None, plan))
            return
        try:
            status, headers, answer = self._forward(owner, body)
        except OSError:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if plan and any(plan) and status == 200:
            answer = _spliced(json.loads(answer), plan)
        self._send(status, headers, answer, head=self.command == "HEAD")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

    def _forward(self, owner: FaultProxy, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROP_REQUEST}
        headers["Host"] = f"{owner.target[0]}:{owner.target[1]}"
        if body or self.command in ("POST", "PUT"):
            headers["Content-Length"] = str(len(body))
        for attempt in (0, 1):  # a kept-alive upstream connection the server closed: once more
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(*owner.target, timeout=120)
            try:
                self.upstream.request(self.command, self.path, body=body or None, headers=headers)
                resp = self.upstream.getresponse()
                answer = resp.read()
            except (http.client.HTTPException, OSError):
                self.upstream.close()
                self.upstream = None
                if attempt:
                    raise OSError("upstream failed") from None
                continue
            kept = {k: v for k, v in resp.getheaders() if k.lower() not in _DROP_RESPONSE}
            if self.command == "HEAD":
                kept["Content-Length"] = resp.getheader("Content-Length") or "0"
            return resp.status, kept, answer
        raise OSError("upstream failed")

    def _send(self, status: int, headers: dict[str, str], body: bytes, head: bool = False) -> None:
        self.send_response(status)
        headers = {"X-elastic-product": "Elasticsearch", **headers}
        for k, v in headers.items():
            self.send_header(k, v)
        if not head:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def finish(self) -> None:
        super().finish()
        if self.upstream is not None:
            self.upstream.close()


class TcpProxy:
    """A TCP forwarder on loopback in front of the real server; :meth:`stop` is the server
    dying: the listener closes and every open connection is cut."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 9200)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.stopped.is_set():
                client.close()
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
        self.listener.close()
        for s in list(self.sockets):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
