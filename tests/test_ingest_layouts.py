"""Layouts without real samples (VITON/CP-VTON, SMIS), detection, the images tree, and the CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from curate.cli import app
from curate.ingest import IngestError, detect_layout, ingest

W, H = 24, 32


def img(path: Path, colour=(120, 30, 200), size=(W, H), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(path)
    return path


def legacy_pose(path: Path) -> list[float]:
    flat = [float(v) for j in range(18) for v in (j, j + 1, 0.5)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1.0, "people": [{"pose_keypoints": flat, "face_keypoints": []}]}))
    return flat


@pytest.fixture()
def viton_src(tmp_path: Path) -> Path:
    """CP-VTON+ layout: data/{train,test}, image-parse-new beside image-parse, legacy poses, three lists."""
    src = tmp_path / "viton"
    for split, ids in (("train", ["000001", "000002"]), ("test", ["000010"])):
        d = src / "data" / split
        for i in ids:
            img(d / "image" / f"{i}_0.jpg")
            img(d / "cloth" / f"{i}_1.jpg", (10, 200, 10))
            img(d / "cloth-mask" / f"{i}_1.jpg", (255,), mode="L")
            ids_map = np.zeros((H, W), np.uint8)
            ids_map[5:20, 4:20] = 5
            (d / "image-parse-new").mkdir(parents=True, exist_ok=True)
            Image.fromarray(ids_map, "L").save(d / "image-parse-new" / f"{i}_0.png")
            (d / "image-parse").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((H, W), 99, np.uint8), "L").save(d / "image-parse" / f"{i}_0.png")  # not read
            legacy_pose(d / "pose" / f"{i}_0_keypoints.json")
    (src / "data/train_pairs.txt").write_text("000001_0.jpg 000001_1.jpg\n000002_0.jpg 000002_1.jpg\n")
    (src / "data/test_pairs.txt").write_text("000010_0.jpg 000010_1.jpg\n")
    (src / "data/test_pairs_same.txt").write_text("000010_0.jpg 000010_1.jpg\n")
    return src


def test_viton_cp_vton_layout(viton_src: Path, tmp_path: Path):
    result = ingest(viton_src, tmp_path / "ds")
    assert result.layout == "viton"
    m = result.manifest
    assert (m.humans["status"] == "ok").all() and (m.articles["status"] == "ok").all()
    assert sorted(m.humans["human_id"]) == ["test/000010_0", "train/000001_0", "train/000002_0"]
    assert m.humans["labelmap_path"].str.contains("image-parse-new/").all()  # CP-VTON+ parse preferred
    assert set(m.humans["pose_format"]) == {"openpose-coco18-legacy"}
    assert list(m.humans["keypoints"].iloc[0][:3]) == [0.0, 1.0, 0.5]
    assert m.articles["cloth_mask_path"].notna().all()
    assert len(m.pairs) == 4 and m.pairs["paired"].all() and (m.pairs["status"] == "ok").all()
    assert sorted(set(m.pairs["split"])) == ["test", "train"]
    assert any("image-parse-new" in n for n in result.summary.notes)
    assert result.summary.unused == {"data/test/image-parse": 1, "data/train/image-parse": 2}
    assert result.summary.usable_pairs == 4
    usable = result.summary.usable.set_index(["table", "split"])["count"].to_dict()
    assert usable == {("humans", "test"): 1, ("humans", "train"): 2, ("articles", "test"): 1,
                      ("articles", "train"): 2, ("pairs", "test"): 2, ("pairs", "train"): 2}


def test_deepfashion_smis(tmp_path: Path):
    src = tmp_path / "smis"
    masks = {"a": np.arange(H * W).reshape(H, W) % 8, "b": np.full((H, W), 9)}  # 9 is outside SMIS-8
    for split in ("train", "test"):
        for stem, ids in masks.items():
            img(src / split / f"{stem}.jpg")
            (src / f"cihp_{split}_mask").mkdir(parents=True, exist_ok=True)
            Image.fromarray(ids.astype(np.uint8), "L").save(src / f"cihp_{split}_mask" / f"{stem}.png")
    Image.fromarray(np.zeros((H, W), np.uint8), "L").save(src / "cihp_test_mask" / "orphan.png")
    result = ingest(src, tmp_path / "ds")
    assert result.layout == "deepfashion-smis"
    rows = result.manifest.humans.set_index("human_id")
    assert set(rows["label_set"]) == {"smis-8"}
    assert rows.loc["train/a", "status"] == "ok" and rows.loc["test/b", "reject_reason"] == "labelmap-unknown-ids"
    assert rows.loc["test/orphan", "reject_reason"] == "missing-file"  # a mask without its photo
    assert len(result.manifest.articles) == 0 and len(result.manifest.pairs) == 0


def test_images_tree_categories_splits_and_roles(tmp_path: Path):
    src = tmp_path / "catalogue"
    img(src / "train/Dresses/x1.jpg")
    img(src / "train/tops/x2.png")
    img(src / "misc/x3.jpg")
    (src / "misc/readme.txt").write_text("not an image")
    arts = ingest(src, tmp_path / "a").manifest.articles.set_index("article_id")
    assert arts["category"].to_dict() == {"misc/x3": "unknown", "train/Dresses/x1": "dresses", "train/tops/x2": "upper_body"}
    assert arts.loc["train/tops/x2", "split"] == "train" and arts.loc["misc/x3", "split"] == "unknown"
    humans = ingest(src, tmp_path / "h", role="human", category="lower_body").manifest.humans
    assert len(humans) == 3 and set(humans["category"]) == {"lower_body"}
    with pytest.raises(IngestError, match="unknown role"):
        ingest(src, tmp_path / "x", role="model")


def test_pairs_folder_with_pair_list(tmp_path: Path):
    src = tmp_path / "pf"
    img(src / "human/p1.jpg")
    img(src / "human/p2.jpg")
    img(src / "article/upper/g1.jpg")
    img(src / "article/g2.jpg")
    (src / "pairs.txt").write_text("p1.jpg upper/g1.jpg\np2.jpg g2.jpg\np2.jpg g404.jpg\np1.jpg lower/g9.jpg\np2.jpg lower/g9.jpg\n")
    m = ingest(src, tmp_path / "ds").manifest
    pairs = m.pairs.set_index("pair_id")
    assert pairs.loc["pairs/p1--upper/g1", "category"] == "upper_body"
    assert pairs.loc["pairs/p2--g2", "status"] == "ok" and not pairs["paired"].any()
    assert pairs.loc["pairs/p2--g404", "reject_reason"] == "missing-file"
    assert m.articles.set_index("article_id").loc["g404", "reject_reason"] == "missing-file"
    # an absent file named twice is one row (id = its path under article/ without extension)
    absent = m.articles[m.articles["article_id"] == "lower/g9"]
    assert len(absent) == 1 and absent.iloc[0]["path"] == "article/lower/g9.jpg"
    assert absent.iloc[0]["category"] == "lower_body"
    assert (pairs.loc[["pairs/p1--lower/g9", "pairs/p2--lower/g9"], "reject_reason"] == "missing-file").all()


@pytest.mark.parametrize(
    "folders, files, expected",
    [
        (["train/image", "train/cloth", "train/openpose_json"], [], "viton-hd"),
        (["data/train/image"], [], "viton"),
        (["test/image", "test/pose"], [], "viton"),
        (["upper_body/images"], [], "dresscode"),
        (["cihp_train_mask", "train"], [], "deepfashion-smis"),
        (["human", "article"], [], "pairs-folder"),
        (["photos/a"], ["photos/a/x.jpg"], "images"),
    ],
)
def test_detection(tmp_path: Path, folders, files, expected):
    for f in folders:
        (tmp_path / f).mkdir(parents=True)
    for f in files:
        img(tmp_path / f)
    detection = detect_layout(tmp_path)
    assert detection.layout == expected and detection.reason


def test_detection_fgvc6_and_failure(tmp_path: Path):
    (tmp_path / "train.csv").write_text("ImageId,EncodedPixels,Height,Width,ClassId\n")
    assert detect_layout(tmp_path).layout == "fgvc6"
    empty = tmp_path / "empty"
    (empty / "docs").mkdir(parents=True)
    with pytest.raises(IngestError, match="Valid layouts: viton-hd, viton, dresscode"):
        detect_layout(empty)


def test_cli_ingest_and_summary(viton_src: Path, tmp_path: Path):
    runner = CliRunner()
    ds = tmp_path / "ds"
    res = runner.invoke(app, ["ingest", str(viton_src), "--out", str(ds), "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "viton" in res.output and "pairs" in res.output
    res = runner.invoke(app, ["summary", str(ds)])
    assert res.exit_code == 0 and "data/train/image exists" in res.output.replace("\n", "")
    res = runner.invoke(app, ["ingest", str(viton_src), "--out", str(ds), "--layout", "nope"])
    assert res.exit_code == 2 and "valid: auto" in res.output
    res = runner.invoke(app, ["summary", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "curate ingest" in res.output


def test_workers_give_the_same_manifest(tmp_path: Path):
    src = tmp_path / "many"
    for i in range(16):  # enough rows for the process pool to be used (>= 2 per worker)
        img(src / f"{i:02d}.jpg", (i * 10, 50, 100))
    (src / "07.jpg").write_bytes(b"")
    ingest(src, tmp_path / "one", workers=1)
    calls: list[tuple[str, int, int]] = []
    ingest(src, tmp_path / "three", workers=3, progress=lambda *call: calls.append(call))
    assert calls[-1] == ("articles", 16, 16) and all(done <= total for _, done, total in calls)
    for table in ("humans", "articles", "pairs"):
        assert (tmp_path / "one/manifest" / f"{table}.parquet").read_bytes() == (
            tmp_path / "three/manifest" / f"{table}.parquet"
        ).read_bytes()


def test_link_cycle_and_hidden_folders_do_not_loop_or_count(tmp_path: Path):
    src = tmp_path / "tree"
    img(src / "a/x.jpg")
    img(src / ".thumbs/x.jpg")  # hidden: not a row
    (src / "a/loop").symlink_to(src, target_is_directory=True)  # a link back to the root
    result = ingest(src, tmp_path / "ds", layout="images")
    assert list(result.manifest.articles["article_id"]) == ["a/x"]


def test_dresscode_root_pair_lists_and_cloth_masks(tmp_path: Path):
    src = tmp_path / "dc"
    for cat, base in (("upper_body", "000001"), ("dresses", "000002")):
        img(src / cat / "images" / f"{base}_0.jpg")
        img(src / cat / "images" / f"{base}_1.jpg")
    img(src / "upper_body/cloth_mask/000001_1.png", (255,), mode="L")
    (src / "test_pairs_paired.txt").write_text("000001_0.jpg 000001_1.jpg\n000002_0.jpg\t000002_1.jpg\n999999_0.jpg 999999_1.jpg")
    result = ingest(src, tmp_path / "ds")
    pairs = result.manifest.pairs.set_index("pair_id")
    assert pairs["category"].to_dict() == {
        "upper_body/test_pairs_paired/000001_0--000001_1": "upper_body",
        "dresses/test_pairs_paired/000002_0--000002_1": "dresses",
    }
    assert (pairs["status"] == "ok").all() and pairs["paired"].all()
    assert any("999999_0.jpg is in no category folder" in n for n in result.summary.notes)
    masks = result.manifest.articles.set_index("article_id")["cloth_mask_path"]
    assert masks["upper_body/000001_1"] == "upper_body/cloth_mask/000001_1.png" and pd.isna(masks["dresses/000002_1"])


def test_reingest_keeps_later_verdicts_only_for_an_unchanged_source(viton_src: Path, tmp_path: Path):
    from curate.manifest import Manifest

    ds = tmp_path / "ds"
    ingest(viton_src, ds)
    m = Manifest.load(ds)
    m.pairs["filter_reason"] = ["extra-garments", None, None, None]
    m.humans["dup_keep"] = True
    m.save()
    again = ingest(viton_src, ds)
    assert list(again.manifest.pairs["filter_reason"].fillna("")) == ["extra-garments", "", "", ""]
    assert again.summary.usable_pairs == 3 and "verdicts kept" in again.summary.notes[-1]
    assert Manifest.load(ds).humans["dup_keep"].all()
    (viton_src / "data/train/cloth/000002_1.jpg").unlink()  # the source changes: verdicts are stale
    changed = ingest(viton_src, ds)
    assert changed.manifest.pairs["filter_reason"].isna().all()
    assert "re-run those stages" in changed.summary.notes[-1]
