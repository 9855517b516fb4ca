"""A kubelet for our own image: runs pods of the Perennial runtime as local processes.

    python -m perennial_hack.local_runtime --kubeconfig K --state DIR [--namespace NS]

It takes pods annotated perennial.dev/runtime=local and kwok.x-k8s.io/status=custom (so kwok
leaves their status to us) once the scheduler has bound them to a node, and for each one:
gives it a loopback address of its own (127.B.x.y, B fixed by the state folder), lays its
volumes out under DIR, runs its init containers in order and then its containers from this
Python environment's bin folder, probes readiness, and patches the pod's status as a kubelet
would. When a pod is deleted its processes get SIGTERM, the grace period, then SIGKILL, and
the deletion is confirmed. SIGTERM or SIGINT stops every process it started. See
docs/local-runtime.md.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from perennial_hack.local_runtime.api import Api, ApiError
from perennial_hack.local_runtime.node import LoopbackPool, loopback_block
from perennial_hack.local_runtime.plan import RUNTIME_COMMANDS
from perennial_hack.local_runtime.pod import PodWorker
from perennial_hack.local_runtime.status import lost_status, now_iso
from perennial_hack.local_runtime.volumes import Layout

log = logging.getLogger("perennial.local-runtime")
ANNOTATIONS = {"perennial.dev/runtime": "local", "kwok.x-k8s.io/status": "custom"}
BOUND = "spec.nodeName!="  # only pods the scheduler has placed
# Which runtime runs a pod: two runtimes on one cluster must never both run it.
OWNER_ANNOTATION = "perennial.dev/local-runtime"
SHUTDOWN_GRACE_S = 10.0
WATCH_TIMEOUT_S = 120


def is_ours(pod: dict[str, Any]) -> bool:
    annotations = pod["metadata"].get("annotations") or {}
    return all(annotations.get(k) == v for k, v in ANNOTATIONS.items())


def was_started(pod: dict[str, Any]) -> bool:
    """Did an earlier runtime already run something of this pod?"""
    status = pod.get("status") or {}
    containers = (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    )
    return any("waiting" not in (c.get("state") or {"waiting": {}}) for c in containers)


class LocalRuntime:
    def __init__(
        self, api: Api, layout: Layout, bin_dir: Path, namespace: str | None = None
    ) -> None:
        self.api, self.layout, self.bin_dir, self.namespace = api, layout, bin_dir, namespace
        self.owner = f"{socket.gethostname()}:{layout.state}"
        self.pool = LoopbackPool(loopback_block(layout.state))
        self.workers: dict[str, PodWorker] = {}
        self.done: set[str] = set()  # pods that ended here: never run twice
        self._lock = threading.Lock()
        self._host_ips: dict[str, str] = {}
        self._warned: set[str] = set()
        self._deleted_uids: set[str] = set()

    # --- events -------------------------------------------------------------------------

    def handle(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if not is_ours(pod):
            self._warn_half_annotated(pod)
            return
        uid = meta["uid"]
        with self._lock:
            worker = self.workers.get(uid)
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            self._deleted(kind, pod, worker)
            return
        status = pod.get("status") or {}
        if worker is not None or uid in self.done:
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            if self._mine_or_nobodys(meta) and status.get("podIP"):
                self.pool.keep(uid, status["podIP"])  # no other pod may show it meanwhile
            self.done.add(uid)
            return
        if not self.api.claim_pod(pod, OWNER_ANNOTATION, self.owner):
            self._warn_once(
                uid,
                f"{meta['namespace']}/{meta['name']} is run by another "
                f"local runtime ({(meta.get('annotations') or {}).get(OWNER_ANNOTATION)})",
            )
            return
        if was_started(pod) and pod["spec"].get("restartPolicy") == "Never":
            self._fail_lost(pod)
            return
        self._start(pod)

    def _start(self, pod: dict[str, Any]) -> None:
        meta, uid = pod["metadata"], pod["metadata"]["uid"]
        pod_ip = self.pool.take(uid, prefer=(pod.get("status") or {}).get("podIP"))
        node = pod["spec"]["nodeName"]
        if node not in self._host_ips:
            self._host_ips[node] = self.api.node_ip(node)
        worker = PodWorker(
            pod, api=self.api, layout=self.layout, bin_dir=self.bin_dir,
            ips=(pod_ip, self._host_ips[node]), on_exit=self._ended,
        )  # fmt: skip
        with self._lock:
            self.workers[uid] = worker
        log.info("%s/%s: running locally at %s", meta["namespace"], meta["name"], pod_ip)
        worker.start()

    def _deleted(self, kind: str, pod: dict[str, Any], worker: PodWorker | None) -> None:
        meta = pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if worker is not None:
            worker.stop(deleting=True, grace_s=None if grace is None else float(grace))
        elif meta.get("deletionTimestamp") and self._mine_or_nobodys(meta):
            # Nothing of it runs here: confirm at once, as a kubelet with no containers would.
            self.api.delete_pod_now(meta["namespace"], meta["name"], meta["uid"])
        if kind == "DELETED":
            self._forget(meta["uid"])

    def _mine_or_nobodys(self, meta: dict[str, Any]) -> bool:
        owner = (meta.get("annotations") or {}).get(OWNER_ANNOTATION)
        return owner in (None, self.owner)

    def _fail_lost(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        message = "the local runtime restarted and this pod's processes were lost"
        log.warning("%s/%s: %s; marking it Failed", meta["namespace"], meta["name"], message)
        status = lost_status(pod.get("status") or {}, now_iso(), message)
        self.api.patch_pod_status(meta["namespace"], meta["name"], status)
        self.done.add(meta["uid"])

    def _ended(self, uid: str) -> None:
        # The address stays taken until the pod object is gone: a finished pod still
        # shows it in its status, and two pods showing one address would mislead.
        with self._lock:
            self.workers.pop(uid, None)
            self.done.add(uid)
            deleted = uid in self._deleted_uids
        if deleted:
            self._forget(uid)

    def _forget(self, uid: str) -> None:
        """The pod object is gone: free its address once nothing of it runs any more."""
        with self._lock:
            if uid in self.workers:
                self._deleted_uids.add(uid)
                return
            self._deleted_uids.discard(uid)
            self.done.discard(uid)
        self.pool.release(uid)

    def _warn_half_annotated(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if (meta.get("annotations") or {}).get("perennial.dev/runtime") == "local":
            self._warn_once(meta["uid"], f"{meta['namespace']}/{meta['name']} asks for the "
                            "local runtime but lacks kwok.x-k8s.io/status=custom: kwok would "
                            "fight us over its status, so it is left alone")  # fmt: skip

    def _warn_once(self, uid: str, message: str) -> None:
        if uid not in self._warned:
            self._warned.add(uid)
            log.warning("%s", message)

    def sync(self, pods: list[dict[str, Any]]) -> None:
        """After a (re)list: start what is new, stop what disappeared while not watching."""
        present = {p["metadata"]["uid"] for p in pods}
        for pod in pods:
            self.handle("ADDED", pod)
        with self._lock:
            gone = [w for uid, w in self.workers.items() if uid not in present]
        for worker in gone:
            worker.stop(deleting=True)
        for uid in self.done - present:
            self._forget(uid)

    # --- the loop -----------------------------------------------------------------------

    def watch_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                pods, version = self.api.list_pods(self.namespace, BOUND)
                self.sync(pods)
                while not stop.is_set():
                    events = self.api.watch_pods(self.namespace, BOUND, version, WATCH_TIMEOUT_S)
                    for kind, obj in events:
                        version = obj["metadata"].get("resourceVersion", version)
                        if kind != "BOOKMARK":
                            self.handle(kind, obj)
            except ApiError as err:
                if err.code != 410:  # 410: our version is too old; list again
                    log.warning("watch: %s; listing again", err)
                    stop.wait(1.0)
            except (OSError, ValueError) as err:
                log.warning("watch: %s; retrying", err)
                stop.wait(1.0)
            except Exception:
                log.exception("watch: unexpected error; retrying")
                stop.wait(1.0)

    def shutdown(self) -> None:
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.stop(deleting=False, grace_s=SHUTDOWN_GRACE_S)
        for worker in workers:
            worker.join()


def _lock_state(state: Path) -> IO[str]:
    """One runtime per state folder: two would run every pod twice."""
    state.mkdir(parents=True, exist_ok=True)
    handle = (state / "local-runtime.pid").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        raise SystemExit(
            f"another local runtime (pid {handle.read().strip()}) uses {state}"
        ) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m perennial_hack.local_runtime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the cluster")
    p.add_argument("--state", required=True, type=Path, help="folder for volumes and logs")
    p.add_argument("--namespace", help="only this namespace (default: all)")
    p.add_argument("--bin-dir", type=Path, default=Path(sys.executable).parent,
                   help="where perennial-train and -serve are (default: this venv)")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    missing = [c for c in RUNTIME_COMMANDS if not (args.bin_dir / c).exists()]
    if missing:
        print(f"error: {', '.join(missing)} not in {args.bin_dir}: run `make install`",
              file=sys.stderr)  # fmt: skip
        return 2
    state = args.state.resolve()
    lock = _lock_state(state)
    runtime = LocalRuntime(Api(args.kubeconfig), Layout(state), args.bin_dir, args.namespace)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    watcher = threading.Thread(target=runtime.watch_forever, args=(stop,), daemon=True)
    watcher.start()
    where = f"namespace {args.namespace}" if args.namespace else "all namespaces"
    log.info("watching pods in %s annotated %s; state in %s", where, ANNOTATIONS, state)
    while not stop.wait(1.0):
        pass
    log.info("stopping: ending every pod's processes")
    runtime.shutdown()
    lock.close()
    return 0
