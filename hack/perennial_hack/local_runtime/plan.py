"""What the local runtime will run for a pod: pure, from the pod spec and local folders.

The command line is resolved as a kubelet does, against the runtime image's ENTRYPOINT and
CMD (read from trainer_image/Dockerfile; tests check the built image says the same). Only
our runtime's own programs run (perennial-train, perennial-serve, from the Python
environment the runtime itself lives in); a container asking for anything else gets a
refusal that ends up in its status, never a process.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perennial_hack.images.dockerfile import ImageConfig, declared_env, image_config
from perennial_hack.images.spec import REPO, by_name
from perennial_hack.local_runtime.volumes import metadata_field, rewrite

TRAIN, SERVE = "perennial-train", "perennial-serve"
RUNTIME_COMMANDS = (TRAIN, SERVE)
# The PATH a pod's process gets here, in place of the image's (its /opt/perennial/bin is
# the image's own environment; our programs are found by name, see resolve_argv).
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
_RUNTIME_DOCKERFILE = (REPO / by_name("runtime").dockerfile).read_text()
# ENTRYPOINT and CMD of the image every pod here is taken to run.
RUNTIME_IMAGE = image_config(_RUNTIME_DOCKERFILE)
# Its ENV (HOME, LANG, PERENNIAL_PVC_ROOT...): a container starts with the image's
# environment, and its own env entries win (tests check the built image says the same).
RUNTIME_ENV = declared_env(_RUNTIME_DOCKERFILE)


@dataclass(frozen=True)
class HttpProbe:
    url: str
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    termination_log: Path
    log: Path
    fallback_to_logs: bool = False  # terminationMessagePolicy FallbackToLogsOnError
    probe: HttpProbe | None = None
    refused: str | None = None  # why it cannot run here (then argv is empty)

    @property
    def cri_log(self) -> Path:
        """The same output in the CRI log format, which kwok serves as the pod's log."""
        return self.log.with_name(f"{self.name}.cri.log")


@dataclass(frozen=True)
class PodPlan:
    init: tuple[ContainerPlan, ...]
    main: tuple[ContainerPlan, ...]
    restart_policy: str = "Always"
    grace_s: float = 30.0
    notes: tuple[str, ...] = field(default=())


