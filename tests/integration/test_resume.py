"""Resume, pause, rewind, flow edits, environment checks, forks, sub-flows, checkpoints."""
from __future__ import annotations

import pytest

from tether import Engine, EnvironmentMismatch, UsageError
from tether.engine.lifecycle import InvalidTransition

LEDGER_FLOW = """
name: ledger
inputs: {ledger: {type: string, required: true}, gate: {type: string, required: true}}
vars: {n: 0}
steps:
  - id: one
    tool: python
    with: {function: "ledgerlib:main", args: {ledger: "{{ inputs.ledger }}", tag: one, gate: ""}}
    vars: {n: "{{ vars.n + 1 }}"}
  - id: two
    tool: python
    with: {function: "ledgerlib:main", args: {ledger: "{{ inputs.ledger }}", tag: two, gate: "{{ inputs.gate }}"}}
    vars: {n: "{{ vars.n + 10 }}"}
  - id: three
    vars: {n: "{{ vars.n + 100 }}"}
outputs:
  n: "{{ vars.n }}"
"""
LEDGER_LIB = """
import os


def main(ledger, tag, gate):
    with open(ledger, "a") as f:
        f.write(tag + "\\n")
    if gate and not os.path.exists(gate):
        raise RuntimeError("gate closed")
    return tag
"""


@pytest.fixture
def ledger_run(engine, write_flow, tmp_path):
    ledger, gate = tmp_path / "ledger.txt", tmp_path / "gate"
    (tmp_path / "ledgerlib.py").write_text(LEDGER_LIB)
    run = engine.run(write_flow(LEDGER_FLOW), {"ledger": str(ledger), "gate": str(gate)})
    return run, ledger, gate


def test_resume_a_failed_run_does_not_rerun_completed_steps(engine, ledger_run):
    run, ledger, gate = ledger_run
    assert run.status == "failed" and run.error["step"] == "two" and run.vars == {"n": 1}
    gate.write_text("open")
    again = engine.resume(run.id)
    assert again.status == "completed" and again.outputs == {"n": 111}
    assert ledger.read_text().split() == ["one", "two", "two"]  # 'two' ran again, 'one' did not
    assert engine.record(run.id).attempt == 2
    with pytest.raises(UsageError, match="completed"):
        engine.resume(run.id)


def test_set_is_written_with_the_takeover(engine, ledger_run):
    run, _, gate = ledger_run
    gate.write_text("open")
    seq_before = engine.record(run.id).seq
    again = engine.resume(run.id, set={"n": 5, "note": "fixed"})
    assert again.outputs == {"n": 115}
    hist = engine.history(run.id, "note")
    assert hist[0].seq == seq_before + 1 and hist[0].source_step == "resume"
    resumed = [e for e in engine.events(run.id) if e.type == "run.resumed"]
    assert resumed[0].seq == seq_before + 1 and resumed[0].data["set"] == ["n", "note"]


def test_from_rewinds_a_completed_run_and_keeps_history(engine, ledger_run):
    run, ledger, gate = ledger_run
    gate.write_text("open")
    engine.resume(run.id)
    again = engine.resume(run.id, from_step="two")
    assert again.status == "completed" and again.outputs == {"n": 111}
    assert ledger.read_text().split() == ["one", "two", "two", "two"]
    assert [h.value for h in engine.history(run.id, "n")] == [0, 1, 11, 111, 1, 11, 111]
    keys = [(s.status, s.idempotency_key) for s in engine.steps(run.id) if s.step_id == "two"]
    assert [k[0] for k in keys] == ["failed", "completed", "completed"]
    assert keys[0][1] == keys[1][1]  # the failed execution, resumed, is the same execution
    assert keys[2][1] != keys[1][1]  # a re-run after a rewind is a new one
    with pytest.raises(UsageError, match="no step 'nope'"):
        engine.resume(run.id, from_step="nope")


