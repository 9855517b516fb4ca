"""The step Jobs of an AutoML search fanned out over pods (spec.automl.parallelism > 1).

plan and finish are ordinary one-pod Jobs; each rung is an Indexed Job, one completion per
candidate, ``parallelism`` pods at a time, spread over the pool's nodes. A candidate that
fails (a bad configuration, a crash twice) fails only its index (backoffLimitPerIndex,
podFailurePolicy FailIndex): finish ranks the others. When the TrainingJob asks for a GPU,
a rung may be two Jobs (decide/trainingjob/search.py ``rung_jobs``): ``rung-R-gpu``'s pods
have the GPU, ``rung-R``'s and the plan's do not; each pod runs the candidate its
completion index points at in ``--indexes``. Pods are built with the same helpers
as the single training pod (desired/trainingjob.py). Pure.
"""

from __future__ import annotations

from typing import Any

from perennial_operator.api import runtime_contract as rc
from perennial_operator.api.group import GROUP, LABEL_TRAININGJOB_UID
from perennial_operator.api.names import STEP_FINISH as FINISH
from perennial_operator.api.names import STEP_PART_GPU as GPU
from perennial_operator.api.names import STEP_PLAN as PLAN
from perennial_operator.api.names import STEP_RUNG as RUNG
from perennial_operator.api.names import TRAIN_CONTAINER, child_name
from perennial_operator.config import OperatorConfig
from perennial_operator.desired import trainingjob as desired_tj
from perennial_operator.desired.common import owner_reference
from perennial_operator.desired.placement import Placement

LABEL_STEP = f"{GROUP}/automl-step"
RETRIES_PER_CANDIDATE = 1  # a crash may be the node's fault: one more try, then the index fails
HOSTNAME = "kubernetes.io/hostname"


def parallelism(tj: dict[str, Any]) -> int:
    """spec.automl.parallelism (1: the single pod) when AutoML searches at all."""
    spec = tj["spec"]
    searching = spec.get("algorithm", "auto") == "auto" and spec.get("task") != (
        "anomaly-detection"
    )
    if not searching or spec.get("command"):
        return 1
    return max(1, int((spec.get("automl") or {}).get("parallelism", 1)))


def asks_for_gpu(tj: dict[str, Any]) -> bool:
    """spec.resources.gpu set, and the job may use it (desired/trainingjob.uses_gpu)."""
    spec = tj["spec"]
    return int((spec.get("resources") or {}).get("gpu", 0)) > 0 and desired_tj.uses_gpu(spec)


def step_label(kind: str, rung: int, part: str = "") -> str:
    """A step Job's label value and name suffix: plan, rung-R, rung-R-gpu, finish-R."""
    if kind == PLAN:
        return "plan"
    return f"{kind}-{rung}" + (f"-{part}" if part else "")


def step_job_name(tj: dict[str, Any], kind: str, rung: int, part: str = "") -> str:
    return child_name(tj["metadata"]["name"], step_label(kind, rung, part))


def step_args(tj: dict[str, Any], config: OperatorConfig, kind: str, rung: int,
              baseline_uri: str | None, indexes: tuple[int, ...] | None = None,
              ) -> list[str]:  # fmt: skip
    output = f"{desired_tj.PVC_ROOT}/{desired_tj.artifact_claim(tj, config)}/"
    output += desired_tj.artifact_path(tj)
    args = ["perennial-train", kind if kind != RUNG else "trial"]
    args += ["-f", f"{desired_tj.SPEC_DIR}/{desired_tj.SPEC_FILE}", "--output", output]
    if kind != PLAN:
        args += ["--rung", str(rung)]  # a trial's index comes from JOB_COMPLETION_INDEX
    if kind == RUNG and indexes is not None:
        args += ["--indexes", ",".join(str(i) for i in indexes)]
    if kind == FINISH and baseline_uri and baseline_uri.startswith("pvc://"):
        args += ["--baseline-dir", f"{desired_tj.PVC_ROOT}/{baseline_uri.removeprefix('pvc://')}"]
    return args


def step_job(
    tj: dict[str, Any],
    config: OperatorConfig,
    placement: Placement,
    kind: str,
    rung: int,
    candidates: int = 0,
    baseline_uri: str | None = None,
    *,
    part: str = "",
    indexes: tuple[int, ...] | None = None,
    parallel: int | None = None,
) -> dict[str, Any]:
    """The Job of one step: plan, rung ``rung`` (``candidates`` indexes; of a split rung,
    its ``part`` with the rung's candidates ``indexes``, ``parallel`` pods at a time) or
    its finish. The plan and a rung's non-GPU part never ask for a GPU; the finish may
    refit XGBoost, so it asks as the single pod would."""
    meta, spec = tj["metadata"], tj["spec"]
    argv = step_args(tj, config, kind, rung, baseline_uri, indexes)
    gpu = kind == FINISH or (kind == RUNG and (part == GPU or not asks_for_gpu(tj)))
    container = desired_tj.training_container(tj, config, placement, argv, baseline_uri, gpu=gpu)
    labels = {**desired_tj._labels(tj), LABEL_STEP: step_label(kind, rung, part)}
    template = desired_tj.pod_template(tj, config, placement, labels, [container], baseline_uri)
    pod_spec = template["spec"]
    job_spec: dict[str, Any] = {
        "activeDeadlineSeconds": int(spec.get("activeDeadlineSeconds", 3600)),
        "ttlSecondsAfterFinished": config.training_job_ttl_seconds,
        "template": template,
    }
    if kind == RUNG:
        pod_spec["topologySpreadConstraints"] = [_spread(labels)]
        job_spec |= {
            "completionMode": "Indexed",
            "completions": candidates,
            "parallelism": parallel or min(parallelism(tj), max(candidates, 1)),
            "backoffLimitPerIndex": RETRIES_PER_CANDIDATE,
            "podFailurePolicy": _fail_index(),
        }
    else:
        job_spec |= {"backoffLimit": int(spec.get("backoffLimit", 2)),
                     "podFailurePolicy": _fail_job()}  # fmt: skip
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": step_job_name(tj, kind, rung, part),
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(tj)],
        },
        "spec": job_spec,
    }


def _spread(labels: dict[str, str]) -> dict[str, Any]:
    """At most one pod of the rung more on any node than on the emptiest one of the pool."""
    return {
        "maxSkew": 1,
        "topologyKey": HOSTNAME,
        "whenUnsatisfiable": "DoNotSchedule",
        "nodeTaintsPolicy": "Honor",  # the pool's own taints are tolerated; others' are not
        "labelSelector": {
            "matchLabels": {
                LABEL_STEP: labels[LABEL_STEP],
                LABEL_TRAININGJOB_UID: labels[LABEL_TRAININGJOB_UID],
            }
        },
    }


def _permanent(action: str) -> dict[str, Any]:
    codes = sorted(rc.PERMANENT_EXIT_CODES)
    return {
        "action": action,
        "onExitCodes": {"containerName": TRAIN_CONTAINER, "operator": "In", "values": codes},
    }


def _ignore_disruption() -> dict[str, Any]:
    return {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}


def _fail_index() -> dict[str, Any]:
    return {"rules": [_permanent("FailIndex"), _ignore_disruption()]}


def _fail_job() -> dict[str, Any]:
    return {"rules": [_permanent("FailJob"), _ignore_disruption()]}
