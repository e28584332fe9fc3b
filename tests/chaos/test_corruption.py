"""C4 and S4: corrupted files and hostile rows.

A truncated database file and flipped bits give clear errors or correct answers, never
a traceback. Crafted rows — wrong types, undecodable bytes, huge values, decompression
bombs, JSON shaped to revive objects — are fed to every loader through every read
command: each answers correctly or fails with a typed error naming the run and the
record; no code runs (an audit hook watches); the other run stays readable.
"""
from __future__ import annotations

import json
import random
import shutil
import sqlite3
import sys
import threading
from pathlib import Path
from types import FrameType

import pytest
import zstandard
from typer.testing import CliRunner

from tests.chaos.conftest import SEED, scale

pytestmark = pytest.mark.slow  # every hostile row is read by a dozen CLI processes

FLOW = """
name: victim
vars: {a: 1, big: "{{ 'x' * 300000 }}", note: "{{ inputs.note }}"}
inputs: {note: {type: string, default: hello}}
steps:
  - id: s
    tool: python
    with: {code: "def main(ctx):\\n    return {'r': 1}"}
    vars: {r: "{{ result.r }}"}
    share: {seen: "{{ result.r }}"}
  - id: l
    foreach: [1, 2, 3]
    do: {id: b, vars: {a: "{{ vars.a + item }}"}}
outputs: {a: "{{ vars.a }}", big: "{{ vars.big | length }}"}
"""
READS = [["show", "{run}", "--json"], ["vars", "{run}", "--json"], ["vars", "history", "{run}", "a", "--json"],
         ["vars", "get", "{run}", "big", "--json"], ["trace", "{run}", "--json"], ["checkpoints", "{run}", "--json"],
         ["verify", "{run}", "--json"], ["diff", "{run}", "1", "3", "--json"], ["runs", "--json"], ["show", "{run}"],
         ["shared", "--json"], ["shared", "get", "seen"]]
REVIVE = {"py/object": "os.system", "py/reduce": [{"py/function": "os.system"}, ["touch /tmp/tether-pwned"]],
          "__class__": "subprocess.Popen", "__reduce__": ["os.system", ["id"]], "$type": "System.Diagnostics.Process",
          "!!python/object/apply:os.system": ["id"], "_pickle": "gASVIAAAAAAAAACMAm9zlIwGc3lzdGVtlJOUjAJpZJSFlFKULg=="}
BOMB = b"z" + zstandard.ZstdCompressor().compress(b"[" + b"0," * 40_000_000 + b"0]")
DEEP = b"j" + b"[" * 100_000 + b"]" * 100_000
HUGE = b"j" + json.dumps("y" * 20_000_000).encode()
BLOBS = [b"garbage\x00\xff", b"j{not json", b"z" + b"not zstd", BOMB, DEEP, b"h" + b"0" * 64,
         b"j" + json.dumps(REVIVE).encode(), b"\x80\x04\x95", 12345, "text", None, HUGE]
TEXTS = ["not json", "12345", json.dumps(REVIVE), "[" * 100_000, "null", "\x00\xff", 3.5]
HOSTILE = (
    [("var_history", "value", v) for v in BLOBS]
    + [("var_history", c, v) for c in ("type", "scope", "version", "seq") for v in ("bogus", None, -1)]
    + [("steps", c, v) for c in ("inputs", "result") for v in BLOBS]
    + [("steps", c, v) for c in ("error", "meta") for v in TEXTS]
    + [("steps", c, v) for c in ("status", "attempts", "seq") for v in ("bogus", None)]
    + [("runs", c, v) for c in ("cursor", "error") for v in TEXTS]
    + [("runs", "outputs", v) for v in BLOBS]
    + [("runs", c, v) for c in ("status", "seq", "lease_epoch", "attempt") for v in ("bogus", None, -5)]
    + [("run_specs", "inputs", v) for v in BLOBS]
    + [("run_specs", c, v) for c in ("env_snapshot", "flow_data") for v in TEXTS]
    + [("run_specs", "flow_text", v) for v in ("{{{{ not yaml", "", None, json.dumps(REVIVE), "!!python/object:os.system {}")]
    + [("events", "data", v) for v in TEXTS]
    + [("iterations", c, v) for c in ("result",) for v in BLOBS]
    + [("iterations", c, v) for c in ("error", "status") for v in TEXTS]
    + [("iterations", c, v) for c in ("seq", "finished_at") for v in ("bogus", -1.5)]
    + [("var_history", "at", v) for v in ("bogus", b"\x00")]
    + [("var_current", c, v) for c in ("version", "created_at") for v in ("bogus", None, -1)]
    + [("loop_items", "item", v) for v in BLOBS]
    + [("blobs", "data", v) for v in BLOBS]
    + [("shared_vars", "value", v) for v in BLOBS]
    + [("shared_vars", c, v) for c in ("version", "immutable", "deleted") for v in ("bogus", None, -1)]
)

_events: list[tuple[str, tuple]] = []
_armed = threading.local()


def _hook(event: str, args: tuple) -> None:
    if getattr(_armed, "on", False) and (
            event in ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "pickle.find_class")
            or (event == "open" and args and str(args[0]).startswith("/etc"))
            or (event == "exec" and _from_text(args[0]) and not _from_stdlib_codegen())):
        _events.append((event, args[:1]))


