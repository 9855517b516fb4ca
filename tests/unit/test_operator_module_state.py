"""The operator keeps no state in module globals: what lives for the process is made at
start-up (handlers/startup.py and each kind's startup handler) and passed down, so two
operators in one process (or two tests) never share it. Tables are read-only: tuples,
frozensets, MappingProxyType."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "perennial_operator"
MUTABLE_DISPLAYS = (ast.Dict, ast.Set, ast.List, ast.DictComp, ast.SetComp, ast.ListComp)
MUTABLE_CALLS = {"dict", "set", "list", "defaultdict", "OrderedDict", "deque"}


def _mutable(value: ast.expr | None) -> bool:
    if isinstance(value, MUTABLE_DISPLAYS):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in MUTABLE_CALLS
    return False


def module_level_mutables(source: str) -> list[str]:
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and _mutable(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [f"{ast.unparse(t)} (line {node.lineno})" for t in targets]
    return found


def test_the_check_sees_what_it_looks_for():
    source = (
        "A = {}\nB: dict[str, int] = dict()\nC = (1, 2)\nD = frozenset({1})\nE = [x for x in C]\n"
    )
    assert module_level_mutables(source) == ["A (line 1)", "B (line 2)", "E (line 5)"]


def test_no_module_level_mutable_state_in_the_operator():
    found = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if (names := module_level_mutables(path.read_text()))
    }
    assert found == {}
