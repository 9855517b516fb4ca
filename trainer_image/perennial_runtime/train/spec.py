"""The TrainingJob spec, parsed into typed values with errors that name the field to fix.

The trainer reads ``spec`` of the very manifest ``kubectl apply`` took. Fields that belong to
the operator (resources, computePool, backoffLimit, image, ...) are ignored silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from perennial_runtime.train.algorithms import (
    ALGORITHMS,
    SUPERVISED_TASKS,
    check_hyperparameters,
    default_metric,
    metric_names,
)
from perennial_runtime.train.errors import BadSpec

DEFAULT_DATASET_MAX_BYTES = 512 * 1024**2  # the CRD default of spec.dataset.maxBytes

COLUMN_TYPES = ("number", "integer", "string", "category", "boolean")


@dataclass(frozen=True)
class ColumnRule:
    type: str | None = None
    min: float | None = None
    max: float | None = None
    categories: tuple[Any, ...] | None = None
    nullable: bool = True


@dataclass(frozen=True)
class Validation:
    min_rows: int = 1
    max_missing_fraction: float = 1.0
    schema: dict[str, ColumnRule] = field(default_factory=dict)
    fail_on_constant_columns: bool = False
    min_class_fraction: float = 0.0


@dataclass(frozen=True)
class DatasetSpec:
    uri: str
    format: str = "auto"
    target: str | None = None
    features: tuple[str, ...] | None = None
    text_column: str = "text"
    user_column: str = "user"
    item_column: str = "item"
    test_fraction: float = 0.2
    seed: int = 42
    max_bytes: int = DEFAULT_DATASET_MAX_BYTES  # the reader stops past it


@dataclass(frozen=True)
class AutoML:
    time_budget_seconds: int = 120
    metric: str | None = None  # None: the task's default, chosen once the labels are known
    cv_folds: int = 3
    ensemble_size: int = 25  # ensemble selection steps; 0 or 1: the single best candidate
    serving_latency_budget_ms: float = 1.0  # per-row predict time a model may cost; 0: any
    parallelism: int = 1  # candidates at once, one pod each (the operator's plan/trial/finish)


@dataclass(frozen=True)
class Baseline:
    model_version: str | None = None
    uri: str | None = None


@dataclass(frozen=True)
class TrainingJob:
    model: str
    task: str
    dataset: DatasetSpec
    algorithm: str = "auto"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    automl: AutoML = field(default_factory=AutoML)
    validation: Validation = field(default_factory=Validation)
    baseline: Baseline | None = None

    def metric(self, n_classes: int) -> str:
        return self.automl.metric or default_metric(self.task, n_classes)


def parse_manifest(text: str) -> TrainingJob:
    """Parse a TrainingJob manifest (YAML or JSON) and return its typed spec."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadSpec(f"the TrainingJob manifest is neither YAML nor JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadSpec("the TrainingJob manifest must be a mapping with a 'spec'")
    kind = doc.get("kind", "TrainingJob")
    if kind != "TrainingJob":
        raise BadSpec(f"expected kind TrainingJob, got {kind!r}")
    return parse_spec(_mapping(doc.get("spec"), "spec"))


def parse_spec(spec: dict[str, Any]) -> TrainingJob:
    task = _str(spec.get("task"), "spec.task")
    if task not in ALGORITHMS:
        raise BadSpec(f"spec.task {task!r} is not one of {', '.join(ALGORITHMS)}")
    algorithm = _str(spec.get("algorithm", "auto"), "spec.algorithm")
    if algorithm != "auto" and algorithm not in ALGORITHMS[task]:
        raise BadSpec(
            f"spec.algorithm {algorithm!r} is not a built-in algorithm for task {task}; "
            f"choose one of: auto, {', '.join(ALGORITHMS[task])}"
        )
    hyperparameters = _mapping(spec.get("hyperparameters", {}), "spec.hyperparameters")
    if hyperparameters and algorithm == "auto":
        raise BadSpec(
            "spec.hyperparameters needs a named spec.algorithm; with algorithm: auto the "
            "search chooses them"
        )
    if algorithm != "auto":
        check_hyperparameters(task, algorithm, dict(hyperparameters))
    dataset = _dataset(_mapping(spec.get("dataset"), "spec.dataset"))
    if task in SUPERVISED_TASKS and task != "recommendation" and dataset.target is None:
        if not dataset.uri.startswith("builtin://"):
            raise BadSpec(f"spec.dataset.target is required for task {task}")
    automl = _automl(_mapping(spec.get("automl", {}), "spec.automl"))
    if automl.metric is not None and automl.metric not in metric_names(task):
        raise BadSpec(
            f"spec.automl.metric {automl.metric!r} does not apply to task {task}; "
            f"choose one of: {', '.join(metric_names(task))}"
        )
    return TrainingJob(
        model=_str(spec.get("model"), "spec.model"),
        task=task,
        dataset=dataset,
        algorithm=algorithm,
        hyperparameters=dict(hyperparameters),
        automl=automl,
        validation=_validation(_mapping(spec.get("validation", {}), "spec.validation")),
        baseline=_baseline(spec.get("baseline")),
    )


