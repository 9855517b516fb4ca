"""One pod, run locally by one thread: volumes, init containers in order, then the
containers, readiness probes, restarts, and the status a kubelet would report at each step.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from perennial_hack.local_runtime import node
from perennial_hack.local_runtime.plan import (
    ContainerPlan,
    HttpProbe,
    PodPlan,
    pod_plan,
    prestop_sleep,
)
from perennial_hack.local_runtime.status import (
    ContainerRun,
    PodRun,
    now_iso,
    termination_message,
)
from perennial_hack.local_runtime.volumes import (
    Layout,
    VolumeError,
    make_sub_paths,
    materialise,
    path_map,
    read_env_objects,
)

log = logging.getLogger("perennial.local-runtime")
TICK_S = 0.1
MOUNT_RETRY_S = 5.0
MAX_BACKOFF_S = 30.0
FINAL_PATCH_S = 60.0


class PodApi(Protocol):
    """The few API calls a pod worker makes (local_runtime.Api implements them)."""

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    def patch_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        """False when the pod is gone."""
        ...

    def delete_pod_now(self, namespace: str, name: str, uid: str | None = None) -> None: ...

    def register_logs(self, namespace: str, name: str, uid: str, files: dict[str, str]) -> None:
        """Tell kwok which file holds each container's log (so `kubectl logs` works)."""
        ...


@dataclass
class _Probe:
    spec: HttpProbe
    due: float
    successes: int = 0
    failures: int = 0


