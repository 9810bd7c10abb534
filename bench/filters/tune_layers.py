"""The parsing-free layering detector's grid, on the **tuning split only** (issue 19, second round).

    .venv/bin/python bench/filters/tune_layers.py [--real PATH]

Measures every tuning-split person once (MediaPipe pose + mask, :func:`curate.filters.layers.measure_torso`;
the reporting split is dropped before anything is read), then scores :func:`curate.filters.layers.decide`
over a grid of its thresholds and prints, per combination, TP / FP on the tuning split and the shipped
point's neighbours (one grid step along each axis), so that the precision-first choice in
``Thresholds`` can be checked: docs/benchmarks/filters.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from people import REPO, people  # noqa: E402  (the same people, truth and split as the benchmark)

GRID = {
    "det_opening_min_delta_e": [10.0, 12.0, 15.0, 18.0],
    "det_opening_max_side_delta_e": [12.0, 20.0],
    "det_opening_min_row_fraction": [0.3, 0.4, 0.5, 0.6, 0.7],
    "det_sleeve_max_side_delta_e": [6.0, 8.0, 10.0, 14.0],
    "det_sleeve_min_centre_delta_e": [10.0, 15.0, 20.0],
    "det_centre_max_row_spread": [0.0, 3.0, 5.0, 8.0],
    "det_min_rows": [4, 6, 8],
}


def main() -> None:
    from curate.filters import layers
    from curate.filters.detectors import PoseDetector
    from curate.filters.pipeline import _read_rgb
    from curate.filters.thresholds import Thresholds

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, default=Path(os.environ.get("TRYON_REAL_DATA", REPO.parent / "shared" / "data" / "real")))
    args = ap.parse_args()
    th0 = Thresholds()
    df = people(args.real)
    tun = df[df["split"] == "tuning"].reset_index(drop=True)  # the reporting split is never measured here
    det = PoseDetector()
    measured = []
    for p in tun["path"]:
        rgb = _read_rgb(args.real / p, None, [])
        d = det.detect(rgb) if rgb is not None else None
        m = None if d is None else layers.measure_torso(d.rgb, d.person, d.keypoints, th0.min_keypoint_conf)
        measured.append(None if isinstance(m, str) else m)
    y = tun["layered"].to_numpy(bool)
    rows = []
    for values in itertools.product(*GRID.values()):
        th = dataclasses.replace(th0, **dict(zip(GRID, values)))
        pred = np.array([m is not None and layers.decide(m, th).verdict == "layered" for m in measured])
        rows.append({**dict(zip(GRID, values)), "tp": int((pred & y).sum()), "fp": int((pred & ~y).sum())})
    grid = pd.DataFrame(rows)
    print(f"tuning split: {len(tun)} people, {int(y.sum())} layered; {len(grid)} combinations")
    print(f"best TP at 0 FP: {grid[grid.fp == 0].tp.max()}; combinations reaching it: {int((grid[grid.fp == 0].tp == grid[grid.fp == 0].tp.max()).sum())}")
    shipped = {k: getattr(th0, k) for k in GRID}
    print("shipped point and its neighbours (TP, FP on the tuning split):")
    for k, vals in GRID.items():
        for v in vals:
            q = {**shipped, k: v}
            r = grid[(grid[list(q)] == pd.Series(q)).all(axis=1)]
            mark = " <- shipped" if v == shipped[k] else ""
            print(f"  {k} = {v}: {r[['tp', 'fp']].values.tolist()}{mark}")


if __name__ == "__main__":
    main()
