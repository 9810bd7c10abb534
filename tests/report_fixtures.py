"""Run records for report tests, written by the real record writer (eval.record.build_summary) from
outputs we control: each fake "model" is its ground truth plus known noise, so which pairs are its worst
and best by LPIPS is decided here, not by a network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HOSTILE_MODEL = "<script>alert('m')</script>\"&x"
HOSTILE_FILE = "<img src=x onerror=alert(1)>.png"


def write_run(root: Path, model: str, *, ds: Path | None, pairs: list[str], images: list[np.ndarray], lpips: list[float],
              protocol: str = "paired", kind: str = "model", extractor: dict[str, Any] | None = None,
              manifest: str = "m" * 64, split: str = "test", size: tuple[int, int] = (64, 48), fid: float = 10.0,
              fps: float = 100.0, names: list[str] | None = None, directions: dict[str, bool] | None = None,
              checkpoint: str | None = None) -> Path:
    from PIL import Image

    from eval.record import build_summary, write_summary

    run = root / f"{model.replace('/', '_')[:40]}-{protocol}-{len(list(root.glob('*'))) if root.exists() else 0}"
    (run / "images").mkdir(parents=True)
    names = names or [p.replace("/", "_") + ".png" for p in pairs]
    for name, image in zip(names, images):
        Image.fromarray(image).save(run / "images" / name)
    table = pd.DataFrame({"pair_id": pairs, "name": names})
    metrics: dict[str, Any] = {"fid": fid, "kid": fid / 1000, "kid_std": None}
    if protocol == "paired":
        table["lpips"] = lpips
        table["ssim"] = [1 - v for v in lpips]
        metrics |= {"lpips": float(np.mean(lpips)), "lpips_ci95": [float(np.min(lpips)), float(np.max(lpips))],
                    "ssim": float(1 - np.mean(lpips))}
    table.to_parquet(run / "per_sample.parquet", index=False)
    extractor = extractor or {"name": "fid-inception-v3-pool3-untrained", "seed": 0, "bn_calibration_sha256": "abc",
                              "comparable_to_published": False}
    summary = build_summary(
        kind=kind, model=model, metrics=metrics,
        fps={"model_only": {"batch_1": {"images_per_s": fps}}, "end_to_end": {"batch_1": {"images_per_s": fps / 2}}, "resolution": list(size)},
        protocol={"protocol": protocol, "size": list(size), "feature_extractor": "untrained", "lpips_net": "alex", "seed": 0,
                  "split": split, "meaning": "the person with their own article" if protocol == "paired" else "another article"},
        extractors={"features": extractor}, n_images=len(pairs),
        provenance={"dataset": str(ds) if ds else None, "manifest_sha256": manifest, "checkpoint": checkpoint,
                    "checkpoint_sha256": None, "label_set": "smis-8", "data_needs": {"size": list(size)}},
    )
    for metric, higher in (directions or {}).items():
        summary["metric_directions"][metric]["higher_is_better"] = higher
    write_summary(run, summary)
    return run


def ground_truth_pairs(ds: Path, n: int = 6) -> tuple[list[str], list[np.ndarray]]:
    """The first ``n`` test pairs of a curated dataset and their ground truth at 64x48 (uint8 HxWx3)."""
    from curate.loader import TryOnDataset

    data = TryOnDataset(ds, "test", size=(64, 48), label_set="smis-8", fields=("image",))
    pairs, truth = [], []
    for i in range(min(n, len(data))):
        s = data[i]
        pairs.append(s["pair_id"])
        truth.append(((s["image"].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
    return pairs, truth


def noisy(images: list[np.ndarray], amounts: list[float], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(im.astype(np.float32) + rng.normal(0, 255 * a, im.shape), 0, 255).astype(np.uint8) for im, a in zip(images, amounts)]
