"""A near-duplicate benchmark set with ground truth: catalogue-like product photos and real photos.

Bases are distinct images: procedurally drawn products on white (every one its own cut: body, sleeve, hem,
neckline and leg parameters drawn continuously; its own pattern, print and colours) plus every real
person/product photo in shared/data/real. Many bases come in colourways (the same cut, pattern and shading
in another colour: a different product that a grey hash merges). Some images get duplicates: an exact
byte copy or one transformed copy (re-encode, resize, small crop, brightness, small watermark).

Ground truth is written as ``truth.csv`` (file, origin, transform, colourway_of): two files are duplicates
iff they share ``origin``. Generation is deterministic for a (n, seed) and parallel over bases.

Colourways differ by a hue turn of >= 40 degrees or a lightness change of >= 35 %: the brightness
transform (x0.82-1.18) is itself a lightness change of up to 18 %, so two greys closer than that cannot be
told from a brightness-edited copy by any image measure; the set does not ask for it.
"""

from __future__ import annotations

import colorsys
import csv
import dataclasses
import io
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from curate.manifest import atomic_write_bytes

TRANSFORMS = ("exact", "reencode", "resize", "crop", "brightness", "watermark")
# the tuning-only variant (issue 16, ``variant="tonal"``): also contrast, gamma and chains of two edits, so
# the affine-intensity invariance is tuned here and bench/dedupe/reporting_set.py stays a pure report
TONAL_TRANSFORMS = (*TRANSFORMS, "contrast", "gamma", "combined")
# the tuning-only variant ``onmodel`` (issue 16): every real photo once, each garment recoloured alone (the
# photo's main saturated hue, not every saturated pixel) and copies weighted to crops and tone edits
ONMODEL_TRANSFORMS = ("crop", "brightness", "contrast", "reencode", "gamma", "crop", "combined", "resize", "watermark")
# the tuning-only variant ``wide`` (issue 16, eighth change): tone edits drawn continuously over 0.7-1.3 (wider
# than any set reported on), contrast about three pivots, brightness as a gain or an offset, 2-3 edits chained,
# up to three copies of one original, and the ``hard`` variant's lookalikes - so the tone path is tuned on
# more kinds of edit than one library's enhancer at four factors
WIDE_TRANSFORMS = ("contrast", "brightness", "combined", "gamma", "crop", "contrast", "combined", "reencode",
                   "watermark", "resize", "exact", "combined")
# the tuning-only variants ``twin`` (issue 16, tenth round: ``wide`` plus colour twins of solid products, the cut kept
# and the hue turned 10-25 degrees) and ``family`` (``twin`` plus 0-2 edited copies of every colourway and
# lookalike, so a false link merges two products' whole groups) use the same edits, and so does ``pale`` (issue 16,
# fourteenth round: ``family`` with nearly grey prints, whose recolour saturates them instead of turning a hue), and
# ``frame`` (fifteenth round: ``family`` with half the drawn products framed tight, cut by three sides of the frame) and
# ``small`` (fifteenth round: ``family`` with its resized copies at 0.22-0.4, many under the finer look's 256 px)
REAL_DIRS_EXCLUDED = ("parse", "mask", "garment-parse")
CANVAS = (512, 384)  # h, w the products are drawn at (VITON-like 3:4) ...
SAVED = (1024, 768)  # ... and saved at, upsampled: the resolution of VITON-HD and DressCode photos


@dataclasses.dataclass(frozen=True)
class Cut:
    kind: str
    params: tuple[float, ...]
    pattern: str
    pattern_params: tuple[float, ...]
    colours: tuple[tuple[float, float, float], ...]  # HSV in [0, 1]; colours[0] is the main colour


def _hsv(rng: np.random.Generator) -> tuple[float, float, float]:
    return float(rng.uniform()), float(rng.uniform(0.25, 1.0)), float(rng.uniform(0.2, 0.95))


