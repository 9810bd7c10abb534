"""Pose files of every try-on layout -> COCO-18 keypoints ``float32 [18, 3]`` = (x, y, conf) in image pixels.

Formats read (the manifest records which one the file was, ``curate.schema.PoseFormat``):

* OpenPose >= 1.2 JSON, ``people[0].pose_keypoints_2d`` with 75 values: **BODY_25**. BODY_25 inserts
  MidHip at index 8 and appends six foot points (19-24); dropping those and keeping the rest in order
  gives COCO-18 exactly (``BODY25_TO_COCO18``).
* the same key with 54 values: COCO-18 already (PASTA-GAN's poses).
* old OpenPose JSON, ``people[0].pose_keypoints`` with 54 values: COCO-18 (VITON, CP-VTON).
* DressCode ``{"keypoints": [[x, y, score, id] x 18]}``: COCO-18 order, coordinates in a 384x512
  frame (half of the 768x1024 images), so x is scaled by ``W / 384`` and y by ``H / 512`` as the official
  loader does. Missing joints are ``[-1, -1, 0, -1]`` and become (0, 0, 0). The fourth value is a running count of
  detected joints, not the joint index (it skips missing joints), so rows are read in order.

Conventions of the output: a missing joint is (0, 0, 0), i.e. ``conf == 0`` means missing, as in
OpenPose. Only the first person is read (the try-on datasets hold one person per image). An OpenPose
file with no people is a valid file in which nobody was detected: all 18 joints missing.

Limits (hostile files): a pose file over :data:`MAX_POSE_BYTES` is not read (``file-too-large``) and JSON
nested deeper than :data:`MAX_POSE_DEPTH` is not parsed (``pose-unreadable``; Python's parser would
recurse until ``RecursionError``). A real OpenPose file is a few KB and 4 levels deep.

COCO-18 order: 0 nose, 1 neck, 2 r-shoulder, 3 r-elbow, 4 r-wrist, 5 l-shoulder, 6 l-elbow, 7 l-wrist,
8 r-hip, 9 r-knee, 10 r-ankle, 11 l-hip, 12 l-knee, 13 l-ankle, 14 r-eye, 15 l-eye, 16 r-ear, 17 l-ear.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Final

import numpy as np

from curate.schema import PoseFormat, RejectReason

MAX_POSE_BYTES: Final[int] = 4 * 2**20
MAX_POSE_DEPTH: Final[int] = 32

COCO18_NAMES: Final[tuple[str, ...]] = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "r_hip", "r_knee",
    "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
)  # fmt: skip
NUM_JOINTS: Final[int] = 18

# BODY_25 index of each COCO-18 joint: 0-7 are shared, BODY_25's 8 is MidHip (no COCO joint), 9-18 map
# to COCO 8-17, 19-24 are feet.
BODY25_TO_COCO18: Final[tuple[int, ...]] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)

# DressCode stores keypoints for a 384x512 (W x H) frame whatever the image size.
DRESSCODE_FRAME: Final[tuple[int, int]] = (384, 512)


class PoseError(ValueError):
    """Base class: the pose file cannot be turned into COCO-18 keypoints."""


class PoseUnreadableError(PoseError):
    """The file is not readable JSON (missing, empty, not UTF-8, syntax error, over the limits).

    ``reason`` is the rejection the ingest records: ``pose-unreadable`` unless the file could not be
    opened at all (``unreadable``, ``not-regular-file``, ``file-too-large``, ``broken-symlink``)."""

    def __init__(self, message: str, reason: RejectReason = RejectReason.POSE_UNREADABLE) -> None:
        super().__init__(message)
        self.reason = reason


class PoseFormatError(PoseError):
    """Valid JSON, but none of the known pose shapes (the ingest records ``pose-unknown-format``)."""


class PoseFrameError(PoseError):
    """A known format whose coordinates need the image size, and none was given."""


@dataclasses.dataclass(frozen=True)
class Pose:
    keypoints: np.ndarray  # float32 [18, 3]: x, y in image pixels, conf (0 = missing)
    format: PoseFormat

    def flat(self) -> list[float]:
        """The manifest's ``keypoints`` value: 54 floats [x0, y0, c0, x1, ...]."""
        return [float(v) for v in self.keypoints.reshape(-1)]


