"""Writes to a run's variables from outside the run (the API, the CLI, the Python API):
each call is its own checkpoint, checked before anything is written; secret values are
encrypted on the way in and shown as ``***`` on the way out."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, UsageError
from ..ids import check_run_id, check_var_name
from ..store import codec
from ..store.base import Store, VarRecord, VarWrite

if TYPE_CHECKING:
    from ..vault import Vault


def masked(rec: VarRecord) -> VarRecord:
    """``rec`` with its value shown as ``***`` when it is secret."""
    return replace(rec, value="***") if rec.secret else rec


def revealed(vault: Vault, rec: VarRecord) -> VarRecord:
    """``rec`` with a secret value decrypted."""
    if not rec.secret:
        return rec
    return replace(rec, value=vault.decrypt(rec.value, f"variable {rec.name}"))


def set_var(store: Store, vault: Vault, run_id: str, name: str, value: Any, expected_version: int | None,
            *, scope: str, source: str, secret: bool) -> VarRecord:
    """Write one ``user_defined`` variable as its own checkpoint; ConflictError when
    ``expected_version`` is given and stale. Returns its record, masked."""
    check_run_id(run_id)
    check_var_name(name)
    if scope not in ("run", "temp"):
        raise UsageError(f"scope must be 'run' or 'temp', not {scope!r}")
    stored = vault.encrypt(value, f"vars.{name}") if secret else value
    write = VarWrite(name, codec.encode(stored, field=f"vars.{name}"), "user_defined", scope, source, secret)
    return masked(store.set_var(run_id, write, expected_version))


def set_vars(store: Store, run_id: str, values: Mapping[str, Any], *, source: str) -> int:
    """Write several ``user_defined`` variables as one checkpoint, all or none: every name
    and value is checked before anything is written. Returns the checkpoint's seq."""
    check_run_id(run_id)
    writes = tuple(VarWrite(check_var_name(name), codec.encode(value, field=f"vars.{name}"),
                            "user_defined", "run", source)
                   for name, value in values.items())
    if not writes:
        return store.load_run(run_id).seq
    return store.set_vars(run_id, writes)


def delete_var(store: Store, run_id: str, name: str, expected_version: int | None, *, source: str) -> bool:
    """Remove a variable (its history is kept); NotFound if it does not exist."""
    if not store.delete_var(check_run_id(run_id), check_var_name(name), source, expected_version):
        raise NotFound(f"run {run_id} has no variable {name!r}")
    return True
