"""The node's pod network on the host: one Linux bridge with a /24 of its own.

The bridge is made here, before the kubelet starts, so its address can be the node IP
(the CNI bridge plugin then reuses it). Subnets are chosen under a lock from what the host
already routes, so two nodes on one machine (two test sessions) never share one.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import subprocess
from pathlib import Path

from perennial_hack.node.config import Network, bridge_name, free_subnet

LOCK = Path("/run/lock/perennial-node-network.lock")


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def used_subnets() -> list[ipaddress.IPv4Network]:
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all") or "[]")
    found = []
    for route in routes:
        dst = route.get("dst", "")
        if dst and dst != "default":
            try:
                found.append(ipaddress.IPv4Network(dst, strict=False))
            except ValueError:
                continue
    return found


def allocate() -> Network:
    """A new bridge with the gateway address of a free /24, up."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        subnet = free_subnet(used_subnets())
        network = Network(bridge_name(subnet), subnet)
        _ip("link", "add", "name", network.bridge, "type", "bridge")
        _ip("addr", "add", f"{network.gateway}/{subnet.prefixlen}", "dev", network.bridge)
        _ip("link", "set", network.bridge, "up")
    return network


def exists(bridge: str) -> bool:
    return subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode == 0


def delete(bridge: str) -> None:
    """The bridge and every veth still attached to it (their pod ends go with them)."""
    if not exists(bridge):
        return
    for link in json.loads(_ip("-j", "link", "show", "master", bridge) or "[]"):
        subprocess.run(["ip", "link", "del", link["ifname"]], capture_output=True)
    _ip("link", "del", bridge)


def route_service(bridge: str, rule: list[str]) -> None:
    """Let the bridge's packets reach 127.0.0.1 and add the DNAT rule (config)."""
    Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").write_text("1\n")
    done = subprocess.run(["iptables", "-A", *rule], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"iptables -A {' '.join(rule)}: {done.stderr.strip()}")


def unroute_service(rule: list[str]) -> None:
    subprocess.run(["iptables", "-D", *rule], capture_output=True)
