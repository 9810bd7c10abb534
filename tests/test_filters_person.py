"""Person-level verdicts (issue 19): judged once per person in the humans table, pairs derived from them,
humans-only datasets judged, ``--explain`` for a person id."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.filters import pipeline
from curate.filters.command import apply_filters
from curate.filters.pipeline import FilterOptions
from curate.filters.quality import manifest_from_labelled_pairs, synth_truth
from curate.manifest import Manifest

LABELS = Path(__file__).parent / "data" / "real_filter_labels.csv"
runner = CliRunner()


def test_humans_only_dataset_is_judged_person_by_person(real_root: Path, tmp_path: Path) -> None:
    """`curate ingest --layout images --role human` then `curate filter`: every person judged, and said so."""
    ds = tmp_path / "ds"
    res = runner.invoke(app, ["ingest", str(real_root / "pidm-deepfashion" / "human"), "--out", str(ds),
                              "--layout", "images", "--role", "human"])
    assert res.exit_code == 0, res.output
    m = Manifest.load(ds)
    assert len(m.pairs) == 0 and len(m.humans) == 2
    res = runner.invoke(app, ["filter", str(ds)])
    assert res.exit_code == 0, res.output
    assert "2 of 2 people judged" in res.output and "no pairs in this dataset" in res.output
    h = Manifest.load(ds).humans.set_index("human_id")
    assert h.loc["reference_img_3", "filter_view"] == "back"
    assert h.loc["reference_img_3", "filter_person_reason"] == "back-view"
    assert h.loc["reference_img_1", "filter_view"] == "side" and pd.isna(h.loc["reference_img_1", "filter_person_reason"])
    for hid in h.index:  # every fact column is filled from the detectors, with its evidence
        assert h.loc[hid, "filter_upper_garments"] in ("top", "top+open-layer")
        assert h.loc[hid, "filter_lower_only_outfit"] == "no" and h.loc[hid, "filter_scarf"] == "unknown"
        ev = json.loads(h.loc[hid, "filter_person_evidence"])
        assert ev["view"]["source"] == "detector/mediapipe-pose" and ev["garments"]["source"] == "detector/person-segmentation"
    res = runner.invoke(app, ["filter", str(ds), "--explain", "reference_img_3"])
    assert res.exit_code == 0, res.output
    assert "person reference_img_3" in res.output and "REJECTED: back-view" in res.output
    assert "view: back  [evidence: detector/mediapipe-pose]" in res.output and "upper_garments='top" in res.output


def test_explain_a_person_before_filtering_writes_nothing(real_root: Path, tmp_path: Path) -> None:
    labels = pd.read_csv(LABELS, dtype=str, keep_default_na=False)
    ds = manifest_from_labelled_pairs(labels[labels["pair_id"] == "dresscode/050915"], real_root, tmp_path / "ds")
    before = {t: (ds / "manifest" / f"{t}.parquet").read_bytes() for t in ("humans", "pairs")}
    hid = Manifest.load(ds).pairs["human_id"].iloc[0]
    res = runner.invoke(app, ["filter", str(ds), "--explain", hid])
    assert res.exit_code == 0, res.output
    assert "not filtered yet" in res.output and "garments: layered  [evidence: annotations/parsing]" in res.output
    assert "open-layer-inside-upper-label" in res.output and "layered='yes'" in res.output
    assert {t: (ds / "manifest" / f"{t}.parquet").read_bytes() for t in ("humans", "pairs")} == before
    # the pair's explanation points at its person
    res = runner.invoke(app, ["filter", str(ds), "--explain", "dresscode/050915"])
    assert f"--explain {hid}" in res.output


def test_each_person_is_judged_once_for_all_their_pairs(real_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three pairs of one person (different articles) share one judgement of the person; the pairs' view
    is the person's, and the person's facts are in the humans table."""
    labels = pd.read_csv(LABELS, dtype=str, keep_default_na=False)
    base = labels[labels["pair_id"].isin(["dresscode/050915", "deepfashion/reference_img_3"])]
    articles = labels["article"][labels["article"] != ""].drop_duplicates().head(3).tolist()
    rows = [r._replace(pair_id=f"{r.pair_id}#{i}", article=a, paired="0") for r in base.itertuples(index=False)
            for i, a in enumerate(articles)]
    ds = manifest_from_labelled_pairs(pd.DataFrame(rows, columns=labels.columns), real_root, tmp_path / "ds")
    calls: list[str] = []
    real_view, real_garments = pipeline._back_view, pipeline._person_garments
    monkeypatch.setattr(pipeline, "_back_view", lambda inp: calls.append(inp.task.human_id) or real_view(inp))
    monkeypatch.setattr(pipeline, "_person_garments", lambda inp: calls.append("g:" + inp.task.human_id) or real_garments(inp))
    result: dict = {}
    pairs = apply_filters(ds, FilterOptions(), workers=1, result=result)
    humans = result["humans"].set_index("human_id")
    assert len(pairs) == 6 and sorted(calls) == sorted([*humans.index, *("g:" + h for h in humans.index)])
    for hid, grp in pairs.groupby("human_id"):
        assert (grp["filter_back_view"] == humans.loc[hid, "filter_view"]).all()
        views = {json.dumps(json.loads(e)["back_view"], sort_keys=True) for e in grp["filter_evidence"]}
        assert len(views) == 1  # the same evidence, not three computations that happen to agree
    coat = humans.loc["mgd-dresscode/lower_body/human/050915_0.jpg"]
    assert coat["filter_layered"] == "yes" and coat["filter_upper_count"] == 2 and coat["filter_upper_garments"] == "upper+open-layer"
    assert coat["filter_person_reason"] == "extra-garments"
    assert humans.loc["pidm-deepfashion/human/reference_img_3.png", "filter_person_reason"] == "back-view"


