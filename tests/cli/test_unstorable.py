"""Values the store cannot hold (too large, too deep, NaN/±Infinity, integers beyond 64
bits) fail the step that made them, through real `tether` processes: exit 1, status
`failed`, the error naming step, field and limit in `--json`; `resume` fails the same
way instead of looping; nothing is ever silently changed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import tether_caller


@pytest.fixture
def tether(tmp_path: Path):
    return tether_caller(tmp_path, f"sqlite:///{tmp_path / 'values.db'}", code=None, timeout=120)


def flow_file(tmp_path: Path, text: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# A python step that notes each attempt in a ledger, then returns what `make` builds.
def python_step(make: str, retry: int = 1) -> str:
    return f"""
  - id: make
    tool: python
    retry: {{attempts: {retry}, delay: 10ms}}
    with:
      code: |
        def main(ledger):
            with open(ledger, "a") as f:
                f.write("x\\n")
            {make}
      args: {{ledger: "{{{{ inputs.ledger }}}}"}}
"""


HEAD = "name: values\ninputs: {ledger: {type: string, default: ledger}}\n"
BIG_LIST = "return list(range(2_500_000))"        # about 18 MB as JSON
DEEP = "v = 1\n            for _ in range(100):\n                v = [v]\n            return v"
VERY_DEEP = "v = 1\n            for _ in range(1000):\n                v = {'k': v}\n            return v"

CASES = {
    "initial vars: integer beyond 64 bits": (
        HEAD + "vars: {x: \"{{ 2 ** 70 }}\"}\nsteps:\n  - id: a\n    vars: {y: 1}\n",
        None, "vars.x", "64-bit", 0),
    "outputs: integer beyond 64 bits": (
        HEAD + "steps:\n  - id: a\n    vars: {y: 1}\noutputs: {y: \"{{ 2 ** 70 }}\"}\n",
        None, "outputs.y", "64-bit", 0),
    "step vars: integer beyond 64 bits": (
        HEAD + "steps:\n  - id: a\n    vars: {x: \"{{ -(2 ** 64) }}\"}\n",
        "a", "vars.x", "64-bit", 0),
    "step vars: Infinity from a template": (
        HEAD + "steps:\n  - id: a\n    vars: {x: \"{{ 1e308 * 10 }}\"}\n",
        "a", "vars.x", "Infinity", 0),
    "python result over 16 MiB, retried": (
        HEAD + "steps:" + python_step(BIG_LIST, retry=2),
        "make", "result", "16,777,216 bytes", 2),
    "python result nested deeper than 64 levels": (
        HEAD + "steps:" + python_step(DEEP),
        "make", "result", "64 levels", 1),
    "python result nested 1,000 levels": (
        HEAD + "steps:" + python_step(VERY_DEEP),
        "make", "result", "64 levels", 1),
    "python result NaN inside a list": (
        HEAD + "steps:" + python_step("return [1, {'x': float('nan')}]"),
        "make", "result[1].x", "NaN", 1),
    "python result -Infinity": (
        HEAD + "steps:" + python_step("return float('-inf')"),
        "make", "result", "-Infinity", 1),
    "python result integer beyond 64 bits": (
        HEAD + "steps:" + python_step("return {'n': 2 ** 64}"),
        "make", "result.n", "64-bit", 1),
    "share: Infinity": (
        HEAD + "steps:\n  - id: a\n    share: {x: \"{{ 1e308 * 10 }}\"}\n",
        "a", "shared.x", "Infinity", 0),
    "with: Infinity kept in the step's record": (
        HEAD + "steps:\n  - id: a\n    tool: shell\n    with: {run: \"echo {{ inputs.ledger }}\", env: {X: \"{{ 1e308 * 10 }}\"}}\n",
        "a", "inputs.with.env.X", "Infinity", 0),
}


# the 16 MiB result is made, refused and retried: seconds. The quick subset keeps one case of
# each place a value is checked (initial vars, outputs, step vars, a python result, share,
# with); the other kinds of value in those places (three CLI processes each) run in the full suite
SLOW_CASES = ("python result over 16 MiB, retried", "step vars: Infinity from a template",
              "python result nested 1,000 levels", "python result NaN inside a list", "python result -Infinity",
              "python result integer beyond 64 bits")


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_CASES else c for c in CASES])
def test_an_unstorable_value_fails_the_step_and_the_run(tmp_path, tether, case):
    text, step, field, limit, attempts = CASES[case]
    flow = flow_file(tmp_path, text)
    ledger = tmp_path / "ledger"
    proc = tether("run", flow, "-i", f"ledger={ledger}", "--json", code=1)
    doc = json.loads(proc.stdout)
    assert doc["status"] == "failed" and doc["outputs"] is None
    error = doc["error"]
    assert error["type"] == "UnstorableValue", error
    message = error["message"]
    assert f"field '{field}'" in message or message.startswith(f"{field}:"), message
    assert limit in message, message
    if step is not None:
        assert f"step '{step}'" in message and error["step"] == step
    ran = len(ledger.read_text().split()) if ledger.exists() else 0
    assert ran == attempts  # the tool ran once per attempt: retries apply, nothing more
    if step is not None:
        show = json.loads(tether("show", doc["run_id"], "--json", code=0).stdout)
        record = [s for s in show["steps"] if s["step_id"] == step][-1]
        assert record["status"] == "failed" and record["error"]["type"] == "UnstorableValue"
        assert record["attempts"] == attempts
    # a resume meets the same value again and fails the same way: it never loops
    again = json.loads(tether("resume", doc["run_id"], "--json", code=1, timeout=60).stdout)
    assert again["status"] == "failed" and again["error"]["message"] == message
    assert (len(ledger.read_text().split()) if ledger.exists() else 0) == 2 * attempts


def test_on_failure_continue_goes_on_after_an_unstorable_value(tmp_path, tether):
    flow = flow_file(tmp_path, HEAD + """
