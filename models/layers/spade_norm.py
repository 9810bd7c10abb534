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

Frozen inference (eval mode, no autograd: ``generate``): what depends only on the weights is computed
once and kept (:func:`frozen`) until a parameter or buffer changes: the lookup table, spectral-normalised
weights, and the batch norm folded into gamma/beta (see :meth:`SPADE.frozen_weights`), so one SPADE layer
is one lookup, one conv and one ``addcmul`` instead of eight passes over its tensors.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The one memory layout of SPADE-family inference (see SPADEDecoder.decode for how it was chosen).
INFERENCE_LAYOUT = torch.channels_last


def inference_path(module: nn.Module) -> bool:
    """True where the frozen inference computation applies: eval mode, no autograd, not being traced by
    torch.compile (which optimises the plain computation itself and must not see the Python-side cache)."""
    return not module.training and not torch.is_grad_enabled() and not torch.compiler.is_compiling()


# What frozen() keeps, by module: outside the module, so that state_dict, deepcopy and pickling never see it
_FROZEN: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, Any]]" = weakref.WeakKeyDictionary()


def frozen(module: nn.Module, build: Callable[[], Any]) -> Any:
    """``build()``, computed once and kept for ``module`` while every parameter and buffer of it is unchanged.

    The key is each tensor's storage and version counter: an optimiser step, ``load_state_dict``, a
    training-mode batch-norm or spectral-norm update and ``.to()`` all change one of them, so the next call
    rebuilds. (Writes through ``tensor.data`` bypass the version counter; nothing in the zoo does that, and
    ``train()`` drops the cache anyway.) Tensors made in inference mode have no version counter: no cache.
    """
    tensors = [*module.parameters(), *module.buffers()]
    if any(t.is_inference() for t in tensors):
        return build()
    key = tuple((t.data_ptr(), t._version) for t in tensors)
    hit = _FROZEN.get(module)
    if hit is None or hit[0] != key:
        hit = (key, build())
        _FROZEN[module] = hit
    return hit[1]


def drop_frozen(module: nn.Module) -> None:
    """Forget what :func:`frozen` kept for ``module`` and its children (called by ``train()``)."""
    for m in module.modules():
        _FROZEN.pop(m, None)


