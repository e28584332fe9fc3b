"""C5: a Hypothesis state machine drives real runs through start / crash / resume /
set-variable / change-environment, and after every action compares the store with a
small model of what the state must be.

A crash is real: the run executes in a forked child that ``os._exit``s inside the
chosen step's tool, exactly as a killed process would stop there.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.chaos.conftest import scale

pytestmark = pytest.mark.slow  # Hypothesis drives real runs through crashes

STEPS = 5
LIB = '''
import os


def step(i):
    if os.environ.get("MODEL_CRASH_AT") == str(i):
        os._exit(9)
    return i * 10
'''
FLOW = """
name: model
env:
  BONUS: {default: "0"}
vars: {total: 0, trail: []}
steps:
""" + "".join(f"""
  - id: s{i}
    tool: python
    with: {{function: "modellib:step", args: {{i: {i}}}}}
    vars: {{total: "{{{{ vars.total + result + (env.BONUS | int) }}}}", trail: "{{{{ vars.trail + [{i}] }}}}"}}
""" for i in range(STEPS))

REFUSED = 3


def _in_child(work: Path, bonus: int, crash_at: int | None, action) -> int:
    """Run ``action(engine)`` in a forked child with the given environment; its exit code
    (9 when it crashed on purpose, REFUSED for an environment refusal)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.environ["BONUS"] = str(bonus)
            os.environ.pop("MODEL_CRASH_AT", None)
            if crash_at is not None:
                os.environ["MODEL_CRASH_AT"] = str(crash_at)
            from tether import Engine, EnvironmentMismatch
            engine = Engine(f"sqlite:///{work / 'model.db'}")
            try:
                run = action(engine)
                code = 0 if run.status == "completed" else 2
            except EnvironmentMismatch:
                code = REFUSED
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


class RunModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.work = Path(tempfile.mkdtemp(prefix="tether-model-"))
        (self.work / "modellib.py").write_text(LIB)
        (self.work / "model.yaml").write_text(FLOW)
        self.runs = 0
        self.run_id: str | None = None
        # the model: what the store must hold for the current run
        self.status: str | None = None
        self.done = 0            # steps committed
        self.total = 0
        self.trail: list[int] = []
        self.start_bonus = 0

    def teardown(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def _advance(self, bonus: int, crash_at: int | None) -> None:
        stop = STEPS if crash_at is None or crash_at < self.done else crash_at
        for i in range(self.done, stop):
            self.total += i * 10 + bonus
            self.trail.append(i)
        self.done = stop
        self.status = "completed" if stop == STEPS else "interrupted"

    @precondition(lambda self: self.status in (None, "completed"))
    @rule(bonus=st.integers(0, 3), crash_at=st.none() | st.integers(0, STEPS - 1))
    def start(self, bonus: int, crash_at: int | None) -> None:
        self.runs += 1
        self.run_id = f"m{self.runs}"
        flow, rid = str(self.work / "model.yaml"), self.run_id
        code = _in_child(self.work, bonus, crash_at, lambda e: e.run(flow, run_id=rid))
        assert code == (9 if crash_at is not None else 0), code
        self.done, self.total, self.trail, self.start_bonus = 0, 0, [], bonus
        self._advance(bonus, crash_at)

    @precondition(lambda self: self.status == "interrupted")
    @rule(bonus=st.integers(0, 3), crash_at=st.none() | st.integers(0, STEPS - 1),
          policy=st.sampled_from(["warn", "keep", "fail"]), set_total=st.none() | st.integers(-50, 50))
    def resume(self, bonus: int, crash_at: int | None, policy: str, set_total: int | None) -> None:
        rid = self.run_id
        values = None if set_total is None else {"total": set_total}
        code = _in_child(self.work, bonus, crash_at,
                         lambda e: e.resume(rid, set=values, env_policy=policy))
        if policy == "fail" and bonus != self.start_bonus:
            assert code == REFUSED, code  # refused: nothing changed
            return
        crashes = crash_at is not None and crash_at >= self.done
        assert code == (9 if crashes else 0), code
        if set_total is not None:
            self.total = set_total
        self._advance(self.start_bonus if policy == "keep" else bonus, crash_at)

    @precondition(lambda self: self.status in ("interrupted", "completed"))
    @rule(value=st.integers(-100, 100))
    def set_variable(self, value: int) -> None:
        from tether import Engine
        engine = Engine(f"sqlite:///{self.work / 'model.db'}")
        assert self.run_id is not None  # the precondition: a run exists
        try:
            engine.set_var(self.run_id, "total", value)
        finally:
            engine.close()
        self.total = value

    @invariant()
    def store_matches_the_model(self) -> None:
        if self.run_id is None:
            return
        from tether import Engine
        engine = Engine(f"sqlite:///{self.work / 'model.db'}")
        try:
            assert engine.vars(self.run_id) == {"total": self.total, "trail": self.trail}
            committed = [s.step_id for s in engine.steps(self.run_id) if s.status == "completed"]
            assert committed == [f"s{i}" for i in range(self.done)], committed
            status = engine.get_run(self.run_id).status
            assert status == self.status, (status, self.status)
        finally:
            engine.close()


RunModel.TestCase.settings = settings(max_examples=scale(12, 200), stateful_step_count=10, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow], derandomize=True)
test_model_based_run_crash_resume_set_and_environment = RunModel.TestCase