def test_pause_and_resume_with_values(engine, write_flow):
    flow = write_flow("""
name: approval
steps:
  - id: ask
    tool: pause
    with: {message: "ok to ship?"}
    vars: {answer: "{{ result.set.approved }}", asked: "{{ result.message }}"}
  - id: ship
    if: "{{ vars.approved }}"
    vars: {shipped: true}
""")
    run = engine.run(flow)
    assert run.status == "paused" and run.vars == {}
    done = engine.resume(run.id, set={"approved": True})
    assert done.status == "completed"
    assert done.vars == {"approved": True, "answer": True, "asked": "ok to ship?", "shipped": True}
    (ask,) = [s for s in engine.steps(run.id) if s.step_id == "ask"]
    assert ask.result["set"] == {"approved": True} and ask.result["resumed_at"]


def test_resume_with_an_edited_flow_reports_and_reruns_changed_steps(engine, write_flow, ledger_run, tmp_path):
    run, ledger, gate = ledger_run
    gate.write_text("open")
    engine.resume(run.id)
    edited = write_flow(LEDGER_FLOW.replace("vars.n + 100", "vars.n + 1000"), "edited.yaml")
    reports = []
    again = engine.resume(run.id, flow=edited, rerun_changed=True, report=lambda k, d: reports.append((k, d)))
    assert ("flow", [("three", "changed")]) in reports
    assert again.outputs == {"n": 1011}
    assert ledger.read_text().split() == ["one", "two", "two"]  # only 'three' re-ran
    assert "1000" in engine.record(run.id).flow_text
    renamed = write_flow(LEDGER_FLOW.replace("name: ledger", "name: other"), "other.yaml")
    with pytest.raises(UsageError, match="runs 'ledger'"):
        engine.resume(run.id, flow=renamed, rerun_changed=True)


ENV_FLOW = """
name: envcheck
env:
  REGION: {default: eu, on_change: fail}
  LEVEL: {}
  MODE: {on_change: keep}
  TOKEN: {secret: true}
steps:
  - id: stop
    tool: pause
  - id: use
    vars: {region: "{{ env.REGION }}", level: "{{ env.LEVEL }}", mode: "{{ env.MODE }}"}
"""


def test_environment_policies_on_resume(engine, write_flow, monkeypatch):
    for k, v in {"LEVEL": "1", "MODE": "fast", "TOKEN": "secret-a"}.items():
        monkeypatch.setenv(k, v)
    run = engine.run(write_flow(ENV_FLOW))
    seq = engine.record(run.id).seq
    monkeypatch.setenv("REGION", "us")
    monkeypatch.setenv("LEVEL", "2")
    monkeypatch.setenv("MODE", "slow")
    monkeypatch.setenv("TOKEN", "secret-b")
    with pytest.raises(EnvironmentMismatch, match="REGION"):
        engine.resume(run.id)
    assert engine.record(run.id).seq == seq and engine.record(run.id).status == "paused"  # nothing changed
    reports = []
    done = engine.resume(run.id, env={"REGION": "eu"}, report=lambda k, d: reports.append((k, d)))
    assert done.vars == {"region": "eu", "level": "2", "mode": "fast"}  # warn: new value; keep: old one
    (_kind, changes), = [r for r in reports if r[0] == "env"]
    by_name = {c.name: c for c in changes}
    assert (by_name["LEVEL"].change, by_name["LEVEL"].policy) == ("changed", "warn")
    assert by_name["TOKEN"].change == "changed" and by_name["TOKEN"].old is None  # compared by HMAC only
    assert "REGION" not in by_name


