"""The cloth-agnostic person representation of VITON, CP-VTON and ACGPN, built once.

From the batch contract: the coarse body shape (``body_shape``: the silhouette down to 1/16 and back),
the head (``head``: face and hair pixels, -1 elsewhere) and 18 pose maps drawn from ``keypoints`` on the
device: +1 inside a (2r+1)-pixel square around each visible keypoint, -1 elsewhere (CP-VTON's radius is
5 px at 256 px height; the caller's config sets r).
"""

from __future__ import annotations

import torch
from torch import Tensor

AGNOSTIC_CHANNELS = 1 + 3 + 18
REPRESENTATION_KEYS = ("body_shape", "head", "keypoints")  # the batch keys person_representation reads


def pose_maps(keypoints: Tensor, size: tuple[int, int], radius: int) -> Tensor:
    """[B,18,3] (x, y, conf) in pixels -> [B,18,H,W]: +1 in a square of half-side ``radius`` at visible points."""
    h, w = size
    ys = torch.arange(h, device=keypoints.device, dtype=keypoints.dtype)[None, None, :, None]
    xs = torch.arange(w, device=keypoints.device, dtype=keypoints.dtype)[None, None, None, :]
    # the reference rounds nothing: its square spans [x - r, x + r] in pixel units
    x, y, conf = (keypoints[..., i][..., None, None] for i in range(3))
    inside = ((xs - x).abs() <= radius) & ((ys - y).abs() <= radius) & (conf > 0)
    return inside.to(keypoints.dtype) * 2 - 1


def person_representation(batch: dict[str, Tensor], radius: int) -> Tensor:
    """[B,22,H,W]: body shape in [-1,1], head RGB, 18 pose maps (CP-VTON's channel order)."""
    shape = batch["body_shape"] * 2 - 1
    return torch.cat([shape, batch["head"], pose_maps(batch["keypoints"], tuple(shape.shape[-2:]), radius)], dim=1)

