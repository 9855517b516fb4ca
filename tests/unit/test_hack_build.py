"""Build decisions: version ldflags, one go build per module, the cache check."""

from __future__ import annotations

from pathlib import Path

import pytest

from perennial_hack.cluster import build
from perennial_hack.cluster.versions import Versions

pytestmark = pytest.mark.unit

PINS = Versions(kubernetes="1.37.2", etcd="3.7.0", kwok="0.8.0")


def test_ldflags_set_the_release_version_for_client_go_and_component_base():
    flags = build.version_ldflags(PINS, "2026-10-27T12:01:04Z")
    for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        assert f"-X {pkg}.gitVersion=v1.37.2" in flags
        assert f"-X {pkg}.gitMinor=37" in flags
        assert f"-X {pkg}.buildDate=2026-10-27T12:01:04Z" in flags
    assert flags.startswith("-s -w ")


def test_steps_build_every_binary_once(tmp_path: Path):
    steps = build.build_steps(PINS, tmp_path, "d")
    assert [s.module for s in steps] == ["kubernetes", "etcd", "kwok"]
    assert len(steps[0].packages) == 4 and steps[0].output.endswith("/")
    assert steps[1].output == str(tmp_path / "etcd")  # not "v3", the package's last element
    argv = build.go_build_argv(steps[0], 2)
    assert argv[:2] == ["go", "build"] and "-trimpath" in argv and "-p=2" in argv


def test_cgo_is_off():
    assert build.build_env({"PATH": "/bin"})["CGO_ENABLED"] == "0"


def test_is_built_needs_every_binary_and_a_matching_stamp(tmp_path: Path):
    for name in build.BINARIES:
        (tmp_path / name).write_text("")
        (tmp_path / name).chmod(0o755)
    assert not build.is_built(tmp_path, "k1")
    (tmp_path / build.STAMP).write_text("k1\n")
    assert build.is_built(tmp_path, "k1")
    assert not build.is_built(tmp_path, "k2")
    (tmp_path / "kwok").unlink()
    assert build.missing_binaries(tmp_path) == ["kwok"]
    assert not build.is_built(tmp_path, "k1")


def test_stamp_key_changes_with_the_pins():
    bumped = Versions(kubernetes="1.37.3", etcd="3.7.0", kwok="0.8.0")
    from perennial_hack.cluster.gomod import GOMOD_DIR

    assert build.stamp_key(GOMOD_DIR, PINS) != build.stamp_key(GOMOD_DIR, bumped)


def test_the_committed_fake_gcs_go_mod_builds_the_pinned_version():
    assert build.fake_gcs_pin_mismatch(build.GOMOD_DIR, build.fake_gcs_version()) is None


def test_a_pin_the_go_mod_does_not_require_is_refused_with_the_fix(tmp_path: Path):
    module = tmp_path / build.FAKE_GCS_MODULE
    module.mkdir()
    (module / "go.mod").write_text(f"require {build.FAKE_GCS_PACKAGE} v1.0.0\n")
    assert build.fake_gcs_pin_mismatch(tmp_path, "1.0.0") is None
    problem = build.fake_gcs_pin_mismatch(tmp_path, "1.56.1")
    assert problem is not None and "go mod tidy" in problem


def test_fake_gcs_stamp_changes_with_the_version_and_go_sum(tmp_path: Path):
    module = tmp_path / build.FAKE_GCS_MODULE
    module.mkdir()
    (module / "go.mod").write_text("module x\n")
    (module / "go.sum").write_text("a\n")
    first = build.fake_gcs_stamp_key(tmp_path, "1.0.0")
    assert build.fake_gcs_stamp_key(tmp_path, "1.0.1") != first
    (module / "go.sum").write_text("b\n")
    assert build.fake_gcs_stamp_key(tmp_path, "1.0.0") != first
