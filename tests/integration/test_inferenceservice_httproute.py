"""spec.rollout.httpRoute on the real control plane: the operator sets the weights of a
user's Gateway API HTTPRoute (CRD: tests/fixtures, Gateway API v1.7.0, standard channel).

No gateway controller runs here: what is tested is the contract with the API server, the
route's backendRefs the operator writes at each step and the fields of the user it must not
touch. The CRD is installed by this module only (the first test needs a cluster without it)
and removed again when the module is done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from perennial_operator.api.group import API_VERSION
from perennial_operator.api.timestamps import epoch
from perennial_operator.k8s.kube import Kube
from support.inferenceservice import (
    Behaviour,
    FakePods,
    condition,
    deployment,
    fake_pods,
    modelversion,
    operator_options,
    pin,
    service,
    service_events,
    service_status,
    serving_claim,
    serving_v1_of_two,
    wait_status,
)
from support.poll import until
from support.world import World

pytestmark = pytest.mark.integration
__all__ = ["fake_pods", "operator_options", "serving_claim"]  # fixtures

CRD_FILE = (
    Path(__file__).resolve().parents[1] / "fixtures" / ("gateway.networking.k8s.io_httproutes.yaml")
)
CRD_NAME = "httproutes.gateway.networking.k8s.io"
GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
PARENTS = [
    {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": "public",
        "namespace": "gateways",
    }
]
SERVE_MATCH = [{"path": {"type": "PathPrefix", "value": "/v2/models/churn"}}]
DOCS_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
    "backendRefs": [{"group": "", "kind": "Service", "name": "docs", "port": 8080, "weight": 1}],
}


def _crd_present(cluster: Any) -> bool:
    return cluster.kubectl("get", "crd", CRD_NAME, check=False).returncode == 0


@pytest.fixture(scope="module")
def gateway_api(cluster: Any) -> Iterator[None]:
    """The HTTPRoute CRD, for this module's tests only."""
    ours = not _crd_present(cluster)
    if ours:
        cluster.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
        # Not `kubectl wait`: it fails while the new CRD has no conditions at all yet.
        path = '{.status.conditions[?(@.type=="Established")].status}'
        until(
            lambda: (
                cluster.kubectl(
                    "get", "crd", CRD_NAME, "-o", f"jsonpath={path}", check=False
                ).stdout
                == "True"
            ),
            timeout=60,
            message=f"{CRD_NAME} Established",
        )
    yield
    if ours:
        cluster.kubectl("delete", "crd", CRD_NAME, "--wait=false", check=False)


def create_route(cluster: Any, world: World, *flags: str) -> None:
    """The user's route, applied server-side under a GitOps tool's field manager."""
    route = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": "churn", "namespace": world.ns},
        "spec": {
            "parentRefs": PARENTS,
            "hostnames": ["churn.example.com"],
            "rules": [
                {"matches": SERVE_MATCH, "backendRefs": [{"name": "churn", "port": 80}]},
                DOCS_RULE,
            ],
        },
    }
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=gitops",
        *flags,
        "-f",
        "-",
        stdin=json.dumps(route),
    )


def route(world: World) -> dict[str, Any]:
    api = client.CustomObjectsApi(world.kube.api)
    got: dict[str, Any] = api.get_namespaced_custom_object(
        GROUP, VERSION, world.ns, PLURAL, "churn"
    )
    return got


def weights(world: World) -> tuple[tuple[str, int], ...]:
    """(Service, weight) of the rule that serves the model."""
    refs = route(world)["spec"]["rules"][0]["backendRefs"]
    return tuple((r["name"], r.get("weight", 1)) for r in refs)


def route_status(world: World, accepted: str, reason: str, message: str = "") -> None:
    """What a gateway controller would report about the route (none runs here)."""
    condition = {
        "type": "Accepted",
        "status": accepted,
        "reason": reason,
        "message": message,
        "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "observedGeneration": route(world)["metadata"]["generation"],
    }
    parent = {
        "parentRef": PARENTS[0],
        "controllerName": "example.com/gateway-controller",
        "conditions": [condition],
    }
    api = client.CustomObjectsApi(world.kube.api)
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, world.ns, PLURAL, "churn", {"status": {"parents": [parent]}}
    )


