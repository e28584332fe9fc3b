"""C1: random SIGKILLs of real `tether` processes running a flow that mixes 200 steps,
variables, a parallel 1,000-item loop and a ledger of side effects; each killed run is
resumed to completion and compared with an uninterrupted run.

Quick mode: one run killed 6 times. Long mode (TETHER_CHAOS=long): runs until at least
TETHER_CHAOS_KILLS (default 1,000) kills. Figures: lost commits, final-state
differences, re-run side effects (steps and iterations), integrity checks.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.conftest import LONG, SEED
from tests.helpers import kill_after, stored_status

pytestmark = pytest.mark.slow  # random SIGKILLs of real processes, a few minutes

KILLS = int(os.environ.get("TETHER_CHAOS_KILLS", "1000")) if LONG else 6
PARALLEL = 4
ITEMS = 1000
HALF = 50  # bump/effect pairs before the loop; as many after it: 200 steps

LIB = '''
import os


def _append(ledger, line):
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)


def effect(ctx, ledger, n):
    _append(ledger, "step " + ctx.idempotency_key)
    return n * 2


def item(ledger, n):
    _append(ledger, f"item {n}")
    return n % 7
'''


def _pairs(lo: int, hi: int) -> str:
    return "".join(f"""
  - id: bump{i}
    vars: {{counter: "{{{{ vars.counter + {i} }}}}"}}
  - id: effect{i}
    tool: python
    with: {{function: "chaoslib:effect", args: {{ledger: "{{{{ inputs.ledger }}}}", n: "{{{{ vars.counter }}}}"}}}}
    vars: {{trail: "{{{{ (vars.trail + [result])[-20:] }}}}"}}
""" for i in range(lo, hi))


FLOW = f"""
name: chaos_mix
inputs:
  ledger: {{type: string, required: true}}
vars: {{counter: 0, trail: [], ok: 0, sevens: 0}}
steps:{_pairs(0, HALF)}
  - id: each
    foreach: "{{{{ range({ITEMS}) | list }}}}"
    parallel: {PARALLEL}
    do:
      id: work
      tool: python
      with: {{function: "chaoslib:item", args: {{ledger: "{{{{ inputs.ledger }}}}", n: "{{{{ item }}}}"}}}}
      vars: {{ok: "{{{{ vars.ok + 1 }}}}", sevens: "{{{{ vars.sevens + result }}}}"}}
{_pairs(HALF, 2 * HALF)}
  - id: summary
    vars: {{results: "{{{{ steps.each.result | length }}}}"}}
outputs:
  counter: "{{{{ vars.counter }}}}"
  trail: "{{{{ vars.trail }}}}"
  ok: "{{{{ vars.ok }}}}"
  sevens: "{{{{ vars.sevens }}}}"
