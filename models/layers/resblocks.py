"""SPADE residual block (and its grouped GroupDNet form), spectral-normalised convolutions.

In frozen inference (eval, no autograd: see models.layers.spade_norm.frozen) the spectral-normalised
weights W / sigma are computed once and kept (prepacked, :class:`~models.layers.spade_norm.FrozenConv`)
instead of on every call, activations run in place on the SPADE outputs and the residual sum is added
into the last conv's output."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from models.layers.spade_norm import SPADE, FrozenConv, LabelMaps, drop_frozen, frozen, inference_path


def sn_conv(cin: int, cout: int, kernel: int, groups: int = 1, bias: bool = True, stride: int = 1) -> nn.Module:
    """A spectral-normalised conv. Sigma is taken over the (out, in/groups*k*k) matrix, as the references do."""
    return spectral_norm(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=bias))


class SPADEResBlock(nn.Module):
    """x -> SPADE -> lrelu -> conv -> SPADE -> lrelu -> conv, plus a learned shortcut when fin != fout.

    ``groups`` groups the convolutions and the SPADE layers alike (GroupDNet); 1 is the SPADE block.
    """

    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int = 128, groups: int = 1, spectral: bool = True) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        conv = sn_conv if spectral else (lambda i, o, k, groups=1, bias=True: nn.Conv2d(i, o, k, padding=k // 2, groups=groups, bias=bias))
        self.conv_0 = conv(fin, fmiddle, 3, groups=groups)
        self.conv_1 = conv(fmiddle, fout, 3, groups=groups)
        self.norm_0 = SPADE(fin, label_nc, hidden, groups)
        self.norm_1 = SPADE(fmiddle, label_nc, hidden, groups)
        if self.learned_shortcut:
            self.conv_s = conv(fin, fout, 1, groups=groups, bias=False)
            self.norm_s = SPADE(fin, label_nc, hidden, groups)

    def train(self, mode: bool = True) -> "SPADEResBlock":
        drop_frozen(self)
        return super().train(mode)

    def forward(self, x: Tensor, seg: Tensor | LabelMaps) -> Tensor:
        if isinstance(seg, LabelMaps) and inference_path(self):
            return self.frozen_forward(x, seg)
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx

    def frozen_forward(self, x: Tensor, seg: LabelMaps) -> Tensor:
        conv_0, conv_1, conv_s = (frozen(c, lambda c=c: FrozenConv.of(c)) if c is not None else None
                                  for c in (self.conv_0, self.conv_1, getattr(self, "conv_s", None)))
        shortcut = conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = conv_0(F.leaky_relu_(self.norm_0(x, seg), 0.2))
        dx = conv_1(F.leaky_relu_(self.norm_1(dx, seg), 0.2))
        return dx.add_(shortcut)
