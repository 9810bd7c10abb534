"""ACGPN (Yang et al., CVPR 2020, switchablenorms/DeepFashion_Try_On): semantic layout first, then the
clothes warped onto the predicted region, then content fusion.

Four generators, all of them ACGPN's double-convolution U-Net (``models.layers.unet.RefineUNet``):

- **G1** (semantic generation, 37 -> 14): the person's parsing with the arms and the old top merged into
  one "clothes" region, the flat product and its mask, 18 pose maps and a noise channel -> the parsing
  without the top (where the arms will be);
- **G2** (cloth mask, 37 -> 1): the same inputs with G1's layout -> the region the new top will cover;
- **U** (clothes warping): an STN whose bounded loc-net predicts 5x5 TPS control points from [product
  mask, target region, product] (``models.layers.tps.TPSGridGen``, with the second-order difference
  constraints of :func:`tps_constraints`), then a U-Net 4 -> 4 on [target region, warped product]
  rendering the clothes and a composition mask between that rendering and the warp;
- **G** (content fusion, 24 -> 3): the person with the top and the occluding arm parts cut out, the
  new layout, the fused clothes, the mean arm-skin colour and noise -> the try-on.

Four pix2pixHD multi-scale discriminators (``d1``..``d3``, ``d``; num_D 2, n_layers_D 3, ndf 64,
LSGAN), one per generator output, conditioned on that generator's input.

Label set. The architecture gives ids a meaning (4 upper clothes, 7 noise, 11/13 the arms, 0 the
background), so the model reads ``acgpn-14`` label maps only and declares it (``INPUTS.label_set``):
``zoo train`` then reads the ``<H>x<W>-acgpn-14`` arrays, which ``curate labelmaps DS --label-set
acgpn-14`` writes from LIP-20 / DressCode parsing through the conversion tables of curate/labelsets.py.
Converting inside the model instead would tie the weights to whatever set a dataset happened to hold.

Training. In the reference every module is teacher-forced (G2 reads the true parsing, U the true cloth
region, G the true clothes), so the four train independently and the schedule is only how long each
trains: README "G and G2 200 epochs, G1 and U-Net 20 epochs". Here: stage ``g1_u`` (G1, U and their
discriminators D1, D3: the reference's 20 epochs), then stage ``g2_g`` (G1 and U frozen; G2, G with D2,
D: its 200 epochs). ``zoo train --stage g1_u --steps N`` then ``--stage g2_g --steps 10N`` is the
reference's ratio; one step of a stage = one optimiser step of each of its two phases.

Differences from the reference, on purpose: Adam everywhere (its 2021 update uses AdamW, weight decay
0.01, for G and D; the trainer's phases are Adam); the random irregular-mask files it punches into the
arms of G's training input are replaced by random rectangles (:func:`random_holes`); noise is drawn from
the global RNG in training and is a fixed seeded map in eval mode, so generation is repeatable;
generation keeps every mask's channel axis, so it works at any batch size (the reference's test forward
broadcasts [B,H,W] against [B,1,H,W] and is right at batch 1 only). Kept as the reference has them,
odd as they are: the parsing cross-entropy takes G1's sigmoid outputs as logits, and the cloth-mask
BCE-with-logits takes G2's sigmoid output.

Official checkpoints (``zoo import acgpn DIR`` with latest_net_{G1,G2,U,G}.pth): keys map by prefix;
``paper`` reproduces the official parameter counts (G1 34,540,942, G2 34,533,441, G 34,527,107, U
36,467,950). U's file stores its TPS constants as buffers; ours are computed, so the import checks
that the stored ones describe the same grid and drops them (:func:`_without_verified_tps_buffers`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ModelInputs, Stage, TrainingPhase, TrainingRecipe, TryOnModel
from models.checkpoint_import import OfficialCheckpoint, StateDict
from models.layers.discriminators import MultiscaleDiscriminator
from models.layers.losses import (GAN_OBJECTIVES, PERCEPTUAL_BACKBONES, cached_perceptual, feature_matching_loss,
                                  gan_d_loss, gan_g_loss)
from models.layers.norms import norm_layer
from models.layers.person import pose_maps
from models.layers.tps import TPSGridGen, regular_control_points, warp
from models.layers.unet import RefineUNet
from models.registry import register_model

LABEL_SET = "acgpn-14"
NUM_LABELS = 14
# acgpn-14 ids the pipeline relies on (curate/labelsets.py)
BACKGROUND, UPPER, NOISE, LEFT_ARM, RIGHT_ARM = 0, 4, 7, 11, 13
POSE_CHANNELS = 18
# The reference's noise: cv2.randn into uint8 with sigma 255, then /255 cast to uint8, so a pixel is 1
# exactly where the rounded sample saturates at 255, i.e. z >= 254.5 / 255 (about 16 % of pixels), else 0.
NOISE_THRESHOLD = 254.5 / 255
MIN_SKIN_PIXELS = 10  # fewer arm pixels than this: the skin colour is 0 (the reference's rule)


@dataclasses.dataclass(frozen=True)
class ACGPNConfig:
    height: int = 256
    width: int = 192
    label_nc: int = NUM_LABELS  # acgpn-14 only (the architecture reads ids 4, 7, 11, 13 by meaning)
    ngf: int = 64  # Refine U-Nets' first width (64..1024 over 5 levels)
    levels: int = 5
    refine_dropout: bool = False  # G1, G2, G as trained (the 2021 update removed their dropout)
    warp_dropout: bool = True  # U's drop4 / drop5 act in training (UnetMask)
    grid_size: int = 5  # TPS control points per side
    grid_span: float = 0.9  # control points on linspace(-0.9, 0.9): bounded inside tanh's range
    loc_ngf: int = 8  # loc-net: first conv's width, doubling per stride-2 conv
    loc_downs: int = 6  # loc-net stride-2 convs: 256x192 -> 4x3, max-pooled to 2x1
    loc_hidden: int = 128
    ndf: int = 64
    n_layers_d: int = 3  # pix2pixHD's n_layers_D (3 stride-2 convs + a stride-1 one before the patch logits)
    num_d: int = 2
    pose_radius: int = 5  # half-side of the pose squares in pixels (5 at 256 px, as the reference)
    cloth_dilation: int = 1  # dilations (3x3 cross) of G2's thresholded cloth mask at generation
    occlusion_dilation: int = 10  # dilations of the arm parts inside the old top (where the new top may not reach)
    align_corners: bool = True  # the TPS target grid is built with pixel 0 at -1 and pixel W-1 at +1

    def __post_init__(self) -> None:
        if self.label_nc != NUM_LABELS:
            raise ValueError(f"ACGPN reads {LABEL_SET} label maps ({NUM_LABELS} classes), got label_nc={self.label_nc}: "
                             f"run `curate labelmaps DS --label-set {LABEL_SET}` and train on those arrays")
        f = 2 ** (self.levels - 1)
        if self.height % f or self.width % f:
            raise ValueError(f"{self.height}x{self.width} is not divisible by 2**(levels - 1)={f}")
        f = 2**self.loc_downs
        if self.height % f or self.width % f or self.height // f < 2 or self.width // f < 2:
            raise ValueError(f"{self.height}x{self.width} needs to be divisible by 2**loc_downs={f} with a feature map of "
                             "at least 2x2 for the loc-net's max-pooling: use fewer loc_downs")
        if not 0 < self.grid_span < 1:
            raise ValueError(f"grid_span must be in (0, 1) (the loc-net's bias is arctanh of the points), got {self.grid_span}")


@dataclasses.dataclass(frozen=True)
class ACGPNRecipe(TrainingRecipe):
    """The reference's training (ACGPN_train/models/pix2pixHD_model.py, train.py at f5f5598).

    GAN terms are summed over the discriminator scales, as its GANLoss does; feature matching (on D and
    D3 only) is weighted 5 * (1 / num_D) * 4 / (n_layers_D + 1) there (``lambda_feat`` = the 5; its
    ``--lambda_feat 10`` option is parsed but unused). VGG19 terms: relu5_1 only on the warped (1),
    composed (10) and rendered (20) clothes, all five layers on the final image with the true clothes
    pasted back (5). Each of the six TPS constraint terms is weighted 0.1.
    """

    MACHINE_LOCAL: ClassVar[frozenset[str]] = frozenset({"vgg_weights"})
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    gan_objective: str = "lsgan"
    lambda_gan: float = 1.0
    lambda_feat: float = 5.0
    lambda_parsing: float = 10.0  # G1: cross-entropy to the parsing without the top
    lambda_cloth_mask: float = 10.0  # G2: BCE to the worn top's region
    lambda_l1_final: float = 10.0
    lambda_l1_warped: float = 1.0
    lambda_l1_warped_mask: float = 1.0
    lambda_l1_rendered: float = 0.2
    lambda_l1_composed: float = 10.0
    lambda_l1_composition: float = 1.0  # U's composition mask to the worn top's region
    lambda_vgg_warped: float = 1.0
    lambda_vgg_composed: float = 10.0
    lambda_vgg_rendered: float = 20.0
    lambda_vgg_final: float = 5.0
    lambda_constraints: float = 0.1
    difference_floor: float = 0.08  # second differences below this are not penalised (max(0.08, .))
    collinearity_floor: float = 0.02
    hole_count: int = 3  # random rectangles cut into the arms of G's training input
    hole_max_fraction: float = 0.3  # of each side
    perceptual_backbone: str = "vgg19"
    vgg_weights: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.perceptual_backbone not in PERCEPTUAL_BACKBONES:
            raise ValueError(f"perceptual_backbone {self.perceptual_backbone!r}; valid: {', '.join(PERCEPTUAL_BACKBONES)}")
        if self.gan_objective not in GAN_OBJECTIVES:
            raise ValueError(f"gan_objective {self.gan_objective!r}; valid: {', '.join(GAN_OBJECTIVES)}")


# --------------------------------------------------------------------------------------------------
# The TPS constraints and the clothes-warping module


def tps_constraints(points: Tensor, grid_size: int, difference_floor: float = 0.0,
                    collinearity_floor: float = 0.0) -> dict[str, Tensor]:
    """ACGPN's second-order difference constraints on predicted control points.

    ``points`` [B, g*g, 2] are (x, y) in ACGPN's order: point r*g + c is row r (y index), column c.
    Along each row, rx / ry are the mean |d_{c+1}^2 - d_c^2| of the squared first differences of x / y
    (neighbouring intervals should have equal lengths); cx / cy the same along each column. rg / cg are
    the mean |(y1 - y0)(x1 - x2) - (y1 - y2)(x1 - x0)| (twice the area of the triangle of three
    consecutive points: 0 when collinear) along rows / columns, averaged per sample. The reference
    floors every difference term elementwise at 0.08 and each sample's collinearity mean at 0.02 (no
    penalty, and no gradient, below them); the floors here default to 0 so the raw terms can be read.
    """
    b = points.shape[0]
    p = points.reshape(b, grid_size, grid_size, 2)  # [B, row, column, (x, y)]
    along_rows = (p[:, :, 1:] - p[:, :, :-1]) ** 2
    along_cols = (p[:, 1:] - p[:, :-1]) ** 2
    row2 = (along_rows[:, :, 1:] - along_rows[:, :, :-1]).abs()
    col2 = (along_cols[:, 1:] - along_cols[:, :-1]).abs()

    def twice_area(a: Tensor, m: Tensor, c: Tensor) -> Tensor:
        (x0, y0), (x1, y1), (x2, y2) = a.unbind(-1), m.unbind(-1), c.unbind(-1)
        return ((y1 - y0) * (x1 - x2) - (y1 - y2) * (x1 - x0)).abs()

    rg = twice_area(p[:, :, :-2], p[:, :, 1:-1], p[:, :, 2:]).flatten(1).mean(1)
    cg = twice_area(p[:, :-2], p[:, 1:-1], p[:, 2:]).flatten(1).mean(1)
    floor_d, floor_g = difference_floor, collinearity_floor
    return {
        "rx": row2[..., 0].clamp_min(floor_d).mean(), "ry": row2[..., 1].clamp_min(floor_d).mean(),
        "cx": col2[..., 0].clamp_min(floor_d).mean(), "cy": col2[..., 1].clamp_min(floor_d).mean(),
        "rg": rg.clamp_min(floor_g).mean(), "cg": cg.clamp_min(floor_g).mean(),
    }


class LocalisationCNN(nn.Module):
    """The STN's regressor: ``downs`` 4x4 stride-2 convs (the first ReLU-then-norm, the rest norm-then-
    ReLU, as the reference), two 3x3 convs, 2x2 max-pool, fc -> ReLU -> dropout 0.5 -> fc."""

    def __init__(self, input_nc: int, outputs: int, ngf: int, downs: int, hidden: int, feature_size: tuple[int, int]) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ngf, 4, 2, 1), nn.ReLU(), norm_layer("instance", ngf)]
        width = ngf
        for _ in range(downs - 1):
            out = min(width * 2, 1024)
            layers += [nn.Conv2d(width, out, 4, 2, 1), norm_layer("instance", out), nn.ReLU()]
            width = out
        for _ in range(2):
            # (the reference's norm here is InstanceNorm2d(64) on 256 channels: affine-free, so the same function)
            layers += [nn.Conv2d(width, width, 3, 1, 1), norm_layer("instance", width), nn.ReLU()]
        self.model = nn.Sequential(*layers)
        self.maxpool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(width * (feature_size[0] // 2) * (feature_size[1] // 2), hidden)
        self.fc2 = nn.Linear(hidden, outputs)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.model(x)).flatten(1)
        return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.5, training=self.training))


class BoundedGridLocNet(nn.Module):
    """Control points tanh(cnn(x)) in (-1, 1); fc2 starts at weight 0 and bias arctanh(the regular
    grid), so the untrained STN is the identity warp."""

    def __init__(self, control_points: Tensor, cfg: ACGPNConfig) -> None:
        super().__init__()
        feature = (cfg.height // 2**cfg.loc_downs, cfg.width // 2**cfg.loc_downs)
        self.cnn = LocalisationCNN(5, control_points.numel(), cfg.loc_ngf, cfg.loc_downs, cfg.loc_hidden, feature)
        with torch.no_grad():
            self.cnn.fc2.weight.zero_()
            self.cnn.fc2.bias.copy_(torch.atanh(control_points.double()).reshape(-1).to(self.cnn.fc2.bias.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.cnn(x)).reshape(x.shape[0], -1, 2)


class STN(nn.Module):
    """Bounded-grid TPS spatial transformer: warps the product so that it fills the target region."""

    def __init__(self, cfg: ACGPNConfig) -> None:
        super().__init__()
        # ACGPN's order: y outer, x inner (itertools.product over rows, then (x, y) swapped)
        points = regular_control_points(cfg.grid_size, x_major=False, span=cfg.grid_span)
        self.loc_net = BoundedGridLocNet(points, cfg)
        self.tps = TPSGridGen(cfg.height, cfg.width, points, cfg.align_corners)

    def forward(self, cloth: Tensor, target: Tensor, cloth_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(warped cloth, warped mask, control points [B, N, 2])."""
        points = self.loc_net(torch.cat([cloth_mask, target, cloth], dim=1))
        grid = self.tps(points)
        ac = self.tps.align_corners
        # the reference's canvas-0 sampling: zero padding, then times the warp of an all-ones image
        inside = warp(torch.ones_like(cloth_mask), grid, ac, "zeros")
        return warp(cloth, grid, ac, "zeros") * inside, warp(cloth_mask, grid, ac, "zeros") * inside, points


