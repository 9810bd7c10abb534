"""`curate synth`: a synthetic try-on dataset in the VITON-HD layout, with ground truth for curation.

Procedurally drawn people (frontal or seen from behind) wear textured garments (solid, stripes, checks,
dots, printed motif; many colours); each article is the same garment laid flat on white, drawn with the
*same texture function* in garment-relative coordinates, so a try-on model can learn that the article's
colour and pattern determine the garment pixels on the person.

Layout written (VITON-HD, see shared/data/real/SOURCES.md):
``{train,test}/image/NNNNN_00.jpg`` person, ``cloth/NNNNN_00.jpg`` article on white,
``cloth-mask/NNNNN_00.jpg`` 0/255, ``image-parse-v3/NNNNN_00.png`` LIP-20 ids (palette PNG, 10 = neck),
``openpose_json/NNNNN_00_keypoints.json`` OpenPose 1.3 BODY_25 in pixels, ``{train,test}_pairs.txt``
(paired: the person wears that cloth) and ``ground_truth.csv``.

``ground_truth.csv``: one row per pair; ``pair_id`` is the person file stem (``NNNNN_00``, unique over
both splits; the cloth has the same stem). Match it to a manifest by the ``(human, article)`` paths, which
ingest keeps verbatim, or by stem: ingest's VITON-HD pair ids are ``<pairs file stem>/<person stem>--<cloth
stem>``, e.g. ``train_pairs/00012_00--00012_00``. ``human``/``article`` are paths relative to the root,
``case`` is one of :data:`CASES`, ``duplicate_of`` the original's pair_id for duplicates.
Extra columns: ``split``, ``transform`` (near duplicates), ``article_category``, ``garment``,
``extra_garment`` (coat|scarf), ``colourway_of`` (pair_id whose article has the same shape and pattern in
another colour: these must NOT be merged by dedupe), ``view`` (front|back).

No category metadata is written into the layout (VITON-HD has none): curation must infer it.
Duplicates are always placed in their original's split, so that dedupe, not the layout, finds them.

Speed: pure numpy + PIL drawing, no per-pixel Python. 2,000 pairs at 256x192 took 18-20 s on one core of
a shared 2-core box (9-10 ms a pair: 4.3 drawing, 1.5 encoding, the rest writing with fsync), peak RSS
~135 MB: originals are not held in memory (a duplicate re-reads or redraws its original), so memory grows
by well under a kilobyte a pair.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import typer
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    import pandas as pd

CASES: Final[tuple[str, ...]] = (
    "clean", "exact-duplicate", "near-duplicate", "back-view", "lower-only-product", "extra-garments",
)
TRANSFORMS: Final[tuple[str, ...]] = ("reencode", "resize", "crop", "brightness", "watermark")
UPPER_GARMENTS: Final[tuple[str, ...]] = ("tee", "longsleeve", "tank")
LOWER_GARMENTS: Final[tuple[str, ...]] = ("trousers", "shorts", "skirt")
PATTERNS: Final[tuple[str, ...]] = ("solid", "stripes", "checks", "dots", "motif")

# LIP-20 ids used by the drawing (see curate.labelsets.LIP20)
HAIR, UPPER, DRESS, COAT, PANTS, NECK, SCARF, SKIRT, FACE = 2, 5, 6, 7, 9, 10, 11, 12, 13
L_ARM, R_ARM, L_LEG, R_LEG, L_SHOE, R_SHOE = 14, 15, 16, 17, 18, 19

PALETTE: Final[tuple[tuple[int, int, int], ...]] = (
    (200, 30, 40), (30, 60, 170), (20, 130, 60), (240, 200, 30), (240, 120, 20), (120, 40, 150),
    (20, 20, 25), (245, 245, 240), (130, 130, 135), (90, 50, 30), (240, 150, 180), (60, 180, 200),
    (150, 20, 60), (110, 140, 40), (200, 170, 130), (10, 40, 80),
)
SKIN: Final[tuple[tuple[int, int, int], ...]] = ((241, 204, 178), (224, 172, 135), (190, 135, 95), (141, 90, 60), (95, 60, 40))
HAIR_COLOURS: Final[tuple[tuple[int, int, int], ...]] = ((30, 25, 20), (90, 60, 30), (180, 140, 80), (120, 40, 20), (60, 60, 60))

# A fixed palette for the parse PNGs (id -> colour) so they are viewable; pixel values are the ids.
_PARSE_PALETTE: Final[list[int]] = [c for i in range(256) for c in ((i * 53) % 256, (i * 97) % 256, (i * 151) % 256)]


@dataclasses.dataclass(frozen=True)
class GarmentSpec:
    kind: str  # tee | longsleeve | tank | trousers | shorts | skirt | dress
    pattern: str
    colour: tuple[int, int, int]
    colour2: tuple[int, int, int]
    period: float  # pattern period as a fraction of the garment width
    angle: float  # stripe angle in radians

    @property
    def category(self) -> str:
        if self.kind in UPPER_GARMENTS:
            return "upper_body"
        if self.kind in LOWER_GARMENTS:
            return "lower_body"
        return "dresses"

    def recoloured(self, rng: np.random.Generator) -> "GarmentSpec":
        """The same cut and pattern in another colourway (a different product, not a duplicate)."""
        choices = [c for c in PALETTE if _colour_distance(c, self.colour) > 120]
        colour = choices[int(rng.integers(len(choices)))]
        return dataclasses.replace(self, colour=colour)


@dataclasses.dataclass
class SynthResult:
    root: Path
    n_pairs: int
    ground_truth: pd.DataFrame  # ground_truth.csv as written (the annotation only: pandas is imported lazily)


def _colour_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return float(np.linalg.norm(np.subtract(a, b)))


def random_garment(rng: np.random.Generator, kind: str) -> GarmentSpec:
    colour = PALETTE[int(rng.integers(len(PALETTE)))]
    others = [c for c in PALETTE if _colour_distance(c, colour) > 150]
    return GarmentSpec(
        kind=kind,
        pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
        colour=colour,
        colour2=others[int(rng.integers(len(others)))],
        period=float(rng.uniform(0.08, 0.2)),
        angle=float(rng.choice([0.0, math.pi / 2, math.pi / 4])),
    )


def _pattern_on(spec: GarmentSpec, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where the pattern shows its second colour, at garment-relative coordinates ``u`` (across), ``v`` (down)."""
    if spec.pattern == "solid":
        return np.zeros(u.shape, bool)
    if spec.pattern == "stripes":
        t = u * math.cos(spec.angle) + v * math.sin(spec.angle)
        return (t / spec.period) % 1.0 < 0.5
    if spec.pattern == "checks":
        return ((np.floor(u / spec.period) + np.floor(v / spec.period)) % 2) == 1
    if spec.pattern == "dots":
        fu, fv = (u / spec.period) % 1.0 - 0.5, (v / spec.period) % 1.0 - 0.5
        return fu * fu + fv * fv < 0.09
    # motif: a printed emblem (ring + bar) in the garment's upper centre
    cu, cv = u - 0.5, v - 0.3
    r = np.sqrt(cu * cu + cv * cv)
    return ((r > 0.1) & (r < 0.17)) | ((np.abs(cu) < 0.03) & (np.abs(cv) < 0.2))


