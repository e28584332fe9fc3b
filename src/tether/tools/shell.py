"""``tool: shell`` — a command in its own process group, killed whole on timeout, cancel
or any exception (a signal to Tether), and with Tether however it dies (see tether.procs)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from .. import limits
from ..errors import ToolError
from ..procs import group_alive, group_waited, starting_group
from .base import ToolContext, ToolResult

MAX_CAPTURE = limits.CAPTURE_MAX_BYTES
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}


def _parse(stdout: str, capture: str) -> Any:
    text = stdout.strip()
    if capture == "text":
        return text
    if capture == "lines":
        return [line for line in stdout.splitlines() if line.strip()]
    if capture == "json":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ToolError(f"stdout is not valid JSON ({exc}); first bytes: {text[:80]!r}",
                            type_="CaptureError", retryable=False) from None
    if capture == "number":
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                raise ToolError(f"stdout is not a number: {text[:80]!r}", type_="CaptureError",
                                retryable=False) from None
    if capture == "boolean":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ToolError(f"stdout is not a boolean: {text[:80]!r}", type_="CaptureError", retryable=False)
    raise ToolError(f"capture must be text, json, lines, number or boolean, not {capture!r}",
                    type_="ArgumentError", retryable=False)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole group, up to 2 s for the group to exit, then SIGKILL to what
    is left of it (the leader, or what outlived it)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 2
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=2)
    while time.monotonic() < deadline:
        if not group_alive(proc.pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Run ``args['run']`` (a string for the shell, or an argv list)."""
    unknown = set(args) - {"run", "shell", "env", "cwd", "stdin", "capture", "allow_failure"}
    if unknown:
        raise ToolError(f"shell: unknown argument(s) {sorted(unknown)}", type_="ArgumentError",
                        retryable=False)
    command = args.get("run")
    if isinstance(command, str):
        argv = [args.get("shell") or "/bin/sh", "-c", command]
    elif isinstance(command, list) and command and all(isinstance(a, (str, int, float)) for a in command):
        argv = [str(a) for a in command]
    else:
        raise ToolError("shell: 'run' must be a command string or a non-empty list of arguments",
                        type_="ArgumentError", retryable=False)
    env = dict(os.environ)
    env.update(TETHER_RUN_ID=ctx.run_id, TETHER_STEP=ctx.step_id, TETHER_DB=ctx.db_url,
               TETHER_IDEMPOTENCY_KEY=ctx.idempotency_key, TETHER_ATTEMPT=str(ctx.attempt))
    if ctx.blobs_url:  # the step's `tether vars` must find the run's large values where they are
        env["TETHER_BLOBS"] = ctx.blobs_url
    extra = args.get("env") or {}
    if not isinstance(extra, dict):
        raise ToolError("shell: 'env' must be a mapping", type_="ArgumentError", retryable=False)
    env.update({str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in extra.items()})
    cwd = Path(ctx.base_dir) / str(args["cwd"]) if args.get("cwd") else None
    stdin = args.get("stdin")
    started = time.monotonic()
    try:
        with starting_group() as preexec:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    cwd=cwd, start_new_session=True,
                                    preexec_fn=preexec)  # noqa: PLW1509 (see procs.py)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise ToolError(f"shell: cannot start {argv[0]!r}: {exc}", type_="ExecError",
                        retryable=False) from None
    if ctx.processes is not None:
        ctx.processes.started(proc.pid)
    try:
        return _wait(proc, args, ctx, stdin, started)
    finally:
        group_waited(proc.pid)
        if ctx.processes is not None:
            ctx.processes.ended(proc.pid)


def _wait(proc: subprocess.Popen[bytes], args: dict[str, Any], ctx: ToolContext, stdin: Any,
          started: float) -> ToolResult:
    data = ((stdin if isinstance(stdin, str) else orjson.dumps(stdin).decode()).encode()
            if stdin is not None else None)
    deadline = None if ctx.timeout is None else started + ctx.timeout
    try:
        while True:  # wake up regularly so that a cancel reaches the process
            wait = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
            try:
                out, err = proc.communicate(data, timeout=wait)
                break
            except subprocess.TimeoutExpired:
                data = None  # stdin was written by the first call
                if ctx.cancel.is_set():
                    _kill_group(proc)
                    proc.communicate()
                    raise ToolError("run cancelled; the command's process group was killed",
                                    type_="Cancelled", retryable=False) from None
                if deadline is not None and time.monotonic() >= deadline:
                    _kill_group(proc)
                    proc.communicate()
                    raise ToolError(f"shell command timed out after {ctx.timeout:g}s; its process group "
                                    "was killed", type_="TimeoutError") from None
    except BaseException:
        _kill_group(proc)
        raise
    stdout = out[:MAX_CAPTURE].decode("utf-8", "replace")
    stderr = err[:MAX_CAPTURE].decode("utf-8", "replace")
    meta = {"duration": round(time.monotonic() - started, 6), "exit_code": proc.returncode, "pid": proc.pid}
    if len(out) > MAX_CAPTURE or len(err) > MAX_CAPTURE:
        meta["truncated"] = True
    result = {"stdout": stdout, "stderr": stderr, "exit_code": proc.returncode, "output": None}
    if proc.returncode != 0 and not args.get("allow_failure"):
        tail = stderr.strip()[-500:] or stdout.strip()[-500:]
        raise ToolError(f"command exited with code {proc.returncode}" + (f": {tail}" if tail else ""),
                        type_="ExitCodeError", result=result)
    result["output"] = _parse(stdout, str(args.get("capture") or "text"))
    return ToolResult(result, meta)
