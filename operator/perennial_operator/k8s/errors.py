"""API errors mapped once: what the caller can do about each."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import kopf
from kubernetes.client.exceptions import ApiException


class NotFound(Exception):
    pass


class AlreadyExists(Exception):
    pass


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
