"""Every real sample set whose layout applies, rebuilt in its original layout with symlinks, then ingested.

The shared samples have role-named folders (human/, parse/, pose/ ...; see SOURCES.md); each test links
them back into the layout their source repository uses, so the readers meet the real folder names.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from curate.ingest import ingest
from curate.manifest import Manifest


def link(target: Path, link_path: Path) -> None:
    link_path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link_path)


def rebuild(sample: Path, src: Path, layout: dict[str, str]) -> Path:
    """Link ``sample/<role folder>`` to ``src/<original folder>`` for each entry of ``layout``."""
    for role, original in layout.items():
        link(sample / role, src / original)
    return src


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root`` (following links): proves ingest never writes the source."""
    out = {}
    for dirpath, _, files in os.walk(root, followlinks=True):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def by_id(df, column):
    return {r[column]: r for r in df.to_dict(orient="records")}


@pytest.fixture()
def vitonhd_src(real_root: Path, tmp_path: Path) -> Path:
    return rebuild(real_root / "mgd-vitonhd", tmp_path / "vitonhd", {
        "human": "test/image", "parse": "test/image-parse-v3", "pose": "test/openpose_json",
        "test_pairs.txt": "test_pairs.txt",
    })


def test_mgd_vitonhd(vitonhd_src: Path, tmp_path: Path):
    before = tree_digest(vitonhd_src)
    result = ingest(vitonhd_src, tmp_path / "ds", category="upper_body")
    assert result.layout == "viton-hd"
    m = result.manifest
    humans = by_id(m.humans, "human_id")
    assert sorted(humans) == ["test/03191_00", "test/12419_00"]
    for h in humans.values():
        assert (h["status"], h["width"], h["height"], h["split"]) == ("ok", 768, 1024, "test")
        assert h["label_set"] == "lip-20" and h["pose_format"] == "openpose-body25"
        assert h["category"] == "upper_body" and len(h["keypoints"]) == 54
    raw = json.loads((vitonhd_src / "test/openpose_json/03191_00_keypoints.json").read_text())
    neck = raw["people"][0]["pose_keypoints_2d"][3:6]
    np.testing.assert_allclose(humans["test/03191_00"]["keypoints"][3:6], neck, rtol=1e-6)
    assert humans["test/03191_00"]["sha256"] == hashlib.sha256(
        (vitonhd_src / "test/image/03191_00.jpg").read_bytes()).hexdigest()
    # The cloth files named by test_pairs.txt are absent from the sample: rows that say so, and pairs
    # rejected with missing-file (they are unpaired: person and cloth differ).
    assert set(m.articles["reject_reason"]) == {"missing-file"}
    assert sorted(m.articles["article_id"]) == ["test/00349_00", "test/01944_00"]
    assert list(m.pairs["reject_reason"]) == ["missing-file", "missing-file"]
    assert not m.pairs["paired"].any()
    assert set(m.pairs["pair_list"]) == {"test_pairs.txt"}
    assert tree_digest(vitonhd_src) == before


def test_mgd_vitonhd_older_folder_names(real_root: Path, tmp_path: Path):
    # The original shadow2496/VITON-HD code reads image-parse and openpose-json.
    src = rebuild(real_root / "mgd-vitonhd", tmp_path / "old", {
        "human": "test/image", "parse": "test/image-parse", "pose": "test/openpose-json",
    })
    m = ingest(src, tmp_path / "ds").manifest
    assert m.humans["labelmap_path"].str.startswith("test/image-parse/").all()
    assert (m.humans["pose_format"] == "openpose-body25").all()
    assert len(m.pairs) == 0  # no pair list and no cloth folder: nothing to pair


def test_ingest_twice_gives_identical_tables(vitonhd_src: Path, tmp_path: Path):
    ingest(vitonhd_src, tmp_path / "a")
    ingest(vitonhd_src, tmp_path / "b")
    ingest(vitonhd_src, tmp_path / "a")  # re-run over an existing output
    for table in ("humans", "articles", "pairs"):
        a = (tmp_path / "a/manifest" / f"{table}.parquet").read_bytes()
        b = (tmp_path / "b/manifest" / f"{table}.parquet").read_bytes()
        assert a == b, table