def probe_once(url: str, timeout_s: float) -> bool:
    """An httpGet probe: any 2xx/3xx answer is a success, as for the kubelet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return 200 <= int(resp.status) < 400
    except (OSError, urllib.error.URLError, ValueError):
        return False


class PodWorker(threading.Thread):
    def __init__(
        self,
        pod: dict[str, Any],
        *,
        api: PodApi,
        layout: Layout,
        bin_dir: Path,
        ips: tuple[str, str],
        on_exit: Callable[[str], None] = lambda uid: None,
    ) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.pod, self.api, self.layout, self.bin_dir, self.ips = pod, api, layout, bin_dir, ips
        self.ns, self.pod_name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self._on_exit = on_exit
        self._stop_event = threading.Event()
        self._grace_s = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
        self._deleting = False
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._plans: dict[str, ContainerPlan] = {}
        self._probes: dict[str, _Probe] = {}
        self._last_patch: dict[str, Any] | None = None
        spec = pod["spec"]
        self.run_state = PodRun(
            pod_ip=ips[0],
            host_ip=ips[1],
            restart_policy=str(spec.get("restartPolicy", "Always")),
            init=[
                ContainerRun(c["name"], c.get("image", ""))
                for c in spec.get("initContainers") or []
            ],
            main=[
                ContainerRun(c["name"], c.get("image", "")) for c in spec.get("containers") or []
            ],
        )

    # --- called from the watch thread ---------------------------------------------------

    def stop(self, *, deleting: bool, grace_s: float | None = None) -> None:
        """End the pod's processes (SIGTERM, grace, SIGKILL); when the pod is being deleted,
        confirm the deletion afterwards."""
        self._deleting = self._deleting or deleting
        if grace_s is not None:
            self._grace_s = grace_s
        self._stop_event.set()

    # --- the pod's life -----------------------------------------------------------------

    def run(self) -> None:
        try:
            self._live()
        except Exception:
            log.exception(
                "%s/%s: the local runtime failed running this pod", self.ns, self.pod_name
            )
        finally:
            grace = self._grace_s
            if self._stop_event.is_set() and self._procs:
                # As the kubelet: the preStop hook runs before SIGTERM, within the grace
                # period (the endpoints are gone already; the process keeps serving).
                delay = min(prestop_sleep(self.pod["spec"]), grace)
                time.sleep(delay)
                grace -= delay
            node.terminate(list(self._procs.values()), grace)
            for run in (*self.run_state.init, *self.run_state.main):
                if run.name in self._plans:
                    self._reap(self._plans[run.name], run)
            self._finish()

    def _live(self) -> None:
        self.run_state.start_time = now_iso()
        self._patch()
        plan = self._prepare()
        if plan is None:
            return
        for note in plan.notes:
            log.info("%s/%s: %s", self.ns, self.pod_name, note)
        self._register_logs(plan)
        self.run_state.sandbox = True
        self._patch()
        for index, container in enumerate(plan.init):
            if not self._run_init(container, self.run_state.init[index]):
                return
        self._run_main(plan)

    def _prepare(self) -> PodPlan | None:
        """Volumes and the plan; a missing ConfigMap is retried as the kubelet does."""
        pod_dir = self.layout.pod(self.uid)
        while not self._stop_event.is_set():
            try:
                folders = materialise(self.pod, self.layout, self.api.read)
                spec = self.pod["spec"]
                containers = (spec.get("initContainers") or []) + spec["containers"]
                make_sub_paths(spec, folders)
                paths = {c["name"]: path_map(spec, c, folders) for c in containers}
                objects = read_env_objects(self.pod, self.api.read)
                return pod_plan(
                    self.pod,
                    paths,
                    ips=self.ips,
                    bin_dir=self.bin_dir,
                    pod_dir=pod_dir,
                    objects=objects,
                )
            except (VolumeError, OSError, RuntimeError) as err:  # missing object, API error
                for run in (*self.run_state.init, *self.run_state.main):
                    run.wait("CreateContainerConfigError", str(err))
                self._patch()
                self._stop_event.wait(MOUNT_RETRY_S)
        return None

    def _register_logs(self, plan: PodPlan) -> None:
        files = {c.name: str(c.cri_log) for c in (*plan.init, *plan.main)}
        try:
            self.api.register_logs(self.ns, self.pod_name, self.uid, files)
        except (OSError, RuntimeError) as err:  # logs are a convenience: never fail the pod
            log.warning("%s/%s: container logs not registered: %s", self.ns, self.pod_name, err)

    def _run_init(self, plan: ContainerPlan, run: ContainerRun) -> bool:
        """Run one init container to completion (restarting it unless the policy is Never);
        True when it succeeded."""
        while not self._stop_event.is_set():
            self._start(plan, run)
            while not self._stop_event.is_set() and not self._reap(plan, run):
                self._stop_event.wait(TICK_S)
            if run.succeeded:
                return True
            if run.state == "terminated" and self.run_state.restart_policy == "Never":
                return False
            self._backoff(run)
        return False

    def _run_main(self, plan: PodPlan) -> None:
        runs = dict(zip([c.name for c in plan.main], self.run_state.main, strict=True))
        for container in plan.main:
            self._start(container, runs[container.name])
        restart_at: dict[str, float] = {}
        while not self._stop_event.is_set():
            for container in plan.main:
                self._tend(container, runs[container.name], restart_at)
            self._run_probes()
            self._patch()
            if self.run_state.phase in ("Succeeded", "Failed"):
                return
            self._stop_event.wait(TICK_S)

    def _tend(self, plan: ContainerPlan, run: ContainerRun, restart_at: dict[str, float]) -> None:
        if plan.name in restart_at:
            if time.monotonic() >= restart_at[plan.name]:
                del restart_at[plan.name]
                self._start(plan, run)
            return
        if run.state == "waiting" or not self._reap(plan, run):
            return
        policy = self.run_state.restart_policy
        if policy == "Always" or (policy == "OnFailure" and not run.succeeded):
            delay = min(MAX_BACKOFF_S, 2.0**run.restart_count)
            run.wait("CrashLoopBackOff", f"back-off {delay:.0f}s restarting failed container")
            restart_at[plan.name] = time.monotonic() + delay

    def _backoff(self, run: ContainerRun) -> None:
        delay = min(MAX_BACKOFF_S, 2.0**run.restart_count)
        run.wait("CrashLoopBackOff", f"back-off {delay:.0f}s restarting failed container")
        self._patch()
        self._stop_event.wait(delay)

    # --- one container ------------------------------------------------------------------

    def _start(self, plan: ContainerPlan, run: ContainerRun) -> None:
        plan.termination_log.parent.mkdir(parents=True, exist_ok=True)
        plan.termination_log.write_bytes(b"")  # a fresh, empty file per run, as in a pod
        run.run(now_iso())
        if plan.refused:
            log.warning("%s/%s: refusing %s: %s", self.ns, self.pod_name, plan.name, plan.refused)
            run.end(128, plan.refused, now_iso(), reason="StartError")
        else:
            self._procs[plan.name] = node.spawn(
                plan.argv, plan.env, plan.cwd, plan.log, plan.cri_log
            )
            self._plans[plan.name] = plan
            log.info(
                "%s/%s: started %s: %s", self.ns, self.pod_name, plan.name, " ".join(plan.argv)
            )
            if plan.probe is None:
                run.ready = True
            else:
                due = time.monotonic() + plan.probe.initial_delay_s
                self._probes[plan.name] = _Probe(plan.probe, due)
        self._patch()

    def _reap(self, plan: ContainerPlan, run: ContainerRun) -> bool:
        """True once the container has ended (its status then says how)."""
        if run.state == "terminated":
            return True
        proc = self._procs.get(plan.name)
        if proc is None or proc.poll() is None:
            return False
        code = node.exit_code(proc.returncode)
        node.drain(proc)  # FallbackToLogsOnError reads the log's tail
        message = termination_message(
            plan.termination_log, plan.log, exit_code=code, fallback_to_logs=plan.fallback_to_logs
        )
        run.end(code, message, now_iso())
        self._procs.pop(plan.name, None)
        self._probes.pop(plan.name, None)
        log.info("%s/%s: %s exited %d", self.ns, self.pod_name, plan.name, code)
        self._patch()
        return True

    def _run_probes(self) -> None:
        now = time.monotonic()
        runs = {r.name: r for r in self.run_state.main}
        for name, probe in self._probes.items():
            if now < probe.due:
                continue
            probe.due = now + probe.spec.period_s
            if probe_once(probe.spec.url, probe.spec.timeout_s):
                probe.successes, probe.failures = probe.successes + 1, 0
                if probe.successes >= probe.spec.success_threshold:
                    runs[name].ready = True
            else:
                probe.successes, probe.failures = 0, probe.failures + 1
                if probe.failures >= probe.spec.failure_threshold:
                    runs[name].ready = False

    # --- status and the end -------------------------------------------------------------

    def _patch(self) -> bool:
        """Send the status if it changed; False if the API refused it (the next call
        retries: a passing API error must not cost a training run)."""
        if self._deleting:
            return True  # the pod is going away; its status no longer matters
        status = self.run_state.status(now_iso())
        if status == self._last_patch:
            return True
        try:
            found = self.api.patch_pod_status(self.ns, self.pod_name, status)
        except (OSError, RuntimeError) as err:
            log.warning("%s/%s: status not written, will retry: %s", self.ns, self.pod_name, err)
            return False
        if not found:
            self._stop_event.set()  # deleted under us
            self._deleting = True
        self._last_patch = status
        return True

    def _finish(self) -> None:
        try:
            if self._deleting:
                self.api.delete_pod_now(self.ns, self.pod_name, self.uid)
                shutil.rmtree(self.layout.pod(self.uid), ignore_errors=True)
                log.info("%s/%s: stopped and deleted", self.ns, self.pod_name)
            else:
                # The last status (Succeeded, Failed) is the one that matters most.
                deadline = time.monotonic() + FINAL_PATCH_S
                while not self._patch() and time.monotonic() < deadline:
                    time.sleep(1.0)
        finally:
            self._on_exit(self.uid)
