"""Draw views with rich; plain text when the output is not a terminal."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from perennial_cli.views import Table, View


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Piped (CI, tests, `| less`): no colours, and wide enough that tables are not squeezed.
    width = None if stream.isatty() else int(os.environ.get("COLUMNS") or 200)
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def table(spec: Table) -> RichTable:
    out = RichTable(title=spec.title, title_justify="left", box=box.SIMPLE_HEAD,
                    show_edge=False, pad_edge=False)  # fmt: skip
    for column in spec.columns:
        out.add_column(column, overflow="fold")
    for row in spec.rows:
        out.add_row(*row)
    return out


def view(con: Console, spec: View) -> None:
    for part in spec.tables:
        if part.rows:
            con.print(table(part))
        else:
            con.print(f"[bold]{part.title}[/bold]: {part.empty}")
        con.print()
    for note in spec.notes:
        con.print(note)


def report(con: Console, message: dict[str, Any]) -> None:
    """The trainer's validate report: outcome, dataset, failing checks, warnings."""
    outcome = message.get("outcome", "?")
    colour = "green" if outcome == "Validated" else "red"
    con.print(f"[{colour}]{outcome}[/{colour}] {message.get('message', '')}".rstrip())
    dataset = message.get("dataset") or {}
    if dataset:
        con.print(
            f"dataset {dataset.get('uri', '-')}: {dataset.get('rows', '?')} rows, "
            f"sha256 {dataset.get('sha256', '-')}"
        )
    failures = message.get("failures") or []
    if failures:
        rows = [
            [str(f.get("check")), str(f.get("column") or "-"), repr(f.get("observed")),
             repr(f.get("expected"))]
            for f in failures
        ]  # fmt: skip
        con.print(table(Table("Failing checks", ["CHECK", "COLUMN", "OBSERVED", "EXPECTED"], rows)))
    for warning in message.get("warnings") or []:
        con.print(f"warning: {warning}")
