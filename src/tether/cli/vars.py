"""`tether vars`: read and write a run's variables. A Typer sub-app whose first word
is optional: `tether vars RUN` lists them (the `list` command)."""
from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from ..views import var_doc
from . import reads
from .args import STRING_HINT, parse_value
from .output import console, iso, print_json, short
from .root import App, guard, open_engine

VARS_HELP = """Read and write run variables.

\b
  tether vars RUN                          all variables
  tether vars get RUN NAME [--reveal]      one variable with metadata
  tether vars set RUN NAME VALUE [--string] [--expect-version N] [--secret] [--temp]
  tether vars rm RUN NAME [--expect-version N]
  tether vars history RUN NAME             every write, with its checkpoint

VALUE is parsed as JSON when it parses, else taken as text; one that starts with
{ [ or " must be valid JSON unless --string stores it as text."""

VERBS = ("list", "get", "set", "rm", "history")


class ListByDefault(TyperGroup):
    """A group whose commands are verbs and whose default is ``list``: any first word that
    is not a verb (a run id, an option) is the start of ``list``'s arguments, so
    `tether vars list` still lists the variables of a run named ``list``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in VERBS[1:] and args[0] not in ctx.help_option_names):
            args = ["list", *args]
        return super().parse_args(ctx, args)


def sub_app() -> typer.Typer:
    """The `vars` group, without commands."""
    return App(cls=ListByDefault, name="vars", help=VARS_HELP, add_completion=False,
               rich_markup_mode=None, pretty_exceptions_enable=False)


app = sub_app()

EXPECT_VERSION_HELP = ("Refuse the write unless the variable is at this version (0: must not exist). "
                       "Exit 4 otherwise.")


@app.command("list")
@guard
def list_(run_id: str = typer.Argument(..., metavar="RUN"),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """All variables of RUN (`tether vars RUN` for short)."""
    reads.vars_list(run_id, as_json)


@app.command("get")
@guard
def get(run_id: str = typer.Argument(..., metavar="RUN"), name: str = typer.Argument(..., metavar="NAME"),
        reveal: bool = typer.Option(False, "--reveal", help="Show a secret variable's value."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """One variable with its metadata."""
    reads.vars_get(run_id, name, reveal, as_json)


@app.command("set")
@guard
def set_(run_id: str = typer.Argument(..., metavar="RUN"), name: str = typer.Argument(..., metavar="NAME"),
         value: str = typer.Argument(..., metavar="VALUE",
                                     help="JSON when it parses as JSON, else the text itself "
                                          "(text starting with { [ or \" must be valid JSON)."),
         as_string: bool = typer.Option(False, "--string", help="Store VALUE as text, as it is."),
         expect_version: int | None = typer.Option(None, "--expect-version", min=0, help=EXPECT_VERSION_HELP),
         temp: bool = typer.Option(False, "--temp", help="A temp variable, removed when the run ends."),
         secret: bool = typer.Option(False, "--secret", help="Store the value encrypted; shown as ***."),
         as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """Write a variable (its own checkpoint)."""
    parsed = value if as_string else parse_value(value, "VALUE", STRING_HINT)
    rec = open_engine().set_var(run_id, name, parsed, expect_version,
                                scope="temp" if temp else "run", source="cli", secret=secret)
    if as_json:
        print_json(var_doc(rec))
    else:
        console().print(f"{rec.name} = {short(rec.value, 200)} (version {rec.version})", markup=False)


@app.command("rm")
@guard
def rm(run_id: str = typer.Argument(..., metavar="RUN"), name: str = typer.Argument(..., metavar="NAME"),
       expect_version: int | None = typer.Option(None, "--expect-version", min=0, help=EXPECT_VERSION_HELP),
       as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """Remove a variable (its own checkpoint)."""
    open_engine().delete_var(run_id, name, expect_version, source="cli")
    if as_json:
        print_json({"run_id": run_id, "var_name": name, "deleted": True})
    else:
        console().print(f"removed {name}", markup=False)


@app.command("history")
@guard
def history(run_id: str = typer.Argument(..., metavar="RUN"), name: str = typer.Argument(..., metavar="NAME"),
            as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """Every write of a variable, with its checkpoint."""
    rows = open_engine().history(run_id, name)
    docs: list[dict[str, Any]] = [
        {"version": h.version, "value": None if h.deleted else h.value, "seq": h.seq,
         "source_step": h.source_step, "at": iso(h.at), **({"deleted": True} if h.deleted else {})}
        for h in rows]
    if as_json:
        print_json(docs)
        return
    from rich.table import Table
    table = Table("version", "checkpoint", "written by", "at", "value")
    for d in docs:
        table.add_row(str(d["version"]), str(d["seq"]), str(d["source_step"]), (d["at"] or "")[:23],
                      "(deleted)" if d.get("deleted") else short(d["value"], 80))
    console().print(table)


def app_for(args: list[str]) -> typer.Typer:
    """The `vars` group for the command line ``args`` (what follows `vars`) with only the
    verb that line runs (Typer builds the parameters of every command a group has, on every
    start): ``args[0]`` when it is a verb, else ``list`` (as ``ListByDefault`` reads it).
    With a help option anywhere, every verb: the group's help lists them all."""
    if any(a in ("--help", "-h") for a in args):
        return app
    verb = args[0] if args and args[0] in VERBS[1:] else "list"
    narrowed = sub_app()
    narrowed.registered_commands = [c for c in app.registered_commands if c.name == verb]
    return narrowed
