"""Report `curate dedupe`'s find_duplicates and imagededup's PHash on the REPORTING set
(bench/dedupe/reporting_set.py), side by side, same files, same run, same workers. Report only: nothing
here feeds a threshold.

    PYTHONPATH=$PWD .venv/bin/python bench/dedupe/report_run.py --n 5000 --workers 2
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import reporting_set  # noqa: E402
from run import run_imagededup  # noqa: E402
from truth import libraries, scores, truth_pairs  # noqa: E402


def line(label: str, s: dict) -> str:
    fams = "  ".join(f"{k} {a}/{b}" for k, (a, b) in sorted(s["per_family"].items()))
    traps = "  ".join(f"{k} {a}/{b}" for k, (a, b) in sorted(s["traps"].items()))
    return (f"{label}: P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f} ({s['pairs']} pairs)\n"
            f"  recall by family: {fams}\n  trap pairs merged: {traps}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, help=f"another reporting seed (>= {reporting_set.FIRST_SEED}; default: the fixed seed of --n): a set no "
                    "earlier look has seen, to check that the figures of the looked-at sets are not fitted to them")
    ap.add_argument("--data", type=Path, default=REPO / "bench" / "out" / "dedupe-report")
    ap.add_argument("--hashes", nargs="+", default=["ours", "phash", "dhash"], help="candidate hashes to run")
    ap.add_argument("--no-imagededup", action="store_true", help="skip imagededup (a knob's row only)")
    ap.add_argument("--extra-radius", type=int, default=10, help="Hamming radius for imagehash's hashes (imagededup's default)")
    ap.add_argument("--set", nargs="*", default=[], help="Thresholds overrides for --hash ours, name=value (to report a knob's "
                    "setting; the defaults are chosen on the tuning sets only)")
    args = ap.parse_args()
    from curate.dedupe.core import find_duplicates, stages_line
    from curate.dedupe.engine import hash_files
    from curate.dedupe.features import Thumb

    if args.seed is not None and args.seed < reporting_set.FIRST_SEED:
        raise SystemExit(f"seeds < {reporting_set.FIRST_SEED} are tuning seeds (bench/dedupe/dataset.py): a reporting seed is "
                         f">= {reporting_set.FIRST_SEED}")
    seed = reporting_set.SEEDS.get(args.n, args.n) if args.seed is None else args.seed
    root = args.data / f"n{args.n}-s{seed}-g{reporting_set.GENERATION}"
    t = time.perf_counter()
    truth = pd.read_csv(reporting_set.build(root, args.n, REPO.parent / "shared" / "data" / "real", seed=seed, workers=args.workers),
                        keep_default_na=False)
    print(f"set: {len(truth)} files under {root} ({time.perf_counter() - t:.0f} s)", flush=True)
    print(libraries(), flush=True)
    files = [str(root / f) for f in truth["file"]]
    dup, traps = truth_pairs(truth)
    from curate.dedupe.verify import Thresholds

    print(f"{len(files)} images, {len(dup)} duplicate pairs, {len(traps)} trap pairs", flush=True)
    for kind in args.hashes:
        t = time.perf_counter()
        extra = None if kind == "ours" else kind
        thumbs = [r if isinstance(r, Thumb) else None for r in hash_files(files, "local", args.workers, extra)]
        t_hash = time.perf_counter() - t
        t = time.perf_counter()
        th = Thresholds.with_overrides(args.set) if kind == "ours" else Thresholds(radius=args.extra_radius)
        found = find_duplicates(thumbs, files, th, search_hash=kind, workers=args.workers)
        t_group = time.perf_counter() - t
        ours = {(a, b) for g in found.groups(range(len(files))) for a, b in itertools.combinations(sorted(g), 2)}
        print(f"--hash {kind} (radius {th.radius}): hashing {t_hash:.1f} s ({len(files) / t_hash:.0f} img/s), grouping {t_group:.1f} s, "
              f"{found.candidates} candidates; load {os.getloadavg()[0]:.1f}")
        print(f"  grouping stages: {stages_line(found.stages)}")
        print(line(f"curate dedupe --hash {kind}", scores(ours, dup, traps)), flush=True)
    if args.no_imagededup:
        return
    imd = run_imagededup(root, truth["file"].tolist(), args.workers)
    print(f"imagededup PHash hashing {imd['hash_s']:.1f} s ({imd['encoded'] / imd['hash_s']:.0f} img/s); load {os.getloadavg()[0]:.1f}")
    for k in (10, 0):
        print(line(f"imagededup PHash threshold {k}", scores({p for p, d in imd["by_distance"].items() if d <= k}, dup, traps)))


if __name__ == "__main__":
    main()
