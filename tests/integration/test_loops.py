"""foreach, parallel variable writes, filters, max_failures, nested loops, repeat, map-reduce."""
from __future__ import annotations

import json

import pytest

from tether import FlowError


def test_foreach_names_results_and_aggregates(engine, write_flow):
    run = engine.run(write_flow("""
name: each
steps:
  - id: each
    foreach: [a, b, c, d]
    as: letter
    filter: "{{ letter != 'c' }}"
    do:
      id: shout
      tool: python
      with:
        code: "def main(x, i, first, last, n): return f'{x.upper()}{i}{first:d}{last:d}{n}'"
        args: {x: "{{ letter }}", i: "{{ loop.index }}", first: "{{ loop.first }}", last: "{{ loop.last }}",
               n: "{{ loop.length }}"}
    vars:
      totals: "{{ [map.total, map.completed, map.successful, map.failed, map.skipped, map.pending] }}"
      rate: "{{ map.success_rate }}"
      own: "{{ result }}"
outputs:
  result: "{{ steps.each.result }}"
  results: "{{ steps.each.map.results }}"
  totals: "{{ vars.totals }}"
  rate: "{{ vars.rate }}"
  own: "{{ vars.own }}"
"""))
    assert run.status == "completed", run.error
    assert run.outputs == {"result": ["A0104", "B1004", None, "D3014"], "results": ["A0104", "B1004", "D3014"],
                           "totals": [4, 3, 3, 0, 1, 0], "rate": 1.0,
                           "own": ["A0104", "B1004", None, "D3014"]}


@pytest.mark.parametrize("parallel", [1, 8])
def test_counter_in_a_parallel_body_counts_every_iteration_once(engine, write_flow, parallel):
    run = engine.run(write_flow(f"""
name: count
vars: {{processed: 0, sum: 0}}
steps:
  - id: each
    foreach: "{{{{ range(300) | list }}}}"
    parallel: {parallel}
    do:
      id: work
      tool: python
      with: {{code: "import time\\ndef main(n):\\n    time.sleep(0.001)\\n    return n", args: {{n: "{{{{ item }}}}"}}}}
      vars: {{processed: "{{{{ vars.processed + 1 }}}}", sum: "{{{{ vars.sum + result }}}}"}}
outputs:
  processed: "{{{{ vars.processed }}}}"
  sum: "{{{{ vars.sum }}}}"
"""))
    assert run.outputs == {"processed": 300, "sum": sum(range(300))}
    assert len(engine.history(run.id, "processed")) == 301  # one write per iteration, plus the initial one


def test_max_failures_as_count_and_percentage(engine, write_flow):
    body = """
    do:
      id: maybe
      tool: python
      with: {code: "def main(n):\\n    if n % 4 == 0: raise ValueError(n)\\n    return n", args: {n: "{{ item }}"}}
"""
    ok = engine.run(write_flow("name: ok\nsteps:\n  - id: each\n    foreach: '{{ range(20) | list }}'\n"
                               "    max_failures: 25%\n" + body, "ok.yaml"))
    assert ok.status == "completed"
    assert engine.steps(ok.id)[-1].meta["map"] == {"total": 20, "completed": 20, "successful": 15, "failed": 5,
                                                   "skipped": 0, "pending": 0, "success_rate": 0.75}
    bad = engine.run(write_flow("name: bad\nsteps:\n  - id: each\n    foreach: '{{ range(20) | list }}'\n"
                                "    max_failures: 2\n" + body, "bad.yaml"))
    assert bad.status == "failed" and bad.error["type"] == "TooManyFailures"
    cont = engine.run(write_flow("name: cont\nsteps:\n  - id: each\n    foreach: '{{ range(8) | list }}'\n"
                                 "    on_failure: continue\n" + body + "  - id: after\n"
                                 "    vars: {failures: '{{ map.failures | map(attribute=\"index\") | list }}', pending: '{{ map.pending }}'}\n",
                                 "cont.yaml"))
    # the first failure beyond max_failures stops the loop: the rest stays pending for a resume
    assert cont.status == "completed" and cont.vars == {"failures": [0], "pending": 7}


def test_nested_loops_and_iteration_local_step_results(engine, write_flow):
    run = engine.run(write_flow("""
name: nested
vars: {cells: 0}
steps:
  - id: rows
    foreach: [1, 2, 3]
    as: row
    do:
      - id: label
        vars: {}
        tool: python
        with: {code: "def main(r): return f'row{r}'", args: {r: "{{ row }}"}}
      - id: cols
        foreach: [10, 20]
        as: col
        parallel: 2
        do:
          id: cell
          tool: python
          with: {code: "def main(l, r, c): return f'{l}:{r * c}'", args: {l: "{{ steps.label.result }}", r: "{{ row }}", c: "{{ col }}"}}
          vars: {cells: "{{ vars.cells + 1 }}"}
outputs:
  grid: "{{ steps.rows.result }}"
  cells: "{{ vars.cells }}"
"""))
    assert run.status == "completed", run.error
    assert run.outputs == {"grid": [["row1:10", "row1:20"], ["row2:20", "row2:40"], ["row3:30", "row3:60"]],
                           "cells": 6}


def test_repeat_until_and_max(engine, write_flow):
    run = engine.run(write_flow("""
name: repeat
vars: {n: 1}
steps:
  - id: grow
    repeat: {until: "{{ vars.n >= 100 }}", max: 50}
    do:
      id: double
      vars: {n: "{{ vars.n * 2 }}"}
  - id: capped
    repeat: {until: false, max: 3}
    do:
      id: tick
      tool: python
      with: {code: "def main(i): return i", args: {i: "{{ loop.index }}"}}
outputs:
  n: "{{ vars.n }}"
  ticks: "{{ steps.capped.result }}"
  rounds: "{{ steps.grow.map.total }}"
"""))
    assert run.outputs == {"n": 128, "ticks": [0, 1, 2], "rounds": 7}


