"""The local runtime's plan for a pod: volumes as folders, rewritten args and env, refusals."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from perennial_hack.images.dockerfile import ImageConfig
from perennial_hack.local_runtime.plan import (
    container_plan,
    cpu_count,
    http_probe,
    pod_plan,
    resolve_argv,
    runtime_args,
)
from perennial_hack.local_runtime.volumes import (
    Layout,
    VolumeError,
    config_files,
    downward_files,
    env_objects,
    make_sub_paths,
    materialise,
    path_map,
    read_env_objects,
    rewrite,
)
from perennial_operator.config import OperatorConfig
from perennial_operator.desired.placement import NO_POOL
from perennial_operator.desired.trainingjob import configmap, job

pytestmark = pytest.mark.unit

BIN = Path("/venv/bin")
IPS = ("127.0.0.7", "10.0.0.1")
PATHS = {"/mnt/pvc/art": "/s/pvc/ns/art", "/mnt/pvc": "/s/pvc/ns", "/etc/perennial": "/s/spec"}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("/mnt/pvc/art/models/x", "/s/pvc/ns/art/models/x"),
        ("/mnt/pvc/art", "/s/pvc/ns/art"),
        ("/mnt/pvc", "/s/pvc/ns"),
        ("/mnt/pvc/other/data.csv", "/s/pvc/ns/other/data.csv"),
        ("/mnt/pvcx/a", "/mnt/pvcx/a"),
        ("--output=/mnt/pvc/art/m", "--output=/s/pvc/ns/art/m"),
        ("-f", "-f"),
        ("relative/mnt/pvc", "relative/mnt/pvc"),
        ("/etc/perennial/trainingjob.yaml", "/s/spec/trainingjob.yaml"),
    ],
    ids=["inside", "exact", "parent", "sibling-claim", "prefix-only", "flag=", "flag",
         "relative", "configmap"],
)  # fmt: skip
def test_rewrite_replaces_a_leading_mount_path_only(value: str, expected: str) -> None:
    assert rewrite(value, PATHS) == expected


def test_a_root_mount_never_swallows_every_path() -> None:
    assert rewrite("/usr/bin/x", {"/": "/s/root"}) == "/usr/bin/x"


@pytest.mark.parametrize(
    "quantity, cores",
    [("500m", 1), ("1", 1), ("2", 2), ("1500m", 2), ("2.5", 3), (None, None), ("1Gi", None)],
)
def test_cpu_count_is_the_ceiling_of_a_quantity(quantity: str | None, cores: int | None) -> None:
    assert cpu_count(quantity) == cores


def test_runtime_args_stand_in_for_what_a_pod_provides() -> None:
    log = Path("/s/term/train")
    train = runtime_args(
        "perennial-train", ["-f", "x"], pod_ip="127.0.0.9", termination_log=log, cpu_limit="2"
    )
    assert train == ["-f", "x", "--termination-log", "/s/term/train"]
    serve = runtime_args(
        "perennial-serve",
        ["--model-dir", "/m", "--port", "8080"],
        pod_ip="127.0.0.9",
        termination_log=log,
        cpu_limit="500m",
    )
    assert serve[-4:] == ["--host", "127.0.0.9", "--workers", "1"]
    own = runtime_args(
        "perennial-serve",
        ["--host=0.0.0.0", "--workers", "3"],
        pod_ip="127.0.0.9",
        termination_log=log,
        cpu_limit="1",
    )
    assert own == ["--host=0.0.0.0", "--workers", "3"]


def training_pod() -> tuple[dict[str, Any], dict[str, Any]]:
    """A pod exactly as the Job controller makes it from the operator's training Job."""
    tj = {
        "apiVersion": "perennial.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "bc", "namespace": "ns", "uid": "0123456789abcdef"},
        "spec": {
            "model": "bc",
            "task": "classification",
            "algorithm": "random_forest",
            "dataset": {"uri": "pvc://data/bc.csv", "target": "target"},
        },
    }
    config = OperatorConfig(artifact_pvc="art")
    template = job(tj, config, NO_POOL)["spec"]["template"]
    pod = {
        "metadata": {
            **template["metadata"],
            "name": "bc-train-x",
            "namespace": "ns",
            "uid": "pod-uid",
        },
        "spec": {**template["spec"], "nodeName": "kwok-cpu-0"},
    }
    return pod, configmap(tj)


