"""Which columns feed the model, how each is typed, and the train/test split.

Numeric columns are float64 (booleans become 0/1, missing stays NaN for the imputer);
categorical columns are strings with missing as "" so ONNX string inputs can carry them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS
from perennial_runtime.train.datasets import Loaded
from perennial_runtime.train.errors import DataInvalid, Failure
from perennial_runtime.train.spec import TrainingJob

MISSING_CATEGORY = ""


@dataclass(frozen=True)
class Columns:
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    text: str | None = None
    target: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        text = (self.text,) if self.text else ()
        return self.numeric + self.categorical + text


@dataclass(frozen=True)
class Split:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series | None
    y_test: pd.Series | None


def target_name(job: TrainingJob, loaded: Loaded) -> str | None:
    if job.task == "recommendation":
        return job.dataset.target or "rating"
    return job.dataset.target or (loaded.default_target if job.task != "clustering" else None)


def select_columns(job: TrainingJob, loaded: Loaded) -> Columns:
    """Feature columns in a stable order, each with its kind; absent columns are failures."""
    target = target_name(job, loaded)
    ds = job.dataset
    if job.task == "text-classification":
        return _present(loaded, Columns(text=ds.text_column, target=target))
    if job.task == "recommendation":
        return _present(
            loaded, Columns(categorical=(ds.user_column, ds.item_column), target=target)
        )
    names = ds.features or loaded.default_features or tuple(loaded.frame.columns)
    names = tuple(str(n) for n in names if n != target)
    _present(loaded, Columns(categorical=names))
    forced = {n for n, rule in job.validation.schema.items() if rule.type in ("string", "category")}
    numeric = tuple(
        n for n in names if n not in forced and pd.api.types.is_numeric_dtype(loaded.frame[n])
    )
    categorical = tuple(n for n in names if n not in numeric)
    return Columns(numeric=numeric, categorical=categorical, target=target)


def _present(loaded: Loaded, columns: Columns) -> Columns:
    missing = [n for n in columns.features if n not in loaded.frame.columns]
    if missing:
        raise DataInvalid(
            f"feature column(s) {', '.join(missing)} are not in the dataset",
            [Failure("feature_column_absent", n, "absent", "present") for n in missing],
        )
    return columns


def prepare(frame: pd.DataFrame, columns: Columns) -> pd.DataFrame:
    """The model's input frame: features only, in order, with the dtypes described above."""
    out = pd.DataFrame(index=frame.index)
    for name in columns.numeric:
        out[name] = frame[name].astype("float64")
    for name in columns.categorical:
        out[name] = _strings(frame[name])
    if columns.text:
        out[columns.text] = _strings(frame[columns.text])
    return out


def _strings(series: pd.Series) -> pd.Series:
    values = [MISSING_CATEGORY if _missing(v) else str(v) for v in series.tolist()]
    return pd.Series(np.array(values, dtype=object), index=series.index, dtype=object)


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def split(job: TrainingJob, frame: pd.DataFrame, columns: Columns) -> Split:
    X = prepare(frame, columns)
    y = frame[columns.target] if columns.target else None
    if y is not None and job.task == "anomaly-detection":
        y = y.astype(bool).astype(int)
    stratify = None
    if y is not None and job.task in CLASSIFICATION_TASKS and y.value_counts().min() >= 2:
        stratify = y
    parts = train_test_split(
        X,
        *([] if y is None else [y]),
        test_size=job.dataset.test_fraction,
        random_state=job.dataset.seed,
        stratify=stratify,
    )
    if y is None:
        return Split(parts[0], parts[1], None, None)
    return Split(parts[0], parts[1], parts[2], parts[3])
