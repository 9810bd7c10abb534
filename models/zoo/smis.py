"""SMIS / GroupDNet (Zhu et al. 2020): semantically multi-modal image synthesis.

Every class k has its own 8-dim style code (z channels [8k, 8k+8)); grouped convolutions keep the
classes apart in the early layers and merge them progressively (groups 8, 8, 4, 4, 2, 2, 1 in the
paper's DeepFashion generator). Re-sampling one class's code changes only that class's appearance: the
"change only the trousers" feature (:meth:`SMIS.resample_class`).

Key names and shapes follow the official DeepFashionGenerator / ConvEncoder so released checkpoints
import; the ``paper`` preset has exactly the official 96,324,451 generator parameters and the
encoder's 12,835,712.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from models.base import ModelInputs
from models.checkpoint_import import OfficialCheckpoint, rename_spectral_norm
from models.layers.discriminators import MultiscaleDiscriminator
from models.layers.gan import BLOCK_NAMES, SemanticGANRecipe, SemanticImageGAN, SPADEDecoder
from models.layers.losses import kl_loss
from models.layers import spade_norm
from models.layers.spade_norm import LabelMaps
from models.registry import register_model


@dataclasses.dataclass(frozen=True)
class SMISConfig:
    label_nc: int = 8
    height: int = 256
    width: int = 256
    ngf: int = 160
    groups: tuple[int, ...] = (8, 8, 4, 4, 2, 2, 1)  # head_0, G_middle_0, G_middle_1, up_0..up_3
    fc_groups: int | None = None  # groups of the first conv on the class codes (None: one per class, official)
    z_per_class: int = 8
    spade_hidden: int = 128
    num_upsamples: int = 6
    nef: int = 256  # encoder width of its first layer (the paper's DeepFashion netE: 256)
    ndf: int = 64
    n_layers_d: int = 4
    num_d: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))  # JSON gives a list back
        if len(self.groups) != len(BLOCK_NAMES):
            raise ValueError(f"groups needs {len(BLOCK_NAMES)} values ({', '.join(BLOCK_NAMES)}), got {self.groups}")
        for g in (*self.groups, self.fc_groups or self.label_nc):
            if self.label_nc % g:
                raise ValueError(f"every group count must divide label_nc={self.label_nc}; got {self.groups}, fc {self.fc_groups}")
        if (16 * self.ngf) % (self.fc_groups or self.label_nc):
            raise ValueError(f"16*ngf={16 * self.ngf} must be divisible by fc_groups={self.fc_groups or self.label_nc} "
                             "(set fc_groups=1 for a plain first convolution)")
        if self.nef % self.label_nc:
            raise ValueError(f"the per-class encoder needs nef divisible by label_nc={self.label_nc}; got nef={self.nef}")


@dataclasses.dataclass(frozen=True)
class SMISRecipe(SemanticGANRecipe):
    """SMIS's published training (SemanticGANRecipe + KL 0.05), and the fields of the garment recipe.

    target: "person" (reconstruct the photo) or "garment" (a clean garment image: the photo's garment
    pixels, label > 0, on white). feature_matching_in_mask: feature matching only inside the garment.
    lambda_style: Gram-matrix style loss on the perceptual network's features (0 = off).
    labelmap_is_fake: the discriminator must also call the label map itself, rendered as colours, fake
    (so painting the layout flat is never a way out).
    """

    lambda_kld: float = 0.05
    target: str = "person"
    feature_matching_in_mask: bool = False
    lambda_style: float = 0.0
    labelmap_is_fake: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target not in ("person", "garment"):
            raise ValueError(f"target {self.target!r}; valid: person, garment")
        if self.lambda_style > 0 and self.perceptual_backbone == "none":
            raise ValueError("lambda_style needs a perceptual backbone (vgg19 or untrained) for its features")


class GroupGenerator(SPADEDecoder):
    """DeepFashionGenerator: grouped fc on the class codes, then the shared decoder with grouped blocks."""

    def __init__(self, cfg: SMISConfig) -> None:
        fc = nn.Conv2d(cfg.z_per_class * cfg.label_nc, 16 * cfg.ngf, 3, padding=1, groups=cfg.fc_groups or cfg.label_nc)
        super().__init__(fc, cfg.label_nc, cfg.ngf, cfg.spade_hidden, cfg.height, cfg.width, cfg.num_upsamples, cfg.groups)

    def forward(self, z: Tensor, seg: Tensor | LabelMaps) -> Tensor:
        # the codes join the decoder's channels-last layout before fc (see SPADEDecoder.decode)
        return self.decode(self.fc(z.contiguous(memory_format=spade_norm.INFERENCE_LAYOUT)), seg)


class GroupEncoder(nn.Module):
    """ConvEncoder with groups = classes: class k's crop -> its own mu/logvar (z_per_class channels)."""

    def __init__(self, cfg: SMISConfig) -> None:
        super().__init__()
        c, base = cfg.label_nc, cfg.nef
        widths = [base, 2 * base, 4 * base, 8 * base] + [8 * base] * max(0, cfg.num_upsamples - 4)
        cin = 3 * c
        for i, w in enumerate(widths[: cfg.num_upsamples], start=1):
            conv = spectral_norm(nn.Conv2d(cin, w, 3, stride=2, padding=1, groups=c, bias=False))
            setattr(self, f"layer{i}", nn.Sequential(conv, nn.InstanceNorm2d(w)))
            cin = w
        self.n_layers = cfg.num_upsamples
        self.fc_mu = nn.Conv2d(cin, cfg.z_per_class * c, 3, padding=1, groups=c)
        self.fc_var = nn.Conv2d(cin, cfg.z_per_class * c, 3, padding=1, groups=c)

    def forward(self, crops: Tensor) -> tuple[Tensor, Tensor]:
        x = crops
        for i in range(1, self.n_layers + 1):
            x = F.leaky_relu(getattr(self, f"layer{i}")(x), 0.2)
        return self.fc_mu(x), self.fc_var(x)


