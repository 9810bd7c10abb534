"""Back and side views: is the person facing the camera, as the product photo does?

Evidence, most trusted first:

* **parsing** (the dataset's label map): a back view shows hair and no face, so
  ``face / (face + hair)`` collapses to ~0. Parsing cannot tell a side view from a front one.
* **pose** (the dataset's keypoints, or MediaPipe's in the detector path), in image coordinates:
  - in a front view the person's right shoulder is on the image's left: ``x(L) - x(R) > 0``. A back view
    mirrors that (and the hips with it);
  - a side view collapses the shoulder span: ``|x(L) - x(R)| / torso length`` falls from ~0.7 to ~0;
  - a back view shows no nose/eyes although the head is inside the frame (keypoints clamped to the image
    border, as DressCode writes for cropped heads, mean "out of frame", not "absent");
  - MediaPipe also estimates depth: a nose behind the shoulders faces away.
"""

from __future__ import annotations

import numpy as np

from curate.filters import body
from curate.filters.evidence import Source, Verdict, View
from curate.filters.thresholds import Thresholds
from curate.labelsets import LabelSet


def view_from_pose(
    kps: np.ndarray,
    image_size: tuple[int, int],
    th: Thresholds,
    *,
    depth: np.ndarray | None = None,
    source: Source = Source.POSE,
) -> Verdict:
    """View from COCO-18 keypoints ``[18, 3]`` in pixels of an image of ``image_size`` (W, H).

    ``depth`` is MediaPipe's per-joint z (COCO-18 order, smaller = nearer) when the keypoints came from
    the detector; dataset poses have none.
    """
    mc = th.min_keypoint_conf
    t = body.torso(kps, mc)
    if t is None:
        r_seen, l_seen = body.seen(kps, body.R_SHOULDER, mc), body.seen(kps, body.L_SHOULDER, mc)
        if r_seen != l_seen:
            # one shoulder hidden behind the body: the torso is turned ~90 degrees
            hidden = "left" if r_seen else "right"
            return Verdict(View.SIDE.value, source, signals=[f"{hidden}-shoulder-hidden"])
        return Verdict(View.UNKNOWN.value, source, detail="shoulders not seen")
    ratio = t.signed_shoulder_span / t.length
    hip_ratio = t.signed_hip_span / t.length if t.signed_hip_span is not None else None
    face_seen = [j for j in body.FACE_JOINTS if body.seen(kps, j, mc)]
    face_in_frame = [j for j in face_seen if body.in_frame(kps, j, image_size)]
    head_room = float(t.neck[1]) / t.length
    scores: dict[str, float | int | None] = {
        "shoulder_ratio": ratio,
        "hip_ratio": hip_ratio,
        "face_joints_seen": len(face_seen),
        "face_joints_in_frame": len(face_in_frame),
        "head_room": head_room,
    }
    signals: list[str] = []
    # Hips, when seen, must agree: a mirrored shoulder pair alone can be a pose-estimator swap.
    mirrored = ratio < 0 and (hip_ratio is None or hip_ratio < 0)
    if mirrored:
        signals.append("shoulders-mirrored" + ("" if hip_ratio is None else "+hips-mirrored"))
    face_absent = not face_seen and head_room >= th.head_room_min
    if face_absent:
        signals.append("face-absent-head-in-frame")
    face_cropped = bool(face_seen) and not face_in_frame
    if face_cropped:
        signals.append("face-out-of-frame")
    nose_behind = False
    if depth is not None and body.seen(kps, body.NOSE, mc):
        dz = float(depth[body.NOSE] - (depth[body.R_SHOULDER] + depth[body.L_SHOULDER]) / 2)
        scores["nose_depth_behind_shoulders"] = dz
        nose_behind = dz > th.nose_behind_shoulders_z
        if nose_behind:
            signals.append("nose-behind-shoulders")
    if abs(ratio) < th.side_max_shoulder_ratio:
        view = View.SIDE
        signals.append("shoulder-span-collapsed")
    elif (mirrored and not face_cropped) or face_absent or nose_behind:
        # With the face cropped out the estimator has nothing to orient left/right by (MediaPipe mirrors
        # some head-cropped DressCode fronts), so mirroring alone only counts with the head in view.
        view = View.BACK
    else:
        view = View.FRONT
    return Verdict(view.value, source, scores=scores, signals=signals)


