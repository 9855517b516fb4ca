"""Model directories in the layout of ``perennial_runtime.contract``, as perennial-train
writes them: per-column ONNX inputs (double, else float), zipmap off, missing categories
as "", decile profile, result.json listing every artifact's sha256 (written last)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import skops.io as sio
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


@dataclass
class ModelCase:
    path: Path
    pipeline: Any
    X_test: pd.DataFrame
    y_test: np.ndarray
    numeric: list[str]
    categorical: list[str]

    def onnx_session(self) -> ort.InferenceSession:
        return ort.InferenceSession(
            str(self.path / "model.onnx"), providers=["CPUExecutionProvider"]
        )

    def onnx_predict(self, X: pd.DataFrame) -> list[np.ndarray]:
        session = self.onnx_session()
        feeds = {}
        for item in session.get_inputs():
            dtype = {"tensor(double)": np.float64, "tensor(float)": np.float32}.get(
                item.type, object
            )
            feeds[item.name] = X[[item.name]].to_numpy(dtype=dtype)
        return session.run(None, feeds)


def _breast_cancer() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return frame, data.target.to_numpy()


def _mixed() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.normal(50, 15, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    score = (frame["income"] > 50).astype(int) + (frame["plan"] == "pro").astype(int)
    return frame, np.where(score >= 1, "stay", "churn")


def build(kind: str, root: Path, *, onnx: bool = True, trees: int = 20) -> ModelCase:
    """kind: logreg | forest (breast_cancer), mixed (categorical + string classes),
    regression (diabetes)."""
    if kind == "regression":
        data = load_diabetes(as_frame=True)
        X, y = data.frame.drop(columns="target"), data.target.to_numpy()
    else:
        X, y = _mixed() if kind == "mixed" else _breast_cancer()
    numeric = [c for c in X.columns if X[c].dtype.kind == "f"]
    categorical = [c for c in X.columns if c not in numeric]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    pipeline = _pipeline(kind, numeric, categorical, trees).fit(X_train, y_train)
    path = root / kind
    path.mkdir(parents=True, exist_ok=True)
    sio.dump(pipeline, path / "model.skops")
    names = ["model.skops"]
    onnx_names: dict[str, list[str]] | None = None
    if onnx:
        onnx_names = _write_onnx(pipeline, numeric, categorical, X_test, path)
        names.append("model.onnx")
    task = "regression" if kind == "regression" else "classification"
    _write(
        path / "signature.json",
        _signature(task, pipeline, numeric, categorical, X_train, onnx_names),
    )
    _write(path / "profile.json", _profile(X_train, numeric, categorical, pipeline))
    names += ["signature.json", "profile.json"]
    artifacts = {n: {"sha256": _sha(path / n), "bytes": (path / n).stat().st_size} for n in names}
    _write(
        path / "result.json",
        {
            "model": f"bc-{kind}",
            "version": 3,
            "task": task,
            "algorithm": type(pipeline[-1]).__name__,
            "metrics": {"score": float(pipeline.score(X_test, y_test))},
            "dataset": {"uri": "builtin://sklearn", "rows": len(X)},
            "artifacts": artifacts,
        },
    )
    return ModelCase(path, pipeline, X_test, y_test, numeric, categorical)


def _pipeline(kind: str, numeric: list[str], categorical: list[str], trees: int) -> Pipeline:
    if kind == "mixed":
        pre = ColumnTransformer(
            [
                ("num", StandardScaler(), numeric),
                ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        )
        return Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=500))])
    if kind == "regression":
        return Pipeline([("scale", StandardScaler()), ("model", Ridge())])
    if kind == "forest":
        return Pipeline(
            [("scale", StandardScaler()), ("model", RandomForestClassifier(trees, random_state=0))]
        )
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=2000))])


def _write_onnx(pipeline, numeric, categorical, X_check, path) -> dict[str, list[str]]:
    options = {id(pipeline): {"zipmap": False}} if hasattr(pipeline, "predict_proba") else None
    for number in (DoubleTensorType, FloatTensorType):
        types = [(n, number([None, 1])) for n in numeric]
        types += [(n, StringTensorType([None, 1])) for n in categorical]
        try:
            model = convert_sklearn(pipeline, initial_types=types, options=options, target_opset=17)
            (path / "model.onnx").write_bytes(model.SerializeToString())
            case = ModelCase(path, pipeline, X_check, np.empty(0), numeric, categorical)
            first = np.ravel(case.onnx_predict(X_check)[0])
        except Exception:  # noqa: BLE001 - skl2onnx/onnxruntime: try the next precision
            continue
        expected = pipeline.predict(X_check)
        same = (
            np.array_equal(first, expected)
            if first.dtype.kind != "f"
            else np.allclose(first, expected)
        )
        if same:
            return {
                "input_names": [i.name for i in model.graph.input],
                "output_names": [o.name for o in model.graph.output],
            }
    raise RuntimeError("cannot convert the test pipeline to ONNX")


def _signature(task, pipeline, numeric, categorical, X_train, onnx_names) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = [{"name": n, "datatype": "FP64"} for n in numeric]
    inputs += [
        {"name": n, "datatype": "BYTES", "categories": sorted(set(X_train[n]))} for n in categorical
    ]
    signature: dict[str, Any] = {"task": task, "inputs": inputs}
    if task == "classification":
        classes = [c.item() if isinstance(c, np.generic) else c for c in pipeline.classes_]
        kind = "BYTES" if isinstance(classes[0], str) else "INT64"
        signature["classes"] = classes
        signature["outputs"] = [
            {"name": "label", "datatype": kind},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(classes)]},
        ]
    else:
        signature["outputs"] = [{"name": "prediction", "datatype": "FP64"}]
    if onnx_names:
        signature["onnx"] = onnx_names
    return signature


def _profile(X_train, numeric, categorical, pipeline) -> dict[str, Any]:
    features: list[dict[str, Any]] = []
    for name in numeric:
        values = X_train[name].to_numpy(dtype=float)
        edges = [float(e) for e in np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1]))]
        counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
        features.append(
            {
                "name": name,
                "kind": "numeric",
                "edges": edges,
                "proportions": (counts / counts.sum()).tolist(),
                "missing": 0.0,
            }
        )
    for name in categorical:
        cats = sorted(set(X_train[name]))
        counts = [int((X_train[name] == c).sum()) for c in cats] + [0]
        features.append(
            {
                "name": name,
                "kind": "categorical",
                "categories": cats,
                "proportions": [c / sum(counts) for c in counts],
                "missing": 0.0,
            }
        )
    predicted = pipeline.predict(X_train)
    if hasattr(pipeline, "classes_"):
        classes = [c.item() if isinstance(c, np.generic) else c for c in pipeline.classes_]
        share = [float(np.mean(predicted == c)) for c in pipeline.classes_]
        prediction = {"kind": "classes", "classes": classes, "proportions": share}
    else:
        edges = [float(e) for e in np.quantile(predicted, [0.25, 0.5, 0.75])]
        prediction = {"kind": "numeric", "edges": edges, "proportions": [0.25] * 4}
    return {"version": 1, "rows": len(X_train), "features": features, "prediction": prediction}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
