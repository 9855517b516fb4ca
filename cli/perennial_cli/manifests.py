"""Read manifests the way `kubectl apply -f` would, keeping where each value came from.

A `Document` is one YAML document: the object, the file it came from and its YAML node,
so a field path such as ``spec.dataset.uri`` can be turned into a line number.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from perennial_cli.crdcheck import FieldPath, Loader

SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class ManifestError(Exception):
    """A file that cannot be read as manifests; `source:line: message`."""


@dataclass(frozen=True)
class Document:
    source: str  # a file name, or "<kustomize DIR>"
    obj: dict[str, Any]
    node: yaml.Node

    @property
    def line(self) -> int:
        return int(self.node.start_mark.line) + 1

    def line_of(self, path: FieldPath) -> int:
        """The line of the key of the deepest part of ``path`` that is in the document (a
        missing field: its parent's key)."""
        node, line = self.node, self.line
        for part in path:
            found = _child(node, part)
            if found is None:
                break
            key, node = found
            line = int(key.start_mark.line) + 1
        return line

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """(group, kind, namespace, name): how the API server tells objects apart."""
        meta = self.obj.get("metadata") or {}
        group = str(self.obj.get("apiVersion", "")).rpartition("/")[0]
        return group, str(self.obj.get("kind")), str(meta.get("namespace", "")), _name(meta)

    @property
    def title(self) -> str:
        return f"{self.obj.get('kind')}/{_name(self.obj.get('metadata') or {})}"


def _name(meta: dict[str, Any]) -> str:
    return str(meta.get("name") or meta.get("generateName") or "<no name>")


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(the node that names ``part``, its value): a mapping's key, or a sequence's item."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return key, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]
        return item, item
    return None


def parse(text: str, source: str) -> list[Document]:
    """Every non-empty document; a YAML error becomes a ManifestError with its line."""
    docs: list[Document] = []
    try:
        for node in yaml.compose_all(text, Loader=Loader):
            if node is None:
                continue
            obj = Loader("").construct_document(node)
            if obj is None:
                continue
            if not isinstance(obj, dict):
                line = node.start_mark.line + 1
                raise ManifestError(f"{source}:{line}: a manifest must be a mapping")
            docs.extend(_expand_list(obj, node, source))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ManifestError(f"{source}:{line}: invalid YAML: {exc.problem or exc}") from exc
    return docs


def _expand_list(obj: dict[str, Any], node: yaml.Node, source: str) -> Iterator[Document]:
    """A `kind: List` (what `kubectl get -o yaml` prints) stands for its items."""
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        items = _child(node, "items")
        for index, item in enumerate(obj["items"]):
            child = _child(items[1], index) if items is not None else None
            if isinstance(item, dict):
                yield Document(source, item, child[1] if child is not None else node)
        return
    yield Document(source, obj, node)


def files_under(paths: Sequence[Path]) -> list[Path]:
    """The manifest files named, and those found (recursively, sorted) in named folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix in SUFFIXES and not _is_kustomization(p)
            )
        elif path.exists():
            found.append(path)
        else:
            raise ManifestError(f"{path}: no such file or directory")
    return found


def _is_kustomization(path: Path) -> bool:
    return path.name in KUSTOMIZATION_FILES


def read_files(paths: Sequence[Path]) -> list[Document]:
    docs: list[Document] = []
    for path in files_under(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{path}: cannot read: {exc}") from exc
        docs += parse(text, str(path))
    return docs


def kustomize_command() -> list[str]:
    """`kustomize build`, else `kubectl kustomize` (kubectl has kustomize built in)."""
    for name, args in (("kustomize", ["build"]), ("kubectl", ["kustomize"])):
        found = shutil.which(name)
        if found:
            return [found, *args]
    raise ManifestError("--kustomize needs `kustomize` or `kubectl` on PATH")


def render_kustomization(directory: Path, command: Sequence[str] | None = None) -> list[Document]:
    """The objects `kubectl apply -k DIR` would send; lines refer to the rendered output."""
    argv = [*(command or kustomize_command()), str(directory)]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    except OSError as exc:
        raise ManifestError(f"{directory}: cannot run {argv[0]}: {exc}") from exc
    if out.returncode != 0:
        raise ManifestError(f"{directory}: kustomize failed: {out.stderr.strip()}")
    return parse(out.stdout, f"{directory} (kustomize output)")