def _numbers(values: Any, what: str) -> np.ndarray:
    if not isinstance(values, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise PoseFormatError(f"{what} is not a flat list of numbers")
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise PoseFormatError(f"{what} contains NaN or infinite values")
    return arr


def _missing_to_zero(kp: np.ndarray) -> np.ndarray:
    """conf <= 0 (or negative coordinates, DressCode's -1 marker) -> (0, 0, 0)."""
    missing = (kp[:, 2] <= 0) | (kp[:, 0] < 0) | (kp[:, 1] < 0)
    kp[missing] = 0.0
    return kp


def _from_openpose(obj: dict[str, Any]) -> Pose:
    people = obj.get("people")
    if not isinstance(people, list):
        raise PoseFormatError("OpenPose JSON: 'people' is not a list")
    if not people:
        # Nobody detected: every joint missing. The key of an empty file cannot tell BODY_25 from COCO-18;
        # the 2-D key is the one every OpenPose >= 1.2 writes, so the file is recorded as that.
        return Pose(np.zeros((NUM_JOINTS, 3), np.float32), PoseFormat.BODY25)
    person = people[0]
    if not isinstance(person, dict):
        raise PoseFormatError("OpenPose JSON: people[0] is not an object")
    if "pose_keypoints_2d" in person:
        flat = _numbers(person["pose_keypoints_2d"], "people[0].pose_keypoints_2d")
        if flat.size == 25 * 3:
            kp = flat.reshape(25, 3)[list(BODY25_TO_COCO18)]
            return Pose(_missing_to_zero(kp).astype(np.float32), PoseFormat.BODY25)
        if flat.size == 18 * 3:
            return Pose(_missing_to_zero(flat.reshape(18, 3)).astype(np.float32), PoseFormat.COCO18)
        raise PoseFormatError(
            f"people[0].pose_keypoints_2d has {flat.size} values; expected 75 (BODY_25) or 54 (COCO-18)"
        )
    if "pose_keypoints" in person:
        flat = _numbers(person["pose_keypoints"], "people[0].pose_keypoints")
        if flat.size == 18 * 3:
            return Pose(_missing_to_zero(flat.reshape(18, 3)).astype(np.float32), PoseFormat.COCO18_LEGACY)
        raise PoseFormatError(f"people[0].pose_keypoints has {flat.size} values; expected 54 (COCO-18)")
    raise PoseFormatError(
        f"OpenPose JSON: people[0] has neither pose_keypoints_2d nor pose_keypoints (keys: {sorted(person)[:8]})"
    )


def _from_dresscode(obj: dict[str, Any], image_size: tuple[int, int] | None) -> Pose:
    rows = obj["keypoints"]
    if not isinstance(rows, list) or len(rows) != NUM_JOINTS:
        n = len(rows) if isinstance(rows, list) else type(rows).__name__
        raise PoseFormatError(f"DressCode 'keypoints' must hold 18 rows [x, y, score, id]; got {n}")
    if not all(isinstance(r, list) and len(r) == 4 for r in rows):
        raise PoseFormatError("DressCode 'keypoints' rows must each be [x, y, score, id]")
    arr = np.stack([_numbers(r, f"keypoints[{i}]") for i, r in enumerate(rows)])
    # The row index is the COCO-18 joint. The 4th value is NOT the joint index: it counts the joints
    # detected so far (a missing joint is [-1, -1, 0, -1] and every later row's id is one lower than its
    # row, e.g. Dress Code 050855_2.json), so it is ignored.
    kp = _missing_to_zero(arr[:, :3].copy())
    if image_size is None:
        raise PoseFrameError("DressCode keypoints need the image size to leave their 384x512 frame")
    sx, sy = image_size[0] / DRESSCODE_FRAME[0], image_size[1] / DRESSCODE_FRAME[1]
    present = kp[:, 2] > 0
    kp[present, 0] *= sx
    kp[present, 1] *= sy
    return Pose(kp.astype(np.float32), PoseFormat.DRESSCODE)


def parse_pose(obj: Any, image_size: tuple[int, int] | None = None) -> Pose:
    """Convert a decoded pose JSON object. ``image_size`` is ``(W, H)`` (needed for DressCode only)."""
    if not isinstance(obj, dict):
        raise PoseFormatError(f"pose JSON top level is a {type(obj).__name__}, expected an object")
    if "people" in obj:
        return _from_openpose(obj)
    if "keypoints" in obj:
        return _from_dresscode(obj, image_size)
    raise PoseFormatError(
        f"pose JSON has none of the known keys ('people' for OpenPose, 'keypoints' for DressCode); "
        f"top-level keys: {sorted(obj)[:8]}"
    )


def json_depth(data: bytes) -> int:
    """Deepest nesting of ``[``/``{`` in JSON text (brackets inside strings ignored), in one pass."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_POSE_DEPTH:
                    return deepest  # enough to refuse
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def read_pose(path: str | Path, image_size: tuple[int, int] | None = None) -> Pose:
    """Read (bounded, regular files only) and convert one pose file (see :func:`parse_pose`)."""
    from curate.imageio import printable_path, read_file_bounded

    path = Path(path)
    name = printable_path(path.name)
    data, reason, detail = read_file_bounded(path, MAX_POSE_BYTES)
    if data is None:
        raise PoseUnreadableError(f"pose {detail}", reason or RejectReason.UNREADABLE)
    if not data:
        raise PoseUnreadableError(f"pose {name}: 0 bytes")
    depth = json_depth(data)
    if depth > MAX_POSE_DEPTH:
        raise PoseUnreadableError(f"pose {name}: JSON nested more than {MAX_POSE_DEPTH} levels deep; not parsed")
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise PoseUnreadableError(f"pose {name}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise PoseUnreadableError(f"pose {name}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
    except (RecursionError, ValueError) as exc:  # belt and braces: the depth scan should have caught it
        raise PoseUnreadableError(f"pose {name}: not parsed ({type(exc).__name__})") from None
    try:
        return parse_pose(obj, image_size)
    except PoseFrameError:
        raise
    except PoseFormatError as exc:
        raise PoseFormatError(f"pose {name}: {exc}") from None
    except (RecursionError, TypeError, ValueError, KeyError) as exc:
        raise PoseFormatError(f"pose {name}: {type(exc).__name__}: {exc}") from None
