"""A lean HTTP/1.1 server on asyncio + httptools: keep-alive, pipelining, graceful drain,
and the limits a server facing untrusted clients needs (``Limits``). The routes live in
app.py; this module only moves bytes.

Every connection has one deadline, moved on each phase change (never per chunk, so the
hot path stays cheap) and checked by a sweep once a second:

- waiting for a request's head (a new connection, or after the first byte of the next
  request): ``header_timeout``, then 408 (or a silent close if nothing was sent);
- reading its body: ``body_timeout`` from the end of the head, then 408;
- idle between keep-alive requests: ``idle_timeout``, then a silent close;
- a client that does not read its answers (the socket's send buffer full): reading stops
  (so it cannot pile up more answers) and after ``body_timeout`` the connection is aborted.

At ``max_connections`` a new connection first evicts the oldest connection that has sent
nothing, else the oldest idle keep-alive one, else it is answered 503 and closed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

import httptools

from perennial_runtime.serve.app import JSON, App, Respond
from perennial_runtime.serve.batching import MicroBatcher

log = logging.getLogger("perennial.serve")
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
SWEEP_SECONDS = 1.0


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 4 << 20
    max_url_bytes: int = 8 << 10
    max_header_bytes: int = 16 << 10  # the whole head after the request line
    max_connections: int = 1000  # per worker process
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 60.0


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


def _error_payload(message: str) -> bytes:
    return b'{"error":"' + message.encode() + b'"}'


class HttpServer:
    def __init__(self, app: App, batcher: MicroBatcher, limits: Limits) -> None:
        self.app, self.batcher, self.limits = app, batcher, limits
        # Insertion-ordered: the oldest connection comes first when one must be evicted.
        self.connections: dict[Connection, None] = {}
        self.draining = False
        self.requests = 0  # requests read in full: each one gets an answer
        self.refused = 0  # connections answered 503 at max_connections
        self._servers: list[asyncio.AbstractServer] = []
        self._idle = asyncio.Event()
        self._sweeper: asyncio.TimerHandle | None = None

    async def listen(self, sock: Any) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Connection(self), sock=sock, backlog=2048)
        self._servers.append(server)
        if self._sweeper is None:
            self._sweeper = loop.call_later(SWEEP_SECONDS, self._sweep)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection in [c for c in self.connections if c.deadline <= now]:
            connection.expire()
        self._sweeper = loop.call_later(SWEEP_SECONDS, self._sweep)

    def admit(self, connection: Connection) -> bool:
        """Room for one more connection: evict the oldest idle one if at the cap."""
        if len(self.connections) >= self.limits.max_connections:
            # Silent sockets first (what a flood of idle connections looks like), then the
            # oldest idle keep-alive one: its client reconnects, as after an idle timeout.
            victim = next((c for c in self.connections if c.evictable(silent=True)), None)
            if victim is None:
                victim = next((c for c in self.connections if c.evictable(silent=False)), None)
            if victim is None:
                self.refused += 1
                return False
            victim.close_now()
        self.connections[connection] = None
        return True

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
        if self._sweeper is not None:
            self._sweeper.cancel()
        return True

    def forget(self, connection: Connection) -> None:
        self.connections.pop(connection, None)
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
        self.limits = server.limits
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.pending: deque[_Slot] = deque()  # answers in request order (pipelining)
        self.url: list[bytes] = []
        self.url_bytes = 0
        self.head_bytes = 0  # bytes of whole chunks received while the head stays incomplete
        self.header_bytes = 0  # header names and values of the current request
        self.began = False  # a request began in the chunk being fed
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.in_message = False  # a request has begun and is not fully read
        self.in_head = False
        self.in_body = False
        self.sent_anything = False
        self.expect_continue = False
        self.authorization: bytes | None = None
        self.closing = False  # an error answer is on its way; the rest is not read
        self.reading = False  # counted by the batcher as a body arriving right now
        self.last_body = 0.0
        self.write_blocked = False
        self.deadline = math.inf

    # asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if not self.server.admit(self):
            self.closing = True
            payload = _error_payload("too many connections; retry later")
            self.transport.write(_head(503, JSON, len(payload), False) + payload)
            self.transport.close()
            return
        self.deadline = self.loop.time() + self.limits.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_reading()
        self.transport = None
        self.server.forget(self)

    def pause_writing(self) -> None:
        # The client does not read its answers: stop reading its requests until it does.
        self.write_blocked = True
        if self.transport is not None:
            self.transport.pause_reading()
        self.deadline = self.loop.time() + self.limits.body_timeout

    def resume_writing(self) -> None:
        self.write_blocked = False
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()
        self._settle_deadline()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # an error answer is on its way and the connection will close
        self.sent_anything = True
        head_open, self.began = self.in_head, False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrade/CONNECT: this server speaks plain HTTP/1.1 only. A complete request is
            # answered as usual, then the connection closes (its bytes are not HTTP any more).
            self._stop_reading()
            if self.in_message or not self.pending:
                self._fail(400, "protocol upgrade is not supported")
            else:
                self.pending[-1].keep_alive = False
                self.closing = True
                self._flush()
            return
        except httptools.HttpParserError:
            self._stop_reading()
            self._fail(400, "malformed HTTP request")
            return
        if self.in_head and not self.closing:
            # A head that began in this chunk holds at most the chunk (the loop's read size);
            # every further chunk that leaves it unfinished counts in full. httptools only
            # reports a header once complete, so this bounds one endless header line.
            self.head_bytes = self.head_bytes + len(data) if head_open and not self.began else 0
            if self.head_bytes > self.limits.max_url_bytes + self.limits.max_header_bytes:
                self._fail(431, "request head too large")
        elif self.in_body and not self.closing:
            self._body_arriving()

    # httptools callbacks ------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url, self.url_bytes, self.body, self.body_bytes = [], 0, [], 0
        self.in_message, self.in_head, self.in_body = True, True, False
        self.head_bytes = self.header_bytes = 0
        self.began = True
        self.expect_continue, self.authorization = False, None
        self.deadline = self.loop.time() + self.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        if self.closing:
            return
        self.url_bytes += len(url)
        if self.url_bytes > self.limits.max_url_bytes:
            self._fail(414, f"URL longer than {self.limits.max_url_bytes} bytes")
            return
        self.url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.closing:
            return
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.limits.max_header_bytes:
            self._fail(431, f"request headers longer than {self.limits.max_header_bytes} bytes")
            return
        lower = name.lower()
        if lower == b"content-length" and value.isdigit():
            if int(value) > self.limits.max_body_bytes:
                self._reject_too_large()
        elif lower == b"authorization":
            self.authorization = value  # feedback's bearer token; never logged
        elif lower == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True  # curl waits a second for it on larger bodies

    def on_headers_complete(self) -> None:
        self.in_head, self.in_body = False, True
        if self.closing:
            return
        self.deadline = self.loop.time() + self.limits.body_timeout
        if self.expect_continue and not self.pending and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self.closing:
            return
        self.body_bytes += len(body)
        if self.body_bytes > self.limits.max_body_bytes:
            self._reject_too_large()
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self._stop_reading()
        self.in_message = self.in_head = self.in_body = False
        if self.closing:
            return
        self.deadline = math.inf  # the answer is ours to give now
        started = time.perf_counter()
        self.server.requests += 1
        slot = _Slot(self.parser.should_keep_alive())
        self.pending.append(slot)
        path = self._path()
        body = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        self.body = []
        respond = self._responder(slot)
        try:
            method = self.parser.get_method()
            self.server.app.handle(method, path, body, respond, started, self.authorization)
        except Exception:  # a bug must cost one 500, never a hung client
            log.exception("request failed", extra={"fields": {"path": path[:200]}})
            if slot.data is None:
                respond(500, b'{"error":"internal error"}', JSON)

    # the batcher's view: is a body arriving right now? ------------------------------
    def _body_arriving(self) -> None:
        """A body split across reads usually continues in the next loop turn, and the
        batcher may wait (at most its latency bound) for it. A body that stops arriving
        stops counting after that bound, so stalled clients cannot slow everyone's batches."""
        self.last_body = self.loop.time()
        if not self.reading:
            self.reading = True
            self.server.batcher.reading_started()
            self.loop.call_later(self.server.batcher.max_latency, self._reading_check)

    def _reading_check(self) -> None:
        if not self.reading:
            return
        quiet = self.loop.time() - self.last_body
        if quiet >= self.server.batcher.max_latency:
            self._stop_reading()
        else:
            self.loop.call_later(self.server.batcher.max_latency - quiet, self._reading_check)

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.server.batcher.reading_finished()

    # answers ------------------------------------------------------------------------
    def _path(self) -> str:
        url = b"".join(self.url)
        return url.split(b"?", 1)[0].decode("utf-8", "replace")

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
                self.closing = True
                self.transport.close()
                return
        if self.server.draining:
            self.close_if_idle()
        self._settle_deadline()

    def _settle_deadline(self) -> None:
        if self.write_blocked or self.in_message:
            return  # their own deadline runs
        if self.pending:
            self.deadline = math.inf
        else:
            self.deadline = self.loop.time() + self.limits.idle_timeout

    def evictable(self, silent: bool) -> bool:
        idle = not self.pending and not self.in_message and not self.write_blocked
        return idle and not (silent and self.sent_anything)

    def expire(self) -> None:
        """The deadline passed: 408 for a request begun, a silent close otherwise."""
        if self.transport is None:
            return
        if self.write_blocked:
            self.transport.abort()
        elif self.in_message and not self.closing and self.sent_anything:
            self._stop_reading()
            self._fail(408, "request not received in time")
        elif not self.pending:
            self.close_now()
        self.deadline = math.inf

    def close_now(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def close_if_idle(self) -> None:
        if self.transport is not None and not self.pending and not self.in_message:
            self.transport.close()

    def _reject_too_large(self) -> None:
        if self.closing:
            return
        self.closing = True
        self._stop_reading()
        limit = self.limits.max_body_bytes
        message = f"request body exceeds the limit of {limit} bytes (--max-body-bytes)"
        slot = _Slot(keep_alive=False)
        self.pending.append(slot)
        respond = self._responder(slot)
        self.server.app.reject(self._path(), 413, message, respond, time.perf_counter())

    def _fail(self, status: int, message: str) -> None:
        """Answer an error after every answer already due, then close."""
        self.closing = True
        payload = _error_payload(message)
        slot = _Slot(keep_alive=False)
        slot.data = _head(status, JSON, len(payload), False) + payload
        self.pending.append(slot)
        self._flush()
