"""Records from rows, shared by the SQL stores: both select the same columns in the same
order, so one set of conversions (with row checks) serves SQLite and PostgreSQL."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import CorruptRecord
from . import row_checks
from .base import CurrentVar, EventRecord, IterationRecord, RunRecord, StepHead, StepRecord, VarRecord

Decode = Callable[[Any, str], Any]

# a run's row (updated by every commit) joined with what it started with (written once)
RUNS = "runs JOIN run_specs USING (run_id)"
RUN_COLS = ("run_id, name, status, flow_text, flow_path, inputs, parent_id, created_at, "
            "started_at, finished_at, seq, cursor, outputs, error, lease_owner, lease_epoch, "
            "lease_expires, durability, env_snapshot, attempt, control, recoveries, processes, flow_digest")
STEP_COLS = ("step_id, status, seq, attempts, inputs, result, error, meta, started_at, finished_at, "
             "idempotency_key")
ITERATION_COLS = "idx, status, attempts, result, error, seq, started_at, finished_at"


def compact_key(run_id: str, step_id: str, key: str | None) -> str | None:
    """The standard idempotency key ``RUN/STEP/N`` is stored as just "N"; it is rebuilt
    when read. Keys always contain a '/', so a bare number cannot be mistaken for one."""
    if key is not None:
        prefix = f"{run_id}/{step_id}/"
        rest = key[len(prefix):]
        if (key.startswith(prefix) and rest.isdigit() and not rest.startswith("0")) or key == prefix + "0":
            return key[len(prefix):]
    return key


def run_record(row: tuple, decode: Decode) -> RunRecord:
    what = f"run {row[0]}"
    try:
        return RunRecord(
            run_id=row[0], name=row[1], status=row_checks.text(row[2], what, "status"),
            flow_text=row_checks.text(row[3], what, "flow text"), flow_path=row[4],
            inputs=decode(row[5], f"run {row[0]}: inputs"), parent_id=row[6],
            created_at=row[7], started_at=row[8], finished_at=row[9],
            seq=row_checks.integer(row[10], what, "seq"),
            cursor=row_checks.json_object(row[11], what, "cursor"),
            outputs=decode(row[12], f"run {row[0]}: outputs"),
            error=row_checks.json_object(row[13], what, "error"), lease_owner=row[14],
            lease_epoch=row_checks.integer(row[15], what, "lease epoch"),
            lease_expires=row[16], durability=row[17],
            env_snapshot=row_checks.json_object(row[18], what, "environment snapshot"),
            attempt=row_checks.integer(row[19], what, "attempt"), control=row[20],
            recoveries=row_checks.integer(row[21], what, "recoveries"),
            processes=row_checks.json_object(row[22], what, "processes"),
            flow_digest=row[23] if type(row[23]) is str else None)  # a hint: anything else trusts nothing
    except CorruptRecord:
        raise
    except (ValueError, TypeError) as exc:
        raise CorruptRecord(f"run {row[0]!r}: malformed run record: {exc}") from None


_TIMES = (float, int, type(None))


def var_record(run_id: str, row: tuple, decode: Decode) -> VarRecord:
    """A VarRecord from a row of the current-value query (VarRecord's columns, then ``deleted``);
    CorruptRecord naming the variable for a row of the wrong types."""
    what = f"run {run_id}: variable {row[0]}"
    name, data, kind, scope, version, source, created, updated, accessed, count, secret, seq = row[:12]
    if (type(kind) is str and type(scope) is str and type(version) is int and type(seq) is int
            and type(created) in _TIMES and type(updated) in _TIMES and type(accessed) in _TIMES):
        # a row as Tether writes it (bool is not in _TIMES): none of the checks below can fail
        return VarRecord(name, decode(data, what), kind, scope, version, source,
                         None if created is None else float(created),
                         None if updated is None else float(updated),
                         None if accessed is None else float(accessed), count, bool(secret), seq)
    try:
        return VarRecord(
            name=row[0], value=decode(row[1], what),
            type=row_checks.text(row[2], what, "type"), scope=row_checks.text(row[3], what, "scope"),
            version=row_checks.integer(row[4], what, "version"), source_step=row[5],
            created_at=row_checks.real(row[6], what, "created_at", optional=True),
            updated_at=row_checks.real(row[7], what, "updated_at", optional=True),
            accessed_at=row_checks.real(row[8], what, "accessed_at", optional=True), access_count=row[9],
            secret=bool(row[10]),
            seq=row_checks.integer(row[11], what, "seq"))
    except CorruptRecord:
        raise
    except (ValueError, TypeError) as exc:
        raise CorruptRecord(f"run {run_id}: variable {row[0]!r} is malformed: {exc}") from None


def current_var(run_id: str, row: tuple, decode: Decode) -> CurrentVar:
    """A CurrentVar from a row of ``name, value, type, scope, version, secret`` (type and
    scope NULL for the defaults); CorruptRecord naming the variable for a row of the wrong types."""
    name, data, kind, scope, version, secret = row[:6]
    what = f"run {run_id}: variable {name}"
    if (kind is None or type(kind) is str) and (scope is None or type(scope) is str) and type(version) is int:
        return CurrentVar(name, decode(data, what), "step_result" if kind is None else kind,
                          "run" if scope is None else scope, version, bool(secret))
    return CurrentVar(name, decode(data, what), row_checks.text(kind, what, "type"),
                      row_checks.text(scope, what, "scope"), row_checks.integer(version, what, "version"),
                      bool(secret))


def step_record(run_id: str, r: tuple, decode: Decode) -> StepRecord:
    what = f"run {run_id}: step {r[0]} at checkpoint {r[2]}"
    try:
        key = r[10] if r[10] is None or "/" in str(r[10]) else f"{run_id}/{r[0]}/{r[10]}"
        return StepRecord(r[0], row_checks.text(r[1], what, "status"), row_checks.integer(r[2], what, "seq"),
                          row_checks.integer(r[3], what, "attempts"), decode(r[4], what), decode(r[5], what),
                          row_checks.json_object(r[6], what, "error"),
                          row_checks.json_object(r[7], what, "meta"),
                          r[8], r[9], key)
    except CorruptRecord:
        raise
    except (ValueError, TypeError) as exc:
        raise CorruptRecord(f"{what} is malformed: {exc}") from None


def step_head(run_id: str, r: tuple) -> StepHead:
    """A StepHead from a row of ``step_id, status, seq, meta``; CorruptRecord as :func:`step_record`."""
    if type(r[1]) is str and type(r[2]) is int and r[3] is None:
        return StepHead(r[0], r[1], r[2])  # a row as Tether writes it for a plain step
    what = f"run {run_id}: step {r[0]} at checkpoint {r[2]}"
    try:
        return StepHead(r[0], row_checks.text(r[1], what, "status"), row_checks.integer(r[2], what, "seq"),
                        row_checks.json_object(r[3], what, "meta"))
    except CorruptRecord:
        raise
    except (ValueError, TypeError) as exc:
        raise CorruptRecord(f"{what} is malformed: {exc}") from None


def event_record(run_id: str, r: tuple) -> EventRecord:
    what = f"run {run_id}: event"
    return EventRecord(row_checks.integer(r[0], what, "seq"), row_checks.integer(r[1], what, "index"),
                       row_checks.text(r[2], what, "type"), r[3], row_checks.json_object(r[4], what, "data"),
                       r[5])


def iteration_record(run_id: str, loop_key: str, r: tuple, decode: Decode) -> IterationRecord:
    what = f"run {run_id}: {loop_key}[{r[0]}]"
    return IterationRecord(loop_key, row_checks.integer(r[0], what, "index"),
                           row_checks.text(r[1], what, "status"), r[2], decode(r[3], what),
                           row_checks.json_object(r[4], what, "error"), r[5], r[6], r[7])