class ClothesWarping(RefineUNet):
    """ACGPN's U (``UnetMask``): the STN plus a U-Net 4 -> 4 on [target region, warped cloth]."""

    def __init__(self, cfg: ACGPNConfig) -> None:
        super().__init__(4, 4, cfg.ngf, cfg.levels, dropout=cfg.warp_dropout)
        self.stn = STN(cfg)


# --------------------------------------------------------------------------------------------------
# Mask helpers


def dilate(mask: Tensor, iterations: int) -> Tensor:
    """Binary dilation by the 3x3 cross (cv2's 3x3 MORPH_ELLIPSE), ``iterations`` times, zero outside."""
    for _ in range(iterations):
        p = F.pad(mask, (1, 1, 1, 1))
        mask = torch.stack([p[..., 1:-1, 1:-1], p[..., :-2, 1:-1], p[..., 2:, 1:-1], p[..., 1:-1, :-2],
                            p[..., 1:-1, 2:]]).amax(0)
    return mask


def random_holes(like: Tensor, count: int, max_fraction: float) -> Tensor:
    """[B,1,H,W] in {0,1}: ``count`` random axis-aligned rectangles per sample (global RNG), each side up
    to ``max_fraction`` of the image's; our stand-in for the reference's irregular-mask files."""
    b, _, h, w = like.shape
    if count <= 0:
        return like.new_zeros(b, 1, h, w)
    r = torch.rand(b, count, 4, device=like.device, dtype=like.dtype)
    cy, cx = r[..., 0, None, None] * h, r[..., 1, None, None] * w
    half_h, half_w = r[..., 2, None, None] * max_fraction * h / 2, r[..., 3, None, None] * max_fraction * w / 2
    ys = torch.arange(h, device=like.device, dtype=like.dtype)[:, None]
    xs = torch.arange(w, device=like.device, dtype=like.dtype)[None, :]
    inside = ((ys - cy).abs() <= half_h) & ((xs - cx).abs() <= half_w)  # [B, count, H, W]
    return inside.any(1, keepdim=True).to(like.dtype)


