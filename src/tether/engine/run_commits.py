"""A run's variables in memory and the commits that change them.

Every state change of a run goes through :meth:`RunCommits.commit`: one store
transaction that writes step records, only the variables that changed, their history,
the events and the cursor, fenced on the run's lease epoch and on the checkpoint the
variables in memory are as of. :meth:`RunCommits.settle` renders again when someone
else committed first.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..env import mask
from ..errors import StateMoved, UnstorableValue
from ..flow.models import Flow
from ..store import codec
from ..store.base import Commit, CurrentVar, EventWrite, RunRecord, RunUpdate, StepWrite, Store, VarWrite
from ..store.value_refs import StoredValue, resolved
from ..templates import MISSING
from ..variables import VarMeta, VarState, same_value
from ..vault import Vault, mask_text

_T = TypeVar("_T")
_OPTIMISTIC_TRIES = 3  # attempts refused because someone else committed, before holding them off


class RunCommits:
    """One run's committed state as this process knows it (variables, the checkpoint
    ``seq`` they are as of, secrets to mask) and the only way to change it."""

    def __init__(self, store: Store, run: RunRecord, flow: Flow, state: VarState, vault: Vault,
                 secrets: list[str], emit: Callable[[str, dict[str, Any]], None],
                 listening: Callable[[], bool]) -> None:
        self.store, self.run_id, self.epoch, self.seq = store, run.run_id, run.lease_epoch, run.seq
        self.state, self.vault, self.emit = state, vault, emit
        self.secrets = secrets  # shared with the runner, which masks with them; grows as secrets load
        self.listening = listening  # events are only built when someone subscribed to them
        self.durability = flow.checkpoint.durability
        self.secret_vars = set(flow.secret_vars)
        self.temp_vars = set(flow.temp_vars)
        self.lock = threading.RLock()  # ctx.checkpoint() and loop workers may commit from other threads
        self._commits_since_flush, self._last_flush = 0, time.monotonic()

    def commit(self, *, steps: tuple[StepWrite, ...] = (), writes: Iterable[VarWrite] = (),
                events: tuple[EventWrite, ...] = (), run: RunUpdate | None = None,
                step_event: tuple[str, str, dict[str, Any]] | None = None,
                iterations: tuple[Any, ...] = ()) -> int:
        writes = tuple(writes)
        with self.lock:  # ctx.checkpoint() and loop workers may commit from other threads
            flush = (run is not None and run.status is not None) or self._reads_due()
            commit = Commit(self.run_id, self.epoch, steps, writes, events, run,
                            self.state.take_accesses() if flush else (), self.durability, self.seq,
                            iterations, fenced=True)  # StateMoved if anyone else committed: see settle
            try:
                result = self.store.commit(commit)
            except StateMoved:
                for name, count, _at in commit.accesses:  # counted again with the next commit
                    self.state.accesses[name] = self.state.accesses.get(name, 0) + count
                raise
            self.seq = result.seq
            for name, version in result.versions.items():
                self.state.set_version(name, version)
            self._hold_stored(writes)  # under the lock: writes are staged and committed under it
        if not self.listening():
            return self.seq
        if step_event is not None:  # stored as the step record itself, announced like any event
            self.emit(step_event[0], {"run_id": self.run_id, "seq": self.seq, "step_id": step_event[1],
                                      "data": step_event[2]})
        for e in events:
            self.emit(e.type, {"run_id": self.run_id, "seq": self.seq, "step_id": e.step_id, "data": e.data})
        for w in writes:
            self.emit("var.deleted" if w.delete else "var.set",
                      {"run_id": self.run_id, "seq": self.seq, "name": w.name, "source_step": w.source_step,
                       "value": None if w.delete or w.secret else resolved(self.state.values.get(w.name)),
                       "version": result.versions.get(w.name)})
        return self.seq

    def _hold_stored(self, writes: tuple[VarWrite, ...]) -> None:
        """After their commit, hold the variables written with an offloaded value as
        references to the blob store instead of in memory (secret ones stay: their stored
        value is ciphertext)."""
        for w in writes:
            if w.value is not None and w.value.blob is not None and not w.secret:
                self.state.stored(w.name, StoredValue(w.value.data, w.value.size, self.store.load_blob))

    _READS_EVERY = 200      # commits between flushes of template read counts
    _READS_SECONDS = 2.0    # ... or seconds, whichever comes first

    def _reads_due(self) -> bool:
        """Whether this commit carries the read counts gathered since the last flush. Reads
        are metadata: batching them saves a statement per step; a crash may lose the counts
        of the last couple of seconds, never a variable."""
        self._commits_since_flush += 1
        now_ = time.monotonic()
        if self._commits_since_flush >= self._READS_EVERY or now_ - self._last_flush >= self._READS_SECONDS:
            self._commits_since_flush, self._last_flush = 0, now_
            return True
        return False

    def settle(self, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt``, which renders against the variables in memory and ends in one
        commit; while the store refuses that commit because someone else committed since
        (``tether vars set``, the API), take the latest committed state and run it again.
        Every commit of the run is fenced this way, so a value rendered at a commit has seen
        every write committed before it: an outside write is never overwritten by a value
        computed before it (SPEC §4.3). A refused attempt wrote nothing. Writers that keep
        winning (a script writing in a loop) are held off for one last attempt, so the run
        always gets its commit."""
        with self.lock:
            for _ in range(_OPTIMISTIC_TRIES):
                try:
                    return attempt()
                except StateMoved:
                    self.reload_foreign()
            with self.store.hold(self.run_id):  # nobody else commits until this attempt has
                self.reload_foreign()
                return attempt()

    def took_commit(self, seq: int) -> None:
        """The store committed for this run outside :meth:`commit` (a loop's start) and the
        run is at checkpoint ``seq`` now: fence the next commit on it, after taking in what
        others committed too if that was not the only commit since ours. Call it holding
        :attr:`lock`."""
        if seq == self.seq + 1:
            self.seq = seq
        else:
            self.reload_foreign(seq)

    def reload_foreign(self, seq: int | None = None) -> None:
        """Someone else committed since our last commit: mirror the run's committed variables
        (dropping what they deleted and what a refused attempt applied) and fence our next
        commit on their checkpoint ``seq`` (polled now unless given; always read before the
        variables, so a write in between can only make that commit retry)."""
        if seq is None:
            seq = self.store.poll(self.run_id)[0]
        records = self.store.read_state(self.run_id)
        for name in [n for n in self.state.values if n not in records]:
            self.state.remove(name)
        self.load_vars(records)
        self.seq = seq

    def load_vars(self, records: dict[str, CurrentVar]) -> None:
        """Take committed variables into memory, decrypting secret ones. Large values may be
        :class:`~tether.store.value_refs.StoredValue` s (``Store.read_state``): they are
        held as such, read back from the blob store when read."""
        for name, rec in list(records.items()):
            if rec.secret:
                value = self.vault.decrypt(resolved(rec.value), f"run {self.run_id}: variable {name}")
                records[name] = rec._replace(value=value)
                self.add_secret(value)
        self.state.load(records)

    def add_secret(self, value: Any) -> None:
        text = mask_text(value)
        if text is not None and text not in self.secrets:
            self.secrets.append(text)
            self.secrets.sort(key=len, reverse=True)

    def stage_writes(self, values: dict[str, Any], vtype: str, source: str,
                     block: str = "vars") -> list[VarWrite]:
        """Apply ``values`` to the in-memory state and return writes for those that changed.

        Every value is encoded before any is applied: one the store cannot hold raises
        UnstorableValue naming it (``step 'ID', field 'vars.NAME'``) and changes nothing."""
        state = self.state
        if self.secrets:
            values = mask(values, self.secrets)  # a value derived from a secret must not reach the store
        encoded = []
        for name, value in values.items():
            old = state.values.get(name, MISSING)
            held = type(old) is StoredValue  # in the blob store: compared by content hash, once encoded
            if old is not MISSING and not held and same_value(old, value):
                continue
            field = f"{block}.{name}"
            try:
                stored = self.vault.encrypt(value, field) if name in self.secret_vars else value
                data = codec.encode(stored, field=field)
            except UnstorableValue as exc:
                raise exc.at(f"step {source!r}") if vtype == "step_result" else exc from None
            if held and data.data == old.data:
                continue
            encoded.append((name, value, data))
        out = []
        for name, value, data in encoded:
            scope = "temp" if name in self.temp_vars else "run"
            secret = name in self.secret_vars
            prev = state.meta.get(name)
            state.apply(name, value, VarMeta(vtype, scope, prev.version if prev else 0, secret))
            if secret:
                self.add_secret(value)
            out.append(VarWrite(name, data, vtype, scope, source, secret))
        return out


__all__ = ["RunCommits"]
