"""Test fixtures for the trainer: a small two-phase GAN try-on model and an in-memory batch-contract dataset.

`ToyTryOn` is deliberately shaped like the zoo's real models so that the trainer meets everything they
bring: two phases with TTUR learning rates (generator, then discriminator), gradients that flow through
the discriminator into the generator, spectral-norm buffers that change during training, and a noise
input drawn from the global RNG (what resume must reproduce). It is a test fixture, never registered.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.utils.data import Dataset

from models.base import DataNeeds, ModelInputs, TrainingPhase, TrainingRecipe, TryOnModel


@dataclass(frozen=True)
class ToyConfig:
    label_nc: int = 4
    ngf: int = 8
    ndf: int = 8
    height: int = 16
    width: int = 16
    noise: bool = True  # draw a noise channel from the global RNG in every forward
    spectral: bool = True  # spectral-norm the discriminator (its u vectors are buffers updated in training)


@dataclass(frozen=True)
class ToyRecipe(TrainingRecipe):
    lr: float = 2e-4
    l1_weight: float = 10.0


class ToyTryOn(TryOnModel):
    name: ClassVar[str] = "toy"
    INPUTS = ModelInputs(generate=("article", "labelmap"), train=("image", "article", "labelmap"), label_channels="label_nc")
    Config = ToyConfig
    Recipe = ToyRecipe
    PRESETS: ClassVar[dict[str, dict]] = {"tiny": {}, "paper": {"ngf": 32, "ndf": 32}}

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        c = self.config
        in_ch = c.label_nc + 3 + (1 if c.noise else 0)
        self.generator = nn.Sequential(
            # No bias before InstanceNorm: the norm removes it, so its gradient is pure rounding noise
            # that Adam would blow up to full-size steps.
            nn.Conv2d(in_ch, c.ngf, 3, padding=1, bias=False),
            nn.InstanceNorm2d(c.ngf),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c.ngf, 3, 3, padding=1),
            nn.Tanh(),
        )
        norm = spectral_norm if c.spectral else (lambda m: m)
        self.discriminator = nn.Sequential(
            norm(nn.Conv2d(3 + c.label_nc, c.ndf, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            norm(nn.Conv2d(c.ndf, 1, 3, padding=1)),
        )

    def _one_hot(self, labelmap: Tensor) -> Tensor:
        return F.one_hot(labelmap, self.config.label_nc).permute(0, 3, 1, 2).float()

    def _generate(self, batch: dict[str, Tensor]) -> Tensor:
        parts = [self._one_hot(batch["labelmap"]), batch["article"]]
        if self.config.noise:
            parts.append(torch.randn_like(batch["article"][:, :1]))
        return self.generator(torch.cat(parts, dim=1))

    @torch.no_grad()
    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        return self._generate(batch)

    def _discriminate(self, image: Tensor, labelmap: Tensor) -> Tensor:
        return self.discriminator(torch.cat([image, self._one_hot(labelmap)], dim=1))

    def _generator_losses(self, batch: dict[str, Tensor], recipe: ToyRecipe) -> dict[str, Tensor]:
        fake = self._generate(batch)
        adversarial = -self._discriminate(fake, batch["labelmap"]).mean()
        l1 = F.l1_loss(fake, batch["image"])
        return {"total": adversarial + recipe.l1_weight * l1, "gan": adversarial, "l1": l1}

    def _discriminator_losses(self, batch: dict[str, Tensor], recipe: ToyRecipe) -> dict[str, Tensor]:
        with torch.no_grad():
            fake = self._generate(batch)
        real_term = F.relu(1 - self._discriminate(batch["image"], batch["labelmap"])).mean()
        fake_term = F.relu(1 + self._discriminate(fake, batch["labelmap"])).mean()
        return {"total": real_term + fake_term, "real": real_term, "fake": fake_term}

    def training_phases(self, recipe: ToyRecipe) -> list[TrainingPhase]:
        # TTUR as in SPADE: G at lr/2, D at lr*2, betas (0, 0.9).
        return [
            TrainingPhase("generator", list(self.generator.parameters()), recipe.lr / 2, (0.0, 0.9),
                          functools.partial(self._generator_losses, recipe=recipe)),
            TrainingPhase("discriminator", list(self.discriminator.parameters()), recipe.lr * 2, (0.0, 0.9),
                          functools.partial(self._discriminator_losses, recipe=recipe)),
        ]


class ToyTryOnDataset(Dataset):
    """`n` fixed random samples with every key of the batch contract (docs/ARCHITECTURE.md).

    Stands in for `curate.loader.TryOnDataset` where only shapes and value ranges matter (trainer
    tests, timing benchmarks): images in [-1,1], masks in {0,1}, label ids in [0, num_classes).
    """

    def __init__(self, n: int = 12, size: tuple[int, int] = (16, 16), num_classes: int = 4, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        h, w = size
        self.num_classes = num_classes
        self.label_set = f"toy-{num_classes}"

        def image() -> Tensor:
            return torch.rand(n, 3, h, w, generator=generator) * 2 - 1

        def mask() -> Tensor:
            return (torch.rand(n, 1, h, w, generator=generator) > 0.5).float()

        self.tensors: dict[str, Tensor] = {
            "image": image(),
            "article": image(),
            "article_mask": mask(),
            "negative": image(),
            "negative_mask": mask(),
            "labelmap": torch.randint(0, num_classes, (n, h, w), generator=generator),
            "keypoints": torch.rand(n, 18, 3, generator=generator) * torch.tensor([w, h, 1.0]),
            "pose_heatmap": torch.rand(n, 18, h, w, generator=generator),
            "body_shape": torch.rand(n, 1, h, w, generator=generator),
            "head": image(),
            "worn_mask": mask(),
        }

    def __len__(self) -> int:
        return self.tensors["image"].shape[0]

    def __getitem__(self, index: int) -> dict[str, object]:
        sample: dict[str, object] = {key: value[index] for key, value in self.tensors.items()}
        sample.update(
            pair_id=f"pair{index:04d}", human_id=f"human{index:04d}",
            article_id=f"article{index:04d}", negative_id=f"article{(index + 1) % len(self):04d}",
        )
        return sample


def batch_for(needs: DataNeeds, n: int = 2, seed: int = 0, keys: tuple[str, ...] | None = None) -> dict[str, Tensor]:
    """A fixed batch holding exactly the keys a model declares (``needs.train`` by default), built from
    its size and class count alone, with a learnable relation between inputs and the target image:
    blocky label layouts with one colour per class when the model reads label maps (garments filled by
    their texture), else the person is the article's colours over a fixed background."""
    g = torch.Generator().manual_seed(seed)
    h, w = needs.size
    keys = needs.train if keys is None else keys
    out: dict[str, Tensor] = {}
    classes = needs.num_classes or 4
    labels = torch.zeros(n, h, w, dtype=torch.long)
    for k in range(classes):  # every class gets an area (SMIS encodes each class's crop)
        y0 = int(torch.randint(0, max(1, h - 8), (1,), generator=g))
        x0 = int(torch.randint(0, max(1, w - 8), (1,), generator=g))
        labels[:, y0:y0 + max(2, h // 5), x0:x0 + max(2, w // 5)] = k
    palette = torch.rand(classes, 3, generator=g) * 2 - 1
    article = torch.rand(n, 3, 1, 1, generator=g).expand(n, 3, h, w) * 2 - 1
    mask = torch.zeros(n, 1, h, w)
    mask[:, :, h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1
    if needs.num_classes:
        image = palette[labels].permute(0, 3, 1, 2).contiguous()
    else:
        image = article * mask + 0.8 * (1 - mask)  # the article's colour on the body, a light background
    tensors = {
        "image": image, "article": article.contiguous(), "article_mask": mask,
        "negative": article.flip(0).contiguous(), "negative_mask": mask.clone(), "labelmap": labels,
        "keypoints": torch.rand(n, 18, 3, generator=g) * torch.tensor([w, h, 1.0]),
        "pose_heatmap": torch.rand(n, 18, h, w, generator=g), "body_shape": mask.clone(),
        "head": image * (1 - mask) + (mask - 1), "worn_mask": mask.clone(),
    }
    for key in keys:
        out[key] = tensors[key]
    return out


REFERENCE_CHECKPOINTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "checkpoints"


def official_spec(name: str) -> dict:
    """A ../shared/reference/checkpoints/<name>.json key list (the official state_dict's names/shapes)."""
    import json

    import pytest

    path = REFERENCE_CHECKPOINTS / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return json.loads(path.read_text())


def synthesise_official_state(name: str, path: Path) -> dict[str, Tensor]:
    """A state dict with every official key and shape (seeded values; positive running variances), saved
    as the releases are (a raw ``torch.save`` of the dict)."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, shape, dtype in official_spec(name)["keys"]:
        if dtype == "int64":
            state[key] = torch.tensor(7, dtype=torch.int64).reshape(shape)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.01
    torch.save(state, path)
    return state
