"""GAN, feature-matching, perceptual (VGG19) and KL losses shared by the zoo."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet VGG19 weights, as named in the torch hub cache
PERCEPTUAL_BACKBONES = ("vgg19", "untrained", "none")


def hinge_d_loss(real_logits: list[Tensor], fake_logits: list[Tensor]) -> Tensor:
    """Discriminator hinge loss averaged over scales: relu(1 - D(real)) + relu(1 + D(fake))."""
    loss = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits))
    return loss / len(real_logits)


def hinge_g_loss(fake_logits: list[Tensor]) -> Tensor:
    return -sum(f.mean() for f in fake_logits) / len(fake_logits)


def feature_matching_loss(real_feats: list[list[Tensor]], fake_feats: list[list[Tensor]]) -> Tensor:
    """L1 between D's intermediate features of real and fake (last layer = logits excluded), per scale mean."""
    total = real_feats[0][0].new_zeros(())
    for real, fake in zip(real_feats, fake_feats):
        for r, f in zip(real[:-1], fake[:-1]):
            total = total + F.l1_loss(f, r.detach())
    return total / len(real_feats)


def kl_loss(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma) || N(0, 1)) summed over dimensions, as the VAE references do (sum, not mean)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def resolve_vgg_weights(explicit: str | None) -> Path:
    """Find VGG19 weights: an explicit path, else the torch hub cache. A missing file is a clear error."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--vgg-weights {path} does not exist")
        return path
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints" / VGG19_FILE
    if hub.is_file():
        return hub
    raise FileNotFoundError(
        f"the perceptual loss needs ImageNet VGG19 weights: put {VGG19_FILE} (torchvision's file) at {hub} "
        f"or pass --vgg-weights PATH; for tests and offline demos pass --perceptual-backbone untrained "
        f"(recorded in the run config; such a run is not comparable to the references) or none"
    )


class VGGPerceptualLoss(nn.Module):
    """L1 between VGG19 relu1_1..relu5_1 features, weighted 1/32, 1/16, 1/8, 1/4, 1 (pix2pixHD/SPADE).

    Images in [-1, 1] are mapped to ImageNet normalisation first. ``backbone="untrained"`` uses a seeded
    random VGG19 (drawn under a forked RNG so building it never shifts the training random stream).
    """

    SLICES = (2, 7, 12, 21, 30)  # indices in torchvision's vgg19().features after relu1_1 .. relu5_1
    WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, backbone: str = "vgg19", weights_path: str | None = None, seed: int = 0) -> None:
        super().__init__()
        from torchvision.models import vgg19

        if backbone not in ("vgg19", "untrained"):
            raise ValueError(f"perceptual backbone {backbone!r}; valid: vgg19, untrained")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = vgg19(weights=None)
        if backbone == "vgg19":
            state = torch.load(resolve_vgg_weights(weights_path), map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        self.features = net.features[: self.SLICES[-1]].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VGGPerceptualLoss":
        super().train(mode)
        self.features.eval()  # a frozen feature extractor never switches to training behaviour
        return self

    def _feats(self, x: Tensor) -> list[Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i + 1 in self.SLICES:
                out.append(x)
        return out

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        loss = fake.new_zeros(())
        for w, f, r in zip(self.WEIGHTS, self._feats(fake), self._feats(real)):
            loss = loss + w * F.l1_loss(f, r.detach())
        return loss
