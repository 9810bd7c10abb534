"""The evaluation runner: generate (or read) images, score them under one protocol, write a run record.

A run directory holds ``images/`` (lossless PNG), ``per_sample.parquet`` (LPIPS, SSIM, PSNR per image
in the paired protocol) and ``summary.json`` (see :mod:`eval.record`). Real-set features are cached under
``~/.cache/tryon-bench/features`` (or ``$TRYON_BENCH_CACHE``) keyed by the images' contents, the
extractor identity and the resize protocol, so scoring a second model on the same test set reuses them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from eval import metrics as M
from eval.features import FeatureExtractor, inception_extractor, lpips_network, untrained_extractor
from eval.record import build_summary, write_summary


@dataclasses.dataclass(frozen=True)
class Protocol:
    protocol: str = "paired"  # paired | unpaired
    size: tuple[int, int] = (256, 192)
    feature_extractor: str = "untrained"  # inception | untrained
    inception_weights: str | None = None
    lpips_net: str = "alex"
    lpips_backbone: str = "pretrained"  # pretrained | untrained
    lpips_weights: str | None = None
    ssim_greyscale: bool = False
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch_size: int = 8
    fps_batches: int = 5
    seed: int = 0


def cache_dir() -> Path:
    return Path(os.environ.get("TRYON_BENCH_CACHE", Path.home() / ".cache" / "tryon-bench")) / "features"


def _images_key(images: Tensor) -> str:
    return hashlib.sha256(images.numpy().tobytes()).hexdigest()[:24]


def extract_features(extractor: FeatureExtractor, images: Tensor, batch_size: int, use_cache: bool = True) -> tuple[np.ndarray, bool]:
    """[N, D] features of images in [0,1]; returns (features, cache_hit)."""
    path = cache_dir() / f"{extractor.key}-{_images_key(images)}.npy"
    if use_cache and path.is_file():
        return np.load(path), True
    feats = torch.cat([extractor(b) for b in images.split(batch_size)]).numpy()
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, feats)
        tmp.replace(path)
    return feats, False


def make_extractor(proto: Protocol, calibration: Tensor, device: torch.device) -> FeatureExtractor:
    if proto.feature_extractor == "inception":
        return inception_extractor(proto.inception_weights, device)
    if proto.feature_extractor == "untrained":
        return untrained_extractor(calibration[:256], seed=proto.seed, device=device)
    raise ValueError(f"--feature-extractor {proto.feature_extractor!r}; valid: inception, untrained")


def score(fake: Tensor, real: Tensor, proto: Protocol, device: torch.device, paired: bool, names: list[str]) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
    """Metrics of ``fake`` against ``real`` (both [N,3,H,W] in [0,1]). Returns (metrics, per-sample, extractors)."""
    extractor = make_extractor(proto, real, device)
    real_feats, hit = extract_features(extractor, real, proto.batch_size)
    fake_feats, _ = extract_features(extractor, fake, proto.batch_size, use_cache=False)
    out: dict[str, Any] = {}
    out["fid"] = M.frechet_distance(*M.feature_statistics(real_feats), *M.feature_statistics(fake_feats))
    kid_mean, kid_std = M.kernel_inception_distance(real_feats, fake_feats, proto.kid_subsets, proto.kid_subset_size, proto.seed)
    out["kid"], out["kid_std"] = kid_mean, kid_std
    extractors: dict[str, Any] = {"features": extractor.identity, "real_features_cache_hit": hit}
    per_sample = pd.DataFrame({"name": names})
    if paired:
        if fake.shape != real.shape:
            raise ValueError(f"paired protocol needs images of the same size: {tuple(fake.shape)} vs {tuple(real.shape)}")
        net, lp_identity = lpips_network(proto.lpips_net, proto.lpips_weights, untrained=proto.lpips_backbone == "untrained", seed=proto.seed)
        net = net.to(device)
        with torch.no_grad():
            lp = torch.cat([net(f.to(device) * 2 - 1, r.to(device) * 2 - 1).flatten().cpu()
                            for f, r in zip(fake.split(proto.batch_size), real.split(proto.batch_size))])
        per_sample["lpips"] = lp.numpy()
        per_sample["ssim"] = M.ssim(fake, real, greyscale=proto.ssim_greyscale).numpy()
        per_sample["psnr"] = M.psnr(fake, real).numpy()
        extractors["lpips"] = lp_identity
        for col in ("lpips", "ssim", "psnr"):
            values = per_sample[col].to_numpy(np.float64)
            # 95 % normal-approximation interval of the mean
            half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
            out[col] = float(values.mean())
            out[f"{col}_ci95"] = [float(values.mean() - half), float(values.mean() + half)]
    return out, per_sample, extractors


def _safe_name(pair_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", pair_id)


def _save_png(path: Path, image: Tensor) -> None:
    from PIL import Image

    arr = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    path.write_bytes(buf.getvalue())


def measure_fps(fn, batch: dict[str, Any], sizes: tuple[int, ...], n_batches: int, device: torch.device) -> dict[str, Any]:
    """Median images/s over ``n_batches`` timed calls after 2 warm-up calls, per batch size."""
    out: dict[str, Any] = {"device": str(device), "threads": torch.get_num_threads(), "timed_batches": n_batches, "warmup": 2}
    for b in sizes:
        sub = {k: (v[:b] if isinstance(v, Tensor) else v[:b]) for k, v in batch.items()}
        times = []
        for i in range(2 + n_batches):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            with torch.no_grad():
                fn(sub)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= 2:
                times.append(time.perf_counter() - t)
        n = len(next(v for v in sub.values() if isinstance(v, Tensor)))
        out[f"batch_{n}"] = {"images_per_s": n / float(np.median(times)), "median_s": float(np.median(times))}
    return out


def count_macs(fn, batch: dict[str, Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    one = {k: v[:1] for k, v in batch.items()}
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn(one)
    return int(counter.get_total_flops() // 2)  # a multiply-accumulate is two FLOPs


def evaluate_model(model_name: str, checkpoint: Path | None, ds: Path, split: str, proto: Protocol, out_root: Path, device: torch.device,
                   label_set: str | None = None) -> Path:
    """Generate with a trained model on a split and score it; the model's recorded data needs decide which
    arrays are read (size, label set, batch keys). ``checkpoint`` None: the newest run of the model."""
    from curate.loader import make_loader
    from curate.manifest import Manifest
    from eval.features import file_sha256
    from models.base import LEGACY_WEIGHTS_FILE, WEIGHTS_FILE
    from models.runs import dataset_for_model, load_model, resolve_model_dir

    ckpt = resolve_model_dir(checkpoint, model_name)
    model = load_model(ckpt, expected=model_name).to(device).eval()
    size = model.input_size
    extra = ("image", "negative", "negative_mask") if proto.protocol == "unpaired" else ("image",)
    data = dataset_for_model(model, ds, split, label_set=label_set, extra_fields=extra)
    loader = make_loader(data, proto.batch_size, shuffle=False, seed=proto.seed)
    run = out_root / f"{model_name}-{proto.protocol}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    (run / "images").mkdir(parents=True, exist_ok=False)
    generator = torch.Generator(device="cpu").manual_seed(proto.seed)
    fakes, reals, names = [], [], []

    def generate(batch: dict[str, Any]) -> Tensor:
        tensors = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
        if proto.protocol == "unpaired":
            return model.generate_unpaired(tensors, generator=generator)
        return model.generate(tensors)

    first_batch = None
    with torch.no_grad():
        for batch in loader:
            first_batch = first_batch or batch
            fake = (generate(batch).float().cpu().clamp(-1, 1) + 1) / 2
            real = (batch["image"] + 1) / 2
            for pid, img in zip(batch["pair_id"], fake):
                name = _safe_name(pid) + ".png"
                _save_png(run / "images" / name, img)
                names.append(name)
            fakes.append(fake)
            reals.append(real)
    fake_all, real_all = torch.cat(fakes), torch.cat(reals)
    metrics, per_sample, extractors = score(fake_all, real_all, proto, device, paired=proto.protocol == "paired", names=names)
    per_sample.insert(0, "pair_id", list(data.pairs["pair_id"]))
    buf = io.BytesIO()
    per_sample.to_parquet(buf, index=False)
    (run / "per_sample.parquet").write_bytes(buf.getvalue())
    assert first_batch is not None
    fps = measure_fps(generate, first_batch, tuple(sorted({1, min(proto.batch_size, len(first_batch["pair_id"]))})), proto.fps_batches, device)
    fps["resolution"] = list(size)
    summary = build_summary(
        kind="model", model=model_name, metrics=metrics, fps=fps, protocol=dataclasses.asdict(proto) | {"split": split},
        extractors=extractors, n_images=len(names),
        provenance={
            "checkpoint": str(ckpt),
            "checkpoint_sha256": file_sha256(ckpt / WEIGHTS_FILE if (ckpt / WEIGHTS_FILE).is_file() else ckpt / LEGACY_WEIGHTS_FILE),
            "model_config": json.loads((ckpt / "config.json").read_text()), "data_needs": model.data_needs().to_json(),
            "dataset": str(ds), "manifest_sha256": Manifest.load(ds).content_hash(), "label_set": data.label_set,
            "device": str(device), "parameters": model.num_parameters(), "generator_parameters": model.generation_parameters(),
            "macs_per_image": count_macs(generate, first_batch),
        },
    )
    write_summary(run, summary)
    return run


def evaluate_folders(images: Path, reference: Path, proto: Protocol, out_root: Path, device: torch.device) -> Path:
    """Score any system's outputs against a reference folder (FID/KID; paired metrics where names match)."""
    from eval.features import load_images

    exts = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
    gen = sorted(p for p in Path(images).iterdir() if p.suffix.lower() in exts)
    ref = sorted(p for p in Path(reference).iterdir() if p.suffix.lower() in exts)
    if len(gen) < 2 or len(ref) < 2:
        raise ValueError(f"need at least 2 images in each folder ({len(gen)} in {images}, {len(ref)} in {reference})")
    by_stem = {p.stem: p for p in ref}
    matched = [p for p in gen if p.stem in by_stem]
    paired = len(matched) == len(gen)
    fake = load_images(gen, proto.size)
    real = load_images(ref, proto.size)
    run = out_root / f"folders-{Path(images).name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    run.mkdir(parents=True, exist_ok=False)
    if paired:
        real_paired = load_images([by_stem[p.stem] for p in gen], proto.size)
        metrics, per_sample, extractors = score(fake, real_paired, proto, device, True, [p.name for p in gen])
        fid_real = real
        # FID/KID against the whole reference folder, not only the matched images
        extra, _, _ = score(fake, fid_real, dataclasses.replace(proto), device, False, [p.name for p in gen])
        metrics.update({k: extra[k] for k in ("fid", "kid", "kid_std")})
    else:
        metrics, per_sample, extractors = score(fake, real, proto, device, False, [p.name for p in gen])
    buf = io.BytesIO()
    per_sample.to_parquet(buf, index=False)
    (run / "per_sample.parquet").write_bytes(buf.getvalue())
    summary = build_summary(
        kind="folders", model=Path(images).name, metrics=metrics, fps=None,
        protocol=dataclasses.asdict(proto) | {"protocol": "paired" if paired else "unpaired"}, extractors=extractors,
        n_images=len(gen), provenance={"images": str(Path(images).resolve()), "reference": str(Path(reference).resolve()),
                                       "reference_images": len(ref), "device": str(device)},
    )
    write_summary(run, summary)
    return run
