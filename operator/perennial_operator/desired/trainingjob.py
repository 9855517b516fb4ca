"""TrainingJob -> its children: a ConfigMap holding the spec and a batch/v1 Job.

Pure: the same TrainingJob, config and placement always give the same manifests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from perennial_operator.api import runtime_contract as rc
from perennial_operator.api.group import API_VERSION, LABEL_TRAININGJOB_UID, child_labels
from perennial_operator.api.names import TRAIN_CONTAINER, VALIDATE_CONTAINER, child_name
from perennial_operator.config import OperatorConfig
from perennial_operator.desired.common import (
    owner_reference,
    resource_requirements,
    restricted_container_security,
    restricted_pod_security,
)
from perennial_operator.desired.placement import Placement

SPEC_DIR = "/etc/perennial"
SPEC_FILE = "trainingjob.yaml"
# libyaml's emitter (in PyYAML's wheels): the pure-Python one was a tenth of the operator's
# busy CPU in a burst of 5,000 TrainingJobs (issue 18). Same documents, read back equal.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
PVC_ROOT = "/mnt/pvc"  # the runtime resolves pvc://<claim>/<path> under this root


def configmap_name(tj: dict[str, Any]) -> str:
    return child_name(tj["metadata"]["name"], "spec")


def job_name(tj: dict[str, Any]) -> str:
    return child_name(tj["metadata"]["name"], "train")


def artifact_claim(tj: dict[str, Any], config: OperatorConfig) -> str:
    return str(tj["spec"].get("artifacts", {}).get("pvc") or config.artifact_pvc)


def artifact_path(tj: dict[str, Any]) -> str:
    """Folder inside the artifact claim; unique per TrainingJob object (uid)."""
    meta = tj["metadata"]
    return f"models/{tj['spec']['model']}/{meta['namespace']}-{meta['name']}-{meta['uid'][:8]}"


def artifact_uri(tj: dict[str, Any], config: OperatorConfig) -> str:
    return f"pvc://{artifact_claim(tj, config)}/{artifact_path(tj)}"


def _labels(tj: dict[str, Any]) -> dict[str, str]:
    labels = child_labels("TrainingJob", tj["metadata"]["name"])
    labels[LABEL_TRAININGJOB_UID] = tj["metadata"]["uid"]
    return labels


def configmap(tj: dict[str, Any]) -> dict[str, Any]:
    return spec_configmap(tj, configmap_name(tj), _labels(tj), tj["spec"])


def spec_configmap(
    owner: Mapping[str, Any], name: str, labels: dict[str, str], spec: Mapping[str, Any]
) -> dict[str, Any]:
    """A ConfigMap `name` holding `spec` as the TrainingJob manifest `perennial-train -f`
    reads (named like its owner), owned by `owner`."""
    meta = owner["metadata"]
    document = {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": spec,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(dict(owner))],
        },
        "data": {SPEC_FILE: yaml.dump(document, Dumper=_DUMPER, sort_keys=True)},
    }


def claim_of(uri: str) -> str | None:
    """The claim a pvc://<claim>/<path> URI names (None for other schemes)."""
    return uri.removeprefix("pvc://").split("/", 1)[0] if uri.startswith("pvc://") else None


def data_image(spec: dict[str, Any], config: OperatorConfig) -> str:
    """The image that reads the data with our runtime (the data checks, a dataset probe):
    the job's own image, unless that runs a custom command."""
    if spec.get("command"):
        return config.runtime_image
    return str(spec.get("image") or config.runtime_image)


def _claims(
    tj: dict[str, Any], config: OperatorConfig, baseline_uri: str | None
) -> list[tuple[str, bool]]:
    """(claim, read_only) pairs of the pod's volumes: the artifact claim (its volume is
    writable for the job's own folder; see pod_mounts), then dataset/baseline claims."""
    claims = [(artifact_claim(tj, config), False)]
    for uri in (
        str(tj["spec"]["dataset"]["uri"]),
        baseline_uri or str(tj["spec"].get("baseline", {}).get("uri", "")),
    ):
        claim = claim_of(uri)
        if claim and claim not in {c for c, _ in claims}:
            claims.append((claim, True))
    return claims


