"""CP-VTON (Wang et al. 2018) and CP-VTON+ (Minar et al. 2020): a learned thin-plate-spline warp of the
product onto the body (GMM), then a U-Net that renders the person and a composition mask (TOM).

Two training stages, ``gmm`` then ``tom``; TOM trains on the GMM's warp computed on the fly (the GMM is
frozen and in eval mode during it), so nothing is ever copied into data folders. Generation chains both:
person representation -> GMM grid -> warped cloth and mask -> TOM -> ``m * warped + (1 - m) * rendered``.

Key names follow the official modules (``gmm.extractionA/B.model.N``, ``gmm.regression.conv.N`` /
``.linear``, ``tom.model.model...``) so ``zoo import cp-vton gmm_final.pth --part tom=tom_final.pth`` maps
them by prefix. ``paper`` / ``paper-plus`` have the official parameter counts (GMM 19,057,650 / 19,055,602,
TOM 21,349,252 / 21,350,276). The official GMM hard-wires 256x192 (its linear layer and a /16 feature map);
here the feature map and the linear layer are sized from the input, so ``tiny`` runs at 64x48 with /8
features and a 3x3 control grid (shared/reference/cpu-sizing.md).
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
from models.layers.correlation import feature_correlation, feature_l2norm
from models.layers.losses import PERCEPTUAL_BACKBONES, cached_perceptual
from models.layers.person import AGNOSTIC_CHANNELS, person_representation
from models.layers.tps import TPSGridGen, regular_control_points
from models.layers.unet import UNetGenerator
from models.registry import register_model


@dataclasses.dataclass(frozen=True)
class CPVTONConfig:
    height: int = 256
    width: int = 192
    cloth_channels: int = 3  # GMM's product input: 3 = RGB (CP-VTON), 1 = the cloth mask (CP-VTON+)
    ngf: int = 64  # feature extractors' first width (doubling, capped at 512)
    gmm_downs: int = 4  # stride-2 convs per extractor: 256x192 -> 16x12 officially
    regression_width: int = 512  # first conv of the regression head (then /2, /4, /8)
    grid_size: int = 5  # TPS control points per side
    tom_ngf: int = 64
    tom_downs: int = 6
    tom_warped_mask: bool = False  # CP-VTON+: TOM also reads the warped cloth mask (26 input channels)
    pose_radius: int = 5  # half-side of the pose squares in pixels (CP-VTON: 5 at 256 px)
    align_corners: bool = True  # the releases were trained on torch 0.4.1, which sampled like True

    def __post_init__(self) -> None:
        if self.cloth_channels not in (1, 3):
            raise ValueError(f"cloth_channels must be 3 (RGB) or 1 (cloth mask), got {self.cloth_channels}")
        f = 2**self.gmm_downs
        if self.height % f or self.width % f:
            raise ValueError(f"{self.height}x{self.width} is not divisible by 2**gmm_downs={f}")
        fh, fw = _after_regression_convs(self.height // f, self.width // f)
        if fh < 1 or fw < 1:
            raise ValueError(f"the GMM feature map {self.height // f}x{self.width // f} is too small for the regression's "
                             "two stride-2 convs: use fewer gmm_downs or a larger size")
        if self.height % 2**self.tom_downs or self.width % 2**self.tom_downs:
            raise ValueError(f"{self.height}x{self.width} is not divisible by 2**tom_downs={2**self.tom_downs}")


def _after_regression_convs(h: int, w: int) -> tuple[int, int]:
    """Spatial size after two 4x4 stride-2 pad-1 convs: floor((n + 2 - 4) / 2) + 1, twice."""
    for _ in range(2):
        h, w = (h - 2) // 2 + 1, (w - 2) // 2 + 1
    return h, w


@dataclasses.dataclass(frozen=True)
class CPVTONRecipe(TrainingRecipe):
    """CP-VTON's training: Adam 1e-4, betas (0.5, 0.999), every loss weight 1; ``plus`` adds CP-VTON+'s
    grid-interval consistency (40) and takes TOM's mask target from the parsing instead of the warp."""

    MACHINE_LOCAL: ClassVar[frozenset[str]] = frozenset({"vgg_weights"})
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_warp: float = 1.0
    lambda_gic: float = 0.0
    lambda_l1: float = 1.0
    lambda_vgg: float = 1.0
    lambda_mask: float = 1.0
    mask_target: str = "warped"  # TOM's composition-mask target: the warped cloth mask, or "parse" (worn region)
    perceptual_backbone: str = "vgg19"
    vgg_weights: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.mask_target not in ("warped", "parse"):
            raise ValueError(f"mask_target {self.mask_target!r}; valid: warped, parse")
        if self.perceptual_backbone not in PERCEPTUAL_BACKBONES:
            raise ValueError(f"perceptual_backbone {self.perceptual_backbone!r}; valid: {', '.join(PERCEPTUAL_BACKBONES)}")


