"""A second upper garment over the top, found without parsing: the torso's colours and the opening's edges.

The detector path has MediaPipe's pose and a person mask, no garment labels. An open outer garment
(jacket, blazer, coat, cardigan, zip hoodie) leaves a geometric trace that a single printed top does not:
**an opening runs down the torso.** Row after row from below the collar to the hip, the centre strip
differs from *each* of the two sides (the garment's front edges, read per row as the outermost person
pixels), while the two sides agree with each other - a pair of long, near-vertical edges symmetric about
the body's midline (the pose's neck -> mid-hip axis). A print, a placket or an embroidered panel covers a
band of rows, or differs from one side only, or changes colour down the torso; an opening does none of
these. The detector says ``layered`` only when, on enough measured rows,

* such opening rows make up at least ``det_opening_min_row_fraction`` of the rows, **and** either
* the sleeves are the sides' garment: within ``det_sleeve_max_side_delta_e`` of *both* sides and at least
  ``det_sleeve_min_centre_delta_e`` from the centre (a jacket's sleeves and front panels are one cloth), or
* the centre is one colour down the whole torso (median distance of the rows' centre colours to their
  median at most ``det_centre_max_row_spread``): one inner garment, not a motif;

or, whatever the colours (third round, for black on black, white on white, cobalt on navy), when

* the opening's two front edges are seen (:func:`opening_edges`): a mirrored pair of long straight lines
  down the torso (vertical or V-shaped), across which brightness or a colour channel steps the same way
  all along each line and the opposite way on the two sides, at least ``det_edge_min_strength`` typical
  torso gradients strong (each pixel capped at ``EDGE_CAP``), ending at least ``det_edge_min_offset`` half
  spans off the axis at the hip (not a placket or a zip), inside the torso (not the arms' outline).

or (fourth round, learnt from the CCP pixel annotations of the tuning split) when

* the outer-layer map of :mod:`curate.filters.layer_cue` (a tiny per-cell classifier over the torso grid's
  colours and positions) covers both flanks and not the centre: its weaker flank's mean probability minus
  the centre strip's is at least ``det_outer_layer_min_score`` (``inf``: off, round three's rule).

Measured in a torso frame from the pose (axis neck -> mid-hip, across in half shoulder spans), in CIELAB
after a blur that follows the body's size (weave and tweed are not colour changes), on the person mask;
skin (the YCrCb box) is discounted (a bare V-neck is not an inner garment, a bare arm not a sleeve).

The rule and its thresholds were chosen for precision first on the tuning split only (docs/benchmarks/
filters.md, ``bench/filters/tune_layers.py``): a false "layered" drops a good training pair. Tried and not
kept: a texture (print) test on the centre (its robust colour spread did not separate prints from striped
inner shirts on the tuning split), the waistcoat rule (sleeves unlike the whole torso: it never fired on
the tuning split), and in the third round a learnt combination (a logistic regression over the colour and
edge numbers, leave-one-out on the tuning split: no more found at no false alarm than this rule), a
covered-neck scarf cue (it caught one more scarf beside a near false alarm) and the silhouette's width
below the waist (the tuning split's layered people were narrower there, not wider: no coat flare to use).

Known blind spots (the docs list the real misses): low-contrast layers whose front edges are hidden or
soft (an arm or a bag across them, a draped coat), beige and camel garments (the YCrCb skin box takes
them for skin and discounts them), a cardigan buttoned over a shirt (no opening shows),
and scarves. A clothes parser (``curate filter --parser``) sees these as labels instead.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from curate.filters import body
from curate.filters.evidence import Source, Verdict

if TYPE_CHECKING:
    from curate.filters.thresholds import Thresholds

# Torso rows are read between these fractions of the neck -> mid-hip length: below the collar (a bare
# neckline is skin, not a garment) and above the hip line (belts, hands in pockets).
ROWS_FROM, ROWS_TO, N_ROWS = 0.12, 0.92, 10
# Across the torso, in half shoulder spans from the axis: the centre strip (an opening is narrow; 0.12 and
# 0.2 were tried). The sides are read per row from the person mask (see measure_torso).
CENTRE_HALF_WIDTH = 0.2
# How far across (half spans) a row is read, and the share of the person's extent in it that counts as
# each side (chosen on the tuning split with the thresholds below: 1.2-1.7 and 0.15-0.3 were tried).
REACH = 1.4
SIDE_SHARE = 0.15
# Upper arms: the shoulder -> elbow segment between these fractions (clear of the shoulder seam and of
# the elbow), as wide as 12 % of the shoulder span.
ARM_FROM, ARM_TO, ARM_WIDTH = 0.3, 0.8, 0.12
MIN_PX = 10  # pixels a region needs in a row (or an arm) to give a colour
# The opening-edge cue (issue 19, third round) reads the torso resampled onto a fixed grid in the torso
# frame: EDGE_ROWS rows from EDGE_FROM to EDGE_TO of the neck -> mid-hip length, EDGE_COLS columns across
# +-EDGE_REACH half spans. Its candidate edges are straight lines down that grid from ``a = EDGE_TOP[i]``
# at the top row to ``a = EDGE_BOTTOM[j]`` at the bottom one, on each side of the axis (vertical lines
# and V-shaped lapels alike). Both stop short of the arms: the torso's own silhouette and the arm beside
# it (|a| ~ 0.8-1) are long vertical edges on every person, and the tuning split's single tops all had
# their strongest mirrored edges there (0.7-0.85) when the lines were allowed out to 0.95.
EDGE_ROWS, EDGE_COLS, EDGE_FROM, EDGE_TO, EDGE_REACH = 40, 64, 0.10, 0.95, 1.6
EDGE_TOP = np.linspace(0.05, 0.6, 12)
EDGE_BOTTOM = np.linspace(0.05, 0.65, 13)
EDGE_CAP = 3.0


@dataclasses.dataclass(frozen=True)
class TorsoColours:
    """What the detector measured on one torso, before any threshold: per row (neck to hip), the CIELAB
    distance of the centre strip to the mean of the two sides, to each side, of the two sides to each other,
    and the centre's skin share; the spread of the centre colour down the rows (median distance of the rows'
    centre colours to their median); the sleeves (when seen) as (distance to the sides' mean, distance to
    the centre, skin share, distance to the farther of the two sides)."""

    centre_vs_sides: np.ndarray
    left_vs_right: np.ndarray
    centre_skin: np.ndarray
    sleeve: tuple[float, float, float, float] | None
    centre_vs_left: np.ndarray
    centre_vs_right: np.ndarray
    centre_row_spread: float
    edges: "OpeningEdges | None" = None


@dataclasses.dataclass(frozen=True)
class OpeningEdges:
    """The opening-edge cue's measurement on one torso (:func:`opening_edges`), before any threshold: per
    CIELAB channel (L, a, b: axis 0) and candidate line shape ``(EDGE_TOP[i], EDGE_BOTTOM[j])``, on the
    person's left (``left_*``) and right (``right_*``) side, the signed mean gradient across along the line
    in units of the channel's typical gradient (``*_strength``) and the share of the line's rows where it is
    strong with that sign (``*_persistence``). :func:`edge_pair` pairs the two sides."""

    left_strength: np.ndarray  # [3, T, B]
    right_strength: np.ndarray
    left_persistence: np.ndarray
    right_persistence: np.ndarray


def _pool(x: np.ndarray) -> np.ndarray:
    """Max over each cell's 3x3 neighbourhood of the last two axes (one grid step of line shape either way)."""
    p = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], constant_values=-np.inf)
    t, b = x.shape[-2:]
    return np.max([p[..., i:i + t, j:j + b] for i in range(3) for j in range(3)], axis=0)


