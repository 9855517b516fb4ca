"""A kubeconfig for unit tests that build a client without a cluster: one server, a token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TOKEN_KUBECONFIG: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "x",
}


def write_kubeconfig(folder: Path) -> Path:
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(TOKEN_KUBECONFIG))
    return path
