"""One worker process: load the model, listen on the shared port, serve until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from perennial_runtime import contract
from perennial_runtime.serve import logs
from perennial_runtime.serve.app import App, Served
from perennial_runtime.serve.batching import MicroBatcher
from perennial_runtime.serve.config import Config
from perennial_runtime.serve.exposition import Exporter
from perennial_runtime.serve.feedback_gate import FeedbackGate
from perennial_runtime.serve.http import HttpServer, Limits
from perennial_runtime.serve.metrics import Identity, Layout, Recorder, SharedCounters
from perennial_runtime.serve.model import ModelDir, ModelLoadError, Predictor, load_predictor
from perennial_runtime.serve.recent import RecentPredictions, SharedRing
from perennial_runtime.serve.reverify import verify_again
from perennial_runtime.serve.validation import Decoder

log = logging.getLogger("perennial.serve")


def reuseport_socket(host: str, port: int) -> socket.socket:
    """Every worker binds its own socket to the same port; the kernel spreads
    connections across them (SO_REUSEPORT), so no worker is a bottleneck."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class Shared:
    """What the parent prepares before the fork and every worker inherits."""

    def __init__(self, config: Config, model_dir: ModelDir, identity: Identity, port: int) -> None:
        self.config, self.model_dir, self.identity, self.port = config, model_dir, identity, port
        self.layout = Layout(model_dir.signature, model_dir.profile)
        self.counters = SharedCounters(config.workers, self.layout.size)
        self.recent = SharedRing(config.workers, config.recent_ids)


def _return_large_blocks_to_the_os() -> None:
    """Bodies of up to --max-body-bytes come and go. glibc raises its mmap threshold after
    freeing a large block, so later ones come from the heap and stay resident; a fixed
    threshold keeps every block over 256 KiB in its own mapping, unmapped when freed."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 256 << 10)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: its allocator decides
        pass


def run_worker(index: int, shared: Shared, ready_fd: int) -> int:
    config = shared.config
    logs.configure(config.log_level, worker=index, pid=os.getpid())
    _return_large_blocks_to_the_os()
    try:
        verify_again(shared.model_dir)  # files may have changed since the parent checked
        predictor = load_predictor(shared.model_dir, config.trust_types)
        _warm_up(predictor, shared.model_dir)
    except ModelLoadError as exc:
        os.write(ready_fd, f"error: {exc}\n".encode())
        return 3
    import uvloop

    return uvloop.run(_serve(index, shared, predictor, ready_fd))


def _warm_up(predictor: Predictor, model_dir: ModelDir) -> None:
    """One predict before ready, so the first client does not pay for lazy init."""
    import numpy as np

    signature = model_dir.signature
    numeric = np.zeros((1, len(signature.numeric_features)))
    categorical = None
    if signature.categorical_features:
        categorical = np.array([[""] * len(signature.categorical_features)], dtype=object)
    try:
        predictor.predict(numeric, categorical, signature.classification)
    except Exception as exc:  # a model that cannot predict one row is not servable
        raise ModelLoadError(f"the model fails on a warm-up row: {exc}") from exc


def _profile_json(shared: Shared) -> bytes | None:
    model_dir = shared.model_dir
    if contract.PROFILE not in model_dir.result.get("artifacts", {}):
        return None
    return (model_dir.path / contract.PROFILE).read_bytes()  # verified against result.json


async def _serve(index: int, shared: Shared, predictor: Predictor, ready_fd: int) -> int:
    config, ident = shared.config, shared.identity
    loop = asyncio.get_running_loop()
    signature = shared.model_dir.signature
    batcher = MicroBatcher(
        predictor.predict,
        loop,
        max_batch_size=config.max_batch_size,
        max_latency=config.max_latency_ms / 1000.0,
        observe=(recorder := Recorder(shared.layout, shared.counters.rows[index])).batch,
    )
    app = App(
        Served(ident.model, ident.version, ident.format, signature, _profile_json(shared)),
        Decoder(signature, float32=predictor.float32),
        batcher,
        recorder,
        Exporter(shared.layout, shared.counters, ident),
        RecentPredictions(shared.recent, index, signature.classes),
        predictor.predict,
        FeedbackGate(
            config.feedback_token,
            allow_anonymous=config.allow_unauthenticated_feedback,
            rows_per_second=config.feedback_rows_per_second,
            burst_rows=config.feedback_burst_rows,
        ),
    )
    limits = Limits(
        max_body_bytes=config.max_body_bytes,
        max_url_bytes=config.max_url_bytes,
        max_header_bytes=config.max_header_bytes,
        max_connections=config.max_connections,
        header_timeout=config.header_timeout,
        body_timeout=config.body_timeout,
        idle_timeout=config.idle_timeout,
    )
    server = HttpServer(app, batcher, limits)
    await server.listen(reuseport_socket(config.host, shared.port))
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    os.write(ready_fd, b"ok\n")
    os.close(ready_fd)
    await stop.wait()
    logs.event(log, "draining", connections=len(server.connections))
    finished = await server.drain(config.graceful_timeout)
    logs.event(log, "stopped", requests=server.requests, drained=finished)
    return 0 if finished else 1
