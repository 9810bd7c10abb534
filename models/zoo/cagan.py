"""CAGAN (Jetchev & Bergmann 2017): swap the article a person wears from three images alone.

No pose, no parsing: the generator reads the person x_i, the article they wear y_i and a new article y_j
(9 channels) and predicts an alpha mask and RGB; the try-on is ``alpha * rgb + (1 - alpha) * x_i``, so
where alpha is 0 the person is untouched. A conditional PatchGAN judges (image, article) pairs: the real
person with their article is real; the generated person with the new article, and the real person with
a *mismatched* article, are fake (the second teaches D that the article must match). A cycle (swap y_i
back in) keeps the person; mean |alpha| keeps the change small. Trained from the curated triplets
(positive = worn, negative = new article), with person and articles mirrored together.

Generation: ``generate`` swaps in the batch's ``article`` (the paired protocol: the person's own
article, a reconstruction); ``generate_unpaired`` swaps in the triplet's negative.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from models.base import ModelInputs, TrainingPhase, TrainingRecipe, TryOnModel
from models.layers.discriminators import ConditionalPatchDiscriminator
from models.layers.losses import GAN_OBJECTIVES, gan_d_fake_loss, gan_d_real_loss, gan_g_loss
from models.layers.unet import UNetGenerator
from models.registry import register_model


@dataclasses.dataclass(frozen=True)
class CAGANConfig:
    height: int = 128
    width: int = 96
    ngf: int = 64
    num_downs: int = 4  # 64-128-256-512, as the reference re-implementations
    ndf: int = 64
    n_layers_d: int = 3
    d_noise: float = 0.2  # Gaussian noise on D's input and activations, training only

    def __post_init__(self) -> None:
        f = 2**self.num_downs
        if self.height % f or self.width % f:
            raise ValueError(f"{self.height}x{self.width} is not divisible by 2**num_downs={f}")


@dataclasses.dataclass(frozen=True)
class CAGANRecipe(TrainingRecipe):
    """The references' training: Adam 2e-4, beta1 0.5; adversarial (BCE) : cycle : alpha = 1 : 1 : 0.1."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    gan_objective: str = "bce"
    lambda_gan: float = 1.0
    lambda_cycle: float = 1.0
    lambda_alpha: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.gan_objective not in GAN_OBJECTIVES:
            raise ValueError(f"gan_objective {self.gan_objective!r}; valid: {', '.join(GAN_OBJECTIVES)}")


@register_model
class CAGAN(TryOnModel):
    name: ClassVar[str] = "cagan"
    Config = CAGANConfig
    Recipe = CAGANRecipe
    INPUTS = ModelInputs(generate=("image", "article"), train=("image", "article", "negative"), augment=("hflip",))
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": dict(height=64, width=48, ngf=16, ndf=16),
        "paper": dict(),  # 128x96, ngf 64 (batch 16 in the reference notebook: pass --batch-size 16)
    }

    def __init__(self, config: CAGANConfig) -> None:
        super().__init__(config)
        # InstanceNorm, not BatchNorm: a minibatch mixes real and generated people
        self.generator = UNetGenerator(9, 4, config.num_downs, config.ngf, norm="instance", upsample="transpose",
                                       final_activation="sigmoid")
        self.discriminator = ConditionalPatchDiscriminator(3, 3, config.ndf, config.n_layers_d, norm="instance",
                                                           spectral=False, noise_sigma=config.d_noise)

    def swap(self, person: Tensor, worn: Tensor, new: Tensor) -> tuple[Tensor, Tensor]:
        """(try-on, alpha): the person wearing ``new`` instead of ``worn``; alpha in [0, 1]."""
        out = self.generator(torch.cat([person, worn, new], dim=1))  # sigmoid: every channel in [0, 1]
        alpha, rgb = out[:, :1], out[:, 1:] * 2 - 1
        return alpha * rgb + (1 - alpha) * person, alpha

    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        return self.swap(batch["image"], batch["article"], batch["article"])[0]

    def generate_unpaired(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        return self.swap(batch["image"], batch["article"], batch["negative"])[0]

    def _logits(self, image: Tensor, article: Tensor) -> list[Tensor]:
        return [scale[-1] for scale in self.discriminator(image, article)]

    def _generator_losses(self, batch: dict[str, Tensor], recipe: CAGANRecipe) -> dict[str, Tensor]:
        person, worn, new = batch["image"], batch["article"], batch["negative"]
        fake, alpha = self.swap(person, worn, new)
        back, alpha_back = self.swap(fake, new, worn)  # the cycle: the original article swapped back in
        gan = gan_g_loss(recipe.gan_objective, self._logits(fake, new))
        cycle = F.l1_loss(back, person)
        sparsity = 0.5 * (alpha.abs().mean() + alpha_back.abs().mean())
        losses = {"gan": recipe.lambda_gan * gan, "cycle": recipe.lambda_cycle * cycle, "alpha": recipe.lambda_alpha * sparsity}
        losses["total"] = sum(losses.values())
        losses["alpha_mean"] = alpha.detach().mean()  # logged: how much of the person changes
        return losses

    def _discriminator_losses(self, batch: dict[str, Tensor], recipe: CAGANRecipe) -> dict[str, Tensor]:
        person, worn, new = batch["image"], batch["article"], batch["negative"]
        with torch.no_grad():
            fake, _ = self.swap(person, worn, new)
        objective = recipe.gan_objective
        real = gan_d_real_loss(objective, self._logits(person, worn))
        generated = gan_d_fake_loss(objective, self._logits(fake, new))
        mismatched = gan_d_fake_loss(objective, self._logits(person, new))
        # the two fake terms share the fake half of the objective
        losses = {"real": real, "generated": 0.5 * generated, "mismatched": 0.5 * mismatched}
        losses["total"] = recipe.lambda_gan * sum(losses.values())
        return losses

    def training_phases(self, recipe: CAGANRecipe) -> list[TrainingPhase]:
        return [
            TrainingPhase("generator", list(self.generator.parameters()), recipe.lr, recipe.betas,
                          functools.partial(self._generator_losses, recipe=recipe)),
            TrainingPhase("discriminator", list(self.discriminator.parameters()), recipe.lr, recipe.betas,
                          functools.partial(self._discriminator_losses, recipe=recipe)),
        ]
