"""Routes and request handling, independent of the HTTP transport.

``App.handle(method, path, body, respond, started)`` answers every request exactly once
through ``respond`` (possibly later, after the batch it joined has run).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from perennial_runtime.serve import feedback, protocol_v1, protocol_v2
from perennial_runtime.serve.batching import MicroBatcher, Outcome, PredictFn
from perennial_runtime.serve.exposition import Exporter
from perennial_runtime.serve.feedback_gate import FeedbackGate
from perennial_runtime.serve.metrics import Recorder
from perennial_runtime.serve.recent import RecentPredictions
from perennial_runtime.serve.signature import Signature
from perennial_runtime.serve.validation import Decoder, RequestError, bad_request

JSON = b"application/json"
PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"
V1, V2 = 0, 1
Respond = Callable[[int, bytes, bytes], None]
_V2_PATH = re.compile(
    r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer|/feedback|/profile)?$"
)
_V1_PATH = re.compile(r"^/v1/models/([^/:]+)(:predict)?$")


@dataclass(frozen=True)
class Served:
    name: str
    version: str
    platform: str
    signature: Signature
    profile_json: bytes | None = None  # profile.json as verified at start: the drift reference


def _error(message: str) -> bytes:
    return orjson.dumps({"error": message})


class App:
    def __init__(
        self,
        served: Served,
        decoder: Decoder,
        batcher: MicroBatcher,
        recorder: Recorder,
        exporter: Exporter,
        recent: RecentPredictions,
        predict: PredictFn,
        gate: FeedbackGate | None = None,
    ) -> None:
        self.served, self.decoder, self.batcher = served, decoder, batcher
        self.gate = gate if gate is not None else FeedbackGate(None)  # closed unless configured
        self._predict = predict  # feedback predicts outside the batcher: not live traffic
        self.recorder, self.exporter, self.recent = recorder, exporter, recent
        self.draining = False
        self._classification = served.signature.classification
        self._label_type = served.signature.label_datatype
        self._v2_head = {"model_name": served.name, "model_version": served.version}
        name = served.name
        self._exact: dict[tuple[bytes, str], Callable[[bytes, Respond, float], None]] = {
            (b"POST", f"/v2/models/{name}/infer"): self._infer_v2,
            (b"POST", f"/v1/models/{name}:predict"): self._predict_v1,
        }

    def handle(
        self,
        method: bytes,
        path: str,
        body: bytes,
        respond: Respond,
        started: float,
        authorization: bytes | None = None,
    ) -> None:
        route = self._exact.get((method, path))
        if route is not None:
            route(body, respond, started)
            return
        try:
            self._route(method, path, body, respond, started, authorization)
        except RequestError as exc:
            self.reject(path, exc.status, exc.message, respond, started)

    def reject(
        self, path: str, status: int, message: str, respond: Respond, started: float
    ) -> None:
        """Answer an error; counted when it was aimed at an inference endpoint."""
        respond(status, _error(message), JSON)
        if path.endswith("/infer"):
            self.recorder.request(V2, status, time.perf_counter() - started)
        elif path.endswith(":predict"):
            self.recorder.request(V1, status, time.perf_counter() - started)

    def _route(
        self,
        method: bytes,
        path: str,
        body: bytes,
        respond: Respond,
        started: float,
        authorization: bytes | None,
    ) -> None:
        simple = self._simple(path)
        if simple is not None:
            self._only(method, b"GET")
            status, payload, kind = simple()
            respond(status, payload, kind)
            return
        match = _V2_PATH.match(path)
        if match is not None:
            self._own_model(match.group(1), match.group(2))
            action = match.group(3) or ""
            if action == "/infer":
                self._only(method, b"POST")
                self._infer_v2(body, respond, started)
                return
            if action == "/feedback":
                self._only(method, b"POST")
                self.gate.admit(authorization)
                self._feedback(body, respond)
                return
            self._only(method, b"GET")
            if action == "/profile":
                self._profile(respond)
                return
            state = {"name": self.served.name, "ready": not self.draining}
            respond(200, orjson.dumps(state if action else self._metadata()), JSON)
            return
        match = _V1_PATH.match(path)
        if match is not None:
            self._own_model(match.group(1), None)
            if match.group(2):
                self._only(method, b"POST")
                self._predict_v1(body, respond, started)
                return
            self._only(method, b"GET")
            respond(200, orjson.dumps({"name": self.served.name, "ready": not self.draining}), JSON)
            return
        raise RequestError(404, f"no route for {path[:100]}")

    def _simple(self, path: str) -> Callable[[], tuple[int, bytes, bytes]] | None:
        ready = (503, _error("draining")) if self.draining else (200, b'{"ready":true}')
        routes: dict[str, Callable[[], tuple[int, bytes, bytes]]] = {
            "/": lambda: (200, b'{"status":"alive"}', JSON),  # KServe V1 clients probe it
            "/v2/health/live": lambda: (200, b'{"live":true}', JSON),
            "/v2/health/ready": lambda: (*ready, JSON),
            "/v2": lambda: (
                200,
                orjson.dumps({"name": "perennial-serve", "version": "0.1.0", "extensions": []}),
                JSON,
            ),
            "/v1/models": lambda: (200, orjson.dumps({"models": [self.served.name]}), JSON),
            "/metrics": lambda: (200, self.exporter.render(), PROMETHEUS),
        }
        return routes.get(path)

    def _profile(self, respond: Respond) -> None:
        """The training profile, so the operator can compute PSI against the counters."""
        if self.served.profile_json is None:
            raise RequestError(404, f"model {self.served.name!r} has no profile.json")
        respond(200, self.served.profile_json, JSON)

    @staticmethod
    def _only(method: bytes, allowed: bytes) -> None:
        if method != allowed:
            raise RequestError(
                405, f"method {method.decode()} not allowed here; use {allowed.decode()}"
            )

    def _own_model(self, name: str, version: str | None) -> None:
        if name != self.served.name:
            raise RequestError(
                404, f"model {name[:60]!r} not found; this server serves {self.served.name!r}"
            )
        if version is not None and version != self.served.version:
            raise RequestError(
                404,
                f"version {version[:40]!r} of {name!r} not found; serving {self.served.version!r}",
            )

    def _metadata(self) -> dict[str, Any]:
        sig = self.served.signature
        inputs = [{"name": f.name, "datatype": f.datatype, "shape": [-1]} for f in sig.features]
        outputs: list[dict[str, Any]] = [
            {"name": "label", "datatype": self._label_type, "shape": [-1]}
        ]
        if sig.classes is not None:
            outputs.append(
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(sig.classes)]}
            )
        return {
            "name": self.served.name,
            "versions": [self.served.version],
            "platform": self.served.platform,
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {"classes": list(sig.classes) if sig.classes is not None else None},
        }

    def _decode(self, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"the body is not valid JSON: {exc}") from None

    def _predict_v1(self, body: bytes, respond: Respond, started: float) -> None:
        try:
            request = protocol_v1.parse(
                self._decode(body), self.decoder, classification=self._classification
            )
        except RequestError as exc:
            self.reject(":predict", exc.status, exc.message, respond, started)
            return
        request_id = self.recent.new_id()

        def done(outcome: Outcome | BaseException) -> None:
            if isinstance(outcome, BaseException):
                self._failed(V1, outcome, respond, started)
                return
            labels = outcome.labels.tolist()
            self.recent.remember(request_id, labels)
            probabilities = outcome.probabilities if request.probabilities else None
            respond(200, protocol_v1.render(labels, probabilities, request_id), JSON)
            self.recorder.request(V1, 200, time.perf_counter() - started)

        self.batcher.submit(request.rows, request.probabilities, done)

    def _infer_v2(self, body: bytes, respond: Respond, started: float) -> None:
        try:
            request = protocol_v2.parse(
                self._decode(body), self.decoder, classification=self._classification
            )
        except RequestError as exc:
            self.reject("/infer", exc.status, exc.message, respond, started)
            return
        # The server's id keys the stored prediction: a client's own "id" is only echoed,
        # so no client can overwrite (or read) another's prediction by reusing an id.
        prediction_id = self.recent.new_id()
        proba = "probabilities" in request.outputs

        def done(outcome: Outcome | BaseException) -> None:
            if isinstance(outcome, BaseException):
                self._failed(V2, outcome, respond, started)
                return
            labels = outcome.labels.tolist()
            self.recent.remember(prediction_id, labels)
            payload = protocol_v2.render(
                self._v2_head,
                request.request_id or prediction_id,
                prediction_id,
                request.outputs,
                labels,
                self._label_type,
                outcome.probabilities,
            )
            respond(200, payload, JSON)
            self.recorder.request(V2, 200, time.perf_counter() - started)

        self.batcher.submit(request.rows, proba, done)

    def _failed(self, protocol: int, exc: BaseException, respond: Respond, started: float) -> None:
        respond(500, _error(f"prediction failed: {type(exc).__name__}"), JSON)
        self.recorder.request(protocol, 500, time.perf_counter() - started)

    def _feedback(self, body: bytes, respond: Respond) -> None:
        doc = self._decode(body)
        if not isinstance(doc, dict):
            raise bad_request("feedback must be a JSON object")
        truth = feedback.truth_of(doc, self._classification)
        self.gate.take(len(truth))
        if "id" in doc:
            predicted = self.recent.get(str(doc["id"]))
            if predicted is None:
                raise RequestError(
                    404,
                    f"prediction id {str(doc['id'])[:60]!r} is unknown or expired "
                    "here (V2: the id is parameters.prediction_id of the answer); send the "
                    "features with the truth instead",
                )
            self._score(predicted, truth, respond)
            return
        if "instances" in doc:
            rows = protocol_v1.parse(doc, self.decoder, classification=self._classification).rows
        elif "inputs" in doc:
            rows = protocol_v2.parse(doc, self.decoder, classification=self._classification).rows
        else:
            raise bad_request('feedback needs "id", or "instances"/"inputs" with "truth"')
        labels, _ = self._predict(rows.numeric, rows.categorical, False)
        self._score(labels.tolist(), truth, respond)

    def _score(self, predicted: list[Any], truth: list[Any], respond: Respond) -> None:
        result = feedback.score(predicted, truth, self._classification)
        self.recorder.feedback(
            result.correct,
            result.incorrect,
            result.abs_error_sum,
            result.squared_error_sum,
            result.count,
        )
        respond(200, orjson.dumps(result.as_json(self._classification)), JSON)
