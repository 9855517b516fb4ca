"""Validate manifests against our CRDs offline, the way kube-apiserver would.

Three steps, in the API server's order: apply the schema's defaults, check the structural
OpenAPI schema (as JSON Schema), then evaluate every ``x-kubernetes-validations`` CEL rule
at its node with cel-python, with ``oldSelf`` for transition rules when an old object is
given. Error strings imitate the server's (``spec.task: Required value``, CEL messages
verbatim), so the invalid corpus's ``# expect:`` lines hold for both. Each finding keeps
the path of the field it is about, so ``perennial validate`` can point at a line.

``perennial validate`` and the unit tests (tests/unit/test_crds_*.py) both use this module:
one implementation of the checks.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

# The CRDs ship with the package (in a checkout, crds/ here is a link to the repository's).
CRD_DIR = Path(__file__).resolve().parent / "crds"
Schema = dict[str, Any]
FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    """One thing the API server would refuse: the field it is about, and its message."""

    path: FieldPath
    message: str


class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's when there is one: CRDs are big) that keeps timestamps as
    strings, as JSON (and the API server) does."""


Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_docs(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in a file."""
    return [doc for doc in yaml.load_all(path.read_text(), Loader=Loader) if doc]


def load_crds(directory: Path = CRD_DIR) -> dict[str, dict[str, Any]]:
    """CRDs by kind, from every crds/*.yaml."""
    crds = {}
    for path in sorted(directory.glob("*.yaml")):
        for doc in load_docs(path):
            if doc.get("kind") == "CustomResourceDefinition":
                crds[doc["spec"]["names"]["kind"]] = doc
    return crds


def version_schema(crd: dict[str, Any], version: str = "v1alpha1") -> Schema:
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema: Schema = entry["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"{crd['metadata']['name']} has no version {version}")


# ---- defaulting ---------------------------------------------------------------------------


def apply_defaults(schema: Schema, value: Any) -> Any:
    """Fill in ``default``s, recursively, like the API server does before validation."""
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                value[key] = apply_defaults(extra, value[key])
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], item) for item in value]
    return value


# ---- structural schema as JSON Schema -----------------------------------------------------


def to_json_schema(schema: Schema) -> Schema:
    """OpenAPI v3 (structural, Kubernetes flavour) to JSON Schema 2020-12."""
    out: Schema = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "description", "default"):
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key == "anyOf":
            out[key] = [to_json_schema(sub) for sub in value]
        else:
            out[key] = value
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    closed = "properties" in schema and "additionalProperties" not in schema
    if closed and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def _path(parts: Iterator[Any] | list[Any] | tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _schema_error(error: jsonschema.ValidationError) -> list[Finding]:
    at: FieldPath = tuple(error.absolute_path)
    where = _path(at)
    kind, arg, value = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = [name for name in arg if isinstance(value, dict) and name not in value]
        return [Finding(at, f"{_path([*at, name])}: Required value") for name in missing]
    if kind == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        extra = [k for k in value if k not in known]
        return [Finding((*at, k), f'unknown field "{_path([*at, k])}"') for k in extra]
    if kind == "enum":
        allowed = ", ".join(_quote(v) for v in arg)
        return [
            Finding(at, f"{where}: Unsupported value: {_quote(value)}: supported values: {allowed}")
        ]
    if kind in ("type", "anyOf"):
        expected = arg if kind == "type" else "integer or string"
        name = _type_name(value)
        message = f'{where}: Invalid value: "{name}": {where} in body must be of type '
        message += f'{expected}: "{name}"'
        return [Finding(at, message)]
    if kind == "pattern":
        message = f"{where}: Invalid value: {_quote(value)}: {where} in body should match '{arg}'"
        return [Finding(at, message)]
    bounds = {
        "minimum": "should be greater than or equal to",
        "maximum": "should be less than or equal to",
        "minLength": "should be at least {} chars long",
        "maxLength": "may not be more than {} bytes",
        "maxItems": "must have at most {} items",
        "minItems": "should have at least {} items",
        "maxProperties": "must have at most {} properties",
    }
    phrase = bounds.get(str(kind), f"violates {kind}")
    phrase = phrase.format(arg) if "{}" in phrase else f"{phrase} {arg}"
    return [Finding(at, f"{where}: Invalid value: {_quote(value)}: {where} in body {phrase}")]


def _type_name(value: Any) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


# ---- CEL ----------------------------------------------------------------------------------


def to_cel(schema: Schema, value: Any) -> Any:
    """A JSON value as the CEL value Kubernetes would give a rule (numbers are doubles)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return json_to_cel(value)
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        fallback = extra if isinstance(extra, dict) else {}
        return celtypes.MapType(
            {celtypes.StringType(k): to_cel(props.get(k, fallback), v) for k, v in value.items()}
        )
    if isinstance(value, list):
        return celtypes.ListType([to_cel(schema.get("items", {}), item) for item in value])
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if schema.get("type") == "number" and isinstance(value, int | float):
        return celtypes.DoubleType(value)
    return json_to_cel(value)


_ENV: list[Any] = []  # built on first use: building the CEL parser takes most of a second
_PROGRAMS: dict[str, Any] = {}


def compile_rule(rule: str) -> Any:
    """The compiled CEL program (cached); raises on a syntax error."""
    if rule not in _PROGRAMS:
        if not _ENV:
            _ENV.append(celpy.Environment())
        env = _ENV[0]
        _PROGRAMS[rule] = env.program(env.compile(rule))
    return _PROGRAMS[rule]


def evaluate(rule: str, self_value: Any, old_value: Any = None) -> bool | str:
    """True/False, or the evaluation error as text."""
    activation = {"self": self_value}
    if old_value is not None:
        activation["oldSelf"] = old_value
    try:
        result = compile_rule(rule).evaluate(activation)
    except CELEvalError as exc:
        return str(exc.args[0] if exc.args else exc)
    if isinstance(result, CELEvalError):
        return str(result.args[0] if result.args else result)
    return bool(result)


def _old_item(schema: Schema, item: Any, old: Any) -> Any:
    """The old list item with the same map keys (list-type map), else nothing."""
    keys = schema.get("x-kubernetes-list-map-keys")
    if schema.get("x-kubernetes-list-type") != "map" or not keys or not isinstance(old, list):
        return None
    for candidate in old:
        if isinstance(candidate, dict) and all(candidate.get(k) == item.get(k) for k in keys):
            return candidate
    return None


def cel_errors(schema: Schema, value: Any, old: Any = None, path: FieldPath = ()) -> list[Finding]:
    """Evaluate every rule at its node; messages as the API server prints them."""
    errors = []
    for rule in schema.get("x-kubernetes-validations", []):
        transition = re.search(r"\boldSelf\b", rule["rule"]) is not None
        if transition and old is None:
            continue
        result = evaluate(
            rule["rule"], to_cel(schema, value), to_cel(schema, old) if transition else None
        )
        if result is not True:
            detail = (
                rule.get("message", f"failed rule: {rule['rule']}")
                if result is False
                else (f"{result} evaluating rule: {rule['rule']}")
            )
            # as kube-apiserver 1.37 prints it
            errors.append(Finding(path, f"{_path(path) or '<root>'}: Invalid value: {detail}"))
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        for key, sub_value in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                sub_old = old.get(key) if isinstance(old, dict) else None
                errors += cel_errors(sub, sub_value, sub_old, (*path, key))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += cel_errors(
                schema["items"], item, _old_item(schema, item, old), (*path, index)
            )
    return errors


# ---- entry point --------------------------------------------------------------------------


@dataclass
class Checker:
    crds: dict[str, dict[str, Any]]
    _validators: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, directory: Path = CRD_DIR) -> Checker:
        return cls(load_crds(directory))

    def kind_of(self, obj: dict[str, Any]) -> str | None:
        """The kind, when ``obj`` belongs to one of our CRDs' groups (else None)."""
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        groups = {crd["spec"]["group"] for crd in self.crds.values()}
        return str(obj.get("kind")) if group in groups else None

    def findings(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Finding]:
        """Everything the API server would say about creating ``obj`` (or updating ``old``)."""
        group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
        crd = self.crds.get(str(obj.get("kind")))
        if crd is None or group != crd["spec"]["group"]:
            message = f"no CRD for {obj.get('apiVersion')} {obj.get('kind')}"
            return [Finding((), message)]
        try:
            schema = version_schema(crd, version)
        except KeyError as exc:
            return [Finding(("apiVersion",), str(exc.args[0]))]
        obj = apply_defaults(schema, copy.deepcopy(obj))
        old = apply_defaults(schema, copy.deepcopy(old)) if old is not None else None
        key = (crd["metadata"]["name"], version)
        if key not in self._validators:
            self._validators[key] = jsonschema.Draft202012Validator(to_json_schema(schema))
        found = [f for e in self._validators[key].iter_errors(obj) for f in _schema_error(e)]
        return found + cel_errors(schema, obj, old)

    def errors(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
        """The messages of ``findings``."""
        return [finding.message for finding in self.findings(obj, old)]