def test_mgd_dresscode(real_root: Path, tmp_path: Path):
    src = tmp_path / "dresscode"
    for cat in ("upper_body", "lower_body", "dresses"):
        base = real_root / "mgd-dresscode" / cat
        rebuild(base, src / cat, {"human": "images", "parse": "label_maps", "pose": "keypoints"})
        for pair_list in base.glob("*.txt"):
            link(pair_list, src / cat / pair_list.name)
    result = ingest(src, tmp_path / "ds")
    assert result.layout == "dresscode"
    m = result.manifest
    humans = by_id(m.humans, "human_id")
    ok = sorted(k for k, h in humans.items() if h["status"] == "ok")
    assert ok == ["dresses/052012_0", "lower_body/050855_0", "lower_body/050915_0", "upper_body/048462_0"]
    # Persons whose image is absent from the repository, accounted for through their annotations.
    for hid in ("upper_body/048466_0", "dresses/051994_0"):
        h = humans[hid]
        assert (h["status"], h["reject_reason"]) == ("rejected", "missing-file")
        assert h["labelmap_path"].endswith("_4.png") and h["pose_format"] == "dresscode"
    for hid, h in humans.items():
        assert h["category"] == hid.split("/")[0] and h["label_set"] == "dresscode-18"
        # Keypoints: the 384x512 frame scaled to the 768x1024 images (or their label maps).
        raw = np.array(json.loads((src / h["pose_path"]).read_text())["keypoints"], dtype=np.float32)
        kp = np.array(h["keypoints"], dtype=np.float32).reshape(18, 3)
        present = raw[:, 2] > 0
        np.testing.assert_allclose(kp[present, :2], raw[present, :2] * 2)
        assert kp[:, 0].max() > 384 or kp[:, 1].max() > 512
    # 050855 has a missing joint (row 16): conf 0, coordinates 0.
    assert list(humans["lower_body/050855_0"]["keypoints"][48:51]) == [0.0, 0.0, 0.0]
    # Every garment image is absent: 8 pairs (4 paired + 4 unpaired) rejected missing-file.
    assert len(m.pairs) == 8 and set(m.pairs["reject_reason"]) == {"missing-file"}
    assert m.pairs["paired"].sum() == 4
    assert set(m.pairs["split"]) == {"test"}
    assert (m.pairs["category"] == m.pairs["pair_id"].str.split("/").str[0]).all()


def test_pasta_gan_person_to_person(real_root: Path, tmp_path: Path):
    # PASTA-GAN's test_datas rebuilt VITON-style: image/, image-parse/ (LIP-20 greyscale), pose/
    # (54-value pose_keypoints_2d), test_pairs.txt of person -> person; garment parsing is no VITON folder.
    src = rebuild(real_root / "pasta-gan-plusplus", tmp_path / "pasta", {
        "human": "data/test/image", "parse": "data/test/image-parse", "pose": "data/test/pose",
        "garment-parse": "data/test/garment-parse", "test_pairs.txt": "data/test_pairs.txt",
    })
    result = ingest(src, tmp_path / "ds")
    assert result.layout == "viton"
    m = result.manifest
    assert len(m.humans) == 25 and (m.humans["status"] == "ok").all()
    assert set(m.humans["pose_format"]) == {"openpose-coco18"}
    assert set(m.humans["label_set"]) == {"lip-20"} and set(m.humans["width"]) == {320}
    assert len(m.articles) == 0
    assert len(m.pairs) == 25 and (m.pairs["status"] == "ok").all()
    assert m.pairs["article_id"].isna().all() and m.pairs["target_human_id"].notna().all()
    first = m.pairs.iloc[0]
    assert first["human_id"] == "test/24_D394CAA4C7D0BAGS_1504042_puma-8627-2404051-4"
    assert first["target_human_id"] == "test/24_C99F9AA18E57E8GS_1590237_zalora-basics-7996-7320951-4"
    assert result.summary.unused == {"data/test/garment-parse": 25}


