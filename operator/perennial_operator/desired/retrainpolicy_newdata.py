"""The newData probe of a RetrainPolicy, pure: a ConfigMap with the template as a
TrainingJob manifest and a one-pod Job running `perennial-train fingerprint` on it.

The operator cannot read the dataset itself (it may sit on a claim or behind credentials
only training pods have), so a pod of the runtime image reads it, with the template's
image and dataset claim, and reports its sha256 and rows as the termination message.
The pod is built from the TrainingJob pieces (restricted security, spec and claim mounts,
the runtime container), so it reads the data exactly as training will. It does not go to
the template's ComputePool: it needs no GPU, and a pending probe must not scale a pool up
from zero every poll.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perennial_operator.api.group import LABEL_PROBE, child_labels
from perennial_operator.api.names import PROBE_CONTAINER, child_name
from perennial_operator.config import OperatorConfig
from perennial_operator.desired.common import (
    owner_reference,
    resource_requirements,
    restricted_pod_security,
)
from perennial_operator.desired.retrainpolicy import KIND
from perennial_operator.desired.trainingjob import (
    SPEC_DIR,
    SPEC_FILE,
    claim_of,
    data_image,
    pod_identity,
    pod_mounts,
    pod_volumes,
    runtime_container,
    spec_configmap,
)

PROBE_CPU = "100m"  # hashing is I/O; memory is what parsing the data takes (the template's)
TTL_SECONDS = 600  # a finished probe stays this long for `kubectl logs`, then goes
# A probe only reads and hashes: one stuck pending must not hold the next poll for the
# template's (training-sized) deadline.
PROBE_DEADLINE_SECONDS = 900


def configmap_name(policy_name: str) -> str:
    return child_name(policy_name, "newdata")


def probe_selector(job_name: str) -> str:
    return f"{LABEL_PROBE}={job_name}"


def _labels(policy_name: str, job_name: str | None = None) -> dict[str, str]:
    labels = child_labels(KIND, policy_name)
    if job_name:
        labels[LABEL_PROBE] = job_name
    return labels


def probe_configmap(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The template as the TrainingJob manifest `perennial-train fingerprint -f` reads."""
    name = policy["metadata"]["name"]
    return spec_configmap(policy, configmap_name(name), _labels(name), policy["spec"]["template"])


def probe_job(policy: Mapping[str, Any], name: str, config: OperatorConfig) -> dict[str, Any]:
    """One pod, no retries (a failed probe is simply tried again at the next poll), gone
    TTL_SECONDS after it finished; the template's deadline, at most PROBE_DEADLINE_SECONDS,
    bounds a probe stuck pending."""
    meta, template = policy["metadata"], policy["spec"]["template"]
    claim = claim_of(str(template["dataset"]["uri"]))
    claims = [(claim, True)] if claim else []  # read-only; no artifact claim: nothing is written
    memory = (template.get("resources") or {}).get("memory")
    resources = resource_requirements(
        {"cpu": PROBE_CPU, **({"memory": memory} if memory else {})}, gpu=0
    )
    args = ["perennial-train", "fingerprint", "-f", f"{SPEC_DIR}/{SPEC_FILE}"]
    container = runtime_container(
        PROBE_CONTAINER,
        args,
        data_image(template, config),
        resources,
        pod_mounts(claims),
        list(template.get("envFrom") or []),
    )
    labels = _labels(meta["name"], name)
    pod_meta: dict[str, Any] = {"labels": labels}
    if config.pod_annotations:
        pod_meta["annotations"] = dict(config.pod_annotations)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "containers": [container],
        "volumes": pod_volumes(configmap_name(meta["name"]), claims),
    }
    pod_identity(template, pod_spec)  # the trainer's identity reads the same data
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(dict(policy))],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": min(
                int(template.get("activeDeadlineSeconds", 3600)), PROBE_DEADLINE_SECONDS
            ),
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {"metadata": pod_meta, "spec": pod_spec},
        },
    }