def pod_volumes(configmap: str, claims: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """A runtime pod's volumes: the spec ConfigMap, a scratch /tmp and the claims."""
    volumes: list[dict[str, Any]] = [
        {"name": "spec", "configMap": {"name": configmap}},
        {"name": "tmp", "emptyDir": {}},
    ]
    for index, (claim, read_only) in enumerate(claims):
        volumes.append(
            {
                "name": f"pvc-{index}",
                "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only},
            }
        )
    return volumes


def pod_mounts(claims: list[tuple[str, bool]], writable: str | None = None) -> list[dict[str, Any]]:
    """Where pod_volumes go: the spec under SPEC_DIR, each claim under PVC_ROOT/<claim>.

    Every claim is mounted read-only, the artifact claim too: a training pod may run code a
    user supplies, and the claim holds every model of the namespace. `writable` (a folder
    of the first claim) is then mounted read-write over its own place: the job's output.
    The kubelet creates it if missing, with the claim root's mode (as for any subPath).
    """
    mounts: list[dict[str, Any]] = [
        {"name": "spec", "mountPath": SPEC_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    for index, (claim, _) in enumerate(claims):
        mount = {"name": f"pvc-{index}", "mountPath": f"{PVC_ROOT}/{claim}", "readOnly": True}
        mounts.append(mount)
    if writable is not None and claims:
        claim = claims[0][0]
        mounts.append(
            {"name": "pvc-0", "mountPath": f"{PVC_ROOT}/{claim}/{writable}", "subPath": writable}
        )
    return mounts


def _volumes(
    tj: dict[str, Any], config: OperatorConfig, baseline_uri: str | None
) -> list[dict[str, Any]]:
    return pod_volumes(configmap_name(tj), _claims(tj, config, baseline_uri))


def _mounts(
    tj: dict[str, Any], config: OperatorConfig, baseline_uri: str | None
) -> list[dict[str, Any]]:
    return pod_mounts(_claims(tj, config, baseline_uri), writable=artifact_path(tj))


def runtime_container(
    name: str,
    argv: list[str],
    image: str,
    resources: dict[str, Any],
    mounts: list[dict[str, Any]],
    env_from: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A container of the runtime image: restricted, its result in the termination message.

    `argv` is the whole command line. Its program goes in `command`, which replaces the
    image's ENTRYPOINT (perennial-train in ours), so the same pod runs perennial-serve or
    a custom image's own program too; the rest goes in `args`. `env_from`: the spec's
    envFrom (Secret references: credentials reach the process, never our objects).
    """
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "command": argv[:1],
        "args": argv[1:],
        "env": [
            {"name": "PERENNIAL_PVC_ROOT", "value": PVC_ROOT},
            {"name": "HOME", "value": "/tmp"},
        ],
        "resources": resources,
        "volumeMounts": mounts,
        "securityContext": restricted_container_security(),
        "terminationMessagePath": rc.TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
    }
    if env_from:
        container["envFrom"] = [dict(source) for source in env_from]
    return container


def pod_identity(spec: Mapping[str, Any], pod_spec: dict[str, Any]) -> None:
    """spec.serviceAccountName onto the pod (its API token stays unmounted)."""
    if spec.get("serviceAccountName"):
        pod_spec["serviceAccountName"] = str(spec["serviceAccountName"])


def _pod_failure_policy() -> dict[str, Any]:
    """Exit codes the runtime reserves for bad data or spec end the Job at once: retrying
    cannot fix them. Anything else (a crash) counts against backoffLimit."""
    codes = sorted(rc.PERMANENT_EXIT_CODES)
    rules: list[dict[str, Any]] = [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": container, "operator": "In", "values": codes},
        }
        for container in (VALIDATE_CONTAINER, TRAIN_CONTAINER)
    ]
    # Evictions and preemptions are not the job's fault: do not count them.
    rules.append(
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    )
    return {"rules": rules}


def uses_gpu(spec: Mapping[str, Any]) -> bool:
    """May the job's code use a GPU? A custom image or command may; of the built-in
    algorithms only XGBoost does, and an AutoML search of classification or regression may
    pick it. Others would hold a GPU they never touch, so they do not ask for one."""
    if spec.get("image") or spec.get("command"):
        return True
    algorithm = str(spec.get("algorithm", "auto"))
    if algorithm == "auto":
        return spec.get("task") in ("classification", "regression")
    return algorithm in rc.GPU_ALGORITHMS


def training_container(
    tj: dict[str, Any],
    config: OperatorConfig,
    placement: Placement,
    argv: list[str],
    baseline_uri: str | None,
    *,
    name: str = TRAIN_CONTAINER,
    image: str | None = None,
    gpu: bool = True,
) -> dict[str, Any]:
    """A container of a training pod (the single Job's, a search step's): the job's image,
    resources on its pool, the claims, and the spec's envFrom. `gpu=False`: never a GPU
    (the data checks); else `resources.gpu` when the job can use one (uses_gpu), with its
    count in PERENNIAL_GPUS."""
    spec = tj["spec"]
    requested = int(spec.get("resources", {}).get("gpu", 0)) if gpu and uses_gpu(spec) else 0
    gpus = placement.gpus_for(requested)
    container = runtime_container(
        name,
        argv,
        image or str(spec.get("image") or config.runtime_image),
        resource_requirements(spec.get("resources", {}), gpus),
        _mounts(tj, config, baseline_uri),
        list(spec.get("envFrom") or []),
    )
    if gpus:
        container["env"].append({"name": rc.GPUS_ENV, "value": str(gpus)})
    return container


def pod_template(
    tj: dict[str, Any],
    config: OperatorConfig,
    placement: Placement,
    labels: dict[str, str],
    containers: list[dict[str, Any]],
    baseline_uri: str | None,
    init_containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The pod template of every training pod: restricted, no API token, no service links
    (code a user may supply), the spec's identity, on the pool's nodes."""
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
    }
    if init_containers:
        pod_spec["initContainers"] = init_containers
    pod_spec["containers"] = containers
    pod_spec["volumes"] = _volumes(tj, config, baseline_uri)
    pod_identity(tj["spec"], pod_spec)
    if placement.node_selector:
        pod_spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in placement.tolerations]
    pod_meta: dict[str, Any] = {"labels": labels}
    if config.pod_annotations:
        pod_meta["annotations"] = dict(config.pod_annotations)
    return {"metadata": pod_meta, "spec": pod_spec}


def job(
    tj: dict[str, Any],
    config: OperatorConfig,
    placement: Placement,
    baseline_uri: str | None = None,
) -> dict[str, Any]:
    """The training Job. `baseline_uri` is the resolved artifact of spec.baseline.modelVersion."""
    meta, spec = tj["metadata"], tj["spec"]
    spec_path = f"{SPEC_DIR}/{SPEC_FILE}"
    output = f"{PVC_ROOT}/{artifact_claim(tj, config)}/{artifact_path(tj)}"
    train_args: list[str] = ["perennial-train", "-f", spec_path, "--output", output]
    if baseline_uri and baseline_uri.startswith("pvc://"):
        train_args += ["--baseline-dir", f"{PVC_ROOT}/{baseline_uri.removeprefix('pvc://')}"]
    train = training_container(tj, config, placement, train_args, baseline_uri)
    if spec.get("command"):
        # The custom image's own command, as written: it replaces that image's ENTRYPOINT.
        train.update(command=[str(part) for part in spec["command"]], args=[])
    # A custom command runs in the user's image; the data checks still use our runtime.
    validate = training_container(
        tj,
        config,
        placement,
        ["perennial-train", "validate", "-f", spec_path],
        baseline_uri,
        name=VALIDATE_CONTAINER,
        image=data_image(spec, config),
        gpu=False,  # it reads and checks the data only
    )
    labels = _labels(tj)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(tj),
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(tj)],
        },
        "spec": {
            "backoffLimit": int(spec.get("backoffLimit", 2)),
            "activeDeadlineSeconds": int(spec.get("activeDeadlineSeconds", 3600)),
            # The Job controller deletes the finished Job and its pods; the TrainingJob's
            # status (sticky once finished) keeps the outcome, metrics and artifact.
            "ttlSecondsAfterFinished": config.training_job_ttl_seconds,
            "podFailurePolicy": _pod_failure_policy(),
            "template": pod_template(
                tj, config, placement, labels, [train], baseline_uri, [validate]
            ),
        },
    }


def trainingjob_children(
    tj: dict[str, Any],
    config: OperatorConfig,
    placement: Placement,
    baseline_uri: str | None = None,
) -> list[dict[str, Any]]:
    return [configmap(tj), job(tj, config, placement, baseline_uri)]
