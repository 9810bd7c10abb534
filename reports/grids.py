"""Sample grids on the *same* pairs for every run of a group: person | article | each run's output |
ground truth, the pairs chosen as the worst and best of each model by its recorded per-image LPIPS.

The outputs are the PNGs the run wrote (``images/<name>`` as ``per_sample.parquet`` names them); the
person, article and ground truth are read from the arrays the record says were scored (its dataset,
split, resolution and label set), so every cell shows exactly what was compared.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.records import Group, Run


@dataclasses.dataclass
class Cell:
    image: np.ndarray | None  # HxWx3 uint8, None when unavailable
    caption: str  # plain text (escaped when rendered)


@dataclasses.dataclass
class GridRow:
    pair_id: str
    why: str  # "worst for X", "best for X", "pair N"
    cells: list[Cell]


@dataclasses.dataclass
class Grid:
    columns: list[str]
    rows: list[GridRow]
    notes: list[str]


def _output_path(run: Run, name: Any) -> Path | None:
    """The run's image ``name``, only if it lies inside the run's images folder (a record is data, and a
    name like ``../../x`` must not read elsewhere)."""
    if not isinstance(name, str) or not name:
        return None
    folder = (run.path / "images").resolve()
    path = (folder / name).resolve()
    return path if path.parent == folder and path.is_file() else None


def _read_png(path: Path | None) -> np.ndarray | None:
    from PIL import Image, UnidentifiedImageError

    if path is None:
        return None
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError):
        return None


def _to_uint8(t: Any) -> np.ndarray:
    return ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


class _Inputs:
    """The person / article / negative of a group's pairs, from the dataset arrays the records name."""

    def __init__(self, run: Run) -> None:
        self.dataset: Any = None
        self.problem: str | None = None
        prov = run.summary.get("provenance") or {}
        ds, size = prov.get("dataset"), run.resolution()
        split = (run.summary.get("protocol") or {}).get("split", "test")
        if not ds or size is None:
            self.problem = "the records name no dataset: inputs and ground truth are not shown"
            return
        from models.runs import RunError, open_dataset

        label_set = prov.get("label_set")
        try:
            self.dataset = open_dataset(Path(ds), split, size, label_set, uses_labelmap=label_set is not None,
                                        fields=("image", "article", "negative"))
        except (RunError, OSError, ValueError, KeyError) as exc:
            self.problem = f"inputs not shown: the dataset the records name cannot be read ({exc})"
            return
        self.index = {pid: i for i, pid in enumerate(self.dataset.pairs["pair_id"])}

    def get(self, pair_id: str) -> dict[str, np.ndarray] | None:
        if self.dataset is None or pair_id not in self.index:
            return None
        sample = self.dataset[self.index[pair_id]]
        return {k: _to_uint8(sample[k]) for k in ("image", "article", "negative")}


def _per_sample(runs: list[Run]) -> dict[str, pd.DataFrame]:
    out = {}
    for run in runs:
        table = run.per_sample()
        if table is not None and "pair_id" in table and "name" in table:
            out[run.path.name] = table.drop_duplicates("pair_id").set_index("pair_id")
    return out


def build_grid(group: Group, per_model: int = 2, fallback_pairs: int = 6) -> Grid | None:
    """The group's grid, or None when its runs share no pair with a written image."""
    runs = group.sorted_runs(None)
    tables = _per_sample(runs)
    if not tables:
        return None
    common = set.intersection(*(set(t.index) for t in tables.values()))
    shown = [r for r in runs if r.path.name in tables]
    if not common:
        return None
    paired = group.key.protocol == "paired"
    chosen: list[tuple[str, str]] = []  # (pair_id, why)
    if paired and all("lpips" in tables[r.path.name] for r in shown):
        for run in [r for r in shown if not r.is_baseline]:
            scores = tables[run.path.name].loc[sorted(common), "lpips"].astype(float).sort_values(kind="stable")
            scores = scores[np.isfinite(scores.to_numpy())]
            for pid in list(scores.index[::-1][:per_model]):
                chosen.append((pid, f"worst for {run.label} (LPIPS {scores[pid]:.3f})"))
            for pid in list(scores.index[:per_model]):
                chosen.append((pid, f"best for {run.label} (LPIPS {scores[pid]:.3f})"))
    if not chosen:
        chosen = [(pid, "same pair for every run") for pid in sorted(common)[:fallback_pairs]]
    merged: dict[str, list[str]] = {}  # a pair chosen for several reasons is shown once, with all of them
    for pid, why in chosen:
        merged.setdefault(pid, []).append(why)
    inputs = _Inputs(shown[0])
    notes = [inputs.problem] if inputs.problem else []
    article_key, article_name = ("article", "article") if paired else ("negative", "other article (negative)")
    columns = ["person", article_name, *[r.label for r in shown]] + (["ground truth"] if paired else [])
    if not paired:
        notes.append("unpaired protocol: the person wears another article, so there is no ground truth to show")
    rows = []
    for pid, reasons in merged.items():
        why = "; ".join(reasons)
        src = inputs.get(pid)
        cells = [Cell(src["image"] if src else None, "person"), Cell(src[article_key] if src else None, article_name)]
        for run in shown:
            row = tables[run.path.name].loc[pid]
            score = row.get("lpips") if paired else None
            caption = f"LPIPS {float(score):.3f}" if score is not None and math.isfinite(float(score)) else run.label
            cells.append(Cell(_read_png(_output_path(run, row.get("name"))), caption))
        if paired:
            cells.append(Cell(src["image"] if src else None, "ground truth"))
        rows.append(GridRow(pid, why, cells))
    return Grid(columns, rows, notes)
