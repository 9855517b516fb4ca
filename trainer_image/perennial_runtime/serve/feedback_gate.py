"""Who may send feedback, and how much: feedback steers the live metric, and through it
drift alerts and retraining, so it is not open to whoever reaches the Service.

- With a token (``--feedback-token-file``, a mounted Secret, or ``$PERENNIAL_FEEDBACK_TOKEN``)
  feedback needs ``Authorization: Bearer <token>``: 401 otherwise.
- Without one it is refused (403) unless ``--allow-unauthenticated-feedback`` says otherwise.
- Either way each worker admits at most ``rows_per_second`` truth rows on average, in bursts
  of ``burst_rows`` (a token bucket): 429 past it.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from perennial_runtime.serve.validation import RequestError


class FeedbackGate:
    def __init__(
        self,
        token: str | None,
        *,
        allow_anonymous: bool = False,
        rows_per_second: float = 200.0,
        burst_rows: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._expected = f"Bearer {token}".encode() if token else None
        self._anonymous = allow_anonymous
        self._rate, self._burst, self._clock = rows_per_second, float(burst_rows), clock
        self._tokens, self._at = float(burst_rows), clock()

    def admit(self, authorization: bytes | None) -> None:
        """Raises the answer for a caller that may not send feedback."""
        if self._expected is None:
            if not self._anonymous:
                raise RequestError(
                    403,
                    "feedback is disabled on this server: start it with --feedback-token-file "
                    "(or $PERENNIAL_FEEDBACK_TOKEN), or --allow-unauthenticated-feedback",
                )
            return
        if authorization is None or not hmac.compare_digest(authorization, self._expected):
            raise RequestError(401, "feedback needs the header 'Authorization: Bearer <token>'")

    def take(self, rows: int) -> None:
        """Spend `rows` from the bucket, or raise 429 (nothing is spent then)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if rows > self._burst:
            raise RequestError(
                429, f"feedback of {rows} rows exceeds the burst of {self._burst:.0f}; split it"
            )
        if rows > self._tokens:
            wait = (rows - self._tokens) / self._rate if self._rate > 0 else float("inf")
            raise RequestError(
                429, f"feedback rate limit: {self._rate:g} rows/s; retry in {wait:.1f} s"
            )
        self._tokens -= rows
