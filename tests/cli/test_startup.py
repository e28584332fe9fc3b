"""Start-up: a command imports only what it uses (checked in a real process, through
``sys.modules``), ``tether --help`` is printed without Typer and reads exactly as the
app's own help, and plain values are coerced as Typer's adapters would."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tether.cli import COMMANDS, build, command_word
from tether.cli.coerce import UNHANDLED, plain_value
from tether.cli.help_text import ROOT_HELP

# What no read command needs: the flow models (pydantic), templates (Jinja), HTTP, the
# server, encryption (no secret is read here)
HEAVY = ("pydantic", "jinja2", "httpx", "tether.server", "tether.flow", "tether.templates", "fastapi",
         "cryptography", "yaml")

PROBE = """
import atexit, json, sys
out = sys.argv[1]
def dump():
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(dump)
sys.argv = ["tether"] + sys.argv[2:]
from tether.cli import main
main()
"""


def modules_of(tmp_path: Path, *args: str, ok: bool = True) -> set[str]:
    """The modules a ``tether ARGS`` process had imported when it exited (exit code 0 when
    ``ok``, else any but an internal error's), its output piped."""
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 if ok else proc.returncode not in (0, 1, 70), proc.stderr
    return set(json.loads(out.read_text()))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tether import Engine
    url = f"sqlite:///{tmp_path_factory.mktemp('startup') / 'r.db'}"
    with Engine(url) as engine:
        engine.run_text("name: r\nvars: {a: 1}\nsteps:\n  - id: s\n    vars: {b: '{{ vars.a + 1 }}'}\n",
                        run_id="r1")
    return url


READS = [["runs"], ["runs", "--json"], ["show", "r1"], ["vars", "r1"], ["vars", "r1", "--json"],
         ["vars", "get", "r1", "b"], ["vars", "get", "r1", "b", "--json"], ["runs", "--limit", "5", "--status", "completed"],
         ["show", "nope"], ["vars", "nope", "--json"]]
# what a read command runs without besides HEAVY: the engine and the tools (a run without
# children), OpenSSL and sockets
ENGINE = ("tether.engine.engine", "tether.engine.runner", "tether.engine.lease", "tether.engine.listeners",
          "tether.tools", "hashlib", "socket")


@pytest.mark.parametrize("args", READS)
def test_a_read_command_imports_neither_the_engine_nor_a_heavy_module(tmp_path: Path, db: str,
                                                                     args: list[str]):
    loaded = modules_of(tmp_path, "--db", db, *args, ok=args[-1] != "nope" and "nope" not in args)
    assert "tether.cli.reads" in loaded and "tether.store.sqlite" in loaded  # it did run the command
    assert not {m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)}
    assert not {m for m in loaded if m.split(".")[0] in ENGINE or m.startswith(ENGINE)}
    # nothing that logs either: a read's logging is set up only by what may log
    # (session.defer_logging), so a module that logs here would log unformatted
    assert "logging" not in loaded
    others = {m for name, (m, _) in COMMANDS.items() if name != args[0]} - {COMMANDS[args[0]][0]}
    assert not {f"tether.cli.{m}" for m in others} & loaded  # nor the modules of other commands


LOGGING_PROBE = """
import atexit, json, sys
out = sys.argv[1]
def dump():
    logging = sys.modules.get("logging")
    root = logging.getLogger() if logging else None
    with open(out, "w") as f:
        json.dump(None if root is None else [root.level, [h.formatter._fmt for h in root.handlers]], f)
atexit.register(dump)
sys.argv = ["tether"] + sys.argv[2:]
from tether.cli import main
main()
"""


