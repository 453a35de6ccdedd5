"""Reading a response body within the size limit, decoding gzip, deflate and brotli as it streams.

Contract: :func:`read_body` returns at most ``max_bytes`` *decoded* bytes of a response:
a larger ``Content-Length`` fails before reading, raw bytes past the limit fail while
streaming, and the decoders (:class:`_BoundedDecoder`) never inflate past the limit, so a
compression bomb costs at most ``max_bytes`` of memory. With ``truncate`` the body is cut
at the limit instead (robots.txt). Failures raise :class:`~pipeline.fetch.errors.FetchError`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import brotli
import httpx

from pipeline.fetch.errors import FetchError

_READ_CHUNK = 64 * 1024


class _BoundedDecoder:
    """Content-Encoding decoder that never produces more than ``limit`` bytes in total.

    httpx's own decoders inflate a whole network chunk at once (64 KiB of gzip can become
    64 MiB); these pass ``max_length`` / ``output_buffer_limit`` so memory stays bounded.
    """

    def __init__(self, encodings: Sequence[str], limit: int, truncate: bool) -> None:
        self.limit = limit
        self.truncate = truncate
        self.produced = 0
        self.full = False
        self.stages: list[Callable[[bytes, int], bytes]] = []
        for encoding in reversed(list(encodings)):  # applied in order, so undone in reverse
            self.stages.append(self._stage(encoding))

    def _stage(self, encoding: str) -> Callable[[bytes, int], bytes]:
        if encoding in ("gzip", "x-gzip"):
            return _ZlibStage(zlib.MAX_WBITS | 16, gzip=True)
        if encoding == "deflate":
            return _ZlibStage(zlib.MAX_WBITS, gzip=False)
        if encoding == "br":
            return _BrotliStage()
        raise FetchError(f"unsupported Content-Encoding {encoding!r}")

    def feed(self, data: bytes) -> bytes:
        for stage in self.stages:
            data = stage(data, self.limit - self.produced + 1)
        self.produced += len(data)
        if self.produced > self.limit:
            if self.truncate:
                self.full = True
                return data[: len(data) - (self.produced - self.limit)]
            raise FetchError(f"body larger than {self.limit} bytes (decoded)")
        return data


class _ZlibStage:
    def __init__(self, wbits: int, gzip: bool) -> None:
        self.wbits = wbits
        self.gzip = gzip
        self.d = zlib.decompressobj(wbits)
        self.first = True

    def __call__(self, data: bytes, room: int) -> bytes:
        out = bytearray()
        try:
            while data:
                try:
                    chunk = self.d.decompress(data, max(room - len(out), 1))
                except zlib.error:
                    if self.first and not self.gzip:  # "deflate" sent as raw deflate (common)
                        self.d = zlib.decompressobj(-zlib.MAX_WBITS)
                        self.first = False
                        continue
                    raise
                self.first = False
                out += chunk
                if len(out) >= room:
                    break
                if self.d.unconsumed_tail:
                    data = self.d.unconsumed_tail
                elif self.d.eof and self.d.unused_data and self.gzip:  # concatenated gzip members
                    data = self.d.unused_data
                    self.d = zlib.decompressobj(self.wbits)
                else:
                    data = b""
        except zlib.error as exc:
            raise FetchError(f"invalid {'gzip' if self.gzip else 'deflate'} body: {exc}") from exc
        return bytes(out)


class _BrotliStage:
    def __init__(self) -> None:
        self.d = brotli.Decompressor()

    def __call__(self, data: bytes, room: int) -> bytes:
        try:
            out = bytearray(self.d.process(data, output_buffer_limit=room))
            while len(out) < room and not self.d.can_accept_more_data():
                out += self.d.process(b"", output_buffer_limit=room - len(out))
        except brotli.error as exc:
            raise FetchError(f"invalid brotli body: {exc}") from exc
        return bytes(out)


async def read_body(resp: httpx.Response, headers: dict[str, str], max_bytes: int, truncate: bool) -> bytes:
    """The decoded body of ``resp`` (``headers`` lower-cased), at most ``max_bytes`` long."""
    length = headers.get("content-length", "").strip()
    if length.isdigit() and int(length) > max_bytes and not truncate:
        raise FetchError(f"body larger than {max_bytes} bytes (Content-Length: {length})")
    encodings = [
        e.strip().lower()
        for e in headers.get("content-encoding", "").split(",")
        if e.strip() and e.strip().lower() != "identity"
    ]
    decoder = _BoundedDecoder(encodings, max_bytes, truncate)
    out = bytearray()
    raw = 0
    async for chunk in resp.aiter_raw(_READ_CHUNK):
        raw += len(chunk)
        if raw > max_bytes and not truncate:
            raise FetchError(f"body larger than {max_bytes} bytes" + (" (compressed)" if encodings else ""))
        out += decoder.feed(chunk)
        if decoder.full:
            break
    return bytes(out)