def random_cut(rng: np.random.Generator) -> Cut:
    kind = str(rng.choice(["tee", "longsleeve", "tank", "jacket", "trousers", "shorts", "skirt", "dress"]))
    params = tuple(float(x) for x in rng.uniform(0, 1, 10))
    pattern = str(rng.choice(["solid", "solid", "stripes", "checks", "dots", "print", "colourblock"]))
    pattern_params = tuple(float(x) for x in rng.uniform(0, 1, 6))
    colours = (_hsv(rng), _hsv(rng), _hsv(rng))
    return Cut(kind, params, pattern, pattern_params, colours)


def colourways(cut: Cut, count: int, rng: np.random.Generator, shades: bool = False) -> list[Cut]:
    """``count`` other colourways of ``cut``, every two of them (and the original) clearly apart: hue turns
    spaced >= 40 degrees for a saturated colour, plus possibly one lighter/darker version; a grey or
    washed-out colour gets saturated versions of spaced hues instead. ``shades`` (tuning variant ``shade``):
    mild lighter/darker versions only, the colour's value times 0.55-0.8 or 1.25-1.6, each shade apart from the
    others by that much too (where the darker copy and the darker colourway meet)."""
    h, s, v = cut.colours[0]
    out: list[tuple[float, float, float]] = []
    if shades:
        value = v
        for _ in range(count):
            darker = value > 0.3 and (value > 0.6 or rng.uniform() < 0.5)
            value = float(np.clip(value * (rng.uniform(0.55, 0.8) if darker else rng.uniform(1.25, 1.6)), 0.05, 1.0))
            out.append((h, s, value))
        return [dataclasses.replace(cut, colours=(c, *cut.colours[1:])) for c in out]
    turn = 0.0
    lightness_done = False
    for _ in range(count):
        if s > 0.35 and not lightness_done and rng.uniform() < 0.3:
            lightness_done = True
            out.append((h, s, float(np.clip(v + (0.4 if v < 0.55 else -0.4), 0.05, 1.0))))
            continue
        turn += rng.uniform(40, 80) / 360
        out.append(((h + turn) % 1.0, s if s > 0.35 else 0.75, v if s > 0.35 else max(v, 0.45)))
    return [dataclasses.replace(cut, colours=(c, *cut.colours[1:])) for c in out]


def lookalikes(cut: Cut, count: int, rng: np.random.Generator, colour_twins: bool = False) -> list[Cut]:
    """``count`` other products that look almost like ``cut`` (tuning variant ``hard``): a near twin of a solid
    product (two shape parameters other than its placement moved by 0.06-0.2 of their range) or, for a printed one, the same product
    with only the emblem's colours turned (a small print recoloured). ``cut`` is made solid or printed first
    by the caller, so the base and its lookalikes share everything else. ``colour_twins`` (tuning variant
    ``twin``): half of a solid product's twins keep the shape and move the colour a little instead - a hue turn
    of 10-25 degrees either way with the saturation times 0.8-1.2, which no brightness, contrast or gamma edit
    makes (they move every channel by one curve) but which sits under the >= 40-degree colourways."""
    out: list[Cut] = []
    for _ in range(count):
        # a grey has no hue to turn (its twin is a shape twin); a twin that moves no pixel by more than 30 of
        # 255 is dropped by the caller like any invisible lookalike
        if colour_twins and cut.pattern != "print" and cut.colours[0][1] >= 0.3 and rng.uniform() < 0.5:
            h, s, v = cut.colours[0]
            turn = rng.uniform(10, 25) / 360 * rng.choice([-1, 1])
            out.append(dataclasses.replace(cut, colours=(((h + turn) % 1.0, float(np.clip(s * rng.uniform(0.8, 1.2), 0.25, 1.0)), v),
                                                         *cut.colours[1:])))
            continue
        if cut.pattern == "print":
            turn = rng.uniform(60, 180) / 360
            ring, bar = cut.colours[1], cut.colours[2]
            out.append(dataclasses.replace(cut, colours=(cut.colours[0], ((ring[0] + turn) % 1.0, max(ring[1], 0.5), ring[2]),
                                                         ((bar[0] + turn) % 1.0, max(bar[1], 0.5), bar[2]))))
        else:
            params = list(cut.params)
            # params[0] only places the garment on the canvas (a shifted copy, not another cut): never moved
            for k in 1 + rng.choice(len(params) - 1, 2, replace=False):
                step = rng.uniform(0.06, 0.2) * rng.choice([-1, 1])
                params[k] = float(np.clip(params[k] + step if 0 <= params[k] + step <= 1 else params[k] - step, 0, 1))
            out.append(dataclasses.replace(cut, params=tuple(params)))
    return out


