"""Filters as pure functions on hand-made arrays: each decision against a constructed ground truth."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from curate.filters import back_view, body, extra_garments, lower_only
from curate.filters.evidence import Source, Verdict, evidence_json
from curate.filters.thresholds import Thresholds
from curate.labelsets import get_label_set

TH = Thresholds()
LIP = get_label_set("lip-20")
SIZE = (192, 256)  # (W, H) of the hand-made person


def person_keypoints(mirror: bool = False, face: bool = True, turn: float = 1.0, dy: float = 0.0) -> np.ndarray:
    """COCO-18 keypoints of a standing person 256 px tall; ``turn`` scales the shoulder/hip span
    (1 frontal, ~0 side); ``mirror`` swaps left/right in image space (a back view)."""
    k = np.zeros((18, 3), np.float32)
    cx = 96.0
    pts = {
        body.NOSE: (cx, 40), body.NECK: (cx, 70), body.R_SHOULDER: (cx - 30 * turn, 72), body.L_SHOULDER: (cx + 30 * turn, 72),
        body.R_ELBOW: (cx - 36 * turn, 110), body.L_ELBOW: (cx + 36 * turn, 110), body.R_WRIST: (cx - 38 * turn, 145),
        body.L_WRIST: (cx + 38 * turn, 145), body.R_HIP: (cx - 18 * turn, 150), body.L_HIP: (cx + 18 * turn, 150),
        body.R_KNEE: (cx - 18 * turn, 195), body.L_KNEE: (cx + 18 * turn, 195), body.R_ANKLE: (cx - 18 * turn, 240),
        body.L_ANKLE: (cx + 18 * turn, 240), body.R_EYE: (cx - 6, 34), body.L_EYE: (cx + 6, 34), body.R_EAR: (cx - 12, 38),
        body.L_EAR: (cx + 12, 38),
    }
    for j, (x, y) in pts.items():
        if mirror:
            x = 2 * cx - x
        k[j] = (x, y + dy, 0.9)
    if not face:
        k[[body.NOSE, body.R_EYE, body.L_EYE]] = 0
    return k


# --------------------------------------------------------------------------------------------- back view
def test_pose_front_back_side() -> None:
    assert back_view.view_from_pose(person_keypoints(), SIZE, TH).verdict == "front"
    mirrored = back_view.view_from_pose(person_keypoints(mirror=True, face=False), SIZE, TH)
    assert mirrored.verdict == "back"
    assert "face-absent-head-in-frame" in mirrored.signals and any("mirrored" in s for s in mirrored.signals)
    side = back_view.view_from_pose(person_keypoints(turn=0.2), SIZE, TH)
    assert side.verdict == "side" and abs(side.scores["shoulder_ratio"]) < TH.side_max_shoulder_ratio


def test_pose_each_back_cue_alone_suffices() -> None:
    assert back_view.view_from_pose(person_keypoints(mirror=True), SIZE, TH).verdict == "back"
    assert back_view.view_from_pose(person_keypoints(face=False), SIZE, TH).verdict == "back"


def test_pose_cropped_head_is_not_a_back_view() -> None:
    # DressCode crops at the nose and writes the face joints clamped to y = 0 with a high score
    k = person_keypoints(dy=-60)
    k[[body.NOSE, body.R_EYE, body.L_EYE, body.R_EAR, body.L_EAR], 1] = 0.0
    v = back_view.view_from_pose(k, SIZE, TH)
    assert v.verdict == "front" and "face-out-of-frame" in v.signals
    # the same crop with the face joints missing: head not in frame, so absence is not evidence either
    k[[body.NOSE, body.R_EYE, body.L_EYE], 2] = 0
    assert back_view.view_from_pose(k, SIZE, TH).verdict == "front"


def test_pose_depth_cue_from_detector() -> None:
    depth = np.zeros(18, np.float32)
    depth[body.NOSE] = 0.6  # nose behind the shoulders
    v = back_view.view_from_pose(person_keypoints(), SIZE, TH, depth=depth, source=Source.DETECTOR_POSE)
    assert v.verdict == "back" and "nose-behind-shoulders" in v.signals and v.source is Source.DETECTOR_POSE


def test_pose_one_shoulder_hidden_is_side_and_none_is_unknown() -> None:
    k = person_keypoints()
    k[body.L_SHOULDER] = 0
    assert back_view.view_from_pose(k, SIZE, TH).verdict == "side"
    k[body.R_SHOULDER] = 0
    assert back_view.view_from_pose(k, SIZE, TH).verdict == "unknown"


def lip_person(face: bool = True, arms_mirrored: bool = False) -> np.ndarray:
    lm = np.zeros((256, 192), np.uint8)
    lm[10:60, 70:122] = 2  # hair
    if face:
        lm[25:60, 80:112] = 13
    lm[70:150, 66:126] = 5  # top
    lm[150:240, 70:122] = 9  # pants
    right, left = (15, 14) if not arms_mirrored else (14, 15)
    lm[75:150, 56:66] = right  # the person's right arm is on the image's left in a front view
    lm[75:150, 126:136] = left
    return lm


def test_parsing_front_and_back() -> None:
    front = back_view.view_from_parsing(lip_person(), LIP, TH)
    assert front.verdict == "front" and front.source is Source.PARSING
    back = back_view.view_from_parsing(lip_person(face=False, arms_mirrored=True), LIP, TH)
    assert back.verdict == "back" and "hair-without-face" in back.signals and "arms-mirrored" in back.signals


def test_parsing_head_out_of_frame_is_unknown() -> None:
    lm = lip_person()
    lm[:65] = 0
    assert back_view.view_from_parsing(lm, LIP, TH).verdict == "unknown"


def test_combine_views_priorities() -> None:
    f = Verdict("front", Source.PARSING)
    b = Verdict("back", Source.POSE)
    s = Verdict("side", Source.POSE)
    u = Verdict("unknown", Source.POSE, detail="shoulders not seen")
    assert back_view.combine_views(f, b).verdict == "back"
    assert back_view.combine_views(f, s).verdict == "side"
    assert back_view.combine_views(f, u).verdict == "front"
    assert back_view.combine_views(None, u).verdict == "unknown"
    assert back_view.combine_views(None, None).detail == "no parsing and no pose"


# ------------------------------------------------------------------------------------- product category
def draw(shape: str) -> np.ndarray:
    m = np.zeros((200, 200), bool)
    if shape == "pants":
        m[20:40, 60:140] = True  # waistband
        m[40:190, 60:96] = True
        m[40:190, 104:140] = True
    elif shape == "shorts":
        m[60:80, 50:150] = True
        m[80:130, 50:96] = True
        m[80:130, 104:150] = True
    elif shape == "tee":
        m[40:170, 60:140] = True  # body
        m[40:90, 20:60] = True  # sleeves
        m[40:90, 140:180] = True
        m[40:50, 88:112] = False  # neckline
    elif shape == "long-sleeves-down":
        m[30:170, 70:130] = True
        m[30:170, 45:62] = True  # sleeves hang beside the body with a gap
        m[30:170, 138:155] = True
        m[30:40, 45:155] = True
    elif shape == "skirt":
        for y in range(30, 170):
            half = 40 + (y - 30) * 0.25
            m[y, int(100 - half): int(100 + half)] = True
    elif shape == "dress":
        m[10:30, 75:82] = True  # straps
        m[10:30, 118:125] = True
        for y in range(30, 195):
            half = 25 + (y - 30) * 0.12
            m[y, int(100 - half): int(100 + half)] = True
    return m


@pytest.mark.parametrize(
    "shape,category",
    [("pants", "lower_body"), ("shorts", "lower_body"), ("skirt", "lower_body"), ("tee", "upper_body"),
     ("long-sleeves-down", "upper_body"), ("dress", "dresses")],
)
def test_category_from_mask_shapes(shape: str, category: str) -> None:
    v = lower_only.category_from_mask(draw(shape), TH)
    assert v.verdict == category, v.scores
    assert v.source is Source.MASK_SHAPE


def test_row_runs_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(0)
    rows = rng.random((200, 40)) < 0.55
    n, first_end, second_start = lower_only._row_runs(rows, 3)
    for r, row in enumerate(rows):
        runs, start = [], None
        for x, v in enumerate(list(row) + [False]):
            if v and start is None:
                start = x
            elif not v and start is not None:
                if x - start >= 3:
                    runs.append((start, x))
                start = None
        assert n[r] == len(runs)
        assert first_end[r] == (runs[0][1] if runs else -1)
        assert second_start[r] == (runs[1][0] if len(runs) > 1 else 40)


def test_category_from_empty_mask_is_unknown() -> None:
    assert lower_only.category_from_mask(np.zeros((50, 50), bool), TH).verdict == "unknown"


def test_product_mask_from_photo_recovers_a_shape_on_white() -> None:
    rgb = np.full((200, 200, 3), 245, np.uint8)
    rgb[draw("pants")] = (30, 60, 150)
    mask = lower_only.product_mask_from_photo(rgb)
    truth = draw("pants")
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.95
    assert lower_only.category_from_mask(mask, TH).verdict == "lower_body"


def test_lower_only_verdict_matrix() -> None:
    lower = Verdict("lower_body", Source.METADATA)
    upper = Verdict("upper_body", Source.MASK_SHAPE)
    worn = Verdict("worn", Source.PARSING)
    bare = Verdict("not-worn", Source.PARSING)
    assert lower_only.lower_only_verdict(lower, worn).verdict == "lower-only-product"
    assert lower_only.lower_only_verdict(lower, bare).verdict == "ok"
    assert lower_only.lower_only_verdict(upper, worn).verdict == "ok"
    assert lower_only.lower_only_verdict(Verdict("unknown", Source.NONE), worn).verdict == "unknown"
    assert lower_only.lower_only_verdict(lower, Verdict("unknown", Source.NONE)).verdict == "unknown"


def test_upper_worn_from_parsing_on_every_label_set() -> None:
    lm = lip_person()
    assert lower_only.upper_worn_from_parsing(lm, LIP, TH).verdict == "worn"
    bare = lm.copy()
    bare[bare == 5] = 10  # torso skin instead of a top
    assert lower_only.upper_worn_from_parsing(bare, LIP, TH).verdict == "not-worn"
    from curate.labelsets import convert

    for target in ("dresscode-18", "acgpn-14", "smis-8"):
        assert lower_only.upper_worn_from_parsing(convert(lm, "lip-20", target), get_label_set(target), TH).verdict == "worn"


# ------------------------------------------------------------------------------------------ extra garments
def test_extra_from_parsing_groups() -> None:
    lm = lip_person()
    assert extra_garments.extra_from_parsing(lm, LIP, "upper_body", True, TH).verdict == "ok"
    coat = lm.copy()
    coat[70:150, 66:80] = 7
    coat[70:150, 112:126] = 7
    v = extra_garments.extra_from_parsing(coat, LIP, "upper_body", False, TH)
    assert v.verdict == "extra-garments" and any("upper+outer" in s for s in v.signals)
    scarf = lm.copy()
    scarf[66:80, 80:112] = 11
    assert "scarf" in extra_garments.extra_from_parsing(scarf, LIP, "unknown", False, TH).signals
    # a dress product on a person in a dress *and* trousers: only with a trusted category
    dress = lm.copy()
    dress[dress == 5] = 6
    assert extra_garments.extra_from_parsing(dress, LIP, "dresses", True, TH).verdict == "extra-garments"
    assert extra_garments.extra_from_parsing(dress, LIP, "dresses", False, TH).verdict == "ok"


def torso_image(centre: tuple[int, int, int], sides: tuple[int, int, int], stripes: bool = False) -> np.ndarray:
    rgb = np.full((256, 192, 3), 240, np.uint8)
    rgb[70:150, 66:126] = sides
    rgb[70:150, 90:102] = centre
    if stripes:  # horizontal stripes across the whole torso: a tee, not a layer
        rgb[70:150:8, 66:126] = centre
        rgb[74:150:8, 66:126] = sides
    return rgb


def test_layering_inside_one_label() -> None:
    lm = lip_person()
    kps = person_keypoints()
    coat = extra_garments.extra_from_parsing(lm, LIP, "lower_body", True, TH, rgb=torso_image((20, 20, 20), (140, 140, 150)), kps=kps)
    assert coat.verdict == "extra-garments" and any("open-layer" in s for s in coat.signals)
    assert coat.scores["layer_row_fraction"] >= TH.layer_min_row_fraction
    plain = extra_garments.extra_from_parsing(lm, LIP, "lower_body", True, TH, rgb=torso_image((140, 140, 150), (140, 140, 150)), kps=kps)
    assert plain.verdict == "ok"
    stripes = torso_image((20, 20, 20), (140, 140, 150), stripes=True)
    stripes[70:150, 90:102] = stripes[70:150, 70:82]  # the centre band shows the same stripes as the sides
    assert extra_garments.extra_from_parsing(lm, LIP, "lower_body", True, TH, rgb=stripes, kps=kps).verdict == "ok"


def test_vertical_stripes_are_not_an_open_layer() -> None:
    lm = lip_person()
    rgb = torso_image((240, 240, 240), (240, 240, 240))
    for x0 in (76, 90, 104):  # three 8-px blue stripes on a white top: white at both edges, like a layer
        rgb[70:150, x0: x0 + 8] = (30, 50, 180)
    v = extra_garments.extra_from_parsing(lm, LIP, "upper_body", False, TH, rgb=rgb, kps=person_keypoints())
    assert v.verdict == "ok", v.scores


def test_a_print_in_the_product_is_not_an_open_layer() -> None:
    lm = lip_person()
    kps = person_keypoints()
    rgb = torso_image((20, 20, 20), (140, 140, 150))  # grey tee with a black band down the front
    product = np.zeros((40, 40, 3), np.uint8)
    product[:, :28] = (140, 140, 150)
    product[:, 28:] = (20, 20, 20)  # ... and the product has that black band too
    printed = extra_garments.product_palette(product, np.ones((40, 40), bool))
    v = extra_garments.extra_from_parsing(lm, LIP, "upper_body", False, TH, rgb=rgb, kps=kps, palette=printed)
    assert v.verdict == "ok" and v.scores["layer_inner_to_product_delta_e"] < TH.product_max_delta_e
    product[:, 28:] = (140, 140, 150)  # a plain grey product: the black band is another garment
    plain = extra_garments.product_palette(product, np.ones((40, 40), bool))
    v = extra_garments.extra_from_parsing(lm, LIP, "upper_body", False, TH, rgb=rgb, kps=kps, palette=plain)
    assert v.verdict == "extra-garments" and any("open-layer" in s for s in v.signals)


def test_extra_from_pixels_product_colours() -> None:
    rgb = torso_image((200, 30, 30), (200, 30, 30))  # a red top
    rgb[70:150, 56:136] = (200, 30, 30)  # with red sleeves (white ones would be a second garment)
    person = np.zeros((256, 192), bool)
    person[10:250, 56:136] = True
    kps = person_keypoints()
    red = np.array([body.rgb_to_lab(np.array([[200, 30, 30]], np.uint8))[0]])
    blue = np.array([body.rgb_to_lab(np.array([[30, 30, 200]], np.uint8))[0]])
    assert extra_garments.extra_from_pixels(rgb, person, kps, TH, palette=red).verdict == "ok"
    v = extra_garments.extra_from_pixels(rgb, person, kps, TH, palette=blue)
    assert v.verdict == "extra-garments" and v.source is Source.PRODUCT_COLOURS


def test_paired_product_colours_catch_a_closed_coat() -> None:
    lm = lip_person()
    rgb = torso_image((200, 30, 30), (200, 30, 30))  # the person's top is red
    product = np.zeros((40, 40, 3), np.uint8)
    product[:] = (200, 30, 30)
    red = extra_garments.product_palette(product, np.ones((40, 40), bool))
    product[:] = (30, 30, 200)
    blue = extra_garments.product_palette(product, np.ones((40, 40), bool))
    kps = person_keypoints()
    ok = extra_garments.extra_from_parsing(lm, LIP, "upper_body", False, TH, rgb=rgb, kps=kps, palette=red)
    assert ok.verdict == "ok" and ok.scores["garment_unexplained_by_product"] < 0.05
    # the same single "upper" label, but its colour is not the product's: something else is worn over it
    v = extra_garments.extra_from_parsing(lm, LIP, "upper_body", False, TH, rgb=rgb, kps=kps, palette=blue)
    assert v.verdict == "extra-garments" and v.source is Source.PRODUCT_COLOURS
    assert v.scores["garment_unexplained_by_product"] > 0.95


def test_product_palette_keeps_every_colour_of_a_print() -> None:
    product = np.zeros((60, 60, 3), np.uint8)
    product[:20] = (200, 30, 30)
    product[20:40] = (30, 30, 200)
    product[40:] = (240, 220, 40)
    pal = extra_garments.product_palette(product, np.ones((60, 60), bool))
    for colour in ((200, 30, 30), (30, 30, 200), (240, 220, 40)):
        lab = body.rgb_to_lab(np.array([[colour]], np.uint8))[0, 0]
        assert np.min(np.linalg.norm(pal - lab, axis=1)) < 8  # within one grid cell's half-diagonal


# ------------------------------------------------------------------------------------------------ evidence
def test_evidence_json_is_valid_and_complete() -> None:
    v = Verdict("back", Source.POSE, scores={"ratio": -0.71234567, "bad": float("nan")}, signals=["shoulders-mirrored"])
    obj = json.loads(evidence_json({"back_view": v}, notes=["x"], reason="back-view"))
    assert obj["back_view"] == {
        "verdict": "back", "source": "annotations/pose", "scores": {"ratio": -0.7123, "bad": None},
        "signals": ["shoulders-mirrored"], "detail": "",
    }
    assert obj["reason"] == "back-view" and obj["notes"] == ["x"]


def test_keypoints_array_rejects_malformed() -> None:
    assert body.keypoints_array(None) is None
    assert body.keypoints_array([1.0] * 53) is None
    assert body.keypoints_array([float("nan")] * 54) is None
    assert body.keypoints_array([0.0] * 54).shape == (18, 3)


# ---- fast paths: each equal to the plain numpy it replaced --------------------------------------------------
def test_longest_runs_along_kept_pixels_match_a_row_loop() -> None:
    rng = np.random.default_rng(3)
    values, keep = rng.random((40, 60)) < 0.5, rng.random((40, 60)) < 0.8
    values[5] = False
    keep[7] = False
    got = body._longest_runs(values, keep)
    for r in range(values.shape[0]):
        seq = np.concatenate(([0], values[r][keep[r]].astype(np.int8), [0]))
        edges = np.diff(seq)
        lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        assert got[r] == (lengths.max() if lengths.size else 0), r


def test_strided_pixels_are_the_boolean_index_thinned() -> None:
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    mask = rng.random((64, 48)) < 0.6
    px = rgb[mask]
    assert np.array_equal(body.strided_pixels(rgb, mask, 500), px[:: px.shape[0] // 500])
    assert np.array_equal(body.strided_pixels(rgb, mask, 10_000), px)
    assert body.strided_pixels(rgb, np.zeros((64, 48), bool), 500) is None


def test_label_counts_and_masks_match_numpy() -> None:
    rng = np.random.default_rng(5)
    for lm in (rng.integers(0, 20, (90, 70), dtype=np.uint8), rng.integers(0, 20, (90, 70)).astype(np.int64)):
        assert np.array_equal(body.label_counts(lm, 20), np.bincount(lm.ravel(), minlength=20)[:20])
        ids = frozenset({3, 5, 19})
        assert np.array_equal(body.label_mask(lm, ids), np.isin(lm, list(ids)))
        assert np.array_equal(body.label_mask(lm[::2, ::3], ids), np.isin(lm[::2, ::3], list(ids)))
        cols = sum((lm == i).sum(axis=0) for i in ids)
        assert body.centroid_x(lm, ids) == pytest.approx(float((cols * np.arange(lm.shape[1])).sum() / cols.sum()), abs=0)


@pytest.mark.parametrize("kind", ["grey-png", "grey-jpeg", "rgb-jpeg"])
def test_cloth_mask_read_equals_the_rgb_mean(tmp_path, kind: str) -> None:  # noqa: ANN001
    """A cloth mask read as one channel (greyscale files) or as an integer channel sum gives the mask the
    RGB mean > 127 gave, also when it is resized down to the product size."""
    from PIL import Image

    from curate.filters.pipeline import PRODUCT_MAX_SIDE, _read_mask, _read_rgb

    rng = np.random.default_rng(6)
    grey = np.zeros((512, 384), np.uint8)
    grey[100:400, 80:300] = 255
    grey = np.clip(grey.astype(int) + rng.integers(-60, 60, grey.shape), 0, 255).astype(np.uint8)
    arr = grey if kind.startswith("grey") else np.stack([grey, np.roll(grey, 3, axis=0), 255 - grey], axis=-1)
    path = tmp_path / ("mask.png" if kind.endswith("png") else "mask.jpg")
    Image.fromarray(arr).save(path)
    notes: list[str] = []
    rgb = _read_rgb(path, None, notes, max_side=PRODUCT_MAX_SIDE)
    assert rgb is not None
    got = _read_mask(path, notes, max_side=PRODUCT_MAX_SIDE)
    assert got is not None and not notes
    assert np.array_equal(got, rgb.mean(axis=-1) > 127)


def test_unexplained_share_equals_the_norm_over_the_palette() -> None:
    rng = np.random.default_rng(8)
    rgb = rng.integers(0, 256, (80, 60, 3), dtype=np.uint8)
    region = rng.random((80, 60)) < 0.5
    palette = extra_garments.product_palette(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), np.ones((40, 40), bool))
    assert palette is not None
    px = rgb[region][:: int(region.sum()) // 1000]
    lab = body.rgb_to_lab(px)
    nearest = np.min(np.linalg.norm(lab[:, None, :] - palette[None, :, :], axis=-1), axis=1)
    assert extra_garments.unexplained_by_palette(rgb, region, palette, 25.0) == float((nearest > 25.0).mean())


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_opencv_jpeg_decode_equals_pil(tmp_path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:  # noqa: ANN001
    """JPEGs decoded by OpenCV give exactly PIL's pixels at every scale the filters ask for (full, draft
    1/2-1/8, draft then resize); other modes (CMYK) are left to PIL."""
    from PIL import Image

    from curate.filters import pipeline

    rng = np.random.default_rng(9)
    base = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((301, 417), Image.BICUBIC).convert(mode)  # smooth content, odd size
    path = tmp_path / "x.jpg"
    img.save(path, quality=90)
    cases = [(None, None), (None, 256), ((150, 208), None), ((75, 104), None), ((37, 52), None), ((100, 140), None)]
    got = [pipeline._decode(path, size, [], side, keep_grey) for size, side in cases for keep_grey in (False, True)]
    with Image.open(path) as im:
        assert (pipeline._decode_jpeg_opencv(path, None, None, False) is None) == (mode == "CMYK")
        assert pipeline._jpeg_header(path.read_bytes()) == (None if mode == "CMYK" else (im.mode, im.size))
    monkeypatch.setattr(pipeline, "_decode_jpeg_opencv", lambda *a: None)  # PIL alone
    want = [pipeline._decode(path, size, [], side, keep_grey) for size, side in cases for keep_grey in (False, True)]
    for g, w in zip(got, want):
        assert g is not None and w is not None and g.shape == w.shape and np.array_equal(g, w)


def test_product_mask_steps_equal_scipy() -> None:
    """Hole filling and the largest 4-connected piece (OpenCV) give scipy.ndimage's result, ties included."""
    import cv2
    from scipy import ndimage

    rng = np.random.default_rng(10)
    cases = [rng.random((60, 45)) < p for p in (0.3, 0.5, 0.6, 0.7)]
    tie = np.zeros((30, 40), bool)
    tie[2:8, 2:8] = tie[20:26, 30:36] = True  # two equal largest pieces: the first in raster order wins
    ring = np.zeros((30, 30), bool)
    ring[5:25, 5:25] = True
    ring[10:20, 10:20] = False
    ring[14, 5:10] = False  # a gap in the ring: that hole is open to the outside only through 4-connectivity
    for fg in cases + [tie, ring, np.zeros((10, 10), bool)]:
        assert np.array_equal(lower_only.fill_holes(fg), ndimage.binary_fill_holes(fg))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=4)
        ref, m = ndimage.label(fg)
        assert n - 1 == m
        if m:
            sizes = np.bincount(ref.ravel())
            sizes[0] = 0
            ours = stats[:, cv2.CC_STAT_AREA].copy()
            ours[0] = 0
            assert np.array_equal(labels == int(ours.argmax()), ref == int(sizes.argmax()))


