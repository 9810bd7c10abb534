"""SPADE (GauGAN, Park et al. 2019): an image from a semantic label map via spatially-adaptive norm.

Structure and key names follow the official generator so that released checkpoints import
(``zoo import spade``): ``fc`` on the downsampled label map, ``head_0``, ``G_middle_0/1``, ``up_0..3``,
``conv_img``. The ``paper`` presets reproduce the official parameter counts exactly (ADE20K 96,492,483,
Cityscapes 93,048,003, COCO-Stuff 97,480,899). This zoo entry is the label-map-only generator (no VAE
style encoder): for try-on it renders the person from the parsing map.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ModelInputs
from models.checkpoint_import import OfficialCheckpoint, StateDict, rename_spectral_norm
from models.layers.discriminators import MultiscaleDiscriminator
from models.layers.gan import SemanticGANRecipe, SemanticImageGAN, SPADEDecoder
from models.layers.spade_norm import LabelMaps, drop_frozen, frozen, inference_path, lookup, lookup_table, one_hot_conv
from models.registry import register_model


@dataclasses.dataclass(frozen=True)
class SPADEConfig:
    label_nc: int = 20  # label ids 0..label_nc-1 (the releases count their dontcare id here: ADE20K 151, COCO 183)
    instance_edges: bool = False  # one more input channel: instance boundaries (Cityscapes, COCO releases)
    height: int = 256
    width: int = 192
    ngf: int = 64
    spade_hidden: int = 128
    num_upsamples: int = 5
    ndf: int = 64
    n_layers_d: int = 4
    num_d: int = 2


class SPADEGenerator(SPADEDecoder):
    """fc on the label map downsampled to the latent size, then the shared decoder."""

    def __init__(self, cfg: SPADEConfig) -> None:
        channels = input_channels(cfg)
        super().__init__(nn.Conv2d(channels, 16 * cfg.ngf, 3, padding=1), channels, cfg.ngf, cfg.spade_hidden,
                         cfg.height, cfg.width, cfg.num_upsamples)

    def train(self, mode: bool = True) -> "SPADEGenerator":
        drop_frozen(self)  # fc's lookup table and everything below it
        return super().train(mode)

    def forward(self, seg: Tensor | LabelMaps) -> Tensor:
        if isinstance(seg, LabelMaps):
            maps = seg.at(self.latent)
            if inference_path(self):  # the table kept while fc's weights stand (see spade_norm.frozen)
                return self.decode(lookup(frozen(self.fc, lambda: lookup_table(self.fc, maps.num_classes)), maps,
                                          self.fc.kernel_size), seg)
            return self.decode(one_hot_conv(self.fc, maps), seg)
        return self.decode(self.fc(F.interpolate(seg, size=self.latent, mode="nearest")), seg)


def input_channels(cfg: SPADEConfig) -> int:
    """What the generator reads: one channel per label id, + 1 for instance edges."""
    return cfg.label_nc + int(cfg.instance_edges)


def instance_edges(instances: Tensor) -> Tensor:
    """[B,H,W] instance ids -> [B,1,H,W] float, 1 where a 4-neighbour has another id, on both sides of the
    boundary (the rule of the official ``Pix2PixModel.get_edges``)."""
    t = instances[:, None]
    edge = torch.zeros_like(t, dtype=torch.bool)
    dx = t[..., 1:] != t[..., :-1]
    dy = t[..., 1:, :] != t[..., :-1, :]
    edge[..., 1:] |= dx
    edge[..., :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()


# Released generators by input channels (label ids [+ instance edges]), the label set each reads.
_PRESET_BY_CHANNELS = {36: "paper-cityscapes", 151: "paper-ade20k", 184: "paper-coco"}
_LABEL_SET_BY_PRESET = {"paper-cityscapes": "cityscapes-35", "paper-ade20k": "ade20k-151", "paper": "ade20k-151",
                        "paper-coco": "coco-stuff-183"}
_UPSAMPLES = {"normal": 5, "more": 6, "most": 7}  # the official num_upsampling_layers


def _preset_for(states: dict[str, StateDict]) -> str:
    fc = states["generator"].get("fc.weight")
    if fc is None:
        raise ValueError("the file has no fc.weight: not a SPADE generator")
    channels = int(fc.shape[1])
    if channels not in _PRESET_BY_CHANNELS:
        raise ValueError(f"SPADE generator with {channels} input channels (fc.weight): the releases have "
                         f"{', '.join(f'{c} ({p})' for c, p in _PRESET_BY_CHANNELS.items())}; for another checkpoint pass "
                         f"--preset paper --label-nc {channels} --size HxW --upsamples N (its training geometry)")
    return _PRESET_BY_CHANNELS[channels]


def _read_opt(path: Path) -> dict[str, str]:
    """SPADE's ``opt.txt`` (``  key: value   [default: ...]`` lines), saved beside the weights in training."""
    opts: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, rest = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            opts[key.strip()] = rest.split("[default")[0].strip()
    return opts