@pytest.mark.parametrize(("args", "expected"), [
    (["runs"], None), (["vars", "r1"], None),
    (["--debug", "runs"], [10, ["%(levelname)s %(name)s: %(message)s"]]),
    (["--debug", "vars", "get", "r1", "b"], [10, ["%(levelname)s %(name)s: %(message)s"]]),
    (["vars", "set", "r1", "x", "1"], [30, ["%(levelname)s %(name)s: %(message)s"]]),
    (["checkpoints", "r1"], [30, ["%(levelname)s %(name)s: %(message)s"]]),
])
def test_logging_is_set_up_for_what_may_log(tmp_path: Path, db: str, args: list[str], expected: object):
    """A read leaves logging alone (unless --debug); a command that opens an engine or is not
    a read logs to stderr as LEVEL name: message, from WARNING (DEBUG with --debug)."""
    out = tmp_path / "logging.json"
    proc = subprocess.run([sys.executable, "-c", LOGGING_PROBE, str(out), "--db", db, *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text()) == expected


def test_help_imports_neither_typer_nor_rich(tmp_path: Path):
    loaded = modules_of(tmp_path, "--help")
    assert not {m for m in loaded if m.split(".")[0] in ("typer", "rich", "pydantic", "jinja2", "tether")
                and not m.startswith(("tether.cli", "tether.errors")) and m != "tether"}
    assert "tether.cli.root" not in loaded


def test_help_text_is_the_apps_own(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as done:
        build()(["--help"], prog_name="tether")
    assert done.value.code == 0
    assert capsys.readouterr().out == ROOT_HELP.format(prog="tether"), \
        "a command's help changed: paste the app's new --help text into tether/cli/help_text.py"


@pytest.mark.parametrize("args", [[], ["--help"]])
def test_help_from_text_and_from_the_app_are_the_same_in_a_process(args: list[str]):
    run = [sys.executable, "-m", "tether", *args]
    fast = subprocess.run(run, capture_output=True, text=True, timeout=60)
    slow = subprocess.run(run, capture_output=True, text=True, timeout=60, env={"COLUMNS": "80", **_env()})
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert "Commands:" in fast.stdout + fast.stderr


def _env() -> dict[str, str]:
    import os
    return {k: v for k, v in os.environ.items() if k != "COLUMNS"}


def test_the_command_word_skips_global_options():
    assert command_word(["--db", "x.db", "--debug", "vars", "r1"]) == "vars"
    assert command_word(["--db=x.db", "runs"]) == "runs"
    assert command_word(["--help", "vars"]) is None and command_word([]) is None
    assert command_word(["--db"]) is None


def test_only_the_named_command_is_built_and_all_for_anything_else():
    app = build("runs")
    assert [c.name for c in app.registered_commands] == ["runs"] and not app.registered_groups
    app = build("nope")
    assert [c.name for c in app.registered_commands] == [n for n in COMMANDS if n != "vars"]
    assert len(app.registered_groups) == 1


def test_vars_has_only_the_verb_its_command_line_runs_and_every_verb_for_help():
    from typer.main import get_command

    from tether.cli import vars as vars_cli

    def verbs(rest: list[str] | None) -> list[str]:
        group = get_command(build("vars", rest)).commands["vars"]  # type: ignore[attr-defined]
        return sorted(group.commands)

    every = ["get", "history", "list", "rm", "set"]
    assert verbs(["get", "r1", "b"]) == ["get"] and verbs(["r1"]) == ["list"] and verbs([]) == ["list"]
    assert verbs(["list", "r1"]) == ["list"] and verbs(["history", "r1", "a", "--json"]) == ["history"]
    assert verbs(["get", "--help"]) == every and verbs(["--help"]) == every and verbs(["r1", "-h"]) == every
    assert verbs(None) == every
    assert verbs(["rm", "r1", "a"]) == ["rm"]
    build()  # the full app again: narrowing never removed a verb from it
    assert sorted(str(c.name) for c in vars_cli.app.registered_commands) == every


@pytest.mark.parametrize(("annotation", "value", "expected"), [
    (str, "x", "x"), (bool, True, True), (int, "42", 42), (int, 7, 7), (int, "0", 0),
    (list[str], ("a", "b"), ["a", "b"]), (Path, "no/such/file.yaml", Path("no/such/file.yaml")),
    (Path, ".", Path(".")),
])
def test_plain_values_are_coerced_here(annotation, value, expected):
    from typer.models import OptionInfo
    assert plain_value(annotation, OptionInfo(), value) == expected


@pytest.mark.parametrize(("annotation", "value", "info"), [
    (int, "007", {}), (int, "1x", {}), (int, "-3", {}), (int, "5", {"min": 10}), (int, "50", {"max": 10}),
    (int, "5", {"clamp": True, "min": 10}), (str, b"x", {}), (bool, "yes", {}), (float, "1.5", {}),
    (Path, "", {}), (Path, "x", {"exists": True}), (Path, "x", {"resolve_path": True}),
])
def test_anything_else_goes_to_typers_own_coercion(annotation, value, info):
    from typer.models import OptionInfo
    assert plain_value(annotation, OptionInfo(**info), value) is UNHANDLED


@pytest.mark.parametrize("flag", ["-h", "--version"])
def test_h_and_version_import_neither_typer_nor_rich(tmp_path: Path, flag: str):
    loaded = modules_of(tmp_path, flag)
    assert not {m for m in loaded if m.split(".")[0] in ("typer", "rich", "click", "pydantic", "jinja2")}
    assert "tether.cli.root" not in loaded
