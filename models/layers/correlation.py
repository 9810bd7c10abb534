"""CP-VTON's GMM feature correlation and L2 normalisation, independent of memory layout.

The official layer flattens with ``.view`` and fails on the non-contiguous tensors current PyTorch
produces (shared/reference/checkpoints/INDEX.md); this one uses einsum/reshape with the same index order.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def feature_l2norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    """x / sqrt(sum_c x^2 + eps) per position (eps inside the root, as CP-VTON's FeatureL2Norm)."""
    return x / torch.sqrt(x.pow(2).sum(dim=1, keepdim=True) + eps)


def feature_correlation(a: Tensor, b: Tensor) -> Tensor:
    """[B,C,H,W] x [B,C,H,W] -> [B, H*W, H, W] dot products of every position of ``a`` with every position of ``b``.

    out[n, wA*H + hA, hB, wB] = sum_c a[n,c,hA,wA] * b[n,c,hB,wB]: the channel enumerates a's positions
    column-major (x outer, y inner), the order CP-VTON's transpose/view/bmm sequence produces and its
    regression head's weights assume.
    """
    n, _, h, w = a.shape
    return torch.einsum("ncij,nckl->njikl", a, b).reshape(n, w * h, h, w)


class FeatureCorrelation(nn.Module):
    """Module form of :func:`feature_correlation` (no parameters)."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return feature_correlation(a, b)
