"""The reference store: plain dictionaries behind one lock, gone when the process ends.
It encodes values exactly as the durable stores do, so the contract suite exercises the
same codec paths on every backend."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ..errors import ConflictError, LeaseLost, NotFound, StateMoved, StoreError
from . import codec
from .base import (
    BlobStore,
    Commit,
    CommitResult,
    CurrentVar,
    RunRecord,
    VarRecord,
    VarWrite,
    now,
)
from .blob_memory import MemoryBlobs, blob_digests
from .memory_history import MemoryHistory
from .memory_leases import MemoryLeases
from .memory_loops import MemoryLoops
from .memory_retention import MemoryRetention
from .memory_shared import MemoryShared
from .value_refs import lazy_decode


class MemoryStore(MemoryHistory, MemoryLeases, MemoryLoops, MemoryRetention, MemoryShared):
    """A Store in process memory (``memory://``)."""

    def __init__(self, url: str = "memory://", blobs: BlobStore | None = None) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._runs: dict[str, RunRecord] = {}
        self._vars: dict[str, dict[str, dict[str, Any]]] = {}
        self._history: dict[str, list[tuple]] = {}
        self._steps: dict[str, list[tuple]] = {}
        self._events: dict[str, list[tuple]] = {}
        self.blobs: BlobStore = blobs if blobs is not None else MemoryBlobs(url)
        self.blobs_url = None if blobs is None else blobs.url
        self.own_blobs = self.blobs
        self._loops: dict[tuple[str, str], list[bytes]] = {}
        self._iterations: dict[tuple[str, str], dict[int, tuple]] = {}
        # value, version, immutable, deleted, at
        self._shared: dict[str, tuple[Any, int, bool, bool, float]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._recovery_seq: dict[str, int] = {}  # the seq after a run's last automatic takeover

    def _decode(self, data: bytes | None, what: str) -> Any:
        return None if data is None else codec.decode(data, self.blobs.get, what=what)

    def load_blob(self, digest: str) -> bytes | None:  # see BlobReferences.load_blob
        return self.blobs.get(digest)

    def _keep(self, enc: codec.Encoded | None) -> bytes | None:
        if enc is None:
            return None
        if enc.blob is not None:
            self.blobs.put(*enc.blob)
        return enc.data

    def referenced_hashes(self) -> set[str]:
        with self._lock:
            found = {d for rows in self._history.values() for r in rows for d in blob_digests(r)}
            found.update(d for rows in self._steps.values() for r in rows for d in blob_digests(r))
            found.update(d for rows in self._loops.values() for d in blob_digests(rows))
            found.update(d for its in self._iterations.values() for r in its.values()
                         for d in blob_digests(r))
            return found

    def _run(self, run_id: str) -> RunRecord:
        try:
            return self._runs[run_id]
        except KeyError:
            raise NotFound(f"no run {run_id!r} in {self.url}") from None

    # ------------------------------------------------------------ runs
    def create_run(self, run: RunRecord, owner: str | None, ttl: float) -> tuple[RunRecord, bool]:
        with self._lock:
            if run.run_id in self._runs:
                return self._runs[run.run_id], False
            codec.encode(run.inputs)
            t = now()
            rec = replace(run, created_at=run.created_at or t, seq=0, lease_owner=owner,
                          lease_epoch=1, lease_expires=t + ttl,
                          inputs=codec.loads(codec.dumps(run.inputs)),
                          flow_data=codec.loads(codec.dumps(run.flow_data)))
            self._runs[run.run_id] = rec
            self._vars[run.run_id] = {}
            self._history[run.run_id], self._steps[run.run_id] = [], []
            self._events[run.run_id] = []
            return rec, True

    def count_runs(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for r in self._runs.values():
                out[r.status] = out.get(r.status, 0) + 1
            return out

    def load_run(self, run_id: str) -> RunRecord:
        with self._lock:
            return self._run(run_id)

    def list_runs(self, status: str | None = None, limit: int = 50,
                  before: str | None = None, parent: str | None = None) -> list[RunRecord]:
        with self._lock:
            after = None if before is None else self._run(before)
            runs = [r for r in self._runs.values() if (status is None or r.status == status)
                    and (parent is None or r.parent_id == parent)
                    and (after is None or (r.created_at, r.run_id) < (after.created_at, after.run_id))]
        runs.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        return runs[:limit]

    def poll(self, run_id: str) -> tuple[int, str | None]:
        with self._lock:
            run = self._run(run_id)
            return run.seq, run.control

    def request(self, run_id: str, control: str | None) -> None:
        with self._lock:
            self._runs[run_id] = replace(self._run(run_id), control=control)

    def flow_data(self, run_id: str) -> Any:
        with self._lock:
            return self._run(run_id).flow_data

    # ------------------------------------------------------------ commit
    def commit(self, c: Commit) -> CommitResult:
        t = now()
        with self._lock:
            run = self._run(c.run_id)
            if run.lease_epoch != c.epoch:
                raise LeaseLost(f"run {c.run_id}: this process no longer holds the lease "
                                f"(epoch {c.epoch}); its write was refused")
            if c.fenced and run.seq != c.expected_seq:
                raise StateMoved(f"run {c.run_id} is at checkpoint {run.seq}, not {c.expected_seq}")
            if len({s.step_id for s in c.steps}) != len(c.steps):
                raise StoreError(f"run {c.run_id}: one commit cannot hold two records of the same step")
            seq = run.seq + 1
            changes: dict[str, Any] = {"seq": seq}
            if c.run is not None:
                r = c.run
                changes["cursor"] = codec.loads(codec.dumps(r.cursor))
                if r.status is not None:
                    changes["status"] = r.status
                if r.outputs is not None:
                    changes["outputs"] = self._decode(self._keep(r.outputs), "outputs")
                changes["error"] = r.error
                if r.finished:
                    changes["finished_at"] = t
            versions = self._write_vars(c.run_id, c.vars, seq, t)
            for s in c.steps:
                self._steps[c.run_id].append((s.step_id, s.status, seq, s.attempts, self._keep(s.inputs),
                                              self._keep(s.result), s.error, s.meta, s.started_at,
                                              s.finished_at, s.idempotency_key))
            for idx, e in enumerate(c.events, start=len(c.steps)):  # step records take idx 0..
                self._events[c.run_id].append((seq, idx, e.type, e.step_id,
                                               codec.loads(codec.dumps(e.data)), t))
            for it in c.iterations:
                self._iterations.setdefault((c.run_id, it.loop_key), {})[it.idx] = (
                    it.status, it.attempts, self._keep(it.result), it.error, seq, it.started_at,
                    it.finished_at)
            table = self._vars[c.run_id]
            for name, count, at in c.accesses:
                if name in table:
                    table[name]["access_count"] += count
                    table[name]["accessed_at"] = at
            self._runs[c.run_id] = replace(run, **changes)
        return CommitResult(seq, versions, c.expected_seq is not None and seq != c.expected_seq + 1)

    def _write_vars(self, run_id: str, writes: Any, seq: int, t: float) -> dict[str, int]:
        table = self._vars[run_id]
        history = self._history[run_id]
        versions: dict[str, int] = {}
        for w in writes:
            old = table.get(w.name)
            if w.delete:
                if old is None:
                    continue
                del table[w.name]
                history.append((w.name, old["version"] + 1, seq, None, w.source_step, t, True))
                versions[w.name] = 0
                continue
            if old is None:
                prior = [h[1] for h in history if h[0] == w.name]
                version = (max(prior) if prior else 0) + 1
                row: dict[str, Any] = {"created_at": t, "accessed_at": None, "access_count": 0}
            else:
                version = old["version"] + 1
                row = old
            data = self._keep(w.value)
            row.update(value=data, type=w.type, scope=w.scope, version=version,
                       source_step=w.source_step, updated_at=t, secret=w.secret, seq=seq)
            table[w.name] = row
            history.append((w.name, version, seq, data, w.source_step, t, False))
            versions[w.name] = version
        return versions

    # ------------------------------------------------------------ variables
    def _record(self, run_id: str, name: str, row: dict[str, Any], decode: Callable[..., Any] | None = None,
                ) -> VarRecord:
        value = (decode or self._decode)(row["value"], f"run {run_id}: variable {name}")
        return VarRecord(name, value, row["type"], row["scope"], row["version"], row["source_step"],
                         row["created_at"], row["updated_at"], row["accessed_at"], row["access_count"],
                         row["secret"], row["seq"])

    def read_vars(self, run_id: str, since_seq: int = 0, *, refs: bool = False) -> dict[str, VarRecord]:
        decode = lazy_decode(self.load_blob) if refs else None
        with self._lock:
            self._run(run_id)
            return {n: self._record(run_id, n, row, decode) for n, row in self._vars[run_id].items()
                    if row["seq"] > since_seq}

    def read_state(self, run_id: str) -> dict[str, CurrentVar]:
        return {n: CurrentVar(n, r.value, r.type, r.scope, r.version, r.secret)
                for n, r in self.read_vars(run_id, refs=True).items()}

    def read_var(self, run_id: str, name: str, *, count_access: bool = False) -> VarRecord:
        with self._lock:
            self._run(run_id)
            row = self._vars[run_id].get(name)
            if row is None:
                raise NotFound(f"run {run_id} has no variable {name!r}")
            if count_access:
                row["access_count"] += 1
                row["accessed_at"] = now()
            return self._record(run_id, name, row)

    def _external_seq(self, run_id: str) -> int:
        run = self._run(run_id)
        self._runs[run_id] = replace(run, seq=run.seq + 1)
        return run.seq + 1

    @contextmanager
    def hold(self, run_id: str) -> Iterator[None]:
        with self._lock:  # every writer takes it
            self._run(run_id)
            yield

    def set_var(self, run_id: str, write: VarWrite, expected_version: int | None = None) -> VarRecord:
        with self._lock:
            self.set_vars(run_id, (write,),
                          None if expected_version is None else {write.name: expected_version})
            return self._record(run_id, write.name, self._vars[run_id][write.name])

    def set_vars(self, run_id: str, writes: Sequence[VarWrite],
                 expected_versions: Mapping[str, int] | None = None) -> int:
        with self._lock:
            self._run(run_id)
            for name, expected in (expected_versions or {}).items():
                current = self._vars[run_id].get(name, {}).get("version", 0)
                if current != expected:
                    raise ConflictError(
                        f"variable {name!r} of run {run_id} is at version {current}, "
                        f"not {expected}; read it again and retry")
            seq = self._external_seq(run_id)
            t = now()
            self._write_vars(run_id, writes, seq, t)
            for idx, w in enumerate(writes):
                self._events[run_id].append(
                    (seq, idx, "var.set", None, {"name": w.name, "source": w.source_step}, t))
            return seq

    def delete_var(self, run_id: str, name: str, source: str,
                   expected_version: int | None = None) -> bool:
        with self._lock:
            self._run(run_id)
            current = self._vars[run_id].get(name, {}).get("version", 0)
            if expected_version is not None and current != expected_version:
                raise ConflictError(f"variable {name!r} of run {run_id} is at version {current}, "
                                    f"not {expected_version}")
            if current == 0:
                return False
            seq = self._external_seq(run_id)
            t = now()
            self._write_vars(run_id, (VarWrite(name, None, source_step=source, delete=True),), seq, t)
            self._events[run_id].append((seq, 0, "var.deleted", None, {"name": name, "source": source}, t))
            return True

    def stats(self) -> dict[str, int]:
        with self._lock:
            ends = [e[4] for evs in self._events.values() for e in evs
                    if e[2] in ("run.completed", "run.failed", "run.paused", "run.cancelled")]
            cache = [(d or {}).get("template_cache", {}) for d in ends]
            return {"template_hits": sum(c.get("hits", 0) for c in cache),
                    "template_misses": sum(c.get("misses", 0) for c in cache),"runs": len(self._runs),
                    "steps": sum(map(len, self._steps.values())),
                    "vars": sum(map(len, self._vars.values())),
                    "var_history": sum(map(len, self._history.values())),
                    "events": sum(map(len, self._events.values())),
                    "blobs": sum(1 for _ in self.blobs.iter_hashes()), "bytes": 0}

    def close(self) -> None:
        pass
