"""``perennial-serve --model-dir DIR``: verify, load and serve a model directory."""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

from perennial_runtime.serve import logs
from perennial_runtime.serve.config import Config
from perennial_runtime.serve.fetch import is_remote

log = logging.getLogger("perennial.serve")

EXIT_ARTIFACT_REFUSED = 2  # tampered, missing or unsafe artifacts: retrying cannot help
EXIT_LOAD_FAILED = 3


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota
    (a pod's CPU limit shows up only there)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def _raise_open_files(wanted: int) -> None:
    """Every connection is a file descriptor: lift the soft limit (often 1024) towards the
    hard one, as far as --max-connections needs."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(prog="perennial-serve", description=__doc__)
    p.add_argument(
        "--model-dir", type=Path, required=True, help="directory written by perennial-train"
    )
    p.add_argument(
        "--model-uri",
        help="s3:// or gs:// folder holding the model: copied into --model-dir first",
    )
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port (logged)")
    p.add_argument("--name", help="model name in URLs and metrics (default: result.json model)")
    p.add_argument(
        "--model-version",
        default=os.environ.get("PERENNIAL_MODEL_VERSION"),
        help="version label (default: $PERENNIAL_MODEL_VERSION, result.json, unknown)",
    )
    p.add_argument("--expected-sha256", help="sha256 of result.json (the ModelVersion digest)")
    p.add_argument("--allow-unsafe-pickle", action="store_true", help="allow model.joblib")
    p.add_argument("--trust-type", action="append", default=[], help="extra skops type to trust")
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: CPUs)")
    p.add_argument("--max-batch-size", type=int, default=64, help="rows per predict call")
    p.add_argument("--max-latency-ms", type=float, default=2.0, help="longest wait for a batch")
    p.add_argument("--max-body-bytes", type=int, default=4 << 20, help="larger bodies get 413")
    p.add_argument("--max-url-bytes", type=int, default=8 << 10, help="longer URLs get 414")
    p.add_argument(
        "--max-header-bytes", type=int, default=16 << 10, help="larger request heads get 431"
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=1000,
        help="open connections per worker; past it the oldest idle one is closed, else 503",
    )
    p.add_argument(
        "--header-timeout", type=float, default=10.0, help="seconds to send a request head"
    )
    p.add_argument("--body-timeout", type=float, default=30.0, help="seconds to send a body")
    p.add_argument(
        "--idle-timeout", type=float, default=60.0, help="idle keep-alive connections close"
    )
    p.add_argument("--recent-ids", type=int, default=10_000, help="predictions kept for feedback")
    p.add_argument(
        "--feedback-token-file",
        type=Path,
        help="file holding the bearer token feedback needs (a mounted Secret); "
        "default: $PERENNIAL_FEEDBACK_TOKEN",
    )
    p.add_argument(
        "--allow-unauthenticated-feedback",
        action="store_true",
        help="accept feedback without a token (anyone who reaches the server steers the "
        "live metric)",
    )
    p.add_argument(
        "--feedback-rows-per-second", type=float, default=200.0, help="per worker, on average"
    )
    p.add_argument("--feedback-burst-rows", type=int, default=5000, help="per worker, at once")
    p.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds to drain")
    p.add_argument("--log-level", default="info")
    a = p.parse_args(argv)
    if a.max_batch_size < 1 or a.max_latency_ms < 0 or a.max_body_bytes < 1 or a.workers < 0:
        p.error(
            "--max-batch-size, --max-body-bytes must be positive; --max-latency-ms, --workers >= 0"
        )
    if a.model_uri and not is_remote(a.model_uri):
        p.error(f"--model-uri must be s3:// or gs://, got {a.model_uri}")
    sizes = (a.max_url_bytes, a.max_header_bytes, a.max_connections)
    timeouts = (a.header_timeout, a.body_timeout, a.idle_timeout)
    if min(sizes) < 1 or not all(0 < t < math.inf for t in timeouts):
        p.error("the size limits, --max-connections and the timeouts must be positive")
    if a.feedback_rows_per_second < 0 or a.feedback_burst_rows < 1:
        p.error("--feedback-rows-per-second must be >= 0 and --feedback-burst-rows positive")
    token = os.environ.get("PERENNIAL_FEEDBACK_TOKEN") or None
    if a.feedback_token_file is not None:
        try:
            token = a.feedback_token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            p.error(f"--feedback-token-file: cannot read it: {exc}")
        if not token:
            p.error(f"--feedback-token-file: {a.feedback_token_file} is empty")
    return Config(
        model_dir=a.model_dir,
        model_uri=a.model_uri,
        host=a.host,
        port=a.port,
        name=a.name,
        model_version=a.model_version,
        expected_sha256=a.expected_sha256,
        allow_unsafe_pickle=a.allow_unsafe_pickle,
        trust_types=tuple(a.trust_type),
        workers=a.workers or available_cpus(),
        max_batch_size=a.max_batch_size,
        max_latency_ms=a.max_latency_ms,
        max_body_bytes=a.max_body_bytes,
        max_url_bytes=a.max_url_bytes,
        max_header_bytes=a.max_header_bytes,
        max_connections=a.max_connections,
        header_timeout=a.header_timeout,
        body_timeout=a.body_timeout,
        idle_timeout=a.idle_timeout,
        recent_ids=a.recent_ids,
        feedback_token=token,
        allow_unauthenticated_feedback=a.allow_unauthenticated_feedback,
        feedback_rows_per_second=a.feedback_rows_per_second,
        feedback_burst_rows=a.feedback_burst_rows,
        graceful_timeout=a.graceful_timeout,
        log_level=a.log_level,
    )


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    logs.configure(config.log_level, role="parent")
    # One worker per CPU already; BLAS/OpenMP threads inside each would only contend.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    _raise_open_files(config.max_connections * config.workers + 256)
    from perennial_runtime.serve.fetch import FetchError, fetch_model_dir
    from perennial_runtime.serve.metrics import Identity
    from perennial_runtime.serve.model import ModelLoadError, open_model_dir
    from perennial_runtime.serve.supervisor import serve
    from perennial_runtime.serve.worker_process import Shared, reuseport_socket

    try:
        if config.model_uri:
            fetch_model_dir(config.model_uri, config.model_dir)
            logs.event(log, "model copied", model_uri=config.model_uri)
        model_dir = open_model_dir(
            config.model_dir,
            expected_sha256=config.expected_sha256,
            allow_unsafe_pickle=config.allow_unsafe_pickle,
        )
    except FetchError as exc:  # the store may come back: the kubelet restarts us
        logs.event(log, f"cannot copy the model: {exc}", logging.ERROR)
        return EXIT_LOAD_FAILED
    except ModelLoadError as exc:
        logs.event(log, f"refusing to serve: {exc}", logging.ERROR, model_dir=str(config.model_dir))
        return EXIT_ARTIFACT_REFUSED
    result = model_dir.result
    identity = Identity(
        model=config.name or str(result.get("model") or "model"),
        version=config.model_version or str(result.get("version") or "unknown"),
        format=model_dir.format,
    )
    # Bound but never listening: fixes the port (also for --port 0) while workers come and go.
    placeholder = reuseport_socket(config.host, config.port)
    shared = Shared(config, model_dir, identity, placeholder.getsockname()[1])
    code = serve(shared, placeholder)
    return EXIT_LOAD_FAILED if code == 3 else code
