"""Open Inference Protocol (V2): tensor inputs by feature name or one 2-D input.

Outputs: ``label`` (alias ``predict``) by default; ask for ``probabilities`` (alias
``predict_proba``) in ``"outputs": [{"name": "probabilities"}]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from perennial_runtime.serve.validation import Decoder, Rows, bad_request, unprocessable

DATATYPES = frozenset(
    "BOOL UINT8 UINT16 UINT32 UINT64 INT8 INT16 INT32 INT64 FP16 FP32 FP64 BYTES".split()
)
MAX_ID_CHARS = 256  # the id is echoed in the answer and logged: keep it an id, not a payload
OUTPUT_ALIASES = {
    "label": "label",
    "predict": "label",
    "probabilities": "probabilities",
    "predict_proba": "probabilities",
}


@dataclass(frozen=True)
class V2Request:
    rows: Rows
    outputs: tuple[str, ...]  # canonical names, in the order asked
    request_id: str | None


def parse(doc: Any, decoder: Decoder, *, classification: bool) -> V2Request:
    if not isinstance(doc, dict):
        raise bad_request('the body must be a JSON object with "inputs"')
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request('"inputs" must be a non-empty list of tensors')
    tensors = [_tensor(item, i) for i, item in enumerate(inputs)]
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad_request('"id" must be a string')
    if request_id is not None and len(request_id) > MAX_ID_CHARS:
        raise bad_request(f'"id" is longer than {MAX_ID_CHARS} characters')
    return V2Request(
        _rows(tensors, decoder), _outputs(doc.get("outputs"), classification), request_id
    )


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]
    datatype: str
    data: list[Any]


def _tensor(item: Any, i: int) -> _Tensor:
    where = f"inputs[{i}]"
    if not isinstance(item, dict):
        raise bad_request(f"{where} must be an object with name, shape, datatype and data")
    for key in ("name", "shape", "datatype", "data"):
        if key not in item:
            raise bad_request(f"{where} is missing {key!r}")
    name, shape, datatype, data = item["name"], item["shape"], item["datatype"], item["data"]
    if not isinstance(name, str):
        raise bad_request(f"{where}.name must be a string")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise bad_request(f"{where} ({name}): shape must be a list of non-negative integers")
    if datatype not in DATATYPES:
        raise bad_request(f"{where} ({name}): unknown datatype {str(datatype)[:20]!r}")
    if not isinstance(data, list):
        raise bad_request(f"{where} ({name}): data must be a list")
    flat = _flatten(data) if data and isinstance(data[0], list) else data
    if math.prod(shape) != len(flat):
        raise bad_request(
            f"{where} ({name}): shape {shape} needs {math.prod(shape)} values, data has {len(flat)}"
        )
    return _Tensor(name, tuple(shape), datatype, flat)


def _flatten(data: list[Any]) -> list[Any]:
    """Row-major flattening without recursion (a client controls the nesting depth)."""
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def _rows(tensors: list[_Tensor], decoder: Decoder) -> Rows:
    names = decoder.names
    if len(tensors) == 1 and (len(tensors[0].shape) == 2 or tensors[0].name not in names):
        return _table(tensors[0], decoder)
    by_name: dict[str, _Tensor] = {}
    for tensor in tensors:
        if tensor.name not in names:
            raise unprocessable(
                f"unknown input {tensor.name!r}; the model's features are "
                f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
            )
        by_name[tensor.name] = tensor
    missing = [n for n in names if n not in by_name]
    if missing:
        raise unprocessable(f"input for feature {missing[0]!r} is missing")
    counts = {t.shape[0] if t.shape else 0 for t in tensors}
    if len(counts) != 1 or any(
        len(t.shape) not in (1, 2) or math.prod(t.shape[1:]) != 1 for t in tensors
    ):
        raise bad_request("per-feature inputs must all have shape [n] or [n, 1] with the same n")
    columns = []
    for feature, name in zip(decoder.features, names, strict=True):
        tensor = by_name[name]
        _check_datatype(tensor, feature.numeric)
        columns.append(tensor.data)
    return decoder.from_columns(columns, "inputs")


def _table(tensor: _Tensor, decoder: Decoder) -> Rows:
    width = len(decoder.names)
    if len(tensor.shape) != 2 or tensor.shape[1] != width:
        raise unprocessable(
            f"input {tensor.name!r} has shape {list(tensor.shape)}; a single input must be "
            f"[n, {width}] (one column per feature) or name one feature"
        )
    if decoder.all_numeric:
        _check_datatype(tensor, True)
    data, n = tensor.data, tensor.shape[0]
    if n == 0:
        raise bad_request(f"input {tensor.name!r} holds no rows")
    return decoder.from_table([data[i * width : (i + 1) * width] for i in range(n)], "inputs[0]")


def _check_datatype(tensor: _Tensor, numeric: bool) -> None:
    if numeric and tensor.datatype == "BYTES":
        raise unprocessable(f"input {tensor.name!r} is numeric; BYTES is not accepted")
    if not numeric and tensor.datatype != "BYTES":
        raise unprocessable(f"input {tensor.name!r} is categorical; send it as BYTES")


def _outputs(raw: Any, classification: bool) -> tuple[str, ...]:
    if raw is None:
        return ("label",)
    if not isinstance(raw, list) or not all(isinstance(o, dict) and "name" in o for o in raw):
        raise bad_request('"outputs" must be a list of objects with a "name"')
    names = []
    for item in raw:
        canonical = OUTPUT_ALIASES.get(item["name"])
        if canonical is None or (canonical == "probabilities" and not classification):
            valid = "label, probabilities" if classification else "label"
            raise unprocessable(f"unknown output {str(item['name'])[:40]!r}; available: {valid}")
        names.append(canonical)
    return tuple(names) or ("label",)


def render(
    head: dict[str, Any],
    request_id: str,
    prediction_id: str,
    outputs: tuple[str, ...],
    labels: list[Any],
    label_type: str,
    probabilities: np.ndarray | None,
) -> bytes:
    tensors = []
    for name in outputs:
        if name == "label":
            tensors.append(
                {"name": "label", "datatype": label_type, "shape": [len(labels)], "data": labels}
            )
        elif probabilities is not None:
            tensors.append(
                {
                    "name": "probabilities",
                    "datatype": "FP64",
                    "shape": list(probabilities.shape),
                    "data": probabilities.ravel().tolist(),
                }
            )
    return orjson.dumps(
        {
            **head,
            "id": request_id,
            "parameters": {"prediction_id": prediction_id},  # the id feedback refers to
            "outputs": tensors,
        }
    )
