"""The attempts of one tool call: retries with backoff and jitter, and which failures
may be retried."""
from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from ..errors import TetherError, ToolError, UnstorableValue
from ..flow.models import RetrySpec
from ..store import codec
from ..tools import ToolContext

NO_RETRY = RetrySpec()


class StepFailed(Exception):
    """A step's attempts are exhausted (or the failure cannot succeed on a retry)."""

    def __init__(self, error: dict[str, Any], result: Any = None, attempts: int = 0) -> None:
        super().__init__(error["message"])
        self.error, self.result, self.attempts = error, result, attempts


def retry_delay(retry: RetrySpec, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    delay = retry.delay * (2 ** (attempt - 1) if retry.backoff == "exponential" else 1)
    delay = min(delay, retry.max_delay)
    if retry.jitter:
        delay = min(delay * random.uniform(0.5, 1.5), retry.max_delay)
    return delay


def run_attempts(tool: Callable[..., Any], args: dict[str, Any], retry: RetrySpec,
                 make_ctx: Callable[[int], ToolContext], cancel: threading.Event,
                 on_retry: Callable[[int, dict[str, Any], float], None],
                 where: str = "the step") -> tuple[Any, dict[str, Any], int, dict[str, Any]]:
    """Call ``tool`` until an attempt succeeds; return ``(result, meta, attempts, ctx writes)``.

    An attempt whose result or meta the store cannot hold fails with UnstorableValue
    (said of ``where``, e.g. ``step 'fetch'``), so such a value is a step failure, never
    a failed commit. A retryable ToolError or UnstorableValue is retried up to
    ``retry.attempts`` times (``meta`` then lists the earlier attempts' errors); any other
    Tether error, or a cancel while waiting, raises StepFailed at once. A failed attempt's
    result is dropped when the store cannot hold it. Other exceptions (control flow such
    as a paused child) propagate unchanged."""
    errors: list[dict[str, str]] = []
    for attempt in range(1, retry.attempts + 1):
        ctx = make_ctx(attempt)
        try:
            out = tool(args, ctx)
            codec.checked(out.result, "result")
            meta = dict(out.meta)
            codec.dumps(meta, "meta")
            if errors:
                meta["attempt_errors"] = errors
            return out.result, meta, attempt, ctx.writes
        except ToolError as exc:
            error: dict[str, Any] = {"type": exc.type, "message": exc.message, **exc.details}
            last_result, retryable = _storable(exc.result), exc.retryable
        except UnstorableValue as exc:
            error = exc.at(where).error()
            last_result, retryable = None, exc.retryable
        except TetherError as exc:
            error = {"type": type(exc).__name__, "message": exc.message}
            last_result, retryable = None, False
        errors.append({"type": error["type"], "message": error["message"]})  # meta lists them briefly
        if not retryable or attempt == retry.attempts:
            raise StepFailed(error, last_result, attempt)
        delay = retry_delay(retry, attempt)
        on_retry(attempt, error, delay)
        if cancel.wait(delay):
            raise StepFailed({"type": "Cancelled", "message": "run cancelled"}, None, attempt)
    raise AssertionError("unreachable")


def _storable(result: Any) -> Any:
    """A failed attempt's result if the store can hold it, else None (its error says enough)."""
    try:
        codec.checked(result, "result")
    except UnstorableValue:
        return None
    return result