def _rgb(hsv: tuple[float, float, float]) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(*hsv))  # type: ignore[return-value]


def _silhouette(cut: Cut, h: int, w: int) -> Image.Image:
    p = cut.params
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    cx = w / 2 + (p[0] - 0.5) * 0.06 * w
    gw = w * (0.34 + 0.2 * p[1])
    k = cut.kind
    if k in ("tee", "longsleeve", "tank", "jacket", "dress"):
        top = h * (0.1 + 0.1 * p[2])
        bottom = h * ((0.55 + 0.2 * p[3]) if k != "dress" else (0.38 + 0.1 * p[3]))
        shoulder = gw / 2 * (0.7 if k == "tank" else 1.0 + 0.1 * p[4])
        waist = gw / 2 * (0.85 + 0.3 * p[5])
        d.polygon([(cx - shoulder, top), (cx + shoulder, top), (cx + waist, bottom), (cx - waist, bottom)], fill=255)
        if k == "dress":
            hem = h * (0.7 + 0.22 * p[6])
            flare = waist * (1.1 + 0.9 * p[7])
            d.polygon([(cx - waist, bottom - 2), (cx + waist, bottom - 2), (cx + flare, hem), (cx - flare, hem)], fill=255)
        sleeve = {"tee": 0.12 + 0.15 * p[6], "longsleeve": 0.4 + 0.2 * p[6], "jacket": 0.45 + 0.15 * p[6], "dress": 0.1 * p[8]}.get(k, 0)
        if sleeve:
            angle = math.radians(25 + 40 * p[9])
            for s in (-1, 1):
                x0 = cx + s * shoulder
                reach = sleeve * h
                x1, y1 = x0 + s * reach * math.sin(angle), top + reach * math.cos(angle)
                width = 0.07 * h + 0.03 * h * p[7]
                d.polygon([(x0 - s * 2, top), (x1, y1), (x1 - s * width * math.cos(angle), y1 + width * math.sin(angle)),
                           (x0 - s * 2, top + 0.15 * h)], fill=255)
        neck_w, neck_d = (0.05 + 0.06 * p[8]) * w, (0.02 + 0.08 * p[9]) * h
        if k == "jacket" or p[5] > 0.6:  # V neck
            d.polygon([(cx - neck_w, top - 1), (cx + neck_w, top - 1), (cx, top + neck_d * 2)], fill=0)
        else:
            d.ellipse([cx - neck_w, top - neck_d, cx + neck_w, top + neck_d], fill=0)
        if k == "jacket":  # an open front shows a gap down the middle
            d.line([(cx, top), (cx, bottom)], fill=0, width=max(1, int(2 + 4 * p[4])))
    elif k == "skirt":
        top, hem = h * (0.15 + 0.1 * p[2]), h * (0.5 + 0.35 * p[3])
        waist, flare = gw * (0.3 + 0.1 * p[4]), gw * (0.4 + 0.5 * p[5])
        d.polygon([(cx - waist, top), (cx + waist, top), (cx + flare, hem), (cx - flare, hem)], fill=255)
    else:  # trousers / shorts: waistband and two legs
        top = h * (0.08 + 0.08 * p[2])
        bottom = h * ((0.8 + 0.15 * p[3]) if k == "trousers" else (0.4 + 0.15 * p[3]))
        waist = gw * (0.36 + 0.1 * p[4])
        band = h * (0.03 + 0.03 * p[5])
        d.rectangle([cx - waist, top, cx + waist, top + band], fill=255)
        gap, flare = w * (0.005 + 0.02 * p[6]), gw * (0.02 + 0.12 * p[7])
        for s in (-1, 1):
            d.polygon([(cx + s * waist, top + band), (cx + s * gap, top + band + 0.1 * h), (cx + s * (gap + 0.01 * w), bottom),
                       (cx + s * (waist + flare), bottom)], fill=255)
    return img


