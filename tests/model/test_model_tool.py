"""``tool: model`` end to end through the real openai client against a local server."""
from __future__ import annotations

import json
import time

from tests.model.conftest import models_block


def flow(server, steps: str, name: str = "m", **extra: object) -> str:
    return "name: modelflow\n" + models_block(server, name, **extra) + "steps:\n" + steps


def test_prompt_result_and_meta(server, make_engine, write_flow):
    engine = make_engine()
    run = engine.run(write_flow(flow(server, """
  - id: ask
    tool: model
    with: {model: m, prompt: "say hello world", system: "be brief", temperature: 0, max_tokens: 20}
    vars: {answer: "{{ result.text }}"}
""", input_per_million=2.0, output_per_million=10.0)))
    assert run.status == "completed", run.error
    assert run.vars["answer"] == "echo: say hello world"
    step = engine.steps(run.id)[0]
    assert step.result == {"text": "echo: say hello world", "json": None, "finish_reason": "stop"}
    meta = step.meta
    assert meta["model"] == "m" and meta["input_tokens"] == 5 and meta["output_tokens"] == 4
    assert meta["total_tokens"] == 9 and meta["response_id"].startswith("chatcmpl-")
    assert meta["cost"] == (5 * 2.0 + 4 * 10.0) / 1e6 and meta["latency_ms"] > 0
    sent = server.requests[0]
    assert sent["body"]["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["body"]["temperature"] == 0 and sent["body"]["max_tokens"] == 20
    assert sent["headers"]["idempotency-key"] == f"{run.id}/ask/0"
    assert sent["headers"]["authorization"] == "Bearer sk-test-key"


def test_no_prices_means_null_cost_and_provider_model_id(server, make_engine, write_flow):
    run = make_engine().run(write_flow(flow(server, """
  - {id: ask, tool: model, with: {model: fast, messages: [{role: user, content: hi}]}}
""", name="fast", model="provider-x")))
    assert run.status == "completed", run.error
    assert server.requests[0]["body"]["model"] == "provider-x"


def test_json_schema_answer_is_validated_and_extracted(server, make_engine, write_flow):
    run = make_engine().run(write_flow(flow(server, """
  - id: ask
    tool: model
    with:
      model: m
      prompt: 'ANSWER:{"title": "Durable", "words": 3}'
      schema: {type: object, required: [title, words], properties: {title: {type: string}, words: {type: integer}}}
    vars: {title: "{{ result.json.title }}", words: "{{ result.json.words }}"}
""")))
    assert run.status == "completed", run.error
    assert run.vars == {"title": "Durable", "words": 3}
    fmt = server.requests[0]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["required"] == ["title", "words"]


def test_malformed_json_fails_the_attempt_and_retry_asks_again(server, make_engine, write_flow):
    run = make_engine().run(write_flow(flow(server, """
  - id: ask
    tool: model
    retry: {attempts: 2, delay: 0}
    with: {model: m, prompt: "MALFORMED please", schema: {type: object, required: [title], properties: {title: {type: string}}}}
""")))
    assert run.status == "completed", run.error
    assert server.calls == 2
    assert run.id and "not JSON" in json.dumps(make_engine().steps(run.id)[0].meta["attempt_errors"])


def test_output_not_matching_schema_fails_with_the_errors(server, make_engine, write_flow):
    run = make_engine().run(write_flow(flow(server, """
  - id: ask
    tool: model
    with: {model: m, prompt: 'ANSWER:{"title": 5}', schema: {type: object, required: [title, n], properties: {title: {type: string}}}}
""")))
    assert run.status == "failed"
    assert run.error["type"] == "SchemaError"
    assert "'n' is a required property" in run.error["message"] and "title: 5 is not of type" in run.error["message"]


def test_pydantic_model_schema(server, make_engine, write_flow, tmp_path):
    (tmp_path / "shapes.py").write_text(
        "from pydantic import BaseModel\n\nclass Summary(BaseModel):\n    title: str\n    points: list[str]\n")
    run = make_engine().run(write_flow(flow(server, """
  - id: ask
    tool: model
    with: {model: m, prompt: "summarise durable state for me", schema: "shapes:Summary"}
    vars: {points: "{{ result.json.points | length }}"}
""")))
    assert run.status == "completed", run.error
    assert run.vars == {"points": 3}
    assert server.requests[0]["body"]["response_format"]["json_schema"]["name"] == "Summary"


def test_server_without_structured_outputs_gets_json_mode(server, make_engine, write_flow):
    run = make_engine().run(write_flow(flow(server, """
  - id: ask
    tool: model
    with: {model: no-structured, prompt: "two words", schema: {type: object, required: [a], properties: {a: {type: string}}}}
    vars: {a: "{{ result.json.a }}"}
""", name="no-structured")))
    assert run.status == "completed", run.error
    assert run.vars == {"a": "two words"}
    last = server.requests[-1]["body"]
    assert last["response_format"] == {"type": "json_object"} and "JSON Schema" in last["messages"][0]["content"]


def test_429_is_retried_honouring_retry_after(server, make_engine, write_flow):
    started = time.monotonic()
    run = make_engine().run(write_flow(flow(server, """
  - {id: ask, tool: model, with: {model: m, prompt: RATELIMIT}}
""")))
    assert run.status == "completed", run.error
    assert server.calls == 2 and time.monotonic() - started >= 0.9


def test_5xx_is_retried(server, make_engine, write_flow):
    run = make_engine().run(write_flow(flow(server, """
  - {id: ask, tool: model, with: {model: m, prompt: FAIL500}}
""")))
    assert run.status == "completed", run.error
    assert server.calls == 2


def test_slow_answer_times_out(server, make_engine, write_flow):
    run = make_engine().run(write_flow(flow(server, """
  - {id: ask, tool: model, timeout: 0.3s, with: {model: m, prompt: "SLEEP:1"}}
""")))
    assert run.status == "failed" and run.error["type"] == "TimeoutError"


def test_bad_arguments_are_clear_errors(server, make_engine, write_flow):
    run = make_engine().run(write_flow(flow(server, """
  - {id: ask, tool: model, with: {model: m, prompt: a, messages: [], bogus: 1}}
""")))
    assert run.status == "failed" and run.error["type"] == "ArgumentError" and "bogus" in run.error["message"]
    run = make_engine().run(write_flow(flow(server, """
  - {id: ask, tool: model, with: {model: m, prompt: a, schema: {type: 12}}}
""")))
    assert run.status == "failed" and "not a valid JSON Schema" in run.error["message"]


def test_defaults_from_settings(server, make_engine, write_flow, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"m": {"input_per_million": 1, "output_per_million": 1}}))
    from tether.settings import Settings
    settings = Settings.from_env({"TETHER_MODEL_BASE_URL": server.url, "TETHER_MODEL_PRICES": str(prices)})
    engine = make_engine(model_base_url=settings.model_base_url, model_prices=settings.model_prices)
    run = engine.run(write_flow("name: d\nmodels: {m: {}}\nsteps:\n  - {id: ask, tool: model, with: {model: m, prompt: hi there}}\n"))
    assert run.status == "completed", run.error
    assert engine.steps(run.id)[0].meta["cost"] == (2 + 3) / 1e6


