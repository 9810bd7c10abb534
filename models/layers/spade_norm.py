"""SPADE normalisation (Park et al. 2019) and its grouped variant (GroupDNet / SMIS, Zhu et al. 2020).

``SPADE(x, seg) = BN(x) * (1 + gamma(seg)) + beta(seg)`` with a parameter-free batch norm and gamma/beta
predicted per pixel from the label map by a small conv net. With ``groups = G`` (GroupDNet) every conv
is grouped: the label channels and the feature channels are split into G groups and group g's features
are modulated only by group g's classes. ``groups = 1`` is plain SPADE.

Key names match the official state_dicts (``param_free_norm``, ``mlp_shared.0``, ``mlp_gamma``,
``mlp_beta``) so released checkpoints load without renaming inside a block.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SPADE(nn.Module):
    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128, groups: int = 1, kernel: int = 3) -> None:
        super().__init__()
        if label_nc % groups or norm_nc % groups or hidden % groups:
            raise ValueError(f"SPADE groups={groups} must divide label_nc={label_nc}, norm_nc={norm_nc}, hidden={hidden}")
        pad = kernel // 2
        # The official "syncbatch" norm is a BatchNorm without affine parameters (only running stats).
        self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel, padding=pad, groups=groups), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel, padding=pad, groups=groups)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel, padding=pad, groups=groups)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        normalized = self.param_free_norm(x)
        seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest")
        actv = self.mlp_shared(seg)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)
