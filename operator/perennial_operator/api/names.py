"""Names of what the operator creates, and of the containers in its pods.

Builders (desired/) write these names and deciders (decide/) read or predict them, so they
live here, below both. Every name is deterministic: a restarted operator finds (or
re-creates under the same name) what it made before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Final

# Containers of the runtime's pods: the decisions read their termination messages.
VALIDATE_CONTAINER: Final = "validate"  # TrainingJob init container: the data checks
TRAIN_CONTAINER: Final = "train"
PROBE_CONTAINER: Final = "fingerprint"  # RetrainPolicy newData probe
SERVER_CONTAINER: Final = "server"  # InferenceService pods


def child_name(owner_name: str, suffix: str, limit: int = 63) -> str:
    """A deterministic child name; long owners get a short hash so names stay unique."""
    name = f"{owner_name}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(owner_name.encode()).hexdigest()[:8]
    keep = limit - len(suffix) - len(digest) - 2
    return f"{owner_name[:keep].rstrip('-')}-{digest}-{suffix}"


def modelversion_name(model: str, version: int) -> str:
    return f"{model}-v{version}"


def trigger_id(when: dt.datetime) -> str:
    """A RetrainPolicy trigger's (or probe's) time as digits: usable in a name and a label
    value, sortable."""
    return when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


def retrain_trainingjob_name(policy_name: str, trigger: str) -> str:
    """The TrainingJob a RetrainPolicy starts for the trigger `trigger` (a trigger_id)."""
    return child_name(policy_name, trigger)


def probe_job_name(policy_name: str, probe_id: str) -> str:
    """A RetrainPolicy's newData probe Job; `probe_id` is its start time (trigger_id)."""
    return child_name(policy_name, f"newdata-{probe_id}")


# ConfigMap (one per namespace) holding each model's highest version ever registered: a
# number is never reused, even after its ModelVersion is deleted (issue 20, finding 6).
VERSIONS_CONFIGMAP: Final = "perennial-model-versions"

# The steps of an AutoML search fanned out over pods (spec.automl.parallelism > 1): the
# words of its step Jobs' names and labels, and of the trainer's subcommands.
STEP_PLAN: Final = "plan"
STEP_RUNG: Final = "rung"
STEP_FINISH: Final = "finish"
# A rung whose candidates include families that use a GPU (GPU_ALGORITHMS) while the
# TrainingJob asks for one is split over two Indexed Jobs: `rung-R` (the others, no GPU)
# and `rung-R-gpu` (those families, with the GPU).
STEP_PART_GPU: Final = "gpu"
