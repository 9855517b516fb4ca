"""manifests/monitoring/: every metric an alert, the dashboard or the prometheus-adapter rule
queries is one the code exports. The exported names are collected from the code's own
prometheus_client registries (the operator's default registry, the server's Exporter), and
every expression is parsed by a real PromQL parser."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric

import perennial_operator.metrics  # noqa: F401  (registers the operator's metrics)
from perennial_operator.desired.inferenceservice import RPS_METRIC
from perennial_runtime.serve.exposition import Exporter
from perennial_runtime.serve.metrics import Identity, Layout, SharedCounters
from perennial_runtime.serve.signature import (
    CategoricalBins,
    Feature,
    NumericBins,
    Profile,
    Signature,
)
from support.kubectl_binary import find_kubectl

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
KIT = REPO / "manifests" / "monitoring"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


def sample_names(family: Metric) -> set[str]:
    """The series names a family appears under in Prometheus."""
    return {family.name + s for s in SUFFIXES.get(family.type, ("",))}


def server_families() -> list[Metric]:
    """What perennial-serve exports for a model with numeric and categorical features."""
    signature = Signature(
        task="classification",
        features=(Feature("age", "FP64"), Feature("plan", "BYTES", ("a", "b"))),
        classes=(0, 1), onnx_inputs=(), onnx_outputs=(),
    )  # fmt: skip
    profile = Profile(
        features={"age": NumericBins((30.0, 50.0)), "plan": CategoricalBins(("a", "b"))},
        prediction=CategoricalBins(("0", "1")),
    )
    layout = Layout(signature, profile)
    exporter = Exporter(layout, SharedCounters(1, layout.size), Identity("m", "1", "onnx"))
    return list(exporter.registry.collect())


def exported() -> set[str]:
    operator = [f for f in REGISTRY.collect() if f.name.startswith("perennial_operator_")]
    assert len(operator) >= 10, "the operator's metrics were not registered"
    return {name for family in [*operator, *server_families()] for name in sample_names(family)}


def selectors(node: Any) -> Iterator[str]:
    """Metric names of every vector selector in a parsed PromQL expression."""
    if isinstance(node, list):
        for item in node:
            yield from selectors(item)
        return
    if type(node).__module__.split(".")[0] != "promql_parser":
        return
    if type(node).__name__ == "VectorSelector":
        assert node.name, f"a selector without a metric name: {node}"
        yield node.name
        return
    for attr in ("lhs", "rhs", "expr", "param", "args", "vector_selector"):
        yield from selectors(getattr(node, attr, None))


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def parse(expr: str) -> list[str]:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    expr = re.sub(r"\$\{?\w+\}?", "x", expr)  # dashboard variables sit in label matchers
    names = list(selectors(promql_parser.parse(expr)))
    assert names, f"no metric in {expr!r}"
    return names


def rule_exprs() -> dict[str, str]:
    doc = yaml.safe_load((KIT / "prometheusrule.yaml").read_text())
    return {r["alert"]: r["expr"] for g in doc["spec"]["groups"] for r in g["rules"]}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((KIT / "dashboards" / "perennial.json").read_text())
    return loaded


def dashboard_exprs() -> list[str]:
    board = dashboard()
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):  # label_values(<series selector>, label)
            match = re.fullmatch(r"label_values\((.+), *\w+\)", query["query"])
            assert match, query
            exprs.append(match.group(1))
    return exprs


def adapter_exprs() -> list[str]:
    """The adapter's queries with its template filled in as the adapter would."""
    [rule] = yaml.safe_load((KIT / "prometheus-adapter.yaml").read_text())["rules"]
    series = rule["seriesQuery"]
    metric = re.match(r"\w+", series)
    assert metric
    query = (rule["metricsQuery"].replace("<<.Series>>", metric.group(0))
             .replace("<<.LabelMatchers>>", 'namespace="ns",pod=~"p1|p2"')
             .replace("<<.GroupBy>>", "pod"))  # fmt: skip
    return [series, query]


EXPORTED = exported()
EVERY = [*rule_exprs().values(), *dashboard_exprs(), *adapter_exprs()]


@pytest.mark.parametrize("expr", EVERY, ids=[f"expr{i}" for i in range(len(EVERY))])
def test_every_expression_parses_and_queries_exported_metrics(expr: str) -> None:
    unknown = set(parse(expr)) - EXPORTED
    assert unknown == set(), f"not exported by the code: {sorted(unknown)}"


def test_the_exported_names_are_real() -> None:
    assert {
        "perennial_requests_total",
        "perennial_request_duration_seconds_bucket",
        "perennial_batch_size_count",
        "perennial_feature_bin_total",
        "perennial_operator_drift_psi",
        "perennial_operator_rollouts_total",
    } <= EXPORTED
    assert "perennial_requests_per_second" not in EXPORTED  # only the adapter serves it


def test_the_alerts_the_issue_asks_for() -> None:
    rules = rule_exprs()
    assert {
        "PerennialCanaryRolledBack",
        "PerennialDriftOverThreshold",
        "PerennialTrainingJobFailed",
        "PerennialComputePoolAtCapacity",
    } <= set(rules)
    assert 'outcome="rolled_back"' in rules["PerennialCanaryRolledBack"]
    assert 'outcome="Failed"' in rules["PerennialTrainingJobFailed"]
    assert "perennial_operator_computepool_max_nodes" in rules["PerennialComputePoolAtCapacity"]


def test_the_adapter_serves_the_metric_the_hpa_asks_for() -> None:
    [rule] = yaml.safe_load((KIT / "prometheus-adapter.yaml").read_text())["rules"]
    assert rule["name"]["as"] == RPS_METRIC
    assert re.fullmatch(rule["name"]["matches"], parse(rule["seriesQuery"])[0])
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


def test_the_dashboard_covers_serving_drift_canary_and_training() -> None:
    used = {name for expr in dashboard_exprs() for name in parse(expr)}
    assert {
        "perennial_request_duration_seconds_bucket",
        "perennial_requests_total",
        "perennial_batch_size_sum",
        "perennial_feature_bin_total",
        "perennial_operator_drift_psi",
        "perennial_operator_trainingjobs",
        "perennial_operator_promotion_decisions_total",
        "perennial_operator_drift_feature_psi",
        "perennial_operator_canary_weight",
        "perennial_operator_trainingjob_outcomes_total",
        "perennial_operator_computepool_max_nodes",
    } <= used
    canary = [e for e in dashboard_exprs() if 'track="canary"' in e]
    assert canary, "the canary's share of traffic"


def test_the_component_renders_with_kustomize(tmp_path: Path) -> None:
    kubectl = find_kubectl()
    assert kubectl is not None, "no kubectl: run `make k8s-build` (or install kubectl)"
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"components: [{os.path.relpath(KIT, overlay)}]\n"  # kustomize wants it relative
    )
    out = subprocess.run([str(kubectl), "kustomize", str(overlay)], capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(out.stdout) if d)
    assert kinds == ["ConfigMap", "PodMonitor", "PrometheusRule", "ServiceMonitor"]
    [cm] = [d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "ConfigMap"]
    assert json.loads(cm["data"]["perennial.json"]) == dashboard()
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
