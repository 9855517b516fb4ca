"""`make images`: build the runtime and operator images with buildah from their Dockerfiles.

    python -m perennial_hack.images build [--force] [NAME ...]
    python -m perennial_hack.images list

The Dockerfiles' default base (the public Python image) is used when it is present or can
be pulled; otherwise an equivalent base is assembled from Debian packages with mmdebstrap
(spec.LOCAL_BASE, built once, kept in buildah's storage). Each image is written as an OCI
archive into ${XDG_CACHE_HOME:-~/.cache}/perennial/images/ (what the local node imports into
containerd) and recorded in images.json there with its key, sizes and build time. An image
whose key (Dockerfile, copied sources, base, arguments) is unchanged is not rebuilt.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from perennial_hack.cluster import paths
from perennial_hack.images import oci, spec
from perennial_hack.images.dockerfile import build_args

TOOLS = ("buildah", "mmdebstrap")
RECORDS = "images.json"
CA_BUNDLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class ImageRecord:
    name: str
    tag: str
    reference: str
    archive: str
    key: str
    image_id: str
    base: str
    build_seconds: float
    compressed_bytes: int
    uncompressed_bytes: int


def cache_dir(root: Path | None = None) -> Path:
    return (root or paths.cache_root()) / "images"


def say(message: str) -> None:
    print(message, flush=True)


def records(root: Path | None = None) -> dict[str, ImageRecord]:
    path = cache_dir(root) / RECORDS
    try:
        raw: dict[str, dict[str, Any]] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {name: ImageRecord(**value) for name, value in raw.items()}


def _save(found: dict[str, ImageRecord]) -> None:
    path = cache_dir() / RECORDS
    path.write_text(json.dumps({k: asdict(v) for k, v in sorted(found.items())}, indent=2))


def archive_path(name: str, root: Path | None = None) -> Path:
    return cache_dir(root) / f"{name}.oci.tar"


def ca_bundle(env: dict[str, str]) -> Path | None:
    """The CA file pip should trust inside the build: the one this machine's pip uses."""
    for name in CA_BUNDLES:
        if env.get(name) and Path(env[name]).is_file():
            return Path(env[name])
    return SYSTEM_CA if SYSTEM_CA.is_file() else None


def _run(argv: Sequence[str], log: Path | None = None) -> str:
    """Run argv from the repository root; stdout back, or everything into `log`. A failure
    ends the build with the output's tail."""
    if log is None:
        done = subprocess.run(list(argv), cwd=spec.REPO, capture_output=True, text=True)
        code, stdout, output = done.returncode, done.stdout, done.stdout + done.stderr
    else:
        with log.open("wb") as out:
            ran = subprocess.run(list(argv), cwd=spec.REPO, stdout=out, stderr=subprocess.STDOUT)
        code, stdout, output = ran.returncode, "", log.read_text(errors="replace")
    if code != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed (exit {code}):\n{output[-4000:]}")
    return stdout


