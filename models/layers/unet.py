"""pix2pix-style nested U-Net with skips (CP-VTON TOM, VITON stage 1, CAGAN), official state_dict layout.

Each block is ``self.model = nn.Sequential(...)`` with the submodule nested inside it, so keys read
``model.model.1.model.3.model...`` as in pix2pix and CP-VTON. Module indices do not depend on ``norm``
("none" inserts an ``nn.Identity``, which has no keys) and are, per block kind:

- outermost: downconv 0, submodule 1, relu 2, [upsample 3], upconv 3 / 4, [final norm], [final activation]
- innermost: lrelu 0, downconv 1, [downnorm 2], relu, [upsample], upconv, upnorm, [dropout]
- middle:    lrelu 0, downconv 1, downnorm 2, submodule 3, relu 4, [upsample 5], upconv 5 / 6, upnorm, [dropout]

(bracketed = only when present; upconv index: "transpose" / "resize-conv"). The innermost down-norm and
dropout are VITON's stage 1 (its encoder_6 is batch-normalised and its first decoder drops out), which
pix2pix has neither of.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.layers.norms import NORMS, norm_layer

UPSAMPLES = ("transpose", "resize-conv")
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def _up(kind: str, in_nc: int, out_nc: int, bias: bool) -> list[nn.Module]:
    if kind == "transpose":
        return [nn.ConvTranspose2d(in_nc, out_nc, 4, 2, 1, bias=bias)]
    # CP-VTON's resize-convolution; align_corners=False is what its torch 0.4 default did
    return [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(in_nc, out_nc, 3, 1, 1, bias=bias)]


class UNetSkipBlock(nn.Module):
    """One U-Net level: down (4x4 stride 2), the nested ``submodule``, up, then concat with the skip.

    Non-outermost blocks return cat([leaky_relu(x), up(...)]): the references' in-place LeakyReLU
    overwrites x before the concatenation reads it, so their skip carries the activated input. This is
    reproduced explicitly (no in-place ops) so imported checkpoints compute the same function.
    ``final_norm`` / ``final_activation`` apply to the outermost block only.
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, submodule: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, norm: str = "instance", dropout: bool = False,
                 upsample: str = "transpose", final_norm: bool = False, final_activation: str | None = None,
                 innermost_norm: bool = False, outer_bias: bool | None = None) -> None:
        super().__init__()
        if norm not in NORMS or upsample not in UPSAMPLES:
            raise ValueError(f"norm {norm!r} (valid: {', '.join(NORMS)}), upsample {upsample!r} (valid: {', '.join(UPSAMPLES)})")
        if final_activation is not None and final_activation not in ACTIVATIONS:
            raise ValueError(f"final_activation {final_activation!r}; valid: None, {', '.join(ACTIVATIONS)}")
        if (submodule is None) != innermost or (outermost and innermost):
            raise ValueError("exactly the innermost block has no submodule, and it cannot also be outermost")
        self.outermost = outermost
        bias = norm != "batch"  # pix2pix: a conv followed by BatchNorm has no bias; InstanceNorm here is affine=False
        downconv = nn.Conv2d(outer_nc if input_nc is None else input_nc, inner_nc, 4, 2, 1, bias=bias)
        if outermost:
            # bias unless BatchNorm follows: pix2pix's last ConvTranspose has one, CP-VTON's uses use_bias
            up_bias = not (final_norm and norm == "batch") if outer_bias is None else outer_bias
            layers = [downconv, submodule, nn.ReLU(), *_up(upsample, inner_nc * 2, outer_nc, up_bias)]
            if final_norm:
                layers.append(norm_layer(norm, outer_nc))  # CP-VTON TOM normalises its raw 4-channel output
            if final_activation is not None:
                layers.append(ACTIVATIONS[final_activation]())
        elif innermost:
            down = [downconv, norm_layer(norm, inner_nc)] if innermost_norm else [downconv]
            layers = [nn.LeakyReLU(0.2), *down, nn.ReLU(), *_up(upsample, inner_nc, outer_nc, bias), norm_layer(norm, outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        else:
            layers = [nn.LeakyReLU(0.2), downconv, norm_layer(norm, inner_nc), submodule, nn.ReLU(),
                      *_up(upsample, inner_nc * 2, outer_nc, bias), norm_layer(norm, outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        x = self.model[0](x)
        return torch.cat([x, self.model[1:](x)], dim=1)


class UNetGenerator(nn.Module):
    """pix2pix ``UnetGenerator``: ``num_downs`` stride-2 levels, widths ngf x 1, 2, 4, 8, 8, ...

    Input sides must be divisible by 2**num_downs. Dropout (if on) is in the 8*ngf -> 8*ngf middle
    blocks only, as pix2pix. The raw output is returned: callers split and activate it themselves
    (CP-VTON TOM: tanh on channels 0-2, sigmoid on 3, after ``final_norm``; pix2pix: final_activation="tanh").
    CP-VTON TOM = ``UNetGenerator(25, 4, 6, 64, norm="instance", upsample="resize-conv", final_norm=True)``.
    VITON stage 1 = ``UNetGenerator(25, 4, 6, 64, norm="batch", dropout="innermost", innermost_norm=True,
    outer_bias=False, final_activation="tanh")``: dropout where VITON has it (the first decoder only), a
    norm after the innermost down conv and no bias on the last deconv (its convs never have one).
    """

    DROPOUT = (False, True, "innermost")  # True: pix2pix's 8*ngf middle blocks; "innermost": VITON's

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int = 64, norm: str = "instance",
                 dropout: bool | str = False, upsample: str = "transpose", final_norm: bool = False,
                 final_activation: str | None = None, innermost_norm: bool = False, outer_bias: bool | None = None) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2 (an outermost and an innermost level), got {num_downs}")
        if dropout not in self.DROPOUT:
            raise ValueError(f"dropout {dropout!r}; valid: False, True (pix2pix's middle blocks), 'innermost'")
        width = [ngf * min(2**level, 8) for level in range(num_downs)]  # inner width of each level
        block = UNetSkipBlock(width[-2], width[-1], innermost=True, norm=norm, upsample=upsample,
                              dropout=dropout == "innermost", innermost_norm=innermost_norm)
        for level in range(num_downs - 2, 0, -1):
            block = UNetSkipBlock(width[level - 1], width[level], submodule=block, norm=norm, upsample=upsample,
                                  dropout=dropout is True and width[level - 1] == width[level] == 8 * ngf)
        self.model = UNetSkipBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm,
                                   upsample=upsample, final_norm=final_norm, final_activation=final_activation,
                                   outer_bias=outer_bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class RefineUNet(nn.Module):
    """The classic double-convolution U-Net of ACGPN (its ``Refine`` and the U-Net of ``UnetMask``).

    ``levels`` encoder levels of two 3x3 conv + InstanceNorm + ReLU, widths ngf x 1, 2, 4, ... (ACGPN:
    5 levels, 64..1024), 2x2 max-pooling between them; each decoder level upsamples (nearest) and
    convolves to half the width, concatenates [skip, up] and applies two 3x3 convs; the last level adds a
    3x3 conv to ``output_nc`` (raw output: callers activate it). Input sides must be divisible by
    2**(levels - 1). ``dropout`` (0.5) acts on the two deepest encoder outputs, as ACGPN's ``drop4`` /
    ``drop5`` (its UnetMask applies them, its trained Refine does not).

    Keys follow the official modules: encoder ``conv1`` .. ``conv{L}``, decoder ``up{L+1}`` ..
    ``up{2L-1}`` (``.1`` = the conv after the upsampling) and ``conv{L+1}`` .. ``conv{2L-1}`` (``.0``,
    ``.3``, and ``.6`` for the output conv of the last one); InstanceNorm is affine=False (no keys).
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, levels: int = 5, dropout: bool = False) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels must be >= 2 (an encoder level and the bottleneck), got {levels}")
        self.levels = levels
        width = [ngf * 2**k for k in range(levels)]

        def double(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, 1, 1), norm_layer("instance", cout), nn.ReLU(),
                    nn.Conv2d(cout, cout, 3, 1, 1), norm_layer("instance", cout), nn.ReLU()]

        for k in range(levels):
            setattr(self, f"conv{k + 1}", nn.Sequential(*double(input_nc if k == 0 else width[k - 1], width[k])))
        for k in range(levels - 1, 0, -1):  # decoder level n = 2L - k takes width[k] back to width[k - 1]
            n = 2 * levels - k
            setattr(self, f"up{n}", nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                  nn.Conv2d(width[k], width[k - 1], 3, 1, 1),
                                                  norm_layer("instance", width[k - 1]), nn.ReLU()))
            layers = double(2 * width[k - 1], width[k - 1])
            if k == 1:
                layers.append(nn.Conv2d(width[0], output_nc, 3, 1, 1))
            setattr(self, f"conv{n}", nn.Sequential(*layers))
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.5) if dropout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        levels = self.levels
        skips = []
        for k in range(levels):
            if k:
                x = self.pool(x)
            x = getattr(self, f"conv{k + 1}")(x)
            if k >= levels - 2:  # the reference's drop4 / drop5: the dropped map is also the skip
                x = self.drop(x)
            skips.append(x)
        for k in range(levels - 1, 0, -1):
            n = 2 * levels - k
            x = getattr(self, f"conv{n}")(torch.cat([skips[k - 1], getattr(self, f"up{n}")(x)], dim=1))
        return x
