"""Lower-body-only products: the article is trousers/shorts/a skirt while the person also wears a top.

A generator trained on such a pair must invent the top from a photo of trousers. Two questions:

1. **Is the product lower-body?** From the category metadata when the layout asserts one (DressCode's
   folders, ``--category``), otherwise from the *shape* of the product's mask (the cloth mask file, or
   the product photo segmented from its plain background):
   - trousers and shorts split into two legs: the lower rows of the mask are two runs with a gap near
     the middle (a top with its sleeves hanging down gives three runs, not two);
   - a skirt has a straight, full waistband at the top, no shoulders/straps (the top rows are one run)
     and widens downwards;
   - a tall single piece is a dress, anything else a top.
2. **Does the person wear an upper garment?** From the parsing (upper/coat/dress labels), or in the
   detector path from the torso quadrilateral (pose) inside the person mask that is not skin-coloured.
"""

from __future__ import annotations

import numpy as np

from curate.filters import body
from curate.filters.evidence import LowerOnly, Source, Verdict
from curate.filters.thresholds import Thresholds
from curate.labelsets import LabelSet
from curate.schema import Category


def _row_runs(rows: np.ndarray, min_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of a boolean ``[R, W]`` array: the number of runs of True at least ``min_len`` long, the end
    of the first such run and the start of the second (-1 / W when absent). Vectorised over rows."""
    r_count, w = rows.shape
    padded = np.zeros((r_count, w + 2), np.int8)
    padded[:, 1:-1] = rows
    d = np.diff(padded, axis=1)
    sr, sc = np.nonzero(d == 1)  # run starts, row-major order
    _, ec = np.nonzero(d == -1)  # matching ends (same order: runs alternate start/end within a row)
    long = (ec - sc) >= min_len
    sr, sc, ec = sr[long], sc[long], ec[long]
    n = np.bincount(sr, minlength=r_count)
    first = np.full(r_count, -1)
    second = np.full(r_count, w)
    offsets = np.concatenate(([0], np.cumsum(n)[:-1]))  # index of each row's first long run
    has1, has2 = n >= 1, n >= 2
    first[has1] = ec[offsets[has1]]
    second[has2] = sc[offsets[has2] + 1]
    return n, first, second


def mask_shape_features(mask: np.ndarray) -> dict[str, float] | None:
    """Shape numbers of a product mask (bool ``[H, W]``); None when the mask is (nearly) empty."""
    if np.count_nonzero(mask) < 50:
        return None
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))  # the bounding box
    crop = mask[ys[0]: ys[-1] + 1, xs[0]: xs[-1] + 1]
    h, w = crop.shape
    min_run = max(1, int(0.04 * w))
    centre = w / 2

    def rows(a: float, b: float) -> np.ndarray:
        return crop[int(a * h): max(int(b * h), int(a * h) + 1)]

    # two legs: exactly two runs and the gap between them straddles the middle of the width
    leg_rows = rows(0.6, 0.97)
    n_runs, first_end, second_start = _row_runs(leg_rows, min_run)
    two_legs = int(((n_runs == 2) & (first_end < centre + 0.2 * w) & (second_start > centre - 0.2 * w)).sum())
    top_rows = rows(0.0, 0.08)
    top_split = float((_row_runs(top_rows, min_run)[0] >= 2).mean())
    top_extent_fill = []
    for r in top_rows:
        idx = np.flatnonzero(r)
        if idx.size:
            top_extent_fill.append(idx.size / (idx[-1] - idx[0] + 1))

    def width(a: float, b: float) -> float:
        return float(rows(a, b).sum(axis=1).mean()) / w

    return {
        "aspect": h / w,
        "leg_rows": two_legs / max(len(leg_rows), 1),
        "top_split": top_split,
        "top_fill": float(np.mean(top_extent_fill)) if top_extent_fill else 0.0,
        "width_top": width(0.02, 0.12),
        "width_shoulder": width(0.12, 0.3),
        "width_mid": width(0.45, 0.55),
        "width_bottom": width(0.85, 0.97),
    }


def category_from_mask(mask: np.ndarray, th: Thresholds) -> Verdict:
    """Product category from the mask's shape (``Verdict.verdict`` is a ``Category`` value)."""
    f = mask_shape_features(mask)
    if f is None:
        return Verdict(Category.UNKNOWN.value, Source.MASK_SHAPE, detail="empty product mask")
    scores: dict[str, float | int | None] = dict(f)
    if f["leg_rows"] >= th.legs_min_row_fraction and f["top_split"] < 0.6:  # a split top = straps
        return Verdict(Category.LOWER.value, Source.MASK_SHAPE, scores=scores, signals=["two-legs"])
    # A skirt: its top edge is a full straight waistband (one run, filled), there are no shoulders or
    # sleeves sticking out below it, and it flares (or at least does not narrow) towards the hem.
    waistband = f["top_split"] < 0.2 and f["top_fill"] > 0.9 and f["width_top"] > 0.5
    no_sleeves = f["width_shoulder"] <= f["width_mid"] * 1.08 and f["width_top"] <= f["width_mid"] * 1.05
    flares = f["width_bottom"] >= f["width_top"] * 1.05
    if waistband and no_sleeves and flares and f["aspect"] < th.dress_min_aspect * 1.2:
        return Verdict(Category.LOWER.value, Source.MASK_SHAPE, scores=scores, signals=["waistband", "no-sleeves", "flares"])
    if f["aspect"] >= th.dress_min_aspect:
        return Verdict(Category.DRESSES.value, Source.MASK_SHAPE, scores=scores, signals=["tall-single-piece"])
    return Verdict(Category.UPPER.value, Source.MASK_SHAPE, scores=scores)


def product_mask_from_photo(rgb: np.ndarray, min_delta_e: float = 10.0) -> np.ndarray:
    """Segment a product photographed on a plain background (in-shop images): bool ``[H, W]``.

    The background colour is the median of the image border; pixels further than ``min_delta_e`` (CIELAB)
    from it are the product. Holes (white prints on a white background) are filled and only the largest
    connected piece is kept, so a detached tag or shadow speck does not change the shape.

    Both steps use OpenCV with 4-connectivity, the same result as ``scipy.ndimage.binary_fill_holes`` and
    ``ndimage.label`` with their default cross structure (components numbered in raster order, so a tie for
    the largest goes to the same piece), at a third of the time and without importing scipy (0.3 s CPU in
    every fresh worker, measured).
    """
    import cv2

    lab = body.rgb_to_lab(rgb)
    border = np.concatenate([lab[:2].reshape(-1, 3), lab[-2:].reshape(-1, 3), lab[:, :2].reshape(-1, 3), lab[:, -2:].reshape(-1, 3)])
    bg = np.median(border, axis=0)
    fg = np.linalg.norm(lab - bg, axis=-1) > min_delta_e
    # A white garment on a white background differs from it only along its outline (a faint shadow):
    # the outline's edges, closed and hole-filled, recover the garment where the colour test cannot.
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (3, 3), 0), 20, 60) > 0
    fg |= edges
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
    fg = fill_holes(fg)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=4)
    if n <= 1:
        return fg
    sizes = stats[:, cv2.CC_STAT_AREA].copy()
    sizes[0] = 0  # the background
    return labels == int(sizes.argmax())