def image_id(reference: str) -> str | None:
    done = subprocess.run(
        ["buildah", "inspect", "--type", "image", "--format", "{{.FromImageID}}", reference],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def _label(reference: str, label: str) -> str:
    done = subprocess.run(
        [
            "buildah",
            "inspect",
            "--type",
            "image",
            "--format",
            f'{{{{index .OCIv1.Config.Labels "{label}"}}}}',
            reference,
        ],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def _pull(reference: str) -> bool:
    done = subprocess.run(["buildah", "pull", "--quiet", reference], capture_output=True)
    return done.returncode == 0


def local_base() -> str:
    """spec.LOCAL_BASE, assembled from Debian packages unless already built with this key."""
    key = spec.base_key()
    if _label(spec.LOCAL_BASE, spec.KEY_LABEL) == key:
        return spec.LOCAL_BASE
    started = time.monotonic()
    say(f"==> assembling {spec.LOCAL_BASE} from Debian {spec.SUITE} packages (mmdebstrap)")
    folder = cache_dir()
    rootfs, log = folder / "python-base.tar", folder / "logs" / "python-base.log"
    _run(spec.mmdebstrap_argv(rootfs), log)
    container = _run(["buildah", "from", "scratch"]).strip().splitlines()[-1]
    try:
        _run(["buildah", "add", "--quiet", container, str(rootfs), "/"])
        config = ["buildah", "config", "--cmd", spec.BASE_CMD, "--label", f"{spec.KEY_LABEL}={key}"]
        for pair in spec.BASE_ENV:
            config += ["--env", pair]
        _run([*config, container])
        _run(["buildah", "commit", "--quiet", container, spec.LOCAL_BASE])
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)
        rootfs.unlink(missing_ok=True)
    say(f"    {spec.LOCAL_BASE} in {time.monotonic() - started:.0f}s")
    return spec.LOCAL_BASE


def choose_base(default: str, env: dict[str, str]) -> tuple[str | None, str]:
    """(value for --build-arg BASE_IMAGE or None for the default, the base's image id)."""
    wanted = env.get("PERENNIAL_BASE_IMAGE")
    if wanted:
        if image_id(wanted) is None and not _pull(wanted):
            raise SystemExit(f"PERENNIAL_BASE_IMAGE={wanted} is neither present nor pullable")
        return wanted, image_id(wanted) or ""
    if image_id(default) is None and not _pull(default):
        say(f"    {default} cannot be pulled here: using an equivalent from Debian packages")
        base = local_base()
        return base, image_id(base) or ""
    return None, image_id(default) or ""


def uncompressed_size(image: oci.OciImage) -> int:
    """Sum of the layers' tar sizes, as `docker images` and `podman images` count them."""
    total = 0
    with tarfile.open(image.archive) as archive:
        for layer in image.layers:
            blob = oci.blob(archive, layer.digest)
            unzip = zlib.decompressobj(wbits=47) if "gzip" in layer.media_type else None
            while chunk := blob.read(1 << 20):
                total += len(unzip.decompress(chunk)) if unzip else len(chunk)
    return total


def current_key(image: spec.ImageSpec, base: str | None, base_id: str) -> str:
    tag = image.tag(spec.project_version((spec.REPO / "pyproject.toml").read_text()))
    argv = spec.build_argv(image, tag, base=base, ca_bundle=ca_bundle(dict(os.environ)))
    return spec.image_key(spec.REPO, image, base_id, argv)


def stale(name: str) -> str | None:
    """Why the recorded image `name` is not what `make images` would build now, or None.
    Never pulls or builds: the base is the one the record names, as present here."""
    record = records().get(name)
    if record is None or not Path(record.archive).is_file():
        return f"no {name} image: run `make images`"
    image = spec.by_name(name)
    default = build_args((spec.REPO / image.dockerfile).read_text())[spec.BASE_ARG]
    base = None if record.base == default else record.base
    if current_key(image, base, image_id(record.base) or "") != record.key:
        return f"the {name} image is older than its sources: run `make images`"
    return None


def build_one(
    image: spec.ImageSpec, version: str, base: str | None, base_id: str, force: bool
) -> ImageRecord:
    tag, reference = image.tag(version), image.reference(version)
    argv = spec.build_argv(image, tag, base=base, ca_bundle=ca_bundle(dict(os.environ)))
    key = current_key(image, base, base_id)
    archive = archive_path(image.name)
    known = records().get(image.name)
    if not force and known and known.key == key and archive.is_file():
        say(f"{tag} is up to date ({archive})")
        return known
    say(f"==> building {tag} from {image.dockerfile} (base {base or 'default'})")
    started = time.monotonic()
    _run(argv, cache_dir() / "logs" / f"{image.name}.log")
    seconds = time.monotonic() - started
    archive.unlink(missing_ok=True)
    _run(spec.archive_argv(tag, archive, reference))
    read = oci.read(archive)
    record = ImageRecord(
        name=image.name,
        tag=tag,
        reference=reference,
        archive=str(archive),
        key=key,
        image_id=image_id(tag) or "",
        base=base or build_args((spec.REPO / image.dockerfile).read_text()).get(spec.BASE_ARG, ""),
        build_seconds=round(seconds, 1),
        compressed_bytes=read.compressed_size,
        uncompressed_bytes=uncompressed_size(read),
    )
    say(f"    built in {seconds:.0f}s: {_sizes(record)}")
    return record


def _sizes(record: ImageRecord) -> str:
    return (
        f"{record.uncompressed_bytes / 1e6:.0f} MB "
        f"({record.compressed_bytes / 1e6:.0f} MB compressed)"
    )


@contextmanager
def _locked() -> Iterator[None]:
    """One build at a time per machine: buildah copes, our records would not."""
    folder = cache_dir()
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def build(names: Sequence[str] = (), *, force: bool = False) -> dict[str, ImageRecord]:
    if missing_tools():
        raise SystemExit(
            f"missing {', '.join(missing_tools())}: `make images` installs them "
            "(apt-get install buildah mmdebstrap)"
        )
    chosen = [spec.by_name(n) for n in names] if names else list(spec.IMAGES)
    version = spec.project_version((spec.REPO / "pyproject.toml").read_text())
    with _locked():
        found = records()
        bases: dict[str, tuple[str | None, str]] = {}
        for image in chosen:
            default = build_args((spec.REPO / image.dockerfile).read_text())[spec.BASE_ARG]
            if default not in bases:
                bases[default] = choose_base(default, dict(os.environ))
            found[image.name] = build_one(image, version, *bases[default], force)
            _save(found)
    return {image.name: found[image.name] for image in chosen}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else "build"
    if command == "build":
        force = "--force" in args
        build([a for a in args if not a.startswith("-")], force=force)
        return 0
    if command == "list":
        for record in records().values():
            print(
                f"{record.tag:<28} {_sizes(record):<28} built in {record.build_seconds:.0f}s  "
                f"{record.archive}"
            )
        return 0
    print(__doc__, file=sys.stderr)
    return 2
