"""A run's memory does not grow with what it has committed (SPEC §7.4): large step results
and variables are held as references to the blob store and read back when a template,
a tool's ``ctx.vars`` or the run's final values ask for them — the same values, also
after a resume, with the blobs in the database or in a folder (``TETHER_BLOBS``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tether
from tether import Engine
from tether.settings import Settings
from tether.store import codec
from tether.store.value_refs import StoredValue, clear_decoded, keep, resolved

SRC = str(Path(tether.__file__).resolve().parent.parent)

# A python step returning a list whose JSON text is ~1 MiB (131,072 eight-digit numbers):
# about 5 MiB as Python objects, which is what a run used to keep for every step.
CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from tether import Engine
    from tether.flow import load_flow_text
    from tether.settings import Settings

    folder, steps, blobs, resume = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] or None, sys.argv[4]
    count = 1024 * 1024 // 8
    lines = ["name: many_large_results", "steps:"]
    for i in range(steps):
        lines += [f"  - id: s{i}", "    tool: python", "    with:", "      code: |",
                  "        def main():",
                  f"            return list(range({10_000_000 + i * count}, {10_000_000 + (i + 1) * count}))"]
    if resume:  # stop at the end: a second process resumes the run
        lines += ["  - id: stop", "    tool: pause"]
    lines += ["outputs:", '  first: "{{ steps.s0.result[-1] }}"', f'  last: "{{{{ s{steps - 1}.result[0] }}}}"']
    engine = Engine(f"sqlite:///{folder / 'r.db'}", settings=Settings(blobs=blobs))
    if resume == "resume":
        run = engine.resume((folder / "run_id").read_text())
    else:
        run = engine.run(load_flow_text("\\n".join(lines) + "\\n"))
        (folder / "run_id").write_text(run.id)
    peak = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) // 1024
    print(json.dumps({"status": run.status, "outputs": run.outputs, "peak_mib": peak}))
""")


def run_child(folder: Path, steps: int, blobs: str, resume: str = "") -> dict:
    """Run CHILD in a fresh interpreter; its JSON report (peak RSS as the child's own
    ``VmHWM``: its ``ru_maxrss`` would include the pytest process it was spawned from,
    as Linux carries the high-water mark across ``exec``)."""
    url = f"file://{folder / 'blobs'}" if blobs == "file" else ""
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(steps), url, resume],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("blobs", ["db", "file"])
def test_peak_memory_does_not_grow_with_committed_results(tmp_path, blobs):
    """60 steps returning ~1 MiB each: a run that kept every result peaked at ~360 MiB;
    with large results held by reference the peak stays far below 150 MiB."""
    steps, count = 60, 1024 * 1024 // 8
    doc = run_child(tmp_path, steps, blobs)
    assert doc["status"] == "completed"
    assert doc["outputs"] == {"first": 10_000_000 + count - 1, "last": 10_000_000 + (steps - 1) * count}
    assert doc["peak_mib"] < 150, doc


def test_a_resumed_run_does_not_load_every_large_result(tmp_path):
    """The same 60 results committed by one process, then the run resumed by another: the
    resuming process reads the step records with their large values left in the blob store
    (it used to decode all of them at once, ~360 MiB)."""
    steps, count = 60, 1024 * 1024 // 8
    assert run_child(tmp_path, steps, "db", "pause")["status"] == "paused"
    doc = run_child(tmp_path, steps, "db", "resume")
    assert doc["status"] == "completed"
    assert doc["outputs"] == {"first": 10_000_000 + count - 1, "last": 10_000_000 + (steps - 1) * count}
    assert doc["peak_mib"] < 100, doc


FLOW = """\
name: large_reads
steps:
  - id: a
    tool: python
    with:
      code: |
        def main():
            return [i * 7 for i in range(100000)]
    vars:
      big: "{{ result }}"
      small: 1
  - id: wait
    tool: pause
    with: {message: "look at it"}
  - id: b
    tool: python
    with:
      code: |
        def main(data, ctx):
            return {"n": len(data), "sum": sum(data), "ctx": sum(ctx.vars["big"]), "small": ctx.vars["small"]}
      args: {data: "{{ steps.a.result }}"}
  - id: c
    vars:
      total: "{{ steps.a.result | sum }}"
      last: "{{ vars.big[-1] }}"
      same: "{{ steps.a.result == vars.big }}"
      big: "{{ a.result }}"
      other: "{{ [vars.small] + steps.a.result }}"
  - id: d
    vars:
      other_len: "{{ vars.other | length }}"
      other_head: "{{ vars.other[:2] }}"
      big: "{{ vars.big[:3] }}"
outputs:
  b: "{{ steps.b.result }}"
  total: "{{ vars.total }}"
  last: "{{ vars.last }}"
  same: "{{ vars.same }}"
  big: "{{ vars.big }}"
  other_len: "{{ vars.other_len }}"
  other_head: "{{ vars.other_head }}"
"""

BIG = [i * 7 for i in range(100000)]