class FeatureExtraction(nn.Module):
    """``downs`` 4x4 stride-2 convs (ReLU then BatchNorm, widths doubling to 512), two 3x3 convs."""

    def __init__(self, input_nc: int, ngf: int, downs: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = input_nc
        for i in range(downs):
            cout = min(2**i * ngf, 512)
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.ReLU(), nn.BatchNorm2d(cout)]
            cin = cout
        layers += [nn.Conv2d(cin, cin, 3, 1, 1), nn.ReLU(), nn.BatchNorm2d(cin), nn.Conv2d(cin, cin, 3, 1, 1)]
        self.model = nn.Sequential(*layers)
        self.channels = cin

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class FeatureRegression(nn.Module):
    """Correlation volume -> 2 * grid^2 TPS offsets in [-1, 1] (tanh)."""

    def __init__(self, input_nc: int, width: int, feature_size: tuple[int, int], outputs: int) -> None:
        super().__init__()
        w = [width, width // 2, width // 4, width // 8]
        self.conv = nn.Sequential(
            nn.Conv2d(input_nc, w[0], 4, 2, 1), nn.BatchNorm2d(w[0]), nn.ReLU(),
            nn.Conv2d(w[0], w[1], 4, 2, 1), nn.BatchNorm2d(w[1]), nn.ReLU(),
            nn.Conv2d(w[1], w[2], 3, 1, 1), nn.BatchNorm2d(w[2]), nn.ReLU(),
            nn.Conv2d(w[2], w[3], 3, 1, 1), nn.BatchNorm2d(w[3]), nn.ReLU(),
        )
        fh, fw = _after_regression_convs(*feature_size)
        self.linear = nn.Linear(w[3] * fh * fw, outputs)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.linear(self.conv(x).flatten(1)))


class GMM(nn.Module):
    """Geometric matching: person features x product features -> correlation -> regression -> TPS grid."""

    def __init__(self, cfg: CPVTONConfig) -> None:
        super().__init__()
        self.extractionA = FeatureExtraction(AGNOSTIC_CHANNELS, cfg.ngf, cfg.gmm_downs)
        self.extractionB = FeatureExtraction(cfg.cloth_channels, cfg.ngf, cfg.gmm_downs)
        fh, fw = cfg.height // 2**cfg.gmm_downs, cfg.width // 2**cfg.gmm_downs
        self.regression = FeatureRegression(fh * fw, cfg.regression_width, (fh, fw), 2 * cfg.grid_size**2)
        # CP-VTON's control-point order (x outer) and theta layout (all x offsets, then all y)
        self.tps = TPSGridGen(cfg.height, cfg.width, regular_control_points(cfg.grid_size, x_major=True), cfg.align_corners)

    def forward(self, agnostic: Tensor, product: Tensor) -> Tensor:
        a = feature_l2norm(self.extractionA(agnostic))
        b = feature_l2norm(self.extractionB(product))
        return self.tps.forward_offsets(self.regression(feature_correlation(a, b)))