def test_a_training_pod_becomes_local_folders_and_rewritten_commands(tmp_path: Path) -> None:
    pod, cm = training_pod()
    layout = Layout(tmp_path)
    folders = materialise(pod, layout, lambda kind, ns, name: cm if kind == "ConfigMap" else None)
    spec_file = folders["spec"] / "trainingjob.yaml"
    assert "pvc://data/bc.csv" in spec_file.read_text()
    assert folders["pvc-0"] == tmp_path / "pvc/ns/art" and folders["pvc-0"].is_dir()
    assert folders["pvc-1"] == tmp_path / "pvc/ns/data"
    spec = pod["spec"]
    make_sub_paths(spec, folders)  # the job's writable output folder, made as the kubelet does
    assert (tmp_path / "pvc/ns/art/models/bc/ns-bc-01234567").is_dir()
    paths = {
        c["name"]: path_map(spec, c, folders) for c in spec["initContainers"] + spec["containers"]
    }
    plan = pod_plan(pod, paths, ips=IPS, bin_dir=BIN, pod_dir=layout.pod("pod-uid"))
    (validate,), (train,) = plan.init, plan.main
    assert plan.restart_policy == "Never"
    assert validate.argv[:4] == ("/venv/bin/perennial-train", "validate", "-f", str(spec_file))
    term_log = tmp_path / "pods/pod-uid/termination/validate"
    assert validate.argv[-2:] == ("--termination-log", str(term_log))
    output = train.argv[train.argv.index("--output") + 1]
    assert output == str(tmp_path / "pvc/ns/art/models/bc/ns-bc-01234567")
    assert train.env["PERENNIAL_PVC_ROOT"] == str(tmp_path / "pvc/ns")
    assert train.env["HOME"] == str(folders["tmp"])
    assert train.env["PATH"].startswith("/usr/local/bin")
    assert train.refused is None and train.probe is None


def test_anything_but_our_runtime_commands_is_refused(tmp_path: Path) -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {}}
    for container, word in [
        ({"name": "c", "command": ["python", "-c", "print(1)"]}, "'python'"),
        ({"name": "c", "command": ["/bin/sh"], "args": ["perennial-serve"]}, "'/bin/sh'"),
    ]:
        plan = container_plan(pod, container, {}, ips=IPS, bin_dir=BIN, pod_dir=tmp_path)
        assert plan.argv == () and plan.refused and word in plan.refused
    empty = ImageConfig()
    plan = container_plan(
        pod, {"name": "c"}, {}, ips=IPS, bin_dir=BIN, pod_dir=tmp_path, image=empty
    )
    assert plan.argv == () and plan.refused and "no command" in plan.refused


IMAGE = ImageConfig(entrypoint=("perennial-train",), cmd=("--help",))


@pytest.mark.parametrize(
    ("command", "args", "argv"),
    [
        ([], [], ["perennial-train", "--help"]),  # the image's ENTRYPOINT + CMD
        ([], ["-f", "x"], ["perennial-train", "-f", "x"]),  # args replace CMD only
        (["perennial-serve"], [], ["perennial-serve"]),  # command drops ENTRYPOINT and CMD
        (["perennial-serve"], ["--port", "1"], ["perennial-serve", "--port", "1"]),
        # The bug this rule catches: the program named in args runs as an argument.
        ([], ["perennial-train", "-f", "x"], ["perennial-train", "perennial-train", "-f", "x"]),
    ],
    ids=["image-defaults", "args-only", "command-only", "command-and-args", "program-in-args"],
)
def test_command_and_args_resolve_against_the_image_as_a_kubelet_does(
    command: list[str], args: list[str], argv: list[str]
) -> None:
    assert resolve_argv(command, args, IMAGE) == argv


