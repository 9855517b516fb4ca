"""A lean HTTP/1.1 server on asyncio + httptools: keep-alive, pipelining, body limit,
graceful drain. The routes live in app.py; this module only moves bytes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from http import HTTPStatus
from typing import Any, cast

import httptools

from perennial_runtime.serve.app import JSON, App, Respond
from perennial_runtime.serve.batching import MicroBatcher

log = logging.getLogger("perennial.serve")
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def _head(status: int, content_type: bytes, length: int, keep_alive: bool) -> bytes:
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\ncontent-type: " % (status, _REASONS.get(status, b"")),
            content_type,
            b"\r\ncontent-length: %d\r\n" % length,
            b"" if keep_alive else b"connection: close\r\n",
            b"\r\n",
        )
    )


class HttpServer:
    def __init__(self, app: App, batcher: MicroBatcher, max_body_bytes: int) -> None:
        self.app, self.batcher, self.max_body_bytes = app, batcher, max_body_bytes
        self.connections: set[Connection] = set()
        self.draining = False
        self.requests = 0  # requests read in full: each one gets an answer
        self._servers: list[asyncio.AbstractServer] = []
        self._idle = asyncio.Event()

    async def listen(self, sock: Any) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Connection(self), sock=sock, backlog=2048)
        self._servers.append(server)

    async def drain(self, timeout: float) -> bool:
        """Stop accepting, answer what was read, close connections. True if all finished."""
        self.draining = True
        self.app.draining = True
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            connection.close_if_idle()
        if self.connections:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except TimeoutError:
                return False
        return True

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if self.draining and not self.connections:
            self._idle.set()


class _Slot:
    __slots__ = ("data", "keep_alive")

    def __init__(self, keep_alive: bool) -> None:
        self.data: bytes | None = None
        self.keep_alive = keep_alive


class Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[_Slot] = deque()  # answers in request order (pipelining)
        self.url = b""
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.in_message = False
        self.expect_continue = False
        self.too_large = False
        self.reading = False

    # asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_reading()
        self.transport = None
        self.server.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.too_large:
            return  # the 413 is on its way and the connection will close
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._stop_reading()
            self._fail_connection(400, b'{"error":"malformed HTTP request"}')

    # httptools callbacks ------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url, self.body, self.body_bytes, self.in_message = b"", [], 0, True
        self.expect_continue = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"content-length" and value.isdigit():
            if int(value) > self.server.max_body_bytes:
                self._reject_too_large()
        elif lower == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True  # curl waits a second for it on larger bodies

    def on_headers_complete(self) -> None:
        # Tell the batcher a request is half-read, so a batch may wait for its body.
        if not self.too_large and not self.reading:
            self.reading = True
            self.server.batcher.reading_started()
        if self.expect_continue and not self.too_large and not self.pending and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.server.max_body_bytes:
            self._reject_too_large()
        elif not self.too_large:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self._stop_reading()
        self.in_message = False
        if self.too_large:
            return
        started = time.perf_counter()
        self.server.requests += 1
        slot = _Slot(self.parser.should_keep_alive())
        self.pending.append(slot)
        path = self.url.split(b"?", 1)[0].decode("utf-8", "replace")
        body = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        self.body = []
        respond = self._responder(slot)
        try:
            self.server.app.handle(self.parser.get_method(), path, body, respond, started)
        except Exception:  # a bug must cost one 500, never a hung client
            log.exception("request failed", extra={"fields": {"path": path[:200]}})
            if slot.data is None:
                respond(500, b'{"error":"internal error"}', JSON)

    # answers ------------------------------------------------------------------------
    def _responder(self, slot: _Slot) -> Respond:
        def respond(status: int, payload: bytes, content_type: bytes) -> None:
            keep = slot.keep_alive and not self.server.draining
            slot.keep_alive = keep
            slot.data = _head(status, content_type, len(payload), keep) + payload
            self._flush()

        return respond

    def _flush(self) -> None:
        while self.pending and self.pending[0].data is not None:
            slot = self.pending.popleft()
            if self.transport is None:
                continue  # the client left; its answer has nowhere to go
            self.transport.write(slot.data)  # type: ignore[arg-type]
            if not slot.keep_alive:
                self.pending.clear()
                self.transport.close()
                return
        if self.server.draining:
            self.close_if_idle()

    def close_if_idle(self) -> None:
        if self.transport is not None and not self.pending and not self.in_message:
            self.transport.close()

    def _reject_too_large(self) -> None:
        if self.too_large:
            return
        self.too_large = True
        self._stop_reading()
        limit = self.server.max_body_bytes
        message = f"request body exceeds the limit of {limit} bytes (--max-body-bytes)"
        slot = _Slot(keep_alive=False)
        self.pending.append(slot)
        path = self.url.split(b"?", 1)[0].decode("utf-8", "replace")
        self.server.app.reject(path, 413, message, self._responder(slot), time.perf_counter())

    def _fail_connection(self, status: int, payload: bytes) -> None:
        slot = _Slot(keep_alive=False)
        slot.data = _head(status, JSON, len(payload), False) + payload
        self.pending.append(slot)
        self._flush()

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.server.batcher.reading_finished()
