"""One source of truth: the code that reads TrainingJob specs must not drift from the CRD.

The CRD YAML is generated from crds/src (see test_crds_generate); this test checks the Python
readers against it: every field the trainer parses exists in the schema with the same default,
the enums agree, and every spec path the operator reads is declared.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from perennial_operator.desired.common import resource_requirements
from perennial_operator.desired.trainingjob import job
from perennial_runtime.train import algorithms
from perennial_runtime.train import spec as trainer_spec

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / f"{kind}.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def at(node: dict[str, Any], path: str) -> dict[str, Any]:
    for part in path.split("."):
        if part == "*":
            node = node["additionalProperties"]
        else:
            node = node["properties"][part]
    return node


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


READERS = [  # trainer dataclass -> where it lives in TrainingJob.spec
    (trainer_spec.TrainingJob, ""),
    (trainer_spec.DatasetSpec, "dataset"),
    (trainer_spec.AutoML, "automl"),
    (trainer_spec.Validation, "validation"),
    (trainer_spec.ColumnRule, "validation.schema.*"),
    (trainer_spec.Baseline, "baseline"),
]


@pytest.mark.parametrize(("cls", "path"), READERS, ids=[c.__name__ for c, _ in READERS])
def test_every_field_the_trainer_reads_is_declared_with_the_same_default(cls, path):
    node = at(schema("trainingjob"), path) if path else schema("trainingjob")
    for field in dataclasses.fields(cls):
        declared = node["properties"].get(camel(field.name))
        assert declared is not None, f"spec.{path}.{camel(field.name)} is read but not declared"
        has_default = field.default is not dataclasses.MISSING and field.default is not None
        if has_default and "default" in declared:
            assert declared["default"] == field.default, f"default of {field.name}"


def test_enums_agree():
    spec = schema("trainingjob")
    assert set(spec["properties"]["task"]["enum"]) == set(algorithms.ALGORITHMS)
    column_type = at(spec, "validation.schema.*.type")
    assert set(column_type["enum"]) == set(trainer_spec.COLUMN_TYPES)
    assert set(at(spec, "dataset.format")["enum"]) == {"auto", "csv", "parquet"}


def test_algorithm_names_fit_the_schema_pattern():
    pattern = re.compile(schema("trainingjob")["properties"]["algorithm"]["pattern"])
    for names in algorithms.ALGORITHMS.values():
        for name in names:
            assert pattern.fullmatch(name), name


OPERATOR_READS = [
    "model", "task", "algorithm", "dataset.uri", "baseline.modelVersion", "baseline.uri",
    "resources.cpu", "resources.memory", "resources.gpu", "computePool", "backoffLimit",
    "activeDeadlineSeconds", "image", "command", "artifacts.pvc", "automl.metric",
]  # fmt: skip


@pytest.mark.parametrize("path", OPERATOR_READS)
def test_every_path_the_operator_reads_is_declared(path):
    at(schema("trainingjob"), path)


def test_operator_fallbacks_equal_the_schema_defaults():
    spec = schema("trainingjob")
    from perennial_operator.config import OperatorConfig
    from perennial_operator.desired.placement import NO_POOL

    minimal = {
        "kind": "TrainingJob",
        "metadata": {"name": "t", "namespace": "n", "uid": "u" * 8},
        "spec": {"model": "m", "task": "regression", "dataset": {"uri": "builtin://diabetes"}},
    }
    built = job(minimal, OperatorConfig(), NO_POOL)["spec"]
    assert built["backoffLimit"] == at(spec, "backoffLimit")["default"]
    assert built["activeDeadlineSeconds"] == at(spec, "activeDeadlineSeconds")["default"]
    requests = resource_requirements({}, 0)["requests"]
    assert requests == {
        "cpu": at(spec, "resources.cpu")["default"],
        "memory": at(spec, "resources.memory")["default"],
    }
