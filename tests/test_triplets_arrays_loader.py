"""triplets (leak-free splits, valid negatives, determinism), training arrays (ids preserved, conversion,
incrementality) and the loader's tensors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from curate.labelmaps import arrays_dir, build_arrays
from curate.labelsets import conversion_table
from curate.loader import TryOnDataset, make_loader
from curate.manifest import Manifest
from curate.triplets import build_triplets


@pytest.fixture()
def ds(synth_ds: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ds"
    shutil.copytree(synth_ds, out)
    return out


def _mark_duplicates(ds: Path) -> None:
    """Give humans/articles of a few pairs a shared duplicate group, as dedupe would (both kept)."""
    m = Manifest.load(ds)
    ids = m.humans["human_id"].tolist()
    m.humans["dup_group"] = pd.array([None] * len(ids), dtype="Int64")
    m.humans["dup_keep"] = pd.array([True] * len(ids), dtype="boolean")
    for g, (a, b) in enumerate([(ids[0], ids[1]), (ids[2], ids[3]), (ids[4], ids[5])]):
        m.humans.loc[m.humans["human_id"].isin([a, b]), "dup_group"] = g
    m.save("humans")


def test_splits_are_identity_disjoint_and_negatives_valid(ds: Path) -> None:
    _mark_duplicates(ds)
    result = build_triplets(ds, negatives=2, seed=3)
    t = result.triplets
    m = Manifest.load(ds)
    for column in ("human_id", "article_id"):
        assert (t.groupby(column)["split"].nunique() == 1).all(), f"a {column} appears in two splits"
    groups = m.humans.set_index("human_id")["dup_group"].dropna()
    split_of_group = t.assign(g=t["human_id"].map(groups)).dropna(subset=["g"]).groupby("g")["split"].nunique()
    assert len(split_of_group) and (split_of_group == 1).all(), "a duplicate group crossed splits"
    with_neg = t.dropna(subset=["negative_id"])
    assert (with_neg["negative_id"] != with_neg["article_id"]).all()
    split_of_article = t.groupby("article_id")["split"].first()
    assert (with_neg["negative_id"].map(split_of_article) == with_neg["split"]).all(), "negative from another split"
    assert set(result.split_sizes) == {"train", "val", "test"} and sum(result.split_sizes.values()) == t["pair_id"].nunique()
    assert result.split_sizes["train"] > result.split_sizes["test"] > 0


def test_triplets_after_dedupe_keep_duplicate_groups_out_of_negatives(ds: Path) -> None:
    from curate.dedupe.command import run_dedupe

    run_dedupe(ds)
    t = build_triplets(ds, negatives=3, seed=0).triplets
    a = Manifest.load(ds).articles.set_index("article_id")["dup_group"]
    with_neg = t.dropna(subset=["negative_id"])
    same_group = with_neg["article_id"].map(a).astype("Float64") == with_neg["negative_id"].map(a).astype("Float64")
    assert not same_group.fillna(False).any(), "a negative from the positive's duplicate group"
    dropped = Manifest.load(ds).pairs["dup_keep"] == False  # noqa: E712
    assert not set(Manifest.load(ds).pairs.loc[dropped, "pair_id"]) & set(t["pair_id"]), "a dropped duplicate became a triplet"


def test_triplets_are_deterministic(ds: Path) -> None:
    a = build_triplets(ds, seed=5).triplets
    b = build_triplets(ds, seed=5).triplets
    c = build_triplets(ds, seed=6).triplets
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_bad_split_fractions_are_refused(ds: Path) -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        build_triplets(ds, split=(0.5, 0.1, 0.1))


def test_arrays_preserve_ids_convert_by_table_and_are_incremental(ds: Path) -> None:
    build_triplets(ds, seed=0)
    first = build_arrays(ds, (64, 48), "smis-8")
    assert first.computed > 0 and first.reused == 0
    m = Manifest.load(ds)
    lut = conversion_table("lip-20", "smis-8")
    root = arrays_dir(ds, (64, 48), "smis-8") / "train"
    index = pd.read_parquet(root / "humans.parquet")
    labels = np.load(root / "humans_labelmap.npy", mmap_mode="r")
    assert labels.dtype == np.uint8 and labels.shape[1:] == (64, 48, 1)
    for hid, row in zip(index["human_id"][:10], index["row"][:10]):
        src = m.humans.set_index("human_id").loc[hid]
        original = np.asarray(Image.open(m.resolve(src["labelmap_path"])))
        # nearest-neighbour resize never invents ids: the stored ids are a subset of the converted source ids
        assert set(np.unique(labels[row])) <= set(np.unique(lut[original]))
    second = build_arrays(ds, (64, 48), "smis-8")
    assert second.computed == 0 and second.reused == first.computed
    # one-hot float32 of 46 classes would take 46 * 4 bytes per pixel; we store 1
    assert labels.nbytes <= labels.size * 46 * 4 / 100


def test_loader_yields_the_batch_contract(ds: Path) -> None:
    build_triplets(ds, seed=0)
    build_arrays(ds, (64, 48), "smis-8")
    data = TryOnDataset(ds, "train", (64, 48), "smis-8")
    assert data.num_classes == 8 and data.label_set == "smis-8"
    batch = next(iter(make_loader(data, batch_size=4, seed=1)))
    assert batch["image"].shape == (4, 3, 64, 48) and batch["image"].dtype == torch.float32
    assert -1 <= float(batch["image"].min()) and float(batch["image"].max()) <= 1
    assert batch["article_mask"].shape == (4, 1, 64, 48) and 0 <= float(batch["article_mask"].min())
    assert batch["labelmap"].dtype == torch.int64 and int(batch["labelmap"].max()) < 8
    assert batch["keypoints"].shape == (4, 18, 3) and batch["pose_heatmap"].shape == (4, 18, 64, 48)
    assert batch["body_shape"].shape == (4, 1, 64, 48) and batch["head"].shape == (4, 3, 64, 48)
    again = next(iter(make_loader(data, batch_size=4, seed=1)))
    assert batch["pair_id"] == again["pair_id"]  # same seed, same order


def test_missing_arrays_say_what_to_run(ds: Path) -> None:
    build_triplets(ds, seed=0)
    with pytest.raises(FileNotFoundError, match="curate labelmaps"):
        TryOnDataset(ds, "train", (64, 48), "smis-8")
