"""Feature extractors for FID/KID and the LPIPS network, with the real weights' loading rules.

FID uses pytorch-fid's InceptionV3 (pool3, 2048-d) with the standard ``pt_inception-2015-12-05``
weights: ``--inception-weights PATH``, else the torch hub cache file, else pytorch-fid's own download when
online, else a clear error naming the file. ``untrained`` builds the same network with seeded random
weights and *recalibrates its BatchNorm statistics* on real images: a plain random Inception has running
statistics (0, 1) that do not match its activations, so features collapse to ~1e-8 and every FID is ~0.
Anything measured with it is labelled ``comparable_to_published = False``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import Tensor, nn

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
VGG16_FILE = "vgg16-397923af.pth"
EXTRACTOR_CHOICES = ("inception", "untrained")


def hub_checkpoint(name: str) -> Path:
    return Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints" / name


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclasses.dataclass
class FeatureExtractor:
    """A network mapping [B,3,H,W] images in [0,1] to [B,D] features, with its identity for provenance."""

    model: nn.Module
    identity: dict[str, object]  # name, weights sha256 / seed, calibration hash, comparable_to_published

    @property
    def key(self) -> str:
        return hashlib.sha256(repr(sorted(self.identity.items())).encode()).hexdigest()[:16]

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        out = self.model(images.to(next(self.model.parameters()).device))[0]
        return out.flatten(1).double().cpu()


def _build_fid_inception(state_dict: dict[str, Tensor] | None) -> nn.Module:
    """pytorch-fid's FID InceptionV3 with our weights: its downloader is pointed at ``state_dict``.

    ``None`` keeps the network's own (random) initialisation: the builder's model is captured and its
    state handed back as "the download", so no network access happens.
    """
    import pytorch_fid.inception as fid_inception

    captured: dict[str, nn.Module] = {}
    original_build, original_load = fid_inception._inception_v3, fid_inception.load_state_dict_from_url

    def build(*args, **kwargs):  # noqa: ANN002, ANN003
        model = original_build(*args, **kwargs)
        captured["model"] = model
        return model

    def load(*_args, **_kwargs):  # noqa: ANN002, ANN003
        return state_dict if state_dict is not None else captured["model"].state_dict()

    fid_inception._inception_v3, fid_inception.load_state_dict_from_url = build, load
    try:
        block = fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]
        return fid_inception.InceptionV3([block], use_fid_inception=True).eval()
    finally:
        fid_inception._inception_v3, fid_inception.load_state_dict_from_url = original_build, original_load


def inception_extractor(weights: str | Path | None = None, device: str | torch.device = "cpu") -> FeatureExtractor:
    """The standard FID network; raises FileNotFoundError naming the file when the weights are absent."""
    path = Path(weights).expanduser() if weights else hub_checkpoint(INCEPTION_FILE)
    if weights and not path.is_file():
        raise FileNotFoundError(f"--inception-weights {path} does not exist (expected {INCEPTION_FILE})")
    if not path.is_file():
        try:  # pytorch-fid's own download (works only when online)
            from torch.hub import load_state_dict_from_url
            from pytorch_fid.inception import FID_WEIGHTS_URL

            state = load_state_dict_from_url(FID_WEIGHTS_URL, progress=False)
        except Exception as exc:  # noqa: BLE001 - any download failure means: offline
            raise FileNotFoundError(
                f"FID needs the standard Inception weights {INCEPTION_FILE}: pass --inception-weights PATH or put the "
                f"file at {hub_checkpoint(INCEPTION_FILE)} (download failed: {type(exc).__name__}). For an offline, "
                f"NOT comparable run use --feature-extractor untrained."
            ) from None
        model = _build_fid_inception(state)
        sha = "downloaded"
    else:
        model = _build_fid_inception(torch.load(path, map_location="cpu", weights_only=True))
        sha = file_sha256(path)
    identity = {"name": "fid-inception-v3-pool3", "weights": INCEPTION_FILE, "weights_sha256": sha, "comparable_to_published": True}
    return FeatureExtractor(model.to(device), identity)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[Tensor]) -> int:
    """Replace every BatchNorm's running statistics by the exact mean/var of its inputs over ``batches``."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all calibration batches
        bn.train()
    seen = 0
    for batch in batches:
        model(batch)
        seen += len(batch)
    for bn in bns:
        bn.eval()
    if not seen:
        raise ValueError("BatchNorm recalibration needs at least one image")
    return seen


