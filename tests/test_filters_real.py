"""`curate filter` on the real samples, against my own labels (tests/data/real_filter_labels.csv).

The labels are facts seen on each image (view, garments worn, product type); the expected verdicts follow
from them by `curate.filters.quality.expected_from_facts`. Precision/recall are asserted at the level the
filters reached when this was written, so a regression fails; the misses are listed in
docs/benchmarks/filters.md with thumbnails.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curate.filters.command import apply_filters
from curate.filters.pipeline import FilterOptions
from curate.filters.quality import labelled_truth, manifest_from_labelled_pairs, score

LABELS = Path(__file__).parent / "data" / "real_filter_labels.csv"

# Level reached on the 104 labelled real pairs (see docs/benchmarks/filters.md). The one extra-garments
# miss is the sheer mesh top over a bra (ootd/01008_00): without parsing, nothing separates the two layers.
# These are the floors of a80d7f6 (before issue 19): the parsing-free layering detector must not add a
# single false alarm on them (a false "layered" costs a good training pair).
REACHED = {
    "back_view": (1.0, 1.0),
    "lower_only": (1.0, 1.0),
    "extra_garments": (1.0, 0.5),
}


def load_labels() -> pd.DataFrame:
    return pd.read_csv(LABELS, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def filtered(real_root: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    ds = tmp_path_factory.mktemp("real_filter") / "ds"
    manifest_from_labelled_pairs(load_labels(), real_root, ds)
    return apply_filters(ds, FilterOptions(), workers=1)


def evidence(pairs: pd.DataFrame, pair_id: str) -> dict:
    return json.loads(pairs.loc[pairs["pair_id"] == pair_id, "filter_evidence"].iloc[0])


def test_labels_file_is_consistent(real_root: Path) -> None:
    labels = load_labels()
    assert labels["pair_id"].is_unique and len(labels) >= 100
    assert set(labels["human_view"]) <= {"front", "side", "back"}
    for col in ("human", "article", "parse", "pose"):
        for rel in labels[col]:
            assert not rel or (real_root / rel).is_file(), f"{col} {rel} missing"


def test_precision_recall_on_real_samples(filtered: pd.DataFrame) -> None:
    scores = score(filtered, labelled_truth(load_labels()))
    for name, (precision, recall) in REACHED.items():
        s = scores[name]
        assert s.precision >= precision and s.recall >= recall, (name, s)
    # every filter has real positives to catch
    assert scores["back_view"].tp >= 1 and scores["lower_only"].tp >= 9 and scores["extra_garments"].tp >= 1


def test_named_real_cases(filtered: pd.DataFrame) -> None:
    by_id = filtered.set_index("pair_id")
    # the DeepFashion back view, found by the detector (no annotations): mirrored shoulders, nose behind
    back = evidence(filtered, "deepfashion/reference_img_3")["back_view"]
    assert back["verdict"] == "back" and back["source"] == "detector/mediapipe-pose"
    assert by_id.loc["deepfashion/reference_img_3", "filter_reason"] == "back-view"
    # the side view gets its own verdict and is kept by default
    assert by_id.loc["deepfashion/reference_img_1", "filter_back_view"] == "side"
    assert pd.isna(by_id.loc["deepfashion/reference_img_1", "filter_reason"])
    # the DressCode man in an open overcoat: one "upper_clothes" label, split by the layering test
    coat = evidence(filtered, "dresscode/050915")["extra_garments"]
    assert coat["verdict"] == "extra-garments" and coat["source"] == "annotations/parsing"
    assert any(s.startswith("open-layer-inside-upper") for s in coat["signals"])
    # DressCode lower_body with a top on: metadata category + parsing
    lower = evidence(filtered, "dresscode/050855")["lower_only"]
    assert lower["verdict"] == "lower-only-product" and lower["source"] == "metadata"
    # trousers photographed alone (no metadata): the mask shape's two legs
    pants = evidence(filtered, "ootd/051482_0")["lower_only"]
    assert pants["verdict"] == "lower-only-product" and pants["source"] == "article-mask-shape"
    assert "product:two-legs" in pants["signals"]
    # head cropped at the nose (DressCode) is still a front view
    assert by_id.loc["ootd/053228_0", "filter_back_view"] == "front"


def test_evidence_names_the_source(filtered: pd.DataFrame) -> None:
    labels = load_labels().set_index("pair_id")
    for pid, ev in zip(filtered["pair_id"], filtered["filter_evidence"]):
        src = json.loads(ev)["back_view"]["source"]
        if labels.loc[pid, "parse"] or labels.loc[pid, "pose"]:
            assert src.startswith("annotations/"), (pid, src)
        else:
            assert src == "detector/mediapipe-pose", (pid, src)


def test_without_detectors_unannotated_people_are_unknown(real_root: Path, tmp_path: Path) -> None:
    labels = load_labels()
    subset = labels[labels["pair_id"].isin(["deepfashion/reference_img_3", "dresscode/050915"])]
    ds = manifest_from_labelled_pairs(subset, real_root, tmp_path / "ds")
    pairs = apply_filters(ds, FilterOptions(detectors=False)).set_index("pair_id")
    assert pairs.loc["deepfashion/reference_img_3", "filter_back_view"] == "unknown"
    assert json.loads(pairs.loc["deepfashion/reference_img_3", "filter_evidence"])["back_view"]["source"] == "none"
    assert pairs.loc["dresscode/050915", "filter_extra_garments"] == "extra-garments"


def test_sources_are_never_written(real_root: Path, tmp_path: Path) -> None:
    labels = load_labels().head(6)
    files = [real_root / p for c in ("human", "article", "parse", "pose") for p in labels[c] if p]
    before = {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    ds = manifest_from_labelled_pairs(labels, real_root, tmp_path / "ds")
    apply_filters(ds, FilterOptions())
    assert {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files} == before


def test_analysis_resolution_keeps_area_fractions(real_root: Path) -> None:
    """The filters read label maps subsampled to ANALYSIS_MAX_SIDE (every 4th pixel of a 1024x768 map): on
    every annotated real map the garment area fractions stay within 0.005 of the full-resolution ones and
    the face fraction within 0.02 (the thresholds are 0.008-0.05 and no real value lies that close)."""
    from PIL import Image

    from curate.filters import body
    from curate.filters.pipeline import ANALYSIS_MAX_SIDE, PersonTask, _Inputs
    from curate.imageio import labelmap_ids
    from curate.labelsets import get_label_set

    labels = load_labels()
    maps = labels.loc[labels["parse"] != "", ["parse", "label_set"]].drop_duplicates()
    assert len(maps) >= 20
    reduced_sizes = set()
    for rel, set_name in maps.itertuples(index=False):
        ls = get_label_set(set_name)
        with Image.open(real_root / rel) as img:
            full, _ = labelmap_ids(img)
        task = PersonTask("p", None, None, str(real_root / rel), set_name, None)
        small = _Inputs(task, FilterOptions(), None).labelmap()
        assert small is not None and max(small.shape) <= ANALYSIS_MAX_SIDE
        reduced_sizes.add(small.shape != full.shape)
        c_full, c_small = body.label_counts(full, ls.num_classes), body.label_counts(small, ls.num_classes)
        f_full, f_small = body.garment_fractions(c_full, ls), body.garment_fractions(c_small, ls)
        for g in body.GARMENT_GROUPS:
            assert abs(f_full[g] - f_small[g]) <= 0.005, (rel, g, f_full[g], f_small[g])

        def face_fraction(c: np.ndarray) -> float:
            face, hair = body.group_area(c, ls, "face"), body.group_area(c, ls, "hair")
            return face / max(face + hair, 1)

        assert abs(face_fraction(c_full) - face_fraction(c_small)) <= 0.02, rel
        # the fast paths (OpenCV histogram, lookup-table masks) count exactly what numpy counts
        assert np.array_equal(c_small, np.bincount(small.ravel(), minlength=ls.num_classes)[: ls.num_classes])
        ids = ls.ids("upper")
        assert np.array_equal(body.label_mask(small, ids), np.isin(small, list(ids)))
    assert True in reduced_sizes  # the full-size (1024x768) maps were subsampled


def test_opencv_jpeg_decode_equals_pil_on_real_images(real_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every labelled real JPEG (people and products) decodes to PIL's exact pixels through the OpenCV path,
    at full size and at the 1/2 and 1/4 scales the analysis uses."""
    from PIL import Image

    from curate.filters import pipeline

    labels = load_labels()
    files = sorted({real_root / p for c in ("human", "article") for p in labels[c] if p.lower().endswith((".jpg", ".jpeg"))})
    assert len(files) >= 100
    sizes = {}
    for f in files:
        with Image.open(f) as im:
            sizes[f] = im.size
            plain = im.format == "JPEG" and im.mode in ("L", "RGB")
            assert pipeline._jpeg_header(f.read_bytes()) == ((im.mode, im.size) if plain else None), f
    cases = lambda f: [None, (sizes[f][0] // 2, sizes[f][1] // 2), (sizes[f][0] // 4, sizes[f][1] // 4)]  # noqa: E731
    got = {f: [pipeline._read_rgb(f, size, []) for size in cases(f)] for f in files}
    monkeypatch.setattr(pipeline, "_decode_jpeg_opencv", lambda *a: None)  # PIL alone
    for f in files:
        for g, size in zip(got[f], cases(f)):
            w = pipeline._read_rgb(f, size, [])
            assert g is not None and w is not None and np.array_equal(g, w), (f, size)
