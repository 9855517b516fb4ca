"""A real local control plane as plain processes: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (fake nodes, simulated pod lifecycles).

    with Cluster("demo") as c:          # or c.start() ... c.stop()
        os.environ["KUBECONFIG"] = str(c.kubeconfig)

Run state lives in ${XDG_CACHE_HOME:-~/.cache}/perennial/run/<name>/: kubeconfig, pki/,
logs/<component>.log, state.json (pids and ports), etcd/.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from perennial_hack.cluster import flags, kubeapi, paths, pki, process
from perennial_hack.cluster.nodes import node_manifest
from perennial_hack.cluster.versions import Versions
from perennial_hack.cluster.versions import load as load_versions

STAGES_FILE = Path(__file__).resolve().parent / "kwok-stages.yaml"
KWOK_LOGS_CRD = Path(__file__).resolve().parent / "kwok-logs-crd.yaml"
# Start order; stop goes the other way.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


@dataclass(frozen=True)
class NodeShape:
    name: str
    cpu: str
    memory: str
    gpu: int = 0


DEFAULT_NODES = (NodeShape("kwok-cpu-0", "8", "32Gi"), NodeShape("kwok-cpu-1", "8", "32Gi"))


class ClusterError(RuntimeError):
    pass


def component_argv(name: str, bin_dir: Path, ports: flags.Ports, lay: flags.Layout) -> list[str]:
    builders: dict[str, Callable[[flags.Ports, flags.Layout], list[str]]] = {
        "etcd": flags.etcd_args,
        "kube-apiserver": flags.apiserver_args,
        "kube-controller-manager": flags.controller_manager_args,
        "kube-scheduler": flags.scheduler_args,
        "kwok": flags.kwok_args,
    }
    return [str(bin_dir / name), *builders[name](ports, lay)]


def node_is_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Cluster:
    def __init__(
        self,
        name: str = "default",
        *,
        versions: Versions | None = None,
        nodes: Sequence[NodeShape] = DEFAULT_NODES,
        tie_to_parent: bool = False,
        log: Callable[[str], None] = print,
        extra_args: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """tie_to_parent: the processes die with this Python process (pytest); otherwise
        they outlive it (`perennial-cluster up`) until `stop`/`down`. extra_args: more flags
        per component (a benchmark's audit log, say)."""
        self.name = name
        self.versions = versions or load_versions()
        self.layout = flags.Layout(paths.run_dir(name))
        self.bin_dir = paths.bin_dir(self.versions)
        self.nodes = tuple(nodes)
        self._tie = tie_to_parent
        self._log = log
        self._children: list[subprocess.Popen[bytes]] = []
        self._extra = {name: tuple(args) for name, args in (extra_args or {}).items()}

    # --- public surface -----------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return self.layout.root

    @property
    def kubeconfig(self) -> Path:
        return self.layout.admin_kubeconfig

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self._state()['ports']['apiserver']}"

    def is_up(self) -> bool:
        state = self._state()
        if not state or not all(process.alive(p) for p in state["pids"].values()):
            return False
        return len(state["pids"]) == len(COMPONENTS) and self._api(state).healthy()

    def start(self, timeout: float = 180.0) -> bool:
        """Start the control plane; False (and nothing started) if it is already up."""
        if self.is_up():
            self._log(f"cluster {self.name!r} is already up ({self.run_dir})")
            return False
        self.stop(quiet=True)  # leftovers of a half-started or crashed run
        missing = [c for c in (*COMPONENTS, "kubectl") if not (self.bin_dir / c).exists()]
        if missing:
            raise ClusterError(f"missing {missing} in {self.bin_dir}: run `make k8s-build`")
        if self._tie:
            atexit.register(self.stop, quiet=True)
        started = time.monotonic()
        try:
            self._start(timeout)
        except BaseException:
            self._log(self.log_tails())
            self.stop(quiet=True)
            raise
        self._log(f"cluster {self.name!r} up in {time.monotonic() - started:.1f}s ({self.run_dir})")
        return True

    def stop(self, quiet: bool = False) -> None:
        state = self._state()
        pids = [state["pids"][c] for c in reversed(COMPONENTS) if c in state.get("pids", {})]
        process.stop(pids)
        for child in self._children:
            child.wait()  # reap, so no zombie and no ResourceWarning
        self._children.clear()
        if state:
            self.layout.state.unlink(missing_ok=True)
            if not quiet:
                self._log(f"cluster {self.name!r} stopped; logs in {self.layout.logs}")
        elif not quiet:
            self._log(f"cluster {self.name!r} is not running")

    def crash(self, component: str, down_s: float, timeout: float = 120.0) -> float:
        """SIGKILL one running component, leave it down `down_s` seconds, start it again with
        the same flags and data (etcd keeps its data dir) and wait until it is ready. For
        failure drills (bench/reliability). Returns the seconds until it was ready again."""
        if component not in COMPONENTS:
            raise ValueError(f"{component!r} is not one of {COMPONENTS}")
        state = self._state()
        pid = state["pids"][component]
        process.kill(pid)  # SIGKILL, no SIGTERM first: a crash, not a shutdown
        for child in [c for c in self._children if c.pid == pid]:
            child.wait()
            self._children.remove(child)
        killed = time.monotonic()
        time.sleep(down_s)
        self._start_component(component, flags.Ports(**state["ports"]), state, timeout)
        return time.monotonic() - killed

    def status(self) -> dict[str, Any]:
        state = self._state()
        pids: dict[str, int] = state.get("pids", {})
        return {
            "name": self.name,
            "up": self.is_up(),
            "run_dir": str(self.run_dir),
            "kubeconfig": str(self.kubeconfig),
            "components": {
                c: {
                    "pid": pid,
                    "alive": process.alive(pid),
                    "rss_mib": process.rss_kib(pid) // 1024,
                }
                for c, pid in pids.items()
            },
        }

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for component in COMPONENTS:
            log = self.layout.logs / f"{component}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {log}\n" + "\n".join(tail))
        return "\n".join(out)

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- internals ----------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.layout.state.read_text())
        except (OSError, ValueError):
            return {}
        return state

    def _api(self, state: dict[str, Any]) -> kubeapi.LocalApi:
        ca, (cert, key) = self.layout.pki / "ca.crt", self.layout.cert("admin")
        server = f"https://127.0.0.1:{state['ports']['apiserver']}"
        return kubeapi.LocalApi(server, ca, Path(cert), Path(key))

    def _prepare(self) -> flags.Ports:
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.layout.logs.mkdir(parents=True)
        pki.generate(self.layout.pki, flags.SERVICE_IP)
        ports = flags.Ports(*process.free_ports(6))
        server = f"https://127.0.0.1:{ports.apiserver}"
        ca = (self.layout.pki / "ca.crt").read_bytes()
        for user in ("admin", "controller-manager", "scheduler", "kwok"):
            cert, key = (Path(p).read_bytes() for p in self.layout.cert(user))
            config = kubeapi.kubeconfig(f"perennial-{self.name}", server, ca, cert, key)
            path = self.layout.kubeconfig(user)
            path.write_text(yaml.safe_dump(config))
            path.chmod(0o600)
        shutil.copyfile(STAGES_FILE, self.layout.kwok_config)
        return ports

    def _spawn(self, component: str, ports: flags.Ports, state: dict[str, Any]) -> int:
        argv = [
            *component_argv(component, self.bin_dir, ports, self.layout),
            *self._extra.get(component, ()),
        ]
        child = process.spawn(argv, self.layout.logs / f"{component}.log", tie_to_parent=self._tie)
        self._children.append(child)
        state["pids"][component] = child.pid
        self.layout.state.write_text(json.dumps(state, indent=2))  # so a failed start cleans up
        return child.pid

    def _start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(1.0, deadline - time.monotonic())

        ports = self._prepare()
        state: dict[str, Any] = {
            "ports": asdict(ports),
            "pids": {},
            "version": self.versions.kubernetes,
        }
        for component in COMPONENTS:
            if component == "kwok":  # it watches Logs objects from the start
                self._install_kwok_crds(self._api(state), left())
            self._start_component(component, ports, state, left())
        api = self._api(state)
        for shape in self.nodes:
            manifest = node_manifest(shape.name, cpu=shape.cpu, memory=shape.memory, gpu=shape.gpu)
            api.create("/api/v1/nodes", manifest)
        wait_until(lambda: self._nodes_ready(api), left(), f"{len(self.nodes)} nodes Ready")
        # The serviceaccount controller must be running before pods can be created.
        wait_until(
            lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            left(),
            "the default ServiceAccount",
        )

    def _install_kwok_crds(self, api: kubeapi.LocalApi, timeout: float) -> None:
        crd = yaml.safe_load(KWOK_LOGS_CRD.read_text())
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        api.create(path, crd)

        def established() -> bool:
            found = api.get(f"{path}/{crd['metadata']['name']}") or {}
            conditions = (found.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        wait_until(established, timeout, "kwok's Logs CRD established")

    def _start_component(
        self, component: str, ports: flags.Ports, state: dict[str, Any], timeout: float
    ) -> None:
        self._log(f"  starting {component}")
        pid = self._spawn(component, ports, state)
        ready = self._readiness(component, ports, state)
        wait_until(lambda: self._alive_or_fail(component, pid) and ready(), timeout, component)

    def _readiness(
        self, component: str, ports: flags.Ports, state: dict[str, Any]
    ) -> Callable[[], bool]:
        if component == "etcd":
            return lambda: kubeapi.http_ok(f"http://127.0.0.1:{ports.etcd_client}/health")
        if component == "kube-apiserver":
            return self._api(state).healthy
        port = {
            "kube-controller-manager": ports.controller_manager,
            "kube-scheduler": ports.scheduler,
            "kwok": None,
        }[component]
        if port is None:  # kwok serves HTTPS: it is the nodes' kubelet endpoint
            return lambda: kubeapi.http_ok(f"https://127.0.0.1:{ports.kwok}/healthz")
        return lambda: kubeapi.http_ok(f"https://127.0.0.1:{port}/healthz")

    def _alive_or_fail(self, component: str, pid: int) -> bool:
        if not process.alive(pid):
            raise ClusterError(f"{component} exited; see {self.layout.logs / (component + '.log')}")
        return True

    def _nodes_ready(self, api: kubeapi.LocalApi) -> bool:
        names = {n.name for n in self.nodes}
        items = (api.get("/api/v1/nodes") or {}).get("items", [])
        ready = {n["metadata"]["name"] for n in items if node_is_ready(n)}
        return names <= ready
