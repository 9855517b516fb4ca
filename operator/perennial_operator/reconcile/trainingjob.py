"""TrainingJob use case: gather -> decide -> act. Called by every kopf trigger (create,
resume, Job and Pod events, the safety timer); safe to run any number of times."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from kubernetes.client.exceptions import ApiException

from perennial_operator import metrics
from perennial_operator.api import conditions as c
from perennial_operator.api.computepool import namespace_refusal
from perennial_operator.api.group import API_VERSION, LABEL_TRAININGJOB_UID
from perennial_operator.config import OperatorConfig
from perennial_operator.decide.conditions import get_condition
from perennial_operator.decide.modelversion.registry import next_version
from perennial_operator.decide.ownership import name_conflict, owned_by
from perennial_operator.decide.trainingjob import observed
from perennial_operator.decide.trainingjob.status import (
    Context,
    Decision,
    finished,
    trainingjob_status,
)
from perennial_operator.desired import trainingjob as desired_tj
from perennial_operator.desired import trainingjob_search as search
from perennial_operator.desired.modelversion import modelversion_for
from perennial_operator.desired.placement import NO_POOL, Placement, pool_placement
from perennial_operator.k8s.errors import AlreadyExists, Conflict, NotFound, refused
from perennial_operator.k8s.kube import KubeApi, now_iso
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile import trainingjob_search as search_steps
from perennial_operator.reconcile.artifact_claim import ensure_artifact_claim
from perennial_operator.reconcile.child_view import ChildView
from perennial_operator.reconcile.last_seen import LastSeen
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.versions import high_water, raise_high_water

log = logging.getLogger(__name__)


def _placement(kube: KubeApi, tj: dict[str, Any]) -> tuple[Placement, tuple[str, str] | None]:
    """The pool's placement, or what keeps the job off it: (condition reason, message)."""
    pool_name = tj["spec"].get("computePool")
    if not pool_name:
        return NO_POOL, None
    pool = kube.get(API_VERSION, "ComputePool", None, pool_name)
    if pool is None:
        return NO_POOL, (
            c.COMPUTE_POOL_NOT_FOUND,
            f"ComputePool {pool_name} does not exist; waiting for it",
        )
    refused = namespace_refusal(pool, tj["metadata"]["namespace"])
    if refused:
        return NO_POOL, (c.COMPUTE_POOL_NOT_ALLOWED, refused)
    return pool_placement(pool), None


def _baseline_uri(kube: KubeApi, tj: dict[str, Any]) -> tuple[str | None, tuple[str, str] | None]:
    name = (tj["spec"].get("baseline") or {}).get("modelVersion")
    if not name:
        return None, None
    mv = kube.get(API_VERSION, "ModelVersion", tj["metadata"]["namespace"], name)
    if mv is None:
        why = f"baseline ModelVersion {name} does not exist; waiting for it"
        return None, (c.BASELINE_NOT_FOUND, why)
    return str(mv["spec"]["artifact"]["uri"]), None


def _registered(kube: KubeApi, tj: dict[str, Any]) -> str | None:
    found = kube.list(
        API_VERSION,
        "ModelVersion",
        tj["metadata"]["namespace"],
        f"{LABEL_TRAININGJOB_UID}={tj['metadata']['uid']}",
    )
    return found[0]["metadata"]["name"] if found else None


def register_model(
    kube: KubeApi, tj: dict[str, Any], result: dict[str, Any], config: OperatorConfig
) -> str:
    """Create <model>-v<N> with the next N never used (past the high-water mark, so a
    deleted version's number is not reused). Create (not apply) is atomic on the API
    server: when two jobs race for the same N, one gets AlreadyExists and takes N+1."""
    namespace, model = tj["metadata"]["namespace"], tj["spec"]["model"]
    image = str(tj["spec"].get("image") or config.runtime_image)
    uri = desired_tj.artifact_uri(tj, config)
    for _ in range(50):
        mark = high_water(kube, namespace, model)
        existing = [
            int(mv["spec"]["version"])
            for mv in kube.list(API_VERSION, "ModelVersion", namespace)
            if mv["spec"].get("model") == model
        ]
        manifest = modelversion_for(tj, result, uri, next_version(existing, mark), image)
        try:
            kube.create(manifest)
        except AlreadyExists:
            continue
        raise_high_water(kube, namespace, model, int(manifest["spec"]["version"]))
        metrics.MODELS_REGISTERED.labels(model=model).inc()
        return str(manifest["metadata"]["name"])
    raise RuntimeError(f"could not find a free version for model {model} after 50 tries")


