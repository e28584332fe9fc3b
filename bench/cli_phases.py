"""Where a read command's CPU time goes, phase by phase, in one process.

    python -m bench.cli_phases --db sqlite:///runs.db runs      (any read command line)

Prints the CPU ms (``time.process_time``, less disturbed by a loaded machine than the clock)
spent importing ``tether.cli``, importing Typer with the app (``tether.cli.root``), registering
the command, Typer's dispatch up to the command's body, the body's imports, opening the store,
the query, and the output (Rich's imports and layout), on stderr. The interpreter's own start
is not counted (``python -c pass``)."""
from __future__ import annotations

import atexit
import sys
import time
from typing import Any

MARKS: list[tuple[str, float]] = [("start", time.process_time())]


def mark(name: str) -> None:
    MARKS.append((name, time.process_time()))


def report() -> None:
    mark("output")
    parts = [f"{name}={1000 * (t - prev):.1f}"
             for (name, t), (_, prev) in zip(MARKS[1:], MARKS, strict=False)]
    sys.stderr.write(" ".join(parts) + f" total={1000 * (MARKS[-1][1] - MARKS[0][1]):.1f} ms CPU\n")


def main() -> None:
    args = sys.argv[1:]
    sys.argv = ["tether", *args]
    from tether import cli
    mark("tether.cli")
    from tether.cli import root
    mark("typer+app")
    at = cli.command_at(args)
    cli.build(None if at is None else args[at], None if at is None else args[at + 1:])
    if at is not None and args[at] in cli.READS:
        from tether.cli import session
        session.defer_logging()
    mark("register")
    from tether.cli import output, reads, session
    for name in ("runs", "show", "vars_list", "vars_get"):
        body = getattr(reads, name)

        def timed(*a: Any, _body: Any = body, **k: Any) -> Any:
            mark("dispatch")
            return _body(*a, **k)
        setattr(reads, name, timed)
    opened = session.open_reader

    def open_reader() -> Any:
        mark("body-imports")
        reader = opened()
        mark("open")
        return reader
    reads.open_reader = open_reader
    made = output.out

    def out(stderr: bool = False) -> Any:
        mark("query")
        return made(stderr)
    reads.out = out
    atexit.register(report)
    root.main()


if __name__ == "__main__":
    main()