vars: {kept: 1}
steps:
  - id: a
    vars: {kept: 2, bad: "{{ 1e308 * 10 }}"}
    on_failure: continue
  - id: b
    vars: {error: "{{ steps.a.error.type }}"}
outputs: {kept: "{{ vars.kept }}", error: "{{ vars.error }}"}
""")
    doc = json.loads(tether("run", flow, "--json", code=0).stdout)
    # the block is written all or nothing: `kept` keeps the value from before the step
    assert doc["outputs"] == {"kept": 1, "error": "UnstorableValue"}


LOOP = HEAD + """
vars: {n: 0}
steps:
  - id: each
    foreach: [1, 2500000, 3]
    parallel: PARALLEL
    max_failures: MAX
    do:
      id: one
      tool: python
      with:
        code: |
          def main(n, ledger):
              with open(ledger, "a") as f:
                  f.write("x\\n")
              return list(range(n))
        args: {n: "{{ item }}", ledger: "{{ inputs.ledger }}"}
      vars: {n: "{{ vars.n + 1 }}"}
    vars:
      failure: "{{ map.failures[0].error.message }}"
      index: "{{ map.failures[0].index }}"
outputs: {n: "{{ vars.n }}", failure: "{{ vars.failure }}", index: "{{ vars.index }}"}
"""


@pytest.mark.slow  # loops of results over the limit
@pytest.mark.parametrize("parallel", [1, 2])
def test_a_foreach_iteration_too_big_fails_that_iteration(tmp_path, tether, parallel):
    ledger = tmp_path / "ledger"
    tolerant = flow_file(tmp_path, LOOP.replace("PARALLEL", str(parallel)).replace("MAX", "1"), "t.yaml")
    doc = json.loads(tether("run", tolerant, "-i", f"ledger={ledger}", "--json", code=0).stdout)
    out = doc["outputs"]
    assert out["n"] == 2 and out["index"] == 1  # the other iterations committed, their vars too
    assert "step 'one', iteration 1, field 'result'" in out["failure"] and "16,777,216" in out["failure"]
    strict = flow_file(tmp_path, LOOP.replace("PARALLEL", str(parallel)).replace("MAX", "0"), "s.yaml")
    doc = json.loads(tether("run", strict, "-i", f"ledger={ledger}", "--json", code=1).stdout)
    assert doc["status"] == "failed" and doc["error"]["step"] == "each"


def test_a_foreach_element_the_store_cannot_hold_fails_the_loop_step(tmp_path, tether):
    flow = flow_file(tmp_path, HEAD + """
