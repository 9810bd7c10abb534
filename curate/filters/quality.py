"""Measuring the filters: ground truth from labelled pairs or ``ground_truth.csv``, precision and recall.

Two sources of truth:

* ``curate synth``'s ``ground_truth.csv`` (``case`` per pair: back-view, lower-only-product,
  extra-garments, clean, duplicates) — :func:`synth_truth`;
* a labelled-pairs CSV of *facts* seen on real images (``tests/data/real_filter_labels.csv``): the
  person's view, the garments worn, the product's type. :func:`expected_from_facts` turns facts into the
  verdict each filter should give, by the definitions in the filter modules, and
  :func:`manifest_from_labelled_pairs` writes a manifest over those images (reading their parsing and
  pose) so that the real ``curate filter`` code path runs on them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from typing import TYPE_CHECKING

import pandas as pd

from curate.schema import Category, Status

if TYPE_CHECKING:
    from curate.manifest import Manifest

FILTER_COLUMNS = {"back_view": "filter_back_view", "lower_only": "filter_lower_only", "extra_garments": "filter_extra_garments"}
POSITIVE = {"back_view": {"back"}, "lower_only": {"lower-only-product"}, "extra_garments": {"extra-garments"}}
UPPER_KINDS = {"upper", "outer", "dress", "inner"}  # "inner": an under-layer visible through or under a top


def expected_from_facts(human_view: str, human_wears: str, product: str) -> dict[str, bool]:
    """Which filters should fire for a person (view, garments worn) and a product type.

    lower-only: the product is lower-body and the person wears anything on the upper body.
    extra garments: two upper-body garments at once, a scarf, or trousers with a dress product.
    """
    worn = {w for w in str(human_wears).split("+") if w}
    upper = worn & UPPER_KINDS
    extra = len(upper) >= 2 or "scarf" in worn or (product == Category.DRESSES.value and {"dress", "lower"} <= worn)
    return {
        "back_view": human_view == "back",
        "lower_only": product == Category.LOWER.value and bool(upper),
        "extra_garments": extra,
    }


def labelled_truth(labels: pd.DataFrame) -> pd.DataFrame:
    """pair_id + one boolean column per filter from a labelled-pairs frame."""
    rows = []
    for r in labels.itertuples(index=False):
        product = r.article_product if isinstance(r.article_product, str) and r.article_product else r.category_metadata
        product = product if isinstance(product, str) and product else Category.UNKNOWN.value
        rows.append({"pair_id": r.pair_id, **expected_from_facts(r.human_view, r.human_wears, product)})
    return pd.DataFrame(rows)


def synth_truth(ground_truth: pd.DataFrame, m: "Manifest") -> pd.DataFrame:
    """Per-filter truth for a synthetic dataset: each injected case is a positive of one filter only.

    ``ground_truth`` is ``curate synth``'s CSV (``pair_id, human, article, case, duplicate_of``); rows are
    matched to the manifest's pairs by their (human, article) paths, which ingest keeps verbatim. A
    duplicate inherits the case of the pair it duplicates (a re-encoded back view is still a back view).
    """
    gt = ground_truth.astype({"pair_id": str, "case": str})
    case_of = dict(zip(gt["pair_id"], gt["case"]))
    dup_of = gt["duplicate_of"].astype("object") if "duplicate_of" in gt else pd.Series([None] * len(gt))

    def resolved(case: str, original: object) -> str:
        if case.endswith("duplicate") and isinstance(original, str) and original in case_of:
            return case_of[original]
        return case

    gt = gt.assign(filter_case=[resolved(c, o) for c, o in zip(gt["case"], dup_of)])
    hp = dict(zip(m.humans["human_id"], m.humans["path"]))
    ap = dict(zip(m.articles["article_id"], m.articles["path"]))
    pairs = pd.DataFrame({
        "pair_id": m.pairs["pair_id"].astype(str),
        "human": m.pairs["human_id"].map(hp).astype(str),
        "article": m.pairs["article_id"].map(ap).astype(str),
    })
    merged = pairs.merge(gt[["human", "article", "case", "filter_case"]], on=["human", "article"], how="inner")
    c = merged["filter_case"]
    return pd.DataFrame({
        "pair_id": merged["pair_id"], "case": merged["case"], "back_view": c == "back-view",
        "lower_only": c == "lower-only-product", "extra_garments": c == "extra-garments",
    })


@dataclasses.dataclass(frozen=True)
class Score:
    filter: str
    tp: int
    fp: int
    fn: int
    tn: int
    misses: tuple[str, ...]  # false negatives
    false_alarms: tuple[str, ...]  # false positives

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score(pairs: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Score]:
    """Precision/recall of each filter's *positive verdict* against the truth (unknown counts as negative)."""
    merged = truth.merge(pairs[["pair_id", *FILTER_COLUMNS.values()]], on="pair_id", how="left")
    out: dict[str, Score] = {}
    for name, col in FILTER_COLUMNS.items():
        pred = merged[col].astype("object").isin(POSITIVE[name])
        gold = merged[name].astype(bool)
        ids = merged["pair_id"].astype(str)
        out[name] = Score(
            name,
            tp=int((pred & gold).sum()),
            fp=int((pred & ~gold).sum()),
            fn=int((~pred & gold).sum()),
            tn=int((~pred & ~gold).sum()),
            misses=tuple(ids[~pred & gold]),
            false_alarms=tuple(ids[pred & ~gold]),
        )
    return out


