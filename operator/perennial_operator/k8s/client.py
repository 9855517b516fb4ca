"""Building the API client: in-cluster credentials in a pod, KUBECONFIG elsewhere."""

from __future__ import annotations

import os

from kubernetes import client, config


def make_api_client() -> client.ApiClient:
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=os.environ.get("KUBECONFIG")
    )
    return api
