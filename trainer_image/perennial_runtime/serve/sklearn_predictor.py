"""Predict with a scikit-learn model (skops, or joblib when allowed): one pass per batch.

perennial-train writes ``Pipeline(preprocess=ColumnTransformer, model=estimator)``, or a
soft vote / weighted average of such pipelines. Served as is, each batch becomes a
DataFrame and every member's ColumnTransformer selects its columns from it again (pandas
indexing and a joblib dispatch per member and transformer). At load time such a model is
compiled into a plan instead: each distinct preprocessing (a vote's members share theirs:
the same imputer, the same scaler) runs once per batch on the numpy block the request
decoder already built, each member's estimator runs once on it, and the vote is the same
weighted average scikit-learn computes, so answers are bit-identical to ``predict`` and
``predict_proba``. Any other model (recommendation, text, a hand-made one) is served
through its own methods on a DataFrame.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

from perennial_runtime.serve.onnx_predictor import missing_as_empty
from perennial_runtime.serve.signature import Signature


class SklearnPredictor:
    float32 = False

    def __init__(self, pipeline: Any, signature: Signature) -> None:
        self._pipeline = pipeline
        self._signature = signature
        self._by_name = hasattr(pipeline, "feature_names_in_")
        self._numeric = [f.name for f in signature.numeric_features]
        self._categorical = [f.name for f in signature.categorical_features]
        self._labels_follow_proba = labels_follow_proba(pipeline)
        # Worker processes already use every CPU; nested joblib threads only contend.
        params = pipeline.get_params() if hasattr(pipeline, "get_params") else {}
        jobs = {key: 1 for key in params if key == "n_jobs" or key.endswith("__n_jobs")}
        if jobs:
            pipeline.set_params(**jobs)
        self.plan = compile_plan(pipeline, self._numeric, self._categorical)

    def predict(
        self, numeric: np.ndarray, categorical: np.ndarray | None, proba: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        classification = self._signature.classification
        if self.plan is not None:
            cat = None if categorical is None else missing_as_empty(categorical)
            return self.plan.predict(numeric, cat, proba and classification)
        frame = self._frame(numeric, categorical)
        probabilities = None
        if proba and classification and hasattr(self._pipeline, "predict_proba"):
            probabilities = np.asarray(self._pipeline.predict_proba(frame), dtype=np.float64)
        if probabilities is not None and self._labels_follow_proba:
            labels = np.asarray(self._pipeline.classes_)[np.argmax(probabilities, axis=1)]
        else:
            labels = np.asarray(self._pipeline.predict(frame))
        return labels.reshape(-1), probabilities

    def _frame(self, numeric: np.ndarray, categorical: np.ndarray | None) -> Any:
        if not self._by_name and categorical is None:
            return numeric
        import pandas as pd

        columns: dict[str, Any] = {n: numeric[:, i] for i, n in enumerate(self._numeric)}
        for i, name in enumerate(self._categorical):
            assert categorical is not None
            columns[name] = missing_as_empty(categorical[:, i])
        return pd.DataFrame(columns, columns=list(self._signature.names))


def labels_follow_proba(model: Any) -> bool:
    """Is ``model.predict`` by scikit-learn's own definition the class of highest
    ``predict_proba``? Then one call gives both, and an ensemble served from skops runs its
    members once per request instead of twice."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier, VotingClassifier
    from sklearn.pipeline import Pipeline

    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if isinstance(final, VotingClassifier):
        return bool(final.voting == "soft")
    return isinstance(final, CalibratedClassifierCV | RandomForestClassifier)


@dataclass(frozen=True)
class _Part:
    transformer: Any
    numeric: bool  # reads the numeric block, else the categorical one
    columns: np.ndarray  # indices into that block


@dataclass(frozen=True)
class _Member:
    prep: int  # index into Plan.preps
    estimator: Any
    proba_is_label: bool  # predict() is the argmax of predict_proba()


