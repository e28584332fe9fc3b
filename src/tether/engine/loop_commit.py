"""A loop's iterations from running their body to being committed.

An iteration runs its body without writing anything; its ``vars`` blocks are rendered
when it commits, one iteration at a time in index order, against the latest values.
With ``parallel: N`` a :class:`GroupCommitter` thread commits everything that finished
during its previous commit in one transaction.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..env import mask
from ..errors import TemplateError, UnstorableValue
from ..flow.models import Step
from ..store import codec
from ..store.base import IterationWrite, VarWrite
from ..templates import MISSING
from .loop_host import LoopHost


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



class IterationCommits:
    """Commits a run's loop iterations: directly, or through the group committer of a
    parallel loop, at most once each for a loop shared with other workers."""

    def __init__(self, host: LoopHost) -> None:
        self.host = host
        self._committers: dict[str, GroupCommitter] = {}
        # shared loops: iterations this process committed (a claim that expired while its
        # iteration waited may have been run again elsewhere; only one result counts)
        self._shared_done: dict[str, set[int]] = {}

    @contextmanager
    def grouped(self, loop_key: str, name: str) -> Iterator[None]:
        """Within this block, the loop's iterations are group-committed by a thread called ``name``."""
        committer = GroupCommitter(self.commit, name)
        self._committers[loop_key] = committer
        try:
            yield
        finally:
            committer.close()
            del self._committers[loop_key]

    @contextmanager
    def shared(self, loop_key: str, done: set[int]) -> Iterator[None]:
        """Within this block, an iteration of the loop in ``done`` (or committed since) is
        never committed (again)."""
        self._shared_done[loop_key] = done
        try:
            yield
        finally:
            del self._shared_done[loop_key]

    def submit(self, it: Iteration) -> None:
        """Commit the iteration (with others that are ready, in one transaction); return when done."""
        self.submit_all([it])

    def submit_all(self, its: list[Iteration]) -> None:
        """Commit these iterations of one loop (with others that are ready: through its group
        committer, if it has one, in the same transaction as those); return when done."""
        committer = self._committers.get(its[0].loop_key) if its else None
        if committer is None:
            if its:
                self.commit(its)
        else:
            committer.submit(*its)

    def commit(self, batch: list[Iteration]) -> None:
        """Commit ``batch`` in one transaction (a shared loop's iteration at most once); return when done."""
        shared = self._shared_done.get(batch[0].loop_key) if batch else None
        if shared is None:
            self.host.commits.settle(lambda: self._commit_batch(batch))
            return
        with self.host.commits.lock:  # a shared loop commits from two threads: never one iteration twice
            fresh = [it for it in batch if it.idx not in shared]
            if fresh:
                self.host.commits.settle(lambda: self._commit_batch(fresh))
                shared.update(it.idx for it in fresh)

    def _commit_batch(self, batch: list[Iteration]) -> None:
        """Render the iterations' ``vars`` blocks one at a time, in order, against the
        variables in memory, and commit them with their records (``RunCommits.settle`` runs
        this again, unchanged iterations and all, when its commit is refused)."""
        writes: list[VarWrite] = []
        records: list[IterationWrite] = []
        ends: list[tuple[Iteration, str, dict[str, Any] | None]] = []
        for it in batch:
            status, error = it.status, it.error
            res = None
            if it.result is not None and status == "completed":
                try:  # checked when its tool returned; an inner loop's list of results was not
                    res = codec.encode(mask(it.result, self.host.secrets), field="result")
                except UnstorableValue as exc:
                    status, error = "failed", exc.at(f"loop {it.loop_key!r}, iteration {it.idx}").error()
            if status == "completed" and it.blocks:
                undo = self._snapshot(it)
                mine: list[VarWrite] = []
                try:
                    for body, result, scope in it.blocks:  # one iteration at a time, latest values
                        ctx_writes = scope.get("__ctx_writes__")
                        if ctx_writes:
                            mine += self.host.commits.stage_writes(ctx_writes, "step_result", body.id)
                        scope["result"] = result
                        for phase in ("before", "after"):
                            block = getattr(body.vars, phase)
                            if block:
                                field = "vars" + (".before" if phase == "before" else "")
                                values = self.host.render_block(block, scope, body.id, field)
                                mine += self.host.commits.stage_writes(values, "step_result", body.id, field)
                    writes += mine  # this iteration's writes only once all of them could be made
                except (TemplateError, UnstorableValue) as exc:
                    self._restore(undo)
                    status, error = "failed", {"type": type(exc).__name__, "message": exc.message}
                    res = None
            records.append(IterationWrite(it.loop_key, it.idx, status, it.attempts, res, error,
                                          it.started, it.finished))
            ends.append((it, status, error))
        self.host.commits.commit(writes=writes, iterations=tuple(records))
        for it, status, error in ends:
            it.status, it.error = status, error

    def _snapshot(self, it: Iteration) -> dict[str, Any]:
        names: set[str] = set()
        for body, _, scope in it.blocks:
            names.update(body.vars.before, body.vars.after, scope.get("__ctx_writes__", {}))
        state = self.host.commits.state
        return {n: (state.values.get(n, MISSING), state.meta.get(n)) for n in names}

    def _restore(self, undo: dict[str, Any]) -> None:
        state = self.host.commits.state
        for name, (value, meta) in undo.items():
            if value is MISSING:
                state.remove(name)
            else:
                state.apply(name, value, meta)


class GroupCommitter:
    """A thread that commits the iterations handed to it: everything that finished while the
    previous commit ran goes into the next transaction. ``submit`` returns once the
    iterations handed to it are committed (or raises what their commit raised)."""

    def __init__(self, commit: Callable[[list[Iteration]], None], name: str) -> None:
        self._commit = commit
        self._cond = threading.Condition()
        self._pending: list[Iteration] = []
        self._closed = False
        self._errors: dict[int, BaseException] = {}
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, *its: Iteration) -> None:
        for it in its:
            it.committed = threading.Event()
        with self._cond:
            self._pending.extend(its)
            self._cond.notify()
        errors = []
        for it in its:
            assert it.committed is not None
            it.committed.wait()
            errors.append(self._errors.pop(id(it), None))
        error = next((e for e in errors if e is not None), None)
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


__all__ = ["GroupCommitter", "Iteration", "IterationCommits"]