def _relative_coords(spec_bbox: tuple[float, float, float, float], ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Both axes are divided by the bbox WIDTH so the pattern keeps its aspect ratio; float32 throughout so
    # the full-image and the masked-pixels routes give bit-identical patterns.
    x0, y0, x1, _ = spec_bbox
    gw = max(x1 - x0, 1.0)
    return (xs.astype(np.float32) - x0) / gw, (ys.astype(np.float32) - y0) / gw


def texture(spec: GarmentSpec, h: int, w: int, bbox: tuple[float, float, float, float]) -> np.ndarray:
    """The garment's pattern as an ``[h, w, 3]`` uint8 image, in coordinates relative to ``bbox``.

    Coordinates are normalised by the garment's bbox width, so the article (flat) and the garment on the
    person show the same pattern at the same relative scale: that is what makes the data learnable.
    """
    ys, xs = np.mgrid[0:h, 0:w]
    u, v = _relative_coords(bbox, ys, xs)
    out = np.empty((h, w, 3), np.uint8)
    out[...] = spec.colour
    out[_pattern_on(spec, u, v)] = spec.colour2
    return out


def _bbox(ys: np.ndarray, xs: np.ndarray) -> tuple[float, float, float, float]:
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def paint_garment(
    rgb: np.ndarray, region: np.ndarray, spec: GarmentSpec, bbox: tuple[float, float, float, float] | None = None
) -> None:
    """Paint ``spec``'s texture into ``rgb`` where ``region`` (bool [H, W]) is set.

    The pattern is placed relative to ``bbox`` (x0, y0, x1, y1), by default the region's own bbox; pass the
    whole garment's bbox when part of it is covered. Same pixels as ``texture(...)[region]`` but evaluated
    only on the region's pixels (the drawing's hot path).
    """
    ys, xs = np.nonzero(region)
    if len(xs) == 0:
        return
    bbox = bbox or _bbox(ys, xs)
    on = _pattern_on(spec, *_relative_coords(bbox, ys, xs))
    rgb[ys, xs] = np.where(on[:, None], np.array(spec.colour2, np.uint8), np.array(spec.colour, np.uint8))


# ------------------------------------------------------------------------------------------------------
# People
# ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Body:
    """Joint positions in image pixels. ``r*``/``l*`` are the PERSON's right/left."""

    joints: dict[str, tuple[float, float]]
    unit: float  # a length unit (pixels per 1 % of the figure height)
    back: bool


def _body(rng: np.random.Generator, h: int, w: int, back: bool) -> Body:
    unit = h / 100.0
    cx = w / 2 + rng.uniform(-0.04, 0.04) * w
    wf = rng.uniform(0.9, 1.1)  # body width factor
    sw, hw = 10.5 * unit * wf, 7.0 * unit * wf
    # In a frontal view the person's right side is on the image left; seen from behind it is mirrored.
    side = 1.0 if back else -1.0
    arm_out = rng.uniform(1.5, 4.5) * unit
    j: dict[str, tuple[float, float]] = {
        "head": (cx, 10 * unit), "neck": (cx, 18.5 * unit), "nose": (cx, 11 * unit),
        "reye": (cx + side * 1.8 * unit, 9.3 * unit), "leye": (cx - side * 1.8 * unit, 9.3 * unit),
        "rear": (cx + side * 4.4 * unit, 10 * unit), "lear": (cx - side * 4.4 * unit, 10 * unit),
        "mhip": (cx, 50 * unit),
    }
    for name, s in (("r", side), ("l", -side)):
        j[f"{name}sho"] = (cx + s * sw, 21 * unit)
        j[f"{name}elb"] = (cx + s * (sw + arm_out * 0.6), 35 * unit)
        j[f"{name}wri"] = (cx + s * (sw + arm_out), 48 * unit)
        j[f"{name}hip"] = (cx + s * hw, 50 * unit)
        j[f"{name}kne"] = (cx + s * 6.5 * unit, 70 * unit)
        j[f"{name}ank"] = (cx + s * 6.0 * unit, 90 * unit)
    return Body(j, unit, back)


def _limb(draw: ImageDraw.ImageDraw, pts: list[tuple[float, float]], width: float, label: int) -> None:
    draw.line(pts, fill=label, width=max(1, int(round(width))), joint="curve")
    r = width / 2
    for x, y in (pts[0], pts[-1]):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=label)


