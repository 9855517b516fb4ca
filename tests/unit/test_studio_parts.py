"""The Studio's small parts: what it keeps of an object, the store's history and scopes,
scraped counters into rates, and SVG that escapes what it draws."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from perennial_studio import svg
from perennial_studio.project import project
from perennial_studio.scrape import histogram_quantile, increase, parse_counters, point
from perennial_studio.store import Store
from studio_support.world import objects

pytestmark = pytest.mark.unit


def test_a_pod_keeps_placement_and_state_never_its_spec() -> None:
    [pod] = [p for p in objects()["Pod"] if p["metadata"]["name"] == "churn-3-train-x1"]
    kept = project("Pod", pod)
    assert "hunter2" not in repr(kept) and "SECRET_TOKEN" not in repr(kept)
    assert "command" not in repr(kept) and "managedFields" not in repr(kept)
    assert kept["spec"]["nodeName"] == "gpu-a100-1"
    assert kept["spec"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    message = kept["status"]["containerStatuses"][0]["terminated"]["message"]
    assert '"timings"' in message  # a training pod's report is kept


def test_a_serving_pod_keeps_no_termination_message() -> None:
    pod = {
        "metadata": {"name": "s", "labels": {"perennial.dev/inferenceservice": "x"}},
        "status": {
            "containerStatuses": [
                {
                    "name": "serve",
                    "state": {"terminated": {"exitCode": 1, "message": "secret stuff"}},
                }
            ]
        },
    }
    assert "secret stuff" not in repr(project("Pod", pod))


def test_custom_resources_lose_only_bookkeeping() -> None:
    mv = objects()["ModelVersion"][0]
    mv["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "team": "risk",
    }
    kept = project("ModelVersion", mv)
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {"team": "risk"}
    assert kept["spec"] == mv["spec"] and kept["status"] == mv["status"]


def ev(uid: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid}, "time": uid}


def test_events_are_history_capped_oldest_first() -> None:
    store = Store(max_events=3)
    store.replace("Event", [ev("1"), ev("2")])
    store.delete("Event", ev("1"))  # the API server's TTL: still history here
    store.upsert("Event", ev("3"))
    store.upsert("Event", ev("4"))
    assert sorted(e["time"] for e in store.snapshot().items("Event")) == ["2", "3", "4"]


def test_a_namespaced_list_replaces_only_its_namespace() -> None:
    store = Store()
    store.watch_scopes("TrainingJob", ["a", "b"])
    a1 = {"metadata": {"namespace": "a", "name": "one"}}
    b1 = {"metadata": {"namespace": "b", "name": "one"}}
    store.replace("TrainingJob", [a1], scope="a")
    assert not store.snapshot().health["TrainingJob"][0]  # b not listed yet
    store.replace("TrainingJob", [b1], scope="b")
    store.replace("TrainingJob", [], scope="a")
    snap = store.snapshot()
    assert snap.health["TrainingJob"][0] and snap.items("TrainingJob") == [b1]


def test_a_snapshot_does_not_move_under_a_reader() -> None:
    store = Store()
    store.replace("ModelVersion", [{"metadata": {"namespace": "a", "name": "x"}}])
    snap = store.snapshot()
    store.upsert("ModelVersion", {"metadata": {"namespace": "a", "name": "y"}})
    assert len(snap.items("ModelVersion")) == 1
    assert len(store.snapshot().items("ModelVersion")) == 2


@pytest.fixture
def exposition() -> Iterator[tuple[CollectorRegistry, Counter, Histogram]]:
    """The serving metrics' names and labels, exported by prometheus_client itself."""
    registry = CollectorRegistry()
    requests = Counter("perennial_requests", "requests", ["protocol", "code"], registry=registry)
    latency = Histogram(
        "perennial_request_duration_seconds",
        "latency",
        ["protocol"],
        buckets=(0.005, 0.01, 0.05, 0.1),
        registry=registry,
    )
    yield registry, requests, latency


def test_scraped_counters_become_rate_error_rate_and_p99(exposition: Any) -> None:
    registry, requests, latency = exposition
    before = parse_counters(generate_latest(registry).decode())
    for _ in range(90):
        requests.labels("v2", "200").inc()
        latency.labels("v2").observe(0.004)
    for _ in range(10):
        requests.labels("v1", "503").inc()
        latency.labels("v1").observe(0.07)
    requests.labels("v2", "400").inc(5)  # the client's fault: not an error
    after = parse_counters(generate_latest(registry).decode())
    p = point(100.0, 10.0, [increase(before, after)])
    assert p.rps == pytest.approx(10.5)
    assert p.error_rate == pytest.approx(10 / 105)
    assert p.p99_ms is not None and 50 < p.p99_ms <= 100  # in the (0.05, 0.1] bucket


def test_a_counter_that_went_down_counts_from_zero() -> None:
    from perennial_studio.scrape import Counters

    before, after = Counters(500, 5, {0.1: 500}), Counters(20, 1, {0.1: 20})
    assert increase(before, after) == after
    assert increase(None, after).requests == 0  # first sight: no interval yet


@pytest.mark.parametrize(
    ("buckets", "q", "expected"),
    [
        ({0.1: 0, 0.2: 100, float("inf"): 100}, 0.5, 0.15),
        ({0.1: 100, float("inf"): 100}, 0.99, 0.099),
        ({0.1: 0, float("inf"): 10}, 0.99, 0.1),  # +Inf answers with the highest finite bound
        ({0.1: 0}, 0.99, None),
    ],
)
def test_histogram_quantile_interpolates_as_prometheus(
    buckets: dict[float, float], q: float, expected: float | None
) -> None:
    found = histogram_quantile(q, buckets)
    assert found == (None if expected is None else pytest.approx(expected))


def test_svg_escapes_every_label() -> None:
    evil = "<script>alert(1)</script>"
    bars = str(svg.bar_chart([(evil, 0.3)], title=evil, threshold=0.2))
    line = str(
        svg.line_chart(
            [svg.Series(evil, [(1.0, 0.5), (2.0, 0.7)])], title=evil, x_labels={1.0: evil}
        )
    )
    for markup in (bars, line):
        assert "<script>" not in markup and "&lt;script&gt;" in markup


def test_a_line_chart_without_points_says_so() -> None:
    assert "no data yet" in str(svg.line_chart([svg.Series("x", [])], title="t"))
