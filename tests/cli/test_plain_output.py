"""``tether.cli.plain`` writes exactly what the CLI's Rich console writes on a plain stream,
or declines: checked against Rich itself on generated lines and tables."""
from __future__ import annotations

import io
import random

import pytest
from rich.console import Console
from rich.table import Table

from tether.cli.plain import plain_line, plain_stream, plain_table

# pieces that Rich changes (markup, escapes, emoji codes, tabs, control and wide characters)
# or leaves alone (times, JSON lists, digits between colons)
PIECES = [*"ab xyz019:[]\\/@#-_.…é\t\n\r\x1b", "[bold]", "[/]", "[/bold]", "\\[bold]", "[red]", ":smile:",
          ":100:", ":1234:", ":12", "14:15:13", "  ", "[1, 2]", "\\[", "中", ":-1:", "::", "😄", "\u200b"]


def rich_prints(draw) -> str:
    buf = io.StringIO()  # what tether.cli.output.console() is on a pipe
    draw(Console(file=buf, highlight=False, soft_wrap=True, width=1_000_000))
    return buf.getvalue()


def text(rng: random.Random, most: int) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, most)))


@pytest.mark.parametrize("seed", range(4))
def test_a_line_is_written_as_rich_writes_it_or_left_to_rich(seed: int):
    rng = random.Random(seed)
    written = 0
    for _ in range(1500):
        line = text(rng, 10)
        if rng.random() < 0.3:
            colour = rng.choice(["green", "red", "yellow", "cyan", "blue", "bold red"])
            line = f"run [bold]{line}[/] ({text(rng, 3)}): [{colour}]{text(rng, 2)}[/]"
        markup = rng.random() < 0.6
        mine = plain_line(line, markup)
        if mine is not None:
            written += 1
            assert mine == rich_prints(lambda c, line=line, markup=markup: c.print(line, markup=markup)), (line, markup)
    assert written > 200  # the check did compare


@pytest.mark.parametrize("seed", range(4))
def test_a_table_is_written_as_rich_writes_it_or_left_to_rich(seed: int):
    rng = random.Random(seed)
    written = 0
    for _ in range(800):
        columns = rng.randint(1, 4)
        headers = [rng.choice(["run", "flow", "a", "status", "result / error"]) for _ in range(columns)]
        rows = [[text(rng, 5) for _ in range(columns)] for _ in range(rng.randint(0, 4))]
        mine = plain_table(headers, rows)
        if mine is None:
            continue
        written += 1

        def draw(c: Console, headers: list[str] = headers, rows: list[list[str]] = rows) -> None:
            table = Table(*headers)
            table.columns[0].no_wrap = rng.random() < 0.5
            for row in rows:
                table.add_row(*row)
            c.print(table)
        assert mine == rich_prints(draw), (headers, rows)
    assert written > 100


def test_the_emoji_codes_made_of_digits_are_the_ones_plain_knows():
    from rich._emoji_codes import EMOJI

    from tether.cli import plain
    assert {name for name in EMOJI if name.isascii() and name.isdigit()} == plain._DIGIT_EMOJI


def test_a_terminal_or_a_forced_terminal_is_not_plain(monkeypatch: pytest.MonkeyPatch):
    class Stream(io.StringIO):
        encoding = "utf-8"
        tty = False

        def isatty(self) -> bool:
            return self.tty
    stream = Stream()
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "DATABRICKS_RUNTIME_VERSION"):
        monkeypatch.delenv(name, raising=False)
    assert plain_stream(stream)
    stream.tty = True
    assert not plain_stream(stream)
    stream.tty = False
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not plain_stream(stream)
    monkeypatch.setenv("FORCE_COLOR", "")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert not plain_stream(stream)
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert plain_stream(stream)
    stream.encoding = "ascii"
    assert not plain_stream(stream)