def _from_text(code: object) -> bool:
    """Code compiled from a string (not Jinja's templates, not a module file being imported)."""
    name = getattr(code, "co_filename", "")
    return name != "<template>" and not Path(name).is_file()


def _from_stdlib_codegen() -> bool:
    """dataclasses and namedtuple build their methods with exec, and Typer evaluates the
    CLI's own string annotations through typing/inspect: none of that is data running."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.endswith(("dataclasses.py", "collections/__init__.py", "/typing.py", "/inspect.py")):
            return True
        frame = frame.f_back
    return False


sys.addaudithook(_hook)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("pristine")
    flow = folder / "victim.yaml"
    flow.write_text(FLOW)
    db = folder / "p.db"
    runner = CliRunner()
    for run_id in ("victim", "bystander"):
        res = runner.invoke(_app(), ["--db", f"sqlite:///{db}", "run", str(flow), "--run-id", run_id])
        assert res.exit_code == 0, res.output
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    expected = {tuple(cmd): _invoke(db, cmd, "bystander") for cmd in READS[:2]}
    for cmd in READS:  # every command's first-use imports happen before the audit hook is armed
        _invoke(db, cmd, "victim")
    return db, expected


def _app():
    from tether.cli import app
    return app


def _invoke(db: Path, cmd: list[str], run_id: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(_app(), ["--db", f"sqlite:///{db}", *[c.format(run=run_id) for c in cmd]])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"{cmd}: {res.exception!r}") from res.exception
    return res.exit_code, res.stdout, res.stderr


def _assert_clean(cmd: list[str], code: int, out: str, err: str, run_id: str | None) -> str:
    """Exit 0, or a typed error (not 70, 'internal error') naming the run when ``run_id``
    is given; returns the outcome."""
    assert "Traceback" not in out + err and code != 70 and "internal error" not in err, (cmd, code, err)
    if code == 0 or (cmd[0] == "verify" and code == 1 and err == "" and json.loads(out)["differences"]):
        return "answered"  # verify exits 1 when a step re-renders differently: a changed row does that
    assert err.startswith("error:"), (cmd, err)
    if run_id and cmd[0] == "shared":
        assert "shared variable" in err, (cmd, err)
    elif run_id and cmd[0] != "runs":
        assert run_id in err, (cmd, err)
    return "refused"


@pytest.mark.parametrize("table,column,value", HOSTILE, ids=lambda v: str(v)[:24])
def test_hostile_rows_give_typed_errors_and_leave_other_runs_readable(pristine, tmp_path, figures, table, column,
                                                                      value):
    source, expected = pristine
    db = tmp_path / "h.db"
    shutil.copy(source, db)
    con = sqlite3.connect(db)
    where = {"blobs": "hash IN (SELECT hash FROM blobs)", "shared_vars": "name = 'seen'"}.get(table, "run_id = 'victim'")
    try:
        changed = con.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (value,)).rowcount
    except sqlite3.IntegrityError:  # NOT NULL or a key: such a row cannot exist
        figures["refused_by_the_schema"] = True
        return
    con.commit()
    con.close()
    assert changed > 0
    _events.clear()
    _armed.on = True
    try:
        for cmd in READS:
            code, out, err = _invoke(db, cmd, "victim")
            _assert_clean(cmd, code, out, err, "victim")
        if table not in ("blobs", "shared_vars"):  # shared by all runs: the bystander reads the same rows
            for cmd in READS[:2]:
                assert _invoke(db, cmd, "bystander") == expected[tuple(cmd)], cmd
    finally:
        _armed.on = False
    assert _events == [], _events
    assert not Path("/tmp/tether-pwned").exists()
    figures["read_commands"] = len(READS)


def test_the_hostile_row_list_covers_every_table_with_data(pristine):
    db, _ = pristine
    con = sqlite3.connect(db)
    tables = {t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    # var_reads holds counters and locks owner names and times only: no value is decoded from them
    assert tables - {t for t, _, _ in HOSTILE} == {"var_reads", "locks"}
    assert len(HOSTILE) >= 100


def _flip(data: bytearray, rng: random.Random, n: int) -> None:
    for _ in range(n):
        i = rng.randrange(100, len(data))  # keep the 100-byte header: a bad header is "not a database"
        data[i] ^= 1 << rng.randrange(8)


@pytest.mark.parametrize("trial", range(scale(12, 300)))
def test_flipped_bits_and_truncation_never_give_a_traceback(pristine, tmp_path, trial):
    source, _ = pristine
    rng = random.Random(SEED * 100_003 + trial)
    data = bytearray(source.read_bytes())
    if trial % 3 == 0:
        data = data[:rng.randrange(0, len(data))]
    else:
        _flip(data, rng, rng.choice([1, 4, 64]))
    db = tmp_path / "c.db"
    db.write_bytes(bytes(data))
    outcomes = set()
    for run_id in ("victim", "bystander"):
        for cmd in READS:
            code, out, err = _invoke(db, cmd, run_id)
            outcomes.add(_assert_clean(cmd, code, out, err, None))  # a damaged file may not know its runs
    assert outcomes <= {"answered", "refused"}