def prestop_sleep(spec: dict[str, Any]) -> float:
    """Seconds of the longest `lifecycle.preStop.sleep` among the pod's containers (the
    kubelet runs each container's hook before its SIGTERM; with one container, as our pods
    have, that is exactly it). Other preStop actions (exec, httpGet) are not run locally."""
    seconds = [
        float(((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0))
        for c in spec.get("containers") or []
    ]
    return max(seconds, default=0.0)


def has_flag(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def cpu_count(quantity: str | None) -> int | None:
    """ceil(a CPU quantity): '500m' -> 1, '2' -> 2; None if unset or unparsable."""
    if not quantity:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", str(quantity).strip())
    if not match:
        return None
    cores = float(match.group(1)) / (1000 if match.group(2) else 1)
    return max(1, math.ceil(cores))


def runtime_args(
    command: str, args: list[str], *, pod_ip: str, termination_log: Path, cpu_limit: str | None
) -> list[str]:
    """Flags that stand in for what a pod provides: the kubelet's termination-log file,
    the pod's own address, and (serve) the worker count its CPU limit would give."""
    extra: list[str] = []
    if command == TRAIN and not has_flag(args, "--termination-log"):
        extra += ["--termination-log", str(termination_log)]
    if command == SERVE:
        if not has_flag(args, "--host"):
            extra += ["--host", pod_ip]
        workers = cpu_count(cpu_limit)
        if workers and not has_flag(args, "--workers"):
            extra += ["--workers", str(workers)]
    return args + extra


def field_value(pod: dict[str, Any], path: str, pod_ip: str, host_ip: str) -> str | None:
    """The downward-API fieldRef values a pod may ask for in its env."""
    if path.startswith("metadata."):
        return metadata_field(pod, path)
    spec = pod["spec"]
    simple = {
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
    }
    value = simple.get(path)
    return None if value is None else str(value)


# (kind, name) -> the object's data, decoded (a Secret's values are base64 in the API).
EnvObjects = Mapping[tuple[str, str], Mapping[str, str]]


def _env_from(container: dict[str, Any], objects: EnvObjects) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            if key in source:
                data = objects.get((kind, source[key]["name"]), {})
                env |= {source.get("prefix", "") + k: v for k, v in data.items()}
    return env


def container_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    paths: Mapping[str, str],
    ips: tuple[str, str],
    objects: EnvObjects | None = None,
) -> tuple[dict[str, str], str | None]:
    """(environment, refusal). Values naming a mounted path are rewritten to the local one.
    `objects`: the ConfigMaps and Secrets env_objects names, as the worker read them (a
    missing optional one is absent; a missing required one never gets here)."""
    objects = objects or {}
    env = {key: rewrite(value, paths) for key, value in RUNTIME_ENV.items()}
    env |= {"PATH": BASE_PATH, "HOSTNAME": pod["metadata"]["name"]}
    env |= _env_from(container, objects)  # env entries below win, as in a kubelet
    for item in container.get("env") or []:
        if "value" in item or "valueFrom" not in item:
            env[item["name"]] = rewrite(str(item.get("value", "")), paths)
            continue
        value_from = item["valueFrom"]
        key_ref = value_from.get("secretKeyRef") or value_from.get("configMapKeyRef")
        if key_ref:
            kind = "Secret" if "secretKeyRef" in value_from else "ConfigMap"
            data = objects.get((kind, key_ref["name"]), {})
            if key_ref["key"] in data:
                env[item["name"]] = data[key_ref["key"]]
            elif not key_ref.get("optional"):
                return env, f"env {item['name']}: key {key_ref['key']} not in {key_ref['name']}"
            continue
        ref = value_from.get("fieldRef")
        value = field_value(pod, ref["fieldPath"], *ips) if ref else None
        if value is None:
            return env, f"env {item['name']}: only fieldRef and key references work locally"
        env[item["name"]] = value
    return env, None


def http_probe(container: dict[str, Any], pod_ip: str) -> HttpProbe | None:
    probe = container.get("readinessProbe") or {}
    get = probe.get("httpGet")
    if not get:
        return None
    port = get.get("port")
    if isinstance(port, str) and not port.isdigit():
        named = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
        port = named.get(port)
    path = get.get("path") or "/"
    return HttpProbe(
        url=f"{str(get.get('scheme', 'HTTP')).lower()}://{pod_ip}:{port}{path}",
        initial_delay_s=float(probe.get("initialDelaySeconds", 0)),
        period_s=float(probe.get("periodSeconds", 10)),
        timeout_s=float(probe.get("timeoutSeconds", 1)),
        success_threshold=int(probe.get("successThreshold", 1)),
        failure_threshold=int(probe.get("failureThreshold", 3)),
    )


def resolve_argv(command: list[str], args: list[str], image: ImageConfig) -> list[str]:
    """The process a container runs, by Kubernetes' rules: `command` replaces the image's
    ENTRYPOINT (and its CMD is then ignored); `args` replaces the image's CMD."""
    if command:
        return [*command, *args]
    return [*image.entrypoint, *(args or image.cmd)]


def _refusal(argv: list[str]) -> str | None:
    if not argv:
        return "no command: neither the container nor the image names a program"
    if argv[0] not in RUNTIME_COMMANDS:
        return (
            f"the local runtime runs only {' and '.join(RUNTIME_COMMANDS)}; "
            f"this container runs {argv[0]!r}"
        )
    return None


def container_plan(
    pod: dict[str, Any],
    container: dict[str, Any],
    paths: Mapping[str, str],
    *,
    ips: tuple[str, str],
    bin_dir: Path,
    pod_dir: Path,
    image: ImageConfig = RUNTIME_IMAGE,
    objects: EnvObjects | None = None,
) -> ContainerPlan:
    """ips = (pod IP, host IP); `image`: the ENTRYPOINT and CMD the container's own
    command and args are resolved against."""
    name = container["name"]
    termination_log = pod_dir / "termination" / name
    command = [str(a) for a in container.get("command") or []]
    raw = resolve_argv(command, [str(a) for a in container.get("args") or []], image)
    env, env_refusal = container_env(pod, container, paths, ips, objects)
    refused = _refusal(raw) or env_refusal
    argv: tuple[str, ...] = ()
    if refused is None:
        args = [rewrite(a, paths) for a in raw[1:]]
        limit = ((container.get("resources") or {}).get("limits") or {}).get("cpu")
        args = runtime_args(
            raw[0], args, pod_ip=ips[0], termination_log=termination_log, cpu_limit=limit
        )
        argv = (str(bin_dir / raw[0]), *args)
    return ContainerPlan(
        name=name,
        image=str(container.get("image", "")),
        argv=argv,
        env=env,
        cwd=rewrite(container.get("workingDir") or image.workdir or str(pod_dir), paths),
        termination_log=termination_log,
        log=pod_dir / "logs" / f"{name}.log",
        fallback_to_logs=container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
        probe=http_probe(container, ips[0]),
        refused=refused,
    )


def pod_plan(
    pod: dict[str, Any],
    paths_of: Mapping[str, Mapping[str, str]],
    *,
    ips: tuple[str, str],
    bin_dir: Path,
    pod_dir: Path,
    objects: EnvObjects | None = None,
) -> PodPlan:
    """paths_of: container name -> its path map (volumes.path_map); objects: see
    container_env."""
    spec = pod["spec"]

    def plans(key: str) -> tuple[ContainerPlan, ...]:
        return tuple(
            container_plan(
                pod,
                c,
                paths_of[c["name"]],
                ips=ips,
                bin_dir=bin_dir,
                pod_dir=pod_dir,
                objects=objects,
            )
            for c in spec.get(key) or []
        )

    notes = []
    for c in spec.get("containers") or []:
        if c.get("livenessProbe") or c.get("startupProbe"):
            notes.append(f"{c['name']}: liveness and startup probes are not run locally")
    return PodPlan(
        init=plans("initContainers"),
        main=plans("containers"),
        restart_policy=str(spec.get("restartPolicy", "Always")),
        grace_s=float(spec.get("terminationGracePeriodSeconds", 30)),
        notes=tuple(notes),
    )
