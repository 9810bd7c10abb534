"""Issue 19, fourth round: a layering cue learnt from the CCP pixel annotations, on the **tuning split only**.

    .venv/bin/python bench/filters/train_layer_cue.py [--real PATH] [--cache DIR] [--write]

1. Every tuning-split person (``people(real, only="tuning")``: the reporting split is dropped before any
   image is opened) is detected once (MediaPipe pose + person mask, as the detector path does); the
   detections are cached in ``--cache``.
2. For the tuning-split ccp-layering photos, the pixel annotation (``annotations/NNNN.mat``) is resampled
   onto the cue's torso grid (:func:`curate.filters.layer_cue.torso_cells`) and each cell inside the person
   mask labelled *outer layer* (the first of the photo's ``upper_garments`` in labels.csv when it lists two
   or more) or not (the inner top, skin, anything else).
3. A tiny per-cell classifier (:class:`curate.filters.layer_cue.OuterLayerModel`: a one-hidden-layer MLP
   in numpy, seeded, or with ``--hidden 0`` a logistic regression; each person weighted equally) over the
   cell features SHIPPED_FEATURES is fitted **leave-one-person-out**:
   each tuning person's cells are scored by a model fitted without them (the 26 tuning people outside ccp
   have no annotation; they are scored by the model fitted on all 36 ccp tuning people, which never saw
   them). The person-level score is read off the predicted map (:func:`layer_cue.outer_layer_score`; the
   nine READOUTS are printed, READOUT is shipped).
4. Prints the LOO table: TP / FP of the 23 layered / 39 single tuning people at each threshold, for the cue
   alone and OR-ed with the shipped rule.

``--write`` fits the final model on all 36 ccp tuning people and writes its weights to
``curate/filters/layer_cue.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from people import REPO, people  # noqa: E402  (the same people, truth and split as the benchmark)


def detect_all(real: Path, paths: list[str], cache: Path) -> dict:
    """Per path: (rgb, person, keypoints, scale) of the detector path's MediaPipe detection, cached as npz."""
    from curate.filters.detectors import PoseDetector
    from curate.filters.pipeline import _read_rgb

    cache.mkdir(parents=True, exist_ok=True)
    out, det = {}, None
    for p in paths:
        f = cache / (p.replace("/", "__") + ".npz")
        if not f.exists():
            det = det or PoseDetector()
            rgb = _read_rgb(real / p, None, [])
            d = det.detect(rgb) if rgb is not None else None
            if d is None:
                np.savez_compressed(f, none=np.array(1))
            else:
                np.savez_compressed(f, rgb=d.rgb, person=d.person, keypoints=d.keypoints, scale=np.array(d.scale))
        z = np.load(f)
        out[p] = None if "none" in z else (z["rgb"], z["person"], z["keypoints"], float(z["scale"]))
    return out


def cell_labels(real: Path, row, cells, scale: float, scarf: bool, outer: bool = True) -> np.ndarray:
    """Per cue cell, 1 where the photo's annotation says outer layer (the first of ``upper_garments`` when it
    lists two or more; with ``scarf``, the scarf too), else 0 (the inner top, skin, anything else)."""
    import scipy.io as sio

    names = [str(x[0]) if len(x) else "" for x in sio.loadmat(real / "ccp-layering" / "label_list.mat")["label_list"][0]]
    gt = sio.loadmat(real / "ccp-layering" / "annotations" / (Path(row.path).stem + ".mat"))["groundtruth"]
    worn = [g for g in str(row.upper_garments).split(",") if g]
    target = {names.index(worn[0])} if len(worn) >= 2 and outer else set()
    if scarf:
        target.add(names.index("scarf"))
    h, w = gt.shape
    xi = np.clip(np.round(cells.x / scale).astype(np.intp), 0, w - 1)
    yi = np.clip(np.round(cells.y / scale).astype(np.intp), 0, h - 1)
    return np.isin(gt[yi, xi], list(target)).astype(np.float32)


