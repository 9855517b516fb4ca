"""crds/*.yaml are exactly what crds/generate.py makes from crds/src/, and the one schema
they share (TrainingJob.spec = RetrainPolicy.spec.template) has not drifted."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from perennial_cli.crdcheck import Checker, version_schema

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crds_generate", REPO / "crds" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATE = load_generator()


@pytest.mark.parametrize("name", GENERATE.KINDS)
def test_committed_crd_equals_generator_output(name: str) -> None:
    committed = (REPO / "crds" / f"{name}.yaml").read_text()
    assert committed == GENERATE.render(name), "run: python crds/generate.py"


def test_check_mode_passes() -> None:
    assert GENERATE.main(["--check"]) == 0


def test_every_crd_file_has_a_source_and_vice_versa() -> None:
    generated = {p.stem for p in (REPO / "crds").glob("*.yaml")}
    sources = {p.stem for p in (REPO / "crds" / "src").glob("*.yaml") if not p.stem.startswith("_")}
    assert generated == sources == set(GENERATE.KINDS)


def test_include_merges_local_keys_and_concatenates_rules(tmp_path: Path) -> None:
    (tmp_path / "_frag.yaml").write_text(
        "type: object\ndescription: old\nx-kubernetes-validations: [{rule: a, message: A}]\n"
    )
    node = {
        "$include": "_frag.yaml",
        "description": "new",
        "x-kubernetes-validations": [{"rule": "b", "message": "B"}],
    }
    assert GENERATE.expand(node, tmp_path) == {
        "type": "object",
        "description": "new",
        "x-kubernetes-validations": [{"rule": "a", "message": "A"}, {"rule": "b", "message": "B"}],
    }


def test_retrain_template_is_the_trainingjob_spec() -> None:
    crds = Checker.load().crds
    spec = dict(version_schema(crds["TrainingJob"])["properties"]["spec"])
    template = dict(
        version_schema(crds["RetrainPolicy"])["properties"]["spec"]["properties"]["template"]
    )
    immutable = spec["x-kubernetes-validations"][-1]
    assert immutable["rule"] == "self == oldSelf"
    spec["x-kubernetes-validations"] = spec["x-kubernetes-validations"][:-1]
    spec.pop("description"), template.pop("description")
    assert spec == template
