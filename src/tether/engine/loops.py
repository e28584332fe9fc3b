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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import orjson

from ..env import mask
from ..errors import TemplateError, UnstorableValue
from ..spec.models import Step
from ..store import codec
from ..store.base import EventWrite, IterationWrite, SharedLoopWork, VarWrite
from ..templates import BARE_KEY, MISSING, AttrView, render, render_deep

if TYPE_CHECKING:
    from .runner import Runner

BATCH = 1000
_FINISHED = ("completed", "failed", "skipped")


class MapView(AttrView):
    """``map.*`` of one loop, computed from its stored iteration records."""

    def __init__(self, store: Any, run_id: str, loop_key: str, total: int) -> None:
        self._store, self._run_id, self._loop_key, self._total = store, run_id, loop_key, total
        self._counts: dict[str, int] | None = None
        super().__init__(self._value, lambda: KEYS, f"map of {loop_key}")

    @staticmethod
    def counts(by_status: dict[str, int], total: int) -> dict[str, Any]:
        """The scalar ``map.*`` aggregates (SPEC §5) from ``{iteration status: count}``:
        ``completed`` counts every finished iteration, successful or not. The loop step's
        ``meta.map`` is this same document, so the two never disagree."""
        ok, failed, skipped = by_status.get("completed", 0), by_status.get("failed", 0), by_status.get("skipped", 0)
        ran = total - skipped
        return {"total": total, "completed": ok + failed, "successful": ok, "failed": failed,
                "skipped": skipped, "pending": total - ok - failed - skipped,
                "success_rate": ok / ran if ran > 0 and (ok + failed) else 0}

    def _value(self, key: str) -> Any:
        if key not in KEYS:
            raise KeyError(key)
        if key == "results":
            return [r.result for r in self._store.iterations(self._run_id, self._loop_key, status="completed")]
        if key == "failures":
            out = []
            for r in self._store.iterations(self._run_id, self._loop_key, status="failed"):
                item = self._store.loop_items(self._run_id, self._loop_key, r.idx, r.idx + 1)
                out.append({"index": r.idx, "item": item[0] if item else None, "error": r.error})
            return out
        if self._counts is None:
            self._counts = self.counts(self._store.iteration_counts(self._run_id, self._loop_key), self._total)
        return self._counts[key]


KEYS = ("total", "completed", "successful", "failed", "skipped", "pending", "success_rate", "results", "failures")


