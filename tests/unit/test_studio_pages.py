"""Every Studio page over real HTTP (uvicorn on 127.0.0.1) from a Store holding a small
world: what each page says, conditional requests, the fragment, the security headers, and
that actions are refused unless switched on and asked for with the page's token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from urllib.parse import urlencode

import pytest

from perennial_studio.app import Settings, Studio
from studio_support.serve import fetch, serving
from studio_support.world import NS, store

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serving(Studio(store(), None, None, Settings(min_samples=100))) as base:
        yield base


def text(html: str) -> str:
    """What a reader sees: tags dropped, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


PAGES = [
    (
        "/",
        [
            "Namespace ml",
            "churn-v2",
            "roc_auc 0.93",
            "churn-v3 at 50 % (step 2/3)",
            "drifting PSI 0.31 > 0.2 (900 samples)",
            "Drift",
            "Timeline",
        ],
    ),
    ("/trainingjobs", ["churn-running", "churn-bad", "Failed"]),
    (
        f"/ns/{NS}/models/churn",
        [
            "Production churn-v2 roc_auc=0.93",
            "churn-fresh",
            "stage Production -> Archived: churn-v2 was promoted",
        ],
    ),
    (
        f"/ns/{NS}/models/churn/compare?a=churn-v2&b=churn-v3",
        ["0.93", "0.95", "members[0].params.C"],
    ),
    (
        f"/ns/{NS}/trainingjobs/churn-3",
        [
            "Succeeded",
            "column_is_constant",
            "random_forest",
            "fitting",
            "Drift: psi=0.31",
            "gpu-a100-1",
        ],
    ),
    (
        f"/ns/{NS}/trainingjobs/churn-bad",
        ["dataset_rows_below_minimum", "column_has_nulls", "tenure", ">= 500"],
    ),
    (
        f"/ns/{NS}/inferenceservices/churn",
        ["churn-v3 at 50 %", "120", "12.5 ms", "900 samples", "accuracy from feedback: 0.88"],
    ),
    (
        f"/ns/{NS}/retrainpolicies/churn-fresh",
        ["PSI 0.310 over 900 samples", "accuracy 0.88", "promoted", "+0.02", "churn-3"],
    ),
    (
        "/computepools",
        ["gpu-a100", "1 ready of 1 nodes, 2 desired", "waiting-for-gpu", "scaled up from 0 to 1"],
    ),
]


@pytest.mark.parametrize(("path", "says"), PAGES, ids=[p for p, _ in PAGES])
def test_each_page_says_what_the_cluster_holds(url: str, path: str, says: list[str]) -> None:
    status, headers, body = fetch(url + path)
    assert status == 200, body[:2000]
    seen = text(body)
    for phrase in says:
        assert phrase in seen, f"{phrase!r} not on {path}"
    assert re.search(r"<title>[^<]+ · Perennial Studio</title>", body)
    assert "<h1" in body and "<main" in body
    assert headers["content-security-policy"].startswith("default-src 'self'")
    # Nothing of a pod's spec beyond placement ever reaches a page.
    assert "hunter2" not in body and "SECRET_TOKEN" not in body


def test_unknown_objects_are_404_with_a_way_back(url: str) -> None:
    for path in (
        f"/ns/{NS}/trainingjobs/nope",
        f"/ns/{NS}/models/nope",
        "/ns/x/models/churn",
        f"/ns/{NS}/models/churn/compare?a=churn-v1&b=churn-v9",
    ):
        status, _, body = fetch(url + path)
        assert status == 404, path
        assert 'href="/"' in body


def test_a_page_that_did_not_change_answers_304_without_rendering(url: str) -> None:
    status, headers, _ = fetch(url + "/")
    etag = headers["etag"]
    again, headers2, body = fetch(url + "/", {"If-None-Match": etag})
    assert (again, body) == (304, "")
    assert headers2["etag"] == etag


def test_the_fragment_is_the_main_element_only(url: str) -> None:
    _, _, whole = fetch(url + f"/ns/{NS}/inferenceservices/churn")
    _, _, part = fetch(url + f"/ns/{NS}/inferenceservices/churn", {"X-Studio-Fragment": "main"})
    assert "<html" in whole and "<html" not in part and "<header" not in part
    inner = whole.split('<main id="main" data-live>', 1)[1].rsplit("</main>", 1)[0]
    assert text(part) == text(inner)


def test_psi_below_the_minimum_sample_count_is_never_shown() -> None:
    world = store()
    snap_isvc = world.snapshot().get("InferenceService", NS, "churn")
    assert snap_isvc is not None
    few = {
        **snap_isvc,
        "status": {
            **snap_isvc["status"],
            "drift": {
                "psi": 4.2,
                "samples": 4,
                "features": {"tenure": 4.2},
                "time": "2026-01-03T10:06:00Z",
            },
        },
    }
    world.upsert("InferenceService", few)
    with serving(Studio(world, None, None, Settings(min_samples=100))) as base:
        for path in (
            "/",
            f"/ns/{NS}/inferenceservices/churn",
            f"/ns/{NS}/retrainpolicies/churn-fresh",
        ):
            _, _, body = fetch(base + path)
            seen = text(body)
            assert "4.2" not in seen, path
            assert "4 samples" in seen or "4/500" in seen or "4 of the 500" in seen, path


def test_actions_are_refused_unless_switched_on(url: str) -> None:
    form = urlencode({"namespace": NS, "name": "churn-v3", "stage": "Production", "token": "x"})
    status, _, body = fetch(url + "/actions/promote", data=form.encode())
    assert status == 403 and "--allow-actions" in body
    _, _, page = fetch(url + f"/ns/{NS}/models/churn")
    assert "/actions/" not in page


def test_an_action_without_the_pages_token_is_refused() -> None:
    studio = Studio(store(), None, None, Settings(allow_actions=True))
    with serving(studio) as base:
        _, _, page = fetch(base + f"/ns/{NS}/models/churn")
        assert f'name="token" value="{studio.token}"' in page
        form = {"namespace": NS, "name": "churn-v3", "stage": "Production"}
        status, _, body = fetch(
            base + "/actions/promote", data=urlencode({**form, "token": "forged"}).encode()
        )
        assert status == 403 and "token" in body
