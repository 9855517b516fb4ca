"""A small cluster's worth of objects, shaped as the API server returns them (what the
operator writes: status fields, labels, Events), for the Studio's unit tests."""

from __future__ import annotations

import json
from typing import Any

from perennial_studio.project import project
from perennial_studio.store import KINDS, Store

NS = "ml"
GROUP_V = "perennial.dev/v1alpha1"


def meta(name: str, created: str, ns: str | None = NS, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": ns,
        "uid": f"uid-{name}",
        "creationTimestamp": created,
        "resourceVersion": "1",
        "managedFields": [{"manager": "kubectl"}],
        **extra,
    }


def modelversion(version: int, stage: str, roc_auc: float, created: str, **status: Any) -> dict:
    return {
        "apiVersion": GROUP_V,
        "kind": "ModelVersion",
        "metadata": meta(f"churn-v{version}", created, labels={"perennial.dev/model": "churn"}),
        "spec": {
            "model": "churn",
            "version": version,
            "stage": stage,
            "artifact": {
                "uri": f"pvc://perennial-artifacts/churn/v{version}",
                "sha256": "a" * 64,
                "format": "onnx",
            },
            "metrics": {"roc_auc": roc_auc, "log_loss": 0.3 - roc_auc / 10},
            "source": {
                "trainingJob": f"churn-{version}",
                "algorithm": "ensemble",
                "dataset": {
                    "uri": "s3://data/churn.csv",
                    "sha256": f"{version}" * 64,
                    "rows": 1000 * version,
                },
                "hyperparameters": {
                    "members": [
                        {"algorithm": "svm", "params": {"C": version}, "weight": 1, "score": 0.9}
                    ]
                },
            },
        },
        "status": {"phase": "Ready", "primaryMetric": f"roc_auc={roc_auc}", **status},
    }


def trainingjob(name: str, created: str, status: dict[str, Any], **meta_extra: Any) -> dict:
    return {
        "apiVersion": GROUP_V,
        "kind": "TrainingJob",
        "metadata": meta(name, created, **meta_extra),
        "spec": {
            "model": "churn",
            "task": "classification",
            "algorithm": "auto",
            "automl": {"metric": "roc_auc", "timeBudgetSeconds": 60},
            "dataset": {"uri": "s3://data/churn.csv", "target": "churned"},
            "validation": {"minRows": 500},
            "backoffLimit": 2,
        },
        "status": status,
    }


def training_pod(job: str, created: str, validate: dict | None, train: dict | None) -> dict:
    def terminated(message: dict | None, code: int) -> dict[str, Any]:
        state = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if not code else "Error",
                "message": json.dumps(message),
            }
        }
        return state if message is not None else {"waiting": {"reason": "PodInitializing"}}

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(
            f"{job}-train-x1",
            created,
            labels={"app.kubernetes.io/managed-by": "perennial", "perennial.dev/trainingjob": job},
        ),
        "spec": {
            "nodeName": "gpu-a100-1",
            "containers": [
                {
                    "name": "train",
                    "image": "perennial/runtime:0.1.0",
                    "command": ["perennial-train"],
                    "env": [{"name": "SECRET_TOKEN", "value": "hunter2"}],
                    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
                }
            ],
        },
        "status": {
            "phase": "Succeeded" if train else "Failed",
            "podIP": "10.0.0.9",
            "startTime": created,
            "conditions": [{"type": "Ready", "status": "False"}],
            "initContainerStatuses": [
                {
                    "name": "validate",
                    "restartCount": 0,
                    **{"state": terminated(validate, 0 if train else 3)},
                }
            ],
            "containerStatuses": [
                {"name": "train", "restartCount": 0, "state": terminated(train, 0)}
            ],
        },
    }


def event(
    kind: str,
    name: str,
    reason: str,
    message: str,
    time: str,
    type_: str = "Normal",
    ns: str = NS,
    source: str = "perennial-operator",
) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name}.{reason}.{time}",
            "namespace": ns or "default",
            "uid": f"ev-{name}-{reason}-{time}",
            "creationTimestamp": time,
        },
        "involvedObject": {
            "apiVersion": GROUP_V,
            "kind": kind,
            "name": name,
            "namespace": ns or None,
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "lastTimestamp": time,
        "count": 1,
        "source": {"component": source},
    }


FAILURES = [
    {"check": "dataset_rows_below_minimum", "column": None, "observed": 120, "expected": ">= 500"},
    {"check": "column_has_nulls", "column": "tenure", "observed": 7, "expected": 0},
]


