"""/metrics over several worker processes: exact counters, drift bins, feedback."""

from __future__ import annotations

import bisect
import json
from collections import Counter

import numpy as np
import pytest
import requests

from support.model_dirs import build
from support.server_process import ServerProcess

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {kind: build(kind, root) for kind in ("logreg", "regression")}


@pytest.fixture(scope="module")
def servers(cases):
    started = {
        "logreg": ServerProcess(
            cases["logreg"].path, "--workers", "2", "--allow-unauthenticated-feedback"
        ),
        "regression": ServerProcess(
            cases["regression"].path, "--workers", "1", "--allow-unauthenticated-feedback"
        ),
    }
    try:
        yield {kind: server.wait_ready() for kind, server in started.items()}
    finally:
        for server in started.values():
            server.stop()


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def expected_bins(case, sent_rows):
    profile = json.loads((case.path / "profile.json").read_text())
    counts: Counter[tuple[str, str]] = Counter()
    for feature_index, item in enumerate(profile["features"]):
        for row in sent_rows:
            value = row[feature_index]
            label = "missing" if value is None else str(bisect.bisect_left(item["edges"], value))
            counts[(item["name"], label)] += 1
    return counts


def test_counters_are_summed_across_workers(cases, servers):
    case, server = cases["logreg"], servers["logreg"]
    sent = case.X_test.head(40).values.tolist()
    sent[0][0] = None  # a missing value counts in the "missing" bin
    sent[1][0] = None
    answers = [server.post("/v1/models/bc-logreg:predict", {"instances": [row]}) for row in sent]
    assert {a.status_code for a in answers} == {200}
    workers = {a.json()["id"].split("-")[1] for a in answers}  # <server>-<worker>-<n>
    assert len(workers) == 2, "SO_REUSEPORT spread 40 connections over both workers"
    samples = server.metrics()
    assert sample(samples, "perennial_requests_total", protocol="v1", code="200") == 40
    assert sample(samples, "perennial_request_duration_seconds_count", protocol="v1") == 40
    assert sample(samples, "perennial_batch_size_sum") == 40
    assert sample(samples, "perennial_model_info", format="onnx") == 1
    for (feature, label), count in expected_bins(case, sent).items():
        assert sample(samples, "perennial_feature_bin_total", feature=feature, bin=label) == count
    predicted = Counter(str(a.json()["predictions"][0]) for a in answers)
    for label in ("0", "1"):
        assert (
            sample(samples, "perennial_predictions_total", **{"class": label}) == predicted[label]
        )


def test_feedback_by_id_and_by_features(cases, servers):
    case, server = cases["logreg"], servers["logreg"]
    rows = case.X_test.tail(10).values.tolist()
    truth = case.y_test[-10:].tolist()
    with requests.Session() as session:  # one connection: the worker that holds the ids
        url = server.url + "/v2/models/bc-logreg"
        answer = session.post(url.replace("/v2/", "/v1/") + ":predict", json={"instances": rows})
        predicted = answer.json()["predictions"]
        scored = session.post(url + "/feedback", json={"id": answer.json()["id"], "truth": truth})
    assert scored.status_code == 200, scored.text
    right = sum(p == t for p, t in zip(predicted, truth, strict=True))
    assert scored.json() == {"rows": 10, "correct": right, "incorrect": 10 - right}
    wrong = [1 - t for t in truth[:4]]
    by_features = server.post(
        "/v2/models/bc-logreg/feedback", {"instances": rows[:4], "truth": wrong}
    )
    assert by_features.status_code == 200, by_features.text
    samples = server.metrics()
    expected_right = right + by_features.json()["correct"]
    assert sample(samples, "perennial_feedback_total", outcome="correct") == expected_right
    assert sample(samples, "perennial_feedback_total", outcome="incorrect") == 14 - expected_right


def test_feedback_by_id_reaches_the_right_worker_on_any_connection(cases, servers):
    case, server = cases["logreg"], servers["logreg"]
    rows = case.X_test.head(30).values.tolist()
    answers = [server.post("/v1/models/bc-logreg:predict", {"instances": [row]}) for row in rows]
    ids = [a.json()["id"] for a in answers]
    assert len({i.split("-")[1] for i in ids}) == 2
    for answer, request_id in zip(answers, ids, strict=True):
        truth = answer.json()["predictions"]
        scored = server.post("/v2/models/bc-logreg/feedback", {"id": request_id, "truth": truth})
        assert scored.status_code == 200, scored.text  # a fresh connection: any worker
        assert scored.json()["correct"] == 1
    expired = ids[0].rsplit("-", 1)[0] + "-ffffff"
    missing = server.post("/v2/models/bc-logreg/feedback", {"id": expired, "truth": [0]})
    assert missing.status_code == 404


def test_regression_feedback_and_prediction_bins(cases, servers):
    case, server = cases["regression"], servers["regression"]
    rows = case.X_test.head(12).values.tolist()
    truth = case.y_test[:12].tolist()
    answer = server.post("/v1/models/bc-regression:predict", {"instances": rows})
    predicted = np.asarray(answer.json()["predictions"])
    body = {"instances": rows, "truth": truth}
    assert server.post("/v2/models/bc-regression/feedback", body).status_code == 200
    samples = server.metrics()
    errors = predicted - np.asarray(truth)
    assert sample(samples, "perennial_feedback_count") == 12
    assert sample(samples, "perennial_feedback_abs_error_sum") == pytest.approx(
        np.abs(errors).sum()
    )
    assert sample(samples, "perennial_feedback_squared_error_sum") == pytest.approx(
        (errors**2).sum()
    )
    edges = json.loads((case.path / "profile.json").read_text())["prediction"]["edges"]
    bins = Counter(str(bisect.bisect_left(edges, p)) for p in predicted)
    for label in map(str, range(len(edges) + 1)):
        assert sample(samples, "perennial_predictions_total", **{"class": label}) == bins[label]
