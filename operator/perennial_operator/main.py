"""`perennial-operator`: kopf run with our handlers and settings.

perennial-operator [--all-namespaces | -n NS ...] [--standalone | --peering NAME]
                   [--liveness http://0.0.0.0:8080/healthz] [--verbose]
"""

from __future__ import annotations

import argparse
import logging
import random
import sys

import kopf


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="perennial-operator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch every namespace (the default when no -n is given)",
    )
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; globs allowed)",
    )
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--standalone",
        action="store_true",
        help="no peering: only for a single replica or local runs",
    )
    peering.add_argument(
        "--peering",
        default="perennial",
        help="peering name: of several replicas only one acts (default: perennial)",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority: the highest live replica acts, the others pause "
        "(default: random, so two replicas never tie; on a tie kopf pauses every peer)",
    )
    parser.add_argument(
        "--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--debug", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    kopf.configure(verbose=args.verbose, debug=args.debug)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    import perennial_operator.handlers  # noqa: F401  (registers the handlers)

    priority = args.priority
    if priority is None and not args.standalone:
        priority = random.SystemRandom().randint(1, 2**30)
    kopf.run(
        standalone=args.standalone,
        priority=priority,
        peering_name=None if args.standalone else args.peering,
        namespaces=args.namespace,
        clusterwide=not args.namespace,
        liveness_endpoint=args.liveness,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
