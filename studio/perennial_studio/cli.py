"""perennial-studio: the web dashboard. Reads the cluster by watches, serves HTML.

perennial-studio [--kubeconfig K] [--host 127.0.0.1] [--port 8080] [-n NS ...]
                 [--allow-actions] [--drift-min-samples 100] [--scrape-interval 15]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

import uvicorn

from perennial_studio.app import Settings, Studio, create_app
from perennial_studio.kube import Kube, load_configuration
from perennial_studio.reflector import Reflector
from perennial_studio.scrape import Scraper
from perennial_studio.sources import WATCHED
from perennial_studio.store import Store

log = logging.getLogger("perennial_studio")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="perennial-studio", description=__doc__.split("\n\n")[0])
    p.add_argument("--kubeconfig", help="default: $KUBECONFIG, else in-cluster credentials")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (in a pod: 0.0.0.0)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only these namespaces (repeat; default: all)",
    )
    p.add_argument(
        "--allow-actions",
        action="store_true",
        help="enable promote / rollback / suspend (needs the actions RBAC)",
    )
    p.add_argument(
        "--drift-min-samples",
        type=int,
        default=100,
        help="no PSI is shown below this many samples, for services without "
        "spec.monitoring.drift.minSamples (older objects) nor a RetrainPolicy drift trigger",
    )
    p.add_argument(
        "--scrape-interval",
        type=float,
        default=15.0,
        help="seconds between scrapes of serving pods' metrics (0: off)",
    )
    p.add_argument("--poll-ms", type=int, default=3000, help="browser refresh interval")
    p.add_argument("--max-events", type=int, default=5000, help="Events kept in memory")
    p.add_argument("--log-level", default="info")
    return p


def start_watches(
    kube: Kube, store: Store, namespaces: Sequence[str], stop: threading.Event
) -> list[threading.Thread]:
    threads = []
    for watched in WATCHED:
        scopes: list[str | None] = (
            list(namespaces) if namespaces and watched.resource.namespaced else [None]
        )
        store.watch_scopes(watched.resource.kind, scopes)
        for scope in scopes:
            threads.append(Reflector(kube, store, watched, scope, stop).start())
    return threads


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    kube = Kube(load_configuration(args.kubeconfig))
    store = Store(max_events=args.max_events)
    stop = threading.Event()
    start_watches(kube, store, args.namespace, stop)
    scraper = (
        Scraper(store.snapshot, interval=args.scrape_interval) if args.scrape_interval else None
    )
    if scraper:
        scraper.start(stop)
    settings = Settings(
        allow_actions=args.allow_actions, min_samples=args.drift_min_samples, poll_ms=args.poll_ms
    )
    app = create_app(Studio(store, kube, scraper, settings))
    log.info(
        "perennial-studio on http://%s:%d (%s)",
        args.host,
        args.port,
        "actions on" if args.allow_actions else "read-only",
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    try:
        server.run()
    finally:
        stop.set()
        kube.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
