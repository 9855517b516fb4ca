"""Certificates and keys for one local control plane, made with the `openssl` CLI.

Every component gets its own client certificate so that RBAC sees the usual identities
(system:kube-controller-manager, system:kube-scheduler); admin and kwok are system:masters.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "3650"
FRONT_PROXY_CLIENT = "front-proxy-client"


@dataclass(frozen=True)
class CertSpec:
    name: str  # file stem: <name>.crt / <name>.key
    common_name: str
    organization: str = ""
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()

    @property
    def is_server(self) -> bool:
        return bool(self.dns_names or self.ip_addresses)


def cert_specs(service_ip: str) -> list[CertSpec]:
    return [
        CertSpec(
            "apiserver",
            "kube-apiserver",
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ip_addresses=("127.0.0.1", service_ip),
        ),
        CertSpec("admin", "perennial-admin", "system:masters"),
        CertSpec("kwok", "kwok-controller", "system:masters"),
        CertSpec("controller-manager", "system:kube-controller-manager"),
        CertSpec("scheduler", "system:kube-scheduler"),
        # The aggregation layer's client: its presence gives kube-apiserver a requestheader
        # CA, without which every component logs "missing content for CA bundle" forever.
        CertSpec("front-proxy-client", FRONT_PROXY_CLIENT),
        # kube-apiserver's client certificate towards kubelets (logs, exec, port-forward).
        CertSpec("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
    ]


def subject(spec: CertSpec) -> str:
    return f"/CN={spec.common_name}" + (f"/O={spec.organization}" if spec.organization else "")


def extensions(spec: CertSpec) -> list[str]:
    """`-addext` values: what a TLS server or client certificate needs, nothing more."""
    exts = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
    ]
    if spec.is_server:
        sans = [f"DNS:{d}" for d in spec.dns_names] + [f"IP:{ip}" for ip in spec.ip_addresses]
        exts += ["extendedKeyUsage=serverAuth", "subjectAltName=" + ",".join(sans)]
    else:
        exts.append("extendedKeyUsage=clientAuth")
    return exts


def ca_argv(pki: Path) -> list[str]:
    return [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", DAYS, "-subj", "/CN=perennial-local-ca",
        "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
    ]  # fmt: skip


def leaf_argv(pki: Path, spec: CertSpec) -> list[str]:
    argv = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", DAYS, "-subj", subject(spec),
        "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
        "-keyout", str(pki / f"{spec.name}.key"), "-out", str(pki / f"{spec.name}.crt"),
    ]  # fmt: skip
    for ext in extensions(spec):
        argv += ["-addext", ext]
    return argv


def service_account_argv(pki: Path) -> list[list[str]]:
    return [
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", str(pki / "sa.key")],
        ["openssl", "pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub")],
    ]  # fmt: skip


def generate(pki: Path, service_ip: str) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    commands = [ca_argv(pki), *(leaf_argv(pki, s) for s in cert_specs(service_ip))]
    for argv in commands + service_account_argv(pki):
        subprocess.run(argv, check=True, capture_output=True)
    for key in pki.glob("*.key"):
        key.chmod(0o600)
