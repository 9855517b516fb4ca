"""Wrapper go.mod generation: the staging replace list comes from the release's go.mod."""

from __future__ import annotations

import pytest

from perennial_hack.cluster import gomod, versions
from perennial_hack.cluster.versions import Versions

pytestmark = pytest.mark.unit

UPSTREAM = """\
module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tgithub.com/spf13/cobra v1.10.2
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/sample-controller => ./staging/src/k8s.io/sample-controller
\tgithub.com/example/x => github.com/example/x v1.0.0
)
"""
PINS = Versions(kubernetes="1.37.2", etcd="3.7.0", kwok="0.8.0")


def test_staging_modules_are_exactly_the_local_replaces():
    assert gomod.staging_modules(UPSTREAM) == [
        "k8s.io/api",
        "k8s.io/client-go",
        "k8s.io/sample-controller",
    ]


def test_go_and_godebug_lines_are_copied():
    assert gomod.go_directive(UPSTREAM) == "1.26.0"
    assert gomod.godebug_lines(UPSTREAM) == ("godebug default=go1.26",)


def test_kubernetes_wrapper_pins_every_staging_module_to_the_release_tag():
    text = gomod.render_gomod(gomod.kubernetes_module(PINS, UPSTREAM))
    assert "\tk8s.io/kubernetes v1.37.2\n" in text
    assert "\tk8s.io/api => k8s.io/api v0.37.2\n" in text
    assert "\tk8s.io/sample-controller => k8s.io/sample-controller v0.37.2\n" in text
    assert "github.com/example/x =>" not in text
    assert "\tk8s.io/kubernetes/cmd/kubectl\n" in text  # a tool directive per binary
    assert "godebug default=go1.26" in text


def test_a_gomod_without_staging_is_refused():
    with pytest.raises(ValueError, match="staging"):
        gomod.kubernetes_module(PINS, "module x\n\ngo 1.26\n")


def test_etcd_and_kwok_wrappers_have_no_replaces():
    for module in (gomod.etcd_module(PINS, "go 1.26\n"), gomod.kwok_module(PINS, "go 1.26.0\n")):
        assert "replace" not in gomod.render_gomod(module)


def test_committed_wrappers_match_the_pins():
    pins = versions.load()
    text = (gomod.GOMOD_DIR / "kubernetes" / "go.mod").read_text()
    assert f"k8s.io/kubernetes v{pins.kubernetes}" in text, "run `perennial-cluster gen`"
    assert (
        f"go.etcd.io/etcd/server/v3 v{pins.etcd}"
        in (gomod.GOMOD_DIR / "etcd" / "go.mod").read_text()
    )
    assert f"sigs.k8s.io/kwok v{pins.kwok}" in (gomod.GOMOD_DIR / "kwok" / "go.mod").read_text()
