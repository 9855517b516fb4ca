"""The version pins of the local control plane, read from hack/versions.env."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HACK_DIR = Path(__file__).resolve().parents[2]
VERSIONS_FILE = HACK_DIR / "versions.env"


@dataclass(frozen=True)
class Versions:
    kubernetes: str  # "1.37.2", no leading v
    etcd: str
    kwok: str

    @property
    def kubernetes_minor(self) -> str:
        return self.kubernetes.split(".")[1]

    @property
    def staging(self) -> str:
        """The tag of k8s.io staging modules for this release: 1.37.2 -> v0.37.2."""
        return "v0." + self.kubernetes.split(".", 1)[1]


def parse_env(text: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines, comments and trailing `# ...` are ignored."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"not KEY=VALUE: {raw!r}")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def versions_from_env(values: dict[str, str]) -> Versions:
    return Versions(
        kubernetes=values["K8S_VERSION"].removeprefix("v"),
        etcd=values["ETCD_VERSION"].removeprefix("v"),
        kwok=values["KWOK_VERSION"].removeprefix("v"),
    )


def load(path: Path = VERSIONS_FILE) -> Versions:
    return versions_from_env(parse_env(path.read_text()))
