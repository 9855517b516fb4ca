"""Which pods ask for a ComputePool, what they request, and whether the scheduler gave up.

Pure reads of Pod dicts. A pod *selects* a pool when it names the pool's labels (through
nodeSelector or required node affinity), a node of the pool would satisfy all of its node
constraints, and it tolerates the pool's taints. Pods that merely could run anywhere do not
make a pool grow: a GPU pool must not scale up for a stray web pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perennial_operator.api.computepool import admits_namespace, pool_node_labels, pool_taints
from perennial_operator.api.group import LABEL_COMPUTEPOOL
from perennial_operator.decide.computepool.binpack import PODS, Resources, milli

HARD_EFFECTS = ("NoSchedule", "NoExecute")  # PreferNoSchedule does not keep a pod away


@dataclass(frozen=True)
class PodView:
    key: str  # namespace/name
    node_name: str | None
    phase: str
    requests: Resources
    daemon: bool  # a DaemonSet or static pod: goes with the node, never keeps it alive
    unschedulable_since: str | None  # lastTransitionTime of PodScheduled=False/Unschedulable

    @property
    def active(self) -> bool:
        return self.phase not in ("Succeeded", "Failed")


def pod_requests(pod: Mapping[str, Any]) -> Resources:
    """What the scheduler reserves: max(sum of containers, largest init container) plus
    the pod overhead, and one pod slot."""
    spec = pod.get("spec") or {}

    def requests(container: Mapping[str, Any]) -> Resources:
        return Resources.of((container.get("resources") or {}).get("requests") or {})

    main = Resources()
    for container in spec.get("containers") or []:
        main = main + requests(container)
    for container in spec.get("initContainers") or []:
        init = requests(container)
        main = Resources({n: max(main.get(n), init.get(n)) for n in {*main.amounts, *init.amounts}})
    return main + Resources.of(spec.get("overhead") or {}) + Resources({PODS: milli(1)})


def unschedulable_since(pod: Mapping[str, Any]) -> str | None:
    """When the scheduler gave up on this pod (None: it did not, or the pod is placed)."""
    status = pod.get("status") or {}
    if status.get("phase", "Pending") != "Pending" or (pod.get("spec") or {}).get("nodeName"):
        return None
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return None  # going away: no node should be made for it
    for cond in status.get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return str(cond.get("lastTransitionTime") or "")  # "" still means: it is
    return None


def is_daemon_pod(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        return True
    return any(ref.get("kind") == "DaemonSet" for ref in meta.get("ownerReferences") or [])


def pod_view(pod: Mapping[str, Any]) -> PodView:
    meta = pod.get("metadata") or {}
    return PodView(
        key=f"{meta.get('namespace')}/{meta.get('name')}",
        node_name=(pod.get("spec") or {}).get("nodeName") or None,
        phase=str((pod.get("status") or {}).get("phase") or "Pending"),
        requests=pod_requests(pod),
        daemon=is_daemon_pod(pod),
        unschedulable_since=unschedulable_since(pod),
    )


def _expression_holds(labels: Mapping[str, str], expr: Mapping[str, Any]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and values:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _required_terms(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    affinity = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return list(required.get("nodeSelectorTerms") or [])


def _term_holds(labels: Mapping[str, str], term: Mapping[str, Any]) -> bool:
    # matchFields pins a pod to a named node; a node we have yet to create never matches.
    if term.get("matchFields"):
        return False
    return all(_expression_holds(labels, e) for e in term.get("matchExpressions") or [])


def fits_node_labels(pod: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    terms = _required_terms(pod)
    return not terms or any(_term_holds(labels, t) for t in terms)


def _named_keys(pod: Mapping[str, Any]) -> set[str]:
    keys = set(((pod.get("spec") or {}).get("nodeSelector") or {}).keys())
    for term in _required_terms(pod):
        for expr in term.get("matchExpressions") or []:
            if expr.get("operator") in ("In", "Exists"):
                keys.add(str(expr.get("key")))
    return keys


def tolerates(tolerations: list[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol.get("key") == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def selects_pool(pod: Mapping[str, Any], pool: dict[str, Any]) -> bool:
    """Does this pod ask for this pool, and could a new node of the pool take it? A pod of a
    namespace the pool does not admit (spec.namespaces) never counts as its demand."""
    if not admits_namespace(pool, (pod.get("metadata") or {}).get("namespace")):
        return False
    wanted = set((pool["spec"].get("labels") or {}).keys())
    named = _named_keys(pod)
    if not (LABEL_COMPUTEPOOL in named or (wanted and wanted <= named)):
        return False
    if not fits_node_labels(pod, pool_node_labels(pool)):
        return False
    tolerations = list((pod.get("spec") or {}).get("tolerations") or [])
    return all(
        tolerates(tolerations, t) for t in pool_taints(pool) if t.get("effect") in HARD_EFFECTS
    )
