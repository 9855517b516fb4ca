"""Read a dataset URI into a DataFrame, recording the sha256 of the bytes read.

URIs: builtin://<name> (datasets scikit-learn ships), file:///abs/path,
pvc://<claim>/<path> (under the PVC mount root), http(s)://, and s3:// or gs:// through
fsspec when the matching extra (s3fs, gcsfs) is installed. Every read except builtin://
stops at ``max_bytes`` (spec.dataset.maxBytes): a server that sends without end, or a file
far larger than meant, fails the job with a clear message instead of exhausting the pod's
memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow as pa
from sklearn import datasets as skdatasets

from perennial_runtime.train.errors import DatasetUnavailable
from perennial_runtime.train.spec import DEFAULT_DATASET_MAX_BYTES

DEFAULT_PVC_ROOT = "/mnt/pvc"
PVC_ROOT_ENV = "PERENNIAL_PVC_ROOT"
HTTP_TIMEOUT_SECONDS = 60
_CHUNK = 1024 * 1024

_BUILTINS: dict[str, Callable[..., Any]] = {
    "iris": skdatasets.load_iris,
    "wine": skdatasets.load_wine,
    "breast_cancer": skdatasets.load_breast_cancer,
    "diabetes": skdatasets.load_diabetes,
    "digits": skdatasets.load_digits,
    "linnerud": skdatasets.load_linnerud,
}
BUILTIN_DATASETS = tuple(_BUILTINS)


@dataclass(frozen=True)
class Loaded:
    frame: pd.DataFrame
    uri: str
    sha256: str
    default_target: str | None = None
    default_features: tuple[str, ...] | None = None

    @property
    def rows(self) -> int:
        return len(self.frame)


def pvc_root(flag: str | None) -> Path:
    return Path(flag or os.environ.get(PVC_ROOT_ENV) or DEFAULT_PVC_ROOT)


def resolve_local(uri: str, root: Path) -> Path:
    """file:// and pvc:// URIs as a local path; pvc paths may not escape their claim."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "pvc":
        relative = PurePosixPath(unquote(parsed.path).lstrip("/"))
        if not parsed.netloc or ".." in relative.parts or ".." in parsed.netloc:
            raise DatasetUnavailable(
                f"{uri}: a pvc:// URI is pvc://<claim>/<path> with no '..' in it"
            )
        return root / parsed.netloc / relative
    raise DatasetUnavailable(f"{uri}: not a file:// or pvc:// URI")


def load(uri: str, fmt: str, root: Path, max_bytes: int = DEFAULT_DATASET_MAX_BYTES) -> Loaded:
    scheme = urlparse(uri).scheme
    if scheme == "builtin":
        return _builtin(uri)
    if scheme in ("file", "pvc"):
        raw = _read_local(resolve_local(uri, root), uri, max_bytes)
    elif scheme in ("http", "https"):
        raw = _read_http(uri, max_bytes)
    elif scheme in ("s3", "gs", "gcs"):
        raw = _read_remote(uri, max_bytes)
    else:
        raise DatasetUnavailable(
            f"{uri}: unsupported scheme {scheme!r}; use builtin://, file://, pvc://, "
            "http(s)://, s3:// or gs://"
        )
    frame = parse(raw, uri, fmt)
    return Loaded(frame, uri, hashlib.sha256(raw).hexdigest())


def parse(raw: bytes, uri: str, fmt: str) -> pd.DataFrame:
    kind = (
        fmt
        if fmt != "auto"
        else ("parquet" if uri.lower().endswith((".parquet", ".pq")) else "csv")
    )
    try:
        if kind == "parquet":
            # Arrow's own buffer, not a Python file object: pyarrow's reader keeps closing a
            # Python file on its threads after read_table returns, and a process that exits
            # then aborts at shutdown ("terminate called without an active exception", exit
            # 134) in a fraction of runs: apache/arrow#33975, seen with pyarrow 25 and 26.
            frame = pd.read_parquet(pa.BufferReader(raw))
        else:
            frame = pd.read_csv(io.BytesIO(raw))
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetUnavailable(f"{uri}: cannot be read as {kind}: {exc}") from exc
    if frame.shape[1] == 0:
        raise DatasetUnavailable(f"{uri}: read as {kind} but has no columns")
    return frame


def too_large(uri: str, max_bytes: int, size: int | None = None) -> DatasetUnavailable:
    seen = f"{size} bytes" if size is not None else "more"
    return DatasetUnavailable(
        f"{uri}: the dataset is larger than spec.dataset.maxBytes ({max_bytes} bytes; {seen}); "
        "raise maxBytes if that size is meant"
    )


def read_bounded(read: Callable[[int], bytes], uri: str, max_bytes: int) -> bytes:
    """Read until the end, or fail once more than ``max_bytes`` arrived (never asks for
    more than max_bytes + 1 in all)."""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = read(min(_CHUNK, max_bytes + 1 - total))
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > max_bytes:
            raise too_large(uri, max_bytes)
        parts.append(chunk)


def _read_local(path: Path, uri: str, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise too_large(uri, max_bytes, size)
        with path.open("rb") as handle:
            return read_bounded(handle.read, uri, max_bytes)
    except FileNotFoundError as exc:
        raise DatasetUnavailable(f"{uri}: no such file {path}") from exc
    except OSError as exc:
        raise DatasetUnavailable(f"{uri}: cannot read {path}: {exc}") from exc


def _read_http(uri: str, max_bytes: int) -> bytes:
    # The standard library, so plain HTTP needs no optional fsspec backend (aiohttp).
    try:
        with urllib.request.urlopen(uri, timeout=HTTP_TIMEOUT_SECONDS) as response:
            announced = response.headers.get("Content-Length")
            if announced is not None and announced.isdigit() and int(announced) > max_bytes:
                raise too_large(uri, max_bytes, int(announced))  # refused before reading
            return read_bounded(response.read, uri, max_bytes)
    except DatasetUnavailable:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DatasetUnavailable(f"{uri}: cannot be downloaded: {exc}") from exc


def _read_remote(uri: str, max_bytes: int) -> bytes:
    import fsspec  # imported here: only remote URIs need it and its optional backends

    try:
        with fsspec.open(uri, "rb") as handle:
            size = getattr(handle, "size", None)
            if isinstance(size, int) and size > max_bytes:
                raise too_large(uri, max_bytes, size)
            return read_bounded(handle.read, uri, max_bytes)
    except DatasetUnavailable:
        raise
    except ImportError as exc:
        raise DatasetUnavailable(
            f"{uri}: the filesystem for this scheme is not installed ({exc}); install the "
            "perennial 's3' or 'gcs' extra"
        ) from exc
    except (OSError, ValueError) as exc:
        raise DatasetUnavailable(f"{uri}: cannot be read: {exc}") from exc


def _builtin(uri: str) -> Loaded:
    name = urlparse(uri).netloc
    if name not in _BUILTINS:
        raise DatasetUnavailable(
            f"{uri}: unknown builtin dataset {name!r}; choose one of {', '.join(_BUILTINS)}"
        )
    bunch = _BUILTINS[name](as_frame=True)
    features = tuple(str(c) for c in bunch.data.columns)
    frame = bunch.frame if bunch.frame is not None else bunch.data.assign(target=bunch.target)
    target = "Weight" if name == "linnerud" else "target"
    # Builtins have no raw bytes; hash their canonical CSV so the lineage still pins them.
    digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
    return Loaded(frame, uri, digest, default_target=target, default_features=features)
