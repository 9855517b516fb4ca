"""KServe V1: ``POST /v1/models/{name}:predict`` with ``{"instances": [...]}``.

The answer is ``{"predictions": [...]}``, one label (or value) per row, as KServe's
scikit-learn server answers. ``"parameters": {"probabilities": true}`` adds
``"probabilities": [[p_class0, p_class1, ...], ...]`` in the order of ``classes``.
Every response also carries ``"id"``, the handle for feedback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from perennial_runtime.serve.validation import Decoder, Rows, bad_request, unprocessable


@dataclass(frozen=True)
class V1Request:
    rows: Rows
    probabilities: bool


def parse(doc: Any, decoder: Decoder, *, classification: bool) -> V1Request:
    if not isinstance(doc, dict):
        raise bad_request('the body must be a JSON object like {"instances": [...]}')
    if "instances" not in doc:
        keys = ", ".join(sorted(doc)[:5]) or "none"
        raise bad_request(f'the body needs "instances" (a list of rows); it has: {keys}')
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise bad_request('"parameters" must be an object')
    want = parameters.get("probabilities", False)
    if not isinstance(want, bool):
        raise bad_request('"parameters.probabilities" must be true or false')
    if want and not classification:
        raise unprocessable("probabilities are only available for classification models")
    return V1Request(decoder.from_table(doc["instances"], "instances"), want)


def render(labels: list[Any], probabilities: np.ndarray | None, request_id: str) -> bytes:
    body: dict[str, Any] = {"predictions": labels, "id": request_id}
    if probabilities is not None:
        body["probabilities"] = probabilities.tolist()
    return orjson.dumps(body)
