"""Extra garments: the person wears garments the product does not contain (coat over the top, scarf, ...).

The try-on replaces the product's garment and keeps the complementary one (an upper product keeps the
person's trousers; a lower product keeps the top). Anything beyond that is noise the generator cannot
learn from the product photo:

* two upper-body garments at once (coat/jacket over a top, a shirt over a dress) — from the parsing's
  groups ``upper``/``outer``/``dress``;
* a scarf;
* with a dress product (category asserted by metadata): trousers/shorts or a coat as well;
* one upper-garment label that is really two layers: DressCode's parsing has no coat class, so an open
  overcoat over a turtleneck is all "upper_clothes". :func:`curate.filters.body.layering_score` reads the
  colours across the torso (the garment's two edges vs its inside) to find the open outer garment;
* detector path (no parsing): the same layering test on the person mask's torso minus skin, and, for a
  paired product, the torso's colours against the product's palette.
"""

from __future__ import annotations

import numpy as np

from curate.filters import body
from curate.filters.evidence import ExtraGarments, Source, Verdict
from curate.filters.thresholds import Thresholds
from curate.labelsets import LabelSet
from curate.schema import Category

UPPER_KINDS = ("upper", "outer", "dress")


def _layering_signal(
    rgb: np.ndarray, garment: np.ndarray, kps: np.ndarray, th: Thresholds, scores: dict[str, float | int | None]
) -> bool:
    ls = body.layering_score(rgb, garment, kps, th)
    if ls is None:
        return False
    scores.update(
        layer_rows=ls.rows_checked,
        layer_row_fraction=ls.layered_row_fraction,
        layer_inner_fraction=ls.median_inner_fraction,
        layer_inner_spread=ls.inner_colour_spread,
        layer_edge_delta_e=ls.median_edge_delta_e,
    )
    return ls.layered_row_fraction >= th.layer_min_row_fraction and ls.inner_colour_spread <= th.layer_max_inner_spread


def extra_from_parsing(
    labelmap: np.ndarray,
    label_set: LabelSet,
    category: str,
    category_trusted: bool,
    th: Thresholds,
    *,
    rgb: np.ndarray | None = None,
    kps: np.ndarray | None = None,
) -> Verdict:
    """Extra garments from the label map; ``rgb``/``kps`` (same pixel frame as the map) add the layering test.

    ``category_trusted`` is True when the category came from metadata: the category-specific rule (a
    dress with trousers) is only applied then, because a shape-inferred "dress" may be a long top.
    """
    counts = body.label_counts(labelmap, label_set.num_classes)
    fr = body.garment_fractions(counts, label_set)
    scores: dict[str, float | int | None] = {f"area_{g}": v for g, v in fr.items()}
    present = {g for g in ("upper", "outer", "dress", "lower") if fr[g] >= th.garment_min_area}
    signals: list[str] = []
    upper_kinds = [g for g in UPPER_KINDS if g in present]
    if len(upper_kinds) >= 2:
        signals.append("two-upper-garments: " + "+".join(upper_kinds))
    if fr["scarf"] >= th.scarf_min_area:
        signals.append("scarf")
    if category_trusted and category == Category.DRESSES.value:
        if "dress" in present and "lower" in present:
            signals.append("lower-garment-with-dress")
    if len(upper_kinds) == 1 and rgb is not None and kps is not None:
        garment = np.isin(labelmap, list(label_set.ids(upper_kinds[0])))
        if _layering_signal(rgb, garment, kps, th, scores):
            signals.append(f"open-layer-inside-{upper_kinds[0]}-label")
    verdict = ExtraGarments.EXTRA if signals else ExtraGarments.OK
    return Verdict(verdict.value, Source.PARSING, scores=scores, signals=signals or [f"worn: {'+'.join(sorted(present)) or 'none'}"])


def product_palette(rgb: np.ndarray, mask: np.ndarray, k: int = 6, seed: int = 0) -> np.ndarray | None:
    """The product's main colours: k-means (k colours) in CIELAB over its mask's pixels, ``[k, 3]``."""
    import cv2

    px = body.rgb_to_lab(rgb)[mask]
    if px.shape[0] < 4 * k:
        return None
    rng = np.random.default_rng(seed)
    if px.shape[0] > 4000:
        px = px[rng.choice(px.shape[0], 4000, replace=False)]
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(px.astype(np.float32), k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    return centres


def extra_from_pixels(
    rgb: np.ndarray,
    person: np.ndarray,
    kps: np.ndarray,
    th: Thresholds,
    *,
    palette: np.ndarray | None = None,
    unexplained_max: float = 0.5,
    palette_max_delta_e: float = 25.0,
) -> Verdict:
    """Detector path: layering on the torso (person mask minus skin); with a paired product's ``palette``,
    the share of torso garment pixels whose colour the product does not have."""
    h, w = person.shape
    region = body.torso_polygon_mask(kps, (w, h), th.min_keypoint_conf)
    if region is None:
        return Verdict(ExtraGarments.UNKNOWN.value, Source.DETECTOR_SEGMENTATION, detail="torso not located (shoulders not seen)")
    garment = person & ~body.skin_mask(rgb)
    scores: dict[str, float | int | None] = {}
    signals: list[str] = []
    source = Source.DETECTOR_SEGMENTATION
    if _layering_signal(rgb, garment, kps, th, scores):
        signals.append("open-layer-on-torso")
    torso_garment = garment & region
    if palette is not None and int(torso_garment.sum()) >= 50:
        lab = body.rgb_to_lab(rgb)[torso_garment]
        nearest = np.min(np.linalg.norm(lab[:, None, :] - palette[None, :, :], axis=-1), axis=1)
        unexplained = float((nearest > palette_max_delta_e).mean())
        scores["torso_unexplained_by_product"] = unexplained
        if unexplained > unexplained_max:
            signals.append("torso-colours-not-in-product")
            source = Source.PRODUCT_COLOURS
    verdict = ExtraGarments.EXTRA if signals else ExtraGarments.OK
    return Verdict(verdict.value, source, scores=scores, signals=signals)
