"""A finer look at near-duplicate links between two products on a uniform background (issue 16).

The 32x32 thumbnails cannot tell a product from its near twin (the same cut with a sleeve or a hem a few per
cent longer) or from itself with a small print recoloured: at that size the change is within the content
box's jitter between resized copies. So every near-duplicate link whose two images are both *boxed* (a
product on a uniform background, :mod:`curate.dedupe.features`) is looked at again on the images decoded at
``FINE_SIDE`` (the short side; a file smaller than that, down to ``FINE_MIN_SIDE``, at its own size and on its
outline and tone only), and refused when

* **shape**: after the best alignment of the two silhouettes, more than ``Thresholds.fine_shape`` of their
  outline points lie farther than ``OUTLINE_TOLERANCE`` pixels from the other's outline. Edits of a copy
  (re-encoding, resizing, small crops, brightness, contrast, gamma, a watermark) move no outline; a twin's
  longer sleeve moves a stretch of it.
* **colour**: more than ``Thresholds.fine_hue`` of the product's pixels (away from its edges, where both
  images are saturated) have their hue turned by more than ``HUE_TURN``. Tone edits keep hue; a recoloured
  emblem turns it. And a **recoloured region**: the largest connected region whose hue turned by more than
  ``REGION_TURN`` against the product's typical (median) turn covers more than ``Thresholds.fine_hue_region`` of
  the product, counting only pixels saturated and bright enough in both (``HUE_VALUE``: a near-black's hue is
  noise). An emblem recoloured by 15-28 degrees slips under ``HUE_TURN`` pixel by pixel but is one region; a tone
  edit turns a colour's hue by a few degrees, and the same colour the same way everywhere. Pixels whose saturation
  moved more than ``Thresholds.fine_saturation_jump`` against the product's median move (bright in both, saturated in
  one only) join that region: a nearly grey print given a colour has no hue to turn on its grey side.
* **edges** (a pair every test above let through): a near twin whose seam, gap or hem moved by one or two pixels
  at the file's resolution is under the outline tolerance at ``FINE_SIDE``. So both products' edges are located
  to a fraction of a pixel at the file's resolution (:func:`edge_offset`): along the normal of each of a's edge
  points, how far b's product mask (each image's own background-to-product ramp) lies out of a's, after the best
  similarity and one uniform offset (a tone edit moves every ramp's half-way point the same way) are fitted out.
  Refused when the mean over a stretch of ``EDGE_WINDOW`` of the outline is more than ``Thresholds.fine_edge``
  pixels off: a copy's offsets scatter around zero, a twin's stretch moved together.
* **changed values**: after one global tone curve (verify's, within its bounds) fitted on the aligned product's
  local means and its background's colour, more than ``Thresholds.fine_far`` of those values still differ from
  it by more than ``PHOTO_FAR``. An edit sends product and background through one curve; a lighter or darker
  colourway moves the product but not the background, and a recoloured region of the same hue family no curve
  maps back (issue 16: colourway false positives of the tuning sets 13 -> 0, shade variant 507 -> 437 of 1,094).

Alignment: the candidates are isotropic scales (same original pixels: a crop; the frame's ratio: a resize;
the content box's height or width ratio on sides the frame does not cut; for a product the frame cuts on every axis
(no axis with both ends free), the frame's ratio less 2-12 %: a crop then a resize) times anchors (a corner or the
centre of the content box), then a small grid around the best; scored by the mean outline distance (chamfer
matching on distance transforms). Outline points near the other image's frame are not counted, since a crop
may have cut the product there. The silhouette is the outline of the content's components after a closing of
``CLOSING`` of the short side, so thin gaps (an open jacket's front, a V neck's channel) cannot change its topology
between two copies; a silhouette with much inner texture (a person photographed on a pale wall) is not
*simple* (outline share of all foreground boundaries under ``SIMPLE``) and is not judged by this look.

Photos (neither image boxed: a person in a room, a street, a scene) have no silhouette to compare, but a
colourway of a photographed garment is the same shot with one region's hue turned. So a link between two
photos is looked at too (:func:`compare_photos`): the two images are aligned by ORB keypoints and a RANSAC
similarity (rotation, one scale, shift: crops and resizes; ORB compares intensities only, so tone edits and
a recolour keep the keypoints), and the link is refused when more than ``Thresholds.fine_photo_hue`` of the
overlap turned hue by more than ``PHOTO_HUE_TURN`` where both are saturated. Too few keypoints or inliers (a plain
scene, another shot): not judged.

The same alignment also *joins* (:func:`rescue_photos`): a copy the thumbnails refused on shape or tone (a crop
of a photo moves a 32x32 thumbnail's structure past its limit, ~0.03-0.09 on the tuning sets, where two shots
of one garment move it far more) is joined when, aligned, it covers the smaller image, one global tone curve
(verify's, within its bounds) explains its pixels to within ``Thresholds.fine_tone``, leaves under
``Thresholds.fine_photo_far`` of the sampled values changed by more than ``PHOTO_FAR`` and its hue is unturned. Pixels
agreeing after one similarity and one tone curve is evidence a thumbnail cannot give: another pose, a near twin
or a colourway leaves regions that no curve maps back.

Each image is decoded once per run for this; pairs are grouped by connected component so that a worker
decodes every image it needs once, and components run on the same process pool as hashing.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from curate.dedupe.verify import Thresholds

FINE_SIDE = 256  # short side the images are looked at (issue 16; chosen on the tuning sets: 192 misses more twins)
FINE_MIN_SIDE = 192  # a file under FINE_SIDE is still looked at, at its own size, down to this short side, on its
#                     outline and tone only (``compare``): a thumbnail-sized upload (a 0.25x resize of a 768 px product)
#                     was waved through by every look, and so was its near twin (fifteenth round, tuning set `small` 190)
OUTLINE_TOLERANCE = 1.25  # pixels (at FINE_SIDE) an outline point may be from the other's: resampling and JPEG jitter
CLOSING = 7 / 384  # of the short side (7 px at 512x384): gaps narrower than this are closed before the outline is
#                   taken; relative, so a smaller copy closes the same gaps as its original
LIGHT_QUANTILE = 0.25  # a second silhouette's edge level (FineView.light): at this quantile of the product's
#                       differences from the background instead of its median
WHITE_CLIP = 250  # of 255: a background at least this light in every channel may have been clipped by a brightening
BRIGHTENED_MIN = 1.05  # product value ratio from which a pair is treated as one brightened (_brightened_pair)
BRIGHTENED_MAX_LEVEL = 0.8  # of the darker product's median difference: a mapped level above it is not taken
JOINT_LEVELS = (0.35, 0.65)  # of each product's median difference: the levels both silhouettes are taken again at when
#                              the outlines still disagree (a trim or emblem whose colour lies near the half-way level
#                              is in one copy's silhouette and out of the other's; issue 16, sixteenth round)
JOINT_MAX_FAR = 0.2  # the joint levels are tried only for outlines at most this far apart (the copies they brought
#                      together on tuning set `family` 151 were 0.031-0.103 apart; 82 % of its shape-refused traps are
#                      further, and each try costs two silhouettes and an alignment)
JOINT_SHAPE_SHARE = 0.5  # of fine_shape: the most outline points a joint level may leave off for its alignment to count
SIMPLE = 0.6  # min share of a silhouette's foreground boundary that is its outline, for it to be judged
SCENE_SIDES = 4  # sides of the frame the content runs through for the image to be a scene: a product framed tight
#                 (sleeves and hem cut by the frame) runs through three and is still judged (issue 16, fifteenth round:
#                 3 left such near twins to the photo look, which cannot see a sleeve; tuning set `frame` 180)
FRAMED_CROPS = (0.02, 0.04, 0.06, 0.08, 0.10, 0.12)  # shares of a side a crop may have cut, for the scale of a product
#                    framed tight (``_candidates``), 2 % apart: the alignment's first refinement is +-1 % of the scale
#                    (issue 16, fifteenth round; tuning set `frame` 180: 8 of 10 such combined copies refused on shape align)
FRAME_MARGIN = 3.0  # pixels: outline points within this of the other image's frame are not counted
VIEW_CACHE = 128  # fine views a worker keeps while it goes through one connected component's pairs
MAX_POINTS = 400  # outline points per image (evenly spaced along the outline)
HUE_TURN = 20  # of 256 (OpenCV's full-range hue): ~28 degrees; a recoloured print turns far more (tuning: 60-180)
HUE_SATURATION = 60  # of 255: both pixels at least this saturated for their hue to count
REGION_TURN = 10  # of 256 (~14 degrees) off the product's median turn: a pixel of a recoloured region (tuning sets:
#                  8 cost a copy, 12 let more mild recolours through)
EDGE_SIDE = 768  # short side at which edges are located (a larger file is decoded reduced to it, a smaller one as is)
EDGE_REACH = 4.0  # pixels sampled either side of an edge point along its normal, every EDGE_STEP
EDGE_STEP = 0.5
EDGE_WINDOW = 0.04  # of an image's edge points: the stretch over which offsets are averaged
EDGE_MIN_POINTS = 100  # edge points of one contour for it to be judged (specks and letters are not)
EDGE_FRAME = 8  # pixels: edge points this near either frame are not judged (a crop cut the product there)
EDGE_BOX_MARGIN = 16  # pixels around the contours' box that edge_view blurs (sigma 1.5: the kernel reaches 6, Sobel 1 more)
EDGE_CACHE = 16  # full-resolution edge views a worker keeps (each ~3.5 MB at 768x1024; 48 was no faster on the
#                 5k reporting set: pairs of one image come one after another)
HUE_VALUE = 64  # of 255: both pixels at least this bright for the region test (dark hues swing under JPEG, contrast)
RANK_STEP = 6  # candidates are ranked on every 6th outline point
_REFINE = tuple(np.array([(ds, dx, dy) for ds in scales for dx in shifts for dy in shifts], np.float32)
                for scales, shifts in (((-0.01, 0.0, 0.01), (-2.0, 0.0, 2.0)), ((-0.005, 0.0, 0.005), (-1.0, 0.0, 1.0))))
PHOTO_FEATURES = 600  # ORB keypoints per photo
PHOTO_MIN_INLIERS = 25  # RANSAC inliers for two photos to count as aligned (fewer: not judged)
PHOTO_REPROJECTION = 3.0  # pixels (at FINE_SIDE) a keypoint may land from its match and still be an inlier
PHOTO_HUE_TURN = 12  # of 256 (~17 degrees): aligned photos' hue is steadier than a product's across its edges
PHOTO_EDGE = 4  # pixels of the overlap's rim left out of the photo hue check (interpolation at the frame)
FIT_BLUR = 3  # pixels: the fine tone curve is fitted on 7x7 local means
FIT_PIXELS = 3000  # product pixels the fine tone curve is fitted on (evenly spread over the core)
PHOTO_FAR = 0.08  # |difference| of values in [0, 1] (20 of 255) after the curve from which a sampled value counts as
#                   changed: in linear units, since the fitted curve's compromise in the shadows is large in log units
RESCUE_INLIERS = 60  # RANSAC inliers for the alignment to join a pair (tuning: copies 71-461, colourways of
#                      plain products that aligned at all 25-200, most under 60; refusing needs fewer: 25)
RESCUE_COVERAGE = 0.8  # share of the smaller image the aligned overlap must cover (a <= 6 % crop per side: >= 0.88)
TASK_PAIRS = 48  # pairs at most in one pool task: a component with more is split (a worker's later runs of it find
#                 the views they share in its _VIEWS while they last there)
_FAR = 20.0  # distances are capped here in the alignment score (a missing part should not dominate it)


class _Colour:
    rgb: np.ndarray

    @functools.cached_property
    def hsv(self) -> np.ndarray:
        """[h, w, 3] uint8 OpenCV full-range HSV (computed when a pair first needs it)."""
        import cv2

        return cv2.cvtColor(self.rgb, cv2.COLOR_RGB2HSV_FULL)


def _turned(hsv_a: np.ndarray, hsv_b: np.ndarray, limit: int, where: np.ndarray) -> int:
    """Pixels of ``where`` whose hue turned by more than ``limit`` (of 256) from a to b, both saturated, after
    a 3x3 opening: it keeps regions, not the one-pixel lines a slightly misaligned colour edge leaves."""
    import cv2

    turn = cv2.absdiff(hsv_a[..., 0], hsv_b[..., 0])
    turn = cv2.min(turn, cv2.subtract(np.full_like(turn, 255), turn) + 1)  # hue is circular (256 steps)
    saturated = cv2.min(hsv_a[..., 1], hsv_b[..., 1]) >= HUE_SATURATION
    turned = ((turn > limit) & saturated & (where > 0)).view(np.uint8)
    return cv2.countNonZero(cv2.morphologyEx(turned, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)))


@dataclasses.dataclass
class FineView(_Colour):
    scale: float  # decoded pixels per file pixel
    box: np.ndarray  # [4] float32 top, bottom, left, right of the content (decoded pixels)
    touch: np.ndarray  # [4] bool: the box side lies on the frame (the product is cut there)
    points: np.ndarray  # [k, 2] float32 x, y of outline points away from the frame
    distance: np.ndarray  # float32 distance to the outline, over the outline's neighbourhood ...
    origin: np.ndarray  # [2] ... whose top-left corner is this (x, y) of the frame
    content: np.ndarray  # [h, w] uint8 1 on the content's components (before the closing)
    rgb: np.ndarray  # [h, w, 3] uint8
    simple: float  # outline pixels / all foreground boundary pixels
    background: np.ndarray  # [3] uint8 the plain background's colour
    diff: np.ndarray | None = None  # [h, w] uint8 largest channel difference from the background, kept when the
    light_level: float = 0.0  # silhouette at this lower level may differ (FineView.light)
    level: float = 0.0  # the level the silhouette was taken at (of 255, a difference from the background)
    product_diff: float = 0.0  # the product's median difference from the background (what ``level`` is half-way to)

    @property
    def shape(self) -> tuple[int, int]:
        return self.content.shape  # type: ignore[return-value]

    @functools.cached_property
    def light(self) -> "FineView | None":
        """The same image's silhouette at the lower level (LIGHT_QUANTILE), taken when a pair first asks for it:
        itself when that level is the same, None when there is no silhouette there."""
        if self.diff is None:
            return self
        return self.at_level(self.light_level, self.diff)

    def at_level(self, level: float, diff: np.ndarray | None = None) -> "FineView | None":
        """The same image's silhouette at another ``level`` (None when there is none there); ``diff`` when already
        at hand, else computed again from the pixels. Kept per level: the view is kept for the image's other pairs."""
        if level in self._at_levels:
            return self._at_levels[level]
        diff = self._full_diff if diff is None else diff
        shape = None if diff is None else _silhouette(self.rgb, diff, level)
        view = None if shape is None else FineView(scale=self.scale, rgb=self.rgb, background=self.background, level=level,
                                                    product_diff=self.product_diff, **shape)
        self._at_levels[level] = view
        return view

    @functools.cached_property
    def _at_levels(self) -> "dict[float, FineView | None]":
        return {}

    @functools.cached_property
    def _full_diff(self) -> np.ndarray | None:
        if self.diff is not None:
            return self.diff
        found = _from_background(self.rgb)
        return None if found is None else found[1]