def edge_pair(e: OpeningEdges, min_bottom: float) -> tuple[float, float, float | None, float | None]:
    """The strongest mirrored pair of opening edges whose lines end at least ``min_bottom`` half spans off
    the axis at the hip (an open garment hangs apart; a placket, a zip or a V converging on the axis does
    not): (strength, persistence, top, bottom). The pair's strength is the weaker side's, with opposite
    polarity on the two sides (rising across the left edge and falling across the right, or the reverse),
    each side pooled over one grid step (a garment's two front edges are not exactly symmetric); the best
    channel wins. (0, 0, None, None) when no line is allowed (the evidence is JSON: no NaN)."""
    keep = np.broadcast_to(EDGE_BOTTOM[None, None, :] >= min_bottom - 1e-9, e.left_strength.shape)
    if not keep.any():
        return 0.0, 0.0, None, None
    sl, sr = np.where(keep, e.left_strength, 0.0), np.where(keep, e.right_strength, 0.0)
    pl, pr = np.where(keep, e.left_persistence, 0.0), np.where(keep, e.right_persistence, 0.0)
    pair = np.maximum(np.minimum(_pool(np.maximum(sl, 0)), _pool(np.maximum(-sr, 0))),
                      np.minimum(_pool(np.maximum(-sl, 0)), _pool(np.maximum(sr, 0))))
    pair = np.where(keep, pair, 0.0)  # pooling must not carry a disallowed line's edge into an allowed cell
    c, i, j = np.unravel_index(int(pair.argmax()), pair.shape)
    persistence = float(min(_pool(pl)[c, i, j], _pool(pr)[c, i, j]))
    return float(pair[c, i, j]), persistence, float(EDGE_TOP[i]), float(EDGE_BOTTOM[j])


