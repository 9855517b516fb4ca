"""Building the API client: in-cluster credentials in a pod, KUBECONFIG elsewhere."""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, config

# Connections kept to the API server: one per thread that may call it at once (kopf's 8
# executor threads, the event loop's default executor, the InferenceService threads). The
# client's default, 5 per CPU, is 10 on a 2-core node: in a burst, the 11th concurrent
# request's connection was discarded after use ("Connection pool is full") and the next
# one paid a new TCP and TLS handshake, on the API server's CPU too.
POOL_SIZE = 32

# How often the credentials are looked at again. The client's loaders install a hook that
# it runs before every request; it sets the whole configuration again each time (the host
# setter scans the environment for proxies): ~0.1 ms a request; in a burst of TrainingJobs
# 2.6 % of the operator's CPU (GIL-held profile), 5 % less per unit of API-server work
# without it (side by side; issue 18). The loaders' own refresh is coarser anyway: the
# in-cluster token file is read again once a minute, a kubeconfig's expiring credential
# (exec, OIDC) 5 minutes before it expires.
CREDENTIALS_SECONDS = 10.0

RefreshHook = Callable[[Any], None]


class ThrottledRefresh:
    """A configuration's refresh_api_key_hook run at most once per `seconds`.

    The loaders' hook installs a new hook of its own each time it runs (it sets the whole
    configuration again); that one becomes the hook this one runs next, and this one is put
    back in its place."""

    def __init__(
        self,
        hook: RefreshHook,
        seconds: float = CREDENTIALS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hook = hook
        self._seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._due = float("-inf")

    def __deepcopy__(self, memo: dict[int, Any]) -> ThrottledRefresh:
        """A throttle of its own over the same loader's hook, for a copy of the
        configuration (copy_api_client): one shared by two configurations would let a
        refresh of one stand for both, and the other would keep sending its old token."""
        return ThrottledRefresh(self._hook, self._seconds, self._clock)

    def __call__(self, configuration: Any) -> None:
        with self._lock:
            now = self._clock()
            if now < self._due:
                return
            self._due = now + self._seconds
            hook = self._hook
        hook(configuration)
        installed = configuration.refresh_api_key_hook
        if installed is not self and installed is not None:
            self._hook = installed
            configuration.refresh_api_key_hook = self


def make_api_client(pool_size: int = POOL_SIZE) -> client.ApiClient:
    cfg = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG"), client_configuration=cfg
        )
    if cfg.refresh_api_key_hook is not None:
        cfg.refresh_api_key_hook = ThrottledRefresh(cfg.refresh_api_key_hook)
    cfg.connection_pool_maxsize = pool_size
    return client.ApiClient(cfg)


def copy_api_client(api: client.ApiClient, pool_size: int) -> client.ApiClient:
    """Another client with `api`'s configuration (the credentials as loaded, not loaded
    again) and a connection pool of its own of pool_size. Its credentials are refreshed as
    the original's are: the loader's hook, throttled on its own."""
    cfg = copy.deepcopy(api.configuration)
    cfg.connection_pool_maxsize = pool_size
    return client.ApiClient(cfg)