@dataclass(frozen=True)
class Plan:
    preps: list[list[_Part]]
    members: list[_Member]
    weights: list[float] | None  # np.average weights of a vote; None: one member or equal
    vote: str  # single | soft | average
    classes: np.ndarray | None

    def predict(
        self, numeric: np.ndarray, categorical: np.ndarray | None, proba: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        blocks = [_transform(parts, numeric, categorical) for parts in self.preps]
        if self.vote == "average":  # VotingRegressor.predict
            values = np.asarray([m.estimator.predict(blocks[m.prep]) for m in self.members]).T
            return np.average(values, axis=1, weights=self.weights), None
        if self.vote == "soft":  # VotingClassifier(voting="soft")
            probas = [m.estimator.predict_proba(blocks[m.prep]) for m in self.members]
            average = np.average(np.asarray(probas), axis=0, weights=self.weights)
            assert self.classes is not None
            labels = self.classes[np.argmax(average, axis=1)]
            return labels, (np.asarray(average, dtype=np.float64) if proba else None)
        member = self.members[0]
        X = blocks[member.prep]
        if proba:
            probabilities = np.asarray(member.estimator.predict_proba(X), dtype=np.float64)
            if member.proba_is_label:
                assert self.classes is not None
                return self.classes[np.argmax(probabilities, axis=1)], probabilities
            return np.asarray(member.estimator.predict(X)).reshape(-1), probabilities
        return np.asarray(member.estimator.predict(X)).reshape(-1), None


def compile_plan(model: Any, numeric: list[str], categorical: list[str]) -> Plan | None:
    """The plan for a model built by perennial_runtime.train.pipelines, else None."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from sklearn.pipeline import Pipeline

    if isinstance(model, VotingClassifier) and model.voting == "soft":
        vote, pipelines = "soft", list(model.estimators_)
    elif isinstance(model, VotingRegressor):
        vote, pipelines = "average", list(model.estimators_)
    elif isinstance(model, Pipeline):
        vote, pipelines = "single", [model]
    else:
        return None
    preps: list[list[_Part]] = []
    keys: list[bytes] = []
    members = []
    for pipeline in pipelines:
        split = _split(pipeline, numeric, categorical)
        if split is None:
            return None
        parts, estimator, key = split
        if key not in keys:
            keys.append(key)
            preps.append(parts)
        members.append(_Member(keys.index(key), estimator, labels_follow_proba(estimator)))
    weights = getattr(model, "_weights_not_none", None) if vote != "single" else None
    classes = np.asarray(model.classes_) if hasattr(model, "classes_") else None
    return Plan(preps, members, weights, vote, classes)


def _split(
    pipeline: Any, numeric: list[str], categorical: list[str]
) -> tuple[list[_Part], Any, bytes] | None:
    """(preprocessing parts, final estimator, a key equal for equal preprocessing)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    pre, estimator = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(pre, ColumnTransformer) or getattr(pre, "transformer_weights", None):
        return None
    parts = []
    for _, transformer, columns in pre.transformers_:
        if isinstance(transformer, str):  # "drop" (the remainder); "passthrough" unsupported
            if transformer == "drop":
                continue
            return None
        if not isinstance(columns, list) or not columns:
            return None  # a scalar column (text) or an empty selection
        if getattr(transformer, "sparse_output", False):
            return None  # ColumnTransformer's own sparse/dense choice would apply
        if all(c in numeric for c in columns):
            parts.append(_Part(transformer, True, np.array([numeric.index(c) for c in columns])))
        elif all(c in categorical for c in columns):
            indices = np.array([categorical.index(c) for c in columns])
            parts.append(_Part(transformer, False, indices))
        else:
            return None
    for part in parts:
        _forget_feature_names(part.transformer)
    return parts, estimator, pickle.dumps(pre.transformers_)


def _forget_feature_names(transformer: Any) -> None:
    """The plan feeds numpy blocks, so the names seen in fit would only warn."""
    for step in getattr(transformer, "steps", None) or [(None, transformer)]:
        if hasattr(step[1], "feature_names_in_"):
            del step[1].feature_names_in_
    if hasattr(transformer, "feature_names_in_"):
        del transformer.feature_names_in_


def _transform(parts: list[_Part], numeric: np.ndarray, categorical: np.ndarray | None) -> Any:
    outputs = []
    for part in parts:
        block = numeric if part.numeric else categorical
        assert block is not None
        outputs.append(part.transformer.transform(block[:, part.columns]))
    # C order, as ColumnTransformer returns it: BLAS sums in a layout's order, and a
    # different layout changes the last bit of a linear model's answer.
    return np.ascontiguousarray(np.hstack(outputs))
