"""A thread pool of its own for the work that talks to serving pods.

kopf runs sync handlers on its executor (execution.max_workers = 8 threads), shared by every
resource. An InferenceService tick scrapes its pods, and a scrape may take its whole bound
(k8s/scrape.py TIMEOUT) when a pod trickles or hangs: eight such services held all eight
threads, and a new TrainingJob waited behind them (issue 20, finding 2). Their handlers are
async and run the sync work here instead, so hostile pods can only slow other
InferenceServices, never training, registry or pool work.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

SERVING_THREADS = 4  # services synced at once; each tick is short unless a pod is slow

P = ParamSpec("P")
T = TypeVar("T")

_pool = ThreadPoolExecutor(max_workers=SERVING_THREADS, thread_name_prefix="perennial-serving")


async def on_serving_threads(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` on the serving pool; kopf's context variables (its logger) go along, as
    they do for a sync handler on kopf's own executor."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool, call)
