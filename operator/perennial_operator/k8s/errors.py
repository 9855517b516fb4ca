"""API errors mapped once: what the caller can do about each."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import kopf
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException


class NotFound(Exception):
    pass


class AlreadyExists(Exception):
    pass


class Conflict(Exception):
    """The object changed since the resourceVersion a write was made against (HTTP 409)."""


def is_status(exc: BaseException, code: int) -> bool:
    return isinstance(exc, ApiException) and exc.status == code


@contextlib.contextmanager
def as_kopf_errors(what: str) -> Iterator[None]:
    """Conflicts, throttling and server errors are retried later; a rejected object
    (400/422: the API server says our manifest is invalid) will not get better by retrying."""
    try:
        yield
    except ApiException as exc:
        if exc.status in (409, 429) or (exc.status or 0) >= 500:
            raise kopf.TemporaryError(f"{what}: HTTP {exc.status}, retrying", delay=5) from exc
        if exc.status in (400, 422):
            raise kopf.PermanentError(f"{what}: rejected: {exc.body}") from exc
        raise kopf.TemporaryError(f"{what}: HTTP {exc.status}: {exc.reason}", delay=15) from exc
    except urllib3.exceptions.HTTPError as exc:  # request timeout, refused or reset connection
        raise kopf.TemporaryError(f"{what}: API server unreachable: {exc}", delay=5) from exc


def refused(exc: BaseException) -> str | None:
    """The API server's own words when it refused an object for good (400, 403, 422: invalid,
    or forbidden by policy); None for errors worth retrying (conflicts, throttling, 5xx)."""
    if not isinstance(exc, ApiException) or exc.status not in (400, 403, 422):
        return None
    try:
        body = json.loads(exc.body or "{}")
    except (ValueError, TypeError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return f"HTTP {exc.status}: {str(message or exc.reason)[:2000]}"