def mean_colour(mask: Tensor, image: Tensor) -> Tensor:
    """[B,3,H,W]: each image's mean colour inside ``mask`` everywhere (0 with under 10 mask pixels)."""
    count = mask.flatten(1).sum(1)
    colour = (mask * image).sum((2, 3)) / count.clamp_min(1)[:, None]
    colour = torch.where((count >= MIN_SKIN_PIXELS)[:, None], colour, torch.zeros_like(colour))
    return colour[:, :, None, None].expand_as(image)


def one_hot(ids: Tensor) -> Tensor:
    """[B,1,H,W] integer ids -> [B,14,H,W] float."""
    return F.one_hot(ids[:, 0].long(), NUM_LABELS).permute(0, 3, 1, 2).to(torch.float32)


# --------------------------------------------------------------------------------------------------
# Official checkpoints

_TPS_BUFFERS = ("stn.tps.inverse_kernel", "stn.tps.padding_matrix", "stn.tps.target_coordinate_repr")
TPS_BUFFER_TOLERANCE = 1e-3  # max |grid-operator difference| (normalised coordinates; 0.1 px at 192 px)


def _buffer_image_size(representation: Tensor) -> tuple[int, int]:
    """(H, W) of the pixel grid a stored ``target_coordinate_repr`` is built on: its last two columns
    are every pixel's (x, y), row by row, so W pixels share the first row's y."""
    y = representation[:, -1]
    w = int((y == y[0]).sum())
    h = representation.shape[0] // max(w, 1)
    if w < 2 or h < 2 or h * w != representation.shape[0]:
        raise ValueError(f"stn.tps.target_coordinate_repr {tuple(representation.shape)} is not a pixel grid's TPS representation")
    return h, w


