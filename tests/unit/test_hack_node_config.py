"""The real node's configuration: addresses, containerd, CNI and kubelet settings, and the
kubelet build pin. Pure; the node itself runs in the e2e tests."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import yaml

from perennial_hack.cluster.versions import Versions, load
from perennial_hack.node import build, config
from perennial_hack.node.node import mounts_under

pytestmark = pytest.mark.unit

LAYOUT = config.Layout(Path("/r/node"))
NET = config.Network("pn-10-90-3", ipaddress.IPv4Network("10.90.3.0/24"))


def test_a_free_subnet_overlaps_no_route_of_the_host():
    used = [ipaddress.IPv4Network(n) for n in ("10.90.0.0/24", "10.90.1.0/25", "0.0.0.0/0")]
    assert config.free_subnet(used[:2]) == ipaddress.IPv4Network("10.90.2.0/24")
    with pytest.raises(RuntimeError, match="no free /24"):
        config.free_subnet(used)  # a default route would overlap everything
    assert config.free_subnet([ipaddress.IPv4Network("192.0.2.0/24")]).overlaps(config.POD_SUPERNET)


def test_the_bridge_is_named_after_its_subnet_and_fits_an_interface_name():
    name = config.bridge_name(ipaddress.IPv4Network("10.90.255.0/24"))
    assert name == "pn-10-90-255" and len(name) <= 15
    assert NET.gateway == "10.90.3.1"


def test_containerd_keeps_everything_under_the_node_folder():
    text = config.containerd_config(LAYOUT, Path("/usr/lib/cni"))
    assert f'root = "{LAYOUT.containerd_root}"' in text
    assert f'address = "{LAYOUT.socket}"' in text
    assert f'conf_dir = "{LAYOUT.cni_conf_dir}"' in text
    assert 'bin_dir = "/usr/lib/cni"' in text
    assert f'sandbox_image = "{config.PAUSE_IMAGE}"' in text
    # No CAP_SYS_RESOURCE here; no systemd either.
    assert "restrict_oom_score_adj = true" in text and "SystemdCgroup = false" in text
    assert "netns_mounts_under_state_dir = true" in text


def test_the_cni_network_is_a_bridge_with_its_own_range_and_no_masquerade():
    conf = config.cni_config("perennial-x", NET, LAYOUT.root / "ipam", "10.96.0.0/16")
    (bridge,) = conf["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == NET.bridge
    assert bridge["ipMasq"] is False and bridge["isGateway"] is True
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.90.3.0/24", "gateway": "10.90.3.1"}]]
    json.dumps(conf)


def test_pods_route_the_service_range_through_the_bridge_where_the_host_dnats_it():
    # isGateway alone gives a pod no route beyond its /24: "Network is unreachable".
    conf = config.cni_config("perennial-x", NET, LAYOUT.root / "ipam", "10.96.0.0/16")
    (bridge,) = conf["plugins"]
    assert bridge["ipam"]["routes"] == [{"dst": "10.96.0.0/16", "gw": NET.gateway}]
    assert not bridge.get("isDefaultGateway")  # nothing beyond the host is reachable
    rule = config.apiserver_nat_rule(NET, "10.96.0.1", 6443)
    assert ipaddress.IPv4Address("10.96.0.1") in ipaddress.IPv4Network("10.96.0.0/16")
    assert rule[rule.index("-i") + 1] == NET.bridge
    assert rule[rule.index("--to-destination") + 1] == "127.0.0.1:6443"


def test_the_kubelet_runs_on_cgroup_v1_without_systemd_and_keeps_its_images():
    kc = config.kubelet_config(LAYOUT, NET, config.KubeletPorts(20250, 20248), Path("/ca.crt"))
    assert kc["kind"] == "KubeletConfiguration"
    assert (kc["cgroupDriver"], kc["cgroupsPerQOS"], kc["enforceNodeAllocatable"]) == (
        "cgroupfs",
        False,
        [],
    )
    assert kc["failCgroupV1"] is False
    assert kc["imageGCHighThresholdPercent"] == 100  # nothing can pull a collected image back
    assert set(kc["evictionHard"].values()) == {"0%"}
    assert kc["authentication"]["anonymous"]["enabled"] is False
    assert kc["address"] == NET.gateway and kc["readOnlyPort"] == 0
    assert kc["containerRuntimeEndpoint"] == f"unix://{LAYOUT.socket}"
    assert kc["registerWithTaints"] == [config.NODE_TAINT]
    yaml.safe_dump(kc)
    argv = config.kubelet_argv(Path("/b/kubelet"), LAYOUT, "n1", NET.gateway)
    assert "--node-ip=10.90.3.1" in argv and "--hostname-override=n1" in argv
    assert "--node-labels=perennial.dev/node=real" in argv


def test_namespaces_opt_in_with_a_selector_and_a_toleration_matching_the_node():
    selector = config.NAMESPACE_ANNOTATIONS["scheduler.alpha.kubernetes.io/node-selector"]
    assert selector == "=".join(config.NODE_LABEL)
    (toleration,) = json.loads(
        config.NAMESPACE_ANNOTATIONS["scheduler.alpha.kubernetes.io/defaultTolerations"]
    )
    taint = config.NODE_TAINT
    assert (toleration["key"], toleration["value"], toleration["effect"]) == (
        taint["key"],
        taint["value"],
        taint["effect"],
    )
    assert config.node_subject("n1") == ("system:node:n1", "system:nodes")


def test_mounts_are_found_below_the_node_folder_deepest_first():
    info = "\n".join(
        [
            "36 1 8:1 / / rw - ext4 /dev/vda rw",
            "50 36 8:1 /r/node/kubelet /r/node/kubelet rw - ext4 /dev/vda rw",
            "51 50 0:5 / /r/node/kubelet/pods/x/volumes/tmp rw - tmpfs tmpfs rw",
            "52 36 0:6 / /r/node-other rw - tmpfs tmpfs rw",
        ]
    )
    assert mounts_under(Path("/r/node"), info) == [
        "/r/node/kubelet/pods/x/volumes/tmp",
        "/r/node/kubelet",
    ]


def test_the_committed_kubelet_module_builds_the_control_planes_release():
    assert build.kubelet_pin_mismatch(build.KUBELET_MODULE, load()) is None
    bumped = Versions(kubernetes="1.99.0", etcd="3.7.0", kwok="0.8.0")
    assert "1.99.0" in (build.kubelet_pin_mismatch(build.KUBELET_MODULE, bumped) or "")


def test_the_provisioner_makes_a_bound_host_path_volume_for_a_pending_claim_of_its_class():
    from perennial_hack.node import provisioner

    pvc = {
        "metadata": {"name": "perennial-artifacts", "namespace": "ml", "uid": "u-1"},
        "spec": {
            "storageClassName": "perennial-local",
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "10Gi"}},
        },
        "status": {"phase": "Pending"},
    }
    assert provisioner.wants_volume(pvc)
    for other in ({"storageClassName": "standard"}, {"volumeName": "pv-1"}):
        assert not provisioner.wants_volume({**pvc, "spec": {**pvc["spec"], **other}})
    assert not provisioner.wants_volume({**pvc, "status": {"phase": "Bound"}})
    pv = provisioner.volume_for(pvc, Path("/v/ml/perennial-artifacts"))
    assert pv["metadata"]["name"] == "pvc-u-1"
    assert pv["spec"]["claimRef"] == {
        "namespace": "ml",
        "name": "perennial-artifacts",
        "uid": "u-1",
    }
    assert pv["spec"]["hostPath"]["path"] == "/v/ml/perennial-artifacts"
    assert pv["spec"]["capacity"] == {"storage": "10Gi"}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    annotations = provisioner.storage_class()["metadata"]["annotations"]
    assert annotations["storageclass.kubernetes.io/is-default-class"] == "true"