# ------------------------------------------------------------------------- layering without parsing
def dressed(torso: tuple[int, int, int], sleeves: tuple[int, int, int], centre: tuple[int, int, int] | None = None,
            centre_rows: tuple[int, int] = (70, 150)) -> tuple[np.ndarray, np.ndarray]:
    """A person_keypoints() person: torso, sleeves (the arms' columns) and an optional centre strip colour."""
    rgb = np.full((256, 192, 3), 240, np.uint8)
    rgb[70:150, 56:136] = sleeves
    rgb[70:150, 66:126] = torso
    if centre is not None:
        rgb[centre_rows[0]:centre_rows[1], 88:104] = centre
    person = np.zeros((256, 192), bool)
    person[10:250, 56:136] = True
    return rgb, person


def test_open_layer_detector_geometry() -> None:
    """An opening down the whole torso (the centre unlike both sides, the sides alike) with sleeves of the
    sides' colour = an open outer garment; all one colour, a motif in a band of rows, a panel that matches
    one side is one garment."""
    from curate.filters import layers

    kps = person_keypoints()
    navy, yellow = (30, 30, 90), (220, 200, 40)
    jacket = layers.open_layer_from_pixels(*dressed(navy, navy, yellow), kps, TH)
    assert jacket.verdict == "layered" and "opening-with-sleeves-of-the-sides" in jacket.signals
    assert "opening-of-one-inner-colour" in jacket.signals and jacket.scores["opening_row_fraction"] == 1.0
    assert jacket.scores["sleeve_vs_centre_delta_e"] > 50 > 5 > jacket.scores["sleeve_vs_farther_side_delta_e"]
    assert layers.open_layer_from_pixels(*dressed(navy, navy), kps, TH).verdict == "single"
    motif = layers.open_layer_from_pixels(*dressed(navy, navy, yellow, centre_rows=(95, 105)), kps, TH)
    assert motif.verdict == "single" and motif.scores["opening_row_fraction"] < TH.det_opening_min_row_fraction
    # a colour block from one edge across the centre: the centre matches that side, so no row is an opening
    rgb, person = dressed(navy, navy)
    rgb[70:150, 56:104] = yellow
    assert layers.open_layer_from_pixels(rgb, person, kps, TH).scores["opening_row_fraction"] == 0.0
    # the knob: demanding more opening rows than the torso has turns the same jacket into "single" (with the
    # opening-edge cue off: the strip's sharp edges are a mirrored pair too, see the next test; and with the
    # learnt outer-layer cue off: it sees the jacket too, tests/test_filters_layer_cue.py)
    strict = dataclasses.replace(TH, det_opening_min_row_fraction=1.01, det_edge_min_strength=float("inf"),
                                 det_outer_layer_min_score=float("inf"))
    assert layers.open_layer_from_pixels(*dressed(navy, navy, yellow), kps, strict).verdict == "single"
    # bare arms and no opening: one garment; no shoulders, no verdict
    skin = (200, 150, 120)
    assert layers.open_layer_from_pixels(*dressed(navy, skin), kps, TH).verdict == "single"
    no_shoulders = kps.copy()
    no_shoulders[[body.R_SHOULDER, body.L_SHOULDER], 2] = 0
    assert layers.open_layer_from_pixels(*dressed(navy, navy, yellow), no_shoulders, TH).verdict == "unknown"


