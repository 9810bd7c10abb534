"""One pair in, three verdicts out: load what the manifest points at, pick the best evidence, decide.

Evidence order (most trusted first): the dataset's parsing and pose, the category metadata, the
article's mask shape, then the detectors (MediaPipe pose + person segmentation) — which run only when
the annotations cannot decide, and at most once per pair. Every failure to read an input becomes a line
in the evidence and a weaker source (or ``unknown``), never an exception: one bad file must not stop a
15,000-pair run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from curate.filters import back_view, body, extra_garments, lower_only
from curate.filters.detectors import DEFAULT_MAX_SIDE, Detection, PoseDetector
from curate.filters.evidence import (
    ExtraGarments,
    FilterReason,
    LowerOnly,
    Source,
    Verdict,
    View,
    evidence_json,
)
from curate.filters.thresholds import Thresholds
from curate.imageio import decode_scaled, jpeg_orientation, upright_rgb
from curate.labelsets import LabelSet, get_label_set
from curate.schema import Category

# Label maps (and the person image beside them) are analysed at most this large (longer side): the areas,
# centroids and torso colours the filters compare are fractions or averages, which a subsample preserves.
# 256 (was 512 until 2026-11-24): a 1024x768 map is read every 4th pixel (nearest, so ids stay exact) and
# its JPEG decoded at 1/4 scale, the size synth data and the resized real benchmark already run at. On the
# 67 annotated real pairs every verdict is unchanged: area fractions move by <= 0.0014 (thresholds 0.008 /
# 0.02, nearest value 0.02 away), the face fraction by <= 0.008 (threshold 0.05, nearest 0.25), the open
# overcoat's layered rows 0.720 -> 0.726 (threshold 0.5; every other pair <= 0.17 at either size). Pixel
# counts in the evidence (face_px, hair_px, arm_order) are at the analysed size, so 4x / 2x smaller.
ANALYSIS_MAX_SIDE = 256
# Product masks are read as shapes at this size (at 160 px the gap between flared trouser legs closes).
PRODUCT_MAX_SIDE = 256
# Category verdicts per article file, per process: unpaired pair lists reuse each article many times.
_CATEGORY_CACHE: dict[tuple[str | None, str | None, Thresholds], Verdict] = {}
_CATEGORY_CACHE_MAX = 100_000


@dataclasses.dataclass(frozen=True)
class FilterOptions:
    back_views: bool = True
    lower_only_products: bool = True
    extra_garments: bool = True
    reject_side_views: bool = False
    detectors: bool = True  # fall back to MediaPipe when the annotations cannot decide
    detector_max_side: int = DEFAULT_MAX_SIDE
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)


@dataclasses.dataclass(frozen=True)
class PairTask:
    """Everything one pair needs, as plain picklable values (absolute paths)."""

    pair_id: str
    human_path: str | None
    human_size: tuple[int, int] | None  # (W, H) as ingested; the keypoints are in this frame
    labelmap_path: str | None
    label_set: str | None
    keypoints: tuple[float, ...] | None
    article_path: str | None
    cloth_mask_path: str | None
    article_category: str
    pair_category: str
    paired: bool


@dataclasses.dataclass
class PairResult:
    pair_id: str
    back_view: Verdict | None
    lower_only: Verdict | None
    extra_garments: Verdict | None
    reason: str | None
    notes: list[str]

    def verdicts(self) -> dict[str, Verdict]:
        named = (("back_view", self.back_view), ("lower_only", self.lower_only), ("extra_garments", self.extra_garments))
        return {k: v for k, v in named if v is not None}

    def evidence(self) -> str:
        """The ``filter_evidence`` JSON: each enabled filter's verdict, plus the input notes and the reason."""
        return evidence_json(self.verdicts(), notes=self.notes, reason=self.reason)


