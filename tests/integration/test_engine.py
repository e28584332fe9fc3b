"""The engine end to end on the real stores: variables, steps, tools, commits."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.helpers import process_gone
from tether import ConflictError, Engine, FlowError, NotFound, UsageError
from tether.errors import LeaseLost


def run_text(engine: Engine, write_flow, text: str, inputs=None, **kw):
    return engine.run(write_flow(text), inputs, **kw)


def test_vars_block_is_a_simultaneous_assignment(engine, write_flow):
    r = run_text(engine, write_flow, """
name: swap
vars: {a: 1, b: 2}
steps:
  - id: s
    vars: {a: "{{ vars.b }}", b: "{{ vars.a }}"}
""")
    assert r.status == "completed" and r.vars == {"a": 2, "b": 1}


def test_initial_vars_render_in_order(engine, write_flow):
    r = run_text(engine, write_flow, "name: f\nvars: {a: 2, b: '{{ vars.a * 10 }}'}\nsteps: [{id: s}]\n")
    assert r.vars == {"a": 2, "b": 20}


def test_before_is_written_before_the_tool_and_after_sees_it(engine, write_flow):
    r = run_text(engine, write_flow, """
name: phases
vars: {n: 1}
steps:
  - id: s
    tool: python
    with: {code: "def main(x): return x * 3", args: {x: "{{ vars.n }}"}}
    vars:
      before: {n: "{{ vars.n + 1 }}"}
      after: {tripled: "{{ result }}", n_after: "{{ vars.n }}"}
""")
    assert r.vars == {"n": 2, "tripled": 6, "n_after": 2}
    hist = engine.history(r.id, "n")
    started = next(e for e in engine.events(r.id) if e.type == "step.started")
    assert hist[-1].seq == started.seq  # committed with step.started, before the tool ran


def test_let_values_are_step_local(engine, write_flow):
    r = run_text(engine, write_flow, """
name: lets
steps:
  - id: s
    let: {base: 10, twice: "{{ let.base * 2 }}"}
    vars: {out: "{{ twice + base }}"}
""")
    assert r.vars == {"out": 30}
    bad = run_text(engine, write_flow, "name: l2\nsteps:\n  - id: a\n    let: {x: 1}\n  - id: b\n"
                   "    vars: {y: '{{ let.x }}'}\n", run_id="bad-let")
    assert bad.status == "failed" and "let" in bad.error["message"]


def test_computed_is_cached_until_a_dependency_changes(engine, write_flow):
    r = run_text(engine, write_flow, """
name: comp
vars: {c: 1}
computed:
  tag: "{{ uuid() }}-{{ vars.c }}"
  double: "{{ vars.c * 2 }}"
steps:
  - id: a
    vars: {t1: "{{ vars.tag }}", t2: "{{ tag }}", d1: "{{ vars.double }}"}
  - id: b
    vars: {c: 5}
  - id: c
    vars: {t3: "{{ vars.tag }}", d2: "${double}"}
""")
    v = r.vars
    assert v["t1"] == v["t2"] and v["t1"].endswith("-1")
    assert v["t3"] != v["t1"] and v["t3"].endswith("-5")
    assert (v["d1"], v["d2"]) == (2, 10)


def test_only_changed_variables_are_written(engine, write_flow):
    r = run_text(engine, write_flow, """
name: same
vars: {x: 1, y: 0}
steps:
  - id: a
    vars: {x: 1, y: "{{ vars.y + 1 }}"}
  - id: b
    vars: {x: "{{ vars.x }}", y: "{{ vars.y + 1 }}"}
""")
    assert [h.version for h in engine.history(r.id, "x")] == [1]
    assert [h.value for h in engine.history(r.id, "y")] == [0, 1, 2]


def test_each_step_is_one_checkpoint_with_its_event(engine, write_flow):
    text = "name: many\nvars: {c: 0}\nsteps:\n" + "".join(
        f"  - id: s{i}\n    vars: {{c: '{{{{ vars.c + 1 }}}}'}}\n" for i in range(20))
    r = run_text(engine, write_flow, text)
    assert r.vars == {"c": 20} and r.seq == 22  # run.started + 20 steps + run.completed
    events = engine.events(r.id)
    assert [e.type for e in events].count("step.completed") == 20
    hist = engine.history(r.id, "c")
    assert [h.seq for h in hist] == list(range(1, 22))


def test_branching_next_goto_and_end(engine, write_flow):
    text = """
