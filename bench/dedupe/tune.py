"""Score `curate dedupe`'s decision on a TUNING set (bench/dedupe/dataset.py, ``--variant tonal`` adds
contrast, gamma and combined edits): what thresholds are chosen on. Never point this at a reporting set.

    PYTHONPATH=$PWD .venv/bin/python bench/dedupe/tune.py --n 1500 --seed 101 --variant tonal
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import dataset  # noqa: E402
from reporting_set import FIRST_SEED  # noqa: E402
from truth import libraries, scores, truth_pairs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--variant", default="tonal")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], help="Thresholds overrides, name=value")
    args = ap.parse_args()
    if args.seed >= FIRST_SEED:
        raise SystemExit(f"seeds >= {FIRST_SEED} are reporting seeds: tune elsewhere")
    from curate.dedupe.core import find_duplicates
    from curate.dedupe.engine import hash_files
    from curate.dedupe.verify import Thresholds

    root = REPO / "bench" / "out" / "dedupe-tune" / f"n{args.n}-s{args.seed}-{args.variant or 'base'}"
    truth = pd.read_csv(dataset.build(root, args.n, REPO.parent / "shared" / "data" / "real", args.seed, args.workers, args.variant),
                        keep_default_na=False)
    files = [str(root / f) for f in truth["file"]]
    t = time.perf_counter()
    thumbs = hash_files(files, "local", args.workers)
    th = Thresholds.with_overrides(args.set)
    found = find_duplicates(thumbs, files, th, workers=args.workers)
    pairs = {(a, b) for g in found.groups(range(len(files))) for a, b in itertools.combinations(sorted(g), 2)}
    dup, traps = truth_pairs(truth)
    s = scores(pairs, dup, traps)
    print(f"{len(files)} files, {time.perf_counter() - t:.1f} s, {dataclasses.asdict(th)}")
    print(libraries())
    print(f"P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f}  traps merged {s['trap_fp']}/{s['trap_pairs']}  "
          + "  ".join(f"{k} {a}/{b}" for k, (a, b) in sorted(s["traps"].items())))
    print("  ".join(f"{k} {a}/{b}" for k, (a, b) in sorted(s["per_family"].items())))
    missed = [(files[a].rsplit('/', 1)[1], files[b].rsplit('/', 1)[1], f) for (a, b), f in dup.items() if (a, b) not in pairs]
    fps = [(files[a].rsplit('/', 1)[1], files[b].rsplit('/', 1)[1]) for (a, b) in pairs if (a, b) not in dup]
    import numpy as np

    from curate.dedupe.verify import VIEW_PAIRS, distances, tonal_alignment

    rows = {int(x): k for k, x in enumerate(found.index)}
    def dist(pairs_: list) -> dict:  # noqa: ANN001
        ok = [(rows[a], rows[b]) for a, b in pairs_ if a in rows and b in rows]
        i, j = np.array([a for a, _ in ok], np.int64), np.array([b for _, b in ok], np.int64)
        d = distances(found.views, i, j)
        views_ = np.asarray(VIEW_PAIRS)[d.view]
        d.tonal_tone, d.tonal_shift, d.tonal_local = tonal_alignment(found.views, i, j, views_[:, 0], views_[:, 1], th)
        return {f.name: getattr(d, f.name) for f in dataclasses.fields(d) if f.name != "view"}
    for label, group in (("dup", [p for p, f in dup.items()]), ("tonal", [p for p, f in dup.items() if f in ("contrast", "gamma", "brightness", "combined")]),
                         ("trap", list(traps))):
        d = dist(group)
        q = (50, 90, 95, 99) if label != "trap" else (0.5, 1, 2, 5)
        print(label, " ".join(f"{k}:" + "/".join(f"{np.percentile(v, x):.3f}" for x in q) for k, v in d.items()))
    fp_pairs = [p for p in pairs if p not in dup][:12]
    miss_pairs = [p for p in dup if p not in pairs][:12]
    for label, group in (("FP", fp_pairs), ("MISS", miss_pairs)):
        if group:
            d = dist(group)
            for k, (a, b) in enumerate(group):
                print(label, files[a].rsplit('/', 1)[1], files[b].rsplit('/', 1)[1], dup.get((a, b), traps.get((a, b), "")),
                      " ".join(f"{n}={v[k]:.3f}" for n, v in d.items()))
    print("missed:", missed[:15])
    print("false:", fps[:15])


if __name__ == "__main__":
    main()
