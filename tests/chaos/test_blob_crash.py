"""A crash between writing a blob and the commit that refers to it (fault-injected: the
process dies right after the blobs of a commit are durable in ``TETHER_BLOBS``, before its
transaction) leaves at worst an unreferenced blob, never a row referring to a missing
blob, and the run resumes to the same result."""
from __future__ import annotations

import subprocess
import textwrap

from tether import Engine
from tether.settings import Settings
from tether.store import codec, open_store

from ..conftest import PYTHON

FLOW = """\
name: big
steps:
  - id: make
    tool: python
    with:
      code: |
        def main():
            return "q" * 600000
    vars:
      big: "{{ result }}"
  - id: after
    vars:
      n: 1
"""

# Dies (SIGKILL-like: no cleanup, no rollback) right after the external blob store has the
# payloads of the first commit that carries one, before that commit's transaction begins.
CRASH = textwrap.dedent("""\
    import os, sys
    from tether import Engine
    from tether.settings import Settings
    from tether.store.sql_blobs import SQLBlobs
    from tether.store.blobs import payloads

    first = SQLBlobs._blobs_first
    def crash(self, c):
        first(self, c)
        if hasattr(c, "steps") and any(True for _ in payloads(c)):
            os._exit(9)
    SQLBlobs._blobs_first = crash
    Engine(settings=Settings.from_env()).run(sys.argv[1], run_id="crashy")
""")


def test_a_crash_between_blob_and_commit_leaves_no_dangling_reference(quick_sqlite_url, blobs_url, write_flow,
                                                                        monkeypatch):
    sql_url = quick_sqlite_url  # on PostgreSQL in the full suite (a process killed, then a resume)
    flow = write_flow(FLOW)
    monkeypatch.setenv("TETHER_DB", sql_url)
    monkeypatch.setenv("TETHER_BLOBS", blobs_url)
    died = subprocess.run([PYTHON, "-c", CRASH, str(flow)], capture_output=True, text=True, timeout=120)
    assert died.returncode == 9, died.stderr

    settings = Settings.from_env()
    store = open_store(settings=settings)
    try:
        stored, referenced = set(store.blobs.iter_hashes()), store.referenced_hashes()
        assert referenced <= stored  # no row refers to a missing blob
        value = "q" * 600000
        digest = codec.encode(value).data[1:].decode()
        assert digest in stored and digest not in referenced  # the blob made it, the commit did not
        assert "big" not in store.read_vars("crashy")
    finally:
        store.close()

    engine = Engine(settings=settings)
    try:
        run = engine.resume("crashy")
        assert run.status == "completed"
        assert engine.store.read_var("crashy", "big").value == value
        assert engine.store.referenced_hashes() == {digest} == set(engine.store.blobs.iter_hashes())
    finally:
        engine.close()
