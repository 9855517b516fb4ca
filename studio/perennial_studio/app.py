"""The ASGI app: one route per page, each rendering from one Snapshot of the Store.

Pages answer conditional requests: the ETag is made of the revisions of the kinds the page
reads, so the browser's poll for a page that did not change costs a 304 and no render.
With the `X-Studio-Fragment: main` header only the page's <main> is rendered (what the
live-update script swaps in).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from jinja2 import Environment
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from perennial_studio import actions, facts, urls
from perennial_studio.kube import ApiError, Kube
from perennial_studio.render import environment
from perennial_studio.scrape import Scraper
from perennial_studio.store import Store
from perennial_studio.timeline import timeline
from perennial_studio.views.compare import compare_page
from perennial_studio.views.computepool import pools_page
from perennial_studio.views.inferenceservice import (
    drift_chart,
    last_point,
    request_charts,
    service_page,
)
from perennial_studio.views.model import compare_link, metric_chart, model_page
from perennial_studio.views.overview import overview
from perennial_studio.views.retrainpolicy import policy_page
from perennial_studio.views.trainingjob import running, trainingjob_page, trainingjob_rows

log = logging.getLogger("perennial_studio")
CUSTOM = ("TrainingJob", "ModelVersion", "InferenceService", "RetrainPolicy")
SECURITY_HEADERS = {
    # Everything ships with the package: nothing from elsewhere may load or run.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
LOG_TTL_S = 5.0


@dataclass
class Settings:
    allow_actions: bool = False
    min_samples: int = 100
    poll_ms: int = 3000
    log_lines: int = 60


@dataclass
class Studio:
    store: Store
    kube: Kube | None
    scraper: Scraper | None
    settings: Settings
    env: Environment = field(default_factory=environment)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    _logs: dict[tuple[str, str, str], tuple[float, str]] = field(default_factory=dict)
    _logs_lock: threading.Lock = field(default_factory=threading.Lock)

    def logs(self, namespace: str, pod: str, container: str) -> str:
        """The tail of a container's log through the API (pods/log), cached a few seconds."""
        key = (namespace, pod, container)
        with self._logs_lock:
            cached = self._logs.get(key)
            if cached and time.monotonic() - cached[0] < LOG_TTL_S:
                return cached[1]
        if self.kube is None:
            return "(no API connection)"
        try:
            text = self.kube.text(
                f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                {"container": container, "tailLines": self.settings.log_lines, "limitBytes": 65536},
            )
        except (ApiError, OSError, Exception) as exc:  # noqa: BLE001 - any failure is shown
            text = f"(logs unavailable: {exc})"
        with self._logs_lock:
            self._logs[key] = (time.monotonic(), text)
            if len(self._logs) > 256:
                self._logs.pop(next(iter(self._logs)))
        return text


def _etag(parts: Sequence[Any]) -> str:
    return 'W/"' + hashlib.sha1(repr(parts).encode()).hexdigest()[:20] + '"'