steps:
  - id: each
    foreach: "{{ [1, 1e308 * 10] }}"
    do: {id: one, vars: {x: 1}}
""")
    doc = json.loads(tether("run", flow, "--json", code=1).stdout)
    assert doc["error"]["type"] == "UnstorableValue"
    assert doc["error"]["message"] == "step 'each', field 'foreach[1]': Infinity is not a number JSON can hold"


def test_a_bare_path_passes_a_value_larger_than_the_render_limit(tmp_path, tether):
    flow = flow_file(tmp_path, """
name: bare
steps:
  - id: make
    tool: python
    with: {code: "def main(n): return 'x' * n", args: {n: 2097152}}
    vars: {big: "{{ result }}"}
  - id: copy
    vars: {again: "{{ vars.big }}"}
  - id: count
    vars: {n: "{{ vars.again | length }}"}
outputs: {n: "{{ vars.n }}"}
""")
    doc = json.loads(tether("run", flow, "--json", code=0).stdout)
    assert doc["outputs"] == {"n": 2097152}
    # an expression that builds such a string is still held to the render limit
    built = flow_file(tmp_path, """
name: built
steps:
  - id: make
    tool: python
    with: {code: "def main(n): return 'x' * n", args: {n: 2097152}}
    vars: {big: "{{ result ~ '' }}"}
""", "built.yaml")
    doc = json.loads(tether("run", built, "--json", code=1).stdout)
    assert doc["error"]["type"] == "TemplateError"


@pytest.mark.slow  # many CLI processes
def test_command_line_integers_are_exact_or_refused(tmp_path, tether):
    flow = flow_file(tmp_path, """
name: ints
inputs: {n: {type: integer, required: true}}
steps:
  - id: a
    vars: {m: "{{ inputs.n }}"}
outputs: {n: "{{ inputs.n }}"}
""")
    proc = tether("run", flow, "-i", "n=12345678901234567890123", "--json", code=2)
    assert "inputs.n: integer 12345678901234567890123 is beyond the 64-bit range" in proc.stderr
    (tmp_path / "in.json").write_text('{"n": 12345678901234567890123}')
    proc = tether("run", flow, "--inputs", tmp_path / "in.json", code=2)
    assert "inputs.n: integer 12345678901234567890123" in proc.stderr
    doc = json.loads(tether("run", flow, "-i", "n=18446744073709551615", "--json", code=0).stdout)
    assert doc["outputs"] == {"n": 18446744073709551615}  # the largest one held, exactly
    run_id = doc["run_id"]
    proc = tether("vars", "set", run_id, "m", "12345678901234567890123", code=2)
    assert "vars.m: integer 12345678901234567890123 is beyond the 64-bit range" in proc.stderr
    got = json.loads(tether("vars", "get", run_id, "m", "--json", code=0).stdout)
    assert got["value"] == 18446744073709551615 and got["version"] == 1  # nothing was written
    tether("vars", "set", run_id, "m", "--", "-9223372036854775808", code=0)
    got = json.loads(tether("vars", "get", run_id, "m", "--json", code=0).stdout)
    assert got["value"] == -9223372036854775808
    tether("vars", "set", run_id, "m", "NaN", code=0)  # not JSON: the text itself
    assert json.loads(tether("vars", "get", run_id, "m", "--json", code=0).stdout)["value"] == "NaN"


class _Body(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/big":
            body = json.dumps({"items": ["y" * 100] * 110_000}).encode()  # about 11.6 MB
        elif self.path == "/huge":
            body = b"z" * (17 * 1024 * 1024)  # over the 16 MiB value limit
        else:
            body = b'{"id": 12345678901234567890123, "ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def http_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Body)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_http_json_body_over_10_mib_is_kept_once(tmp_path, tether, http_url):
    flow = flow_file(tmp_path, """
