"""What a Dockerfile says about its image, read without building it; and how `make images`
builds (argv, keys, the assembled base)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from perennial_hack.images import dockerfile, oci, spec

pytestmark = pytest.mark.unit

TEXT = """\
# syntax comment
ARG BASE_IMAGE=python:3.11.11-slim-bookworm
ARG OTHER
FROM ${BASE_IMAGE} AS build
RUN echo one \\
    # a comment inside a continued RUN
    && echo two
ENTRYPOINT ["never-used"]
FROM ${BASE_IMAGE}
CMD ["python3"]
ENTRYPOINT ["perennial-train"]
USER 65532:65532
WORKDIR /tmp
CMD ["--help"]
"""


def test_instructions_join_continuations_and_drop_comments():
    steps = dockerfile.instructions(TEXT)
    runs = [" ".join(rest.split()) for word, rest in steps if word == "RUN"]
    assert runs == ["echo one && echo two"]
    assert all(word.isupper() for word, _ in steps)
    assert [w for w, _ in steps].count("FROM") == 2


def test_build_args_are_the_defaults_before_the_first_from():
    assert dockerfile.build_args(TEXT) == {"BASE_IMAGE": "python:3.11.11-slim-bookworm"}


def test_the_final_stage_decides_and_entrypoint_drops_an_earlier_cmd():
    config = dockerfile.image_config(TEXT)
    assert config.entrypoint == ("perennial-train",)
    assert config.cmd == ("--help",)  # declared after ENTRYPOINT: kept
    assert (config.user, config.workdir) == ("65532:65532", "/tmp")
    no_cmd = dockerfile.image_config('FROM x\nCMD ["a"]\nENTRYPOINT ["b"]\n')
    assert no_cmd == dockerfile.ImageConfig(entrypoint=("b",))


def test_declared_env_is_the_final_stages_env_in_both_forms() -> None:
    text = """\
FROM base AS build
ENV BUILD_ONLY=1
FROM base
ENV A=1 B="two words" \\
    C=x=y
# the legacy form: one variable, the rest of the line
ENV LEGACY some value
ENV A=3
"""
    assert dockerfile.declared_env(text) == {
        "A": "3",
        "B": "two words",
        "C": "x=y",
        "LEGACY": "some value",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        dockerfile.declared_env("FROM base\nENV A=1 B\n")
    with pytest.raises(ValueError, match="nothing to set"):
        dockerfile.declared_env("FROM base\nENV\n")


def test_the_allocator_env_is_the_operator_images_own() -> None:
    declared = dockerfile.declared_env((spec.REPO / "operator" / "Dockerfile").read_text())
    assert spec.allocator_env("operator") == {
        k: declared[k] for k in ("MALLOC_MMAP_THRESHOLD_", "PYTHONMALLOC")
    }
    assert spec.allocator_env("runtime") == {}


def test_shell_form_runs_through_sh():
    assert dockerfile.image_config("FROM x\nCMD echo hi\n").cmd == ("/bin/sh", "-c", "echo hi")


@pytest.mark.parametrize("name", [s.name for s in spec.IMAGES])
def test_our_dockerfiles_take_the_base_as_an_argument_and_run_as_a_numeric_user(name: str):
    image = spec.by_name(name)
    text = (spec.REPO / image.dockerfile).read_text()
    assert dockerfile.build_args(text)[spec.BASE_ARG].startswith("python:3.11")
    assert all(
        rest == f"${{{spec.BASE_ARG}}}" or rest.startswith(f"${{{spec.BASE_ARG}}} ")
        for word, rest in dockerfile.instructions(text)
        if word == "FROM"
    )
    user = dockerfile.image_config(text).user
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0"


def test_the_runtime_image_runs_perennial_train_and_pods_name_their_program():
    config = dockerfile.image_config((spec.REPO / "trainer_image/Dockerfile").read_text())
    assert config.entrypoint == ("perennial-train",)


def test_build_argv_passes_the_base_and_the_ca_bundle_as_a_secret(tmp_path: Path):
    image = spec.by_name("runtime")
    argv = spec.build_argv(
        image, "perennial/runtime:1", base=spec.LOCAL_BASE, ca_bundle=tmp_path / "ca.pem"
    )
    assert argv[:2] == ["buildah", "build"] and argv[-1] == "."
    assert f"{spec.BASE_ARG}={spec.LOCAL_BASE}" in argv
    assert f"id=ca-bundle,src={tmp_path / 'ca.pem'}" in argv
    default = spec.build_argv(image, "t", base=None, ca_bundle=None)
    assert "--build-arg" not in default and "--secret" not in default


def test_the_archive_is_named_as_containerd_resolves_the_pod_image():
    image = spec.by_name("runtime")
    assert image.reference("0.1.0") == "docker.io/perennial/runtime:0.1.0"
    argv = spec.archive_argv("perennial/runtime:0.1.0", Path("/c/r.tar"), image.reference("0.1.0"))
    assert argv[-1] == "oci-archive:/c/r.tar:docker.io/perennial/runtime:0.1.0"


def test_the_key_changes_with_a_source_file_the_base_and_the_argv(tmp_path: Path):
    repo = tmp_path
    (repo / "pkg").mkdir()
    (repo / "pkg" / "a.py").write_text("x = 1\n")
    (repo / "pkg" / "__pycache__").mkdir()
    (repo / "pkg" / "__pycache__" / "a.pyc").write_bytes(b"junk")
    (repo / "Dockerfile").write_text("FROM x\n")
    image = spec.ImageSpec("t", "t/t", "Dockerfile", ("pkg",))
    key = spec.image_key(repo, image, "base1", ["a"])
    (repo / "pkg" / "__pycache__" / "a.pyc").write_bytes(b"other")  # ignored, as in the build
    assert spec.image_key(repo, image, "base1", ["a"]) == key
    assert spec.image_key(repo, image, "base2", ["a"]) != key
    assert spec.image_key(repo, image, "base1", ["b"]) != key
    (repo / "pkg" / "a.py").write_text("x = 2\n")
    assert spec.image_key(repo, image, "base1", ["a"]) != key


def test_the_assembled_base_is_minbase_with_python_and_without_usrmerge(tmp_path: Path):
    argv = spec.mmdebstrap_argv(tmp_path / "base.tar")
    assert argv[0] == "mmdebstrap" and "--variant=minbase" in argv
    assert "--include=python3,python3-venv,ca-certificates" in argv
    assert "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr" in argv
    assert argv[argv.index(spec.SUITE) + 1] == str(tmp_path / "base.tar")
    assert spec.project_version('[project]\nname = "p"\nversion = "1.2.3"\n') == "1.2.3"


def _tar(entries: dict[str, bytes | None]) -> list[tarfile.TarInfo]:
    """TarInfos of a layer: None is a folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                out.addfile(info)
            else:
                info.size = len(data)
                out.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as back:
        return back.getmembers()


def test_layers_apply_in_order_with_whiteouts_and_opaque_folders():
    files: dict[str, int] = {}
    oci.apply_layer(files, iter(_tar({"a/": None, "a/x": b"12", "a/y": b"1", "b/z": b"123"})))
    oci.apply_layer(files, iter(_tar({"a/.wh.x": b"", "b/.wh..wh..opq": b"", "b/n": b"1"})))
    assert files == {"/a": 0, "/a/y": 1, "/b/n": 1}