def grid_interval_consistency(grid: Tensor) -> Tensor:
    """CP-VTON+'s GIC loss: neighbouring grid points should be evenly spaced along each axis.

    For every interior point, the x-distance to its left and right neighbours should match, and the
    y-distance to the points above and below; summed |differences| normalised by B*H*W.
    """
    gx, gy = grid[..., 0], grid[..., 1]

    def dist(a: Tensor, b: Tensor) -> Tensor:
        return torch.sqrt((a - b) ** 2 + 1e-10)

    cx, cy = gx[:, 1:-1, 1:-1], gy[:, 1:-1, 1:-1]
    horizontal = (dist(gx[:, 1:-1, :-2], cx) - dist(gx[:, 1:-1, 2:], cx)).abs()
    vertical = (dist(gy[:, :-2, 1:-1], cy) - dist(gy[:, 2:, 1:-1], cy)).abs()
    return (horizontal + vertical).sum() / (grid.shape[0] * grid.shape[1] * grid.shape[2])


def _gmm_filter(state: StateDict, prefix: str) -> StateDict:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def _preset_for(states: dict[str, StateDict]) -> str:
    first = states["gmm"].get("extractionB.model.0.weight")
    if first is None:
        raise ValueError("the file has no extractionB.model.0.weight: not a CP-VTON GMM")
    return "paper-plus" if int(first.shape[1]) == 1 else "paper"


