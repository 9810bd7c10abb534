"""Verdicts and the evidence behind them: what each filter decided, from which source, on which numbers.

Every filter returns a :class:`Verdict`. Its ``source`` names the evidence that decided, most trusted
first (see :class:`Source`); ``scores`` holds the numbers compared with thresholds and ``signals`` the
named observations ("shoulders-mirrored", "face-absent", "labels: coat+upper") so that a reader can
check a verdict without re-running anything. The pair's evidence is stored as one JSON object in the
manifest column ``filter_evidence``: ``{"back_view": {...}, "lower_only": {...}, "extra_garments": {...}}``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from typing import Any, Final


class Source(str, enum.Enum):
    """Where a verdict's evidence came from, most trusted first."""

    PARSING = "annotations/parsing"  # the dataset's own label map
    PARSER = "parser"  # a label map predicted by a pretrained clothes parser (curate filter --parser)
    POSE = "annotations/pose"  # the dataset's own pose file (COCO-18 in the manifest)
    METADATA = "metadata"  # a category asserted by the layout (DressCode folder, --category)
    MASK_SHAPE = "article-mask-shape"  # the article's cloth mask (or its segmented photo) read as a shape
    DETECTOR_POSE = "detector/mediapipe-pose"  # pose landmarks found by the offline detector
    DETECTOR_SEGMENTATION = "detector/person-segmentation"  # person mask + pose-derived body regions
    PRODUCT_COLOURS = "product-colours"  # person's garment pixels compared with the paired product's palette
    NONE = "none"  # nothing usable: the verdict is "unknown"


class View(str, enum.Enum):
    FRONT = "front"
    SIDE = "side"
    BACK = "back"
    UNKNOWN = "unknown"


class LowerOnly(str, enum.Enum):
    OK = "ok"
    LOWER_ONLY = "lower-only-product"
    UNKNOWN = "unknown"


class ExtraGarments(str, enum.Enum):
    OK = "ok"
    EXTRA = "extra-garments"
    UNKNOWN = "unknown"


class FilterReason(str, enum.Enum):
    """Values of ``pairs.filter_reason`` (null = kept). One reason per pair, in this priority order."""

    BACK_VIEW = "back-view"
    SIDE_VIEW = "side-view"
    LOWER_ONLY = "lower-only-product"
    EXTRA_GARMENTS = "extra-garments"


FILTER_NAMES: Final[tuple[str, ...]] = ("back_view", "lower_only", "extra_garments")


@dataclasses.dataclass
class Verdict:
    """One filter's decision with the evidence that made it."""

    verdict: str
    source: Source
    scores: dict[str, float | int | None] = dataclasses.field(default_factory=dict)
    signals: list[str] = dataclasses.field(default_factory=list)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "source": self.source.value,
            "scores": {k: _json_number(v) for k, v in self.scores.items()},
            "signals": list(self.signals),
            "detail": self.detail,
        }


def _json_number(v: float | int | None) -> float | int | None:
    """Round floats for a readable JSON; NaN/inf (not valid JSON) become null."""
    if v is None or isinstance(v, (bool, int)):
        return v
    f = float(v)
    return round(f, 4) if math.isfinite(f) else None


def evidence_json(verdicts: dict[str, Verdict], **extra: Any) -> str:
    """The ``filter_evidence`` column value for one pair (``extra``: notes, the chosen reason)."""
    return json.dumps({**{name: v.to_dict() for name, v in verdicts.items()}, **extra}, sort_keys=True)


def unknown(reason: str) -> Verdict:
    """A verdict for which no evidence was usable; ``reason`` says what was missing."""
    return Verdict(View.UNKNOWN.value, Source.NONE, detail=reason)
