"""What the Job and Pod watches last showed of the TrainingJobs' children, in a few fields.

Why (issue 18): every Job or Pod event re-read the Job (GET) and listed the TrainingJob's pods
(a LIST with a label selector, which the API server answers by filtering every pod of the
namespace: quadratic in a burst). The operator already watches both, so it keeps what the
events showed, as the same observed.JobObs / PodObs the sync decides on (not the bodies),
and only until the object is deleted. An event that changes nothing the sync reads is
reported as unchanged, and its sync skipped. It also remembers the artifact claims it found
(one per namespace), for a while.

It can lag the API server (another watch stream, a restart): the sync reads the Job from
the API when it is not here, and reads the pods from the API once the Job has finished
(the result is in a pod's termination message: never decided on a pod event not yet seen).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perennial_operator.api.group import LABEL_TRAININGJOB_UID
from perennial_operator.decide.ownership import controller_uid
from perennial_operator.decide.trainingjob import observed


@dataclass(frozen=True)
class SeenJob:
    uid: str
    owner_uid: str  # its controller's uid ("" without one)
    obs: observed.JobObs


@dataclass(frozen=True)
class _SeenPod:
    owner_uid: str  # the Job that controls it
    obs: observed.PodObs


# An artifact claim seen this recently is not read again before each new Job (a burst read
# the same claim once per TrainingJob). One deleted meanwhile is made again by the first
# start after this long; until then the new pods wait for it, Pending, and say so.
CLAIM_TRUSTED_SECONDS = 300.0


class ChildView:
    """Thread-safe: kopf runs the event handlers on its executor's threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._claims: dict[tuple[str, str], float] = {}  # (namespace, name) -> when seen
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], SeenJob] = {}  # (namespace, name)
        self._pods: dict[str, dict[str, _SeenPod]] = {}  # TrainingJob uid -> pod name

    def saw_job(self, job: dict[str, Any], deleted: bool = False) -> bool:
        """Record a Job as an event (or our own write) showed it; True if the sync should
        look again (new, gone, or changed in what it reads)."""
        meta = job["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]))
        with self._lock:
            before = self._jobs.pop(key, None)
            if deleted:
                return before is not None
            seen = SeenJob(str(meta.get("uid") or ""), controller_uid(meta), observed.job_obs(job))
            self._jobs[key] = seen
            return seen != before

    def saw_pod(self, pod: dict[str, Any], deleted: bool = False) -> bool:
        meta = pod["metadata"]
        owner = str((meta.get("labels") or {}).get(LABEL_TRAININGJOB_UID) or "")
        name = str(meta["name"])
        with self._lock:
            pods = self._pods.get(owner, {})
            before = pods.pop(name, None)
            if deleted:
                if not pods:
                    self._pods.pop(owner, None)
                return before is not None
            seen = _SeenPod(controller_uid(meta), observed.pod_obs(pod))
            self._pods.setdefault(owner, pods)[name] = seen
            return seen != before

    def job(self, namespace: str, name: str) -> SeenJob | None:
        with self._lock:
            return self._jobs.get((namespace, name))

    def pods(self, trainingjob_uid: str, job_uid: str) -> list[observed.PodObs]:
        """The pods seen with the TrainingJob's label that the Job controls."""
        with self._lock:
            pods = list(self._pods.get(trainingjob_uid, {}).values())
        # In name order, as a LIST answers.
        return sorted((p.obs for p in pods if p.owner_uid == job_uid), key=lambda o: o.name)

    def saw_claim(self, namespace: str, name: str) -> None:
        with self._lock:
            self._claims[(namespace, name)] = self._clock()

    def claim_known(self, namespace: str, name: str) -> bool:
        with self._lock:
            seen = self._claims.get((namespace, name))
        return seen is not None and self._clock() - seen < CLAIM_TRUSTED_SECONDS

    def sizes(self) -> tuple[int, int]:
        """(Jobs, pods) held: bounded by the children that exist."""
        with self._lock:
            return len(self._jobs), sum(len(p) for p in self._pods.values())
