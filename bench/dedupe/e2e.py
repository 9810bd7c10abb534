"""End to end, process start to manifest written: `curate dedupe DS --on articles --workers N` on an
ingested folder of images, against imagededup's PHash (encode + find_duplicates at its default threshold)
on the same files, each in a fresh process, one after the other in one run; the load average beside them.

    PYTHONPATH=$PWD .venv/bin/python bench/dedupe/e2e.py --src bench/out/dedupe-report/n5000-s7001 --workers 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CLI = "from curate.cli import app; app()"
IMAGEDEDUP = """
import sys
from imagededup.methods import PHash
ph = PHash(verbose=False)
enc = ph.encode_images(image_dir=sys.argv[1], num_enc_workers=int(sys.argv[2]))
ph.find_duplicates(encoding_map=enc, max_distance_threshold=10, num_dist_workers=int(sys.argv[2]))
"""


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "dedupe-e2e")
    ap.add_argument("--hash", default="ours")
    args = ap.parse_args()
    images = args.out / "images"
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
    load0 = os.getloadavg()[0]
    ours = timed([sys.executable, "-c", CLI, "dedupe", str(ds), "--on", "articles", "--workers", str(args.workers), "--hash", args.hash])
    cache.unlink(missing_ok=True)
    theirs = timed([sys.executable, "-c", IMAGEDEDUP, str(images), str(args.workers)])
    print(f"{n} images, {args.workers} workers, load {load0:.1f} -> {os.getloadavg()[0]:.1f}: curate dedupe --hash {args.hash} {ours:.1f} s "
          f"({n / ours:.0f} img/s, with the report), imagededup PHash {theirs:.1f} s ({n / theirs:.0f} img/s): {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
