"""Recognise a source layout from its folders, and say why.

Checks run from the most specific layout to the least, and the first that matches wins:

1. fgvc6            ``train.csv`` whose header has ``EncodedPixels``
2. dresscode        an ``upper_body``/``lower_body``/``dresses`` folder holding ``images``, ``label_maps``
                    or ``keypoints``
3. viton            ``data/{train,test}/image``, or ``{train,test}/pose`` beside ``image`` (CP-VTON)
4. viton-hd         ``{train,test}/image`` or ``{train,test}/cloth``
5. deepfashion-smis ``cihp_{train,test}_mask`` folders
6. pairs-folder     ``human(s)/`` and/or ``article(s)/`` folders
7. images           any image file anywhere below the root
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from curate.imageio import is_image_name
from curate.ingest.common import LAYOUT_NAMES, IngestError, walk_files
from curate.ingest.dresscode import CATEGORY_DIRS
from curate.ingest.fgvc6 import CSV_NAME, csv_header


@dataclasses.dataclass(frozen=True)
class Detection:
    layout: str
    reason: str


def _has_dir(root: Path, *parts: str) -> bool:
    return root.joinpath(*parts).is_dir()


def _any_image(root: Path) -> str | None:
    for path in walk_files(root):
        if is_image_name(path):
            return os.path.relpath(path, root)
    return None


def detect_layout(src: Path) -> Detection:
    """The layout of ``src`` and the evidence; :class:`IngestError` listing the valid layouts otherwise."""
    src = Path(src)
    if not src.is_dir():
        raise IngestError(f"source {src} is not a folder")
    header = csv_header(src / CSV_NAME)
    if header is not None and "EncodedPixels" in header:
        return Detection("fgvc6", f"{CSV_NAME} has an EncodedPixels column")
    cats = [c for c in CATEGORY_DIRS if any(_has_dir(src, c, sub) for sub in ("images", "label_maps", "keypoints"))]
    if cats:
        return Detection("dresscode", f"category folders {', '.join(cats)} with images/label_maps/keypoints")
    for split in ("train", "test"):
        if _has_dir(src, "data", split, "image"):
            return Detection("viton", f"data/{split}/image exists (VITON / CP-VTON layout)")
        if _has_dir(src, split, "image") and _has_dir(src, split, "pose"):
            return Detection("viton", f"{split}/image beside {split}/pose (VITON / CP-VTON layout)")
    for split in ("train", "test"):
        for sub in ("image", "cloth"):
            if _has_dir(src, split, sub):
                return Detection("viton-hd", f"{split}/{sub} exists without a VITON pose/ folder")
    smis = [f"cihp_{s}_mask" for s in ("train", "test") if _has_dir(src, f"cihp_{s}_mask")]
    if smis:
        return Detection("deepfashion-smis", f"{', '.join(smis)} exists")
    roles = [d for d in ("human", "humans", "article", "articles") if _has_dir(src, d)]
    if roles:
        return Detection("pairs-folder", f"role folders {', '.join(roles)}")
    first = _any_image(src)
    if first is not None:
        return Detection("images", f"no known layout folders; image files found (e.g. {first})")
    seen = sorted(p.name for p in src.iterdir())[:12]
    raise IngestError(
        f"cannot recognise the layout of {src}: no images and none of the known folders "
        f"(found: {', '.join(seen) or 'nothing'}). Valid layouts: {', '.join(LAYOUT_NAMES)}; "
        f"pass --layout to choose one"
    )
