"""Perennial Studio in a real headless Chromium, on the real control plane with the operator
and the local runtime: a model is trained, registered, promoted (with the Studio's own
button), served, and a canary starts; the pages follow along without a reload.

Screenshots of every page go to a temporary folder; with PERENNIAL_STUDIO_SHOTS=docs/studio
they refresh the ones linked from docs/studio.md (a test run must not edit the repository)."""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import Kube
from perennial_studio.app import Settings, Studio
from studio_support.browser import chromium, full_page_screenshot
from studio_support.process import StudioProcess
from studio_support.serve import serving
from studio_support.world import NS, store
from support.poll import until

pytestmark = pytest.mark.e2e
MODEL = "iris"
SHOTS = Path(os.environ.get("PERENNIAL_STUDIO_SHOTS") or tempfile.mkdtemp(prefix="studio-shots-"))


def trainingjob(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": MODEL,
            "task": "classification",
            "algorithm": "logistic_regression",
            "dataset": {"uri": "builtin://iris", "target": "target", "seed": 3},
            "resources": {"cpu": "100m", "memory": "256Mi"},
            "backoffLimit": 0,
            **spec,
        },
    }


@pytest.fixture
def studio(
    cluster: Any, tmp_path: Path, operator: Any, pod_runtime: Any, artifacts: Path
) -> Iterator[StudioProcess]:
    proc = StudioProcess(
        str(cluster.kubeconfig),
        tmp_path / "studio.log",
        "--allow-actions",
        "--poll-ms",
        "500",
        "--scrape-interval",
        "2",
    ).start()
    yield proc
    proc.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    driver = chromium(tmp_path / "chromium")
    yield driver
    driver.quit()


class Page:
    """What the test reads off the browser, polled with a deadline."""

    def __init__(self, driver: WebDriver, studio: StudioProcess, kube: Kube, ns: str) -> None:
        self.d, self.studio, self.kube, self.ns = driver, studio, kube, ns

    def open(self, path: str) -> None:
        self.d.get(self.studio.url + path)
        # A marker that only survives as long as this document does: a reload would drop it.
        self.d.execute_script("window.__studioNoReload = true;")

    def not_reloaded(self) -> bool:
        return bool(self.d.execute_script("return window.__studioNoReload === true;"))

    # Reads go through one script call each: live updates swap <main> at any moment, so an
    # element found by one WebDriver call may be gone by the next.
    def texts(self, css: str) -> list[str]:
        found = self.d.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText);",
            css,
        )
        return [" ".join(str(t).split()) for t in found]

    def text(self, css: str) -> str:
        return " ".join(self.texts(css))

    def attrs(self, css: str, *names: str) -> list[tuple[str, ...]]:
        found = self.d.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]))"
            ".map(e => arguments[1].map(n => e.getAttribute(n)));",
            css,
            list(names),
        )
        return [tuple(str(v) for v in row) for row in found]

    def cells(self, css: str) -> list[list[str]]:
        found = self.d.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]))"
            ".map(r => Array.from(r.cells).map(c => c.innerText.trim()));",
            css,
        )
        return [list(map(str, row)) for row in found]

    def click_button(self, css: str, label: str) -> None:
        clicked = self.d.execute_script(
            "const b = Array.from(document.querySelectorAll(arguments[0]))"
            ".find(e => e.textContent.trim() === arguments[1]); if (b) b.click(); return !!b;",
            css,
            label,
        )
        assert clicked, f"no button {label!r} in {css}"

    def wait(self, fn: Any, message: str, timeout: float = 120) -> Any:
        return until(
            fn,
            timeout=timeout,
            interval=0.2,
            message=message,
            describe=lambda: (
                f"{self.d.current_url}\n{self.text('main')[:3000]}\n"
                f"--- studio ---\n{self.studio.log_tail(20)}"
            ),
        )

    def shot(self, name: str) -> None:
        full_page_screenshot(self.d, SHOTS / f"{name}.png")

    def create(self, manifest: dict[str, Any]) -> None:
        self.kube.create({**manifest, "metadata": {**manifest["metadata"], "namespace": self.ns}})