def test_a_program_named_in_args_runs_as_an_argument_of_the_entrypoint(tmp_path: Path) -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {}}
    container = {"name": "c", "args": ["perennial-serve", "--port", "1"]}
    plan = container_plan(pod, container, {}, ips=IPS, bin_dir=BIN, pod_dir=tmp_path)
    assert plan.argv[:3] == ("/venv/bin/perennial-train", "perennial-serve", "--port")


def test_a_container_starts_with_the_runtime_images_env_and_its_own_entries_win(
    tmp_path: Path,
) -> None:
    # As containerd starts a container: the image's ENV (trainer_image/Dockerfile), then the
    # container's env over it. Only PATH is the host's (the image's names its own venv).
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {}}
    env = [{"name": "HOME", "value": "/mnt/pvc/art"}]
    container = {"name": "c", "command": ["perennial-serve"], "env": env}
    plan = container_plan(pod, container, {}, ips=IPS, bin_dir=BIN, pod_dir=tmp_path)
    assert plan.env["PYTHONUNBUFFERED"] == "1"  # the image's: logs reach `kubectl logs` at once
    assert plan.env["LANG"] == "C.UTF-8"
    assert plan.env["PERENNIAL_PVC_ROOT"] == "/mnt/pvc"  # no claim mounted: left as is
    assert plan.env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert plan.env["HOSTNAME"] == "p"
    assert plan.env["HOME"] == "/mnt/pvc/art"  # the container's entry, over the image's /tmp
    bare = container_plan(pod, {**container, "env": []}, {}, ips=IPS, bin_dir=BIN, pod_dir=tmp_path)
    assert bare.env["HOME"] == "/tmp"


def test_env_from_the_downward_api_and_refusal_of_other_sources(tmp_path: Path) -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "a"}},
        "spec": {"nodeName": "n1"},
    }
    env = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ]
    container = {"name": "c", "command": ["perennial-serve"], "env": env}
    plan = container_plan(pod, container, {}, ips=IPS, bin_dir=BIN, pod_dir=tmp_path)
    assert (plan.env["POD_IP"], plan.env["NS"], plan.env["APP"]) == ("127.0.0.7", "ns", "a")
    resource = {"name": "R", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
    refused = container_plan(
        pod, {**container, "env": [resource]}, {}, ips=IPS, bin_dir=BIN, pod_dir=tmp_path
    )
    assert refused.refused and "env R" in refused.refused


def test_env_from_secrets_and_config_maps_as_a_kubelet_fills_it(tmp_path: Path) -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "command": ["perennial-train"],
                    "envFrom": [
                        {"secretRef": {"name": "s3"}},
                        {"configMapRef": {"name": "cfg", "optional": True}, "prefix": "X_"},
                        {"secretRef": {"name": "gone", "optional": True}},
                    ],
                    "env": [
                        {"name": "AWS_ACCESS_KEY_ID", "value": "explicit"},
                        {"name": "ONE", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "k"}}},
                    ],
                }
            ]
        },
    }
    secret = {
        "data": {
            "AWS_ACCESS_KEY_ID": base64.b64encode(b"from-secret").decode(),
            "k": base64.b64encode(b"v").decode(),
        }
    }
    stored = {("Secret", "s3"): secret, ("ConfigMap", "cfg"): {"data": {"A": "1"}}}
    assert env_objects(pod) == {
        ("Secret", "s3", False),
        ("ConfigMap", "cfg", True),
        ("Secret", "gone", True),
    }
    objects = read_env_objects(pod, lambda kind, ns, name: stored.get((kind, name)))
    plan = container_plan(
        pod,
        pod["spec"]["containers"][0],
        {},
        ips=IPS,
        bin_dir=BIN,
        pod_dir=tmp_path,
        objects=objects,
    )
    assert plan.refused is None
    assert plan.env["AWS_ACCESS_KEY_ID"] == "explicit"  # env wins over envFrom
    assert (plan.env["k"], plan.env["ONE"], plan.env["X_A"]) == ("v", "v", "1")
    with pytest.raises(VolumeError, match="Secret ns/s3 does not exist"):
        read_env_objects(pod, lambda kind, ns, name: None)  # required: the pod waits