def _without_verified_tps_buffers(state: StateDict) -> StateDict:
    """U's state without its three TPS buffers, once they are shown to describe our grid.

    The official grid is ``target_coordinate_repr @ inverse_kernel @ [source points; padding_matrix]``;
    with a zero padding matrix only the first N columns of the inverse act, so the release's grid
    operator is ``repr @ inverse_kernel[:, :N]``, which must equal our ``TPSGridGen.mapping`` for
    ACGPN's bounded control points on the same pixel grid (the release: 256x192, 5x5 points).
    """
    lacking = [k for k in _TPS_BUFFERS if k not in state]
    if lacking:
        raise ValueError(f"the U file lacks the TPS buffers {lacking}: not ACGPN's latest_net_U.pth")
    inverse, padding, representation = (state[k].double() for k in _TPS_BUFFERS)
    n = inverse.shape[0] - 3
    side = round(max(n, 0) ** 0.5)
    if inverse.dim() != 2 or inverse.shape[1] != n + 3 or side * side != n or tuple(padding.shape) != (3, 2) \
            or representation.dim() != 2 or representation.shape[1] != n + 3:
        raise ValueError(f"shape mismatches: TPS buffers {[tuple(state[k].shape) for k in _TPS_BUFFERS]} are not those of "
                         "a square control grid (ACGPN: (28, 28), (3, 2), (H*W, 28))")
    if padding.abs().max() != 0:
        raise ValueError("stn.tps.padding_matrix is not zero: not ACGPN's TPS")
    h, w = _buffer_image_size(representation)
    cfg = ACGPNConfig()
    points = regular_control_points(side, x_major=False, span=cfg.grid_span)
    ours = TPSGridGen(h, w, points, cfg.align_corners).mapping.double()
    gap = float((representation @ inverse[:, :n] - ours).abs().max())
    if not gap <= TPS_BUFFER_TOLERANCE:
        raise ValueError(f"the U file's TPS buffers describe another grid (max difference {gap:.3g} > {TPS_BUFFER_TOLERANCE}) "
                         f"than ACGPN's bounded {side}x{side} TPS at {h}x{w}")
    return {k: v for k, v in state.items() if k not in _TPS_BUFFERS}