def _shorten(value: Any, width: int) -> Any:
    """``value`` itself when its JSON text fits ``width``; else that text cut in the middle
    (the end of a message, such as a stderr tail, says the most)."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) <= width:
        return value
    half = (width - 1) // 2
    return text[:half] + "…" + text[-half:]


def loop_results(store: Any, run_id: str, loop_key: str, total: int) -> list[Any]:
    """The loop step's result: each iteration's result in input order (None where it failed or was skipped)."""
    out: list[Any] = [None] * total
    for r in store.iterations(run_id, loop_key):
        if r.status == "completed" and r.idx < total:
            out[r.idx] = r.result
    return out


@dataclass
class Iteration:
    """One iteration between running its body and being committed."""

    idx: int
    item: Any
    scope: dict[str, Any]
    loop_key: str
    status: str = "completed"
    result: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    started: float = 0.0
    finished: float = 0.0
    blocks: list[tuple[Step, Any, dict[str, Any]]] = field(default_factory=list)
    committed: threading.Event | None = None
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)  # body step -> its tool's outcome
    replay: dict[str, dict[str, Any]] | None = None  # outcomes another worker recorded: tools are not run


@dataclass
class LoopOutcome:
    loop_key: str
    total: int
    counts: dict[str, int]
    error: dict[str, Any] | None = None
    stopped: str | None = None   # "paused", "cancelled" or "pending" when a request stopped the loop


class Loops:
    """Runs loop steps for one :class:`Runner`."""

    def __init__(self, runner: "Runner") -> None:
        self.r = runner
        self._committers: dict[str, _GroupCommitter] = {}
        # shared loops: iterations this process committed (a claim that expired while its
        # iteration waited may have been run again elsewhere; only one result counts)
        self._shared_done: dict[str, set[int]] = {}

    # ------------------------------------------------------------ collection
    def _collection(self, step: Step, scope: dict[str, Any]) -> list[Any]:
        where = f"step {step.id!r}, field 'foreach'"
        if step.foreach_file is not None:
            path = Path(self.r.loaded.base_dir) / step.foreach_file
            try:
                if not path.is_file():  # a device or FIFO would hang or stream forever
                    raise OSError(f"not a regular file: {path}")
                data = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise TemplateError(f"step {step.id!r}: cannot read JSON input {path}: {exc}") from None
            if step.json_path:
                from ..templates import _jsonpath
                return _jsonpath(data, step.json_path)
            items = data
        else:
            items = render_deep(step.foreach, scope, where)
        if not isinstance(items, list):
            raise TemplateError(f"{where}: must give a list, not a {type(items).__name__}")
        return items

    def _start(self, step: Step, scope: dict[str, Any], loop_key: str) -> int:
        total = self.r.store.loop_size(self.r.run_id, loop_key)
        if total is not None:
            return total  # resumed: the stored collection, never re-rendered
        items = self._collection(step, scope)

        def encoded() -> Iterator[codec.Encoded]:
            for i, x in enumerate(items):  # an element the store cannot hold fails the loop step
                try:
                    yield codec.encode(x, field=f"foreach[{i}]")
                except UnstorableValue as exc:
                    raise exc.at(f"step {step.id!r}") from None
        with self.r._commit_lock:
            total = self.r.store.start_loop(self.r.run_id, self.r.epoch, loop_key, encoded(),
                                            EventWrite("loop.started", step.id, {"loop_key": loop_key}))
            seq = self.r.store.poll(self.r.run_id)[0]
            if seq == self.r.seq + 1:
                self.r.seq = seq  # the loop's start was the only commit since ours
            else:
                self.r._reload_foreign(seq)
        return total

    def _pending_items(self, loop_key: str, total: int, retry_failed: bool) -> Iterator[tuple[int, Any]]:
        store, run_id = self.r.store, self.r.run_id
        per_batch = store.finished_per_batch(run_id, loop_key, BATCH, include_failed=not retry_failed)
        for start in range(0, total, BATCH):
            stop = min(start + BATCH, total)
            if per_batch.get(start // BATCH, 0) == stop - start:
                continue  # every element of this batch has finished: nothing to read
            done = store.finished_indices(run_id, loop_key, start, stop, include_failed=not retry_failed)
            items = self.r.store.loop_items(self.r.run_id, loop_key, start, stop)
            for offset, item in enumerate(items):
                if start + offset not in done:
                    yield start + offset, item

    # ------------------------------------------------------------ foreach
    def run_foreach(self, step: Step, scope: dict[str, Any], loop_key: str, key: str,
                    retry_failed: bool = False) -> LoopOutcome:
        """Run the loop's unfinished iterations; return its aggregates when it stops."""
        total = self._start(step, scope, loop_key)
        counts = dict(self.r.store.iteration_counts(self.r.run_id, loop_key))
        if retry_failed:
            counts["failed"] = 0
        allowed = _allowed_failures(step.max_failures, total)
        state = {"failed": counts.get("failed", 0), "stop": None,
                 "done": sum(counts.get(k, 0) for k in _FINISHED)}
        feed = self._pending_items(loop_key, total, retry_failed)
        feed_lock = threading.Lock()
        errors: list[BaseException] = []

        def next_item() -> tuple[int, Any] | None:
            if state["stop"] or state["failed"] > allowed or self.r.stopping():
                return None
            with feed_lock:
                return next(feed, None)

        def work() -> None:
            try:
                while (job := next_item()) is not None:
                    it = self._iteration(step, loop_key, key, job[0], job[1], total, scope)
                    self._submit(it, step)
                    with feed_lock:
                        state["done"] += 1
                        if it.status == "failed":
                            state["failed"] += 1
                        done = state["done"]
                    if self.r.listening():
                        self.r.emit("loop.progress", {"run_id": self.r.run_id, "step_id": step.id,
                                                      "loop_key": loop_key, "index": it.idx, "total": total,
                                                      "done": done, "status": it.status})
            except BaseException as exc:  # handed to the loop's thread below
                errors.append(exc)
                state["stop"] = "error"

        if self._shares(step, loop_key):
            self._run_shared(step, scope, loop_key, key, total, state, allowed, retry_failed, errors)
        elif step.parallel <= 1:
            work()
        else:
            committer = _GroupCommitter(lambda batch: self._commit(batch, step), f"tether-{step.id}-commit")
            self._committers[loop_key] = committer
            threads = [threading.Thread(target=work, name=f"tether-{step.id}-{i}", daemon=True)
                       for i in range(step.parallel)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            committer.close()
            del self._committers[loop_key]
        if errors:
            raise errors[0]
        final = self.r.store.iteration_counts(self.r.run_id, loop_key)
        outcome = LoopOutcome(loop_key, total, final)
        finished = sum(final.get(s, 0) for s in _FINISHED)
        if final.get("failed", 0) > allowed:
            outcome.error = self._too_many_failures(step, loop_key, total, final.get("failed", 0))
        elif finished < total:
            outcome.stopped = self.r.stop_status()
        return outcome

    SHOWN_FAILURES = 5      # failed iterations listed in the loop step's error message
    LISTED_FAILURES = 20    # ... and in its ``failures`` member

    def _too_many_failures(self, step: Step, loop_key: str, total: int, failed: int) -> dict[str, Any]:
        """The loop step's error: how many iterations failed and, for the first of them, which
        element (index, item shortened) and why (a shell step's message has its exit code and
        stderr tail), in the message for people and as ``failures`` for programs."""
        store, run_id = self.r.store, self.r.run_id
        failures: list[dict[str, Any]] = []
        for start in range(0, total, BATCH):
            for rec in store.iterations(run_id, loop_key, start, min(start + BATCH, total), status="failed"):
                item = store.loop_items(run_id, loop_key, rec.idx, rec.idx + 1)
                error = rec.error if isinstance(rec.error, dict) else {"type": "Error", "message": str(rec.error)}
                failures.append({"index": rec.idx, "item": _shorten(item[0] if item else None, 80),
                                 "error": {k: _shorten(v, 400) if k == "message" else v for k, v in error.items()
                                           if k in ("type", "message", "step")}})
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
            lines.append(f"  ... and {failed - self.SHOWN_FAILURES} more (map.failures, or the loop step's record)")
        return {"type": "TooManyFailures", "message": "\n".join(lines), "failures": failures}

    # ------------------------------------------------------------ shared with other workers
    def _shares(self, step: Step, loop_key: str) -> bool:
        """Whether other workers may run this loop's iterations: a top-level parallel loop
        on a store that shares loops, whose body has no nested loop, pause or sub-flow."""
        return bool(isinstance(self.r.store, SharedLoopWork) and step.parallel > 1 and "[" not in loop_key
                    and not step.let and all(b.tool not in ("pause", "flow") and not b.is_loop for b in step.do or ()))

    def _run_shared(self, step: Step, scope: dict[str, Any], loop_key: str, key: str, total: int,
                    state: dict[str, Any], allowed: int, retry_failed: bool, errors: list[BaseException]) -> None:
        """Publish the unfinished iterations; ``parallel`` threads here and any idle worker
        elsewhere claim and run them; this run commits every one (its own as they finish,
        the others' as their outcomes arrive)."""
        from .lease import owner_id
        store, run_id = self.r.store, self.r.run_id
        store.work_publish(run_id, loop_key, [i for i, _ in self._pending_items(loop_key, total, retry_failed)])
        # committed already (by this run's earlier owners too): a claim of one of them, left
        # by an owner that died between its commit and removing the claim, is dropped
        done_before = store.finished_indices(run_id, loop_key, 0, total, include_failed=not retry_failed)
        self._shared_done[loop_key] = done_before
        me = f"{owner_id()}/{run_id}"
        lock = threading.Lock()

        def count(its: list[Iteration]) -> None:
            with lock:
                for it in its:
                    state["done"] += 1
                    state["failed"] += it.status == "failed"

        def stopped() -> bool:
            return bool(state["stop"]) or state["failed"] > allowed or self.r.stopping()

        def item(idx: int) -> Any:
            return store.loop_items(run_id, loop_key, idx, idx + 1)[0]

        def local() -> None:
            try:
                while not stopped():
                    claim = store.work_claim(me, self.r.ttl, run_id, loop_key)
                    if claim is None:
                        if store.work_left(run_id, loop_key) == 0:
                            return
                        time.sleep(0.05)  # others hold the rest; a dead worker's claims expire
                        continue
                    if claim[2] in done_before:
                        store.work_remove(run_id, loop_key, [claim[2]])
                        continue
                    it = self._iteration(step, loop_key, key, claim[2], claim[3], total, scope)
                    self._submit(it, step)
                    store.work_remove(run_id, loop_key, [it.idx])
                    count([it])
            except BaseException as exc:
                errors.append(exc)
                state["stop"] = "error"

        def collect() -> None:
            try:
                while not stopped():
                    done = store.work_collect(run_id, loop_key)
                    if not done:
                        if not any(t.is_alive() for t in threads):
                            return
                        time.sleep(0.05)
                        continue
                    indices = [i for i, _ in done]
                    seen = store.finished_indices(run_id, loop_key, min(indices), max(indices) + 1)
                    batch = []
                    for idx, outcome in done:
                        if idx in seen:
                            continue  # committed before a crash of the previous owner removed its row
                        it = self._iteration(step, loop_key, key, idx, item(idx), total, scope,
                                             replay=outcome["bodies"])
                        it.started, it.finished = outcome["started"], outcome["finished"]
                        batch.append(it)
                    if batch:
                        self._commit(batch, step)
                        count(batch)
                    store.work_remove(run_id, loop_key, indices)
            except BaseException as exc:
                errors.append(exc)
                state["stop"] = "error"

        committer = _GroupCommitter(lambda batch: self._commit(batch, step), f"tether-{step.id}-commit")
        self._committers[loop_key] = committer
        threads = [threading.Thread(target=local, name=f"tether-{step.id}-{i}", daemon=True)
                   for i in range(step.parallel)]
        collector = threading.Thread(target=collect, name=f"tether-{step.id}-collect", daemon=True)
        for t in threads:
            t.start()
        collector.start()
        for t in threads:
            t.join()
        collector.join()
        committer.close()
        del self._committers[loop_key]
        del self._shared_done[loop_key]

    def help(self, step: Step, loop_key: str, key: str, idx: int, item: Any,
             scope: dict[str, Any]) -> dict[str, Any]:
        """Run one published iteration for its run's owner: its body's tool outcomes
        (masked), for the owner to commit."""
        total = self.r.store.loop_size(self.r.run_id, loop_key) or 0
        it = self._iteration(step, loop_key, key, idx, item, total, scope)
        return {"bodies": mask(it.recorded, self.r.secrets), "started": it.started, "finished": it.finished}

    # ------------------------------------------------------------ repeat
    def run_repeat(self, step: Step, scope: dict[str, Any], loop_key: str, key: str) -> LoopOutcome:
        """Run ``do`` until ``repeat.until`` is true after an iteration, or ``repeat.max`` times."""
        assert step.repeat is not None
        done = self.r.store.iterations(self.r.run_id, loop_key)
        start = len(done)
        if start and self._until(step, scope, start - 1, done[-1].result):
            return LoopOutcome(loop_key, start, self.r.store.iteration_counts(self.r.run_id, loop_key))
        for idx in range(start, step.repeat.max):
            if self.r.stopping():
                return LoopOutcome(loop_key, idx, self.r.store.iteration_counts(self.r.run_id, loop_key),
                                   stopped=self.r.stop_status())
            it = self._iteration(step, loop_key, key, idx, None, step.repeat.max, scope)
            self._submit(it, step)
            if it.status == "failed":
                counts = self.r.store.iteration_counts(self.r.run_id, loop_key)
                return LoopOutcome(loop_key, idx + 1, counts, error={
                    "type": "IterationFailed", "message": f"iteration {idx} failed: {it.error['message']}"})
            if self._until(step, scope, idx, it.result):
                break
        counts = self.r.store.iteration_counts(self.r.run_id, loop_key)
        return LoopOutcome(loop_key, sum(counts.values()), counts)

    def _until(self, step: Step, scope: dict[str, Any], idx: int, result: Any) -> bool:
        s = dict(scope)
        s.update(result=result, loop={"index": idx, "first": idx == 0})
        return bool(render(step.repeat.until, s, f"step {step.id!r}, field 'repeat.until'"))  # type: ignore[union-attr]

    # ------------------------------------------------------------ one iteration
    def _iteration(self, step: Step, loop_key: str, key: str, idx: int, item: Any, total: int,
                   outer: dict[str, Any], replay: dict[str, dict[str, Any]] | None = None) -> Iteration:
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
            if step.filter is not None and not render(step.filter, scope, f"step {step.id!r}, field 'filter'"):
                it.status = "skipped"
                return it
            for body in step.do or ():
                self._body_step(step, body, it, local, loop_key, f"{key}[{idx}]")
                if it.status == "failed":
                    break
        except TemplateError as exc:
            it.status, it.error = "failed", {"type": "TemplateError", "message": exc.message}
        it.finished = time.time()
        return it

    def _body_step(self, loop: Step, body: Step, it: Iteration, local: dict[str, AttrView], loop_key: str,
                   key: str) -> None:
        from .attempts import StepFailed
        scope = dict(it.scope)
        sid = body.id
        if body.if_ is not None and not render(body.if_, scope, f"step {sid!r}, field 'if'"):
            local[sid] = _view({"status": "skipped", "result": None, "error": None, "attempts": 0}, sid)
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
            result = loop_results(self.r.store, self.r.run_id, inner_key, outcome.total)
            if outcome.error is not None:
                it.status, it.error = "failed", outcome.error
            elif outcome.stopped:
                it.status, it.error = "failed", {"type": "Stopped", "message": f"inner loop {outcome.stopped}"}
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
                    result, _meta, attempts, ctx_writes = self.r._call_tool(
                        body, args, scope, f"{key}/{sid}", f"step {sid!r}, iteration {it.idx}")
                    it.recorded[sid] = {"status": "completed", "result": result, "error": None,
                                        "attempts": attempts, "ctx_writes": ctx_writes or {}}
            except StepFailed as failed:
                error = mask(dict(failed.error), self.r.secrets)
                it.recorded[sid] = {"status": "failed", "result": failed.result, "error": error,
                                    "attempts": failed.attempts, "ctx_writes": {}}
                local[sid] = _view({"status": "failed", "result": failed.result, "error": error,
                                    "attempts": failed.attempts}, sid)
                it.attempts += failed.attempts
                if body.on_failure == "continue":
                    return
                it.status, it.error = "failed", {**error, "step": sid}
                return
        it.attempts += attempts
        it.result = result
        local[sid] = _view({"status": "completed", "result": result, "error": None, "attempts": attempts}, sid)
        if body.vars.before or body.vars.after or ctx_writes:
            it.blocks.append((body, result, {**scope, "__ctx_writes__": ctx_writes}))

    # ------------------------------------------------------------ commit
    def _submit(self, it: Iteration, loop: Step) -> None:
        """Commit the iteration (with others that are ready, in one transaction); return when done."""
        committer = self._committers.get(it.loop_key)
        if committer is None:
            self._commit([it], loop)
        else:
            committer.submit(it)

    def _commit(self, batch: list[Iteration], loop: Step) -> None:
        shared = self._shared_done.get(batch[0].loop_key) if batch else None
        if shared is None:
            self.r._settled(lambda: self._commit_batch(batch))
            return
        with self.r._commit_lock:  # a shared loop commits from two threads: never one iteration twice
            fresh = [it for it in batch if it.idx not in shared]
            if fresh:
                self.r._settled(lambda: self._commit_batch(fresh))
                shared.update(it.idx for it in fresh)

    def _commit_batch(self, batch: list[Iteration]) -> None:
        """Render the iterations' ``vars`` blocks one at a time, in order, against the
        variables in memory, and commit them with their records (``Runner._settled`` runs
        this again, unchanged iterations and all, when its commit is refused)."""
        writes: list[VarWrite] = []
        records: list[IterationWrite] = []
        ends: list[tuple[Iteration, str, dict[str, Any] | None]] = []
        for it in batch:
            status, error = it.status, it.error
            res = None
            if it.result is not None and status == "completed":
                try:  # checked when its tool returned; an inner loop's list of results was not
                    res = codec.encode(mask(it.result, self.r.secrets), field="result")
                except UnstorableValue as exc:
                    status, error = "failed", exc.at(f"loop {it.loop_key!r}, iteration {it.idx}").error()
            if status == "completed" and it.blocks:
                undo = self._snapshot(it)
                mine: list[VarWrite] = []
                try:
                    for body, result, scope in it.blocks:  # one iteration at a time, latest values
                        ctx_writes = scope.get("__ctx_writes__")
                        if ctx_writes:
                            mine += self.r._writes(ctx_writes, "step_result", body.id)
                        scope["result"] = result
                        for phase in ("before", "after"):
                            block = getattr(body.vars, phase)
                            if block:
                                field = "vars" + (".before" if phase == "before" else "")
                                values = self.r._render_block(block, scope, body.id, field)
                                mine += self.r._writes(values, "step_result", body.id, field)
                    writes += mine  # this iteration's writes only once all of them could be made
                except (TemplateError, UnstorableValue) as exc:
                    self._restore(undo)
                    status, error = "failed", {"type": type(exc).__name__, "message": exc.message}
                    res = None
            records.append(IterationWrite(it.loop_key, it.idx, status, it.attempts, res, error,
                                          it.started, it.finished))
            ends.append((it, status, error))
        self.r._commit(writes=writes, iterations=tuple(records))
        for it, status, error in ends:
            it.status, it.error = status, error

    def _snapshot(self, it: Iteration) -> dict[str, Any]:
        names: set[str] = set()
        for body, _, scope in it.blocks:
            names.update(body.vars.before, body.vars.after, scope.get("__ctx_writes__", {}))
        state = self.r.state
        return {n: (state.values.get(n, MISSING), state.meta.get(n)) for n in names}

    def _restore(self, undo: dict[str, Any]) -> None:
        state = self.r.state
        for name, (value, meta) in undo.items():
            if value is MISSING:
                state.remove(name)
            else:
                state.apply(name, value, meta)


class _GroupCommitter:
    """A thread that commits the iterations handed to it: everything that finished while the
    previous commit ran goes into the next transaction. ``submit`` returns once the
    iteration is committed (or raises what the commit raised)."""

    def __init__(self, commit: Callable[[list[Iteration]], None], name: str) -> None:
        self._commit = commit
        self._cond = threading.Condition()
        self._pending: list[Iteration] = []
        self._closed = False
        self._errors: dict[int, BaseException] = {}
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, it: Iteration) -> None:
        it.committed = threading.Event()
        with self._cond:
            self._pending.append(it)
            self._cond.notify()
        it.committed.wait()
        error = self._errors.pop(id(it), None)
        if error is not None:
            raise error

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending and self._closed:
                    return
                batch, self._pending = sorted(self._pending, key=lambda x: x.idx), []
            try:
                self._commit(batch)
            except BaseException as exc:  # handed back to the workers waiting on this batch
                for it in batch:
                    self._errors[id(it)] = exc
            for it in batch:
                if it.committed is not None:
                    it.committed.set()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()


def _allowed_failures(spec: int | str, total: int) -> int:
    if isinstance(spec, str):
        return int(float(spec.rstrip("%")) * total / 100)
    return int(spec)


def _view(data: dict[str, Any], sid: str) -> AttrView:
    data.setdefault("meta", {})
    return AttrView.of(data, f"steps.{sid}")


__all__ = ["Loops", "LoopOutcome", "MapView", "loop_results"]
