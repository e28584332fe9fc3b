"""Runs with ``TETHER_BLOBS``: large values live outside the database (a folder, an S3
bucket), once across runs; secret values are encrypted before they leave the process."""
from __future__ import annotations

import sys
from pathlib import Path

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


@pytest.fixture(params=["file", "s3"])
def blobs_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"file://{tmp_path / 'blobs'}" if request.param == "file" else request.getfixturevalue("s3_blobs_url")


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
