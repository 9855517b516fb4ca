"""Gauges of a deleted InferenceService or ComputePool are removed, others' stay."""

from __future__ import annotations

from prometheus_client import REGISTRY

from perennial_operator import metrics


def _value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_a_deleted_inferenceservice_leaves_every_gauge_and_only_its_own() -> None:
    for svc in ("gone", "kept"):
        metrics.CANARY_WEIGHT.labels(namespace="ns", inferenceservice=svc).set(10)
        metrics.DRIFT_PSI.labels(namespace="ns", inferenceservice=svc).set(0.3)
        for feature in ("age", "income"):
            metrics.DRIFT_FEATURE_PSI.labels(
                namespace="ns", inferenceservice=svc, feature=feature
            ).set(0.1)
    metrics.CANARY_WEIGHT.labels(namespace="other", inferenceservice="gone").set(50)

    metrics.forget_inferenceservice("ns", "gone")
    metrics.forget_inferenceservice("ns", "never-existed")  # nothing to remove: no error

    gone = {"namespace": "ns", "inferenceservice": "gone"}
    assert _value("perennial_operator_canary_weight", **gone) is None
    assert _value("perennial_operator_drift_psi", **gone) is None
    assert _value("perennial_operator_drift_feature_psi", **gone, feature="age") is None
    assert _value("perennial_operator_drift_feature_psi", **gone, feature="income") is None
    kept = {"namespace": "ns", "inferenceservice": "kept"}
    assert _value("perennial_operator_canary_weight", **kept) == 10
    assert _value("perennial_operator_drift_feature_psi", **kept, feature="age") == 0.1
    other = {"namespace": "other", "inferenceservice": "gone"}
    assert _value("perennial_operator_canary_weight", **other) == 50


def test_a_deleted_computepool_leaves_its_gauges() -> None:
    for pool in ("gpu-a", "cpu-b"):
        metrics.COMPUTEPOOL_MAX_NODES.labels(pool=pool).set(4)
        metrics.COMPUTEPOOL_PENDING_PODS.labels(pool=pool).set(2)
        for state in ("registered", "ready", "desired"):
            metrics.COMPUTEPOOL_NODES.labels(pool=pool, state=state).set(1)

    metrics.forget_computepool("gpu-a")

    assert _value("perennial_operator_computepool_max_nodes", pool="gpu-a") is None
    assert _value("perennial_operator_computepool_pending_pods", pool="gpu-a") is None
    for state in ("registered", "ready", "desired"):
        assert _value("perennial_operator_computepool_nodes", pool="gpu-a", state=state) is None
        assert _value("perennial_operator_computepool_nodes", pool="cpu-b", state=state) == 1
    assert _value("perennial_operator_computepool_max_nodes", pool="cpu-b") == 4
