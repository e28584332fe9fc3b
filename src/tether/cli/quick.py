"""The read commands and `tether run` run without Typer when their command line is plain.

`tether [--db URL] [--debug] runs [--status S] [--limit N] [--json]`, `show RUN [--json]`,
`vars RUN [--json]`, `vars get RUN NAME [--reveal] [--json]` and `run FLOW [-i NAME=VALUE]...
[--run-id ID] [--json]` (options in any order after the command, each at most once but
``-i``) are parsed here and their bodies (``reads.py``, ``foreground.py``) called as the app
would call them, with the same error reports and exit codes: Typer and Click are not
imported. Anything else (``--help``, an unknown, repeated or abbreviated
option, a missing or extra argument, ``--``, a value that starts with ``-``, a ``--limit``
that is not a plain number in range, shell completion) returns None and goes to the app,
so its parsing, suggestions and errors are unchanged."""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # as typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# command: (number of positional arguments, {option: takes a value})
_GRAMMAR: dict[str, tuple[int, dict[str, bool]]] = {
    "runs": (0, {"--status": True, "--limit": True, "--json": False}),
    "show": (1, {"--json": False}),
    "vars list": (1, {"--json": False}),
    "vars get": (2, {"--reveal": False, "--json": False}),
    "run": (1, {"-i": True, "--input": True, "--run-id": True, "--json": False}),
}
Options = dict  # an option's value: its text, True for a flag, a list for `run`'s inputs
_MANY = ("-i", "--input")  # `run`'s inputs: one list, in order
_VERBS = ("list", "get", "set", "rm", "history")  # tether.cli.vars.VERBS


def _options(args: list[str], takes: dict[str, bool]) -> tuple[Options, list[str]] | None:
    """``args`` split into the options ``takes`` names (each given once; a value not
    starting with ``-``) and positional arguments; None for anything else."""
    found: Options = {}
    positional: list[str] = []
    many: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            positional.append(arg)
            i += 1
            continue
        name, eq, value = arg.partition("=")
        if name not in takes or name in found or (eq and (not takes[name] or not name.startswith("--"))):
            return None
        if takes[name] and not eq:
            if i + 1 >= len(args):
                return None
            i += 1
            value = args[i]
        if takes[name] and value.startswith("-"):
            return None
        if name in _MANY:
            many.append(value)
        else:
            found[name] = value if takes[name] else True
        i += 1
    if many:
        found["-i"] = many
    return found, positional


def parse(argv: list[str]) -> tuple[str | None, bool, str, list[str], Options] | None:
    """``(db, debug, command, positional, options)`` of a plain read command line, or None."""
    split = _options_before_command(argv)
    if split is None:
        return None
    top, rest = split
    command, args = rest[0], rest[1:]
    if command == "vars":
        if args and args[0].startswith("-"):
            return None  # `vars --json RUN` and `vars --help`: the app's group decides
        if args and args[0] in _VERBS:
            if args[0] != "get":
                return None
            command, args = "vars get", args[1:]
        else:
            command = "vars list"
    if command not in _GRAMMAR:
        return None
    count, takes = _GRAMMAR[command]
    parsed = _options(args, takes)
    if parsed is None or len(parsed[1]) != count:
        return None
    options, positional = parsed
    if command == "run" and not _readable_or_missing(positional[0]):
        return None  # Typer's own check of the path says what is wrong
    limit = options.get("--limit")
    if isinstance(limit, str) and not (limit.isascii() and limit.isdigit() and limit[0] != "0"
                                       and int(limit) <= 10_000):
        return None  # the app says what is wrong with it
    db = top.get("--db")
    return (db if isinstance(db, str) else os.environ.get("TETHER_DB") or None, "--debug" in top, command,
            positional, options)


def _readable_or_missing(path: str) -> bool:
    """Whether Typer takes ``path`` as it is for a path argument (see ``coerce.plain_value``):
    not empty, and readable when it exists (a missing flow file is the engine's error)."""
    if not path:
        return False
    try:
        os.stat(path)
    except OSError:
        return True
    return os.access(path, os.R_OK)


def _options_before_command(argv: list[str]) -> tuple[Options, list[str]] | None:
    """The global options (``--db``, ``--debug``, each once) and the rest, from the command
    word on; None when the command line does not go that way."""
    top: Options = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].partition("=")
        if name in top or name not in ("--db", "--debug") or (eq and name == "--debug"):
            return None
        if name == "--db" and not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None
            i += 1
            value = argv[i]
        top[name] = value if name == "--db" else True
        i += 1
    return (top, argv[i:]) if i < len(argv) else None


def dispatch(argv: list[str]) -> int | None:
    """Run a plain read command line (see the module's docstring) and return its exit code;
    None, having done nothing, for any other command line."""
    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return None  # shell completion: Click's
    parsed = parse(argv)
    if parsed is None:
        return None
    db, debug, command, positional, options = parsed
    from . import reads
    from .session import report_failure, set_options, state
    set_options(db, debug)
    as_json = bool(options.get("--json"))
    call: Callable[[], Any]
    if command == "runs":
        status, limit = options.get("--status"), options.get("--limit")
        call = lambda: reads.runs(status if isinstance(status, str) else None,  # noqa: E731
                                  int(limit) if isinstance(limit, str) else 20, as_json)
    elif command == "show":
        call = lambda: reads.show(positional[0], as_json)  # noqa: E731
    elif command == "vars list":
        call = lambda: reads.vars_list(positional[0], as_json)  # noqa: E731
    elif command == "vars get":
        call = lambda: reads.vars_get(positional[0], positional[1], bool(options.get("--reveal")),  # noqa: E731
                                      as_json)
    else:
        return _run(positional[0], options, as_json)
    try:
        call()
    except KeyboardInterrupt:
        return 130  # as Typer returns it
    except Exception as exc:  # the app's guard: a message and an exit code
        return report_failure(exc, as_json, state.run_id or (positional[0] if positional else None))
    return 0


def _run(flow: str, options: Options, as_json: bool) -> int:
    """`tether run FLOW ...` as the app runs it: its exit code."""
    from pathlib import Path

    from . import foreground
    from .session import report_failure, state
    inputs, run_id = options.get("-i"), options.get("--run-id")
    named = run_id if isinstance(run_id, str) else None
    try:
        return foreground.start(Path(flow), list(inputs) if isinstance(inputs, list) else None, None,
                                named, False, as_json)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return report_failure(exc, as_json, state.run_id or named)


def main(argv: list[str] | None = None) -> int | None:
    """``dispatch`` of this process's command line, environment set as the app's ``main`` sets it."""
    args = sys.argv[1:] if argv is None else argv
    if parse(args) is None:
        return None
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return dispatch(args)