name: branch
inputs: {n: 5}
vars: {path: []}
steps:
  - id: check
    vars: {path: "{{ vars.path + ['check'] }}"}
    next:
      - when: "{{ inputs.n > 3 }}"
        goto: big
  - id: small
    vars: {path: "{{ vars.path + ['small'] }}"}
    next: end
  - id: big
    vars: {path: "{{ vars.path + ['big'] }}"}
  - id: after
    vars: {path: "{{ vars.path + ['after'] }}"}
"""
    assert run_text(engine, write_flow, text).vars["path"] == ["check", "big", "after"]
    assert run_text(engine, write_flow, text, {"n": 1}).vars["path"] == ["check", "small"]


def test_goto_loop_gives_each_visit_its_own_idempotency_key(engine, write_flow):
    r = run_text(engine, write_flow, """
name: loop
vars: {i: 0}
steps:
  - id: inc
    tool: python
    with: {code: "def main(ctx): return ctx.idempotency_key"}
    vars: {i: "{{ vars.i + 1 }}"}
    next:
      - when: "{{ vars.i < 3 }}"
        goto: inc
""")
    keys = [s.result for s in engine.steps(r.id)]
    assert r.vars["i"] == 3 and len(set(keys)) == 3 and keys[0] == f"{r.id}/inc/0"


def test_if_false_skips_the_step(engine, write_flow):
    r = run_text(engine, write_flow, """
name: skip
steps:
  - id: a
    if: "{{ 1 > 2 }}"
    tool: shell
    with: {run: "exit 1"}
  - id: b
    vars: {status_a: "{{ steps.a.status }}"}
""")
    assert r.status == "completed" and r.vars == {"status_a": "skipped"}


def test_retry_until_success_with_attempt_count(engine, write_flow, tmp_path):
    (tmp_path / "flaky.py").write_text(
        "from pathlib import Path\n"
        "def call(path):\n"
        "    p = Path(path); n = int(p.read_text()) if p.exists() else 0; p.write_text(str(n + 1))\n"
        "    if n < 2: raise RuntimeError(f'boom {n}')\n"
        "    return n\n")
    r = run_text(engine, write_flow, f"""
name: retry
steps:
  - id: s
    tool: python
    with: {{function: "flaky:call", args: {{path: "{tmp_path / 'count'}"}}}}
    retry: {{attempts: 4, delay: 10ms, backoff: exponential}}
    vars: {{got: "{{{{ result }}}}", tries: "{{{{ steps.s.attempts if steps.s is defined else 0 }}}}"}}
""")
    assert r.status == "completed" and r.vars["got"] == 2
    (step,) = engine.steps(r.id)
    assert step.attempts == 3 and [e["message"] for e in step.meta["attempt_errors"]] == [
        "boom 0", "boom 1"]


def test_exhausted_retries_fail_the_run_with_the_error(engine, write_flow):
    r = run_text(engine, write_flow, """
name: fails
steps:
  - id: s
    tool: shell
    with: {run: "echo nope >&2; exit 3"}
    retry: {attempts: 2, delay: 0}
  - id: never
    vars: {x: 1}
""")
    assert r.status == "failed" and r.error["step"] == "s" and r.error["type"] == "ExitCodeError"
    assert "exited with code 3: nope" in r.error["message"]
    assert "x" not in r.vars
    (step,) = engine.steps(r.id)
    assert step.attempts == 2 and step.result["exit_code"] == 3


def test_shell_timeout_kills_the_whole_process_group(engine, write_flow, tmp_path):
    pidfile = tmp_path / "child.pid"
    t = time.monotonic()
    r = run_text(engine, write_flow, f"""
name: slow
steps:
  - id: s
    tool: shell
    timeout: 500ms
    with: {{run: "sleep 30 & echo $! > {pidfile}; wait"}}
""")
    assert time.monotonic() - t < 10
    assert r.status == "failed" and r.error["type"] == "TimeoutError"
    assert process_gone(int(pidfile.read_text())), "the shell's child process survived the timeout"


def test_on_failure_continue_and_goto_expose_the_error(engine, write_flow):
    r = run_text(engine, write_flow, """
