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
from typing import TYPE_CHECKING, Any

import numpy as np

from curate.filters import back_view, body, extra_garments, lower_only
from curate.filters.detectors import DEFAULT_MAX_SIDE, Detection, PoseDetector

if TYPE_CHECKING:
    from curate.filters.parser import ClothesParser
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
    # a clothes-parsing model (local folder or hub id, curate.filters.parser) for people without a label map
    parser: str | None = None
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)


@dataclasses.dataclass(frozen=True)
class PairSpec:
    """One pair of a person: its article and how the pair is labelled (absolute paths)."""

    pair_id: str
    article_path: str | None
    cloth_mask_path: str | None
    article_category: str
    pair_category: str
    paired: bool


@dataclasses.dataclass(frozen=True)
class PersonTask:
    """One person and every pair of theirs, as plain picklable values (absolute paths): the person is
    judged once and each pair's verdicts are derived from that judgement and the pair's article."""

    human_id: str
    human_path: str | None
    human_size: tuple[int, int] | None  # (W, H) as ingested; the keypoints are in this frame
    labelmap_path: str | None
    label_set: str | None
    keypoints: tuple[float, ...] | None
    pairs: tuple[PairSpec, ...] = ()


@dataclasses.dataclass(frozen=True)
class PairTask:
    """One pair with its person inline (what :func:`evaluate_pair` takes)."""

    pair_id: str
    human_path: str | None
    human_size: tuple[int, int] | None
    labelmap_path: str | None
    label_set: str | None
    keypoints: tuple[float, ...] | None
    article_path: str | None
    cloth_mask_path: str | None
    article_category: str
    pair_category: str
    paired: bool

    def person_task(self) -> PersonTask:
        spec = PairSpec(self.pair_id, self.article_path, self.cloth_mask_path, self.article_category,
                        self.pair_category, self.paired)
        return PersonTask(self.pair_id, self.human_path, self.human_size, self.labelmap_path, self.label_set,
                          self.keypoints, (spec,))


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


@dataclasses.dataclass
class PersonResult:
    """A person's verdicts (the humans table's ``filter_*`` columns) and those of each of their pairs."""

    human_id: str
    view: Verdict | None
    upper_worn: Verdict | None
    garments: Verdict | None  # person-level: layered / single / unknown, with the garment evidence
    facts: dict[str, Any]  # upper_garments, upper_count, layered, scarf, lower_only_outfit
    reason: str | None
    notes: list[str]
    pairs: list[PairResult]

    def evidence(self) -> str:
        """The ``filter_person_evidence`` JSON."""
        named = (("view", self.view), ("upper_worn", self.upper_worn), ("garments", self.garments))
        return evidence_json({k: v for k, v in named if v is not None}, notes=self.notes, reason=self.reason,
                             facts=self.facts)


class _Inputs:
    """Lazily loaded inputs of one person; each loader runs once and records why it failed."""

    def __init__(self, task: PersonTask, opts: FilterOptions, detector: PoseDetector | None,
                 parser: "ClothesParser | None" = None) -> None:
        self.task, self.opts, self.detector, self.parser = task, opts, detector, parser
        self.parsed_by_model = False  # the label map was predicted by ``parser``, not read from the dataset
        self.notes: list[str] = []
        self._ls: Any = ...
        self._lm: Any = ...
        self._counts: Any = ...
        self._rgb_for_lm: Any = ...
        self._det: Any = ...

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
            elif path is None and self.parser is not None and self.task.human_path is not None:
                self._lm = self._predict_labelmap()
        return self._lm

    def _predict_labelmap(self) -> np.ndarray | None:
        """The parser's label map at the analysis size (what a dataset map is subsampled to)."""
        assert self.parser is not None
        rgb = _read_rgb(Path(self.task.human_path), None, self.notes, max_side=DEFAULT_MAX_SIDE)  # type: ignore[arg-type]
        if rgb is None:
            return None
        h, w = rgb.shape[:2]
        s = min(1.0, ANALYSIS_MAX_SIDE / max(h, w))
        lm = self.parser.parse(rgb, (max(1, round(h * s)), max(1, round(w * s))))
        self._ls, self.parsed_by_model = self.parser.label_set, True
        return lm

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
        """Dataset keypoints rescaled to an array of ``shape`` (H, W); for a parser's map without a dataset
        pose, the detector's keypoints (so that the layering test can run inside the parser's labels)."""
        kps = self.keypoints()
        if kps is None and self.parsed_by_model and self.opts.detectors:
            det = self.detection()
            if det is not None:
                out = det.keypoints.copy()
                out[:, 0] *= shape[1] / det.person.shape[1]
                out[:, 1] *= shape[0] / det.person.shape[0]
                return out
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


