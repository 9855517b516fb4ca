"""Where a pod may run: the nodeSelector, tolerations and GPU count a ComputePool implies.

TrainingJob and InferenceService pods both take their placement from here, so the rule
lives once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Placement:
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    pool_gpus_per_node: int = 0

    def gpus_for(self, requested: int) -> int:
        """GPUs only when the workload's own spec asks (`resources.gpu`): landing on a GPU
        pool (to share its nodes, or because it is the only pool) grants none by itself, so
        a pod can use no device it did not request (issue 20, finding 10)."""
        return max(requested, 0)


NO_POOL = Placement()


def pool_placement(pool: dict[str, Any]) -> Placement:
    spec = pool.get("spec", {})
    tolerations = [
        {
            "key": taint["key"],
            "operator": "Equal" if taint.get("value") else "Exists",
            **({"value": taint["value"]} if taint.get("value") else {}),
            "effect": taint["effect"],
        }
        for taint in spec.get("taints", [])
    ]
    return Placement(
        node_selector=dict(spec.get("labels", {})),
        tolerations=tolerations,
        pool_gpus_per_node=int(spec.get("node", {}).get("gpu", 0) or 0),
    )