def test_readiness_probe_goes_to_the_pod_address_with_named_ports() -> None:
    container = {
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 2,
            "failureThreshold": 1,
        },
    }
    probe = http_probe(container, "127.0.0.7")
    assert probe is not None
    assert probe.url == "http://127.0.0.7:8080/v2/health/ready"
    assert (probe.period_s, probe.failure_threshold, probe.initial_delay_s) == (2.0, 1, 0.0)
    assert http_probe({"readinessProbe": {"exec": {"command": ["x"]}}}, "127.0.0.7") is None


def test_config_files_follow_items_and_decode_secrets() -> None:
    text = config_files({"a": "x", "b": "y"}, {"bin": base64.b64encode(b"\0").decode()}, None)
    assert text == {"a": b"x", "b": b"y", "bin": b"\0"}
    chosen = config_files({"a": "x", "b": "y"}, None, [{"key": "a", "path": "sub/a.txt"}])
    assert chosen == {"sub/a.txt": b"x"}
    secret = config_files({"k": base64.b64encode(b"s3cret").decode()}, None, None, base64_data=True)
    assert secret == {"k": b"s3cret"}
    with pytest.raises(VolumeError, match="'z'"):
        config_files({"a": "x"}, None, [{"key": "z", "path": "z"}])


def test_missing_objects_and_unsupported_volumes_are_named(tmp_path: Path) -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"volumes": [{"name": "v", "configMap": {"name": "nope"}}]},
    }
    with pytest.raises(VolumeError, match="ConfigMap ns/nope does not exist"):
        materialise(pod, Layout(tmp_path), lambda *_: None)
    pod["spec"]["volumes"] = [{"name": "v", "configMap": {"name": "nope", "optional": True}}]
    assert materialise(pod, Layout(tmp_path), lambda *_: None)["v"].is_dir()
    pod["spec"]["volumes"] = [{"name": "h", "hostPath": {"path": "/"}}]
    with pytest.raises(VolumeError, match="hostPath is not supported"):
        materialise(pod, Layout(tmp_path), lambda *_: None)


def test_a_downward_api_volume_is_written_as_the_kubelet_writes_it() -> None:
    pod = {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u",
            "labels": {"b": "2", "a": "1"},
            "annotations": {"note": 'say "hi"\nthen go'},
        }
    }

    def item(path: str, field: str) -> dict[str, Any]:
        return {"path": path, "fieldRef": {"fieldPath": field}}

    source = {
        "items": [
            item("name", "metadata.name"),
            item("note", "metadata.annotations['note']"),
            item("missing", "metadata.labels['nope']"),
            item("labels", "metadata.labels"),
            item("sub/annotations", "metadata.annotations"),
        ]
    }
    assert downward_files(pod, source) == {
        "name": b"p",
        "note": b'say "hi"\nthen go',  # one annotation: its value, as it is
        "missing": b"",  # the kubelet writes an absent key as an empty file
        "labels": b'a="1"\nb="2"',  # a whole map: key="value" lines, sorted, quoted
        "sub/annotations": b'note="say \\"hi\\"\\nthen go"',
    }
    with pytest.raises(VolumeError, match="not valid in a volume"):
        downward_files(pod, {"items": [item("ip", "status.podIP")]})
    resource = {"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu"}}
    with pytest.raises(VolumeError, match="only fieldRef"):
        downward_files(pod, {"items": [resource]})


def test_a_projected_volume_carries_its_downward_api_files_too(tmp_path: Path) -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
        "spec": {
            "volumes": [
                {
                    "name": "v",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "cm"}},
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "ns",
                                            "fieldRef": {"fieldPath": "metadata.namespace"},
                                        },
                                        {
                                            "path": "app",
                                            "fieldRef": {"fieldPath": "metadata.labels['app']"},
                                        },
                                    ]
                                }
                            },
                        ]
                    },
                }
            ]
        },
    }
    cm = {"data": {"a.txt": "from the ConfigMap"}}
    folder = materialise(
        pod, Layout(tmp_path), lambda kind, *_: cm if kind == "ConfigMap" else None
    )["v"]
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "app", "ns"]
    assert (folder / "a.txt").read_text() == "from the ConfigMap"
    assert (folder / "ns").read_text() == "ns" and (folder / "app").read_text() == "x"
