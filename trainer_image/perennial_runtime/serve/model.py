"""Load a model directory safely (verify, then ONNX or skops) and predict on a batch.

The parent process only verifies (``open_model_dir``: hashes and JSON, no ML imports);
each worker then loads its own predictor after the fork, because onnxruntime's thread
pools do not survive a fork.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from perennial_runtime import contract
from perennial_runtime.serve.onnx_predictor import OnnxPredictor
from perennial_runtime.serve.signature import Profile, Signature, parse_profile, parse_signature
from perennial_runtime.serve.sklearn_predictor import SklearnPredictor


class ModelLoadError(Exception):
    """The model directory cannot be served: tampered, missing or unsafe artifacts."""


@dataclass(frozen=True)
class ModelDir:
    path: Path
    result: dict[str, Any]
    signature: Signature
    profile: Profile
    format: str  # onnx | skops | joblib
    digest: str  # sha256 of result.json: the ModelVersion's artifact digest


def open_model_dir(
    path: Path, *, expected_sha256: str | None = None, allow_unsafe_pickle: bool = False
) -> ModelDir:
    """Verify result.json, then every artifact against it; choose the format to serve."""
    result_path = path / contract.RESULT
    if not result_path.is_file():
        raise ModelLoadError(f"{result_path} does not exist: not a model directory")
    digest = hashlib.sha256(result_path.read_bytes()).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise ModelLoadError(
            f"{result_path}: sha256 {digest} does not match --expected-sha256 "
            f"{expected_sha256}; refusing to serve a model that differs from its ModelVersion"
        )
    try:
        result = contract.verify_artifacts(path)
        signature = parse_signature(contract.read_json(path / contract.SIGNATURE))
        listed = set(result["artifacts"])
        profile_raw = (
            contract.read_json(path / contract.PROFILE) if contract.PROFILE in listed else None
        )
        profile = parse_profile(profile_raw)
    except (contract.ArtifactMismatchError, ValueError, OSError) as exc:
        raise ModelLoadError(str(exc)) from exc
    # Only a file that result.json lists (and that was just verified) may be loaded.
    if contract.MODEL_ONNX in listed:
        fmt = "onnx"
    elif contract.MODEL_SKOPS in listed:
        fmt = "skops"
    elif contract.MODEL_PICKLE in listed and allow_unsafe_pickle:
        fmt = "joblib"
    elif contract.MODEL_PICKLE in listed:
        raise ModelLoadError(
            f"{path} holds only {contract.MODEL_PICKLE}; plain pickle can run arbitrary code, "
            "so it is served only with --allow-unsafe-pickle"
        )
    else:
        raise ModelLoadError(f"result.json in {path} lists no model file (onnx, skops)")
    return ModelDir(path, result, signature, profile, fmt, digest)


class Predictor(Protocol):
    float32: bool  # computes in float32: inputs beyond its range are refused

    def predict(
        self, numeric: np.ndarray, categorical: np.ndarray | None, proba: bool
    ) -> tuple[np.ndarray, np.ndarray | None]: ...


def load_predictor(model_dir: ModelDir, trust_types: Sequence[str] = ()) -> Predictor:
    try:
        if model_dir.format == "onnx":
            return OnnxPredictor(model_dir.path / contract.MODEL_ONNX, model_dir.signature)
        if model_dir.format == "skops":
            return SklearnPredictor(_load_skops(model_dir.path, trust_types), model_dir.signature)
        import joblib  # noqa: PLC0415 - only on explicit --allow-unsafe-pickle

        return SklearnPredictor(
            joblib.load(model_dir.path / contract.MODEL_PICKLE), model_dir.signature
        )
    except ModelLoadError:
        raise
    except Exception as exc:  # any loader failure means: not servable, say why
        raise ModelLoadError(f"cannot load {model_dir.format} model: {exc}") from exc


def _load_skops(path: Path, trust_types: Sequence[str]) -> Any:
    import skops.io as sio

    file = path / contract.MODEL_SKOPS
    trusted = set(contract.SKOPS_TRUSTED_TYPES) | set(trust_types)
    unknown = sorted(set(sio.get_untrusted_types(file=file)) - trusted)
    if unknown:
        raise ModelLoadError(
            f"{file} contains types that are not trusted: {', '.join(unknown)}; "
            "review them and pass --trust-type NAME to allow"
        )
    return sio.load(file, trusted=sorted(trusted))