def test_map_reduce_with_a_json_input_file(engine, write_flow, tmp_path):
    (tmp_path / "items.json").write_text(json.dumps({"items": [{"name": n, "score": s} for n, s in
                                                               [("a", 5), ("b", 12), ("c", 30), ("d", 8)]]}))
    run = engine.run(write_flow("""
name: mapreduce
setup:
  - id: config
    vars: {bonus: 100}
map:
  input: items.json
  json_path: "$.items[*]"
  as: doc
  parallel: 2
  filter: "{{ doc.score >= 10 }}"
  do:
    id: score
    vars: {}
    tool: python
    with: {code: "def main(s, b): return s + b", args: {s: "{{ doc.score }}", b: "{{ vars.bonus }}"}}
reduce:
  - id: total
    vars:
      total: "{{ map.results | sum }}"
      summary: "{{ map.successful }}/{{ map.total }} ({{ map.skipped }} filtered)"
outputs:
  total: "{{ vars.total }}"
  summary: "{{ vars.summary }}"
"""))
    assert run.status == "completed", run.error
    assert run.outputs == {"total": 242, "summary": "2/4 (2 filtered)"}


def test_map_over_a_template(engine, write_flow):
    run = engine.run(write_flow("""
name: mapover
setup:
  - id: init
    vars: {words: [tether, holds, state]}
map:
  over: "{{ vars.words }}"
  do:
    id: size
    tool: python
    with: {code: "def main(w): return len(w)", args: {w: "{{ item }}"}}
reduce:
  - id: sum
    vars: {letters: "{{ map.results | sum }}"}
outputs:
  letters: "{{ vars.letters }}"
"""))
    assert run.outputs == {"letters": 16}


def test_loop_validation_errors(engine, write_flow):
    for text, message in [
        ("name: x\nsteps:\n  - id: a\n    foreach: [1]\n", "needs a 'do' body"),
        ("name: x\nsteps:\n  - id: a\n    do: {id: b}\n", "'do' needs foreach"),
        ("name: x\nsteps:\n  - id: a\n    foreach: [1]\n    do: {id: a}\n", "duplicate step id 'a'"),
        ("name: x\nsteps:\n  - id: a\n    foreach: [1]\n    do: {id: b, next: end}\n", "not allowed inside a loop"),
        ("name: x\nmap: {over: [1], do: {id: b}}\nsteps: [{id: s}]\n", "either steps or setup/map/reduce"),
        ("name: x\nsteps:\n  - id: a\n    foreach: [1]\n    max_failures: lots\n    do: {id: b}\n", "max_failures"),
    ]:
        with pytest.raises(FlowError) as err:
            engine.run(write_flow(text))
        assert any(message in p for p in err.value.problems), (message, err.value.problems)


def test_foreach_of_a_non_list_fails_the_step(engine, write_flow):
    run = engine.run(write_flow("name: x\nsteps:\n  - id: a\n    foreach: '{{ 5 }}'\n    do: {id: b}\n"))
    assert run.status == "failed" and "must give a list" in run.error["message"]


def test_resume_retries_failed_iterations_of_a_failed_loop_and_retry_failed_of_a_completed_one(
        engine, write_flow, tmp_path):
    gate = tmp_path / "gate"
    flow = write_flow(f"""
name: retry_loop
vars: {{ok: 0}}
steps:
  - id: each
    foreach: "{{{{ range(10) | list }}}}"
    parallel: 3
    max_failures: "{{{{ 0 }}}}"
    do:
      id: work
      tool: python
      with:
        code: |
          import os
          def main(n, ledger):
              with open(ledger, "a") as f:
                  f.write(f"{{n}}\\n")
              if n in (3, 7) and not os.path.exists("{gate}"):
                  raise RuntimeError("gate closed")
              return n
        args: {{n: "{{{{ item }}}}", ledger: "{tmp_path / 'ledger'}"}}
      vars: {{ok: "{{{{ vars.ok + 1 }}}}"}}
  - id: after
    vars: {{seen: "{{{{ map.successful }}}}"}}
""".replace('max_failures: "{{ 0 }}"', "max_failures: 0"))
    run = engine.run(flow)
    assert run.status == "failed" and run.error["type"] == "TooManyFailures"
    first_failures = {f.idx for f in engine.store.iterations(run.id, "each", status="failed")}
    assert first_failures and first_failures <= {3, 7}
    gate.write_text("open")
    done = engine.resume(run.id)
    assert done.status == "completed" and done.vars == {"ok": 10, "seen": 10}
    from collections import Counter
    ran = Counter(int(n) for n in (tmp_path / "ledger").read_text().split())
    assert set(ran) == set(range(10))  # every item ran; only the failed ones ran twice
    assert {n for n, c in ran.items() if c > 1} == first_failures and max(ran.values()) == 2

    tolerant = write_flow(flow.read_text().replace("max_failures: 0", "max_failures: 5")
                          .replace("retry_loop", "tolerant"), "tolerant.yaml")
    gate.unlink()
    (tmp_path / "ledger").unlink()
    run2 = engine.run(tolerant)
    assert run2.status == "completed" and run2.vars == {"ok": 8, "seen": 8}
    gate.write_text("open")
    again = engine.resume(run2.id, retry_failed=True)
    assert again.status == "completed" and again.vars == {"ok": 10, "seen": 10}
    assert sorted((tmp_path / "ledger").read_text().split(), key=int) == \
        [str(n) for n in sorted(list(range(10)) + [3, 7], key=int)]
    assert engine.verify(run2.id)["ok"]
