"""Pose conversion: every format from a hand-made file whose COCO-18 result is known, plus the real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from curate.poses import (
    BODY25_TO_COCO18, PoseFormatError, PoseFrameError, PoseUnreadableError, parse_pose, read_pose,
)  # fmt: skip
from curate.schema import PoseFormat


def _body25() -> np.ndarray:
    """BODY_25 joint j at (10 j + 1, 100 + j), conf 0.5; joint 4 (r-wrist) missing, joint 8 = MidHip."""
    kp = np.array([[10 * j + 1, 100 + j, 0.5] for j in range(25)], dtype=np.float64)
    kp[4] = 0
    return kp


def test_body25_drops_midhip_and_feet():
    body = _body25()
    pose = parse_pose({"version": 1.3, "people": [{"pose_keypoints_2d": body.reshape(-1).tolist()}]})
    assert pose.format is PoseFormat.BODY25
    assert pose.keypoints.shape == (18, 3) and pose.keypoints.dtype == np.float32
    # COCO 0-7 = BODY_25 0-7; COCO 8 (r-hip) = BODY_25 9 (after MidHip); COCO 17 (l-ear) = BODY_25 18.
    np.testing.assert_allclose(pose.keypoints[7], [71, 107, 0.5])
    np.testing.assert_allclose(pose.keypoints[8], [91, 109, 0.5])
    np.testing.assert_allclose(pose.keypoints[17], [181, 118, 0.5])
    np.testing.assert_array_equal(pose.keypoints[4], [0, 0, 0])  # missing stays missing
    assert 8 not in BODY25_TO_COCO18 and max(BODY25_TO_COCO18) == 18


def test_coco18_2d_and_legacy_keep_order():
    flat = [float(v) for j in range(18) for v in (j, 2 * j, 0.9)]
    modern = parse_pose({"people": [{"pose_keypoints_2d": flat}]})
    legacy = parse_pose({"people": [{"pose_keypoints": flat, "face_keypoints": []}]})
    assert modern.format is PoseFormat.COCO18 and legacy.format is PoseFormat.COCO18_LEGACY
    expected = np.array(flat, dtype=np.float32).reshape(18, 3)
    np.testing.assert_array_equal(modern.keypoints, expected)
    np.testing.assert_array_equal(legacy.keypoints, expected)


def test_dresscode_scaled_from_half_resolution_frame():
    rows = [[float(j), float(2 * j), 0.8, float(j)] for j in range(18)]
    rows[16] = [-1.0, -1.0, 0.0, -1.0]  # missing: the later row ids shift by one, as in the real files
    rows[17][3] = 16.0
    pose = parse_pose({"keypoints": rows}, image_size=(768, 1024))
    assert pose.format is PoseFormat.DRESSCODE
    np.testing.assert_allclose(pose.keypoints[5], [10.0, 20.0, 0.8], rtol=1e-6)  # x*768/384, y*1024/512
    np.testing.assert_allclose(pose.keypoints[17], [34.0, 68.0, 0.8], rtol=1e-6)  # row order, not the id
    np.testing.assert_array_equal(pose.keypoints[16], [0, 0, 0])
    with pytest.raises(PoseFrameError):
        parse_pose({"keypoints": rows})


def test_empty_people_is_all_missing():
    pose = parse_pose({"version": 1.3, "people": []})
    assert not pose.keypoints.any()


@pytest.mark.parametrize(
    "obj, match",
    [
        ({"people": [{"pose_keypoints_2d": [1.0] * 60}]}, "60 values"),
        ({"people": [{"pose_keypoints": [1.0] * 75}]}, "75 values"),
        ({"people": [{"face_keypoints_2d": [1.0] * 210}]}, "neither"),
        ({"people": [{"pose_keypoints_2d": ["a"] * 54}]}, "not a flat list"),
        ({"people": "nobody"}, "not a list"),
        ({"keypoints": [[1, 2, 3, 4]] * 17}, "18 rows"),
        ({"keypoints": [[1, 2, 3]] * 18}, r"\[x, y, score, id\]"),
        ({"landmarks": []}, "none of the known keys"),
        ([1, 2, 3], "top level is a list"),
    ],
)
def test_unknown_shapes_raise_a_format_error(obj, match):
    with pytest.raises(PoseFormatError, match=match):
        parse_pose(obj, image_size=(192, 256))


def test_unreadable_files(tmp_path: Path):
    for name, data in (("empty.json", b""), ("bad.json", b"{not json"), ("latin.json", '{"é": 1}'.encode("latin-1"))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PoseUnreadableError):
            read_pose(tmp_path / name)
    with pytest.raises(PoseUnreadableError):
        read_pose(tmp_path / "absent.json")


def test_real_pose_files(real_root: Path):
    # mgd-vitonhd: BODY_25 in 768x1024 pixels; the neck is BODY_25 joint 1 = COCO joint 1.
    raw = json.loads((real_root / "mgd-vitonhd/pose/03191_00_keypoints.json").read_text())["people"][0]
    body = np.array(raw["pose_keypoints_2d"], dtype=np.float32).reshape(25, 3)
    pose = read_pose(real_root / "mgd-vitonhd/pose/03191_00_keypoints.json")
    assert pose.format is PoseFormat.BODY25
    np.testing.assert_array_equal(pose.keypoints, body[list(BODY25_TO_COCO18)])
    assert pose.keypoints[:, 0].max() <= 768 and pose.keypoints[:, 1].max() <= 1024

    # PASTA-GAN: 54-value pose_keypoints_2d = COCO-18 as is.
    pasta = sorted((real_root / "pasta-gan-plusplus/pose").glob("*.json"))
    assert len(pasta) == 25
    assert {read_pose(p).format for p in pasta} == {PoseFormat.COCO18}

    # DressCode: 384x512 frame -> 768x1024 doubles every present coordinate (largest raw x=279, y=447).
    for path in sorted((real_root / "mgd-dresscode").glob("*/pose/*.json")):
        rows = np.array(json.loads(path.read_text())["keypoints"], dtype=np.float32)
        pose = read_pose(path, image_size=(768, 1024))
        present = rows[:, 2] > 0
        np.testing.assert_allclose(pose.keypoints[present, :2], rows[present, :2] * 2)
        assert not pose.keypoints[~present].any()
        assert pose.keypoints[:, 0].max() <= 768 and pose.keypoints[:, 1].max() <= 1024
