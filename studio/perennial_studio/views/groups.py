"""Per-model groupings shared by several pages, built once per snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perennial_studio import facts
from perennial_studio.store import Obj, Snapshot

DEFAULT_DRIFT_PSI = 0.2  # the CRD's default for a RetrainPolicy's triggers.drift.psi


@dataclass
class ModelGroup:
    namespace: str
    model: str
    versions: list[Obj] = field(default_factory=list)  # newest version first
    jobs: list[Obj] = field(default_factory=list)  # newest first
    services: list[Obj] = field(default_factory=list)
    policies: list[Obj] = field(default_factory=list)

    def holding(self, stage: str) -> Obj | None:
        """The newest version that holds `stage` (what a service tracking it resolves to)."""
        return next((mv for mv in self.versions if facts.stage(mv) == stage), None)


def model_groups(snap: Snapshot) -> dict[tuple[str, str], ModelGroup]:
    def build() -> dict[tuple[str, str], ModelGroup]:
        groups: dict[tuple[str, str], ModelGroup] = {}

        def group(kind: str, obj: Obj) -> ModelGroup | None:
            model = facts.model_of(kind, obj)
            if not model:
                return None
            key = (facts.namespace(obj), model)
            if key not in groups:
                groups[key] = ModelGroup(*key)
            return groups[key]

        for kind, attr in (
            ("ModelVersion", "versions"),
            ("TrainingJob", "jobs"),
            ("InferenceService", "services"),
        ):
            for obj in snap.items(kind):
                found = group(kind, obj)
                if found is not None:
                    getattr(found, attr).append(obj)
        for rp in snap.items("RetrainPolicy"):
            isvc = snap.get("InferenceService", facts.namespace(rp), _target(rp))
            found = group("InferenceService", isvc) if isvc else group("RetrainPolicy", rp)
            if found is not None:
                found.policies.append(rp)
        for g in groups.values():
            g.versions.sort(key=lambda mv: (facts.version(mv), facts.name(mv)), reverse=True)
            g.jobs.sort(key=lambda tj: (facts.created(tj), facts.name(tj)), reverse=True)
            g.services.sort(key=facts.name)
            g.policies.sort(key=facts.name)
        return groups

    result: dict[tuple[str, str], ModelGroup] = snap.memo("model_groups", build)
    return result


def _target(rp: Obj) -> str:
    return str(facts.spec(rp).get("inferenceService") or "")


def policies_for(snap: Snapshot, isvc: Obj) -> list[Obj]:
    ns, name = facts.namespace(isvc), facts.name(isvc)
    return [
        rp
        for rp in snap.items("RetrainPolicy")
        if facts.namespace(rp) == ns and _target(rp) == name
    ]


@dataclass(frozen=True)
class DriftView:
    state: str  # off | waiting | insufficient | stable | drifting
    psi: float | None  # None below the minimum sample count: never shown
    samples: int
    min_samples: int
    threshold: float
    time: str | None


def drift_view(snap: Snapshot, isvc: Obj, default_min_samples: int) -> DriftView:
    """What may be said about a service's drift. Below the minimum sample count no PSI is
    shown at all: a PSI from a handful of requests is noise. The minimum is the service's
    spec.monitoring.drift.minSamples (below it the operator writes no PSI), else (objects
    from before that field) a RetrainPolicy's drift trigger, else the Studio's default; the
    threshold is the trigger's, else the default."""
    drift_spec = ((facts.spec(isvc).get("monitoring") or {}).get("drift")) or {}
    triggers = [
        (facts.spec(rp).get("triggers") or {}).get("drift") for rp in policies_for(snap, isvc)
    ]
    trigger: dict[str, Any] = next((dict(t) for t in triggers if t), {})
    min_samples = int(
        drift_spec.get("minSamples") or trigger.get("minSamples") or default_min_samples
    )
    threshold = float(trigger.get("psi") or DEFAULT_DRIFT_PSI)
    drift = facts.status(isvc).get("drift") or {}
    samples = int(drift.get("samples") or 0)
    time = drift.get("time")
    if drift_spec.get("enabled") is False:
        return DriftView("off", None, samples, min_samples, threshold, time)
    if not drift:
        return DriftView("waiting", None, 0, min_samples, threshold, None)
    if samples < min_samples or drift.get("psi") is None:
        return DriftView("insufficient", None, samples, min_samples, threshold, time)
    psi = float(drift.get("psi") or 0.0)
    state = "drifting" if psi > threshold else "stable"
    return DriftView(state, psi, samples, min_samples, threshold, time)