def selects(world: World, service: str) -> str | None:
    svc = world.kube.get("v1", "Service", world.ns, service)
    return svc["spec"]["selector"].get("perennial.dev/model-version") if svc else None


def canary_spec(route_name: str = "churn", **extra: Any) -> dict[str, Any]:
    return {"strategy": "Canary", "httpRoute": {"name": route_name}, **extra}


def test_without_the_gateway_api_the_canary_waits_then_goes_once_it_is_installed(
    world: World, request: pytest.FixtureRequest, cluster: Any
) -> None:
    if _crd_present(cluster):
        pytest.skip("this cluster has the Gateway API installed")
    modelversion(world, 1)
    modelversion(world, 2)
    service(world, {"version": 1}, replicas=1, rollout=canary_spec(steps=[50, 100], stepSeconds=1))
    wait_status(
        world, "v1 Ready: a first deployment needs no weights", phase="Ready", readyReplicas=1
    )
    cond = world.wait(
        lambda: (c := condition(world, "TrafficRouted")).get("status") == "False" and c,
        "TrafficRouted=False",
    )
    assert cond["reason"] == "GatewayAPINotInstalled"
    assert "httproutes.gateway.networking.k8s.io/v1" in cond["message"]
    assert ("Warning", "GatewayAPINotInstalled") in [(t, r) for t, r, _ in service_events(world)]
    pin(world, 2)
    world.wait(
        lambda: condition(world, "Progressing").get("reason") == "WaitingForHTTPRoute",
        "the rollout of v2 waiting for the route",
    )
    assert (
        "churn-v2 waits: the Gateway API is not installed"
        in condition(world, "Progressing")["message"]
    )
    status = service_status(world)
    assert deployment(world, "canary") is None and "canary" not in status
    assert status["currentVersion"] == 1 and "traffic" not in status
    warnings = [r for t, r, _ in service_events(world) if t == "Warning"]
    assert warnings == ["GatewayAPINotInstalled"], "one Warning, not one per tick"

    # The CRD arrives while the operator runs: kopf starts watching routes by itself, and
    # the route's creation lets the canary go.
    request.getfixturevalue("gateway_api")
    create_route(cluster, world)  # within 10 s: the watch, not the 30 s resync
    world.wait(
        lambda: (service_status(world).get("canary") or {}).get("weight") == 50,
        "the canary started",
        timeout=10,
    )
    wait_status(world, "v2 promoted", phase="Ready", currentVersion=2, timeout=60)
    assert weights(world) == (("churn-stable", 100),)
    assert condition(world, "TrafficRouted")["reason"] == "WeightsApplied"