@pytest.fixture(params=["db", "file"])
def db_or_blobs(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    return f"file://{tmp_path / 'blobs'}" if request.param == "file" else None


def test_templates_read_large_results_and_variables_back_also_after_a_resume(sql_url, db_or_blobs,
                                                                              write_flow):
    assert len(codec.dumps(BIG)) >= codec.OFFLOAD_MIN  # held by reference once committed
    flow = write_flow(FLOW)
    engine = Engine(sql_url, settings=Settings(blobs=db_or_blobs))
    try:
        paused = engine.run(flow)
        assert paused.status == "paused"
        clear_decoded()  # nothing decoded before the resume helps it
        engine.close()
        engine = Engine(sql_url, settings=Settings(blobs=db_or_blobs))  # a new process, as far as it knows
        run = engine.resume(paused.id)
        assert run.status == "completed", run.error
        assert run.outputs == {"b": {"n": 100000, "sum": sum(BIG), "ctx": sum(BIG), "small": 1},
                               "total": sum(BIG), "last": BIG[-1], "same": True, "big": BIG[:3],
                               "other_len": 100001, "other_head": [1, 0]}
        assert run.vars["other"] == [1, *BIG]
        # `big: "{{ a.result }}"` in step c is the same value again: only a and d wrote it
        assert sorted(h.version for h in engine.store.var_history(run.id, "big")) == [1, 2]
        assert engine.store.read_var(run.id, "big").value == BIG[:3]
    finally:
        engine.close()


def test_a_large_value_written_again_unchanged_is_not_written(tmp_path, write_flow):
    flow = write_flow("""\
name: again
steps:
  - id: a
    tool: python
    with:
      code: |
        def main():
            return [i * 7 for i in range(100000)]
    vars: {big: "{{ result }}"}
  - id: b
    vars: {big: "{{ steps.a.result }}", n: "{{ vars.big | length }}"}
outputs:
  n: "{{ vars.n }}"
""")
    engine = Engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        run = engine.run(flow)
        assert run.outputs == {"n": 100000}
        assert engine.store.read_var(run.id, "big").version == 1
        assert run.vars["big"] == BIG
    finally:
        engine.close()


def test_a_stored_value_reads_back_equal_and_a_small_one_is_kept_as_it_is():
    payloads: dict[str, bytes] = {}
    enc = codec.encode(BIG)
    assert enc.blob is not None and enc.size == len(codec.dumps(BIG))
    payloads[enc.blob[0]] = enc.blob[1]
    ref = keep(BIG, enc, payloads.get)
    assert isinstance(ref, StoredValue) and ref.data == enc.data
    clear_decoded()
    assert resolved(ref) == BIG
    assert resolved(ref) is resolved(ref)  # decoded once while it is among the last ones read
    small = {"a": 1}
    assert keep(small, codec.encode(small), payloads.get) is small
    assert resolved(small) is small


def test_a_large_secret_variable_set_during_a_pause_is_read_decrypted_after_the_resume(tmp_path, write_flow):
    flow = write_flow("""\
name: secret_big
steps:
  - id: stop
    tool: pause
  - id: use
    tool: python
    with:
      code: |
        def main(ctx):
            return {"n": len(ctx.vars["token"]), "has": "token" in ctx.vars}
    vars: {n: "{{ vars.token | length }}"}
outputs:
  n: "{{ vars.n }}"
  tool: "{{ steps.use.result }}"
""")
    secret = "s" * (codec.OFFLOAD_MIN + 10)
    engine = Engine(f"sqlite:///{tmp_path / 's.db'}", settings=Settings(blobs=f"file://{tmp_path / 'blobs'}"))
    try:
        paused = engine.run(flow)
        engine.set_var(paused.id, "token", secret, secret=True)
        run = engine.resume(paused.id)
        assert run.status == "completed", run.error
        assert run.outputs == {"n": len(secret), "tool": {"n": len(secret), "has": True}}
    finally:
        engine.close()


def test_a_loop_result_list_read_again_and_again_is_the_same(tmp_path, write_flow):
    """A loop step's result list is built from its iteration rows when read, kept among the
    values read last (not for the whole run): every read sees the same list."""
    flow = write_flow("""\
name: loop_reads
steps:
  - id: each
    foreach: [0, 1, 2]
    do:
      id: make
      tool: python
      with:
        code: |
          def main(i):
              return [i] * 40000
        args: {i: "{{ item }}"}
  - id: again
    foreach: [2, 1, 0, 2]
    do:
      id: read
      vars: {seen: "{{ vars.seen + [steps.each.result[item][0] + (steps.each.result[item] | length)] }}"}
outputs:
  seen: "{{ vars.seen }}"
  first: "{{ steps.each.result[0][:2] }}"
vars: {seen: []}
""")
    clear_decoded()
    engine = Engine(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        run = engine.run(flow)
        assert run.status == "completed", run.error
        assert run.outputs == {"seen": [40002, 40001, 40000, 40002], "first": [0, 0]}
    finally:
        engine.close()
