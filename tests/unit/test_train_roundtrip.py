"""Every task trains for real, writes a model that loads back safely and predicts the same.

skops: predictions bit-identical to the fitted pipeline. ONNX: labels identical and
probabilities within 1e-5 on the held-out split (regression: relative 1e-5; see
onnx_export.py). test_train_onnx_parity.py covers every family on every dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from perennial_runtime import contract
from perennial_runtime.train import persist
from perennial_runtime.train.onnx_export import feeds
from support.training import anomaly_frame, ratings_frame, text_frame, train_direct

pytestmark = pytest.mark.unit

BUILTIN_CASES = [
    pytest.param(
        "builtin://iris", "classification", "logistic_regression", {}, "double", id="iris"
    ),
    pytest.param(
        "builtin://wine",
        "classification",
        "random_forest",
        {"n_estimators": 30},
        "double",
        id="wine-forest",
    ),
    pytest.param(
        "builtin://breast_cancer",
        "classification",
        "svm",
        {"C": 3.0},
        "double",
        id="breast_cancer-svm",
    ),
    pytest.param(
        "builtin://breast_cancer",
        "classification",
        "hist_gradient_boosting",
        {"max_iter": 30},
        "double",
        id="breast_cancer-hgb",
    ),
    pytest.param(
        "builtin://diabetes", "regression", "ridge", {"alpha": 0.5}, "double", id="diabetes-ridge"
    ),
    pytest.param(
        "builtin://diabetes",
        "regression",
        "gradient_boosting",
        {"n_estimators": 40},
        "double",
        id="diabetes-gb",
    ),
    pytest.param(
        "builtin://digits", "image-classification", "logistic_regression", {}, "double", id="digits"
    ),
    pytest.param("builtin://linnerud", "regression", "ridge", {}, "double", id="linnerud"),
    pytest.param(
        "builtin://iris", "clustering", "kmeans", {"n_clusters": 3}, "double", id="iris-kmeans"
    ),
]


@pytest.mark.parametrize(("uri", "task", "algorithm", "params", "precision"), BUILTIN_CASES)
def test_builtin_dataset_round_trips(
    tmp_path: Path,
    uri: str,
    task: str,
    algorithm: str,
    params: dict[str, Any],
    precision: str | None,
) -> None:
    spec = {
        "model": "m",
        "task": task,
        "algorithm": algorithm,
        "hyperparameters": params,
        "dataset": {"uri": uri},
    }
    trained = train_direct(tmp_path, spec)
    _assert_round_trip(trained, tmp_path / "model", precision)


def test_text_classification_round_trips(tmp_path: Path) -> None:
    text_frame().to_csv(tmp_path / "reviews.csv", index=False)
    spec = {
        "model": "reviews",
        "task": "text-classification",
        "algorithm": "tfidf_logistic_regression",
        "dataset": {"uri": f"file://{tmp_path}/reviews.csv", "target": "label"},
    }
    trained = train_direct(tmp_path, spec)
    assert trained.message["metrics"]["accuracy"] >= 0.9
    _assert_round_trip(trained, tmp_path / "model", "double")


def test_recommendation_round_trips_skops_only(tmp_path: Path) -> None:
    ratings_frame().to_csv(tmp_path / "ratings.csv", index=False)
    spec = {
        "model": "recs",
        "task": "recommendation",
        "algorithm": "matrix_factorization",
        "hyperparameters": {"n_factors": 4},
        "dataset": {"uri": f"file://{tmp_path}/ratings.csv", "target": "rating"},
    }
    trained = train_direct(tmp_path, spec)
    metrics = trained.message["metrics"]
    assert metrics["rmse"] < 1.0 and 0 < metrics["precision_at_10"] <= 1
    assert 0 < metrics["recall_at_10"] <= 1
    _assert_round_trip(trained, tmp_path / "model", None)
    loaded = persist.load_model(tmp_path / "model" / contract.MODEL_SKOPS)
    assert loaded.recommend("u0", 5) == trained.model.recommend("u0", 5)


def test_anomaly_detection_round_trips(tmp_path: Path) -> None:
    anomaly_frame().to_csv(tmp_path / "events.csv", index=False)
    spec = {
        "model": "events",
        "task": "anomaly-detection",
        "algorithm": "isolation_forest",
        "hyperparameters": {"n_estimators": 25},
        "dataset": {"uri": f"file://{tmp_path}/events.csv", "target": "anomaly"},
    }
    trained = train_direct(tmp_path, spec)
    assert trained.message["metrics"]["roc_auc"] > 0.9
    assert 0 < trained.message["metrics"]["fraction_flagged"] < 0.5
    _assert_round_trip(trained, tmp_path / "model", "double")


def _assert_round_trip(trained: Any, model_dir: Path, precision: str | None) -> None:
    result = contract.verify_artifacts(model_dir)
    X_test = trained.data.X_test
    loaded = persist.load_model(model_dir / contract.MODEL_SKOPS)
    np.testing.assert_array_equal(loaded.predict(X_test), trained.model.predict(X_test))
    if hasattr(trained.model, "predict_proba"):
        np.testing.assert_array_equal(
            loaded.predict_proba(X_test), trained.model.predict_proba(X_test)
        )
    assert len(json.dumps(trained.message, separators=(",", ":"))) <= 4096
    assert trained.message["artifact"]["sha256"] == contract.sha256_file(model_dir / "result.json")
    onnx_path = model_dir / contract.MODEL_ONNX
    assert onnx_path.exists() == (precision is not None), result["onnx"]
    if precision is not None:
        assert result["onnx"]["precision"] == precision
        _assert_onnx_matches(trained, onnx_path)


def _assert_onnx_matches(trained: Any, path: Path) -> None:
    import onnx

    model = onnx.load(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, feeds(model, trained.columns, trained.data.X_test))
    expected = trained.model.predict(trained.data.X_test)
    if trained.message["signature"]["outputs"][0] == "prediction":
        np.testing.assert_allclose(np.ravel(outputs[0]), expected, rtol=1e-5)
        return
    np.testing.assert_array_equal(np.ravel(outputs[0]), expected)
    if "probabilities" in trained.message["signature"]["outputs"]:
        proba = trained.model.predict_proba(trained.data.X_test)
        np.testing.assert_allclose(outputs[1], proba, rtol=0, atol=1e-5)
