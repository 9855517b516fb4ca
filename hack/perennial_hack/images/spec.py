"""Which images `make images` builds and how: pure, from the repository's files.

Both images build from their own Dockerfile with the repository root as context. The
Dockerfiles take their base as `BASE_IMAGE` (default: the public Python image); when that
cannot be pulled, `local_base` assembles an equivalent from Debian packages.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from perennial_hack.images import dockerfile

REPO = Path(__file__).resolve().parents[3]
BASE_ARG = "BASE_IMAGE"
# The local stand-in for python:3.11-slim-bookworm: Debian's own Python 3.11 on bookworm.
LOCAL_BASE = "localhost/perennial/python-base:3.11-bookworm"
SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
# What python:*-slim gives a Dockerfile: python3 with venv and pip, CA certificates, apt.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# As Debian's slim images: no documentation, manual pages or translations.
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
)
# The official image's own settings (`docker inspect python:3.11-slim-bookworm`).
BASE_ENV = ("LANG=C.UTF-8", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
BASE_CMD = '["python3"]'
KEY_LABEL = "dev.perennial.base-key"


@dataclass(frozen=True)
class ImageSpec:
    name: str  # short name: runtime, operator
    repository: str  # what pods name: perennial/runtime
    dockerfile: str  # relative to the repository root
    sources: tuple[str, ...]  # what the Dockerfile copies (files or folders), for the stamp

    def tag(self, version: str) -> str:
        return f"{self.repository}:{version}"

    def reference(self, version: str) -> str:
        """The fully qualified name containerd (and the kubelet) resolve `tag` to."""
        return f"docker.io/{self.tag(version)}"


IMAGES = (
    ImageSpec(
        "runtime",
        "perennial/runtime",
        "trainer_image/Dockerfile",
        ("pyproject.toml", "README.md", "trainer_image/perennial_runtime"),
    ),
    ImageSpec(
        "operator",
        "perennial/operator",
        "operator/Dockerfile",
        ("pyproject.toml", "README.md", "operator/perennial_operator", "studio/perennial_studio"),
    ),
)


def by_name(name: str) -> ImageSpec:
    for spec in IMAGES:
        if spec.name == name:
            return spec
    raise KeyError(f"no image {name!r}; known: {', '.join(s.name for s in IMAGES)}")


def allocator_env(name: str) -> dict[str, str]:
    """The memory allocator settings (glibc's `MALLOC_*`, `PYTHONMALLOC`) the image's
    Dockerfile declares: what a bench passes to a process it runs on the host as the image
    would run it."""
    declared = dockerfile.declared_env((REPO / by_name(name).dockerfile).read_text())
    return {k: v for k, v in declared.items() if k.startswith("MALLOC_") or k == "PYTHONMALLOC"}


def project_version(pyproject_text: str) -> str:
    return str(tomllib.loads(pyproject_text)["project"]["version"])


def source_files(repo: Path, sources: Iterable[str]) -> list[Path]:
    """Every file the build copies, sorted; caches and bytecode left out (.dockerignore)."""
    files: list[Path] = []
    for source in sources:
        path = repo / source
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [p for p in found if "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return files


def image_key(repo: Path, spec: ImageSpec, base_id: str, argv: Sequence[str]) -> str:
    """Changes whenever the image would: its Dockerfile, what it copies, its base, the
    build's own arguments."""
    digest = hashlib.sha256(f"{base_id}\0{' '.join(argv)}\0".encode())
    for path in [repo / spec.dockerfile, repo / ".dockerignore", *source_files(repo, spec.sources)]:
        digest.update(str(path.relative_to(repo)).encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
    return digest.hexdigest()


def base_key() -> str:
    """Identity of the assembled base: what mmdebstrap is asked for."""
    return hashlib.sha256(repr((SUITE, MIRRORS, BASE_PACKAGES, DPKG_EXCLUDES)).encode()).hexdigest()


def mmdebstrap_argv(out: Path) -> list[str]:
    """A minimal bookworm with Python: `minbase` plus BASE_PACKAGES, merged /usr without
    the usrmerge package (which pulls perl in), as a tarball."""
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        f"--include={','.join(BASE_PACKAGES)}",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    ]
    argv += [f"--dpkgopt={option}" for option in DPKG_EXCLUDES]
    return [*argv, SUITE, str(out), *MIRRORS]


def build_argv(spec: ImageSpec, tag: str, *, base: str | None, ca_bundle: Path | None) -> list[str]:
    """`buildah build` of one image. `base` None keeps the Dockerfile's default. The build
    steps install from the package registries, so they use the host's network; a CA
    bundle (for TLS-inspecting proxies) is passed as a build secret, never stored."""
    argv = ["buildah", "build", "--layers=false", "--network=host"]
    argv += ["-f", spec.dockerfile, "-t", tag]
    if base:
        argv += ["--build-arg", f"{BASE_ARG}={base}"]
    if ca_bundle:
        argv += ["--secret", f"id=ca-bundle,src={ca_bundle}"]
    return [*argv, "."]


def archive_argv(tag: str, archive: Path, reference: str) -> list[str]:
    """Write the image as an OCI archive whose only name is `reference` (what containerd
    imports it as)."""
    return ["buildah", "push", "--quiet", tag, f"oci-archive:{archive}:{reference}"]
