"""curate synth: determinism, layout completeness, and that every injected case is what it claims."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curate.labelsets import LIP20
from curate.synth import CASES, generate


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def gt(synth_root: Path) -> pd.DataFrame:
    return pd.read_csv(synth_root / "ground_truth.csv", keep_default_na=False)


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = (generate(tmp_path / name, 40, (96, 72), seed) for name, seed in (("a", 1), ("b", 1), ("c", 2)))
    assert _tree_digest(a.root) == _tree_digest(b.root)
    assert _tree_digest(a.root) != _tree_digest(c.root)


def test_every_case_injected_and_files_complete(synth_root: Path, gt: pd.DataFrame) -> None:
    assert list(gt.columns[:5]) == ["pair_id", "human", "article", "case", "duplicate_of"]
    assert set(gt["case"]) == set(CASES)
    assert gt["pair_id"].is_unique
    for row in gt.itertuples():
        split, stem = row.split, row.pair_id
        assert (synth_root / row.human).is_file() and (synth_root / row.article).is_file()
        parse = np.asarray(Image.open(synth_root / split / "image-parse-v3" / f"{stem}.png"))
        assert Image.open(synth_root / row.human).size == parse.shape[::-1]
        assert parse.max() < LIP20.num_classes
        pose = json.loads((synth_root / split / "openpose_json" / f"{stem}_keypoints.json").read_text())
        assert len(pose["people"][0]["pose_keypoints_2d"]) == 75
    # the pair lists name exactly the ground-truth pairs, paired
    listed = {line.split()[0] for s in ("train", "test") for line in (synth_root / f"{s}_pairs.txt").read_text().splitlines()}
    assert listed == {f"{p}.jpg" for p in gt["pair_id"]}


def test_duplicates_match_their_original(synth_root: Path, gt: pd.DataFrame) -> None:
    by_id = gt.set_index("pair_id")
    for row in gt[gt["case"] == "exact-duplicate"].itertuples():
        orig = by_id.loc[row.duplicate_of]
        assert orig["case"] == "clean" and orig["split"] == row.split
        assert (synth_root / row.human).read_bytes() == (synth_root / orig["human"]).read_bytes()
        assert (synth_root / row.article).read_bytes() == (synth_root / orig["article"]).read_bytes()
    near = gt[gt["case"] == "near-duplicate"]
    assert set(near["transform"]) == {"reencode", "resize", "crop", "brightness", "watermark"}
    for row in near.itertuples():
        orig = by_id.loc[row.duplicate_of]
        a = Image.open(synth_root / row.human).convert("L")
        b = Image.open(synth_root / orig["human"]).convert("L").resize(a.size)
        x, y = np.asarray(a, np.float32), np.asarray(b, np.float32)
        assert (synth_root / row.human).read_bytes() != (synth_root / orig["human"]).read_bytes()
        if row.transform == "crop":  # 2-6 % off each side
            ow, oh = Image.open(synth_root / orig["human"]).size
            assert 0.86 * ow <= a.size[0] <= 0.97 * ow and 0.86 * oh <= a.size[1] <= 0.97 * oh
        elif row.transform == "brightness":  # a global gain: strongly correlated, not equal
            assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.95
        else:
            assert np.abs(x - y).mean() < 12, (row.pair_id, row.transform)


def _parse(root: Path, row) -> np.ndarray:  # noqa: ANN001
    return np.asarray(Image.open(root / row.split / "image-parse-v3" / f"{row.pair_id}.png"))


def _keypoints(root: Path, row) -> np.ndarray:  # noqa: ANN001
    doc = json.loads((root / row.split / "openpose_json" / f"{row.pair_id}_keypoints.json").read_text())
    return np.asarray(doc["people"][0]["pose_keypoints_2d"]).reshape(25, 3)


def test_back_views_have_no_face_and_mirrored_shoulders(synth_root: Path, gt: pd.DataFrame) -> None:
    for row in gt.itertuples():
        parse, kp = _parse(synth_root, row), _keypoints(synth_root, row)
        rsho_x, lsho_x = kp[2, 0], kp[5, 0]
        if row.case == "back-view":
            assert not (parse == 13).any()
            assert kp[0, 2] == 0 and kp[15, 2] == 0 and kp[16, 2] == 0  # nose and eyes unseen
            assert rsho_x > lsho_x  # the person's right shoulder is on the image right
        elif row.case in ("clean", "lower-only-product", "extra-garments"):
            assert (parse == 13).any() and rsho_x < lsho_x


def _mask(root: Path, row) -> np.ndarray:  # noqa: ANN001
    return np.asarray(Image.open(root / row.split / "cloth-mask" / f"{row.pair_id}.jpg")) > 127


def _runs(line: np.ndarray) -> int:
    """Number of separate foreground runs in one mask row."""
    return int(np.count_nonzero(np.diff(line.astype(np.int8)) == 1) + line[0])


# Which parse labels each BODY_25 joint may land on: its own side's arm/leg/shoe (or the garment covering
# it), never the other side's. This ties the pose's left/right to the parse's, front and back alike.
_JOINT_LABELS: dict[int, set[int]] = {
    4: {15, 5, 6, 7}, 7: {14, 5, 6, 7},  # right / left wrist: arm, or a long sleeve / coat over it
    19: {18, 9}, 20: {18, 9}, 21: {18, 9},  # left big toe, small toe, heel: left shoe (or trousers over it)
    22: {19, 9}, 23: {19, 9}, 24: {19, 9},
    0: {13}, 15: {13}, 16: {13},  # nose and eyes on the face
}


def test_pose_lands_on_the_drawn_body_parts(synth_root: Path, gt: pd.DataFrame) -> None:
    checked = 0
    for row in gt[gt["case"] != "near-duplicate"].itertuples():
        parse, kp = _parse(synth_root, row), _keypoints(synth_root, row)
        for joint, allowed in _JOINT_LABELS.items():
            x, y, conf = kp[joint]
            if conf > 0:
                label = int(parse[min(int(y), parse.shape[0] - 1), min(int(x), parse.shape[1] - 1)])
                assert label in allowed, (row.pair_id, joint, label)
                checked += 1
    assert checked > 8 * len(gt) // 2


def test_lower_only_products_and_extra_garments(synth_root: Path, gt: pd.DataFrame) -> None:
    for row in gt[gt["case"] == "lower-only-product"].itertuples():
        parse = _parse(synth_root, row)
        assert row.article_category == "lower_body"
        assert (parse == 5).any() and np.isin(parse, (9, 12)).any()  # wears a top and the lower garment
        # the product mask has a lower garment's shape: two separate legs, or a skirt widening downwards
        mask = _mask(synth_root, row)
        rows = np.nonzero(mask.any(1))[0]
        widths = mask[rows].sum(1)
        if row.garment == "skirt":
            assert np.all(np.diff(widths) >= -2), row.pair_id  # no sleeves: never narrower further down
        else:
            assert _runs(mask[rows[0] + int(0.9 * len(rows))]) == 2, row.pair_id
    for row in gt[gt["case"] == "extra-garments"].itertuples():
        parse = _parse(synth_root, row)
        assert (parse == (7 if row.extra_garment == "coat" else 11)).any()
    for row in gt[gt["case"] == "clean"].itertuples():
        assert not np.isin(_parse(synth_root, row), (7, 11)).any()


def test_article_colour_determines_garment_colour(synth_root: Path, gt: pd.DataFrame) -> None:
    """Learnability: the mean colour of the article predicts the worn garment's mean colour."""
    art, worn = [], []
    for row in gt[gt["case"] == "clean"].itertuples():
        a = np.asarray(Image.open(synth_root / row.article).convert("RGB"), np.float32)
        mask = np.asarray(Image.open(synth_root / row.split / "cloth-mask" / f"{row.pair_id}.jpg")) > 127
        p = np.asarray(Image.open(synth_root / row.human).convert("RGB"), np.float32)
        parse = _parse(synth_root, row)
        region = np.isin(parse, (5, 6))
        art.append(a[mask].mean(0))
        worn.append(p[region].mean(0))
    art_arr, worn_arr = np.array(art), np.array(worn)
    for c in range(3):
        assert np.corrcoef(art_arr[:, c], worn_arr[:, c])[0, 1] > 0.9


