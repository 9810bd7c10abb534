"""Pure metric functions, each tagged with whether higher is better.

Images are float tensors in [0, 1], ``[B, 3, H, W]``, unless a function says otherwise. Features are
``float64`` numpy arrays ``[N, D]``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    description: str


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("fid", False, "Frechet Inception Distance (pool3 features, 2048-d)"),
        MetricInfo("kid", False, "Kernel Inception Distance (unbiased MMD^2, cubic polynomial kernel), x1 (not x1000)"),
        MetricInfo("lpips", False, "LPIPS distance (lpips package, v0.1 linear layers)"),
        MetricInfo("ssim", True, "SSIM, Gaussian window 11, sigma 1.5, data range 1"),
        MetricInfo("psnr", True, "PSNR in dB, data range 1"),
        MetricInfo("fps", True, "generated images per second"),
    )
}


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors of shape [N, D], got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

    The trace of the matrix square root is computed without ``scipy.linalg.sqrtm`` (a Schur
    decomposition of a non-symmetric product: tens of seconds at 2048-d on 2 cores). With the
    Cholesky factor S1 = L L^T, the product S1 S2 is similar to L^T S2 L, which is symmetric PSD, so
    tr((S1 S2)^(1/2)) = sum sqrt(eigvalsh(L^T S2 L)): one Cholesky and one eigenvalues-only symmetric
    decomposition in float64. When S1 is singular (fewer images than dimensions) the Cholesky fails and
    the symmetric square root S1^(1/2) = V L^(1/2) V^T takes its place (same similarity argument).
    Round-off negatives are clipped to 0. Agrees with pytorch-fid's sqrtm route to ~1e-9 relative.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"statistics of different dimension: {mu1.shape} vs {mu2.shape}")
    s1 = (s1 + s1.T) / 2
    try:
        factor = np.linalg.cholesky(s1)
        middle = factor.T @ s2 @ factor
    except np.linalg.LinAlgError:
        evals, evecs = np.linalg.eigh(s1)
        factor = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T
        middle = factor @ s2 @ factor
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def kernel_inception_distance(
    features_real: np.ndarray, features_fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 over random subsets.

    The subset size is bounded by both set sizes, so KID works on small test sets (torchmetrics'
    default of 1000 fails below 1000 images).
    """
    real = np.asarray(features_real, np.float64)
    fake = np.asarray(features_fake, np.float64)
    n = min(subset_size, len(real), len(fake))
    if n < 2:
        raise ValueError("KID needs at least 2 images in each set")
    d = real.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), n, replace=False)]
        y = fake[rng.choice(len(fake), n, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


def to_grey(images: Tensor) -> Tensor:
    """ITU-R BT.601 luma, [B,1,H,W] (the greyscale used by HR-VITON's skimage SSIM)."""
    w = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * w).sum(1, keepdim=True)


def ssim(fake: Tensor, real: Tensor, greyscale: bool = False) -> Tensor:
    """Per-image SSIM (torchmetrics, Gaussian 11, sigma 1.5, data range 1); greyscale = HR-VITON protocol."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    if greyscale:
        fake, real = to_grey(fake), to_grey(real)
    return structural_similarity_index_measure(
        fake, real, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=1.0, reduction="none"
    )


def psnr(fake: Tensor, real: Tensor) -> Tensor:
    mse = ((fake - real) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))
