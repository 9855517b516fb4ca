"""signature.json and profile.json, parsed once into small immutable types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NUMERIC_DATATYPES = frozenset({"FP64", "INT64"})


class ContractError(Exception):
    """signature.json or profile.json does not follow the model directory contract."""


@dataclass(frozen=True)
class Feature:
    name: str
    datatype: str  # FP64 | INT64 | BYTES
    categories: tuple[str, ...] | None = None

    @property
    def numeric(self) -> bool:
        return self.datatype in NUMERIC_DATATYPES


@dataclass(frozen=True)
class Signature:
    task: str
    features: tuple[Feature, ...]
    classes: tuple[Any, ...] | None
    onnx_inputs: tuple[str, ...]
    onnx_outputs: tuple[str, ...]
    label_datatype: str = "FP64"  # of the first output: INT64 | FP64 | BYTES

    @property
    def classification(self) -> bool:
        return self.classes is not None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def numeric_features(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.numeric)

    @property
    def categorical_features(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if not f.numeric)


@dataclass(frozen=True)
class NumericBins:
    edges: tuple[float, ...]


@dataclass(frozen=True)
class CategoricalBins:
    categories: tuple[str, ...]


Bins = NumericBins | CategoricalBins


@dataclass(frozen=True)
class Profile:
    features: dict[str, Bins]
    prediction: Bins | None


def parse_signature(raw: dict[str, Any]) -> Signature:
    try:
        features = tuple(_feature(item) for item in raw["inputs"])
        classes = raw.get("classes")
        onnx = raw.get("onnx") or {}
        outputs = raw.get("outputs") or [{}]
        return Signature(
            label_datatype=str(outputs[0].get("datatype", _label_datatype(classes))),
            task=str(raw["task"]),
            features=features,
            classes=tuple(classes) if classes is not None else None,
            onnx_inputs=tuple(onnx.get("input_names", ())),
            onnx_outputs=tuple(onnx.get("output_names", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractError(f"signature.json is malformed: {exc!r}") from exc


def _label_datatype(classes: list[Any] | None) -> str:
    if classes is None:
        return "FP64"
    return "BYTES" if any(isinstance(c, str) for c in classes) else "INT64"


def _feature(item: dict[str, Any]) -> Feature:
    datatype = str(item["datatype"])
    if datatype not in {"FP64", "INT64", "BYTES"}:
        raise ValueError(f"feature {item['name']!r} has unsupported datatype {datatype}")
    categories = item.get("categories")
    return Feature(
        name=str(item["name"]),
        datatype=datatype,
        categories=tuple(str(c) for c in categories) if categories is not None else None,
    )


def parse_profile(raw: dict[str, Any] | None) -> Profile:
    """A missing profile is allowed: the server then exports no drift counters."""
    if raw is None:
        return Profile(features={}, prediction=None)
    try:
        features = {str(item["name"]): _bins(item) for item in raw.get("features", [])}
        prediction = raw.get("prediction")
        return Profile(features=features, prediction=_bins(prediction) if prediction else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractError(f"profile.json is malformed: {exc!r}") from exc


def _bins(item: dict[str, Any]) -> Bins:
    if item["kind"] == "numeric":
        edges = tuple(float(e) for e in item["edges"])
        if list(edges) != sorted(edges):
            raise ValueError(f"bin edges of {item.get('name')!r} are not sorted")
        return NumericBins(edges=edges)
    if item["kind"] in ("categorical", "classes"):
        values = item["categories"] if "categories" in item else item["classes"]
        return CategoricalBins(categories=tuple(str(v) for v in values))
    raise ValueError(f"unknown profile kind {item['kind']!r}")
