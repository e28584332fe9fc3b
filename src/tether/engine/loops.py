"""Loops: ``foreach`` (and the ``map`` phase) and ``repeat``, whose every iteration
survives a crash.

* The collection is rendered once, when the loop starts, and stored element by
  element (``Store.start_loop``); a resumed loop iterates over exactly the same
  elements, reading them back in batches.
* Each iteration runs its body without writing anything, then commits one
  iteration record. With ``parallel: N`` the workers hand finished iterations to a
  group commit: whoever holds the commit lock renders the pending iterations'
  ``vars`` blocks one at a time, in index order, against the latest values, and
  commits them all in one transaction. A worker waits for its iteration to be
  committed before it takes the next one, so a crash re-runs at most N iterations.
* Aggregates (``map.*``) are queries over the stored iteration records.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..env import mask
from ..errors import InputFileError, TemplateError, UnstorableValue
from ..flow.models import Step
from ..store import codec
from ..store.base import EventWrite, SharedLoopWork
from ..template_functions import jsonpath
from ..templates import BARE_KEY, AttrView, render, render_deep
from .attempts import StepFailed
from .loop_commit import Iteration, IterationCommits
from .loop_host import LoopHost
from .loop_shared import SharedLoop
from .run_stops import StopRun
from .template_views import body_step_view, loop_results

BATCH = 1000
_FINISHED = ("completed", "failed", "skipped")


def _shorten(value: Any, width: int) -> Any:
    """``value`` itself when its JSON text fits ``width``; else that text cut in the middle
    (the end of a message, such as a stderr tail, says the most)."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) <= width:
        return value
    half = (width - 1) // 2
    return text[:half] + "…" + text[-half:]


@dataclass
class LoopOutcome:
    loop_key: str
    total: int
    counts: dict[str, int]
    error: dict[str, Any] | None = None
    stopped: str | None = None   # "paused", "cancelled" or "pending" when a request stopped the loop
    pause: dict[str, Any] | None = None  # what paused it, when a sub-flow of an iteration did


