"""Evaluation benchmark: Frechet distance vs pytorch-fid's sqrtm route at 2048-d, end-to-end folder
scoring vs pytorch-fid + an lpips loop on the same folders and network, and the feature cache's saving.

One command: .venv/bin/python bench/eval/run.py [--images 24] [--markdown docs/benchmarks/eval.md]
Every comparison is measured side by side in this one run; the ratios are what count on a shared box.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def frechet_section(n: int, dim: int = 2048) -> list[str]:
    from pytorch_fid.fid_score import calculate_frechet_distance

    from eval.metrics import feature_statistics, frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, dim))
    b = rng.normal(size=(n, dim)) * 1.1 + 0.05
    s = (*feature_statistics(a), *feature_statistics(b))
    t = time.perf_counter()
    ours = frechet_distance(*s)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    ref = calculate_frechet_distance(*s)
    t_ref = time.perf_counter() - t
    return [f"| {n} x {dim} | {ours:.6f} | {ref:.6f} | {abs(ours - ref):.2e} | {t_ours:.2f} | {t_ref:.2f} | {t_ref / t_ours:.1f}x |"]


def folder_section(n_images: int) -> list[str]:
    import lpips
    from pytorch_fid.fid_score import calculate_activation_statistics, calculate_frechet_distance

    from curate.synth import generate
    from eval.features import load_images, lpips_network, untrained_extractor
    from eval.metrics import feature_statistics, frechet_distance
    from eval.runner import extract_features

    tmp = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    os.environ["TRYON_BENCH_CACHE"] = str(tmp / "cache")
    generate(tmp / "synth", max(40, 2 * n_images), (256, 192), seed=1, inject=False)
    people = sorted((tmp / "synth").rglob("image/*.jpg"))
    real, fake = people[:n_images], people[n_images:2 * n_images]
    extractor = untrained_extractor(load_images(real), seed=0)
    lp, _ = lpips_network("alex", untrained=True)

    # ours: decode once, features (real cached), LPIPS batched
    t = time.perf_counter()
    r, f = load_images(real), load_images(fake)
    fr, _ = extract_features(extractor, r, 8)
    ff, _ = extract_features(extractor, f, 8, use_cache=False)
    ours_fid = frechet_distance(*feature_statistics(fr), *feature_statistics(ff))
    with torch.no_grad():
        ours_lp = torch.cat([lp(x * 2 - 1, y * 2 - 1).flatten() for x, y in zip(f.split(8), r.split(8))]).mean().item()
    t_ours = time.perf_counter() - t

    # reference: pytorch-fid's statistics on the same net + its Frechet, and the lpips package one pair at a time
    t = time.perf_counter()
    m1, s1 = calculate_activation_statistics([str(p) for p in real], extractor.model, 8, 2048, "cpu", 0)
    m2, s2 = calculate_activation_statistics([str(p) for p in fake], extractor.model, 8, 2048, "cpu", 0)
    ref_fid = calculate_frechet_distance(m1, s1, m2, s2)
    vals = []
    with torch.no_grad():
        for a, b in zip(fake, real):
            vals.append(lp(lpips.im2tensor(lpips.load_image(str(a))), lpips.im2tensor(lpips.load_image(str(b)))).item())
    t_ref = time.perf_counter() - t

    # the cache on a "second model": the real set's features come from disk
    t = time.perf_counter()
    _, hit = extract_features(extractor, r, 8)
    t_cached = time.perf_counter() - t
    t = time.perf_counter()
    extract_features(extractor, r, 8, use_cache=False)
    t_uncached = time.perf_counter() - t
    return [
        f"| end to end, {n_images} vs {n_images} images (FID + LPIPS) | {len(fake) * 2 / t_ours:.1f} img/s | {len(fake) * 2 / t_ref:.1f} img/s | "
        f"{t_ref / t_ours:.2f}x | FID {ours_fid:.4f} vs {ref_fid:.4f}; LPIPS {ours_lp:.4f} vs {np.mean(vals):.4f} |",
        f"| real-set features, second model (cache hit={hit}) | {t_cached:.3f} s | {t_uncached:.2f} s uncached | "
        f"{t_uncached / max(t_cached, 1e-9):.0f}x | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    lines = ["# Evaluation benchmark", "", f"Command: `.venv/bin/python bench/eval/run.py --images {args.images}"
             + (f" --markdown {args.markdown}`" if args.markdown else "`"),
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 2 shared CPU cores (ratios measured side by side).", "",
             "## Frechet distance (ours: Cholesky + eigvalsh; pytorch-fid: scipy sqrtm)", "",
             "| features | ours | pytorch-fid | abs diff | ours s | pytorch-fid s | speed-up |", "|---|---:|---:|---:|---:|---:|---:|"]
    lines += frechet_section(3000)
    lines += ["", "## Folder scoring and the feature cache (same seeded, BN-recalibrated Inception and LPIPS nets)", "",
              "| measurement | ours | reference | ratio | values |", "|---|---:|---:|---:|---|"]
    lines += folder_section(args.images)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