def untrained_extractor(calibration: Tensor, seed: int = 0, device: str | torch.device = "cpu", batch_size: int = 32) -> FeatureExtractor:
    """Seeded random FID Inception whose BatchNorm statistics come from ``calibration`` images in [0,1]."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build_fid_inception(None)
    model.to(device)
    calibration = calibration.to(device)
    n = recalibrate_batchnorm(model, calibration.split(batch_size))
    digest = hashlib.sha256(calibration.cpu().numpy().tobytes()).hexdigest()[:16]
    identity = {
        "name": "fid-inception-v3-pool3-untrained", "seed": seed, "bn_calibration_images": n,
        "bn_calibration_sha256": digest, "comparable_to_published": False,
    }
    return FeatureExtractor(model.eval(), identity)


def lpips_network(net: str = "alex", backbone_weights: str | Path | None = None, untrained: bool = False, seed: int = 0) -> tuple[nn.Module, dict[str, object]]:
    """The ``lpips`` package's LPIPS with its shipped linear layers and an explicitly loaded backbone.

    The backbone (torchvision AlexNet / VGG16 ImageNet weights) is not shipped: ``backbone_weights`` or the
    torch hub cache file; ``untrained`` uses a seeded random backbone (not comparable).
    """
    import lpips

    if net not in ("alex", "vgg"):
        raise ValueError(f"LPIPS backbone {net!r}; valid: alex, vgg")
    file = ALEXNET_FILE if net == "alex" else VGG16_FILE
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    identity: dict[str, object] = {"name": f"lpips-v0.1-{net}", "comparable_to_published": not untrained}
    if not untrained:
        path = Path(backbone_weights).expanduser() if backbone_weights else hub_checkpoint(file)
        if not path.is_file():
            raise FileNotFoundError(
                f"LPIPS-{net} needs the ImageNet backbone {file}: pass --lpips-weights PATH or put it at {hub_checkpoint(file)}; "
                f"for an offline, NOT comparable run use --lpips-backbone untrained"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        # lpips splits torchvision's `features` into slice1..5 keeping each layer's original index
        mapped = {}
        for name, module in model.net.named_children():
            for idx, _ in module.named_children():
                for p in ("weight", "bias"):
                    key = f"features.{idx}.{p}"
                    if key in state:
                        mapped[f"{name}.{idx}.{p}"] = state[key]
        missing, unexpected = model.net.load_state_dict(mapped, strict=False)
        if missing:
            raise ValueError(f"{path} does not fit LPIPS-{net}: missing {missing[:5]}")
        identity["backbone_sha256"] = file_sha256(path)
    else:
        identity["seed"] = seed
    return model.eval(), identity


def load_images(paths: list[Path], size: tuple[int, int] | None = None) -> Tensor:
    """[N,3,H,W] float in [0,1]; decoding exactly like pytorch-fid (PIL RGB -> ToTensor)."""
    from PIL import Image

    out: Tensor | None = None
    for i, p in enumerate(paths):
        try:
            im = Image.open(p).convert("RGB")
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"cannot read image {p}: {exc}") from None
        if size is not None and im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.BICUBIC)
        pixels = torch.from_numpy(np.array(im)).permute(2, 0, 1)  # a writable uint8 copy (a quarter of the float image)
        if out is None:  # filled in place: no per-image float copies stacked afterwards (2x the batch at once)
            out = torch.empty((len(paths), *pixels.shape), dtype=torch.float32)
        elif pixels.shape != out.shape[1:]:
            raise ValueError(f"{p} is {im.size[0]}x{im.size[1]} (WxH), the others {out.shape[3]}x{out.shape[2]}: pass a size")
        # uint8 -> float32 is exact and the division correctly rounded: the same values as ToTensor
        torch.div(pixels, 255.0, out=out[i])
    if out is None:
        raise ValueError("no images to load")
    return out
