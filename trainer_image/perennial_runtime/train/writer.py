"""Write the model directory; result.json last, since its digest vouches for the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from perennial_runtime import contract
from perennial_runtime.train.persist import artifact_entry, save_model, write_json


def write_model_dir(
    directory: Path,
    model: Any,
    onnx_model: onnx.ModelProto | None,
    signature: dict[str, Any],
    profile: dict[str, Any],
    result: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """Write every artifact, then result.json listing their digests; return (result, sha)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_model(model, directory / contract.MODEL_SKOPS)
    names = [contract.MODEL_SKOPS]
    if onnx_model is not None:
        onnx.save_model(onnx_model, directory / contract.MODEL_ONNX)
        names.append(contract.MODEL_ONNX)
    elif (directory / contract.MODEL_ONNX).exists():
        (directory / contract.MODEL_ONNX).unlink()  # a stale file from an earlier run
    write_json(directory / contract.SIGNATURE, signature)
    write_json(directory / contract.PROFILE, profile)
    names += [contract.SIGNATURE, contract.PROFILE]
    result = {**result, "artifacts": {n: artifact_entry(directory / n) for n in names}}
    write_json(directory / contract.RESULT, result)
    return result, contract.sha256_file(directory / contract.RESULT)
