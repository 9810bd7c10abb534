"""End to end on the project's synthetic data: synth -> ingest accounts for every ground-truth pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("curate.synth", reason="curate synth (issue 2, deliverable 4) not in this checkout")

from curate.manifest import Manifest  # noqa: E402


def test_synth_ingests_cleanly_and_matches_ground_truth(synth_root: Path, synth_ds: Path):
    m = Manifest.load(synth_ds)
    assert m.layout == "viton-hd" and m.root == synth_root.resolve()
    gt = pd.read_csv(synth_root / "ground_truth.csv")
    # Synthetic files are all valid: nothing rejected at ingest (curation cases are for later stages).
    for table in ("humans", "articles", "pairs"):
        df = m.table(table)
        assert (df["status"] == "ok").all(), df.loc[df["status"] != "ok", ["status", "reject_detail"]].head()
    humans = m.humans.set_index("human_id")
    articles = m.articles.set_index("article_id")
    pairs = m.pairs.assign(
        human=m.pairs["human_id"].map(humans["path"]), article=m.pairs["article_id"].map(articles["path"])
    )
    got = set(zip(pairs["human"], pairs["article"]))
    expected = set(zip(gt["human"], gt["article"]))
    assert got == expected
    assert len(m.pairs) == len(gt)
    # Every human has its LIP-20 parse and a BODY_25 pose converted to 18 joints inside the image.
    assert (m.humans["label_set"] == "lip-20").all() and (m.humans["pose_format"] == "openpose-body25").all()
    for kp, w, h in zip(m.humans["keypoints"], m.humans["width"], m.humans["height"]):
        joints = np.asarray(kp, dtype=np.float32).reshape(18, 3)
        present = joints[:, 2] > 0
        assert present.sum() >= 8
        assert (joints[present, 0] <= w).all() and (joints[present, 1] <= h).all()
    # Exact duplicates in the ground truth are byte-identical, so their hashes agree in the manifest.
    exact = gt[gt["case"] == "exact-duplicate"]
    by_path = m.humans.set_index("path")["sha256"]
    orig = gt.set_index("pair_id")["human"]
    for _, row in exact.iterrows():
        assert by_path[row["human"]] == by_path[orig[row["duplicate_of"]]]