def draw_product(cut: Cut, size: tuple[int, int] = CANVAS) -> np.ndarray:
    h, w = size
    mask = np.asarray(_silhouette(cut, h, w), np.float32) / 255.0
    main, second, third = (np.array(_rgb(c), np.float32) for c in cut.colours)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    q = cut.pattern_params
    period = (0.02 + 0.08 * q[0]) * w
    alt = np.zeros((h, w), bool)
    if cut.pattern == "stripes":
        a = q[1] * math.pi
        alt = ((xs * math.cos(a) + ys * math.sin(a)) / period) % 1.0 < (0.2 + 0.5 * q[2])
    elif cut.pattern == "checks":
        alt = ((np.floor(xs / period) + np.floor(ys / period)) % 2) == 1
    elif cut.pattern == "dots":
        fx, fy = (xs / period) % 1.0 - 0.5, (ys / period) % 1.0 - 0.5
        alt = fx * fx + fy * fy < 0.05 + 0.1 * q[2]
    elif cut.pattern == "colourblock":  # the boundary inside the garment, so both blocks are large
        rows, cols = np.flatnonzero(mask.max(axis=1) > 0.5), np.flatnonzero(mask.max(axis=0) > 0.5)
        f = 0.3 + 0.4 * q[3]
        alt = ys > rows[0] + f * (rows[-1] - rows[0]) if q[4] > 0.5 else xs > cols[0] + f * (cols[-1] - cols[0])
    rgb = np.where(alt[..., None], second, main)
    if cut.pattern == "print":  # a printed emblem somewhere on the front
        cx, cy, r = w * (0.35 + 0.3 * q[3]), h * (0.3 + 0.3 * q[4]), w * (0.04 + 0.1 * q[5])
        ring = np.hypot(xs - cx, ys - cy)
        rgb = np.where(((ring < r) & (ring > r * (0.3 + 0.4 * q[2])))[..., None], second, rgb)
        rgb = np.where(((np.abs(xs - cx) < r * 0.15) & (np.abs(ys - cy) < r * 1.2))[..., None], third, rgb)
    # fabric shading: a soft light from one side and a few folds, the same for every colourway of the cut
    p = cut.params
    shade = 0.85 + 0.25 * (xs / w if p[9] > 0.5 else 1 - xs / w)
    for f in range(3):
        fx = w * (0.3 + 0.4 * ((p[f + 3] * 7.3) % 1.0))
        shade = shade - 0.12 * np.exp(-(((xs - fx) / (0.01 * w + 0.01 * w * f)) ** 2)) * (ys > h * 0.3 * p[f])
    rgb = np.clip(rgb * shade[..., None], 0, 255)
    soft = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2)), np.float32)[..., None] / 255.0
    out = 255.0 * (1 - soft) + rgb * soft
    return np.clip(out, 0, 255).astype(np.uint8)


def hue_rotated(rgb: np.ndarray, turn: float) -> np.ndarray:
    """The photo in another colourway: saturated pixels' hue turned, neutrals (white, grey, black) kept."""
    hsv = np.asarray(Image.fromarray(rgb).convert("HSV"), np.int16)
    sat = hsv[..., 1] > 50
    hsv[..., 0] = np.where(sat, (hsv[..., 0] + int(turn * 255)) % 256, hsv[..., 0])
    return np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))


def garment_recoloured(rgb: np.ndarray, turn: float) -> np.ndarray | None:
    """The photo with its main garment in another colour: the saturated pixels within +-34 degrees of the
    photo's most common saturated hue turned by ``turn`` (of a full turn), everything else kept; None when that
    hue covers under 3 % of the photo (nothing worth calling a colourway)."""
    hsv = np.asarray(Image.fromarray(rgb).convert("HSV"), np.int16)
    sat = (hsv[..., 1] > 60) & (hsv[..., 2] > 40)
    if not sat.any():
        return None
    counts = np.bincount(hsv[..., 0][sat] // 16, minlength=16)
    centre = 16 * int(np.argmax(counts)) + 8
    near = sat & (np.abs((hsv[..., 0] - centre + 128) % 256 - 128) <= 24)
    if near.mean() < 0.03:
        return None
    hsv[..., 0] = np.where(near, (hsv[..., 0] + int(turn * 256)) % 256, hsv[..., 0])
    return np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))