def test_env_policy_override_and_critical(engine, write_flow, monkeypatch):
    monkeypatch.setenv("LEVEL", "1")
    run = engine.run(write_flow(ENV_FLOW))
    monkeypatch.setenv("LEVEL", "9")
    with pytest.raises(EnvironmentMismatch):
        engine.resume(run.id, env_policy="fail")
    with pytest.raises(UsageError, match="secret"):
        monkeypatch.setenv("TOKEN", "x")
        engine.resume(run.id, env_policy="keep")
    critical = write_flow(ENV_FLOW.replace("LEVEL: {}", "LEVEL: {critical: true}").replace("envcheck", "crit"),
                          "crit.yaml")
    monkeypatch.setenv("LEVEL", "1")
    run2 = engine.run(critical)
    monkeypatch.setenv("LEVEL", "2")
    with pytest.raises(EnvironmentMismatch, match="LEVEL"):
        engine.resume(run2.id)


def test_keep_is_refused_for_secrets_in_the_flow(engine, write_flow):
    from tether import FlowError
    with pytest.raises(FlowError, match="keep"):
        engine.run(write_flow("name: k\nenv: {T: {secret: true, on_change: keep}}\nsteps: [{id: s}]\n"))


def test_fork_starts_a_new_run_from_a_checkpoint(engine, ledger_run):
    run, _ledger, gate = ledger_run
    gate.write_text("open")
    engine.resume(run.id)
    forked = engine.fork(run.id, from_step="three", set={"n": 0})
    assert forked.parent_id == run.id and forked.status == "completed" and forked.outputs == {"n": 100}
    assert engine.get_run(run.id).outputs == {"n": 111}  # the original is untouched
    diff = engine.diff(run.id, 1, "three")
    assert diff["changed"] == {"n": {"from": 0, "to": 111}}
    assert [c["seq"] for c in engine.checkpoints(run.id)][:3] == [1, 2, 3]


def test_invalid_transitions_are_clear_errors(engine, write_flow):
    run = engine.run(write_flow("name: t\nsteps: [{id: s}]\n"))
    with pytest.raises(UsageError):
        engine.pause(run.id)
    with pytest.raises(InvalidTransition):
        engine.cancel(run.id)
    paused = engine.run(write_flow("name: p\nsteps: [{id: s, tool: pause}]\n", "p.yaml"))
    assert engine.cancel(paused.id) == "paused"
    assert engine.get_run(paused.id).status == "cancelled"
    with pytest.raises(InvalidTransition):
        engine.resume(paused.id)


def test_sub_flow_runs_as_a_child_and_resumes_with_the_parent(engine, write_flow, tmp_path):
    gate = tmp_path / "gate"
    write_flow(f"""
name: child
inputs: {{x: 1}}
steps:
  - id: double
    vars: {{y: "{{{{ inputs.x * 2 }}}}"}}
  - id: guarded
    tool: python
    with: {{code: "import os\\ndef main():\\n    if not os.path.exists('{gate}'): raise RuntimeError('closed')"}}
outputs:
  y: "{{{{ vars.y }}}}"
""", "child.yaml")
    parent = write_flow("""
name: parent
steps:
  - id: sub
    tool: flow
    with: {path: child.yaml, inputs: {x: 21}}
    vars: {got: "{{ result.y }}"}
outputs:
  got: "{{ vars.got }}"
""", "parent.yaml")
    run = engine.run(parent)
    assert run.status == "failed" and run.error["type"] == "ChildRunFailed"
    children = [r for r in engine.runs() if r.parent_id == run.id]
    assert len(children) == 1 and children[0].status == "failed"
    gate.write_text("open")
    done = engine.resume(run.id)
    assert done.status == "completed" and done.outputs == {"got": 42}
    child = engine.record(children[0].run_id)
    assert child.status == "completed" and child.attempt == 2
    assert [s.step_id for s in engine.steps(child.run_id)].count("double") == 1  # not re-run