name: body
inputs: {url: {type: string, required: true}}
steps:
  - id: fetch
    tool: http
    with: {url: "{{ inputs.url }}/big"}
outputs:
  n: "{{ steps.fetch.result.json['items'] | length }}"
  text: "{{ steps.fetch.result.text }}"
""")
    doc = json.loads(tether("run", flow, "-i", f"url={http_url}", "--json", code=0).stdout)
    assert doc["outputs"] == {"n": 110_000, "text": None}


def test_an_http_body_over_the_value_limit_fails_the_step_instead_of_being_cut(tmp_path, tether, http_url):
    flow = flow_file(tmp_path, """
name: huge
inputs: {url: {type: string, required: true}}
steps:
  - id: fetch
    tool: http
    with: {url: "{{ inputs.url }}/huge"}
""")
    doc = json.loads(tether("run", flow, "-i", f"url={http_url}", "--json", code=1).stdout)
    assert doc["error"]["type"] == "UnstorableValue"
    assert "body of 17,825,792 bytes, above the value limit of 16,777,216 bytes" in doc["error"]["message"]


def test_an_http_integer_beyond_64_bits_fails_the_step(tmp_path, tether, http_url):
    flow = flow_file(tmp_path, """
name: bigid
inputs: {url: {type: string, required: true}}
steps:
  - id: fetch
    tool: http
    with: {url: "{{ inputs.url }}/id"}
""")
    doc = json.loads(tether("run", flow, "-i", f"url={http_url}", "--json", code=1).stdout)
    assert doc["error"]["type"] == "UnstorableValue"
    assert doc["error"]["message"].startswith("step 'fetch', field 'result.json.id': integer "
                                              "12345678901234567890123 is beyond the 64-bit range")


@pytest.mark.slow  # worker processes
def test_a_worker_fails_such_a_run_once_and_never_takes_it_again(tmp_path, sql_url):
    flow = flow_file(tmp_path, HEAD + "steps:" + python_step(BIG_LIST, retry=2))
    ledger = tmp_path / "ledger"
    env = {**os.environ, "TETHER_LEASE_SECONDS": "2"}

    def tether_(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tether", "--db", sql_url, *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=timeout)

    run_id = tether_("run", flow, "--detach", "-i", f"ledger={ledger}").stdout.strip()
    for _ in range(2):  # a second worker finds nothing left to take
        worker = tether_("worker", "--once", timeout=90)
        assert worker.returncode == 0 and "Traceback" not in worker.stderr, worker.stderr
    doc = json.loads(tether_("show", run_id, "--json").stdout)
    assert doc["status"] == "failed" and doc["error"]["type"] == "UnstorableValue"
    assert "step 'make', field 'result'" in doc["error"]["message"]
    assert len(ledger.read_text().split()) == 2  # once per attempt


def test_outputs_that_fit_one_by_one_but_not_together_fail_the_run(tmp_path, tether):
    # each output passes its own check; the store refuses them together, inside its commit:
    # the run must end failed, not be left running
    flow = flow_file(tmp_path, """
name: outs
steps:
  - id: make
    tool: python
    with: {code: "def main(n): return 'x' * n", args: {n: 9437184}}
    vars: {a: "{{ result }}"}
outputs: {a: "{{ vars.a }}", b: "{{ vars.a }}"}
""")
    doc = json.loads(tether("run", flow, "--json", code=1).stdout)
    assert doc["status"] == "failed" and doc["error"]["type"] == "UnstorableValue"
    assert doc["error"]["message"].startswith("outputs: value of 18,874,3")
    again = json.loads(tether("resume", doc["run_id"], "--json", code=1).stdout)
    assert again["status"] == "failed" and again["error"] == doc["error"]