def test_studio_follows_a_model_from_training_to_canary(
    studio: StudioProcess, browser: WebDriver, kube: Kube, namespace: str
) -> None:
    page = Page(browser, studio, kube, namespace)
    ns = namespace

    # 1. A TrainingJob's page shows its phase advancing, with no reload.
    page.create(trainingjob("iris-1"))
    page.open(f"/ns/{ns}/trainingjobs/iris-1")
    seen: list[str] = []

    def phase_done() -> bool:
        phase = page.text("h1 .pill")
        if phase and (not seen or seen[-1] != phase):
            seen.append(phase)
        return phase == "Succeeded" and "iris-v1" in page.text("dl.facts")

    page.wait(phase_done, "TrainingJob iris-1 Succeeded on its page", timeout=180)
    assert page.not_reloaded(), "the page reloaded instead of updating in place"
    assert len(seen) >= 2 and seen[-1] == "Succeeded", seen
    done = page.texts("ol.stepper li.done")
    assert done == ["Pending", "Validating", "Training", "Succeeded"], done
    assert "passed" in page.text("#checks-h + p")
    trained = kube.get(API_VERSION, "TrainingJob", ns, "iris-1")["status"]["metrics"]
    metrics = page.text("#metrics-h + table")
    assert f"accuracy {trained['accuracy']:.4g}" in metrics, metrics
    page.shot("trainingjob")

    # 2. The registered version on the model page, with its metric.
    page.open(f"/ns/{ns}/models/{MODEL}")
    row = page.wait(lambda: page.text("tr#iris-v1"), "iris-v1 on the model page")
    status = kube.get(API_VERSION, "ModelVersion", ns, "iris-v1")["status"]
    name, value = status["primaryMetric"].split("=")
    assert name in row and f"{float(value):.4g}" in row, row
    assert "iris-1" in row  # its job

    # 3. Promote it with the Studio's button (an Event records it), then serve Production.
    page.click_button("tr#iris-v1 form.action button", "Production")
    page.wait(
        lambda: "done: set iris-v1 to stage Production" in page.text(".banner.ok"),
        "the promotion's notice",
    )
    assert kube.get(API_VERSION, "ModelVersion", ns, "iris-v1")["spec"]["stage"] == "Production"
    events = kube.list("v1", "Event", ns, field_selector="involvedObject.name=iris-v1")
    assert any(
        e["reason"] == "StageSet" and e["source"]["component"] == "perennial-studio" for e in events
    ), events
    page.create(
        {
            "apiVersion": API_VERSION,
            "kind": "InferenceService",
            "metadata": {"name": MODEL},
            "spec": {
                "model": {"name": MODEL, "stage": "Production"},
                "replicas": 1,
                "resources": {"cpu": "200m", "memory": "256Mi"},
                "rollout": {"strategy": "Canary", "steps": [50, 100], "stepSeconds": 600},
            },
        }
    )

    # 4. The lineage graph links job -> version -> service, once the service serves it.
    page.open(f"/ns/{ns}/models/{MODEL}")
    service_link = f'svg.lineage a[href="/ns/{ns}/inferenceservices/{MODEL}"]'
    page.wait(lambda: page.attrs(service_link, "href"), "the service in the lineage graph")
    assert page.not_reloaded()
    edges = set(page.attrs("svg.lineage path.edge", "data-from", "data-to"))
    assert ("job:iris-1", "version:iris-v1") in edges, edges
    assert ("version:iris-v1", f"service:{MODEL}") in edges, edges
    assert page.attrs(f'svg.lineage a[href="/ns/{ns}/trainingjobs/iris-1"]', "href")
    page.wait(
        lambda: (
            kube.get(API_VERSION, "InferenceService", ns, MODEL)["status"].get("phase") == "Ready"
        ),
        "InferenceService Ready",
    )

    # 5. A second version, promoted with kubectl's merge patch, starts a canary: its step
    #    appears on the service's page while it is open.
    page.create(trainingjob("iris-2", hyperparameters={"C": 0.5}))
    page.wait(
        lambda: (
            (kube.get(API_VERSION, "TrainingJob", ns, "iris-2") or {})
            .get("status", {})
            .get("modelVersion")
        ),
        "iris-2 registered",
        timeout=180,
    )
    page.open(f"/ns/{ns}/models/{MODEL}")
    page.wait(lambda: page.text("tr#iris-v2"), "iris-v2 on the model page")
    page.shot("model")
    page.open(f"/ns/{ns}/models/{MODEL}/compare?a=iris-v1&b=iris-v2")
    assert "C" in page.text("table.compare-table") and "accuracy" in page.text("table.metrics")
    page.shot("compare")
    page.open(f"/ns/{ns}/inferenceservices/{MODEL}")
    kube.patch(API_VERSION, "ModelVersion", ns, "iris-v2", {"spec": {"stage": "Production"}})
    page.wait(
        lambda: (
            "current" in page.text("table.steps tr.step-current")
            and "50 %" in page.text("table.steps tr.step-current")
        ),
        "the canary's first step on the service page",
    )
    assert page.not_reloaded()
    assert "iris-v2" in page.text("dl.facts")
    predict(kube, ns, requests=30)
    page.wait(
        lambda: any(rate > 0 for rate in chart_values(page, "requests/s")),
        "the requests in the request-rate chart, from the pods' metrics",
    )
    page.shot("inferenceservice")
    page.open("/")
    page.wait(lambda: "iris-v2" in page.text("table.models"), "the canary on the overview")
    assert "promoted" in page.text("ol.timeline").lower()
    page.shot("overview")