name: failures
steps:
  - id: a
    tool: shell
    with: {run: "exit 2"}
    on_failure: continue
  - id: b
    tool: python
    with: {code: "def main(): raise ValueError('bad value')"}
    on_failure: handler
  - id: skipped_by_goto
    vars: {never: true}
  - id: handler
    vars: {caught: "{{ error.type }}: {{ error.message }}", a_status: "{{ steps.a.status }}"}
""")
    assert r.status == "completed"
    assert r.vars == {"caught": "ValueError: bad value", "a_status": "failed"}


def test_undefined_name_fails_the_step_with_a_clear_message(engine, write_flow):
    r = run_text(engine, write_flow, "name: u\nvars: {count: 1}\nsteps:\n  - id: s\n"
                 "    vars: {x: '{{ vars.cuont + 1 }}'}\n")
    assert r.status == "failed" and r.error["type"] == "TemplateError"
    msg = r.error["message"]
    assert "step 's'" in msg and "vars.x" in msg and "'cuont'" in msg and "did you mean 'count'" in msg


def test_temp_variables_are_removed_when_the_run_ends(engine, write_flow):
    r = run_text(engine, write_flow, """
name: temps
temp_vars: [scratch]
steps:
  - id: a
    vars: {scratch: 41, keep: "{{ vars.scratch + 1 if vars.scratch is defined else 0 }}"}
  - id: b
    vars: {keep: "{{ vars.scratch + 1 }}"}
""")
    assert r.vars == {"keep": 42}
    assert engine.vars(r.id) == {"keep": 42}
    assert [h.deleted for h in engine.history(r.id, "scratch")] == [False, True]


def test_python_ctx_reads_vars_and_sets_them_with_the_step_commit(engine, write_flow):
    r = run_text(engine, write_flow, """
name: ctx
vars: {base: 4}
steps:
  - id: s
    tool: python
    with:
      code: |
        def main(ctx, k):
            ctx.set_var("from_ctx", ctx.vars["base"] * k)
            return {"run": ctx.run_id, "step": ctx.step_id, "attempt": ctx.attempt}
      args: {k: 3}
""")
    assert r.vars["from_ctx"] == 12
    (step,) = engine.steps(r.id)
    assert step.result == {"run": r.id, "step": "s", "attempt": 1}
    assert engine.history(r.id, "from_ctx")[0].seq == step.seq


def test_python_tool_gets_a_copy_of_its_arguments(engine, write_flow):
    r = run_text(engine, write_flow, """
name: copy
vars: {items: [1, 2]}
steps:
  - id: s
    tool: python
    with: {code: "def main(xs):\\n    xs.append(99)\\n    return len(xs)", args: {xs: "{{ vars.items }}"}}
  - id: t
    vars: {after: "{{ vars.items }}"}
""")
    assert r.vars["after"] == [1, 2]


def test_non_json_python_result_fails_clearly(engine, write_flow):
    r = run_text(engine, write_flow, "name: nj\nsteps:\n  - id: s\n    tool: python\n"
                 "    with: {code: 'def main(): return object()'}\n")
    assert r.status == "failed" and r.error["type"] == "ResultError"


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        if self.path.startswith("/items"):
            body, status = json.dumps({"items": [1, 2, 3], "auth": self.headers.get("Authorization")}), 200
        elif self.path == "/flaky":
            status = 503 if self.hits[self.path] < 3 else 200
            body = json.dumps({"ok": status == 200})
        else:
            body, status = "missing", 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture
def http_server():
    _Handler.hits = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_tool_against_a_real_server(engine, write_flow, http_server, monkeypatch):
    monkeypatch.setenv("API_TOKEN", "s3cr3t-token")
    r = run_text(engine, write_flow, """
name: http
inputs: {url: {type: string, required: true}}
env:
  API_TOKEN: {secret: true, required: true}
steps:
  - id: fetch
    tool: http
    with:
      url: "{{ inputs.url }}/items"
      params: {limit: 3}
      headers: {Authorization: "Bearer {{ env.API_TOKEN }}"}
    vars: {n: "{{ result.json['items'] | length }}", status: "{{ result.status }}"}
  - id: flaky
    tool: http
    with: {url: "{{ inputs.url }}/flaky"}
    retry: {attempts: 5, delay: 10ms}
  - id: missing
    tool: http
    with: {url: "{{ inputs.url }}/nope"}
    retry: {attempts: 5, delay: 10ms}
    on_failure: continue
