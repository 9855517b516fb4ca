"""Build what a real node needs and Debian lacks: the kubelet and the pause image.

- kubelet: `go build` of k8s.io/kubernetes/cmd/kubelet at the control plane's own pin
  (hack/versions.env), from a wrapper module of its own (node/gomod/kubelet/, written by
  `python -m perennial_hack.node gen`), so the control-plane cache and its stamp are untouched.
- pause: Kubernetes' own build/pause/linux/pause.c from the same release, compiled static
  and packed with buildah as an OCI archive (the sandbox image; no registry to pull it).

Both go to ${XDG_CACHE_HOME:-~/.cache}/perennial/node/v<version>/ with a stamp of their own.
containerd, runc and the CNI plugins come from Debian (`make node-deps`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from perennial_hack.cluster import build as cluster_build
from perennial_hack.cluster import gomod, paths
from perennial_hack.cluster.versions import Versions
from perennial_hack.node.config import PAUSE_IMAGE

GOMOD_DIR = Path(__file__).resolve().parent / "gomod"
KUBELET_MODULE = GOMOD_DIR / "kubelet"
KUBELET_PACKAGE = "k8s.io/kubernetes/cmd/kubelet"
PAUSE_SOURCE = "build/pause/linux/pause.c"
# As build/pause/Makefile compiles it.
PAUSE_CFLAGS = ("-Os", "-Wall", "-Werror", "-static")
STAMP = ".build-stamp"
# From Debian (apt): what each is for, checked before a node starts.
HOST_TOOLS = {
    "containerd": "containerd",
    "runc": "runc",
    "ctr": "containerd",
    "ip": "iproute2",
    "iptables": "iptables",
    "gcc": "gcc",
}
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
CNI_PLUGINS = ("bridge", "host-local", "loopback")


def node_dir(versions: Versions, root: Path | None = None) -> Path:
    return (root or paths.cache_root()) / "node" / f"v{versions.kubernetes}"


def kubelet_path(versions: Versions, root: Path | None = None) -> Path:
    return node_dir(versions, root) / "bin" / "kubelet"


def pause_archive(versions: Versions, root: Path | None = None) -> Path:
    return node_dir(versions, root) / "pause.oci.tar"


def kubelet_module(versions: Versions, upstream_gomod: str) -> gomod.WrapperModule:
    """The control plane's kubernetes wrapper module, naming the kubelet instead."""
    module = gomod.kubernetes_module(versions, upstream_gomod)
    return dataclasses.replace(
        module, name="kubelet", tools=(gomod.Tool("kubelet", KUBELET_PACKAGE),)
    )


def kubelet_pin_mismatch(module_dir: Path, versions: Versions) -> str | None:
    wanted = f"k8s.io/kubernetes v{versions.kubernetes}"
    if wanted in (module_dir / "go.mod").read_text():
        return None
    return (
        f"{module_dir / 'go.mod'} does not require {wanted} (K8S_VERSION in "
        "hack/versions.env): run `python -m perennial_hack.node gen`"
    )


def cni_bin_dir() -> Path | None:
    for folder in CNI_BIN_DIRS:
        if all((folder / plugin).exists() for plugin in CNI_PLUGINS):
            return folder
    return None


def missing_host_tools() -> list[str]:
    """Debian packages to install for what is missing on this host."""
    missing = {pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None}
    if cni_bin_dir() is None:
        missing.add("containernetworking-plugins")
    return sorted(missing)


def stamp_key(versions: Versions, pause_c: bytes) -> str:
    digest = hashlib.sha256(repr(versions).encode())
    for name in ("go.mod", "go.sum"):
        digest.update((KUBELET_MODULE / name).read_bytes())
    digest.update(cluster_build.version_ldflags(versions, "").encode())
    digest.update(pause_c + " ".join(PAUSE_CFLAGS).encode() + PAUSE_IMAGE.encode())
    return digest.hexdigest()