def _observe(
    kube: KubeApi, tj: dict[str, Any], view: ChildView | None
) -> tuple[observed.JobObs | None, list[observed.PodObs], str | None]:
    """The Job and its pods, or why the Job's name is someone else's."""
    namespace, uid = tj["metadata"]["namespace"], tj["metadata"]["uid"]
    name = desired_tj.job_name(tj)
    if view is not None and (seen := _from_view(tj, view)) is not None:
        return seen[0], seen[1], None
    job = kube.get("batch/v1", "Job", namespace, name)
    if job is None:
        return None, [], None
    conflict = name_conflict(tj, [("Job", name, job)])
    if conflict:
        return None, [], conflict
    if view is not None:
        view.saw_job(job)
    pods = kube.list("v1", "Pod", namespace, f"{LABEL_TRAININGJOB_UID}={uid}")
    # The label alone is not proof: anyone may label a pod. Only the Job's own pods count
    # (their termination message registers a model).
    ours = [p for p in pods if owned_by(p, job["metadata"]["uid"])]
    return observed.job_obs(job), [observed.pod_obs(p) for p in ours], None


def _from_view(
    tj: dict[str, Any], view: ChildView
) -> tuple[observed.JobObs, list[observed.PodObs]] | None:
    """The Job and its pods as the watches showed them, while the Job is ours and running;
    None otherwise (a finished Job's result is read from the API's pods)."""
    uid = tj["metadata"]["uid"]
    seen = view.job(tj["metadata"]["namespace"], desired_tj.job_name(tj))
    if seen is None or seen.owner_uid != uid:
        return None
    if seen.obs.complete or seen.obs.failure is not None:
        return None
    return seen.obs, view.pods(uid, seen.uid)


def _decided_on_hint(
    tj: dict[str, Any], config: OperatorConfig, view: ChildView
) -> Decision | None:
    """The decision on the TrainingJob as last seen, if it needs no request but at most its
    status written (synced before, a single Job running as the watches showed it, no Event
    and no model to register); None when the sync must read the TrainingJob and decide for
    real."""
    previous = tj.get("status") or {}
    if not previous.get("phase"):
        return None
    if finished(previous):
        decision = trainingjob_status(tj, None, [], Context(now_iso(), ""))
    elif search.parallelism(tj) > 1 or (seen := _from_view(tj, view)) is None:
        return None
    else:  # a running Job has registered nothing: no ModelVersion lookup
        ctx = Context(now=now_iso(), artifact_uri=desired_tj.artifact_uri(tj, config))
        decision = trainingjob_status(tj, seen[0], seen[1], ctx)
    moves_on = finished(decision.status) and not finished(previous)  # counted once: read
    quiet = not decision.events and decision.result is None and not moves_on
    return decision if quiet else None


@dataclass(frozen=True)
class _Started:
    blocked: tuple[str, str] | None = None  # a missing or refused pool or baseline
    conflict: str | None = None  # a child's name is someone else's
    job: dict[str, Any] | None = None  # as the API server stored it
    new: bool = False  # made by this call (no pods yet), not found there


def _start(
    kube: KubeApi, tj: dict[str, Any], config: OperatorConfig, view: ChildView | None
) -> _Started:
    """Make the ConfigMap and the Job, or say what blocks the start (a missing pool or
    baseline; a name collision).

    Called only while the Job is not known to exist: an existing Job of ours is taken as it
    is (its pod template is immutable); the deterministic names make a start after a
    restart find, not duplicate, what the last one made."""
    placement, pool_problem = _placement(kube, tj)
    baseline, baseline_problem = _baseline_uri(kube, tj)
    if pool_problem or baseline_problem:
        return _Started(blocked=pool_problem or baseline_problem)
    ensure_artifact_claim(kube, tj, config, view)
    configmap, job = desired_tj.trainingjob_children(tj, config, placement, baseline)
    made = _create_own(kube, tj, configmap, apply_existing=True)
    if made.conflict:
        return _Started(conflict=made.conflict)
    made = _create_own(kube, tj, job, apply_existing=False)
    if made.conflict:
        return _Started(conflict=made.conflict)
    if made.new:
        _warn_unused_gpu(kube, tj)
    return _Started(job=made.obj, new=made.new)


@dataclass(frozen=True)
class _Made:
    obj: dict[str, Any] | None = None
    new: bool = False
    conflict: str | None = None


def _create_own(
    kube: KubeApi, tj: dict[str, Any], child: dict[str, Any], *, apply_existing: bool
) -> _Made:
    """Create the child. Create first: one request for a new TrainingJob, where a read and
    an apply were two (issue 18). If the name is taken by our own (a restart between two
    writes), keep it (applied over when ``apply_existing``); by anything else, return the
    name conflict and leave it untouched."""
    try:
        return _Made(obj=kube.create(child), new=True)
    except AlreadyExists:
        pass
    meta = child["metadata"]
    existing = kube.get(child["apiVersion"], child["kind"], meta["namespace"], meta["name"])
    conflict = name_conflict(tj, [(child["kind"], meta["name"], existing)])
    if conflict is not None:
        return _Made(conflict=conflict)
    if existing is None:  # deleted between the two requests: the next sync makes it
        raise AlreadyExists(f"{child['kind']} {meta['name']} was being deleted")
    return _Made(obj=kube.apply(child) if apply_existing else existing)