""", {"url": http_server})
    assert r.status == "completed" and r.vars == {"n": 3, "status": 200}
    steps = {s.step_id: s for s in engine.steps(r.id)}
    assert steps["flaky"].attempts == 3 and steps["flaky"].result["json"] == {"ok": True}
    assert steps["missing"].attempts == 1 and steps["missing"].error["type"] == "HTTPStatusError"
    assert _Handler.hits["/nope"] == 1  # a 404 is not retried
    # the secret reached the server but not the store
    assert steps["fetch"].inputs["with"]["headers"]["Authorization"] == "Bearer ***"
    assert steps["fetch"].result["json"]["auth"] == "Bearer ***"


def test_secret_env_values_never_reach_a_sqlite_file(tmp_path, write_flow, monkeypatch):
    monkeypatch.setenv("CANARY", "canary-7f3a9c")
    db = tmp_path / "s.db"
    e = Engine(f"sqlite:///{db}")
    r = e.run(write_flow("""
name: secret
env: {CANARY: {secret: true}}
steps:
  - id: s
    tool: shell
    with: {run: "echo token={{ env.CANARY }}"}
    vars: {echoed: "{{ result.output }}"}
"""))
    e.close()
    assert r.vars["echoed"] == "token=***"
    for f in tmp_path.iterdir():
        if f.name.startswith("s.db"):
            assert b"canary-7f3a9c" not in f.read_bytes()


def test_set_var_compare_and_set_and_history(engine, write_flow):
    r = run_text(engine, write_flow, "name: cas\nvars: {limit: 1}\nsteps: [{id: s}]\n")
    rec = engine.set_var(r.id, "limit", 10, expected_version=1)
    assert rec.version == 2 and rec.type == "user_defined" and rec.source_step == "api"
    with pytest.raises(ConflictError):
        engine.set_var(r.id, "limit", 11, expected_version=1)
    assert [h.value for h in engine.history(r.id, "limit")] == [1, 10]
    with pytest.raises(NotFound):
        engine.variable(r.id, "nope")
    with pytest.raises(UsageError):
        engine.set_var(r.id, "bad name", 1)
    with pytest.raises(UsageError):
        engine.set_var("../etc", "x", 1)


def test_template_reads_are_counted_and_flushed_with_commits(engine, write_flow):
    r = run_text(engine, write_flow, """
name: reads
vars: {a: 1}
steps:
  - id: s1
    vars: {b: "{{ vars.a + vars.a }}"}
  - id: s2
    vars: {c: "{{ vars.a }}"}
""")
    assert engine.variable(r.id, "a").access_count == 4  # 3 template reads + this read
    assert engine.variable(r.id, "a").version == 1


def test_a_running_run_sees_an_external_write_from_its_next_step(tmp_path, write_flow):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    e = Engine(url)
    r = e.run(write_flow(f"""
name: ext
vars: {{limit: 1}}
steps:
  - id: writer
    tool: python
    with:
      code: |
        import tether
        def main(ctx):
            other = tether.Engine("{url}")
            other.set_var(ctx.run_id, "limit", 50)
            other.close()
  - id: reader
    vars: {{seen: "{{{{ vars.limit }}}}"}}