def _line_gradients(gx: np.ndarray, valid: np.ndarray, sign: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """For every line (top, bottom) on one side (``sign`` +1: the person's left, -1: right): the signed mean
    of ``gx`` along it over its valid rows / ``scale`` (0 when under 60 % of the rows are valid), and the
    share of its valid rows where |gx| > 2 ``scale`` with the mean's sign."""
    rows = np.arange(EDGE_ROWS)
    top, bottom = np.meshgrid(EDGE_TOP, EDGE_BOTTOM, indexing="ij")
    a = sign * (top[..., None] + (bottom - top)[..., None] * rows / (EDGE_ROWS - 1))  # [T, B, rows]
    col = np.clip(np.round((a + EDGE_REACH) / (2 * EDGE_REACH) * (EDGE_COLS - 1)).astype(np.intp), 0, EDGE_COLS - 1)
    g, ok = gx[rows, col], valid[rows, col]
    n = ok.sum(-1)
    # each pixel's say is capped at EDGE_CAP typical gradients: one very sharp edge met by a line for a few
    # rows (a black placket on a white blouse, crossed by a slanted line) must not make the whole line strong
    g = np.clip(g, -EDGE_CAP * scale, EDGE_CAP * scale)
    mean = (g * ok).sum(-1) / np.maximum(n, 1)
    strength = np.where(n >= 0.6 * EDGE_ROWS, mean / scale, 0.0)
    strong = ((np.abs(g) > 2 * scale) & ok & (np.sign(g) == np.sign(mean)[..., None])).sum(-1) / np.maximum(n, 1)
    return strength, strong


def sample_grid(rgb: np.ndarray, person: np.ndarray, neck: np.ndarray, u: np.ndarray, v: np.ndarray, span: float,
                length: float, s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The image and the person mask resampled onto a grid in the torso frame: row ``i`` at ``s[i]`` torso
    lengths down the axis from the neck, column ``j`` at ``a[j]`` half shoulder spans across (``u`` down,
    ``v`` across, in image pixels). The image is blurred to the grid's column pitch first so that the
    resampling does not alias texture into edges (only the box holding the grid is blurred). (uint8 RGB
    ``[rows, cols, 3]``, bool ``[rows, cols]``), or None when the grid's box is under 4 pixels."""
    import cv2

    ss, aa = np.meshgrid(s, a, indexing="ij")
    mx = (neck[0] + ss * length * u[0] + aa * span / 2 * v[0]).astype(np.float32)
    my = (neck[1] + ss * length * u[1] + aa * span / 2 * v[1]).astype(np.float32)
    pitch = span / 2 * (float(a[-1] - a[0]) / (len(a) - 1))
    k = max(1, int(round(pitch)))
    h, w = person.shape
    x0, x1 = max(int(mx.min()) - k - 1, 0), min(int(mx.max()) + k + 2, w)
    y0, y1 = max(int(my.min()) - k - 1, 0), min(int(my.max()) + k + 2, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    box = rgb[y0:y1, x0:x1]
    if k > 1:
        box = cv2.blur(box, (k, k))
    mx -= x0
    my -= y0
    grid = cv2.remap(np.ascontiguousarray(box), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inside = cv2.remap(np.ascontiguousarray(person[y0:y1, x0:x1]).view(np.uint8), mx, my, cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return grid, inside.view(bool)


def opening_edges(rgb: np.ndarray, person: np.ndarray, neck: np.ndarray, u: np.ndarray, v: np.ndarray,
                  span: float, length: float) -> OpeningEdges | None:
    """An open garment's two front edges, a cue that survives low colour contrast (black on black, cobalt on
    navy): two long lines down the torso, mirrored about the body's axis, across which the brightness (or a
    colour channel) steps the same way all along each line and the opposite way on the two sides (outer ->
    inner on the left, inner -> outer on the right). A print gives short or unsigned edges, a placket or a
    single colour block one edge, a plain top none. The torso is resampled onto the EDGE_* grid (axis neck
    -> mid-hip, ``u`` down and ``v`` across in image pixels, ``span`` the shoulder span); each CIELAB
    channel's gradient across is projected along every candidate line, in units of the channel's median
    |gradient| on the torso's cloth (+0.5, the floor of a flat studio shot); the best channel wins per line.
    None when too little of the grid is cloth inside the person mask."""
    sampled = sample_grid(rgb, person, neck, u, v, span, length, np.linspace(EDGE_FROM, EDGE_TO, EDGE_ROWS),
                          np.linspace(-EDGE_REACH, EDGE_REACH, EDGE_COLS))
    if sampled is None:
        return None
    grid, inside = sampled
    import cv2

    # two grid columns in from the person's outline (its own edge is not a garment's), and not skin (a
    # V-neck's bare chest has edges too)
    valid = cv2.erode(inside.view(np.uint8), np.ones((1, 5), np.uint8)).view(bool) & ~body.skin_mask(grid)
    if int(valid.sum()) < 50:
        return None
    lab = body.rgb_to_lab(grid)
    per_channel = []
    for ch in range(3):
        gx = cv2.Sobel(np.ascontiguousarray(lab[..., ch]), cv2.CV_32F, 1, 0, ksize=3) / 8
        scale = float(np.median(np.abs(gx[valid]))) + 0.5
        per_channel.append((*_line_gradients(gx, valid, 1, scale), *_line_gradients(gx, valid, -1, scale)))
    sl, pl, sr, pr = (np.stack([c[k] for c in per_channel]) for k in range(4))
    return OpeningEdges(left_strength=sl, right_strength=sr, left_persistence=pl, right_persistence=pr)


def _median_lab(lab: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    n = int(mask.sum())
    return None if n < MIN_PX else np.median(lab[mask], axis=0)


def torso_frame(kps: np.ndarray, min_conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float] | str:
    """The detector's torso frame from COCO-18 keypoints: (neck = the shoulders' midpoint, ``u`` the unit
    vector down to the mid-hip, ``v`` across towards the person's left, the shoulder span, the neck -> hip
    length), in pixels; a string saying why not."""
    t = body.torso(kps, min_conf)
    if t is None:
        return "torso not located (shoulders not seen)"
    rs, ls = kps[body.R_SHOULDER, :2].astype(np.float64), kps[body.L_SHOULDER, :2].astype(np.float64)
    span = float(np.linalg.norm(ls - rs))
    neck = (rs + ls) / 2
    hip = t.mid_hip if t.mid_hip is not None else neck + np.array([0.0, max(span / 0.8, 1.0)])
    length = float(np.linalg.norm(hip - neck))
    if span < 10 or length < 10:
        return f"torso too small or turned (shoulder span {span:.0f} px)"
    return neck, (hip - neck) / length, (ls - rs) / span, span, length


def measure_torso(rgb: np.ndarray, person: np.ndarray, kps: np.ndarray, min_conf: float) -> TorsoColours | str:
    """The torso's colours (see :class:`TorsoColours`) from the image, the person mask and COCO-18 keypoints
    (all in the same pixel frame); a string saying why not when the torso cannot be measured."""
    import cv2

    frame = torso_frame(kps, min_conf)
    if isinstance(frame, str):
        return frame
    neck, u, v, span, length = frame
    rs, ls = kps[body.R_SHOULDER, :2].astype(np.float64), kps[body.L_SHOULDER, :2].astype(np.float64)
    h, w = person.shape
    # only the torso's bounding box (out to REACH half spans: the outer garment's edge and the sleeves
    # beside the body) is converted and measured
    corners = [neck + a * u * length + b * v * span / 2 for a in (ROWS_FROM, ROWS_TO) for b in (-REACH, REACH)]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    x0, x1 = max(int(min(xs)) - 1, 0), min(int(max(xs)) + 2, w)
    y0, y1 = max(int(min(ys)) - 1, 0), min(int(max(ys)) + 2, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return "torso outside the image"
    # the upper arms (shoulder -> elbow, between ARM_FROM and ARM_TO) of the elbows that are seen
    arm_segments = []
    for sh, el in ((body.R_SHOULDER, body.R_ELBOW), (body.L_SHOULDER, body.L_ELBOW)):
        if body.seen(kps, el, min_conf):
            p0, p1 = kps[sh, :2].astype(np.float64), kps[el, :2].astype(np.float64)
            arm_segments.append((p0 + (p1 - p0) * ARM_FROM, p0 + (p1 - p0) * ARM_TO))
    ksize = max(1, int(round(span / 25)))
    line_width = max(2, int(span * ARM_WIDTH))
    # Colour conversion, blur and skin test only inside the box holding the torso and the arms, padded by
    # more than the blur and the line width: the same values as over the whole image (the blur sees the
    # same neighbours), for a third of the pixels of a 512-px full-body photo.
    pts = [p for seg in arm_segments for p in seg] + corners
    pad = ksize + line_width + 2
    bx0, bx1 = max(int(min(p[0] for p in pts)) - pad, 0), min(int(max(p[0] for p in pts)) + pad + 1, w)
    by0, by1 = max(int(min(p[1] for p in pts)) - pad, 0), min(int(max(p[1] for p in pts)) + pad + 1, h)
    lab_box = body.rgb_to_lab(rgb[by0:by1, bx0:bx1])
    if ksize > 1:
        lab_box = cv2.blur(lab_box, (ksize, ksize))
    skin_box = body.skin_mask(rgb[by0:by1, bx0:bx1])
    person_box = person[by0:by1, bx0:bx1]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - neck[0], yy - neck[1]
    s = (dx * u[0] + dy * u[1]) / length
    a = (dx * v[0] + dy * v[1]) / (span / 2)
    crop = (slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0))
    lab, skin, g = lab_box[crop], skin_box[crop], person_box[crop]

    centre_rows, side_rows, centre_skin = [], [], []
    edges = np.linspace(ROWS_FROM, ROWS_TO, N_ROWS + 1)
    body_band = g & (np.abs(a) < REACH)
    centre_band = g & (np.abs(a) < CENTRE_HALF_WIDTH)
    for lo, hi in zip(edges[:-1], edges[1:]):
        row = (s >= lo) & (s < hi)
        c = centre_band & row
        # the row's sides: the outer SIDE_SHARE of the person's extent across it, on each side, not skin
        # (an open garment's front panels and the sleeves beside the body are its outermost pixels)
        ar = a[body_band & row]
        if ar.size < MIN_PX:
            continue
        hi_a, lo_a = float(ar.max()), float(ar.min())
        if hi_a < CENTRE_HALF_WIDTH or lo_a > -CENTRE_HALF_WIDTH:
            continue  # the person does not reach across the centre on both sides in this row
        cut = SIDE_SHARE * (hi_a - lo_a)
        l_ = body_band & row & (a > hi_a - cut) & ~skin
        r_ = body_band & row & (a < lo_a + cut) & ~skin
        mc, ml, mr = _median_lab(lab, c), _median_lab(lab, l_), _median_lab(lab, r_)
        if mc is None or ml is None or mr is None:
            continue
        centre_rows.append(mc)
        side_rows.append((ml, mr))
        centre_skin.append(float(skin[c].mean()))
    if len(centre_rows) < 4:
        return f"only {len(centre_rows)} torso rows inside the person mask"
    centre = np.asarray(centre_rows)
    left = np.asarray([p[0] for p in side_rows])
    right = np.asarray([p[1] for p in side_rows])
    sides = (left + right) / 2
    centre_med = np.median(centre, axis=0)
    # sleeves: each upper arm's non-skin pixels
    arm_colours, arm_skin = [], []
    for pa, pb in arm_segments:
        seg = np.zeros(person_box.shape, np.uint8)
        ends = [tuple(int(round(c)) for c in (q[0] - bx0, q[1] - by0)) for q in (pa, pb)]
        cv2.line(seg, ends[0], ends[1], 1, line_width)
        arm = seg.view(bool) & person_box
        if int(arm.sum()) < MIN_PX:
            continue
        arm_skin.append(float(skin_box[arm].mean()))
        mc = _median_lab(lab_box, arm & ~skin_box)
        if mc is not None:
            arm_colours.append(mc)
    sleeve = None
    if arm_colours:
        sc = np.mean(arm_colours, axis=0)
        far_side = max(float(np.linalg.norm(sc - np.median(left, axis=0))), float(np.linalg.norm(sc - np.median(right, axis=0))))
        sleeve = (float(np.linalg.norm(sc - np.median(sides, axis=0))), float(np.linalg.norm(sc - centre_med)),
                  float(np.mean(arm_skin)), far_side)
    return TorsoColours(
        centre_vs_sides=np.linalg.norm(centre - sides, axis=1),
        left_vs_right=np.linalg.norm(left - right, axis=1),
        centre_skin=np.asarray(centre_skin),
        sleeve=sleeve,
        centre_vs_left=np.linalg.norm(centre - left, axis=1),
        centre_vs_right=np.linalg.norm(centre - right, axis=1),
        centre_row_spread=float(np.median(np.linalg.norm(centre - centre_med, axis=1))),
        edges=opening_edges(rgb, person, neck, u, v, span, length),
    )


def decide(m: TorsoColours, th: "Thresholds") -> Verdict:
    """``layered`` / ``single`` from the measured colours and the thresholds, with the numbers that decided
    (the rule: the module's docstring)."""
    # an opening row: the centre unlike *each* side (not only their mean: a panel that matches one side is a
    # print), the two sides alike (the two front edges of one garment), the centre not bare skin
    opening = ((np.minimum(m.centre_vs_left, m.centre_vs_right) > th.det_opening_min_delta_e)
               & (m.left_vs_right < th.det_opening_max_side_delta_e) & (m.centre_skin < 0.5))
    opening_fraction = float(opening.mean())
    rows = int(m.centre_vs_sides.size)
    scores: dict[str, float | int | None] = {
        "rows": rows,
        "centre_vs_sides_delta_e": float(np.median(m.centre_vs_sides)),
        "left_vs_right_delta_e": float(np.median(m.left_vs_right)),
        "opening_row_fraction": opening_fraction,
        "centre_row_spread_delta_e": m.centre_row_spread,
        "centre_skin": float(np.median(m.centre_skin)),
    }
    signals: list[str] = []
    # too few rows measured (a cropped or turned torso) or no opening down the torso: one garment
    if rows >= th.det_min_rows and opening_fraction >= th.det_opening_min_row_fraction:
        if m.sleeve is not None:
            de_sleeve_sides, de_sleeve_centre, sleeve_skin, de_sleeve_far_side = m.sleeve
            scores.update(sleeve_vs_sides_delta_e=de_sleeve_sides, sleeve_vs_centre_delta_e=de_sleeve_centre,
                          sleeve_skin=sleeve_skin, sleeve_vs_farther_side_delta_e=de_sleeve_far_side)
            if (sleeve_skin < th.det_sleeve_max_skin and de_sleeve_far_side <= th.det_sleeve_max_side_delta_e
                    and de_sleeve_centre >= th.det_sleeve_min_centre_delta_e):
                signals.append("opening-with-sleeves-of-the-sides")
        if m.centre_row_spread <= th.det_centre_max_row_spread:
            signals.append("opening-of-one-inner-colour")
    if rows >= th.det_min_rows and m.edges is not None:
        strength, persistence, top, bottom = edge_pair(m.edges, th.det_edge_min_offset)
        scores.update(edge_pair_strength=strength, edge_pair_persistence=persistence, edge_pair_top=top,
                      edge_pair_bottom=bottom)
        if strength >= th.det_edge_min_strength and persistence >= th.det_edge_min_persistence:
            signals.append("opening-edges")
    return Verdict("layered" if signals else "single", Source.DETECTOR_SEGMENTATION, scores=scores, signals=signals)


def outer_layer_cue(rgb: np.ndarray, person: np.ndarray, kps: np.ndarray, th: "Thresholds") -> dict[str, float] | None:
    """The learnt cue (fourth round, :mod:`curate.filters.layer_cue`): the person-level numbers read off the
    predicted outer-layer map; None when the cue is off (``det_outer_layer_min_score`` inf: nothing is
    computed) or the torso's cells cannot be measured."""
    if not np.isfinite(th.det_outer_layer_min_score):
        return None
    from curate.filters import layer_cue

    cells = layer_cue.torso_cells(rgb, person, kps, th.min_keypoint_conf)
    if cells is None:
        return None
    model = layer_cue.shipped_model()
    return layer_cue.outer_layer_score(model.predict(cells), cells, model.readout)


def open_layer_from_pixels(rgb: np.ndarray, person: np.ndarray, kps: np.ndarray, th: "Thresholds") -> Verdict:
    """``layered`` / ``single`` / ``unknown`` for one person: :func:`measure_torso` then :func:`decide`, OR the
    learnt outer-layer cue (:func:`outer_layer_cue`) at ``det_outer_layer_min_score``; where the torso's
    colours cannot be measured, the cue alone can still say ``layered`` (otherwise ``unknown``, as before)."""
    m = measure_torso(rgb, person, kps, th.min_keypoint_conf)
    cue = outer_layer_cue(rgb, person, kps, th)
    fires = cue is not None and cue["outer_score"] >= th.det_outer_layer_min_score
    if isinstance(m, str):
        if fires:
            return Verdict("layered", Source.DETECTOR_SEGMENTATION, scores=dict(cue), signals=["outer-layer-map"], detail=m)
        return Verdict("unknown", Source.DETECTOR_SEGMENTATION, detail=m)
    v = decide(m, th)
    if cue is None:
        return v
    signals = [*v.signals, "outer-layer-map"] if fires else v.signals
    return Verdict("layered" if signals else "single", v.source, scores={**v.scores, **cue}, signals=signals, detail=v.detail)
