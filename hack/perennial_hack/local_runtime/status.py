"""Pod status as a kubelet writes it, built from what the local runtime knows. Pure, except
`termination_message`, which reads the file the container wrote.

The shapes follow core/v1 PodStatus: phase, conditions (PodReadyToStartContainers,
Initialized, ContainersReady, Ready, PodScheduled), podIP(s), hostIP(s), startTime and a
status per (init) container with waiting / running / terminated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_MESSAGE_BYTES = 4096  # the kubelet's cap on a termination message
LOG_FALLBACK_BYTES, LOG_FALLBACK_LINES = 2048, 80  # FallbackToLogsOnError, as the kubelet


def now_iso(clock: dt.datetime | None = None) -> str:
    return (clock or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRun:
    """One container's state as the runtime tracks it; `status()` renders it."""

    name: str
    image: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "PodInitializing"
    message: str = ""
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    ready: bool = False
    restart_count: int = 0
    last_terminated: dict[str, Any] | None = None

    def run(self, now: str) -> None:
        if self.state == "terminated":
            self.last_terminated = self._terminated()
        if self.started_at is not None:  # it ran before: this is a restart
            self.restart_count += 1
        self.state, self.reason, self.message = "running", "", ""
        self.started_at, self.finished_at, self.exit_code, self.ready = now, None, None, False

    def end(self, exit_code: int, message: str, now: str, reason: str | None = None) -> None:
        self.state, self.exit_code, self.message = "terminated", exit_code, message
        self.ready = False
        self.reason = reason or ("Completed" if exit_code == 0 else "Error")
        self.started_at = self.started_at or now
        self.finished_at = now

    def wait(self, reason: str, message: str = "") -> None:
        """Waiting again (CrashLoopBackOff): the last run is kept as lastState."""
        if self.state == "terminated":
            self.last_terminated = self._terminated()
        self.state, self.reason, self.message, self.ready = "waiting", reason, message, False

    def _terminated(self) -> dict[str, Any]:
        term: dict[str, Any] = {
            "exitCode": self.exit_code if self.exit_code is not None else 0,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        if self.message:
            term["message"] = self.message
        return term

    @property
    def succeeded(self) -> bool:
        return self.state == "terminated" and self.exit_code == 0

    def status(self) -> dict[str, Any]:
        state: dict[str, Any]
        if self.state == "running":
            state = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {"terminated": self._terminated()}
        else:
            state = {"waiting": {"reason": self.reason, **_msg(self.message)}}
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.state == "running",
            "state": state,
        }
        if self.last_terminated:
            out["lastState"] = {"terminated": self.last_terminated}
        return out


def _msg(message: str) -> dict[str, str]:
    return {"message": message} if message else {}


def pod_phase(
    init: Sequence[ContainerRun], main: Sequence[ContainerRun], restart_policy: str
) -> str:
    """The kubelet's rule: init containers must all succeed; then the phase follows the
    containers and the restart policy (Always never ends; OnFailure ends on success)."""
    if any(c.state == "terminated" and not c.succeeded for c in init) and (
        restart_policy == "Never"
    ):
        return "Failed"
    if not all(c.succeeded for c in init):
        return "Pending"
    if main and all(c.state == "terminated" for c in main) and restart_policy != "Always":
        if all(c.succeeded for c in main):
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
    if any(c.state in ("running", "terminated") or c.restart_count for c in main):
        return "Running"
    return "Pending"


Condition = tuple[str, str]  # (status, reason)


def wanted_conditions(
    init: Sequence[ContainerRun], main: Sequence[ContainerRun], phase: str, sandbox: bool
) -> dict[str, Condition]:
    done = phase in ("Succeeded", "Failed")
    initialized = all(c.succeeded for c in init)
    ready = bool(main) and all(c.ready for c in main) and not done
    not_ready = "PodCompleted" if done else "ContainersNotReady"
    return {
        "PodReadyToStartContainers": ("True" if sandbox and not done else "False", ""),
        "Initialized": ("True", "") if initialized else ("False", "ContainersNotInitialized"),
        "ContainersReady": ("True", "") if ready else ("False", not_ready),
        "Ready": ("True", "") if ready else ("False", not_ready),
        "PodScheduled": ("True", ""),
    }


