"""``tool: http`` — one HTTP request with httpx; 5xx and connection errors are retryable."""
from __future__ import annotations

import re
import threading
import time
from typing import Any

import httpx
import orjson

from .. import limits
from ..errors import ToolError
from ..store import codec
from .base import ToolContext, ToolResult

MAX_BODY = limits.VALUE_MAX_BYTES  # a larger response body fails the attempt, never cut short
_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _http() -> httpx.Client:
    global _client  # noqa: PLW0603 (one client per process, made on first use)
    with _client_lock:
        if _client is None:
            _client = httpx.Client(follow_redirects=True)
        return _client


def _expected(status: int, expect: Any) -> bool:
    parts = expect if isinstance(expect, list) else re.split(r"[,|\s]+", str(expect))
    for part in parts:
        p = str(part).strip().lower()
        if not p:
            continue
        if re.fullmatch(r"[1-5]xx", p) and status // 100 == int(p[0]):
            return True
        if p.isdigit() and int(p) == status:
            return True
    return False


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    unknown = set(args) - {"method", "url", "headers", "params", "json", "body", "timeout", "expect"}
    if unknown:
        raise ToolError(f"http: unknown argument(s) {sorted(unknown)}", type_="ArgumentError",
                        retryable=False)
    url = args.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ToolError(f"http: 'url' must be an http:// or https:// URL, not {url!r}",
                        type_="ArgumentError", retryable=False)
    timeout = args.get("timeout")
    if timeout is not None:
        from ..flow.models import parse_duration
        timeout = parse_duration(timeout)
    if ctx.timeout is not None:
        timeout = min(timeout, ctx.timeout) if timeout is not None else ctx.timeout
    headers = {str(k): str(v) for k, v in (args.get("headers") or {}).items()}
    params = {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() if isinstance(v, (dict, list))
              else str(v) for k, v in (args.get("params") or {}).items()}
    body = args.get("body")
    content = None if body is None else (body if isinstance(body, str) else orjson.dumps(body).decode())
    started = time.monotonic()
    try:
        # The url's own query is kept and ``params`` are merged into it (a key in both takes
        # the value from ``params``): httpx would replace the whole query with ``params``.
        target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
        resp = _http().request(str(args.get("method") or "GET").upper(), target, headers=headers,
                               json=args.get("json"), content=content,
                               timeout=timeout if timeout is not None else 30.0)
    except httpx.InvalidURL as exc:
        raise ToolError(f"http: invalid url {url!r}: {exc}", type_="ArgumentError", retryable=False) from None
    except httpx.TimeoutException as exc:
        raise ToolError(f"http: request to {url} timed out: {exc}", type_="TimeoutError") from None
    except httpx.HTTPError as exc:
        raise ToolError(f"http: request to {url} failed: {exc}", type_="ConnectionError") from None
    raw = resp.content
    if len(raw) > MAX_BODY:
        raise ToolError(f"http: {resp.request.method} {url} returned a body of {len(raw):,} bytes, above the "
                        f"value limit of {MAX_BODY:,} bytes", type_="UnstorableValue", retryable=False)
    try:  # integers beyond 64 bits are read exactly (and then refused by the store), never as floats
        data = codec.loads_exact(raw) if raw else None
    except orjson.JSONDecodeError:
        data = None
    # The body is kept once: parsed when it is JSON, as text otherwise.
    text = None if data is not None else raw.decode(resp.encoding or "utf-8", "replace")
    result = {"status": resp.status_code, "headers": dict(resp.headers), "json": data, "text": text}
    meta = {"duration": round(time.monotonic() - started, 6), "status": resp.status_code,
            "method": resp.request.method}
    if not _expected(resp.status_code, args.get("expect", "2xx")):
        raise ToolError(f"http: {resp.request.method} {url} returned {resp.status_code}, expected "
                        f"{args.get('expect', '2xx')}", type_="HTTPStatusError",
                        retryable=resp.status_code >= 500, result=result)
    return ToolResult(result, meta)
