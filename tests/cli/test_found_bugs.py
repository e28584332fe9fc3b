"""Bugs found by new users and a reliability probe (issue 12, item 6), through real processes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import tether_caller


@pytest.fixture
def cli(tmp_path: Path):
    return tether_caller(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}", code=0, timeout=60)


def flow(tmp_path: Path, text: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow  # many CLI processes
def test_an_error_type_is_printed_once(cli, tmp_path):
    raising = flow(tmp_path, "name: e\nsteps:\n  - id: a\n    tool: python\n"
                             "    with: {code: \"def main():\\n    raise ValueError('bad things')\"}\n")
    proc = cli("run", raising, code=1)
    assert "error in step a: ValueError: bad things" in proc.stdout
    assert "ValueError: ValueError" not in proc.stdout
    doc = json.loads(cli("run", raising, "--json", code=1).stdout)
    assert doc["error"]["type"] == "ValueError" and doc["error"]["message"] == "bad things"
    bad_name = flow(tmp_path, "name: u\nsteps:\n  - id: a\n    tool: python\n"
                              "    with: {code: \"def main(ctx):\\n    ctx.set_var('_x', 1)\"}\n", "u.yaml")
    proc = cli("run", bad_name, code=1)
    assert "error in step a: UsageError: invalid variable name '_x'" in proc.stdout
    assert "UsageError: UsageError" not in proc.stdout


# one name in the quick subset, the other two (four CLI processes each) in the full suite
@pytest.mark.parametrize("name", ["_x", pytest.param("1x", marks=pytest.mark.slow),
                                  pytest.param("a-b", marks=pytest.mark.slow)])
def test_a_bad_variable_name_is_refused_with_the_rule_it_breaks(cli, tmp_path, name):
    run_id = json.loads(cli("run", flow(tmp_path, "name: v\nsteps:\n  - id: a\n"), "--json").stdout)["run_id"]
    proc = cli("vars", "set", run_id, name, "1", code=2)
    assert f"invalid variable name '{name}'" in proc.stderr
    assert "[A-Za-z][A-Za-z0-9_]*" in proc.stderr and "[A-Za-z_]" not in proc.stderr
    cli("vars", "set", run_id, "x_1", "1")  # the rule as stated is the rule applied
    bad_key = flow(tmp_path, f"name: v\nvars:\n  '{name}': 1\nsteps:\n  - id: a\n", "k.yaml")
    proc = cli("validate", bad_key, code=2)
    assert "[A-Za-z][A-Za-z0-9_]*" in proc.stderr + proc.stdout and "[A-Za-z_]" not in proc.stderr + proc.stdout


@pytest.mark.slow  # many CLI processes
def test_runs_are_listed_newest_first_whatever_their_ids(cli, tmp_path):
    f = flow(tmp_path, "name: r\nsteps:\n  - id: a\n    vars: {x: 1}\n")
    cli("run", f, "--run-id", "zzz-named-first")
    generated = json.loads(cli("run", f, "--json").stdout)["run_id"]
    cli("run", f, "--run-id", "aaa-named-last")
    assert [r["run_id"] for r in json.loads(cli("runs", "--json").stdout)] == \
        ["aaa-named-last", generated, "zzz-named-first"]
    fork = json.loads(cli("fork", "zzz-named-first", "--json").stdout)["run_id"]
    (newest,) = json.loads(cli("runs", "--limit", "1", "--json").stdout)
    assert newest["run_id"] == fork


PAUSING = """name: p
steps:
  - id: a
    vars: {x: 1}
  - id: gate
    tool: pause
    with: {message: "approve?"}
  - id: b
    vars: {x: "{{ vars.x + 1 }}"}
outputs:
  x: "{{ vars.x }}"
"""


@pytest.mark.slow  # many CLI processes
def test_a_rewound_run_has_no_outputs_until_it_completes_again(cli, tmp_path):
    f = flow(tmp_path, PAUSING)
    run_id = json.loads(cli("run", f, "--json", code=3).stdout)["run_id"]
    done = json.loads(cli("resume", run_id, "--json").stdout)
    assert (done["status"], done["outputs"]) == ("completed", {"x": 2})
    again = json.loads(cli("resume", run_id, "--from", "gate", "--json", code=3).stdout)
    assert (again["status"], again["outputs"]) == ("paused", None)
    assert json.loads(cli("show", run_id, "--json").stdout)["outputs"] is None
    assert json.loads(cli("resume", run_id, "--json").stdout)["outputs"] == {"x": 2}
    changed = flow(tmp_path, PAUSING.replace("vars: {x: 1}", "vars: {x: 10}"), "changed.yaml")
    rerun = json.loads(cli("resume", run_id, "--flow", changed, "--rerun-changed", "--json", code=3).stdout)
    assert (rerun["status"], rerun["outputs"]) == ("paused", None)
    assert json.loads(cli("resume", run_id, "--json").stdout)["outputs"] == {"x": 11}


def test_verify_reports_run_attempt_and_resumed_as_volatile_in_a_resumed_run(cli, tmp_path):
    f = flow(tmp_path, """name: att