def _left_right_ids(label_set: LabelSet, part: str) -> tuple[frozenset[int], frozenset[int]]:
    """Ids of the person's left and right ``part`` (arm, leg) read from the class names."""
    left = {i for i, n in enumerate(label_set.classes) if "left" in n and part in n}
    right = {i for i, n in enumerate(label_set.classes) if "right" in n and part in n}
    return frozenset(left), frozenset(right)


def view_from_parsing(labelmap: np.ndarray, label_set: LabelSet, th: Thresholds, counts: np.ndarray | None = None) -> Verdict:
    """Front or back from the label map: a back view has hair but (almost) no face label.

    ``counts``: :func:`body.label_counts` of ``labelmap`` when the caller already has them.
    """
    counts = body.label_counts(labelmap, label_set.num_classes) if counts is None else counts
    person = max(body.person_area(counts, label_set), 1)
    face = body.group_area(counts, label_set, "face")
    hair = body.group_area(counts, label_set, "hair")
    scores: dict[str, float | int | None] = {"face_px": face, "hair_px": hair, "head_area": (face + hair) / person}
    if (face + hair) / person < th.head_min_area:
        return Verdict(View.UNKNOWN.value, Source.PARSING, scores=scores, detail="head (face + hair) out of frame")
    face_fraction = face / (face + hair)
    scores["face_fraction"] = face_fraction
    signals: list[str] = []
    left, right = _left_right_ids(label_set, "arm")
    xl, xr = body.centroid_x(labelmap, left), body.centroid_x(labelmap, right)
    if xl is not None and xr is not None:
        # In a front view the person's left arm is on the image's right.
        scores["arm_order"] = xl - xr
        if xl < xr:
            signals.append("arms-mirrored")
    if face_fraction < th.back_max_face_fraction:
        signals.append("hair-without-face")
        return Verdict(View.BACK.value, Source.PARSING, scores=scores, signals=signals)
    return Verdict(View.FRONT.value, Source.PARSING, scores=scores, signals=signals)


def combine_views(parsing: Verdict | None, pose: Verdict | None) -> Verdict:
    """One verdict from the annotation sources: back wins (either source), then side (pose only), then front.

    Back wins because either cue alone is specific (a front view does not lose its face label, nor mirror
    its shoulders and hips); the other source's verdict is kept in the signals for the explanation.
    """
    known = [v for v in (parsing, pose) if v is not None and v.verdict != View.UNKNOWN.value]
    if not known:
        details = "; ".join(f"{v.source.value}: {v.detail}" for v in (parsing, pose) if v is not None)
        return Verdict(View.UNKNOWN.value, Source.NONE, detail=details or "no parsing and no pose")
    for wanted in (View.BACK, View.SIDE, View.FRONT):
        hits = [v for v in known if v.verdict == wanted.value]
        if hits:
            chosen = hits[0]
            others = [v for v in known if v is not chosen]
            merged = Verdict(
                chosen.verdict,
                chosen.source,
                scores=dict(chosen.scores),
                signals=list(chosen.signals),
                detail=chosen.detail,
            )
            for o in others:
                merged.signals.append(f"{o.source.value} says {o.verdict}")
                merged.scores.update({f"{o.source.name.lower()}.{k}": v for k, v in o.scores.items()})
                merged.signals.extend(f"{o.source.name.lower()}:{s}" for s in o.signals)
            return merged
    raise AssertionError("unreachable")
