"""Pod status as the local runtime reports it: phases, conditions, container states."""

from __future__ import annotations

from pathlib import Path

import pytest

from perennial_hack.local_runtime.node import LoopbackPool, exit_code, loopback_block
from perennial_hack.local_runtime.runtime import is_ours, was_started
from perennial_hack.local_runtime.status import (
    ContainerRun,
    PodRun,
    lost_status,
    merge_conditions,
    pod_phase,
    termination_message,
)

pytestmark = pytest.mark.unit
T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z", "2026-01-01T00:00:09Z"


def c(state: str = "waiting", code: int | None = None, restarts: int = 0) -> ContainerRun:
    run = ContainerRun("x", "img", restart_count=restarts)
    if state == "running":
        run.run(T0)
    elif state == "terminated":
        run.run(T0)
        run.end(code or 0, "", T1)
    return run


@pytest.mark.parametrize(
    "init, main, policy, phase",
    [
        ([], [c()], "Never", "Pending"),
        ([c("running")], [c()], "Never", "Pending"),
        ([c("terminated", 3)], [c()], "Never", "Failed"),
        ([c("terminated", 3)], [c()], "OnFailure", "Pending"),
        ([c("terminated", 0)], [c("running")], "Never", "Running"),
        ([c("terminated", 0)], [c("terminated", 0)], "Never", "Succeeded"),
        ([], [c("terminated", 1)], "Never", "Failed"),
        ([], [c("terminated", 1)], "OnFailure", "Running"),
        ([], [c("terminated", 0)], "OnFailure", "Succeeded"),
        ([], [c("terminated", 0)], "Always", "Running"),
        ([], [c("running"), c("terminated", 0)], "Never", "Running"),
        ([], [c("waiting", restarts=2)], "Always", "Running"),
    ],
    ids=["nothing-yet", "init-running", "init-failed-never", "init-failed-retried",
         "training", "succeeded", "failed", "on-failure-restarts", "on-failure-done",
         "always-never-ends", "one-of-two-left", "crash-loop"],
)  # fmt: skip
def test_pod_phase_follows_the_kubelet(
    init: list[ContainerRun], main: list[ContainerRun], policy: str, phase: str
) -> None:
    assert pod_phase(init, main, policy) == phase


def test_container_status_shapes_and_restart_history() -> None:
    run = ContainerRun("serve", "img")
    assert run.status()["state"] == {"waiting": {"reason": "PodInitializing"}}
    run.run(T0)
    assert run.status()["state"] == {"running": {"startedAt": T0}} and run.status()["started"]
    run.end(2, '{"outcome":"BadSpec"}', T1)
    term = run.status()["state"]["terminated"]
    assert term == {
        "exitCode": 2,
        "reason": "Error",
        "message": '{"outcome":"BadSpec"}',
        "startedAt": T0,
        "finishedAt": T1,
    }
    run.wait("CrashLoopBackOff", "back-off 1s")
    run.run(T2)
    status = run.status()
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 2
    assert status["state"] == {"running": {"startedAt": T2}}


def test_conditions_move_their_transition_time_only_on_change() -> None:
    first = merge_conditions({}, {"Ready": ("False", "ContainersNotReady")}, T0)
    same = merge_conditions(first, {"Ready": ("False", "ContainersNotReady")}, T1)
    assert same["Ready"]["lastTransitionTime"] == T0
    flipped = merge_conditions(same, {"Ready": ("True", "")}, T2)
    assert flipped["Ready"] == {"type": "Ready", "status": "True", "lastTransitionTime": T2}


def test_a_pod_status_from_start_to_success() -> None:
    pod = PodRun(
        "127.0.0.5",
        "10.0.0.1",
        "Never",
        [ContainerRun("validate", "i")],
        [ContainerRun("train", "i")],
        start_time=T0,
    )
    pending = pod.status(T0)
    assert pending["phase"] == "Pending" and "podIP" not in pending
    pod.sandbox = True
    pod.init[0].run(T0)
    validating = pod.status(T0)
    assert validating["podIPs"] == [{"ip": "127.0.0.5"}]
    assert validating["initContainerStatuses"][0]["state"]["running"] == {"startedAt": T0}
    pod.init[0].end(0, "", T1)
    pod.main[0].run(T1)
    pod.main[0].ready = True
    running = pod.status(T1)
    conditions = {x["type"]: x["status"] for x in running["conditions"]}
    assert running["phase"] == "Running"
    assert conditions == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
        "PodScheduled": "True",
    }
    pod.main[0].end(0, "{}", T2)
    done = pod.status(T2)
    conditions = {x["type"]: (x["status"], x.get("reason")) for x in done["conditions"]}
    assert done["phase"] == "Succeeded"
    assert conditions["Ready"] == ("False", "PodCompleted")
    assert done["startTime"] == T0 and done["hostIP"] == "10.0.0.1"