def _torso_poly(b: Body, top: float, bottom: float, widen: float = 0.0) -> list[tuple[float, float]]:
    j, u = b.joints, b.unit
    xs = sorted([j["rsho"][0], j["lsho"][0]])
    hx = sorted([j["rhip"][0], j["lhip"][0]])
    return [(xs[0] - widen * u, top), (xs[1] + widen * u, top), (hx[1] + (1 + widen) * u, bottom), (hx[0] - (1 + widen) * u, bottom)]


@dataclasses.dataclass
class Outfit:
    upper: GarmentSpec | None  # tee/longsleeve/tank or dress
    lower: GarmentSpec | None
    coat: GarmentSpec | None = None
    scarf: GarmentSpec | None = None


def draw_person(
    rng: np.random.Generator, outfit: Outfit, size: tuple[int, int], back: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one person. Returns ``(rgb [H,W,3] uint8, LIP-20 label map [H,W] uint8, BODY_25 [25,3])``."""
    h, w = size
    b = _body(rng, h, w, back)
    j, u = b.joints, b.unit
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    # person's right/left limbs carry right/left labels wherever they land in the image
    for s, leg, shoe in (("r", R_LEG, R_SHOE), ("l", L_LEG, L_SHOE)):
        _limb(d, [j[f"{s}hip"], j[f"{s}kne"], j[f"{s}ank"]], 5.0 * u, leg)
        ax, ay = j[f"{s}ank"]
        d.ellipse([ax - 3 * u, ay - 1.2 * u, ax + 3 * u, ay + 2.5 * u], fill=shoe)
    lower = outfit.lower
    if lower is not None:
        if lower.kind == "skirt":
            xs = sorted([j["rhip"][0], j["lhip"][0]])
            d.polygon([(xs[0] - u, 47 * u), (xs[1] + u, 47 * u), (xs[1] + 7 * u, 72 * u), (xs[0] - 7 * u, 72 * u)], fill=SKIRT)
        else:
            end = "ank" if lower.kind == "trousers" else "kne"
            for s in ("r", "l"):
                hx, hy = j[f"{s}hip"]
                ex, ey = j[f"{s}{end}"]
                if lower.kind == "shorts":
                    ex, ey = (hx + ex) / 2, (hy + ey) / 2 + 3 * u
                _limb(d, [(hx, hy), (ex, ey)], 6.5 * u, PANTS)
            d.polygon(_torso_poly(b, 46 * u, 53 * u), fill=PANTS)
    # skin of the torso and the neck (VITON-HD's parse labels visible torso skin 10)
    d.polygon(_torso_poly(b, 19 * u, 50 * u), fill=NECK)
    d.rectangle([j["neck"][0] - 2.2 * u, 14 * u, j["neck"][0] + 2.2 * u, 21 * u], fill=NECK)
    for s, arm in (("r", R_ARM), ("l", L_ARM)):
        _limb(d, [j[f"{s}sho"], j[f"{s}elb"], j[f"{s}wri"]], 4.2 * u, arm)
    up = outfit.upper
    if up is not None:
        label = DRESS if up.kind == "dress" else UPPER
        bottom = 52 * u if up.kind != "dress" else 50 * u
        d.polygon(_torso_poly(b, 20 * u, bottom, widen=0.5), fill=label)
        if up.kind == "dress":
            xs = sorted([j["rhip"][0], j["lhip"][0]])
            d.polygon([(xs[0] - 1.5 * u, 48 * u), (xs[1] + 1.5 * u, 48 * u), (xs[1] + 9 * u, 74 * u), (xs[0] - 9 * u, 74 * u)], fill=DRESS)
        sleeve = {"tee": 0.45, "longsleeve": 1.0, "dress": 0.3}.get(up.kind)
        if sleeve:
            for s in ("r", "l"):
                pts = [j[f"{s}sho"], j[f"{s}elb"], j[f"{s}wri"]]
                _limb(d, _along(pts, sleeve), 5.2 * u, label)
    top_bbox = None
    if outfit.coat is not None:
        if up is not None:
            # the top's pattern stays placed as on the uncovered top (the article), not squeezed into the
            # strip that the open coat leaves visible
            top_bbox = _bbox(*np.nonzero(np.isin(np.asarray(img), (UPPER, DRESS))))
        d.polygon(_torso_poly(b, 19.5 * u, 63 * u, widen=1.5), fill=COAT)
        for s in ("r", "l"):
            _limb(d, [j[f"{s}sho"], j[f"{s}elb"], j[f"{s}wri"]], 6.0 * u, COAT)
        if up is not None:  # open coat: the top shows in a central strip
            cx = j["neck"][0]
            d.rectangle([cx - 3.2 * u, 21 * u, cx + 3.2 * u, 51 * u], fill=DRESS if up.kind == "dress" else UPPER)
    if outfit.scarf is not None:
        cx = j["neck"][0]
        d.rectangle([cx - 5 * u, 16 * u, cx + 5 * u, 21 * u], fill=SCARF)
        d.rectangle([cx + 1 * u, 19 * u, cx + 4 * u, 36 * u], fill=SCARF)
    hx, hy = j["head"]
    if back:  # from behind the whole head is hair: no face label at all
        d.ellipse([hx - 5 * u, hy - 6.5 * u, hx + 5 * u, hy + 6.5 * u], fill=HAIR)
    else:
        d.ellipse([hx - 5.2 * u, hy - 7 * u, hx + 5.2 * u, hy + 2 * u], fill=HAIR)
        d.ellipse([hx - 4.2 * u, hy - 5 * u, hx + 4.2 * u, hy + 6 * u], fill=FACE)
    label = np.asarray(img, dtype=np.uint8)

    rgb = _paint_person(rng, label, outfit, top_bbox)
    if not back:  # eyes and mouth are pixels, not labels
        for e in ("reye", "leye"):
            ex, ey = j[e]
            r0 = max(1, int(0.7 * u))
            rgb[int(ey) - r0:int(ey) + r0 + 1, int(ex) - r0:int(ex) + r0 + 1] = (30, 30, 30)
    return rgb, label, _body25(b)


def _along(pts: list[tuple[float, float]], frac: float) -> list[tuple[float, float]]:
    """The first ``frac`` of a polyline's length (sleeves cover part of the arm)."""
    seg = [math.dist(a, b) for a, b in zip(pts, pts[1:])]
    left = frac * sum(seg)
    out = [pts[0]]
    for (a, b), s in zip(zip(pts, pts[1:]), seg):
        if left >= s:
            out.append(b)
            left -= s
            continue
        t = left / max(s, 1e-6)
        out.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
        break
    return out


def _paint_person(
    rng: np.random.Generator, label: np.ndarray, outfit: Outfit, top_bbox: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    h, w = label.shape
    bg = np.array([rng.integers(225, 250)] * 3, np.uint8) - np.array([0, rng.integers(0, 6), rng.integers(0, 10)], np.uint8)
    # flat-coloured parts through one lookup table indexed by the label map (label -> colour)
    lut = np.empty((256, 3), np.uint8)
    lut[...] = bg
    lut[[NECK, FACE, L_ARM, R_ARM, L_LEG, R_LEG]] = SKIN[int(rng.integers(len(SKIN)))]
    lut[HAIR] = HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))]
    lut[[L_SHOE, R_SHOE]] = PALETTE[int(rng.integers(len(PALETTE)))]
    rgb = lut[label]
    layers: list[tuple[GarmentSpec | None, tuple[int, ...]]] = [
        (outfit.upper, (UPPER, DRESS)), (outfit.lower, (PANTS, SKIRT)), (outfit.coat, (COAT,)), (outfit.scarf, (SCARF,)),
    ]
    for spec, ids in layers:
        if spec is not None:
            paint_garment(rgb, np.isin(label, ids), spec, top_bbox if spec is outfit.upper else None)
    # mild sensor noise so that images are not flat colour fields (seeded: same seed, same bytes)
    noise = rng.normal(0, 2.0, size=(h, w, 1)).astype(np.int16)
    return np.clip(rgb.astype(np.int16) + noise, 0, 255).astype(np.uint8)


