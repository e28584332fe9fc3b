"""Runs with ``TETHER_BLOBS``: large values live outside the database (a folder, an S3
bucket), once across runs; secret values are encrypted before they leave the process."""
from __future__ import annotations

import sys

import pytest

from tether import Engine
from tether.settings import Settings
from tether.store import codec

FLOW = """\
name: large
steps:
  - id: make
    tool: python
    with:
      code: |
        def main():
            return {"rows": ["r%d" % i for i in range(100000)]}
    vars:
      table: "{{ result }}"
      count: "{{ result.rows | length }}"
"""


def test_large_values_live_in_tether_blobs_once_across_runs(sql_url, blobs_url, write_flow):
    flow = write_flow(FLOW)
    engine = Engine(sql_url, settings=Settings(blobs=blobs_url))
    try:
        first, second = engine.run(flow), engine.run(flow)
        assert first.status == second.status == "completed"
        expected = {"rows": [f"r{i}" for i in range(100000)]}
        digest = codec.encode(expected).data[1:].decode()
        # the step result and the variable of both runs: one blob, outside the database
        assert set(engine.store.blobs.iter_hashes()) == {digest} == engine.store.referenced_hashes()
        assert engine.store.stats()["blobs"] == 0
        assert engine.store.read_var(second.id, "table").value == expected
        assert engine.store.read_var(second.id, "count").value == 100000
    finally:
        engine.close()


def test_a_secret_value_leaves_the_process_encrypted(tmp_path):
    folder = tmp_path / "blobs"
    engine = Engine(f"sqlite:///{tmp_path / 't.db'}", settings=Settings(blobs=f"file://{folder}"))
    try:
        flow = tmp_path / "f.yaml"
        flow.write_text("name: s\nsteps:\n  - id: a\n    vars: {n: 1}\n")
        run = engine.run(flow)
        secret = "TOPSECRET-" + "s" * codec.OFFLOAD_MIN
        engine.set_var(run.id, "token", secret, secret=True)
        files = list(folder.glob("*/*"))
        assert len(files) == 1  # offloaded: the encrypted token is that large
        assert b"TOPSECRET" not in files[0].read_bytes()
        import zstandard
        payload = files[0].read_bytes()
        raw = zstandard.ZstdDecompressor().decompress(payload[1:]) if payload[:1] == b"z" else payload[1:]
        assert b"TOPSECRET" not in raw  # not even once decompressed: only the Fernet token
        assert engine.variable(run.id, "token", reveal=True).value == secret
    finally:
        engine.close()


def test_a_shell_step_reads_the_runs_large_values_from_the_same_blob_store(tmp_path, write_flow):
    flow = write_flow(FLOW + f"""\
  - id: peek
    tool: shell
    with:
      run: "{sys.executable} -m tether vars get \\"$TETHER_RUN_ID\\" table --json | wc -c"
      capture: number
    vars:
      seen: "{{{{ result.output }}}}"
""")
    engine = Engine(f"sqlite:///{tmp_path / 't.db'}", settings=Settings(blobs=f"file://{tmp_path / 'b'}"))
    try:
        run = engine.run(flow)  # TETHER_BLOBS is not in this process's environment
        assert run.status == "completed", run.error
        assert run.vars["seen"] > 1_000_000
    finally:
        engine.close()


LOOP = """\
name: bigloop
steps:
  - id: make
    tool: python
    with:
      code: |
        def main():
            return [chr(97 + i) * 300000 for i in range(3)]
  - id: each
    foreach: "{{ steps.make.result }}"
    parallel: 2
    do:
      id: size
      tool: python
      with: {code: "def main(s): return s.upper()", args: {s: "{{ item }}"}}
outputs:
  firsts: "{{ steps.each.result | map('first') | list }}"
"""


def test_a_loop_over_large_elements_keeps_them_in_tether_blobs(sql_url, blobs_url, write_flow):
    engine = Engine(sql_url, settings=Settings(blobs=blobs_url))
    try:
        run = engine.run(write_flow(LOOP))
        assert run.status == "completed", run.error
        assert run.outputs == {"firsts": ["A", "B", "C"]}
        refs = engine.store.referenced_hashes()
        assert len(refs) == 1 + 3 + 3  # the list, its 3 elements, the 3 iteration results
        assert refs <= set(engine.store.blobs.iter_hashes()) and engine.store.stats()["blobs"] == 0
    finally:
        engine.close()


def test_a_commit_that_fails_after_its_blobs_were_stored_leaves_them_unreferenced(tmp_path, monkeypatch):
    from tether.errors import StoreError
    from tether.store import open_store
    from tether.store.base import Commit, VarWrite
    from tether.store.sqlite import SQLiteStore
    store = open_store(f"sqlite:///{tmp_path / 't.db'}", settings=Settings(blobs=f"file://{tmp_path / 'b'}"))
    try:
        from tether.store.base import RunRecord
        run, _ = store.create_run(RunRecord("r1", "f", "running", "name: f", None, {}), "me", 30)
        big = "b" * codec.OFFLOAD_MIN
        commit = Commit("r1", run.lease_epoch, vars=(VarWrite("big", codec.encode(big)),))

        def fail(self, c, t):
            raise StoreError("disk I/O error (injected)")
        with monkeypatch.context() as m:
            m.setattr(SQLiteStore, "_commit", fail)
            with pytest.raises(StoreError):
                store.commit(commit)
        assert store.referenced_hashes() == set() and len(list(store.blobs.iter_hashes())) == 1
        assert store.load_run("r1").seq == 0 and "big" not in store.read_vars("r1")
        store.commit(commit)  # the retry stores nothing new and commits
        assert store.read_var("r1", "big").value == big
        assert store.referenced_hashes() == set(store.blobs.iter_hashes())
    finally:
        store.close()