def objects() -> dict[str, list[dict[str, Any]]]:
    versions = [
        modelversion(1, "Archived", 0.91, "2026-01-01T10:00:00Z"),
        modelversion(2, "Production", 0.93, "2026-01-02T10:00:00Z"),
        modelversion(3, "None", 0.95, "2026-01-03T10:00:00Z"),
    ]
    jobs = [
        trainingjob(
            "churn-1",
            "2026-01-01T09:50:00Z",
            {
                "phase": "Succeeded",
                "modelVersion": "churn-v1",
                "completionTime": "2026-01-01T10:00:00Z",
                "primaryMetric": "roc_auc=0.91",
                "metrics": {"roc_auc": 0.91},
            },
        ),
        trainingjob(
            "churn-2",
            "2026-01-02T09:50:00Z",
            {
                "phase": "Succeeded",
                "modelVersion": "churn-v2",
                "completionTime": "2026-01-02T10:00:00Z",
                "primaryMetric": "roc_auc=0.93",
                "metrics": {"roc_auc": 0.93},
                "baselineMetrics": {"roc_auc": 0.91},
            },
        ),
        trainingjob(
            "churn-3",
            "2026-01-03T09:50:00Z",
            {
                "phase": "Succeeded",
                "modelVersion": "churn-v3",
                "primaryMetric": "roc_auc=0.95",
                "startTime": "2026-01-03T09:50:02Z",
                "completionTime": "2026-01-03T10:00:00Z",
                "metrics": {"roc_auc": 0.95, "accuracy": 0.9},
                "baselineMetrics": {"roc_auc": 0.93},
                "dataset": {"uri": "s3://data/churn.csv", "sha256": "3" * 64, "rows": 3000},
                "algorithm": "ensemble",
                "hyperparameters": {
                    "members": [
                        {"algorithm": "svm", "params": {"C": 2}, "weight": 1, "score": 0.94},
                        {"algorithm": "random_forest", "params": {}, "weight": 1, "score": 0.96},
                    ]
                },
                "conditions": [
                    {
                        "type": "DataValidated",
                        "status": "True",
                        "reason": "DataChecksPassed",
                        "message": "every data check passed",
                    }
                ],
            },
            labels={"perennial.dev/retrainpolicy": "churn-fresh"},
            annotations={"perennial.dev/retrain-reason": "Drift: psi=0.31 > 0.2 over 900 samples"},
        ),
        trainingjob(
            "churn-bad",
            "2026-01-04T09:00:00Z",
            {
                "phase": "Failed",
                "message": "data validation failed",
                "conditions": [
                    {"type": "DataValidated", "status": "False", "reason": "DataValidationFailed"},
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "DataValidationFailed",
                        "message": "2 failing check(s); dataset_rows_below_minimum: observed 120, "
                        "expected >= 500; column_has_nulls on column tenure: observed 7, "
                        "expected 0",
                    },
                ],
            },
        ),
        trainingjob("churn-running", "2026-01-05T09:00:00Z", {"phase": "Training"}),
    ]
    pods = [
        training_pod(
            "churn-3",
            "2026-01-03T09:50:01Z",
            {
                "outcome": "Validated",
                "warnings": [
                    {
                        "check": "column_is_constant",
                        "column": "region",
                        "observed": "1 distinct",
                        "expected": ">= 2",
                    }
                ],
            },
            {"outcome": "Succeeded", "timings": {"total": 580.0, "fitting": 500.5, "loading": 2.0}},
        ),
        training_pod(
            "churn-bad",
            "2026-01-04T09:00:01Z",
            {
                "outcome": "DataInvalid",
                "message": "the data checks failed (2)",
                "failures": FAILURES,
            },
            None,
        ),
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta(
                "churn-stable-abc",
                "2026-01-02T10:01:00Z",
                labels={
                    "app.kubernetes.io/managed-by": "perennial",
                    "perennial.dev/inferenceservice": "churn",
                    "perennial.dev/track": "stable",
                    "perennial.dev/model-version": "2",
                },
            ),
            "spec": {"nodeName": "cpu-1", "containers": [{"name": "serve"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.20",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "serve", "restartCount": 1, "ready": True, "state": {"running": {}}}
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta(
                "waiting-for-gpu",
                "2026-01-05T09:00:00Z",
                labels={
                    "app.kubernetes.io/managed-by": "perennial",
                    "perennial.dev/trainingjob": "churn-running",
                },
            ),
            "spec": {
                "nodeSelector": {"perennial.dev/pool": "gpu-a100"},
                "containers": [
                    {
                        "name": "train",
                        "resources": {"requests": {"cpu": "8", "nvidia.com/gpu": "1"}},
                    }
                ],
            },
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available",
                    }
                ],
            },
        },
    ]
    isvc = {
        "apiVersion": GROUP_V,
        "kind": "InferenceService",
        "metadata": meta("churn", "2026-01-02T10:00:00Z"),
        "spec": {
            "model": {"name": "churn", "stage": "Production"},
            "replicas": 2,
            "rollout": {
                "strategy": "Canary",
                "steps": [10, 50, 100],
                "stepSeconds": 60,
                "maxErrorRate": 0.01,
                "maxP99LatencyMs": 250,
            },
        },
        "status": {
            "phase": "Progressing",
            "currentModelVersion": "churn-v2",
            "currentVersion": 2,
            "replicas": 2,
            "readyReplicas": 2,
            "canary": {
                "version": 3,
                "modelVersion": "churn-v3",
                "weight": 50,
                "step": 1,
                "stepStartedAt": "2026-01-03T10:05:00Z",
            },
            "drift": {
                "psi": 0.31,
                "samples": 900,
                "time": "2026-01-03T10:06:00Z",
                "features": {"tenure": 0.31, "<script>alert(1)</script>": 0.05},
                "worst": ["tenure"],
            },
            "liveMetric": {"name": "accuracy", "value": 0.88, "samples": 300},
        },
    }
    policy = {
        "apiVersion": GROUP_V,
        "kind": "RetrainPolicy",
        "metadata": meta("churn-fresh", "2026-01-01T00:00:00Z"),
        "spec": {
            "inferenceService": "churn",
            "cooldownSeconds": 3600,
            "template": {
                "model": "churn",
                "task": "classification",
                "dataset": {"uri": "s3://data/churn.csv"},
            },
            "triggers": {
                "drift": {"psi": 0.2, "minSamples": 500},
                "performance": {"metric": "accuracy", "below": 0.85, "minSamples": 200},
                "schedule": "0 3 * * 0",
            },
            "promotion": {"mode": "Auto", "metric": "roc_auc", "minImprovement": 0.005},
        },
        "status": {
            "phase": "Promoting",
            "lastTrigger": {
                "reason": "Drift",
                "detail": "psi=0.31 > 0.2 over 900 samples",
                "time": "2026-01-03T09:49:58Z",
            },
            "nextScheduledTime": "2026-01-04T03:00:00Z",
            "lastTrainingJob": "churn-3",
        },
    }
    pool = {
        "apiVersion": GROUP_V,
        "kind": "ComputePool",
        "metadata": meta("gpu-a100", "2026-01-01T00:00:00Z", ns=None),
        "spec": {
            "node": {"cpu": "32", "memory": "256Gi", "gpu": 4, "gpuType": "a100"},
            "labels": {"perennial.dev/pool": "gpu-a100"},
            "minNodes": 0,
            "maxNodes": 8,
        },
        "status": {
            "nodes": 1,
            "readyNodes": 1,
            "desiredNodes": 2,
            "pendingPods": 1,
            "lastScaleUp": {
                "time": "2026-01-05T09:00:05Z",
                "from": 0,
                "to": 1,
                "reason": "1 pod(s) pending",
            },
        },
    }
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": meta(
                "gpu-a100-1",
                "2026-01-05T09:00:06Z",
                ns=None,
                labels={"perennial.dev/compute-pool": "gpu-a100", "perennial.dev/gpu-type": "a100"},
                annotations={"perennial.dev/idle-since": "2026-01-05T09:30:00Z"},
            ),
            "spec": {},
            "status": {
                "allocatable": {"nvidia.com/gpu": "4"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    ]
    events = [
        event(
            "ModelVersion",
            "churn-v1",
            "StageChanged",
            "stage None -> Production",
            "2026-01-01T10:05:00Z",
        ),
        event(
            "ModelVersion",
            "churn-v2",
            "StageChanged",
            "stage None -> Production",
            "2026-01-02T10:05:00Z",
        ),
        event(
            "ModelVersion",
            "churn-v1",
            "StageChanged",
            "stage Production -> Archived: churn-v2 was promoted to Production",
            "2026-01-02T10:05:01Z",
        ),
        event(
            "InferenceService",
            "churn",
            "CanaryStarted",
            "step 1/3: churn-v3 at 10% (1 canary, 2 stable pods)",
            "2026-01-03T10:04:00Z",
        ),
        event(
            "InferenceService",
            "churn",
            "CanaryStep",
            "step 2/3: churn-v3 at 50% (1 canary, 1 stable pods); canary: 120 requests, "
            "error rate 0.0000, p99 12.5ms; stable: 300 requests, error rate 0.0010, p99 8.0ms",
            "2026-01-03T10:05:00Z",
        ),
        event(
            "RetrainPolicy",
            "churn-fresh",
            "Triggered",
            "Drift: psi=0.31 > 0.2 over 900 samples",
            "2026-01-03T09:49:58Z",
        ),
        event(
            "RetrainPolicy",
            "churn-fresh",
            "Promoted",
            "churn-v3 promoted to Production: roc_auc candidate=0.95 baseline=0.93",
            "2026-01-03T10:03:00Z",
        ),
        event(
            "ComputePool",
            "gpu-a100",
            "ScaledUp",
            "scaled up from 0 to 1: 1 pod(s) pending",
            "2026-01-05T09:00:05Z",
            ns="",
        ),
    ]
    return {
        "ModelVersion": versions,
        "TrainingJob": jobs,
        "Pod": pods,
        "InferenceService": [isvc],
        "RetrainPolicy": [policy],
        "ComputePool": [pool],
        "Node": nodes,
        "Event": events,
        "Job": [],
        "Deployment": [],
    }


def store(extra: dict[str, list[dict[str, Any]]] | None = None) -> Store:
    """A synced Store holding the world (plus `extra` objects)."""
    s = Store()
    world = objects()
    for kind in KINDS:
        items = world.get(kind, []) + (extra or {}).get(kind, [])
        s.replace(kind, [project(kind, o) for o in items])
    return s