def class_crops(image: Tensor, seg: Tensor) -> Tensor:
    """[B, 3C, H, W]: for class k, the image masked to k, cropped to k's bounding box and resized back to
    H x W (nearest), zeros when k is absent — the encoder input of the reference (``trans_img``)."""
    b, c, h, w = seg.shape
    out = image.new_zeros(b, 3 * c, h, w)
    present = seg.flatten(2).amax(-1) > 0
    for i, k in present.nonzero().tolist():
        mask = seg[i, k]
        ys, xs = mask.nonzero(as_tuple=True)
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        crop = (image[i] * mask)[:, y0:y1, x0:x1]
        out[i, 3 * k:3 * k + 3] = F.interpolate(crop[None], size=(h, w), mode="nearest")[0]
    return out


def garment_mask(labelmap: Tensor) -> Tensor:
    """[B,1,H,W] 1 where a garment class lies (every id but background 0)."""
    if labelmap.dim() == 4:
        labelmap = labelmap[:, 0]
    return (labelmap > 0).float()[:, None]


def label_colours(num_classes: int) -> Tensor:
    """A fixed colour per class in [-1, 1] (seeded, independent of the global RNG); background white."""
    colours = torch.rand(num_classes, 3, generator=torch.Generator().manual_seed(1234)) * 2 - 1
    colours[0] = 1.0
    return colours