"""))
    assert r.vars["seen"] == 50 and r.vars["limit"] == 50
    assert [h.source_step for h in e.history(r.id, "limit")] == ["flow", "api"]
    e.close()


def test_events_reach_listeners(engine, write_flow):
    seen = []
    engine.on("var.set", lambda ev: seen.append((ev["name"], ev["value"])))
    engine.on("step.*", lambda ev: seen.append(ev["event"]))
    engine.on("run.completed", lambda ev: 1 / 0)  # a broken listener does not break the run
    r = run_text(engine, write_flow, "name: ev\nsteps:\n  - id: s\n    vars: {x: 7}\n")
    assert r.status == "completed"
    assert seen == ["step.completed", ("x", 7)]
    with pytest.raises(UsageError):
        engine.on("nonsense", print)


def test_existing_run_id_returns_that_run(engine, write_flow):
    path = write_flow("name: idem\nvars: {c: 0}\nsteps:\n  - id: s\n    vars: {c: '{{ vars.c + 1 }}'}\n")
    first = engine.run(path, run_id="nightly-2026-11-21")
    again = engine.run(path, run_id="nightly-2026-11-21")
    assert first.created and not again.created and again.vars == {"c": 1} and again.status == "completed"
    assert len(engine.runs()) == 1
    with pytest.raises(UsageError):
        engine.run(path, run_id="../../etc/passwd")


def test_inputs_are_checked(engine, write_flow):
    path = write_flow("name: ins\ninputs:\n  url: {type: string, required: true}\n  n: 3\nsteps: [{id: s}]\n")
    with pytest.raises(UsageError, match="missing required input 'url'"):
        engine.run(path)
    with pytest.raises(UsageError, match="did you mean 'url'"):
        engine.run(path, {"url": "x", "ulr": 1})
    with pytest.raises(UsageError, match="must be of type integer"):
        engine.run(path, {"url": "x", "n": "many"})
    assert engine.run(path, {"url": "x"}).status == "completed"


def test_bad_flow_raises_flow_error(engine, write_flow):
    with pytest.raises(FlowError):
        engine.run(write_flow("name: x\nsteps:\n  - id: a\n    tool: nope\n"))


def test_a_process_that_lost_its_lease_cannot_write(tmp_path, write_flow):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    e = Engine(url)
    flow = write_flow(f"""
name: fenced
vars: {{c: 0}}
steps:
  - id: a
    vars: {{c: 1}}
  - id: thief
    tool: python
    with:
      code: |
        from tether.store import open_store
        def main(ctx):
            s = open_store("{url}")
            run = s.load_run(ctx.run_id)
            s.acquire_lease(ctx.run_id, "thief", 60, steal_epoch=run.lease_epoch)
            s.close()
  - id: b
    vars: {{c: 2}}
""")
    with pytest.raises(LeaseLost):
        e.run(flow, run_id="victim")
    assert e.vars("victim") == {"c": 1}
    rec = e.record("victim")
    assert rec.lease_owner == "thief" and rec.status == "running"
    e.close()


def test_full_durability_uses_synchronous_full(tmp_path, write_flow):
    from tether.store.sqlite import SQLiteStore
    store = SQLiteStore(tmp_path / "d.db")
    e = Engine(store)
    r = e.run(write_flow("name: d\ncheckpoint: {durability: full}\nsteps:\n  - id: s\n    vars: {x: 1}\n"))
    assert r.status == "completed"
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    e.close()


def test_secret_variables_are_encrypted_at_rest_and_masked(tmp_path, write_flow, monkeypatch):
    db = tmp_path / "sv.db"
    e = Engine(f"sqlite:///{db}")
    r = e.run(write_flow("""
name: secret_vars
secret_vars: [token]
steps:
  - id: make
    tool: python
    with: {code: "def main(): return 'tok-' + 'canary-91ab'"}  # made at run time, not in the flow text
    vars: {token: "{{ result }}"}
  - id: use
    tool: shell
    with: {run: "echo using {{ vars.token }}"}
    vars: {echo: "{{ result.output }}", length: "{{ vars.token | length }}"}
outputs:
  token: "{{ vars.token }}"
"""))
    assert r.status == "completed"
    assert r.vars["length"] == 15  # the run itself used the real value
    assert r.vars["echo"] == "using ***" and r.outputs == {"token": "***"}
    assert e.vars(r.id)["token"] == "***"
    assert e.variable(r.id, "token").value == "***"
    assert e.variable(r.id, "token", reveal=True).value == "tok-canary-91ab"
    assert [h.value for h in e.history(r.id, "token")] == ["***"]
    e.set_var(r.id, "api_key", "cli-canary-55", secret=True)
    assert e.variable(r.id, "api_key", reveal=True).value == "cli-canary-55"
    e.close()
    assert (tmp_path / "sv.db.key").stat().st_mode & 0o777 == 0o600
    for f in tmp_path.iterdir():
        if f.name.startswith("sv.db") and not f.name.endswith(".key"):
            data = f.read_bytes()
            assert b"tok-canary-91ab" not in data and b"cli-canary-55" not in data
    monkeypatch.setenv("TETHER_SECRET_KEY", "not-a-key")
    with pytest.raises(UsageError, match="TETHER_SECRET_KEY"):
        Engine(f"sqlite:///{db}").variable(r.id, "token", reveal=True)
