"""Server settings, as parsed from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Config:
    model_dir: Path
    model_uri: str | None = None  # s3:// or gs://: copied into model_dir before anything
    host: str = "0.0.0.0"
    port: int = 8080
    name: str | None = None
    model_version: str | None = None
    expected_sha256: str | None = None
    allow_unsafe_pickle: bool = False
    trust_types: tuple[str, ...] = ()
    workers: int = 1
    max_batch_size: int = 64
    max_latency_ms: float = 2.0
    max_body_bytes: int = 4 << 20
    max_url_bytes: int = 8 << 10
    max_header_bytes: int = 16 << 10
    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 60.0
    recent_ids: int = 10_000
    feedback_token: str | None = field(default=None, repr=False)  # a secret: never printed
    allow_unauthenticated_feedback: bool = False
    feedback_rows_per_second: float = 200.0
    feedback_burst_rows: int = 5000
    graceful_timeout: float = 30.0
    log_level: str = "info"
