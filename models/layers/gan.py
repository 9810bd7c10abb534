"""The training logic shared by the label-map-to-image GANs (SPADE, SMIS): one-hot input, a multi-scale
PatchGAN on (labels, image), hinge + feature matching + perceptual losses, TTUR Adam settings."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from models.base import TrainingPhase, TryOnModel
from models.layers.resblocks import SPADEResBlock
from models.layers.losses import VGGPerceptualLoss, feature_matching_loss, hinge_d_loss, hinge_g_loss

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

    def decode(self, x: Tensor, seg: Tensor) -> Tensor:
        for name in BLOCK_NAMES:
            x = getattr(self, name)(x, seg)
            if name in self.upsample_after:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def latent_size(height: int, width: int, num_upsamples: int) -> tuple[int, int]:
    if num_upsamples not in UPSAMPLE_AFTER:
        raise ValueError(f"num_upsamples must be one of {sorted(UPSAMPLE_AFTER)}, got {num_upsamples}")
    f = 2**num_upsamples
    if height % f or width % f:
        raise ValueError(f"{height}x{width} is not divisible by 2**{num_upsamples}={f}; change the size or num_upsamples")
    return height // f, width // f


class SemanticImageGAN(TryOnModel):
    """Base of SPADE-family models: subclasses provide ``generator_forward`` and the modules.

    Subclass config fields used here: label_nc, height, width, lr, lambda_feat, lambda_vgg,
    perceptual_backbone, vgg_weights. The discriminator is ``self.discriminator``.
    """

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._perceptual: VGGPerceptualLoss | None = None  # built on first use; never part of the weights

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.config.height, self.config.width)

    def one_hot(self, labelmap: Tensor) -> Tensor:
        """[B,H,W] int ids -> [B,C,H,W] float one-hot, made on the labels' device."""
        c = self.config.label_nc
        if labelmap.dim() == 4:
            labelmap = labelmap[:, 0]
        if labelmap.numel() and (int(labelmap.max()) >= c or int(labelmap.min()) < 0):
            raise ValueError(f"{self.name}: label ids must be in 0..{c - 1} (label_nc={c}); got max {int(labelmap.max())}")
        return F.one_hot(labelmap.long(), c).permute(0, 3, 1, 2).float()

    def generator_forward(self, batch: dict[str, Tensor], seg: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Training-time generation: (fake image, extra generator losses already weighted)."""
        raise NotImplementedError

    def _perceptual_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        cfg = self.config
        if self._perceptual is None:
            # Stored outside the module tree (object.__setattr__) so the frozen VGG is never saved or moved
            # with the model's state_dict; it follows the inputs' device instead.
            object.__setattr__(self, "_perceptual", VGGPerceptualLoss(cfg.perceptual_backbone, cfg.vgg_weights))
        self._perceptual.to(fake.device)  # type: ignore[union-attr]
        return self._perceptual(fake, real)  # type: ignore[misc]

    def _discriminate(self, seg: Tensor, image: Tensor) -> list[list[Tensor]]:
        return self.discriminator(torch.cat([seg, image], dim=1))

    def _generator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        cfg = self.config
        real = batch["image"]
        seg = self.one_hot(batch["labelmap"])
        fake, losses = self.generator_forward(batch, seg)
        fake_feats = self._discriminate(seg, fake)
        with torch.no_grad():
            real_feats = self._discriminate(seg, real)
        losses["gan"] = hinge_g_loss([f[-1] for f in fake_feats])
        losses["feat"] = cfg.lambda_feat * feature_matching_loss(real_feats, fake_feats)
        if cfg.perceptual_backbone != "none" and cfg.lambda_vgg > 0:
            losses["vgg"] = cfg.lambda_vgg * self._perceptual_loss(fake, real)
        losses["l1"] = F.l1_loss(fake.detach(), real)  # logged only: how far from the ground truth
        losses["total"] = sum(v for k, v in losses.items() if k != "l1")
        return losses

    def _discriminator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        seg = self.one_hot(batch["labelmap"])
        with torch.no_grad():
            fake, _ = self.generator_forward(batch, seg)
        real_logits = [f[-1] for f in self._discriminate(seg, batch["image"])]
        fake_logits = [f[-1] for f in self._discriminate(seg, fake.detach())]
        loss = hinge_d_loss(real_logits, fake_logits)
        return {"hinge": loss, "total": loss}

    def training_phases(self) -> list[TrainingPhase]:
        cfg = self.config
        d_ids = {id(p) for p in self.discriminator.parameters()}
        g_params = [p for p in self.parameters() if id(p) not in d_ids]
        # TTUR as in SPADE/SMIS (on by default there): G at lr/2, D at 2*lr, betas (0, 0.9).
        return [
            TrainingPhase("generator", g_params, cfg.lr / 2, (0.0, 0.9), self._generator_losses),
            TrainingPhase("discriminator", list(self.discriminator.parameters()), cfg.lr * 2, (0.0, 0.9), self._discriminator_losses),
        ]