def fill_holes(fg: np.ndarray) -> np.ndarray:
    """``fg`` plus every background pixel not 4-connected to the image border (``binary_fill_holes``)."""
    import cv2

    h, w = fg.shape
    pad = np.zeros((h + 2, w + 2), np.uint8)  # a background frame joins every border pixel to the seed
    pad[1:-1, 1:-1] = fg
    cv2.floodFill(pad, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 2, flags=4)
    return pad[1:-1, 1:-1] != 2


def upper_worn_from_parsing(
    labelmap: np.ndarray, label_set: LabelSet, th: Thresholds, counts: np.ndarray | None = None
) -> Verdict:
    """Does the person wear something on the upper body (top, coat or dress) per the label map?
    ``counts``: :func:`body.label_counts` of ``labelmap`` when the caller already has them."""
    counts = body.label_counts(labelmap, label_set.num_classes) if counts is None else counts
    fr = body.garment_fractions(counts, label_set)
    covered = fr["upper"] + fr["outer"] + fr["dress"]
    worn = covered >= th.garment_min_area
    scores = {f"area_{g}": fr[g] for g in ("upper", "outer", "dress")}
    return Verdict("worn" if worn else "not-worn", Source.PARSING, scores=scores)


def upper_worn_from_pixels(
    rgb: np.ndarray, person: np.ndarray, kps: np.ndarray, th: Thresholds, source: Source
) -> Verdict:
    """Detector path: the torso (shoulder-hip quadrilateral) inside the person mask that is not skin."""
    h, w = person.shape
    region = body.torso_polygon_mask(kps, (w, h), th.min_keypoint_conf)
    if region is None:
        return Verdict("unknown", source, detail="torso not located (shoulders not seen)")
    region &= person
    n = int(region.sum())
    if n < 20:
        return Verdict("unknown", source, detail="torso outside the person mask")
    clothed = 1.0 - float(body.skin_mask(rgb)[region].mean())
    worn = clothed >= th.upper_clothed_min_fraction
    return Verdict("worn" if worn else "not-worn", source, scores={"torso_not_skin": clothed, "torso_px": n})


def lower_only_verdict(category: Verdict, upper: Verdict) -> Verdict:
    """Combine the product category and the person's upper garment into the filter's verdict."""
    scores = {**{f"product.{k}": v for k, v in category.scores.items()}, **{f"person.{k}": v for k, v in upper.scores.items()}}
    signals = [f"product={category.verdict} ({category.source.value})", f"upper-garment={upper.verdict} ({upper.source.value})"]
    signals += [f"product:{s}" for s in category.signals]
    if category.verdict == Category.UNKNOWN.value:
        return Verdict(LowerOnly.UNKNOWN.value, category.source, scores, signals, detail=category.detail or "product category unknown")
    if category.verdict != Category.LOWER.value:
        return Verdict(LowerOnly.OK.value, category.source, scores, signals)
    # the product is lower-body: the person's upper garment decides
    if upper.verdict == "worn":
        return Verdict(LowerOnly.LOWER_ONLY.value, category.source, scores, signals)
    if upper.verdict == "not-worn":
        return Verdict(LowerOnly.OK.value, category.source, scores, signals)
    return Verdict(LowerOnly.UNKNOWN.value, category.source, scores, signals, detail=upper.detail)
