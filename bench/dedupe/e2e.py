"""End to end, process start to manifest and report written: `curate dedupe DS --on articles --workers N` on
an ingested folder of images, against imagededup's PHash (encode + find_duplicates at its default threshold)
on the same files, each in a fresh process, alternated ``--rounds`` times in one run (the ratio is taken
per round, so a change of load between rounds moves both sides); the load average beside each.

``--baseline REF`` also runs the command from another commit (``git archive REF`` into a temporary folder,
its code on PYTHONPATH), alternated with ours, and checks that both wrote the same decisions: every
thumbnail in the feature cache bit-identical (pixels, detail, boxed, aspect, sha256) and the same groups,
kept members, reasons and distances in the manifest. ``--breakdown`` times each stage of hashing in one process
(CPU seconds, which the load moves less than wall time), to show where a quiet 2-core machine's time would go.

    PYTHONPATH=$PWD .venv/bin/python bench/dedupe/e2e.py --src bench/out/dedupe-report/n5000-s7001-g3 --workers 2
    PYTHONPATH=$PWD .venv/bin/python bench/dedupe/e2e.py --src ... --baseline 5f7b63e --rounds 2 --breakdown
    PYTHONPATH=$PWD .venv/bin/python bench/dedupe/e2e.py --src ... --also=--no-fine-check   # what the finer look costs
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))  # eval.record, for the libraries line

from truth import libraries  # noqa: E402

CLI = "from curate.cli import app; app()"
IMAGEDEDUP = """
import sys
from imagededup.methods import PHash
ph = PHash(verbose=False)
enc = ph.encode_images(image_dir=sys.argv[1], num_enc_workers=int(sys.argv[2]))
ph.find_duplicates(encoding_map=enc, max_distance_threshold=10, num_dist_workers=int(sys.argv[2]))
"""
THUMB_FIELDS = ("pixels", "detail", "boxed", "aspect", "sha256", "width", "height")
DECISION_COLUMNS = ("article_id", "dup_group", "dup_keep", "dup_of", "dup_reason", "dup_distance")


def timed(cmd: list[str], code: Path = REPO) -> tuple[float, float]:
    """(wall s, CPU s of the process and every process it waited for) of one fresh process running the
    ``curate`` package under ``code``: its folder is the working directory too, because `python -c` puts
    the working directory before PYTHONPATH on sys.path."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    where = subprocess.run([sys.executable, "-c", "import curate; print(curate.__file__)"], cwd=code, env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    if not Path(where).resolve().is_relative_to(Path(code).resolve()):
        sys.exit(f"the run under {code} would import curate from {where}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=code, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def decisions(ds: Path, cache: Path) -> tuple:
    """What one run decided: the cache's thumbnails by path and the manifest's duplicate columns."""
    import pandas as pd

    from curate.manifest import Manifest

    thumbs = pd.read_parquet(cache).sort_values("path").reset_index(drop=True)
    articles = Manifest.load(ds).articles
    return thumbs[["path", *THUMB_FIELDS]], articles[list(DECISION_COLUMNS)].map(lambda x: "" if pd.isna(x) else str(x))


def same_decisions(a: tuple, b: tuple) -> str:
    """"" when two runs decided the same, else what differs."""
    (ta, ma), (tb, mb) = a, b
    if len(ta) != len(tb) or not (ta["path"] == tb["path"]).all():
        return f"thumbnails of other files ({len(ta)} vs {len(tb)})"
    for f in THUMB_FIELDS:
        differ = (ta[f] != tb[f]).sum()
        if differ:
            return f"{differ} thumbnails differ in {f}"
    for c in DECISION_COLUMNS:
        differ = (ma[c] != mb[c]).sum()
        if differ:
            return f"{differ} manifest rows differ in {c}"
    return ""


def breakdown(images: Path, workers: int) -> None:
    """CPU seconds per stage in this process, one file after another (no pool), and the floor they set."""
    import io

    import cv2
    import numpy as np
    from PIL import Image

    from curate.dedupe import features
    from curate.imageio import decode_scaled, sha256_bytes

    cv2.setNumThreads(1)
    files = sorted(images.iterdir())
    stages = dict.fromkeys(("read", "header", "decode JPEG", "decode PNG", "thumbnail_of", "sha256"), 0.0)
    counts = {"decode JPEG": 0, "decode PNG": 0}

    def cpu() -> float:
        return time.process_time()

    for f in files:
        t = cpu()
        data = f.read_bytes()
        t1 = cpu()
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
        t2 = cpu()
        factor = max((k for k in features.SCALED_DECODE_FACTORS if min(w, h) / k >= features.DECODE_MIN_SIDE), default=1)
        rgb = decode_scaled(data, factor)
        reduce = min(rgb.shape[:2]) / features.DECODE_MIN_SIDE
        if reduce >= 2:
            rgb = cv2.resize(rgb, (int(rgb.shape[1] / reduce), int(rgb.shape[0] / reduce)), interpolation=cv2.INTER_AREA)
        t3 = cpu()
        features.thumbnail_of(np.ascontiguousarray(rgb))
        t4 = cpu()
        sha256_bytes(data)
        t5 = cpu()
        kind = "decode PNG" if f.suffix == ".png" else "decode JPEG"
        stages["read"] += t1 - t
        stages["header"] += t2 - t1
        stages[kind] += t3 - t2
        counts[kind] += 1
        stages["thumbnail_of"] += t4 - t3
        stages["sha256"] += t5 - t4
    start = []
    for _ in range(3):
        start.append(timed([sys.executable, "-c", "import curate.cli"])[0])
    total = sum(stages.values())
    print(f"breakdown, CPU s over {len(files)} files in one process ({counts['decode JPEG']} JPEG, {counts['decode PNG']} PNG): "
          + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()) + f"; hashing total {total:.2f} ({total / len(files) * 1e3:.2f} ms/file)")
    floor = min(start) + total / workers
    print(f"process start + imports (best of 3): {min(start):.2f} s; floor on {workers} idle cores = start + hashing / {workers} = "
          f"{floor:.2f} s -> at most {len(files) / floor:.0f} img/s end to end before search, verification, manifest and report")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "dedupe-e2e")
    ap.add_argument("--hash", default="ours")
    ap.add_argument("--rounds", type=int, default=2, help="ours and imagededup alternated this many times")
    ap.add_argument("--baseline", help="a commit whose `curate dedupe` runs alternated with ours; decisions are compared")
    ap.add_argument("--no-imagededup", action="store_true")
    ap.add_argument("--breakdown", action="store_true", help="also the CPU seconds per hashing stage")
    ap.add_argument("--also", action="append", default=[], help="this tree's command again with these extra flags, in the "
                    "same rounds (e.g. --also=--no-fine-check: what the finer look costs)")
    args = ap.parse_args()
    args.src, args.out = args.src.resolve(), args.out.resolve()  # the baseline runs in another working directory
    images = args.out / "images" / args.src.name  # per source folder: a folder linked from another set is never reused
    if not images.is_dir():  # the images only (the truth file is not an image)
        images.mkdir(parents=True)
        for f in args.src.iterdir():
            if f.suffix in (".jpg", ".png"):
                os.link(f, images / f.name)
    n = sum(1 for _ in images.iterdir())
    ds = args.out / "ds"
    shutil.rmtree(ds, ignore_errors=True)
    subprocess.run([sys.executable, "-c", CLI, "ingest", str(images), "--out", str(ds), "--layout", "images"], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    cache = ds / "cache" / "dedupe-articles.parquet"
    dedupe = [sys.executable, "-c", CLI, "dedupe", str(ds), "--on", "articles", "--workers", str(args.workers), "--hash", args.hash]
    with tempfile.TemporaryDirectory(prefix="dedupe-e2e-baseline-") as tmp:
        old = Path(tmp)
        if args.baseline:
            archive = subprocess.run(["git", "archive", args.baseline], cwd=REPO, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        print(f"{n} images, {args.workers} workers, curate dedupe --hash {args.hash} (with the report), no feature cache", flush=True)
        print(libraries(), flush=True)
        mismatch = []
        for r in range(args.rounds):
            row = []
            runs = [("ours", REPO, dedupe)] + [(f"ours {flags}", REPO, dedupe + flags.split()) for flags in args.also]
            runs += [(f"baseline {args.baseline}", old, dedupe)] if args.baseline else []
            if r % 2:
                runs.reverse()  # who goes first alternates too
            walls = {}
            for name, code, cmd in runs:
                cache.unlink(missing_ok=True)
                load = os.getloadavg()[0]
                wall, cpu = timed(cmd, code)
                walls[name] = wall
                row.append(f"{name} {wall:.1f} s ({n / wall:.0f} img/s, CPU {cpu:.1f} s, load {load:.1f})")
                if args.baseline:
                    if name == "ours":
                        mine = decisions(ds, cache)
                    else:
                        base = decisions(ds, cache)
            row += [f"ours {flags} / ours {walls[f'ours {flags}'] / walls['ours']:.2f}x" for flags in args.also]
            if args.baseline:
                diff = same_decisions(mine, base)
                mismatch.append(diff)
                row.append(f"baseline / ours {walls[f'baseline {args.baseline}'] / walls['ours']:.2f}x, "
                           f"decisions {'identical' if not diff else 'DIFFER: ' + diff}")
            if not args.no_imagededup:
                cache.unlink(missing_ok=True)
                load = os.getloadavg()[0]
                wall, cpu = timed([sys.executable, "-c", IMAGEDEDUP, str(images), str(args.workers)])
                row.append(f"imagededup PHash {wall:.1f} s ({n / wall:.0f} img/s, CPU {cpu:.1f} s, load {load:.1f}): "
                           f"{wall / walls['ours']:.2f}x ours")
            print(f"round {r + 1}: " + "; ".join(row), flush=True)
        print(f"load at the end {os.getloadavg()[0]:.1f}")
    if args.breakdown:
        breakdown(images, args.workers)
    if any(mismatch):
        sys.exit("decisions differ from the baseline")


if __name__ == "__main__":
    main()