def _warn_unused_gpu(kube: KubeApi, tj: dict[str, Any]) -> None:
    """resources.gpu asked for an algorithm that cannot use one: the pod asks for none (it
    would hold the GPU idle); say so once, when the Job is made, rather than silently."""
    spec = tj["spec"]
    gpus = int((spec.get("resources") or {}).get("gpu", 0))
    if gpus > 0 and not desired_tj.uses_gpu(spec):
        algorithm = spec.get("algorithm", "auto")
        kube.event(tj, "Warning", c.GPU_NOT_USED, (
            f"algorithm {algorithm} does not use a GPU: the training pod asks for none "
            f"(spec.resources.gpu: {gpus} not applied); algorithm xgboost, or auto for "
            "classification or regression, trains on the GPU"))  # fmt: skip


def sync_trainingjob(
    kube: KubeApi,
    namespace: str,
    name: str,
    config: OperatorConfig,
    locks: KeyedLocks,
    phases: TrainingJobPhases,
    view: ChildView | None = None,
    created: dict[str, Any] | None = None,
    last_seen: LastSeen | None = None,
    hinted: bool = False,
) -> Decision | None:
    """``view``: the children the watches showed (handlers); None reads them all from the
    API (tests, tools). ``created``: the TrainingJob as its ADDED event showed it, used
    instead of a read: until its first sync writes, nothing else writes a TrainingJob (its
    children are made by that sync; the retries and the minute loop read it again).
    ``last_seen``: the TrainingJobs as last seen, kept up to date with our status writes;
    with ``hinted`` (a child's event, the minute's sweep), a sync that would change nothing
    on the last-seen TrainingJob, or only its status, ends there without reading it; that
    status is written at the last-seen resourceVersion (reconcile/last_seen.py)."""
    started = time.monotonic()
    # From before any read: a job deleted meanwhile is not published again (metrics.py).
    with phases.syncing():
        # Job and Pod events of one TrainingJob arrive on different threads: one at a time, and
        # the events a later sync has already covered are dropped (a burst queues many).
        with locks.once(f"TrainingJob/{namespace}/{name}") as run:
            if not run:
                return None
            tj = last_seen.get(namespace, name) if hinted and last_seen is not None else None
            decision = _decided_on_hint(tj, config, view) if tj and view is not None else None
            if tj is not None and decision is not None and decision.status != tj.get("status"):
                try:  # at the version last seen: a write on a stale hint conflicts, never lands
                    _write_status(kube, tj, decision.status, last_seen, at_version=True)
                except (Conflict, NotFound):  # changed since (another writer, a lagging watch)
                    decision = None  # or gone: read
            if tj is None or decision is None:
                tj = created or kube.get(API_VERSION, "TrainingJob", namespace, name)  # locked
                if tj is None:
                    if last_seen is not None:
                        last_seen.forget(namespace, name)
                    return None
                if tj["metadata"].get("deletionTimestamp"):
                    return None
                decision = _sync_locked(kube, tj, config, view, last_seen)
        metrics.RECONCILE_SECONDS.labels(kind="TrainingJob").observe(time.monotonic() - started)
        metrics.RECONCILES.labels(kind="TrainingJob", outcome=decision.phase).inc()
        phases.publish(tj["metadata"]["uid"], decision.phase)
        return decision