class Loops:
    """Runs the loop steps of one run, through the narrow :class:`LoopHost` interface of its runner."""

    def __init__(self, host: LoopHost) -> None:
        self.host = host
        self.commits = IterationCommits(host)
        self._shared = SharedLoop(host, self.commits, self.iteration)

    # ------------------------------------------------------------ collection
    def _collection(self, step: Step, scope: dict[str, Any]) -> list[Any]:
        where = f"step {step.id!r}, field 'foreach'"
        if step.foreach_file is not None:
            path = Path(self.host.loaded.base_dir) / step.foreach_file
            if not path.exists():
                raise InputFileError(f"file not found: {path} (step {step.id}, foreach_file "
                                     f"{step.foreach_file!r}, relative to the flow file)")
            if not path.is_file():  # a device or FIFO would hang or stream forever
                raise InputFileError(f"not a regular file: {path} (step {step.id}, foreach_file)")
            try:
                data = orjson.loads(path.read_bytes())
            except OSError as exc:
                raise InputFileError(f"cannot read {path} (step {step.id}, foreach_file): "
                                     f"{exc.strerror or exc}") from None
            except orjson.JSONDecodeError as exc:
                raise InputFileError(f"not valid JSON: {path} (step {step.id}, foreach_file): "
                                     f"{exc}") from None
            if step.json_path:
                return jsonpath(data, step.json_path)
            items = data
        else:
            items = render_deep(step.foreach, scope, where)
        if not isinstance(items, list):
            raise TemplateError(f"{where}: must give a list, not a {type(items).__name__}")
        return items

    def _start(self, step: Step, scope: dict[str, Any], loop_key: str) -> int:
        total = self.host.store.loop_size(self.host.run_id, loop_key)
        if total is not None:
            return total  # resumed: the stored collection, never re-rendered
        items = self._collection(step, scope)

        def encoded() -> Iterator[codec.Encoded]:
            for i, x in enumerate(items):  # an element the store cannot hold fails the loop step
                try:
                    yield codec.encode(x, field=f"foreach[{i}]")
                except UnstorableValue as exc:
                    raise exc.at(f"step {step.id!r}") from None
        with self.host.commits.lock:
            total = self.host.store.start_loop(self.host.run_id, self.host.epoch, loop_key, encoded(),
                                            EventWrite("loop.started", step.id, {"loop_key": loop_key}))
            self.host.commits.took_commit(self.host.store.poll(self.host.run_id)[0])
        return total

    def _pending_items(self, loop_key: str, total: int, retry_failed: bool,
                       per_batch: dict[int, int]) -> Iterator[tuple[int, Any]]:
        """The unfinished elements, by index; ``per_batch``: finished iterations (failed ones
        only when not ``retry_failed``) per batch of BATCH, as counted when the loop started."""
        store, run_id = self.host.store, self.host.run_id
        for start in range(0, total, BATCH):
            stop = min(start + BATCH, total)
            if per_batch.get(start // BATCH, 0) == stop - start:
                continue  # every element of this batch has finished: nothing to read
            done = store.finished_indices(run_id, loop_key, start, stop, include_failed=not retry_failed)
            items = self.host.store.loop_items(self.host.run_id, loop_key, start, stop)
            for offset, item in enumerate(items):
                if start + offset not in done:
                    yield start + offset, item

    # ------------------------------------------------------------ foreach
    def run_foreach(self, step: Step, scope: dict[str, Any], loop_key: str, key: str,
                    retry_failed: bool = False) -> LoopOutcome:
        """Run the loop's unfinished iterations; return its aggregates when it stops."""
        total = self._start(step, scope, loop_key)
        counts: dict[str, int] = {}
        per_batch: dict[int, int] = {}  # one pass over the records gives both
        for (batch, status), n in self.host.store.iteration_counts_by_batch(self.host.run_id, loop_key,
                                                                            BATCH).items():
            counts[status] = counts.get(status, 0) + n
            if not (retry_failed and status == "failed"):
                per_batch[batch] = per_batch.get(batch, 0) + n
        fresh = not any(counts.values())  # no iteration recorded yet: all of them are pending
        if retry_failed:
            counts["failed"] = 0
        allowed = _allowed_failures(step.max_failures, total)
        state: dict[str, Any] = {"failed": counts.get("failed", 0), "stop": None,
                 "done": sum(counts.get(k, 0) for k in _FINISHED)}
        feed = self._pending_items(loop_key, total, retry_failed, per_batch)
        feed_lock = threading.Lock()
        errors: list[BaseException] = []

        def next_item() -> tuple[int, Any] | None:
            if state["stop"] or state["failed"] > allowed or self.host.stopping():
                return None
            with feed_lock:
                return next(feed, None)

        def work() -> None:
            try:
                while (job := next_item()) is not None:
                    it = self.iteration(step, loop_key, key, job[0], job[1], total, scope)
                    self.commits.submit(it)
                    with feed_lock:
                        state["done"] += 1
                        if it.status == "failed":
                            state["failed"] += 1
                        done = state["done"]
                    if self.host.listening():
                        self.host.emit("loop.progress", {"run_id": self.host.run_id, "step_id": step.id,
                                                         "loop_key": loop_key, "index": it.idx,
                                                         "total": total, "done": done, "status": it.status})
            except BaseException as exc:  # handed to the loop's thread below
                errors.append(exc)
                state["stop"] = "error"

        if self._shares(step, loop_key):
            pending = list(range(total)) if fresh else \
                [i for i, _ in self._pending_items(loop_key, total, retry_failed, per_batch)]
            self._shared.run(step, scope, loop_key, key, total, pending, state, allowed, retry_failed, errors)
        elif step.parallel <= 1:
            work()
        else:
            threads = [threading.Thread(target=work, name=f"tether-{step.id}-{i}", daemon=True)
                       for i in range(step.parallel)]
            with self.commits.grouped(loop_key, f"tether-{step.id}-commit"):
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        stops = [e for e in errors if isinstance(e, StopRun)]  # iterations a request stopped
        for exc in errors:
            if not isinstance(exc, StopRun):
                raise exc
        final = self.host.store.iteration_counts(self.host.run_id, loop_key)
        outcome = LoopOutcome(loop_key, total, final)
        finished = sum(final.get(s, 0) for s in _FINISHED)
        if final.get("failed", 0) > allowed:
            outcome.error = self._too_many_failures(step, loop_key, total, final.get("failed", 0))
        elif stops:
            outcome.stopped, outcome.pause = stops[0].status, stops[0].pause
        elif finished < total:
            outcome.stopped = self.host.stop_status()
        return outcome

    SHOWN_FAILURES = 5      # failed iterations listed in the loop step's error message
    LISTED_FAILURES = 20    # ... and in its ``failures`` member

    def _too_many_failures(self, step: Step, loop_key: str, total: int, failed: int) -> dict[str, Any]:
        """The loop step's error: how many iterations failed and, for the first of them, which
        element (index, item shortened) and why (a shell step's message has its exit code and
        stderr tail), in the message for people and as ``failures`` for programs."""
        store, run_id = self.host.store, self.host.run_id
        failures: list[dict[str, Any]] = []
        for start in range(0, total, BATCH):
            for rec in store.iterations(run_id, loop_key, start, min(start + BATCH, total), status="failed"):
                item = store.loop_items(run_id, loop_key, rec.idx, rec.idx + 1)
                error = (rec.error if isinstance(rec.error, dict)
                         else {"type": "Error", "message": str(rec.error)})
                failures.append({"index": rec.idx, "item": _shorten(item[0] if item else None, 80),
                                 "error": {k: _shorten(v, 400) if k == "message" else v
                                           for k, v in error.items() if k in ("type", "message", "step")}})
                if len(failures) == self.LISTED_FAILURES:
                    break
            if len(failures) == self.LISTED_FAILURES:
                break
        lines = [f"{failed} of {total} iterations failed (max_failures: {step.max_failures}):"]
        for f in failures[:self.SHOWN_FAILURES]:
            where = f" in {f['error']['step']}" if f["error"].get("step") else ""
            lines.append(f"  [{f['index']}] {orjson.dumps(f['item']).decode()}{where}: "
                         f"{f['error'].get('type')}: {' '.join(str(f['error'].get('message')).split())}")
        if failed > self.SHOWN_FAILURES:
            lines.append(f"  ... and {failed - self.SHOWN_FAILURES} more "
                         "(map.failures, or the loop step's record)")
        return {"type": "TooManyFailures", "message": "\n".join(lines), "failures": failures}

    # ------------------------------------------------------------ shared with other workers
    def _shares(self, step: Step, loop_key: str) -> bool:
        """Whether other workers may run this loop's iterations: a top-level parallel loop
        on a store that shares loops, whose body has no nested loop, pause or sub-flow."""
        return bool(isinstance(self.host.store, SharedLoopWork) and step.parallel > 1 and "[" not in loop_key
                    and not step.let
                    and all(b.tool not in ("pause", "flow") and not b.is_loop for b in step.do or ()))

    def help(self, step: Step, loop_key: str, key: str, idx: int, item: Any, total: int,
             scope: dict[str, Any]) -> dict[str, Any]:
        """Run one published iteration (of a loop of ``total`` elements) for its run's
        owner: its body's tool outcomes (masked), for the owner to commit."""
        it = self.iteration(step, loop_key, key, idx, item, total, scope)
        return {"bodies": mask(it.recorded, self.host.secrets), "started": it.started,
                "finished": it.finished}

    # ------------------------------------------------------------ repeat
    def run_repeat(self, step: Step, scope: dict[str, Any], loop_key: str, key: str) -> LoopOutcome:
        """Run ``do`` until ``repeat.until`` is true after an iteration, or ``repeat.max`` times."""
        assert step.repeat is not None
        # iterations are recorded in index order from 0, so the last record says how many ran
        last = self.host.store.last_iteration(self.host.run_id, loop_key)
        start = 0 if last is None else last.idx + 1
        if last is not None and self._until(step, scope, last.idx, last.result):
            return LoopOutcome(loop_key, start, self.host.store.iteration_counts(self.host.run_id, loop_key))
        for idx in range(start, step.repeat.max):
            if self.host.stopping():
                return LoopOutcome(loop_key, idx,
                                   self.host.store.iteration_counts(self.host.run_id, loop_key),
                                   stopped=self.host.stop_status())
            try:
                it = self.iteration(step, loop_key, key, idx, None, step.repeat.max, scope)
            except StopRun as stop:  # a request cut the iteration short: it ran for nothing
                counts = self.host.store.iteration_counts(self.host.run_id, loop_key)
                return LoopOutcome(loop_key, idx, counts, stopped=stop.status, pause=stop.pause)
            self.commits.submit(it)
            if it.status == "failed":
                counts = self.host.store.iteration_counts(self.host.run_id, loop_key)
                assert it.error is not None  # a failed iteration has its error
                return LoopOutcome(loop_key, idx + 1, counts, error={
                    "type": "IterationFailed", "message": f"iteration {idx} failed: {it.error['message']}"})
            if self._until(step, scope, idx, it.result):
                break
        counts = self.host.store.iteration_counts(self.host.run_id, loop_key)
        return LoopOutcome(loop_key, sum(counts.values()), counts)

    def _until(self, step: Step, scope: dict[str, Any], idx: int, result: Any) -> bool:
        s = dict(scope)
        s.update(result=result, loop={"index": idx, "first": idx == 0})
        return bool(render(step.repeat.until, s, f"step {step.id!r}, field 'repeat.until'"))  # type: ignore[union-attr]

    # ------------------------------------------------------------ one iteration
    def iteration(self, step: Step, loop_key: str, key: str, idx: int, item: Any, total: int,
                   outer: dict[str, Any], replay: dict[str, dict[str, Any]] | None = None) -> Iteration:
        """Run one iteration's body without writing anything. StopRun when a stop request cut
        it short (a tool call a cancel ended, an inner loop that stopped): such an iteration
        is never committed, so it is neither finished nor failed and runs again on resume."""
        scope = dict(outer)
        local: dict[str, AttrView] = {}
        outer_steps = outer["steps"]
        scope["steps"] = AttrView(lambda k: local[k] if k in local else outer_steps._get(k),
                                  lambda: list(local) + list(outer_steps._keys()), "steps")
        if step.repeat is None:
            scope[step.as_] = item
        scope["loop"] = {"index": idx, "first": idx == 0, "last": idx == total - 1, "length": total}
        outer_bare = outer[BARE_KEY]

        def bare(name: str) -> Any:
            if name in local:
                return local[name]
            return outer_bare(name)
        scope[BARE_KEY] = bare
        it = Iteration(idx, item, scope, loop_key, started=time.time(), replay=replay)
        try:
            if step.filter is not None \
                    and not render(step.filter, scope, f"step {step.id!r}, field 'filter'"):
                it.status = "skipped"
                return it
            for body in step.do or ():
                self._body_step(body, it, local, loop_key, f"{key}[{idx}]")
                if it.status == "failed":
                    break
        except TemplateError as exc:
            it.status, it.error = "failed", {"type": type(exc).__name__, "message": exc.message}
        it.finished = time.time()
        return it

    def _body_step(self, body: Step, it: Iteration, local: dict[str, AttrView], loop_key: str,
                   key: str) -> None:
        scope = dict(it.scope)
        sid = body.id
        if body.if_ is not None and not render(body.if_, scope, f"step {sid!r}, field 'if'"):
            local[sid] = body_step_view({"status": "skipped", "result": None, "error": None, "attempts": 0},
                                        sid)
            return
        if body.let:
            let: dict[str, Any] = {}
            scope["let"] = AttrView.of(let, "let")
            for name, tmpl in body.let.items():
                let[name] = render_deep(tmpl, scope, f"step {sid!r}, field 'let.{name}'")
        result, attempts, ctx_writes = None, 0, {}
        if body.is_loop:
            inner_key = f"{loop_key}[{it.idx}].{sid}"
            outcome = self.run_repeat(body, scope, inner_key, key) if body.repeat else \
                self.run_foreach(body, scope, inner_key, key)
            result = loop_results(self.host.store, self.host.run_id, inner_key, outcome.total)
            if outcome.error is not None:
                it.status, it.error = "failed", outcome.error
            elif outcome.stopped:  # stopped by a request: so is this iteration, which is no failure
                raise StopRun(outcome.stopped, None, outcome.pause)
        elif body.tool is not None:
            args = render_deep(body.with_, scope, f"step {sid!r}, field 'with'")
            try:
                if it.replay is not None:  # run by another worker: its recorded outcome
                    done = it.replay.get(sid) or {
                        "status": "failed", "result": None, "attempts": 0, "error": {
                            "type": "ReplayMismatch", "message": "the variables this iteration's conditions "
                                                                 "read changed while another worker ran it"}}
                    if done["status"] == "failed":
                        raise StepFailed(done["error"], done["result"], done["attempts"])
                    result, attempts, ctx_writes = done["result"], done["attempts"], done["ctx_writes"]
                else:
                    result, _meta, attempts, ctx_writes = self.host.call_tool(
                        body, args, f"{key}/{sid}", f"step {sid!r}, iteration {it.idx}")
                    it.recorded[sid] = {"status": "completed", "result": result, "error": None,
                                        "attempts": attempts, "ctx_writes": ctx_writes or {}}
            except StepFailed as failed:
                error = mask(dict(failed.error), self.host.secrets)
                it.recorded[sid] = {"status": "failed", "result": failed.result, "error": error,
                                    "attempts": failed.attempts, "ctx_writes": {}}
                local[sid] = body_step_view({"status": "failed", "result": failed.result, "error": error,
                                    "attempts": failed.attempts}, sid)
                it.attempts += failed.attempts
                if body.on_failure == "continue":
                    return
                it.status, it.error = "failed", {**error, "step": sid}
                return
        it.attempts += attempts
        it.result = result
        local[sid] = body_step_view({"status": "completed", "result": result, "error": None,
                                     "attempts": attempts}, sid)
        if body.vars.before or body.vars.after or ctx_writes:
            it.blocks.append((body, result, {**scope, "__ctx_writes__": ctx_writes}))


def _allowed_failures(spec: int | str, total: int) -> int:
    if isinstance(spec, str):
        return int(float(spec.rstrip("%")) * total / 100)
    return int(spec)


__all__ = ["LoopOutcome", "Loops"]
