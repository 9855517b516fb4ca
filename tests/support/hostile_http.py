"""Hostile HTTP clients for perennial-serve, on raw sockets (no client library smooths the
bytes over): a corpus of malformed, oversized, slow and half-sent requests, each with the
answers a correct server gives, and the process-tree RSS of the server.

A case sends its chunks (with pauses between them when given), half-closes or not, then
reads answers until it has one per request it sent, the server closes, or `read_timeout`
passes. No answer where one is due is a failure, as is any 5xx.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

Expect = Callable[[int], bool]


def four_xx(status: int) -> bool:
    return 400 <= status < 500


def exactly(*codes: int) -> Expect:
    return lambda status: status in codes


@dataclass
class Case:
    name: str
    chunks: list[bytes]
    answers: int = 1  # answers due (0: the server may close without one)
    expect: Expect = four_xx
    pause: float = 0.0  # seconds between chunks
    read_timeout: float = 15.0
    closes: bool = False  # the server must close the connection after answering


@dataclass
class Outcome:
    case: Case
    statuses: list[int] = field(default_factory=list)
    closed: bool = False
    error: str | None = None
    seconds: float = 0.0

    def problems(self) -> list[str]:
        out = []
        if self.error:
            out.append(f"{self.case.name}: {self.error}")
        if len(self.statuses) < self.case.answers:
            out.append(f"{self.case.name}: {len(self.statuses)}/{self.case.answers} answers")
        bad = [s for s in self.statuses if not self.case.expect(s)]
        if bad:
            out.append(f"{self.case.name}: unexpected status {bad}")
        if self.case.closes and not self.closed:
            out.append(f"{self.case.name}: connection left open")
        return out


def run_case(port: int, case: Case) -> Outcome:
    outcome = Outcome(case)
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=case.read_timeout)
    try:
        for i, chunk in enumerate(case.chunks):
            if i and case.pause:
                time.sleep(case.pause)
            try:
                sock.sendall(chunk)
            except OSError:
                break  # the server answered and closed early (413, 414, 431): read it
        _read_answers(sock, outcome, started + case.read_timeout)
    except OSError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
        outcome.seconds = time.monotonic() - started
    return outcome


def _read_answers(sock: socket.socket, outcome: Outcome, deadline: float) -> None:
    buffer = b""
    while len(outcome.statuses) < max(outcome.case.answers, 1) or outcome.case.closes:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buffer[:head_end].decode("latin-1").split("\r\n")
            status = int(head[0].split()[1])
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(buffer) >= head_end + 4 + length:
                buffer = buffer[head_end + 4 + length :]
                if status != 100:
                    outcome.statuses.append(status)
                continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            outcome.error = outcome.error or "timed out waiting for an answer"
            return
        sock.settimeout(remaining)
        try:
            data = sock.recv(1 << 16)
        except TimeoutError:
            outcome.error = "timed out waiting for an answer"
            return
        except ConnectionResetError:
            data = b""
        if not data:
            outcome.closed = True
            return
        buffer += data


def run_corpus(port: int, cases: list[Case], parallel: int = 24) -> list[Outcome]:
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda case: run_case(port, case), cases))


def _request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: t\r\n{headers}"
    if body or method == "POST":
        head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def corpus(model: str, features: int, row: list[float]) -> list[Case]:
    """Over 100 hostile requests against a model with `features` numeric features."""
    v1, v2 = f"/v1/models/{model}:predict", f"/v2/models/{model}/infer"
    good_v1 = json.dumps({"instances": [row]}).encode()
    cases = [
        # framing --------------------------------------------------------------------
        Case("short body vs content-length",
             [b"POST " + v1.encode() + b" HTTP/1.1\r\ncontent-length: 100\r\n\r\n{\"in"],
             expect=exactly(408), closes=True),
        Case("head never finished", [b"POST " + v1.encode() + b" HTTP/1.1\r\ncontent-le"],
             expect=exactly(408), closes=True),
        Case("head without body", [_request("POST", v1, b"")[:-2]], expect=exactly(408),
             closes=True),
        Case("1 byte per second head", [bytes([b]) for b in _request("GET", "/v2")[:12]],
             pause=1.0, expect=exactly(408), closes=True),
        Case("1 byte per second body",
             [_request("POST", v1, good_v1)[: -len(good_v1)]]
             + [good_v1[i:i + 1] for i in range(8)],
             pause=1.0, expect=exactly(408), closes=True),
        Case("silent socket", [], answers=0, closes=True),
        Case("huge URL 64 KiB", [b"GET /" + b"a" * (64 << 10) + b" HTTP/1.1\r\n\r\n"],
             expect=exactly(414), closes=True),
        Case("huge URL 4 MiB", [b"GET /" + b"a/" * (2 << 20) + b" HTTP/1.1\r\n\r\n"],
             expect=exactly(414), closes=True),
        Case("URL in 1 KiB pieces", [b"GET /"] + [b"b" * 1024] * 40 + [b" HTTP/1.1\r\n\r\n"],
             expect=exactly(414), closes=True),
        Case("huge header value", [b"GET /v2 HTTP/1.1\r\nx-a: " + b"v" * (1 << 20) + b"\r\n\r\n"],
             expect=exactly(431), closes=True),
        Case("endless header line", [b"GET /v2 HTTP/1.1\r\nx-a: "] + [b"v" * 8192] * 64,
             expect=exactly(431), closes=True),
        Case("ten thousand headers",
             [b"GET /v2 HTTP/1.1\r\n" + b"".join(b"x-%d: 1\r\n" % i for i in range(10000))
              + b"\r\n"], expect=exactly(431), closes=True),
        Case("huge V2 id", [_request("POST", v2, json.dumps(
            {"id": "i" * (1 << 20), "inputs": [{"name": "x", "shape": [1, features],
                                                "datatype": "FP64", "data": row}]}).encode())],
             expect=exactly(400)),
        Case("content-length over the limit",
             [b"POST " + v1.encode() + b" HTTP/1.1\r\ncontent-length: 99999999999\r\n\r\n"],
             expect=exactly(413), closes=True),
        Case("chunked body over the limit",
             [b"POST " + v1.encode() + b" HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"]
             + [b"100000\r\n" + b"a" * 0x100000 + b"\r\n"] * 6, expect=exactly(413), closes=True),
        Case("bad chunk size",
             [b"POST " + v1.encode() + b" HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"],
             expect=exactly(400), closes=True),
        Case("chunked and content-length",
             [b"POST " + v1.encode() + b" HTTP/1.1\r\ncontent-length: 3\r\n"
              b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n"], expect=exactly(400), closes=True),
        Case("two content-lengths",
             [b"POST " + v1.encode() + b" HTTP/1.1\r\ncontent-length: 3\r\n"
              b"content-length: 4\r\n\r\nabcd"], expect=exactly(400), closes=True),
        Case("negative content-length",
             [b"POST " + v1.encode() + b" HTTP/1.1\r\ncontent-length: -1\r\n\r\n"],
             expect=exactly(400), closes=True),
        Case("garbage", [b"\x00\xff\x16\x03\x01 hello\r\n\r\n"], expect=exactly(400), closes=True),
        Case("TLS client hello", [bytes.fromhex("16030100a5010000a10303") + b"\x00" * 64],
             expect=exactly(400), closes=True),
        Case("HTTP/2 preface", [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], expect=four_xx, closes=True),
        Case("websocket upgrade", [b"GET /v2 HTTP/1.1\r\nconnection: upgrade\r\n"
                                   b"upgrade: websocket\r\n\r\n"], expect=exactly(200, 400)),
        Case("CONNECT", [b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com\r\n\r\n"],
             expect=four_xx, closes=True),
        Case("bare LF lines", [b"GET /v2 HTTP/1.1\nhost: x\n\n"], expect=exactly(200, 400)),
        Case("HTTP/1.0 without host", [b"GET /v2 HTTP/1.0\r\n\r\n"], expect=exactly(200)),
        Case("unknown method", [b"BREW /v2 HTTP/1.1\r\n\r\n"], expect=exactly(400), closes=True),
        Case("100 pipelined requests", [_request("POST", v1, good_v1) * 100], answers=100,
             expect=exactly(200)),
        Case("pipelined, one bad in the middle",
             [_request("GET", "/v2") + b"GARBAGE\r\n\r\n" + _request("GET", "/v2")],
             answers=2, expect=exactly(200, 400), closes=True),
        Case("expect 100-continue",
             [_request("POST", v1, b"", "expect: 100-continue\r\n")[:-2].replace(
                 b"content-length: 0", b"content-length: %d" % len(good_v1)) + b"\r\n", good_v1],
             pause=0.2, expect=exactly(200)),
        Case("GET /", [_request("GET", "/")], expect=exactly(200)),
        Case("path traversal", [_request("GET", "/../../etc/passwd")], expect=exactly(404)),
        Case("percent-encoded route", [_request("POST", f"/v1/models/{model}%3Apredict",
                                                good_v1)], expect=exactly(404)),
        Case("invalid UTF-8 URL", [b"GET /v2/models/\xff\xfe HTTP/1.1\r\n\r\n"],
             expect=exactly(400, 404)),
        Case("query string", [_request("POST", v1 + "?x=" + "q" * 2000, good_v1)],
             expect=exactly(200)),
        Case("wrong method", [_request("GET", v1)], expect=exactly(405)),
        Case("unknown model", [_request("POST", "/v1/models/nope:predict", good_v1)],
             expect=exactly(404)),
        Case("unknown version", [_request("GET", f"/v2/models/{model}/versions/999")],
             expect=exactly(404)),
    ]  # fmt: skip
    cases += [Case(f"V1 body {i}: {body[:30]!r}", [_request("POST", v1, body)])
              for i, body in enumerate(_bad_bodies(features, row, "instances"))]  # fmt: skip
    cases += [Case(f"V2 body {i}: {body[:30]!r}", [_request("POST", v2, body)])
              for i, body in enumerate(_bad_bodies(features, row, "inputs"))]  # fmt: skip
    return cases


def _bad_bodies(features: int, row: list[float], key: str) -> list[bytes]:
    def wrap(rows: object) -> bytes:
        if key == "instances":
            return json.dumps({"instances": rows}).encode()
        data = rows if isinstance(rows, list) else [rows]
        return json.dumps({"inputs": [{"name": "x", "shape": [len(data), features],
                                       "datatype": "FP64", "data": data}]}).encode()  # fmt: skip

    short, long = row[:-1], [*row, 1.0]
    return [
        b"", b"{", b"null", b"[]", b"{}", b"\"text\"", b"123", b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"inputs": {"a": 1}, "instances": {"a": 1}}',
        b"NaN", b'{"instances": [[NaN]]}', b'{"instances": [[Infinity]]}',
        wrap([short]), wrap([long]), wrap([[*row[:-1], 1e999]]), wrap([[*row[:-1], "x"]]),
        wrap([[*row[:-1], None, 1]]), wrap([]), wrap([[]]), wrap([[row, row]]),
        wrap([[*row[:-1], True]]), wrap([[*row[:-1], {"a": 1}]]),
        wrap([{"nope": 1.0}]), wrap([row] * 1) + b"garbage",
        json.dumps({key: [dict(enumerate(row))]}).encode(),
        json.dumps({key: [row], "outputs": [{"name": "secret"}]} if key == "inputs"
                   else {"instance": [row]}).encode(),
        json.dumps({key: "x" * 100_000}).encode(),
        ("{\"" + key + "\": [[" + ",".join(["-1e400"] * features) + "]]}").encode(),
        ("{\"" + key + "\": [[" + ",".join(["1e308"] * features) + "]]}").encode()[:-3] + b"x]]}",
        b'{"' + key.encode() + b'": [[' + b"1" * 5000 + b"]]}",
    ]  # fmt: skip


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                stack.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total
