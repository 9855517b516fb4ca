"""One sync of one object, its failure logged and its retry scheduled: the shape the
TrainingJob and ModelVersion handlers share (each keeps its own Retries and retry loop)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import kopf

from perennial_operator.reconcile.retries import Retries

Key = tuple[str, str]  # (namespace, name)


def try_sync(
    retries: Retries[Key],
    log: logging.Logger,
    kind: str,
    key: Key,
    sync: Callable[[], None],
    after_refusal: str = "",
) -> None:
    """Run `sync`; on failure, log it and schedule the retry (one object's trouble is not
    the others'). A refusal (kopf.PermanentError: the API server refused our write) is not
    retried on the error schedule; `after_refusal` says what happens to it instead."""
    namespace, name = key
    try:
        sync()
    except kopf.PermanentError as exc:
        retries.forget(key)
        log.error("%s %s/%s: %s%s", kind, namespace, name, exc, after_refusal)
    except Exception as exc:
        delay = retries.failed(key)
        log.warning("%s %s/%s: %s; trying again in %gs", kind, namespace, name, exc, delay)
    else:
        retries.succeeded(key)
