"""The Prometheus text the serving pods export, parsed into the samples the deciders sum."""

from __future__ import annotations

import pytest

from perennial_operator.decide.monitoring.live_metric import live_metric
from perennial_operator.decide.monitoring.samples import Sample
from perennial_operator.decide.rollout.analysis import request_stats
from perennial_operator.k8s.scrape import parse_metrics, pod_url

pytestmark = pytest.mark.unit

# The shapes perennial-serve renders with prometheus-client (counters, a histogram, and the
# untyped regression feedback sums).
TEXT = """\
# HELP perennial_requests_total Inference requests by protocol and status code
# TYPE perennial_requests_total counter
perennial_requests_total{model="churn",version="4",protocol="v2",code="200"} 98.0
perennial_requests_total{model="churn",version="4",protocol="v2",code="503"} 2.0
# TYPE perennial_request_duration_seconds histogram
perennial_request_duration_seconds_bucket{model="churn",version="4",protocol="v2",le="0.01"} 90.0
perennial_request_duration_seconds_bucket{model="churn",version="4",protocol="v2",le="0.5"} 100.0
perennial_request_duration_seconds_bucket{model="churn",version="4",protocol="v2",le="+Inf"} 100.0
perennial_request_duration_seconds_count{model="churn",version="4",protocol="v2"} 100.0
perennial_request_duration_seconds_sum{model="churn",version="4",protocol="v2"} 3.2
# TYPE perennial_feedback_abs_error_sum untyped
perennial_feedback_abs_error_sum{model="churn",version="4"} 6.0
# TYPE perennial_feedback_count untyped
perennial_feedback_count{model="churn",version="4"} 12.0
"""


def test_parse_and_summarise() -> None:
    samples = [Sample(*raw) for raw in parse_metrics(TEXT)]
    stats = request_stats(samples)
    assert (stats.requests, stats.errors) == (100, 2)
    assert stats.p99_ms == pytest.approx(10 + 490 * 9 / 10)
    assert live_metric(samples) == {"name": "mae", "value": 0.5, "samples": 12}


def test_malformed_text_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_metrics('perennial_requests_total{model="x" 1\n')


def test_pod_url_template() -> None:
    assert pod_url("http://{ip}:{port}", "10.1.2.3", 8080) == "http://10.1.2.3:8080"
    assert pod_url("http://{ip}:18080/", "127.77.0.2", 8080) == "http://127.77.0.2:18080"
