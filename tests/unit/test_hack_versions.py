"""hack/versions.env parsing and the staging tag derived from it."""

from __future__ import annotations

import pytest

from perennial_hack.cluster import versions

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("A=1\nB=two\n", {"A": "1", "B": "two"}, id="plain"),
        pytest.param("# c\n\nA=1  # why\n", {"A": "1"}, id="comments"),
        pytest.param("A='x'\nB=\"y\"", {"A": "x", "B": "y"}, id="quotes"),
    ],
)
def test_parse_env(text, expected):
    assert versions.parse_env(text) == expected


def test_parse_env_rejects_a_line_without_equals():
    with pytest.raises(ValueError, match="KEY=VALUE"):
        versions.parse_env("K8S_VERSION 1.37.2")


def test_versions_from_env_strips_v_and_derives_the_staging_tag():
    v = versions.versions_from_env(
        {"K8S_VERSION": "v1.37.2", "ETCD_VERSION": "3.7.0", "KWOK_VERSION": "v0.8.0"}
    )
    assert (v.kubernetes, v.etcd, v.kwok) == ("1.37.2", "3.7.0", "0.8.0")
    assert (v.staging, v.kubernetes_minor) == ("v0.37.2", "37")


def test_the_pinned_file_loads():
    v = versions.load()
    assert v.kubernetes.count(".") == 2
