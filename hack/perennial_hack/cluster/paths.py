"""Where the local control plane keeps binaries and run state (outside the repo)."""

from __future__ import annotations

import os
from pathlib import Path

from perennial_hack.cluster.versions import Versions


def cache_root(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".cache")
    return Path(base) / "perennial"


def k8s_dir(versions: Versions, root: Path | None = None) -> Path:
    return (root or cache_root()) / "k8s" / f"v{versions.kubernetes}"


def bin_dir(versions: Versions, root: Path | None = None) -> Path:
    return k8s_dir(versions, root) / "bin"


def run_dir(name: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / "run" / name
