"""A model call is paid once: its answer is committed before ``vars`` are rendered and a
later execution of the same step reuses it; only a failed call or a rewind calls again."""
from __future__ import annotations

from tests.model.conftest import models_block

BROKEN = """
  - id: ask
    tool: model
    with: {model: m, prompt: 'ANSWER:{"n": 2}', schema: {type: object, properties: {n: {type: integer}}}}
    vars: {n: "{{ result.json.missing_field }}"}
  - id: after
    vars: {done: true}
"""
FIXED = BROKEN.replace("result.json.missing_field", "result.json.n")


def flow(server, steps: str) -> str:
    return "name: paid\n" + models_block(server, input_per_million=1, output_per_million=1) + "steps:" + steps


def test_vars_failure_then_resume_flow_reuses_the_answer(server, make_engine, write_flow):
    engine = make_engine()
    run = engine.run(write_flow(flow(server, BROKEN)))
    assert run.status == "failed" and run.error["type"] == "TemplateError"
    assert server.calls == 1
    events = [e for e in engine.events(run.id) if e.type == "tool.result"]
    assert len(events) == 1 and events[0].data["result"]["json"] == {"n": 2}
    resumed = engine.resume(run.id, flow=write_flow(flow(server, FIXED), "fixed.yaml"))
    assert resumed.status == "completed", resumed.error
    assert resumed.vars == {"n": 2, "done": True}
    assert server.calls == 1  # not called again
    step = [s for s in engine.steps(run.id) if s.step_id == "ask"][-1]
    assert step.meta["reused"] is True
    from tether.queries import usage
    assert usage(engine, run.id)["calls"] == 1  # the reuse is not counted as paid again


def test_plain_resume_after_a_vars_failure_reuses_too(server, make_engine, write_flow):
    engine = make_engine()
    text = flow(server, BROKEN.replace("result.json.missing_field", "vars.flag"))
    run = engine.run(write_flow("vars: {}\n" + text))
    assert run.status == "failed"
    resumed = engine.resume(run.id, set={"flag": 7})
    assert resumed.status == "completed", resumed.error
    assert resumed.vars["n"] == 7 and server.calls == 1


def test_a_failed_call_is_called_again_on_resume(server, make_engine, write_flow):
    engine = make_engine()
    run = engine.run(write_flow(flow(server, """
  - {id: ask, tool: model, with: {model: m, prompt: 'ANSWER:not json', schema: {type: object}}}
""")))
    assert run.status == "failed" and run.error["type"] == "SchemaError"
    engine.resume(run.id)
    assert server.calls == 2


def test_resume_from_the_step_calls_again(server, make_engine, write_flow):
    engine = make_engine()
    run = engine.run(write_flow(flow(server, FIXED)))
    assert run.status == "completed" and server.calls == 1
    again = engine.resume(run.id, from_step="ask")
    assert again.status == "completed", again.error
    assert server.calls == 2
    from tether.queries import usage
    assert usage(engine, run.id)["calls"] == 2  # both were paid


def test_loop_iteration_reuses_committed_answers(server, make_engine, write_flow):
    engine = make_engine()
    text = flow(server, """
  - id: each
    foreach: [a, b, c]
    do:
      - {id: ask, tool: model, with: {model: m, prompt: "word {{ item }}"}}
      - id: check
        tool: python
        with: {code: "def main(x):\\n    if x == 'c':\\n        raise ValueError('no c')\\n    return x", args: {x: "{{ item }}"}}
""")
    run = engine.run(write_flow(text))
    assert run.status == "failed"
    assert server.calls == 3
    engine.resume(run.id, flow=write_flow(text.replace("if x == 'c'", "if x == 'z'"), "fixed.yaml"))
    assert server.calls == 3  # iteration c's answer was committed before its body failed


def test_usage_sums_loops_and_child_runs(server, make_engine, write_flow, tmp_path):
    (tmp_path / "child.yaml").write_text(
        "name: child\n" + models_block(server, input_per_million=1, output_per_million=1)
        + "steps:\n  - {id: c, tool: model, with: {model: m, prompt: one two}}\n")
    engine = make_engine()
    run = engine.run(write_flow(flow(server, """
  - id: each
    foreach: [1, 2]
    do: {id: ask, tool: model, with: {model: m, prompt: "n {{ item }}"}}
  - {id: sub, tool: flow, with: {path: child.yaml}}
""")))
    assert run.status == "completed", run.error
    from tether.queries import own_usage, usage
    total = usage(engine, run.id)
    assert total["calls"] == 3 and total["input_tokens"] == 2 + 2 + 2
    assert total["output_tokens"] == 3 + 3 + 3
    assert total["cost"] == round((6 + 9) / 1e6, 10)
    assert own_usage(engine, run.id)[1]["ask"]["calls"] == 2
    fork = engine.fork(run.id, from_step="sub")
    assert usage(engine, run.id)["calls"] == 3 and fork.status == "completed"


def test_paid_once_on_postgresql(server, write_flow, monkeypatch):
    from tests.conftest import drop_schema, postgres_url
    from tether import Engine
    from tether.queries import usage
    url = postgres_url()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    engine = Engine(url)
    try:
        run = engine.run(write_flow(flow(server, BROKEN)))
        assert run.status == "failed"
        resumed = engine.resume(run.id, flow=write_flow(flow(server, FIXED), "fixed.yaml"))
        assert resumed.status == "completed", resumed.error
        assert server.calls == 1 and usage(engine, run.id)["calls"] == 1
    finally:
        engine.close()
        drop_schema(url)
