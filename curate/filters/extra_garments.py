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
* for a paired product (the person wears it), the garment's colours against the product's palette: a
  coat closed over the top leaves one label but not the product's colours;
* detector path (no parsing): the same layering test on the person mask's torso minus skin, and the same
  colour test on the torso.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from curate.filters import body
from curate.filters.evidence import ExtraGarments, Source, Verdict
from curate.filters.thresholds import Thresholds
from curate.labelsets import LabelSet
from curate.schema import Category

UPPER_KINDS = ("upper", "outer", "dress")


@dataclasses.dataclass
class PersonGarments:
    """What one person wears, independent of any product: computed once per person, read by every pair.

    ``signals`` are the person-level findings in the order the pair verdict lists them (two upper
    garments, scarf; then, from the layering test, ``open_layer_signal``); ``layer`` keeps the layering
    test's numbers so that a pair can check the inner colour against *its* product's palette.
    """

    source: Source
    scores: dict[str, float | int | None]
    signals: list[str]
    present: frozenset[str] = frozenset()  # parsing groups worn (upper, outer, dress, lower)
    scarf: bool | None = None
    layer: body.LayeringScore | None = None
    open_layer_signal: str | None = None  # the signal name when the layering test fired (palette-free)
    detector: Verdict | None = None  # the parsing-free layering detector (curate.filters.layers), if run

    @property
    def layered(self) -> bool:
        """Two upper garments at once, or an open outer layer over the top (before any product check)."""
        two = any(s.startswith("two-upper-garments") for s in self.signals)
        det = self.detector is not None and self.detector.verdict == "layered"
        return two or self.open_layer_signal is not None or det

    @property
    def upper_garments(self) -> str:
        """The upper-body garments worn, ``+``-joined (parsing groups; ``open-layer`` from the pixel tests)."""
        kinds = [g for g in UPPER_KINDS if g in self.present]
        if self.open_layer_signal is not None or (self.detector is not None and self.detector.verdict == "layered"):
            kinds.append("open-layer")
        return "+".join(kinds)


def _layering(rgb: np.ndarray, garment: np.ndarray, kps: np.ndarray, th: Thresholds,
              scores: dict[str, float | int | None]) -> tuple[bool, body.LayeringScore | None]:
    """The layering test's decision before any product check: an open outer layer over a coherent inner colour."""
    ls = body.layering_score(rgb, garment, kps, th)
    if ls is None:
        return False, None
    scores.update(
        layer_rows=ls.rows_checked,
        layer_row_fraction=ls.layered_row_fraction,
        layer_inner_fraction=ls.median_inner_fraction,
        layer_inner_spread=ls.inner_colour_spread,
        layer_edge_delta_e=ls.median_edge_delta_e,
    )
    return ls.layered_row_fraction >= th.layer_min_row_fraction and ls.inner_colour_spread <= th.layer_max_inner_spread, ls


def _inner_colour_is_the_products(ls: body.LayeringScore | None, palette: np.ndarray | None, th: Thresholds,
                                  scores: dict[str, float | int | None]) -> bool:
    """With the paired product's ``palette``, an inner colour the product itself has is the product's own
    print or panel (a motif down the front of the tee), not a second garment."""
    if palette is None or ls is None or ls.inner_colour is None:
        return False
    de = float(np.min(np.linalg.norm(palette - np.asarray(ls.inner_colour, np.float32), axis=1)))
    scores["layer_inner_to_product_delta_e"] = de
    return de <= th.product_max_delta_e


def _layering_signal(
    rgb: np.ndarray,
    garment: np.ndarray,
    kps: np.ndarray,
    th: Thresholds,
    scores: dict[str, float | int | None],
    palette: np.ndarray | None = None,
) -> bool:
    """True when the torso shows an open outer layer over a coherent inner colour the product lacks."""
    layered, ls = _layering(rgb, garment, kps, th, scores)
    return layered and not _inner_colour_is_the_products(ls, palette, th, scores)


def person_garments_from_parsing(
    labelmap: np.ndarray,
    label_set: LabelSet,
    th: Thresholds,
    *,
    rgb: np.ndarray | None = None,
    kps: np.ndarray | None = None,
    counts: np.ndarray | None = None,
) -> PersonGarments:
    """The person's garments from the label map: groups worn, scarf, two upper garments, and (``rgb``/``kps``
    in the map's pixel frame) the layering test inside a single upper-garment label."""
    counts = body.label_counts(labelmap, label_set.num_classes) if counts is None else counts
    fr = body.garment_fractions(counts, label_set)
    scores: dict[str, float | int | None] = {f"area_{g}": v for g, v in fr.items()}
    present = frozenset(g for g in ("upper", "outer", "dress", "lower") if fr[g] >= th.garment_min_area)
    signals: list[str] = []
    upper_kinds = [g for g in UPPER_KINDS if g in present]
    if len(upper_kinds) >= 2:
        signals.append("two-upper-garments: " + "+".join(upper_kinds))
    scarf = fr["scarf"] >= th.scarf_min_area
    if scarf:
        signals.append("scarf")
    layer, open_signal = None, None
    if len(upper_kinds) == 1 and rgb is not None and kps is not None:
        garment = body.label_mask(labelmap, label_set.ids(upper_kinds[0]))
        layered, layer = _layering(rgb, garment, kps, th, scores)
        if layered:
            open_signal = f"open-layer-inside-{upper_kinds[0]}-label"
    return PersonGarments(Source.PARSING, scores, signals, present=present, scarf=scarf, layer=layer,
                          open_layer_signal=open_signal)


