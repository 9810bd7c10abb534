"""VITON (Han et al. 2018): a coarse try-on and the product's mask from an encoder-decoder (EDM), the
product warped onto that mask by shape-context matching and a thin-plate spline, and a refinement
network (RM) that chooses, pixel by pixel, between the warped product and the coarse person.

Two training stages, ``edm`` then ``rm``; generation chains them: person representation (pose maps,
body shape, face and hair; ``models.layers.person``) + product -> EDM -> (product mask, coarse image) ->
shape-context TPS warp of the product (and its mask) onto the predicted mask -> RM composition mask ``m``
-> ``m * warped + (1 - m) * coarse``, with ``m`` kept inside the predicted product mask.

The warp (``models.layers.shape_context``) replaces the reference's Matlab ``shape_context_warp.m``: it is
not differentiable, runs per sample in numpy / SciPy on the CPU (whatever device the networks are on),
matches at ``warp_scale`` times fewer pixels per side (the reference matched at 64x48 for 256x192) and
resamples onto the reference's 10x10 control grid. A mask with too few boundary points, a line-thin one
or a singular fit warps by the identity instead of failing (``identity_warps`` in the RM stage's log
counts them; the reference skipped such pairs).

**How the RM stage gets its warped products**: computed on the fly at every step from the frozen EDM
(eval mode, no gradients; the reference's stage-2 script ran it in training mode, batch statistics and
dropout on) - nothing is cached on disk or between steps, so a resumed run sees the same
warps and the EDM's weights are the only state. With recipe ``default`` (``rm_mask="stage1"``) the
warp target and the composition mask's support are the EDM's predicted mask, exactly what generation
uses. The reference trained the RM on warps to the parsing's upper-clothes region (prepare_data/
extract_tps.m) and multiplied its mask by that region; recipe ``worn-masks`` (``rm_mask="worn"``,
the batch's ``worn_mask``) does that instead.

Architecture facts (shared/reference/models.md, xthan/VITON HEAD 68ce054): EDM = a pix2pix-style U-Net of
6 stride-2 4x4 convs (ngf 64, 128, 256, 512, 512, 512; 256x192 -> 4x3), no conv biases, batch norm after
every conv but the first and the last (the innermost included), dropout 0.5 after the first decoder
only, tanh; 25 input channels (person representation 22 + product 3), 4 outputs (mask 1 + image 3).
``paper`` has 29,269,632 trainable parameters, counted from model_zalando_mask_content.py's layer list
(tests/test_viton.py). RM = 3 conv3x3 of 64 channels (no bias) with layer norm (``GroupNorm(1, C)``: the
statistics over C, H, W and a per-channel scale and offset, as slim.layer_norm) and leaky ReLU 0.2, then a
1x1 conv with bias and a sigmoid: 77,633 parameters.

Losses (reference weights): EDM 1 * L1(mask) + 1 * L1(coarse image) + 3 * perceptual; RM 0.2 * L1 +
0.8 * perceptual - 0.1 * mean(m) + 5e-6 * TV(m) (TV summed over each image, averaged over the batch, as
tf.image.total_variation). The perceptual terms use VITON's layers and hand-set constants (EDM: relu1_2 ..
relu5_2 averaged and / 128; RM: relu3_2 .. relu5_2) on torchvision's ImageNet VGG19 with ImageNet input
normalisation; the reference used MatConvNet's VGG19 (average pooling, 0-255 input), so the term's
absolute scale is not the reference's. Adam 2e-4, beta1 0.5 for both.

Other departures, none of which changes a parameter count: the mask channel is the tanh output fitted
by L1 to the [0, 1] worn mask (as the reference) and clamped to [0, 1] before it is warped onto or used
as the composition support; batch norm keeps torch's momentum 0.1 (the reference's decay 0.999, i.e.
momentum 0.001, would leave the running statistics at their initial values after a short run); the
person representation is the shared one (CP-VTON's channel order and [-1, 1] ranges) and the product's
mask is the batch's ``article_mask`` (the reference thresholded the product image at 253.9 / 255).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ModelInputs, Stage, TrainingPhase, TrainingRecipe, TryOnModel
from models.layers.losses import PERCEPTUAL_BACKBONES, cached_perceptual
from models.layers.person import AGNOSTIC_CHANNELS, REPRESENTATION_KEYS, person_representation
from models.layers.shape_context import ShapeContextParams, warp_control_points
from models.layers.tps import TPSGridGen, regular_control_points, warp
from models.layers.unet import UNetGenerator
from models.registry import register_model

# VITON's perceptual loss: relu<k>_2 of VGG19, each mean |difference| divided by a hand-set constant
# (model_zalando_mask_content.py), then averaged over the layers used and divided by 128
PERCEPTUAL_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
LAYER_SCALES = (2.5 / 5.3, 1 / (2.7 * 1.2), 1 / (1.35 * 2.3), 1 / (0.67 * 8.2), 1 / 0.16)
EDM_PERCEPTUAL = (PERCEPTUAL_LAYERS, tuple(s / 5 / 128 for s in LAYER_SCALES))
RM_PERCEPTUAL = (PERCEPTUAL_LAYERS[2:], tuple(s / 3 / 128 for s in LAYER_SCALES[2:]))
RM_MASKS = ("stage1", "worn")


@dataclasses.dataclass(frozen=True)
class VITONConfig:
    height: int = 256
    width: int = 192
    ngf: int = 64
    num_downs: int = 6  # 256x192 -> 4x3
    rm_channels: int = 64
    rm_layers: int = 3
    pose_radius: int = 5  # 11x11 pose squares at 256x192 (utils.extract_pose_map)
    warp_grid: int = 10  # TPS control points per side
    warp_scale: int = 4  # the shape contexts are matched at (H / scale) x (W / scale)
    warp_points: int = 100  # boundary samples per mask
    warp_iterations: int = 6
    align_corners: bool = False  # no released weights to match; pixel centres independent of the matching scale

    def __post_init__(self) -> None:
        f = 2**self.num_downs
        if self.height % f or self.width % f:
            raise ValueError(f"{self.height}x{self.width} is not divisible by 2**num_downs={f}")
        if self.warp_scale < 1 or self.height % self.warp_scale or self.width % self.warp_scale:
            raise ValueError(f"warp_scale {self.warp_scale} must be >= 1 and divide {self.height}x{self.width}")
        if self.warp_grid < 2 or self.rm_layers < 1:
            raise ValueError(f"warp_grid must be >= 2 and rm_layers >= 1 (got {self.warp_grid}, {self.rm_layers})")


@dataclasses.dataclass(frozen=True)
class VITONRecipe(TrainingRecipe):
    """VITON's training (train_stage1.sh / train_stage2.sh flags): Adam 2e-4, beta1 0.5, the weights above."""

    MACHINE_LOCAL: ClassVar[frozenset[str]] = frozenset({"vgg_weights"})
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_mask: float = 1.0
    lambda_content: float = 1.0
    lambda_perceptual: float = 3.0
    lambda_rm_l1: float = 0.2
    lambda_rm_perceptual: float = 0.8
    lambda_rm_mask: float = 0.1  # subtracted: rewards using the warped product
    lambda_rm_tv: float = 5e-6
    rm_mask: str = "stage1"  # the RM stage's warp target and mask support: the EDM's mask, or "worn" (parsing)
    perceptual_backbone: str = "vgg19"
    vgg_weights: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.rm_mask not in RM_MASKS:
            raise ValueError(f"rm_mask {self.rm_mask!r}; valid: {', '.join(RM_MASKS)}")
        if self.perceptual_backbone not in PERCEPTUAL_BACKBONES:
            raise ValueError(f"perceptual_backbone {self.perceptual_backbone!r}; valid: {', '.join(PERCEPTUAL_BACKBONES)}")