class Pages:
    def __init__(self, studio: Studio) -> None:
        self.s = studio

    def render(
        self,
        request: Request,
        template: str,
        kinds: Sequence[str],
        build: Callable[[], dict[str, Any] | None],
        extra: Sequence[Any] = (),
    ) -> Response:
        etag = _etag(
            (
                template,
                str(request.url),
                self.s.store.revision(kinds),
                *extra,
                self.s.settings.allow_actions,
            )
        )
        headers = {**SECURITY_HEADERS, "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        started = time.perf_counter()
        context = build()
        if context is None:
            return HTMLResponse(self._not_found(request), status_code=404, headers=headers)
        html = self.s.env.get_template(template).render(**self._common(request), **context)
        headers["Server-Timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
        return HTMLResponse(html, headers=headers)

    def _common(self, request: Request) -> dict[str, Any]:
        snap = self.s.store.snapshot()
        return {
            "fragment": request.headers.get("x-studio-fragment") == "main",
            "synced": snap.synced,
            "errors": snap.errors(),
            "settings": self.s.settings,
            "token": self.s.token,
            "notice": request.query_params.get("notice"),
            "failure": request.query_params.get("failure"),
            "path": request.url.path,
        }

    def _not_found(self, request: Request) -> str:
        return self.s.env.get_template("notfound.html").render(
            **self._common(request), what=request.url.path
        )

    # --- pages ------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        ns = request.query_params.get("namespace") or None
        snap = self.s.store.snapshot()
        return self.render(
            request,
            "overview.html",
            (*CUSTOM, "Event"),
            lambda: {"page": overview(snap, ns, self.s.settings.min_samples)},
        )

    def trainingjobs(self, request: Request) -> Response:
        ns = request.query_params.get("namespace") or None
        limit = 2000 if request.query_params.get("all") else 200
        snap = self.s.store.snapshot()

        def build() -> dict[str, Any]:
            jobs, hidden = trainingjob_rows(snap, ns, limit)
            return {"jobs": jobs, "hidden": hidden, "namespace": ns}

        return self.render(request, "trainingjobs.html", ("TrainingJob",), build)

    def model(self, request: Request) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["model"]
        snap = self.s.store.snapshot()

        def build() -> dict[str, Any] | None:
            page = model_page(snap, ns, name)
            if page is None:
                return None
            return {
                "page": page,
                "compare": compare_link(page),
                "metric_chart": metric_chart(page),
                "timeline": timeline(snap, namespace=ns, model=name, limit=50),
            }

        return self.render(request, "model.html", (*CUSTOM, "Event"), build)

    def compare(self, request: Request) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["model"]
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        snap = self.s.store.snapshot()

        def build() -> dict[str, Any] | None:
            page = compare_page(snap, ns, name, a, b)
            return None if page is None else {"page": page}

        return self.render(request, "compare.html", ("TrainingJob", "ModelVersion", "Pod"), build)

    def trainingjob(self, request: Request) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["name"]
        snap = self.s.store.snapshot()
        tj = snap.get("TrainingJob", ns, name)
        busy = tj is not None and facts.status(tj).get("phase") not in ("Succeeded", "Failed")

        def build() -> dict[str, Any] | None:
            page = trainingjob_page(snap, ns, name)
            if page is None:
                return None
            pod = page.running_pod
            logs = None
            if pod is not None:
                container = (
                    "train"
                    if any(
                        "running" in c or "terminated" in c
                        for c in facts.status(pod).get("containerStatuses") or []
                    )
                    else "validate"
                )
                logs = (container, self.s.logs(ns, facts.name(pod), container))
            return {"page": page, "logs": logs, "running": running(page)}

        # While it runs, its logs change without any object changing: a new ETag every 5 s.
        extra = (int(time.time() / LOG_TTL_S),) if busy else ()
        kinds = ("TrainingJob", "Pod", "Job", "Event", "ModelVersion")
        return self.render(request, "trainingjob.html", kinds, build, extra)

    def inferenceservice(self, request: Request) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["name"]
        snap = self.s.store.snapshot()
        scraper = self.s.scraper
        series = scraper.get(ns, name) if scraper else None

        def build() -> dict[str, Any] | None:
            page = service_page(snap, ns, name, self.s.settings.min_samples, series)
            if page is None:
                return None
            return {
                "page": page,
                "rollback": self._rollback_preview(snap, page.obj),
                "charts": request_charts(series, time.time()),
                "drift_chart": drift_chart(page),
                "last": last_point(series),
            }

        kinds = ("InferenceService", "ModelVersion", "Pod", "Deployment", "Event", "RetrainPolicy")
        extra = (scraper.revision if scraper else 0,)
        return self.render(request, "inferenceservice.html", kinds, build, extra)

    def _rollback_preview(self, snap: Any, isvc: dict[str, Any]) -> dict[str, str]:
        if not self.s.settings.allow_actions:
            return {}
        try:
            plan = actions.rollback_plan(isvc, *self._rollback_inputs(snap, isvc))
        except actions.Refused as refused:
            return {"refused": str(refused)}
        return {"summary": plan.summary}

    @staticmethod
    def _rollback_inputs(snap: Any, isvc: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        ns, model = facts.namespace(isvc), facts.model_of("InferenceService", isvc)
        versions = [
            mv
            for mv in snap.items("ModelVersion")
            if facts.namespace(mv) == ns and facts.model_of("ModelVersion", mv) == model
        ]
        events = [e for mv in versions for e in snap.events_for("ModelVersion", ns, facts.name(mv))]
        return versions, events

    def retrainpolicy(self, request: Request) -> Response:
        ns, name = request.path_params["namespace"], request.path_params["name"]
        snap = self.s.store.snapshot()

        def build() -> dict[str, Any] | None:
            page = policy_page(snap, ns, name, time.time())
            return None if page is None else {"page": page}

        kinds = ("RetrainPolicy", "TrainingJob", "InferenceService", "ModelVersion", "Event")
        return self.render(request, "retrainpolicy.html", kinds, build, (int(time.time() / 30),))

    def computepools(self, request: Request) -> Response:
        snap = self.s.store.snapshot()
        return self.render(
            request,
            "computepools.html",
            ("ComputePool", "Node", "Pod", "Event"),
            lambda: {"pools": pools_page(snap)},
        )

    # --- health -------------------------------------------------------------------------------

    def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    def readyz(self, request: Request) -> Response:
        snap = self.s.store.snapshot()
        body = {"synced": snap.synced, "errors": snap.errors(), "objects": self.s.store.counts()}
        return JSONResponse(body, status_code=200 if snap.synced else 503)

    # --- actions --------------------------------------------------------------------------------

    async def action(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        back = form.get("back") or "/"
        if not urlsplit(back).path.startswith("/") or urlsplit(back).netloc:
            back = "/"
        problem = self._refuse(request, form)
        if problem:
            return PlainTextResponse(problem, status_code=403, headers=SECURITY_HEADERS)
        try:
            plan = self._plan(request.path_params["action"], form)
            assert self.s.kube is not None
            await run_in_threadpool(actions.apply, self.s.kube, plan, _actor(request))
        except actions.Refused as refused:
            return RedirectResponse(_with(back, failure=str(refused)), status_code=303)
        except ApiError as err:
            return RedirectResponse(
                _with(back, failure=f"the API server refused: {err}"), status_code=303
            )
        log.info("action %s: %s (%s)", request.path_params["action"], plan.summary, _actor(request))
        return RedirectResponse(_with(back, notice=f"done: {plan.summary}"), status_code=303)

    def _refuse(self, request: Request, form: dict[str, str]) -> str | None:
        if not self.s.settings.allow_actions:
            return "actions are off: start perennial-studio with --allow-actions"
        if not secrets.compare_digest(form.get("token", ""), self.s.token):
            return "stale or missing form token: reload the page and try again"
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return "cross-site request refused"
        if self.s.kube is None:
            return "no connection to the API server"
        return None

    def _plan(self, action: str, form: dict[str, str]) -> actions.Plan:
        snap = self.s.store.snapshot()
        ns, name = form.get("namespace", ""), form.get("name", "")
        kind = {
            "promote": "ModelVersion",
            "rollback": "InferenceService",
            "suspend": "RetrainPolicy",
            "resume": "RetrainPolicy",
        }.get(action)
        if kind is None:
            raise actions.Refused(f"unknown action {action!r}")
        obj = snap.get(kind, ns, name)
        if obj is None:
            raise actions.Refused(f"{kind} {ns}/{name} not found")
        if action == "promote":
            return actions.promote_plan(obj, form.get("stage", ""))
        if action == "rollback":
            return actions.rollback_plan(obj, *self._rollback_inputs(snap, obj))
        return actions.suspend_plan(obj, action == "suspend")


def _with(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items() if k not in ("notice", "failure")}
    return f"{parts.path}?{urlencode({**query, **params})}" + (
        f"#{parts.fragment}" if parts.fragment else ""
    )


def _actor(request: Request) -> str:
    """Who asked, as far as the Studio can tell: the client address, and the user an
    authenticating proxy in front of it reports (not verified by the Studio)."""
    client = request.client.host if request.client else "unknown"
    user = request.headers.get("x-forwarded-user") or request.headers.get("x-auth-request-user")
    return f"client {client}" + (f", user {user[:64]!r} per proxy header" if user else "")


def create_app(studio: Studio) -> Starlette:
    pages = Pages(studio)
    routes = [
        Route("/", pages.overview),
        Route("/trainingjobs", pages.trainingjobs),
        Route("/computepools", pages.computepools),
        Route("/ns/{namespace}/models/{model}", pages.model),
        Route("/ns/{namespace}/models/{model}/compare", pages.compare),
        Route("/ns/{namespace}/trainingjobs/{name}", pages.trainingjob),
        Route("/ns/{namespace}/inferenceservices/{name}", pages.inferenceservice),
        Route("/ns/{namespace}/retrainpolicies/{name}", pages.retrainpolicy),
        Route("/healthz", pages.healthz),
        Route("/readyz", pages.readyz),
        Route("/actions/{action}", pages.action, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("perennial_studio", "static")]), name="static"),
    ]
    return Starlette(routes=routes)


__all__ = ["Settings", "Studio", "create_app", "urls"]
