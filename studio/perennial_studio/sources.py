"""What the Studio watches: the five Perennial kinds, and the few core kinds the pages need,
narrowed server-side (label and field selectors) to Perennial's own objects."""

from __future__ import annotations

from perennial_operator.api.group import (
    API_VERSION,
    COMPUTEPOOLS,
    GROUP,
    INFERENCESERVICES,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    MODELVERSIONS,
    RETRAINPOLICIES,
    TRAININGJOBS,
    VERSION,
)
from perennial_studio.kube import Resource
from perennial_studio.reflector import Watched

OURS = f"{MANAGED_BY}={MANAGED_BY_VALUE}"  # on every child the operator creates

WATCHED = (
    Watched(Resource("TrainingJob", GROUP, VERSION, TRAININGJOBS)),
    Watched(Resource("ModelVersion", GROUP, VERSION, MODELVERSIONS)),
    Watched(Resource("InferenceService", GROUP, VERSION, INFERENCESERVICES)),
    Watched(Resource("RetrainPolicy", GROUP, VERSION, RETRAINPOLICIES)),
    Watched(Resource("ComputePool", GROUP, VERSION, COMPUTEPOOLS, namespaced=False)),
    Watched(Resource("Job", "batch", "v1", "jobs"), label_selector=OURS),
    Watched(Resource("Pod", "", "v1", "pods"), label_selector=OURS),
    Watched(Resource("Deployment", "apps", "v1", "deployments"), label_selector=OURS),
    # Nodes: all of them (pool membership is a label, a pod's node is any node); kept small.
    Watched(Resource("Node", "", "v1", "nodes", namespaced=False)),
    # Events about our kinds only, whoever posted them (operator, Studio, CLI, people).
    Watched(
        Resource("Event", "", "v1", "events"),
        field_selector=f"involvedObject.apiVersion={API_VERSION}",
    ),
)
