"""What dedupe knows about one image: a 32x32 colour thumbnail of its content, from one reduced decode.

Everything the decision uses derives from this thumbnail, so hashing is one pure function per file
(:func:`thumbnail`), cheap to shard over processes or Ray, and cacheable as 3 KB per image.

*Content* is the product, not the canvas: when the border is a uniform background (catalogue photos on
white or grey), the thumbnail is taken of the bounding box of the foreground components, so a crop that
removes background, a padded copy or a resized copy all give the same thumbnail. Small text (watermarks)
is ignored when placing the box: only components of at least a tenth of the largest one, or tall ones
(a leg under a skirt the colour of the background), count.
Photos without a uniform border keep the whole frame; crops of those are handled by comparing against an
inner view (see :mod:`curate.dedupe.verify`).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from curate.imageio import SCALED_DECODE_FACTORS, decode_scaled, sha256_bytes

THUMB = 32  # thumbnail side: enough for the tone and shape checks, 3 KB per image
DETAIL = 8  # the detail map's side: high-frequency energy per cell of a 64x64 grey content image
DECODE_MIN_SIDE = 192  # JPEG draft decodes at 1/2, 1/4 or 1/8 scale but never below this side: fine
#                        stripes (period ~2 % of the width) survive it, and they do not survive 96
BORDER_TOLERANCE = 20  # max |channel - border median| for a border pixel to count as background
BORDER_UNIFORM = 0.6  # share of border pixels that must be background (a crop into the product on one side leaves ~75 %)
BOX_MIN_SIDE = 96  # the content box is searched on an image at least this small side (or the whole image)
INNER = 0.04  # the inner view drops this share of the frame on every side (the middle of 2-6 % crops)
FOREGROUND = 30  # max |channel - background| above which a pixel is foreground


@dataclasses.dataclass(frozen=True)
class Thumb:
    pixels: bytes  # THUMB x THUMB x 3 uint8, row-major
    detail: bytes  # 2 x DETAIL x DETAIL float16: mean |grey - its 3x3 mean| per cell, on the content at 64x64
    #                and on its inner view (the middle 92 %, see curate.dedupe.verify)
    width: int  # the file's full size (the keep policy and the same-pixels check use it)
    height: int
    boxed: bool  # True when the thumbnail is of a foreground box on a uniform background
    sha256: str  # of the file's bytes
    aspect: float  # width / height of what the thumbnail shows (the box, else the frame): the 32x32
    #                thumbnail squashes it away, and shorts and trousers differ by little else
    extra_hash: int = 0  # imagehash's 64-bit pHash or dHash of the whole frame when asked for (--hash), else 0

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def record(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, r: dict) -> "Thumb":  # type: ignore[type-arg]
        return cls(bytes(r["pixels"]), bytes(r["detail"]), int(r["width"]), int(r["height"]), bool(r["boxed"]), str(r["sha256"]),
                   float(r["aspect"]), int(r.get("extra_hash", 0) or 0))

    def array(self) -> np.ndarray:
        return np.frombuffer(self.pixels, np.uint8).reshape(THUMB, THUMB, 3)

    def detail_array(self) -> np.ndarray:
        return np.frombuffer(self.detail, np.float16).reshape(2, DETAIL, DETAIL).astype(np.float32)


def border_background(rgb: np.ndarray) -> np.ndarray | None:
    """The median colour of the 2-pixel border ring when the border is a uniform background, else None."""
    ring = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3), rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)])
    bg = np.median(ring, axis=0).astype(np.int16)
    if (np.abs(ring.astype(np.int16) - bg).max(axis=1) <= BORDER_TOLERANCE).mean() < BORDER_UNIFORM:
        return None
    return bg


def content_components(stats: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Which foreground components (rows of OpenCV's ``stats`` without the background's) are the content.
    A component counts if it is large next to the largest, or tall (a leg below a pale skirt, a sleeve):
    a line of watermark text is neither, and specks of JPEG noise are below 0.1 % of the frame."""
    import cv2

    area, height = stats[:, cv2.CC_STAT_AREA], stats[:, cv2.CC_STAT_HEIGHT]
    return (area >= 0.1 * area.max()) | ((height >= 0.1 * shape[0]) & (area >= 0.001 * shape[0] * shape[1]))


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """OpenCV's 8-connected (count, labels, stats) of a uint8 mask. The labels are 16-bit where they cannot run
    out (at most one component per 2x2 block): the same labels and stats at about half the time of 32-bit ones on
    one thread (0.6 against 1.1 ms at 512x384)."""
    import cv2

    h, w = mask.shape
    ltype = cv2.CV_16U if ((h + 1) // 2) * ((w + 1) // 2) < 65535 else cv2.CV_32S
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=ltype)
    return n, labels, stats


