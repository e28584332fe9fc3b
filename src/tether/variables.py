"""Run variables in memory: the committed state a runner renders against.

:class:`VarState` mirrors what the store holds for one run (values and metadata),
counts template reads in memory until the next commit flushes them, and resolves
computed variables, caching each until one of the variables it depends on changes.
A large committed value is held as a :class:`~tether.store.value_refs.StoredValue`
(see :meth:`VarState.stored`) and read back from the blob store when read.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import orjson

from .errors import TemplateError
from .store import codec
from .store.base import CurrentVar
from .store.value_refs import StoredValue, resolved
from .templates import MISSING, AttrView, render


class VarMeta(NamedTuple):
    """What a variable's next write needs besides its value (a NamedTuple: a resume builds
    one per variable, 10,000 for B4, at half a frozen dataclass's cost)."""

    type: str
    scope: str
    version: int
    secret: bool = False


class VarState:
    """Values and metadata of one run's variables, plus computed definitions."""

    def __init__(self, computed: Mapping[str, str] | None = None,
                 computed_deps: Mapping[str, set[str]] | None = None) -> None:
        self.values: dict[str, Any] = {}
        self.meta: dict[str, VarMeta] = {}
        self.generation: dict[str, int] = {}
        self.accesses: dict[str, int] = {}
        self.computed = dict(computed or {})
        self._deps = self._transitive(computed_deps or {})
        self._cache: dict[str, tuple[tuple[int, ...], Any]] = {}
        self._evaluating: set[str] = set()
        self.scope_for_computed: Callable[[], Mapping[str, Any]] = dict
        self.view = AttrView(self.get, self.names, "vars")

    def _transitive(self, deps: Mapping[str, set[str]]) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for name in deps:
            seen: set[str] = set()
            todo = list(deps[name])
            while todo:
                d = todo.pop()
                if d in seen:
                    continue
                seen.add(d)
                todo.extend(deps.get(d, ()))
            out[name] = tuple(sorted(d for d in seen if d not in deps))
        return out

    # -------------------------------------------------------- loading
    def load(self, records: Mapping[str, CurrentVar]) -> None:
        """Replace or add variables from committed records."""
        for name, rec in records.items():
            self.values[name] = rec.value
            self.meta[name] = VarMeta(rec.type, rec.scope, rec.version, rec.secret)
            self.generation[name] = self.generation.get(name, 0) + 1

    def apply(self, name: str, value: Any, meta: VarMeta) -> None:
        """Set a variable in memory (the caller commits it)."""
        self.values[name] = value
        self.meta[name] = meta
        self.generation[name] = self.generation.get(name, 0) + 1

    def stored(self, name: str, ref: StoredValue) -> None:
        """Hold ``name``'s committed value as ``ref`` (the same value, in the blob store)
        instead of in memory; reads resolve it. Computed variables stay cached: nothing
        changed."""
        if name in self.values:
            self.values[name] = ref

    def remove(self, name: str) -> None:
        self.values.pop(name, None)
        self.meta.pop(name, None)
        self.generation[name] = self.generation.get(name, 0) + 1

    def set_version(self, name: str, version: int) -> None:
        m = self.meta.get(name)
        if m is not None and version:
            self.meta[name] = VarMeta(m.type, m.scope, version, m.secret)

    # -------------------------------------------------------- reading
    def names(self) -> list[str]:
        return list(self.values) + [c for c in self.computed if c not in self.values]

    def get(self, name: str) -> Any:
        """The value of variable ``name`` (computed ones evaluated); KeyError if none."""
        values = self.values
        if name in values:
            acc = self.accesses
            acc[name] = acc.get(name, 0) + 1
            value = values[name]
            return value.value() if type(value) is StoredValue else value
        if name in self.computed:
            return self._computed(name)
        raise KeyError(name)

    def lookup(self, name: str) -> Any:
        """Like :meth:`get` but returns ``MISSING`` instead of raising."""
        try:
            return self.get(name)
        except KeyError:
            return MISSING

    def _computed(self, name: str) -> Any:
        key = tuple(self.generation.get(d, 0) for d in self._deps.get(name, ()))
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        if name in self._evaluating:
            raise TemplateError(f"computed variable {name!r} depends on itself")
        self._evaluating.add(name)
        try:
            value = render(self.computed[name], self.scope_for_computed(), f"computed variable {name!r}")
        finally:
            self._evaluating.discard(name)
        self._cache[name] = (key, value)
        return value

    def take_accesses(self) -> tuple[tuple[str, int, float], ...]:
        """The reads counted since the last call, for the next commit."""
        if not self.accesses:
            return ()
        t = time.time()
        out = tuple((n, c, t) for n, c in self.accesses.items() if n in self.values)
        self.accesses = {}
        return out

    def snapshot(self) -> dict[str, Any]:
        """Plain ``{name: value}`` of stored variables (no access counted), large ones
        read back from the blob store."""
        return {name: resolved(value) for name, value in self.values.items()}


def same_value(a: Any, b: Any) -> bool:
    """True when writing ``b`` over ``a`` would change nothing (type-exact for scalars);
    either may be a StoredValue."""
    if type(a) is StoredValue or type(b) is StoredValue:
        return _stored_data(a) == _stored_data(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, (dict, list)):
        return orjson.dumps(a) == orjson.dumps(b)
    return a == b


def _stored_data(value: Any) -> bytes | None:
    """The row bytes of an offloaded value (``h`` + hash), or None for a value kept in a row."""
    if type(value) is StoredValue:
        return value.data
    ref = codec.offload_ref(value)
    return None if ref is None else ref[0]