def test_ootdiffusion_and_idm_vton_as_pairs_folders(real_root: Path, tmp_path: Path):
    ootd = ingest(real_root / "ootdiffusion", tmp_path / "ootd")
    assert ootd.layout == "pairs-folder"
    assert (len(ootd.manifest.humans), len(ootd.manifest.articles), len(ootd.manifest.pairs)) == (14, 37, 0)
    assert (ootd.manifest.articles["status"] == "ok").all()
    idm = ingest(real_root / "idm-vton", tmp_path / "idm")
    assert (len(idm.manifest.humans), len(idm.manifest.articles), len(idm.manifest.pairs)) == (5, 16, 0)
    sizes = by_id(idm.manifest.articles, "article_id")
    assert (sizes["09164_00"]["width"], sizes["09164_00"]["height"]) == (1250, 1250)  # the square web shot
    assert idm.summary.unused == {"metadata": 1}  # the tag JSON is not part of the layout, and is reported


def test_cross_source_pair_matched_by_stem(real_root: Path, tmp_path: Path):
    # SOURCES.md: ootdiffusion/human/14627_00 wears idm-vton/article/14627_00.
    src = tmp_path / "cross"
    for name in ("14627_00.jpg", "01008_00.jpg"):
        link(real_root / "ootdiffusion/human" / name, src / "human" / name)
    for name in ("14627_00.jpg", "04743_00.jpg"):
        link(real_root / "idm-vton/article" / name, src / "article" / name)
    m = ingest(src, tmp_path / "ds").manifest
    assert m.pairs[["human_id", "article_id", "paired", "status"]].values.tolist() == [
        ["14627_00", "14627_00", True, "ok"]
    ]
    assert m.pairs["pair_list"].isna().all()


def test_pidm_deepfashion_best_fit(real_root: Path, tmp_path: Path):
    # human/ only, plus hand-drawn edit masks that are no label set: humans, masks reported as unused.
    result = ingest(real_root / "pidm-deepfashion", tmp_path / "ds")
    assert result.layout == "pairs-folder"
    assert sorted(result.manifest.humans["human_id"]) == ["reference_img_1", "reference_img_3"]
    assert result.summary.unused == {"lower-mask": 2, "upper-mask": 2}


def test_catvton_and_ecommerce_as_images(real_root: Path, tmp_path: Path):
    cat = ingest(real_root / "catvton", tmp_path / "cat", layout="images").manifest
    assert len(cat.articles) == 12 and len(cat.humans) == 0
    counts = cat.articles.groupby("category").size().to_dict()
    assert counts == {"upper_body": 4, "dresses": 4, "unknown": 4}  # upper/, overall/, article-on-model/
    big = cat.articles[cat.articles["article_id"].str.contains("24083449")].iloc[0]
    assert (big["width"], big["height"]) == (2048, 2732)
    # Its human/ folder makes it a pairs folder by itself; as plain images with --role human, the same rows.
    auto = ingest(real_root / "pidm-ecommerce", tmp_path / "auto")
    shop = ingest(real_root / "pidm-ecommerce/human", tmp_path / "shop", role="human")
    assert (auto.layout, shop.layout) == ("pairs-folder", "images")
    assert len(shop.manifest.humans) == 10 and (shop.manifest.humans["status"] == "ok").all()
    assert sorted(shop.manifest.humans["sha256"]) == sorted(auto.manifest.humans["sha256"])


def test_manifest_round_trip(vitonhd_src: Path, tmp_path: Path):
    result = ingest(vitonhd_src, tmp_path / "ds")
    again = Manifest.load(tmp_path / "ds")
    assert again.root == vitonhd_src.resolve() and again.layout == "viton-hd"
    for rel in again.humans["labelmap_path"]:
        assert again.resolve(rel).is_file()
    assert again.content_hash() == result.manifest.content_hash()
