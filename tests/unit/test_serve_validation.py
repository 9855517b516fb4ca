"""Every invalid request gets the right status and a message that names the problem,
and nothing a client sends stops the server."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from support.model_dirs import build
from support.server_process import ServerProcess

pytestmark = pytest.mark.unit

LIMIT = 20_000
ROW = [17.99, 10.38, 122.8, 1001.0, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095,
       0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38,
       17.33, 184.6, 2019.0, 0.1622, 0.6656, 0.7119, 0.2654, 0.4601, 0.1189]  # fmt: skip
V1 = "/v1/models/bc-logreg:predict"
V2 = "/v2/models/bc-logreg/infer"


def with_value(index, value):
    row = list(ROW)
    row[index] = value
    return {"instances": [row]}


def tensor(shape, data, datatype="FP64", name="x"):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def per_feature(names, extra=()):
    return {
        "inputs": [tensor([1], [v], name=n) for n, v in zip(names, ROW, strict=False)] + list(extra)
    }


@pytest.fixture(scope="module")
def names(servers):
    meta = requests.get(servers["logreg"].url + "/v2/models/bc-logreg", timeout=10).json()
    return [i["name"] for i in meta["inputs"]]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    started = {
        kind: ServerProcess(
            build(kind, root).path,
            "--workers",
            "1",
            "--max-body-bytes",
            str(LIMIT),
            "--allow-unauthenticated-feedback",
        )
        for kind in ("logreg", "mixed")
    }
    try:
        yield {kind: server.wait_ready() for kind, server in started.items()}
    finally:
        for server in started.values():
            server.stop()


# (id, path, body: bytes | callable(names) -> JSON, status, words in the message)
CORPUS = [
    ("not-json", V1, b"{instances: oops", 400, "not valid JSON"),
    ("nan-literal", V1, b'{"instances": [[NaN]]}', 400, "not valid JSON"),
    ("infinite-number", V1, b'{"instances": [[1e999]]}', 400, "infinity"),
    ("body-not-object", V1, b"[1, 2]", 400, "JSON object"),
    ("no-instances", V1, lambda n: {"rows": [ROW]}, 400, 'needs "instances"'),
    ("empty-instances", V1, lambda n: {"instances": []}, 400, "non-empty list"),
    ("row-not-list", V1, lambda n: {"instances": [5]}, 400, "instances[0] must be a list"),
    (
        "row-too-short",
        V1,
        lambda n: {"instances": [ROW[:29]]},
        422,
        "has 29 values; the model expects 30",
    ),
    ("string-for-number", V1, lambda n: with_value(3, "big"), 422, "'mean_area' expects a number"),
    ("boolean-for-number", V1, lambda n: with_value(0, True), 422, "got boolean"),
    (
        "unknown-feature",
        V1,
        lambda n: {"instances": [{**dict(zip(n, ROW, strict=True)), "colour": 1}]},
        422,
        "unknown feature 'colour'",
    ),
    (
        "missing-feature",
        V1,
        lambda n: {"instances": [dict(zip(n[1:], ROW[1:], strict=True))]},
        422,
        "missing feature 'mean_radius'",
    ),
    (
        "probabilities-not-bool",
        V1,
        lambda n: {"instances": [ROW], "parameters": {"probabilities": "y"}},
        400,
        "must be true or false",
    ),
    ("v2-no-inputs", V2, lambda n: {"outputs": []}, 400, '"inputs" must be a non-empty list'),
    (
        "v2-shape-vs-data",
        V2,
        lambda n: {"inputs": [tensor([1, 30], ROW[:29])]},
        400,
        "needs 30 values, data has 29",
    ),
    (
        "v2-unknown-datatype",
        V2,
        lambda n: {"inputs": [tensor([1, 30], ROW, "FP128")]},
        400,
        "unknown datatype 'FP128'",
    ),
    (
        "v2-missing-data",
        V2,
        lambda n: {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64"}]},
        400,
        "missing 'data'",
    ),
    (
        "v2-wrong-width",
        V2,
        lambda n: {"inputs": [tensor([1, 29], ROW[:29])]},
        422,
        "single input must be [n, 30]",
    ),
    (
        "v2-unknown-input",
        V2,
        lambda n: per_feature(n, [tensor([1], [1.0], name="bogus")]),
        422,
        "unknown input 'bogus'",
    ),
    (
        "v2-missing-input",
        V2,
        lambda n: per_feature(n[:29]),
        422,
        "input for feature 'worst_fractal_dimension' is missing",
    ),
    (
        "v2-bytes-for-numeric",
        V2,
        lambda n: {"inputs": [tensor([1, 30], ["a"] * 30, "BYTES")]},
        422,
        "BYTES is not accepted",
    ),
    (
        "v2-unknown-output",
        V2,
        lambda n: {"inputs": [tensor([1, 30], ROW)], "outputs": [{"name": "logits"}]},
        422,
        "unknown output 'logits'",
    ),
    (
        "v2-no-rows",
        V2,
        lambda n: {"inputs": [tensor([0], [], name=name) for name in n]},
        400,
        "holds no rows",
    ),
    ("deep-nesting", V2, b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "not valid JSON"),
    (
        "wrong-model",
        "/v2/models/churn/infer",
        lambda n: {"inputs": [tensor([1, 30], ROW)]},
        404,
        "model 'churn' not found",
    ),
    (
        "wrong-version",
        "/v2/models/bc-logreg/versions/9/infer",
        lambda n: {"inputs": []},
        404,
        "version '9'",
    ),
    ("unknown-route", "/v3/anything", lambda n: {}, 404, "no route"),
    (
        "too-large",
        V1,
        lambda n: {"instances": [ROW] * 100},
        413,
        f"exceeds the limit of {LIMIT} bytes",
    ),
    (
        "feedback-unknown-id",
        "/v2/models/bc-logreg/feedback",
        lambda n: {"id": "nope", "truth": [1]},
        404,
        "unknown or expired",
    ),
    ("feedback-no-truth", "/v2/models/bc-logreg/feedback", lambda n: {"id": "x"}, 400, '"truth"'),
]
MIXED = [
    ("number-for-category", "/v1/models/bc-mixed:predict", {"instances": [[30.0, 50.0, 7]]}, 422,
     "'plan' expects a string category"),
    ("v2-category-not-bytes", "/v2/models/bc-mixed/infer",
     {"inputs": [tensor([1], [30.0], name="age"), tensor([1], [50.0], name="income"),
                 tensor([1], [1.0], name="plan")]}, 422, "'plan' is categorical; send it as BYTES"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "status", "words"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_invalid_request_is_refused_with_a_reason(servers, names, path, body, status, words):
    data = body if isinstance(body, bytes) else json.dumps(body(names)).encode()
    answer = requests.post(servers["logreg"].url + path, data=data, timeout=30)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "status", "words"), [c[1:] for c in MIXED], ids=[c[0] for c in MIXED]
)
def test_invalid_categorical_input_is_refused(servers, path, body, status, words):
    answer = servers["mixed"].post(path, body)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


def test_wrong_method_and_malformed_http(servers):
    server = servers["logreg"]
    answer = requests.get(server.url + V2, timeout=10)
    assert answer.status_code == 405 and "use POST" in answer.json()["error"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400") and b"malformed HTTP request" in reply


def test_the_server_survives_the_corpus_and_counts_it(servers):
    server = servers["logreg"]
    assert server.proc.poll() is None
    assert server.post(V1, {"instances": [ROW]}).status_code == 200
    samples = server.metrics()
    counted = {
        code: samples[
            ("perennial_rejected_requests_total", frozenset({("protocol", "v1"), ("code", code)}))
        ]
        for code in ("400", "422")
    }
    v1_cases = [c for c in CORPUS if c[1] == V1]
    assert counted["400"] == sum(c[3] == 400 for c in v1_cases)
    assert counted["422"] == sum(c[3] == 422 for c in v1_cases)


def test_expect_100_continue_is_answered_before_the_body(servers):
    server = servers["logreg"]
    body = json.dumps({"instances": [ROW]}).encode()
    head = (
        f"POST {V1} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
