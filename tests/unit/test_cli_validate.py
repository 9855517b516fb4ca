"""`perennial validate`: the invalid corpus is refused with the API server's messages at the
right line, every example is accepted, and updates are checked against their old object."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from perennial_cli.main import cli
from perennial_cli.manifests import parse, read_files
from support.kubectl_binary import find_kubectl

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
INVALID = sorted((REPO / "tests" / "manifests" / "invalid").glob("*.yaml"))


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["validate", *args])
    return result.exit_code, result.stdout, result.stderr


def expectation(path: Path) -> str:
    return path.read_text().splitlines()[0].removeprefix("# expect: ").strip()


def test_every_example_is_accepted() -> None:
    code, out, err = run(str(EXAMPLES))  # examples/gitops/ too: folders are read recursively
    ours = [
        d
        for d in read_files([EXAMPLES])
        if str(d.obj.get("apiVersion")).startswith("perennial.dev/")
    ]
    assert len(ours) >= len(list(EXAMPLES.glob("*.yaml"))) + 3
    assert code == 0, out
    assert out == ""
    assert f"{len(ours)} object(s) checked" in err and ": ok" in err


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_manifest_is_refused_at_its_line(path: Path) -> None:
    code, out, _ = run(str(path))
    assert code == 1
    lines = path.read_text().splitlines()
    [hit] = [line for line in out.splitlines() if expectation(path) in line][:1]
    where, _, rest = hit.partition(": ")
    name, _, number = where.rpartition(":")
    assert name == str(path) and 1 <= int(number) <= len(lines)
    # The line names the field: its last path part, or the parent of a missing field.
    field = rest.split(": ", 1)[1].split(":", 1)[0].removeprefix('unknown field "').rstrip('"')
    parts = [p.split("[")[0] for p in field.split(".")]
    text = lines[int(number) - 1]
    assert any(f"{p}:" in text for p in parts) or text.lstrip().startswith("- "), (hit, text)


def test_the_whole_corpus_at_once_reports_every_file() -> None:
    code, out, err = run(*(str(p) for p in INVALID))
    assert code == 1
    assert {line.split(":")[0] for line in out.splitlines()} == {str(p) for p in INVALID}
    assert f"{sum(len(parse(p.read_text(), str(p))) for p in INVALID)} object(s) checked" in err


def test_a_later_document_is_an_update_and_previous_gives_the_old_object(tmp_path: Path) -> None:
    old_text = (REPO / "examples" / "modelversion.yaml").read_text()
    changed = old_text.replace("version: ", "version: 9", 1).replace("version: 9", "version: 99", 1)
    assert changed != old_text
    (tmp_path / "old.yaml").write_text(old_text)
    (tmp_path / "new.yaml").write_text(changed)
    assert run(str(tmp_path / "new.yaml"))[0] == 0, "on its own it is a valid create"
    code, out, _ = run(str(tmp_path / "new.yaml"), "--previous", str(tmp_path / "old.yaml"))
    assert code == 1 and "spec.version is immutable" in out
    (tmp_path / "both.yaml").write_text(old_text + "\n---\n" + changed)
    code, out, _ = run(str(tmp_path / "both.yaml"))
    assert code == 1 and "spec.version is immutable" in out


def test_other_kinds_are_skipped_and_bad_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, _, err = run(str(tmp_path))
    assert code == 0 and "0 object(s) checked, 1 of other kinds skipped" in err
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: [\n")
    code, _, err = run(str(tmp_path / "bad.yaml"))
    assert code == 1 and f"{tmp_path / 'bad.yaml'}:3: invalid YAML" in err


def test_an_unknown_kind_of_our_group_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        "apiVersion: perennial.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: p}\n"
    )
    code, out, _ = run(str(tmp_path))
    assert code == 1 and "no CRD for perennial.dev/v1alpha1 Pipeline" in out


def test_kustomize_checks_what_the_kustomization_renders(tmp_path: Path) -> None:
    kubectl = find_kubectl()
    assert kubectl is not None, "no kubectl: run `make k8s-build` (or install kubectl)"
    bad = (REPO / "tests" / "manifests" / "invalid" / "tj-missing-task.yaml").read_text()
    (tmp_path / "tj.yaml").write_text(bad)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [tj.yaml]\nnamespace: team-a\nnamePrefix: x-\n"
    )
    env = {**os.environ, "PATH": f"{kubectl.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = [sys.executable, "-m", "perennial_cli", "validate", "--kustomize", str(tmp_path)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert out.returncode == 1, out.stderr
    assert "(kustomize output):" in out.stdout
    assert "TrainingJob/x-tj-missing-task: spec.task: Required value" in out.stdout


def test_the_console_scripts_are_installed() -> None:
    bindir = Path(sys.executable).parent
    for name in ("perennial", "kubectl-perennial"):
        out = subprocess.run([str(bindir / name), "validate", str(EXAMPLES)], capture_output=True,
                             text=True, timeout=120, check=False)  # fmt: skip
        assert out.returncode == 0, out.stderr
