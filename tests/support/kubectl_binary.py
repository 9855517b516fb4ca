"""The kubectl unit tests render kustomizations with: PATH, else the one `make k8s-build`
puts in the cache. Unit tests that need it fail without it rather than skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def find_kubectl() -> Path | None:
    found = shutil.which("kubectl")
    if found:
        return Path(found)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    built = sorted((cache / "perennial" / "k8s").glob("*/bin/kubectl"))
    return built[-1] if built else None
