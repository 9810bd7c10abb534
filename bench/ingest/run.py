"""Ingest throughput on a VITON-HD-layout source at the real 768x1024 resolution.

Run (one command, from the repo root):

    .venv/bin/python bench/ingest/run.py --n 300

The source is built in a temporary folder from the shared real samples (768x1024 person and cloth
JPEGs, their real palette parsing maps and BODY_25 poses), linked N times under fresh ids, so every
file is a real-world file. Measured side by side in one run, each on the same files:

* ``floor``  : the least any correct ingest must do: read every file's bytes, sha256 them, fully decode
               each image/label map, ``json.load`` each pose (one process).
* ``lazy``   : ``Image.open`` only (header parse), what a naive ingest that "checks" images does; it
               would miss truncated files, shown for the cost of decoding.
* ``ingest`` : ``curate.ingest.ingest(..., workers=1)`` and ``workers=2``, the whole stage: decode, label
               map ids and size checks, pose conversion, pair resolution, parquet writes, unused-file walk.

Ratios are printed relative to ``floor``. Timings are wall-clock on whatever machine runs it: on the
shared 2-core box absolute numbers are noisy; compare the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def build_source(real: Path, dst: Path, n: int) -> int:
    """A VITON-HD test split of ``n`` persons linked to real files; returns the number of files."""
    from PIL import Image

    humans = sorted((real / "ootdiffusion/human").glob("*_00.jpg")) + sorted((real / "idm-vton/human").glob("*.jpg"))
    cloths = [p for p in sorted((real / "idm-vton/article").glob("*.jpg")) if Image.open(p).size == (768, 1024)]
    parses = sorted((real / "mgd-vitonhd/parse").glob("*.png"))
    poses = sorted((real / "mgd-vitonhd/pose").glob("*.json"))
    split = dst / "test"
    for sub in ("image", "cloth", "cloth-mask", "image-parse-v3", "openpose_json"):
        (split / sub).mkdir(parents=True)
    mask = dst / "_mask.jpg"  # one white 768x1024 cloth mask shared by every cloth
    Image.new("L", (768, 1024), 255).save(mask)
    lines = []
    it = zip(range(n), itertools.cycle(humans), itertools.cycle(cloths), itertools.cycle(parses), itertools.cycle(poses))
    for i, human, cloth, parse, pose in it:
        stem = f"{i:05d}_00"
        os.symlink(human, split / "image" / f"{stem}.jpg")
        os.symlink(cloth, split / "cloth" / f"{stem}.jpg")
        os.symlink(mask, split / "cloth-mask" / f"{stem}.jpg")
        os.symlink(parse, split / "image-parse-v3" / f"{stem}.png")
        os.symlink(pose, split / "openpose_json" / f"{stem}_keypoints.json")
        lines.append(f"{stem}.jpg {stem}.jpg")
    (dst / "test_pairs.txt").write_text("\n".join(lines) + "\n")
    return 5 * n


def all_files(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*") if p.is_file() and p.name != "_mask.jpg" and p.suffix != ".txt")


def floor(files: list[Path]) -> None:
    import io

    from PIL import Image

    for f in files:
        data = f.read_bytes()
        hashlib.sha256(data).hexdigest()
        if f.suffix == ".json":
            json.loads(data)
        else:
            Image.open(io.BytesIO(data)).load()


def lazy(files: list[Path]) -> None:
    from PIL import Image

    for f in files:
        if f.suffix != ".json":
            Image.open(f).size


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="persons (each with cloth, mask, parse, pose)")
    parser.add_argument("--real", type=Path, default=REPO.parent / "shared/data/real")
    args = parser.parse_args()

    from curate.ingest import ingest

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        n_files = build_source(args.real, src, args.n)
        files = all_files(src)
        floor(files[:20])  # warm the page cache and imports so the first method is not penalised
        results = {
            "floor (read+sha256+decode, 1 proc)": timed(lambda: floor(files)),
            "lazy Image.open (header only)": timed(lambda: lazy(files)),
            "ingest workers=1": timed(lambda: ingest(src, Path(tmp) / "ds1", workers=1)),
            "ingest workers=2": timed(lambda: ingest(src, Path(tmp) / "ds2", workers=2)),
        }
        m = ingest(src, Path(tmp) / "ds3")
        assert (m.manifest.pairs["status"] == "ok").all(), "benchmark source should ingest cleanly"

    base = results["floor (read+sha256+decode, 1 proc)"]
    images = 2 * args.n  # person + cloth images (masks, parses, poses are extra files on top)
    print(f"source: {args.n} persons at 768x1024 = {n_files} files ({images} person/cloth images)")
    print(f"{'method':40s} {'seconds':>8s} {'x floor':>8s} {'images/min':>11s}")
    for name, secs in results.items():
        print(f"{name:40s} {secs:8.2f} {secs / base:8.2f} {images / secs * 60:11.0f}")
    print(f"cpu cores visible: {os.cpu_count()}  (shared machine: absolute times are noisy, compare ratios)")


if __name__ == "__main__":
    main()
