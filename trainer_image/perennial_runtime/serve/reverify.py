"""The parent's verification, repeated in the process that loads the model.

The parent verifies the directory before it forks, but every worker (and a worker restarted
minutes or days later) reads the files again from a volume: a file swapped in between must
not be loaded. So each worker checks result.json against the digest the parent accepted
(the ModelVersion's, with --expected-sha256) and every artifact against result.json, right
before it loads. What remains is the moment between this check and the load itself.
"""

from __future__ import annotations

import hashlib

from perennial_runtime import contract
from perennial_runtime.serve.model import ModelDir, ModelLoadError


def verify_again(model_dir: ModelDir) -> None:
    result_path = model_dir.path / contract.RESULT
    try:
        digest = hashlib.sha256(result_path.read_bytes()).hexdigest()
        if digest != model_dir.digest:
            raise ModelLoadError(
                f"{result_path}: sha256 {digest} differs from the {model_dir.digest} verified "
                "at start; the model directory changed under the server"
            )
        contract.verify_artifacts(model_dir.path)
    except (contract.ArtifactMismatchError, ValueError, OSError) as exc:
        raise ModelLoadError(f"{exc} (checked again by the worker before loading)") from exc
