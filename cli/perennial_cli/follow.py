"""`logs` and `watch`: follow a TrainingJob through the API (its pods' logs, its status)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from perennial_cli import trainingjob as tj
from perennial_cli.errors import KubeError
from perennial_cli.kube import Kube

POLL_S = 1.0
QUIET_S = 2.0  # after the container ended: lines still in flight arrive within this


def _pod(kube: Kube, name: str, wait: bool, deadline: float) -> dict[str, object]:
    """The TrainingJob's newest pod; with wait, until there is one."""
    while True:
        job = kube.need("TrainingJob", name)
        pod = tj.newest_pod(kube.pods(tj.pod_selector(job)))
        if pod is not None:
            return dict(pod)
        phase = (job.get("status") or {}).get("phase")
        if not wait or phase in tj.TERMINAL or time.monotonic() > deadline:
            raise KubeError(f"TrainingJob {name} has no pod (phase {phase or 'Pending'})")
        time.sleep(POLL_S)


def print_logs(
    kube: Kube, name: str, *, follow: bool, container: str | None,
    echo: Callable[[str], None] = click.echo, wait_s: float = 600.0,
) -> None:  # fmt: skip
    """Print validate's lines, then train's; with follow, each until it ends."""
    deadline = time.monotonic() + wait_s
    pod = _pod(kube, name, follow, deadline)
    pod_name = str(pod["metadata"]["name"])  # type: ignore[index]
    if container:
        names = [container]
    elif follow:
        names = [c for c in (tj.VALIDATE, tj.TRAIN) if _has(pod, c)] or tj.containers_to_show(pod)
    else:
        names = tj.containers_to_show(pod)
    for index, cname in enumerate(names):
        if follow and not _wait_started(kube, pod_name, cname, deadline):
            echo(f"# {cname} did not start (an earlier container failed?)")
            return
        if len(names) > 1:
            echo(f"# {pod_name} {cname}")
        if follow and not _ended(kube, pod_name, cname):
            _follow(kube, pod_name, cname, echo)
        else:
            for line in kube.log_lines(pod_name, cname, follow=False):
                echo(line)
        if follow and index + 1 < len(names) and _failed(kube, pod_name, cname):
            return


def _has(pod: dict[str, object], container: str) -> bool:
    spec = pod.get("spec") or {}
    assert isinstance(spec, dict)
    everything = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    return any(c.get("name") == container for c in everything)


def _wait_started(kube: Kube, pod_name: str, container: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        pod = kube.pod(pod_name)
        if pod is None:
            return False
        if tj.started(pod, container):
            return True
        if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):  # type: ignore[union-attr]
            return False
        time.sleep(POLL_S)
    return False


def _follow(kube: Kube, pod_name: str, container: str, echo: Callable[[str], None]) -> None:
    """Stream until the container has ended and its last lines are out. A kubelet closes the
    stream itself then; some kubelet stand-ins (kwok) never do, so the pod is watched too."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        try:
            for line in kube.log_lines(pod_name, container, follow=True):
                lines.put(line)
        finally:
            lines.put(None)

    threading.Thread(target=read, name=f"log-{container}", daemon=True).start()
    ended_at: float | None = None
    while True:
        try:
            line = lines.get(timeout=POLL_S)
        except queue.Empty:
            if ended_at is None and _ended(kube, pod_name, container):
                ended_at = time.monotonic()
            if ended_at is not None and time.monotonic() - ended_at > QUIET_S:
                return
            continue
        if line is None:
            return
        echo(line)


def _ended(kube: Kube, pod_name: str, container: str) -> bool:
    pod = kube.pod(pod_name)
    return pod is None or tj.finished(pod, container)


def _failed(kube: Kube, pod_name: str, container: str) -> bool:
    pod = kube.pod(pod_name)
    return pod is None or tj.failed(pod, container)


def watch_job(kube: Kube, name: str, console: Console, *, timeout_s: int = 0) -> tj.Progress:
    """A progress bar over the phases until the job is done; the last progress seen."""
    deadline = time.monotonic() + timeout_s if timeout_s else None
    state = tj.progress(kube.need("TrainingJob", name))
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[phase]}"),
               TimeElapsedColumn(), TextColumn("{task.fields[message]}"))  # fmt: skip
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(name, total=state.total, phase=state.phase, message=state.message)
        while not state.done:
            if deadline is not None and time.monotonic() > deadline:
                console.print(f"timed out after {timeout_s}s in phase {state.phase}")
                return state
            for obj in kube.watch("TrainingJob", name, timeout_s=_slice(deadline)):
                state = tj.progress(obj)
                bar.update(task, completed=state.step, phase=state.phase, message=state.message)
                if state.done:
                    break
            else:
                if kube.get("TrainingJob", name) is None:
                    raise KubeError(f"TrainingJob {name} was deleted")
    verdict = "[green]Succeeded[/green]" if state.succeeded else "[red]Failed[/red]"
    console.print(f"{name}: {verdict} {state.message}")
    return state


def _slice(deadline: float | None) -> int:
    if deadline is None:
        return 60
    return max(1, min(60, int(deadline - time.monotonic())))
