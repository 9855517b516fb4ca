"""The API client keeps a connection per thread that may call the API server at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from perennial_operator.k8s.client import POOL_SIZE, make_api_client

pytestmark = pytest.mark.unit

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "x",
}


def test_the_connection_pool_is_not_the_clients_default_of_five_per_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    monkeypatch.setenv("KUBECONFIG", str(path))
    api = make_api_client()
    assert api.configuration.host == "https://127.0.0.1:6443"
    assert api.rest_client.pool_manager.connection_pool_kw["maxsize"] == POOL_SIZE
    assert POOL_SIZE >= 8 + 6 + 4  # kopf's executor, the default executor, serving threads