@dataclasses.dataclass
class PhotoView(_Colour):
    points: np.ndarray  # [k, 2] float32 x, y of ORB keypoints (decoded pixels)
    descriptors: np.ndarray  # [k, 32] uint8
    rgb: np.ndarray  # [h, w, 3] uint8


def photo_view(data: bytes) -> PhotoView | None:
    """ORB keypoints of one photo's bytes decoded at FINE_SIDE, or None when it is smaller than that or has too
    few keypoints to align (a plain scene)."""
    import cv2

    from curate.dedupe.features import decode_reduced

    rgb, _, _ = decode_reduced(data, FINE_SIDE)
    if min(rgb.shape[:2]) < FINE_SIDE:
        return None
    rgb = np.ascontiguousarray(rgb)
    keypoints, descriptors = cv2.ORB_create(nfeatures=PHOTO_FEATURES).detectAndCompute(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), None)
    if descriptors is None or len(keypoints) < PHOTO_MIN_INLIERS:
        return None
    return PhotoView(np.array([k.pt for k in keypoints], np.float32), descriptors, rgb)


def _photo_alignment(pa: PhotoView, pb: PhotoView) -> tuple[np.ndarray, np.ndarray, int, int, float] | None:
    """(b warped onto a, the overlap mask eroded by PHOTO_EDGE, its area, RANSAC inliers, the overlap's share of
    the smaller image), or None when the two photos cannot be aligned."""
    import cv2

    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(pa.descriptors, pb.descriptors)
    if len(matches) < PHOTO_MIN_INLIERS:
        return None
    dst = pa.points[[m.queryIdx for m in matches]]
    src = pb.points[[m.trainIdx for m in matches]]
    to_a, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=PHOTO_REPROJECTION,
                                                maxIters=2000, confidence=0.995)
    if to_a is None or int(inliers.sum()) < PHOTO_MIN_INLIERS:
        return None
    scale = float(np.hypot(to_a[0, 0], to_a[1, 0]))
    if not 0.4 <= scale <= 2.5:  # no resize or crop of a copy does this: a coincidental fit
        return None
    h, w = pa.rgb.shape[:2]
    warped = cv2.warpAffine(pb.rgb, to_a, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    overlap = cv2.warpAffine(np.ones(pb.rgb.shape[:2], np.uint8), to_a, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    overlap = cv2.erode(overlap, np.ones((2 * PHOTO_EDGE + 1, 2 * PHOTO_EDGE + 1), np.uint8))
    area = cv2.countNonZero(overlap)
    if area < 0.25 * h * w:
        return None
    # the smaller image's area in a's pixels, each side less the eroded rim
    hb, wb = (scale * n - 2 * PHOTO_EDGE for n in pb.rgb.shape[:2])
    smaller = min((h - 2 * PHOTO_EDGE) * (w - 2 * PHOTO_EDGE), max(hb, 1.0) * max(wb, 1.0))
    return warped, overlap, area, int(inliers.sum()), area / smaller


def _photo_hue(pa: PhotoView, warped: np.ndarray, overlap: np.ndarray, area: int) -> float:
    """Share of the overlap whose hue turned by more than PHOTO_HUE_TURN from a to b warped onto it."""
    import cv2

    return _turned(pa.hsv, cv2.cvtColor(warped, cv2.COLOR_RGB2HSV_FULL), PHOTO_HUE_TURN, overlap) / area


def compare_photos(pa: PhotoView, pb: PhotoView) -> float | None:
    """Share of the two photos' overlap whose hue turned (both saturated, after a 3x3 opening), with b aligned
    onto a; None when they cannot be aligned."""
    aligned = _photo_alignment(pa, pb)
    if aligned is None:
        return None
    warped, overlap, area, _, _ = aligned
    return _photo_hue(pa, warped, overlap, area)


def rescue_photos(pa: PhotoView, pb: PhotoView, thresholds: "Thresholds") -> tuple[float, float, float, float, float, float] | None:
    """(hue-turned share, tone and colour shift after one global tone curve, share of changed values, inliers,
    coverage of the smaller image) of two aligned photos: what joins a copy the thumbnails refused; None when they
    cannot be aligned well enough to join anything (under RESCUE_INLIERS inliers or RESCUE_COVERAGE coverage)."""
    aligned = _photo_alignment(pa, pb)
    if aligned is None or aligned[3] < RESCUE_INLIERS or aligned[4] < RESCUE_COVERAGE:
        return None
    warped, overlap, area, inliers, coverage = aligned
    tone, shift, far = _curve_fit_pixels(pa.rgb, warped, overlap, thresholds)
    return _photo_hue(pa, warped, overlap, area), tone, shift, far, float(inliers), coverage


def _product_diff(counts: np.ndarray, quantile: float) -> int:
    """The product's difference from the background at ``quantile`` of its pixels (``counts``: their histogram
    above FOREGROUND)."""
    from curate.dedupe.features import FOREGROUND

    return FOREGROUND + 1 + int(np.searchsorted(np.cumsum(counts), counts.sum() * quantile))


def _level(counts: np.ndarray, quantile: float) -> float:
    """The silhouette's edge level: half-way between the background and the product's colour at ``quantile`` of
    its pixels' difference from it (``counts``: their histogram above FOREGROUND). A darkening or contrast edit
    scales both, so that edge stays where it was (a fixed threshold slides along soft edges); a brightening that
    clips the background at white does not (:func:`_brightened_pair`)."""
    from curate.dedupe.features import FOREGROUND

    return max(FOREGROUND, 0.5 * _product_diff(counts, quantile))


def _from_background(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(the plain background's colour, each pixel's largest channel difference from it, the histogram of those
    differences above FOREGROUND), or None without a plain background or anything on it."""
    import cv2

    from curate.dedupe.features import FOREGROUND, border_background

    bg = border_background(rgb)
    if bg is None:
        return None
    r, g, b = cv2.split(cv2.absdiff(rgb, (float(bg[0]), float(bg[1]), float(bg[2]), 0.0)))
    diff = cv2.max(cv2.max(r, g), b)
    counts = cv2.calcHist([diff], [0], None, [256], [0, 256]).ravel()[FOREGROUND + 1:]
    return None if not counts.sum() else (bg, diff, counts)


def fine_view(data: bytes) -> FineView | None:
    """The look of one image's bytes, or None when it is not a product on a uniform background or its short
    side is under FINE_MIN_SIDE."""
    from curate.dedupe.features import decode_reduced

    rgb, width, height = decode_reduced(data, FINE_SIDE)
    if min(rgb.shape[:2]) < FINE_MIN_SIDE:  # a smaller file has no finer look to give than its thumbnail's
        return None
    rgb = np.ascontiguousarray(rgb)
    found = _from_background(rgb)
    if found is None:
        return None
    bg, diff, counts = found
    # the level at the product's typical (median) colour; a light region of it (a pale colour block, an emblem)
    # may lie under that level in a brightened copy and over it in the original, so the look can also take the
    # silhouette at a lower level (FineView.light), which keeps such regions in both
    median = _level(counts, 0.5)
    shape = _silhouette(rgb, diff, median)
    if shape is None:
        return None
    light = _level(counts, LIGHT_QUANTILE)
    return FineView(scale=max(rgb.shape[:2]) / max(width, height), rgb=rgb, background=np.asarray(bg, np.uint8),
                    diff=diff if light < median else None, light_level=light, level=median,
                    product_diff=float(_product_diff(counts, 0.5)), **shape)


def _silhouette(rgb: np.ndarray, diff: np.ndarray, level: float) -> dict | None:
    """FineView's box, touch, points, distance, origin, content and simple for the content above ``level``, or None
    when there is none or it is a scene."""
    import cv2

    from curate.dedupe.features import components, content_components

    n, labels, stats = components((diff > level).view(np.uint8))
    if n <= 1:
        return None
    kept = np.flatnonzero(content_components(stats[1:], rgb.shape)) + 1
    if len(kept) == 1:  # the usual case: one comparison instead of a gather over the label image
        content = cv2.compare(labels, float(kept[0]), cv2.CMP_EQ) // 255
    else:
        keep = np.zeros(n, np.uint8)
        keep[kept] = 1
        content = keep[labels]
    rows = np.flatnonzero(cv2.reduce(content, 1, cv2.REDUCE_MAX).ravel())
    cols = np.flatnonzero(cv2.reduce(content, 0, cv2.REDUCE_MAX).ravel())
    if len(rows) < 4 or len(cols) < 4:
        return None
    h, w = content.shape
    box = np.array([rows[0], rows[-1] + 1, cols[0], cols[-1] + 1], np.float32)
    touch = np.array([box[0] <= 1, box[1] >= h - 1, box[2] <= 1, box[3] >= w - 1])
    if touch.sum() >= SCENE_SIDES:  # content through every side of the frame is a scene, not a product on a background
        return None
    boundary = cv2.countNonZero(cv2.subtract(content, cv2.erode(content, np.ones((3, 3), np.uint8))))
    side = max(3, 2 * int(CLOSING * min(h, w) / 2) + 1)  # the odd size at or under it: the closing stays centred
    closed = cv2.morphologyEx(content, cv2.MORPH_CLOSE, np.ones((side, side), np.uint8))
    external, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    simple = sum(len(c) for c in external) / max(boundary, 1)
    # every edge of the closed silhouette, holes too: whether a V neck or a gap joins the background through a
    # channel a pixel wide can differ between two copies, its edges do not
    edges, _ = cv2.findContours(closed, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    outline = np.zeros_like(content)
    cv2.drawContours(outline, edges, -1, 1, 1)
    outline[:2], outline[-2:], outline[:, :2], outline[:, -2:] = 0, 0, 0, 0  # a cut by the frame is not an outline
    points = np.concatenate([c.reshape(-1, 2) for c in edges]).astype(np.float32)  # x, y in order along each edge
    points = points[(points[:, 0] >= 2) & (points[:, 0] < w - 2) & (points[:, 1] >= 2) & (points[:, 1] < h - 2)]
    everywhere = points
    if len(points) > MAX_POINTS:
        points = points[np.linspace(0, len(points) - 1, MAX_POINTS).astype(np.int64)]
    if not len(points):
        return None
    # the distance transform of the outline's neighbourhood only: beyond _FAR + 1 pixels of it every distance
    # is capped anyway, and the border value that _sample replicates out there is already past the cap
    x0, y0 = (max(0, int(v) - int(_FAR) - 1) for v in everywhere.min(axis=0))
    x1, y1 = (int(v) + int(_FAR) + 2 for v in everywhere.max(axis=0))
    distance = cv2.distanceTransform(1 - outline[y0:y1, x0:x1], cv2.DIST_L2, 3)
    return dict(box=box, touch=touch, points=points, distance=distance, origin=np.array([x0, y0], np.float32),
                content=content, simple=simple)


def _sample(view: FineView, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances to ``view``'s outline at points of its frame, bilinear (the outline's position is the
    measurement), and whether each point is inside the frame, off its margin."""
    import cv2

    h, w = view.shape
    inside = (x >= FRAME_MARGIN) & (x <= w - 1 - FRAME_MARGIN) & (y >= FRAME_MARGIN) & (y <= h - 1 - FRAME_MARGIN)
    values = cv2.remap(view.distance, (x - view.origin[0]).astype(np.float32), (y - view.origin[1]).astype(np.float32),
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return values, inside


def _chamfer(fa: FineView, fb: FineView, s: np.ndarray, tx: np.ndarray, ty: np.ndarray,
             step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """For candidate transforms x_a = s * x_b + t (arrays of one length): (mean capped outline distance, share
    of outline points farther than the tolerance), both directions averaged, in a's pixels. ``step``: every
    step-th outline point only (ranking many candidates)."""
    s, tx, ty = s[:, None], tx[:, None], ty[:, None]
    pa, pb = fa.points[::step], fb.points[::step]
    da, ia = _sample(fa, pb[None, :, 0] * s + tx, pb[None, :, 1] * s + ty)
    db, ib = _sample(fb, (pa[None, :, 0] - tx) / s, (pa[None, :, 1] - ty) / s)
    db = db * s
    tol = OUTLINE_TOLERANCE * np.maximum(1.0, s)  # an upsampled small copy's outline is as blurred as it is enlarged
    na, nb = np.maximum(ia.sum(axis=1), 1), np.maximum(ib.sum(axis=1), 1)
    mean = 0.5 * ((np.minimum(da, _FAR) * ia).sum(axis=1) / na + (np.minimum(db, _FAR) * ib).sum(axis=1) / nb)
    far = 0.5 * (((da > tol) & ia).sum(axis=1) / na + ((db > tol) & ib).sum(axis=1) / nb)
    return mean, far


def _offsets(a0: float, a1: float, b0: float, b1: float, free: tuple[bool, bool], size_a: int, size_b: int, s: float) -> list[float]:
    """Translations along one axis taking b's pixels (scaled by s) to a's: the content box's free sides and its
    centre, the frame's two ends (a resize keeps the frame; a crop from one side keeps its other end), and
    when the frame cuts the content on both images' sides along this axis (a sleeve through the frame) every
    offset a crop could have made between the frame's ends, 2 pixels apart."""
    out = [(a0 + a1) / 2 - s * (b0 + b1) / 2, 0.0, size_a - s * size_b]
    if free[0]:
        out.append(a0 - s * b0)
    if free[1]:
        out.append(a1 - s * b1)
    if not (free[0] or free[1]):
        lo, hi = sorted((0.0, size_a - s * size_b))
        out.extend(np.arange(lo - 2.0, hi + 2.0, 2.0).tolist())
    return out


def _candidates(fa: FineView, fb: FineView) -> np.ndarray:
    """[k, 3] (s, tx, ty) taking b's pixels to a's."""
    ba, bb = fa.box, fb.box
    free = ~(fa.touch | fb.touch)
    scales = {fa.scale / fb.scale, fa.shape[1] / fb.shape[1], fa.shape[0] / fb.shape[0]}
    if free[0] and free[1]:
        scales.add(float((ba[1] - ba[0]) / (bb[1] - bb[0])))
    if free[2] and free[3]:
        scales.add(float((ba[3] - ba[2]) / (bb[3] - bb[2])))
    elif not (free[0] and free[1]):
        # framed tight (no axis with both sides free): no content box gives the scale of a crop then resize, which
        # lies between the file-pixel ratio (a crop) and the frame's (a resize): the frame's, less the share cut
        for ratio in (fa.shape[1] / fb.shape[1], fa.shape[0] / fb.shape[0]):
            scales.update(float(ratio * (1 - cut)) for cut in FRAMED_CROPS)
    out = []
    for s in scales:
        tys = _offsets(ba[0], ba[1], bb[0], bb[1], (bool(free[0]), bool(free[1])), fa.shape[0], fb.shape[0], s)
        txs = _offsets(ba[2], ba[3], bb[2], bb[3], (bool(free[2]), bool(free[3])), fa.shape[1], fb.shape[1], s)
        out.extend((s, tx, ty) for ty in tys for tx in txs)
    return np.asarray(out, np.float32)


def _aligned(fa: FineView, fb: FineView, s: float, tx: float, ty: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a's rgb over its content box, b's rgb mapped onto it by (s, tx, ty) (nearest), the product's core there:
    inside both contents, eroded away from their edges, where a pixel of misalignment mixes in background)."""
    import cv2

    top, bottom, left, right = (int(v) for v in fa.box)
    h, w = bottom - top, right - left
    # a's box pixel (u, v) is a's pixel (u + left, v + top), which is b's pixel ((u + left - tx) / s, ...)
    to_b = np.array([[1 / s, 0, (left - tx) / s], [0, 1 / s, (top - ty) / s]], np.float32)
    flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    rgb_b = cv2.warpAffine(fb.rgb, to_b, (w, h), flags=flags, borderValue=(0, 0, 0))
    content_b = cv2.warpAffine(fb.content, to_b, (w, h), flags=flags, borderValue=0)
    core = cv2.erode(cv2.bitwise_and(fa.content[top:bottom, left:right], content_b), np.ones((5, 5), np.uint8))
    return fa.rgb[top:bottom, left:right], rgb_b, core


def _hue_turned(fa: FineView, hsv_b: np.ndarray, core: np.ndarray) -> float:
    """Share of a's product pixels (the aligned core, both saturated) whose hue b turned by more than HUE_TURN."""
    import cv2

    top, bottom, left, right = (int(v) for v in fa.box)
    turned = _turned(fa.hsv[top:bottom, left:right], hsv_b, HUE_TURN, core)
    return turned / max(cv2.countNonZero(core), 1)


@dataclasses.dataclass
class EdgeView:
    """One image at EDGE_SIDE for :func:`edge_offset`: its product mask as a ramp (0 background, 1 product, the
    anti-aliased edge in between), the ramp's gradient direction, and its edge points in order along each contour."""
    scale: float  # decoded pixels per file pixel
    mask: np.ndarray  # [h, w] float32
    points: np.ndarray  # [k, 2] float32 x, y
    normals: np.ndarray  # [k, 2] float32 unit, towards the product
    contour: np.ndarray  # [k] int: which contour each point is on


def edge_view(data: bytes, fraction: float | None = None) -> EdgeView | None:
    """The edges of one product image's bytes, or None without a plain background or a product: at the silhouette's
    median level, or at ``fraction`` of the product's median difference (JOINT_LEVELS)."""
    import cv2

    from curate.dedupe.features import decode_reduced

    rgb, width, height = decode_reduced(data, EDGE_SIDE)
    found = _from_background(np.ascontiguousarray(rgb))
    if found is None:
        return None
    _, diff, counts = found
    level = max(_level(counts, 0.5), 1.0) if fraction is None else _fraction_level(_product_diff(counts, 0.5), fraction)
    # 0 at half the level, 1 at 1.5 times it: the ramp's half-way point is the silhouette's edge level; computed for
    # the 256 differences once and looked up (the same float32 values, without arithmetic over every pixel)
    ramp = np.clip((np.arange(256, dtype=np.float32) - 0.5 * level) / level, 0.0, 1.0)
    mask = cv2.LUT(diff, ramp)
    contours, _ = cv2.findContours((mask >= 0.5).view(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    contours = [c for c in contours if len(c) >= 2 * EDGE_MIN_POINTS]
    if not contours:
        return None
    h, w = mask.shape
    # the normals are read only at contour points: blur and differentiate the contours' box alone, with a margin
    # wider than the Gaussian's and Sobel's reach so every value read is the one the whole image would give
    x0, y0, x1, y1 = w, h, 0, 0
    for c in contours:
        bx, by, bw, bh = cv2.boundingRect(c)
        x0, y0, x1, y1 = min(x0, bx), min(y0, by), max(x1, bx + bw), max(y1, by + bh)
    x0, y0, x1, y1 = max(x0 - EDGE_BOX_MARGIN, 0), max(y0 - EDGE_BOX_MARGIN, 0), min(x1 + EDGE_BOX_MARGIN, w), min(y1 + EDGE_BOX_MARGIN, h)
    smooth = cv2.GaussianBlur(mask[y0:y1, x0:x1], (0, 0), 1.5)
    gx, gy = cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    points, normals, which = [], [], []
    for k, c in enumerate(contours):
        xy = c.reshape(-1, 2)[::2]
        keep = (xy[:, 0] >= EDGE_FRAME) & (xy[:, 0] < w - EDGE_FRAME) & (xy[:, 1] >= EDGE_FRAME) & (xy[:, 1] < h - EDGE_FRAME)
        xy = xy[keep]
        n = np.stack([gx[xy[:, 1] - y0, xy[:, 0] - x0], gy[xy[:, 1] - y0, xy[:, 0] - x0]], axis=1)
        length = np.linalg.norm(n, axis=1)
        xy, n, length = xy[length > 1e-3], n[length > 1e-3], length[length > 1e-3]
        points.append(xy.astype(np.float32))
        normals.append((n / length[:, None]).astype(np.float32))
        which.append(np.full(len(xy), k))
    if not points or sum(map(len, points)) < EDGE_MIN_POINTS:
        return None
    return EdgeView(scale=max(h, w) / max(width, height), mask=mask, points=np.concatenate(points),
                    normals=np.concatenate(normals), contour=np.concatenate(which))


def edge_offset(ea: EdgeView, eb: EdgeView, fa: FineView, fb: FineView, best: np.ndarray) -> float:
    """The largest mean offset (pixels at a's EDGE_SIDE decode) of b's edges from a's over a stretch of EDGE_WINDOW
    of a's edge points, after the similarity found at FINE_SIDE (``best``: b's view pixels to a's) is refined and one
    uniform offset along the normals is taken out."""
    import cv2

    s, tx, ty = (float(v) for v in best)
    # b's edge pixels to a's: through both fine views (view = file * scale), then up to a's edge decode
    scale = s * fb.scale / fa.scale * ea.scale / eb.scale
    shift = np.array([tx, ty]) / fa.scale * ea.scale
    offsets = np.arange(-EDGE_REACH, EDGE_REACH + EDGE_STEP / 2, EDGE_STEP, dtype=np.float32)
    p, n = ea.points.astype(np.float64), ea.normals.astype(np.float64)
    q = (p[:, None, :] + offsets[None, :, None] * n[:, None, :]).astype(np.float32)  # samples along each normal
    along_a = cv2.remap(ea.mask, q[..., 0], q[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    centre = p.mean(axis=0)
    # offset_i ~ n_i . (ds (p_i - centre) + dt) + uniform: a residual scale and shift, and a tone edit's ramp shift
    design = np.stack([(n * (p - centre)).sum(axis=1), n[:, 0], n[:, 1], np.ones(len(p))], axis=1)

    def measured(scale: float, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        in_b = (q - shift.astype(np.float32)) / np.float32(scale)
        along_b = cv2.remap(eb.mask, in_b[..., 0], in_b[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # how far b's product reaches out of a's along the normal: the area between the two ramps
        offset = (along_b - along_a).sum(axis=1) * EDGE_STEP
        at_b = (p - shift) / scale
        h, w = eb.mask.shape
        inside = ((at_b[:, 0] >= EDGE_FRAME) & (at_b[:, 0] < w - EDGE_FRAME) & (at_b[:, 1] >= EDGE_FRAME)
                  & (at_b[:, 1] < h - EDGE_FRAME) & (np.abs(offset) < EDGE_REACH - 0.5))
        return offset, inside

    def fit(offset: np.ndarray, inside: np.ndarray) -> np.ndarray | None:
        if inside.sum() < EDGE_MIN_POINTS:
            return None
        typical = np.median(offset[inside])
        used = inside & (np.abs(offset - typical) < 1.0)  # a twin's moved stretch does not steer the fit
        if used.sum() < EDGE_MIN_POINTS:
            return None
        return np.linalg.lstsq(design[used], offset[used], rcond=None)[0]

    for _ in range(3):
        offset, inside = measured(scale, shift)
        sol = fit(offset, inside)
        if sol is None:
            return 0.0
        # b's mapped points sit at -(ds (p - centre) + dt) from where they belong: move them back
        scale, shift = scale * (1 + sol[0]), shift * (1 + sol[0]) + sol[1:3] - sol[0] * centre
    offset, inside = measured(scale, shift)
    sol = fit(offset, inside)
    if sol is None:
        return 0.0
    residual = np.clip(offset - design @ sol, -EDGE_REACH, EDGE_REACH)
    window = max(5, int(EDGE_WINDOW * inside.sum()))
    worst = 0.0
    for k in np.unique(ea.contour[inside]):
        run = residual[inside & (ea.contour == k)]
        if len(run) >= window:
            worst = max(worst, float(np.abs(np.convolve(run, np.full(window, 1.0 / window), mode="valid")).max()))
    return worst


def _median_of_small(values: np.ndarray, low: int, high: int) -> float:
    """``np.median`` of integers in [low, high], from their histogram: the same value (the middle one, or the
    mean of the two middle ones) without the partition of tens of thousands of pixels."""
    counts = np.cumsum(np.bincount(values.astype(np.int64) - low, minlength=high - low + 1))
    n = int(counts[-1])
    middle = np.searchsorted(counts, [(n - 1) // 2 + 1, n // 2 + 1])  # the values holding the middle ranks
    return (float(middle[0]) + float(middle[1])) / 2.0 + low


def _turned_region(fa: FineView, hsv_b: np.ndarray, core: np.ndarray, saturation_jump: float) -> float:
    """Share of a's aligned core covered by the largest connected region whose hue b turned by more than
    REGION_TURN against the median turn (pixels saturated and bright in both), or whose saturation b moved by more
    than ``saturation_jump`` (of 255) against the median move (pixels bright in both, saturated in one only: a
    nearly grey print given a colour, or a colour made grey, whose hue is noise on the grey side); a 3x3 opening
    first, as _turned."""
    import cv2

    from curate.dedupe.features import components

    top, bottom, left, right = (int(v) for v in fa.box)
    hsv_a = fa.hsv[top:bottom, left:right]
    bright = (cv2.min(hsv_a[..., 2], hsv_b[..., 2]) >= HUE_VALUE) & (core > 0)
    least_saturated = cv2.min(hsv_a[..., 1], hsv_b[..., 1])
    judged = (least_saturated >= HUE_SATURATION) & bright
    off = np.zeros(judged.shape, bool)
    if judged.sum() >= 20:
        # signed turn in (-128, 128]: hue is circular, so the difference wraps
        turn = (hsv_b[..., 0].astype(np.int16) - hsv_a[..., 0].astype(np.int16) + 128) % 256 - 128
        typical = _median_of_small(turn[judged], -128, 127)
        off |= (np.abs(turn - typical) > REGION_TURN) & judged
    if np.isfinite(saturation_jump):
        # a tone edit moves saturation by one curve (gamma and contrast a little, more where a colour clips) and so
        # about alike across the product; a recoloured region moves it on its own
        # only where one side is too grey for the hue test to judge: where both are saturated, it already does
        one_grey = (cv2.max(hsv_a[..., 1], hsv_b[..., 1]) >= HUE_SATURATION) & (least_saturated < HUE_SATURATION) & bright
        if one_grey.sum() >= 20:
            moved = hsv_b[..., 1].astype(np.int16) - hsv_a[..., 1].astype(np.int16)
            off |= (np.abs(moved - _median_of_small(moved[bright], -255, 255)) > saturation_jump) & one_grey
    off = cv2.morphologyEx(off.view(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    if not off.any():
        return 0.0
    _, _, stats = components(off)
    return float(stats[1:, cv2.CC_STAT_AREA].max()) / max(cv2.countNonZero(core), 1)


def _curve_fit_pixels(rgb_a: np.ndarray, rgb_b: np.ndarray, where: np.ndarray, thresholds: "Thresholds",
                      extra: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, float, float]:
    """(tone, colour shift, share of values changed by more than PHOTO_FAR) of two aligned images' pixels under
    ``where`` after one global tone curve (verify's y = s * x**g + o within the same bounds, either direction),
    on FIT_PIXELS local means: the thumbnails' 16x16 fit repeated where a crop or a watermark moves a few cells'
    averages a lot. ``extra``: one colour per image that counts as a tenth of the points (a product's background)."""
    import cv2

    from curate.dedupe.verify import _chroma, _fit_merged_curve, unclipped

    # local means, as the thumbnails' cells are: single pixels carry JPEG noise and half-pixel misalignment
    # across texture, which the log distance magnifies in the dark
    box = (2 * FIT_BLUR + 1, 2 * FIT_BLUR + 1)
    rgb_a, rgb_b = cv2.blur(rgb_a, box), cv2.blur(rgb_b, box)
    core = cv2.erode(where, np.ones(box, np.uint8))
    ys, xs = np.nonzero(core)
    if len(ys) < 50:
        return float("inf"), float("inf"), 1.0
    pick = np.linspace(0, len(ys) - 1, min(FIT_PIXELS, len(ys))).astype(np.int64)
    a, b = rgb_a[ys[pick], xs[pick]].ravel(), rgb_b[ys[pick], xs[pick]].ravel()
    if extra is not None:
        ring = max(1, len(pick) // 10)
        a = np.concatenate([a, np.tile(extra[0].astype(np.uint8), ring)])
        b = np.concatenate([b, np.tile(extra[1].astype(np.uint8), ring)])
    # thousands of 8-bit values make a few hundred distinct (a, b) pairs: the curve is fitted on those, each
    # weighted by its count, and its values are read back for every sampled value
    value = np.arange(256, dtype=np.float32) / np.float32(255.0)
    code = a.astype(np.int64) * 256 + b
    counts = np.bincount(code, minlength=256 * 256)
    distinct = np.flatnonzero(counts)
    pair_of = np.zeros(256 * 256, np.int64)
    pair_of[distinct] = np.arange(len(distinct))
    pair_of = pair_of[code]
    best, changed = (float("inf"), float("inf")), 1.0
    for src, dst, dst_values in ((distinct >> 8, distinct & 255, b), (distinct & 255, distinct >> 8, a)):
        target = value[dst_values][None]
        free = unclipped(target)  # summed over every sampled value, as _fit_curve on them sums it
        sums = free.sum(axis=1), (free * target).sum(axis=1)
        tone, fitted = _fit_merged_curve(value[src][None], value[dst][None], thresholds, counts[distinct], sums)
        fitted = fitted[0][pair_of][None]
        if tone[0] < best[0]:  # and the colour left after the curve: a desaturated or slightly turned colourway
            best = (float(tone[0]), float(np.abs(_chroma(fitted) - _chroma(target)).sum()))
        # the changed share in the direction that explains more: values an edit clipped map back only one way
        if np.isfinite(tone[0]):
            changed = min(changed, float((np.abs(fitted - target) > PHOTO_FAR).mean()))
    return (*best, changed)


def _tone_fit(fa: FineView, fb: FineView, rgb_a: np.ndarray, rgb_b: np.ndarray, core: np.ndarray,
              thresholds: "Thresholds") -> tuple[float, float, float]:
    """(tone, colour shift, share of values changed) of the product's aligned pixels after one global tone curve,
    the background's colour included as a tenth of the points: an edit moves it with the product, a lightness
    colourway does not."""
    return _curve_fit_pixels(rgb_a, rgb_b, core, thresholds, (fa.background, fb.background))


def compare(fa: FineView, fb: FineView, thresholds: "Thresholds | None" = None,
            edges: "Callable[[float | None], tuple[EdgeView | None, EdgeView | None]] | None" = None) -> tuple | None:
    """(shape: share of outline points off the other's outline, colour: share of the product's pixels with a
    turned hue, tone and colour shift after one global tone curve, the share of values that curve leaves changed
    by more than PHOTO_FAR, the share of the largest region turned against the rest, the edge offset), or None
    when either silhouette is not simple enough to judge. The two colour measures are None for a file under
    FINE_SIDE, whose look is its outline and tone curve only; the measures after the first that refuses the pair
    (in the order outline, hue, region, tone curve) are None: not measured, since the pair is refused anyway. The edge offset (:func:`edge_offset`) is measured only
    when ``edges`` gives both images' edge views (it is called, with the level fraction the outlines agreed at or
    None for the median level, and so decodes them, only for a pair every other test let through); else it is None."""
    from curate.dedupe.verify import Thresholds

    thresholds = thresholds or Thresholds()
    measured = _compare(fa, fb, thresholds)
    if measured is None:
        return None
    *values, best, fraction = measured
    shape, hue, _, _, changed, region = values
    edge = None
    if (edges is not None and best is not None and np.isfinite(thresholds.fine_edge) and thresholds.fine_outline_holds(shape, hue, region)
            and changed <= thresholds.fine_far):
        ea, eb = edges(fraction)
        if ea is not None and eb is not None:
            if min(eb.mask.shape) > min(ea.mask.shape):  # offsets in the larger image's pixels: b to a inverted
                s, tx, ty = (float(v) for v in best)
                edge = edge_offset(eb, ea, fb, fa, np.array([1 / s, -tx / s, -ty / s]))
            else:
                edge = edge_offset(ea, eb, fa, fb, best)
    return (*values, edge)


def _compare(fa: FineView, fb: FineView, thresholds: "Thresholds") -> tuple | None:
    """compare's measures before the edges, the transform (s, tx, ty) that aligned the two (None when only their
    lower-level silhouettes agreed) and the level fraction of JOINT_LEVELS they agreed at (None: the median level)."""
    import cv2

    if not _judgeable(fa, fb):
        return None
    far, best = align(fa, fb)
    median_views = (fa, fb)
    # whether the edge test may judge the transform: not where only the lower-level silhouettes agreed (the edge views'
    # ramps are at the median level, where such a pair's edges are known to differ)
    edges_judge = far <= thresholds.fine_shape
    # the outlines disagree at the median level: a pale region may have crossed it in one copy only, so both are
    # taken again at the lower level, where it stays in (a near twin's moved sleeve moves at every level)
    la, lb = (fa.light, fb.light) if far > thresholds.fine_shape else (None, None)
    if la is not None and lb is not None and (la is not fa or lb is not fb) and _judgeable(la, lb):
        light_far, light_best = align(la, lb)
        if light_far < far:
            far, best, fa, fb = light_far, light_best, la, lb
    if far > thresholds.fine_shape:
        # still apart: a brightening that clipped the background at white moved the lighter one's edges inwards,
        # so the darker one is taken again at the level its ramp has where the lighter one's median level lies
        pair = _brightened_pair(*median_views)
        if pair is not None and _judgeable(*pair):
            bright_far, bright_best = align(*pair)
            if bright_far < far:
                # the edge test takes one uniform offset along the normals out, which is what the brightening moved
                far, best, (fa, fb), edges_judge = bright_far, bright_best, pair, True
    fraction = None
    # not for a file under FINE_SIDE: its colour is not measured, so its outline is all that tells a recoloured print
    # from its original (at the median level the recoloured emblem often crosses the level; tuning set `small` 190: two
    # print lookalikes' small copies joined their originals at a joint level, 75 -> 80 false pairs)
    measures_colour = min(*fa.rgb.shape[:2], *fb.rgb.shape[:2]) >= FINE_SIDE
    if thresholds.fine_joint_levels and measures_colour and thresholds.fine_shape < far <= JOINT_MAX_FAR:
        # still apart: both taken again at the same fractions of their products' colour (a trim or an emblem whose
        # colour lies near the half-way level crosses it in one copy and not in the other); the edge test then runs
        # on ramps at that level, so a near twin's moved seam still counts
        for joint in JOINT_LEVELS:
            la, lb = (f.at_level(_fraction_level(f.product_diff, joint)) for f in median_views)
            if la is None or lb is None or not _judgeable(la, lb):
                continue
            joint_far, joint_best = align(la, lb)
            # taken only where the outlines agree as a copy's do: each level tried is one more chance for a near twin
            # (framed, against a crop of the original: 0.0298 at 0.35 on the tests' long-sleeved top) to scrape under
            if joint_far < far and joint_far <= JOINT_SHAPE_SHARE * thresholds.fine_shape:
                far, best, fa, fb, edges_judge, fraction = joint_far, joint_best, la, lb, True, joint
    # a pair the outline refuses is refused whatever else is measured (every measure must hold, and the rescue's and
    # the edge test's further looks need the outline to hold): the rest is not measured, and so on down the tests
    # in the order of their cost, a refused hue before the region and the region before the tone curve
    unmeasured = (None, None, None)
    if far > thresholds.fine_shape:
        return (far, None, *unmeasured, None, None, fraction)
    rgb_a, rgb_b, core = _aligned(fa, fb, *map(float, best))
    if not measures_colour:
        # a file under FINE_SIDE (a thumbnail-sized copy) is judged on its outline and tone curve only: at its size a
        # colour boundary's JPEG-smeared chroma (half the resolution) reaches into the product's core, so the hue
        # tests refused 35 of 170 such copies of tuning set `small` 190; and its edges are too coarse for the larger
        # image's sub-pixel ramps. None: not measured (fine_outline_holds lets it through)
        return (far, None, *_tone_fit(fa, fb, rgb_a, rgb_b, core, thresholds), None, None, fraction)
    hsv_b = cv2.cvtColor(rgb_b, cv2.COLOR_RGB2HSV_FULL)  # once, for both hue tests
    hue = _hue_turned(fa, hsv_b, core)
    if hue > thresholds.fine_hue:
        return (far, hue, *unmeasured, None, None, fraction)
    region = _turned_region(fa, hsv_b, core, thresholds.fine_saturation_jump)
    if region > thresholds.fine_hue_region:
        return (far, hue, *unmeasured, region, None, fraction)
    return (far, hue, *_tone_fit(fa, fb, rgb_a, rgb_b, core, thresholds), region, best if edges_judge else None, fraction)


def _brightened_pair(fa: FineView, fb: FineView) -> tuple[FineView, FineView] | None:
    """The pair with its darker image's silhouette taken again at the level that matches the lighter one's, when
    the lighter one's background is white (None otherwise, or when the levels already match).

    The levels are half-way to each product's colour (:func:`_level`), which a brightening keeps only while it
    keeps the background: it multiplies every value by k and clips the white background at 255, so the lighter
    image's soft edges lose their outer part and its half-way level lies further in (a pixel or more on the
    tuning set `frame` 180's framed products, whose outline is mostly those edges). Under that model a pixel of
    value v in the darker image is k v in the lighter one, so a difference d from the darker one's background B_a
    is B_b - k (B_a - d) from the lighter one's; the lighter one's median level L_b is the darker one's
    B_a - (B_b - L_b) / k, with k the ratio of the two products' median values (a darkening keeps the levels, the
    background darkens with the product, and is left as it is)."""
    values = [float(f.background.mean()) - f.product_diff for f in (fa, fb)]
    if min(values) <= 0:
        return None
    dark, light = (fa, fb) if values[1] > values[0] else (fb, fa)
    k = max(values) / min(values)
    if k < BRIGHTENED_MIN or int(light.background.min()) < WHITE_CLIP:
        return None
    level = float(dark.background.mean()) - (float(light.background.mean()) - light.level) / k
    if level <= dark.level + 1 or level >= BRIGHTENED_MAX_LEVEL * dark.product_diff:
        return None
    again = dark.at_level(level)
    if again is None:
        return None
    return (again, fb) if dark is fa else (fa, again)


def _judgeable(fa: FineView, fb: FineView) -> bool:
    """Whether both silhouettes are simple enough (SIMPLE) and have outline points to be aligned at all."""
    return min(fa.simple, fb.simple) >= SIMPLE and len(fa.points) > 0 and len(fb.points) > 0


def _fraction_level(product_diff: float, fraction: float) -> float:
    """The edge level at ``fraction`` of a product's median difference from the background (JOINT_LEVELS), not
    under FOREGROUND."""
    from curate.dedupe.features import FOREGROUND

    return max(float(FOREGROUND), fraction * product_diff)


def align(fa: FineView, fb: FineView) -> tuple[float, np.ndarray]:
    """(share of outline points off the other's outline, (s, tx, ty)) for the best transform found."""
    c = _candidates(fa, fb)
    mean, _ = _chamfer(fa, fb, c[:, 0], c[:, 1], c[:, 2], step=RANK_STEP)  # rank on a sample of the outline
    best = c[int(np.argmin(mean))]
    for refine in _REFINE:  # coarse then fine grid around the best, on every outline point
        grid = np.stack([best[0] * (1 + refine[:, 0]), best[1] + refine[:, 1], best[2] + refine[:, 2]], axis=1)
        mean, far = _chamfer(fa, fb, grid[:, 0], grid[:, 1], grid[:, 2])
        k = int(np.lexsort((mean, far))[0])  # the transform that leaves fewest points off, then the closest
        best = grid[k]
    return float(far[k]), best


# the views the pairs of this process's tasks needed, most recently used last, by (photo look?, path); at most
# VIEW_CACHE of them (~2 MB each at 512x384), so one chained component of thousands of images cannot exhaust a
# worker's memory. Kept across tasks: a large component is cut into runs (TASK_PAIRS) that share images, and a
# worker is handed consecutive runs. A pool's workers end with the pool; in this process it is emptied when
# _by_component returns, so a file changed between two calls is never looked at from its old view.
_VIEWS: collections.OrderedDict[tuple[bool, str], object] = collections.OrderedDict()
_EDGES: collections.OrderedDict[str, EdgeView | None] = collections.OrderedDict()


def _kept(cache: collections.OrderedDict, key: object, path: str, build: Callable[[bytes], object], limit: int) -> object:
    """``cache[key]``: ``build`` of the file's bytes the first time (None when reading or building fails: a file
    hashed fine a moment ago that fails now refuses nothing), the ``limit`` most recently used kept."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    try:
        value = build(Path(path).read_bytes())
    except Exception:  # noqa: BLE001
        value = None
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)
    return value


def _edge_view(path: str, fraction: float | None = None) -> EdgeView | None:
    """The edge view of one file, kept per process (EDGE_CACHE of them): pairs of one image come one after another.
    One at a JOINT_LEVELS ``fraction`` is rare and built each time."""
    if fraction is not None:
        try:
            return edge_view(Path(path).read_bytes(), fraction)
        except Exception:  # noqa: BLE001 - as _kept: a file that fails now refuses nothing
            return None
    return _kept(_EDGES, path, path, edge_view, EDGE_CACHE)  # type: ignore[return-value]


def _compare_component(item: tuple[list[str], list[tuple[int, ...]]], photos: bool = False,
                       thresholds: "Thresholds | None" = None) -> list:
    """One connected component: its files and its pairs (local indices; a photo pair's third element, when true,
    asks for :func:`rescue_photos` instead of :func:`compare_photos`); ``photos``: the photo look instead of the
    product look (``thresholds``: the tone curve's bounds). Never raises (a pool task)."""
    from curate.dedupe.verify import Thresholds

    thresholds = thresholds or Thresholds()
    if photos:
        view_of = photo_view

        def judge(fa, fb, rescue=False):  # noqa: ANN001, ANN202
            return rescue_photos(fa, fb, thresholds) if rescue else compare_photos(fa, fb)
    else:
        view_of = fine_view

        def judge(fa, fb):  # noqa: ANN001, ANN202
            return compare(fa, fb, thresholds, lambda fraction: (_edge_view(files[a], fraction), _edge_view(files[b], fraction)))
    files, pairs = item
    out: list = [None] * len(pairs)
    for n in sorted(range(len(pairs)), key=pairs.__getitem__):  # pairs of one image one after another
        a, b, *mode = pairs[n]
        fa, fb = (_kept(_VIEWS, (photos, files[k]), files[k], view_of, VIEW_CACHE) for k in (a, b))
        try:
            out[n] = None if fa is None or fb is None else judge(fa, fb, *mode)
        except Exception:  # noqa: BLE001 - a pair that cannot be compared refuses nothing
            out[n] = None
    return out


def compare_pairs(paths: Sequence[str | Path], pairs: Sequence[tuple[int, int]], workers: int = 1,
                  thresholds: "Thresholds | None" = None) -> list[tuple | None]:
    """``compare`` for each (i, j) of ``pairs`` (indices into ``paths``), on ``workers`` processes."""
    return _by_component(paths, pairs, workers, functools.partial(_compare_component, thresholds=thresholds))


def compare_photo_pairs(paths: Sequence[str | Path], pairs: Sequence[tuple[int, int]], workers: int = 1) -> list[float | None]:
    """``compare_photos`` for each (i, j) of ``pairs`` (indices into ``paths``), on ``workers`` processes."""
    return look_at_photos(paths, pairs, (), workers)[0]


def look_at_photos(paths: Sequence[str | Path], pairs: Sequence[tuple[int, int]], rescue: Sequence[tuple[int, int]],
                   workers: int = 1, thresholds: "Thresholds | None" = None) -> tuple[list, list]:
    """``compare_photos`` for each (i, j) of ``pairs`` and ``rescue_photos`` for each of ``rescue`` (indices into
    ``paths``), in one pass on ``workers`` processes, so an image both need is decoded once."""
    both = [(i, j, False) for i, j in pairs] + [(i, j, True) for i, j in rescue]
    out = _by_component(paths, both, workers, functools.partial(_compare_component, photos=True, thresholds=thresholds))
    return out[:len(pairs)], out[len(pairs):]


def _by_component(paths: Sequence[str | Path], pairs: Sequence[tuple[int, ...]], workers: int, task) -> list:  # noqa: ANN001
    """``task`` over the connected components of ``pairs`` (a large one cut into runs of TASK_PAIRS), so a worker
    decodes the images one task needs once."""
    from curate.dedupe.core import UnionFind
    from curate.dedupe.engine import map_local

    if not pairs:
        return []
    nodes = sorted({k for p in pairs for k in p[:2]})  # a pair's third element, if any, is its mode, not an image
    local = {k: n for n, k in enumerate(nodes)}
    uf = UnionFind(len(nodes))
    for a, b, *_ in pairs:
        uf.union(local[a], local[b])
    by_root: dict[int, list[int]] = {}
    for n, (a, *_) in enumerate(pairs):
        by_root.setdefault(uf.find(local[a]), []).append(n)
    items, order = [], []
    for root, rows in by_root.items():
        # a large component (one cut in many products, chained) would keep one worker busy while the others idle:
        # it is cut into runs of TASK_PAIRS pairs, in image order so a run still shares most of its decodes
        rows = sorted(rows, key=lambda n: pairs[n][:2]) if len(rows) > TASK_PAIRS else rows
        for start in range(0, len(rows), TASK_PAIRS):
            run = rows[start:start + TASK_PAIRS]
            files = list(dict.fromkeys(k for n in run for k in pairs[n][:2]))
            index = {k: m for m, k in enumerate(files)}
            items.append(([str(paths[k]) for k in files], [(index[pairs[n][0]], index[pairs[n][1]], *pairs[n][2:]) for n in run]))
            order.append(run)
    try:
        results = map_local(task, items, workers, shard=4)
    finally:
        _VIEWS.clear()
        _EDGES.clear()
    out: list = [None] * len(pairs)
    for rows, res in zip(order, results):
        for n, r in zip(rows, res):
            out[n] = r
    return out