def test_route_weights_follow_every_canary_step_exactly(
    world: World, gateway_api: None, cluster: Any
) -> None:
    create_route(cluster, world)
    serving_v1_of_two(world, replicas=2, rollout=canary_spec(steps=[25, 50, 100], stepSeconds=2))
    world.wait(
        lambda: weights(world) == (("churn-stable", 100),),
        "the user's backendRef to churn replaced by churn-stable at 100",
    )
    world.wait(
        lambda: (
            service_status(world).get("traffic")
            == [{"service": "churn-stable", "version": 1, "weight": 100}]
        ),
        "status.traffic at rest",
    )
    assert condition(world, "TrafficRouted")["reason"] == "WeightsApplied"
    assert selects(world, "churn-stable") == "1" and selects(world, "churn-canary") == "1"

    pin(world, 2)
    seen: list[tuple[tuple[str, int], ...]] = []
    stable_sizes: set[int] = set()
    canary_selects: set[str | None] = set()

    def promoted() -> bool:
        now = weights(world)
        if not seen or seen[-1] != now:
            seen.append(now)
        if dict(now).get("churn-canary", 0) in (25, 50):
            canary_selects.add(selects(world, "churn-canary"))
            stable = deployment(world, "stable")
            stable_sizes.add(stable["spec"]["replicas"] if stable else -1)
        status = service_status(world)
        return status.get("currentVersion") == 2 and not status.get("canary")

    world.wait(promoted, "promotion of v2", timeout=90)
    world.wait(lambda: weights(world) == (("churn-stable", 100),), "everything back on stable")
    seen.append(weights(world))
    steps = [(("churn-stable", 100 - w), ("churn-canary", w)) for w in (0, 25, 50, 100)]
    allowed = [(("churn-stable", 100),), *steps, (("churn-stable", 100),)]
    assert all(s in allowed for s in seen), seen  # never a weight of its own invention
    order = [allowed.index(s, 1 if i else 0) for i, s in enumerate(seen)]
    assert order == sorted(order), seen  # only forward, step by step
    for step in steps[1:]:
        assert step in seen, seen  # 25, 50 and 100 each held long enough to be seen
    assert stable_sizes == {2}, "with a route the stable keeps all its replicas"
    assert canary_selects == {"2"}
    assert selects(world, "churn-stable") == "2" and selects(world, "churn-canary") == "2"
    world.wait(
        lambda: (
            service_status(world).get("traffic")
            == [{"service": "churn-stable", "version": 2, "weight": 100}]
        ),
        "status.traffic promoted",
    )

    # The user's fields are untouched; the operator is an Update manager of spec.rules only.
    after = route(world)
    assert after["spec"]["parentRefs"] == PARENTS
    assert after["spec"]["hostnames"] == ["churn.example.com"]
    assert after["spec"]["rules"][0]["matches"] == SERVE_MATCH
    assert after["spec"]["rules"][1] == DOCS_RULE
    ours = [m for m in after["metadata"]["managedFields"] if m["manager"] == "perennial-traffic"]
    assert [m["operation"] for m in ours] == ["Update"]
    assert set(ours[0]["fieldsV1"]["f:spec"]) == {"f:rules"}
    shifted = [m for _, r, m in service_events(world) if r == "TrafficShifted"]
    assert "HTTPRoute churn: churn-stable 75%, churn-canary 25%" in shifted
    assert "HTTPRoute churn: churn-stable 50%, churn-canary 50%" in shifted
    canary_steps = [m for _, r, m in service_events(world) if r in ("CanaryStarted", "CanaryStep")]
    assert "at 25% of requests via HTTPRoute churn (1 canary, 2 stable pods)" in canary_steps[0]

    # A GitOps tool forcing the user's file back resets the rule; the watch on HTTPRoutes
    # restores the weights at once (at rest no timer runs faster than the 30 s resync).
    create_route(cluster, world, "--force-conflicts")
    world.wait(
        lambda: weights(world) == (("churn-stable", 100),), "the weights restored", timeout=10
    )

    # Without spec.rollout.httpRoute the role Services, the condition and status.traffic go.
    world.kube.patch(
        API_VERSION,
        "InferenceService",
        world.ns,
        "churn",
        {"spec": {"rollout": {"httpRoute": None}}},
    )
    world.wait(
        lambda: (
            world.kube.get("v1", "Service", world.ns, "churn-stable") is None
            and world.kube.get("v1", "Service", world.ns, "churn-canary") is None
        ),
        "the role Services deleted",
    )
    world.wait(
        lambda: not condition(world, "TrafficRouted") and "traffic" not in service_status(world),
        "TrafficRouted and status.traffic gone",
    )
    assert world.kube.get("v1", "Service", world.ns, "churn") is not None


