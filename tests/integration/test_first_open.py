"""Many processes opening a store that does not exist yet, at the same moment: the schema
is created exactly once, nobody fails, every run they start exists."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import drop_schema, postgres_url

pytestmark = pytest.mark.slow  # rounds of concurrent processes opening a new store

FLOW = """
name: tiny
vars: {n: 0}
steps:
  - id: one
    vars: {n: "{{ vars.n + 1 }}"}
"""
PROCESSES = 8
ROUNDS = 4


def test_concurrent_first_openers_of_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    flow = tmp_path / "tiny.yaml"
    flow.write_text(FLOW)
    for round_ in range(ROUNDS):
        db = f"sqlite:///{tmp_path / f'fresh{round_}.db'}"
        commands = []
        for i in range(PROCESSES):
            if i % 2 == 0:
                commands.append(["run", str(flow), "--run-id", f"r{round_}-{i}", "--json"])
            else:
                commands.append(["runs", "--json"])
        procs = [subprocess.Popen([sys.executable, "-m", "tether", "--db", db, *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for args in commands]
        results = []
        for args, p in zip(commands, procs, strict=False):
            out, err = p.communicate(timeout=120)
            results.append((args, p.returncode, out, err))
        failed = [r for r in results if r[1] != 0]
        assert not failed, f"round {round_}: {failed}"
        listed = subprocess.run([sys.executable, "-m", "tether", "--db", db, "runs", "--json"],
                                capture_output=True, text=True, timeout=60)
        ids = {r["run_id"] for r in json.loads(listed.stdout)}
        assert ids == {f"r{round_}-{i}" for i in range(0, PROCESSES, 2)}, listed.stderr


def test_concurrent_first_openers_of_a_new_postgres_schema_all_succeed() -> None:
    from tether import Engine
    for _ in range(3):
        url = postgres_url()
        start = threading.Barrier(PROCESSES)
        errors: list[BaseException] = []
        engines: list[Engine] = []
        lock = threading.Lock()

        def open_and_count() -> None:
            try:
                # the threads are joined within this iteration, so the loop's variables are theirs
                start.wait()  # noqa: B023
                engine = Engine(url)  # noqa: B023
                with lock:  # noqa: B023
                    engines.append(engine)  # noqa: B023
                engine.store.count_runs()
            except BaseException as exc:  # reported below
                errors.append(exc)  # noqa: B023

        threads = [threading.Thread(target=open_and_count) for _ in range(PROCESSES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        try:
            assert not errors, errors
            assert len(engines) == PROCESSES
            versions = engines[0].store._query(  # type: ignore[attr-defined]
                "SELECT version FROM tether_schema ORDER BY version")
            assert [v[0] for v in versions] == sorted({v[0] for v in versions}), versions  # each applied once
        finally:
            for engine in engines:
                engine.close()
            drop_schema(url)