def _content_box(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the foreground on a uniform background, else None."""
    import cv2

    bg = border_background(rgb)
    if bg is None:
        return None
    fg = _foreground(rgb, bg)
    n, _, stats = components(fg)
    if n <= 1:
        return None
    stats = stats[1:]
    keep = stats[content_components(stats, fg.shape)]
    left, top = keep[:, cv2.CC_STAT_LEFT].min(), keep[:, cv2.CC_STAT_TOP].min()
    right = (keep[:, cv2.CC_STAT_LEFT] + keep[:, cv2.CC_STAT_WIDTH]).max()
    bottom = (keep[:, cv2.CC_STAT_TOP] + keep[:, cv2.CC_STAT_HEIGHT]).max()
    if (bottom - top) < 4 or (right - left) < 4:
        return None
    return int(top), int(bottom), int(left), int(right)


def _foreground(rgb: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """255 where some channel differs from the background colour ``bg`` by more than FOREGROUND, else 0: one
    absdiff and one inRange over the interleaved image (half the time of three channel planes and their maxima)."""
    import cv2

    near = cv2.inRange(cv2.absdiff(rgb, (float(bg[0]), float(bg[1]), float(bg[2]), 0.0)), (0, 0, 0), (FOREGROUND,) * 3)
    return cv2.bitwise_not(near)


def thumbnail_of(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, float]:
    """(32x32x3 thumbnail, 2x8x8 detail maps, boxed, aspect) of an RGB uint8 array of the image at ~192 px."""
    import cv2

    h, w = rgb.shape[:2]
    # the box is found at half the decode size (>= 96 px: a box edge within ~1 % of the frame); a smaller
    # image is searched as it is, or the box would jitter by several per cent between resized copies
    half = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA) if min(h, w) >= 2 * BOX_MIN_SIDE else rgb
    box = _content_box(half)
    if box is not None:
        top, bottom, left, right = box
        sy, sx = h / half.shape[0], w / half.shape[1]
        rgb = rgb[int(top * sy):max(int(top * sy) + 1, int(round(bottom * sy))), int(left * sx):max(int(left * sx) + 1, int(round(right * sx)))]
    thumb = cv2.resize(rgb, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    ch, cw = grey.shape
    dy, dx = int(round(INNER * ch)), int(round(INNER * cw))
    inner = grey[dy:max(dy + 1, ch - dy), dx:max(dx + 1, cw - dx)]
    detail = np.stack([_detail(grey), _detail(inner)])
    return thumb, detail.astype(np.float16), box is not None, cw / ch


def _detail(grey: np.ndarray) -> np.ndarray:
    """Mean |grey - its 3x3 mean| per cell of an 8x8 grid over the image resampled to 64x64."""
    import cv2

    g = cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    high = np.abs(g - cv2.blur(g, (3, 3), borderType=cv2.BORDER_REFLECT))
    return cv2.resize(high, (DETAIL, DETAIL), interpolation=cv2.INTER_AREA)  # exact 8x8 block means


EXTRA_HASHES = ("phash", "dhash")  # imagehash's, for `curate dedupe --hash` (the library imagededup and most scripts use)


def imagehash_of(rgb: np.ndarray, kind: str) -> int:
    """imagehash's 64-bit pHash / dHash of an RGB array, as an unsigned int (bit order of its hex string).
    It is taken of the >= 192 px decode, not the full-size file: both hashes first reduce the image to 32x32
    (pHash) or 9x8 (dHash) grey, so the reduced decode changes a bit only where a cell sits on a rounding edge."""
    try:
        import imagehash
    except ImportError as exc:
        raise RuntimeError("--hash phash|dhash needs imagehash: pip install 'tryon-bench[hashes]'") from exc
    if kind not in EXTRA_HASHES:
        raise ValueError(f"unknown hash {kind!r}; valid: {', '.join(EXTRA_HASHES)}")
    h = (imagehash.phash if kind == "phash" else imagehash.dhash)(Image.fromarray(rgb))
    return int(str(h), 16)


def decode_reduced(data: bytes, min_side: int) -> tuple[np.ndarray, int, int]:
    """(RGB array, file width, file height): decoded once at reduced scale (libjpeg's scaled IDCT, as PIL's draft
    mode: the decoder skips what the result does not need) to the smallest size whose short side is at least
    ``min_side``; formats without scaled decoding (PNG, WebP) are reduced after decoding, before any pixel work."""
    import cv2

    try:
        with Image.open(io.BytesIO(data)) as im:  # header only: the size, and a clear error for non-images
            width, height = im.size
    except UnidentifiedImageError:  # PIL's message names the in-memory buffer's address, not the file
        raise UnidentifiedImageError("not a recognised image format") from None
    factor = max((k for k in SCALED_DECODE_FACTORS if min(width, height) / k >= min_side), default=1)
    rgb = decode_scaled(data, factor)
    if rgb is None:  # a format OpenCV does not read: PIL decodes it
        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
    reduce = min(rgb.shape[:2]) / min_side
    if reduce >= 2:
        rgb = cv2.resize(rgb, (int(rgb.shape[1] / reduce), int(rgb.shape[0] / reduce)), interpolation=cv2.INTER_AREA)
    return rgb, width, height


def thumbnail(path: str | Path, extra: str | None = None) -> Thumb:
    """Read the file once; decode once at reduced scale (libjpeg's scaled IDCT, as PIL's draft mode: the
    decoder skips what a 192 px image does not need); one sha256 of the bytes for exact duplicates.
    ``extra``: also imagehash's ``phash`` or ``dhash`` of the decode (``Thumb.extra_hash``)."""
    data = Path(path).read_bytes()
    rgb, width, height = decode_reduced(data, DECODE_MIN_SIDE)
    thumb, detail, boxed, aspect = thumbnail_of(rgb)
    return Thumb(thumb.tobytes(), detail.tobytes(), width, height, boxed, sha256_bytes(data), aspect,
                 imagehash_of(rgb, extra) if extra else 0)
