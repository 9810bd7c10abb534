"""The training logic shared by the label-map-to-image GANs (SPADE, SMIS): one-hot input, a multi-scale
PatchGAN on (labels, image), GAN objective + feature matching + perceptual losses, TTUR Adam settings
(their recipe), and the SPADE-family decoder."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from models.base import TrainingPhase, TrainingRecipe, TryOnModel
from models.layers.losses import (GAN_OBJECTIVES, PERCEPTUAL_BACKBONES, VGGPerceptualLoss, cached_perceptual,
                                  feature_matching_loss, gan_d_fake_loss, gan_d_loss, gan_g_loss)
from models.layers.resblocks import SPADEResBlock
from models.layers import spade_norm
from models.layers.spade_norm import LabelMaps

# Upsampling points for the SPADE block sequence head_0, G_middle_0, G_middle_1, up_0..up_3, by the
# number of 2x upsamplings (latent = image / 2**n). 5 = SPADE "normal", 6 = "more"; 4 is our addition for
# 64x48 CPU presets (48 is not divisible by 32, see shared/reference/cpu-sizing.md).
UPSAMPLE_AFTER: dict[int, frozenset[str]] = {
    4: frozenset({"G_middle_1", "up_0", "up_1", "up_2"}),
    5: frozenset({"head_0", "G_middle_1", "up_0", "up_1", "up_2"}),
    6: frozenset({"head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2"}),
}
BLOCK_NAMES = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")


# channel multipliers (x ngf) of fc's output and of each block's output, in BLOCK_NAMES order
BLOCK_WIDTHS = (16, 16, 16, 16, 8, 4, 2, 1)


class SPADEDecoder(torch.nn.Module):
    """The SPADE-family decoder shared by SPADE and SMIS: ``fc`` (given by the model), the residual blocks
    head_0 .. up_3 (grouped per ``groups``; all 1 = SPADE), 2x upsampling where ``num_upsamples`` says,
    then lrelu -> conv_img -> tanh. Attribute names are the official ones (checkpoint import relies on it)."""

    def __init__(self, fc: torch.nn.Module, label_nc: int, ngf: int, hidden: int, height: int, width: int,
                 num_upsamples: int, groups: tuple[int, ...] = (1,) * 7) -> None:
        super().__init__()
        self.latent = latent_size(height, width, num_upsamples)
        self.upsample_after = UPSAMPLE_AFTER[num_upsamples]
        self.fc = fc
        for name, fin, fout, g in zip(BLOCK_NAMES, BLOCK_WIDTHS[:-1], BLOCK_WIDTHS[1:], groups):
            setattr(self, name, SPADEResBlock(fin * ngf, fout * ngf, label_nc, hidden, groups=g))
        self.conv_img = torch.nn.Conv2d(ngf, 3, 3, padding=1)

    def decode(self, x: Tensor, seg: Tensor | LabelMaps) -> Tensor:
        """``seg``: the dense one-hot (training) or :class:`LabelMaps` (inference, ids looked up).

        One memory layout end to end: channels-last. The label maps' one-hot is channels-last by nature
        (``one_hot`` puts classes last), so the trunk is put in the same layout at its first tensor;
        mixing layouts makes every convolution that reads both reorder one of them (measured: SMIS's
        contiguous codes beside channels-last labels ran slower than either layout alone).
        """
        x = x.contiguous(memory_format=spade_norm.INFERENCE_LAYOUT)
        for name in BLOCK_NAMES:
            x = getattr(self, name)(x, seg)
            if name in self.upsample_after:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2))).contiguous()


def latent_size(height: int, width: int, num_upsamples: int) -> tuple[int, int]:
    if num_upsamples not in UPSAMPLE_AFTER:
        raise ValueError(f"num_upsamples must be one of {sorted(UPSAMPLE_AFTER)}, got {num_upsamples}")
    f = 2**num_upsamples
    if height % f or width % f:
        raise ValueError(f"{height}x{width} is not divisible by 2**{num_upsamples}={f}; change the size or num_upsamples")
    return height // f, width // f


@dataclasses.dataclass(frozen=True)
class SemanticGANRecipe(TrainingRecipe):
    """Training of the label-map-to-image GANs as SPADE and SMIS publish it: Adam lr 2e-4, betas (0, 0.9),
    TTUR (G at lr/2, D at 2*lr), hinge GAN + D feature matching 10 + VGG19 perceptual 10."""

    MACHINE_LOCAL: ClassVar[frozenset[str]] = frozenset({"vgg_weights"})
    lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)
    ttur: bool = True
    gan_objective: str = "hinge"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    perceptual_backbone: str = "vgg19"  # vgg19 | untrained | none
    vgg_weights: str | None = None  # a local file (machine-specific: may differ when resuming)

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))  # JSON gives a list back
        if self.perceptual_backbone not in PERCEPTUAL_BACKBONES:
            raise ValueError(f"perceptual_backbone {self.perceptual_backbone!r}; valid: {', '.join(PERCEPTUAL_BACKBONES)}")
        if self.gan_objective not in GAN_OBJECTIVES:
            raise ValueError(f"gan_objective {self.gan_objective!r}; valid: {', '.join(GAN_OBJECTIVES)}")


class SemanticImageGAN(TryOnModel):
    """Base of SPADE-family models: subclasses provide ``generator_forward`` and the modules.

    Config fields used here: label_nc, height, width; the discriminator is ``self.discriminator``.
    Recipe fields: those of :class:`SemanticGANRecipe`. Hooks a recipe may change (SMIS's garment
    recipe does): ``target`` (what the generator must produce), ``feature_mask`` (where feature matching
    counts), ``extra_generator_losses`` and ``extra_fakes`` (more samples D must call fake).
    """

    def __init__(self, config: Any) -> None:
        super().__init__(config)

    def label_maps(self, batch: dict[str, Tensor]) -> LabelMaps:
        """The batch's label map as ids (checked against label_nc) + the model's extra input channels."""
        labelmap = batch["labelmap"]
        c = self.config.label_nc
        if labelmap.dim() == 4:
            labelmap = labelmap[:, 0]
        if labelmap.numel() and (int(labelmap.max()) >= c or int(labelmap.min()) < 0):
            raise ValueError(f"{self.name}: label ids must be in 0..{c - 1} (label_nc={c}, label set {self.label_set}); "
                             f"got {int(labelmap.min())}..{int(labelmap.max())}")
        return LabelMaps(labelmap, c, self.extra_label_channels(batch, labelmap))

    def extra_label_channels(self, batch: dict[str, Tensor], labelmap: Tensor) -> Tensor | None:
        """Dense channels after the one-hot ones (SPADE's instance edges); None for most models."""
        return None

    def one_hot(self, labelmap: Tensor | dict[str, Tensor]) -> Tensor:
        """[B,H,W] int ids (or a batch) -> [B,C(+extra),H,W] float one-hot, channels-last, on the labels' device."""
        batch = labelmap if isinstance(labelmap, dict) else {"labelmap": labelmap}
        return self.label_maps(batch).dense()

    def generator_forward(self, batch: dict[str, Tensor], seg: Tensor, recipe: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """Training-time generation: (fake image, extra generator losses already weighted)."""
        raise NotImplementedError

    # ---- recipe hooks ----------------------------------------------------------------------------
    def target(self, batch: dict[str, Tensor], recipe: Any) -> Tensor:
        return batch["image"]

    def feature_mask(self, batch: dict[str, Tensor], recipe: Any) -> Tensor | None:
        return None

    def extra_generator_losses(self, fake: Tensor, target: Tensor, batch: dict[str, Tensor], recipe: Any) -> dict[str, Tensor]:
        return {}

    def extra_fakes(self, seg: Tensor, batch: dict[str, Tensor], recipe: Any) -> list[Tensor]:
        return []

    # ---- losses ----------------------------------------------------------------------------------
    def perceptual_net(self, recipe: Any, device: torch.device) -> VGGPerceptualLoss:
        return cached_perceptual(self, recipe.perceptual_backbone, recipe.vgg_weights, device)

    def _discriminate(self, seg: Tensor, image: Tensor) -> list[list[Tensor]]:
        return self.discriminator(torch.cat([seg, image], dim=1))

    def _generator_losses(self, batch: dict[str, Tensor], recipe: Any) -> dict[str, Tensor]:
        real = self.target(batch, recipe)
        seg = self.one_hot(batch)
        fake, losses = self.generator_forward(batch, seg, recipe)
        fake_feats = self._discriminate(seg, fake)
        with torch.no_grad():
            real_feats = self._discriminate(seg, real)
        losses["gan"] = gan_g_loss(recipe.gan_objective, [f[-1] for f in fake_feats])
        losses["feat"] = recipe.lambda_feat * feature_matching_loss(real_feats, fake_feats, self.feature_mask(batch, recipe))
        if recipe.perceptual_backbone != "none" and recipe.lambda_vgg > 0:
            losses["vgg"] = recipe.lambda_vgg * self.perceptual_net(recipe, fake.device)(fake, real)
        losses.update(self.extra_generator_losses(fake, real, batch, recipe))
        losses["l1"] = F.l1_loss(fake.detach(), real)  # logged only: how far from the ground truth
        losses["total"] = sum(v for k, v in losses.items() if k != "l1")
        return losses

    def _discriminator_losses(self, batch: dict[str, Tensor], recipe: Any) -> dict[str, Tensor]:
        seg = self.one_hot(batch)
        with torch.no_grad():
            fake, _ = self.generator_forward(batch, seg, recipe)
        real_logits = [f[-1] for f in self._discriminate(seg, self.target(batch, recipe))]
        fake_logits = [f[-1] for f in self._discriminate(seg, fake.detach())]
        losses = {"gan": gan_d_loss(recipe.gan_objective, real_logits, fake_logits)}
        for i, extra in enumerate(self.extra_fakes(seg, batch, recipe)):
            extra_logits = [f[-1] for f in self._discriminate(seg, extra)]
            # the fake half of the objective only: the real half is already counted once above
            losses[f"extra_fake_{i}"] = gan_d_fake_loss(recipe.gan_objective, extra_logits)
        losses["total"] = sum(losses.values())
        return losses

    def training_phases(self, recipe: Any) -> list[TrainingPhase]:
        d_ids = {id(p) for p in self.discriminator.parameters()}
        g_params = [p for p in self.parameters() if id(p) not in d_ids]
        # TTUR as in SPADE/SMIS (on by default there): G at lr/2, D at 2*lr.
        g_lr, d_lr = (recipe.lr / 2, recipe.lr * 2) if recipe.ttur else (recipe.lr, recipe.lr)
        return [
            TrainingPhase("generator", g_params, g_lr, recipe.betas, functools.partial(self._generator_losses, recipe=recipe)),
            TrainingPhase("discriminator", list(self.discriminator.parameters()), d_lr, recipe.betas,
                          functools.partial(self._discriminator_losses, recipe=recipe)),
        ]
