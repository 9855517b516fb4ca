"""Every example is accepted and every manifest of the invalid corpus is refused, offline.

The corpus (tests/manifests/invalid/*.yaml) is also applied to a real kube-apiserver by the
integration suite: each file's first line, ``# expect: <text>``, is a substring of what the
API server prints. A file with two documents is an update: the old object, then the new.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perennial_cli.crdcheck import Checker, load_docs

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
INVALID = sorted((REPO / "tests" / "manifests" / "invalid").glob("*.yaml"))
CHECKER = Checker.load()


def expectation(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: ...'"
    return first.removeprefix("# expect: ").strip()


def test_every_kind_has_an_example() -> None:
    kinds = {doc["kind"] for path in EXAMPLES for doc in load_docs(path)}
    assert kinds == set(CHECKER.crds)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_valid(path: Path) -> None:
    for doc in load_docs(path):
        assert CHECKER.errors(doc) == []
        assert CHECKER.errors(doc, old=doc) == [], "an unchanged update must be allowed"


def test_corpus_is_big_enough_and_covers_every_kind() -> None:
    kinds = {load_docs(path)[-1]["kind"] for path in INVALID}
    assert len(INVALID) >= 25
    assert kinds == set(CHECKER.crds)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_manifest_is_refused_with_its_message(path: Path) -> None:
    docs = load_docs(path)
    assert len(docs) in (1, 2), "one object, or an old and a new one"
    old, new = (docs[0], docs[1]) if len(docs) == 2 else (None, docs[0])
    if old is not None:
        assert CHECKER.errors(old) == [], "the old object of an update must itself be valid"
    errors = CHECKER.errors(new, old=old)
    assert any(expectation(path) in error for error in errors), errors


def test_every_cel_rule_is_broken_by_some_corpus_file() -> None:
    messages = {rule["message"] for crd in CHECKER.crds.values() for rule in _rules(crd)}
    expected = {expectation(path) for path in INVALID}
    unbroken = {m for m in messages if not any(e in m for e in expected)}
    assert unbroken == set()


def _rules(node: object) -> list[dict[str, str]]:
    if isinstance(node, dict):
        own = list(node.get("x-kubernetes-validations", []))
        return own + [r for value in node.values() for r in _rules(value)]
    if isinstance(node, list):
        return [r for item in node for r in _rules(item)]
    return []
