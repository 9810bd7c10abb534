"""FGVC6 ``train.csv``: run-length decoding against a per-pixel reference, precedence, and every bad row."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curate.ingest import ingest
from curate.ingest.fgvc6 import MaskError, compose_labelmap, decode_rle
from curate.schema import RejectReason

H, W = 6, 4


def reference_decode(encoded: str, height: int, width: int) -> np.ndarray:
    """The competition's definition, pixel by pixel: 1-based index k -> row (k-1) % H, column (k-1) // H."""
    mask = np.zeros((height, width), bool)
    values = [int(v) for v in encoded.split()]
    for start, length in zip(values[0::2], values[1::2]):
        for k in range(start, start + length):
            mask[(k - 1) % height, (k - 1) // height] = True
    return mask


def encode(mask: np.ndarray) -> str:
    """Column-major 1-based RLE of a bool mask (the inverse, to build test rows)."""
    flat = np.concatenate([[0], mask.T.reshape(-1).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat))
    starts, ends = edges[0::2], edges[1::2]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts, ends))


@pytest.mark.parametrize("encoded", ["1 3", "2 4 10 2 20 5", "1 24", "", "7 1 8 1 9 1"])
def test_decode_matches_reference(encoded: str):
    np.testing.assert_array_equal(decode_rle(encoded, H, W), reference_decode(encoded, H, W))


def test_decode_round_trip_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = rng.integers(1, 30, 2)
        mask = rng.random((h, w)) < 0.4
        assert np.array_equal(decode_rle(encode(mask), int(h), int(w)), mask)


@pytest.mark.parametrize(
    "encoded, reason",
    [("1 2 3", RejectReason.LABELMAP_UNREADABLE), ("20 10", RejectReason.LABELMAP_UNREADABLE),
     ("0 2", RejectReason.LABELMAP_UNREADABLE), ("a b", RejectReason.LABELMAP_UNREADABLE)],
)
def test_bad_rle(encoded: str, reason: RejectReason):
    with pytest.raises(MaskError) as info:
        decode_rle(encoded, H, W)
    assert info.value.reason is reason


def test_precedence_apparel_over_parts_small_apparel_on_top():
    dress = np.zeros((H, W), bool)
    dress[0:5, :] = True
    belt = np.zeros((H, W), bool)
    belt[2, :] = True
    sleeve = np.zeros((H, W), bool)
    sleeve[:, 0] = True  # overlaps the dress (rows 0-4) and the background (row 5)
    out = compose_labelmap([(31, encode(sleeve)), (19, encode(belt)), (10, encode(dress))], H, W)
    expected = np.zeros((H, W), np.uint8)
    expected[0:5, :] = 11  # dress 10 -> stored 11
    expected[2, :] = 20  # the smaller belt stays on top of the dress, whatever the CSV order
    expected[5, 0] = 32  # the sleeve only where no apparel is
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(MaskError) as info:
        compose_labelmap([(46, encode(belt))], H, W)
    assert info.value.reason is RejectReason.LABELMAP_UNKNOWN_IDS


@pytest.fixture()
def fgvc6_src(tmp_path: Path) -> Path:
    src = tmp_path / "fgvc6"
    (src / "train").mkdir(parents=True)
    (src / "test").mkdir()
    for name in ("a", "b", "c", "e", "g", "top"):
        Image.new("RGB", (W, H), (200, 10, 10)).save(src / "train" / f"{name}.jpg")
    Image.new("RGB", (W, H)).save(src / "test" / "f.jpg")
    dress = np.zeros((H, W), bool)
    dress[1:5, 1:3] = True
    shirt = np.zeros((H, W), bool)
    shirt[0:3, :] = True
    rows = [
        ("a.jpg", encode(dress), H, W, "10_1_5"),  # dress with attributes
        ("a.jpg", "1 2", H, W, "31"),  # sleeve part on background pixels (0,0) and (1,0)
        ("top.jpg", encode(shirt), H, W, "0"),
        ("b.jpg", "1 2", H, W, "50"),  # no such class
        ("c.jpg", "1 2 3", H, W, "1"),  # odd run-length count
        ("d.jpg", "1 2", H, W, "1"),  # image absent
        ("g.jpg", "1 2", H * 2, W, "1"),  # CSV size differs from the image
    ]
    with open(src / "train.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ImageId", "EncodedPixels", "Height", "Width", "ClassId"])
        writer.writerows(rows)
    return src


def test_fgvc6_ingest(fgvc6_src: Path, tmp_path: Path):
    before = sorted(p.relative_to(fgvc6_src) for p in fgvc6_src.rglob("*"))
    result = ingest(fgvc6_src, tmp_path / "ds")
    assert result.layout == "fgvc6"
    m = result.manifest
    assert len(m.humans) == 0 and len(m.pairs) == 0
    rows = m.articles.set_index("article_id")
    reasons = rows["reject_reason"].astype(object).where(rows["reject_reason"].notna(), None).to_dict()
    assert reasons == {
        "train/a": None, "train/top": None, "train/e": None, "test/f": None,
        "train/b": "labelmap-unknown-ids", "train/c": "labelmap-unreadable", "train/d": "missing-file",
        "train/g": "labelmap-size-mismatch",
    }
    assert rows.loc["train/a", "category"] == "dresses" and rows.loc["train/top", "category"] == "upper_body"
    assert rows.loc["test/f", "split"] == "test" and pd.isna(rows.loc["train/e", "labelmap_path"])
    # The decoded map lies under the output folder, its path relative to the dataset root.
    path = m.resolve(rows.loc["train/a", "labelmap_path"])
    assert path.resolve().is_relative_to((tmp_path / "ds").resolve())
    assert rows.loc["train/a", "label_set"] == "fgvc6-46+bg"
    stored = np.asarray(Image.open(path))
    expected = np.zeros((H, W), np.uint8)
    expected[1:5, 1:3] = 11
    expected[0:2, 0] = 32
    np.testing.assert_array_equal(stored, expected)
    # nothing was written into the source
    assert sorted(p.relative_to(fgvc6_src) for p in fgvc6_src.rglob("*")) == before


def test_fgvc6_as_humans(fgvc6_src: Path, tmp_path: Path):
    m = ingest(fgvc6_src, tmp_path / "ds", role="human").manifest
    assert len(m.articles) == 0 and len(m.humans) == 8
    assert (m.humans.set_index("human_id").loc["train/a", "labelmap_path"] or "").endswith("a.png")