def _check_geometry(cfg: SPADEConfig, states: dict[str, StateDict], files: dict[str, Path]) -> tuple[str | None, str]:
    """What the release says about its geometry against what was stated; (problem, where it came from)."""
    state = states["generator"]
    fc = state.get("fc.weight")
    if fc is None:
        return "the file has no fc.weight: not a SPADE generator", "file"
    if any(k.startswith("up_4.") for k in state):
        return ("the file has an up_4 block: num_upsampling_layers 'most' (7), which the zoo's SPADE does not build", "file")
    channels, wanted = int(fc.shape[1]), input_channels(cfg)
    if channels != wanted:
        hint = f"--preset {_PRESET_BY_CHANNELS[channels]}" if channels in _PRESET_BY_CHANNELS else f"--label-nc {channels}"
        return (f"the file's fc.weight reads {channels} input channels, the stated model {wanted} "
                f"(label_nc {cfg.label_nc}{' + instance edges' if cfg.instance_edges else ''}): pass {hint}", "file")
    opt_file = files["generator"].parent / "opt.txt"
    if not opt_file.is_file():
        return None, "the preset and options (the file does not record its training size; no opt.txt beside it)"
    opts = _read_opt(opt_file)
    try:
        crop, aspect = int(opts["crop_size"]), float(opts.get("aspect_ratio", "1.0"))
        ups = _UPSAMPLES[opts.get("num_upsampling_layers", "normal")]
    except (KeyError, ValueError):
        return None, f"the preset and options ({opt_file} lacks crop_size/num_upsampling_layers)"
    # SPADEGenerator.compute_latent_vector_size: sw = crop / 2**n, sh = round(sw / aspect_ratio)
    sw = crop // 2**ups
    height, width = round(sw / aspect) * 2**ups, sw * 2**ups
    if (height, width, ups) != (cfg.height, cfg.width, cfg.num_upsamples):
        return (f"{opt_file} says the checkpoint was trained at {height}x{width} with {ups} upsamplings "
                f"(crop_size {crop}, aspect_ratio {aspect}, {opts.get('num_upsampling_layers', 'normal')}); the stated model is "
                f"{cfg.height}x{cfg.width} with {cfg.num_upsamples}: pass --size {height}x{width} --upsamples {ups}", str(opt_file))
    return None, str(opt_file)


def _label_set_for(cfg: SPADEConfig) -> str | None:
    for preset, label_set in _LABEL_SET_BY_PRESET.items():
        fields = SPADE.PRESETS[preset]
        if fields["label_nc"] == cfg.label_nc and fields.get("instance_edges", False) == cfg.instance_edges:
            return label_set
    return None


@register_model
class SPADE(SemanticImageGAN):
    name: ClassVar[str] = "spade"
    INPUTS = ModelInputs(generate=("labelmap",), train=("labelmap", "image"), label_channels="label_nc")
    Config = SPADEConfig
    Recipe = SemanticGANRecipe
    OFFICIAL = OfficialCheckpoint(
        parts={"generator": ("generator", "latest_net_G.pth")}, required=("generator",), filter_fn=rename_spectral_norm,
        preset_for=_preset_for, check_geometry=_check_geometry, label_set_for=_label_set_for,
        describe="NVlabs/SPADE latest_net_G.pth (ADE20K, COCO-Stuff, Cityscapes; preset from fc.weight's channels)",
    )
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": dict(label_nc=8, height=64, width=48, ngf=16, spade_hidden=32, num_upsamples=4, ndf=16, n_layers_d=3, num_d=1),
        # The reference configuration (SPADE ADE20K: 150 classes + dontcare, 256x256, 'normal').
        "paper": dict(label_nc=151, height=256, width=256, num_upsamples=5),
        "paper-ade20k": dict(label_nc=151, height=256, width=256, num_upsamples=5),
        # COCO-Stuff: 182 classes + dontcare (183 ids) + instance edges = 184 input channels.
        "paper-coco": dict(label_nc=183, instance_edges=True, height=256, width=256, num_upsamples=5),
        # Cityscapes: 35 label ids + instance edges = 36 input channels, 256x512, 'more' (6 upsamplings).
        "paper-cityscapes": dict(label_nc=35, instance_edges=True, height=256, width=512, num_upsamples=6),
    }

    def __init__(self, config: SPADEConfig) -> None:
        super().__init__(config)
        self.generator = SPADEGenerator(config)
        self.discriminator = MultiscaleDiscriminator(input_channels(config) + 3, config.ndf, config.n_layers_d, config.num_d)

    def extra_label_channels(self, batch: dict[str, Tensor], labelmap: Tensor) -> Tensor | None:
        """The instance-edge channel: from ``batch['instance']`` ([B,H,W] instance ids) when the batch has
        one, else from the label map's class boundaries (every class boundary is an instance boundary;
        what this misses is the boundary between touching objects of one class)."""
        if not self.config.instance_edges:
            return None
        source = batch.get("instance")
        if source is None:
            source = labelmap
        elif source.dim() == 4:
            source = source[:, 0]
        if source.shape[-2:] != labelmap.shape[-2:]:
            raise ValueError(f"instance map {tuple(source.shape[-2:])} and label map {tuple(labelmap.shape[-2:])} differ in size")
        return instance_edges(source)

    def generator_forward(self, batch: dict[str, Tensor], seg: Tensor, recipe: Any) -> tuple[Tensor, dict[str, Tensor]]:
        return self.generator(seg), {}

    @torch.inference_mode()
    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        return self.generator(self.label_maps(batch))
