"""Shape-context matching of two binary masks and the thin-plate spline between them, in numpy + SciPy.

VITON (Han et al. 2018) warps the product onto the mask its first stage predicts with Belongie, Malik &
Puzicha's shape-context matching (PAMI 2002), run in Matlab (``shape_context_warp.m`` -> ``tps_main.m``).
This is that procedure in Python, with the reference's parameters (``ShapeContextParams``):

1. ``boundary_points``: ``points`` samples of each mask's contours (every contour, holes included), with
   the boundary tangent from the mask's gradient.
2. ``shape_contexts``: per point, a log-polar histogram (5 distance bins from 1/8 to 2 mean distances,
   12 angle bins) of where the other inlier points lie.
3. The cost of matching two points: 0.9 * chi-square distance of their histograms + 0.1 * the tangent
   difference (1 - cos) / 2; ``dummy_fraction`` dummy points on each side at ``dummy_cost`` let outliers
   go unmatched; ``scipy.optimize.linear_sum_assignment`` solves the assignment (the reference's
   Hungarian algorithm).
4. A regularised TPS from the matched source points to their targets (``models.layers.tps.fit_tps``,
   lambda = mean target distance^2 * 1000 on the first iteration, an almost affine start, then * 1) moves
   the source points; steps 2-4 repeat ``iterations`` times on the moved points.

``warp_control_points`` turns the final matches into what a sampling grid needs: for each control point of
the *target* (the person), where to read in the *source* (the product). The reference evaluated the
forward TPS on a dense 4x-oversampled lattice and took, for each of its 10x10 control points, the nearest
lattice point (extract_tps.m says "there should be a better way"); here the inverse TPS is fitted
directly on the same matches (target -> source, same regularisation) and evaluated at the control points.

Everything is deterministic (contour order from OpenCV, evenly spaced samples, no random subsets: the
reference drew a random 3x oversample and pruned closest pairs, which only serves even spacing) and a
mask with too few boundary points, one thinner than a pixel (a line: the fit's affine part would be free
across it) or a singular fit gives no match (``None``): the caller falls back to the identity warp
instead of failing (the reference skipped such pairs with "not enough keypoints").
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from models.layers.tps import apply_tps, fit_tps, normalised_to_pixels, pixels_to_normalised


@dataclasses.dataclass(frozen=True)
class ShapeContextParams:
    """tps_main.m's settings (nsamp, nbins_theta, nbins_r, r_inner, r_outer, n_iter, ndum_frac, eps_dum,
    ori_weight, affine_start_flag with lambda 1000, beta_init with annealing rate 1)."""

    points: int = 100
    min_points: int = 8  # fewer boundary points than this on either mask: no match (identity warp)
    min_spread: float = 1.0  # pixels (std along the thinner axis): a thinner point set (a line) leaves the affine part free
    bins_theta: int = 12
    bins_r: int = 5
    r_inner: float = 1 / 8
    r_outer: float = 2.0
    iterations: int = 6
    dummy_fraction: float = 0.25
    dummy_cost: float = 0.25
    orientation_weight: float = 0.1
    affine_start: float = 1000.0
    beta: float = 1.0
    tangent_sigma: float = 1.0  # Gaussian smoothing (pixels) of the mask before its gradient gives tangents


@dataclasses.dataclass(frozen=True)
class Match:
    """Matched boundary points (pixel (x, y)), the TPS regularisation of the last iteration and the mean
    matching cost of the pairs kept."""

    source: np.ndarray
    target: np.ndarray
    regularization: float
    cost: float


def boundary_points(mask: np.ndarray, count: int, tangent_sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """([n, 2] (x, y) pixel positions, [n] tangent angles) of ``count`` points evenly spaced along every
    contour of ``mask > 0.5`` (n < count when the contours are shorter). The tangent is the gradient
    direction turned by +90 degrees, so both masks' tangents run the same way round (edge polarity)."""
    import cv2
    from scipy.ndimage import gaussian_filter

    binary = (np.asarray(mask, dtype=np.float64) > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2)), np.zeros(0)
    xy = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.int64)
    if len(xy) > count:
        xy = xy[(np.arange(count) * len(xy)) // count]  # even spacing along the chained boundary pixels
    smooth = gaussian_filter(binary.astype(np.float64), tangent_sigma)
    gy, gx = np.gradient(smooth)
    tangent = np.arctan2(gy[xy[:, 1], xy[:, 0]], gx[xy[:, 1], xy[:, 0]]) + math.pi / 2
    return xy.astype(np.float64), tangent


def shape_contexts(points: np.ndarray, inliers: np.ndarray, params: ShapeContextParams) -> tuple[np.ndarray, float]:
    """([n, bins_theta * bins_r] log-polar histograms, the mean inlier distance that normalised them).

    As sc_compute.m: distances are divided by the mean distance between inliers; a point beyond
    ``r_outer`` falls in no bin; only inliers are counted (outliers still get a histogram); angles are
    absolute (not relative to the tangent), so the descriptor is not rotation invariant, as the reference.
    """
    delta = points[None, :, :] - points[:, None, :]  # [i, j] = p_j - p_i
    dist = np.sqrt((delta**2).sum(-1))
    inner = dist[np.ix_(inliers, inliers)]
    mean_dist = float(inner.mean()) if inner.size else 0.0
    if mean_dist <= 0:
        return np.zeros((len(points), params.bins_theta * params.bins_r)), 0.0
    edges = np.logspace(math.log10(params.r_inner), math.log10(params.r_outer), params.bins_r)
    r_bin = (dist[..., None] / mean_dist < edges).sum(-1)  # bins_r = nearest ring, 0 = beyond r_outer
    angle = np.mod(np.arctan2(delta[..., 1], delta[..., 0]), 2 * math.pi)
    t_bin = np.minimum((angle / (2 * math.pi / params.bins_theta)).astype(np.int64), params.bins_theta - 1)
    counted = (r_bin > 0) & inliers[None, :]
    hist = np.zeros((len(points), params.bins_theta * params.bins_r))
    rows = np.broadcast_to(np.arange(len(points))[:, None], counted.shape)[counted]
    np.add.at(hist, (rows, t_bin[counted] * params.bins_r + r_bin[counted] - 1), 1.0)
    return hist, mean_dist


def chi_square_cost(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """[n1, n2] chi-square distances 0.5 * sum (a - b)^2 / (a + b) of the row-normalised histograms (in [0, 1])."""
    eps = np.finfo(np.float64).eps
    a = h1 / (h1.sum(1, keepdims=True) + eps)
    b = h2 / (h2.sum(1, keepdims=True) + eps)
    return 0.5 * (((a[:, None, :] - b[None, :, :]) ** 2) / (a[:, None, :] + b[None, :, :] + eps)).sum(-1)


def _thinnest_spread(points: np.ndarray) -> float:
    """Standard deviation of ``points`` along their thinnest direction (the smaller principal axis)."""
    return float(np.sqrt(max(np.linalg.eigvalsh(np.cov(points.T))[0], 0.0)))


def match_masks(source_mask: np.ndarray, target_mask: np.ndarray, params: ShapeContextParams = ShapeContextParams()) -> Match | None:
    """Shape-context correspondences from ``source_mask``'s boundary to ``target_mask``'s (tps_main.m),
    or None when either mask has fewer than ``min_points`` boundary points, is thinner than ``min_spread``
    (a line: its TPS would extrapolate without bound across it) or a fit is singular."""
    from scipy.optimize import linear_sum_assignment

    x, t1 = boundary_points(source_mask, params.points, params.tangent_sigma)
    y, t2 = boundary_points(target_mask, params.points, params.tangent_sigma)
    n = min(len(x), len(y))
    if n < params.min_points or min(_thinnest_spread(x), _thinnest_spread(y)) < params.min_spread:
        return None
    # both shapes get the same number of samples, so the dummies pad a square problem as the reference's
    if len(x) > n:
        x, t1 = boundary_points(source_mask, n, params.tangent_sigma)
    if len(y) > n:
        y, t2 = boundary_points(target_mask, n, params.tangent_sigma)
    n_dummy = round(params.dummy_fraction * n)
    moved, tangent = x.copy(), t1.copy()
    out_x, out_y = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    unit = np.stack([np.cos(t1), np.sin(t1)], axis=1)
    x_t = torch.from_numpy(x)
    for k in range(params.iterations):
        h1, _ = shape_contexts(moved, ~out_x, params)
        h2, mean_dist = shape_contexts(y, ~out_y, params)
        if mean_dist <= 0:
            return None
        # lambda scales with the target's size squared, like the TPS kernel r^2 log r^2 it is added to
        regularization = mean_dist**2 * (params.affine_start if k == 0 else params.beta)
        orientation = 0.5 * (1 - np.cos(tangent[:, None] - t2[None, :]))
        cost = (1 - params.orientation_weight) * chi_square_cost(h1, h2) + params.orientation_weight * orientation
        padded = np.full((n + n_dummy, n + n_dummy), params.dummy_cost)
        padded[:n, :n] = cost
        rows, cols = linear_sum_assignment(padded)
        real = (rows < n) & (cols < n)
        src, dst = rows[real], cols[real]
        # a point matched to a dummy is an outlier: left out of the next iteration's histograms
        out_x, out_y = np.ones(n, dtype=bool), np.ones(n, dtype=bool)
        out_x[src], out_y[dst] = False, False
        anchors = x_t[src]
        try:
            coefficients = fit_tps(anchors, torch.from_numpy(y[dst]), regularization)
        except torch.linalg.LinAlgError:
            return None
        moved = apply_tps(coefficients, anchors, x_t).numpy()
        ahead = apply_tps(coefficients, anchors, torch.from_numpy(x + unit)).numpy()  # tangents move with the warp
        tangent = np.arctan2(ahead[:, 1] - moved[:, 1], ahead[:, 0] - moved[:, 0])
        if not np.isfinite(moved).all():
            return None
    return Match(source=x[src], target=y[dst], regularization=float(regularization), cost=float(cost[src, dst].mean()))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside (restored after): the matching's ~100x100 kernels and
    solves are 10-100x slower when split over a pool whose cores other work holds (measured on the
    2-core box: torch.log of 100x100 float64 5.4 ms on 2 threads vs 0.05 ms on one). The thread count is
    process-wide, so torch work in another Python thread meanwhile also runs on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def warp_control_points(source_mask: np.ndarray, target_mask: np.ndarray, control_points: Tensor, align_corners: bool,
                        params: ShapeContextParams = ShapeContextParams()) -> tuple[Tensor, bool]:
    """(where each target control point reads in the source, in ``F.grid_sample`` coordinates [N, 2];
    whether a match was found). ``control_points`` [N, 2] are normalised (x, y) in the target; with no
    match they are returned unchanged: the identity warp. Feed the result to ``TPSGridGen`` built on the
    same control points to warp anything aligned with the source mask onto the target mask."""
    with one_thread():
        return _warp_control_points(source_mask, target_mask, control_points, align_corners, params)


def _warp_control_points(source_mask: np.ndarray, target_mask: np.ndarray, control_points: Tensor, align_corners: bool,
                         params: ShapeContextParams) -> tuple[Tensor, bool]:
    match = match_masks(source_mask, target_mask, params)
    if match is None:
        return control_points.clone(), False
    (th, tw), (sh, sw) = np.shape(target_mask), np.shape(source_mask)
    at = normalised_to_pixels(control_points, th, tw, align_corners)
    target_pts = torch.from_numpy(match.target)
    try:
        inverse = fit_tps(target_pts, torch.from_numpy(match.source), match.regularization)
    except torch.linalg.LinAlgError:
        return control_points.clone(), False
    source = pixels_to_normalised(apply_tps(inverse, target_pts, at), sh, sw, align_corners)
    if not torch.isfinite(source).all():
        return control_points.clone(), False
    return source.to(control_points.dtype), True
