"""V1 and V2 answer exactly what the model itself predicts: the server's App in this process
(support/server_in_process.py); the HTTP transport has its own tests over real sockets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from support.model_dirs import build
from support.server_in_process import InProcessServer

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    built = {kind: build(kind, root) for kind in ("logreg", "mixed", "regression")}
    built["skops"] = build("forest", root / "skops", onnx=False)
    return built


@pytest.fixture(scope="module")
def servers(cases):
    return {kind: InProcessServer(case.path) for kind, case in cases.items()}


def rows(case):
    return case.X_test.astype(object).where(case.X_test.notna(), None).values.tolist()


def v2_inputs(case):
    inputs = []
    for name in case.X_test.columns:
        numeric = name in case.numeric
        inputs.append(
            {
                "name": name,
                "shape": [len(case.X_test)],
                "datatype": "FP64" if numeric else "BYTES",
                "data": case.X_test[name].tolist(),
            }
        )
    return inputs


@pytest.mark.parametrize("kind", ["logreg", "mixed", "skops"])
def test_v1_predictions_equal_the_models_own(cases, servers, kind):
    case, server = cases[kind], servers[kind]
    body = {"instances": rows(case), "parameters": {"probabilities": True}}
    answer = server.post(f"/v1/models/bc-{case.path.name}:predict", body)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["predictions"] == case.pipeline.predict(case.X_test).tolist()
    np.testing.assert_allclose(
        got["probabilities"], case.pipeline.predict_proba(case.X_test), atol=1e-6
    )
    assert isinstance(got["id"], str) and got["id"]


@pytest.mark.parametrize("kind", ["logreg", "mixed", "skops"])
def test_v2_per_feature_inputs_equal_the_models_own(cases, servers, kind):
    case, server = cases[kind], servers[kind]
    body = {"inputs": v2_inputs(case), "outputs": [{"name": "label"}, {"name": "probabilities"}]}
    answer = server.post(f"/v2/models/bc-{case.path.name}/infer", body)
    assert answer.status_code == 200, answer.text
    label, probabilities = answer.json()["outputs"]
    assert label["data"] == case.pipeline.predict(case.X_test).tolist()
    assert probabilities["shape"] == [len(case.X_test), len(case.pipeline.classes_)]
    expected = case.pipeline.predict_proba(case.X_test).ravel()
    np.testing.assert_allclose(probabilities["data"], expected, atol=1e-6)


def test_onnx_server_equals_the_onnx_artifact_exactly(cases, servers):
    case = cases["logreg"]
    labels, probabilities = case.onnx_predict(case.X_test)
    body = {"inputs": v2_inputs(case), "outputs": [{"name": "predict_proba"}]}
    got = servers["logreg"].post("/v2/models/bc-logreg/infer", body).json()["outputs"][0]
    assert got["data"] == np.asarray(probabilities, dtype=np.float64).ravel().tolist()


def test_v2_single_2d_input_and_v1_objects(cases, servers):
    case, server = cases["logreg"], servers["logreg"]
    flat = case.X_test.to_numpy().ravel().tolist()
    tensor = {"name": "input-0", "shape": [len(case.X_test), 30], "datatype": "FP32", "data": flat}
    got = server.post("/v2/models/bc-logreg/infer", {"id": "mine", "inputs": [tensor]}).json()
    assert got["id"] == "mine" and got["model_version"] == "3"
    assert got["outputs"][0]["data"] == case.pipeline.predict(case.X_test).tolist()
    objects = case.X_test.to_dict(orient="records")
    v1 = server.post("/v1/models/bc-logreg:predict", {"instances": objects}).json()
    assert v1["predictions"] == case.pipeline.predict(case.X_test).tolist()
    assert "probabilities" not in v1


def test_regression_predictions(cases, servers):
    case = cases["regression"]
    got = servers["regression"].post("/v1/models/bc-regression:predict", {"instances": rows(case)})
    predictions = got.json()["predictions"]
    assert predictions == np.ravel(case.onnx_predict(case.X_test)[0]).astype(float).tolist()
    np.testing.assert_allclose(predictions, case.pipeline.predict(case.X_test), rtol=1e-6)


def test_missing_and_unseen_categories_are_served(cases, servers):
    case = cases["mixed"]
    body = {"instances": [[30.0, 50.0, None], [40.0, 55.0, "enterprise"], [50.0, 60.0, "basic"]]}
    got = servers["mixed"].post("/v1/models/bc-mixed:predict", body)
    assert got.status_code == 200, got.text
    # perennial-train encodes a missing category as "", so that is what the model sees.
    frame = pd.DataFrame(body["instances"], columns=["age", "income", "plan"]).fillna("")
    assert got.json()["predictions"] == case.pipeline.predict(frame).tolist()


def test_metadata_and_health(servers):
    server = servers["mixed"]
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").status_code == 200
    meta = server.get("/v2/models/bc-mixed").json()
    assert [i["datatype"] for i in meta["inputs"]] == ["FP64", "FP64", "BYTES"]
    assert meta["outputs"][0]["datatype"] == "BYTES" and meta["versions"] == ["3"]
    ready = server.get("/v2/models/bc-mixed/versions/3/ready")
    assert ready.json() == {"name": "bc-mixed", "ready": True}
    assert server.get("/v1/models/bc-mixed").json()["ready"] is True


def test_profile_endpoint_returns_the_verified_training_profile(cases, servers):
    import json

    case, server = cases["logreg"], servers["logreg"]
    name = json.loads((case.path / "result.json").read_text())["model"]
    response = server.get(f"/v2/models/{name}/profile")
    assert response.status_code == 200
    assert response.json() == json.loads((case.path / "profile.json").read_text())
    assert server.get("/v2/models/other/profile").status_code == 404