@register_model
class SMIS(SemanticImageGAN):
    name: ClassVar[str] = "smis"
    INPUTS = ModelInputs(generate=("labelmap", "image"), train=("labelmap", "image"), label_channels="label_nc")
    Config = SMISConfig
    Recipe = SMISRecipe
    PRESETS: ClassVar[dict[str, dict]] = {
        "tiny": dict(label_nc=8, height=64, width=48, ngf=16, spade_hidden=32, num_upsamples=4, nef=16, ndf=16,
                     n_layers_d=3, num_d=1),
        "paper": dict(),  # DeepFashion: 8 classes, 256x256, ngf 160, groups 8,8,4,4,2,2,1, 'more' (6 ups)
        # Clean garment images from FGVC6 parsing (`curate labelmaps --label-set fgvc6-46+bg`: background +
        # 46 classes = 47, a prime): no group count divides it, so the first conv and the decoder blocks are
        # plain convolutions; the per-class encoder and per-class style codes stay (nef = 4 per class).
        "garment": dict(label_nc=47, height=256, width=192, ngf=64, num_upsamples=5, groups=(1,) * 7, fc_groups=1, nef=188),
        "garment-tiny": dict(label_nc=47, height=64, width=48, ngf=16, spade_hidden=32, num_upsamples=4, groups=(1,) * 7,
                             fc_groups=1, nef=47, ndf=16, n_layers_d=3, num_d=1),
    }
    RECIPES: ClassVar[dict[str, dict]] = {
        "default": {},
        # Our weights for the style and masked feature-matching terms (the project we learned from did not
        # publish its values).
        "garment": dict(target="garment", feature_matching_in_mask=True, lambda_style=10.0, labelmap_is_fake=True),
    }
    PRESET_RECIPES: ClassVar[dict[str, str]] = {"garment-tiny": "garment"}
    OFFICIAL = OfficialCheckpoint(
        parts={"generator": ("generator", "latest_net_G.pth"), "encoder": ("encoder", "latest_net_E.pth")},
        required=("generator",), filter_fn=rename_spectral_norm, label_set="smis-8",
        describe="Seanseattle/SMIS DeepFashion latest_net_G.pth (+ optional --encoder latest_net_E.pth; without it the "
                 "import generates with sampled style codes, as the official test does)",
    )

    def __init__(self, config: SMISConfig) -> None:
        super().__init__(config)
        self.generator = GroupGenerator(config)
        self.encoder = GroupEncoder(config)
        self.discriminator = MultiscaleDiscriminator(config.label_nc + 3, config.ndf, config.n_layers_d, config.num_d)

    def encode(self, image: Tensor, seg: Tensor) -> tuple[Tensor, Tensor]:
        """Per-class style (mu, logvar), each [B, z_per_class * C, h, w] at the latent size."""
        mu, logvar = self.encoder(class_crops(image, seg))
        # the encoder's spatial output is the latent size by construction; resize guards odd inputs
        if mu.shape[-2:] != self.generator.latent:
            mu = F.interpolate(mu, size=self.generator.latent, mode="nearest")
            logvar = F.interpolate(logvar, size=self.generator.latent, mode="nearest")
        return mu, logvar

    def generator_forward(self, batch: dict[str, Tensor], seg: Tensor, recipe: Any) -> tuple[Tensor, dict[str, Tensor]]:
        mu, logvar = self.encode(self.target(batch, recipe), seg)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.generator(z, seg), {"kld": recipe.lambda_kld * kl_loss(mu, logvar) / mu.shape[0]}

    # ---- the garment recipe's hooks (inactive under the default recipe) --------------------------------
    def target(self, batch: dict[str, Tensor], recipe: Any) -> Tensor:
        if recipe.target == "person":
            return batch["image"]
        mask = garment_mask(batch["labelmap"])
        return batch["image"] * mask + (1 - mask)  # garment pixels on white

    def feature_mask(self, batch: dict[str, Tensor], recipe: Any) -> Tensor | None:
        return garment_mask(batch["labelmap"]) if recipe.feature_matching_in_mask else None

    def extra_generator_losses(self, fake: Tensor, target: Tensor, batch: dict[str, Tensor], recipe: Any) -> dict[str, Tensor]:
        if recipe.lambda_style <= 0:
            return {}
        _, style = self.perceptual_net(recipe, fake.device).perceptual_and_style(fake, target)
        return {"style": recipe.lambda_style * style}

    def extra_fakes(self, seg: Tensor, batch: dict[str, Tensor], recipe: Any) -> list[Tensor]:
        if not recipe.labelmap_is_fake:
            return []
        colours = label_colours(self.config.label_nc).to(seg.device)
        return [torch.einsum("bchw,cd->bdhw", seg, colours)]

    # ---- generation -------------------------------------------------------------------------------
    STYLES: ClassVar[tuple[str, ...]] = ("encode", "sample")

    @property
    def default_style(self) -> str:
        """``encode`` when the encoder's weights were loaded; ``sample`` for a generator-only folder (an
        import of the release without latest_net_E.pth): what the official test does."""
        return "sample" if "encoder" in getattr(self, "omitted", ()) else "encode"

    def style_codes(self, batch: dict[str, Tensor], seg: Tensor | LabelMaps, style: str | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
        """[B, z_per_class * C, h, w]: the encoded mean code of each class (``encode``), or N(0, 1) codes
        drawn as the official test draws them (``sample``; ``generator`` None = torch's global RNG)."""
        style = style or self.default_style
        if style == "sample":
            return self.sample_codes(batch["labelmap"].shape[0], generator)
        if style != "encode":
            raise ValueError(f"style {style!r}; valid: {', '.join(self.STYLES)}")
        if "encoder" in getattr(self, "omitted", ()):
            raise ValueError("this SMIS folder holds no trained encoder (a generator-only import: the release's test never "
                             "uses one): generate with style 'sample', or import with --encoder latest_net_E.pth")
        dense = seg.dense() if isinstance(seg, LabelMaps) else seg
        mu, _ = self.encode(batch["image"], dense)
        return mu

    @torch.inference_mode()
    def generate(self, batch: dict[str, Tensor], style: str | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Each class keeps the style encoded from ``batch['image']`` (``style='encode'``, the mean code) or
        gets a sampled one (``'sample'``); the default is :attr:`default_style`."""
        seg = self.label_maps(batch)
        return self.generator(self.style_codes(batch, seg, style, generator), seg)

    def unpaired_protocol(self) -> str | None:
        return "new style codes sampled for every class (SMIS reads no article): a diversity score, not a try-on"

    def generate_unpaired(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """SMIS has no article input: the unpaired analogue renders the same layout with fresh style codes."""
        return self.generate(batch, style="sample", generator=generator)

    def sample_codes(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """As the official ``vis_test``: ``randn(B, C, z_per_class, h*w).view(B, z_per_class*C, h, w)``, so
        channels [8k, 8k+8) are class k's code and one seed gives the official test's numbers."""
        h, w = self.generator.latent
        c, zc = self.config.label_nc, self.config.z_per_class
        return torch.randn(batch_size, c, zc, h * w, generator=generator).view(batch_size, zc * c, h, w).to(self.device)

    def generate_from_codes(self, labelmap: Tensor, codes: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.generator(codes, self.label_maps({"labelmap": labelmap}))

    @torch.inference_mode()
    def resample_class(self, batch: dict[str, Tensor], class_id: int, generator: torch.Generator | None = None,
                       style: str | None = None) -> Tensor:
        """Re-sample only class ``class_id``'s code; every other class keeps its code (encoded, or sampled
        first from ``generator``, then class k's is drawn again: the official ``--test_mask k``)."""
        if not 0 <= class_id < self.config.label_nc:
            raise ValueError(f"class {class_id} outside 0..{self.config.label_nc - 1}")
        seg = self.label_maps(batch)
        codes = self.style_codes(batch, seg, style, generator).clone()
        b, (h, w), zc = codes.shape[0], self.generator.latent, self.config.z_per_class
        fresh = torch.randn(b, zc, h * w, generator=generator).view(b, zc, h, w).to(codes.device)
        codes[:, class_id * zc:(class_id + 1) * zc] = fresh
        return self.generator(codes, seg)
