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
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

import torch.nn.functional as F

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
    score_pixels: int = 1 << 20  # pixels per sub-batch of LPIPS/SSIM/PSNR (0: the whole batch); see images_per_chunk


def images_per_chunk(height: int, width: int, pixels: int, batch: int) -> int:
    """Images per sub-batch of the full-resolution scores (LPIPS, SSIM, PSNR): as many as fit ``pixels``
    (at least one; 0 means the whole batch), at most ``batch``.

    Why: their working set grows with the pixels scored at once, not with the set: torchmetrics' SSIM
    filters five stacks with an 11x11 grouped convolution that unfolds every window (~560 MiB an image at
    1024x768, measured), LPIPS keeps AlexNet's full-size activations of both images. Each image is scored
    on its own in both, so a sub-batch changes no score; the default (1 Mpx) scores a 256x192 batch of up
    to 21 whole and 1024x768 one image at a time."""
    if pixels <= 0:
        return max(batch, 1)
    return max(1, min(batch, pixels // max(height * width, 1)))


GLIBC_MMAP_THRESHOLD = 1 << 20  # bytes: every buffer this large or larger is mmap'ed and unmapped when freed


def limit_heap_fragmentation(threshold: int = GLIBC_MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold (``mallopt(M_MMAP_THRESHOLD)``) for this process; True if it was set.

    Why: glibc raises the threshold after each large free (up to 32 MiB), so batch-sized images and
    activations then come from the heap, and the small tensors a streaming evaluation keeps between
    batches (features, per-image scores) land between them and pin the heap: RSS grew ~0.8 MB per image
    scored although the scorer holds ~16 KB (measured: bench/eval/memory.py, docs/benchmarks/eval-memory.md).
    A fixed threshold also turns the dynamic adjustment off. Process-wide, so the ``evaluate`` entry point
    calls it; ``TRYON_BENCH_HEAP=glibc-default`` leaves glibc as it is (the benchmark's comparison row)."""
    if os.environ.get("TRYON_BENCH_HEAP") == "glibc-default":
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt): nothing to tune
        return False
    M_MMAP_THRESHOLD = -3
    return bool(mallopt(M_MMAP_THRESHOLD, int(threshold)))


def cache_dir() -> Path:
    return Path(os.environ.get("TRYON_BENCH_CACHE", Path.home() / ".cache" / "tryon-bench")) / "features"


def _images_key(images: Tensor) -> str:
    return hashlib.sha256(_pixel_bytes(images)).hexdigest()[:24]


def _pixel_bytes(images: Tensor) -> memoryview:
    """The images' bytes for hashing without a copy (``tobytes`` copied every batch: 151 MB at 16 x 1024x768)."""
    return memoryview(np.ascontiguousarray(images.numpy())).cast("B")


def _cached_features(path: Path, compute: Callable[[], np.ndarray], use_cache: bool) -> tuple[np.ndarray, bool]:
    """(features, cache_hit): loaded from ``path``, else computed and written atomically (per process:
    ranks may write the same entry)."""
    if use_cache and path.is_file():
        return np.load(path), True
    feats = compute()
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, feats)
        tmp.replace(path)
    return feats, False


def extract_features(extractor: FeatureExtractor, images: Tensor, batch_size: int, use_cache: bool = True) -> tuple[np.ndarray, bool]:
    """[N, D] features of images in [0,1]; returns (features, cache_hit)."""
    return _cached_features(cache_dir() / f"{extractor.key}-{_images_key(images)}.npy",
                            lambda: torch.cat([extractor(b) for b in images.split(batch_size)]).numpy(), use_cache)


def make_extractor(proto: Protocol, calibration: Tensor, device: torch.device) -> FeatureExtractor:
    if proto.feature_extractor == "inception":
        return inception_extractor(proto.inception_weights, device)
    if proto.feature_extractor == "untrained":
        return untrained_extractor(calibration[:CALIBRATION_IMAGES], seed=proto.seed, device=device)
    raise ValueError(f"--feature-extractor {proto.feature_extractor!r}; valid: inception, untrained")


CALIBRATION_IMAGES = 256  # real images the untrained extractor's BatchNorm statistics come from
FID_INPUT = (299, 299)  # pytorch-fid resizes every input to this (bilinear): calibration images are kept at it


class RealSet:
    """The real images of a run, streamed in batches twice at most: once for their content hash and the
    untrained extractor's calibration images (the first 256, kept at 299x299, what the network sees
    anyway), once for their features when the cache misses. Nothing else of them is held."""

    def __init__(self, batches: Callable[[], Iterator[Tensor]]) -> None:
        self.batches = batches
        digest = hashlib.sha256()
        calibration: list[Tensor] = []
        kept = self.count = 0
        for images in batches():
            digest.update(_pixel_bytes(images))
            self.count += len(images)
            if kept < CALIBRATION_IMAGES:
                take = images[: CALIBRATION_IMAGES - kept]
                calibration.append(F.interpolate(take, size=FID_INPUT, mode="bilinear", align_corners=False))
                kept += len(take)
        if self.count < 2:
            raise ValueError(f"need at least 2 real images, got {self.count}")
        self.key = digest.hexdigest()[:24]
        self.calibration = torch.cat(calibration)

    def features(self, extractor: FeatureExtractor, use_cache: bool = True) -> tuple[np.ndarray, bool]:
        return _cached_features(cache_dir() / f"{extractor.key}-{self.key}.npy",
                                lambda: np.concatenate([extractor(images).numpy() for images in self.batches()]), use_cache)


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, device) under torchrun, through the trainer's process-group setup (gloo on CPU,
    NCCL on CUDA, cuda:LOCAL_RANK); (0, 1, device) otherwise."""
    from models.trainer import _init_distributed

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, device
    ctx, device = _init_distributed(device.type)
    return ctx.rank, ctx.world_size, device


class _Shard(torch.utils.data.Dataset):
    """Every ``world``-th sample from ``rank``, each with its position in the whole set (``index``)."""

    def __init__(self, data: Any, rank: int, world: int) -> None:
        self.data, self.indices = data, list(range(rank, len(data), world))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.data[self.indices[i]], "index": self.indices[i]}


class StreamingScore:
    """FID/KID (and in the paired protocol LPIPS, SSIM, PSNR per image) accumulated batch by batch:
    the generated images are dropped after each ``add``; only features and per-image scalars stay."""

    def __init__(self, proto: Protocol, device: torch.device, extractor: FeatureExtractor, real_features: np.ndarray,
                 paired: bool, distributed: bool = True) -> None:
        """``distributed=False``: this process's samples only, no collective (scores during DDP training,
        computed on rank 0 alone)."""
        from eval.metric_states import FrechetDistance, KernelDistance, MeanWithInterval

        self.proto, self.device, self.extractor, self.paired = proto, device, extractor, paired
        self.distributed = distributed
        sync = {"sync_on_compute": distributed}
        self.fid = FrechetDistance(real_features.shape[1], **sync)
        self.kid = KernelDistance(proto.kid_subsets, proto.kid_subset_size, proto.seed, **sync)
        self.fid.reference(real_features)
        self.kid.reference(real_features)
        self.rows: list[dict[str, Any]] = []
        self.lpips_net = None
        if paired:
            net, self.lpips_identity = lpips_network(proto.lpips_net, proto.lpips_weights,
                                                     untrained=proto.lpips_backbone == "untrained", seed=proto.seed)
            self.lpips_net = net.to(device)
            self.means = {name: MeanWithInterval(**sync) for name in ("lpips", "ssim", "psnr")}

    def add(self, fake: Tensor, names: list[str], real: Tensor | None = None, index: Tensor | None = None) -> None:
        """``fake`` (and for paired scores its ground truth ``real``) [B,3,H,W] in [0,1]; ``index``: the
        samples' positions in the whole set (sharded evaluation)."""
        feats = self.extractor(fake)
        self.fid.update(feats, real=False)
        self.kid.update(feats, real=False, index=index)
        row: dict[str, Any] = {"name": names, "index": index}
        if self.paired:
            if real is None or fake.shape != real.shape:
                raise ValueError(f"paired protocol needs images of the same size: {tuple(fake.shape)} vs {None if real is None else tuple(real.shape)}")
            step = images_per_chunk(fake.shape[-2], fake.shape[-1], self.proto.score_pixels, len(fake))
            parts = [self._paired(f, r) for f, r in zip(fake.split(step), real.split(step))]
            for name in ("lpips", "ssim", "psnr"):
                row[name] = torch.cat([p[name] for p in parts])
                self.means[name].update(row[name])
        self.rows.append(row)

    def _paired(self, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        """LPIPS, SSIM, PSNR of one sub-batch (see :func:`images_per_chunk`), each [b] on the CPU."""
        with torch.no_grad():
            lpips = self.lpips_net(fake.to(self.device) * 2 - 1, real.to(self.device) * 2 - 1).flatten().cpu()
        return {"lpips": lpips, "ssim": M.ssim(fake, real, greyscale=self.proto.ssim_greyscale), "psnr": M.psnr(fake, real)}

    def compute(self) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]]:
        """Every process calls this (the metric states reduce across processes); the per-image rows are
        gathered too and put back in the set's order."""
        out: dict[str, Any] = {"fid": float(self.fid.compute())}
        out.update(self.kid.compute())
        rows = self.rows
        if self.distributed and torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, rows)
            rows = [r for part in gathered for r in part]
        if rows and all(r["index"] is not None for r in rows):
            flat = [(int(i), r, k) for r in rows for k, i in enumerate(r["index"])]
            order = sorted(flat, key=lambda t: t[0])
        else:
            order = [(0, r, k) for r in rows for k in range(len(r["name"]))]
        per_sample = pd.DataFrame({"name": [r["name"][k] for _, r, k in order]})
        extractors: dict[str, Any] = {"features": self.extractor.identity}
        if self.paired:
            for name in ("lpips", "ssim", "psnr"):
                per_sample[name] = np.array([float(r[name][k]) for _, r, k in order])
                result = self.means[name].compute()
                out[name], out[f"{name}_ci95"] = result["mean"], result["ci95"]
            extractors["lpips"] = self.lpips_identity
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
                   label_set: str | None = None, generator: Any = None) -> Path:
    """Generate with a trained model on a split and score it; the model's recorded data needs decide which
    arrays are read (size, label set, batch keys). ``checkpoint`` None: the newest run of the model.
    ``generator``: a baseline of :mod:`eval.baselines` scored the same way (no checkpoint; ``kind: baseline``)."""
    from curate.loader import make_loader
    from curate.manifest import Manifest
    from eval.features import file_sha256
    from models.base import LEGACY_WEIGHTS_FILE, WEIGHTS_FILE
    from models.runs import dataset_for_model, load_model, resolve_model_dir

    from models.trainer import batch_to_device

    rank, world, device = _distributed(device)
    if generator is None:
        ckpt = resolve_model_dir(checkpoint, model_name)
        model = load_model(ckpt, expected=model_name).to(device).eval()
        weights = {"checkpoint": str(ckpt),
                   "checkpoint_sha256": file_sha256(ckpt / WEIGHTS_FILE if (ckpt / WEIGHTS_FILE).is_file() else ckpt / LEGACY_WEIGHTS_FILE),
                   "model_config": json.loads((ckpt / "config.json").read_text())}
    else:  # a baseline: nothing to load, the same protocol
        model = generator.to(device).eval()
        weights = {"checkpoint": None, "checkpoint_sha256": None, "model_config": model.config_dict(), "baseline": generator.description}
    # inference only: no parameter needs a gradient (FlopCounterMode's module hooks fail on parameters that
    # require one under the models' inference_mode generate)
    model.requires_grad_(False)
    kind = "model" if generator is None else "baseline"
    size = model.input_size
    unpaired = proto.protocol == "unpaired"
    meaning = model.unpaired_protocol() if unpaired else "the person with their own article, against the ground truth"
    names_box = [f"{model_name}-{proto.protocol}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"]
    if world > 1:  # one run folder for every process: rank 0's clock names it
        torch.distributed.broadcast_object_list(names_box, src=0)
    run = out_root / names_box[0]
    provenance = {
        **weights, "data_needs": model.data_needs().to_json(),
        "dataset": str(ds), "manifest_sha256": Manifest.load(ds).content_hash(), "device": str(device),
        "parameters": model.num_parameters(), "generator_parameters": model.generation_parameters(),
    }
    protocol = dataclasses.asdict(proto) | {"split": split, "meaning": meaning,
                                            "score_chunk_images": images_per_chunk(*size, proto.score_pixels, proto.batch_size)}
    if meaning is None and rank == 0:
        # e.g. SPADE renders from the label map alone: a second article changes nothing, so an "unpaired"
        # score would repeat the paired one and measure no try-on
        run.mkdir(parents=True, exist_ok=False)
        reason = (f"{model_name}'s output does not depend on the article (it generates from "
                  f"{', '.join(model.INPUTS.generate)}): the unpaired protocol has no try-on to score")
        summary = build_summary(kind=kind, model=model_name, metrics={}, fps=None, protocol=protocol, extractors={},
                                n_images=0, provenance=provenance)
        summary["not_scored"] = reason
        summary["comparable_to_published"] = None  # nothing was scored
        write_summary(run, summary)
    if meaning is None:
        return run
    extra = ("image", "negative", "negative_mask") if unpaired else ("image",)
    data = dataset_for_model(model, ds, split, label_set=label_set, extra_fields=extra)
    loader = make_loader(_Shard(data, rank, world), proto.batch_size, shuffle=False, seed=proto.seed)
    if rank == 0:
        (run / "images").mkdir(parents=True, exist_ok=False)
    if world > 1:
        torch.distributed.barrier()
    generator = torch.Generator(device="cpu").manual_seed(proto.seed)

    def generate(tensors: dict[str, Any]) -> Tensor:  # inputs already on the device
        if unpaired:
            return model.generate_unpaired(tensors, generator=generator)
        return model.generate(tensors)

    only_images = data.with_fields(("image",))
    reals = RealSet(lambda: ((b["image"] + 1) / 2 for b in make_loader(only_images, proto.batch_size, shuffle=False)))
    extractor = make_extractor(proto, reals.calibration, device)
    real_feats, hit = reals.features(extractor)
    scorer = StreamingScore(proto, device, extractor, real_feats, paired=not unpaired)
    first_batch: dict[str, Any] | None = None
    generating_s, n_images = 0.0, 0
    with torch.no_grad():
        iterator = iter(loader)
        while True:
            start = time.perf_counter()  # end to end: loader, host-to-device, generate, device-to-host
            batch = next(iterator, None)
            if batch is None:
                break
            tensors = batch_to_device(batch, device)
            fake = (generate(tensors).float().cpu().clamp(-1, 1) + 1) / 2
            generating_s += time.perf_counter() - start
            first_batch = first_batch or batch
            names = []
            for pid, img in zip(batch["pair_id"], fake):
                name = _safe_name(pid) + ".png"
                _save_png(run / "images" / name, img)
                names.append(name)
            scorer.add(fake, names, None if unpaired else (batch["image"] + 1) / 2, index=batch["index"])
            n_images += len(names)
            del fake, tensors, batch  # nothing of a batch outlives it but features and per-image scores
    metrics, per_sample, extractors = scorer.compute()  # a collective: every process takes part
    if rank != 0:
        torch.distributed.barrier()  # rank 0 writes the record
        return run
    n_images = len(per_sample)
    extractors["real_features_cache_hit"] = hit
    per_sample.insert(0, "pair_id", list(data.pairs["pair_id"]))
    buf = io.BytesIO()
    per_sample.to_parquet(buf, index=False)
    (run / "per_sample.parquet").write_bytes(buf.getvalue())
    assert first_batch is not None
    on_device = batch_to_device(first_batch, device)
    sizes = tuple(sorted({1, min(proto.batch_size, len(first_batch["pair_id"]))}))
    fps = {
        "model_only": measure_fps(generate, on_device, sizes, proto.fps_batches, device)
        | {"includes": "generate() on inputs already on the device (CUDA synchronised); no loading, copies or scoring"},
        "end_to_end": {
            f"batch_{proto.batch_size}": {"images_per_s": n_images / generating_s if generating_s else None},
            "batch_1": {"images_per_s": _end_to_end_batch_1(data, generate, device)},
            "includes": "the loader (memory-mapped arrays), host-to-device copy, generate(), device-to-host copy; "
                        "not the scoring or the PNG writing",
        },
        "resolution": list(size),
    }
    provenance |= {"label_set": data.label_set, "macs_per_image": count_macs(generate, on_device), "processes": world}
    if world > 1:
        fps["end_to_end"]["includes"] += f"; measured on rank 0 of {world} processes (its shard)"
    summary = build_summary(kind=kind, model=model_name, metrics=metrics, fps=fps, protocol=protocol,
                            extractors=extractors, n_images=n_images, provenance=provenance)
    write_summary(run, summary)
    if world > 1:
        torch.distributed.barrier()
    return run