def manifest_from_labelled_pairs(labels: pd.DataFrame, root: Path, ds: Path) -> Path:
    """Write a manifest over the labelled pairs (paths relative to ``root``); poses and sizes are read.

    Sources are read, never written. A missing file makes its row ``rejected`` like the ingest would.
    """
    from PIL import Image

    from curate.manifest import write_table
    from curate.poses import PoseError, read_pose

    humans: dict[str, dict] = {}
    articles: dict[str, dict] = {}
    pairs = []
    for r in labels.itertuples(index=False):
        hid = r.human
        if hid not in humans:
            row = {"human_id": hid, "path": hid, "category": Category.UNKNOWN.value, "split": "test",
                   "source_layout": hid.split("/")[0], "status": Status.OK.value}
            try:
                with Image.open(root / hid) as img:
                    row["width"], row["height"] = img.size
            except OSError as exc:
                row.update(status=Status.REJECTED.value, reject_reason="unreadable-image", reject_detail=str(exc))
            if isinstance(r.parse, str) and r.parse:
                row.update(labelmap_path=r.parse, label_set=r.label_set)
            if isinstance(r.pose, str) and r.pose and "width" in row:
                try:
                    pose = read_pose(root / r.pose, image_size=(row["width"], row["height"]))
                    row.update(pose_path=r.pose, pose_format=pose.format.value, keypoints=pose.flat())
                except PoseError as exc:
                    row.update(reject_detail=f"pose unreadable: {exc}")
            humans[hid] = row
        aid = r.article if isinstance(r.article, str) and r.article else None
        if aid is not None and aid not in articles:
            articles[aid] = {"article_id": aid, "path": aid, "category": Category.UNKNOWN.value, "split": "test",
                             "source_layout": aid.split("/")[0], "status": Status.OK.value}
        meta = r.category_metadata if isinstance(r.category_metadata, str) and r.category_metadata else Category.UNKNOWN.value
        pairs.append({"pair_id": r.pair_id, "human_id": hid, "article_id": aid, "paired": bool(int(r.paired)),
                      "category": meta, "split": "test", "source_layout": "labelled-real", "status": Status.OK.value})
    write_table(ds, "humans", pd.DataFrame(list(humans.values())), root, "labelled-real")
    write_table(ds, "articles", pd.DataFrame(list(articles.values())), root, "labelled-real")
    write_table(ds, "pairs", pd.DataFrame(pairs), root, "labelled-real")
    return ds
