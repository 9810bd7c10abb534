"""The two rows every leaderboard table is read against, scored by the same runner as the zoo's models.

- ``identity``: the person unchanged. In both protocols it returns the input photo. The real set of
  FID/KID is that same test split, so its FID/KID are those of the real images against themselves
  (about 0 with the seeded extractor), and in the paired protocol its LPIPS/SSIM/PSNR are
  those of the ground truth against itself. It is the row that shows what a metric rewards when
  nothing is tried on: a model can only "beat" it on a metric that measures the try-on.
- ``paste``: the article cut out by its cloth mask, its box scaled onto the box of the person's worn
  garment (the loader's ``worn_mask``: the label groups upper + dress + outer) and pasted inside that
  mask. The unpaired protocol pastes the triplet's negative. A model that cannot beat it learned nothing
  a copy-and-paste would not do.

They are :class:`models.base.TryOnModel` subclasses that are *not* registered (``zoo`` never trains them),
with no parameters, so ``eval.runner.evaluate_model(..., generator=make_baseline(...))`` gives them the
model path unchanged: the same loader fields, the same extractor, FPS, per-image rows and record, with
``kind: "baseline"`` and no checkpoint. ``evaluate --baseline identity|paste`` is the command.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from models.base import ModelInputs, TryOnModel


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    height: int = 256
    width: int = 192


class _Baseline(TryOnModel):
    Config = BaselineConfig
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    description: ClassVar[str]

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__(config)

    def generation_parameters(self) -> int:
        return 0


class IdentityBaseline(_Baseline):
    name = "baseline-identity"
    INPUTS = ModelInputs(generate=("image",), train=("image",))
    description = "the person unchanged (no try-on)"

    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["image"]

    def unpaired_protocol(self) -> str | None:
        return "the person unchanged: no article is tried on (the do-nothing baseline)"

    def generate_unpaired(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        return batch["image"]


def _box(mask: Tensor) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), exclusive ends, of a [H,W] boolean mask; None when empty."""
    rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
    if len(rows) == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def paste_article(person: Tensor, article: Tensor, article_mask: Tensor, worn_mask: Tensor) -> Tensor:
    """[B,3,H,W] in [-1,1]: each article's masked box resized (bilinear) to the box of the worn garment
    and written inside the worn mask; a person with no worn garment, or an article with an empty mask,
    is returned unchanged (there is nowhere, or nothing, to paste)."""
    out = person.clone()
    for i in range(person.shape[0]):
        worn = worn_mask[i, 0] > 0.5
        target, source = _box(worn), _box(article_mask[i, 0] > 0.5)
        if target is None or source is None:
            continue
        t0, t1, l0, l1 = target
        s0, s1, c0, c1 = source
        crop = article[i : i + 1, :, s0:s1, c0:c1]
        placed = F.interpolate(crop, size=(t1 - t0, l1 - l0), mode="bilinear", align_corners=False)[0]
        region = out[i, :, t0:t1, l0:l1]
        inside = worn[t0:t1, l0:l1]
        region[:, inside] = placed[:, inside]
    return out


class PasteBaseline(_Baseline):
    name = "baseline-paste"
    INPUTS = ModelInputs(generate=("image", "article", "article_mask", "worn_mask"),
                         train=("image", "article", "article_mask", "worn_mask"))
    description = "the article's masked box scaled onto the box of the person's worn-garment mask and pasted inside it"

    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        return paste_article(batch["image"], batch["article"], batch["article_mask"], batch["worn_mask"])

    def unpaired_protocol(self) -> str | None:
        return "the triplet's negative article pasted onto the person's worn-garment mask"


BASELINES: dict[str, type[_Baseline]] = {"identity": IdentityBaseline, "paste": PasteBaseline}


def make_baseline(name: str, size: tuple[int, int]) -> _Baseline:
    """A baseline generating at ``size`` (H, W): pass the resolution of the models it is read against."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    return BASELINES[name](BaselineConfig(height=int(size[0]), width=int(size[1])))