def fit(x: np.ndarray, y: np.ndarray, wt: np.ndarray, hidden: int, l2: float, seed: int = 0):
    """Weighted logistic regression (``hidden`` 0, Newton) or a tanh MLP (Adam, full batch, seeded) on
    standardised features: (mean, std, w1, b1, w2, b2)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    wt = wt / wt.mean()
    if hidden == 0:
        a = np.c_[z, np.ones(len(z))]
        w = np.zeros(a.shape[1])
        reg = np.r_[np.full(z.shape[1], l2), 0.0]
        for _ in range(30):
            p = 1 / (1 + np.exp(-(a @ w)))
            g = a.T @ (wt * (p - y)) / len(y) + reg * w
            hs = (a * (wt * p * (1 - p))[:, None]).T @ a / len(y) + np.diag(reg)
            step = np.linalg.solve(hs, g)
            w -= step
            if np.abs(step).max() < 1e-7:
                break
        return mu, sd, None, None, w[:-1], float(w[-1])
    rng = np.random.default_rng(seed)
    f = z.shape[1]
    params = [rng.normal(0, 1 / np.sqrt(f), (f, hidden)), np.zeros(hidden), rng.normal(0, 1 / np.sqrt(hidden), hidden), np.zeros(1)]
    m = [np.zeros_like(q) for q in params]
    v = [np.zeros_like(q) for q in params]
    lr, n = 0.03, len(y)
    for it in range(1, 401):
        w1, b1, w2, b2 = params
        hdn = np.tanh(z @ w1 + b1)
        p = 1 / (1 + np.exp(-(hdn @ w2 + b2[0])))
        d = wt * (p - y) / n
        gw2, gb2 = hdn.T @ d + l2 * w2, np.array([d.sum()])
        dh = np.outer(d, w2) * (1 - hdn ** 2)
        gw1, gb1 = z.T @ dh + l2 * w1, dh.sum(0)
        for k, g in enumerate((gw1, gb1, gw2, gb2)):
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            params[k] = params[k] - lr * (m[k] / (1 - 0.9 ** it)) / (np.sqrt(v[k] / (1 - 0.999 ** it)) + 1e-8)
    w1, b1, w2, b2 = params
    return mu, sd, w1, b1, w2, float(b2[0])


def as_model(params, features, readout):
    from curate.filters.layer_cue import OuterLayerModel

    mu, sd, w1, b1, w2, b2 = params
    return OuterLayerModel(tuple(features), mu, sd, w1, b1, w2, b2, readout)


def table(score: np.ndarray, y: np.ndarray, rule: np.ndarray, thresholds) -> list[tuple[float, int, int, int, int]]:
    """(threshold, cue TP, cue FP, cue-or-rule TP, cue-or-rule FP) at each threshold."""
    out = []
    for t in thresholds:
        c = score >= t
        out.append((float(t), int((c & y).sum()), int((c & ~y).sum()), int(((c | rule) & y).sum()), int(((c | rule) & ~y).sum())))
    return out


# The shipped configuration, chosen leave-one-out on the tuning split (docs/benchmarks/filters.md, fourth round):
# the cell features (a backward elimination from all of layer_cue.FEATURES by the person-level LOO AUC with a
# logistic regression, then the neighbours' spread added), an MLP with HIDDEN tanh units, L2, SEED, and the
# person-level readout of the P(outer) map.
SHIPPED_FEATURES = ("|a|", "dE_row_centre", "skin", "depth_in", "L", "dE_row_centre_vs_side", "dE_vertical",
                    "step_to_centre", "differs_to_centre", "local_spread")
HIDDEN, L2, SEED = 8, 1e-4, 0
READOUT = {"s": [0.15, 0.9], "flank": [0.4, 0.9], "centre_weight": 1.0}
READOUTS = [{"s": [0.15, 0.9], "flank": list(f), "centre_weight": cw} for f in ((0.3, 1.1), (0.4, 0.9), (0.5, 1.3))
            for cw in (0.5, 1.0, 2.0)]


def main() -> None:
    from curate.filters import layer_cue, layers
    from curate.filters.thresholds import Thresholds

    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, default=Path(os.environ.get("TRYON_REAL_DATA", REPO.parent / "shared" / "data" / "real")))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/tryon-layer-cue-cache"))
    ap.add_argument("--hidden", type=int, default=HIDDEN, help="0: logistic regression")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--write", action="store_true", help=f"write the model fitted on every ccp tuning person to {layer_cue.WEIGHTS}")
    args = ap.parse_args()
    th = Thresholds()
    tun = people(args.real, only="tuning")  # the reporting split is dropped before any image is opened
    ccp_labels = pd.read_csv(args.real / "ccp-layering" / "labels.csv", dtype=str, keep_default_na=False)
    ccp_labels["path"] = "ccp-layering/" + ccp_labels["file"]
    tun = tun.merge(ccp_labels[["path", "upper_garments"]], on="path", how="left")
    t = time.perf_counter()
    dets = detect_all(args.real, list(tun["path"]), args.cache)
    y = tun["layered"].to_numpy(bool)
    print(f"tuning split: {len(tun)} people, {int(y.sum())} layered, {int((~y).sum())} not; "
          f"{int((tun.set == 'ccp-layering').sum())} of them ccp-layering (annotated); detected in {time.perf_counter() - t:.1f} s")
    off = dataclasses.replace(th, det_outer_layer_min_score=float("inf"))  # the shipped rule without this cue
    rule = np.array([d is not None and layers.open_layer_from_pixels(*d[:3], off).verdict == "layered" for d in dets.values()])
    print(f"shipped rule (colour + opening edges): TP {int((rule & y).sum())}, FP {int((rule & ~y).sum())}")
    cells = [None if d is None else layer_cue.torso_cells(*d[:3], th.min_keypoint_conf) for d in dets.values()]
    idx = [layer_cue.FEATURES.index(f) for f in SHIPPED_FEATURES]
    x, lab, wt = {}, {}, {}
    for i, r in enumerate(tun.itertuples(index=False)):
        if r.set == "ccp-layering" and cells[i] is not None:
            c = cells[i]
            x[i] = c.features[c.inside][:, idx]
            lab[i] = cell_labels(args.real, r, c, dets[r.path][3], scarf=False)[c.inside]
            wt[i] = np.full(len(x[i]), 1.0 / len(x[i]))  # each person weighs the same

    def fitted_without(excl: int | None):
        ids = [i for i in x if i != excl]
        prm = fit(*(np.concatenate([d[i] for i in ids]) for d in (x, lab, wt)), args.hidden, L2, args.seed)
        return as_model(prm, SHIPPED_FEATURES, READOUT)

    t = time.perf_counter()
    full = fitted_without(None)
    probs = [None if c is None else (fitted_without(i) if i in x else full).predict(c) for i, c in enumerate(cells)]
    print(f"{len(x) + 1} fits ({len(x)} leave-one-out + the full one) in {time.perf_counter() - t:.0f} s; "
          f"{int(sum(len(v) for v in x.values()))} annotated cells, {float(np.mean(np.concatenate(list(lab.values())))):.2f} outer")
    for ro in READOUTS:
        sc = np.array([-1.0 if p is None else layer_cue.outer_layer_score(p, cells[i], ro)["outer_score"] for i, p in enumerate(probs)])
        tb = table(sc, y, rule, np.unique(sc))
        print(f"readout {ro}: best at 0 FP: cue alone TP {max(r[1] for r in tb if r[2] == 0)}, "
              f"cue or rule TP {max(r[3] for r in tb if r[4] == 0)}{'  <- shipped' if ro == READOUT else ''}")
    sc = np.array([-1.0 if p is None else layer_cue.outer_layer_score(p, cells[i], READOUT)["outer_score"] for i, p in enumerate(probs)])
    print(f"\nleave-one-out table, readout {READOUT} (TP of {int(y.sum())} layered / FP of {int((~y).sum())} not):")
    print("| threshold | cue alone TP | FP | cue or shipped rule TP | FP |\n|---|---|---|---|---|")
    for r in table(sc, y, rule, np.round(np.arange(0.14, 0.305, 0.01), 2)):
        print(f"| {r[0]:.2f} | {r[1]} | {r[2]} | {r[3]} | {r[4]} |")
    order = np.argsort(-sc)
    print("\nranked (L layered, * found by the rule): " + " ".join(
        f"{'L' if y[j] else '.'}{'*' if rule[j] else ''}{Path(tun.path[j]).stem[:8]}:{sc[j]:.3f}" for j in order[:24]))
    out = tun[["path", "layered"]].assign(rule=rule, loo_outer_score=sc)
    out.to_csv(args.cache / "loo_scores.csv", index=False)
    print(f"wrote {args.cache / 'loo_scores.csv'}")
    if args.write:
        layer_cue.WEIGHTS.write_text(json.dumps(full.to_json(), indent=1) + "\n")
        print(f"wrote {layer_cue.WEIGHTS}")


if __name__ == "__main__":
    main()
