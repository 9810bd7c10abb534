"""The learnt outer-layer cue of the parsing-free layering detector (issue 19, fourth round).

Its weights (curate/filters/layer_cue.json) were fitted by bench/filters/train_layer_cue.py on the pixel
annotations of the tuning-split ccp-layering photos; here: the file loads and is plain JSON with the shapes
the model needs, a synthetic torso with a clear open jacket reads layered by the cue and a plain top does
not, and ``det_outer_layer_min_score`` inf turns it off (round three's rule, bit for bit).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from curate.filters import layer_cue, layers
from curate.filters.thresholds import LEARNT_OUTER_LAYER_SCORE, Thresholds
from tests.test_filters_unit import dressed, person_keypoints

TH = dataclasses.replace(Thresholds(), det_outer_layer_min_score=LEARNT_OUTER_LAYER_SCORE)  # the cue on (off by default)
OFF = dataclasses.replace(TH, det_outer_layer_min_score=float("inf"))


def test_weights_load_as_plain_json() -> None:
    d = json.loads(layer_cue.WEIGHTS.read_text())
    m = layer_cue.OuterLayerModel.from_json(d)
    f = len(m.features)
    assert set(m.features) <= set(layer_cue.FEATURES) and len(set(m.features)) == f
    assert m.mean.shape == m.std.shape == (f,) and np.all(m.std > 0)
    if m.w1 is None:
        assert m.w2.shape == (f,)
    else:
        assert m.w1.shape[0] == f and m.b1.shape == m.w2.shape == (m.w1.shape[1],)
    for v in (m.mean, m.std, m.w2, *([] if m.w1 is None else [m.w1, m.b1])):
        assert np.all(np.isfinite(v))
    assert set(m.readout) == {"s", "flank", "centre_weight"}


def test_open_jacket_map_and_plain_top() -> None:
    """A navy jacket open over a yellow top (sleeves navy): the map covers both flanks and not the centre, so
    the cue fires; one navy top all over: it does not."""
    kps = person_keypoints()
    navy, yellow = (30, 30, 90), (220, 200, 40)
    rgb, person = dressed(navy, navy)
    rgb[70:150, 84:108] = yellow  # the opening: 0.4 half spans either side of the axis
    cue = layers.outer_layer_cue(rgb, person, kps, TH)
    assert cue is not None and cue["outer_score"] >= TH.det_outer_layer_min_score
    assert min(cue["outer_left"], cue["outer_right"]) > cue["outer_centre"]
    v = layers.open_layer_from_pixels(rgb, person, kps, TH)
    assert v.verdict == "layered" and "outer-layer-map" in v.signals
    plain = layers.outer_layer_cue(*dressed(navy, navy), kps, TH)
    assert plain is not None and plain["outer_score"] < TH.det_outer_layer_min_score
    assert "outer-layer-map" not in layers.open_layer_from_pixels(*dressed(navy, navy), kps, TH).signals


def test_inf_turns_the_cue_off() -> None:
    """With ``det_outer_layer_min_score`` inf nothing is computed and the verdict is round three's."""
    kps = person_keypoints()
    rgb, person = dressed((30, 30, 90), (30, 30, 90), (220, 200, 40))
    assert layers.outer_layer_cue(rgb, person, kps, OFF) is None
    v = layers.open_layer_from_pixels(rgb, person, kps, OFF)
    m = layers.measure_torso(rgb, person, kps, OFF.min_keypoint_conf)
    assert v == layers.decide(m, OFF) and "outer_score" not in v.scores


# Tuning-split people outside ccp-layering (no annotation, so the training script scores them with the model
# fitted on all 36 ccp tuning people, the shipped one): their leave-one-out scores as the script printed them
# (bench/filters/train_layer_cue.py writes them to its cache's loo_scores.csv).
LOO_SCORES = {
    "ootdiffusion/human/01008_00.jpg": 0.1402,
    "idm-vton/human/00035_00.jpg": 0.1188,
    "ootdiffusion/human/07966_00.jpg": 0.0921,
}


def test_shipped_weights_reproduce_the_training_scripts_scores(real_root) -> None:
    """The detector path (MediaPipe, then the cue with the JSON weights) gives these people the score the
    training script computed in memory, within the JSON's rounding."""
    import hashlib

    from curate.filters.detectors import PoseDetector
    from curate.filters.pipeline import _read_rgb

    det = PoseDetector()
    try:
        for rel, expected in LOO_SCORES.items():
            assert int(hashlib.sha1(rel.encode()).hexdigest()[-1], 16) % 2 == 0, f"{rel} is not a tuning-split person"
            d = det.detect(_read_rgb(real_root / rel, None, []))
            cue = layers.outer_layer_cue(d.rgb, d.person, d.keypoints, TH)
            assert cue is not None and abs(cue["outer_score"] - expected) < 0.005, (rel, cue)
    finally:
        det.close()
