"""perennial-cluster: build, start, stop and inspect the local control plane.

perennial-cluster build          # Go build into the cache (no-op when cached)
eval "$(perennial-cluster up | tail -1)"
perennial-cluster status
perennial-cluster down
perennial-cluster gen            # regenerate gomod/ after editing hack/versions.env
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from perennial_hack.cluster import build, gomod, versions
from perennial_hack.cluster.control_plane import Cluster, ClusterError


def _log(message: str) -> None:
    # Progress goes to stderr so that stdout of `up` is just the export line.
    print(message, file=sys.stderr, flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="perennial-cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the binaries into the cache (no-op when cached)")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("gen", help="regenerate the wrapper go.mod files from hack/versions.env")
    for name, text in (
        ("up", "start the control plane"),
        ("down", "stop it"),
        ("status", "show components, pids and memory"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("--name", default="default", help="run folder name (default: default)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    pins = versions.load()
    if args.command == "build":
        build.build(pins, force=args.force)
        return 0
    if args.command == "gen":
        for module in gomod.wrapper_modules(pins):
            gomod.write_module(module)
        return 0
    cluster = Cluster(args.name, versions=pins, log=_log)
    if args.command == "up":
        try:
            cluster.start()
        except ClusterError as err:
            _log(f"error: {err}")
            return 1
        _log(f"kubectl: {cluster.bin_dir / 'kubectl'}")
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        return 0
    if args.command == "down":
        cluster.stop()
        return 0
    print(json.dumps(cluster.status(), indent=2))
    return 0 if cluster.is_up() else 3


if __name__ == "__main__":
    sys.exit(main())