def test_missing_route_holds_the_canary_and_a_rollback_returns_all_to_stable(
    world: World, gateway_api: None, fake_pods: FakePods, cluster: Any
) -> None:
    fake_pods.behaviour[2] = Behaviour(ok=160, errors=40)
    serving_v1_of_two(
        world, replicas=2, rollout=canary_spec(steps=[50, 100], stepSeconds=4, maxErrorRate=0.05)
    )
    cond = world.wait(
        lambda: (c := condition(world, "TrafficRouted")).get("status") == "False" and c,
        "TrafficRouted=False",
    )
    assert cond["reason"] == "HTTPRouteNotFound"
    assert cond["message"] == f"HTTPRoute churn not found in {world.ns}"
    pin(world, 2)
    world.wait(
        lambda: condition(world, "Progressing").get("reason") == "WaitingForHTTPRoute",
        "the rollout of v2 waiting for the route",
    )
    assert deployment(world, "canary") is None, "no canary runs on a guess"
    assert [r for t, r, _ in service_events(world) if t == "Warning"] == ["HTTPRouteNotFound"]

    create_route(cluster, world)  # the watch on HTTPRoutes wakes the service
    seen: list[tuple[tuple[str, int], ...]] = []

    def rolled_back() -> bool:
        now = weights(world)
        if not seen or seen[-1] != now:
            seen.append(now)
        return service_status(world).get("phase") == "RolledBack"

    status = world.wait(rolled_back, "the breach rolled back", timeout=90)
    assert (("churn-stable", 50), ("churn-canary", 50)) in seen, seen
    world.wait(lambda: weights(world) == (("churn-stable", 100),), "100% back on stable")
    status = service_status(world)
    assert status["lastRollback"]["reason"] == "ErrorRateExceeded"
    assert status["traffic"] == [{"service": "churn-stable", "version": 1, "weight": 100}]
    assert selects(world, "churn-canary") == "1", "the canary Service fell back to v1's pods"
    assert condition(world, "TrafficRouted")["status"] == "True"
    world.wait(lambda: deployment(world, "canary") is None, "the canary Deployment removed")
    assert deployment(world, "stable")["spec"]["replicas"] == 2


def test_a_routed_step_is_timed_from_when_the_route_carries_its_weight(
    world: World, gateway_api: None, fake_pods: FakePods, cluster: Any
) -> None:
    """The canary's pods come up later than stepSeconds: the route gets the step's weight
    only then, and the step's clock starts with it, so the step is measured at 50%."""
    fake_pods.never_ready.add(2)
    create_route(cluster, world)
    serving_v1_of_two(world, replicas=2, rollout=canary_spec(steps=[50, 100], stepSeconds=3))
    pin(world, 2)
    world.wait(
        lambda: weights(world) == (("churn-stable", 100), ("churn-canary", 0)),
        "the canary listed at 0 while it is not ready",
    )
    time.sleep(5)  # the canary's pods stay unready for longer than stepSeconds (setup)
    waiting = service_status(world)["canary"]
    assert waiting["step"] == 0 and "servingSince" not in waiting, waiting
    fake_pods.never_ready.discard(2)

    def serving() -> dict[str, Any] | None:
        status = service_status(world)
        canary = status.get("canary") or {}
        return status if canary.get("servingSince") and canary.get("step") == 0 else None

    status = world.wait(serving, "the step's clock started")
    # The clock and the route's weight arrive together: the same status write shows both.
    assert {"service": "churn-canary", "version": 2, "weight": 50} in status["traffic"]
    since = epoch(status["canary"]["servingSince"])
    assert since - epoch(status["canary"]["stepStartedAt"]) >= 5
    nxt = world.wait(
        lambda: (c := service_status(world).get("canary")) and c.get("step") == 1 and c,
        "step 2 (100%)",
        timeout=30,
    )
    assert epoch(nxt["stepStartedAt"]) - since >= 3, nxt
    wait_status(world, "v2 promoted", phase="Ready", currentVersion=2, timeout=60)