def test_max_concurrency_bounds_parallel_iterations(server, make_engine, write_flow):
    engine = make_engine()
    run = engine.run(write_flow(flow(server, """
  - id: each
    foreach: "{{ range(50) | list }}"
    parallel: 16
    do:
      id: ask
      tool: model
      with: {model: m, prompt: "SLEEP:0.02 item {{ item }}"}
""", max_concurrency=4)))
    assert run.status == "completed", run.error
    assert server.calls == 50
    assert 2 <= server.max_in_flight <= 4


def test_cassette_replays_a_retried_request_in_order(server, make_engine, write_flow, tmp_path):
    from tether.tools import model_cassette
    tape = tmp_path / "tape.jsonl"
    text = flow(server, """
  - id: ask
    tool: model
    retry: {attempts: 2, delay: 0}
    with: {model: m, prompt: "MALFORMED first", schema: {type: object, required: [t], properties: {t: {type: string}}}}
    vars: {t: "{{ result.json.t }}"}
""")
    first = make_engine(model_cassette=str(tape)).run(write_flow(text))
    assert first.status == "completed" and server.calls == 2
    assert len(tape.read_text().splitlines()) == 2  # the malformed answer and the good one
    model_cassette.forget()
    server.stop()
    second = make_engine(model_cassette=str(tape)).run(write_flow(text))
    assert second.status == "completed", second.error
    assert second.vars == first.vars


def test_api_key_canary_in_process(server, make_engine, write_flow, db_path, monkeypatch, tmp_path):
    """The fast cover of the process-level canary: a server that echoes the key back."""
    canary = "sk-canary-inproc-91c2"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    engine = make_engine(model_cassette=str(tmp_path / "tape.jsonl"))
    run = engine.run(write_flow(flow(server, """
  - {id: leak, tool: model, with: {model: m, prompt: ECHOAUTH}, vars: {said: "{{ result.text }}"}}
outputs: {said: "{{ vars.said }}"}
""")))
    assert run.status == "completed", run.error
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {canary}"
    assert run.outputs == {"said": "your header was Bearer ***"}
    from tether.queries import usage
    texts = [json.dumps([e.data for e in engine.events(run.id)]), json.dumps([s.meta for s in engine.steps(run.id)]),
             json.dumps(usage(engine, run.id)), (tmp_path / "tape.jsonl").read_text()]
    assert not any(canary in t for t in texts)
    engine.close()
    for path in db_path.parent.iterdir():
        if path.name.startswith("tether.db"):
            assert canary.encode() not in path.read_bytes()


def test_tether_settings_are_never_sent_as_the_key(server, make_engine, write_flow, monkeypatch):
    monkeypatch.setenv("TETHER_SECRET_KEY", "do-not-send")
    run = make_engine().run(write_flow(flow(server, """
  - {id: ask, tool: model, with: {model: m, prompt: hi, api_key_env: TETHER_SECRET_KEY}}
""")))
    assert run.status == "failed" and "never sent" in run.error["message"]
    assert server.calls == 0


def test_missing_client_is_a_clear_error(server, make_engine, write_flow, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openai" else real(name, *a))
    run = make_engine().run(write_flow(flow(server, "\n  - {id: ask, tool: model, with: {model: m, prompt: hi}}\n")))
    assert run.status == "failed" and run.error["type"] == "ImportError"
    assert "pip install 'tether[models]'" in run.error["message"]


def test_cancel_stops_waiting_for_an_answer(server, write_flow, db_path, monkeypatch):
    import threading

    from tether import Engine
    from tether.settings import Settings
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    engine = Engine(f"sqlite:///{db_path}", lease_seconds=0.6, settings=Settings())
    out: dict = {}
    path = write_flow(flow(server, "\n  - {id: ask, tool: model, with: {model: m, prompt: 'SLEEP:8 slow'}}\n"))
    t = threading.Thread(target=lambda: out.setdefault("run", engine.run(path, run_id="cx")))
    started = time.monotonic()
    t.start()
    while server.in_flight == 0 and time.monotonic() - started < 10:
        time.sleep(0.02)
    engine.cancel("cx")
    t.join(timeout=8)
    assert not t.is_alive() and out["run"].status == "cancelled"
    assert time.monotonic() - started < 6
    engine.close()
