"""Turn decoded JSON into a feature batch, or say precisely what is wrong with it.

400: the request does not follow the protocol (not JSON, wrong structure, shape that
does not match the data). 422: a well-formed request that does not fit the model's
signature (unknown or missing feature, wrong type, non-finite or out-of-range number).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perennial_runtime.serve.signature import Feature, Signature

FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT64_MAX = float(np.finfo(np.float64).max)  # so that inf is caught too


class RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> RequestError:
    return RequestError(400, message)


def unprocessable(message: str) -> RequestError:
    return RequestError(422, message)


@dataclass(frozen=True)
class Rows:
    """A batch in signature order: numeric features as float64 (NaN = missing),
    categorical features as an object array of str or None."""

    numeric: np.ndarray
    categorical: np.ndarray | None

    @property
    def count(self) -> int:
        return int(self.numeric.shape[0])


def _describe(value: Any) -> str:
    kinds = {bool: "boolean", str: "string", list: "list", dict: "object", int: "number"}
    return kinds.get(type(value), type(value).__name__)


class Decoder:
    def __init__(self, signature: Signature, *, float32: bool = False) -> None:
        self._features = signature.features
        self._names = signature.names
        self._index = {name: i for i, name in enumerate(self._names)}
        self._numeric = [f for f in self._features if f.numeric]
        self._categorical = [f for f in self._features if not f.numeric]
        self._all_numeric = not self._categorical
        # Models converted to float32 ONNX would silently turn 1e300 into inf.
        self._limit = FLOAT32_MAX if float32 else FLOAT64_MAX

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def features(self) -> tuple[Feature, ...]:
        return self._features

    @property
    def all_numeric(self) -> bool:
        return self._all_numeric

    def from_table(self, rows: Any, where: str) -> Rows:
        """Rows as lists in signature order, or as objects keyed by feature name."""
        if not isinstance(rows, list) or not rows:
            raise bad_request(f"{where} must be a non-empty list of rows")
        width = len(self._names)
        if self._all_numeric and all(type(r) is list for r in rows):
            for i, row in enumerate(rows):
                if len(row) != width:
                    raise unprocessable(self._width_message(f"{where}[{i}]", len(row)))
                for j, value in enumerate(row):
                    kind = type(value)
                    if kind is not float and kind is not int and value is not None:
                        self._check_value(self._features[j], value, f"{where}[{i}]")
            return self._finish(np.array(rows, dtype=np.float64), None, where)
        columns = [self._row_values(row, i, where, width) for i, row in enumerate(rows)]
        return self.from_columns(list(zip(*columns, strict=True)), where)

    def from_columns(self, columns: Sequence[Sequence[Any]], where: str) -> Rows:
        """One sequence of values per feature, in signature order, all the same length."""
        numeric: list[Sequence[Any]] = []
        categorical: list[Sequence[Any]] = []
        for feature, column in zip(self._features, columns, strict=True):
            for value in column:
                if not self._acceptable(feature, value):
                    self._check_value(feature, value, where)
            (numeric if feature.numeric else categorical).append(column)
        n = len(columns[0]) if columns else 0
        if n == 0:
            raise bad_request(f"{where} holds no rows")
        num = np.array(numeric, dtype=np.float64).T if numeric else np.empty((n, 0))
        cat = np.array(categorical, dtype=np.object_).T if categorical else None
        return self._finish(num.reshape(n, len(numeric)), cat, where)

    def _row_values(self, row: Any, i: int, where: str, width: int) -> Sequence[Any]:
        if isinstance(row, list):
            if len(row) != width:
                raise unprocessable(self._width_message(f"{where}[{i}]", len(row)))
            return row
        if isinstance(row, dict):
            unknown = [k for k in row if k not in self._index]
            if unknown:
                raise unprocessable(
                    f"{where}[{i}] has unknown feature {unknown[0]!r}; "
                    f"the model's features are {self._short_names()}"
                )
            missing = [n for n in self._names if n not in row]
            if missing:
                raise unprocessable(
                    f"{where}[{i}] is missing feature {missing[0]!r} "
                    "(send null for a missing value)"
                )
            return [row[n] for n in self._names]
        raise bad_request(
            f"{where}[{i}] must be a list of feature values or an object keyed by feature "
            f"name, not {_describe(row)}"
        )

    @staticmethod
    def _acceptable(feature: Feature, value: Any) -> bool:
        kind = type(value)
        if value is None:
            return True
        if feature.numeric:
            return kind is float or kind is int
        return kind is str

    def _check_value(self, feature: Feature, value: Any, where: str) -> None:
        if self._acceptable(feature, value):
            return
        expected = "a number" if feature.numeric else "a string category"
        raise unprocessable(
            f"{where}: feature {feature.name!r} expects {expected} or null, "
            f"got {_describe(value)} {str(value)[:40]!r}"
        )

    def _finish(self, numeric: np.ndarray, categorical: np.ndarray | None, where: str) -> Rows:
        if numeric.size:
            magnitude = np.abs(numeric)
            if (magnitude > self._limit).any():
                row, col = np.argwhere(magnitude > self._limit)[0]
                name = self._numeric[col].name
                raise unprocessable(
                    f"{where}: feature {name!r} has a non-finite or out-of-range value "
                    f"{numeric[row, col]!r} in row {row}"
                )
            for col, feature in enumerate(self._numeric):
                if feature.datatype == "INT64":
                    self._check_integers(numeric[:, col], feature, where)
        return Rows(numeric, categorical)

    @staticmethod
    def _check_integers(column: np.ndarray, feature: Feature, where: str) -> None:
        present = column[~np.isnan(column)]
        if (present != np.round(present)).any():
            raise unprocessable(f"{where}: feature {feature.name!r} expects integers (INT64)")

    def _width_message(self, where: str, got: int) -> str:
        return (
            f"{where} has {got} values; the model expects {len(self._names)} features "
            f"({self._short_names()})"
        )

    def _short_names(self) -> str:
        names = ", ".join(self._names[:8])
        return names + (", ..." if len(self._names) > 8 else "")