@register_model
class CPVTON(TryOnModel):
    name: ClassVar[str] = "cp-vton"
    Config = CPVTONConfig
    Recipe = CPVTONRecipe
    INPUTS = ModelInputs(
        generate=("article", "article_mask", "body_shape", "head", "keypoints"),
        train=("image", "article", "article_mask", "body_shape", "head", "keypoints", "worn_mask"),
    )
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": dict(height=64, width=48, ngf=16, gmm_downs=3, regression_width=64, grid_size=3, tom_ngf=16, tom_downs=4),
        "tiny-plus": dict(height=64, width=48, ngf=16, gmm_downs=3, regression_width=64, grid_size=3, tom_ngf=16,
                          tom_downs=4, cloth_channels=1, tom_warped_mask=True),
        "paper": dict(),
        "paper-plus": dict(cloth_channels=1, tom_warped_mask=True),
    }
    RECIPES: ClassVar[dict[str, dict]] = {"default": {}, "plus": dict(lambda_gic=40.0, mask_target="parse")}
    PRESET_RECIPES: ClassVar[dict[str, str]] = {"tiny-plus": "plus", "paper-plus": "plus"}
    OFFICIAL = OfficialCheckpoint(
        parts={"gmm": ("gmm", "gmm_final.pth"), "tom": ("tom", "tom_final.pth")}, required=("gmm",),
        filter_fn=_gmm_filter, preset_for=_preset_for,
        describe="sergeywong/cp-vton or minar09/cp-vton-plus gmm_final.pth (+ --part tom=tom_final.pth); "
                 "CP-VTON+ is recognised by its 1-channel cloth-mask GMM input",
    )
    TRAINING_ONLY: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: CPVTONConfig) -> None:
        super().__init__(config)
        self.gmm = GMM(config)
        tom_in = AGNOSTIC_CHANNELS + 3 + (1 if config.tom_warped_mask else 0)
        # InstanceNorm on the raw 4-channel output before the split, as the reference's last layer
        self.tom = UNetGenerator(tom_in, 4, config.tom_downs, config.tom_ngf, norm="instance", upsample="resize-conv",
                                 final_norm=True)

    # ---- the pipeline ----------------------------------------------------------------------------
    def agnostic(self, batch: dict[str, Tensor]) -> Tensor:
        return person_representation(batch, self.config.pose_radius)

    def warp(self, batch: dict[str, Tensor], agnostic: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(warped cloth, warped mask, grid); cloth warps with border padding, the mask with zeros (as the reference)."""
        mask = batch["article_mask"]
        product = batch["article"] if self.config.cloth_channels == 3 else mask * 2 - 1
        grid = self.gmm(agnostic, product)
        ac = self.config.align_corners
        cloth = F.grid_sample(batch["article"], grid, mode="bilinear", padding_mode="border", align_corners=ac)
        warped_mask = F.grid_sample(mask, grid, mode="bilinear", padding_mode="zeros", align_corners=ac)
        return cloth, warped_mask, grid

    def render(self, agnostic: Tensor, cloth: Tensor, warped_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(try-on, rendered person, composition mask)."""
        parts = [agnostic, cloth] + ([warped_mask] if self.config.tom_warped_mask else [])
        raw = self.tom(torch.cat(parts, dim=1))
        rendered, composite = torch.tanh(raw[:, :3]), torch.sigmoid(raw[:, 3:])
        return cloth * composite + rendered * (1 - composite), rendered, composite

    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        agnostic = self.agnostic(batch)
        cloth, warped_mask, _ = self.warp(batch, agnostic)
        return self.render(agnostic, cloth, warped_mask)[0]

    # ---- training --------------------------------------------------------------------------------
    def _gmm_losses(self, batch: dict[str, Tensor], recipe: CPVTONRecipe) -> dict[str, Tensor]:
        worn = batch["worn_mask"]
        target = batch["image"] * worn + (1 - worn)  # the worn top on white: what the warp must reproduce
        cloth, _, grid = self.warp(batch, self.agnostic(batch))
        losses = {"warp": recipe.lambda_warp * F.l1_loss(cloth, target)}
        if recipe.lambda_gic > 0:
            losses["gic"] = recipe.lambda_gic * grid_interval_consistency(grid)
        losses["total"] = sum(losses.values())
        return losses

    def _tom_losses(self, batch: dict[str, Tensor], recipe: CPVTONRecipe) -> dict[str, Tensor]:
        agnostic = self.agnostic(batch)
        was_training = self.gmm.training
        self.gmm.eval()  # frozen in this stage: its BatchNorm statistics stay those the GMM stage learnt
        with torch.no_grad():
            cloth, warped_mask, _ = self.warp(batch, agnostic)
        self.gmm.train(was_training)
        tryon, _, composite = self.render(agnostic, cloth, warped_mask)
        real = batch["image"]
        mask_target = warped_mask if recipe.mask_target == "warped" else batch["worn_mask"]
        losses = {"l1": recipe.lambda_l1 * F.l1_loss(tryon, real), "mask": recipe.lambda_mask * F.l1_loss(composite, mask_target)}
        if recipe.perceptual_backbone != "none" and recipe.lambda_vgg > 0:
            losses["vgg"] = recipe.lambda_vgg * cached_perceptual(self, recipe.perceptual_backbone, recipe.vgg_weights, tryon.device)(tryon, real)
        losses["total"] = sum(losses.values())
        return losses

    def training_stages(self, recipe: CPVTONRecipe) -> list[Stage]:
        return [
            Stage("gmm", [TrainingPhase("gmm", list(self.gmm.parameters()), recipe.lr, recipe.betas,
                                        functools.partial(self._gmm_losses, recipe=recipe))]),
            Stage("tom", [TrainingPhase("tom", list(self.tom.parameters()), recipe.lr, recipe.betas,
                                        functools.partial(self._tom_losses, recipe=recipe))]),
        ]

    def sample_columns(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """person | article | warped cloth | try-on, so both stages show in the training grids."""
        agnostic = self.agnostic(batch)
        cloth, warped_mask, _ = self.warp(batch, agnostic)
        tryon = self.render(agnostic, cloth, warped_mask)[0]
        return [batch[k] for k in ("image", "article") if k in batch] + [cloth, tryon]
