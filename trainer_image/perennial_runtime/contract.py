"""What the trainer writes, what the server reads and what the operator parses.

The model directory (``perennial-train --output DIR``) holds:

- ``model.skops``    the fitted scikit-learn pipeline, always (safe format, trusted types);
- ``model.onnx``     the same pipeline in ONNX when skl2onnx can convert it (server prefers it);
- ``signature.json`` inputs (name, datatype, categories) and outputs, task, class labels;
- ``profile.json``   per-feature drift reference (numeric: bin edges + proportions,
                     categorical: categories + proportions), plus prediction proportions;
- ``result.json``    metrics, baseline metrics, leaderboard, dataset {uri, sha256, rows},
                     ``artifacts`` {file name: {sha256, bytes}}, timings, library versions.

The operator cannot import this package (import-linter keeps the runtime and the operator
apart), so it mirrors the exit codes in ``perennial_operator.api.runtime_contract``; a unit
test keeps the two equal.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MODEL_SKOPS = "model.skops"
MODEL_ONNX = "model.onnx"
MODEL_PICKLE = "model.joblib"  # only written or read when explicitly allowed
SIGNATURE = "signature.json"
PROFILE = "profile.json"
RESULT = "result.json"

# Types beyond skops' defaults that a model written by perennial-train may hold; both the
# trainer's own loader and the server trust exactly these (one list, so they cannot drift).
# Anything else is refused with its name. Some are trusted by skops itself in newer
# versions; listing them keeps older skops working. A unit test saves every algorithm
# and checks that its untrusted types are all listed here.
SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "builtins.slice",
    "collections.OrderedDict",
    # A Booster's state is LightGBM's text model, parsed by LightGBM (no pickle inside).
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "numpy.dtype",
    "perennial_runtime.train.recommend.MatrixFactorization",
    # XGBoost's Booster state is its own model buffer (UBJSON), read by XGBoost: no pickle.
    "perennial_runtime.train.xgboost_models.LabelledXGBClassifier",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.compose._column_transformer._RemainderColsList",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",  # VotingClassifier.named_estimators_ (a dict)
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBRegressor",
)

# How many GPUs the operator gave the pod (set with its nvidia.com/gpu request), and the
# built-in algorithms that use them (the operator asks for GPUs only for those).
GPUS_ENV = "PERENNIAL_GPUS"
GPU_ALGORITHMS = frozenset({"xgboost"})

# Where the kubelet picks up the container's termination message (the operator reads it).
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
TERMINATION_MESSAGE_MAX_BYTES = 4096

# Exit codes. Everything except CRASH is a permanent failure: retrying cannot fix it.
EXIT_OK = 0
EXIT_CRASH = 1  # unexpected error: the Job controller may retry
EXIT_BAD_SPEC = 2  # the TrainingJob spec is invalid (unknown algorithm, hyperparameter...)
EXIT_DATA_INVALID = 3  # the data checks failed; the report names each failing check
EXIT_DATASET_UNAVAILABLE = 4  # the dataset cannot be read (missing file, unreadable CSV)
EXIT_BUDGET_TOO_SMALL = 5  # AutoML's budget ran out before any candidate was fitted

PERMANENT_EXIT_CODES = frozenset(
    {EXIT_BAD_SPEC, EXIT_DATA_INVALID, EXIT_DATASET_UNAVAILABLE, EXIT_BUDGET_TOO_SMALL}
)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: Path) -> dict[str, Any]:
    with path.open("r", encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


class ArtifactMismatchError(Exception):
    """An artifact on disk does not match the sha256 recorded in result.json."""


def verify_artifacts(model_dir: Path) -> dict[str, Any]:
    """Check every artifact listed in result.json against its recorded sha256.

    Returns the parsed result.json. Raises ArtifactMismatchError naming the first file
    that is missing or whose digest differs.
    """
    result = read_json(model_dir / RESULT)
    artifacts = result.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts:
        raise ArtifactMismatchError(f"{model_dir / RESULT} lists no artifacts")
    for name, meta in artifacts.items():
        path = model_dir / name
        if Path(name).name != name:
            raise ArtifactMismatchError(f"artifact name {name!r} is not a plain file name")
        if not path.is_file():
            raise ArtifactMismatchError(f"artifact {name} is listed in result.json but missing")
        actual = sha256_file(path)
        if actual != meta.get("sha256"):
            raise ArtifactMismatchError(
                f"artifact {name}: sha256 {actual} does not match result.json "
                f"({meta.get('sha256')}); the file was changed after training"
            )
    return result
