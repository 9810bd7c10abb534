"""Loader benchmark: the arrays of `curate labelmaps` vs decoding and resizing JPEGs on the fly, storage vs
one-hot float32, and whether the loader feeds a `tiny` model faster than it trains.

One command: .venv/bin/python bench/loader/run.py [--pairs 64] [--markdown docs/benchmarks/loader.md]
Sources are 768x1024 JPEGs (the real VITON-HD/DressCode samples in shared/data/real, repeated, plus
synthetic people upscaled to that size); target 256x192. Side by side in one run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"


def _make_source(root: Path, pairs: int) -> Path:
    """A VITON-HD layout at 768x1024 built from real photos (tiled/repeated) and synthetic parse/pose."""
    from curate.synth import generate

    src = root / "src"
    generate(src, pairs, (1024, 768), seed=0, inject=False)
    real = sorted((REAL / "ootdiffusion" / "human").glob("*.jpg")) if REAL.is_dir() else []
    if real:  # real photo content for the person images (same size, so parse/pose stay valid in shape)
        for i, p in enumerate(sorted(src.rglob("image/*.jpg"))):
            shutil.copyfile(real[i % len(real)], p)
    return src


def on_the_fly(ds_root: Path, items: list[tuple[Path, Path, Path]], size: tuple[int, int]) -> float:
    """Samples/s of the naive loader: decode JPEG + PNG, resize, to tensors, every step."""
    h, w = size
    t = time.perf_counter()
    for person, parse, cloth in items:
        img = torch.from_numpy(np.asarray(Image.open(person).convert("RGB").resize((w, h), Image.LANCZOS))).permute(2, 0, 1)
        lab = torch.from_numpy(np.asarray(Image.open(parse).resize((w, h), Image.NEAREST)).astype(np.int64))
        art = torch.from_numpy(np.asarray(Image.open(cloth).convert("RGB").resize((w, h), Image.LANCZOS))).permute(2, 0, 1)
        _ = (img.float() / 127.5 - 1, lab, art.float() / 127.5 - 1)
    return len(items) / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    from curate.ingest import ingest
    from curate.labelmaps import arrays_dir, build_arrays
    from curate.loader import TryOnDataset
    from curate.triplets import build_triplets
    from models import create_model
    from models.registry import build_recipe

    root = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    src = _make_source(root, args.pairs)
    ds = root / "ds"
    ingest(src, ds, layout="viton-hd")
    build_triplets(ds, split=(1.0, 0.0, 0.0), seed=0)
    size = (256, 192)
    t = time.perf_counter()
    build_arrays(ds, size, None)
    t_build = time.perf_counter() - t
    full = TryOnDataset(ds, "train", size)
    # the same tensors the on-the-fly baseline makes: person, article, label ids
    data = TryOnDataset(ds, "train", size, fields=("image", "article", "labelmap"))
    items = [(p, src / p.parent.parent.name / "image-parse-v3" / (p.stem + ".png"), src / p.parent.parent.name / "cloth" / p.name)
             for p in sorted(src.rglob("image/*.jpg"))]
    fly = on_the_fly(src, items, size)
    t = time.perf_counter()
    for _ in range(3):
        for i in range(len(data)):
            data[i]
    ours = 3 * len(data) / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(len(full)):
        full[i]
    ours_full = len(full) / (time.perf_counter() - t)
    labels = np.load(arrays_dir(ds, size, None) / "train" / "humans_labelmap.npy", mmap_mode="r")
    per_map = labels[0].nbytes
    onehot = size[0] * size[1] * 46 * 4

    # the tiny model's training rate on these batches (64x48 arrays, SMIS-8)
    build_arrays(ds, (64, 48), "smis-8")
    model = create_model("spade", "tiny")
    tiny = TryOnDataset(ds, "train", (64, 48), "smis-8", fields=model.INPUTS.train)
    batch = torch.utils.data.default_collate([tiny[i] for i in range(4)])
    phases = model.training_phases(build_recipe("spade", perceptual_backbone="untrained"))
    opts = [torch.optim.Adam(p.parameters, lr=p.lr, betas=p.betas) for p in phases]
    for step in range(4):
        if step == 1:
            t = time.perf_counter()
        for p, o in zip(phases, opts):
            o.zero_grad()
            p.losses(batch)["total"].backward()
            o.step()
    train_rate = 3 * 4 / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(3):
        for i in range(len(tiny)):
            tiny[i]
    tiny_rate = 3 * len(tiny) / (time.perf_counter() - t)

    lines = [
        "# Loader benchmark", "",
        f"Command: `.venv/bin/python bench/loader/run.py --pairs {args.pairs}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 2 shared CPU cores; sources 768x1024 JPEG "
        f"({'real ootdiffusion photos repeated' if REAL.is_dir() else 'synthetic'}), {len(data)} samples.", "",
        "| measurement | value | vs | ratio | target |", "|---|---:|---:|---:|---|",
        f"| samples/s at 256x192, person + article + label ids: arrays loader vs decode+resize on the fly | {ours:.0f} | {fly:.1f} | {ours / fly:.0f}x | >= 20x |",
        f"| samples/s at 256x192, the whole batch contract (+ masks, negative, 18 pose heatmaps, body shape, head) | {ours_full:.0f} | {fly:.1f} | {ours_full / fly:.0f}x | |",
        f"| bytes per label map: uint8 [H,W,1] vs one-hot float32, 46 classes | {per_map:,} | {onehot:,} | 1/{onehot // per_map} | <= 1/100 |",
        f"| tiny (64x48 SMIS-8) loader samples/s vs spade tiny training samples/s | {tiny_rate:.0f} | {train_rate:.1f} | {tiny_rate / train_rate:.0f}x | > 1 |",
        f"| one-off cost: building the 256x192 arrays | {t_build:.1f} s | | | |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