def test_opening_edges_survive_low_colour_contrast() -> None:
    """Round three's cue: an open dark jacket over a barely lighter top (Delta E ~6, below the colour rule's
    10) still shows two long mirrored front edges of opposite polarity half a span off the axis, so the
    detector reads it layered by "opening-edges" alone; the same panel in a band of rows, a narrow placket on
    the axis, a single edge (a colour block from one side) and a plain top do not."""
    from curate.filters import layers

    kps = person_keypoints()  # shoulders at x 66 / 126: half a span is 30 px, the axis x = 96
    jacket, top = (35, 35, 45), (45, 45, 58)
    assert np.linalg.norm(body.rgb_to_lab(np.array([[jacket]], np.uint8)) - body.rgb_to_lab(np.array([[top]], np.uint8))) < 10

    def wearing(x0: int, x1: int, rows: tuple[int, int] = (70, 150)) -> tuple[np.ndarray, np.ndarray]:
        rgb, person = dressed(jacket, jacket)
        rgb[rows[0]:rows[1], x0:x1] = top
        return rgb, person

    open_jacket = layers.open_layer_from_pixels(*wearing(81, 112), kps, TH)  # edges at a = -0.5 and +0.5
    assert open_jacket.verdict == "layered" and open_jacket.signals == ["opening-edges"]
    assert open_jacket.scores["opening_row_fraction"] == 0.0  # the colour rule alone would miss it
    assert open_jacket.scores["edge_pair_strength"] >= TH.det_edge_min_strength
    assert abs(open_jacket.scores["edge_pair_bottom"] - 0.5) <= 0.1
    # the same contrast in a band of the torso's rows (a print), on the axis (a placket), on one side only
    band = layers.open_layer_from_pixels(*wearing(81, 112, rows=(95, 110)), kps, TH)
    assert band.verdict == "single" and band.scores["edge_pair_strength"] < TH.det_edge_min_strength
    assert layers.open_layer_from_pixels(*wearing(93, 100), kps, TH).verdict == "single"
    assert layers.open_layer_from_pixels(*wearing(56, 112), kps, TH).verdict == "single"
    plain = layers.open_layer_from_pixels(*dressed(jacket, jacket), kps, TH)
    assert plain.verdict == "single" and plain.scores["edge_pair_strength"] == 0.0
    # the knob: demanding a stronger pair than the edges give turns the jacket into "single"
    strict = dataclasses.replace(TH, det_edge_min_strength=open_jacket.scores["edge_pair_strength"] + 0.01)
    assert layers.open_layer_from_pixels(*wearing(81, 112), kps, strict).verdict == "single"