def test_colourway_siblings_share_shape_but_not_colour(synth_root: Path, gt: pd.DataFrame) -> None:
    siblings = gt[gt["colourway_of"] != ""]
    assert len(siblings) >= 3
    by_id = gt.set_index("pair_id")
    for row in siblings.itertuples():
        orig = by_id.loc[row.colourway_of]
        assert row.garment == orig["garment"] and row.case == "clean"
        a = np.asarray(Image.open(synth_root / row.article).convert("RGB"), np.float32)
        b = np.asarray(Image.open(synth_root / orig["article"]).convert("RGB"), np.float32)
        assert np.abs(a - b).mean() > 10  # visibly another product


def test_too_small_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too small for the injected cases"):
        generate(tmp_path / "x", 8, (96, 72))
    with pytest.raises(ValueError, match="too small to draw"):
        generate(tmp_path / "y", 40, (32, 24))


def test_upper_garment_masks_have_one_body_and_sleeves(synth_root: Path, gt: pd.DataFrame) -> None:
    """The contrast to the lower-garment shapes above: tops are one piece, sleeved ones widest near the top."""
    for row in gt[(gt["case"] == "clean") & gt["garment"].isin(["tee", "longsleeve"])].itertuples():
        mask = _mask(synth_root, row)
        rows = np.nonzero(mask.any(1))[0]
        widths = mask[rows].sum(1)
        assert np.argmax(widths) < len(rows) / 2, row.pair_id
        assert _runs(mask[rows[0] + int(0.9 * len(rows))]) == 1, row.pair_id


