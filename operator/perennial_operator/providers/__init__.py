"""ComputePool backends behind one Protocol (base.NodeProvider); pick one by spec.provider."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from perennial_operator.k8s.kube import KubeApi
from perennial_operator.providers.base import NodeProvider, ProviderError
from perennial_operator.providers.clusterapi import ClusterAPIProvider
from perennial_operator.providers.kwok import KwokProvider

Factory = Callable[[KubeApi, dict[str, Any], Sequence[dict[str, Any]]], NodeProvider]

# spec.provider key -> implementation; a new cloud is one more entry (see base.py).
PROVIDERS: Mapping[str, Factory] = MappingProxyType(
    {"kwok": KwokProvider, "clusterAPI": ClusterAPIProvider}
)


def provider_for(
    kube: KubeApi, pool: dict[str, Any], nodes: Sequence[dict[str, Any]]
) -> NodeProvider:
    chosen = [key for key in (pool["spec"].get("provider") or {}) if key in PROVIDERS]
    if len(chosen) != 1:
        raise ProviderError(f"spec.provider needs exactly one of {', '.join(PROVIDERS)}")
    return PROVIDERS[chosen[0]](kube, pool, nodes)


__all__ = ("PROVIDERS", "NodeProvider", "ProviderError", "provider_for")