def test_detector_layering_rejects_only_when_asked() -> None:
    """By default the detector's "layered" is the person's finding only (no pair is rejected on it); with
    det_layering_rejects the same person's pairs get extra-garments from it."""
    from curate.filters import layers

    kps = person_keypoints()
    rgb, person = dressed((30, 30, 90), (30, 30, 90), (220, 200, 40))
    assert layers.open_layer_from_pixels(rgb, person, kps, TH).verdict == "layered"
    pg = extra_garments.person_garments_from_pixels(rgb, person, kps, TH)
    assert pg is not None and pg.layered and "open-layer" in pg.upper_garments
    assert not any(s.startswith("detector:") for s in pg.signals)
    kept = extra_garments.extra_from_pixels(rgb, person, kps, TH)
    assert not any(s.startswith("detector:") for s in kept.signals)
    rejecting = dataclasses.replace(TH, det_layering_rejects=True)
    v = extra_garments.extra_from_pixels(rgb, person, kps, rejecting)
    assert v.verdict == "extra-garments" and "detector:opening-with-sleeves-of-the-sides" in v.signals


def test_opening_edges_with_no_allowed_line_say_so() -> None:
    """An offset beyond every candidate line's end leaves no pair to measure: strength 0, no position, no
    "opening-edges" signal (and nothing that is not JSON in the evidence)."""
    from curate.filters import layers

    kps = person_keypoints()
    rgb, person = dressed((35, 35, 45), (35, 35, 45))
    rgb[70:150, 81:112] = (45, 45, 58)
    far = dataclasses.replace(TH, det_edge_min_offset=float(layers.EDGE_BOTTOM.max()) + 0.1)
    v = layers.open_layer_from_pixels(rgb, person, kps, far)
    assert v.verdict == "single" and "opening-edges" not in v.signals
    assert v.scores["edge_pair_strength"] == 0.0 and v.scores["edge_pair_top"] is None
    json.dumps(v.scores, allow_nan=False)
