"""The leaderboard's figures (matplotlib, Agg): each returns PNG bytes, or None when there is nothing to draw.

Every label drawn comes from data (model names), so mathtext is off: a name with ``$`` is drawn as
typed, never parsed.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd

from reports.records import Group, Run

MODEL_COLOUR = "#3b6fb6"
BASELINE_COLOUR = "#9a9a9a"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"text.parse_math": False, "axes.spines.top": False, "axes.spines.right": False,
                         "font.size": 9, "axes.titleweight": "bold"})
    return plt


def _log_axis(axis: Any) -> None:
    """A log scale with plain tick labels (the default formatter writes mathtext, which is off here)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fid_vs_fps(group: Group) -> bytes | None:
    """The quality/speed trade-off: FID (lower is better) against model-only FPS (higher is better)."""
    points = [(r, r.fps(), r.metrics.get("fid")) for r in group.runs]
    points = [(r, x, y) for r, x, y in points if _finite(x) and _finite(y) and x > 0]
    if not points:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for run, x, y in points:
        base = run.is_baseline
        ax.scatter([x], [y], s=70, marker="X" if base else "o", color=BASELINE_COLOUR if base else MODEL_COLOUR, zorder=3)
        ax.annotate(run.label, (x, y), textcoords="offset points", xytext=(6, 5), fontsize=8,
                    color="#555" if base else "#111")
    ax.set_xscale("log")
    _log_axis(ax.xaxis)
    ax.set_xlabel("FPS, model only (images/s, log scale)  →  faster")
    ax.set_ylabel("FID  ↓  better")
    ax.set_title("Quality against speed")
    ax.grid(True, which="both", alpha=0.25)
    return _png(fig)


def per_metric(group: Group) -> bytes | None:
    """One horizontal bar chart per metric, models in blue and baselines in grey, 95 % intervals where
    the record has them; the title carries the direction the records state."""
    metrics = [m for m in group.metric_names() if any(_finite(r.metrics.get(m)) for r in group.runs)]
    fps_runs = [r for r in group.runs if _finite(r.fps())]
    panels = [*metrics, *(["fps"] if fps_runs else [])]
    if not panels:
        return None
    plt = _plt()
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    height = 0.32 * len(group.runs) + 1.1
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, height * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, metric in zip(axes.flat, panels):
        if metric == "fps":
            higher, runs = True, sorted(fps_runs, key=lambda r: r.fps() or 0)
            values = [r.fps() for r in runs]
            errors = None
            ax.set_xscale("log")
            _log_axis(ax.xaxis)
        else:
            higher = group.direction(metric)[0]
            runs = [r for r in group.sorted_runs(metric) if _finite(r.metrics.get(metric))][::-1]
            values = [float(r.metrics[metric]) for r in runs]
            cis = [r.metrics.get(f"{metric}_ci95") for r in runs]
            errors = None
            if all(isinstance(c, list) and len(c) == 2 and all(_finite(x) for x in c) for c in cis):
                errors = [[max(0.0, v - c[0]) for v, c in zip(values, cis)], [max(0.0, c[1] - v) for v, c in zip(values, cis)]]
        colours = [BASELINE_COLOUR if r.is_baseline else MODEL_COLOUR for r in runs]
        y = range(len(runs))
        ax.barh(list(y), values, color=colours, xerr=errors, capsize=2, error_kw={"elinewidth": 0.8})
        ax.set_yticks(list(y), [r.label for r in runs])
        arrow = "" if higher is None else (" ↑ higher is better" if higher else " ↓ lower is better")
        ax.set_title((metric.upper() + (" (model only)" if metric == "fps" else "")) + arrow, fontsize=9)
        ax.grid(True, axis="x", alpha=0.25)
    fig.tight_layout()
    return _png(fig)


def per_category(group: Group, metric: str = "lpips") -> bytes | None:
    """Per-image ``metric`` averaged per garment category (the triplets' category), where the set has more
    than one category; the per-image scores are the record's own (``per_sample.parquet``)."""
    ds = ((group.runs[0].summary.get("provenance") or {}).get("dataset")) if group.runs else None
    trip_path = Path(ds) / "triplets.parquet" if ds else None
    if trip_path is None or not trip_path.is_file():
        return None
    categories = pd.read_parquet(trip_path, columns=["pair_id", "category"]).drop_duplicates("pair_id").set_index("pair_id")["category"]
    frames = {}
    for run in group.runs:
        table = run.per_sample()
        if table is None or metric not in table or "pair_id" not in table:
            continue
        joined = table.assign(category=table["pair_id"].map(categories)).dropna(subset=["category"])
        frames[run.label] = joined.groupby("category")[metric].mean()
    if not frames:
        return None
    means = pd.DataFrame(frames)
    if len(means.index) < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(means.index) * max(1, len(frames)) / 2), 3.4))
    means.plot.bar(ax=ax, rot=0, width=0.8)
    higher = group.direction(metric)[0]
    ax.set_title(f"{metric.upper()} per category" + ("" if higher is None else (" ↑" if higher else " ↓")))
    ax.legend(fontsize=7, ncols=2)
    ax.grid(True, axis="y", alpha=0.25)
    return _png(fig)


def training_curves(runs: list[Run]) -> bytes | None:
    """Each model's logged training losses (``logs/<stage>/train.csv`` of the checkpoint it evaluated):
    the ``total`` of every phase against the step, one panel per model and stage."""
    panels: list[tuple[str, pd.DataFrame, list[str]]] = []
    seen: set[str] = set()
    for run in runs:
        for stage, path in run.training_logs().items():
            key = f"{path.resolve()}"
            if key in seen:
                continue
            seen.add(key)
            try:
                table = pd.read_csv(path)
            except (OSError, ValueError, pd.errors.ParserError):
                continue
            cols = [c for c in table.columns if c.endswith("/total")] or [c for c in table.columns if "/" in c][:4]
            if "step" in table and cols and len(table) > 1:
                panels.append((f"{run.model} · {stage}", table, cols))
    if not panels:
        return None
    plt = _plt()
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 2.7 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, table, names) in zip(axes.flat, panels):
        for name in names:
            ax.plot(table["step"], pd.to_numeric(table[name], errors="coerce"), label=name, linewidth=1.2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.25)
    fig.tight_layout()
    return _png(fig)
