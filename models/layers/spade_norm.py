"""SPADE normalisation (Park et al. 2019) and its grouped variant (GroupDNet / SMIS, Zhu et al. 2020).

``SPADE(x, seg) = BN(x) * (1 + gamma(seg)) + beta(seg)`` with a parameter-free batch norm and gamma/beta
predicted per pixel from the label map by a small conv net. With ``groups = G`` (GroupDNet) every conv
is grouped: the label channels and the feature channels are split into G groups and group g's features
are modulated only by group g's classes. ``groups = 1`` is plain SPADE.

Key names match the official state_dicts (``param_free_norm``, ``mlp_shared.0``, ``mlp_gamma``,
``mlp_beta``) so released checkpoints load without renaming inside a block.

Inference reads the label map as :class:`LabelMaps` (class ids, plus dense extra channels such as
Cityscapes' instance edges) instead of a one-hot tensor: a 3x3 convolution of a one-hot map is, per
pixel, the sum of 9 weight columns picked by the 9 neighbours' ids, so ``mlp_shared``'s first conv
becomes one ``embedding_bag`` (9 lookups and adds per pixel instead of 9 * C multiply-adds; C = 151 for
ADE20K). The result is the convolution's up to float rounding (tests/test_official_inference.py).
Every tensor it produces is channels-last, the layout the decoder keeps end to end.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The one memory layout of SPADE-family inference (see SPADEDecoder.decode for how it was chosen).
INFERENCE_LAYOUT = torch.channels_last


class LabelMaps:
    """A batch of label maps as ids ``[B,H,W]`` (< ``num_classes``) + optional dense ``extra`` channels
    ``[B,E,H,W]`` that follow the one-hot channels; resized copies (nearest) are cached per size."""

    def __init__(self, ids: Tensor, num_classes: int, extra: Tensor | None = None) -> None:
        if ids.dim() != 3:
            raise ValueError(f"label ids must be [B,H,W], got {tuple(ids.shape)}")
        self.ids, self.num_classes, self.extra = ids.long(), int(num_classes), extra
        self._sized: dict[tuple[int, int], LabelMaps] = {tuple(ids.shape[-2:]): self}

    @property
    def channels(self) -> int:
        return self.num_classes + (0 if self.extra is None else int(self.extra.shape[1]))

    def at(self, size: tuple[int, int] | torch.Size) -> "LabelMaps":
        """The maps at ``size`` as nearest interpolation of the one-hot tensor would give them (the same
        source pixel is picked for every channel, so resizing the ids is resizing the one-hot)."""
        size = (int(size[0]), int(size[1]))
        if size not in self._sized:
            ids = F.interpolate(self.ids[:, None].float(), size=size, mode="nearest")[:, 0].long()
            extra = None if self.extra is None else F.interpolate(self.extra, size=size, mode="nearest")
            resized = LabelMaps(ids, self.num_classes, extra)
            resized._sized = self._sized  # one cache for every size
            self._sized[size] = resized
        return self._sized[size]

    def dense(self) -> Tensor:
        """The one-hot (+ extra channels) float tensor ``[B, channels, H, W]``, channels-last."""
        onehot = F.one_hot(self.ids, self.num_classes).to(torch.float32)  # [B,H,W,C]: channels-last memory
        if self.extra is not None:
            onehot = torch.cat([onehot, self.extra.to(torch.float32).permute(0, 2, 3, 1)], dim=-1)
        return onehot.permute(0, 3, 1, 2).contiguous(memory_format=INFERENCE_LAYOUT)


def one_hot_conv(conv: nn.Conv2d, maps: LabelMaps) -> Tensor:
    """``conv(maps.dense())`` for a stride-1, 'same'-padded conv, computed by lookups (see the module
    docstring): out[p] = bias + sum over taps t of W[:, id(p + t), t], zero padding being an extra
    all-zero class. Grouped convs act as their block-diagonal dense weight. Channels-last output."""
    weight = conv.weight  # the spectral-norm-free conv of mlp_shared: a plain tensor
    cout, cin_g, kh, kw = weight.shape
    c, b, (h, w) = maps.num_classes, maps.ids.shape[0], maps.ids.shape[-2:]
    if conv.groups > 1:  # block-diagonal: input channel i feeds only its group's outputs
        dense = weight.new_zeros(cout, cin_g * conv.groups, kh, kw)
        step = cout // conv.groups
        for g in range(conv.groups):
            dense[g * step:(g + 1) * step, g * cin_g:(g + 1) * cin_g] = weight[g * step:(g + 1) * step]
        weight = dense
    taps = kh * kw
    table = weight.new_zeros(taps, c + 1, cout)  # row c: the padding "class", contributes nothing
    table[:, :c] = weight[:, :c].permute(2, 3, 1, 0).reshape(taps, c, cout)
    if conv.bias is not None:  # the centre tap always lies inside the image: it carries the bias once
        table[taps // 2, :c] += conv.bias
    ph, pw = kh // 2, kw // 2
    padded = F.pad(maps.ids, (pw, pw, ph, ph), value=c)
    index = torch.stack([padded[:, y:y + h, x:x + w] + (y * kw + x) * (c + 1) for y in range(kh) for x in range(kw)], dim=-1)
    out = F.embedding_bag(index.reshape(-1, taps), table.reshape(taps * (c + 1), cout), mode="sum")
    out = out.view(b, h, w, cout).permute(0, 3, 1, 2).contiguous(memory_format=INFERENCE_LAYOUT)
    if maps.extra is not None:  # dense extra channels (instance edges): an ordinary conv on their slice
        out = out + F.conv2d(maps.extra.contiguous(memory_format=INFERENCE_LAYOUT), weight[:, c:], None, 1, (ph, pw))
    return out


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

    def forward(self, x: Tensor, seg: Tensor | LabelMaps) -> Tensor:
        normalized = self.param_free_norm(x)
        if isinstance(seg, LabelMaps):
            if seg.extra is not None and self.mlp_shared[0].groups > 1:
                actv = self.mlp_shared(seg.at(x.shape[-2:]).dense())  # extra channels of grouped layers: dense
            else:
                actv = self.mlp_shared[1](one_hot_conv(self.mlp_shared[0], seg.at(x.shape[-2:])))
        else:
            seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest")
            actv = self.mlp_shared(seg)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)
