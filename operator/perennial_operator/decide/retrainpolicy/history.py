"""Which of a policy's TrainingJobs go: the history limit, pure.

The policy does not own its TrainingJobs (deleting it keeps the history); it keeps the
newest `spec.historyLimit` finished ones instead. Never pruned: a job still running, one not
yet fully recorded (its model not registered), and the policy's `status.lastTrainingJob`,
whose verdict the gate still reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from perennial_operator.decide.trainingjob.status import finished

DEFAULT_HISTORY_LIMIT: Final = 10  # the CRD's default; for objects read before it existed


def history_limit(policy: Mapping[str, Any]) -> int:
    return max(1, int((policy.get("spec") or {}).get("historyLimit") or DEFAULT_HISTORY_LIMIT))


def jobs_to_prune(policy: Mapping[str, Any], jobs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of finished TrainingJobs beyond the newest `historyLimit`, oldest first."""
    last = (policy.get("status") or {}).get("lastTrainingJob")
    done = [
        j
        for j in jobs
        if finished(dict(j.get("status") or {})) and not j["metadata"].get("deletionTimestamp")
    ]
    # RFC 3339 timestamps in UTC sort as strings; the name breaks ties (same second).
    done.sort(key=lambda j: (j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]))
    excess = len(done) - history_limit(policy)
    return [j["metadata"]["name"] for j in done[: max(0, excess)] if j["metadata"]["name"] != last]