def test_the_patch_is_guarded_and_what_it_means_for_the_users_server_side_apply(
    cluster: Any, kube: Kube, namespace: str, gateway_api: None
) -> None:
    """The JSON patch's `test` guards a rule the user changed after the operator read it.
    And because spec.rules is atomic, the operator's patch makes it the owner of the whole
    list: the user's next server-side apply of the rules conflicts unless forced."""
    from perennial_operator.desired.httproute import route_patch
    from perennial_operator.k8s import httproute

    mine = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": namespace},
        "spec": {
            "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "churn", "port": 80}]}],
        },
    }

    def user_apply(*flags: str) -> Any:
        return cluster.kubectl(
            "apply",
            "--server-side",
            "--field-manager=gitops",
            *flags,
            "-f",
            "-",
            stdin=json.dumps(mine),
            check=False,
        )

    assert user_apply().returncode == 0
    read, what, _ = httproute.read(kube, namespace, "r")
    assert read is not None and what is None
    refs = [{"name": "churn-stable", "port": 80, "weight": 100}]
    ops = route_patch(read, ("churn", "churn-stable", "churn-canary"), refs)
    assert ops
    stale = [dict(op) for op in ops]
    stale[0]["value"] = [{"name": "churn", "port": 81}]  # what the user wrote meanwhile
    written, what, detail = httproute.patch(kube, namespace, "r", stale)
    assert (written, what) == (None, "patch") and detail.startswith("HTTP 422")
    written, what, _ = httproute.patch(kube, namespace, "r", ops)
    assert what is None and written is not None
    assert written["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "churn-stable", "port": 80, "weight": 100}
    ]
    owners = {
        m["manager"]: set(m["fieldsV1"]["f:spec"]) for m in written["metadata"]["managedFields"]
    }
    assert owners == {"gitops": {"f:hostnames"}, "perennial-traffic": {"f:rules"}}

    # The user's file, re-applied, differs from the route in spec.rules (the weights, and the
    # defaults the API server filled in): a conflict with the operator, whatever else changed.
    mine["spec"]["hostnames"] = ["b.example.com"]
    refused = user_apply()
    assert refused.returncode != 0
    assert 'conflict with "perennial-traffic"' in refused.stderr
    assert ".spec.rules" in refused.stderr
    assert user_apply("--force-conflicts").returncode == 0  # the user takes the list back
    back, _, _ = httproute.read(kube, namespace, "r")
    assert back is not None and back["spec"]["rules"][0]["backendRefs"][0]["name"] == "churn"
    assert httproute.read(kube, namespace, "gone")[1] == "route"


def test_a_route_its_gateway_refuses_holds_the_canary_until_it_is_accepted(
    world: World, gateway_api: None, cluster: Any
) -> None:
    create_route(cluster, world)
    route_status(world, "False", "NotAllowedByListeners", "no listener allows namespace ml")
    serving_v1_of_two(world, replicas=1, rollout=canary_spec(steps=[50, 100], stepSeconds=2))
    cond = world.wait(
        lambda: (c := condition(world, "TrafficRouted")).get("status") == "False" and c,
        "TrafficRouted=False",
    )
    assert cond["reason"] == "HTTPRouteNotAccepted"
    assert cond["message"] == (
        "HTTPRoute churn is not accepted by Gateway public (example.com/gateway-controller): "
        "NotAllowedByListeners: no listener allows namespace ml"
    )
    pin(world, 2)
    world.wait(
        lambda: condition(world, "Progressing").get("reason") == "WaitingForHTTPRoute",
        "the rollout of v2 waiting for the route",
    )
    assert deployment(world, "canary") is None, "no canary on a route that carries nothing"
    assert weights(world) == (("churn", 1),), "a refused route is left as the user wrote it"

    route_status(world, "True", "Accepted")  # the watch on HTTPRoutes wakes the service
    wait_status(world, "v2 promoted", currentVersion=2, phase="Ready", timeout=90)
    assert condition(world, "TrafficRouted")["status"] == "True"
    reasons = [r for t, r, _ in service_events(world) if t == "Warning"]
    assert reasons == ["HTTPRouteNotAccepted"], reasons
