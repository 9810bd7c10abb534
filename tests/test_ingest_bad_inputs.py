"""Every bad input becomes a rejected row with its exact reason; nothing crashes, nothing is dropped.

The cases are made in tmp_path inside a small VITON-HD layout: each human/article id below carries
exactly one defect, and the test checks the reason the manifest records for it and for its pair.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate.imageio import read_image, read_labelmap
from curate.ingest import ingest

W, H = 48, 64


def jpeg_bytes(seed: int, size: tuple[int, int] = (W, H)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def parse_png(path: Path, ids: np.ndarray, mode: str = "P") -> None:
    img = Image.fromarray(ids.astype(np.uint8), mode="L")
    if mode == "P":
        img = img.convert("P")
        img.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)])
    elif mode == "RGB":
        img = Image.merge("RGB", (img, img, img))
    img.save(path)


def pose_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj))


def body25(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    kp = np.column_stack([rng.uniform(0, W, 25), rng.uniform(0, H, 25), rng.uniform(0.1, 1, 25)])
    return {"version": 1.3, "people": [{"pose_keypoints_2d": kp.reshape(-1).tolist()}]}


def good_ids() -> np.ndarray:
    ids = np.zeros((H, W), np.uint8)
    ids[10:30, 10:38] = 5
    ids[30:60, 12:36] = 9
    ids[2:10, 18:30] = 13
    return ids


@pytest.fixture()
def bad_src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    d = src / "test"
    for sub in ("image", "cloth", "cloth-mask", "image-parse-v3", "openpose_json"):
        (d / sub).mkdir(parents=True)
    stems = [f"{i:05d}_00" for i in range(1, 14)]
    for i, stem in enumerate(stems):
        (d / "image" / f"{stem}.jpg").write_bytes(jpeg_bytes(i))
        (d / "cloth" / f"{stem}.jpg").write_bytes(jpeg_bytes(100 + i))
        Image.fromarray(np.full((H, W), 255, np.uint8)).save(d / "cloth-mask" / f"{stem}.jpg")
        parse_png(d / "image-parse-v3" / f"{stem}.png", good_ids())
        pose_json(d / "openpose_json" / f"{stem}_keypoints.json", body25(i))
    # one defect per id
    (d / "image/00002_00.jpg").write_bytes(b"")  # empty-file
    full = (d / "image/00003_00.jpg").read_bytes()
    (d / "image/00003_00.jpg").write_bytes(full[: len(full) // 2])  # truncated-image
    (d / "image/00004_00.jpg").write_bytes(np.random.default_rng(4).bytes(3000))  # unreadable-image
    parse_png(d / "image-parse-v3/00005_00.png", np.zeros((H // 2, W // 2), np.uint8))  # size mismatch
    ids = good_ids()
    ids[0, 0] = 25
    parse_png(d / "image-parse-v3/00006_00.png", ids)  # unknown id 25 in LIP-20
    pose_json(d / "openpose_json/00007_00_keypoints.json", {"people": [{"pose_keypoints_2d": [1.0] * 60}]})
    (d / "openpose_json/00008_00_keypoints.json").write_bytes(b"\xff\xfe not json")  # pose-unreadable
    colour = np.zeros((H, W, 3), np.uint8)
    colour[..., 0] = 255  # a colour-coded (non-grey) RGB label map
    Image.fromarray(colour).save(d / "image-parse-v3/00009_00.png")
    Image.fromarray(np.full((H // 2, W), 255, np.uint8)).save(d / "cloth-mask/00010_00.jpg")  # mask size
    (d / "cloth/00011_00.jpg").write_bytes(b"")  # empty article
    parse_png(d / "image-parse-v3/00012_00.png", good_ids(), mode="RGB")  # grey stored as RGB: fine
    os.remove(d / "image/00013_00.jpg")  # person listed in the pair list but absent
    lines = [f"{s}.jpg {s}.jpg" for s in stems] + ["00001_00.jpg 99999_00.jpg"]  # cloth absent
    (src / "test_pairs.txt").write_text("\n".join(lines) + "\n")
    return src


EXPECTED_HUMANS = {
    "test/00001_00": None,
    "test/00002_00": "empty-file",
    "test/00003_00": "truncated-image",
    "test/00004_00": "unreadable-image",
    "test/00005_00": "labelmap-size-mismatch",
    "test/00006_00": "labelmap-unknown-ids",
    "test/00007_00": "pose-unknown-format",
    "test/00008_00": "pose-unreadable",
    "test/00009_00": "labelmap-unreadable",
    "test/00010_00": None,
    "test/00011_00": None,
    "test/00012_00": None,
    "test/00013_00": "missing-file",
}

# A pair is missing-file when a member's file is absent, missing-partner when a member is present but rejected.
EXPECTED_PAIRS = {
    **{f"test_pairs/{s}--{s}": "missing-partner" for s in [f"{i:05d}_00" for i in range(2, 12)]},
    "test_pairs/00001_00--00001_00": None,
    "test_pairs/00012_00--00012_00": None,
    "test_pairs/00013_00--00013_00": "missing-file",
    "test_pairs/00001_00--99999_00": "missing-file",
}


def test_each_bad_input_has_its_reason(bad_src: Path, tmp_path: Path):
    m = ingest(bad_src, tmp_path / "ds", layout="viton-hd").manifest
    humans = dict(zip(m.humans["human_id"], m.humans["reject_reason"].astype(object).where(m.humans["reject_reason"].notna(), None)))
    assert humans == EXPECTED_HUMANS
    detail = dict(zip(m.humans["human_id"], m.humans["reject_detail"]))
    assert "ids 25 outside lip-20" in detail["test/00006_00"]
    assert "24x32" in detail["test/00005_00"] and "48x64" in detail["test/00005_00"]
    assert "60 values" in detail["test/00007_00"]
    assert "colour" in detail["test/00009_00"]

    articles = dict(zip(m.articles["article_id"], m.articles["reject_reason"].astype(object)))
    assert articles["test/00010_00"] == "labelmap-size-mismatch"  # cloth mask of another size
    assert articles["test/00011_00"] == "empty-file"
    assert articles["test/99999_00"] == "missing-file"
    assert sum(isinstance(v, str) for v in articles.values()) == 3

    pairs = dict(zip(m.pairs["pair_id"], m.pairs["reject_reason"].astype(object).where(m.pairs["reject_reason"].notna(), None)))
    assert pairs == EXPECTED_PAIRS

    # Bad rows keep what could be read: sizes and hashes of the readable files.
    row = m.humans.set_index("human_id").loc["test/00005_00"]
    assert (row["width"], row["height"]) == (W, H) and row["sha256"] is not None
    empty = m.humans.set_index("human_id").loc["test/00002_00"]
    assert empty["size_bytes"] == 0
    # grey-as-RGB label map reads as ids
    assert m.humans.set_index("human_id").loc["test/00012_00", "status"] == "ok"


def test_summary_counts_every_row(bad_src: Path, tmp_path: Path):
    result = ingest(bad_src, tmp_path / "ds")
    counts = result.summary.counts
    assert counts["count"].sum() == len(result.manifest.humans) + len(result.manifest.articles) + len(result.manifest.pairs)
    humans = counts[counts["table"] == "humans"].set_index("reason")["count"].to_dict()
    assert humans[""] == 4 and humans["empty-file"] == 1 and humans["missing-file"] == 1
    report = json.loads((tmp_path / "ds/reports/ingest.json").read_text())
    assert report["layout"] == "viton-hd" and report["counts"]
    examples = result.summary.examples
    assert len(examples[examples["table"] == "pairs"]) == 5  # 3 missing-partner + 2 missing-file shown
    row = examples[examples["reason"] == "truncated-image"].iloc[0]
    assert row["id"] == "test/00003_00" and "truncated" in row["detail"]


def test_palette_label_map_is_read_as_indices_not_colours(tmp_path: Path):
    ids = good_ids()
    parse_png(tmp_path / "p.png", ids, mode="P")
    assert Image.open(tmp_path / "p.png").mode == "P"
    lm = read_labelmap(tmp_path / "p.png", "lip-20", expected_size=(W, H), keep=True)
    assert lm.ok
    np.testing.assert_array_equal(lm.ids, ids)
    data = (tmp_path / "p.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    cut = read_labelmap(tmp_path / "cut.png", "lip-20")
    assert cut.reason.value == "labelmap-unreadable" and "truncated" in cut.detail
    Image.fromarray(np.zeros((H, W), np.float32), mode="F").save(tmp_path / "float.tif")
    assert "unsupported mode F" in read_labelmap(tmp_path / "float.tif", "lip-20").detail


def test_image_reader_reasons(tmp_path: Path):
    (tmp_path / "zero.jpg").write_bytes(b"")
    data = jpeg_bytes(1)
    (tmp_path / "cut.jpg").write_bytes(data[:-200])
    (tmp_path / "header_only.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "text.jpg").write_text("hello")
    (tmp_path / "ok.jpg").write_bytes(data)
    assert read_image(tmp_path / "zero.jpg").reason.value == "empty-file"
    assert read_image(tmp_path / "cut.jpg").reason.value == "truncated-image"
    assert read_image(tmp_path / "header_only.png").reason.value in ("unreadable-image", "truncated-image")
    assert read_image(tmp_path / "text.jpg").reason.value == "unreadable-image"
    assert read_image(tmp_path / "absent.jpg").reason.value == "missing-file"
    ok = read_image(tmp_path / "ok.jpg")
    assert ok.ok and (ok.width, ok.height) == (W, H) and ok.size_bytes == len(data)


def test_non_utf8_file_name(tmp_path: Path):
    src = tmp_path / "shop"
    src.mkdir()
    try:
        (src / os.fsdecode(b"caf\xe9.jpg")).write_bytes(jpeg_bytes(3))
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    (src / "fine.jpg").write_bytes(jpeg_bytes(4))
    m = ingest(src, tmp_path / "ds", layout="images").manifest
    rows = m.articles.set_index("article_id")
    assert rows.loc["fine", "status"] == "ok"
    bad = rows[rows["reject_reason"] == "path-not-utf8"]
    assert len(bad) == 1 and bad.iloc[0]["path"] == "caf\\xe9.jpg"

    # The same name in a layout with annotations: their paths are stored escaped too, no crash.
    vhd = tmp_path / "vhd/test"
    stem = os.fsdecode(b"\xe9t\xe9")
    for sub in ("image", "image-parse-v3", "openpose_json"):
        (vhd / sub).mkdir(parents=True)
    (vhd / "image" / f"{stem}.jpg").write_bytes(jpeg_bytes(5))
    parse_png(vhd / "image-parse-v3" / f"{stem}.png", good_ids())
    pose_json(vhd / "openpose_json" / f"{stem}_keypoints.json", body25(5))
    humans = ingest(tmp_path / "vhd", tmp_path / "ds2").manifest.humans
    assert list(humans["human_id"]) == ["test/\\xe9t\\xe9"]
    assert list(humans["reject_reason"]) == ["path-not-utf8"]
    assert humans["labelmap_path"].iloc[0] == "test/image-parse-v3/\\xe9t\\xe9.png"


def test_out_inside_source_is_refused(bad_src: Path):
    from curate.ingest import IngestError

    with pytest.raises(IngestError, match="inside the source"):
        ingest(bad_src, bad_src / "ds")
    with pytest.raises(IngestError, match="valid: auto, viton-hd"):
        ingest(bad_src, bad_src.parent / "ds", layout="vitonhd")
    with pytest.raises(IngestError, match="unknown category"):
        ingest(bad_src, bad_src.parent / "ds", category="shoes")


def test_min_side_rejects_small_images(tmp_path: Path):
    src = tmp_path / "shop"
    src.mkdir()
    (src / "big.jpg").write_bytes(jpeg_bytes(1, size=(64, 80)))
    (src / "thumb.jpg").write_bytes(jpeg_bytes(2, size=(64, 20)))
    off = ingest(src, tmp_path / "off").manifest.articles
    assert (off["status"] == "ok").all()  # no resolution policy unless asked
    rows = ingest(src, tmp_path / "on", min_side=32).manifest.articles.set_index("article_id")
    assert rows.loc["big", "status"] == "ok"
    assert rows.loc["thumb", "reject_reason"] == "image-too-small" and "64x20" in rows.loc["thumb", "reject_detail"]
