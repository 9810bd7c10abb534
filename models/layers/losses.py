"""GAN objectives (hinge, LSGAN, BCE), feature matching, perceptual (VGG19), Gram style and KL losses shared by the zoo."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet VGG19 weights, as named in the torch hub cache
PERCEPTUAL_BACKBONES = ("vgg19", "untrained", "none")


GAN_OBJECTIVES = ("hinge", "lsgan", "bce")


def _check_objective(objective: str) -> None:
    if objective not in GAN_OBJECTIVES:
        raise ValueError(f"GAN objective {objective!r}; valid: {', '.join(GAN_OBJECTIVES)}")


def gan_d_real_loss(objective: str, real_logits: list[Tensor]) -> Tensor:
    """The half of the discriminator loss on real samples, averaged over scales."""
    _check_objective(objective)
    if objective == "hinge":
        terms = [F.relu(1 - r).mean() for r in real_logits]
    elif objective == "lsgan":
        terms = [0.5 * F.mse_loss(r, torch.ones_like(r)) for r in real_logits]
    else:
        terms = [F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) for r in real_logits]
    return sum(terms) / len(terms)


def gan_d_fake_loss(objective: str, fake_logits: list[Tensor]) -> Tensor:
    """The half of the discriminator loss on fake samples, averaged over scales."""
    _check_objective(objective)
    if objective == "hinge":
        terms = [F.relu(1 + f).mean() for f in fake_logits]
    elif objective == "lsgan":
        terms = [0.5 * F.mse_loss(f, torch.zeros_like(f)) for f in fake_logits]
    else:
        terms = [F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)) for f in fake_logits]
    return sum(terms) / len(terms)


def gan_d_loss(objective: str, real_logits: list[Tensor], fake_logits: list[Tensor]) -> Tensor:
    """Discriminator loss averaged over scales (each list: one logit map per scale).

    hinge (SPADE, SMIS): relu(1 - D(real)) + relu(1 + D(fake));
    lsgan (pix2pixHD, ACGPN): ((D(real) - 1)^2 + D(fake)^2) / 2, the halving pix2pixHD applies;
    bce (CAGAN, DCGAN): -log sigmoid(D(real)) - log(1 - sigmoid(D(fake))), from logits for stability.
    """
    return gan_d_real_loss(objective, real_logits) + gan_d_fake_loss(objective, fake_logits)


def gan_g_loss(objective: str, fake_logits: list[Tensor]) -> Tensor:
    """Generator loss averaged over scales: hinge -D(fake); lsgan (D(fake) - 1)^2; bce non-saturating -log sigmoid(D(fake))."""
    _check_objective(objective)
    if objective == "hinge":
        terms = [-f.mean() for f in fake_logits]
    elif objective == "lsgan":
        terms = [F.mse_loss(f, torch.ones_like(f)) for f in fake_logits]
    else:
        terms = [F.binary_cross_entropy_with_logits(f, torch.ones_like(f)) for f in fake_logits]
    return sum(terms) / len(terms)


def feature_matching_loss(real_feats: list[list[Tensor]], fake_feats: list[list[Tensor]], mask: Tensor | None = None) -> Tensor:
    """L1 between D's intermediate features of real and fake (last layer = logits excluded), per scale mean.

    With ``mask`` ([B,1,H,W] in [0,1]) only the features inside it count: the mask is resized to each
    feature map (area average, so a feature cell is weighted by how much of the mask it covers) and the
    L1 is normalised by the mask's area, so the loss does not shrink with the garment's size.
    """
    total = real_feats[0][0].new_zeros(())
    for real, fake in zip(real_feats, fake_feats):
        for r, f in zip(real[:-1], fake[:-1]):
            if mask is None:
                total = total + F.l1_loss(f, r.detach())
            else:
                m = F.adaptive_avg_pool2d(mask, f.shape[-2:])
                total = total + ((f - r.detach()).abs() * m).sum() / (m.sum() * f.shape[1]).clamp_min(1e-6)
    return total / len(real_feats)


def gram_matrix(features: Tensor) -> Tensor:
    """[B,C,H,W] -> [B,C,C] channel correlations normalised by C*H*W (Gatys et al.)."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


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
    # the end index in torchvision's vgg19().features of each nameable ReLU output (relu<block>_<conv>)
    LAYER_ENDS = {"relu1_1": 2, "relu1_2": 4, "relu2_1": 7, "relu2_2": 9, "relu3_1": 12, "relu3_2": 14,
                  "relu4_1": 21, "relu4_2": 23, "relu5_1": 30, "relu5_2": 32}

    def __init__(self, backbone: str = "vgg19", weights_path: str | None = None, seed: int = 0,
                 layers: tuple[str, ...] | None = None, weights: tuple[float, ...] | None = None) -> None:
        """``layers`` / ``weights``: another set of ReLU outputs (names of ``LAYER_ENDS``) and their weights
        (VITON: relu1_2 .. relu5_2 with its hand-set constants); default pix2pixHD's relu1_1 .. relu5_1."""
        super().__init__()
        from torchvision.models import vgg19

        if backbone not in ("vgg19", "untrained"):
            raise ValueError(f"perceptual backbone {backbone!r}; valid: vgg19, untrained")
        if (layers is None) != (weights is None) or (layers is not None and len(layers) != len(weights)):
            raise ValueError("give perceptual layers and weights together, one weight per layer")
        if layers is not None:
            unknown = sorted(set(layers) - set(self.LAYER_ENDS))
            if unknown:
                raise ValueError(f"unknown VGG19 layers {unknown}; valid: {', '.join(self.LAYER_ENDS)}")
            ends = [self.LAYER_ENDS[name] for name in layers]
            if ends != sorted(set(ends)):
                raise ValueError(f"perceptual layers must be distinct and in network order, got {list(layers)}")
            self.SLICES, self.WEIGHTS = tuple(ends), tuple(float(w) for w in weights)  # type: ignore[misc,arg-type]
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

    def perceptual_and_style(self, fake: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
        """(the perceptual loss above, the Gram-matrix style loss: L1 between Gram matrices per layer, summed)."""
        perceptual, style = fake.new_zeros(()), fake.new_zeros(())
        for w, f, r in zip(self.WEIGHTS, self._feats(fake), self._feats(real)):
            perceptual = perceptual + w * F.l1_loss(f, r.detach())
            style = style + F.l1_loss(gram_matrix(f), gram_matrix(r.detach()))
        return perceptual, style

    def deepest(self, fake: Tensor, real: Tensor) -> Tensor:
        """L1 between the relu5_1 features only (weight 1): pix2pixHD's ``VGGLoss.warp``, which ACGPN
        puts on its warped and rendered clothes."""
        return F.l1_loss(self._feats(fake)[-1], self._feats(real)[-1].detach())


def cached_perceptual(owner: nn.Module, backbone: str, weights_path: str | None, device: torch.device,
                      layers: tuple[str, ...] | None = None, weights: tuple[float, ...] | None = None) -> VGGPerceptualLoss:
    """The frozen perceptual network a model's losses use, built once per (backbone, file, layers, weights)
    and kept in the model's ``__dict__``, outside its module tree: never saved with the weights, and it
    follows the inputs' device instead of ``model.to``."""
    nets = owner.__dict__.setdefault("_perceptual_nets", {})
    key = (backbone, weights_path, layers, weights)
    if key not in nets:
        nets[key] = VGGPerceptualLoss(backbone, weights_path, layers=layers, weights=weights)
    return nets[key].to(device)
