"""The newData trigger's probe, pure: is a probe due, what did the finished one find.

status.newData is the probe's record: `probeJob` (the probe in flight; absent when none is),
`checkedTime` (when the last probe finished, successfully or not: the next is due
pollSeconds later), `sha256`, `rows`, `uri` (what it found; absent when it failed) and
`triggeredSha256` (the data that last started a retraining: the same data never starts a
second one, since a rejected candidate would be rejected again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.api import runtime_contract as rc
from perennial_operator.api.names import PROBE_CONTAINER
from perennial_operator.api.timestamps import parse_time
from perennial_operator.decide.retrainpolicy.triggers import NEW_DATA, Trigger
from perennial_operator.decide.trainingjob.observed import JobObs, PodObs
from perennial_operator.decide.trainingjob.termination import failure_report, parse_message

DEFAULT_POLL_SECONDS = 300
FINGERPRINTED = "Fingerprinted"  # the outcome `perennial-train fingerprint` reports


@dataclass(frozen=True)
class ProbeObs:
    """The probe Job named in status.newData.probeJob, as the cluster shows it."""

    name: str
    job: JobObs | None  # None: it does not exist (never created, or already gone)
    pods: tuple[PodObs, ...] = ()


@dataclass(frozen=True)
class Probed:
    """A finished probe: the dataset it read, or why it could not (reason, message)."""

    sha256: str = ""
    rows: int = 0
    uri: str = ""
    failure: tuple[str, str] | None = None


def record_of(status: Mapping[str, Any]) -> dict[str, Any]:
    return dict(status.get("newData") or {})


def replaced(previous: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """`new` as a status value that replaces `previous` through a merge patch: keys it drops
    become None (which the patch deletes); keys absent from both stay absent, so the next
    reconcile sees no change."""
    return {**{key: None for key in previous if key not in new}, **new}


def short(sha256: str) -> str:
    return f"{sha256[:8]}…" if sha256 else "unknown"


def _fingerprint(message: Mapping[str, Any]) -> Probed | None:
    """The dataset of a `perennial-train fingerprint` termination message, if it is one."""
    dataset = message.get("dataset") or {}
    sha256, rows = dataset.get("sha256"), dataset.get("rows")
    if message.get("outcome") != FINGERPRINTED or not isinstance(sha256, str):
        return None
    if len(sha256) != 64 or any(ch not in "0123456789abcdef" for ch in sha256):
        return None
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        return None
    return Probed(sha256, rows, str(dataset.get("uri") or ""))


def poll_seconds(triggers: Mapping[str, Any]) -> int:
    return int((triggers.get("newData") or {}).get("pollSeconds", DEFAULT_POLL_SECONDS))


def probe_due(triggers: Mapping[str, Any], record: Mapping[str, Any], now: dt.datetime) -> bool:
    """newData is on, no probe is in flight, and pollSeconds passed since the last one."""
    if triggers.get("newData") is None or record.get("probeJob"):
        return False
    last = parse_time(record.get("checkedTime"))
    return last is None or now >= last + dt.timedelta(seconds=poll_seconds(triggers))


def probe_result(probe: ProbeObs) -> Probed | None:
    """What a finished probe Job found; None while it runs (or when it does not exist)."""
    job = probe.job
    if job is None or not (job.complete or job.failure):
        return None
    pods = sorted(probe.pods, key=lambda p: (p.created, p.name), reverse=True)
    ends = [
        ctr for pod in pods if (ctr := pod.container(PROBE_CONTAINER)) and ctr.state == "terminated"
    ]
    if job.complete:
        text = ends[0].message if ends and ends[0].exit_code == 0 else ""
        found = _fingerprint(parse_message(text) or {})
        return found or Probed(failure=(c.PROBE_FAILED, f"no readable result: {text[:200]!r}"))
    failed = next((ctr for ctr in ends if ctr.exit_code not in (None, 0)), None)
    if failed is not None:
        reason = rc.PERMANENT_FAILURE_REASONS.get(failed.exit_code or 0, c.PROBE_FAILED)
        report = failure_report(failed.message) if failed.message else failed.reason
        return Probed(failure=(reason, f"exit code {failed.exit_code}: {report}"))
    why, text = job.failure or ("Failed", "")
    return Probed(failure=(c.PROBE_FAILED, f"{why}: {text}" if text else why))


def serving_sha256(serving: Mapping[str, Any] | None) -> str:
    """The dataset sha256 the serving ModelVersion records in spec.source (may be "")."""
    source = ((serving or {}).get("spec") or {}).get("source") or {}
    return str((source.get("dataset") or {}).get("sha256") or "")


def dataset_change(old: str, new: str, rows: int) -> str:
    return f"dataset sha256 {short(old)}→{short(new)} ({rows} rows)"


def new_data_arrived(
    triggers: Mapping[str, Any], record: Mapping[str, Any], serving: Mapping[str, Any] | None
) -> Trigger | None:
    """The last probe read a dataset other than the one the serving ModelVersion was trained
    on (or one it records no sha256 for), and that data has not started a retraining yet."""
    found = str(record.get("sha256") or "")
    if triggers.get("newData") is None or not found or serving is None:
        return None
    served = serving_sha256(serving)
    if found in (served, record.get("triggeredSha256")):
        return None
    return Trigger(NEW_DATA, dataset_change(served, found, int(record.get("rows") or 0)))


def triggered(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record once its data started a retraining."""
    return {**record, "triggeredSha256": record.get("sha256")}


def checked(
    probe: str,
    found: Probed,
    serving: Mapping[str, Any] | None,
    record: Mapping[str, Any],
    poll: int,
) -> tuple[bool, str, str]:
    """The DatasetChecked condition (ok, reason, message) after `probe` finished."""
    if found.failure is not None:
        reason, why = found.failure
        return False, reason, f"probe {probe} failed: {why}; trying again in {poll}s"
    if serving is None:
        return (
            True,
            c.NO_SERVING_VERSION,
            (
                f"probe {probe}: dataset sha256 {short(found.sha256)} ({found.rows} rows); "
                "no serving ModelVersion to compare it with"
            ),
        )
    name, old = serving["metadata"]["name"], serving_sha256(serving)
    if found.sha256 == old:
        return (
            True,
            c.DATASET_UNCHANGED,
            (
                f"probe {probe}: dataset sha256 {short(found.sha256)} ({found.rows} rows) is the "
                f"data {name} was trained on"
            ),
        )
    message = f"probe {probe}: {dataset_change(old, found.sha256, found.rows)} since {name}"
    if not old:
        message += f" ({name} records no dataset sha256)"
    if found.sha256 == record.get("triggeredSha256"):
        message += "; a retraining on this data was started already"
    return True, c.DATASET_CHANGED, message


def after_probe(record: Mapping[str, Any], found: Probed, now: str) -> dict[str, Any]:
    """The record once a probe finished: no probe in flight, what it found (if anything)."""
    new = {k: v for k, v in record.items() if k == "triggeredSha256" and v}
    new["checkedTime"] = now
    if found.failure is None:
        new.update(sha256=found.sha256, rows=found.rows, uri=found.uri)
    return replaced(record, new)
