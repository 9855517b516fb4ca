"""perennial-serve's request handling in this process: the App a worker builds (the real
model, decoder, micro-batcher, metrics, feedback and recent-prediction ring), called directly
instead of through a socket. A request is `App.handle`; its answer is what `respond` got.

What it leaves out, and the tests over real HTTP (support/server_process.py) keep: the HTTP
transport (framing, keep-alive, body limits, Expect: 100-continue), several workers and their
shared counters, start-up refusals and draining on SIGTERM.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perennial_runtime import contract
from perennial_runtime.serve.app import App, Served
from perennial_runtime.serve.batching import MicroBatcher
from perennial_runtime.serve.exposition import Exporter
from perennial_runtime.serve.metrics import Identity, Layout, Recorder, SharedCounters
from perennial_runtime.serve.model import load_predictor, open_model_dir
from perennial_runtime.serve.recent import RecentPredictions, SharedRing
from perennial_runtime.serve.validation import Decoder


@dataclass
class Answer:
    """What a client would have read: the status, the body and its content type."""

    status_code: int
    body: bytes
    content_type: str

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


class _Handle:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback, self.cancelled = callback, False

    def cancel(self) -> None:
        self.cancelled = True


class _Turns:
    """The batcher's event loop, one request per turn: what is scheduled `soon` runs when the
    turn ends. The latency bound (`call_later`) never comes due: a lone request is flushed at
    the end of its turn, as on the real loop."""

    def __init__(self) -> None:
        self.soon: deque[_Handle] = deque()

    def call_soon(self, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(callback)
        self.soon.append(handle)
        return handle

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Handle:
        return _Handle(callback)

    def time(self) -> float:
        return time.monotonic()

    def end_turn(self) -> None:
        while self.soon:
            handle = self.soon.popleft()
            if not handle.cancelled:
                handle.callback()


class InProcessServer:
    def __init__(self, model_dir: Path, *, name: str | None = None, version: str | None = None,
                 max_batch_size: int = 64, recent_ids: int = 10_000) -> None:  # fmt: skip
        opened = open_model_dir(model_dir)
        predictor = load_predictor(opened, ())
        result = opened.result
        identity = Identity(
            model=name or str(result.get("model") or "model"),
            version=version or str(result.get("version") or "unknown"),
            format=opened.format,
        )
        layout = Layout(opened.signature, opened.profile)
        counters = SharedCounters(1, layout.size)
        recorder = Recorder(layout, counters.rows[0])
        self.turns = _Turns()
        batcher = MicroBatcher(predictor.predict, self.turns, max_batch_size=max_batch_size,
                               max_latency=0.002, observe=recorder.batch)  # fmt: skip
        profile = None
        if contract.PROFILE in result.get("artifacts", {}):
            profile = (model_dir / contract.PROFILE).read_bytes()
        served = Served(identity.model, identity.version, identity.format, opened.signature,
                        profile)  # fmt: skip
        self.app = App(
            served,
            Decoder(opened.signature, float32=predictor.float32),
            batcher,
            recorder,
            Exporter(layout, counters, identity),
            RecentPredictions(SharedRing(1, recent_ids), 0, opened.signature.classes),
            predictor.predict,
        )

    def request(self, method: str, path: str, body: bytes = b"") -> Answer:
        answers: list[Answer] = []

        def respond(status: int, payload: bytes, content_type: bytes) -> None:
            answers.append(Answer(status, payload, content_type.decode()))

        self.app.handle(method.encode(), path, body, respond, time.perf_counter())
        self.turns.end_turn()
        assert len(answers) == 1, f"{method} {path} was answered {len(answers)} times"
        return answers[0]

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Answer:
        return self.request("POST", path, json.dumps(body).encode())
