"""Thin-plate-spline sampling grids (CP-VTON GMM, ACGPN STN, VITON) with ``align_corners`` always explicit.

The reference repos never pass ``align_corners`` and were trained on PyTorch versions that behaved like
``True``; today's default is ``False``. Every function here takes it as an argument so a model states
which convention its checkpoint was trained with (see shared/reference/checkpoints/INDEX.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def regular_control_points(grid_size: int, x_major: bool = True, span: float = 1.0) -> Tensor:
    """A ``grid_size`` x ``grid_size`` lattice of (x, y) points on linspace(-span, span), shape [N, 2].

    The order matters because a regression head predicts one offset per point and a checkpoint fixes it:
    ``x_major=True``: point i*grid_size + j is (a[i], a[j]), x outer and y inner (CP-VTON's TpsGridGen);
    ``x_major=False``: point i*grid_size + j is (a[j], a[i]), y outer and x inner (ACGPN / tps_stn).
    """
    a = torch.linspace(-span, span, grid_size, dtype=torch.float64)
    outer, inner = torch.meshgrid(a, a, indexing="ij")
    xy = (outer, inner) if x_major else (inner, outer)
    return torch.stack([t.reshape(-1) for t in xy], dim=1).float()


def pixel_coordinates(height: int, width: int, align_corners: bool) -> Tensor:
    """Normalised (x, y) of every pixel centre, [H, W, 2], in the convention ``F.grid_sample`` uses."""

    def axis(n: int) -> Tensor:
        if align_corners:
            return torch.linspace(-1, 1, n, dtype=torch.float64)
        return (2 * torch.arange(n, dtype=torch.float64) + 1) / n - 1

    y, x = torch.meshgrid(axis(height), axis(width), indexing="ij")
    return torch.stack([x, y], dim=-1)


def _tps_kernel(a: Tensor, b: Tensor) -> Tensor:
    """U(|a_i - b_j|) with U(r) = r^2 log r^2 and U(0) = 0 (its limit), [len(a), len(b)]."""
    d2 = (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)
    return torch.where(d2 > 0, d2 * torch.log(d2.clamp_min(1e-300)), torch.zeros_like(d2))


def warp(image: Tensor, grid: Tensor, align_corners: bool, padding_mode: str = "border") -> Tensor:
    """Bilinear ``F.grid_sample`` with the pixel convention stated, never the library default."""
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)


class TPSGridGen(nn.Module):
    """Sampling grid of the thin-plate spline f with f(control_i) = source_i, evaluated at every output pixel.

    grid[b, y, x] = f(pixel (x, y)) tells ``grid_sample`` where in the source image to read. Because the
    control points and pixels are fixed, f at the pixels is linear in the source points: grid = M @ source
    with M = [U(|t - p|), 1, t] @ L^-1[:, :N] precomputed (float64, then float32). The constants are
    non-persistent buffers: they follow ``.to(device)`` but never enter a state_dict.
    """

    def __init__(self, height: int, width: int, control_points: Tensor, align_corners: bool) -> None:
        super().__init__()
        self.height, self.width, self.align_corners = height, width, align_corners
        p = control_points.to(torch.float64)
        n = p.shape[0]
        affine = torch.cat([torch.ones(n, 1, dtype=torch.float64), p], dim=1)  # [N, 3]: 1, x, y
        system = torch.zeros(n + 3, n + 3, dtype=torch.float64)
        system[:n, :n], system[:n, n:], system[n:, :n] = _tps_kernel(p, p), affine, affine.T
        # f's coefficients [w; a] = L^-1 [source; 0], so only the first N columns of L^-1 are ever used.
        coefficients = torch.linalg.inv(system)[:, :n]
        target = pixel_coordinates(height, width, align_corners).reshape(-1, 2)
        repr_ = torch.cat([_tps_kernel(target, p), torch.ones(len(target), 1, dtype=torch.float64), target], dim=1)
        self.register_buffer("control_points", p.float(), persistent=False)
        self.register_buffer("base_grid", target.reshape(height, width, 2).float(), persistent=False)
        self.register_buffer("mapping", (repr_ @ coefficients).float(), persistent=False)  # [H*W, N]

    def forward(self, source_points: Tensor) -> Tensor:
        """[B, N, 2] (x, y) source points -> [B, H, W, 2] grid for ``F.grid_sample``."""
        grid = torch.einsum("pn,bnd->bpd", self.mapping.to(source_points.dtype), source_points)
        return grid.reshape(source_points.shape[0], self.height, self.width, 2)

    def forward_offsets(self, offsets: Tensor) -> Tensor:
        """Grid for control_points + offsets. [B, N, 2], or [B, 2N] in CP-VTON's theta layout (all x, then all y)."""
        if offsets.dim() == 2:
            offsets = offsets.reshape(offsets.shape[0], 2, -1).transpose(1, 2)
        return self(self.control_points.to(offsets.dtype) + offsets)

    def warp(self, image: Tensor, source_points: Tensor, padding_mode: str = "border") -> Tensor:
        """Warp ``image`` with this generator's own ``align_corners``, so grid and sampling cannot disagree."""
        return warp(image, self(source_points), self.align_corners, padding_mode)


# --------------------------------------------------------------------------------------------------
# A thin-plate spline fitted to point correspondences (VITON's shape-context warp)


def fit_tps(source: Tensor, target: Tensor, regularization: float = 0.0) -> Tensor:
    """Coefficients [N + 3, 2] of the TPS f (x and y columns) with f(source_i) ~ target_i, Bookstein (1989).

    Solves [[K + lambda I, P], [P^T, 0]] [w; a] = [target; 0] with K = U(|s_i - s_j|), P = [1, x, y]: the
    exact interpolant for lambda = 0, smoother (towards the best affine map) as lambda grows (the
    shape-context papers use lambda = beta * mean_distance^2). float64; raises ``torch.linalg.LinAlgError``
    when the system is singular (e.g. every source point on one line with lambda = 0).
    """
    s, t = source.to(torch.float64), target.to(torch.float64)
    n = s.shape[0]
    affine = torch.cat([torch.ones(n, 1, dtype=torch.float64), s], dim=1)
    system = torch.zeros(n + 3, n + 3, dtype=torch.float64)
    system[:n, :n] = _tps_kernel(s, s) + regularization * torch.eye(n, dtype=torch.float64)
    system[:n, n:], system[n:, :n] = affine, affine.T
    rhs = torch.cat([t, torch.zeros(3, 2, dtype=torch.float64)], dim=0)
    return torch.linalg.solve(system, rhs)


def apply_tps(coefficients: Tensor, source: Tensor, points: Tensor) -> Tensor:
    """f(points) [M, 2] for the TPS of ``fit_tps(source, ...)``: sum_i w_i U(|p - s_i|) + a0 + a1 x + a2 y."""
    p = points.to(torch.float64)
    basis = torch.cat([_tps_kernel(p, source.to(torch.float64)), torch.ones(len(p), 1, dtype=torch.float64), p], dim=1)
    return basis @ coefficients


def pixels_to_normalised(xy: Tensor, height: int, width: int, align_corners: bool) -> Tensor:
    """(x, y) in pixel units (pixel centres at integers) -> ``F.grid_sample``'s [-1, 1] coordinates,
    the convention ``pixel_coordinates`` uses; ``normalised_to_pixels`` is its inverse."""
    size = torch.tensor([width, height], dtype=torch.float64)
    xy = xy.to(torch.float64)
    return 2 * xy / (size - 1) - 1 if align_corners else (2 * xy + 1) / size - 1


def normalised_to_pixels(xy: Tensor, height: int, width: int, align_corners: bool) -> Tensor:
    size = torch.tensor([width, height], dtype=torch.float64)
    xy = xy.to(torch.float64)
    return (xy + 1) * (size - 1) / 2 if align_corners else ((xy + 1) * size - 1) / 2