def _official_filter(state: StateDict, prefix: str) -> StateDict:
    if prefix == "u":
        state = _without_verified_tps_buffers(state)
    return {f"{prefix}.{k}": v for k, v in state.items()}


def _preset_for(states: dict[str, StateDict]) -> str:
    """The preset of the release's image size (U's TPS buffers record it; the release: 256x192 = paper)."""
    representation = states["u"].get(_TPS_BUFFERS[2])
    if representation is None:
        return "paper"  # the filter then says what the file lacks
    size = _buffer_image_size(representation)
    for name, overrides in ACGPN.PRESETS.items():
        cfg = ACGPNConfig(**overrides)
        if (cfg.height, cfg.width) == size:
            return name
    raise ValueError(f"the U file's TPS grid is {size[0]}x{size[1]}; no acgpn preset has that size (pass --preset)")


# --------------------------------------------------------------------------------------------------
# The model


@register_model
class ACGPN(TryOnModel):
    name: ClassVar[str] = "acgpn"
    Config = ACGPNConfig
    Recipe = ACGPNRecipe
    INPUTS = ModelInputs(
        generate=("image", "article", "article_mask", "labelmap", "keypoints"),
        train=("image", "article", "article_mask", "labelmap", "keypoints"),
        label_channels="label_nc",
        label_set=LABEL_SET,
    )
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": dict(height=64, width=48, ngf=8, levels=4, loc_ngf=4, loc_downs=4, loc_hidden=32, ndf=8, pose_radius=1,
                     occlusion_dilation=3),
        "paper": dict(),  # 256x192, the official modules (batch 1 in the reference: --batch-size 1)
    }
    OFFICIAL = OfficialCheckpoint(
        parts={"g": ("g", "latest_net_G.pth"), "g1": ("g1", "latest_net_G1.pth"), "g2": ("g2", "latest_net_G2.pth"),
               "u": ("u", "latest_net_U.pth")},
        required=("g", "g1", "g2", "u"), filter_fn=_official_filter, preset_for=_preset_for, label_set=LABEL_SET,
        describe="switchablenorms/DeepFashion_Try_On checkpoints/label2city/: the folder, or latest_net_G.pth with "
                 "--part g1=latest_net_G1.pth --part g2=latest_net_G2.pth --part u=latest_net_U.pth",
    )
    TRAINING_ONLY: ClassVar[tuple[str, ...]] = ("d1", "d2", "d3", "d")

    def __init__(self, config: ACGPNConfig) -> None:
        super().__init__(config)
        c = config
        g1_in = 1 + 3 + NUM_LABELS + POSE_CHANNELS + 1
        g_in = 3 + NUM_LABELS + 3 + 3 + 1
        self.g1 = RefineUNet(g1_in, NUM_LABELS, c.ngf, c.levels, c.refine_dropout)
        self.g2 = RefineUNet(g1_in, 1, c.ngf, c.levels, c.refine_dropout)
        self.u = ClothesWarping(c)
        self.g = RefineUNet(g_in, 3, c.ngf, c.levels, c.refine_dropout)

        def disc(channels: int) -> MultiscaleDiscriminator:
            # our PatchDiscriminator counts the stride-1 conv as a layer: pix2pixHD's n_layers_D 3 is our 4
            return MultiscaleDiscriminator(channels, c.ndf, c.n_layers_d + 1, c.num_d, norm="instance", spectral=False)

        self.d1 = disc(g1_in + NUM_LABELS)
        self.d2 = disc(g1_in + 1)
        self.d3 = disc(1 + 3 + 3)
        self.d = disc(g_in + 3)
        for module in self.modules():  # pix2pixHD's weights_init: conv weights N(0, 0.02)
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)

    # ---- inputs ----------------------------------------------------------------------------------
    def _noise(self, like: Tensor, index: int) -> Tensor:
        """The reference's binary noise channel: fresh in training, a fixed map per use in eval mode."""
        b, _, h, w = like.shape
        if self.training:
            z = torch.randn(b, 1, h, w, device=like.device)
        else:
            z = torch.randn(1, 1, h, w, generator=torch.Generator().manual_seed(index)).to(like.device).expand(b, 1, h, w)
        return (z >= NOISE_THRESHOLD).to(like.dtype)

    def _person(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """What the reference's scripts derive from the batch before the networks."""
        label = batch["labelmap"]
        label = (label if label.dim() == 4 else label[:, None]).long()
        if label.numel() and (int(label.max()) >= NUM_LABELS or int(label.min()) < 0):
            raise ValueError(f"acgpn reads {LABEL_SET} label ids 0..{NUM_LABELS - 1}; got {int(label.min())}..{int(label.max())}")
        label = torch.where(label == NOISE, torch.full_like(label, UPPER), label)  # noise joins the top, as the reference
        image = batch["image"]
        f = image.dtype
        clothes = (label == UPPER).to(f)
        arm1, arm2 = (label == LEFT_ARM).to(f), (label == RIGHT_ARM).to(f)
        fore = (label > BACKGROUND).to(f)
        # G1 sees the arms and the top as one region: it must decide where the arms go
        all_clothes = torch.where((label == LEFT_ARM) | (label == RIGHT_ARM), torch.full_like(label, UPPER), label)
        cloth_mask = (batch["article_mask"] > 0.5).to(f)
        return {
            "label": label, "clothes": clothes, "arm1": arm1, "arm2": arm2, "fore": fore, "image": image,
            "img_fore": image * fore, "all_clothes": all_clothes, "cloth_mask": cloth_mask,
            "cloth": batch["article"] * cloth_mask,
            "pose": pose_maps(batch["keypoints"].to(f), tuple(image.shape[-2:]), self.config.pose_radius),
            "no_top": label * (1 - clothes).long(),  # the parsing with the top removed (G1's target)
        }

    def _composed(self, raw: Tensor, warped: Tensor, region: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(rendered clothes tanh(raw[:3]), composition mask sigmoid(raw[3]) [x region], their fusion)."""
        rendered, mask = torch.tanh(raw[:, :3]), torch.sigmoid(raw[:, 3:])
        if region is not None:
            mask = mask * region
        return rendered, mask, rendered * (1 - mask) + mask * warped

    # ---- generation --------------------------------------------------------------------------------
    def tryon(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Every stage of the reference's test forward, batch-size independent; returns its intermediates."""
        c = self.config
        p = self._person(batch)
        clothes, arm1, arm2 = p["clothes"], p["arm1"], p["arm2"]
        g1_in = torch.cat([p["cloth_mask"], p["cloth"], one_hot(p["all_clothes"]), p["pose"], self._noise(clothes, 0)], 1)
        parsing = torch.sigmoid(self.g1(g1_in))
        layout = parsing.argmax(1, keepdim=True)
        g2_in = torch.cat([p["cloth_mask"], p["cloth"], one_hot(layout), p["pose"], self._noise(clothes, 1)], 1)
        cloth_region = torch.sigmoid(self.g2(g2_in))
        new_arm1, new_arm2 = (layout == LEFT_ARM).to(clothes.dtype), (layout == RIGHT_ARM).to(clothes.dtype)
        # where the new top goes: G2's mask, dilated, minus the new arms, inside the person
        target = dilate((cloth_region > 0.5).to(clothes.dtype), c.cloth_dilation) * (1 - new_arm1) * (1 - new_arm2) * p["fore"]
        # arms: the new arm pixels inside the old top, the old arms outside it
        arm1_occ, arm2_occ = clothes * new_arm1, clothes * new_arm2
        arm1_full, arm2_full = arm1_occ + (1 - clothes) * arm1, arm2_occ + (1 - clothes) * arm2
        ids = layout.to(clothes.dtype) * (1 - new_arm1) * (1 - new_arm2)
        ids = ids * (1 - arm1_full) + arm1_full * LEFT_ARM
        ids = ids * (1 - arm2_full) + arm2_full * RIGHT_ARM
        ids = ids * (1 - target)  # the reference's test forward leaves the new top's region at 0
        warped, warped_mask, _ = self.u.stn(p["cloth"], target, p["cloth_mask"])
        rendered, composition, fused = self._composed(self.u(torch.cat([target, warped], 1)), warped, target)
        skin = mean_colour(arm1 + arm2 - arm1 * arm2, p["image"])
        # keep the person except the old top, the new top's region and (grown) arm parts the old top hid
        touching = arm1 + arm2 + clothes
        occlude = (1 - dilate(arm1_occ, c.occlusion_dilation) * touching) * (1 - dilate(arm2_occ, c.occlusion_dilation) * touching)
        kept = p["img_fore"] * (1 - clothes) * occlude * (1 - target)
        g_in = torch.cat([kept, one_hot(ids.round().long()), fused, skin, self._noise(clothes, 2)], 1)
        out = torch.tanh(self.g(g_in))
        return {"tryon": out, "parsing": parsing, "cloth_region": cloth_region, "target": target, "warped": warped,
                "warped_mask": warped_mask, "rendered": rendered, "composition": composition, "fused": fused}

    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        return self.tryon(batch)["tryon"]

    def sample_columns(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """person | article | warped cloth | fused clothes | try-on."""
        out = self.tryon(batch)
        return [batch["image"], batch["article"], out["warped"], out["fused"], out["tryon"]]

    # ---- training ----------------------------------------------------------------------------------
    def _train_forward(self, batch: dict[str, Tensor], modules: tuple[str, ...], recipe: ACGPNRecipe) -> dict[str, Any]:
        """The reference's training forward for ``modules``, each teacher-forced on the ground truth.

        Returns the outputs and, per discriminator, (D, condition, real, fake, feature matching?).
        """
        p = self._person(batch)
        clothes, image = p["clothes"], p["image"]
        no_top = one_hot(p["no_top"])
        out: dict[str, Any] = {"person": p, "pairs": []}
        if "g1" in modules:
            g1_in = torch.cat([p["cloth_mask"], p["cloth"], one_hot(p["all_clothes"]), p["pose"], self._noise(clothes, 0)], 1)
            out["parsing"] = torch.sigmoid(self.g1(g1_in))
            out["pairs"].append((self.d1, g1_in, no_top, out["parsing"], False))
        if "g2" in modules:
            g2_in = torch.cat([p["cloth_mask"], p["cloth"], no_top, p["pose"], self._noise(clothes, 1)], 1)
            out["cloth_region"] = torch.sigmoid(self.g2(g2_in))
            out["pairs"].append((self.d2, g2_in, clothes, out["cloth_region"], False))
        if "u" in modules:
            warped, warped_mask, points = self.u.stn(p["cloth"], clothes, p["cloth_mask"])
            # the U-Net reads the warp without back-propagating into the STN (the reference's detach)
            rendered, composition, _ = self._composed(self.u(torch.cat([clothes, warped.detach()], 1)), warped)
            out.update(warped=warped, warped_mask=warped_mask, points=points, rendered=rendered, composition=composition,
                       composed=rendered.detach() * (1 - composition) + composition * warped.detach())
            out["pairs"].append((self.d3, torch.cat([clothes, p["cloth"]], 1), image * clothes, rendered, True))
        if "g" in modules:
            arm1, arm2 = p["arm1"], p["arm2"]
            holes = random_holes(clothes, recipe.hole_count, recipe.hole_max_fraction)
            kept = p["img_fore"] * (1 - clothes) * (1 - arm1) * (1 - arm2) + p["img_fore"] * (arm1 + arm2) * (1 - holes)
            skin = mean_colour(arm1 + arm2 - arm1 * arm2, image)
            g_in = torch.cat([kept, no_top, image * clothes, skin, self._noise(clothes, 2)], 1)
            out["final"] = torch.tanh(self.g(g_in))
            out["final_replaced"] = out["final"] * (1 - clothes) + clothes * image  # the true top pasted back
            out["pairs"].append((self.d, g_in, image, out["final_replaced"], True))
        return out

    def _generator_losses(self, batch: dict[str, Tensor], recipe: ACGPNRecipe, modules: tuple[str, ...]) -> dict[str, Tensor]:
        r = recipe
        out = self._train_forward(batch, modules, r)
        p = out["person"]
        clothes, image = p["clothes"], p["image"]
        target = image * clothes
        losses: dict[str, Tensor] = {}
        vgg = None
        if r.perceptual_backbone != "none":
            vgg = cached_perceptual(self, r.perceptual_backbone, r.vgg_weights, image.device)
        if "g1" in modules:
            # (sic) the reference's cross-entropy reads G1's sigmoid outputs as logits
            losses["parsing"] = r.lambda_parsing * F.cross_entropy(out["parsing"], p["no_top"][:, 0])
        if "g2" in modules:
            # (sic) BCE-with-logits on G2's sigmoid output, as the reference
            losses["cloth_mask"] = r.lambda_cloth_mask * F.binary_cross_entropy_with_logits(out["cloth_region"], clothes)
        if "u" in modules:
            warped, rendered, composed = out["warped"], out["rendered"], out["composed"]
            losses["l1_warped"] = r.lambda_l1_warped * F.l1_loss(warped, target) + r.lambda_l1_warped_mask * F.l1_loss(out["warped_mask"], clothes)
            losses["l1_rendered"] = r.lambda_l1_rendered * F.l1_loss(rendered, target)
            losses["l1_composed"] = r.lambda_l1_composed * F.l1_loss(composed, target)
            losses["l1_composition"] = r.lambda_l1_composition * F.l1_loss(out["composition"], clothes)
            if vgg is not None:
                losses["vgg_clothes"] = (r.lambda_vgg_warped * vgg.deepest(warped, target) + r.lambda_vgg_composed * vgg.deepest(composed, target)
                                         + r.lambda_vgg_rendered * vgg.deepest(rendered, target))
            terms = tps_constraints(out["points"], self.config.grid_size, r.difference_floor, r.collinearity_floor)
            losses["constraints"] = r.lambda_constraints * sum(terms.values())
        if "g" in modules:
            losses["l1_final"] = r.lambda_l1_final * F.l1_loss(out["final"], image)
            if vgg is not None:
                losses["vgg_final"] = r.lambda_vgg_final * vgg(out["final_replaced"], image)
        gan, feat = image.new_zeros(()), image.new_zeros(())
        fm_scale = 4.0 / (self.config.n_layers_d + 1)
        for d, condition, real, fake, matched in out["pairs"]:
            fake_feats = d(torch.cat([condition.detach(), fake], 1))
            # summed over scales, as the reference's GANLoss (ours averages them)
            gan = gan + gan_g_loss(r.gan_objective, [f[-1] for f in fake_feats]) * len(fake_feats)
            if matched:
                with torch.no_grad():
                    real_feats = d(torch.cat([condition.detach(), real], 1))
                feat = feat + fm_scale * feature_matching_loss(real_feats, fake_feats)
        losses["gan"] = r.lambda_gan * gan
        if any(matched for *_, matched in out["pairs"]):
            losses["feat"] = r.lambda_feat * feat
        losses["total"] = sum(losses.values())
        return losses

    def _discriminator_losses(self, batch: dict[str, Tensor], recipe: ACGPNRecipe, modules: tuple[str, ...]) -> dict[str, Tensor]:
        with torch.no_grad():
            out = self._train_forward(batch, modules, recipe)
        total = out["person"]["image"].new_zeros(())
        for d, condition, real, fake, _ in out["pairs"]:
            real_logits = [f[-1] for f in d(torch.cat([condition, real], 1))]
            fake_logits = [f[-1] for f in d(torch.cat([condition, fake], 1))]
            total = total + gan_d_loss(recipe.gan_objective, real_logits, fake_logits) * len(real_logits)
        return {"total": recipe.lambda_gan * total}

    def training_stages(self, recipe: ACGPNRecipe) -> list[Stage]:
        def stage(name: str, generators: tuple[str, ...], discriminators: tuple[str, ...]) -> Stage:
            g_params = [q for m in generators for q in getattr(self, m).parameters()]
            d_params = [q for m in discriminators for q in getattr(self, m).parameters()]
            return Stage(name, [
                TrainingPhase("generators", g_params, recipe.lr, recipe.betas,
                              functools.partial(self._generator_losses, recipe=recipe, modules=generators)),
                TrainingPhase("discriminators", d_params, recipe.lr, recipe.betas,
                              functools.partial(self._discriminator_losses, recipe=recipe, modules=generators)),
            ])

        # README: G1 and the U-Net 20 epochs, G2 and G 200 (then G1 and U stay frozen)
        return [stage("g1_u", ("g1", "u"), ("d1", "d3")), stage("g2_g", ("g2", "g"), ("d2", "d"))]
