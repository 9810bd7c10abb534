"""Multi-scale PatchGAN discriminator (pix2pixHD / SPADE) returning every layer's features."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """``n_layers`` stride-2/1 convs, spectral norm + instance norm, a 1-channel patch map at the end."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 2), nn.LeakyReLU(0.2))]
        nf = ndf
        for n in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            layers.append(nn.Sequential(
                spectral_norm(nn.Conv2d(prev, nf, 4, stride, 2, bias=False)), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2)
            ))
        layers.append(nn.Conv2d(nf, 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the input downsampled by 1, 2, 4, ...; returns one feature list per scale."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4, num_d: int = 2) -> None:
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, ndf, n_layers) for _ in range(num_d))

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        outs = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs
