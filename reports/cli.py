"""`leaderboard`: tables, plots and sample grids from run records (summary.json), never recomputed."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

COLUMNS = ("fid", "kid", "lpips", "ssim", "psnr")


def load_runs(runs: Path) -> list[tuple[Path, dict[str, Any]]]:
    from eval.record import SUMMARY_FILE, read_summary

    found = []
    for path in sorted(Path(runs).glob(f"*/{SUMMARY_FILE}")):
        try:
            found.append((path.parent, read_summary(path.parent)))
        except (ValueError, json.JSONDecodeError) as exc:
            typer.echo(f"skipping {path}: {exc}", err=True)
    return found


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"
    return str(value)


def _best_fps(section: dict[str, Any]) -> float | None:
    values = [v.get("images_per_s") for k, v in section.items() if k.startswith("batch_") and isinstance(v, dict)]
    values = [v for v in values if v is not None and v == v]
    return max(values) if values else None


def _row(summary: dict[str, Any]) -> dict[str, Any]:
    """One table row; FPS is the model-only rate (inputs on the device), as the record labels it
    (records written before the label: their top-level batch rates, which were measured the same way)."""
    m = summary["metrics"]
    fps = summary.get("fps") or {}
    protocol = summary["protocol"].get("protocol")
    meaning = summary["protocol"].get("meaning") or ""
    if protocol == "unpaired" and meaning.startswith("new style codes"):
        protocol = "unpaired (new styles)"
    return {
        "model": summary["model"], "protocol": protocol, "images": summary["n_images"],
        **{c: m.get(c) for c in COLUMNS}, "fps": _best_fps(fps.get("model_only", fps)),
        "comparable": summary["comparable_to_published"],
    }


def split_unscored(found: list[tuple[Path, dict[str, Any]]]) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Records with scores, and one line for each record that says why it has none (SPADE unpaired)."""
    scored = [(r, s) for r, s in found if not s.get("not_scored")]
    notes = [f"{s['model']} ({s['protocol'].get('protocol')}): not scored: {s['not_scored']}" for _, s in found if s.get("not_scored")]
    return scored, notes


def markdown_table(rows: list[dict[str, Any]]) -> str:
    arrows = {"fid": "↓", "kid": "↓", "lpips": "↓", "ssim": "↑", "psnr": "↑", "fps": "↑"}
    head = ["model", "protocol", "images", *[f"{c.upper()} {arrows[c]}" for c in COLUMNS], "FPS (model only) ↑", "comparable"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["protocol"], r["images"], *[_fmt(r[c]) for c in COLUMNS], _fmt(r["fps"]),
                 "yes" if r["comparable"] else "**no** (untrained extractor)"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _png_b64(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _plots(rows: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = []
    for metric in (*COLUMNS, "fps"):
        points = [(f"{r['model']}\n{r['protocol']}", r[metric]) for r in rows if r[metric] is not None]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(4, 2.6))
        ax.bar([p[0] for p in points], [p[1] for p in points], color="#4c72b0")
        ax.set_title(metric.upper())
        images.append(_png_b64(fig))
        plt.close(fig)
    return images


def _grid(run: Path, n: int = 8) -> str | None:
    from PIL import Image

    files = sorted((run / "images").glob("*.png"))[:n]
    if not files:
        return None
    ims = [Image.open(f).convert("RGB") for f in files]
    w, h = ims[0].size
    grid = Image.new("RGB", (w * len(ims), h), "white")
    for i, im in enumerate(ims):
        grid.paste(im.resize((w, h)), (i * w, 0))
    buf = io.BytesIO()
    grid.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def render_html(runs: list[tuple[Path, dict[str, Any]]], table_md: str) -> str:
    rows = [_row(s) for _, s in runs]
    parts = ["<!doctype html><meta charset='utf-8'><title>tryon-bench leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
             ".warn{background:#fff3cd;padding:8px;border:1px solid #e0c060}</style>", "<h1>tryon-bench leaderboard</h1>"]
    if any(not r["comparable"] for r in rows):
        parts.append("<p class='warn'>Runs marked <b>not comparable</b> were scored with an untrained (seeded) feature "
                     "extractor or LPIPS backbone: compare them only with each other, never with published numbers.</p>")
    parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in
                 ["model", "protocol", "images", *[c.upper() for c in COLUMNS], "FPS", "comparable"]) + "</tr>")
    for r in rows:
        parts.append("<tr>" + "".join(f"<td>{html.escape(_fmt(r[k]))}</td>" for k in ("model", "protocol", "images", *COLUMNS, "fps"))
                     + f"<td>{'yes' if r['comparable'] else '<b>no</b>'}</td></tr>")
    parts.append("</table><h2>Metrics</h2>")
    parts += [f"<img src='data:image/png;base64,{p}'>" for p in _plots(rows)]
    parts.append("<h2>Samples</h2>")
    for run, s in runs:
        grid = _grid(run)
        if grid:
            parts.append(f"<h3>{html.escape(s['model'])} — {html.escape(str(s['protocol'].get('protocol')))} ({html.escape(run.name)})</h3>"
                         f"<img src='data:image/png;base64,{grid}'>")
    parts.append(f"<h2>Protocol</h2><pre>{html.escape(json.dumps([s['protocol'] for _, s in runs][:1], indent=1))}</pre>")
    return "\n".join(parts)


@app.command()
def leaderboard(
    runs: Path = typer.Argument(Path("runs"), help="folder of run dirs (each with summary.json)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write leaderboard.md and leaderboard.html here"),
) -> None:
    """Render a leaderboard (terminal table, Markdown, self-contained HTML with plots and sample grids).

    Example: leaderboard runs --out reports/
    """
    from rich.console import Console
    from rich.table import Table

    found, unscored = split_unscored(load_runs(runs))
    if not found:
        typer.echo(f"no scored run records (*/summary.json) under {runs}", err=True)
        raise typer.Exit(2)
    rows = [_row(s) for _, s in found]
    table = Table(title=f"tryon-bench leaderboard ({runs})")
    arrows = {"fid": "↓", "kid": "↓", "lpips": "↓", "ssim": "↑", "psnr": "↑"}
    for col in ("model", "protocol", "n", *[f"{c.upper()}{arrows[c]}" for c in COLUMNS], "FPS↑", "cmp"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(r["model"], str(r["protocol"]), str(r["images"]), *[_fmt(r[c]) for c in COLUMNS], _fmt(r["fps"]),
                      "yes" if r["comparable"] else "[yellow]no*")
    console = Console(width=max(Console().width, 110))  # the table needs ~100 columns; pipes default to 80
    console.print(table)
    if any(not r["comparable"] for r in rows):
        console.print("[yellow]* cmp = no: scored with an untrained feature extractor / LPIPS backbone: NOT comparable to published numbers")
    console.print("FPS = model only (inputs already on the device); each record also holds the end-to-end rate")
    for note in unscored:
        console.print(note, highlight=False)
    if out is not None:
        from curate.manifest import atomic_write_bytes

        md = markdown_table(rows) + "".join(f"\n\n{n}" for n in unscored)
        atomic_write_bytes(out / "leaderboard.md", (md + "\n").encode())
        atomic_write_bytes(out / "leaderboard.html", render_html(found, md).encode())
        console.print(f"wrote {out / 'leaderboard.md'} and {out / 'leaderboard.html'}")
