"""Reads of a store as an Engine makes them, without building one: what the read commands
of the CLI (`tether runs`, `show`, `vars`) need, with none of the engine's modules (its
runner, listeners, leases) imported. The same functions answer ``Engine``'s reads, so both
return the same records and raise the same errors."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..ids import check_run_id
from . import run_reads

if TYPE_CHECKING:
    from ..settings import Settings
    from ..store.base import RunRecord, StepRecord, Store, VarRecord
    from ..vault import Vault


class Reader:
    """The store ``settings`` name (``settings.db``, else the default), opened as an Engine
    with these settings opens it; ``store`` is public as an Engine's is (``queries.usage``
    reads through it)."""

    def __init__(self, settings: Settings) -> None:
        from ..store import open_store
        self.settings = settings
        self.store: Store = open_store(settings.db, settings=settings)
        self._vault: Vault | None = None

    @property
    def vault(self) -> Vault:
        """The store's vault, as the Engine's (made on first use)."""
        from ..vault import vault_for
        if self._vault is None:
            self._vault = vault_for(getattr(self.store, "path", None), self.settings.secret_key)
        return self._vault

    def record(self, run_id: str) -> RunRecord:
        """``Engine.record``."""
        return self.store.load_run(check_run_id(run_id))

    def runs(self, status: str | None = None, limit: int = 50, before: str | None = None) -> list[RunRecord]:
        """``Engine.runs``."""
        return run_reads.runs(self.store, status, limit, before)

    def steps(self, run_id: str) -> list[StepRecord]:
        """``Engine.steps``."""
        return self.store.steps(check_run_id(run_id))

    def vars(self, run_id: str) -> dict[str, Any]:
        """``Engine.vars``."""
        return run_reads.current_vars(self.store, run_id)

    def variable(self, run_id: str, name: str, *, reveal: bool = False) -> VarRecord:
        """``Engine.variable``: counts as an access."""
        return run_reads.variable(self.store, lambda: self.vault, run_id, name, reveal=reveal,
                                  ttl=self.settings.lease_seconds)

    def close(self) -> None:
        self.store.close()