class FrozenConv:
    """An eval-mode conv with its weight fixed: ``weight`` channels-last (the activations' layout: a
    contiguous weight is copied to it inside every conv call), and on CPU float32 with oneDNN also prepacked
    once into oneDNN's blocked layout (what torch.compile's freezing does: eager convs reorder the weight on
    every call, which costs most where the weight is large and the image small, e.g. 40 -> 18 ms for a
    1024->1024 3x3 conv at 8x16 on one thread). 1x1 ungrouped convs run as a matmul over the pixels."""

    def __init__(self, weight: Tensor, bias: Tensor | None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                 groups: int = 1) -> None:
        pair = lambda v: [int(v), int(v)] if isinstance(v, int) else [int(i) for i in v]  # noqa: E731
        self.weight, self.bias = weight.contiguous(memory_format=INFERENCE_LAYOUT), bias
        self.stride, self.padding, self.dilation, self.groups = pair(stride), pair(padding), pair(dilation), int(groups)
        self.matmul = tuple(weight.shape[-2:]) == (1, 1) and groups == 1 and self.stride == [1, 1]
        self.packed: Tensor | None = None
        self.packable = (not self.matmul and weight.device.type == "cpu" and weight.dtype == torch.float32
                         and torch.backends.mkldnn.is_available())

    def __call__(self, x: Tensor) -> Tensor:
        if self.matmul:
            w = self.weight.view(self.weight.shape[0], self.weight.shape[1])
            return F.linear(x.permute(0, 2, 3, 1), w, self.bias).permute(0, 3, 1, 2)  # [B,H,W,C] memory: channels-last
        if self.packable and x.device.type == "cpu" and x.dtype == torch.float32:
            if self.packed is None:  # packed for the first input's shape; oneDNN reorders itself should another need it
                try:
                    self.packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                        self.weight.contiguous().to_mkldnn(), self.padding, self.stride, self.dilation, self.groups, list(x.shape))
                except RuntimeError:
                    self.packable = False
            if self.packed is not None:
                return torch.ops.mkldnn._convolution_pointwise(x.contiguous(memory_format=INFERENCE_LAYOUT), self.packed,
                                                               self.bias, self.padding, self.stride, self.dilation,
                                                               self.groups, "none", [], "")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    @classmethod
    def of(cls, conv: nn.Conv2d) -> "FrozenConv":
        """``conv`` as it computes now (``conv.weight`` runs a spectral-norm parametrization: W / sigma)."""
        return cls(conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class LabelMaps:
    """A batch of label maps as ids ``[B,H,W]`` (< ``num_classes``) + optional dense ``extra`` channels
    ``[B,E,H,W]`` that follow the one-hot channels; resized copies (nearest) are cached per size."""

    def __init__(self, ids: Tensor, num_classes: int, extra: Tensor | None = None) -> None:
        if ids.dim() != 3:
            raise ValueError(f"label ids must be [B,H,W], got {tuple(ids.shape)}")
        self.ids, self.num_classes, self.extra = ids.long(), int(num_classes), extra
        self._sized: dict[tuple[int, int], LabelMaps] = {tuple(ids.shape[-2:]): self}
        self._lookups: dict[tuple[int, int], tuple[Tensor, Tensor | None]] = {}

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

    def lookups(self, kh: int, kw: int) -> tuple[Tensor, Tensor | None]:
        """The ``embedding_bag`` rows of a kh x kw 'same' conv over these maps (see :func:`lookup_table`):
        ``[B*H*W, taps * (1 + E)]`` row ids and, with extra channels, their weights (1 for the class taps,
        the extra channel's value for its taps); the same for every layer at this size, so kept."""
        if (kh, kw) not in self._lookups:
            c, (h, w), taps = self.num_classes, self.ids.shape[-2:], kh * kw
            ph, pw = kh // 2, kw // 2
            padded = F.pad(self.ids, (pw, pw, ph, ph), value=c)  # id c: the zero padding, a row of zeros
            offsets = [(y, x) for y in range(kh) for x in range(kw)]
            rows = [padded[:, y:y + h, x:x + w] + (y * kw + x) * (c + 1) for y, x in offsets]
            weights = None
            if self.extra is not None:  # extra channel e at tap t: row taps*(c+1) + t*E + e, weighted by its value
                e = self.extra.shape[1]
                pad_extra = F.pad(self.extra.to(torch.float32), (pw, pw, ph, ph))
                base = taps * (c + 1)
                rows += [torch.full_like(self.ids, base + t * e + k) for t in range(taps) for k in range(e)]
                extra_w = [pad_extra[:, k, y:y + h, x:x + w] for y, x in offsets for k in range(e)]
                ones = torch.ones(self.ids.shape, dtype=torch.float32, device=self.ids.device)
                weights = torch.stack([ones] * taps + extra_w, dim=-1)
                weights = weights.reshape(-1, taps * (1 + e))
            index = torch.stack(rows, dim=-1).reshape(-1, len(rows))
            self._lookups[(kh, kw)] = (index, weights)
        return self._lookups[(kh, kw)]


def lookup_table(conv: nn.Conv2d, num_classes: int) -> Tensor:
    """``conv``'s weight as ``embedding_bag`` rows: out[p] = bias + sum over taps t of W[:, id(p + t), t]
    (+ sum over taps and extra channels e of extra_e(p + t) * W[:, c + e, t]), zero padding being an extra
    all-zero class. Grouped convs act as their block-diagonal dense weight. ``[taps*(c+1) + taps*E, cout]``."""
    weight = conv.weight  # the spectral-norm-free conv of mlp_shared (or SPADE's fc): a plain tensor
    cout, cin_g, kh, kw = weight.shape
    c = num_classes
    if conv.groups > 1:  # block-diagonal: input channel i feeds only its group's outputs
        dense = weight.new_zeros(cout, cin_g * conv.groups, kh, kw)
        step = cout // conv.groups
        for g in range(conv.groups):
            dense[g * step:(g + 1) * step, g * cin_g:(g + 1) * cin_g] = weight[g * step:(g + 1) * step]
        weight = dense
    taps, extra = kh * kw, weight.shape[1] - c
    table = weight.new_zeros(taps, c + 1, cout)  # row c: the padding "class", contributes nothing
    table[:, :c] = weight[:, :c].permute(2, 3, 1, 0).reshape(taps, c, cout)
    if conv.bias is not None:  # the centre tap always lies inside the image: it carries the bias once
        table[taps // 2, :c] += conv.bias
    extra_rows = weight[:, c:].permute(2, 3, 1, 0).reshape(taps * extra, cout)  # tap-major, then channel
    return torch.cat([table.reshape(taps * (c + 1), cout), extra_rows])


def lookup(table: Tensor, maps: LabelMaps, kernel: tuple[int, int]) -> Tensor:
    """The conv whose :func:`lookup_table` is ``table``, on ``maps``: ``[B, cout, H, W]`` channels-last."""
    index, weights = maps.lookups(*kernel)
    b, (h, w) = maps.ids.shape[0], maps.ids.shape[-2:]
    out = F.embedding_bag(index, table, per_sample_weights=weights, mode="sum")
    return out.view(b, h, w, -1).permute(0, 3, 1, 2)  # [B,H,W,C] memory: channels-last already


def one_hot_conv(conv: nn.Conv2d, maps: LabelMaps) -> Tensor:
    """``conv(maps.dense())`` for a stride-1, 'same'-padded conv, computed by lookups (see the module
    docstring). Channels-last output."""
    if conv.weight.shape[1] * conv.groups != maps.channels:
        raise ValueError(f"conv reads {conv.weight.shape[1] * conv.groups} channels, the label maps have {maps.channels}")
    return lookup(lookup_table(conv, maps.num_classes), maps, conv.kernel_size)


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

    def train(self, mode: bool = True) -> "SPADE":
        drop_frozen(self)
        return super().train(mode)

    def forward(self, x: Tensor, seg: Tensor | LabelMaps) -> Tensor:
        if isinstance(seg, LabelMaps) and inference_path(self) and self.param_free_norm.running_var is not None:
            return self.frozen_forward(x, seg)
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

    def frozen_weights(self, num_classes: int) -> dict[str, Any]:
        """The eval-mode layer as one lookup table and one (or, grouped, two) convs.

        With s = 1/sqrt(running_var + eps) and m = running_mean, ``BN(x) * (1 + gamma) + beta`` is
        ``x * gamma' + beta'`` for gamma' = s(1 + gamma) and beta' = beta - m gamma'; both are linear in the
        hidden activation, so they are convs whose weights are the official ones scaled and combined:
        gamma' = conv(W_g s, (b_g + 1) s), beta' = conv(W_b - m W_g s, b_b - m (b_g + 1) s).
        Ungrouped, gamma' and beta' are one conv with 2 * norm_nc outputs (5 % faster than two, measured).
        """
        norm, conv_g, conv_b = self.param_free_norm, self.mlp_gamma, self.mlp_beta
        s = torch.rsqrt(norm.running_var + norm.eps)
        m = norm.running_mean
        w_g = conv_g.weight * s[:, None, None, None]
        b_g = (conv_g.bias + 1) * s
        w_b = conv_b.weight - m[:, None, None, None] * w_g
        b_b = conv_b.bias - m * b_g
        out: dict[str, Any] = {"table": lookup_table(self.mlp_shared[0], num_classes)}
        conv = lambda w, b: FrozenConv(w, b, 1, conv_g.padding, 1, conv_g.groups)  # noqa: E731
        if conv_g.groups == 1:
            out["both"] = conv(torch.cat([w_g, w_b]), torch.cat([b_g, b_b]))
        else:  # one grouped conv would interleave gamma' and beta' group by group
            out.update(gamma=conv(w_g, b_g), beta=conv(w_b, b_b))
        return out

    def frozen_forward(self, x: Tensor, seg: LabelMaps) -> Tensor:
        maps = seg.at(x.shape[-2:])
        p = frozen(self, lambda: self.frozen_weights(maps.num_classes))
        actv = F.relu_(lookup(p["table"], maps, self.mlp_shared[0].kernel_size))
        if "both" in p:
            gamma, beta = p["both"](actv).split(x.shape[1], dim=1)
        else:
            gamma, beta = p["gamma"](actv), p["beta"](actv)
        return torch.addcmul(beta, x, gamma, out=torch.empty_like(x, memory_format=INFERENCE_LAYOUT))
