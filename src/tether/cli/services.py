"""The commands beyond one run: `tether shared` (variables that outlive runs, §4.5),
`tether worker` and `tether serve` (the REST API)."""
from __future__ import annotations

import typer

from ..views import shared_doc
from .args import STRING_HINT, parse_value
from .output import console, print_json, short
from .root import guard, open_engine, settings

SHARED_HELP = """Shared variables: values that outlive one run, read in templates as shared.NAME.

\b
  tether shared                       list them
  tether shared get NAME
  tether shared set NAME VALUE [--string] [--immutable] [--expect-version N]
  tether shared rm NAME [--expect-version N]

VALUE is parsed as JSON when it parses, else taken as text; one that starts with
{ [ or " must be valid JSON unless --string stores it as text. An immutable variable can
never change or be removed; --expect-version refuses a write (exit 4) unless the
variable is at that version (0: must not exist)."""


@guard
def shared(
    args: list[str] | None = typer.Argument(None, metavar="[get|set|rm] [NAME] [VALUE]"),
    immutable: bool = typer.Option(False, "--immutable", help="With set: the value can never change again."),
    as_string: bool = typer.Option(False, "--string", help="With set: store VALUE as text, as it is."),
    expect_version: int | None = typer.Option(None, "--expect-version", min=0,
                                                 help="Refuse the write unless at this version (0: absent)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    from ..errors import UsageError
    engine = open_engine()
    args = args or []
    con = console()
    if not args:
        from ..queries import shared_variables
        docs = shared_variables(engine)
        if as_json:
            print_json(docs)
            return
        from rich.table import Table
        table = Table("name", "value", "version", "immutable")
        for d in docs:
            table.add_row(d["name"], short(d["value"], 100), str(d["version"]),
                          "yes" if d["immutable"] else "")
        con.print(table)
        return
    verb, rest = args[0], args[1:]
    if (verb, len(rest)) not in (("get", 1), ("set", 2), ("rm", 1)):
        raise UsageError("usage: tether shared [get NAME | set NAME VALUE | rm NAME]")
    if verb == "get":
        doc = shared_doc(engine.shared_get(rest[0]))
        if as_json:
            print_json(doc)
        else:
            con.print(short(doc["value"], 10_000), markup=False)
            con.print(f"version {doc['version']}{', immutable' if doc['immutable'] else ''}, "
                      f"updated at {doc['updated_at']}", style="dim", markup=False)
    elif verb == "set":
        value = rest[1] if as_string else parse_value(rest[1], "VALUE", STRING_HINT)
        doc = shared_doc(engine.shared_set(rest[0], value, expect_version,
                                           immutable=immutable))
        if as_json:
            print_json(doc)
        else:
            con.print(f"{doc['name']} = {short(doc['value'], 200)} (version {doc['version']})", markup=False)
    else:
        deleted = engine.shared_delete(rest[0], expect_version)
        if as_json:
            print_json({"name": rest[0], "deleted": deleted})
        else:
            con.print(f"removed {rest[0]}" if deleted else f"no shared variable {rest[0]}", markup=False)


@guard
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
    executor: int | None = typer.Option(None, "--executor", min=0, max=64,
                                           help="Threads that run queued runs here "
                                                "(default 4; 0 on PostgreSQL, "
                                                "where `tether worker` processes run them)."),
) -> None:
    """The REST API (docs/api.md). Tokens: TETHER_API_TOKENS=read:TOKEN,write:TOKEN or
    TETHER_API_TOKENS_FILE; without tokens it listens on loopback only.
    TETHER_ALLOWED_TOOLS limits the tools of flows sent to it."""
    import ipaddress

    from ..errors import UsageError
    try:
        from ..server.app import create_app
        from ..server.auth import load_tokens
        from ..server.serving import serve as serve_app
    except ImportError:
        raise UsageError("the server needs its extra: pip install -e '.[server]'") from None
    config = settings()
    tokens = load_tokens(config)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not tokens and not loopback:
        raise UsageError(f"refusing to listen on {host} without API tokens: set TETHER_API_TOKENS "
                         "(read:TOKEN,write:TOKEN) or TETHER_API_TOKENS_FILE")
    if not tokens:
        console(stderr=True).print("no API tokens: every request is allowed (loopback only)", markup=False)
    # the port is bound first (in use: exit 2); logs and signals: server/serving.py
    serve_app(lambda: create_app(config.db, tokens=tokens, allowed_tools=config.allowed_tools,
                                 executor=executor, settings=config, hosts=[host]), host, port)


@guard
def worker(
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, max=256,
                                    help="Runs executed at the same time by this process."),
    once: bool = typer.Option(False, "--once", help="Exit when no run is left to claim."),
) -> None:
    """Claim queued runs (`run --detach`) and runs whose owner died (lease expired, see
    TETHER_LEASE_SECONDS) and execute them. SIGTERM, SIGHUP or Ctrl-C: finish each run's
    current step, hand the runs back as pending, exit 0; a second one: kill the steps'
    processes now and leave the runs interrupted."""
    import logging
    import signal

    from ..engine.worker import Worker
    if logging.getLogger("tether.engine.claims").getEffectiveLevel() > logging.INFO:
        logging.getLogger("tether.engine.claims").setLevel(logging.INFO)  # one line per takeover
    engine = open_engine()
    w = Worker(engine, concurrency, once=once)
    signals: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        signals.append(signum)
        if len(signals) == 1:
            w.stop()
        else:
            w.abort()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # a closed terminal stops it as SIGTERM does
        signal.signal(sig, on_signal)
    done = w.serve()
    console(stderr=True).print(f"worker: {done} run(s) executed", markup=False)
    engine.close()