# --- I/O ---------------------------------------------------------------------------------


def write_module(versions: Versions) -> None:
    """`gen`: regenerate node/gomod/kubelet from the release's go.mod."""
    module = kubelet_module(
        versions, gomod.upstream_gomod("k8s.io/kubernetes", "v" + versions.kubernetes)
    )
    KUBELET_MODULE.mkdir(parents=True, exist_ok=True)
    text = gomod.render_gomod(module).replace(
        "`perennial-cluster gen`", "`python -m perennial_hack.node gen`"
    )
    (KUBELET_MODULE / "go.mod").write_text(text)
    (KUBELET_MODULE / "go.sum").unlink(missing_ok=True)
    subprocess.run(["go", "mod", "tidy"], cwd=KUBELET_MODULE, check=True)


def kubernetes_source(versions: Versions) -> Path:
    """The release's module folder in the Go module cache (downloaded if needed)."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@v{versions.kubernetes}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=KUBELET_MODULE,
    ).stdout
    return Path(json.loads(out)["Dir"])


def build_pause(source: Path, archive: Path, version: str) -> None:
    """pause.c -> a static binary -> an image of that one file -> an OCI archive."""
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "pause"
        subprocess.run(
            [
                "gcc",
                *PAUSE_CFLAGS,
                f"-DVERSION=v{version}-perennial",
                "-o",
                str(binary),
                str(source),
            ],
            check=True,
        )
        container = subprocess.run(
            ["buildah", "from", "scratch"], check=True, capture_output=True, text=True
        ).stdout.strip()
        try:
            for argv in (
                ["buildah", "copy", "--quiet", container, str(binary), "/pause"],
                [
                    "buildah",
                    "config",
                    "--entrypoint",
                    '["/pause"]',
                    "--user",
                    "65535:65535",
                    container,
                ],
                ["buildah", "commit", "--quiet", container, PAUSE_IMAGE],
            ):
                subprocess.run(argv, check=True, capture_output=True)
        finally:
            subprocess.run(["buildah", "rm", container], capture_output=True)
    archive.unlink(missing_ok=True)
    subprocess.run(
        ["buildah", "push", "--quiet", PAUSE_IMAGE, f"oci-archive:{archive}:{PAUSE_IMAGE}"],
        check=True,
    )


def build(versions: Versions, *, parallelism: int = 2, force: bool = False) -> Path:
    """Build the kubelet and the pause image unless cached; return the node folder."""
    mismatch = kubelet_pin_mismatch(KUBELET_MODULE, versions)
    if mismatch:
        raise SystemExit(mismatch)
    folder = node_dir(versions)
    source = kubernetes_source(versions)
    pause_c = source / PAUSE_SOURCE
    key = stamp_key(versions, pause_c.read_bytes())
    stamp = folder / STAMP
    kubelet, archive = kubelet_path(versions), pause_archive(versions)
    built = kubelet.is_file() and archive.is_file()
    if not force and built and stamp.is_file() and stamp.read_text().strip() == key:
        print(f"kubelet v{versions.kubernetes} and the pause image are cached in {folder}")
        return folder
    kubelet.parent.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    step = cluster_build.BuildStep(
        str(KUBELET_MODULE),
        (KUBELET_PACKAGE,),
        str(kubelet),
        cluster_build.version_ldflags(versions, cluster_build.release_date(versions)),
    )
    cluster_build.run_step(step, parallelism)
    pause_tag = PAUSE_IMAGE.rsplit(":", 1)[1]
    build_pause(pause_c, archive, pause_tag)
    stamp.write_text(key + "\n")
    print(f"==> kubelet and pause image in {folder}", flush=True)
    return folder


def env_parallelism(env: dict[str, str] | None = None) -> int:
    value = (env or dict(os.environ)).get("PERENNIAL_GO_PARALLELISM", "2")
    return max(1, int(value))
