"""PatchGAN discriminators returning every layer's features: multi-scale (pix2pixHD / SPADE) and
conditional on a second input (CAGAN's (image, article) pairs, pix2pix-style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from models.layers.norms import NORMS, norm_layer


class PatchDiscriminator(nn.Module):
    """``n_layers`` stride-2/1 convs (middle ones normalised), a 1-channel patch map at the end.

    Defaults are SPADE's: spectral norm + instance norm on the middle convs. ``noise_sigma > 0`` adds
    N(0, sigma^2) noise to the input of every layer in training mode only (CAGAN's instance-noise trick);
    the returned features are the layers' own outputs. Options never change state_dict keys of the defaults.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4, *, norm: str = "instance",
                 spectral: bool = True, noise_sigma: float = 0.0) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm {norm!r}; valid: {', '.join(NORMS)}")
        self.noise_sigma = noise_sigma
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 2), nn.LeakyReLU(0.2))]
        nf = ndf
        for n in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = nn.Conv2d(prev, nf, 4, stride, 2, bias=norm == "none")
            block: list[nn.Module] = [spectral_norm(conv) if spectral else conv]
            if norm != "none":  # (no Identity here: it would shift the indices of the default's keys)
                block.append(norm_layer(norm, nf))
            layers.append(nn.Sequential(*block, nn.LeakyReLU(0.2)))
        layers.append(nn.Conv2d(nf, 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for layer in self.layers:
            if self.training and self.noise_sigma > 0:
                x = x + self.noise_sigma * torch.randn_like(x)
            x = layer(x)
            feats.append(x)
        return feats


def _pyramid(scales: nn.ModuleList, x: Tensor) -> list[list[Tensor]]:
    """Run scale i on x downsampled i times (3x3 average, stride 2, pix2pixHD)."""
    outs = []
    for i, d in enumerate(scales):
        if i:
            x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        outs.append(d(x))
    return outs


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the input downsampled by 1, 2, 4, ...; returns one feature list per scale."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4, num_d: int = 2, *, norm: str = "instance",
                 spectral: bool = True, noise_sigma: float = 0.0) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, ndf, n_layers, norm=norm, spectral=spectral, noise_sigma=noise_sigma)
            for _ in range(num_d)
        )

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        return _pyramid(self.scales, x)


class ConditionalPatchDiscriminator(nn.Module):
    """PatchGAN(s) on cat[image, condition] (channels): D judges whether the image fits its condition.

    CAGAN: image 3 + article 3 channels, ndf 64, 3 layers, instance norm, noise_sigma 0.2, one scale.
    Same output convention as :class:`MultiscaleDiscriminator` (per scale, every layer, last = logits).
    """

    def __init__(self, image_channels: int, condition_channels: int, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance", spectral: bool = False, noise_sigma: float = 0.0, num_d: int = 1) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(image_channels + condition_channels, ndf, n_layers, norm=norm, spectral=spectral,
                               noise_sigma=noise_sigma)
            for _ in range(num_d)
        )

    def forward(self, image: Tensor, condition: Tensor) -> list[list[Tensor]]:
        return _pyramid(self.scales, torch.cat([image, condition], dim=1))
