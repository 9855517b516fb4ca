"""Pure: objects in, tables out (status, lineage, compare). render.py draws them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from perennial_cli.actions import rejections

Obj = Mapping[str, Any]
RETRAIN_LABEL = "perennial.dev/retrainpolicy"
RETRAIN_REASON = "perennial.dev/retrain-reason"


@dataclass(frozen=True)
class Table:
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    empty: str = "none"


@dataclass
class View:
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _cond(obj: Obj, type_: str) -> Mapping[str, Any]:
    return next((c for c in _status(obj).get("conditions") or [] if c.get("type") == type_), {})


def fmt(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={fmt(v)}" for k, v in sorted(value.items())) or "-"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value) or "-"
    return str(value)


def model_of(obj: Obj) -> str:
    """The model an object is about, whatever its kind."""
    kind, spec = obj.get("kind"), _spec(obj)
    if kind == "InferenceService":
        return str((spec.get("model") or {}).get("name", ""))
    if kind == "RetrainPolicy":
        return str((spec.get("template") or {}).get("model", ""))
    return str(spec.get("model", ""))


def _version(mv: Obj) -> int:
    return int(_spec(mv).get("version") or 0)


# ---- status --------------------------------------------------------------------------------


def status_view(
    mvs: Iterable[Obj], isvcs: Iterable[Obj], policies: Iterable[Obj], jobs: Iterable[Obj],
    model: str | None = None,
) -> View:  # fmt: skip
    """One screen: versions, services and their rollout, drift, the last retraining."""

    def keep(objs: Iterable[Obj]) -> list[Obj]:
        return [o for o in objs if model is None or model_of(o) == model]

    mvs, isvcs, policies, jobs = keep(mvs), keep(isvcs), keep(policies), keep(jobs)
    view = View()
    view.tables.append(_versions(mvs))
    view.tables.append(_services(isvcs))
    view.tables.append(_retraining(policies, jobs))
    running = [j for j in jobs if _status(j).get("phase") not in ("Succeeded", "Failed")]
    if running:
        view.tables.append(_jobs(running, "training now"))
    if model is not None and not (mvs or isvcs or policies or jobs):
        view.notes.append(f"nothing found for model {model}")
    return view


def _versions(mvs: list[Obj]) -> Table:
    rows = [
        [
            _name(mv), model_of(mv), str(_version(mv)), fmt(_spec(mv).get("stage") or "None"),
            fmt(_status(mv).get("primaryMetric")), fmt(_status(mv).get("phase")),
            fmt((_spec(mv).get("source") or {}).get("trainingJob")),
            ", ".join(r.service for r in rejections(mv) if not r.retried) or "-",
        ]
        for mv in sorted(mvs, key=lambda m: (model_of(m), -_version(m)))
    ]  # fmt: skip
    columns = ["VERSION", "MODEL", "N", "STAGE", "METRIC", "PHASE", "TRAINED BY", "REJECTED"]
    return Table("Model versions", columns, rows)


def _rollout(isvc: Obj) -> str:
    canary = _status(isvc).get("canary") or {}
    if not canary:
        return "-"
    steps = (_spec(isvc).get("rollout") or {}).get("steps") or []
    step = canary.get("step")
    where = f" step {int(step) + 1}/{len(steps)}" if step is not None and steps else ""
    version = canary.get("modelVersion") or canary.get("version")
    return f"{version} at {fmt(canary.get('weight'))}%{where}"


def _drift(isvc: Obj) -> str:
    drift = _status(isvc).get("drift") or {}
    if not drift:
        return "-"
    worst = f" ({drift['worst']})" if drift.get("worst") else ""
    return f"psi {fmt(drift.get('psi'))}{worst}, {fmt(drift.get('samples'))} samples"


def _services(isvcs: list[Obj]) -> Table:
    rows = []
    for isvc in sorted(isvcs, key=_name):
        ref = _spec(isvc).get("model") or {}
        follows = f"v{ref['version']}" if ref.get("version") is not None else ref.get("stage")
        status = _status(isvc)
        ready = f"{status.get('readyReplicas') or 0}/{status.get('replicas') or 0}"
        rows.append([
            _name(isvc), f"{ref.get('name')} ({follows})", fmt(status.get("currentModelVersion")),
            _rollout(isvc), ready, fmt(status.get("phase")), _drift(isvc),
        ])  # fmt: skip
    columns = ["SERVICE", "SERVES", "CURRENT", "CANARY", "READY", "PHASE", "DRIFT"]
    return Table("Inference services", columns, rows)


def _verdict(policy: Obj) -> str:
    promoted = _cond(policy, "Promoted")
    if not promoted:
        return "-"
    return f"{promoted.get('reason')}: {promoted.get('message', '')}".strip()


def _retraining(policies: list[Obj], jobs: list[Obj]) -> Table:
    rows = []
    for policy in sorted(policies, key=_name):
        status = _status(policy)
        trigger = status.get("lastTrigger") or {}
        last_job = status.get("lastTrainingJob")
        job = next((j for j in jobs if _name(j) == last_job), None)
        job_text = f"{last_job} ({fmt(_status(job).get('phase'))})" if job else fmt(last_job)
        rows.append([
            _name(policy), fmt(_spec(policy).get("inferenceService")), fmt(status.get("phase")),
            f"{fmt(trigger.get('reason'))} {fmt(trigger.get('time'))}".strip(), job_text,
            _verdict(policy),
        ])  # fmt: skip
    columns = ["POLICY", "SERVICE", "PHASE", "LAST TRIGGER", "LAST JOB", "VERDICT"]
    return Table("Retraining", columns, rows)


def _jobs(jobs: list[Obj], title: str) -> Table:
    rows = [
        [_name(j), model_of(j), fmt(_status(j).get("phase")), fmt(_status(j).get("message"))]
        for j in sorted(jobs, key=_name)
    ]
    return Table(title.capitalize(), ["TRAININGJOB", "MODEL", "PHASE", "MESSAGE"], rows)


# ---- lineage -------------------------------------------------------------------------------


def lineage_view(mv: Obj, job: Obj | None, policy: Obj | None, isvcs: Iterable[Obj]) -> View:
    """dataset -> TrainingJob -> ModelVersion -> InferenceServices, and what started it."""
    source = _spec(mv).get("source") or {}
    dataset = source.get("dataset") or (_status(job).get("dataset") if job else None) or {}
    name = _name(mv)
    rows = [
        ["dataset", fmt(dataset.get("uri")),
         f"sha256 {fmt(dataset.get('sha256'))}, {fmt(dataset.get('rows'))} rows"],
        ["trainingjob", fmt(source.get("trainingJob")), _job_detail(job, source)],
        ["modelversion", name,
         f"stage {fmt(_spec(mv).get('stage') or 'None')}, {fmt(_status(mv).get('primaryMetric'))}, "
         f"artifact {fmt((_spec(mv).get('artifact') or {}).get('uri'))}"],
    ]  # fmt: skip
    for isvc in sorted(isvcs, key=_name):
        how = _serves(isvc, name)
        if how:
            rows.append(["inferenceservice", _name(isvc), how])
    view = View([Table(f"Lineage of {name}", ["", "NAME", "DETAIL"], rows)])
    view.notes.append(_started_by(job, policy))
    return view


def _job_detail(job: Obj | None, source: Mapping[str, Any]) -> str:
    algorithm = fmt(source.get("algorithm"))
    if job is None:
        return f"{algorithm} (the TrainingJob no longer exists)"
    status = _status(job)
    return f"{algorithm}, {fmt(status.get('phase'))}, finished {fmt(status.get('completionTime'))}"


def _serves(isvc: Obj, mv_name: str) -> str:
    status = _status(isvc)
    canary = status.get("canary") or {}
    if status.get("currentModelVersion") == mv_name:
        return f"serving ({fmt(status.get('phase'))})"
    if canary.get("modelVersion") == mv_name:
        return f"canary at {fmt(canary.get('weight'))}%"
    if (status.get("lastRollback") or {}).get("version") == _version_of_name(mv_name):
        return "rolled back"
    return ""


def _version_of_name(name: str) -> Any:
    tail = name.rpartition("-v")[2]
    return int(tail) if tail.isdigit() else None


def _started_by(job: Obj | None, policy: Obj | None) -> str:
    if job is None:
        return "started by: unknown (the TrainingJob is gone)"
    labels = job["metadata"].get("labels") or {}
    annotations = job["metadata"].get("annotations") or {}
    owner = labels.get(RETRAIN_LABEL)
    if not owner:
        return "started by: a person or a pipeline (no RetrainPolicy label)"
    reason = annotations.get(RETRAIN_REASON, "unknown")
    text = f"started by: RetrainPolicy {owner}, trigger {reason}"
    trigger = (_status(policy).get("lastTrigger") or {}) if policy else {}
    if policy and _status(policy).get("lastTrainingJob") == _name(job) and trigger:
        text += f" at {fmt(trigger.get('time'))}: {fmt(trigger.get('detail'))}"
    return text


# ---- compare -------------------------------------------------------------------------------


def compare_view(a: Obj, b: Obj) -> View:
    """Metrics, algorithm, hyperparameters and data of two versions side by side."""
    sa, sb = _spec(a), _spec(b)
    src_a, src_b = sa.get("source") or {}, sb.get("source") or {}
    data_a, data_b = src_a.get("dataset") or {}, src_b.get("dataset") or {}
    columns = ["", _name(a), _name(b), "DELTA"]
    general = [
        _row("model", sa.get("model"), sb.get("model")),
        _row("stage", sa.get("stage") or "None", sb.get("stage") or "None"),
        _row("algorithm", src_a.get("algorithm"), src_b.get("algorithm")),
        _row("trainingJob", src_a.get("trainingJob"), src_b.get("trainingJob")),
        _row("format", (sa.get("artifact") or {}).get("format"),
             (sb.get("artifact") or {}).get("format")),
    ]  # fmt: skip
    data = [_row(k, data_a.get(k), data_b.get(k)) for k in ("uri", "sha256", "rows")]
    metrics = _rows(sa.get("metrics") or {}, sb.get("metrics") or {})
    params = _rows(src_a.get("hyperparameters") or {}, src_b.get("hyperparameters") or {})
    return View([
        Table("Version", columns, general), Table("Metrics", columns, metrics),
        Table("Hyperparameters", columns, params), Table("Data", columns, data),
    ])  # fmt: skip


def _rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[list[str]]:
    return [_row(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))]


def _row(label: str, x: Any, y: Any) -> list[str]:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y))
    if numbers:
        delta = f"{y - x:+.4g}"
    else:
        delta = "" if x == y else "differs"
    return [label, fmt(x), fmt(y), delta]
