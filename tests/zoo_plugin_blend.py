"""A throwaway zoo model that reads no label map: only the person (``image``) and the article.

It exists to prove the zoo is model-agnostic: this file and its test are all it takes to train (in two
stages), generate and evaluate it through `zoo` and `evaluate`. Stage ``mask`` learns where the article
goes, stage ``render`` the colours; generation chains them: ``alpha * render + (1 - alpha) * person``.
Registered on import (tests import it; a subprocess finds it through ``TRYON_BENCH_MODELS``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.base import ModelInputs, Stage, TrainingPhase, TrainingRecipe, TryOnModel
from models.registry import register_model

SEEN_KEYS: list[set[str]] = []  # the tensor keys every generate() call received (checked by the test)


@dataclasses.dataclass(frozen=True)
class BlendConfig:
    height: int = 64
    width: int = 48
    width_mult: int = 8


@dataclasses.dataclass(frozen=True)
class BlendRecipe(TrainingRecipe):
    lr: float = 1e-2
    betas: tuple[float, float] = (0.5, 0.999)


@register_model
class Blend(TryOnModel):
    name: ClassVar[str] = "blend"
    Config = BlendConfig
    Recipe = BlendRecipe
    INPUTS = ModelInputs(generate=("image", "article"), train=("image", "article"))
    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}, "paper": {"width_mult": 32}}
    TRAINING_ONLY: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: BlendConfig) -> None:
        super().__init__(config)
        c = config.width_mult
        self.mask_net = nn.Sequential(nn.Conv2d(6, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, 1, 3, padding=1))
        self.render_net = nn.Sequential(nn.Conv2d(7, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, 3, 3, padding=1))

    def _forward(self, batch: dict[str, Tensor]) -> Tensor:
        x = torch.cat([batch["image"], batch["article"]], 1)
        alpha = torch.sigmoid(self.mask_net(x))
        rgb = torch.tanh(self.render_net(torch.cat([x, alpha], 1)))
        return alpha * rgb + (1 - alpha) * batch["image"]

    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        SEEN_KEYS.append({k for k, v in batch.items() if isinstance(v, Tensor)})
        return self._forward(batch)

    def _loss(self, batch: dict[str, Tensor], recipe: Any) -> dict[str, Tensor]:
        # reconstruct the person (paired training): learnable by both stages
        l1 = F.l1_loss(self._forward(batch), batch["image"])
        return {"total": l1, "l1": l1}

    def training_stages(self, recipe: BlendRecipe) -> list[Stage]:
        loss = functools.partial(self._loss, recipe=recipe)
        return [
            Stage("mask", [TrainingPhase("mask", list(self.mask_net.parameters()), recipe.lr, recipe.betas, loss)]),
            Stage("render", [TrainingPhase("render", list(self.render_net.parameters()), recipe.lr, recipe.betas, loss)]),
        ]