def chart_values(page: Page, series: str) -> list[float]:
    """The values a chart's points carry in their <title> ("requests/s -4 s: 12.5")."""
    titles = page.d.execute_script(
        "return Array.from(document.querySelectorAll('.charts svg circle title'))"
        ".map(t => t.textContent);"
    )
    return [
        float(str(t).rsplit(": ", 1)[1].replace(",", ""))
        for t in titles
        if str(t).startswith(series + " ")
    ]


def predict(kube: Kube, ns: str, requests: int) -> None:
    """Requests to every ready serving pod, so the Studio's scrapes see traffic."""
    pods = kube.list("v1", "Pod", ns, f"perennial.dev/inferenceservice={MODEL}")
    ips = [
        p["status"]["podIP"]
        for p in pods
        if p.get("status", {}).get("podIP")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]
    assert ips, pods
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode()
    for i in range(requests):
        url = f"http://{ips[i % len(ips)]}:8080/v1/models/{MODEL}:predict"
        req = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200


def test_a_failed_data_check_lists_each_failing_check(
    studio: StudioProcess, browser: WebDriver, kube: Kube, namespace: str
) -> None:
    page = Page(browser, studio, kube, namespace)
    schema = {
        "sepal length (cm)": {"type": "number", "max": 5.0},
        "petal width (cm)": {"type": "number", "min": 1.0},
    }
    page.create(trainingjob("bad-data", validation={"minRows": 1000, "schema": schema}))
    page.open(f"/ns/{namespace}/trainingjobs/bad-data")
    page.wait(lambda: page.text("h1 .pill") == "Failed", "bad-data Failed on its page", 120)
    assert page.not_reloaded()
    cells = page.wait(lambda: page.cells("table.failures tbody tr"), "the failing checks")
    checks = {c[0]: c for c in cells}
    assert checks["dataset_rows_below_minimum"][2:] == ["150", ">= 1000"], cells
    assert checks["value_above_maximum"][1:] == ["sepal length (cm)", "7.9", "<= 5.0"], cells
    assert checks["value_below_minimum"][1:] == ["petal width (cm)", "0.1", ">= 1.0"], cells
    failed = page.texts("ol.stepper li.failed")
    assert failed == ["Validating", "Failed"], failed
    page.shot("trainingjob-failed-checks")


@pytest.fixture
def world_url() -> Iterator[str]:
    """The Studio over a fixed small world (no cluster): for what does not need one."""
    with serving(Studio(store(), None, None, Settings())) as base:
        yield base


def test_pages_read_completely_with_javascript_off(world_url: str, tmp_path: Path) -> None:
    driver = chromium(tmp_path / "chromium", javascript=False)
    try:
        for path, phrase in [
            ("/", "churn-v3 at 50 %"),
            (f"/ns/{NS}/models/churn", "churn-v2"),
            (f"/ns/{NS}/trainingjobs/churn-bad", "column_has_nulls"),
            (f"/ns/{NS}/inferenceservices/churn", "900 samples"),
            (f"/ns/{NS}/retrainpolicies/churn-fresh", "promoted"),
            ("/computepools", "gpu-a100-1"),
        ]:
            driver.get(world_url + path)
            body = driver.find_element(By.TAG_NAME, "body").text
            assert phrase in body, path
            assert "live updates need JavaScript" in body  # says how to refresh
            assert driver.find_elements(By.CSS_SELECTOR, "svg, table"), path
    finally:
        driver.quit()


def test_tables_sort_and_times_show_the_absolute_time_on_hover(
    world_url: str, browser: WebDriver
) -> None:
    browser.get(world_url + "/trainingjobs")
    page = Page(browser, None, None, NS)  # type: ignore[arg-type]

    def names() -> list[str]:
        return [row[1] for row in page.cells("table.sortable tbody tr")]

    assert names()[0] == "churn-running"  # newest first, as served
    page.click_button("table.sortable thead th button.sort", "name")
    assert names() == sorted(names())
    page.click_button("table.sortable thead th button.sort", "name")
    assert names() == sorted(names(), reverse=True)
    [(sort,)] = page.attrs("table.sortable thead th[aria-sort]", "aria-sort")
    assert sort == "descending"
    times = page.attrs("table.sortable time", "datetime", "title")
    assert times and all(title.endswith(" UTC") and when[:10] in title for when, title in times)
    assert all(t.endswith("ago") for t in page.texts("table.sortable time"))
