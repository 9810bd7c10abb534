"""`curate synth` speed and memory: the whole generator against its parts, side by side in one run.

One command: .venv/bin/python bench/synth/run.py [--pairs 2000] [--markdown docs/benchmarks/synth.md]

Each workload runs in a fresh child process (one core, so its peak RSS is its own):
* ``generate`` at 256x192 (the issue's target: 2,000 pairs well under a minute) and at 1024x768;
* drawing only (``draw_person`` + ``draw_article``, nothing encoded or written) and drawing + encoding
  (JPEG/PNG/JSON bytes in memory, nothing written), to show where the time goes.
Ratios are against the full ``generate`` of the same size measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Runs in the child: prints {"wall": s, "cpu": s, "rss_mb": MB}.
_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np
from curate import synth
mode, n, h, w, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = np.random.default_rng(0)
kinds = synth.UPPER_GARMENTS + ("dress",)
t0, c0 = time.perf_counter(), time.process_time()
if mode == "generate":
    synth.generate(Path(out), n, (h, w), seed=0)
else:
    for i in range(n):
        top = synth.random_garment(rng, kinds[i % len(kinds)])
        lower = None if top.kind == "dress" else synth.random_garment(rng, synth.LOWER_GARMENTS[i % 3])
        person, parse, pose = synth.draw_person(rng, synth.Outfit(upper=top, lower=lower), (h, w), back=i % 10 == 0)
        cloth, mask = synth.draw_article(rng, top, (h, w))
        if mode == "draw+encode":
            synth._encode(synth._Sample(person, parse, pose, cloth, mask))
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall": wall, "cpu": cpu, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(mode: str, n: int, size: tuple[int, int], tmp: Path) -> dict[str, float]:
    out = tmp / f"{mode}-{n}-{size[0]}x{size[1]}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(n), str(size[0]), str(size[1]), str(out)],
        check=True, capture_output=True, text=True, env=env, cwd=REPO,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=2000, help="pairs at 256x192 (the 1024x768 run uses a tenth)")
    ap.add_argument("--markdown", type=Path, help="also write the results page here")
    args = ap.parse_args()

    lines = [
        "| size | workload | pairs | wall s | ms / pair | CPU s | peak RSS MB | time vs full generate |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        for size, n in (((256, 192), args.pairs), ((1024, 768), max(20, args.pairs // 10))):
            full = _run("generate", n, size, Path(tmp))
            for mode in ("generate", "draw", "draw+encode"):
                r = full if mode == "generate" else _run(mode, n, size, Path(tmp))
                lines.append(
                    f"| {size[0]}x{size[1]} | {mode} | {n} | {r['wall']:.2f} | {1000 * r['wall'] / n:.2f} | "
                    f"{r['cpu']:.2f} | {r['rss_mb']:.0f} | {r['wall'] / full['wall']:.2f}x |"
                )
                print(lines[-1], flush=True)
            if size == (256, 192):
                target = 60.0 * n / 2000  # the issue: 2,000 pairs well under a minute
                lines.append(f"\n256x192 target: {target:.0f} s for {n} pairs; measured {full['wall']:.1f} s "
                             f"({target / full['wall']:.1f}x under the target).\n")
                print(lines[-1], flush=True)
                lines += ["| size | workload | pairs | wall s | ms / pair | CPU s | peak RSS MB | time vs full generate |",
                          "|---|---|---:|---:|---:|---:|---:|---:|"]

    if args.markdown:
        cmd = "`.venv/bin/python bench/synth/run.py" + (f" --pairs {args.pairs}" if args.pairs != 2000 else "") + \
              f" --markdown {args.markdown}`"
        page = [
            "# Synthetic data benchmark (`curate synth`)", "",
            f"Command: {cmd}  ",
            f"Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, "
            "shared with other engineers' jobs: absolute times are noisy; each workload is one single-threaded "
            "child process).", "",
            "`draw` = drawing only (person, parse, pose, article, mask arrays); `draw+encode` adds the JPEG/PNG/JSON "
            "bytes in memory; `generate` is the whole command (plus planning, duplicates, atomic fsync'd writes "
            "and ground_truth.csv).", "",
            *lines, "",
        ]
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(page))
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
