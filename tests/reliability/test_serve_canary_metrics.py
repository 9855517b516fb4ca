"""Canary analysis judges what the model served (issue 20, finding 4, the server's half):
requests refused with 4xx, cheap or slow, stay out of the request totals the analysis
divides by and out of the latency histogram it takes p99 from. Read with the operator's
own parsing and analysis code, from the real server's /metrics."""

from __future__ import annotations

import json

import pytest
import requests

from perennial_operator.decide.monitoring.samples import Sample
from perennial_operator.decide.rollout.analysis import request_stats
from perennial_operator.k8s.scrape import parse_metrics
from support.model_dirs import build
from support.server_process import ServerProcess

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def logreg(tmp_path_factory):
    return build("logreg", tmp_path_factory.mktemp("models"))


def operator_view(server):
    text = requests.get(server.url + "/metrics", timeout=30).text
    return [Sample(name, labels, value) for name, labels, value in parse_metrics(text)]


def test_rejected_requests_do_not_count_as_served_traffic_nor_latency(logreg):
    server = ServerProcess(logreg.path, "--workers", "1").wait_ready()
    try:
        url = server.url + "/v1/models/bc-logreg:predict"
        row = [float(v) for v in logreg.X_test.iloc[0]]
        served = 20
        for _ in range(served):
            assert requests.post(url, json={"instances": [row]}, timeout=30).status_code == 200
        # Cheap 400s, and large bodies that take the decoder a while before their 422.
        slow_bad = json.dumps({"instances": [[*row[:-1], "x"]] * 12_000}).encode()
        statuses = [requests.post(url, data=b"{", timeout=30).status_code for _ in range(200)]
        statuses += [requests.post(url, data=slow_bad, timeout=30).status_code for _ in range(5)]
        assert set(statuses) == {400, 422}
        samples = operator_view(server)
        stats = request_stats(samples)
        assert stats.requests == served, "the analysis divides by served requests only"
        assert stats.errors == 0
        count = sum(
            s.value for s in samples if s.name == "perennial_request_duration_seconds_count"
        )
        assert count == served, "rejected requests stay out of the latency histogram"
        rejected = {
            s.labels["code"]: s.value
            for s in samples
            if s.name == "perennial_rejected_requests_total" and s.labels["protocol"] == "v1"
        }
        assert rejected["400"] == 200 and rejected["422"] == 5
    finally:
        server.stop()
