"""Scores during training (`zoo train --eval-every N --keep-best fid`).

A fixed held-out subset (the first ``n`` pairs of a split, always the same ones) is generated with the
model in eval mode and scored with the streaming scorer: FID/KID always, LPIPS/SSIM/PSNR too (paired:
each person with their own article, against the photo). The real features are extracted once, when
the evaluator is built. GAN try-on training is known to collapse late; the curve in
``logs/<stage>/eval.csv`` and TensorBoard shows when, and ``--keep-best`` keeps the best model as well
as the last.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from eval import metrics as M
from eval.runner import Protocol, RealSet, StreamingScore, make_extractor


class HeldOutEvaluator:
    def __init__(self, dataset: Any, n: int, proto: Protocol, device: torch.device) -> None:
        from torch.utils.data import Subset, default_collate

        if len(dataset) < 2:
            raise ValueError(f"the held-out split has {len(dataset)} pairs; scoring needs at least 2")
        subset = Subset(dataset, range(min(n, len(dataset))))
        self.batches = [default_collate([subset[j] for j in range(i, min(i + proto.batch_size, len(subset)))])
                        for i in range(0, len(subset), proto.batch_size)]
        self.proto, self.device = dataclasses.replace(proto, protocol="paired"), device
        reals = RealSet(lambda: ((b["image"] + 1) / 2 for b in self.batches))
        self.extractor = make_extractor(self.proto, reals.calibration, device)
        self.real_features, _ = reals.features(self.extractor)
        self.n_images = len(subset)

    @property
    def identity(self) -> dict[str, Any]:
        return {"images": self.n_images, "features": self.extractor.identity, "comparable_to_published":
                bool(self.extractor.identity.get("comparable_to_published")) and self.proto.lpips_backbone != "untrained"}

    @staticmethod
    def higher_is_better(metric: str) -> bool:
        return M.METRICS[metric].higher_is_better

    @torch.no_grad()
    def __call__(self, model: Any) -> dict[str, float]:
        from models.trainer import batch_to_device

        was_training = model.training
        model.eval()
        try:
            scorer = StreamingScore(self.proto, self.device, self.extractor, self.real_features, paired=True, distributed=False)
            for batch in self.batches:
                fake: Tensor = (model.generate(batch_to_device(batch, self.device)).float().cpu().clamp(-1, 1) + 1) / 2
                scorer.add(fake, list(batch["pair_id"]), (batch["image"] + 1) / 2)
            metrics, _, _ = scorer.compute()
        finally:
            model.train(was_training)
        return {k: float(metrics[k]) for k in ("fid", "kid", "lpips", "ssim", "psnr") if metrics.get(k) is not None}
