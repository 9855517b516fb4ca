"""result.json (everything) and the compact termination message (≤ 4096 bytes)."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from typing import Any

from perennial_runtime import contract
from perennial_runtime.train.errors import TrainError

LIBRARIES = ("scikit-learn", "numpy", "pandas", "skops", "onnx", "onnxruntime", "skl2onnx")
MAX_SIGNATURE_NAMES = 32


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def compact_success(
    result: dict[str, Any], result_sha256: str, signature: dict[str, Any]
) -> dict[str, Any]:
    """What the operator records on the ModelVersion; sha256 is that of result.json."""
    files = {name: meta["sha256"] for name, meta in result["artifacts"].items()}
    message = {
        "outcome": "Succeeded",
        "metrics": result["metrics"],
        "baselineMetrics": result.get("baselineMetrics", {}),
        "dataset": result["dataset"],
        "algorithm": result["algorithm"],
        "hyperparameters": result["hyperparameters"],
        "artifact": {
            "format": "onnx" if contract.MODEL_ONNX in files else "skops",
            "sha256": result_sha256,
            "files": files,
        },
        "signature": {
            "inputs": _names(signature["inputs"]),
            "outputs": [o["name"] for o in signature["outputs"]],
        },
        "timings": result["timings"],
    }
    if "baselineError" in result:
        message["baselineError"] = result["baselineError"][:300]
    return _fit(message)


def compact_failure(error: TrainError) -> dict[str, Any]:
    return _fit(
        {
            "outcome": error.outcome,
            "message": error.message,
            "failures": [f.as_dict() for f in error.failures],
        }
    )


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), sort_keys=True, default=str).encode()


def _names(inputs: list[dict[str, Any]]) -> Any:
    if len(inputs) > MAX_SIGNATURE_NAMES:
        return {"count": len(inputs)}
    return [i["name"] for i in inputs]


def _fit(message: dict[str, Any]) -> dict[str, Any]:
    """Shrink the least useful parts first until the message fits the kubelet's limit.

    The artifact digest, outcome and metrics are what the operator needs; they go last.
    """
    limit = contract.TERMINATION_MESSAGE_MAX_BYTES
    steps = [
        _drop_failure,
        _halve_message,
        _clear("hyperparameters"),
        _clear("timings"),
        _clear("baselineMetrics"),
        _clear("signature"),
        _drop_files,
        _clear("metrics"),
        _clear("dataset"),
        _clear("message"),
    ]
    for step in steps:
        while len(encode(message)) > limit and step(message):
            message["truncated"] = True
    return message


def _drop_failure(message: dict[str, Any]) -> bool:
    failures = message.get("failures")
    if failures:
        failures.pop()
        return True
    return False


def _halve_message(message: dict[str, Any]) -> bool:
    text = message.get("message", "")
    if len(text) > 200:
        message["message"] = text[: len(text) // 2] + "..."
        return True
    return False


def _clear(key: str) -> Any:
    def step(message: dict[str, Any]) -> bool:
        if message.get(key):
            message[key] = {} if isinstance(message[key], dict) else ""
            return True
        return False

    return step


def _drop_files(message: dict[str, Any]) -> bool:
    artifact = message.get("artifact", {})
    if artifact.get("files"):
        artifact.pop("files")
        return True
    return False
