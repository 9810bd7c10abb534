"""The normalisation choices the zoo's conv stacks take by name (U-Nets, PatchGANs)."""

from __future__ import annotations

from torch import nn

NORMS = ("instance", "batch", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """InstanceNorm (affine=False: no state_dict keys, as in all the references), BatchNorm or nothing."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm {kind!r}; valid: {', '.join(NORMS)}")