class _Inputs:
    """Lazily loaded inputs of one pair; each loader runs once and records why it failed."""

    def __init__(self, task: PairTask, opts: FilterOptions, detector: PoseDetector | None) -> None:
        self.task, self.opts, self.detector = task, opts, detector
        self.notes: list[str] = []
        self._ls: Any = ...
        self._lm: Any = ...
        self._counts: Any = ...
        self._rgb_for_lm: Any = ...
        self._det: Any = ...
        self._article: Any = ...

    # ---- annotations ------------------------------------------------------------------------------
    @property
    def label_set(self) -> LabelSet | None:
        if self._ls is ...:
            self._ls = None
            if self.task.label_set is not None:
                try:
                    self._ls = get_label_set(self.task.label_set)
                except KeyError as exc:
                    self.notes.append(f"label set: {exc.args[0]}")
        return self._ls

    def labelmap(self) -> np.ndarray | None:
        """The label map's ids, subsampled to at most ANALYSIS_MAX_SIDE; None when absent or unusable."""
        if self._lm is ...:
            self._lm = None
            path, ls = self.task.labelmap_path, self.label_set
            if path is not None and ls is not None:
                self._lm = self._read_labelmap(Path(path), ls)
        return self._lm

    def label_counts(self) -> np.ndarray | None:
        """Pixels per class id of the analysed label map, counted once and shared by the three filters."""
        if self._counts is ...:
            lm, ls = self.labelmap(), self.label_set
            self._counts = body.label_counts(lm, ls.num_classes) if lm is not None and ls is not None else None
        return self._counts

    def _read_labelmap(self, path: Path, ls: LabelSet) -> np.ndarray | None:
        from PIL import Image

        from curate.imageio import labelmap_ids

        try:
            with Image.open(path) as img:
                ids, why = labelmap_ids(img)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL raises these for missing/corrupt files
            self.notes.append(f"label map {path.name} unreadable: {exc}")
            return None
        if ids is None:
            self.notes.append(f"label map {path.name}: {why}")
            return None
        if ids.size and int(ids.max()) >= ls.num_classes:
            self.notes.append(f"label map {path.name} has id {int(ids.max())} outside {ls.name}")
            return None
        step = int(np.ceil(max(ids.shape) / ANALYSIS_MAX_SIDE))
        return np.ascontiguousarray(ids[::step, ::step]) if step > 1 else ids

    def keypoints(self) -> np.ndarray | None:
        """Dataset keypoints in the original image's pixels (None when absent or malformed)."""
        return body.keypoints_array(self.task.keypoints)

    def keypoints_in(self, shape: tuple[int, int]) -> np.ndarray | None:
        """Dataset keypoints rescaled to an array of ``shape`` (H, W)."""
        kps = self.keypoints()
        if kps is None or self.task.human_size is None:
            return None
        w0, h0 = self.task.human_size
        out = kps.copy()
        out[:, 0] *= shape[1] / w0
        out[:, 1] *= shape[0] / h0
        return out

    def rgb_like_labelmap(self) -> np.ndarray | None:
        """The person image resized to the analysed label map's shape (for colour tests on the parsing)."""
        if self._rgb_for_lm is ...:
            self._rgb_for_lm = None
            lm = self.labelmap()
            if lm is not None and self.task.human_path is not None:
                self._rgb_for_lm = _read_rgb(Path(self.task.human_path), (lm.shape[1], lm.shape[0]), self.notes)
        return self._rgb_for_lm

    # ---- detectors ----------------------------------------------------------------------------------
    def detection(self) -> Detection | None:
        if self._det is ...:
            self._det = None
            if self.detector is None or self.task.human_path is None:
                return None
            rgb = _read_rgb(Path(self.task.human_path), None, self.notes)
            if rgb is None:
                return None
            self._det = self.detector.detect(rgb)
            if self._det is None:
                self.notes.append("detector found no person")
        return self._det

    # ---- article ------------------------------------------------------------------------------------
    def article(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(product RGB or None, product mask or None): the cloth mask file when present, else segmented."""
        if self._article is ...:
            rgb = mask = None
            t = self.task
            if t.article_path is not None:
                rgb = _read_rgb(Path(t.article_path), None, self.notes, max_side=PRODUCT_MAX_SIDE)
            if t.cloth_mask_path is not None:
                mask = _read_mask(Path(t.cloth_mask_path), self.notes, max_side=PRODUCT_MAX_SIDE)
                if mask is not None:
                    if rgb is not None and rgb.shape[:2] != mask.shape:
                        rgb = None  # mismatched sizes: keep the mask (the shape) and drop the colours
            if mask is None and rgb is not None:
                mask = lower_only.product_mask_from_photo(rgb)
            self._article = (rgb, mask)
        return self._article


def _decode(path: Path, size: tuple[int, int] | None, notes: list[str], max_side: int | None, keep_grey: bool) -> np.ndarray | None:
    """Decode an image as uint8 RGB (or, with ``keep_grey``, as ``[H, W]`` when the file is greyscale),
    resized to ``size`` (W, H) or down to ``max_side``; None + a note on failure.

    JPEGs are decoded at a reduced scale directly (``Image.draft``), which is several times faster than
    decoding at full size and resizing.
    """
    fast = _decode_jpeg_opencv(path, size, max_side, keep_grey)
    if fast is not None:
        return fast
    from PIL import Image

    try:
        with Image.open(path) as img:
            target = _target(img.size, size, max_side)
            if target is not None:
                img.draft("RGB", target)  # leaves a greyscale JPEG greyscale
            img = upright_rgb(img, grey=keep_grey)  # EXIF orientation, 16-bit, alpha: curate.imageio
            if target is not None and img.size != tuple(target):
                img = img.resize(target, Image.BILINEAR)
            return np.asarray(img)
    except (OSError, ValueError, SyntaxError) as exc:
        notes.append(f"image {path.name} unreadable: {exc}")
        return None


def _target(wh: tuple[int, int], size: tuple[int, int] | None, max_side: int | None) -> tuple[int, int] | None:
    """The (W, H) to decode an image of ``wh`` to: ``size``, or ``wh`` scaled down to ``max_side``, or None."""
    if size is None and max_side is not None and max(wh) > max_side:
        s = max_side / max(wh)
        return (max(1, round(wh[0] * s)), max(1, round(wh[1] * s)))
    return size


def _jpeg_header(data: bytes) -> tuple[str, tuple[int, int]] | None:
    """(PIL's mode, (W, H)) of a baseline/extended/progressive 8-bit JPEG with 1 or 3 components, read from
    its frame header; None for anything else (CMYK, 12-bit, lossless, arithmetic, not a JPEG, truncated)."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in (0xC0, 0xC1, 0xC2):  # the frame header: precision, height, width, components
            if i + 10 > n:
                return None
            h, w, comps = int.from_bytes(data[i + 5: i + 7], "big"), int.from_bytes(data[i + 7: i + 9], "big"), data[i + 9]
            if data[i + 4] != 8 or comps not in (1, 3) or w == 0 or h == 0:
                return None
            return ("L" if comps == 1 else "RGB"), (w, h)
        if 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) or marker in (0xD9, 0xDA):
            return None  # another frame type, or the image ends / a scan starts before any frame header
        i += 2 + int.from_bytes(data[i + 2: i + 4], "big")
    return None


def _decode_jpeg_opencv(path: Path, size: tuple[int, int] | None, max_side: int | None, keep_grey: bool) -> np.ndarray | None:
    """What the PIL path of :func:`_decode` returns, for a plain RGB or greyscale JPEG, decoded by OpenCV;
    None for anything else or on any failure (PIL then decodes it, and says why it cannot). Both use libjpeg
    with the same defaults (islow DCT, fancy upsampling, DCT-domain scaling), so the pixels are the same
    (checked on every real sample JPEG at 1, 1/2 and 1/4 scale, and in tests/test_filters_unit.py); OpenCV
    gets there 0.1-0.2 ms sooner per image, and reading the frame header here instead of opening the file
    with PIL saves another 0.1 ms (measured at 256x192). The scale is chosen as ``Image.draft`` chooses it,
    and EXIF orientation is ignored, as PIL does."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header = _jpeg_header(data) if jpeg_orientation(data) == 1 else None  # rotated: the PIL path turns it upright
    if header is None:
        return None
    mode, (w, h) = header
    target = _target((w, h), size, max_side)
    s = 1
    if target is not None:
        fit = min(w // target[0], h // target[1])
        s = next(f for f in (8, 4, 2, 1) if fit >= f)
    arr = decode_scaled(data, s, grey=keep_grey and mode == "L", ignore_orientation=True)
    if arr is None or arr.shape[:2] != ((h + s - 1) // s, (w + s - 1) // s):
        return None  # unreadable or unexpected: let PIL decode it (and say why)
    if target is not None and (arr.shape[1], arr.shape[0]) != tuple(target):
        from PIL import Image

        arr = np.asarray(Image.fromarray(arr).resize(target, Image.BILINEAR))
    return arr


def _read_rgb(path: Path, size: tuple[int, int] | None, notes: list[str], max_side: int | None = None) -> np.ndarray | None:
    """The image as uint8 RGB ``[H, W, 3]`` (see :func:`_decode`)."""
    return _decode(path, size, notes, max_side, keep_grey=False)


def _read_mask(path: Path, notes: list[str], max_side: int | None = None) -> np.ndarray | None:
    """A cloth mask as bool ``[H, W]``: the mean of R, G, B above 127.

    A greyscale file (VITON-HD's masks) is read as one channel: its RGB conversion repeats the grey value in
    the three channels, so the mean is the grey value itself and the mask is the same, without decoding
    three channels and averaging them as floats (1.3 -> 0.2 ms at 256x192, measured). Colour masks compare
    the integer channel sum: mean > 127 exactly when R + G + B > 381.
    """
    m = _decode(path, None, notes, max_side, keep_grey=True)
    if m is None:
        return None
    if m.ndim == 2:
        return m > 127
    return m.sum(axis=-1, dtype=np.uint16) > 381


# --------------------------------------------------------------------------------------------------------
# the three filters
# --------------------------------------------------------------------------------------------------------
def _back_view(inp: _Inputs) -> Verdict:
    th = inp.opts.thresholds
    lm, ls = inp.labelmap(), inp.label_set
    kps = inp.keypoints()
    parsing = back_view.view_from_parsing(lm, ls, th, counts=inp.label_counts()) if lm is not None and ls is not None else None
    pose = None
    if kps is not None and inp.task.human_size is not None:
        pose = back_view.view_from_pose(kps, inp.task.human_size, th)
    v = back_view.combine_views(parsing, pose)
    if v.verdict == View.UNKNOWN.value and inp.opts.detectors:
        det = inp.detection()
        if det is not None:
            h, w = det.person.shape
            dv = back_view.view_from_pose(det.keypoints, (w, h), th, depth=det.depth, source=Source.DETECTOR_POSE)
            if v.detail:
                dv.signals.append(f"annotations undecided: {v.detail}")
            return dv
    return v


def _category(inp: _Inputs) -> Verdict:
    t = inp.task
    for value, where in ((t.article_category, "article"), (t.pair_category, "pair")):
        if value and value != Category.UNKNOWN.value:
            return Verdict(value, Source.METADATA, signals=[f"{where} category"])
    key = (t.article_path, t.cloth_mask_path, inp.opts.thresholds)
    cached = _CATEGORY_CACHE.get(key)
    if cached is not None:
        return dataclasses.replace(cached, scores=dict(cached.scores), signals=list(cached.signals))
    _, mask = inp.article()
    if mask is None:
        return Verdict(Category.UNKNOWN.value, Source.NONE, detail="no category metadata and no readable article image or mask")
    v = lower_only.category_from_mask(mask, inp.opts.thresholds)
    if len(_CATEGORY_CACHE) >= _CATEGORY_CACHE_MAX:
        _CATEGORY_CACHE.clear()
    _CATEGORY_CACHE[key] = v
    return dataclasses.replace(v, scores=dict(v.scores), signals=list(v.signals))


def _upper_worn(inp: _Inputs) -> Verdict:
    th = inp.opts.thresholds
    lm, ls = inp.labelmap(), inp.label_set
    if lm is not None and ls is not None:
        return lower_only.upper_worn_from_parsing(lm, ls, th, counts=inp.label_counts())
    if inp.opts.detectors:
        det = inp.detection()
        if det is not None:
            return lower_only.upper_worn_from_pixels(det.rgb, det.person, det.keypoints, th, Source.DETECTOR_SEGMENTATION)
    return Verdict("unknown", Source.NONE, detail="no parsing and no detector result")


def _lower_only(inp: _Inputs, category: Verdict) -> Verdict:
    if category.verdict != Category.LOWER.value:
        # the person's garments do not matter when the product is not lower-body
        return lower_only.lower_only_verdict(category, Verdict("not-needed", Source.NONE))
    return lower_only.lower_only_verdict(category, _upper_worn(inp))


def _palette(inp: _Inputs) -> np.ndarray | None:
    """The product's main colours, only for paired pairs (the person is meant to wear this product)."""
    if not inp.task.paired:
        return None
    rgb_a, mask_a = inp.article()
    if rgb_a is None or mask_a is None:
        return None
    return extra_garments.product_palette(rgb_a, mask_a)


def _extra(inp: _Inputs, category: Verdict) -> Verdict:
    th = inp.opts.thresholds
    lm, ls = inp.labelmap(), inp.label_set
    trusted = category.source is Source.METADATA
    if lm is not None and ls is not None:
        rgb = inp.rgb_like_labelmap()
        kps = inp.keypoints_in(lm.shape) if rgb is not None else None
        v = extra_garments.extra_from_parsing(
            lm, ls, category.verdict, trusted, th, rgb=rgb, kps=kps, palette=_palette(inp), counts=inp.label_counts()
        )
    elif inp.opts.detectors and inp.detection() is not None:
        det = inp.detection()
        assert det is not None
        v = extra_garments.extra_from_pixels(det.rgb, det.person, det.keypoints, th, palette=_palette(inp))
    else:
        return Verdict(ExtraGarments.UNKNOWN.value, Source.NONE, detail="no parsing and no detector result")
    v.signals.append(f"product category {category.verdict} ({category.source.value})")
    return v


def evaluate_pair(task: PairTask, opts: FilterOptions, detector: PoseDetector | None = None) -> PairResult:
    """Run the enabled filters on one pair and pick the one rejecting reason (back > side > lower > extra)."""
    inp = _Inputs(task, opts, detector if opts.detectors else None)
    bv = _back_view(inp) if opts.back_views else None
    category = _category(inp) if (opts.lower_only_products or opts.extra_garments) else None
    lo = _lower_only(inp, category) if opts.lower_only_products and category is not None else None
    ex = _extra(inp, category) if opts.extra_garments and category is not None else None
    reason = None
    if bv is not None and bv.verdict == View.BACK.value:
        reason = FilterReason.BACK_VIEW.value
    elif bv is not None and bv.verdict == View.SIDE.value and opts.reject_side_views:
        reason = FilterReason.SIDE_VIEW.value
    elif lo is not None and lo.verdict == LowerOnly.LOWER_ONLY.value:
        reason = FilterReason.LOWER_ONLY.value
    elif ex is not None and ex.verdict == ExtraGarments.EXTRA.value:
        reason = FilterReason.EXTRA_GARMENTS.value
    return PairResult(task.pair_id, bv, lo, ex, reason, inp.notes)
