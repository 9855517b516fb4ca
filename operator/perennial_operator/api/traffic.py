"""Traffic steering through a Gateway API HTTPRoute (InferenceService spec.rollout.httpRoute):
the API it speaks, the field manager it writes as, its condition type and reasons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

GATEWAY_GROUP: Final = "gateway.networking.k8s.io"
GATEWAY_VERSION: Final = "v1"
HTTPROUTES: Final = "httproutes"

# A manager of its own, so `kubectl get httproute -o yaml --show-managed-fields` tells the
# route's owner which writer changed its rules.
TRAFFIC_FIELD_MANAGER: Final = "perennial-traffic"

# InferenceService condition type: present only while spec.rollout.httpRoute is set.
TRAFFIC_ROUTED: Final = "TrafficRouted"

# Its reasons
WEIGHTS_APPLIED: Final = "WeightsApplied"
HTTPROUTE_NOT_FOUND: Final = "HTTPRouteNotFound"
GATEWAY_API_NOT_INSTALLED: Final = "GatewayAPINotInstalled"
HTTPROUTE_FORBIDDEN: Final = "HTTPRouteForbidden"
HTTPROUTE_NO_BACKEND: Final = "HTTPRouteHasNoBackendRef"
HTTPROUTE_PATCH_FAILED: Final = "HTTPRoutePatchFailed"
HTTPROUTE_NOT_ACCEPTED: Final = "HTTPRouteNotAccepted"

# Progressing reason while a canary waits for a usable route
WAITING_FOR_HTTPROUTE: Final = "WaitingForHTTPRoute"

# Event reason when the operator changed the route's weights
TRAFFIC_SHIFTED: Final = "TrafficShifted"


@dataclass(frozen=True)
class Backend:
    """One weight of the route: the role Service of a track (api/tracks.py)."""

    role: str  # stable | canary
    version: int | None  # what the role's Service selects; None: the stable Deployment's pods
    weight: int