def test_near_duplicates_keep_parse_and_pose_consistent(synth_root: Path, gt: pd.DataFrame) -> None:
    """Geometry transforms move the parse/pose with the pixels; photometric ones leave them untouched."""
    by_id = gt.set_index("pair_id")
    for row in gt[gt["case"] == "near-duplicate"].itertuples():
        orig = by_id.loc[row.duplicate_of]
        orig_row = orig.to_frame().T.assign(pair_id=row.duplicate_of).iloc[0]
        parse, src = _parse(synth_root, row), _parse(synth_root, orig_row)
        kp, src_kp = _keypoints(synth_root, row), _keypoints(synth_root, orig_row)
        if row.transform in ("reencode", "brightness", "watermark"):
            assert np.array_equal(parse, src) and np.allclose(kp, src_kp), row.pair_id
        elif row.transform == "resize":
            h, w = parse.shape
            expect = np.asarray(Image.fromarray(src).resize((w, h), Image.NEAREST))
            assert np.array_equal(parse, expect), row.pair_id
            seen = src_kp[:, 2] > 0
            assert np.allclose(kp[seen, :2], src_kp[seen, :2] * (w / src.shape[1], h / src.shape[0]), atol=0.01)
        else:  # crop: the parse is a window of the original, the keypoints shifted by the window's corner
            h, w = parse.shape
            hits = [(t, l) for t in range(src.shape[0] - h + 1) for l in range(src.shape[1] - w + 1)
                    if np.array_equal(src[t:t + h, l:l + w], parse)]
            assert hits, row.pair_id
            t, l = hits[0]
            kept = kp[:, 2] > 0
            assert np.allclose(kp[kept, :2], src_kp[kept, :2] - (l, t), atol=0.01), row.pair_id
        assert parse.shape == np.asarray(Image.open(synth_root / row.human)).shape[:2]


def test_rerun_replaces_an_earlier_output_and_never_touches_foreign_files(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    generate(out, 50, (96, 72), 3)
    generate(out, 40, (96, 72), 3)  # smaller: nothing of the first run may be left behind
    fresh = generate(tmp_path / "fresh", 40, (96, 72), 3)
    assert _tree_digest(out) == _tree_digest(fresh.root)

    user = tmp_path / "photos"
    user.mkdir()
    (user / "me.jpg").write_bytes(b"not ours")
    with pytest.raises(ValueError, match="not an earlier curate synth output"):
        generate(user, 40, (96, 72))
    assert [p.name for p in user.rglob("*")] == ["me.jpg"] and (user / "me.jpg").read_bytes() == b"not ours"
    (out / "train" / "image" / "notes.txt").write_text("mine")  # a user file inside an earlier output
    with pytest.raises(ValueError, match="train/image/notes.txt"):
        generate(out, 40, (96, 72))
    assert (out / "ground_truth.csv").is_file()


def test_cli_reports_bad_arguments_without_a_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["synth", "--out", str(tmp_path / "s"), "--n", "40", "--size", "96x72"])
    assert ok.exit_code == 0 and (tmp_path / "s" / "ground_truth.csv").is_file(), ok.output
    for size in ("96", "96x72x3", "axb", "32x24"):
        bad = runner.invoke(app, ["synth", "--out", str(tmp_path / "t"), "--n", "40", "--size", size])
        assert bad.exit_code == 2 and "Traceback" not in bad.output and bad.exception is not None, (size, bad.output)
