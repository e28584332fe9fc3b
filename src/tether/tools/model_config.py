"""Where ``tool: model`` sends a call and what it costs: a model name resolved through the
step's arguments, the flow's ``models:`` block, ``TETHER_MODEL_PRICES`` and
``TETHER_MODEL_BASE_URL`` (in that order), and the per-model bound on concurrent calls."""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ToolError

DEFAULT_KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True)
class Endpoint:
    """One model call's target. ``api_key_env`` names the variable holding the key: the
    key itself is read at call time and kept in no record."""

    name: str                       # the name the flow uses (``with.model``)
    model: str                      # the provider's model id
    base_url: str | None
    api_key_env: str
    input_per_million: float | None
    output_per_million: float | None
    max_concurrency: int | None

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """The call's cost from the prices per million tokens; None without prices or counts."""
        if self.input_per_million is None and self.output_per_million is None:
            return None
        if input_tokens is None or output_tokens is None:
            return None
        total = (input_tokens * (self.input_per_million or 0.0)
                 + output_tokens * (self.output_per_million or 0.0)) / 1_000_000
        return round(total, 10)


def _entry(block: Any, name: str) -> Mapping[str, Any]:
    if not block:
        return {}
    found = block.get(name) if isinstance(block, Mapping) else None
    if found is None:
        return {}
    if hasattr(found, "model_dump"):  # a ModelSpec of the flow
        return {k: v for k, v in found.model_dump().items() if v is not None}
    return {k: v for k, v in dict(found).items() if v is not None}


def resolve(args: Mapping[str, Any], flow_models: Any, settings: Any) -> Endpoint:
    """The endpoint of a call with ``args``: the step's ``base_url``/``api_key_env`` win, then
    the flow's ``models:`` entry, then the ``TETHER_MODEL_PRICES`` file's entry, then
    ``TETHER_MODEL_BASE_URL``. ToolError (not retryable) for a value of the wrong type."""
    name = args.get("model")
    if not isinstance(name, str) or not name:
        raise ToolError("model: 'model' must be a model name", type_="ArgumentError", retryable=False)
    prices = getattr(settings, "model_prices", None)
    conf = {**_entry(prices, name), **_entry(flow_models, name)}
    base_url = args.get("base_url") or conf.get("base_url") or getattr(settings, "model_base_url", None)
    key_env = args.get("api_key_env") or conf.get("api_key_env") or DEFAULT_KEY_ENV
    for label, value in (("base_url", base_url), ("api_key_env", key_env)):
        if value is not None and not isinstance(value, str):
            raise ToolError(f"model: {label!r} must be a string", type_="ArgumentError", retryable=False)
    if isinstance(key_env, str) and key_env.upper().startswith("TETHER_"):
        raise ToolError(f"model: api_key_env {key_env!r}: Tether's own TETHER_* settings are never sent "
                        "to a model server", type_="ArgumentError", retryable=False)
    if base_url is not None and not str(base_url).startswith(("http://", "https://")):
        raise ToolError(f"model: 'base_url' must be an http:// or https:// URL, not {base_url!r}",
                        type_="ArgumentError", retryable=False)

    def price(key: str) -> float | None:
        value = conf.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ToolError(f"model {name!r}: {key} must be a number >= 0, not {value!r}",
                            type_="ArgumentError", retryable=False)
        return float(value)
    limit = conf.get("max_concurrency")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ToolError(f"model {name!r}: max_concurrency must be a whole number >= 1, not {limit!r}",
                        type_="ArgumentError", retryable=False)
    return Endpoint(name, str(conf.get("model") or name), base_url, key_env,
                    price("input_per_million"), price("output_per_million"), limit)


_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def slot(endpoint: Endpoint) -> threading.BoundedSemaphore | None:
    """The process-wide semaphore bounding concurrent calls to ``endpoint``'s model (None:
    unbounded). Every parallel iteration of every run in this process shares it."""
    if endpoint.max_concurrency is None:
        return None
    key = (endpoint.name, endpoint.max_concurrency)
    with _slots_lock:
        sem = _slots.get(key)
        if sem is None:
            sem = _slots[key] = threading.BoundedSemaphore(endpoint.max_concurrency)
        return sem


__all__ = ["DEFAULT_KEY_ENV", "Endpoint", "resolve", "slot"]
