"""Metric objects that accumulate batch by batch (``update`` / ``compute``), built on ``torchmetrics.Metric``
so their states reduce across processes (``dist_reduce_fx``); the pure functions in :mod:`eval.metrics`
stay the reference and these are tested equal to them.

- :class:`FrechetDistance`: per side, the feature sum and the sum of outer products in float64 and the
  count, so memory is O(D^2) whatever the number of images; the covariance is
  (sum x x^T - n mu mu^T) / (n - 1), the unbiased estimate ``np.cov`` gives.
- :class:`KernelDistance`: the features themselves (small: [N, 2048] float32 ~ 8 KB an image),
  concatenated across processes; the subset size used is reported.
- :class:`MeanWithInterval`: sum, sum of squares and count of a per-image score, for its mean and
  95 % normal-approximation interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from eval import metrics as M


class FrechetDistance(Metric):
    higher_is_better = False
    full_state_update = False

    def __init__(self, dim: int = 2048, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(dim, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(dim, dim, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, features: Tensor, real: bool) -> None:  # type: ignore[override]
        f = torch.as_tensor(features).to(torch.float64)
        side = "real" if real else "fake"
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + f.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + f.T @ f)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + f.shape[0])

    def reference(self, features: np.ndarray) -> None:
        """Fix the real side from a feature matrix every process holds whole (not a state: never reduced,
        so it is not counted once per process)."""
        self._reference = M.feature_statistics(np.asarray(features, np.float64))

    def statistics(self, real: bool) -> tuple[np.ndarray, np.ndarray]:
        if real and getattr(self, "_reference", None) is not None:
            return self._reference
        side = "real" if real else "fake"
        n = float(getattr(self, f"{side}_n"))
        if n < 2:
            raise ValueError(f"FID needs at least 2 {side} images, got {int(n)}")
        mu = (getattr(self, f"{side}_sum") / n).cpu().numpy()
        outer = getattr(self, f"{side}_outer").cpu().numpy()
        return mu, (outer - n * np.outer(mu, mu)) / (n - 1)

    def compute(self) -> Tensor:
        value = M.frechet_distance(*self.statistics(True), *self.statistics(False))
        return torch.tensor(value, dtype=torch.float64)


class KernelDistance(Metric):
    higher_is_better = False
    full_state_update = False

    def __init__(self, subsets: int = 100, subset_size: int = 1000, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")
        self.add_state("fake_index", [], dist_reduce_fx="cat")
        self._reference: np.ndarray | None = None

    def reference(self, features: np.ndarray) -> None:
        """The real features, held whole by every process (not a state: never reduced)."""
        self._reference = np.asarray(features, np.float32)

    def update(self, features: Tensor, real: bool, index: Tensor | None = None) -> None:  # type: ignore[override]
        """``index``: the samples' positions in the whole set, so the subsets drawn do not depend on how
        the set was sharded across processes (the features are put back in that order)."""
        f = torch.as_tensor(features).float()
        if real:
            self.real_features.append(f)
            return
        self.fake_features.append(f)
        if index is not None:
            self.fake_index.append(torch.as_tensor(index, dtype=torch.float64))

    def _features(self, name: str) -> np.ndarray:
        value = getattr(self, name)
        if isinstance(value, list):
            value = torch.cat(value) if value else torch.zeros(0, 1)
        return value.cpu().numpy()

    def compute(self) -> dict[str, Any]:  # type: ignore[override]
        real = self._reference if self._reference is not None else self._features("real_features")
        fake = self._features("fake_features")
        index = self.fake_index if not isinstance(self.fake_index, list) else (torch.cat(self.fake_index) if self.fake_index else None)
        if index is not None and len(index) == len(fake):
            fake = fake[np.argsort(index.cpu().numpy(), kind="stable")]
        used = min(self.subset_size, len(real), len(fake))
        mean, std = M.kernel_inception_distance(real, fake, self.subsets, self.subset_size, self.seed)
        whole = used == len(real) == len(fake)
        # every subset is then the whole set: the spread is round-off, not an uncertainty
        return {"kid": mean, "kid_std": None if whole else std, "kid_subset_size": used, "kid_subsets": self.subsets}


class MeanWithInterval(Metric):
    """The direction of the score it averages is in ``eval.metrics.METRICS`` (torchmetrics makes
    ``higher_is_better`` a class constant)."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("squares", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: Tensor) -> None:  # type: ignore[override]
        v = torch.as_tensor(values).to(torch.float64).flatten()
        self.total += v.sum()
        self.squares += (v * v).sum()
        self.n += v.numel()

    def compute(self) -> dict[str, Any]:  # type: ignore[override]
        n = float(self.n)
        mean = float(self.total) / n
        if n < 2:
            return {"mean": mean, "ci95": [float("nan"), float("nan")]}
        variance = max(float(self.squares) - n * mean * mean, 0.0) / (n - 1)
        half = 1.96 * np.sqrt(variance) / np.sqrt(n)
        return {"mean": mean, "ci95": [mean - half, mean + half]}
