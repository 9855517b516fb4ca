"""`perennial-operator`: kopf run with our handlers and settings, behind a Lease.

perennial-operator [--all-namespaces | -n NS ...] [--standalone]
                   [--lease-name NAME] [--lease-namespace NS] [--identity ID]
                   [--lease-duration S] [--renew-deadline S] [--retry-period S]
                   [--liveness http://0.0.0.0:8080/healthz] [--verbose]

Of several replicas only the holder of the Lease runs kopf (and so any handler); the others
wait for it. A holder that cannot renew within the renew deadline exits, before any other
replica may take the Lease, and its pod restarts as a standby (see docs/operator.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from pathlib import Path
from types import FrameType

import kopf

from perennial_operator.decide.leader import Timings
from perennial_operator.k8s.client import make_api_client
from perennial_operator.k8s.lease import LeaseElector
from perennial_operator.standby import StandbyHealth

# The exit code of a replica that lost the Lease: its pod restarts and campaigns again.
LOST_LEASE_EXIT = 3
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
log = logging.getLogger("perennial.leader")


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
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="no leader election: only for a single replica or local runs",
    )
    parser.add_argument("--lease-name", default="perennial-operator", help="the Lease's name")
    parser.add_argument(
        "--lease-namespace",
        default=None,
        help="the Lease's namespace (default: $POD_NAMESPACE, the pod's own, else default)",
    )
    parser.add_argument(
        "--identity",
        default=None,
        help="this replica's holder identity (default: $POD_NAME or the host name, plus a "
        "random suffix so a restarted replica is a new holder)",
    )
    defaults = Timings()
    parser.add_argument("--lease-duration", type=float, default=defaults.lease_duration)
    parser.add_argument("--renew-deadline", type=float, default=defaults.renew_deadline)
    parser.add_argument("--retry-period", type=float, default=defaults.retry_period)
    parser.add_argument(
        "--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    problems = timings(args).problems()
    if problems:
        parser.error("; ".join(problems))
    return args


def timings(args: argparse.Namespace) -> Timings:
    return Timings(args.lease_duration, args.renew_deadline, args.retry_period)


def lease_namespace(args: argparse.Namespace) -> str:
    if args.lease_namespace:
        return str(args.lease_namespace)
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    except OSError:
        return "default"


def identity(args: argparse.Namespace) -> str:
    if args.identity:
        return str(args.identity)
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


def run_kopf(args: argparse.Namespace, memo: kopf.Memo) -> None:
    memo.namespaces = list(args.namespace)  # for our own Job and Pod watches (handlers/watches.py)
    kopf.run(
        standalone=True,  # no kopf peering: the Lease decides who acts
        namespaces=args.namespace,
        clusterwide=not args.namespace,
        liveness_endpoint=args.liveness,
        memo=memo,
    )


def exit_now(reason: str) -> None:
    """Stop acting at once: no clean-up that could write, just the log line."""
    log.error("lost the lease (%s): exiting", reason)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(LOST_LEASE_EXIT)


def elected(args: argparse.Namespace) -> int:
    elector = LeaseElector(
        make_api_client(), lease_namespace(args), args.lease_name, identity(args), timings(args)
    )
    stop = threading.Event()

    def on_term(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    with StandbyHealth(args.liveness):  # the liveness probe passes while we wait
        held = elector.acquire(stop)
    signal.signal(signal.SIGTERM, previous)
    if not held:
        return 0

    # A stopped process (SIGSTOP, a frozen VM) may be resumed long after its deadline; the
    # handler runs in the main thread before kopf's loop gets control back.
    def on_cont(signum: int, _: FrameType | None) -> None:
        if not elector.holds():
            exit_now("resumed after the renew deadline")

    signal.signal(signal.SIGCONT, on_cont)
    keeper = threading.Thread(
        target=elector.keep, args=(stop, exit_now), name="lease-renewal", daemon=True
    )
    keeper.start()
    try:
        run_kopf(args, kopf.Memo(fence=elector.fence))
    finally:
        stop.set()
        keeper.join(timeout=elector.timings.retry_period * 2)
        elector.release()
    return 0


def configure_logging(*, verbose: bool, debug: bool) -> None:
    """kopf's logging, and two quieter loggers. kopf says "Handler 'x' succeeded." at INFO
    for every watch event a handler took: three lines per TrainingJob, 15,000 for a burst of
    5,000, and 3 % of the operator's busy CPU (issue 18; before the Job and Pod events left
    kopf for our own watches). Its per-object warnings and errors
    (a handler that failed, a retry) stay; --verbose or --debug bring the INFO lines back."""
    kopf.configure(verbose=verbose, debug=debug)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    quiet = not (verbose or debug)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING if quiet else logging.NOTSET)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(verbose=args.verbose, debug=args.debug)
    import perennial_operator.handlers  # noqa: F401  (registers the handlers)

    if args.standalone:
        run_kopf(args, kopf.Memo())
        return 0
    return elected(args)


if __name__ == "__main__":
    sys.exit(main())