class RefinementNetwork(nn.Module):
    """[warped product, coarse image] -> composition mask in [0, 1] (model_zalando_tps_warp.py)."""

    def __init__(self, channels: int, layers: int) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        cin = 6
        for _ in range(layers):
            # slim.conv2d with a normalizer has no bias; GroupNorm(1, C) = slim.layer_norm's axes and parameters
            mods += [nn.Conv2d(cin, channels, 3, 1, 1, bias=False), nn.GroupNorm(1, channels), nn.LeakyReLU(0.2)]
            cin = channels
        mods.append(nn.Conv2d(cin, 1, 1))
        self.model = nn.Sequential(*mods)

    def forward(self, warped: Tensor, coarse: Tensor) -> Tensor:
        return torch.sigmoid(self.model(torch.cat([warped, coarse], dim=1)))


def total_variation(x: Tensor) -> Tensor:
    """tf.image.total_variation averaged over the batch: per image, sum |vertical| + |horizontal| differences."""
    tv = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).sum(1) + (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).sum(1)
    return tv.mean()


@register_model
class VITON(TryOnModel):
    name: ClassVar[str] = "viton"
    Config = VITONConfig
    Recipe = VITONRecipe
    INPUTS = ModelInputs(generate=("article", "article_mask", *REPRESENTATION_KEYS),
                         train=("image", "article", "article_mask", *REPRESENTATION_KEYS, "worn_mask"))
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": dict(height=64, width=48, ngf=16, num_downs=4, rm_channels=16, pose_radius=1, warp_scale=1),
        "paper": dict(),
    }
    RECIPES: ClassVar[dict[str, dict]] = {"default": {}, "worn-masks": dict(rm_mask="worn")}
    TRAINING_ONLY: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: VITONConfig) -> None:
        super().__init__(config)
        c = config
        self.edm = UNetGenerator(AGNOSTIC_CHANNELS + 3, 4, c.num_downs, c.ngf, norm="batch", dropout="innermost",
                                 upsample="transpose", final_activation="tanh", innermost_norm=True, outer_bias=False)
        self.rm = RefinementNetwork(c.rm_channels, c.rm_layers)
        # constants only (non-persistent buffers): the 10x10 grid the warp is resampled on
        self.tps = TPSGridGen(c.height, c.width, regular_control_points(c.warp_grid, x_major=False), c.align_corners)
        self.shape_context = ShapeContextParams(points=c.warp_points, iterations=c.warp_iterations)

    # ---- the pipeline ----------------------------------------------------------------------------
    def coarse(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Stage 1: (product mask as predicted, tanh range, [B,1,H,W]; coarse person [B,3,H,W])."""
        agnostic = person_representation(batch, self.config.pose_radius)
        out = self.edm(torch.cat([batch["article"], agnostic], dim=1))
        return out[:, :1], out[:, 1:]

    def shape_context_warp(self, article: Tensor, article_mask: Tensor, target_mask: Tensor) -> tuple[Tensor, Tensor, int]:
        """(warped product, warped product mask, how many samples fell back to the identity warp).

        Per sample on the CPU: both masks area-resized to the matching size, matched, the inverse TPS read
        at the control grid; the grid itself is built and sampled on the inputs' device.
        """
        h, w = self.config.height // self.config.warp_scale, self.config.width // self.config.warp_scale
        with torch.no_grad():
            small = F.interpolate(torch.cat([article_mask, target_mask], dim=1).float(), size=(h, w), mode="area").cpu().numpy()
        control = self.tps.control_points.detach().cpu()
        sources, identity = [], 0
        for sample in small:
            source, matched = warp_control_points(sample[0], sample[1], control, self.config.align_corners, self.shape_context)
            sources.append(source)
            identity += not matched
        grid = self.tps(torch.stack(sources).to(device=article.device, dtype=article.dtype))
        ac = self.config.align_corners
        # the product on white: border padding keeps the background; the mask is empty outside
        return warp(article, grid, ac, "border"), warp(article_mask, grid, ac, "zeros"), identity

    def compose(self, warped: Tensor, coarse: Tensor, support: Tensor) -> tuple[Tensor, Tensor]:
        """(try-on, composition mask): the RM's mask kept inside ``support`` (the product's region)."""
        m = self.rm(warped, coarse) * support
        return m * warped + (1 - m) * coarse, m

    def _warped_and_coarse(self, batch: dict[str, Tensor], rm_mask: str = "stage1") -> tuple[Tensor, Tensor, Tensor, int]:
        mask, coarse = self.coarse(batch)
        support = mask.clamp(0, 1) if rm_mask == "stage1" else batch["worn_mask"]
        warped, _, identity = self.shape_context_warp(batch["article"], batch["article_mask"], support)
        return warped, coarse, support, identity

    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        warped, coarse, support, _ = self._warped_and_coarse(batch)
        return self.compose(warped, coarse, support)[0]

    # ---- training --------------------------------------------------------------------------------
    def _perceptual(self, recipe: VITONRecipe, fake: Tensor, real: Tensor, layers: tuple[tuple[str, ...], tuple[float, ...]]) -> Tensor:
        net = cached_perceptual(self, recipe.perceptual_backbone, recipe.vgg_weights, fake.device, *layers)
        return net(fake, real)

    def _edm_losses(self, batch: dict[str, Tensor], recipe: VITONRecipe) -> dict[str, Tensor]:
        mask, coarse = self.coarse(batch)
        real = batch["image"]
        losses = {"mask": recipe.lambda_mask * F.l1_loss(mask, batch["worn_mask"]),
                  "content": recipe.lambda_content * F.l1_loss(coarse, real)}
        if recipe.perceptual_backbone != "none" and recipe.lambda_perceptual > 0:
            losses["perceptual"] = recipe.lambda_perceptual * self._perceptual(recipe, coarse, real, EDM_PERCEPTUAL)
        losses["total"] = sum(losses.values())
        return losses

    def _rm_losses(self, batch: dict[str, Tensor], recipe: VITONRecipe) -> dict[str, Tensor]:
        was_training = self.edm.training
        self.edm.eval()  # frozen in this stage: its batch-norm statistics stay those the EDM stage learnt
        with torch.no_grad():
            warped, coarse, support, identity = self._warped_and_coarse(batch, recipe.rm_mask)
        self.edm.train(was_training)
        tryon, m = self.compose(warped, coarse, support)
        real = batch["image"]
        losses = {"l1": recipe.lambda_rm_l1 * F.l1_loss(tryon, real)}
        if recipe.perceptual_backbone != "none" and recipe.lambda_rm_perceptual > 0:
            losses["perceptual"] = recipe.lambda_rm_perceptual * self._perceptual(recipe, tryon, real, RM_PERCEPTUAL)
        losses["mask"] = -recipe.lambda_rm_mask * m.mean()
        losses["tv"] = recipe.lambda_rm_tv * total_variation(m)
        losses["total"] = sum(losses.values())
        losses["identity_warps"] = torch.tensor(float(identity) / len(real), device=real.device)  # logged: warp fallbacks
        return losses

    def training_stages(self, recipe: VITONRecipe) -> list[Stage]:
        """``edm`` trains the encoder-decoder, then ``rm`` the refinement network on the frozen EDM's warps."""
        parts = (("edm", self.edm, self._edm_losses), ("rm", self.rm, self._rm_losses))
        return [Stage(name, [TrainingPhase(name, list(module.parameters()), recipe.lr, recipe.betas,
                                           functools.partial(losses, recipe=recipe))]) for name, module, losses in parts]

    def sample_columns(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """person | article | coarse (stage 1) | warped product | try-on, so both stages show in the grids."""
        warped, coarse, support, _ = self._warped_and_coarse(batch)
        tryon = self.compose(warped, coarse, support)[0]
        return [batch[k] for k in ("image", "article") if k in batch] + [coarse, warped, tryon]
