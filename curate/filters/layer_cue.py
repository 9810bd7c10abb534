"""A layering cue learnt from pixel annotations (issue 19, fourth round): where on the torso an outer garment is.

The detector path has MediaPipe's pose and a person mask only. This cue resamples the torso onto a small
grid in the pose's torso frame (:func:`torso_cells`) and describes each cell by what is available without
parsing: its position (across and down the torso), its colour relative to the row's centre strip, the
torso's centre, the same side's outermost cloth, the mirrored cell and the upper sleeves, its brightness,
chroma, skin test and local gradient, and how far in from the person's outline it lies. A tiny classifier
(:class:`OuterLayerModel`, a logistic regression or a one-hidden-layer MLP whose weights are the JSON file
``layer_cue.json`` beside this module, over the subset of :data:`FEATURES` it names) gives each cell the
probability that it is an *outer layer* (the outer of two upper garments: an open jacket, blazer, coat,
cardigan, vest); :func:`outer_layer_score` reads the person-level score off that map. The weights were fitted by ``bench/filters/train_layer_cue.py`` on the pixel
annotations of the tuning-split ccp-layering photos only, its features and threshold chosen by
leave-one-person-out cross-validation there (docs/benchmarks/filters.md, fourth round).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

from curate.filters import body

# The grid: CELL_ROWS rows from CELL_FROM to CELL_TO torso lengths below the neck, CELL_COLS columns across
# +-CELL_REACH half shoulder spans (the outer garment's edge and the sleeves beside the body).
CELL_ROWS, CELL_COLS, CELL_FROM, CELL_TO, CELL_REACH = 24, 32, 0.05, 1.0, 1.6
CENTRE_HALF_WIDTH = 0.25  # the centre strip, half spans
SIDE_CELLS = 3  # the outermost cloth cells of a row, on each side, give that side's colour
ARM_FROM, ARM_TO = 0.3, 0.8  # the upper sleeve: this stretch of the shoulder -> elbow segment
WEIGHTS = Path(__file__).with_name("layer_cue.json")
FEATURES = (
    "|a|", "s", "dE_row_centre", "dE_torso_centre", "dE_same_side_outer", "dE_mirror", "dE_sleeve", "sleeve_seen",
    "dL_row_centre", "skin", "depth_in", "gradient", "L", "chroma", "dE_row_centre_vs_side",
    "dE_row_centre_both_mirrors", "dE_vertical", "step_to_centre", "differs_to_centre", "local_spread",
)


@dataclasses.dataclass(frozen=True)
class TorsoCells:
    """The cue's grid on one torso: per cell the features (``[rows, cols, len(FEATURES)]``), whether it is
    inside the person mask, its position ``a`` across (half spans, + = the person's left) and ``s`` down
    (torso lengths), and where it lies in the image (``x``, ``y``, pixels of the frame the detector saw)."""

    features: np.ndarray
    inside: np.ndarray
    a: np.ndarray
    s: np.ndarray
    x: np.ndarray
    y: np.ndarray


def _de(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sqrt(((p - q) ** 2).sum(-1))


def _sleeve_lab(rgb: np.ndarray, person: np.ndarray, kps: np.ndarray, min_conf: float) -> np.ndarray | None:
    """The upper sleeves' median CIELAB colour (person pixels, not skin, along each seen upper arm)."""
    h, w = person.shape
    pts = []
    for sh, el in ((body.R_SHOULDER, body.R_ELBOW), (body.L_SHOULDER, body.L_ELBOW)):
        if body.seen(kps, el, min_conf) and body.seen(kps, sh, min_conf):
            p0, p1 = kps[sh, :2].astype(np.float64), kps[el, :2].astype(np.float64)
            for t in np.linspace(ARM_FROM, ARM_TO, 12):
                pts.append(p0 + (p1 - p0) * t)
    if not pts:
        return None
    xy = np.round(np.asarray(pts)).astype(np.intp)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    xy = xy[ok]
    if len(xy) < 4:
        return None
    px = rgb[xy[:, 1], xy[:, 0]]
    keep = person[xy[:, 1], xy[:, 0]] & ~body.skin_mask(px)
    if int(keep.sum()) < 4:
        return None
    return np.median(body.rgb_to_lab(px[keep]), axis=0)


def _vertical(lab: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Per cell, the mean CIELAB distance to the cells two rows above and below (inside the person)."""
    out = np.zeros(inside.shape, np.float32)
    n = np.zeros(inside.shape, np.float32)
    for d in (-2, 2):
        q = np.roll(lab, d, axis=0)
        ok = np.roll(inside, d, axis=0) & inside
        if d > 0:
            ok[:d] = False
        else:
            ok[d:] = False
        out += np.where(ok, _de(lab, q), 0.0)
        n += ok
    return out / np.maximum(n, 1)


def _local_spread(lab: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Per cell, the mean CIELAB distance to its 8 neighbours inside the person (a print varies from cell to
    cell, a plain outer garment does not)."""
    p = np.pad(lab, ((1, 1), (1, 1), (0, 0)), mode="edge")
    q = np.pad(inside, 1)
    rows, cols = inside.shape
    out = np.zeros(inside.shape, np.float32)
    n = np.zeros(inside.shape, np.float32)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                ok = q[1 + di:1 + di + rows, 1 + dj:1 + dj + cols] & inside
                out += np.where(ok, _de(lab, p[1 + di:1 + di + rows, 1 + dj:1 + dj + cols]), 0.0)
                n += ok
    return out / np.maximum(n, 1)


def _towards_centre(lab: np.ndarray, cloth: np.ndarray, rc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, along its row from the cell to the axis: the largest colour step between neighbouring
    columns (/50: an opening's edge lies between a flank cell and the centre) and the share of those
    columns' cloth that is over 10 from the row's centre colour (an outer panel runs in from the outline)."""
    rows, cols = cloth.shape
    half = cols // 2
    step = np.zeros((rows, cols), np.float32)
    step[:, 1:] = _de(lab[:, 1:], lab[:, :-1])
    differs = (_de(lab, rc) > 10) & cloth
    max_step = np.zeros((rows, cols), np.float32)
    share = np.zeros((rows, cols), np.float32)
    # left half (columns 0..half-1, towards the axis = increasing j): running max / mean from j to half-1
    for lo, hi, rev in ((0, half, True), (half, cols, False)):
        st, df, cl = step[:, lo:hi], differs[:, lo:hi].astype(np.float32), cloth[:, lo:hi].astype(np.float32)
        if rev:
            st, df, cl = st[:, ::-1], df[:, ::-1], cl[:, ::-1]
        m = np.maximum.accumulate(st, axis=1)
        sh = np.cumsum(df, axis=1) / np.maximum(np.cumsum(cl, axis=1), 1)
        if rev:
            m, sh = m[:, ::-1], sh[:, ::-1]
        max_step[:, lo:hi], share[:, lo:hi] = m, sh
    return max_step / 50, share


def torso_cells(rgb: np.ndarray, person: np.ndarray, kps: np.ndarray, min_conf: float) -> TorsoCells | None:
    """The cue's cell features on one torso (see the module docstring); None when the torso is not located
    or too little of the grid is cloth."""
    import cv2

    from curate.filters import layers

    frame = layers.torso_frame(kps, min_conf)
    if isinstance(frame, str):
        return None
    neck, u, v, span, length = frame
    s = np.linspace(CELL_FROM, CELL_TO, CELL_ROWS)
    a = np.linspace(-CELL_REACH, CELL_REACH, CELL_COLS)
    sampled = layers.sample_grid(rgb, person, neck, u, v, span, length, s, a)
    if sampled is None:
        return None
    grid, inside = sampled
    skin = body.skin_mask(grid)
    cloth = inside & ~skin
    if int(cloth.sum()) < 50:
        return None
    lab = body.rgb_to_lab(grid)
    aa = np.broadcast_to(a[None, :], inside.shape)
    central = cloth & (np.abs(aa) < CENTRE_HALF_WIDTH)
    torso_centre = np.median(lab[central], axis=0) if central.any() else np.median(lab[cloth], axis=0)
    row_centre = np.empty((CELL_ROWS, 3), np.float32)
    side = np.empty((CELL_ROWS, CELL_COLS, 3), np.float32)
    depth = np.zeros(inside.shape, np.float32)
    cols = np.arange(CELL_COLS)
    half = CELL_COLS // 2
    for i in range(CELL_ROWS):
        c = central[i]
        row_centre[i] = np.median(lab[i, c], axis=0) if c.any() else torso_centre
        for lo, hi, outer_first in ((0, half, True), (half, CELL_COLS, False)):
            js = cols[lo:hi][cloth[i, lo:hi]]
            if js.size:
                pick = js[:SIDE_CELLS] if outer_first else js[-SIDE_CELLS:]
                side[i, lo:hi] = np.median(lab[i, pick], axis=0)
            else:
                side[i, lo:hi] = row_centre[i]
        js = cols[inside[i]]
        if js.size:
            depth[i] = np.clip(np.minimum(cols - js.min(), js.max() - cols), 0, None) / half
    sleeve = _sleeve_lab(rgb, person, kps, min_conf)
    gx = cv2.Sobel(np.ascontiguousarray(lab[..., 0]), cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(np.ascontiguousarray(lab[..., 0]), cv2.CV_32F, 0, 1, ksize=3) / 8
    grad = np.hypot(gx, gy)
    grad = grad / (float(np.median(grad[cloth])) + 0.5)
    rc = row_centre[:, None, :]
    mirror = lab[:, ::-1]
    f = np.stack([
        np.abs(aa) / CELL_REACH,
        np.broadcast_to(((s - CELL_FROM) / (CELL_TO - CELL_FROM))[:, None], inside.shape),
        _de(lab, rc) / 50,
        _de(lab, torso_centre) / 50,
        _de(lab, side) / 50,
        np.where(inside[:, ::-1], _de(lab, mirror), 0.0) / 50,
        (_de(lab, sleeve) if sleeve is not None else np.zeros(inside.shape)) / 50,
        np.full(inside.shape, float(sleeve is not None)),
        (lab[..., 0] - rc[..., 0]) / 50,
        skin.astype(np.float32),
        depth,
        np.minimum(grad, 5.0) / 5,
        lab[..., 0] / 100,
        np.hypot(lab[..., 1], lab[..., 2]) / 50,
        np.broadcast_to(_de(side, rc), inside.shape) / 50,
        np.where(inside[:, ::-1], np.minimum(_de(lab, rc), _de(mirror, rc)), 0.0) / 50,
        _vertical(lab, inside) / 50,
        *_towards_centre(lab, cloth, rc),
        _local_spread(lab, inside) / 50,
    ], axis=-1).astype(np.float32)
    ss, aa2 = np.meshgrid(s, a, indexing="ij")
    x = neck[0] + ss * length * u[0] + aa2 * span / 2 * v[0]
    y = neck[1] + ss * length * u[1] + aa2 * span / 2 * v[1]
    return TorsoCells(features=f, inside=inside, a=a, s=s, x=x, y=y)


@dataclasses.dataclass(frozen=True)
class OuterLayerModel:
    """P(outer layer) per cell: standardise the selected features (``mean``, ``std``), then a logistic
    regression (``w1`` None: ``w2`` [F], ``b2``) or one tanh hidden layer (``w1`` [F, H], ``b1`` [H], then
    ``w2`` [H], ``b2``)."""

    features: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    w1: np.ndarray | None
    b1: np.ndarray | None
    w2: np.ndarray
    b2: float
    readout: dict

    def predict(self, cells: TorsoCells) -> np.ndarray:
        """P(outer) on the grid (``[rows, cols]``; 0 outside the person)."""
        idx = [FEATURES.index(n) for n in self.features]
        x = (cells.features[..., idx] - self.mean) / self.std
        h = x if self.w1 is None else np.tanh(x @ self.w1 + self.b1)
        p = 1 / (1 + np.exp(-(h @ self.w2 + self.b2)))
        return np.where(cells.inside, p, 0.0)

    def to_json(self) -> dict:
        arr = lambda v: None if v is None else np.asarray(v, np.float64).round(6).tolist()  # noqa: E731
        return {"features": list(self.features), "mean": arr(self.mean), "std": arr(self.std), "w1": arr(self.w1),
                "b1": arr(self.b1), "w2": arr(self.w2), "b2": float(self.b2), "readout": self.readout}

    @staticmethod
    def from_json(d: dict) -> "OuterLayerModel":
        opt = lambda v: None if v is None else np.asarray(v, np.float32)  # noqa: E731
        return OuterLayerModel(tuple(d["features"]), np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32),
                               opt(d["w1"]), opt(d["b1"]), np.asarray(d["w2"], np.float32), float(d["b2"]), dict(d["readout"]))


@functools.lru_cache(maxsize=1)
def shipped_model() -> OuterLayerModel:
    """The weights fitted by bench/filters/train_layer_cue.py (``layer_cue.json``)."""
    return OuterLayerModel.from_json(json.loads(WEIGHTS.read_text()))


def outer_layer_score(p: np.ndarray, cells: TorsoCells, readout: dict) -> dict[str, float]:
    """The person-level numbers read off the P(outer) map over the torso rows ``readout["s"]``: the mean on
    each flank (``readout["flank"]`` half spans off the axis, inside the person), the centre strip's, and the
    score: the weaker flank minus the centre (an open outer garment covers both flanks, not the centre)."""
    s0, s1 = readout["s"]
    f0, f1 = readout["flank"]
    rows = (cells.s >= s0) & (cells.s <= s1)
    ins = cells.inside & rows[:, None]

    def mean(cols: np.ndarray) -> float:
        m = ins & cols[None, :]
        return float(p[m].mean()) if m.any() else 0.0

    left, right = mean((cells.a >= f0) & (cells.a <= f1)), mean((cells.a <= -f0) & (cells.a >= -f1))
    centre = mean(np.abs(cells.a) < CENTRE_HALF_WIDTH)
    return {"outer_left": left, "outer_right": right, "outer_centre": centre,
            "outer_score": min(left, right) - readout.get("centre_weight", 1.0) * centre}