def test_person_verdicts_on_synth_ground_truth(synth_root: Path, synth_ds: Path, tmp_path: Path) -> None:
    """On synthetic ground truth the person columns are exact: back-view cases are the people with
    filter_view == back, extra-garment cases the layered or scarfed ones (P = R = 1.00), and the pairs'
    verdicts read them."""
    ds = tmp_path / "ds"
    shutil.copytree(synth_ds, ds)
    result: dict = {}
    pairs = apply_filters(ds, FilterOptions(detectors=False), workers=1, result=result)
    humans = result["humans"].set_index("human_id")
    truth = synth_truth(pd.read_csv(synth_root / "ground_truth.csv", dtype=str), Manifest.load(ds))
    t = truth.merge(pairs[["pair_id", "human_id"]], on="pair_id")
    back = t.groupby("human_id")["back_view"].any()
    layered = t.groupby("human_id")["extra_garments"].any()
    assert back.any() and layered.any()
    assert ((humans.loc[back.index, "filter_view"] == "back") == back).all()
    extra = (humans["filter_layered"] == "yes") | (humans["filter_scarf"] == "yes")
    assert (extra.loc[layered.index] == layered).all()
    assert ((humans["filter_person_reason"] == "extra-garments") == extra).all()
    assert (humans["filter_lower_only_outfit"] == "no").all()  # every synthetic person wears a top
    merged = pairs.merge(humans[["filter_view"]], left_on="human_id", right_index=True)
    assert (merged["filter_back_view"] == merged["filter_view"]).all()


def test_rejected_humans_are_skipped_with_a_reason(real_root: Path, tmp_path: Path) -> None:
    labels = pd.read_csv(LABELS, dtype=str, keep_default_na=False)
    ds = manifest_from_labelled_pairs(labels[labels["pair_id"] == "mgd-vitonhd/03191_00"], real_root, tmp_path / "ds")
    m = Manifest.load(ds)
    m.humans["status"] = "rejected"
    m.humans["reject_reason"] = "unreadable-image"
    m.save("humans")
    result: dict = {}
    apply_filters(ds, FilterOptions(), result=result)
    h = result["humans"].iloc[0]
    assert pd.isna(h["filter_view"]) and "skipped" in json.loads(h["filter_person_evidence"])
