"""Building the API client: in-cluster credentials in a pod, KUBECONFIG elsewhere."""

from __future__ import annotations

import os

from kubernetes import client, config

# Connections kept to the API server: one per thread that may call it at once (kopf's 8
# executor threads, the event loop's default executor, the InferenceService threads). The
# client's default, 5 per CPU, is 10 on a 2-core node: in a burst, the 11th concurrent
# request's connection was discarded after use ("Connection pool is full") and the next
# one paid a new TCP and TLS handshake, on the API server's CPU too.
POOL_SIZE = 32


def make_api_client() -> client.ApiClient:
    cfg = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG"), client_configuration=cfg
        )
    cfg.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(cfg)
