"""SPADE (GauGAN, Park et al. 2019): an image from a semantic label map via spatially-adaptive norm.

Structure and key names follow the official generator so that released checkpoints import
(``zoo import spade``): ``fc`` on the downsampled label map, ``head_0``, ``G_middle_0/1``, ``up_0..3``,
``conv_img``. The ``paper`` presets reproduce the official parameter counts exactly (ADE20K 96,492,483,
Cityscapes 93,048,003, COCO-Stuff 97,480,899). This zoo entry is the label-map-only generator (no VAE
style encoder): for try-on it renders the person from the parsing map.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ModelInputs
from models.checkpoint_import import OfficialCheckpoint, StateDict, rename_spectral_norm
from models.layers.discriminators import MultiscaleDiscriminator
from models.layers.gan import SemanticGANRecipe, SemanticImageGAN, SPADEDecoder
from models.registry import register_model


@dataclasses.dataclass(frozen=True)
class SPADEConfig:
    label_nc: int = 20  # input channels: classes (+ dontcare + instance edges for the reference datasets)
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
        super().__init__(nn.Conv2d(cfg.label_nc, 16 * cfg.ngf, 3, padding=1), cfg.label_nc, cfg.ngf, cfg.spade_hidden,
                         cfg.height, cfg.width, cfg.num_upsamples)

    def forward(self, seg: Tensor) -> Tensor:
        return self.decode(self.fc(F.interpolate(seg, size=self.latent, mode="nearest")), seg)


# Released generators by input channels (classes + dontcare [+ instance edges]).
_PRESET_BY_CHANNELS = {36: "paper-cityscapes", 151: "paper-ade20k", 184: "paper-coco"}


def _preset_for(states: dict[str, StateDict]) -> str:
    fc = states["generator"].get("fc.weight")
    if fc is None:
        raise ValueError("the file has no fc.weight: not a SPADE generator")
    channels = int(fc.shape[1])
    if channels not in _PRESET_BY_CHANNELS:
        raise ValueError(f"SPADE generator with {channels} input channels: the releases have {_PRESET_BY_CHANNELS}; "
                         "pass --preset for another")
    return _PRESET_BY_CHANNELS[channels]


@register_model
class SPADE(SemanticImageGAN):
    name: ClassVar[str] = "spade"
    INPUTS = ModelInputs(generate=("labelmap",), train=("labelmap", "image"), label_channels="label_nc")
    Config = SPADEConfig
    Recipe = SemanticGANRecipe
    OFFICIAL = OfficialCheckpoint(
        parts={"generator": ("generator", "latest_net_G.pth")}, required=("generator",), filter_fn=rename_spectral_norm,
        preset_for=_preset_for, describe="NVlabs/SPADE latest_net_G.pth (ADE20K, COCO-Stuff, Cityscapes; preset from fc.weight's channels)",
    )
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": dict(label_nc=8, height=64, width=48, ngf=16, spade_hidden=32, num_upsamples=4, ndf=16, n_layers_d=3, num_d=1),
        # The reference configuration (SPADE ADE20K: 150 classes + dontcare, 256x256, 'normal').
        "paper": dict(label_nc=151, height=256, width=256, num_upsamples=5),
        "paper-ade20k": dict(label_nc=151, height=256, width=256, num_upsamples=5),
        "paper-coco": dict(label_nc=184, height=256, width=256, num_upsamples=5),
        "paper-cityscapes": dict(label_nc=36, height=256, width=512, num_upsamples=6),
    }

    def __init__(self, config: SPADEConfig) -> None:
        super().__init__(config)
        self.generator = SPADEGenerator(config)
        self.discriminator = MultiscaleDiscriminator(config.label_nc + 3, config.ndf, config.n_layers_d, config.num_d)

    def generator_forward(self, batch: dict[str, Tensor], seg: Tensor, recipe: Any) -> tuple[Tensor, dict[str, Tensor]]:
        return self.generator(seg), {}

    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        return self.generator(self.one_hot(batch["labelmap"]))
