"""`leaderboard`: tables, plots and sample grids from run records (summary.json), never recomputed."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def leaderboard(
    runs: list[Path] = typer.Argument(None, help="run folders (each with summary.json) or folders of them [default: runs]"),
    out: Optional[Path] = typer.Option(None, "--out", help="write leaderboard.md, index.html and plots/ here"),
    sort: Optional[str] = typer.Option(None, "--sort", help="metric to sort each table by, best first (default: its first metric, FID)"),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="only this protocol: paired | unpaired"),
) -> None:
    """Render a leaderboard: one table per comparable group of runs (same data, split, protocol,
    resolution and feature extractor), with the baselines, plots and sample grids on the same pairs.

    Example: leaderboard runs/ --out report/ --sort lpips
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from reports.records import fmt, group_runs, load_runs

    console = Console(width=max(Console().width, 120))  # the tables need ~110 columns; pipes default to 80
    if protocol not in (None, "paired", "unpaired"):
        console.print(f"[red]error:[/red] --protocol {escape(protocol)!r}; valid: paired, unpaired")
        raise typer.Exit(2)
    found, problems = load_runs(list(runs) if runs else [Path("runs")])
    for line in problems:
        console.print(f"[yellow]{escape(line)}")
    groups, unscored = group_runs(found, protocol)
    if not groups:
        console.print(f"[red]error:[/red] no scored run records (summary.json) in {escape(', '.join(map(str, runs or ['runs'])))}"
                      + (f" under the {protocol} protocol" if protocol else ""))
        raise typer.Exit(2)
    known = {m for g in groups for m in g.metric_names()}
    if sort is not None and sort not in known:
        console.print(f"[red]error:[/red] --sort {escape(sort)!r}: no record has that metric; they have {', '.join(sorted(known))}")
        raise typer.Exit(2)
    for gi, group in enumerate(groups, 1):
        d = group.key.describe()
        metrics = group.metric_names()
        table = Table(title=escape(f"table {gi}: " + " · ".join(f"{k} {v}" for k, v in d.items())), title_justify="left")
        table.add_column("model", no_wrap=True)
        for m in metrics:
            higher = group.direction(m)[0]
            table.add_column(m.upper() + ("" if higher is None else ("↑" if higher else "↓")), justify="right")
        table.add_column("FPS↑", justify="right")
        table.add_column("cmp")
        for run in group.sorted_runs(sort if sort in metrics else (metrics[0] if metrics else None)):
            name = escape(run.label)
            table.add_row(f"[dim]{name}[/dim]" if run.is_baseline else name, *[fmt(run.metrics.get(m)) for m in metrics],
                          fmt(run.fps()), "yes" if run.comparable_to_published else "[yellow]no*")
        console.print(table)
        for note in group.notes():
            console.print(f"  [yellow]note:[/yellow] {escape(note)}")
    console.print("FPS = model only (inputs already on the device); each record also holds the end-to-end rate")
    for run in unscored:
        console.print(escape(f"{run.model} ({run.protocol}): not scored: {run.summary['not_scored']}"), highlight=False)
    if out is not None:
        write_report(groups, unscored, problems, sort, out)
        console.print(f"wrote {escape(str(out / 'index.html'))} and {escape(str(out / 'leaderboard.md'))}")


def write_report(groups, unscored, problems, sort, out: Path) -> None:  # noqa: ANN001
    """index.html, leaderboard.md and the plots as PNG files (the Markdown links them; the HTML embeds them)."""
    from curate.manifest import atomic_write_bytes
    from reports.render import figures_for, markdown, render

    figures = figures_for(groups)
    files = {}
    for name, png in figures.items():
        atomic_write_bytes(out / "plots" / f"{name}.png", png)
        files[name] = f"plots/{name}.png"
    atomic_write_bytes(out / "leaderboard.md", markdown(groups, unscored, problems, sort, files).encode())
    atomic_write_bytes(out / "index.html", render(groups, unscored, problems, sort, figures).encode())


def main() -> None:
    app()


if __name__ == "__main__":
    app()
