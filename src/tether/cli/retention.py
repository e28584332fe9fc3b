"""Retention commands: `tether gc` (delete finished runs in bounded batches) and `tether rm`
(delete one finished run). Both report runs, rows and bytes removed."""
from __future__ import annotations

from typing import Any

import typer

from .output import console, print_json
from .root import guard, open_engine


def size(n: int) -> str:
    """Bytes as a short human text (``1.5 MB``)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def report_lines(r: dict[str, Any]) -> list[str]:
    """How a gc or rm report reads."""
    verb = "would delete" if r["dry_run"] else "deleted"
    lines = [f"{verb} {r['runs']} run(s): {r['rows']} rows, {size(r['bytes'])} of values; "
             f"{r['blobs']} blob(s), {size(r['blob_bytes'])}"]
    if r["kept"]:
        lines.append(f"kept {r['kept']} run(s) that moved on or gained a child meanwhile")
    if not r["dry_run"] and r["database_bytes_before"]:
        lines.append(f"store size {size(r['database_bytes_before'])} -> {size(r['database_bytes_after'])}"
                     f" ({r['seconds']:.1f}s)")
    return lines


@guard
def gc(
    older_than: str | None = typer.Option(
        None, "--older-than", metavar="DURATION",
        help="Only runs that ended longer ago than this (7d, 12h, 90m; 0: any age). Default: each flow's "
             "retention:, else TETHER_RETENTION, else 30d."),
    status: str | None = typer.Option(
        None, "--status", metavar="S[,S...]",
        help="Statuses to delete (default completed,failed,cancelled); pending, running, paused or "
             "interrupted runs go only when named."),
    keep_last: int | None = typer.Option(None, "--keep-last", min=0, metavar="N",
                                         help="Keep the N newest runs of each flow."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Change nothing; report what would be deleted."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Delete finished runs and everything of theirs (steps, variables and history, events, loop
    items and iterations, blobs nothing else references), in short batches while other runs keep
    committing. A parent whose child is kept is kept. On SQLite the file shrinks."""
    report = open_engine().gc(older_than=older_than, statuses=status, keep_last=keep_last, dry_run=dry_run)
    if as_json:
        print_json(report)
        return
    con = console()
    for line in report_lines(report):
        con.print(line, markup=False)


@guard
def rm(run_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Delete one finished run (completed, failed or cancelled) and everything of it. Exit 5 if
    there is no such run, 4 if it is not finished or is the parent of other runs."""
    report = open_engine().delete_run(run_id)
    doc = {"run_id": run_id, "deleted": True, **{k: v for k, v in report.items() if k != "run_ids"}}
    if as_json:
        print_json(doc)
        return
    con = console()
    con.print(f"deleted run {run_id}: {report['rows']} rows, {size(report['bytes'])} of values, "
              f"{report['blobs']} blob(s)", markup=False)
