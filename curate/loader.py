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
    ALL_FIELDS = ("image", "article", "article_mask", "negative", "negative_mask", "labelmap", "keypoints",
                  "pose_heatmap", "body_shape", "head", "worn_mask")
    ARTICLE_FIELDS = frozenset({"article", "article_mask", "negative", "negative_mask"})
    AUGMENTATIONS = ("hflip",)
    # fields whose left and right mean something (sided classes, keypoint order): a mirror would need their
    # left/right tables, so hflip refuses them rather than mirror them silently wrong
    _SIDED_FIELDS = frozenset({"labelmap", "keypoints", "pose_heatmap"})

    def __init__(
        self, ds: Path | str, split: str, size: tuple[int, int] = (256, 192), label_set: str | None = None,
        fields: tuple[str, ...] | None = None, augment: tuple[str, ...] = (), seed: int = 0,
    ) -> None:
        """``fields`` restricts the tensors produced to what a model needs (``model.INPUTS.train`` or ``.generate``);
        ids and flags are always there. Default: the whole batch contract.

        ``augment=("hflip",)`` mirrors every image of a sample *together* (person and articles: an asymmetric
        garment stays on the same side), half of the samples; the choice is a pure function of (seed,
        epoch, index), so a resumed run sees the same flips (the trainer calls ``set_epoch``)."""
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
        # People without pairs (FGVC6 as humans): one sample per person, no article fields.
        self.humans_only = bool(classes.get("humans_only", False))
        unknown = sorted(set(fields or ()) - set(self.ALL_FIELDS))
        if unknown:
            raise ValueError(f"unknown fields {unknown}; valid: {', '.join(self.ALL_FIELDS)}")
        bad = sorted(set(augment) - set(self.AUGMENTATIONS))
        if bad:
            raise ValueError(f"unknown augmentations {bad}; valid: {', '.join(self.AUGMENTATIONS)}")
        if "hflip" in augment and self._SIDED_FIELDS & set(fields or self.ALL_FIELDS):
            raise ValueError(f"hflip cannot mirror {sorted(self._SIDED_FIELDS & set(fields or self.ALL_FIELDS))} "
                             "(left/right classes and keypoints would swap sides): request only image fields")
        self.augment, self.seed, self.epoch = tuple(augment), seed, 0
        humans = pd.read_parquet(self.root / "humans.parquet").set_index("human_id")
        if self.humans_only:
            asked = sorted(set(fields or ()) & self.ARTICLE_FIELDS)
            if asked:
                raise ValueError(f"{ds} holds people only (no articles, no pairs): {asked} cannot be read")
            ids = sorted(humans.index)
            trip = pd.DataFrame({"pair_id": ids, "human_id": ids, "article_id": ids, "negative_id": [None] * len(ids)})
            self.fields = frozenset(fields or (f for f in self.ALL_FIELDS if f not in self.ARTICLE_FIELDS))
        else:
            trip = load_triplets(self.ds)
            # one row per pair: its first negative (rank 0); more negatives stay available in triplets.parquet
            trip = trip[(trip["split"] == split) & (trip["negative_rank"] == 0)].sort_values("pair_id", ignore_index=True)
            self.fields = frozenset(fields or self.ALL_FIELDS)
        if trip.empty:
            raise ValueError(f"split {split!r} has no pairs in {self.ds / 'triplets.parquet'}")
        self.pairs = trip
        # integer rows resolved once: __getitem__ does no pandas look-ups
        self._has_negative = trip["negative_id"].notna().to_numpy()
        negatives = trip["negative_id"].where(trip["negative_id"].notna(), trip["article_id"])
        self._human_rows = humans.loc[trip["human_id"], "row"].to_numpy(np.int64)
        if self.humans_only:
            self._article_rows = self._negative_rows = np.zeros(len(trip), np.int64)  # never read
        else:
            articles = pd.read_parquet(self.root / "articles.parquet").set_index("article_id")
            self._article_rows = articles.loc[trip["article_id"], "row"].to_numpy(np.int64)
            self._negative_rows = articles.loc[negatives, "row"].to_numpy(np.int64)
        self._has_labelmap = humans.loc[trip["human_id"]].get("has_labelmap", pd.Series(True, index=trip.index)).to_numpy(bool)
        self._has_pose = humans.loc[trip["human_id"]].get("has_pose", pd.Series(True, index=trip.index)).to_numpy(bool)
        self._ids = list(zip(trip["pair_id"], trip["human_id"], trip["article_id"], negatives))
        self._arrays: dict[str, np.ndarray] | None = None  # opened lazily, once per worker process
        groups = get_label_set(self.label_set).groups if self.label_set else {}
        self._is_head = np.zeros(256, bool)
        self._is_head[sorted(groups.get("head", frozenset()))] = True
        # the worn top as CP-VTON cuts it from LIP parsing (upper-clothes, dress, coat): the GMM's target
        self._is_worn = np.zeros(256, bool)
        self._is_worn[sorted(set().union(*(groups.get(g, frozenset()) for g in ("upper", "dress", "outer"))))] = True

    def with_fields(self, fields: tuple[str, ...]) -> "TryOnDataset":
        """The same samples producing only ``fields`` (e.g. the real images alone for feature extraction)."""
        import copy

        unknown = sorted(set(fields) - set(self.ALL_FIELDS))
        if unknown:
            raise ValueError(f"unknown fields {unknown}; valid: {', '.join(self.ALL_FIELDS)}")
        other = copy.copy(self)
        other.fields, other._arrays = frozenset(fields), None
        return other

    def set_epoch(self, epoch: int) -> None:
        """The epoch the augmentation draws for (called by the trainer's data stream before each epoch)."""
        self.epoch = int(epoch)

    def _flipped(self, index: int) -> bool:
        return "hflip" in self.augment and bool(np.random.default_rng([self.seed, self.epoch, index]).random() < 0.5)

    def __len__(self) -> int:
        return len(self.pairs)

    def _open(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            names = ("humans_image", "humans_labelmap", "humans_keypoints") + (() if self.humans_only else ("articles_image", "articles_mask"))
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
        hr, ar, nr = int(self._human_rows[index]), int(self._article_rows[index]), int(self._negative_rows[index])
        want = self.fields
        pair_id, human_id, article_id, negative_id = self._ids[index]
        out: dict[str, object] = {}
        image = self._image(arr["humans_image"][hr]) if want & {"image", "head"} else None
        if "image" in want:
            out["image"] = image
        if "article" in want:
            out["article"] = self._image(arr["articles_image"][ar])
        if "article_mask" in want:
            out["article_mask"] = self._mask(arr["articles_mask"][ar])
        if "negative" in want:
            out["negative"] = self._image(arr["articles_image"][nr])
        if "negative_mask" in want:
            out["negative_mask"] = self._mask(arr["articles_mask"][nr])
        labels = np.asarray(arr["humans_labelmap"][hr, ..., 0]) if want & {"labelmap", "body_shape", "head", "worn_mask"} else None
        if "labelmap" in want:
            out["labelmap"] = torch.from_numpy(labels.astype(np.int64))
        if want & {"keypoints", "pose_heatmap"}:
            keypoints = np.array(arr["humans_keypoints"][hr], np.float32)
            if "keypoints" in want:
                out["keypoints"] = torch.from_numpy(keypoints)
            if "pose_heatmap" in want:
                out["pose_heatmap"] = self.pose_heatmap(keypoints)
        if "body_shape" in want:
            person = torch.from_numpy((labels > 0).astype(np.float32))[None, None]
            hh, ww = self.size
            # CP-VTON/VITON body shape: the silhouette down to 1/16 and back, so only the coarse shape survives
            small = F.interpolate(person, size=(max(1, hh // 16), max(1, ww // 16)), mode="bilinear", align_corners=False)
            out["body_shape"] = F.interpolate(small, size=(hh, ww), mode="bilinear", align_corners=False)[0]
        if "head" in want:
            head_mask = torch.from_numpy(self._is_head[labels].astype(np.float32))[None]
            # head pixels keep their colour, everything else is -1 (black in [-1, 1])
            out["head"] = image * head_mask + (head_mask - 1)
        if "worn_mask" in want:
            out["worn_mask"] = torch.from_numpy(self._is_worn[labels].astype(np.float32))[None]
        if self._flipped(index):
            for key, value in out.items():
                out[key] = value.flip(-1)
        out.update(
            has_labelmap=bool(self._has_labelmap[index]), has_pose=bool(self._has_pose[index]),
            has_negative=bool(self._has_negative[index]), pair_id=str(pair_id), human_id=str(human_id),
            article_id=str(article_id), negative_id=str(negative_id),
        )
        return out


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
