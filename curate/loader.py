"""A torch ``Dataset`` over triplets.parquet and the arrays of ``curate labelmaps``.

Each sample is the batch contract of docs/ARCHITECTURE.md. Per-sample work is a few slice copies from
memory-mapped arrays plus cheap derived inputs (pose heatmaps, body shape, head); nothing is decoded.

Missing annotations are explicit, never a crash: a person without a label map yields an all-zero
``labelmap`` (background) and ``has_labelmap = False``; without a pose, all-zero keypoints (conf 0),
zero heatmaps and ``has_pose = False``. A pair without a negative yields its positive as ``negative``
with ``has_negative = False`` (models that need a real negative must skip it).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from curate.labelmaps import arrays_dir
from curate.labelsets import get_label_set
from curate.triplets import load_triplets

HEATMAP_SIGMA_FRACTION = 1 / 64  # Gaussian sigma as a fraction of the image height


class TryOnDataset(Dataset):
    def __init__(self, ds: Path | str, split: str, size: tuple[int, int] = (256, 192), label_set: str | None = None) -> None:
        self.ds = Path(ds)
        self.size = tuple(size)
        root = arrays_dir(self.ds, self.size, label_set)  # type: ignore[arg-type]
        self.root = root / split
        if not (self.root / "humans.parquet").is_file():
            h, w = self.size
            flag = f" --label-set {label_set}" if label_set else ""
            raise FileNotFoundError(
                f"no training arrays at {self.root}: run `curate labelmaps {ds} --size {h}x{w}{flag}` "
                f"(and `curate triplets {ds}` before it)"
            )
        classes = json.loads((root / "classes.json").read_text())
        self.label_set: str | None = classes["label_set"]
        self.num_classes = get_label_set(self.label_set).num_classes if self.label_set else 1
        trip = load_triplets(self.ds)
        # one row per pair: its first negative (rank 0); more negatives stay available in triplets.parquet
        trip = trip[(trip["split"] == split) & (trip["negative_rank"] == 0)].sort_values("pair_id", ignore_index=True)
        if trip.empty:
            raise ValueError(f"split {split!r} has no pairs in {self.ds / 'triplets.parquet'}")
        self.pairs = trip
        self._humans_index = pd.read_parquet(self.root / "humans.parquet").set_index("human_id")
        self._articles_index = pd.read_parquet(self.root / "articles.parquet").set_index("article_id")
        self._arrays: dict[str, np.ndarray] | None = None  # opened lazily, once per worker process
        head = get_label_set(self.label_set).groups.get("head", frozenset()) if self.label_set else frozenset()
        self._head_ids = np.array(sorted(head), np.uint8)

    def __len__(self) -> int:
        return len(self.pairs)

    def _open(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            names = ("humans_image", "humans_labelmap", "humans_keypoints", "articles_image", "articles_mask")
            self._arrays = {n: np.load(self.root / f"{n}.npy", mmap_mode="r") for n in names}
        return self._arrays

    @staticmethod
    def _image(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.array(a)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)

    @staticmethod
    def _mask(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.array(a)).permute(2, 0, 1).float().div_(255.0)

    def pose_heatmap(self, keypoints: np.ndarray) -> Tensor:
        """[18,H,W] Gaussian bumps at visible keypoints (conf > 0), zero maps for missing ones."""
        h, w = self.size
        sigma = max(1.0, h * HEATMAP_SIGMA_FRACTION)
        ys = torch.arange(h, dtype=torch.float32)[:, None]
        xs = torch.arange(w, dtype=torch.float32)[None, :]
        kp = torch.from_numpy(np.asarray(keypoints, np.float32))
        gy = torch.exp(-((ys[None] - kp[:, 1, None, None]) ** 2) / (2 * sigma**2))
        gx = torch.exp(-((xs[None] - kp[:, 0, None, None]) ** 2) / (2 * sigma**2))
        return gy * gx * (kp[:, 2] > 0).float()[:, None, None]

    def __getitem__(self, index: int) -> dict[str, object]:
        arr = self._open()
        row = self.pairs.iloc[index]
        h = self._humans_index.loc[row["human_id"]]
        a = self._articles_index.loc[row["article_id"]]
        has_negative = isinstance(row["negative_id"], str)
        n = self._articles_index.loc[row["negative_id"]] if has_negative else a
        hr, ar, nr = int(h["row"]), int(a["row"]), int(n["row"])
        image = self._image(arr["humans_image"][hr])
        labels = np.asarray(arr["humans_labelmap"][hr, ..., 0])
        keypoints = np.array(arr["humans_keypoints"][hr], np.float32)
        person = torch.from_numpy((labels > 0).astype(np.float32))[None, None]
        hh, ww = self.size
        # CP-VTON/VITON body shape: the silhouette down to 1/16 and back, so only the coarse shape survives
        body = F.interpolate(F.interpolate(person, size=(max(1, hh // 16), max(1, ww // 16)), mode="bilinear", align_corners=False),
                             size=(hh, ww), mode="bilinear", align_corners=False)[0]
        head_mask = torch.from_numpy(np.isin(labels, self._head_ids).astype(np.float32))[None]
        return {
            "image": image,
            "article": self._image(arr["articles_image"][ar]),
            "article_mask": self._mask(arr["articles_mask"][ar]),
            "negative": self._image(arr["articles_image"][nr]),
            "negative_mask": self._mask(arr["articles_mask"][nr]),
            "labelmap": torch.from_numpy(labels.astype(np.int64)),
            "keypoints": torch.from_numpy(keypoints),
            "pose_heatmap": self.pose_heatmap(keypoints),
            "body_shape": body,
            # head pixels keep their colour, everything else is -1 (black in [-1, 1])
            "head": image * head_mask + (head_mask - 1),
            "has_labelmap": bool(h.get("has_labelmap", True)),
            "has_pose": bool(h.get("has_pose", True)),
            "has_negative": has_negative,
            "pair_id": str(row["pair_id"]),
            "human_id": str(row["human_id"]),
            "article_id": str(row["article_id"]),
            "negative_id": str(row["negative_id"]) if has_negative else str(row["article_id"]),
        }


def seed_worker(worker_id: int) -> None:
    """Each worker's numpy/python RNG from torch's per-worker seed (itself derived from the loader's generator)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = True, num_workers: int = 0, seed: int = 0) -> DataLoader:
    """A reproducible DataLoader: same seed, same order and same worker RNG streams."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, generator=generator,
                      worker_init_fn=seed_worker, persistent_workers=num_workers > 0, drop_last=False)
