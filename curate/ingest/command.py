"""Typer commands ``curate ingest`` and ``curate summary`` (registered by ``curate/cli.py``).

Imports of the ingest machinery (pandas, pyarrow, PIL) happen inside the functions so ``curate --help``
stays instant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from curate.ingest.engine import IngestSummary

LAYOUT_HELP = "auto | viton-hd | viton | dresscode | deepfashion-smis | pairs-folder | fgvc6 | images"


def render_summary(summary: "IngestSummary", ds: Path, *, max_notes: int = 20) -> None:
    """Print the layout decision, counts by table/status/reason, notes and unused files as rich tables."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def esc(value: object) -> str:
        # every value here comes from the data (ids, file names, details): "[/x]" in a name is text
        return escape(str(value)) if value is not None else ""

    console = Console()
    console.print(f"[bold]layout[/bold]: {esc(summary.layout)}  ([dim]{esc(summary.layout_reason)}[/dim])")
    table = Table(title=esc(f"manifest {ds}/manifest"), show_lines=False)
    for col, justify in (("table", "left"), ("status", "left"), ("reason", "left"), ("count", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for rec in summary.counts.to_dict(orient="records"):
        style = "green" if rec["status"] == "ok" else "red"
        table.add_row(rec["table"], f"[{style}]{esc(rec['status'])}[/{style}]", esc(rec["reason"] or ""), str(rec["count"]))
    if not len(summary.counts):
        table.add_row("(all)", "", "no rows", "0")
    console.print(table)
    if len(summary.examples):
        examples = Table(title="rejected rows: first examples per reason (all in the manifest's reject_detail)")
        for col in ("table", "reason", "id", "detail"):
            examples.add_column(col, overflow="fold")
        for rec in summary.examples.to_dict(orient="records"):
            examples.add_row(esc(rec["table"]), esc(rec["reason"]), esc(rec["id"]), esc(rec["detail"] or ""))
        console.print(examples)
    if len(summary.usable):
        usable = Table(title="ok rows by split, category")
        for col in ("table", "split", "category", "count"):
            usable.add_column(col, justify="right" if col == "count" else "left")
        for rec in summary.usable.to_dict(orient="records"):
            usable.add_row(esc(rec["table"]), esc(rec["split"]), esc(rec["category"]), str(rec["count"]))
        console.print(usable)
    console.print(
        f"[bold]usable pairs[/bold] (ingest ok, kept by dedupe, passed filters so far): {summary.usable_pairs}"
    )
    if summary.notes:
        console.print("[bold]notes[/bold]")
        for note in summary.notes[:max_notes]:
            console.print(f"  - {note}", markup=False, highlight=False)
        if len(summary.notes) > max_notes:
            console.print(f"  ... and {len(summary.notes) - max_notes} more (DS/reports/ingest.json)")
    if summary.unused:
        console.print(f"[bold]files not ingested[/bold] (not part of the {esc(summary.layout)} layout), by folder:")
        for folder, n in list(summary.unused.items())[:max_notes]:
            console.print(f"  {folder or '.'}: {n}", markup=False, highlight=False)
    odd = [f for f in summary.not_ingested if not f["reason"].startswith("not part of")]
    if odd:
        console.print("[bold]files skipped[/bold], each with its reason (all in DS/reports/ingest.json, files_not_ingested):")
        for f in odd[:max_notes]:
            console.print(f"  {f['path']}: {f['reason']}", markup=False, highlight=False)
        if len(odd) > max_notes:
            console.print(f"  ... and {len(odd) - max_notes} more", markup=False)
    if summary.symlinks:
        console.print(f"{len(summary.symlinks)} rows read through symlinks (targets in DS/reports/ingest.json, symlinks)",
                      markup=False, highlight=False)


def ingest_command(
    src: Path = typer.Argument(..., help="source dataset folder (never modified)"),
    out: Path = typer.Option(..., "--out", "-o", help="dataset folder DS to write DS/manifest/*.parquet into"),
    layout: str = typer.Option("auto", "--layout", "-l", help=LAYOUT_HELP),
    role: Optional[str] = typer.Option(None, "--role", help="human | article: row type for the images/fgvc6 layouts"),
    category: Optional[str] = typer.Option(
        None, "--category", help="upper_body | lower_body | dresses: assert it where the layout has none (VITON-HD)"
    ),
    workers: int = typer.Option(1, "--workers", "-j", help="decoding processes (0 = one per CPU core)"),
    min_side: int = typer.Option(0, "--min-side", help="reject images whose shorter side is below this (0 = off)"),
) -> None:
    """Read a try-on dataset in any supported layout into one manifest; bad files become rejected rows.

    Every image is decoded once and hashed; poses are converted to COCO-18 in image pixels; label maps are
    checked against their label set and image size. Ends with counts by table, status and reason.

    Example: curate ingest zalando-hd-resized --out data/vitonhd --category upper_body --workers 4
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from curate.ingest import IngestError, ingest

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)
    tasks: dict[str, int] = {}

    def progress(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bars.add_task(f"reading {what}", total=total)
        bars.update(tasks[what], completed=done)

    try:
        with bars:
            result = ingest(src, out, layout, role=role, category=category,
                            workers=workers or (os.cpu_count() or 1), progress=progress, min_side=min_side)
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except PermissionError as exc:  # the output folder (or the source root itself) cannot be written/read
        typer.echo(f"error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    render_summary(result.summary, out)


def summary_command(ds: Path = typer.Argument(..., help="dataset folder written by `curate ingest`")) -> None:
    """Print a dataset's manifest summary: layout, counts by table, status and reason, and ingest notes.

    Example: curate summary data/vitonhd
    """
    from curate.ingest import load_summary
    from curate.manifest import ManifestError

    try:
        summary = load_summary(ds)
    except ManifestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    render_summary(summary, ds)