def _sync_locked(
    kube: KubeApi,
    tj: dict[str, Any],
    config: OperatorConfig,
    view: ChildView | None,
    last_seen: LastSeen | None,
) -> Decision:
    previous = tj.get("status") or {}
    if finished(previous):  # nothing to read for a finished job (its Job may be gone)
        decision = trainingjob_status(tj, None, [], Context(now_iso(), ""))
        if decision.status != previous:  # Ready/Stalled added to a job finished before them
            _write_status(kube, tj, decision.status, last_seen)
        return decision
    fanned = search.parallelism(tj) > 1
    if fanned:  # AutoML over many pods: the step Job that speaks for the search now
        advanced = search_steps.advance(
            kube, tj, config, lambda: (_placement(kube, tj), _baseline_uri(kube, tj))
        )
        job, pods, blocked, conflict = (
            advanced.job,
            advanced.pods,
            advanced.blocked,
            advanced.conflict,
        )
    else:
        job, pods, blocked, conflict = _observe_or_start(kube, tj, config, view)
    # Only a completed Job can have registered a model: skip the lookup on every pod event.
    registered = _registered(kube, tj) if job is not None and job.complete else None
    ctx = Context(
        now=now_iso(),
        artifact_uri=desired_tj.artifact_uri(tj, config),
        registered=registered,
        pool_problem=blocked[1] if blocked else None,
        pool_reason=blocked[0] if blocked else c.COMPUTE_POOL_NOT_FOUND,
        name_conflict=conflict,
    )
    decision = _status(tj, job, pods, ctx, advanced if fanned else None)
    if decision.result is not None and ctx.registered is None:
        try:
            name = register_model(kube, tj, decision.result, config)
        except ApiException as exc:
            why = refused(exc)
            if why is None:
                raise  # worth retrying: the next sync registers
            # Refused for good (an invalid or forbidden ModelVersion): Failed, with the
            # API server's reason, rather than "registering" forever.
            ctx = replace(ctx, registration_refused=f"registering the model was refused: {why}")
        else:
            kube.event(tj, "Normal", "Registered", f"registered ModelVersion {name}")
            log.info("TrainingJob %s/%s: registered ModelVersion %s", *_key(tj), name)
            ctx = replace(ctx, registered=name)
        decision = _status(tj, job, pods, ctx, advanced if fanned else None)
    # Events before the status that moves past them: a crash in between repeats an Event on
    # the next sync rather than losing it from the audit trail.
    for event in decision.events:
        kube.event(tj, event.type, event.reason, event.message)
    if decision.status != previous:
        _write_status(kube, tj, decision.status, last_seen)
        if finished(decision.status):  # and it was not before: the transition, counted once
            _count_outcome(tj["metadata"]["namespace"], decision.status)
        if decision.phase != previous.get("phase"):  # a line per step a user would follow
            log.info(
                "TrainingJob %s/%s: %s -> %s: %s",
                *_key(tj),
                previous.get("phase") or "new",
                decision.phase,
                decision.status.get("message", ""),
            )
    return decision


def _observe_or_start(
    kube: KubeApi, tj: dict[str, Any], config: OperatorConfig, view: ChildView | None
) -> tuple[observed.JobObs | None, list[observed.PodObs], tuple[str, str] | None, str | None]:
    """The single training Job and its pods, started if absent; (job, pods, blocked,
    conflict)."""
    if (tj.get("status") or {}).get("phase"):  # synced before: its Job may exist
        job, pods, conflict = _observe(kube, tj, view)
        if job is not None or conflict is not None:
            return job, pods, None, conflict
    # Never synced (a new TrainingJob): no read of a Job that cannot exist yet; the create
    # finds one that does (a sync cut short before its status write).
    started = _start(kube, tj, config, view)
    if started.job is None:
        return None, [], started.blocked, started.conflict
    if view is not None:  # so the watch's ADDED event, the same Job, is no news
        view.saw_job(started.job)
    if started.new:  # no pods yet (the Job controller makes them after it sees the Job)
        log.info("TrainingJob %s/%s: created Job %s", *_key(tj), desired_tj.job_name(tj))
        return observed.job_obs(started.job), [], None, None
    job, pods, conflict = _observe(kube, tj, None)  # found: its pods from the API
    return job, pods, None, conflict


def _status(
    tj: dict[str, Any],
    job: observed.JobObs | None,
    pods: list[observed.PodObs],
    ctx: Context,
    advanced: search_steps.Advanced | None,
) -> Decision:
    decision = trainingjob_status(tj, job, pods, ctx)
    if advanced is None or finished(tj.get("status") or {}):
        return decision
    return search_steps.with_search(
        decision, advanced.next, search.parallelism(tj), started=job is not None
    )


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return str(obj["metadata"]["namespace"]), str(obj["metadata"]["name"])


def _count_outcome(namespace: str, status: dict[str, Any]) -> None:
    phase = str(status.get("phase"))
    kind = c.FAILED if phase == "Failed" else c.COMPLETE
    reason = (get_condition(status.get("conditions") or [], kind) or {}).get("reason")
    metrics.TRAININGJOB_OUTCOMES.labels(
        namespace=namespace, outcome=phase, reason=str(reason or "")
    ).inc()


def _write_status(
    kube: KubeApi,
    tj: dict[str, Any],
    status: dict[str, Any],
    last_seen: LastSeen | None,
    at_version: bool = False,
) -> None:
    meta = tj["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    version = str(meta["resourceVersion"]) if at_version else None
    stored = kube.patch_status(
        API_VERSION, "TrainingJob", namespace, name, status, resource_version=version
    )
    if last_seen is not None:  # fresher than the watch, which shows this write a moment later
        last_seen.refresh(stored)
