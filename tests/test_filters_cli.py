"""`curate filter` as a command: --explain, options, workers, and bad inputs that must not crash the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from curate.cli import app
from curate.filters.command import apply_filters
from curate.filters.pipeline import FilterOptions
from curate.filters.quality import manifest_from_labelled_pairs
from curate.manifest import Manifest, write_table

LABELS = Path(__file__).parent / "data" / "real_filter_labels.csv"
runner = CliRunner()


def small_real_ds(real_root: Path, out: Path, ids: list[str]) -> Path:
    labels = pd.read_csv(LABELS, dtype=str, keep_default_na=False)
    return manifest_from_labelled_pairs(labels[labels["pair_id"].isin(ids)], real_root, out)


def test_cli_writes_columns_and_explains(real_root: Path, tmp_path: Path) -> None:
    ds = small_real_ds(real_root, tmp_path / "ds", ["deepfashion/reference_img_3", "dresscode/050855", "pasta/24_04BF5AA0C435A"])
    res = runner.invoke(app, ["filter", str(ds)])
    assert res.exit_code == 0, res.output
    assert "filter_reason" in res.output and "back-view" in res.output
    pairs = Manifest.load(ds).pairs.set_index("pair_id")
    assert pairs.loc["deepfashion/reference_img_3", "filter_reason"] == "back-view"
    assert pairs.loc["dresscode/050855", "filter_reason"] == "lower-only-product"
    assert pd.isna(pairs.loc["pasta/24_04BF5AA0C435A", "filter_reason"])
    # the other stages' columns are untouched, rows are all still there
    assert len(pairs) == 3 and (pairs["status"] == "ok").all()

    res = runner.invoke(app, ["filter", str(ds), "--explain", "deepfashion/reference_img_3"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "REJECTED: back-view" in out
    assert "back_view: back  [evidence: detector/mediapipe-pose]" in out
    assert "shoulders-mirrored" in out and "shoulder_ratio=" in out

    res = runner.invoke(app, ["filter", str(ds), "--explain", "dresscode/050855"])
    assert "lower_only: lower-only-product  [evidence: metadata]" in res.output
    assert "upper-garment=worn (annotations/parsing)" in res.output

    res = runner.invoke(app, ["filter", str(ds), "--explain", "no/such-pair"])
    assert res.exit_code != 0 and "no pair or person 'no/such-pair'" in res.output


def test_explain_before_filtering_computes_without_writing(real_root: Path, tmp_path: Path) -> None:
    ds = small_real_ds(real_root, tmp_path / "ds", ["dresscode/050915"])
    before = (ds / "manifest" / "pairs.parquet").read_bytes()
    res = runner.invoke(app, ["filter", str(ds), "--explain", "dresscode/050915"])
    assert res.exit_code == 0, res.output
    assert "not filtered yet" in res.output and "extra_garments: extra-garments" in res.output
    assert (ds / "manifest" / "pairs.parquet").read_bytes() == before


def test_options_disable_filters_and_side_views(real_root: Path, tmp_path: Path) -> None:
    ds = small_real_ds(real_root, tmp_path / "ds", ["deepfashion/reference_img_1", "dresscode/050855"])
    res = runner.invoke(app, ["filter", str(ds), "--no-lower-only-products", "--no-extra-garments", "--reject-side-views"])
    assert res.exit_code == 0, res.output
    pairs = Manifest.load(ds).pairs.set_index("pair_id")
    assert pairs.loc["deepfashion/reference_img_1", "filter_reason"] == "side-view"
    assert pd.isna(pairs.loc["dresscode/050855", "filter_reason"])
    assert pairs["filter_lower_only"].isna().all() and pairs["filter_extra_garments"].isna().all()
    # a threshold option reaches the filter: a side-ratio cut above every front view makes them all "side"
    runner.invoke(app, ["filter", str(ds), "--side-max-shoulder-ratio", "5"])
    assert (Manifest.load(ds).pairs["filter_back_view"] == "side").all()


def test_workers_give_the_same_verdicts(real_root: Path, tmp_path: Path) -> None:
    ids = ["dresscode/050915", "dresscode/050855", "mgd-vitonhd/03191_00", "pasta/24_04BF5AA0C435A", "pasta/16_5DDABAA148AB7"]
    ds = small_real_ds(real_root, tmp_path / "ds", ids)
    one = apply_filters(ds, FilterOptions(detectors=False), workers=1)
    two = apply_filters(ds, FilterOptions(detectors=False), workers=2)
    cols = ["pair_id", "filter_back_view", "filter_lower_only", "filter_extra_garments", "filter_reason", "filter_evidence"]
    pd.testing.assert_frame_equal(one[cols], two[cols])


def test_detector_workers_give_the_same_verdicts(real_root: Path, tmp_path: Path) -> None:
    # detectors in a worker pool (forkserver: each worker builds its own MediaPipe graph) after this
    # process already ran one (workers=1 first): the case that crashed a plain fork
    ds = small_real_ds(real_root, tmp_path / "ds", ["deepfashion/reference_img_3", "deepfashion/reference_img_1", "ootd/051482_0"])
    one = apply_filters(ds, FilterOptions(), workers=1)
    two = apply_filters(ds, FilterOptions(), workers=2)
    cols = ["pair_id", "filter_back_view", "filter_lower_only", "filter_extra_garments", "filter_reason"]
    pd.testing.assert_frame_equal(one[cols], two[cols])
    views = dict(zip(two["pair_id"], two["filter_back_view"]))
    assert views == {"deepfashion/reference_img_3": "back", "deepfashion/reference_img_1": "side", "ootd/051482_0": "front"}


def test_bad_inputs_become_unknown_with_a_note(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    (root / "empty.jpg").write_bytes(b"")
    (root / "garbage.png").write_bytes(b"not a png at all")
    Image.fromarray(np.full((64, 48, 3), 200, np.uint8)).save(root / "blank.jpg")
    Image.fromarray(np.full((64, 48), 99, np.uint8)).save(root / "bad_ids.png")  # id 99 is outside LIP-20
    humans = pd.DataFrame([
        {"human_id": "h_empty", "path": "empty.jpg", "category": "unknown", "split": "test", "source_layout": "t",
         "status": "ok", "width": 48, "height": 64, "labelmap_path": "garbage.png", "label_set": "lip-20",
         "keypoints": [0.0] * 54},
        {"human_id": "h_blank", "path": "blank.jpg", "category": "unknown", "split": "test", "source_layout": "t",
         "status": "ok", "width": 48, "height": 64, "labelmap_path": "bad_ids.png", "label_set": "lip-20"},
        {"human_id": "h_unknown_set", "path": "blank.jpg", "category": "unknown", "split": "test", "source_layout": "t",
         "status": "ok", "width": 48, "height": 64, "labelmap_path": "bad_ids.png", "label_set": "no-such-set"},
        {"human_id": "h_rejected", "path": "gone.jpg", "category": "unknown", "split": "test", "source_layout": "t",
         "status": "rejected", "reject_reason": "missing-file"},
    ])
    articles = pd.DataFrame([
        {"article_id": "a_missing", "path": "nope.jpg", "category": "unknown", "split": "test", "source_layout": "t", "status": "ok"},
    ])
    pairs = pd.DataFrame([
        {"pair_id": f"p_{h}", "human_id": h, "article_id": "a_missing", "paired": True, "category": "unknown",
         "split": "test", "source_layout": "t", "status": "rejected" if h == "h_rejected" else "ok"}
        for h in humans["human_id"]
    ])
    ds = tmp_path / "ds"
    for name, df in (("humans", humans), ("articles", articles), ("pairs", pairs)):
        write_table(ds, name, df, root, "t")
    out = apply_filters(ds, FilterOptions()).set_index("pair_id")
    assert len(out) == 4
    for pid in ("p_h_empty", "p_h_blank", "p_h_unknown_set"):
        assert out.loc[pid, "filter_back_view"] == "unknown"
        assert out.loc[pid, "filter_lower_only"] == "unknown"
        assert pd.isna(out.loc[pid, "filter_reason"])
    notes = " | ".join(json.loads(out.loc["p_h_empty", "filter_evidence"])["notes"])
    assert "garbage.png unreadable" in notes and "empty.jpg unreadable" in notes and "nope.jpg unreadable" in notes
    notes = " | ".join(json.loads(out.loc["p_h_blank", "filter_evidence"])["notes"])
    assert "id 99 outside lip-20" in notes and "detector found no person" in notes
    assert "unknown label set" in " | ".join(json.loads(out.loc["p_h_unknown_set", "filter_evidence"])["notes"])
    assert json.loads(out.loc["p_h_rejected", "filter_evidence"]) == {"skipped": "ingest status rejected"}
    assert pd.isna(out.loc["p_h_rejected", "filter_back_view"])


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["filter", str(tmp_path / "nothing")])
    assert res.exit_code != 0 and "curate ingest" in res.output


def test_hand_made_viton_hd_style_dataset_end_to_end(tmp_path: Path) -> None:
    """Cloth masks on disk, LIP-20 parsing, COCO-18 keypoints, no category metadata: one pair per case."""
    from test_filters_unit import draw, lip_person, person_keypoints, torso_image

    root = tmp_path / "src"
    root.mkdir()
    people = {
        "clean": (lip_person(), person_keypoints()),
        "back": (lip_person(face=False, arms_mirrored=True), person_keypoints(mirror=True, face=False)),
        "coat": (lip_person(), person_keypoints()),
        "lower": (lip_person(), person_keypoints()),
    }
    people["coat"][0][70:150, 66:80] = 7
    products = {"clean": "tee", "back": "tee", "coat": "tee", "lower": "pants"}
    humans, articles, pairs = [], [], []
    for name, (lm, kps) in people.items():
        Image.fromarray(torso_image((200, 30, 30), (200, 30, 30))).save(root / f"{name}.jpg")
        Image.fromarray(lm, mode="L").save(root / f"{name}_parse.png")
        mask = draw(products[name]).astype(np.uint8) * 255
        Image.fromarray(mask).save(root / f"{name}_mask.jpg")
        Image.fromarray(np.stack([mask] * 3, -1)).save(root / f"{name}_cloth.jpg")
        humans.append({"human_id": name, "path": f"{name}.jpg", "category": "unknown", "split": "test", "source_layout": "t",
                       "status": "ok", "width": 192, "height": 256, "labelmap_path": f"{name}_parse.png", "label_set": "lip-20",
                       "keypoints": [float(v) for v in kps.reshape(-1)]})
        articles.append({"article_id": name, "path": f"{name}_cloth.jpg", "cloth_mask_path": f"{name}_mask.jpg",
                         "category": "unknown", "split": "test", "source_layout": "t", "status": "ok"})
        pairs.append({"pair_id": name, "human_id": name, "article_id": name, "paired": False, "category": "unknown",
                      "split": "test", "source_layout": "t", "status": "ok"})
    ds = tmp_path / "ds"
    for table, rows in (("humans", humans), ("articles", articles), ("pairs", pairs)):
        write_table(ds, table, pd.DataFrame(rows), root, "t")
    out = apply_filters(ds, FilterOptions(detectors=False)).set_index("pair_id")
    assert out.loc["back", "filter_reason"] == "back-view"
    assert out.loc["coat", "filter_reason"] == "extra-garments"
    assert out.loc["lower", "filter_reason"] == "lower-only-product"
    assert pd.isna(out.loc["clean", "filter_reason"])
    lower = json.loads(out.loc["lower", "filter_evidence"])["lower_only"]
    assert lower["source"] == "article-mask-shape" and "product:two-legs" in lower["signals"]


def test_detector_knob_defaults_are_the_thresholds() -> None:
    """The CLI's detector-path knobs default to the tuned Thresholds (a CLI default drifting from the library's
    would silently run another operating point than docs/benchmarks/filters.md measured)."""
    import dataclasses

    import typer.main

    from curate.filters.thresholds import Thresholds

    params = {p.name: p for p in typer.main.get_command(app).commands["filter"].params}
    th = Thresholds()
    for name in ("det_opening_min_row_fraction", "det_edge_min_strength", "det_outer_layer_min_score"):
        assert params[name].default == getattr(th, name), name
    assert params["detector_layering_rejects"].default is th.det_layering_rejects is False
    assert {f.name for f in dataclasses.fields(th)} >= {"det_edge_min_strength", "det_edge_min_offset"}
