"""The parsing-free layering detector's grids, on the **tuning split only** (issue 19, rounds two and three).

    .venv/bin/python bench/filters/tune_layers.py [--real PATH]

Detects every tuning-split person once (MediaPipe pose + mask; the reporting split is dropped before
anything is read), measures their torsos with :func:`curate.filters.layers.measure_torso`, then scores
:func:`curate.filters.layers.decide` over

* round two's grid of the colour rule's thresholds, with the opening-edge cue switched off (its shipped
  point must still reach what round two chose it for);
* round three's grid of the opening-edge cue (``EDGE_CAP``, which needs a re-measurement, and the three
  ``det_edge_*`` thresholds), with the colour rule at its shipped thresholds;
* a tiny learnt alternative: an L2 logistic regression over the same measurements (colour and edge
  numbers), scored leave-one-out on the tuning split (each person predicted by a model fitted on the
  other 61), to see whether learning the combination beats the hand-made rule;

and prints, per grid, the best TP at 0 FP, how many combinations reach it, and the shipped point with its
neighbours (one grid step along each axis), so that the precision-first choice in ``Thresholds`` can be
checked: docs/benchmarks/filters.md.
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
EDGE_CAPS = [2.5, 3.0, 3.5]  # layers.EDGE_CAP: a measurement constant, so each value is measured anew
EDGE_GRID = {
    "det_edge_min_strength": [0.75, 1.0, 1.25, 1.5, 1.75],
    "det_edge_min_persistence": [0.0, 0.15, 0.3],
    "det_edge_min_offset": [0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55],
}
OFF = float("inf")  # det_edge_min_strength that switches the edge cue off


def score_grid(measured: list, y: np.ndarray, th0, grid: dict, fixed: dict | None = None) -> pd.DataFrame:
    from curate.filters import layers

    rows = []
    for values in itertools.product(*grid.values()):
        th = dataclasses.replace(th0, **(fixed or {}), **dict(zip(grid, values)))
        pred = np.array([m is not None and layers.decide(m, th).verdict == "layered" for m in measured])
        rows.append({**dict(zip(grid, values)), "tp": int((pred & y).sum()), "fp": int((pred & ~y).sum())})
    return pd.DataFrame(rows)


def report(title: str, grid: pd.DataFrame, axes: dict, shipped: dict) -> None:
    zero = grid[grid.fp == 0]
    print(f"\n{title}: {len(grid)} combinations; best TP at 0 FP: {zero.tp.max()}; "
          f"combinations reaching it: {int((zero.tp == zero.tp.max()).sum())}")
    print("shipped point and its neighbours (TP, FP on the tuning split):")
    for k, vals in axes.items():
        for v in vals:
            q = {**shipped, k: v}
            r = grid[(grid[list(q)] == pd.Series(q)).all(axis=1)]
            print(f"  {k} = {v}: {r[['tp', 'fp']].values.tolist()}{' <- shipped' if v == shipped[k] else ''}")


def features(m, th) -> list[float]:
    """The numbers the logistic regression sees for one measured torso (0 where a part was not measured)."""
    from curate.filters import layers

    v = layers.decide(m, th).scores
    sleeve_centre = m.sleeve[1] if m.sleeve is not None else 0.0
    return [float(np.median(np.minimum(m.centre_vs_left, m.centre_vs_right))), v["opening_row_fraction"],
            sleeve_centre, m.centre_row_spread, float(np.median(m.left_vs_right)),
            v.get("edge_pair_strength", 0.0), v.get("edge_pair_persistence", 0.0)]


def logistic_loo(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Leave-one-out probabilities of an L2-regularised logistic regression (Newton's method on standardised
    features; deterministic)."""
    out = np.zeros(len(y))
    for i in range(len(y)):
        tr = np.arange(len(y)) != i
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-9
        a = np.c_[np.ones(tr.sum()), (x[tr] - mu) / sd]
        w = np.zeros(a.shape[1])
        reg = np.full(a.shape[1], l2)
        reg[0] = 0.0  # the intercept is not shrunk
        for _ in range(50):
            p = 1 / (1 + np.exp(-a @ w))
            grad = a.T @ (p - y[tr]) + reg * w
            hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(reg)
            w -= np.linalg.solve(hess, grad)
        out[i] = 1 / (1 + np.exp(-(np.r_[1.0, (x[i] - mu) / sd] @ w)))
    return out


def main() -> None:
    from curate.filters import layers
    from curate.filters.detectors import PoseDetector
    from curate.filters.pipeline import _read_rgb
    from curate.filters.thresholds import Thresholds

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, default=Path(os.environ.get("TRYON_REAL_DATA", REPO.parent / "shared" / "data" / "real")))
    args = ap.parse_args()
    th0 = Thresholds()
    tun = people(args.real, only="tuning")  # the reporting split is dropped before any image is opened
    det = PoseDetector()
    detections = []
    for p in tun["path"]:
        rgb = _read_rgb(args.real / p, None, [])
        detections.append(det.detect(rgb) if rgb is not None else None)

    def measure() -> list:
        out = []
        for d in detections:
            m = None if d is None else layers.measure_torso(d.rgb, d.person, d.keypoints, th0.min_keypoint_conf)
            out.append(None if isinstance(m, str) else m)
        return out

    y = tun["layered"].to_numpy(bool)
    print(f"tuning split: {len(tun)} people, {int(y.sum())} layered")
    measured = measure()
    report("round two, colour rule (edge cue off)", score_grid(measured, y, th0, GRID, {"det_edge_min_strength": OFF}),
           GRID, {k: getattr(th0, k) for k in GRID})

    shipped_cap = layers.EDGE_CAP
    grids = []
    try:
        for cap in EDGE_CAPS:
            layers.EDGE_CAP = cap
            grids.append(score_grid(measure(), y, th0, EDGE_GRID).assign(edge_cap=cap))
    finally:
        layers.EDGE_CAP = shipped_cap
    edge_axes = {"edge_cap": EDGE_CAPS, **EDGE_GRID}
    report("round three, opening-edge cue (colour rule at its shipped thresholds)", pd.concat(grids, ignore_index=True),
           edge_axes, {"edge_cap": shipped_cap, **{k: getattr(th0, k) for k in EDGE_GRID}})

    ok = [i for i, m in enumerate(measured) if m is not None]
    x = np.array([features(measured[i], th0) for i in ok])
    yy = y[ok].astype(float)
    rule = np.array([layers.decide(measured[i], th0).verdict == "layered" for i in ok])
    print(f"\nlearnt alternative, leave-one-out on the {len(ok)} measured tuning people "
          f"(the shipped rule there: TP {int((rule & (yy == 1)).sum())}, FP {int((rule & (yy == 0)).sum())}):")
    for l2 in (0.3, 1.0, 3.0):
        p = logistic_loo(x, yy, l2)
        cells = []
        for t in (0.5, 0.6, 0.7, 0.8, 0.9):
            pred = p >= t
            cells.append(f"p>={t}: TP {int((pred & (yy == 1)).sum())} FP {int((pred & (yy == 0)).sum())}")
        print(f"  L2 {l2}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