def extra_for_product_from_parsing(
    pg: PersonGarments,
    category: str,
    category_trusted: bool,
    th: Thresholds,
    *,
    palette: np.ndarray | None = None,
    unexplained: float | None = None,
) -> Verdict:
    """The pair's extra-garments verdict from the person's garments and this product: the dress rule (a
    trusted dress category with trousers), the open layer unless the product has its inner colour, and
    ``unexplained`` (the share of the person's garment pixels no colour of the paired product explains)."""
    scores = dict(pg.scores)
    signals = list(pg.signals)
    if category_trusted and category == Category.DRESSES.value:
        if "dress" in pg.present and "lower" in pg.present:
            signals.append("lower-garment-with-dress")
    if pg.open_layer_signal is not None and not _inner_colour_is_the_products(pg.layer, palette, th, scores):
        signals.append(pg.open_layer_signal)
    source = Source.PARSING
    if unexplained is not None:
        scores["garment_unexplained_by_product"] = unexplained
        if unexplained > th.product_max_unexplained:
            signals.append("garment-colours-not-in-product")
            source = Source.PRODUCT_COLOURS if len(signals) == 1 else Source.PARSING
    verdict = ExtraGarments.EXTRA if signals else ExtraGarments.OK
    return Verdict(verdict.value, source, scores=scores, signals=signals or [f"worn: {'+'.join(sorted(pg.present)) or 'none'}"])


def product_region(labelmap: np.ndarray, label_set: LabelSet, category: str) -> np.ndarray:
    """The person's pixels the product's garment should explain, by product category (PRODUCT_REGION)."""
    groups = PRODUCT_REGION.get(category, PRODUCT_REGION[Category.UNKNOWN.value])
    return body.label_mask(labelmap, label_set.ids(*[g for g in groups if g in label_set.groups]))


def extra_from_parsing(
    labelmap: np.ndarray,
    label_set: LabelSet,
    category: str,
    category_trusted: bool,
    th: Thresholds,
    *,
    rgb: np.ndarray | None = None,
    kps: np.ndarray | None = None,
    palette: np.ndarray | None = None,
    counts: np.ndarray | None = None,
) -> Verdict:
    """Extra garments from the label map for one product: :func:`person_garments_from_parsing` then
    :func:`extra_for_product_from_parsing` (``counts``: the map's :func:`body.label_counts`, when known).

    ``category_trusted`` is True when the category came from metadata: the category-specific rule (a
    dress with trousers) is only applied then, because a shape-inferred "dress" may be a long top. With the
    paired product's ``palette`` and ``rgb``, a coat closed over the top (one garment label, but not the
    product's colours) is caught by the colours.
    """
    pg = person_garments_from_parsing(labelmap, label_set, th, rgb=rgb, kps=kps, counts=counts)
    unexplained = None
    if palette is not None and rgb is not None:
        region = product_region(labelmap, label_set, category)
        unexplained = unexplained_by_palette(rgb, region, palette, th.product_max_delta_e)
    return extra_for_product_from_parsing(pg, category, category_trusted, th, palette=palette, unexplained=unexplained)


