"""The CRDs teach and stay cheap: descriptions everywhere, bounded strings/lists/maps
(CEL cost estimation), status subresources, printer columns that resolve, rules that compile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from perennial_cli.crdcheck import Checker, compile_rule, version_schema

pytestmark = pytest.mark.unit

CRDS = Checker.load().crds
KINDS = sorted(CRDS)
SHORT_NAMES = {
    "TrainingJob": ["tj"],
    "ModelVersion": ["mv"],
    "InferenceService": ["pisvc"],
    "RetrainPolicy": ["rp"],
    "ComputePool": ["cpool"],
}
# Short names of KServe (isvc, tm, ig) and Kubeflow we must not shadow.
TAKEN = {"isvc", "tm", "ig", "tfjob", "pytorchjob", "mpijob", "xgboostjob", "paddlejob", "nb"}
Node = tuple[str, dict[str, Any]]


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[Node]:
    """Every schema node below ``schema`` with its path; ``[]`` for items, ``{}`` for values."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def properties(schema: dict[str, Any], path: str = "") -> Iterator[Node]:
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}.{name}", sub
        if name != "metadata":
            yield from properties(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from properties(schema[key], path + ("[]" if key == "items" else "{}"))


def test_all_five_kinds_are_there() -> None:
    assert set(KINDS) == set(SHORT_NAMES)


@pytest.mark.parametrize("kind", KINDS)
def test_names_scope_and_version(kind: str) -> None:
    spec = CRDS[kind]["spec"]
    assert spec["group"] == "perennial.dev"
    assert spec["scope"] == ("Cluster" if kind == "ComputePool" else "Namespaced")
    assert spec["names"]["categories"] == ["perennial"]
    assert spec["names"]["shortNames"] == SHORT_NAMES[kind]
    assert not set(spec["names"]["shortNames"]) & TAKEN
    assert CRDS[kind]["metadata"]["name"] == f"{spec['names']['plural']}.perennial.dev"
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"]["status"] == {}


def test_inference_service_scales() -> None:
    scale = CRDS["InferenceService"]["spec"]["versions"][0]["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    schema = version_schema(CRDS["InferenceService"])
    assert schema["properties"]["status"]["properties"]["selector"]["type"] == "string"


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_has_a_description(kind: str) -> None:
    schema = version_schema(CRDS[kind])
    assert schema.get("description")
    missing = [
        path
        for path, sub in properties(schema)
        if path != ".metadata" and not sub.get("description")
    ]
    assert missing == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_string_list_and_map_is_bounded(kind: str) -> None:
    unbounded = []
    for path, node in nodes(version_schema(CRDS[kind])):
        if path in (".apiVersion", ".kind", ".metadata"):
            continue  # the API server's own fields
        kind_of = node.get("type")
        if kind_of == "string" and "maxLength" not in node and "enum" not in node:
            unbounded.append(path)
        if node.get("x-kubernetes-int-or-string") and "maxLength" not in node:
            unbounded.append(path)
        if kind_of == "array" and "maxItems" not in node:
            unbounded.append(path)
        free = "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields")
        if kind_of == "object" and free and "maxProperties" not in node and path != ".status":
            unbounded.append(path)
    assert unbounded == []


@pytest.mark.parametrize("kind", KINDS)
def test_status_follows_api_conventions(kind: str) -> None:
    status = version_schema(CRDS[kind])["properties"]["status"]["properties"]
    assert status["observedGeneration"]["type"] == "integer"
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]["properties"]
    assert set(item) == {
        "type",
        "status",
        "observedGeneration",
        "lastTransitionTime",
        "reason",
        "message",
    }
    assert item["status"]["enum"] == ["True", "False", "Unknown"]


def resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in json_path.strip(".").split("."):
        node = (node or {}).get("properties", {}).get(part)
    return node


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_resolve_and_match_their_types(kind: str) -> None:
    version = CRDS[kind]["spec"]["versions"][0]
    schema = version_schema(CRDS[kind])
    columns = version["additionalPrinterColumns"]
    assert any(c["name"] == "Age" for c in columns)
    for column in columns:
        if column["jsonPath"] == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        node = resolve(schema, column["jsonPath"])
        assert node is not None, column
        assert node.get("type") == column["type"], column
    assert any(c["name"] == "Phase" for c in columns) or kind == "ComputePool"


@pytest.mark.parametrize("kind", KINDS)
def test_every_rule_has_a_message_and_compiles(kind: str) -> None:
    rules = [
        rule
        for _, node in nodes(version_schema(CRDS[kind]))
        for rule in node.get("x-kubernetes-validations", [])
    ]
    assert rules
    for rule in rules:
        assert rule.get("message"), rule
        compile_rule(rule["rule"])