def _end_to_end_batch_1(data: Any, generate: Callable[[dict[str, Any]], Tensor], device: torch.device, n: int = 8) -> float:
    """images/s of loader + copies + generate at batch 1 over the first ``n`` samples (after one warm-up)."""
    from models.trainer import batch_to_device

    loader = torch.utils.data.DataLoader(data, batch_size=1, shuffle=False)
    iterator, times = iter(loader), []
    with torch.no_grad():
        for i in range(min(n, len(data)) + 1):
            start = time.perf_counter()
            batch = next(iterator, None)
            if batch is None:
                break
            generate(batch_to_device(batch, device)).float().cpu()
            if i:
                times.append(time.perf_counter() - start)
    return 1 / float(np.median(times)) if times else float("nan")


def evaluate_folders(images: Path, reference: Path, proto: Protocol, out_root: Path, device: torch.device) -> Path:
    """Score any system's outputs against a reference folder, streaming both: FID/KID against the whole
    reference folder, paired metrics where every generated name has a reference of the same stem. One
    extractor (calibrated on the reference folder when untrained) produces every feature, and the record
    names exactly that one."""
    from eval.features import load_images

    exts = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
    gen = sorted(p for p in Path(images).iterdir() if p.suffix.lower() in exts)
    ref = sorted(p for p in Path(reference).iterdir() if p.suffix.lower() in exts)
    if len(gen) < 2 or len(ref) < 2:
        raise ValueError(f"need at least 2 images in each folder ({len(gen)} in {images}, {len(ref)} in {reference})")
    by_stem = {p.stem: p for p in ref}
    paired = all(p.stem in by_stem for p in gen)
    step = proto.batch_size

    def chunks(paths: list[Path]) -> Iterator[Tensor]:
        for i in range(0, len(paths), step):
            yield load_images(paths[i:i + step], proto.size)

    reals = RealSet(lambda: chunks(ref))
    extractor = make_extractor(proto, reals.calibration, device)
    real_feats, hit = reals.features(extractor)
    run = out_root / f"folders-{Path(images).name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    run.mkdir(parents=True, exist_ok=False)
    scorer = StreamingScore(proto, device, extractor, real_feats, paired)
    for i in range(0, len(gen), step):
        part = gen[i:i + step]
        scorer.add(load_images(part, proto.size), [p.name for p in part],
                   load_images([by_stem[p.stem] for p in part], proto.size) if paired else None)
    metrics, per_sample, extractors = scorer.compute()
    extractors["real_features_cache_hit"] = hit
    buf = io.BytesIO()
    per_sample.to_parquet(buf, index=False)
    (run / "per_sample.parquet").write_bytes(buf.getvalue())
    summary = build_summary(
        kind="folders", model=Path(images).name, metrics=metrics, fps=None,
        protocol=dataclasses.asdict(proto) | {"protocol": "paired" if paired else "unpaired",
                                              "score_chunk_images": images_per_chunk(*proto.size, proto.score_pixels, proto.batch_size)},
        extractors=extractors,
        n_images=len(gen), provenance={"images": str(Path(images).resolve()), "reference": str(Path(reference).resolve()),
                                       "reference_images": len(ref), "device": str(device),
                                       "fid_kid_against": "the whole reference folder"},
    )
    write_summary(run, summary)
    return run