def _article(spec: PairSpec, notes: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(product RGB or None, product mask or None): the cloth mask file when present, else segmented."""
    rgb = mask = None
    if spec.article_path is not None:
        rgb = _read_rgb(Path(spec.article_path), None, notes, max_side=PRODUCT_MAX_SIDE)
    if spec.cloth_mask_path is not None:
        mask = _read_mask(Path(spec.cloth_mask_path), notes, max_side=PRODUCT_MAX_SIDE)
        if mask is not None:
            if rgb is not None and rgb.shape[:2] != mask.shape:
                rgb = None  # mismatched sizes: keep the mask (the shape) and drop the colours
    if mask is None and rgb is not None:
        mask = lower_only.product_mask_from_photo(rgb)
    return rgb, mask


class _ArticleInputs:
    """One pair's article, loaded at most once (the category and the palette both read it)."""

    def __init__(self, spec: PairSpec, notes: list[str]) -> None:
        self.spec, self.notes = spec, notes
        self._loaded: Any = ...

    def article(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self._loaded is ...:
            self._loaded = _article(self.spec, self.notes)
        return self._loaded


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
# the person: view, upper garment worn, garments (layered, scarf) -- once per person
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


def _person_garments(inp: _Inputs) -> extra_garments.PersonGarments | Verdict:
    """The person's garments from the parsing, else from the detectors; an ``unknown`` Verdict when neither."""
    th = inp.opts.thresholds
    lm, ls = inp.labelmap(), inp.label_set
    if lm is not None and ls is not None:
        rgb = inp.rgb_like_labelmap()
        kps = inp.keypoints_in(lm.shape) if rgb is not None else None
        return extra_garments.person_garments_from_parsing(lm, ls, th, rgb=rgb, kps=kps, counts=inp.label_counts())
    det = inp.detection() if inp.opts.detectors else None
    if det is None:
        return Verdict(ExtraGarments.UNKNOWN.value, Source.NONE, detail="no parsing and no detector result")
    pg = extra_garments.person_garments_from_pixels(det.rgb, det.person, det.keypoints, th)
    if pg is None:
        return Verdict(ExtraGarments.UNKNOWN.value, Source.DETECTOR_SEGMENTATION, detail="torso not located (shoulders not seen)")
    return pg


def _person_facts(upper: Verdict | None, garments: extra_garments.PersonGarments | Verdict | None) -> dict[str, Any]:
    """The humans table's person-level facts (``None`` = not judged, ``unknown`` = no usable evidence)."""
    def yes_no(v: bool | None) -> str:
        return "unknown" if v is None else ("yes" if v else "no")

    worn = None if upper is None or upper.verdict == "unknown" else upper.verdict == "worn"
    pg = garments if isinstance(garments, extra_garments.PersonGarments) else None
    kinds: list[str] | None = None
    if pg is not None and pg.source is Source.PARSING:
        kinds = [g for g in extra_garments.UPPER_KINDS if g in pg.present]
    elif worn is not None:
        kinds = ["top"] if worn else []
    if kinds is not None and pg is not None and (pg.open_layer_signal or (pg.detector is not None and pg.detector.verdict == "layered")):
        kinds.append("open-layer")
    return {
        "upper_garments": None if kinds is None else "+".join(kinds),
        "upper_count": None if kinds is None else len(kinds),
        "layered": None if garments is None else yes_no(pg.layered if pg is not None else None),
        # the detector path has no scarf test of its own (a scarf down the front reads as a layer)
        "scarf": None if garments is None else yes_no(pg.scarf if pg is not None else None),
        "lower_only_outfit": None if upper is None else yes_no(None if worn is None else not worn),
    }


def _garments_verdict(garments: extra_garments.PersonGarments | Verdict) -> Verdict:
    """The person-level garments evidence as a Verdict: layered / single / unknown."""
    if isinstance(garments, Verdict):
        return garments
    signals = list(garments.signals) + ([garments.open_layer_signal] if garments.open_layer_signal else [])
    present = "+".join(sorted(garments.present))
    if not signals and present:
        signals = [f"worn: {present}"]
    return Verdict("layered" if garments.layered else "single", garments.source, scores=dict(garments.scores), signals=signals)


# --------------------------------------------------------------------------------------------------------
# the pair: the product's category and colours against the person's judgement
# --------------------------------------------------------------------------------------------------------
def _category(art: _ArticleInputs, opts: FilterOptions) -> Verdict:
    t = art.spec
    for value, where in ((t.article_category, "article"), (t.pair_category, "pair")):
        if value and value != Category.UNKNOWN.value:
            return Verdict(value, Source.METADATA, signals=[f"{where} category"])
    key = (t.article_path, t.cloth_mask_path, opts.thresholds)
    cached = _CATEGORY_CACHE.get(key)
    if cached is not None:
        return dataclasses.replace(cached, scores=dict(cached.scores), signals=list(cached.signals))
    _, mask = art.article()
    if mask is None:
        return Verdict(Category.UNKNOWN.value, Source.NONE, detail="no category metadata and no readable article image or mask")
    v = lower_only.category_from_mask(mask, opts.thresholds)
    if len(_CATEGORY_CACHE) >= _CATEGORY_CACHE_MAX:
        _CATEGORY_CACHE.clear()
    _CATEGORY_CACHE[key] = v
    return dataclasses.replace(v, scores=dict(v.scores), signals=list(v.signals))


def _lower_only(upper: Verdict, category: Verdict) -> Verdict:
    if category.verdict != Category.LOWER.value:
        # the person's garments do not matter when the product is not lower-body
        return lower_only.lower_only_verdict(category, Verdict("not-needed", Source.NONE))
    return lower_only.lower_only_verdict(category, upper)


def _palette(art: _ArticleInputs) -> np.ndarray | None:
    """The product's main colours, only for paired pairs (the person is meant to wear this product)."""
    if not art.spec.paired:
        return None
    rgb_a, mask_a = art.article()
    if rgb_a is None or mask_a is None:
        return None
    return extra_garments.product_palette(rgb_a, mask_a)


def _extra(inp: _Inputs, garments: extra_garments.PersonGarments | Verdict, art: _ArticleInputs, category: Verdict) -> Verdict:
    """Extra garments relative to this article: the person's garments, the category rule, the product colours."""
    if isinstance(garments, Verdict):
        return dataclasses.replace(garments, scores=dict(garments.scores), signals=list(garments.signals))
    th = inp.opts.thresholds
    palette = _palette(art)
    unexplained = None
    if garments.source is Source.PARSING:
        lm, ls = inp.labelmap(), inp.label_set
        rgb = inp.rgb_like_labelmap()
        assert lm is not None and ls is not None
        if palette is not None and rgb is not None:
            region = extra_garments.product_region(lm, ls, category.verdict)
            unexplained = extra_garments.unexplained_by_palette(rgb, region, palette, th.product_max_delta_e)
        v = extra_garments.extra_for_product_from_parsing(
            garments, category.verdict, category.source is Source.METADATA, th, palette=palette, unexplained=unexplained
        )
    else:
        det = inp.detection()
        assert det is not None
        if palette is not None:
            region = extra_garments.torso_garment(det.rgb, det.person, det.keypoints, th)
            if region is not None:
                unexplained = extra_garments.unexplained_by_palette(det.rgb, region, palette, th.product_max_delta_e)
        v = extra_garments.extra_for_product_from_pixels(garments, th, palette=palette, unexplained=unexplained)
    v.signals.append(f"product category {category.verdict} ({category.source.value})")
    return v


def _pair_reason(opts: FilterOptions, bv: Verdict | None, lo: Verdict | None, ex: Verdict | None) -> str | None:
    """The one rejecting reason of a pair (back > side > lower > extra)."""
    if bv is not None and bv.verdict == View.BACK.value:
        return FilterReason.BACK_VIEW.value
    if bv is not None and bv.verdict == View.SIDE.value and opts.reject_side_views:
        return FilterReason.SIDE_VIEW.value
    if lo is not None and lo.verdict == LowerOnly.LOWER_ONLY.value:
        return FilterReason.LOWER_ONLY.value
    if ex is not None and ex.verdict == ExtraGarments.EXTRA.value:
        return FilterReason.EXTRA_GARMENTS.value
    return None


def _copy(v: Verdict | None) -> Verdict | None:
    return None if v is None else dataclasses.replace(v, scores=dict(v.scores), signals=list(v.signals))


def _relabel(v: Verdict | None) -> None:
    """A verdict decided on a parser's label map names the parser, not the dataset's annotations."""
    if v is not None and v.source is Source.PARSING:
        v.source = Source.PARSER
    if v is not None:
        v.signals = [s.replace(Source.PARSING.value, Source.PARSER.value) for s in v.signals]


def evaluate_person(task: PersonTask, opts: FilterOptions, detector: PoseDetector | None = None,
                    parser: "ClothesParser | None" = None) -> PersonResult:
    """Judge one person once (view, upper garment, garments), then derive each of their pairs' verdicts."""
    inp = _Inputs(task, opts, detector if opts.detectors else None, parser)
    view = _back_view(inp) if opts.back_views else None
    need_upper = opts.lower_only_products or opts.extra_garments
    upper = _upper_worn(inp) if need_upper else None
    garments = _person_garments(inp) if opts.extra_garments else None
    pairs: list[PairResult] = []
    for spec in task.pairs:
        art_notes: list[str] = []
        art = _ArticleInputs(spec, art_notes)
        category = _category(art, opts) if need_upper else None
        lo = _lower_only(upper, category) if opts.lower_only_products and category is not None and upper is not None else None
        ex = _extra(inp, garments, art, category) if garments is not None and category is not None else None
        bv = _copy(view)
        pairs.append(PairResult(spec.pair_id, bv, lo, ex, _pair_reason(opts, bv, lo, ex), list(inp.notes) + art_notes))
    gv = _garments_verdict(garments) if garments is not None else None
    reason = None
    if view is not None and view.verdict == View.BACK.value:
        reason = FilterReason.BACK_VIEW.value
    elif view is not None and view.verdict == View.SIDE.value and opts.reject_side_views:
        reason = FilterReason.SIDE_VIEW.value
    elif gv is not None and gv.verdict == "layered" or (isinstance(garments, extra_garments.PersonGarments) and garments.scarf):
        reason = FilterReason.EXTRA_GARMENTS.value
    if inp.parsed_by_model:
        for v in (view, upper, gv, *(x for pr in pairs for x in (pr.back_view, pr.lower_only, pr.extra_garments))):
            _relabel(v)
    return PersonResult(task.human_id, view, upper, gv, _person_facts(upper, garments), reason, list(inp.notes), pairs)


def evaluate_pair(task: PairTask, opts: FilterOptions, detector: PoseDetector | None = None) -> PairResult:
    """One pair on its own (its person judged for it alone): the verdicts :func:`evaluate_person` gives it."""
    return evaluate_person(task.person_task(), opts, detector).pairs[0]
