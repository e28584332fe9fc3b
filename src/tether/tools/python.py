"""``tool: python`` — call ``module:callable`` or the ``main`` of inline ``code``.

The flow file's folder is put on the import path. Arguments are passed as
keyword arguments (a deep copy, so user code cannot alter the run's state);
a parameter named ``ctx`` receives the :class:`ToolContext`.
"""
from __future__ import annotations

import inspect
import linecache
import os
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

from ..errors import ToolError, UnstorableValue
from ..store import codec
from .base import ToolContext, ToolResult
from .user_code import import_object

_resolved: dict[tuple[str, str], Callable[..., Any]] = {}


def _resolve(spec: str, base_dir: str) -> Callable[..., Any]:
    """The callable named by ``module:attr``, imported once per process and folder."""
    hit = _resolved.get((spec, base_dir))
    if hit is not None:
        return hit
    fn = _import(spec, base_dir)
    _resolved[(spec, base_dir)] = fn
    return fn


def _import(spec: str, base_dir: str) -> Callable[..., Any]:
    obj = import_object(spec, base_dir, "python", "'function'")
    if not callable(obj):
        raise ToolError(f"python: {spec!r} is not callable", type_="ArgumentError", retryable=False)
    return obj


@lru_cache(maxsize=256)
def _compile_code(code: str, filename: str) -> Callable[..., Any]:
    """The ``main`` of inline code, compiled as file ``filename`` (``<step ID>``)."""
    namespace: dict[str, Any] = {"__name__": "tether_inline"}
    try:
        exec(compile(code, filename, "exec"), namespace)  # the flow author's own code
    except SyntaxError as exc:
        raise ToolError(f"python: syntax error in code at line {exc.lineno}: {exc.msg}",
                        type_="SyntaxError", retryable=False) from None
    main = namespace.get("main")
    if not callable(main):
        raise ToolError("python: inline code must define a function named main", type_="ArgumentError",
                        retryable=False)
    return main


@lru_cache(maxsize=1024)
def _wants_ctx(fn: Callable[..., Any]) -> bool:
    try:
        return "ctx" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _call(fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float | None) -> Any:
    if timeout is None:
        return fn(**kwargs)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(**kwargs)
        except BaseException as exc:  # handed back to the calling thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True, name="tether-python-step")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ToolError(f"python callable timed out after {timeout:g}s (its thread is abandoned)",
                        type_="TimeoutError")
    if "error" in box:
        raise box["error"]
    return box.get("value")


_TETHER = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
MAX_TRACEBACK = 8_000  # characters kept, from the end (where the error is)


def user_traceback(exc: BaseException) -> str:
    """The traceback of an exception raised by user code, without Tether's own frames
    around it (the frames that called the user's function): file, line and source of
    each frame of the user's code, then the exception."""
    import traceback
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_TETHER):
        tb = tb.tb_next
    text = "".join(traceback.TracebackException(type(exc), exc, tb, limit=50).format())
    return text if len(text) <= MAX_TRACEBACK else "…" + text[-MAX_TRACEBACK:]


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    unknown = set(args) - {"function", "code", "args"}
    if unknown:
        raise ToolError(f"python: unknown argument(s) {sorted(unknown)}", type_="ArgumentError",
                        retryable=False)
    if ("function" in args) == ("code" in args):
        raise ToolError("python: give exactly one of 'function' or 'code'", type_="ArgumentError",
                        retryable=False)
    if "function" in args:
        fn = _resolve(args["function"], ctx.base_dir)
    else:
        code, filename = str(args["code"]), f"<step {ctx.step_id}>"
        fn = _compile_code(code, filename)
        # the source a traceback shows for the file `<step ID>` (no mtime: linecache keeps it);
        # set at each call, as two flows may both have a step of that id
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    call_args = args.get("args") or {}
    if not isinstance(call_args, dict):
        raise ToolError("python: 'args' must be a mapping of argument names to values",
                        type_="ArgumentError", retryable=False)
    kwargs = orjson.loads(orjson.dumps(call_args))
    if _wants_ctx(fn):
        kwargs["ctx"] = ctx
    started = time.monotonic()
    try:
        value = _call(fn, kwargs, ctx.timeout)
    except ToolError:
        raise
    except Exception as exc:  # user code: any failure fails the attempt
        # The type is the error's own field: the message is only what the exception says.
        raise ToolError(str(exc) or "(no message)", type_=type(exc).__name__,
                        details={"traceback": user_traceback(exc)}) from None
    try:  # a copy, refusing what JSON cannot hold (NaN would silently become null)
        value = orjson.loads(codec.dumps(value, "result"))
    except UnstorableValue as exc:
        if exc.retryable:
            raise
        raise ToolError(f"python: the result is {exc.reason}", type_="ResultError", retryable=False) from None
    return ToolResult(value, {"duration": round(time.monotonic() - started, 6)})
