from __future__ import annotations

import pytest

from perennial_operator.decide.retrainpolicy.promotion import gate, gate_metric, improvement

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("metric", "candidate", "baseline", "min_improvement", "promote", "reason"),
    [
        ("roc_auc", 0.991, 0.98, 0.005, True, "CandidatePromoted"),
        ("roc_auc", 0.991, 0.98, 0.011, True, "CandidatePromoted"),
        ("roc_auc", 0.982, 0.98, 0.005, False, "BelowMinImprovement"),
        ("roc_auc", 0.97, 0.98, 0.0, False, "BelowMinImprovement"),
        ("accuracy", 0.95, 0.95, 0.0, True, "CandidatePromoted"),
        ("rmse", 3.0, 4.0, 0.5, True, "CandidatePromoted"),
        ("rmse", 4.2, 4.0, 0.0, False, "BelowMinImprovement"),
        ("mae", 1.9, 2.0, 0.2, False, "BelowMinImprovement"),
        ("log_loss", 0.20, 0.25, 0.01, True, "CandidatePromoted"),
        ("accuracy", 0.99, 0.90, -0.5, True, "CandidatePromoted"),
    ],
    ids=[
        "higher-better-beats-min",
        "higher-better-exactly-min-float",
        "higher-better-too-small",
        "higher-better-worse",
        "equal-with-zero-min",
        "lower-better-beats-min",
        "lower-better-worse",
        "lower-better-too-small",
        "log-loss-lower-better",
        "negative-min-tolerates",
    ],
)
def test_gate(metric, candidate, baseline, min_improvement, promote, reason):
    verdict = gate(metric, {metric: candidate}, {metric: baseline}, min_improvement)
    assert (verdict.promote, verdict.reason) == (promote, reason)
    assert (verdict.candidate, verdict.baseline, verdict.metric) == (candidate, baseline, metric)
    assert f"candidate={candidate:.6g}" in verdict.message
    assert f"baseline={baseline:.6g}" in verdict.message


@pytest.mark.parametrize(
    ("candidate", "baseline", "reason"),
    [
        ({"roc_auc": 0.99}, {}, "BaselineMetricMissing"),
        ({"roc_auc": 0.99}, {"accuracy": 0.9}, "BaselineMetricMissing"),
        ({"roc_auc": 0.99}, {"roc_auc": "n/a"}, "BaselineMetricMissing"),
        ({}, {"roc_auc": 0.9}, "CandidateMetricMissing"),
    ],
    ids=["no-baseline-metrics", "other-metric-only", "not-a-number", "no-candidate-metric"],
)
def test_missing_numbers_never_promote(candidate, baseline, reason):
    verdict = gate("roc_auc", candidate, baseline, 0.0)
    assert not verdict.promote
    assert verdict.reason == reason
    assert "roc_auc" in verdict.message


def test_improvement_sign_flips_for_error_metrics():
    assert improvement("rmse", 3.0, 4.0) == pytest.approx(1.0)
    assert improvement("r2", 0.7, 0.6) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("promotion", "template", "metric"),
    [
        ({"metric": "f1"}, {"automl": {"metric": "roc_auc"}}, "f1"),
        ({}, {"automl": {"metric": "roc_auc"}}, "roc_auc"),
        ({"metric": ""}, {"task": "regression"}, "r2"),
        ({}, {}, "roc_auc"),
    ],
    ids=["explicit", "automl-metric", "task-primary", "default-classification"],
)
def test_gate_metric(promotion, template, metric):
    assert gate_metric(promotion, template) == metric
