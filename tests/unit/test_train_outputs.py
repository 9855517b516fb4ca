"""signature.json, profile.json and the compact result, on mixed data with gaps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest

from perennial_runtime import contract
from perennial_runtime.train.onnx_export import feeds
from support.training import train_direct

pytestmark = pytest.mark.unit


def _churn(tmp_path: Path) -> str:
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n).astype(float),
            "spend": rng.normal(70, 20, n),
            "plan": rng.choice(["basic", "pro", "gold"], n),
        }
    )
    frame["churn"] = ((frame["tenure"] < 12) ^ (rng.random(n) < 0.1)).astype(int)
    frame.loc[frame.sample(frac=0.1, random_state=1).index, "spend"] = np.nan
    frame.loc[frame.sample(frac=0.05, random_state=2).index, "plan"] = None
    frame.to_csv(tmp_path / "churn.csv", index=False)
    return f"file://{tmp_path}/churn.csv"


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp_path = tmp_path_factory.mktemp("churn")
    spec = {
        "model": "churn",
        "task": "classification",
        "algorithm": "logistic_regression",
        "dataset": {"uri": _churn(tmp_path), "target": "churn"},
    }
    return train_direct(tmp_path, spec), tmp_path / "model"


def test_signature_describes_inputs_outputs_and_onnx_names(churn) -> None:  # type: ignore[no-untyped-def]
    _, model_dir = churn
    signature = json.loads((model_dir / contract.SIGNATURE).read_text())
    assert signature["task"] == "classification" and signature["classes"] == [0, 1]
    assert signature["inputs"] == [
        {"name": "tenure", "datatype": "FP64"},
        {"name": "spend", "datatype": "FP64"},
        {"name": "plan", "datatype": "BYTES", "categories": ["basic", "gold", "pro"]},
    ]
    assert signature["outputs"][1] == {
        "name": "probabilities",
        "datatype": "FP64",
        "shape": [-1, 2],
    }
    assert signature["onnx"] == {
        "input_names": ["tenure", "spend", "plan"],
        "output_names": ["label", "probabilities"],
    }


def test_onnx_handles_missing_numbers_and_unseen_categories(churn) -> None:  # type: ignore[no-untyped-def]
    trained, model_dir = churn
    X = pd.DataFrame(
        {"tenure": [3.0, 50.0], "spend": [np.nan, 20.0], "plan": ["", "platinum"]}, dtype=object
    ).astype({"tenure": float, "spend": float})
    model = onnx.load(model_dir / contract.MODEL_ONNX)
    session = ort.InferenceSession(str(model_dir / contract.MODEL_ONNX))
    label, proba = session.run(None, feeds(model, trained.columns, X))
    np.testing.assert_array_equal(label, trained.model.predict(X))
    np.testing.assert_allclose(proba, trained.model.predict_proba(X), atol=1e-6, rtol=0)


def test_profile_is_a_drift_reference(churn) -> None:  # type: ignore[no-untyped-def]
    trained, model_dir = churn
    profile = json.loads((model_dir / contract.PROFILE).read_text())
    assert profile["version"] == 1 and profile["rows"] == len(trained.data.X_train)
    by_name = {f["name"]: f for f in profile["features"]}
    assert by_name["spend"]["kind"] == "numeric" and len(by_name["spend"]["edges"]) == 9
    assert 0.05 < by_name["spend"]["missing"] < 0.15
    assert by_name["plan"]["kind"] == "categorical"
    assert len(by_name["plan"]["proportions"]) == len(by_name["plan"]["categories"]) + 1
    assert profile["prediction"]["kind"] == "classes"
    assert sum(profile["prediction"]["proportions"]) == pytest.approx(1)


def test_result_json_records_lineage_and_versions(churn) -> None:  # type: ignore[no-untyped-def]
    trained, model_dir = churn
    result = contract.verify_artifacts(model_dir)
    assert set(result["artifacts"]) == {
        "model.skops",
        "model.onnx",
        "signature.json",
        "profile.json",
    }
    assert result["libraries"]["scikit-learn"] and result["task"] == "classification"
    assert result["dataset"]["rows"] == 400 and result["split"] == {"train": 320, "test": 80}
    assert {"loading", "validating", "fitting", "evaluating", "total"} <= set(result["timings"])
    assert set(result["metrics"]) == {"accuracy", "f1_macro", "roc_auc", "log_loss"}


def test_wide_signature_is_summarised_in_the_termination_message(tmp_path: Path) -> None:
    spec = {
        "model": "digits",
        "task": "image-classification",
        "algorithm": "random_forest",
        "hyperparameters": {"n_estimators": 10},
        "dataset": {"uri": "builtin://digits"},
    }
    trained = train_direct(tmp_path, spec)
    assert trained.message["signature"]["inputs"] == {"count": 64}
    assert len(json.dumps(trained.message, separators=(",", ":"))) <= 4096