def test_termination_message_is_capped_and_falls_back_to_logs(tmp_path: Path) -> None:
    term, log = tmp_path / "term", tmp_path / "log"
    term.write_bytes(b"x" * 5000)
    assert len(termination_message(term, log, exit_code=0, fallback_to_logs=False)) == 4096
    term.write_bytes(b"")
    log.write_text("".join(f"line {i}\n" for i in range(200)))
    assert termination_message(term, log, exit_code=1, fallback_to_logs=False) == ""
    tail = termination_message(term, log, exit_code=1, fallback_to_logs=True)
    assert tail.startswith("line 120\n") and tail.endswith("line 199\n")
    assert termination_message(term, log, exit_code=0, fallback_to_logs=True) == ""
    assert termination_message(tmp_path / "none", None, exit_code=1, fallback_to_logs=True) == ""


def test_a_pod_lost_by_an_earlier_runtime_is_failed_with_what_was_running_killed() -> None:
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": T0}],
        "initContainerStatuses": [{"name": "validate", "state": {"terminated": {"exitCode": 0}}}],
        "containerStatuses": [
            {"name": "train", "ready": True, "state": {"running": {"startedAt": T0}}}
        ],
    }
    lost = lost_status(status, T1, "lost")
    assert lost["phase"] == "Failed"
    assert lost["initContainerStatuses"] == status["initContainerStatuses"]
    term = lost["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["message"], term["startedAt"]) == (137, "lost", T0)
    assert lost["conditions"][0]["status"] == "False"


def test_which_pods_are_ours_and_which_were_started_before() -> None:
    both = {"perennial.dev/runtime": "local", "kwok.x-k8s.io/status": "custom"}
    assert is_ours({"metadata": {"annotations": both}})
    assert not is_ours({"metadata": {"annotations": {"perennial.dev/runtime": "local"}}})
    assert not is_ours({"metadata": {}})
    waiting = {"containerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}]}
    assert not was_started({"status": waiting}) and not was_started({})
    assert was_started({"status": {"initContainerStatuses": [{"state": {"running": {}}}]}})


def test_loopback_addresses_are_distinct_kept_per_pod_and_reused_after_release() -> None:
    pool = LoopbackPool()
    a, b = pool.take("a"), pool.take("b")
    assert (a, b) == ("127.0.0.2", "127.0.0.3") and pool.take("a") == a
    assert pool.take("c", prefer="127.0.0.2") != a
    assert pool.take("d", prefer="127.0.9.9") == "127.0.9.9"
    pool.release("a")
    pool.keep("old", "127.0.0.2")  # a finished pod still showing it
    assert pool.take("e") == "127.0.0.5"  # .3 and .4 are b and c
    pool.release("old")
    assert pool.take("f") == "127.0.0.2"
    assert pool.address(253) == "127.0.1.2" and pool.address(252) == "127.0.0.254"
    assert LoopbackPool(block=7).address(0) == "127.7.0.2"


def test_two_state_folders_get_blocks_of_their_own_that_survive_a_restart(tmp_path: Path) -> None:
    blocks = {loopback_block(tmp_path / f"state-{i}") for i in range(20)}
    assert len(blocks) > 15 and all(1 <= b <= 254 for b in blocks)  # hash spread, never 0
    assert loopback_block(tmp_path / "state-0") == loopback_block(tmp_path / "state-0")


def test_exit_codes_of_signalled_processes_read_like_a_container_runtime() -> None:
    assert (exit_code(0), exit_code(3), exit_code(-15), exit_code(-9)) == (0, 3, 143, 137)
