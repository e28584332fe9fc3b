"""``tool: model`` — one chat-completions call to an OpenAI-compatible endpoint through the
official ``openai`` client (imported on first use: ``pip install 'tether[models]'``).

Result ``{text, json, finish_reason}``; ``json`` is the parsed, validated answer when the
step has a ``schema`` (an answer that does not parse or validate fails the attempt, so
``retry`` asks again), else null. Meta ``{model, input_tokens, output_tokens,
total_tokens, cost, latency_ms, response_id}``. The tool's result is durable: the engine
commits it the moment the tool returns and reuses it on resume (a call is paid once).

429 and 5xx answers are retried by the client with backoff honouring ``Retry-After``
before the attempt fails (then the step's ``retry`` applies). The API key is read from
the environment variable ``api_key_env`` names, at call time, and masked out of anything
the tool returns or raises.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import ToolError
from . import model_cassette, model_config, model_schema
from .base import ToolContext, ToolResult

ARGS = {"model", "prompt", "messages", "system", "schema", "temperature", "max_tokens", "base_url",
        "api_key_env", "timeout"}
DEFAULT_TIMEOUT = 120.0
RATE_RETRIES = 4  # 429/5xx answers retried within one attempt, honouring Retry-After
MAX_WAIT = 60.0   # the longest Retry-After honoured
IDEMPOTENCY_HEADER = "Idempotency-Key"

_clients: dict[tuple[str | None, str], Any] = {}
_clients_lock = threading.Lock()
_json_mode_only: set[str | None] = set()  # endpoints that refused response_format json_schema


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """One model call (or its recorded answer, replaying a cassette): ``{text, json,
    finish_reason}`` with usage, cost and latency in meta. ToolError ``ArgumentError`` (not
    retried) for bad arguments; a retryable ToolError for 429/5xx once asked again, a
    timeout, a lost connection or an answer that does not match ``schema``."""
    unknown = set(args) - ARGS
    if unknown:
        raise ToolError(f"model: unknown argument(s) {sorted(unknown)}", type_="ArgumentError",
                        retryable=False)
    _require("openai")
    settings = ctx.settings
    if settings is None:
        from ..settings import Settings
        settings = Settings.from_env()
    endpoint = model_config.resolve(args, getattr(ctx.flow, "models", None), settings)
    schema = model_schema.load(args["schema"], ctx.base_dir) if args.get("schema") is not None else None
    request = _request(args, endpoint, schema)
    timeout = _timeout(args.get("timeout"), ctx.timeout)
    tape = model_cassette.cassette(getattr(settings, "model_cassette", None))
    key = os.environ.get(endpoint.api_key_env) or ""
    started = time.perf_counter()
    if tape is not None and tape.replaying:
        data = tape.replay(request)
    else:
        sem = model_config.slot(endpoint)

        def call() -> dict[str, Any]:
            with sem if sem is not None else contextlib.nullcontext():
                return _masked_deep(_call(endpoint, request, schema, timeout, ctx.idempotency_key, key), key)
        data = _unless_cancelled(call, ctx.cancel)
        if tape is not None:
            tape.record(request, data)
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return _shape(data, endpoint, schema, latency_ms, key)


run.durable = True  # type: ignore[attr-defined]  # the engine commits the result at once (paid once)


def _unless_cancelled(call: Callable[[], dict[str, Any]], cancel: threading.Event) -> dict[str, Any]:
    """``call()`` in a thread of its own, so that cancelling the run stops waiting for the
    answer at once (ToolError ``Cancelled``; the call finishes in the background, its answer
    dropped); its result or its exception otherwise."""
    done = threading.Event()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["data"] = call()
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc
        finally:
            done.set()
    threading.Thread(target=work, name="tether-model-call", daemon=True).start()
    while not done.wait(0.05):
        if cancel.is_set():
            raise ToolError("model: the run was cancelled while the model answered", type_="Cancelled",
                            retryable=False)
    if "error" in box:
        raise box["error"]
    data: dict[str, Any] = box["data"]
    return data


def _require(module: str) -> None:
    """ToolError (not retried) naming the extra to install when ``module`` is missing."""
    import importlib.util
    if importlib.util.find_spec(module) is None:
        raise ToolError(f"model: the {module!r} package is not installed: pip install 'tether[models]'",
                        type_="ImportError", retryable=False)


def _request(args: dict[str, Any], endpoint: model_config.Endpoint,
             schema: model_schema.OutputSchema | None) -> dict[str, Any]:
    """The request body (what a cassette matches on): model, messages and options."""
    prompt, messages, system = args.get("prompt"), args.get("messages"), args.get("system")
    if (prompt is None) == (messages is None):
        raise ToolError("model: give exactly one of 'prompt' or 'messages'", type_="ArgumentError",
                        retryable=False)
    if messages is not None:
        if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in messages):
            raise ToolError("model: 'messages' must be a list of {role, content}", type_="ArgumentError",
                            retryable=False)
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    else:
        msgs = [{"role": "user", "content": prompt if isinstance(prompt, str) else str(prompt)}]
    if system is not None:
        msgs.insert(0, {"role": "system", "content": str(system)})
    request: dict[str, Any] = {"model": endpoint.model, "messages": msgs}
    temperature, max_tokens = args.get("temperature"), args.get("max_tokens")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ToolError("model: 'temperature' must be a number", type_="ArgumentError", retryable=False)
        request["temperature"] = temperature
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ToolError("model: 'max_tokens' must be a whole number >= 1", type_="ArgumentError",
                            retryable=False)
        request["max_tokens"] = max_tokens
    if schema is not None:
        request["response_format"] = schema.response_format()
    return request


def _timeout(value: Any, step_timeout: float | None) -> float:
    seconds = DEFAULT_TIMEOUT
    if value is not None:
        from ..flow.models import parse_duration
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ToolError(f"model: 'timeout': {exc}", type_="ArgumentError", retryable=False) from None
    return min(seconds, step_timeout) if step_timeout is not None else seconds


def _client(base_url: str | None, key: str) -> Any:
    """One ``openai.OpenAI`` client per endpoint and key in this process (its connection
    pool is reused); the key is held by the client only."""
    import openai
    ident = (base_url, hashlib.sha256(key.encode()).hexdigest())
    with _clients_lock:
        client = _clients.get(ident)
        if client is None:
            client = _clients[ident] = openai.OpenAI(api_key=key or "unset", base_url=base_url,
                                                     max_retries=0)  # retries: _create
        return client


def _retry_after(exc: Any, attempt: int) -> float:
    """Seconds to wait after a 429/5xx: its ``Retry-After`` (seconds or an HTTP date, at most
    MAX_WAIT), else exponential backoff from 0.5 s."""
    header = exc.response.headers.get("retry-after") if getattr(exc, "response", None) is not None else None
    if header:
        try:
            return min(max(float(header), 0.0), MAX_WAIT)
        except ValueError:
            from email.utils import parsedate_to_datetime
            try:
                return min(max(parsedate_to_datetime(header).timestamp() - time.time(), 0.0), MAX_WAIT)
            except (TypeError, ValueError):
                pass
    return min(0.5 * 2 ** attempt, MAX_WAIT)


def _create(client: Any, body: dict[str, Any], timeout: float, headers: dict[str, str]) -> Any:
    """One completions request; 429 and 5xx answers are asked again (RATE_RETRIES times, within
    ``timeout`` overall) after the wait the server asks for."""
    import openai
    deadline = time.monotonic() + timeout
    for attempt in range(RATE_RETRIES + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ToolError(f"model: no answer within {timeout:g}s (429/5xx answers asked again)",
                            type_="TimeoutError")
        try:
            return client.chat.completions.create(**body, timeout=left, extra_headers=headers)
        except (openai.RateLimitError, openai.InternalServerError) as exc:
            wait = _retry_after(exc, attempt)
            if attempt == RATE_RETRIES or time.monotonic() + wait >= deadline:
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")


def _call(endpoint: model_config.Endpoint, request: dict[str, Any], schema: model_schema.OutputSchema | None,
          timeout: float, idempotency_key: str, key: str) -> dict[str, Any]:
    """The server's answer as JSON; ToolError (retryable for 429, 5xx, timeouts and lost
    connections) otherwise, its message free of the API key."""
    import openai
    body = dict(request)
    if schema is not None and endpoint.base_url in _json_mode_only:
        body = _json_mode(body, schema)
    client = _client(endpoint.base_url, key)
    headers = {IDEMPOTENCY_HEADER: idempotency_key}
    where = f"model {endpoint.name!r}"
    try:
        try:
            resp = _create(client, body, timeout, headers)
        except openai.BadRequestError as exc:
            if schema is None or "response_format" not in body or \
                    body["response_format"].get("type") != "json_schema" or "response_format" not in str(exc):
                raise
            _json_mode_only.add(endpoint.base_url)  # no structured outputs here: JSON mode + the schema
            resp = _create(client, _json_mode(body, schema), timeout, headers)
    except openai.APITimeoutError:
        raise ToolError(f"{where}: no answer within {timeout:g}s", type_="TimeoutError") from None
    except openai.APIConnectionError as exc:
        raise ToolError(_masked(f"{where}: cannot reach {endpoint.base_url or 'the OpenAI API'}: {exc}", key),
                        type_="ConnectionError") from None
    except openai.APIStatusError as exc:
        status = exc.status_code
        hint = f" ({endpoint.api_key_env} is not set)" if status == 401 and not key else ""
        kind = "RateLimitError" if status == 429 else "ModelAPIError"
        raise ToolError(_masked(f"{where}: the server answered {status}: {exc.message}{hint}", key),
                        type_=kind, retryable=status == 429 or status >= 500) from None
    except openai.OpenAIError as exc:
        raise ToolError(_masked(f"{where}: {exc}", key), type_="ModelAPIError") from None
    data: dict[str, Any] = resp.model_dump(mode="json", exclude_none=True)
    return data


def _json_mode(body: dict[str, Any], schema: model_schema.OutputSchema) -> dict[str, Any]:
    out = dict(body)
    out["response_format"] = {"type": "json_object"}
    out["messages"] = [{"role": "system", "content": schema.instruction()}, *body["messages"]]
    return out


def _masked(text: str, key: str) -> str:
    return text.replace(key, "***") if key else text


def _masked_deep(value: Any, key: str) -> Any:
    """``value`` with the API key replaced by ``***`` in every string (a server that echoes
    it back must not get it into a cassette or the store)."""
    if not key:
        return value
    if isinstance(value, str):
        return _masked(value, key)
    if isinstance(value, dict):
        return {k: _masked_deep(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_deep(v, key) for v in value]
    return value


def _shape(data: dict[str, Any], endpoint: model_config.Endpoint, schema: model_schema.OutputSchema | None,
           latency_ms: float, key: str) -> ToolResult:
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        raise ToolError(f"model {endpoint.name!r}: the answer has no choices", type_="ModelAPIError")
    message = choices[0].get("message") or {}
    text = message.get("content")
    text = _masked(text, key) if isinstance(text, str) else None
    parsed = model_schema.parse(text, schema) if schema is not None else None
    usage = data.get("usage") or {}
    tin, tout = usage.get("prompt_tokens"), usage.get("completion_tokens")
    total = usage.get("total_tokens")
    if total is None and tin is not None and tout is not None:
        total = tin + tout
    meta = {"model": data.get("model") or endpoint.model, "input_tokens": tin, "output_tokens": tout,
            "total_tokens": total, "cost": endpoint.cost(tin, tout), "latency_ms": latency_ms,
            "response_id": data.get("id")}
    return ToolResult({"text": text, "json": parsed, "finish_reason": choices[0].get("finish_reason")}, meta)
