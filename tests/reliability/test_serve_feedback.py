"""Feedback cannot be driven by whoever reaches the server (issue 20, finding 3, the
server's half): a token, finite values, a rate limit, and prediction ids only the server
issues, which a restarted worker does not issue again."""

from __future__ import annotations

import math
import os
import signal
import time

import pytest
import requests

from support.model_dirs import build
from support.server_process import ServerProcess

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]
TOKEN = "s3cret-feedback-token"


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {kind: build(kind, root) for kind in ("logreg", "regression")}


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(model_dir, *args):
        server = ServerProcess(model_dir, *args)
        started.append(server)
        return server.wait_ready()

    yield start
    for server in started:
        server.stop()


def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return str(path)


def rows_of(case, n, start=0):
    return case.X_test.iloc[start : start + n].values.tolist()


def test_feedback_is_refused_by_default_and_needs_the_token_when_one_is_set(cases, serve, tmp_path):
    case = cases["logreg"]
    body = {"instances": rows_of(case, 2), "truth": case.y_test[:2].tolist()}
    url = "/v2/models/bc-logreg/feedback"
    open_by_default = serve(case.path, "--workers", "1")
    refused = open_by_default.post(url, body)
    assert refused.status_code == 403 and "--feedback-token-file" in refused.json()["error"]
    guarded = serve(case.path, "--workers", "1", "--feedback-token-file", token_file(tmp_path))
    assert guarded.post(url, body).status_code == 401
    wrong = guarded.post(url, body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = guarded.post(url, body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and right.json()["rows"] == 2
    samples = guarded.metrics()
    counted = sum(v for (name, _), v in samples.items() if name == "perennial_feedback_total")
    assert counted == 2, "only the authorised feedback was counted"
    assert not any(TOKEN in line for line in guarded.lines), "the token reached the logs"


def test_a_huge_regression_truth_is_refused_and_the_error_sums_stay_finite(cases, serve):
    case = cases["regression"]
    server = serve(case.path, "--workers", "1", "--allow-unauthenticated-feedback")
    url = "/v2/models/bc-regression/feedback"
    rows = rows_of(case, 1)
    for truth in (1e308, -1e308, 1e200, [1e155]):
        answer = server.post(url, {"instances": rows, "truth": truth})
        assert answer.status_code == 422, (truth, answer.text)
    good = server.post(url, {"instances": rows, "truth": case.y_test[0].item()})
    assert good.status_code == 200
    samples = server.metrics()
    for name in ("perennial_feedback_abs_error_sum", "perennial_feedback_squared_error_sum"):
        value = samples[(name, frozenset())]
        assert math.isfinite(value), f"{name} is {value}"
    assert samples[("perennial_feedback_count", frozenset())] == 1


def test_feedback_past_the_rate_limit_gets_429_and_is_not_counted(cases, serve):
    case = cases["logreg"]
    server = serve(case.path, "--workers", "1", "--allow-unauthenticated-feedback",
                   "--feedback-rows-per-second", "0.5", "--feedback-burst-rows", "10")  # fmt: skip
    url = "/v2/models/bc-logreg/feedback"
    truth = case.y_test[:5].tolist()
    statuses = [
        server.post(url, {"instances": rows_of(case, 5), "truth": truth}).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 429, 429]
    too_big = server.post(url, {"instances": rows_of(case, 11), "truth": case.y_test[:11].tolist()})
    assert too_big.status_code == 429 and "split it" in too_big.json()["error"]
    samples = server.metrics()
    counted = sum(v for (name, _), v in samples.items() if name == "perennial_feedback_total")
    assert counted == 10


def v2_body(row, request_id):
    data = {"name": "x", "shape": [1, len(row)], "datatype": "FP64", "data": row}
    return {"id": request_id, "inputs": [data]}


def test_a_v2_id_chosen_by_a_client_never_overwrites_another_prediction(cases, serve):
    case = cases["logreg"]
    server = serve(case.path, "--workers", "1", "--allow-unauthenticated-feedback")
    predicted = case.pipeline.predict(case.X_test).tolist()
    first = next(i for i, p in enumerate(predicted) if p == 0)
    second = next(i for i, p in enumerate(predicted) if p == 1)
    url = "/v2/models/bc-logreg/infer"
    alice = server.post(url, v2_body(rows_of(case, 1, first)[0], "order-17")).json()
    mallory = server.post(url, v2_body(rows_of(case, 1, second)[0], "order-17")).json()
    assert alice["id"] == mallory["id"] == "order-17"  # echoed, as the protocol says
    alice_id = alice["parameters"]["prediction_id"]
    assert alice_id != mallory["parameters"]["prediction_id"]
    feedback = "/v2/models/bc-logreg/feedback"
    scored = server.post(feedback, {"id": alice_id, "truth": [0]})
    assert scored.status_code == 200
    assert scored.json() == {"rows": 1, "correct": 1, "incorrect": 0}, "Alice's own prediction"
    assert server.post(feedback, {"id": "order-17", "truth": [0]}).status_code == 404


def test_a_restarted_worker_does_not_issue_its_predecessors_ids_again(cases, serve):
    case = cases["logreg"]
    server = serve(case.path, "--workers", "1", "--allow-unauthenticated-feedback")
    url = "/v1/models/bc-logreg:predict"
    predicted = case.pipeline.predict(case.X_test).tolist()
    before = [server.post(url, {"instances": [row]}).json() for row in rows_of(case, 5)]
    (worker,) = next(e["pids"] for e in server.logs() if e.get("msg") == "ready")
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 60
    after = []
    while len(after) < 5 and time.monotonic() < deadline:
        try:
            answer = server.post(url, {"instances": rows_of(case, 1, 5 + len(after))})
        except requests.ConnectionError:
            time.sleep(0.2)  # the parent is starting its replacement
            continue
        after.append(answer.json())
    assert len(after) == 5, "the worker was not restarted"
    old_ids, new_ids = {a["id"] for a in before}, {a["id"] for a in after}
    assert not old_ids & new_ids, f"ids issued twice: {sorted(old_ids & new_ids)}"
    # Feedback on an id from before the restart scores that prediction, not a newer one.
    truth = [predicted[0]]
    scored = server.post("/v2/models/bc-logreg/feedback", {"id": before[0]["id"], "truth": truth})
    assert scored.status_code == 200
    assert scored.json()["correct"] == 1
