"""Built-in algorithms: task → names, estimator factories, hyperparameter checks, search spaces.

``ALGORITHMS`` is public: the operator's CRD tests compare their enum with it. ``lightgbm``
and ``xgboost`` come with the runtime extra; where one is not installed, AutoML leaves it
out and naming it is refused with a message that says so (``available``). XGBoost fits on
the GPU when the pod was given one and its build has CUDA (xgboost_models.device).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cluster import KMeans
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import MultinomialNB
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC, SVR

from perennial_runtime.train.errors import BadSpec
from perennial_runtime.train.recommend import MatrixFactorization

try:  # the runtime extra installs it; imported here so the AutoML worker's thread limit
    # (threadpoolctl, applied after import) also covers LightGBM's OpenMP runtime
    from lightgbm import LGBMClassifier as LGBMClassifier
    from lightgbm import LGBMRegressor as LGBMRegressor
except ImportError:  # pragma: no cover - a runtime without the extra
    LGBMClassifier = LGBMRegressor = None  # type: ignore[assignment,misc]
try:  # the runtime extra installs xgboost-cpu; the GPU image the CUDA build
    from perennial_runtime.train.xgboost_models import (
        LabelledXGBClassifier as LabelledXGBClassifier,
    )
    from perennial_runtime.train.xgboost_models import XGBRegressor as XGBRegressor
    from perennial_runtime.train.xgboost_models import device as xgboost_device
except ImportError:  # pragma: no cover - a runtime without the extra
    LabelledXGBClassifier = XGBRegressor = None  # type: ignore[assignment,misc]

ALGORITHMS: dict[str, tuple[str, ...]] = {
    # Cheapest first: AutoML tries the families in this order.
    "classification": (
        "logistic_regression",
        "svm",
        "lightgbm",
        "xgboost",
        "random_forest",
        "hist_gradient_boosting",
    ),
    "regression": (
        "ridge",
        "svr",
        "lightgbm",
        "xgboost",
        "random_forest",
        "gradient_boosting",
        "hist_gradient_boosting",
    ),
    "text-classification": ("tfidf_logistic_regression", "tfidf_naive_bayes"),
    "recommendation": ("matrix_factorization",),
    "image-classification": ("logistic_regression", "svm", "random_forest", "mlp"),
    "clustering": ("kmeans",),
    "anomaly-detection": ("isolation_forest",),
}
CLASSIFICATION_TASKS = frozenset({"classification", "text-classification", "image-classification"})
SUPERVISED_TASKS = CLASSIFICATION_TASKS | {"regression", "recommendation"}

# Metric names per task; the first is the AutoML default (binary classification: roc_auc).
METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "roc_auc", "f1_macro", "log_loss"),
    "regression": ("r2", "rmse", "mae"),
    "recommendation": ("rmse", "mae"),
    "clustering": ("silhouette",),
    "anomaly-detection": ("roc_auc",),
}
LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss"})

# (estimator class, defaults the platform sets) per (kind, name). kind: classifier/regressor.
Factory = tuple[type[BaseEstimator], dict[str, Any]]
_LIGHTGBM = {"random_state": 0, "verbose": -1}
_CLASSIFIERS: dict[str, Factory] = {
    "logistic_regression": (LogisticRegression, {"max_iter": 2000}),
    "random_forest": (RandomForestClassifier, {"random_state": 0}),
    "hist_gradient_boosting": (HistGradientBoostingClassifier, {"random_state": 0}),
    "svm": (SVC, {}),
    "mlp": (MLPClassifier, {"max_iter": 500, "random_state": 0}),
    "tfidf_logistic_regression": (LogisticRegression, {"max_iter": 2000}),
    "tfidf_naive_bayes": (MultinomialNB, {}),
}
if LGBMClassifier is not None:
    _CLASSIFIERS["lightgbm"] = (LGBMClassifier, _LIGHTGBM)
_XGBOOST: dict[str, Any] = {"random_state": 0, "tree_method": "hist"}
if LabelledXGBClassifier is not None:
    _XGBOOST["device"] = xgboost_device()  # where it will fit: this pod's GPU, if given one
    _CLASSIFIERS["xgboost"] = (LabelledXGBClassifier, _XGBOOST)
_OTHERS: dict[str, Factory] = {
    "ridge": (Ridge, {}),
    "random_forest": (RandomForestRegressor, {"random_state": 0}),
    "gradient_boosting": (GradientBoostingRegressor, {"random_state": 0}),
    "hist_gradient_boosting": (HistGradientBoostingRegressor, {"random_state": 0}),
    "svr": (SVR, {}),
    "matrix_factorization": (MatrixFactorization, {"random_state": 0}),
    "kmeans": (KMeans, {"n_init": 4, "random_state": 0}),
    "isolation_forest": (IsolationForest, {"random_state": 0}),
}
if LGBMRegressor is not None:
    _OTHERS["lightgbm"] = (LGBMRegressor, _LIGHTGBM)
if XGBRegressor is not None:
    _OTHERS["xgboost"] = (XGBRegressor, _XGBOOST)

_C = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "logistic_regression": {"C": _C},
    "tfidf_logistic_regression": {"C": _C},
    "tfidf_naive_bayes": {"alpha": [0.01, 0.03, 0.1, 0.3, 1.0]},
    "random_forest": {
        "n_estimators": [100, 200, 400],
        "max_depth": [None, 8, 16],
        "min_samples_leaf": [1, 2, 4],
        "max_features": ["sqrt", 0.5, 1.0],
    },
    "hist_gradient_boosting": {
        "learning_rate": [0.03, 0.06, 0.1, 0.2],
        "max_leaf_nodes": [15, 31, 63],
        "min_samples_leaf": [5, 20, 50],
        "l2_regularization": [0.0, 0.1, 1.0],
    },
    "lightgbm": {
        "n_estimators": [100, 200, 400],
        "learning_rate": [0.03, 0.06, 0.1, 0.2],
        "num_leaves": [7, 15, 31, 63],
        "min_child_samples": [5, 10, 20, 40],
        "colsample_bytree": [0.5, 0.8, 1.0],
        "reg_lambda": [0.0, 0.1, 1.0],
    },
    "xgboost": {
        "n_estimators": [100, 200, 400],
        "learning_rate": [0.03, 0.06, 0.1, 0.2, 0.3],
        "max_depth": [3, 4, 6, 8],
        "min_child_weight": [1, 3, 5],
        "subsample": [0.8, 1.0],
        "colsample_bytree": [0.5, 0.8, 1.0],
        "reg_lambda": [0.1, 1.0, 10.0],
    },
    "svm": {"C": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0], "gamma": ["scale", 0.001, 0.01, 0.1]},
    "svr": {"C": [0.1, 1.0, 10.0, 100.0, 300.0], "epsilon": [0.01, 0.1, 1.0]},
    "ridge": {"alpha": [0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]},
    "gradient_boosting": {
        "n_estimators": [100, 200, 400],
        "learning_rate": [0.03, 0.1, 0.2],
        "max_depth": [2, 3, 5],
        "subsample": [0.8, 1.0],
    },
    "mlp": {"hidden_layer_sizes": [[64], [128], [64, 64]], "alpha": [1e-4, 1e-3, 1e-2]},
    "matrix_factorization": {"n_factors": [5, 10, 20, 40], "reg": [0.01, 0.05, 0.1, 0.5]},
    "kmeans": {"n_clusters": [2, 3, 4, 5, 6, 7, 8, 10]},
    "isolation_forest": {},
}


def default_metric(task: str, n_classes: int) -> str:
    if task in CLASSIFICATION_TASKS:
        return "roc_auc" if n_classes == 2 else "accuracy"
    return METRICS[task][0]


def metric_names(task: str) -> tuple[str, ...]:
    return METRICS["classification" if task in CLASSIFICATION_TASKS else task]


def available(task: str, name: str) -> bool:
    """Is algorithm ``name`` installed here (every built-in but lightgbm and xgboost always
    is)?"""
    return name in (_CLASSIFIERS if task in CLASSIFICATION_TASKS else _OTHERS)


def _factory(task: str, name: str) -> Factory:
    table = _CLASSIFIERS if task in CLASSIFICATION_TASKS else _OTHERS
    if name not in table:
        raise BadSpec(
            f"algorithm {name} is not installed in this runtime; "
            "install the runtime extra (pip install 'perennial[runtime]')"
        )
    return table[name]


def check_hyperparameters(task: str, name: str, hyperparameters: dict[str, Any]) -> None:
    """Refuse names the estimator does not have and values it would reject, before any I/O."""
    cls, defaults = _factory(task, name)
    valid = sorted(cls().get_params(deep=False))
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        raise BadSpec(
            f"unknown hyperparameter(s) {', '.join(unknown)} for algorithm {name}; "
            f"valid ones are: {', '.join(valid)}"
        )
    estimator = cls(**{**defaults, **hyperparameters})
    # scikit-learn's own value checks (its estimators declare _parameter_constraints).
    has_rules = hasattr(estimator, "_parameter_constraints")
    validate: Callable[[], None] | None = getattr(estimator, "_validate_params", None)
    try:
        if validate is not None and has_rules:
            validate()
    except (ValueError, TypeError) as exc:
        raise BadSpec(f"invalid hyperparameter for algorithm {name}: {exc}") from exc


def build_estimator(task: str, name: str, params: dict[str, Any]) -> Any:
    """The final step of the pipeline for algorithm ``name`` with ``params`` applied."""
    cls, defaults = _factory(task, name)
    merged = {**defaults, **params}
    if "hidden_layer_sizes" in merged:
        merged["hidden_layer_sizes"] = tuple(merged["hidden_layer_sizes"])
    estimator = cls(**merged)
    if name == "svm":
        # SVC(probability=True) is deprecated in scikit-learn 1.9; this is its replacement.
        return CalibratedClassifierCV(estimator, ensemble=False, cv=3)
    return estimator
