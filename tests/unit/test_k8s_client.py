"""The API client keeps a connection per thread that may call the API server at once, and
looks at its credentials again once per period, not before every request; a copy of it (the
watches') has a pool of its own and refreshes its credentials on its own."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.config.incluster_config import InClusterConfigLoader

from perennial_operator.k8s.client import (
    POOL_SIZE,
    ThrottledRefresh,
    copy_api_client,
    make_api_client,
)
from support.kubeconfig import write_kubeconfig

pytestmark = pytest.mark.unit


def _client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> client.ApiClient:
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path)))
    return make_api_client()


def test_the_connection_pool_is_not_the_clients_default_of_five_per_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = _client(tmp_path, monkeypatch)
    assert api.configuration.host == "https://127.0.0.1:6443"
    assert api.rest_client.pool_manager.connection_pool_kw["maxsize"] == POOL_SIZE
    assert POOL_SIZE >= 8 + 6 + 4  # kopf's executor, the default executor, serving threads


def _in_cluster(
    tmp_path: Path, token: str
) -> tuple[client.Configuration, InClusterConfigLoader, Path]:
    """A configuration from the client's own in-cluster loader."""
    token_file, ca = tmp_path / "token", tmp_path / "ca.crt"
    token_file.write_text(token)
    ca.write_text("not checked here")
    cfg = client.Configuration()
    environ = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    loader = InClusterConfigLoader(str(token_file), str(ca), environ=environ)
    loader.load_and_set(cfg)
    return cfg, loader, token_file


def _throttled_in_cluster(
    tmp_path: Path, token: str
) -> tuple[client.Configuration, InClusterConfigLoader, Path, list[float]]:
    """_in_cluster's configuration with the loader's hook throttled to once per 10 s of a
    clock the test moves (now[0])."""
    cfg, loader, token_file = _in_cluster(tmp_path, token)
    now = [100.0]
    cfg.refresh_api_key_hook = ThrottledRefresh(cfg.refresh_api_key_hook, 10.0, lambda: now[0])
    return cfg, loader, token_file, now


def _rotate(loader: InClusterConfigLoader, token_file: Path, token: str) -> None:
    """The kubelet rotated the token, and the loader's own period (a minute) is up: its
    hook reads the file again the next time it runs, so what is seen here is when it runs."""
    token_file.write_text(token)
    loader.token_expires_at = datetime.datetime.now()


def _sent(cfg: client.Configuration) -> str:
    return str(cfg.auth_settings()["BearerToken"]["value"])


def test_credentials_are_looked_at_again_once_per_period_not_per_request(
    tmp_path: Path,
) -> None:
    cfg, loader, token_file, now = _throttled_in_cluster(tmp_path, "one")
    assert _sent(cfg) == "bearer one"
    _rotate(loader, token_file, "two")
    now[0] += 9.0
    assert _sent(cfg) == "bearer one"  # within the period: the hook did not run
    now[0] += 1.0
    assert _sent(cfg) == "bearer two"
    # The loader's hook put a new hook of its own in place; ours is back in front of it.
    assert isinstance(cfg.refresh_api_key_hook, ThrottledRefresh)
    _rotate(loader, token_file, "three")
    now[0] += 10.0
    assert _sent(cfg) == "bearer three"


def test_the_client_runs_the_loaders_hook_throttled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _client(tmp_path, monkeypatch).configuration
    assert isinstance(cfg.refresh_api_key_hook, ThrottledRefresh)
    assert _sent(cfg) == "Bearer t"
    assert isinstance(cfg.refresh_api_key_hook, ThrottledRefresh)
    assert _sent(cfg) == "Bearer t"


def test_a_copy_has_a_pool_of_its_own_and_refreshes_its_credentials_on_its_own(
    tmp_path: Path,
) -> None:
    cfg, loader, token_file, now = _throttled_in_cluster(tmp_path, "one")
    cfg.connection_pool_maxsize = POOL_SIZE
    original = client.ApiClient(cfg)
    copied = copy_api_client(original, 1024)
    assert copied.rest_client.pool_manager.connection_pool_kw["maxsize"] == 1024
    assert original.rest_client.pool_manager.connection_pool_kw["maxsize"] == POOL_SIZE
    mine, its = original.configuration, copied.configuration
    assert its.host == mine.host == "https://10.0.0.1:443"
    assert _sent(mine) == _sent(its) == "bearer one"
    _rotate(loader, token_file, "two")  # the kubelet rotated the token
    now[0] += 10.0
    # Each one's period is its own: the original's refresh does not stand for the copy's.
    assert _sent(mine) == "bearer two"
    assert _sent(its) == "bearer two"
    assert isinstance(its.refresh_api_key_hook, ThrottledRefresh)
    assert its.refresh_api_key_hook is not mine.refresh_api_key_hook
