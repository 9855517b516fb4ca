"""The history limit: which of a policy's TrainingJobs are deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from perennial_operator.decide.retrainpolicy.history import history_limit, jobs_to_prune

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]

OK = {"phase": "Succeeded", "modelVersion": "churn-v1"}
FAILED = {"phase": "Failed"}
UNREGISTERED = {"phase": "Succeeded"}  # the model is not registered yet
RUNNING = {"phase": "Training"}


def job(n: int, status: dict[str, Any], deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"j{n}", "creationTimestamp": f"2026-01-01T00:00:{n:02d}Z"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    return {"metadata": meta, "status": status}


def policy(limit: int | None, last: str | None = None) -> dict[str, Any]:
    spec = {} if limit is None else {"historyLimit": limit}
    return {"spec": spec, "status": {"lastTrainingJob": last} if last else {}}


@pytest.mark.parametrize(
    ("limit", "last", "jobs", "pruned"),
    [
        (3, None, [job(i, OK) for i in range(3)], []),  # at the limit
        (2, None, [job(i, OK) for i in range(4)], ["j0", "j1"]),  # oldest first
        (2, None, [job(3, OK), job(1, FAILED), job(2, OK), job(0, OK)], ["j0", "j1"]),
        (1, None, [job(0, RUNNING), job(1, UNREGISTERED), job(2, OK)], []),  # unfinished stay
        (1, None, [job(0, OK), job(1, RUNNING), job(2, OK)], ["j0"]),  # running is not counted
        (1, "j0", [job(0, OK), job(1, OK), job(2, OK)], ["j1"]),  # the gate's job stays
        (1, None, [job(0, OK, deleting=True), job(1, OK), job(2, OK)], ["j1"]),  # once
        (None, None, [job(i, OK) for i in range(12)], ["j0", "j1"]),  # default 10
    ],
)
def test_jobs_beyond_the_limit_are_pruned(
    limit: int | None, last: str | None, jobs: list[dict[str, Any]], pruned: list[str]
) -> None:
    assert jobs_to_prune(policy(limit, last), jobs) == pruned


def test_the_default_limit_is_the_crds() -> None:
    crd = yaml.safe_load((REPO / "crds" / "retrainpolicy.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert history_limit(policy(None)) == spec["properties"]["historyLimit"]["default"]
