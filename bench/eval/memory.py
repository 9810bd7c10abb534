"""Streaming evaluation's memory: peak RSS and images/s of `evaluate --images --reference` as the set grows.

One command: .venv/bin/python bench/eval/memory.py [--sizes 200,2000] [--large 100,400] [--unchunked 32] [--markdown docs/benchmarks/eval-memory.md]

Each run is a fresh `evaluate` process (paired protocol: FID, KID, LPIPS, SSIM, PSNR; the untrained,
BN-recalibrated extractor; an empty feature cache) on synthetic folders: generated = the reference
images brightened, so every image has a partner. Peak RSS is the child's (RUSAGE_CHILDREN of a
wrapper process per run). The target of the issue: peak RSS at 2,000 images within 1.25x of 200; at
1024x768, the larger set within 1.25x of the smaller. ``--unchunked N`` adds N images at 1024x768 scored
with ``--score-pixels 0`` (LPIPS/SSIM/PSNR on the whole batch at once, the behaviour before sub-batches).
Each row's load average (1 min) is taken when it starts and ends.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def make_folders(root: Path, n: int, size: tuple[int, int], seed: int = 0) -> tuple[Path, Path]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    ref, gen = root / "ref", root / "gen"
    ref.mkdir(parents=True)
    gen.mkdir()
    h, w = size
    for i in range(n):
        # smooth random colour fields: cheap to make, not constant (Inception features vary)
        small = rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((w, h), Image.BILINEAR)
        im.save(ref / f"{i:05d}.png")
        Image.fromarray(np.clip(np.asarray(im, np.int16) + 12, 0, 255).astype(np.uint8)).save(gen / f"{i:05d}.png")
    return gen, ref


def measure(n: int, size: tuple[int, int], batch: int, heap: str = "fixed", score_pixels: int | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        gen, ref = make_folders(Path(tmp), n, size)
        h, w = size
        code = (
            "import resource, subprocess, sys, time, json; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:]); "
            "print(json.dumps({'rc': r.returncode, 's': time.perf_counter() - t, "
            "'peak_mib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))"
        )
        cmd = [sys.executable, "-c", code, str(Path(sys.executable).parent / "evaluate"), "--images", str(gen), "--reference", str(ref),
               "--size", f"{h}x{w}", "--feature-extractor", "untrained", "--batch-size", str(batch), "--out", str(Path(tmp) / "runs")]
        if score_pixels is not None:
            cmd += ["--score-pixels", str(score_pixels)]
        # this checkout's code, not whatever the venv's editable install points at
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "TRYON_BENCH_CACHE": str(Path(tmp) / "cache"), "OMP_NUM_THREADS": "2", "PYTHONPATH": path}
        if heap == "glibc-default":  # evaluate leaves glibc's dynamic mmap threshold alone (eval.runner.limit_heap_fragmentation)
            env["TRYON_BENCH_HEAP"] = "glibc-default"
        load_start = os.getloadavg()[0]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["rc"] != 0:
            raise RuntimeError(f"evaluate failed at n={n}: {out.stderr[-500:]}")
        summary = json.loads(next((Path(tmp) / "runs").glob("*/summary.json")).read_text())
        return {"n": n, "size": f"{h}x{w}", "heap": heap, "score_chunk_images": summary["protocol"].get("score_chunk_images"),
                "peak_mib": result["peak_mib"], "s": result["s"], "images_per_s": n / result["s"],
                "load": [round(load_start, 1), round(os.getloadavg()[0], 1)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="200,2000", help="set sizes at 256x192")
    parser.add_argument("--large", default="100,400", help="set sizes at 1024x768, comma-separated (0 = skip)")
    parser.add_argument("--unchunked", type=int, default=0,
                        help="also N images at 1024x768 with --score-pixels 0 (the whole batch scored at once), measured first")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--heap-baseline", action="store_true",
                        help="also measure the first size with glibc's default (dynamic) mmap threshold, as before the fix")
    args = parser.parse_args()
    large = [int(n) for n in args.large.split(",") if int(n) > 0]
    specs = [(int(n), (256, 192)) for n in args.sizes.split(",") if int(n) > 0] + [(n, (1024, 768)) for n in large]
    if args.heap_baseline:
        specs.insert(0, (specs[0][0], specs[0][1], "glibc-default"))
    if args.unchunked:
        specs.insert(0, (args.unchunked, (1024, 768), "fixed", 0))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for n, size, *options in specs:  # each row printed as soon as it is measured (a long run cut short keeps its rows)
        rows.append(measure(n, size, args.batch_size, *options))
        print(json.dumps(rows[-1]), flush=True)

    def ratio(row: dict) -> str:  # against the first fixed-heap row of the same size scored with the default budget
        base = next((r for r in rows if r["size"] == row["size"] and r["heap"] == "fixed" and r["unchunked"] is False), None)
        return f"{row['peak_mib'] / base['peak_mib']:.2f}x" if base else "-"

    for r, (_, _, *options) in zip(rows, specs):
        r["unchunked"] = options[1:] == [0]
    lines = [
        "# Streaming evaluation: memory", "",
        f"Command: `.venv/bin/python bench/eval/memory.py --sizes {args.sizes} --large {args.large} --batch-size {args.batch_size}"
        + (f" --unchunked {args.unchunked}" if args.unchunked else "") + (" --heap-baseline" if args.heap_baseline else "")
        + (f" --markdown {args.markdown}`" if args.markdown else "`"),
        f"Date: {started} to {time.strftime('%H:%M UTC', time.gmtime())}; 2 shared CPU cores, 2 torch threads; each row a fresh "
        "`evaluate --images --reference` process (paired: FID, KID, LPIPS, SSIM, PSNR; untrained extractor; empty cache).", "",
        "| images | size | heap | images scored at once (LPIPS/SSIM/PSNR) | peak RSS MiB | vs the first default row of its size "
        "| wall s | images/s (whole command) | load (1 min) start-end |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['n']} | {r['size']} | {r['heap']} | {r['score_chunk_images']}{' (--score-pixels 0)' if r['unchunked'] else ''} "
                     f"| {r['peak_mib']:.0f} | {ratio(r)} | {r['s']:.1f} | {r['images_per_s']:.2f} "
                     f"| {r['load'][0]}-{r['load'][1]} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