def product_palette(rgb: np.ndarray, mask: np.ndarray, cell: float = 8.0, min_share: float = 0.005,
                    max_colours: int = 64) -> np.ndarray | None:
    """The product's colours, ``[k, 3]`` CIELAB: the centres of the occupied cells of a ``cell``-unit Lab
    grid holding at least ``min_share`` of the product's pixels (at most ``max_colours``, most frequent first).

    A histogram rather than k-means: deterministic, ~20x faster (k-means took 17 ms a product), and a
    multicolour print keeps all its colours instead of being averaged into k of them.
    """
    px = body.strided_pixels(rgb, mask, 2000)
    if px is None:
        return None
    # Lab cells as small non-negative ints (L 0..100, a/b -128..127), packed into one key per pixel
    q = np.floor((body.rgb_to_lab(px) + np.array([0.0, 128.0, 128.0])) / cell).astype(np.int64)
    keys, counts = np.unique(q[:, 0] * 1_000_000 + q[:, 1] * 1_000 + q[:, 2], return_counts=True)
    keep = np.argsort(-counts)[:max_colours]
    keep = keep[counts[keep] >= min_share * px.shape[0]]
    if keep.size == 0:
        return None
    k = keys[keep]
    cells = np.stack([k // 1_000_000, (k // 1_000) % 1_000, k % 1_000], axis=1)
    return ((cells + 0.5) * cell - np.array([0.0, 128.0, 128.0])).astype(np.float32)


def unexplained_by_palette(rgb: np.ndarray, region: np.ndarray, palette: np.ndarray, max_delta_e: float,
                           max_px: int = 1000) -> float | None:
    """Share of ``region``'s pixels further than ``max_delta_e`` (CIELAB) from every product colour.

    None when the region is too small to say anything (< 50 px). At most ``max_px`` pixels (an evenly
    strided subset) are compared: the share is a proportion, which the subset estimates to about 2 %.
    """
    px = body.strided_pixels(rgb, region, max_px)
    if px is None:
        return None
    lab = body.rgb_to_lab(px)
    # the distance to the nearest product colour, one channel at a time: [n, k] arrays instead of
    # np.linalg.norm over a [n, k, 3] array's short last axis (10x faster, the same sums in the same order)
    d2 = np.zeros((lab.shape[0], palette.shape[0]), np.float32)
    for c in range(3):
        diff = lab[:, c, None] - palette[None, :, c]
        d2 += diff * diff
    nearest = np.sqrt(d2).min(axis=1)
    return float((nearest > max_delta_e).mean())


# Which garment groups on the person the product's garment should explain, by product category.
PRODUCT_REGION: dict[str, tuple[str, ...]] = {
    Category.UPPER.value: ("upper", "outer"),
    Category.LOWER.value: ("lower",),
    Category.DRESSES.value: ("dress", "upper", "lower"),  # parsers often split a dress into top + skirt
    Category.UNKNOWN.value: ("upper", "outer", "dress"),
}


def person_garments_from_pixels(rgb: np.ndarray, person: np.ndarray, kps: np.ndarray, th: Thresholds) -> PersonGarments | None:
    """Detector path, person level: the layering test on the torso (person mask minus skin) and the
    parsing-free layering detector (:mod:`curate.filters.layers`). None when the torso is not located."""
    from curate.filters import layers

    h, w = person.shape
    if body.torso_polygon_mask(kps, (w, h), th.min_keypoint_conf) is None:
        return None
    garment = person & ~body.skin_mask(rgb)
    scores: dict[str, float | int | None] = {}
    layered, ls = _layering(rgb, garment, kps, th, scores)
    det = layers.open_layer_from_pixels(rgb, person, kps, th)
    scores.update({f"detector.{k}": v for k, v in det.scores.items()})
    # The detector's "layered" is always the person's finding (filter_layered, the evidence); it rejects the
    # person's pairs only with det_layering_rejects, because on the labelled real pairs it still wrongly flags
    # a printed top (docs/benchmarks/filters.md) and a false rejection costs a good training pair.
    signals = [f"detector:{s}" for s in det.signals] if det.verdict == "layered" and th.det_layering_rejects else []
    return PersonGarments(Source.DETECTOR_SEGMENTATION, scores, signals, layer=ls,
                          open_layer_signal="open-layer-on-torso" if layered else None, detector=det)


def extra_for_product_from_pixels(
    pg: PersonGarments, th: Thresholds, *, palette: np.ndarray | None = None, unexplained: float | None = None
) -> Verdict:
    """Detector path, one product: the person's layering findings (the open layer unless the product has its
    inner colour), and the share of torso garment pixels the paired product's colours do not explain."""
    scores = dict(pg.scores)
    signals = list(pg.signals)
    source = Source.DETECTOR_SEGMENTATION
    if pg.open_layer_signal is not None and not _inner_colour_is_the_products(pg.layer, palette, th, scores):
        signals.append(pg.open_layer_signal)
    if unexplained is not None:
        scores["torso_unexplained_by_product"] = unexplained
        if unexplained > th.product_max_unexplained:
            signals.append("torso-colours-not-in-product")
            source = Source.PRODUCT_COLOURS
    verdict = ExtraGarments.EXTRA if signals else ExtraGarments.OK
    return Verdict(verdict.value, source, scores=scores, signals=signals)


def torso_garment(rgb: np.ndarray, person: np.ndarray, kps: np.ndarray, th: Thresholds) -> np.ndarray | None:
    """The torso quadrilateral's garment pixels (person mask minus skin): what a paired product should explain."""
    h, w = person.shape
    region = body.torso_polygon_mask(kps, (w, h), th.min_keypoint_conf)
    return None if region is None else person & ~body.skin_mask(rgb) & region


def extra_from_pixels(
    rgb: np.ndarray,
    person: np.ndarray,
    kps: np.ndarray,
    th: Thresholds,
    *,
    palette: np.ndarray | None = None,
) -> Verdict:
    """Detector path for one product: :func:`person_garments_from_pixels` then :func:`extra_for_product_from_pixels`."""
    pg = person_garments_from_pixels(rgb, person, kps, th)
    if pg is None:
        return Verdict(ExtraGarments.UNKNOWN.value, Source.DETECTOR_SEGMENTATION, detail="torso not located (shoulders not seen)")
    region = torso_garment(rgb, person, kps, th)
    unexplained = unexplained_by_palette(rgb, region, palette, th.product_max_delta_e) if palette is not None and region is not None else None
    return extra_for_product_from_pixels(pg, th, palette=palette, unexplained=unexplained)