def test_manual_checkpoints_survive_a_crash(tmp_path):
    import subprocess
    import sys
    flow = tmp_path / "long.yaml"
    flow.write_text("""
name: long_task
steps:
  - id: work
    tool: python
    with:
      code: |
        import os
        def main(ctx, marker):
            state = ctx.restore("progress") or {"done": []}
            for i in range(len(state["done"]), 8):
                state["done"].append(i)
                ctx.checkpoint("progress", state)
                if i == 4 and not os.path.exists(marker):
                    open(marker, "w").close()
                    os._exit(9)          # the process dies in the middle of the task
            return state
      args: {marker: "MARKER"}
outputs:
  done: "{{ steps.work.result.done }}"
""".replace("MARKER", str(tmp_path / "crashed")))
    db = f"sqlite:///{tmp_path / 'ck.db'}"
    first = subprocess.run([sys.executable, "-m", "tether", "--db", db, "run", str(flow), "--run-id", "ck"],
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 9
    second = subprocess.run([sys.executable, "-m", "tether", "--db", db, "resume", "ck", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    import json
    assert json.loads(second.stdout)["outputs"] == {"done": [0, 1, 2, 3, 4, 5, 6, 7]}
    e = Engine(db)
    saved = [ev for ev in e.events("ck") if ev.type == "checkpoint"]
    assert [ev.data["data"]["done"][-1] for ev in saved] == list(range(8))  # each item done once
    e.close()


def test_verify_is_clean_for_a_resumed_run_and_catches_tampering(engine, ledger_run, store_url, tmp_path):
    run, _, gate = ledger_run
    gate.write_text("open")
    engine.resume(run.id)
    report = engine.verify(run.id)
    assert report["ok"] and report["checked"] == 3 and report["volatile"] == []
    if not store_url.startswith("sqlite"):
        return
    import sqlite3
    con = sqlite3.connect(store_url[len("sqlite:///"):])
    con.execute("UPDATE var_history SET value = X'6a39393939' WHERE name = 'n' AND version = 3")  # 'j9999'
    con.commit()
    con.close()
    report = engine.verify(run.id)
    assert not report["ok"]
    assert [(d["step"], d["field"], d["recorded"], d["rendered"]) for d in report["differences"]] == [
        ("two", "vars.n", 9999, 11), ("three", "vars.n", 111, 10099)]  # and what was derived from it


def test_verify_reports_volatile_templates(engine, write_flow):
    run = engine.run(write_flow("name: v\nsteps:\n  - id: s\n    vars: {at: '{{ now() }}', x: 1}\n"))
    report = engine.verify(run.id)
    assert report["ok"] and report["volatile"] == [{"step": "s", "field": "vars.at",
                                                   "reason": "calls now/timestamp/uuid"}]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_flow_changed_in_the_store_is_validated_whole_again_and_a_damaged_one_refused(engine, ledger_run,
                                                                                         store_url):
    """Resume builds a stored flow's steps as it reaches them only while the stored data has
    the digest made when it was validated; data changed in the store is validated whole
    first, as it always was: damaged, the resume is refused before anything changes."""
    import sqlite3

    from tether.errors import CorruptRecord
    from tether.store import codec
    run, _, gate = ledger_run
    gate.write_text("open")
    data = engine.store.flow_data(run.id)

    def store_flow(doc):
        con = sqlite3.connect(store_url[len("sqlite:///"):])
        con.execute("UPDATE run_specs SET flow_data = ? WHERE run_id = ?", (codec.encode(doc).data, run.id))
        con.commit()
        con.close()
    store_flow({**data, "steps": [*data["steps"][:2], {**data["steps"][2], "retry": {"attempts": "many"}}]})
    with pytest.raises(CorruptRecord, match="no longer loads"):
        engine.resume(run.id)
    record = engine.record(run.id)
    assert (record.status, record.attempt, record.seq) == ("failed", 1, run.seq)  # nothing changed
    store_flow({**data, "steps": [*data["steps"][:2], {**data["steps"][2], "vars": {"n": "{{ vars.n + 1000 }}"}}]})
    assert engine.resume(run.id).outputs == {"n": 1011}  # the data as it is now, validated