def _dataset(raw: dict[str, Any]) -> DatasetSpec:
    fmt = _str(raw.get("format", "auto"), "spec.dataset.format")
    if fmt not in ("auto", "csv", "parquet"):
        raise BadSpec(f"spec.dataset.format must be auto, csv or parquet, got {fmt!r}")
    features = raw.get("features")
    if features is not None and not (
        isinstance(features, list) and all(isinstance(f, str) for f in features)
    ):
        raise BadSpec("spec.dataset.features must be a list of column names")
    test_fraction = _number(raw.get("testFraction", 0.2), "spec.dataset.testFraction")
    if not 0 < test_fraction < 1:
        raise BadSpec(f"spec.dataset.testFraction must be between 0 and 1, got {test_fraction}")
    max_bytes = _int(raw.get("maxBytes", DEFAULT_DATASET_MAX_BYTES), "spec.dataset.maxBytes")
    if max_bytes < 1:
        raise BadSpec(f"spec.dataset.maxBytes must be >= 1, got {max_bytes}")
    target = raw.get("target")
    return DatasetSpec(
        uri=_str(raw.get("uri"), "spec.dataset.uri"),
        format=fmt,
        target=None if target is None else _str(target, "spec.dataset.target"),
        features=None if features is None else tuple(features),
        text_column=_str(raw.get("textColumn", "text"), "spec.dataset.textColumn"),
        user_column=_str(raw.get("userColumn", "user"), "spec.dataset.userColumn"),
        item_column=_str(raw.get("itemColumn", "item"), "spec.dataset.itemColumn"),
        test_fraction=test_fraction,
        seed=_int(raw.get("seed", 42), "spec.dataset.seed"),
        max_bytes=max_bytes,
    )


def _automl(raw: dict[str, Any]) -> AutoML:
    budget = _int(raw.get("timeBudgetSeconds", 120), "spec.automl.timeBudgetSeconds")
    folds = _int(raw.get("cvFolds", 3), "spec.automl.cvFolds")
    if budget < 0:
        raise BadSpec(f"spec.automl.timeBudgetSeconds must be >= 0, got {budget}")
    if folds < 2:
        raise BadSpec(f"spec.automl.cvFolds must be >= 2, got {folds}")
    size = _int(raw.get("ensembleSize", 25), "spec.automl.ensembleSize")
    if not 0 <= size <= 100:
        raise BadSpec(f"spec.automl.ensembleSize must be in [0, 100], got {size}")
    serving = _number(raw.get("servingLatencyBudgetMs", 1.0), "spec.automl.servingLatencyBudgetMs")
    if not 0 <= serving <= 60_000:
        raise BadSpec(f"spec.automl.servingLatencyBudgetMs must be in [0, 60000], got {serving}")
    parallelism = _int(raw.get("parallelism", 1), "spec.automl.parallelism")
    if parallelism < 1:
        raise BadSpec(f"spec.automl.parallelism must be >= 1, got {parallelism}")
    metric = raw.get("metric")
    return AutoML(
        budget,
        None if metric is None else _str(metric, "spec.automl.metric"),
        folds,
        size,
        serving,
        parallelism,
    )


def _validation(raw: dict[str, Any]) -> Validation:
    max_missing = _number(raw.get("maxMissingFraction", 1.0), "spec.validation.maxMissingFraction")
    if not 0 <= max_missing <= 1:
        raise BadSpec(f"spec.validation.maxMissingFraction must be in [0, 1], got {max_missing}")
    schema = _mapping(raw.get("schema", {}), "spec.validation.schema")
    return Validation(
        min_rows=_int(raw.get("minRows", 1), "spec.validation.minRows"),
        max_missing_fraction=max_missing,
        schema={name: _column_rule(name, rule) for name, rule in schema.items()},
        fail_on_constant_columns=bool(raw.get("failOnConstantColumns", False)),
        min_class_fraction=_number(
            raw.get("minClassFraction", 0.0), "spec.validation.minClassFraction"
        ),
    )


def _column_rule(name: str, raw: Any) -> ColumnRule:
    where = f"spec.validation.schema.{name}"
    rule = _mapping(raw, where)
    kind = rule.get("type")
    if kind is not None and kind not in COLUMN_TYPES:
        raise BadSpec(f"{where}.type must be one of {', '.join(COLUMN_TYPES)}, got {kind!r}")
    categories = rule.get("categories")
    if categories is not None and not isinstance(categories, list):
        raise BadSpec(f"{where}.categories must be a list")
    return ColumnRule(
        type=kind,
        min=None if rule.get("min") is None else _number(rule["min"], f"{where}.min"),
        max=None if rule.get("max") is None else _number(rule["max"], f"{where}.max"),
        categories=None if categories is None else tuple(categories),
        nullable=bool(rule.get("nullable", True)),
    )


def _baseline(raw: Any) -> Baseline | None:
    if raw is None:
        return None
    rule = _mapping(raw, "spec.baseline")
    version, uri = rule.get("modelVersion"), rule.get("uri")
    return Baseline(
        None if version is None else _str(version, "spec.baseline.modelVersion"),
        None if uri is None else _str(uri, "spec.baseline.uri"),
    )


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadSpec(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadSpec(f"{where} is required and must be a non-empty string")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadSpec(f"{where} must be an integer, got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadSpec(f"{where} must be a number, got {value!r}")
    return float(value)
