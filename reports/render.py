"""leaderboard.md and a self-contained index.html (no CDN, no external file: images are data URIs).

Every string that comes from a record, a file name or a dataset is escaped where it is written:
``_h`` for HTML, ``_md`` for Markdown cells (which may hold HTML too).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from reports import plots
from reports.grids import Grid, build_grid
from reports.records import Group, Run, fmt

PASTE = "baseline-paste"


def _h(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _md(value: Any) -> str:
    return html.escape(" ".join(str(value).split()), quote=False).replace("|", "\\|").replace("`", "\\`")


def _arrow(higher: bool | None) -> str:
    return "" if higher is None else (" ↑" if higher else " ↓")


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def versus_paste(group: Group, run: Run) -> tuple[list[str], list[str]] | None:
    """(metrics where ``run`` beats the paste baseline, metrics where it does not), or None without one."""
    paste = next((r for r in group.baselines if r.model == PASTE), None)
    if paste is None or run.is_baseline:
        return None
    better, worse = [], []
    for m in group.metric_names():
        higher = group.direction(m)[0]
        a, b = run.metrics.get(m), paste.metrics.get(m)
        if higher is None or not (_finite(a) and _finite(b)):
            continue
        (better if (a > b if higher else a < b) else worse).append(m)
    return better, worse


def _versus_text(group: Group, run: Run) -> str:
    v = versus_paste(group, run)
    if v is None:
        return "-"
    better, worse = v
    if not worse:
        return "beats paste on every metric"
    if not better:
        return "does not beat paste on any metric"
    return f"beats paste on {', '.join(better)}; not on {', '.join(worse)}"


# --------------------------------------------------------------------------------------------------
# Markdown


def markdown(groups: list[Group], unscored: list[Run], problems: list[str], sort: str | None, plot_files: dict[str, str]) -> str:
    lines = ["# tryon-bench leaderboard", ""]
    if not groups:
        lines.append("No scored run records.")
    for gi, group in enumerate(groups, 1):
        d = group.key.describe()
        lines += [f"## Table {gi}: {_md(d['protocol'])} · {_md(d['dataset'])} ({_md(d['split'])}) · {_md(d['resolution'])}", "",
                  f"Data: manifest `{_md(d['manifest'])}`, split {_md(d['split'])}; feature extractor: {_md(d['extractor'])}.", ""]
        for note in group.notes():
            lines.append(f"> **Note:** {_md(note)}")
        if group.notes():
            lines.append("")
        metrics = group.metric_names()
        head = ["model", "kind", "images", *[f"{m.upper()}{_arrow(group.direction(m)[0])}" for m in metrics],
                "FPS model only ↑", "FPS end to end ↑", "vs paste", "comparable to published", "run"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        key = sort if sort in metrics else (metrics[0] if metrics else None)
        for run in group.sorted_runs(key):
            cells = [_md(run.label), run.kind, str(run.summary.get("n_images", "-"))]
            for m in metrics:
                v = run.metrics.get(m)
                text = fmt(v)
                if not run.is_baseline and _finite(v) and v == group.best(m):
                    text = f"**{text}**"
                cells.append(text)
            cells += [fmt(run.fps()), fmt(run.fps("end_to_end")), _md(_versus_text(group, run)),
                      "yes" if run.comparable_to_published else "**no** (untrained extractor)", f"`{_md(run.path.name)}`"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        meanings = sorted({(r.label, r.meaning) for r in group.runs if r.meaning})
        if meanings:
            lines += ["What the protocol means for each row:", ""] + [f"- {_md(a)}: {_md(b)}" for a, b in meanings] + [""]
        for name, title in (("fid_fps", "FID against FPS"), ("metrics", "Per metric"), ("category", "Per category")):
            file = plot_files.get(f"{gi}-{name}")
            if file:
                lines += [f"![{title}]({file})", ""]
    if plot_files.get("training"):
        lines += ["## Training curves", "", f"![training curves]({plot_files['training']})", ""]
    if unscored:
        lines += ["## Not scored", ""] + [f"- {_md(r.model)} ({_md(r.protocol)}): not scored: {_md(r.summary['not_scored'])}" for r in unscored] + [""]
    if problems:
        lines += ["## Records not read", ""] + [f"- {_md(p)}" for p in problems] + [""]
    lines += ["## Provenance", ""]
    for group in groups:
        for run in group.runs:
            p = run.summary.get("provenance") or {}
            lines.append(f"- `{_md(run.path.name)}`: checkpoint {_md(p.get('checkpoint') or '-')} "
                         f"(sha256 {_md(str(p.get('checkpoint_sha256') or '-')[:12])}), data {_md(p.get('dataset') or p.get('reference') or '-')} "
                         f"(manifest {_md(str(p.get('manifest_sha256') or '-')[:12])}), commit {_md(p.get('git_commit') or '-')}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# HTML

_CSS = """
:root{--ink:#1d2430;--mute:#667085;--line:#e4e7ec;--blue:#3b6fb6;--warn:#fff5d6;--bad:#fde8e8;--good:#e7f6ec}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0;background:#f7f8fa}
header{background:#1d2430;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c9d1dc}
main{padding:8px 32px 48px;max-width:1500px}
section.group{background:#fff;border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:20px 0}
h2{font-size:18px;margin:4px 0 8px}h3{font-size:15px;margin:18px 0 8px}
.key{color:var(--mute);font-size:13px}.key b{color:var(--ink);font-weight:600}
.note{background:var(--warn);border:1px solid #f0d48a;border-radius:6px;padding:6px 10px;margin:6px 0;font-size:13px}
table.board{border-collapse:collapse;margin:10px 0;font-variant-numeric:tabular-nums}
table.board th,table.board td{border-bottom:1px solid var(--line);padding:5px 10px;text-align:right;white-space:nowrap}
table.board th{background:#f2f4f7;font-weight:600;cursor:help}table.board td.name,table.board th.name{text-align:left}
tr.baseline td{color:var(--mute);font-style:italic;background:#fafafa}
td.best{font-weight:700;color:#0b6b2c}td.worse{background:var(--bad)}td.better{background:var(--good)}
td.no{color:#a15c00;font-weight:600}
a{color:var(--blue)}.plots img{max-width:100%;margin:6px 12px 6px 0;border:1px solid var(--line);border-radius:6px;background:#fff}
.grid{border-collapse:separate;border-spacing:4px}.grid th{font-size:12px;font-weight:600;text-align:center;max-width:200px;overflow:hidden;text-overflow:ellipsis}
.grid td{text-align:center;vertical-align:top;font-size:11px;color:var(--mute)}
.grid td.why{text-align:left;max-width:190px;white-space:normal;color:var(--ink)}
.grid img{image-rendering:pixelated;border-radius:3px;display:block;margin:0 auto 2px}
.missing{display:inline-block;background:#eee;color:#999;border-radius:3px}
.prov{display:none;position:fixed;inset:6% 8%;background:#fff;border:1px solid #98a2b3;border-radius:10px;padding:14px 18px;overflow:auto;z-index:9;box-shadow:0 10px 40px #0004}
.prov:target{display:block}.prov pre{font-size:12px;white-space:pre-wrap}.prov a.close{float:right}
ul.unscored li{margin:3px 0}.scroll{overflow-x:auto}
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _image_uri(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return _data_uri(buf.getvalue())


def _grid_html(grid: Grid, min_height: int = 192) -> str:
    heights = [c.image.shape[0] for r in grid.rows for c in r.cells if c.image is not None]
    native = max(heights) if heights else min_height
    scale = max(1, math.ceil(min_height / native))  # small outputs are shown enlarged (pixelated, not smoothed)
    out = ["<table class='grid'><tr><th></th>" + "".join(f"<th title='{_h(c)}'>{_h(c)}</th>" for c in grid.columns) + "</tr>"]
    cache: dict[int, str] = {}
    for row in grid.rows:
        out.append(f"<tr><td class='why'><b>{_h(row.why)}</b><br>{_h(row.pair_id)}</td>")
        for cell in row.cells:
            if cell.image is None:
                h = native * scale
                out.append(f"<td><span class='missing' style='width:{h * 3 // 4}px;height:{h}px'>n/a</span>{_h(cell.caption)}</td>")
                continue
            key = id(cell.image)
            uri = cache.setdefault(key, _image_uri(cell.image))
            h, w = cell.image.shape[:2]
            out.append(f"<td><img src='{uri}' width='{w * scale}' height='{h * scale}' alt='{_h(cell.caption)}'>{_h(cell.caption)}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _run_table(group: Group, gi: int, sort: str | None, prov_ids: dict[Path, str]) -> str:
    metrics = group.metric_names()
    key = sort if sort in metrics else (metrics[0] if metrics else None)
    head = ["<tr><th class='name'>model</th><th>images</th>"]
    for m in metrics:
        higher, desc, _ = group.direction(m)
        head.append(f"<th title='{_h(desc)}'>{_h(m.upper())}{_arrow(higher)}</th>")
    head.append("<th title='generate() on inputs already on the device'>FPS model only ↑</th>"
                "<th title='loader, copies and generate; not scoring'>FPS end to end ↑</th><th class='name'>vs paste</th>"
                "<th>comparable to published</th><th>provenance</th></tr>")
    rows = ["".join(head)]
    paste = next((r for r in group.baselines if r.model == PASTE), None)
    for run in group.sorted_runs(key):
        cls = " class='baseline'" if run.is_baseline else ""
        cells = [f"<td class='name'>{_h(run.label)}</td><td>{_h(run.summary.get('n_images', '-'))}</td>"]
        for m in metrics:
            v = run.metrics.get(m)
            classes = []
            if not run.is_baseline and _finite(v):
                if v == group.best(m):
                    classes.append("best")
                higher = group.direction(m)[0]
                pv = paste.metrics.get(m) if paste else None
                if higher is not None and _finite(pv):
                    classes.append("better" if (v > pv if higher else v < pv) else "worse")
            ci = run.metrics.get(f"{m}_ci95")
            title = f"95% interval {fmt(ci[0])} to {fmt(ci[1])}" if isinstance(ci, list) and len(ci) == 2 else ""
            cells.append(f"<td class='{' '.join(classes)}' title='{_h(title)}'>{_h(fmt(v))}</td>")
        comparable = run.comparable_to_published
        cells.append(f"<td>{_h(fmt(run.fps()))}</td><td>{_h(fmt(run.fps('end_to_end')))}</td>"
                     f"<td class='name'>{_h(_versus_text(group, run))}</td>"
                     + ("<td>yes</td>" if comparable else "<td class='no' title='untrained feature extractor'>no</td>")
                     + f"<td><a href='#{prov_ids[run.path]}'>details</a></td>")
        rows.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    return "<div class='scroll'><table class='board'>" + "".join(rows) + "</table></div>"


def _provenance_html(run: Run, anchor: str) -> str:
    s = run.summary
    keep = {k: s.get(k) for k in ("model", "kind", "created_utc", "n_images", "protocol", "extractors", "fps", "provenance", "warning")}
    p = s.get("provenance") or {}
    short = [("checkpoint", p.get("checkpoint")), ("checkpoint sha256", p.get("checkpoint_sha256")),
             ("data", p.get("dataset") or p.get("reference")), ("manifest sha256", p.get("manifest_sha256")),
             ("commit", p.get("git_commit")), ("extractor", json.dumps((s.get("extractors") or {}).get("features"), default=str)),
             ("run folder", str(run.path))]
    items = "".join(f"<li><b>{_h(k)}</b>: {_h(v if v is not None else '-')}</li>" for k, v in short)
    return (f"<div class='prov' id='{anchor}'><a class='close' href='#'>close ✕</a><h3>{_h(run.label)} · {_h(run.protocol)}</h3>"
            f"<ul>{items}</ul><pre>{_h(json.dumps(keep, indent=1, default=str))}</pre></div>")


def render(groups: list[Group], unscored: list[Run], problems: list[str], sort: str | None,
           figures: dict[str, bytes]) -> str:
    runs = [r for g in groups for r in g.runs]
    prov_ids = {r.path: f"run-{i}" for i, r in enumerate(runs)}
    n_models = len({r.model for r in runs if not r.is_baseline})
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>",
             "<title>tryon-bench leaderboard</title><style>", _CSS, "</style></head><body>",
             f"<header><h1>tryon-bench leaderboard</h1><p>{len(runs)} scored runs · {n_models} models · {len(groups)} "
             f"comparable group{'s' if len(groups) != 1 else ''} · every number read from the run records</p></header><main>"]
    if any(not g.comparable_to_published for g in groups):
        parts.append("<p class='note'>Tables marked <b>not comparable</b> were scored with an untrained (seeded) feature "
                     "extractor or LPIPS backbone: compare their rows only with each other, never with published numbers.</p>")
    if len(groups) > 1:
        parts.append("<p class='key'>Runs that differ in data, split, protocol, resolution or feature extractor are in "
                     "separate tables: their numbers cannot be compared.</p>")
    for gi, group in enumerate(groups, 1):
        d = group.key.describe()
        parts.append(f"<section class='group' id='table-{gi}'><h2>Table {gi}: {_h(d['protocol'])} protocol</h2>")
        parts.append("<p class='key'>" + " · ".join(f"{_h(k)} <b>{_h(v)}</b>" for k, v in d.items()) + "</p>")
        parts += [f"<p class='note'>{_h(n)}</p>" for n in group.notes()]
        parts.append(_run_table(group, gi, sort, prov_ids))
        parts.append("<p class='key'>Bold green: the best model on that metric. Cells shaded green / red: better / worse "
                     "than pasting the article (baseline-paste). Grey rows: baselines, scored under the same protocol.</p>")
        meanings = sorted({(r.label, r.meaning) for r in group.runs if r.meaning})
        if meanings:
            parts.append("<details><summary>what the protocol means for each row</summary><ul>"
                         + "".join(f"<li><b>{_h(a)}</b>: {_h(b)}</li>" for a, b in meanings) + "</ul></details>")
        imgs = [(figures.get(f"{gi}-{n}"), t) for n, t in (("fid_fps", "FID against FPS"), ("metrics", "per metric"), ("category", "per category"))]
        if any(p for p, _ in imgs):
            parts.append("<h3>Plots</h3><div class='plots'>" + "".join(
                f"<img src='{_data_uri(p)}' alt='{_h(t)}'>" for p, t in imgs if p) + "</div>")
        grid = build_grid(group)
        if grid is not None:
            parts.append("<h3>Samples: the same pairs for every run</h3>")
            parts += [f"<p class='key'>{_h(n)}</p>" for n in grid.notes]
            parts.append("<div class='scroll'>" + _grid_html(grid) + "</div>")
        parts.append("</section>")
    if figures.get("training"):
        parts.append(f"<section class='group'><h2>Training curves</h2><div class='plots'><img src='{_data_uri(figures['training'])}' "
                     "alt='training curves'></div></section>")
    if unscored:
        parts.append("<section class='group'><h2>Not scored</h2><ul class='unscored'>" + "".join(
            f"<li><b>{_h(r.model)}</b> ({_h(r.protocol)}): {_h(r.summary['not_scored'])}</li>" for r in unscored) + "</ul></section>")
    if problems:
        parts.append("<section class='group'><h2>Records not read</h2><ul>" + "".join(f"<li>{_h(p)}</li>" for p in problems) + "</ul></section>")
    parts += [_provenance_html(r, prov_ids[r.path]) for r in runs]
    parts.append("</main></body></html>")
    return "\n".join(parts)


def figures_for(groups: list[Group]) -> dict[str, bytes]:
    figs: dict[str, bytes] = {}
    for gi, group in enumerate(groups, 1):
        for name, fn in (("fid_fps", plots.fid_vs_fps), ("metrics", plots.per_metric), ("category", plots.per_category)):
            png = fn(group)
            if png:
                figs[f"{gi}-{name}"] = png
    curves = plots.training_curves([r for g in groups for r in g.models])
    if curves:
        figs["training"] = curves
    return figs
