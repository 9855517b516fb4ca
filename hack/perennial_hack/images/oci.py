"""Read an image from an OCI archive (`buildah push ... oci-archive:`): its name, config,
layer sizes and final file list. Plain tarfile and JSON, so tests can check the built image
itself (user, entrypoint, size, what is installed) with no container tool.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from perennial_hack.images.dockerfile import ImageConfig

REF_ANNOTATION = "org.opencontainers.image.ref.name"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int  # bytes in the archive (compressed)
    media_type: str


@dataclass(frozen=True)
class OciImage:
    archive: Path
    reference: str  # as the index names it, e.g. docker.io/perennial/runtime:0.1.0
    config: dict[str, Any]
    layers: tuple[Layer, ...]

    @property
    def compressed_size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def image_config(self) -> ImageConfig:
        cfg = self.config.get("config") or {}
        return ImageConfig(
            entrypoint=tuple(cfg.get("Entrypoint") or ()),
            cmd=tuple(cfg.get("Cmd") or ()),
            user=str(cfg.get("User") or ""),
            workdir=str(cfg.get("WorkingDir") or ""),
        )

    def env(self) -> dict[str, str]:
        pairs = (item.partition("=") for item in (self.config.get("config") or {}).get("Env", []))
        return {key: value for key, _, value in pairs}


def blob(archive: tarfile.TarFile, digest: str) -> IO[bytes]:
    algorithm, _, hexdigest = digest.partition(":")
    member = archive.extractfile(f"blobs/{algorithm}/{hexdigest}")
    if member is None:
        raise ValueError(f"blob {digest} missing from the archive")
    return member


def _json_blob(archive: tarfile.TarFile, digest: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(blob(archive, digest).read())
    return value


def read(path: Path) -> OciImage:
    with tarfile.open(path) as archive:
        index = json.loads(archive.extractfile("index.json").read())  # type: ignore[union-attr]
        (descriptor,) = index["manifests"]
        manifest = _json_blob(archive, descriptor["digest"])
        config = _json_blob(archive, manifest["config"]["digest"])
    layers = tuple(
        Layer(item["digest"], int(item["size"]), item["mediaType"]) for item in manifest["layers"]
    )
    reference = (descriptor.get("annotations") or {}).get(REF_ANNOTATION, "")
    return OciImage(path, reference, config, layers)


def _open_layer(archive: tarfile.TarFile, layer: Layer) -> tarfile.TarFile:
    """The layer as a streaming tar (read its entries in order, once)."""
    data = blob(archive, layer.digest)
    if layer.media_type.endswith("gzip"):
        return tarfile.open(fileobj=data, mode="r|gz")
    if layer.media_type.endswith("tar"):
        return tarfile.open(fileobj=data, mode="r|")
    raise ValueError(f"layer media type {layer.media_type} is not readable here")


def _layer_entries(archive: tarfile.TarFile, layer: Layer) -> Iterator[tarfile.TarInfo]:
    with _open_layer(archive, layer) as stream:
        yield from stream


def apply_layer(files: dict[str, int], entries: Iterator[tarfile.TarInfo]) -> None:
    """Apply one layer's entries to `files` (path -> size), whiteouts included."""
    for entry in entries:
        name = posixpath.normpath("/" + entry.name.removeprefix("./"))
        folder, base = posixpath.split(name)
        if base == OPAQUE:
            for path in [p for p in files if p.startswith(folder.rstrip("/") + "/")]:
                del files[path]
        elif base.startswith(WHITEOUT):
            gone = posixpath.join(folder, base.removeprefix(WHITEOUT))
            for path in [p for p in files if p == gone or p.startswith(gone + "/")]:
                del files[path]
        else:
            files[name] = entry.size if entry.isreg() else 0


def file_sizes(image: OciImage) -> dict[str, int]:
    """The image's final filesystem: path -> size in bytes (0 for folders and links)."""
    files: dict[str, int] = {}
    with tarfile.open(image.archive) as archive:
        for layer in image.layers:
            apply_layer(files, _layer_entries(archive, layer))
    return files


def read_file(image: OciImage, path: str) -> bytes:
    """A regular file's content, as the last layer holding it has it (b"" if none)."""
    found = b""
    wanted = posixpath.normpath("/" + path.lstrip("/"))
    with tarfile.open(image.archive) as archive:
        for layer in image.layers:
            with _open_layer(archive, layer) as stream:
                for entry in stream:
                    name = posixpath.normpath("/" + entry.name.removeprefix("./"))
                    if name == wanted and entry.isreg():
                        handle = stream.extractfile(entry)
                        found = handle.read() if handle else b""
    return found
