"""The Python API's reads and writes of a run's state (:class:`StateApi`, a part of
:class:`~tether.engine.engine.Engine`): checkpoints and time travel, current variables and
their history, variable writes from outside the run, and shared variables. Ids and names are
checked before they reach the store; secret values are masked unless revealed."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..ids import check_var_name
from ..queries import checkpoints, run_reads
from ..store.base import HistoryRecord, SharedRecord, Store, VarRecord
from . import var_writes

if TYPE_CHECKING:
    from ..vault import Vault


class StateApi:
    """Run state through the engine's store."""

    store: Store
    lease_seconds: float

    if TYPE_CHECKING:
        @property
        def vault(self) -> Vault: ...

    # ------------------------------------------------------------ time travel (queries.checkpoints)
    def checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        """Every checkpoint of the run: ``{seq, at, steps, events, vars}`` (see
        :func:`tether.queries.checkpoints.checkpoints`)."""
        return checkpoints.checkpoints(self.store, run_id)

    def checkpoint_of(self, run_id: str, ref: str | int) -> int:
        """A checkpoint given as a seq number or a step id (the step's latest commit)."""
        return checkpoints.checkpoint_of(self.store, run_id, ref)

    def state_at(self, run_id: str, ref: str | int) -> dict[str, Any]:
        """Variables as of a checkpoint (secret ones as ``***``)."""
        return checkpoints.state_at(self.store, run_id, ref)

    def diff(self, run_id: str, a: str | int, b: str | int) -> dict[str, Any]:
        """Variables added, removed and changed from checkpoint ``a`` to ``b``."""
        return checkpoints.diff(self.store, run_id, a, b)

    # ------------------------------------------------------------ variables
    def vars(self, run_id: str) -> dict[str, Any]:
        """``{name: value}`` of the run's current variables (secret ones as ``***``)."""
        return run_reads.current_vars(self.store, run_id)

    def variable(self, run_id: str, name: str, *, reveal: bool = False) -> VarRecord:
        """One variable with its metadata; counts as an access. NotFound if absent.
        A secret variable's value is ``***`` unless ``reveal``."""
        return run_reads.variable(self.store, lambda: self.vault, run_id, name, reveal=reveal,
                                  ttl=self.lease_seconds)

    def set_var(self, run_id: str, name: str, value: Any, expected_version: int | None = None, *,
                scope: str = "run", source: str = "api", secret: bool = False) -> VarRecord:
        """Write a ``user_defined`` variable as its own checkpoint; ConflictError when
        ``expected_version`` is given and stale. A running run sees it from its next step.
        A ``secret`` value is stored encrypted and shown as ``***``."""
        return var_writes.set_var(self.store, self.vault, run_id, name, value, expected_version,
                                  scope=scope, source=source, secret=secret)

    def set_vars(self, run_id: str, values: Mapping[str, Any], *, source: str = "api") -> int:
        """Write several ``user_defined`` variables as one checkpoint, all or none. Returns
        the checkpoint's seq."""
        return var_writes.set_vars(self.store, run_id, values, source=source)

    def delete_var(self, run_id: str, name: str, expected_version: int | None = None, *,
                   source: str = "api") -> bool:
        """Remove a variable (its history is kept); NotFound if it does not exist."""
        return var_writes.delete_var(self.store, run_id, name, expected_version, source=source)

    def history(self, run_id: str, name: str) -> list[HistoryRecord]:
        """Every write of the variable, oldest first; NotFound if it never existed."""
        return run_reads.history(self.store, run_id, name)

    # ------------------------------------------------------------ shared variables (§4.5)
    def shared(self) -> dict[str, Any]:
        """Every shared variable's value, by name."""
        return {r.name: r.value for r in self.store.shared_list()}

    def shared_get(self, name: str) -> SharedRecord:
        """One shared variable with its version; NotFound if there is none."""
        return self.store.shared_get(check_var_name(name))

    def shared_set(self, name: str, value: Any, expected_version: int | None = None, *,
                   immutable: bool = False) -> SharedRecord:
        """Write a shared variable; ConflictError if it is immutable or not at ``expected_version``."""
        return self.store.shared_set(check_var_name(name), value, expected_version=expected_version,
                                     immutable=immutable)

    def shared_delete(self, name: str, expected_version: int | None = None) -> bool:
        """Delete a shared variable (False if there was none); ConflictError if immutable."""
        return self.store.shared_delete(check_var_name(name), expected_version=expected_version)