"""
STEP_IDS = [f"{k}{i}" for i in range(HALF) for k in ("bump", "effect")] + ["each"] + \
    [f"{k}{i}" for i in range(HALF, 2 * HALF) for k in ("bump", "effect")] + ["summary"]


def _tether(db: str, *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tether", "--db", db, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _json(db: str, *args: str | Path) -> Any:
    proc = _tether(db, *args, "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Traceback" not in err, (args, err)
    return json.loads(out)


def _setup(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chaoslib.py").write_text(LIB)
    flow = folder / "mix.yaml"
    flow.write_text(FLOW)
    return flow


def _reference(folder: Path) -> tuple[dict, dict, float]:
    """Outputs and variables of an uninterrupted run, and how long it took."""
    flow = _setup(folder)
    db = f"sqlite:///{folder / 'clean.db'}"
    started = time.monotonic()
    run = _json(db, "run", flow, "--run-id", "clean", "-i", f"ledger={folder / 'clean.ledger'}")
    elapsed = time.monotonic() - started
    assert run["status"] == "completed"
    return run["outputs"], _json(db, "vars", "clean"), elapsed


def _killed_run(folder: Path, rng: random.Random, kills_wanted: int, duration: float) -> dict:
    """Run the flow under random SIGKILLs, resume it to the end; the counts it saw."""
    flow = _setup(folder)
    db_path = folder / "chaos.db"
    db = f"sqlite:///{db_path}"
    ledger = folder / "chaos.ledger"
    kills = starts = 0
    while True:
        status = stored_status(db_path, "mix")
        if status == "completed":  # killed after its last commit
            break
        args = ["resume", "mix", "--json"] if status else \
            ["run", flow, "--run-id", "mix", "-i", f"ledger={ledger}", "--json"]
        proc = _tether(db, *args)
        starts += 1
        if kills < kills_wanted and kill_after(proc, rng.uniform(0.1, 0.7 * duration)):
            kills += 1
            continue
        out, err = proc.communicate(timeout=300)
        assert "Traceback" not in err, err
        assert proc.returncode == 0, (proc.returncode, out, err)
        break
    return {"db_path": db_path, "db": db, "ledger": ledger, "kills": kills, "starts": starts}


def _check(run: dict, expected_outputs: dict, expected_vars: dict) -> dict:
    """Assert the killed run's final state; return its figures."""
    db, db_path = run["db"], run["db_path"]
    show = _json(db, "show", "mix")
    assert show["status"] == "completed"
    diffs = sum(1 for k in expected_outputs if show["outputs"].get(k) != expected_outputs[k])
    values = _json(db, "vars", "mix")
    diffs += sum(1 for k in set(expected_vars) | set(values) if values.get(k) != expected_vars.get(k))

    con = sqlite3.connect(db_path)
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    steps = [r[0] for r in con.execute("SELECT step_id FROM steps WHERE run_id = 'mix' ORDER BY seq")]
    iterations = con.execute("SELECT count(*), count(DISTINCT idx) FROM iterations WHERE run_id = 'mix'").fetchone()
    counter = [json.loads(bytes(r[0])[1:]) for r in con.execute(
        "SELECT value FROM var_history WHERE run_id = 'mix' AND name = 'counter' ORDER BY version")]
    ok_writes = con.execute("SELECT count(*) FROM var_history WHERE run_id = 'mix' AND name = 'ok'").fetchone()[0]
    step_keys = {key if "/" in key else f"mix/{step}/{key}" for step, key in con.execute(
        "SELECT step_id, idempotency_key FROM steps WHERE run_id = 'mix' AND step_id LIKE 'effect%'")}
    con.close()
    # lost or doubled commits: every step once and in order, every iteration once, every write once
    lost = len(set(STEP_IDS) - set(steps)) + (len(steps) - len(set(steps))) + (ITEMS - iterations[1]) \
        + (iterations[0] - iterations[1]) + abs(ok_writes - (1 + ITEMS)) \
        + (counter != [0] + [sum(range(i + 1)) for i in range(1, 2 * HALF)])
    assert steps == STEP_IDS or lost, steps

    ledger = Counter(run["ledger"].read_text().splitlines())
    step_lines = {k: n for k, n in ledger.items() if k.startswith("step ")}
    item_lines = {k: n for k, n in ledger.items() if k.startswith("item ")}
    assert set(step_lines) == {f"step {k}" for k in step_keys}, "a committed step's side effect is missing"
    assert set(item_lines) == {f"item {n}" for n in range(ITEMS)}, "an iteration's side effect is missing"
    step_reruns = sum(n - 1 for n in step_lines.values())
    item_reruns = sum(n - 1 for n in item_lines.values())
    verify = _json(db, "verify", "mix")
    return {"kills": run["kills"], "starts": run["starts"], "lost": lost, "diffs": diffs,
            "step_reruns": step_reruns, "item_reruns": item_reruns, "integrity_ok": integrity == "ok",
            "verify_ok": bool(verify["ok"])}


def test_random_sigkills_of_a_mixed_flow_resume_to_the_uninterrupted_state(tmp_path, figures):
    rng = random.Random(SEED)
    expected_outputs, expected_vars, duration = _reference(tmp_path / "clean")
    assert expected_outputs["ok"] == ITEMS and expected_vars["counter"] == sum(range(2 * HALF))
    totals: Counter[str] = Counter()
    worst_per_kill = 0.0
    runs = 0
    while totals["kills"] < KILLS:
        wanted = min(KILLS - totals["kills"], rng.randint(6, 14))
        run = _killed_run(tmp_path / f"run{runs}", rng, wanted, duration)
        found = _check(run, expected_outputs, expected_vars)
        runs += 1
        assert found["lost"] == 0 and found["diffs"] == 0 and found["integrity_ok"] and found["verify_ok"], \
            (runs, found)
        reruns = found["step_reruns"] + found["item_reruns"]
        assert reruns <= found["kills"] * PARALLEL, found  # only in-flight work runs again
        if found["kills"]:
            worst_per_kill = max(worst_per_kill, reruns / found["kills"])
        totals.update({k: int(v) for k, v in found.items()})
        figures.update(runs=runs, **{k: totals[k] for k in ("kills", "starts", "lost", "diffs", "step_reruns",
                                                             "item_reruns", "integrity_ok", "verify_ok")},
                       worst_reruns_per_kill=round(worst_per_kill, 2))
        if runs > 1 or not LONG:
            for p in (tmp_path / f"run{runs - 1}").glob("chaos.db*"):
                p.unlink()  # keep the disk use of a long run flat
    assert totals["kills"] >= KILLS