_BODY25_ORDER: Final[tuple[str, ...]] = (
    "nose", "neck", "rsho", "relb", "rwri", "lsho", "lelb", "lwri", "mhip", "rhip", "rkne", "rank", "lhip",
    "lkne", "lank", "reye", "leye", "rear", "lear",
)


def _body25(b: Body) -> np.ndarray:
    kp = np.zeros((25, 3), np.float32)
    for i, name in enumerate(_BODY25_ORDER):
        x, y = b.joints[name]
        conf = 0.9
        if b.back and name in ("nose", "reye", "leye"):
            continue  # not visible from behind: OpenPose writes 0, 0, 0
        if b.back and name in ("rear", "lear"):
            conf = 0.4
        kp[i] = (x, y, conf)
    # Feet (19-24: big toe, small toe, heel; left foot first), inside the drawn shoe: the big toe on the
    # body's midline side, the small toe outside, the heel under the ankle. From behind the toes are
    # hidden by the foot, so they get a low confidence, as OpenPose gives them.
    u, mid_x = b.unit, b.joints["neck"][0]
    toe_conf = 0.3 if b.back else 0.7
    for first, ank in ((19, "lank"), (22, "rank")):
        x, y = b.joints[ank]
        inward = 1.0 if mid_x > x else -1.0
        kp[first] = (x + inward * 1.2 * u, y + 1.8 * u, toe_conf)
        kp[first + 1] = (x - inward * 2.2 * u, y + 1.8 * u, toe_conf)
        kp[first + 2] = (x, y + 1.2 * u, 0.7)
    return kp