def merge_conditions(
    previous: Mapping[str, dict[str, Any]], wanted: Mapping[str, Condition], now: str
) -> dict[str, dict[str, Any]]:
    """Conditions by type; lastTransitionTime moves only when the status changes."""
    merged: dict[str, dict[str, Any]] = {}
    for kind, (status, reason) in wanted.items():
        before = previous.get(kind)
        stamp = before["lastTransitionTime"] if before and before["status"] == status else now
        merged[kind] = {"type": kind, "status": status, "lastTransitionTime": stamp}
        if reason:
            merged[kind]["reason"] = reason
    return merged


@dataclass
class PodRun:
    """Everything a pod's status is made of."""

    pod_ip: str
    host_ip: str
    restart_policy: str
    init: list[ContainerRun]
    main: list[ContainerRun]
    start_time: str | None = None
    sandbox: bool = False  # volumes and address are in place
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def phase(self) -> str:
        return pod_phase(self.init, self.main, self.restart_policy)

    def status(self, now: str) -> dict[str, Any]:
        phase = self.phase
        wanted = wanted_conditions(self.init, self.main, phase, self.sandbox)
        self.conditions = merge_conditions(self.conditions, wanted, now)
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": list(self.conditions.values()),
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "startTime": self.start_time,
            "initContainerStatuses": [c.status() for c in self.init],
            "containerStatuses": [c.status() for c in self.main],
        }
        if self.sandbox:
            status |= {"podIP": self.pod_ip, "podIPs": [{"ip": self.pod_ip}]}
        return status


def _tail(data: bytes, max_bytes: int, max_lines: int) -> bytes:
    lines = data.splitlines(keepends=True)[-max_lines:]
    return b"".join(lines)[-max_bytes:]


def termination_message(
    path: Path, log: Path | None, *, exit_code: int, fallback_to_logs: bool
) -> str:
    """The container's termination message: its termination-log file (first 4096 bytes),
    or, with FallbackToLogsOnError and a failure, the tail of its log."""
    try:
        data = path.read_bytes()[:MAX_MESSAGE_BYTES]
    except OSError:
        data = b""
    if not data and fallback_to_logs and exit_code != 0 and log is not None:
        try:
            data = _tail(log.read_bytes(), LOG_FALLBACK_BYTES, LOG_FALLBACK_LINES)
        except OSError:
            data = b""
    return data.decode("utf-8", errors="replace")


def lost_status(status: dict[str, Any], now: str, message: str) -> dict[str, Any]:
    """A restartPolicy=Never pod whose processes died with an earlier runtime: whatever was
    running or waiting is reported as killed and the pod as Failed, as when a node loses
    its containers. The Job controller then retries it as it would a crash."""

    def killed(container: dict[str, Any]) -> dict[str, Any]:
        state = container.get("state") or {}
        if "terminated" in state:
            return container
        started = (state.get("running") or {}).get("startedAt") or now
        term = {"exitCode": 137, "reason": "Error", "message": message,
                "startedAt": started, "finishedAt": now}  # fmt: skip
        return {**container, "ready": False, "started": False, "state": {"terminated": term}}

    conditions = [
        {**c, "status": "False", "reason": "PodCompleted", "lastTransitionTime": now}
        if c.get("type") in ("Ready", "ContainersReady") and c.get("status") == "True"
        else c
        for c in status.get("conditions") or []
    ]
    return {
        **status,
        "phase": "Failed",
        "conditions": conditions,
        "initContainerStatuses": [killed(c) for c in status.get("initContainerStatuses") or []],
        "containerStatuses": [killed(c) for c in status.get("containerStatuses") or []],
    }
