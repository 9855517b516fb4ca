"""Finding 4, the operator half (issue 20): canary analysis judges errors on requests the
model served. Cheap 4xx requests (the client's fault) must not dilute the 5xx rate, whether
the server counts them in perennial_requests_total (servers before this change) or apart in
perennial_rejected_requests_total (servers after it)."""

from __future__ import annotations

import pytest

from perennial_operator.decide.monitoring.samples import Sample
from perennial_operator.decide.rollout.analysis import pod_counters, request_stats

pytestmark = pytest.mark.unit


def requests(code: str, value: float) -> Sample:
    return Sample("perennial_requests_total", {"code": code, "protocol": "v1"}, value)


def rejected(code: str, value: float) -> Sample:
    return Sample("perennial_rejected_requests_total", {"code": code, "protocol": "v1"}, value)


OLD_SERVER = [requests("200", 20), requests("500", 20), requests("400", 5000)]
NEW_SERVER = [requests("200", 20), requests("500", 20), rejected("400", 5000)]


@pytest.mark.parametrize("samples", [OLD_SERVER, NEW_SERVER], ids=["old-server", "new-server"])
def test_cheap_400s_do_not_hide_a_canarys_5xx(samples):
    stats = request_stats(samples)
    assert (stats.requests, stats.errors) == (40, 20)  # a 50 % error rate, not 0.4 %
    pod = pod_counters("canary-0", 0, samples)
    assert (pod.requests, pod.errors) == (40, 20)
