"""The body of `tether run`: start a run (or queue it) and report how it ended, as an exit
code. ``runs.py`` declares it to the app."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .output import out, print_json, short

if TYPE_CHECKING:
    from pathlib import Path

EXIT_BY_STATUS = {"completed": 0, "failed": 1, "cancelled": 1, "paused": 3, "running": 0, "pending": 0,
                  "interrupted": 1}


def report(run: Any, as_json: bool, engine: Any = None) -> int:
    """Print how ``run`` ended (for people, with its model usage when ``engine`` is given and
    it called a model); the exit code of its status."""
    from ..views import run_doc
    from .report import error_block, pause_lines, usage_lines
    if as_json:
        print_json(run_doc(run))
    else:
        con = out()
        colour = {"completed": "green", "failed": "red", "paused": "yellow"}.get(run.status, "cyan")
        con.print(f"run [bold]{run.id}[/] ({run.name}): [{colour}]{run.status}[/]")
        for line in error_block(run.error) if run.error else ():
            con.print(line, markup=False)
        for line in pause_lines(run.id, run.pause) if run.status == "paused" else ():
            con.print(line, markup=False)
        for k, v in (run.outputs or {}).items():
            con.print(f"  {k} = {short(v, 200)}", markup=False)
        if engine is not None:
            from ..queries import usage
            for line in usage_lines({}, usage(engine, run.id)):
                con.print(line, markup=False)
    return EXIT_BY_STATUS.get(run.status, 1)


def start(flow: Path, input_: list[str] | None, inputs_file: Path | None, run_id: str | None, detach: bool,
          as_json: bool) -> int:
    """`tether run`: run FLOW to its end in this process (or queue it with ``detach``) and
    report it; the exit code. SIGTERM or Ctrl-C leave the run interrupted (SystemExit 143
    or 130, see ``running.interruptible``)."""
    from ..errors import UsageError
    from .args import pairs
    from .running import announce, interruptible, with_progress
    from .session import open_engine
    inputs: dict[str, Any] = {}
    if inputs_file is not None:
        import orjson

        from ..store import codec
        try:
            data = codec.loads_exact(inputs_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise UsageError(f"--inputs {inputs_file}: cannot read a JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"--inputs {inputs_file}: must hold a JSON object")
        inputs.update(data)
    inputs.update(pairs(input_, "-i"))
    engine = open_engine()
    if detach:
        from ..views import run_doc
        queued = engine.run(flow, inputs, run_id=run_id, detach=True)
        if as_json:
            print_json(run_doc(queued))
        else:
            print(queued.id)
        return 0
    result = interruptible(lambda: with_progress(engine, as_json, lambda: engine.run(
        flow, inputs, run_id=run_id, on_start=lambda rid: announce(rid, as_json))))
    if not result.created and not as_json:
        out(stderr=True).print(f"run {result.id} already exists; not started again", markup=False)
    return report(result, as_json, engine)