# ------------------------------------------------------------------------------------------------------
# Articles (flat on white)
# ------------------------------------------------------------------------------------------------------
def draw_article(rng: np.random.Generator, spec: GarmentSpec, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The garment laid flat on white. Returns ``(rgb [H,W,3] uint8, mask [H,W] uint8 0/255)``."""
    h, w = size
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    cx = w / 2 + rng.uniform(-0.02, 0.02) * w
    gw = w * rng.uniform(0.46, 0.54)  # torso / waist width
    k = spec.kind
    if k in UPPER_GARMENTS or k == "dress":
        top, bottom = 0.18 * h, (0.72 if k != "dress" else 0.62) * h
        shoulder = gw / 2 if k != "tank" else gw * 0.36
        d.polygon([(cx - shoulder, top), (cx + shoulder, top), (cx + gw / 2, bottom), (cx - gw / 2, bottom)], fill=1)
        if k == "dress":
            d.polygon([(cx - gw / 2, bottom - 2), (cx + gw / 2, bottom - 2), (cx + gw * 0.85, 0.92 * h), (cx - gw * 0.85, 0.92 * h)], fill=1)
        sleeve = {"tee": 0.2, "longsleeve": 0.55, "dress": 0.12}.get(k)
        if sleeve:
            for s in (-1, 1):
                x0 = cx + s * gw / 2
                d.polygon([(x0 - s * 2, top), (x0 + s * sleeve * w * 0.55, top + sleeve * h * 0.5),
                           (x0 + s * sleeve * w * 0.55 - s * 0.1 * w, top + sleeve * h * 0.5 + 0.08 * h), (x0 - s * 2, top + 0.16 * h)], fill=1)
        # neckline cut-out
        d.ellipse([cx - 0.08 * w, top - 0.04 * h, cx + 0.08 * w, top + 0.05 * h], fill=0)
    elif k == "skirt":
        d.polygon([(cx - gw * 0.4, 0.22 * h), (cx + gw * 0.4, 0.22 * h), (cx + gw * 0.75, 0.78 * h), (cx - gw * 0.75, 0.78 * h)], fill=1)
    else:  # trousers / shorts: waistband + two legs with a gap (the "two legs, no sleeves" shape)
        bottom = (0.92 if k == "trousers" else 0.52) * h
        d.rectangle([cx - gw * 0.42, 0.12 * h, cx + gw * 0.42, 0.2 * h], fill=1)
        for s in (-1, 1):
            d.polygon([(cx + s * gw * 0.42, 0.2 * h), (cx + s * 0.01 * w, 0.2 * h), (cx + s * 0.03 * w, bottom), (cx + s * gw * 0.45, bottom)], fill=1)
    mask = np.asarray(img, dtype=bool)
    rgb = np.full((h, w, 3), 255, np.uint8)
    paint_garment(rgb, mask, spec)
    return rgb, (mask.astype(np.uint8) * 255)


# ------------------------------------------------------------------------------------------------------
# The dataset
# ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Sample:
    """One pair's drawn arrays (what a near duplicate transforms)."""

    person: np.ndarray
    parse: np.ndarray
    pose: np.ndarray  # BODY_25 [25, 3]
    cloth: np.ndarray
    mask: np.ndarray


_FOLDERS: Final[tuple[str, ...]] = ("image", "cloth", "cloth-mask", "image-parse-v3", "openpose_json")


def _layout_path(root: Path, split: str, folder: str, stem: str) -> Path:
    if folder == "openpose_json":
        return root / split / folder / f"{stem}_keypoints.json"
    return root / split / folder / f"{stem}.{'png' if folder == 'image-parse-v3' else 'jpg'}"


@dataclasses.dataclass(frozen=True)
class _Recipe:
    """Everything needed to redraw one pair exactly: the generator state just before it was drawn."""

    rng_state: dict
    outfit: Outfit
    article: GarmentSpec
    back: bool

    def draw(self, size: tuple[int, int], rng: np.random.Generator | None = None) -> _Sample:
        """Draw with ``rng`` (advancing it) or, without one, replay from the saved state."""
        if rng is None:
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = self.rng_state
        person, parse, pose = draw_person(rng, self.outfit, size, back=self.back)
        cloth, mask = draw_article(rng, self.article, size)
        return _Sample(person, parse, pose, cloth, mask)


def _encode(s: _Sample, quality: int = 95) -> dict[str, bytes]:
    """One pair's files, keyed by layout folder."""
    return {
        "image": _jpeg(s.person, quality), "cloth": _jpeg(s.cloth, quality), "cloth-mask": _jpeg(s.mask, 100),
        "image-parse-v3": _png_parse(s.parse), "openpose_json": _pose_json(s.pose),
    }


def _jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png_parse(label: np.ndarray) -> bytes:
    im = Image.fromarray(label, mode="L").convert("P")
    im.putpalette(_PARSE_PALETTE)
    # convert("P") on an L image keeps the values as indices
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _pose_json(kp: np.ndarray) -> bytes:
    flat = [round(float(v), 3) for v in kp.reshape(-1)]
    doc = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": flat}]}
    return json.dumps(doc).encode()


def _transform(rng: np.random.Generator, s: _Sample, kind: str) -> tuple[_Sample, int]:
    """A near-duplicate of ``s``: returns the transformed sample and the JPEG quality to save it with."""
    if kind == "reencode":
        return s, int(rng.integers(60, 80))
    if kind == "brightness":
        f = float(rng.choice([0.82, 0.88, 1.12, 1.18]))
        scale = lambda a: np.clip(a.astype(np.float32) * f, 0, 255).astype(np.uint8)  # noqa: E731
        return dataclasses.replace(s, person=scale(s.person), cloth=np.where(s.mask[..., None] > 0, scale(s.cloth), s.cloth)), 92
    if kind == "watermark":
        def mark(a: np.ndarray) -> np.ndarray:
            im = Image.fromarray(a)
            d = ImageDraw.Draw(im)
            h, w = a.shape[:2]
            d.text((w * 0.55, h * 0.92), "(c) shop", fill=(120, 120, 120))
            return np.asarray(im)
        return dataclasses.replace(s, person=mark(s.person), cloth=mark(s.cloth)), 92
    h, w = s.person.shape[:2]
    if kind == "resize":
        f = float(rng.uniform(0.7, 0.85))
        nh, nw = int(round(h * f)), int(round(w * f))
        rs = lambda a, r: np.asarray(Image.fromarray(a).resize((nw, nh), r))  # noqa: E731
        pose = s.pose.copy()
        pose[:, :2] *= (nw / w, nh / h)
        pose[s.pose[:, 2] == 0] = 0
        return _Sample(rs(s.person, Image.BILINEAR), rs(s.parse, Image.NEAREST), pose, rs(s.cloth, Image.BILINEAR), rs(s.mask, Image.NEAREST)), 92
    # crop: 2-6 % per side
    t, b, l, r = (int(round(x)) for x in rng.uniform(0.02, 0.06, 4) * [h, h, w, w])
    cr = lambda a: a[t:h - b, l:w - r].copy()  # noqa: E731
    pose = s.pose.copy()
    pose[:, 0] -= l
    pose[:, 1] -= t
    nh, nw = h - t - b, w - l - r
    outside = (pose[:, 0] < 0) | (pose[:, 1] < 0) | (pose[:, 0] >= nw) | (pose[:, 1] >= nh) | (s.pose[:, 2] == 0)
    pose[outside] = 0
    return _Sample(cr(s.person), cr(s.parse), pose, cr(s.cloth), cr(s.mask)), 92


def _plan(n: int, inject: bool, rng: np.random.Generator) -> list[str]:
    """The case of every pair, originals first (duplicates need an original to copy)."""
    if not inject:
        return ["clean"] * n
    counts = {c: max(1, round(n * f)) for c, f in (("exact-duplicate", 0.05), ("near-duplicate", 0.1), ("back-view", 0.06),
                                                      ("lower-only-product", 0.06), ("extra-garments", 0.06))}
    n_clean = n - sum(counts.values())
    if n_clean < max(4, n // 3):
        raise ValueError(f"n={n} is too small for the injected cases; use n >= 30 or --no-inject")
    originals = ["clean"] * n_clean + ["back-view"] * counts["back-view"] + ["lower-only-product"] * counts["lower-only-product"] + ["extra-garments"] * counts["extra-garments"]
    originals = [originals[i] for i in rng.permutation(len(originals))]
    return originals + ["exact-duplicate"] * counts["exact-duplicate"] + ["near-duplicate"] * counts["near-duplicate"]


def _clear_previous_output(out: Path) -> None:
    """Make ``out`` ready: absent, empty, or an earlier ``curate synth`` output whose own files are removed.

    Stale files of a larger earlier run would otherwise sit beside the new pairs lists and be ingested.
    Only files that the earlier ``ground_truth.csv`` accounts for are removed; a folder holding anything
    else is refused, so a user's own files are never touched.
    """
    import pandas as pd

    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    present = {p for p in out.rglob("*") if p.is_file()}
    if not present:
        return
    ours: set[Path] = set()
    gt_path = out / "ground_truth.csv"
    if gt_path.is_file():
        try:
            old = pd.read_csv(gt_path, usecols=["pair_id", "split"], dtype=str, keep_default_na=False)
        except (ValueError, pd.errors.ParserError):
            old = None
        if old is not None:
            ours = {gt_path, out / "train_pairs.txt", out / "test_pairs.txt"}
            ours |= {_layout_path(out, split, folder, stem) for stem, split in zip(old["pair_id"], old["split"]) for folder in _FOLDERS}
    foreign = sorted(present - ours)
    if foreign:
        shown = ", ".join(str(p.relative_to(out)) for p in foreign[:3])
        raise ValueError(
            f"--out {out} holds {len(foreign)} file(s) that are not an earlier curate synth output ({shown}"
            f"{', ...' if len(foreign) > 3 else ''}); choose a new or empty folder (an interrupted run writes no "
            "ground_truth.csv: delete its folder)"
        )
    for path in present:
        path.unlink()


def generate(out: Path, n: int, size: tuple[int, int] = (256, 192), seed: int = 0, *, inject: bool = True) -> SynthResult:
    """Write ``n`` pairs (injected cases included) under ``out``; same arguments, same bytes."""
    import pandas as pd

    from curate.manifest import atomic_write_bytes

    out = Path(out)
    h, w = size
    if h < 64 or w < 48:
        raise ValueError(f"size {h}x{w} is too small to draw people; use at least 64x48")
    rng = np.random.default_rng(seed)
    plan = _plan(n, inject, rng)
    _clear_previous_output(out)
    # Originals are not kept in memory (that was ~0.4 MB a pair): a duplicate re-reads the original's bytes
    # (exact) or redraws its arrays from the generator state saved just before it was drawn (near).
    recipes: dict[str, _Recipe] = {}
    rows: list[dict[str, object]] = []
    row_of: dict[str, dict[str, object]] = {}
    split_of: dict[str, str] = {}
    clean_ids: list[str] = []
    pairs_lines: dict[str, list[str]] = {"train": [], "test": []}

    def write(split: str, stem: str, files: dict[str, bytes]) -> None:
        for folder, data in files.items():
            atomic_write_bytes(_layout_path(out, split, folder, stem), data)
        pairs_lines[split].append(f"{stem}.jpg {stem}.jpg")
    transforms = [TRANSFORMS[i % len(TRANSFORMS)] for i in range(n)]
    n_near = 0
    for idx, case in enumerate(plan):
        stem = f"{idx:05d}_00"
        row: dict[str, object] = {"pair_id": stem, "case": case, "duplicate_of": "", "transform": "", "extra_garment": "",
                                  "colourway_of": "", "view": "front"}
        if case in ("exact-duplicate", "near-duplicate"):
            orig = clean_ids[int(rng.integers(len(clean_ids)))]
            split = split_of[orig]
            row.update(duplicate_of=orig, view="front")
            row.update(article_category=row_of[orig]["article_category"], garment=row_of[orig]["garment"])
            if case == "exact-duplicate":
                write(split, stem, {folder: _layout_path(out, split, folder, orig).read_bytes() for folder in _FOLDERS})
            else:
                kind = transforms[n_near]
                n_near += 1
                sample, quality = _transform(rng, recipes[orig].draw(size), kind)
                row["transform"] = kind
                write(split, stem, _encode(sample, quality))
        else:
            split = "test" if rng.random() < 0.2 else "train"
            kind = "dress" if rng.random() < 0.25 else UPPER_GARMENTS[int(rng.integers(3))]
            colourway_of = ""
            if case == "clean" and clean_ids and rng.random() < 0.15:
                # a colourway sibling: same cut and pattern as an earlier article, another colour
                colourway_of = clean_ids[int(rng.integers(len(clean_ids)))]
                spec = row_of[colourway_of]["_spec"].recoloured(rng)  # type: ignore[union-attr]
            else:
                spec = random_garment(rng, kind)
            lower = None if spec.kind == "dress" else random_garment(rng, LOWER_GARMENTS[int(rng.integers(3))])
            outfit = Outfit(upper=spec, lower=lower)
            article_spec = spec
            if case == "lower-only-product":
                lower = random_garment(rng, LOWER_GARMENTS[int(rng.integers(3))])
                outfit = Outfit(upper=random_garment(rng, UPPER_GARMENTS[int(rng.integers(3))]), lower=lower)
                article_spec = lower
            elif case == "extra-garments":
                extra = "coat" if rng.random() < 0.5 else "scarf"
                extra_spec = random_garment(rng, "longsleeve")
                outfit = dataclasses.replace(outfit, coat=extra_spec if extra == "coat" else None, scarf=extra_spec if extra == "scarf" else None)
                row["extra_garment"] = extra
            back = case == "back-view"
            recipe = _Recipe(rng.bit_generator.state, outfit, article_spec, back)
            write(split, stem, _encode(recipe.draw(size, rng)))
            if case == "clean":
                recipes[stem] = recipe
            row.update(view="back" if back else "front", article_category=article_spec.category, garment=article_spec.kind,
                       colourway_of=colourway_of, _spec=article_spec)
            if case == "clean":
                clean_ids.append(stem)
        split_of[stem] = split
        row.update(split=split, human=f"{split}/image/{stem}.jpg", article=f"{split}/cloth/{stem}.jpg")
        rows.append(row)
        row_of[stem] = row

    for split, lines in pairs_lines.items():
        atomic_write_bytes(out / f"{split}_pairs.txt", ("\n".join(lines) + "\n").encode() if lines else b"")
    columns = ["pair_id", "human", "article", "case", "duplicate_of", "split", "transform", "article_category", "garment",
               "extra_garment", "colourway_of", "view"]
    gt = pd.DataFrame(rows)[columns]
    atomic_write_bytes(out / "ground_truth.csv", gt.to_csv(index=False).encode())
    return SynthResult(root=out, n_pairs=len(gt), ground_truth=gt)


def _parse_size(size: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"size must be HxW, e.g. 256x192 (got {size!r})") from None
    return h, w


def synth_command(
    out: Path = typer.Option(..., "--out", help="folder to write into: new, empty, or an earlier synth output (replaced)"),
    n: int = typer.Option(200, "--n", min=1, help="number of pairs, injected cases included"),
    size: str = typer.Option("256x192", "--size", help="image size HxW"),
    seed: int = typer.Option(0, "--seed", help="random seed: same seed, same bytes"),
    no_inject: bool = typer.Option(False, "--no-inject", help="only clean pairs (no duplicates, back views, ...)"),
) -> None:
    """Write a synthetic try-on dataset (VITON-HD layout) with ground truth for every curation decision.

    Example: curate synth --out data/synth --n 2000 --size 256x192 --seed 0
    """
    from rich.console import Console

    try:
        result = generate(out, n, _parse_size(size), seed, inject=not no_inject)
    except ValueError as exc:  # bad sizes, n too small, a foreign --out folder: a message, not a traceback
        raise typer.BadParameter(str(exc)) from None
    counts = result.ground_truth["case"].value_counts().to_dict()
    Console().print(f"wrote {result.n_pairs} pairs to {out} ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}); "
                    f"ground truth in {out / 'ground_truth.csv'}")