def _wide_tonal(im: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """Variant ``wide``'s tone edits: factors continuous over 0.7-1.3, each edit in more than one common form."""
    x = np.asarray(im, np.float32)
    f = float(rng.uniform(0.7, 1.3))
    if kind == "brightness":  # a gain (PIL's enhancer, a shop's exposure slider) or an offset (OpenCV's beta)
        y = x * f if rng.uniform() < 0.5 else x + (f - 1.0) * 100.0
    elif kind == "contrast":  # about the mean grey (PIL), mid grey, or each channel's own mean
        pivot = str(rng.choice(["grey", "mid", "channel"]))
        if pivot == "grey":
            c = float((x @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
        elif pivot == "mid":
            c = 127.5
        else:
            c = x.reshape(-1, 3).mean(axis=0)
        y = (x - c) * f + c
    else:  # gamma
        y = 255.0 * (x / 255.0) ** f
    return Image.fromarray(np.clip(np.rint(y), 0, 255).astype(np.uint8))


def transformed(im: Image.Image, kind: str, rng: np.random.Generator, wide: bool = False, small: bool = False) -> tuple[Image.Image, int]:
    """One near-duplicate edit; returns the image and the JPEG quality to save it with. ``wide``: variant
    ``wide``'s tone edits and chains of two or three edits. ``small``: variant ``small``'s resizes to 0.22-0.4 (from the same
    draw as 0.5-0.85, so every other image is the one the variant without it makes)."""
    w, h = im.size
    if wide and kind in ("brightness", "contrast", "gamma"):
        return _wide_tonal(im, kind, rng), 90
    if wide and kind == "combined":
        tonal = ["brightness", "contrast", "gamma"]
        first = str(rng.choice(tonal))
        rest = [t for t in ("brightness", "contrast", "gamma", "crop", "resize", "reencode", "watermark") if t != first]
        out, q = transformed(im, first, rng, wide, small)
        for kind_ in rng.choice(rest, int(rng.integers(1, 3)), replace=False):
            out, q2 = transformed(out, str(kind_), rng, wide, small)
            q = min(q, q2)
        return out, q
    if kind == "reencode":
        return im, int(rng.integers(55, 80))
    if kind == "resize":
        f = float(rng.uniform(0.5, 0.85))
        if small:  # a thumbnail-sized upload: 1024x768 -> 225-410 x 169-307 (the short side often under the look's 256)
            f = 0.22 + (f - 0.5) * 0.18 / 0.35
        return im.resize((max(8, int(w * f)), max(8, int(h * f))), Image.BILINEAR), 90
    if kind == "crop":
        d = rng.uniform(0.02, 0.06, 4)
        return im.crop((int(d[0] * w), int(d[1] * h), w - int(d[2] * w), h - int(d[3] * h))), 90
    if kind == "brightness":
        f = float(rng.choice([0.82, 0.88, 1.12, 1.18]))
        return Image.fromarray(np.clip(np.asarray(im, np.float32) * f, 0, 255).astype(np.uint8)), 90
    if kind == "contrast":  # PIL's own enhancer: a blend with the mean grey
        from PIL import ImageEnhance

        return ImageEnhance.Contrast(im).enhance(float(rng.choice([0.8, 0.9, 1.1, 1.2]))), 90
    if kind == "gamma":
        g = float(rng.choice([0.8, 0.9, 1.1, 1.2]))
        return im.point(lambda x: 255.0 * (x / 255.0) ** g), 90
    if kind == "combined":  # two different edits in a row, one of them tonal
        first = str(rng.choice(["brightness", "contrast", "gamma"]))
        second = str(rng.choice([t for t in TONAL_TRANSFORMS if t not in ("exact", "combined", first)]))
        out, q1 = transformed(im, first, rng)
        out, q2 = transformed(out, second, rng)
        return out, min(q1, q2)
    if kind == "watermark":
        out = im.copy()
        d = ImageDraw.Draw(out)
        size = max(10, int(h * rng.uniform(0.025, 0.04)))
        font = ImageFont.load_default(size=size)
        text = str(rng.choice(["(c) shop", "SAMPLE", "brand.com", "(c) 2026"]))
        x, y = w * rng.uniform(0.05, 0.6), h * rng.choice([rng.uniform(0.02, 0.08), rng.uniform(0.9, 0.95)])
        grey = int(rng.integers(90, 170))
        d.text((x, y), text, fill=(grey, grey, grey), font=font)
        return out, 90
    raise ValueError(f"unknown transform {kind!r}; valid: {', '.join(TRANSFORMS)}")


def real_images(real_root: Path) -> list[Path]:
    files = sorted(p for p in real_root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
                   and not any(part in REAL_DIRS_EXCLUDED or part.endswith("mask") for part in p.relative_to(real_root).parts))
    return files


@dataclasses.dataclass(frozen=True)
class _BaseJob:
    index: int
    seed: int
    real: str | None  # a real photo's path, else a drawn product
    colourways: int
    copies: tuple[str, ...]  # transforms applied to the original, one file each
    lookalikes: int = 0  # near twins / print recolours of a drawn product (variant "hard"), after its colourways
    garment_colourways: bool = False  # a real photo's colourways recolour its main garment only (variant "onmodel")
    shades: bool = False  # a drawn product's colourways are mild lighter/darker versions (variant "shade")
    wide: bool = False  # copies made with variant "wide"'s edits
    colour_twins: bool = False  # half of a solid product's lookalikes are colour twins (variants "twin", "family")
    variant_copies: bool = False  # colourways and lookalikes get edited copies of their own too (variant "family")
    pale_prints: bool = False  # a printed base's emblem is nearly grey, so its recolour turns grey into a colour (variant "pale")
    small_copies: bool = False  # resized copies are small, 0.22-0.4 of the original (variant "small")
    framed: bool = False  # half the drawn bases are framed tight: the garment runs off the left, right and bottom edges (variant "frame")


def _save(im: Image.Image, path: Path, quality: int) -> None:
    im.save(path, "JPEG", quality=quality)


def _write_copy(out: Path, source: str, name: str, kind: str, rng: np.random.Generator, wide: bool, small: bool = False) -> None:
    """``out/name``: a byte copy of ``out/source`` (``exact``) or its ``kind`` edit, saved as that edit says."""
    if kind == "exact":
        (out / name).write_bytes((out / source).read_bytes())
        return
    with Image.open(out / source) as src:
        im, q = transformed(src.convert("RGB"), kind, rng, wide, small)
    _save(im, out / name, q)


def _make_base(job: _BaseJob, out: Path) -> list[dict[str, str]]:
    rng = np.random.default_rng(job.seed)
    rows: list[dict[str, str]] = []
    if job.real:
        with Image.open(job.real) as src:
            im = src.convert("RGB")
        if max(im.size) > max(SAVED):
            im.thumbnail((max(SAVED), max(SAVED)), Image.LANCZOS)
        rgb = np.asarray(im)
        saturated = (np.asarray(im.convert("HSV"))[..., 1] > 50).mean()
        # a photo that is mostly neutral has no colourway worth the name (a recoloured 2 % print is not one)
        if job.garment_colourways:
            turns = np.cumsum(rng.uniform(25, 70, job.colourways)) * rng.choice([-1, 1]) / 360  # distinct colours
            variants = [rgb] + [v for v in (garment_recoloured(rgb, float(t)) for t in turns) if v is not None]
        else:
            turns = np.cumsum(rng.uniform(40, 80, job.colourways) / 360) if saturated >= 0.15 else []
            variants = [rgb] + [hue_rotated(rgb, float(t)) for t in turns]
    else:
        cut = random_cut(rng)
        if job.lookalikes:
            cut = dataclasses.replace(cut, pattern="print" if rng.uniform() < 0.5 else "solid")
            if job.pale_prints and cut.pattern == "print":
                # a nearly grey emblem (saturation 0.04-0.2): its hue is noise that no hue test may count, and its
                # recolour (lookalikes: saturation >= 0.5) changes the emblem's colour rather than turning a hue
                cut = dataclasses.replace(cut, colours=(cut.colours[0], *((h, float(rng.uniform(0.04, 0.2)), v) for h, _, v in cut.colours[1:])))
        cuts = [cut] + colourways(cut, job.colourways, rng, job.shades) + lookalikes(cut, job.lookalikes, rng, job.colour_twins)
        drawn = [draw_product(c) for c in cuts]
        # a lookalike whose change falls outside the garment (an emblem off the silhouette, a parameter the cut
        # does not use) is the same image, not another product: dropped (fewer than 0.2 % of pixels moved). It is
        # compared with every image kept before it, not only the base: two recolours of a print that the garment
        # does not show are the same image as each other (that made identical files count as trap pairs)
        visible: list[bool] = []
        for v, d in enumerate(drawn):
            kept = [k for k, keep in zip(drawn[:v], visible) if keep]
            visible.append(v <= job.colourways or all((np.abs(d.astype(np.int16) - k).max(axis=2) > 30).mean() >= 0.002 for k in kept))
        cuts = [c for c, keep in zip(cuts, visible) if keep]
        drawn = [d for d, keep in zip(drawn, visible) if keep]
        if job.framed and np.random.default_rng(job.seed + 700_001).uniform() < 0.5:  # its own stream: the draws above are those of "family"
            drawn = _framed_tight(drawn)
        variants = [np.asarray(Image.fromarray(d).resize(SAVED[::-1], Image.BICUBIC)) for d in drawn]
    names = []
    for v, arr in enumerate(variants):
        name = f"b{job.index:06d}_{'l' if v > job.colourways else 'c'}{v}.jpg"
        _save(Image.fromarray(arr), out / name, 92)
        names.append(name)
        kind = ("original" if v <= job.colourways else "lookalike-print" if cuts[v].pattern == "print"  # type: ignore[possibly-undefined]
                else "lookalike-colour" if cuts[v].params == cuts[0].params else "lookalike-solid")
        rows.append({"file": name, "origin": name, "transform": kind, "colourway_of": "" if v == 0 else names[0],
                     "source": "real" if job.real else "drawn"})
    for c, kind in enumerate(job.copies):
        name = f"b{job.index:06d}_c0_{kind}{c}.jpg"
        _write_copy(out, names[0], name, kind, rng, job.wide, job.small_copies)
        rows.append({"file": name, "origin": names[0], "transform": kind, "colourway_of": "", "source": "real" if job.real else "drawn"})
    if job.variant_copies:
        # another product of the family is re-uploaded too: each false link between two products' groups then
        # merges every copy of one with every copy of the other, and each copy is one more chance of a false link
        # (a separate stream, so the images above are those of variant "twin" for the same seed)
        more = np.random.default_rng(job.seed + 500_009)
        for v in range(1, len(names)):
            for c in range(int(more.choice([0, 0, 1, 1, 2]))):
                kind = str(more.choice(WIDE_TRANSFORMS))
                name = f"{names[v][:-4]}_{kind}{c}.jpg"
                _write_copy(out, names[v], name, kind, more, True, job.small_copies)
                rows.append({"file": name, "origin": names[v], "transform": kind, "colourway_of": "",
                             "source": "real" if job.real else "drawn"})
    return rows


def _framed_tight(drawn: list[np.ndarray]) -> list[np.ndarray]:
    """Every image of one base cut the same way, 3 % inside the base garment's left, right and bottom edges, its top
    margin kept (variant ``frame``, issue 16, fifteenth round): a catalogue's close framing, a sleeve and the hem cut
    by the frame, as the reporting set's large products are. The lookalikes keep what of their change the frame shows."""
    garment = (255 - drawn[0].min(axis=2)) > 30
    rows, cols = np.flatnonzero(garment.any(axis=1)), np.flatnonzero(garment.any(axis=0))
    h, w = rows[-1] - rows[0], cols[-1] - cols[0]
    top, bottom = 0, rows[-1] - int(0.03 * h)
    left, right = cols[0] + int(0.03 * w), cols[-1] - int(0.03 * w)
    # a garment drawn from the canvas's top edge (trousers' waist) gets a white margin there: three sides cut, not four
    margin = max(0, int(0.06 * (bottom - top)) - int(rows[0]))
    return [np.ascontiguousarray(np.pad(d[top:bottom, left:right], ((margin, 0), (0, 0), (0, 0)), constant_values=255)) for d in drawn]


def _worker(args: tuple[_BaseJob, str]) -> list[dict[str, str]]:
    return _make_base(args[0], Path(args[1]))


FAMILY_VARIANTS = ("family", "copies", "pale", "frame", "small")  # ``family`` and the variants built on it: colour twins, and
#                                                                  edited copies of every colourway and lookalike
WIDE_VARIANTS = ("wide", "twin", *FAMILY_VARIANTS)  # the tuning variants with the wide edits and lookalikes


def plan(n: int, real: list[Path], seed: int, variant: str = "") -> list[_BaseJob]:
    """Bases until ~n files: every real photo once, drawn products for the rest; ~45 % of bases in 2-4
    colourways; ~22 % of bases with one duplicate (transforms in turn, exact copies included), ~3 % with two."""
    rng = np.random.default_rng(seed)
    kinds = (TONAL_TRANSFORMS if variant in ("tonal", "hard", "shade") else ONMODEL_TRANSFORMS if variant == "onmodel"
             else WIDE_TRANSFORMS if variant in WIDE_VARIANTS else TRANSFORMS)
    jobs: list[_BaseJob] = []
    files = 0
    t = 0
    if variant == "onmodel":  # real photos only, each once: n is not reached when the photos run out
        for i, photo in enumerate(real):
            colourways = int(rng.integers(1, 3)) if rng.uniform() < 0.6 else 0
            copies = [kinds[(t + c) % len(kinds)] for c in range(int(rng.choice([0, 1, 1, 2])))]
            t += len(copies)
            jobs.append(_BaseJob(i, seed * 1_000_003 + i, str(photo), colourways, tuple(copies), 0, True))
        return jobs
    while files < n:
        i = len(jobs)
        colourways = int(rng.integers(1, 4)) if rng.uniform() < 0.45 else 0
        copies: list[str] = []
        u = rng.uniform()
        # variant "wide": ~30 % of bases with copies, a third of those with two or three
        # variant "copies" (family's products, more copies): ~45 % of bases with copies, half of those with 3 or 4, so that
        # copies of one original often pair up among themselves before they meet it
        counts = ((4 if u < 0.1 else 3 if u < 0.22 else 2 if u < 0.32 else 1 if u < 0.45 else 0) if variant == "copies"
                  else (3 if u < 0.04 else 2 if u < 0.1 else 1 if u < 0.3 else 0) if variant in WIDE_VARIANTS
                  else (2 if u < 0.03 else 1 if u < 0.25 else 0))
        for _ in range(counts):
            copies.append(kinds[t % len(kinds)])
            t += 1
        # the "hard" variant: a third of the drawn bases also get 1-2 lookalikes, files b<base>_l<k>.jpg
        drawn = i >= len(real)
        looks = int(rng.integers(1, 3)) if (variant == "hard" or variant in WIDE_VARIANTS) and drawn and rng.uniform() < 0.33 else 0
        job = _BaseJob(i, seed * 1_000_003 + i, str(real[i]) if not drawn else None, colourways, tuple(copies), looks,
                       shades=variant == "shade" and drawn, wide=variant in WIDE_VARIANTS,
                       colour_twins=variant == "twin" or variant in FAMILY_VARIANTS,
                       variant_copies=variant in FAMILY_VARIANTS, pale_prints=variant == "pale",
                       framed=variant == "frame", small_copies=variant == "small")
        jobs.append(job)
        files += 1 + colourways + len(copies) + looks
    return jobs


def build(out: Path, n: int, real_root: Path | None, seed: int = 0, workers: int = 2, variant: str = "") -> Path:
    """Write the set under ``out`` (reused when its truth.csv is there) and return the truth file."""
    truth = out / "truth.csv"
    if truth.is_file():
        return truth
    out.mkdir(parents=True, exist_ok=True)
    real = real_images(real_root) if real_root and real_root.is_dir() else []
    jobs = plan(n, real, seed, variant)
    with ProcessPoolExecutor(workers) as pool:
        batches = list(pool.map(_worker, [(j, str(out)) for j in jobs], chunksize=16))
    rows = [r for b in batches for r in b]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(truth, buf.getvalue().encode())
    return truth