steps:
  - id: a
    vars: {att: "{{ run.attempt }}", res: "{{ run['resumed'] }}", bare: "{{ attempt }}", n: "{{ 1 + 1 }}"}
  - id: c
    let: {first: "{{ run.resumed }}"}
    tool: shell
    with: {run: "echo {{ let.first }}"}
  - id: gate
    tool: pause
  - id: b
    tool: shell
    with: {run: "echo {{ run.attempt }}"}
    vars: {again: "{{ result.output }}"}
""")
    run_id = json.loads(cli("run", f, "--json", code=3).stdout)["run_id"]
    cli("resume", run_id)
    cli("resume", run_id, "--from", "b")
    report = json.loads(cli("verify", run_id, "--json").stdout)
    assert report["ok"] and report["differences"] == [], report
    assert {(v["step"], v["field"]) for v in report["volatile"]} == {
        ("a", "vars.att"), ("a", "vars.res"), ("a", "vars.bare"), ("b", "with"), ("c", "with")}
    text = cli("verify", run_id).stdout
    assert "clean" in text and "run.attempt" in text


ALIAS_BOMB = "name: bomb\nvars:\n  a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"  {n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=False)) + "steps:\n  - id: s\n"


def test_an_alias_bomb_is_refused_at_once(cli, tmp_path):
    import time
    assert len(ALIAS_BOMB) < 400
    bomb = flow(tmp_path, ALIAS_BOMB)
    for command in ("validate", "run"):
        started = time.monotonic()
        proc = cli(command, bomb, code=2, timeout=30)
        assert time.monotonic() - started < 5
        assert "f.yaml:" in proc.stderr and "alias" in proc.stderr, proc.stderr
    line = proc.stderr.split("f.yaml:")[1].split(":")[0]
    assert 3 < int(line) <= 11  # the line of a node the aliases blow up
    proc = cli("validate", flow(tmp_path, "name: r\nvars:\n  a: &a [1, *a]\nsteps:\n  - id: s\n", "r.yaml"), code=2)
    assert "r.yaml:3:" in proc.stderr and "refers to itself" in proc.stderr, proc.stderr


def test_aliases_that_add_a_little_are_still_welcome(cli, tmp_path):
    ok = flow(tmp_path, """name: ok
defaults: &d {retry: {attempts: 2, delay: 1ms}}
vars:
  base: &base {a: 1, b: [1, 2, 3]}
  more: {<<: *base, c: 3}
  copies: [*base, *base, *base]
steps:
  - id: s
    vars: {n: "{{ vars.copies | length }}", c: "{{ vars.more.c + vars.more.a }}"}
""")
    cli("validate", ok)
    doc = json.loads(cli("run", ok, "--json").stdout)
    assert doc["status"] == "completed"
    assert json.loads(cli("vars", doc["run_id"], "--json").stdout)["n"] == 3


LOOP = """name: loop
vars: {total: 0}
steps:
  - id: each
    foreach: "{{ [1, 2, 3, 4, 5, 6] }}"
    parallel: PARALLEL
    max_failures: 2
    do:
      id: body
      tool: python
      with: {code: "def main(x):\\n    if x == 2: raise ValueError('two')\\n    return x", args: {x: "{{ item }}"}}
      vars: {total: "{{ vars.total + result }}", last: "{{ result }}"}
    vars: {done: "{{ map.completed }}", ok: "{{ map.successful }}"}
  - id: after
    vars: {x: 1}
"""


@pytest.mark.parametrize("parallel", [1, 3])
def test_checkpoints_of_loop_iterations_have_time_step_and_each_variable_once(cli, tmp_path, parallel):
    run_id = json.loads(cli("run", flow(tmp_path, LOOP.replace("PARALLEL", str(parallel))), "--json").stdout)["run_id"]
    rows = json.loads(cli("checkpoints", run_id, "--json").stdout)
    assert [r["seq"] for r in rows] == list(range(1, rows[-1]["seq"] + 1))  # every checkpoint is listed
    assert all(r["at"] for r in rows), rows
    assert all(len(r["vars"]) == len(set(r["vars"])) for r in rows), rows
    iteration_steps = [s for r in rows for s in r["steps"] if s.startswith("each[")]
    assert sorted(iteration_steps) == [f"each[{i}]" for i in range(6)]
    if parallel == 1:
        failed = next(r for r in rows if "each[1]" in r["steps"])
        assert failed["steps"] == ["each[1]"] and failed["vars"] == []  # it wrote nothing, but it is a checkpoint
    table = cli("checkpoints", run_id).stdout
    assert "each[0]" in table and "each[5]" in table


def test_a_loop_steps_meta_counts_like_its_map(cli, tmp_path):
    run_id = json.loads(cli("run", flow(tmp_path, LOOP.replace("PARALLEL", "2")), "--json").stdout)["run_id"]
    loop = next(s for s in json.loads(cli("show", run_id, "--json").stdout)["steps"] if s["step_id"] == "each")
    values = json.loads(cli("vars", run_id, "--json").stdout)
    assert (values["done"], values["ok"]) == (6, 5)
    assert {k: loop["meta"]["map"][k] for k in ("completed", "successful", "failed", "skipped", "pending")} == \
        {"completed": 6, "successful": 5, "failed": 1, "skipped": 0, "pending": 0}
