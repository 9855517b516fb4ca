"""The command line of the local node (see __main__.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from perennial_hack.cluster import versions
from perennial_hack.cluster.control_plane import Cluster
from perennial_hack.images.build import records
from perennial_hack.node import build
from perennial_hack.node.node import LocalNode, NodeError


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perennial_hack.node")
    p.add_argument("command", choices=("build", "gen", "up", "down"))
    p.add_argument("--name", default="default", help="the local cluster (default: default)")
    p.add_argument("--force", action="store_true", help="build: rebuild even if cached")
    args = p.parse_args(argv)
    pins = versions.load()
    if args.command == "build":
        build.build(pins, force=args.force)
        return 0
    if args.command == "gen":
        build.write_module(pins)
        return 0
    cluster = Cluster(args.name, versions=pins, log=_log)
    images = [Path(r.archive) for r in records().values()]
    node = LocalNode(cluster, images=images, log=_log)
    if args.command == "down":
        node.stop()
        return 0
    if not cluster.is_up():
        _log(f"error: cluster {args.name!r} is not running: `make cluster-up` first")
        return 1
    try:
        node.start()
    except NodeError as err:
        _log(f"error: {err}")
        return 1
    return 0
