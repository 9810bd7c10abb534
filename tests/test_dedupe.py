"""curate dedupe against known ground truth: every decision kind (exact bytes, same pixels, near duplicate),
colourways and distinct images never merged, the keep policy, the cache, bad input, the Ray engine, and
the exact radius search against brute force."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curate.dedupe.command import FEATURE_VERSION, run_dedupe
from curate.dedupe.core import candidate_pairs, find_duplicates
from curate.dedupe.engine import hash_files
from curate.dedupe.features import Thumb, thumbnail
from curate.dedupe.search import pairs_within
from curate.manifest import Manifest

REPO = Path(__file__).resolve().parents[1]


def _bench_module(name: str):  # noqa: ANN202 - bench/dedupe/<name>.py, which is not a package
    spec = importlib.util.spec_from_file_location(f"bench_dedupe_{name}", REPO / "bench" / "dedupe" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _bench_dataset():  # noqa: ANN202 - bench/dedupe/dataset.py, the benchmark's own generator
    return _bench_module("dataset")


def _solid_cut(seed: int):  # noqa: ANN202
    """The bench generator's cut ``seed`` made solid, and what draws a cut as the generator does (at 512x384, saved
    at 1024x768)."""
    import dataclasses as dc

    dataset = _bench_dataset()

    def big(c):  # noqa: ANN001, ANN202
        return Image.fromarray(dataset.draw_product(c)).resize((768, 1024), Image.BICUBIC)

    return dc.replace(dataset.random_cut(np.random.default_rng(seed)), pattern="solid"), big


def _copy_and_darker_colourway(tmp_path: Path, seed: int, edit) -> list[Path]:  # noqa: ANN001
    """A solid product of the bench generator's cut ``seed`` (drawn at 512x384, saved at 1024x768 as the generator
    does), ``edit`` of it, and its colourway with the main colour's value x0.6 (background unchanged)."""
    import dataclasses as dc

    cut, big = _solid_cut(seed)
    h, s, v = cut.colours[0]
    original = big(cut)
    paths = [tmp_path / f"{k}.jpg" for k in range(3)]
    original.save(paths[0], quality=92)
    edit(original).save(paths[1], quality=90)
    big(dc.replace(cut, colours=((h, s, v * 0.6), *cut.colours[1:]))).save(paths[2], quality=92)
    return paths


@pytest.fixture(scope="module")
def synth256(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A curate-synth dataset at its default 256x192 (the 128x96 fixture is below what a 5 % crop or a
    watermark leaves recognisable at 32x32) with every injected duplicate and colourway, ingested."""
    from curate.ingest import ingest
    from curate.synth import generate

    root = tmp_path_factory.mktemp("dedupe-synth")
    generate(root / "src", n=160, size=(256, 192), seed=11)
    ingest(root / "src", root / "ds", layout="viton-hd")
    return root / "src", root / "ds"


@pytest.fixture()
def ds(synth256: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "ds"
    shutil.copytree(synth256[1], out)
    return out


def _scored(ds: Path, src: Path) -> pd.DataFrame:
    m = Manifest.load(ds)
    gt = pd.read_csv(src / "ground_truth.csv", keep_default_na=False).set_index("pair_id")
    p = m.pairs.copy()
    p["stem"] = p["human_id"].str.split("/").str[1]
    p["case"], p["transform"] = p["stem"].map(gt["case"]), p["stem"].map(gt["transform"])
    p["colourway_of"], p["truth_of"] = p["stem"].map(gt["colourway_of"]), p["stem"].map(gt["duplicate_of"])
    p["marked"] = ~p["dup_keep"].fillna(True).astype(bool)
    p["of_stem"] = p["dup_of"].str.split("/").str[1].str.split("--").str[0]
    return p


def test_synth_duplicates_found_and_distinct_pairs_kept(ds: Path, synth256: tuple[Path, Path]) -> None:
    stats, pair_dups, report = run_dedupe(ds, workers=2)
    # the command's stats carry where the grouping's time went (printed as "grouping: ...")
    assert all(s.stages["verify"][1] == s.candidates > 0 and "look" in s.stages for s in stats if s.rows > 1)
    p = _scored(ds, synth256[0])
    exact = p[p["case"] == "exact-duplicate"]
    assert len(exact) >= 5 and exact["marked"].all() and (exact["of_stem"] == exact["truth_of"]).all()
    m = Manifest.load(ds)
    humans = m.humans.assign(stem=m.humans["human_id"].str.split("/").str[1]).set_index("stem")
    assert (humans.loc[exact["stem"], "dup_reason"] == "exact-bytes").all()
    near = p[p["case"] == "near-duplicate"]
    found = near[near["marked"] & (near["of_stem"] == near["truth_of"])]
    recall = found.groupby("transform").size().reindex(near["transform"].unique(), fill_value=0) / near.groupby("transform").size()
    # measured on this seed: re-encode, resize, watermark 3/3; crop 2/3; brightness 2/3 (curate synth brightens
    # the article's garment but not its white background, and clips saturated channels: the product's own
    # chromaticity moves, 0.031 against the 0.02 threshold). The 1024x768 benchmark set: test below.
    assert (recall[["reencode", "resize"]] == 1.0).all(), recall
    assert recall.min() >= 0.6 and len(found) >= 0.85 * len(near), recall
    assert not p[~p["case"].isin(["exact-duplicate", "near-duplicate"])]["marked"].any(), "a distinct pair was marked"
    assert not p[p["colourway_of"] != ""]["marked"].any(), "a colourway was merged"
    assert pair_dups == int(p["marked"].sum())
    marked = humans[humans["dup_keep"] == False]  # noqa: E712
    assert set(marked["dup_reason"]) <= {"exact-bytes", "same-pixels", "near-duplicate"}
    assert marked["dup_keep_policy"].notna().all()
    evidence = [json.loads(d) for d in marked["dup_distance"].dropna()]
    assert evidence and all({"hash", "tone", "structure", "shift", "detail", "aspect"} <= set(e["to_kept"]) for e in evidence)
    text = report.read_text()
    assert "KEPT" in text and "near-duplicate" in text and "tone" in text


def test_group_certainty_reads_the_distances_that_decided_each_link() -> None:
    """The report sorts groups by certainty (1 - the largest deciding distance / its threshold). A link one tone
    curve explained has a plain tone far over its threshold by design: it is judged by the curve that held (the
    thumbnails', else the finer look's), so such groups are not all 'least certain' (they read -5.25 before)."""
    from curate.dedupe.command import _margin
    from curate.dedupe.verify import Thresholds

    th = Thresholds()
    plain = {"tone": 0.04, "shift": 0.004, "structure": 0.0, "fine_tone": 0.2}  # the finer curve measured, not deciding
    curve = {"tone": 0.5, "shift": 0.1, "tonal_tone": 0.02, "tonal_shift": 0.01, "structure": 0.0}
    fine_curve = {"tone": 0.5, "shift": 0.1, "tonal_tone": 0.3, "tonal_shift": 0.05, "fine_tone": 0.03, "fine_tone_shift": 0.005}
    twin = {"tone": 0.01, "shift": 0.001, "fine_shape": 0.027}
    dist = [None, *(json.dumps({"to_kept": d}) for d in (plain, curve, fine_curve, twin))]
    assert _margin(dist, [0, 1], th) == 0.5  # tone 0.04 of 0.08
    assert _margin(dist, [0, 2], th) == 0.5  # the curve's shift 0.01 of 0.02
    assert _margin(dist, [0, 3], th) == 0.25  # the finer curve's 0.03 of 0.04
    assert _margin(dist, [0, 4], th) == 0.1  # the outline: 0.027 of 0.03
    assert _margin(dist, [0, 1, 2, 3, 4], th) == 0.1  # the group's least certain link


def test_benchmark_generator_set_per_transform(tmp_path: Path) -> None:
    """A small set from the benchmark's own generator (1024x768 products in colourways, every transform):
    the thresholds chosen on the 5k set hold on another seed."""
    dataset = _bench_dataset()
    truth = pd.read_csv(dataset.build(tmp_path / "set", 420, None, seed=5, workers=2), keep_default_na=False)
    files = [str(tmp_path / "set" / f) for f in truth["file"]]
    thumbs = hash_files(files, "local", 2)
    found = find_duplicates(thumbs, files)  # type: ignore[arg-type]
    pairs = {(a, b) for g in found.groups(range(len(files))) for a, b in itertools.combinations(sorted(g), 2)}
    dup = {(a, b) for _, g in truth.groupby("origin").indices.items() for a, b in itertools.combinations(sorted(g), 2)}
    base = truth["file"].str.split("_").str[0].to_numpy()
    colourway = {(a, b) for a, b in itertools.combinations(range(len(files)), 2) if base[a] == base[b]} - dup
    precision, recall = len(pairs & dup) / max(1, len(pairs)), len(pairs & dup) / len(dup)
    exact = {(a, b) for a, b in dup if "exact" in truth["transform"].iloc[b]}
    assert exact and exact <= pairs  # exact-duplicate recall 1.0
    assert len(pairs & colourway) <= 1
    kind = {(a, b): truth["transform"].iloc[b] for a, b in dup}
    per = {t: len({k for k, v in kind.items() if v == t} & pairs) / max(1, sum(v == t for v in kind.values())) for t in set(kind.values())}
    # measured on this seed (55 duplicate pairs): precision 1.0, recall 0.927 (a brightened light garment
    # clips to white: structure 0.042; a resized copy at tone 0.087; each misses with its group's other
    # member); exact, crop, re-encode 1.0. The 5k/20k figures are in docs/benchmarks/dedupe.md.
    assert precision >= 0.97 and recall >= 0.9, (precision, recall, per)


def test_family_tuning_variant_copies_every_product_and_names_its_traps(tmp_path: Path) -> None:
    """Tuning variant ``family``: colourways and lookalikes get edited copies of their own, colour twins keep the
    cut and turn the main hue 10-25 degrees. A copy pairs as a duplicate with its own product only; against the
    family's other products it is a trap named by the lookalike on either side (a colourway otherwise)."""
    dataset, truth_module = _bench_dataset(), _bench_module("truth")
    truth = pd.read_csv(dataset.build(tmp_path / "set", 300, None, seed=150, workers=2, variant="family"), keep_default_na=False)
    origin_kind = dict(zip(truth["file"], truth["transform"]))
    copies = truth[truth["origin"] != truth["file"]]
    of_lookalike = copies[copies["origin"].map(origin_kind).str.startswith("lookalike")]
    of_colourway = copies[copies["origin"].str.contains("_c[1-9]", regex=True)]
    assert len(of_lookalike) and len(of_colourway) and (truth["transform"] == "lookalike-colour").any()
    dup, traps = truth_module.truth_pairs(truth)
    row = {f: k for k, f in enumerate(truth["file"])}
    for _, c in of_lookalike.iterrows():
        k, o = row[c["file"]], row[c["origin"]]
        assert dup[(min(k, o), max(k, o))] == c["transform"]
        base = row[c["file"].split("_")[0] + "_c0.jpg"]
        assert traps[(min(k, base), max(k, base))] == origin_kind[c["origin"]]  # the lookalike's kind, not a colourway
    for _, c in of_colourway.iterrows():
        k, base = row[c["file"]], row[c["file"].split("_")[0] + "_c0.jpg"]
        assert traps[(min(k, base), max(k, base))] == "colourway" and (min(k, base), max(k, base)) not in dup
    # a colour twin has the base's outline and a hue turned by less than the >= 40-degree colourways
    twin = truth[truth["transform"] == "lookalike-colour"]["file"].iloc[0]
    with Image.open(tmp_path / "set" / twin) as a, Image.open(tmp_path / "set" / (twin.split("_")[0] + "_c0.jpg")) as b:
        ha, hb = (np.asarray(x.convert("HSV")).astype(np.int16) for x in (a, b))
    inside = (ha[..., 1] > 60) & (hb[..., 1] > 60)
    turn = np.abs((ha[..., 0] - hb[..., 0] + 128) % 256 - 128)[inside]
    assert inside.mean() > 0.05 and 5 <= np.median(turn) <= 25 * 256 / 360 + 2, np.median(turn)


def test_copies_tuning_variant_gives_originals_up_to_four_copies_and_keeps_the_family_products() -> None:
    """Tuning variant ``copies``: ``family``'s products (colour twins, copies of colourways and lookalikes) with far more
    originals that have several copies, so that copies pair up among themselves before they meet their original
    (issue 16, eleventh round)."""
    dataset = _bench_dataset()
    many = dataset.plan(3000, [], 160, "copies")
    family = dataset.plan(3000, [], 160, "family")
    counts = np.bincount([len(j.copies) for j in many], minlength=5)
    assert counts.argmax() == 0 and len(counts) == 5 and counts[4] > 0  # 0-4 copies, most bases none
    assert counts[3:].sum() / len(many) > 0.15 > sum(len(j.copies) >= 3 for j in family) / len(family)
    assert all(j.wide and j.colour_twins and j.variant_copies for j in many)


def _variant_beside_family(tmp_path: Path, variant: str, seed: int, flag: str) -> pd.DataFrame:
    """Tuning variant ``variant`` planned and built (120 images) beside ``family`` at the same seed: its plan is
    ``family``'s with ``flag`` set on every base, and its truth table is ``family``'s row for row. Returns that table;
    the two sets lie in ``tmp_path / variant`` and ``tmp_path / "family"``."""
    dataset = _bench_dataset()
    planned, family = dataset.plan(400, [], seed, variant), dataset.plan(400, [], seed, "family")
    assert [dataclasses.replace(j, **{flag: False}) for j in planned] == family and all(getattr(j, flag) for j in planned)
    a = pd.read_csv(dataset.build(tmp_path / variant, 120, None, seed=seed, workers=1, variant=variant), keep_default_na=False)
    b = pd.read_csv(dataset.build(tmp_path / "family", 120, None, seed=seed, workers=1, variant="family"), keep_default_na=False)
    assert a.equals(b)
    return a


def test_frame_tuning_variant_cuts_half_the_drawn_products_by_three_sides_and_keeps_the_family_draws(tmp_path: Path) -> None:
    """Tuning variant ``frame`` (issue 16, fifteenth round): ``family``'s plan, and about half its drawn bases framed tight,
    every image of such a base cut the same way: the garment runs through the left, right and bottom edges and keeps
    a margin at the top. The other bases are ``family``'s images byte for byte (the framing draws on its own stream)."""
    a = _variant_beside_family(tmp_path, "frame", 180, "framed")
    sides, same = [], 0
    for name in a[a["transform"] == "original"]["file"]:
        with Image.open(tmp_path / "frame" / name) as im:
            garment = (255 - np.asarray(im.convert("RGB")).min(axis=2)) > 60
        sides.append((garment[:3].any(), garment[-3:].any(), garment[:, :3].any(), garment[:, -3:].any()))
        same += (tmp_path / "frame" / name).read_bytes() == (tmp_path / "family" / name).read_bytes()
    cut = [s for s in sides if s[1:] == (True, True, True)]
    assert all(not s[0] for s in cut) and 0.3 < len(cut) / len(sides) < 0.7, sides
    assert same >= len(sides) - len(cut) - 2  # the bases left as they were (a family image may touch a side by itself)


def test_small_tuning_variant_shrinks_only_the_resized_copies_and_keeps_the_family_draws(tmp_path: Path) -> None:
    """Tuning variant ``small`` (issue 16, fifteenth round): ``family``'s plan with every resize (also inside combined
    edits) at 0.22-0.4 of the original instead of 0.5-0.85, mapped from the same draw, so the resized files are the
    only ones that differ and most of them are under the finer look's 256 px short side."""
    a = _variant_beside_family(tmp_path, "small", 190, "small_copies")
    resized = a[a["transform"] == "resize"]
    assert len(resized) >= 3
    for name, origin in zip(resized["file"], resized["origin"]):
        with Image.open(tmp_path / "small" / name) as im, Image.open(tmp_path / "small" / origin) as src:
            ratio = im.size[0] / src.size[0]
        assert 0.215 <= ratio <= 0.405, (name, ratio)
    plain = a[~a["transform"].isin(["resize", "combined"])]
    assert all((tmp_path / "small" / f).read_bytes() == (tmp_path / "family" / f).read_bytes() for f in plain["file"])


def test_workers_decide_what_one_process_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The candidate blocks verified on a pool and the finer look's components cut into small pool tasks give
    the same links (kind, distances, in the same order), groups and looks as one process."""
    import curate.dedupe.confirm as confirm
    import curate.dedupe.core as core

    truth = pd.read_csv(_bench_dataset().build(tmp_path / "set", 240, None, seed=7, workers=2), keep_default_na=False)
    files = [str(tmp_path / "set" / f) for f in truth["file"]]
    thumbs = hash_files(files, "local", 2)
    one = find_duplicates(thumbs, files, workers=1)  # type: ignore[arg-type]
    monkeypatch.setattr(core, "VERIFY_POOL_MIN", 0)  # the pool even for this small set
    monkeypatch.setattr(confirm, "TASK_PAIRS", 2)  # every component of more than two pairs is split
    two = find_duplicates(thumbs, files, workers=2)  # type: ignore[arg-type]
    assert [(k.a, k.b, k.kind, k.distances) for k in two.links] == [(k.a, k.b, k.kind, k.distances) for k in one.links]
    assert two.looks == one.looks and two.candidates == one.candidates and two.fine_refused == one.fine_refused
    # the stages' pair counts are the same work either way (their seconds are what a pool changes)
    assert {k: n for k, (_, n) in two.stages.items()} == {k: n for k, (_, n) in one.stages.items()}
    assert one.stages["verify"][1] == one.candidates and one.stages["look"][1] >= len(one.looks) - one.stages.get("rescue look", (0, 0))[1]
    assert len(one.links) > 20 and sum(k.kind == "near-duplicate" for k in one.links) > 10 and one.looks
    near = [(k.a, k.b) for k in one.links if k.kind == "near-duplicate"]
    assert one.distances_of(near) == [one.distances(a, b) for a, b in near]  # the batch is the pair-by-pair answer


def test_imap_local_keeps_order_and_state() -> None:
    """More items than are ever in flight, on two workers: results in input order, each worker's state set once."""
    from curate.dedupe.engine import imap_local

    out = list(imap_local(_offset_by_state, iter(range(50)), 2, _set_state, (1000,), ahead=2))
    assert out == [1000 + x for x in range(50)]
    assert list(imap_local(_offset_by_state, [1, 2], 1, _set_state, (5,))) == [6, 7]


_STATE: dict[str, int] = {}


def _set_state(offset: int) -> None:
    _STATE["offset"] = offset


def _offset_by_state(x: int) -> int:
    return _STATE["offset"] + x


def test_same_pixels_different_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (240, 180, 3), dtype=np.uint8))
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    img.save(a, compress_level=1)
    img.save(b, compress_level=9)  # the same pixels, other bytes
    changed = np.asarray(img).copy()
    changed[5, 5] = 255 - changed[5, 5]
    Image.fromarray(changed).save(c)  # one pixel differs: not the same pixels
    assert a.read_bytes() != b.read_bytes()
    thumbs = [thumbnail(p) for p in (a, b, c)]
    found = find_duplicates(thumbs, [a, b, c])
    kinds = {(link.a, link.b): link.kind for link in found.links}
    assert kinds[(0, 1)] == "same-pixels"
    assert found.uf.find(2) == found.uf.find(0)  # still a near duplicate, through the looks
    assert all(kind != "same-pixels" for (x, y), kind in kinds.items() if 2 in (x, y))


def test_keep_policy_keeps_the_highest_resolution(ds: Path) -> None:
    run_dedupe(ds, on="humans")
    h = Manifest.load(ds).humans
    for _, g in h[h["dup_group"].notna()].groupby("dup_group"):
        kept = g[g["dup_keep"] == True]  # noqa: E712
        assert len(kept) == 1
        area = g["width"] * g["height"]
        assert (kept["width"] * kept["height"]).iloc[0] == area.max()
        assert (g.loc[g["dup_keep"] == False, "dup_of"] == kept["human_id"].iloc[0]).all()  # noqa: E712


def test_second_run_hashes_nothing_and_is_idempotent(ds: Path) -> None:
    run_dedupe(ds)
    first = Manifest.load(ds).pairs.copy()
    stats, _, _ = run_dedupe(ds)
    assert all(s.hashed == 0 and s.cached == s.rows for s in stats)
    pd.testing.assert_frame_equal(first, Manifest.load(ds).pairs)


def test_cache_rehashes_only_changed_files_and_ignores_other_versions(ds: Path, tmp_path: Path) -> None:
    run_dedupe(ds, on="articles")
    m = Manifest.load(ds)
    moved = tmp_path / "copy.jpg"
    shutil.copy(m.resolve(m.articles["path"].iloc[3]), moved)  # the source itself is never touched
    m.articles.loc[3, "path"] = str(moved)
    m.save("articles")
    stats, _, _ = run_dedupe(ds, on="articles")
    assert stats[0].hashed == 1
    cache = ds / "cache" / "dedupe-articles.parquet"
    df = pd.read_parquet(cache)
    assert (df["version"] == FEATURE_VERSION).all()
    df["version"] = "an-older-feature-version"
    df.to_parquet(cache)
    stats, _, _ = run_dedupe(ds, on="articles")
    assert stats[0].hashed == stats[0].rows


def test_unreadable_image_is_reported_not_fatal(ds: Path, tmp_path: Path) -> None:
    m = Manifest.load(ds)
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    m.humans.loc[0, "path"] = str(bad)  # an absolute path resolves to itself
    m.humans.loc[1, "path"] = str(tmp_path / "gone.jpg")
    m.save("humans")
    stats, _, report = run_dedupe(ds, on="humans")
    assert stats[0].unreadable == 2
    h = Manifest.load(ds).humans
    assert pd.isna(h.loc[0, "dup_keep"]) and pd.isna(h.loc[1, "dup_keep"])
    text = report.read_text()
    assert "unreadable" in text and "missing at dedupe time" in text


def test_ray_engine_gives_the_local_result(ds: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    local = tmp_path / "local"
    shutil.copytree(ds, local)
    run_dedupe(local, on="articles", workers=2)
    stats, _, _ = run_dedupe(ds, on="articles", workers=2, engine="ray")
    assert stats[0].hashed == stats[0].rows
    cols = ["dup_group", "dup_keep", "dup_of", "dup_reason", "dup_distance"]
    pd.testing.assert_frame_equal(Manifest.load(local).articles[cols], Manifest.load(ds).articles[cols])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"broken")
    out = hash_files([str(bad), Manifest.load(ds).resolve(Manifest.load(ds).articles["path"].iloc[0]).as_posix()], "ray", 2)
    assert isinstance(out[0], str) and isinstance(out[1], Thumb)


def test_cli_passes_the_tone_curve_knobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-tone-curve, --tonal-contrast and --local-colour-threshold reach the Thresholds the run uses; the
    other fields keep their defaults."""
    from typer.testing import CliRunner

    import curate.dedupe.command as command
    from curate.cli import app
    from curate.dedupe.verify import Thresholds

    seen: list[Thresholds] = []

    def fake_run(ds, on, thresholds, workers, engine, search_hash):  # noqa: ANN001, ANN202
        seen.append(thresholds)
        return [], 0, tmp_path / "report.html"

    monkeypatch.setattr(command, "run_dedupe", fake_run)
    runner = CliRunner()
    assert runner.invoke(app, ["dedupe", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--no-tone-curve", "--tonal-contrast", "0.2",
                               "--local-colour-threshold", "0.1"]).exit_code == 0
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--no-fine-check", "--fine-shape-threshold", "0.1",
                               "--fine-hue-threshold", "0.01", "--fine-hue-region-threshold", "0.02", "--fine-edge-threshold", "inf"]).exit_code == 0
    assert seen[0] == Thresholds()
    assert seen[1] == Thresholds(tonal=False, tonal_contrast=0.2, local=0.1)
    assert seen[2] == Thresholds(fine=False, fine_shape=0.1, fine_hue=0.01, fine_hue_region=0.02, fine_edge=float("inf"))
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--no-fine-photo-check", "--fine-photo-hue-threshold", "0.05"]).exit_code == 0
    assert seen[3] == Thresholds(fine_photos=False, fine_photo_hue=0.05)
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--no-fine-curve", "--fine-tone-threshold", "0.03", "--tonal-gamma", "0.2"]).exit_code == 0
    assert seen[4] == Thresholds(fine_curve=False, fine_tone=0.03, tonal_gamma=0.2)
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--no-fine-rescue", "--fine-photo-changed-threshold", "0.02",
                               "--fine-rescue-shift", "0.12"]).exit_code == 0
    assert seen[5] == Thresholds(fine_rescue=False, fine_photo_far=0.02, fine_rescue_shift=0.12)
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--fine-changed-threshold", "0.1"]).exit_code == 0
    assert seen[6] == Thresholds(fine_far=0.1)
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--no-curve-bridges"]).exit_code == 0
    assert seen[7] == Thresholds(curve_bridges=False)
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--bridge-agreement", "0.75"]).exit_code == 0
    assert seen[8] == Thresholds(bridge_agreement=0.75)
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--bridge-agreement", "1.5"]).exit_code != 0  # a share
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--link-agreement", "0"]).exit_code == 0
    assert seen[9] == Thresholds(link_agreement=0.0)
    assert len(seen) == 10
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--fine-saturation-jump", "inf"]).exit_code == 0
    assert seen[-1] == Thresholds(fine_saturation_jump=float("inf"))
    assert runner.invoke(app, ["dedupe", str(tmp_path), "--fine-joint-levels"]).exit_code == 0
    assert seen[-1] == Thresholds(fine_joint_levels=True)


def test_unknown_engine_and_table_are_refused(ds: Path) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    result = CliRunner().invoke(app, ["dedupe", str(ds), "--engine", "spark"])
    assert result.exit_code == 2 and "local, ray" in result.output
    with pytest.raises(ValueError, match="articles, humans, pairs, all"):
        run_dedupe(ds, on="shoes")


@pytest.mark.parametrize(("radius", "chunks"), [(0, None), (3, 4), (8, None), (8, 3), (9, 2), (12, 5)])
def test_multi_index_search_is_exact(radius: int, chunks: int | None) -> None:
    rng = random.Random(radius * 10 + (chunks or 0))
    base = [rng.getrandbits(64) for _ in range(400)]
    near = [h ^ sum(1 << b for b in rng.sample(range(64), rng.randint(0, radius + 2))) for h in base[:120]]
    hashes = np.asarray(base + near + base[:5], dtype=np.uint64)  # with exact repeats
    found: list[tuple[int, int]] = []
    for i, j, d in pairs_within(hashes, radius, chunks=chunks, block=257):  # small blocks: the streaming path
        assert (i < j).all() and (d <= radius).all()
        found += list(zip(i.tolist(), j.tolist()))
    assert len(found) == len(set(found)), "a pair came out twice"
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    brute = {(i, j) for i, j in zip(*np.nonzero(np.triu(dist <= radius, 1)))}
    assert set(found) == brute and len(brute) >= 5


def test_candidate_pairs_use_inner_views_but_not_inner_against_inner() -> None:
    h = np.array([[0b0, 0xFFFF], [0xFFFF << 40, 0xFFFF], [0xFFFF << 20, 0xFFFF << 40]], dtype=np.uint64)
    pairs = {(int(a), int(b)) for ia, ib in candidate_pairs(h, 2) for a, b in zip(ia, ib)}
    # 0 and 1 meet only inner-inner (skipped); 1 (full) meets 2 (inner); 0 meets nobody
    assert pairs == {(1, 2)}


def test_report_draws_images_large_and_least_certain_groups_first(ds: Path) -> None:
    """Issue 16: each group's images at a judging size (256 px long side), with their distances, and the
    groups ordered by certainty (1 - the largest distance / its threshold), least certain first."""
    import base64
    import io
    import re

    _, _, report = run_dedupe(ds, on="articles")
    text = report.read_text()
    certainty = [float(x) for x in re.findall(r"certainty<br><b>(-?[0-9.]+)</b>", text)]
    assert len(certainty) >= 5 and certainty == sorted(certainty), certainty
    assert certainty[0] < 1.0 and certainty[-1] == 1.0  # near duplicates first, byte copies (certain) last
    first_group = text[text.index("certainty<br><b>"):].split("<div class='g'>")[0]
    assert "tone" in first_group and "structure" in first_group  # the distances of the least certain group
    sides = []
    for b64 in re.findall(r"base64,([A-Za-z0-9+/=]+)'", text)[:10]:
        with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
            sides.append(max(im.size))
    # the synth images are 256x192 (resized copies smaller): drawn at full size, never shrunk below it
    assert sides and all(s <= 256 for s in sides) and sum(s == 256 for s in sides) >= 0.7 * len(sides), sides


def _product_files(tmp_path: Path) -> list[Path]:
    """A saturated product from the tuning generator, a contrast-edited copy (x0.9, PIL's enhancer), a
    darker colourway of the same cut (value -0.4) and a hue colourway (+120 degrees)."""
    import dataclasses as dc

    from PIL import ImageEnhance

    dataset = _bench_dataset()
    cut = dataset.random_cut(np.random.default_rng(3))
    cut = dc.replace(cut, pattern="solid", colours=((0.0, 0.85, 0.8), *cut.colours[1:]))
    darker = dc.replace(cut, colours=((0.0, 0.85, 0.4), *cut.colours[1:]))
    hue = dc.replace(cut, colours=((1 / 3, 0.85, 0.8), *cut.colours[1:]))
    original = Image.fromarray(dataset.draw_product(cut))
    images = [original, ImageEnhance.Contrast(original).enhance(0.9), Image.fromarray(dataset.draw_product(darker)),
              Image.fromarray(dataset.draw_product(hue))]
    paths = [tmp_path / f"{k}.jpg" for k in ("original", "contrast", "darker", "hue")]
    for im, p in zip(images, paths):
        im.save(p, quality=92)
    return paths


def test_tone_curve_keeps_the_contrast_copy_and_splits_both_colourways(tmp_path: Path) -> None:
    """PIL's x0.9 contrast blends a saturated red product on white towards the image's light mean grey: its
    colour moves further (shift 0.100, contrast change 0.153) than the darker colourway's (0.054, 0.224), so
    no threshold on those two distances keeps the copy and splits the colourway. One global tone curve
    (Thresholds.tonal, the default) explains the copy (tone 0.034, shift 0.015 after it) and not the darker
    colourway (0.155, 0.142: the product darkens, its white background does not): the copy joins, both colourways stay apart.
    Without the curve (tonal=False) the old knob decides: colour_tolerance 0 keeps all apart, 0.6 merges the
    copy and, with it, the darker colourway; the hue colourway stays apart every way."""
    from curate.dedupe.verify import VIEW_PAIRS, Thresholds, distances, tonal_alignment

    paths = _product_files(tmp_path)
    thumbs = [thumbnail(p) for p in paths]
    found = find_duplicates(thumbs, paths, Thresholds())
    assert found.groups(range(4)) == [[0, 1]]
    d = distances(found.views, np.array([0, 0, 0]), np.array([1, 2, 3]))
    assert d.shift[0] > d.shift[1] > Thresholds().shift, (d.row(0), d.row(1))  # the copy is the further in colour
    assert d.contrast[0] < d.contrast[1] <= Thresholds().contrast_range, (d.row(0), d.row(1))
    views_ = np.asarray(VIEW_PAIRS)[d.view]
    tone, shift, _ = tonal_alignment(found.views, np.array([0, 0, 0]), np.array([1, 2, 3]), views_[:, 0], views_[:, 1], Thresholds())
    assert tone[0] <= Thresholds().tone and shift[0] <= Thresholds().tonal_shift, (tone, shift)  # the curve explains the copy ...
    assert tone[1] > 1.5 * Thresholds().tone and shift[1] > 5 * Thresholds().tonal_shift, (tone, shift)  # ... not the darker one
    assert not np.isfinite(tone[2])  # no curve within the bounds for a hue turn
    strict = find_duplicates(thumbs, paths, Thresholds(tonal=False))
    assert strict.groups(range(4)) == []
    tolerant = find_duplicates(thumbs, paths, Thresholds(tonal=False, colour_tolerance=0.6))
    assert tolerant.groups(range(4)) == [[0, 1, 2]]
    assert tolerant.uf.find(3) == 3


def _thumb(garment: tuple[float, float, float], background: float = 245.0, emblem: tuple[float, float, float] | None = None) -> np.ndarray:
    """A 32x32 content thumbnail: a shaded garment (a body and sleeves) on a light background, optionally with
    a 4x4 emblem on the chest."""
    img = np.full((32, 32, 3), background, np.float32)
    shade = np.linspace(0.8, 1.1, 32)[None, :, None]
    body = np.zeros((32, 32), bool)
    body[4:30, 9:23] = True
    body[4:12, 3:29] = True
    img[body] = np.broadcast_to(np.array(garment, np.float32) * shade, (32, 32, 3))[body]
    if emblem is not None:
        img[14:18, 14:18] = emblem
    return np.clip(img, 0, 255)


def _edit(img: np.ndarray, kind: str, f: float) -> np.ndarray:
    x = img.astype(np.float32)
    if kind == "brightness":
        x = x * f
    elif kind == "contrast":  # about the image mean, every channel alike (PIL's and OpenCV-style edits)
        x = x.mean() + (x - x.mean()) * f
    elif kind == "gamma":
        x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** f
    return np.clip(x, 0, 255)


def _decide(a: np.ndarray, b: np.ndarray, th=None) -> bool:  # noqa: ANN001
    from curate.dedupe.verify import Thresholds, verify, views

    arr = np.round(np.stack([a, b])).astype(np.uint8)
    v = views(arr, np.zeros((2, 2, 8, 8), np.float32), np.ones(2))
    accepted, _ = verify(v, np.array([0]), np.array([1]), th or Thresholds())
    return bool(accepted[0])


@pytest.mark.parametrize("edits", [[("brightness", 0.75)], [("brightness", 1.25)], [("contrast", 0.75)], [("contrast", 1.25)],
                                   [("gamma", 0.8)], [("gamma", 1.25)], [("contrast", 1.2), ("gamma", 0.8)],
                                   [("brightness", 0.8), ("contrast", 0.8)], [("gamma", 1.2), ("brightness", 1.15)]])
@pytest.mark.parametrize("garment", [(200.0, 40.0, 40.0), (40.0, 90.0, 170.0), (120.0, 120.0, 120.0)])
def test_tonal_edits_within_the_range_are_duplicates(edits: list[tuple[str, float]], garment: tuple[float, float, float]) -> None:
    """Brightness, contrast about the mean and gamma over 0.75-1.25, alone and chained, on saturated and grey
    products: one tone curve explains each, so the copy is accepted (the log-tone check alone refuses most)."""
    from curate.dedupe.verify import Thresholds

    original = _thumb(garment)
    copy = original
    for kind, f in edits:
        copy = _edit(copy, kind, f)
    assert _decide(original, copy), edits
    assert _decide(copy, original), edits  # either order
    if edits in ([("contrast", 0.75)], [("gamma", 1.25)]) and garment[0] != garment[1]:
        assert not _decide(original, copy, Thresholds(tonal=False))  # what the curve adds


def test_colourways_and_recoloured_prints_stay_apart() -> None:
    """A hue colourway (channels swapped), a lightness colourway (the product's value x0.55, its background
    unchanged) and the same product whose 4x4 emblem turned from red to green are other products; a grey
    watermark-like patch on the same spot is not (it moves the colour towards grey, it does not turn it)."""
    from curate.dedupe.verify import Thresholds

    red = (200.0, 40.0, 40.0)
    original = _thumb(red, emblem=(30.0, 30.0, 200.0))
    assert not _decide(original, _thumb((40.0, 40.0, 200.0), emblem=(30.0, 30.0, 200.0)))
    assert not _decide(original, _thumb(tuple(0.55 * c for c in red), emblem=(30.0, 30.0, 200.0)))
    recoloured = _thumb(red, emblem=(30.0, 200.0, 30.0))
    assert not _decide(original, recoloured)
    # the local colour check is what splits them: the emblem moves the mean colour by about the threshold
    assert _decide(original, recoloured, Thresholds(local=1.0, shift=0.03))
    greyed = original.copy()
    greyed[14:18, 14:18] = 0.5 * greyed[14:18, 14:18] + 0.5 * 160.0
    assert _decide(original, greyed)


def test_tone_curve_links_join_two_groups_only_when_most_cross_pairs_agree() -> None:
    """A tone-curve link brings a single image into a group; it joins two groups only when ``bridge_agreement`` of the
    pairs across them are links that stood (one bridge between two products of one cut in two shades would merge both
    products' whole groups). Here a contrast copy that has a copy of its own pairs up first and then meets its
    original's group: every cross pair agrees, so they join; --no-curve-bridges (curve_bridges=False) keeps them
    apart, as before."""
    from curate.dedupe.verify import Thresholds

    found_groups = lambda t: sorted(find_duplicates(t, [f"{k}.jpg" for k in range(5)]).groups(range(5)))  # noqa: E731
    rng = np.random.default_rng(0)
    a = _thumb((200.0, 40.0, 40.0))
    noisy = lambda img: np.clip(img + rng.normal(0, 1.0, img.shape), 0, 255)  # noqa: E731 - a re-encode's noise
    images = [a, noisy(a), _edit(a, "contrast", 0.75), None, _edit(a, "gamma", 1.25)]
    images[3] = noisy(images[2])
    thumbs = [Thumb(np.round(img).astype(np.uint8).tobytes(), np.zeros((2, 8, 8), np.float16).tobytes(), 768, 1024, True,
                    f"sha{k}", 0.75) for k, img in enumerate(images)]
    found = find_duplicates(thumbs, [f"{k}.jpg" for k in range(5)])
    assert sorted(found.groups(range(5))) == [[0, 1, 2, 3, 4]]
    apart = find_duplicates(thumbs, [f"{k}.jpg" for k in range(5)], Thresholds(curve_bridges=False))
    assert sorted(apart.groups(range(5))) == [[0, 1, 4], [2, 3]]
    # bridge_agreement is a share of the cross pairs: with a x1.2 brightened copy in place of the gamma copy, 4 of the
    # 6 pairs across {0, 1, 4} and {2, 3} stand - enough at 0.6, not at the default 0.75 nor at 1.0
    bright = list(thumbs)
    bright[4] = Thumb(np.round(_edit(a, "brightness", 1.2)).astype(np.uint8).tobytes(), thumbs[4].detail, 768, 1024, True, "sha4", 0.75)
    for share, expected in ((1.0, [[0, 1, 4], [2, 3]]), (Thresholds().bridge_agreement, [[0, 1, 4], [2, 3]]), (0.6, [[0, 1, 2, 3, 4]])):
        got = sorted(find_duplicates(bright, [f"{k}.jpg" for k in range(5)], Thresholds(bridge_agreement=share)).groups(range(5)))
        assert got == expected, (share, got)
    # a cross pair that does not stand keeps the bridge shut: the copy of the contrast copy made another colour
    images[3] = np.clip(images[2] * np.array([0.7, 1.0, 1.3]), 0, 255)
    thumbs[3] = Thumb(np.round(images[3]).astype(np.uint8).tobytes(), thumbs[3].detail, 768, 1024, True, "sha3", 0.75)
    assert [0, 1, 2, 3, 4] not in found_groups(thumbs)


def test_a_link_between_two_groups_joins_them_only_when_enough_cross_pairs_agree() -> None:
    """Single linkage merges two products' whole groups through one false link. Here a red product (0) and a copy a
    little more orange (2), and another product further along (3) with its own copy (1): each step moves the colour
    shift by less than ``Thresholds.shift``, two steps by more. The strong links form {0, 2} and {1, 3} first (links are
    taken most certain first), and the weaker 2-3 link would join them; of the four pairs across, only 2-3 stands.
    link_agreement 0 (single linkage, the default) and 0.25 join them; 0.5 keeps them apart. The tone curve is off so
    that the two-step pairs are plainly refused rather than left to the curve's allowance."""
    from curate.dedupe.verify import Thresholds

    # red turned towards green by 0, 13, 4 and 9 levels (~0.0028 of colour shift a level; Thresholds.shift is 0.016):
    # 0-2 and 3-1 are 4 levels apart, 2-3 five, every other pair nine or more
    thumbs = [Thumb(np.round(_thumb((200.0 - s, 40.0 + s, 40.0))).astype(np.uint8).tobytes(), np.zeros((2, 8, 8), np.float16).tobytes(),
                    768, 1024, True, f"sha{k}", 0.75) for k, s in enumerate((0, 13, 4, 9))]
    paths = [f"{k}.jpg" for k in range(4)]
    found = find_duplicates(thumbs, paths, Thresholds(tonal=False, link_agreement=0.0))
    assert {(min(link.a, link.b), max(link.a, link.b)) for link in found.links} == {(0, 2), (1, 3), (2, 3)}
    for share, expected in ((Thresholds().link_agreement, [[0, 1, 2, 3]]), (0.25, [[0, 1, 2, 3]]), (0.5, [[0, 2], [1, 3]]),
                            (1.0, [[0, 2], [1, 3]])):
        got = sorted(find_duplicates(thumbs, paths, Thresholds(tonal=False, link_agreement=share)).groups(range(4)))
        assert got == expected, (share, got)


def test_fine_look_keeps_a_pale_block_a_brightened_copy_pushes_under_the_median_level(tmp_path: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A green top with a pale pink lower block, and the same brightened x1.3: at the median level (half-way to the
    green) the pink block is in the original's silhouette and out of the copy's, so their outlines disagree; at the
    lower level (LIGHT_QUANTILE) both keep it and the look finds one outline. Without the lower level (its quantile
    set to the median's) the copy is refused on shape, unless the original is taken again at the level the copy's
    brightening maps (confirm._brightened_pair, issue 16's sixteenth round: the copy's background is white, so the
    model applies and the block is in both there too) or, with ``fine_joint_levels`` on, both at the lower of
    confirm.JOINT_LEVELS (the same round)."""
    import curate.dedupe.confirm as confirm
    from curate.dedupe.verify import Thresholds

    img = np.full((1024, 768, 3), 255, np.uint8)
    img[100:500, 200:568] = (40, 160, 80)
    img[500:700, 200:568] = (200, 130, 200)
    original, brighter = tmp_path / "a.jpg", tmp_path / "b.jpg"
    Image.fromarray(img).save(original, quality=95)
    Image.fromarray(np.clip(img.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)).save(brighter, quality=95)
    limit = Thresholds().fine_shape
    shape = confirm.compare(confirm.fine_view(original.read_bytes()), confirm.fine_view(brighter.read_bytes()))[0]
    assert shape <= limit
    monkeypatch.setattr(confirm, "LIGHT_QUANTILE", 0.5)
    shape = confirm.compare(confirm.fine_view(original.read_bytes()), confirm.fine_view(brighter.read_bytes()))[0]
    assert shape <= limit  # the brightening's level
    monkeypatch.setattr(confirm, "_brightened_pair", lambda fa, fb: None)
    shape = confirm.compare(confirm.fine_view(original.read_bytes()), confirm.fine_view(brighter.read_bytes()), Thresholds(fine_joint_levels=True))[0]
    assert shape <= limit  # the joint levels
    shape = confirm.compare(confirm.fine_view(original.read_bytes()), confirm.fine_view(brighter.read_bytes()))[0]
    assert shape > limit


def test_tonal_contrast_is_the_lightness_knob() -> None:
    """The conflict: a grey product on a light background darkened while its background stays is what a
    contrast or gamma edit does too, and no image measure tells them apart. The default decides by how far
    the contrast moved: up to what one 0.7-1.3 contrast edit about a light image's mean grey can do (|log contrast
    ratio| <= 0.6, Thresholds.tonal_contrast; 0.45 before the eighth change of issue 16) it is the same product (x0.7:
    contrast 0.43, x0.6: 0.55), beyond it another (x0.47). --tonal-contrast moves the line both ways; a true
    contrast copy joins at the default."""
    from curate.dedupe.verify import Thresholds

    grey = _thumb((150.0, 150.0, 150.0), background=250.0)
    darker, darkest = _thumb((105.0, 105.0, 105.0), background=250.0), _thumb((70.0, 70.0, 70.0), background=250.0)
    assert _decide(grey, darker) and not _decide(grey, darker, Thresholds(tonal_contrast=0.3))
    shade = _thumb((90.0, 90.0, 90.0), background=250.0)  # x0.6: joined at the default, apart at the old 0.45
    assert _decide(grey, shade) and not _decide(grey, shade, Thresholds(tonal_contrast=0.45))
    assert not _decide(grey, darkest) and _decide(grey, darkest, Thresholds(tonal_contrast=1.0))
    assert _decide(grey, _edit(grey, "contrast", 1.2))


def test_hash_option_runs_imagehash_phash_and_dhash(ds: Path, synth256: tuple[Path, Path]) -> None:
    """--hash phash|dhash: imagehash's hash of each file drives the candidate search; verification,
    grouping, manifest columns and report are the same, so exact copies are still all found and no
    colourway is merged."""
    imagehash = pytest.importorskip("imagehash")  # the tryon-bench[hashes] extra

    from curate.dedupe.features import imagehash_of

    m = Manifest.load(ds)
    path = m.resolve(m.articles["path"].iloc[0])
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
        assert imagehash_of(rgb, "phash") == int(str(imagehash.phash(im)), 16)  # the same library value
    for kind in ("phash", "dhash"):
        stats, pair_dups, report = run_dedupe(ds, workers=2, search_hash=kind)
        p = _scored(ds, synth256[0])
        exact = p[p["case"] == "exact-duplicate"]
        assert exact["marked"].all()
        assert not p[p["colourway_of"] != ""]["marked"].any()
        assert all(s.hashed == s.rows for s in stats)  # the cache had no imagehash hash of this kind yet
        assert "certainty" in report.read_text()
    from typer.testing import CliRunner

    from curate.cli import app

    result = CliRunner().invoke(app, ["dedupe", str(ds), "--hash", "ahash"])
    assert result.exit_code == 2 and "ours, phash, dhash" in result.output


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth photo-like RGB image (gradients and blobs), so a reduced decode is comparable to a full one."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([128 + 100 * np.sin(6 * x + c + 3 * rng.uniform()) * np.cos(4 * y + 2 * c) for c in range(3)], axis=2)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_report_images_decode_reduced_but_look_like_a_full_decode(tmp_path: Path) -> None:
    """Speed (issue 16): the report draws each image from a libjpeg-reduced decode (1/4 for a 1024x768 JPEG)
    instead of PIL's full decode. Against the old way (full decode, PIL thumbnail into 192x256) on JPEG and
    PNG, landscape and portrait: the same size and within 3 grey levels on average; an EXIF-rotated file is
    drawn upright (the old way ignored the tag); a file that is not an image is left blank."""
    import base64
    import io

    from curate.dedupe.command import REPORT_SIDE, _thumb

    def old_way(path: Path) -> np.ndarray:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((REPORT_SIDE * 3 // 4, REPORT_SIDE))
            return np.asarray(im)

    def drawn(path: Path) -> np.ndarray:
        with Image.open(io.BytesIO(base64.b64decode(_thumb(path)))) as im:
            return np.asarray(im.convert("RGB"))

    rng = np.random.default_rng(3)
    for h, w, fmt in ((768, 1024, "JPEG"), (1024, 768, "JPEG"), (600, 800, "PNG"), (512, 683, "JPEG"), (150, 120, "JPEG")):
        path = tmp_path / f"{h}x{w}.{fmt.lower()}"
        Image.fromarray(_photo(rng, h, w)).save(path, fmt, quality=90)
        new, old = drawn(path), old_way(path)
        assert new.shape == old.shape, (path.name, new.shape, old.shape)
        assert np.abs(new.astype(int) - old.astype(int)).mean() < 3.0, path.name
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown turned by 90 degrees
    Image.fromarray(_photo(rng, 768, 1024)).save(rotated, "JPEG", quality=90, exif=exif)
    assert drawn(rotated).shape == (256, 192, 3)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    assert _thumb(tmp_path / "bad.jpg") == ""


def test_pool_hashing_equals_one_process(tmp_path: Path) -> None:
    """The local pool (more than 2 shards of files, so it really forks) returns, in order, exactly what one
    process computes: every Thumb field bit for bit, and the reason for a file that is not an image."""
    rng = np.random.default_rng(4)
    files = []
    for k in range(140):
        path = tmp_path / f"{k:03d}.{'png' if k % 10 == 0 else 'jpg'}"
        Image.fromarray(_photo(rng, 240, 200 + k % 7)).save(path)
        files.append(str(path))
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    files.insert(70, str(tmp_path / "bad.jpg"))
    one, pool = hash_files(files, "local", 1), hash_files(files, "local", 2)
    assert isinstance(one[70], str) and one[70] == pool[70]
    assert [t.record() if isinstance(t, Thumb) else t for t in one] == [t.record() if isinstance(t, Thumb) else t for t in pool]


def test_one_blas_thread_gives_the_same_views() -> None:
    """find_duplicates builds its arrays with BLAS on one thread (faster on a busy machine): the hashes and
    every per-view array are the same bits as with BLAS's own thread count."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import dataclasses as dc

    from curate.dedupe.core import one_blas_thread
    from curate.dedupe.verify import views

    rng = np.random.default_rng(5)
    thumbs = np.stack([_photo(rng, 32, 32) for _ in range(600)])
    detail = rng.random((600, 2, 8, 8)).astype(np.float32)
    aspect = rng.uniform(0.5, 2.0, 600)
    with threadpoolctl.threadpool_limits(2, "blas"):
        two = views(thumbs, detail, aspect)
    with one_blas_thread():
        assert all(info["num_threads"] == 1 for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas")
        one = views(thumbs, detail, aspect)
    for f in dc.fields(two):
        assert np.array_equal(getattr(one, f.name), getattr(two, f.name)), f.name


def test_content_box_foreground_mask_equals_the_three_plane_one() -> None:
    """Speed (issue 16): the content box's foreground mask is one absdiff + inRange over the interleaved
    image instead of three per-channel absdiffs and their maxima. Against that old mask, on products on
    white, grey and black, a product touching the border, a photo, and channels exactly FOREGROUND and one
    more off the background (the threshold's edge): the same pixels, the same components, the same box."""
    import cv2

    from curate.dedupe import features

    def old_mask(rgb: np.ndarray, bg: np.ndarray) -> np.ndarray:  # the code before the change
        d = [cv2.absdiff(rgb[..., c], int(bg[c])) for c in range(3)]
        return (np.maximum(np.maximum(d[0], d[1]), d[2]) > features.FOREGROUND).astype(np.uint8)

    rng = np.random.default_rng(6)
    images = []
    for bg in (255, 236, 128, 0):
        img = np.full((128, 96, 3), bg, np.uint8)
        img[20:100, 15:80] = _photo(rng, 80, 65)
        img[110:114, 5:60] = np.clip(bg + rng.integers(-60, 60, 3), 0, 255)  # a thin watermark line
        images.append(img)
    edge = np.full((96, 96, 3), 200, np.uint8)
    edge[30:60, 30:60] = (200 + features.FOREGROUND, 200, 200 - features.FOREGROUND)  # exactly at the threshold: background
    edge[40:50, 40:50, 1] = 200 + features.FOREGROUND + 1  # one over it: foreground
    images.append(edge)
    touching = np.full((96, 128, 3), 250, np.uint8)
    touching[10:96, 0:70] = _photo(rng, 86, 70)
    images += [touching, _photo(rng, 120, 90)]
    for img in images:
        ring = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3), img[:, :2].reshape(-1, 3), img[:, -2:].reshape(-1, 3)])
        bg = np.median(ring, axis=0).astype(np.int16)
        old, new = old_mask(img, bg), features._foreground(img, bg)
        assert np.array_equal(old > 0, new > 0)
        assert np.array_equal(cv2.connectedComponentsWithStats(old, connectivity=8)[2], cv2.connectedComponentsWithStats(new, connectivity=8)[2])
    boxes = [features._content_box(img) for img in images]
    assert boxes[4] == (40, 50, 40, 50) and boxes[-1] is None and all(b is not None for b in boxes[:4])


def _lookalike_files(tmp_path: Path) -> list[Path]:
    """A tee from the tuning generator at 1024x768 and five copies (resized to 0.6, cropped into the canvas,
    brightness x0.8, contrast x1.2, re-encoded at quality 70); its near twin (the sleeve 0.15 of its range,
    2.3 % of the height, longer); the same tee with a printed emblem, that print with the emblem's colours turned
    by 90 degrees, and a resized copy of the print."""
    import dataclasses as dc

    from PIL import ImageEnhance

    dataset = _bench_dataset()
    cut = dc.replace(dataset.random_cut(np.random.default_rng(0)), kind="tee", pattern="solid")
    params = list(cut.params)
    params[6] = params[6] + 0.15 if params[6] < 0.85 else params[6] - 0.15
    ring, bar = ((c[0], max(c[1], 0.6), max(c[2], 0.5)) for c in cut.colours[1:])
    printed = dc.replace(cut, pattern="print", pattern_params=(0.5, 0.5, 0.5, 0.5, 0.4, 0.6), colours=(cut.colours[0], ring, bar))
    recoloured = dc.replace(printed, colours=(cut.colours[0], ((ring[0] + 0.25) % 1, *ring[1:]), ((bar[0] + 0.25) % 1, *bar[1:])))

    def big(c):  # noqa: ANN001, ANN202 - drawn at 512x384 and saved at 1024x768, as the generator does
        return Image.fromarray(dataset.draw_product(c)).resize((768, 1024), Image.BICUBIC)

    original = big(cut)
    images = [(original, 92), (original.resize((461, 614), Image.LANCZOS), 92), (original.crop((20, 30, 750, 1000)), 92),
              (ImageEnhance.Brightness(original).enhance(0.8), 92), (ImageEnhance.Contrast(original).enhance(1.2), 92),
              (original, 70), (big(dc.replace(cut, params=tuple(params))), 92), (big(printed), 92), (big(recoloured), 92),
              (big(printed).resize((600, 800), Image.LANCZOS), 92)]
    paths = []
    for k, (im, quality) in enumerate(images):
        paths.append(tmp_path / f"{k}.jpg")
        im.save(paths[-1], quality=quality)
    return paths


def test_fine_look_refuses_a_near_twin_and_a_recoloured_print_and_keeps_copies(tmp_path: Path) -> None:
    """The 32x32 thumbnails merge a tee with its near twin (a sleeve 2.3 % of the height longer); the finer look
    (curate.dedupe.confirm, 256 px) refuses that link: 9 % of the outline moves against 0 % for the five
    copies (resize, crop, brightness, contrast, re-encode). The recoloured emblem turns 8 % of the print's
    pixels, its resized copy none."""
    from curate.dedupe.confirm import compare_pairs
    from curate.dedupe.verify import Thresholds

    paths = _lookalike_files(tmp_path)
    thumbs = [thumbnail(p) for p in paths]
    coarse = find_duplicates(thumbs, paths, Thresholds(fine=False))
    assert [0, 1, 2, 3, 4, 5, 6] in coarse.groups(range(10))  # the twin joins its lookalike's copies
    found = find_duplicates(thumbs, paths, Thresholds())
    assert sorted(found.groups(range(10))) == [[0, 1, 2, 3, 4, 5], [7, 9]]
    assert found.fine_refused >= 1 and found.fine_checked >= found.fine_refused
    shape, hue, tone, tone_shift, _, _, _ = zip(*compare_pairs(paths, [(0, k) for k in range(1, 7)] + [(7, 8), (7, 9)]))  # type: ignore[misc]
    th = Thresholds()
    assert max(shape[:5]) <= th.fine_shape / 3 and shape[5] > 2 * th.fine_shape, shape
    assert hue[6] > 10 * th.fine_hue and max(hue[:5] + hue[7:]) <= th.fine_hue, hue
    assert hue[5] is None and tone[5] is None  # the twin: refused on its outline, nothing more is measured
    # the copies are one tone curve apart (brightness, contrast, re-encoding: identity or close to it)
    assert max(tone[:5]) <= th.fine_tone / 2 and max(tone_shift[:5]) <= th.tonal_shift / 2, (tone, tone_shift)
    linked = {(link.a, link.b): link.distances for link in found.links if link.kind == "near-duplicate"}
    assert any("fine_shape" in d for d in linked.values())  # the report shows what the look measured


def test_fine_look_refuses_a_print_recoloured_under_the_pixel_hue_limit_and_keeps_tone_edited_copies(tmp_path: Path) -> None:
    """A printed tee and the same tee with the emblem's colours turned by 20 degrees only (under HUE_TURN's ~28, so
    no pixel counts as turned): the emblem is still one region turned against the rest, over
    ``fine_hue_region`` of the product, and the pair is refused; with the region test off
    (``fine_hue_region`` 1.0) the thumbnails and every other look join it. The print's copies (resized, gamma
    0.75, brightness x1.3 clipping the light colours, contrast x0.75, PIL's per-channel autocontrast, 0.5 % cut) turn no
    region that far and stay joined."""
    import dataclasses as dc

    from PIL import ImageEnhance, ImageOps

    from curate.dedupe.confirm import compare_pairs
    from curate.dedupe.verify import Thresholds

    dataset = _bench_dataset()
    cut = dc.replace(dataset.random_cut(np.random.default_rng(0)), kind="tee", pattern="solid")
    ring, bar = ((c[0], max(c[1], 0.6), max(c[2], 0.6)) for c in cut.colours[1:])
    printed = dc.replace(cut, pattern="print", pattern_params=(0.5, 0.5, 0.5, 0.5, 0.4, 0.6), colours=(cut.colours[0], ring, bar))
    turn = 20 / 360
    recoloured = dc.replace(printed, colours=(cut.colours[0], ((ring[0] + turn) % 1, *ring[1:]), ((bar[0] + turn) % 1, *bar[1:])))
    original = Image.fromarray(dataset.draw_product(printed)).resize((768, 1024), Image.BICUBIC)
    gamma = Image.fromarray((255.0 * (np.asarray(original) / 255.0) ** 0.75).round().astype(np.uint8))
    images = [original, Image.fromarray(dataset.draw_product(recoloured)).resize((768, 1024), Image.BICUBIC),
              original.resize((461, 614), Image.LANCZOS), gamma, ImageEnhance.Brightness(original).enhance(1.3),
              ImageEnhance.Contrast(original).enhance(0.75), ImageOps.autocontrast(original, cutoff=0.5)]
    paths = []
    for k, im in enumerate(images):
        paths.append(tmp_path / f"{k}.jpg")
        im.save(paths[-1], quality=92)
    th = Thresholds()
    shape, hue, _, _, _, region, _ = zip(*compare_pairs(paths, [(0, k) for k in range(1, 7)]))  # type: ignore[misc]
    assert max(shape) <= th.fine_shape and hue[0] <= th.fine_hue, (shape, hue)  # the older tests see nothing
    assert region[0] > 2 * th.fine_hue_region and max(region[1:]) <= th.fine_hue_region / 2, region
    thumbs = [thumbnail(p) for p in paths]
    assert find_duplicates(thumbs, paths, th).groups(range(7)) == [[0, 2, 3, 4, 5, 6]]
    assert find_duplicates(thumbs, paths, Thresholds(fine_hue_region=1.0)).groups(range(7)) == [[0, 1, 2, 3, 4, 5, 6]]


def test_edge_look_refuses_a_twin_whose_gap_moved_a_pixel_and_keeps_copies(tmp_path: Path) -> None:
    """Trousers and their near twin whose inner gap is 0.1 of its range wider (about 1.5 px a side at 768x1024):
    at FINE_SIDE no outline point moves past the tolerance, so every older test joins them. Located to a fraction
    of a pixel at the file's resolution, the twin's gap edges sit a stretch apart (``fine_edge``), while the
    copies (resized to 0.6, cropped, brightness x0.8, contrast x1.2, gamma 0.8, re-encoded at 70) stay well under
    it; ``fine_edge`` inf joins the twin again."""
    import dataclasses as dc

    from PIL import ImageEnhance

    from curate.dedupe.confirm import compare_pairs
    from curate.dedupe.verify import Thresholds

    dataset = _bench_dataset()
    cut = dc.replace(dataset.random_cut(np.random.default_rng(3)), kind="trousers", pattern="solid")
    params = list(cut.params)
    params[6] = params[6] + 0.1 if params[6] < 0.9 else params[6] - 0.1

    def big(c):  # noqa: ANN001, ANN202 - drawn at 512x384 and saved at 1024x768, as the generator does
        return Image.fromarray(dataset.draw_product(c)).resize((768, 1024), Image.BICUBIC)

    original = big(cut)
    gamma = Image.fromarray((255.0 * (np.asarray(original) / 255.0) ** 0.8).round().astype(np.uint8))
    images = [(original, 92), (big(dc.replace(cut, params=tuple(params))), 92), (original.resize((461, 614), Image.LANCZOS), 92),
              (original.crop((20, 30, 750, 1000)), 92), (ImageEnhance.Brightness(original).enhance(0.8), 92),
              (ImageEnhance.Contrast(original).enhance(1.2), 92), (gamma, 92), (original, 70)]
    paths = []
    for k, (im, quality) in enumerate(images):
        paths.append(tmp_path / f"{k}.jpg")
        im.save(paths[-1], quality=quality)
    th = Thresholds()
    looks = compare_pairs(paths, [(0, k) for k in range(1, 8)])
    shape, edge = [r[0] for r in looks], [r[6] for r in looks]  # type: ignore[index]
    assert max(shape) <= th.fine_shape, shape  # the outline at FINE_SIDE sees nothing
    assert edge[0] > 1.5 * th.fine_edge and max(edge[1:]) <= th.fine_edge / 2, edge
    thumbs = [thumbnail(p) for p in paths]
    assert find_duplicates(thumbs, paths, th).groups(range(8)) == [[0, 2, 3, 4, 5, 6, 7]]
    assert find_duplicates(thumbs, paths, Thresholds(fine_edge=float("inf"))).groups(range(8)) == [list(range(8))]


def test_fine_tone_curve_joins_a_copy_the_thumbnails_fit_missed_and_keeps_a_darker_colourway_apart(tmp_path: Path) -> None:
    """A skirt and its contrast x0.8 copy: the 16x16 tone-curve fit leaves a colour shift of 0.022 (over 0.02),
    so the thumbnails alone refuse the pair; the finer look fits the curve again on the aligned pixels (0.015,
    shift 0.001) and joins it. The same skirt in a darker colourway (value x0.6, background unchanged) stays
    apart either way: no curve within the bounds takes the product there and leaves the background."""
    from PIL import ImageEnhance

    from curate.dedupe.confirm import compare_pairs
    from curate.dedupe.verify import Thresholds

    paths = _copy_and_darker_colourway(tmp_path, 3, lambda im: ImageEnhance.Contrast(im).enhance(0.8))
    thumbs = [thumbnail(p) for p in paths]
    th = Thresholds()
    assert find_duplicates(thumbs, paths, Thresholds(fine_curve=False)).groups(range(3)) == []
    found = find_duplicates(thumbs, paths, th)
    assert found.groups(range(3)) == [[0, 1]]
    (link,) = [link for link in found.links if link.kind == "near-duplicate"]
    assert link.distances["fine_tone"] <= th.fine_tone and link.distances["tonal_shift"] > th.tonal_shift  # type: ignore[index]
    _, _, tone, shift, _, _, _ = compare_pairs(paths, [(0, 2)])[0]  # type: ignore[misc]
    assert tone > th.fine_tone or shift > th.tonal_shift


def test_tone_curve_ignores_values_a_contrast_edit_clipped_at_black(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A saturated purple longsleeve and its PIL contrast x1.2 copy: the edit sends the colour's weak channels to 0,
    and a curve fitted on those clipped values too misses the copy (tone 0.17 on the thumbnails, refused at
    every level); fitted only on the values neither end clipped, the product look's curve holds (tone 0.023) and
    joins it. Its darker colourway (value x0.6) stays apart."""
    from PIL import ImageEnhance

    from curate.dedupe import verify
    from curate.dedupe.verify import Thresholds

    paths = _copy_and_darker_colourway(tmp_path, 14, lambda im: ImageEnhance.Contrast(im).enhance(1.2))
    copy = np.asarray(Image.open(paths[1]))
    assert (copy[200:800, 200:600].min(axis=(0, 1)) <= 3).any()  # the edit clipped a channel at black
    thumbs = [thumbnail(p) for p in paths]
    found = find_duplicates(thumbs, paths, Thresholds())
    assert found.groups(range(3)) == [[0, 1]]
    (link,) = [link for link in found.links if link.kind == "near-duplicate"]
    assert link.distances["tone"] > Thresholds().tone and link.distances["fine_tone"] <= Thresholds().fine_tone  # type: ignore[index]
    monkeypatch.setattr(verify, "BLACK", -1.0)  # every value fits the curve, as before
    assert find_duplicates(thumbs, paths, Thresholds()).groups(range(3)) == []


def test_merged_pixel_fit_equals_the_fit_on_every_pixel_value_and_the_shortcuts_equal_their_references() -> None:
    """The finer look fits its tone curve on the distinct (a, b) pairs of thousands of 8-bit values, each counted as
    often as it occurs: against ``_fit_curve`` on every value (the thumbnails' path, unchanged) the distance and the
    fitted values agree to float32 rounding, on edited copies (a curve through clipped values), colourways (no curve
    in bounds for some gammas) and noise. The histogram median and the 16-bit labelled components equal
    ``np.median`` and OpenCV's 32-bit labels."""
    import cv2

    from curate.dedupe.confirm import _median_of_small
    from curate.dedupe.features import components
    from curate.dedupe.verify import Thresholds, _fit_curve, _fit_merged_curve, unclipped

    rng = np.random.default_rng(16)
    th = Thresholds()
    value = np.arange(256, dtype=np.float32) / np.float32(255.0)
    for case in range(60):
        a = np.clip(rng.normal(rng.uniform(40, 200), rng.uniform(5, 60), 3000 * 3), 0, 255).astype(np.uint8)
        if case % 3 == 0:  # an edited copy: contrast, gamma, clipping, a little noise
            b = np.clip(255 * (a / 255.0) ** rng.uniform(0.75, 1.3) * rng.uniform(0.8, 1.25) + rng.normal(0, 2, a.shape), 0, 255)
        elif case % 3 == 1:  # a channel-wise colourway: no one curve
            b = np.clip(a.reshape(-1, 3)[:, ::-1].ravel() * rng.uniform(0.5, 1.5), 0, 255)
        else:
            b = rng.integers(0, 256, a.shape)
        b = b.astype(np.uint8)
        code = a.astype(np.int64) * 256 + b
        counts = np.bincount(code, minlength=65536)
        distinct = np.flatnonzero(counts)
        assert len(distinct) < len(a)
        pair_of = np.searchsorted(distinct, code)
        y = value[b]
        free = unclipped(y)
        tone, fitted = _fit_curve(value[a][None], y[None], th)
        merged_tone, merged = _fit_merged_curve(value[distinct >> 8][None], value[distinct & 255][None], th, counts[distinct],
                                                (free.sum()[None], (free * y).sum()[None]))
        assert np.isfinite(tone[0]) == np.isfinite(merged_tone[0])
        if np.isfinite(tone[0]):
            np.testing.assert_allclose(merged_tone, tone, rtol=1e-6, atol=0)
            np.testing.assert_allclose(merged[0][pair_of], fitted[0], rtol=0, atol=1e-6)
        assert case % 3 != 0 or np.isfinite(tone[0])  # every edit has a curve in bounds: the comparison covers real fits
        turn = rng.integers(-128, 128, int(rng.integers(1, 5000))).astype(np.int16) // int(rng.integers(1, 40))
        assert _median_of_small(turn, -128, 127) == float(np.median(turn))
        mask = (rng.random((int(rng.integers(20, 400)), int(rng.integers(20, 400)))) < rng.uniform(0.1, 0.7)).astype(np.uint8)
        n, labels, stats = components(mask)
        n32, labels32, stats32, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        assert labels.dtype == np.uint16 and n == n32 and (labels == labels32).all() and (stats == stats32).all()
    # a mask whose 2x2 blocks outnumber 16-bit labels (a long strip's view) is labelled in 32 bits, like OpenCV's default
    checker = np.zeros((600, 600), np.uint8)
    checker[::2, ::2] = 1  # one pixel in each 2x2 block: 90,000 components
    n, labels, stats = components(checker)
    n32, labels32, stats32, _ = cv2.connectedComponentsWithStats(checker, connectivity=8)
    assert labels.dtype == np.int32 and n == n32 > 65536 and (labels == labels32).all() and (stats == stats32).all()


def test_fine_look_refuses_a_block_recoloured_in_lightness_and_keeps_edited_copies(tmp_path: Path) -> None:
    """A colour-block tee whose one block is darker (value x0.6) or lighter (x1.6): the thumbnails and the outline
    accept it (same cut, same hues, a tone distance under 0.08), but after one tone curve a tenth or more of the
    aligned product's values are still changed, where its brightness, contrast and watermarked copies (the text over
    the garment) leave at most half of ``fine_far``: that check refuses the colourways and keeps the copies. (A x1.12
    brightened copy, which clips the light block towards white, is within 0.013 of the lighter colourway and joins
    it: the conflict of docs/benchmarks/dedupe.md, decided for joining.)"""
    import dataclasses as dc

    from PIL import ImageDraw, ImageEnhance, ImageFont

    from curate.dedupe.confirm import compare_pairs
    from curate.dedupe.verify import Thresholds

    dataset = _bench_dataset()
    cut = dc.replace(dataset.random_cut(np.random.default_rng(27)), pattern="colourblock")
    h, s, v = cut.colours[0]

    def big(c):  # noqa: ANN001, ANN202
        return Image.fromarray(dataset.draw_product(c)).resize((768, 1024), Image.BICUBIC)

    original = big(cut)
    marked = original.copy()
    ImageDraw.Draw(marked).text((300, 500), "SAMPLE", fill=(130, 130, 130), font=ImageFont.load_default(size=36))
    images = [original, Image.fromarray(np.clip(np.asarray(original, np.float32) * 0.88, 0, 255).astype(np.uint8)),
              ImageEnhance.Contrast(original).enhance(0.9), marked,
              big(dc.replace(cut, colours=((h, s, v * 0.6), *cut.colours[1:]))), big(dc.replace(cut, colours=((h, s, v * 1.6), *cut.colours[1:])))]
    paths = [tmp_path / f"{k}.jpg" for k in range(len(images))]
    for im, p in zip(images, paths):
        im.save(p, quality=92)
    thumbs = [thumbnail(p) for p in paths]
    th = Thresholds()
    assert find_duplicates(thumbs, paths, dc.replace(th, fine_far=float("inf"))).groups(range(6)) == [[0, 1, 2, 3, 4, 5]]
    found = find_duplicates(thumbs, paths, th)
    assert found.groups(range(6)) == [[0, 1, 2, 3]]
    far = [r[4] for r in compare_pairs(paths, [(0, k) for k in range(1, 6)])]  # type: ignore[index]
    assert max(far[:3]) <= th.fine_far / 2 and min(far[3:]) > 2.5 * th.fine_far, far  # the watermark: 0.011
    assert all("fine_far" in link.distances for link in found.links if link.kind == "near-duplicate")  # type: ignore[operator]


def test_fine_look_judges_only_products_it_can_read(tmp_path: Path) -> None:
    """No look (None: the link stands) for a photo without a plain background, an unreadable file, or a
    silhouette that is mostly inner texture; compare_pairs never raises."""
    from curate.dedupe.confirm import SIMPLE, compare, compare_pairs, fine_view

    rng = np.random.default_rng(1)
    scene = tmp_path / "scene.jpg"
    Image.fromarray(rng.integers(0, 255, (400, 300, 3), dtype=np.uint8)).save(scene)
    textured = np.full((400, 300, 3), 250, np.uint8)
    textured[50:350, 50:250] = np.where(rng.uniform(size=(300, 200, 1)) < 0.5, 30, 250)  # a speckled block
    speckled = tmp_path / "speckled.png"
    Image.fromarray(textured).save(speckled)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert fine_view(scene.read_bytes()) is None
    view = fine_view(speckled.read_bytes())
    assert view is not None and view.simple < SIMPLE and compare(view, view) is None
    product = _lookalike_files(tmp_path)[0]
    assert compare_pairs([product, scene, bad, speckled], [(0, 1), (0, 2), (0, 3)], workers=1) == [None, None, None]


def test_fine_look_gives_the_same_answers_with_a_tiny_view_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chained component larger than the view cache is gone through pair by pair, views recomputed when
    evicted: the answers (in the callers' order) are those of an unbounded cache."""
    import curate.dedupe.confirm as confirm

    paths = _lookalike_files(tmp_path)
    pairs = [(6, 0), (0, 3), (7, 9), (2, 5), (0, 1), (8, 7), (4, 0), (1, 2)]  # one chain and one print family
    full = confirm.compare_pairs(paths, pairs, workers=1)
    assert not confirm._VIEWS  # the views kept across tasks are gone once the call returns (a file may change)
    monkeypatch.setattr(confirm, "VIEW_CACHE", 1)
    assert confirm.compare_pairs(paths, pairs, workers=1) == full
    monkeypatch.setattr(confirm, "VIEW_CACHE", 128)
    monkeypatch.setattr(confirm, "TASK_PAIRS", 1)  # one task per pair: every view after the first from the cache
    assert confirm.compare_pairs(paths, pairs, workers=1) == full
    assert full[0] is not None and full[0][0] > confirm.OUTLINE_TOLERANCE / 100  # the twin still refused


def _garment_turned(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """The street photo with its most common saturated hue (its main garment) turned: an on-model colourway,
    made here independently of the benchmark generators."""
    import cv2

    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)  # hue in 0..179
    saturated = (hsv[..., 1] > 70) & (hsv[..., 2] > 40)
    main = int(np.argmax(np.bincount(hsv[..., 0][saturated] // 10, minlength=18))) * 10 + 5
    garment = saturated & (np.abs((hsv[..., 0].astype(np.int16) - main + 90) % 180 - 90) <= 15)
    hsv[..., 0] = np.where(garment, (hsv[..., 0].astype(np.int16) + int(degrees / 2)) % 180, hsv[..., 0])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _photo_files(tmp_path: Path, real_root: Path) -> list[Path]:
    """A real street photo (no plain background), six edited copies and the same shot with its garment in
    another colour (and that colourway's crop)."""
    from PIL import ImageEnhance

    photo = Image.open(real_root / "ccp-layering" / "photos" / "0018.jpg").convert("RGB")
    w, h = photo.size
    crop = (int(0.03 * w), int(0.04 * h), w - int(0.02 * w), h - int(0.05 * h))
    turned = Image.fromarray(_garment_turned(np.asarray(photo), 20))
    images = [(photo, 92), (photo.crop(crop), 90), (photo.resize((int(0.6 * w), int(0.6 * h)), Image.BILINEAR), 90),
              (ImageEnhance.Brightness(photo).enhance(0.8), 90), (ImageEnhance.Contrast(photo).enhance(1.2), 90),
              (photo.point(lambda x: 255.0 * (x / 255.0) ** 1.2), 90), (photo, 65), (turned, 92), (turned.crop(crop), 90)]
    paths = []
    for k, (im, quality) in enumerate(images):
        paths.append(tmp_path / f"photo{k}.jpg")
        im.save(paths[-1], quality=quality)
    return paths


def test_photo_look_refuses_a_recoloured_garment_and_keeps_copies(tmp_path: Path, real_root: Path) -> None:
    """Two photos (no plain background) are aligned by ORB keypoints and a RANSAC similarity; a copy (crop,
    resize, brightness, contrast, gamma, re-encode) turns no hue there, the same shot with its garment turned
    by 20 degrees (which the thumbnails merge) turns 13 % of it, and that link is refused while the copies stay
    one group."""
    from curate.dedupe.confirm import compare_photo_pairs
    from curate.dedupe.verify import Thresholds

    paths = _photo_files(tmp_path, real_root)
    th = Thresholds()
    hue = compare_photo_pairs(paths, [(0, k) for k in range(1, 9)] + [(7, 8)], workers=1)
    assert all(v is not None for v in hue), hue
    assert max(hue[:6]) <= th.fine_photo_hue / 3 and hue[8] <= th.fine_photo_hue / 3, hue  # copies, colourway's crop
    assert min(hue[6:8]) > 5 * th.fine_photo_hue, hue  # the colourway, and its crop
    thumbs = [thumbnail(p) for p in paths]
    assert not any(t.boxed for t in thumbs)  # the photo look, not the product look
    found = find_duplicates(thumbs, paths, th)
    groups = found.groups(range(9))
    assert [0, 1, 2, 3, 4, 5, 6] in groups and not any(7 in g and 0 in g for g in groups), groups
    looked = [link.distances for link in found.links if link.distances and "fine_photo_hue" in link.distances]
    assert looked  # the report shows what the look measured
    off = find_duplicates(thumbs, paths, Thresholds(fine_photos=False))
    assert any(0 in g and 7 in g for g in off.groups(range(9)))  # without the look the colourway joins
    assert found.fine_refused >= 1 and off.fine_refused == 0


def test_photo_look_leaves_photos_it_cannot_align(tmp_path: Path) -> None:
    """No keypoints to align (a flat image), another scene, or a file too small: no photo look (None), so the
    link stands as the thumbnails decided; compare_photo_pairs never raises."""
    from curate.dedupe.confirm import compare_photo_pairs, photo_view

    rng = np.random.default_rng(3)
    flat = tmp_path / "flat.jpg"
    Image.fromarray(np.full((400, 300, 3), 120, np.uint8)).save(flat)
    noise_a, noise_b = tmp_path / "a.png", tmp_path / "b.png"
    for p in (noise_a, noise_b):
        Image.fromarray(rng.integers(0, 255, (400, 300, 3), dtype=np.uint8)).resize((600, 800), Image.NEAREST).save(p)
    small = tmp_path / "small.jpg"
    Image.fromarray(rng.integers(0, 255, (120, 90, 3), dtype=np.uint8)).save(small)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert photo_view(flat.read_bytes()) is None and photo_view(small.read_bytes()) is None
    assert compare_photo_pairs([noise_a, noise_b, flat, small, bad], [(0, 1), (0, 2), (0, 3), (0, 4)], workers=1) == [None] * 4


def test_threshold_overrides_take_each_fields_type_and_refuse_unknown_names() -> None:
    """The benchmark scripts' --set: name=value read as the field's type (a switch from true / false)."""
    from curate.dedupe.verify import Thresholds

    th = Thresholds.with_overrides(["fine=false", "tonal=True", "fine_shape=0.05", "radius=9"])
    assert th == Thresholds(fine=False, tonal=True, fine_shape=0.05, radius=9) and isinstance(th.radius, int)
    with pytest.raises(ValueError, match="unknown threshold 'shape'; valid: radius, tone"):
        Thresholds.with_overrides(["shape=0.1"])


def test_manifest_and_report_carry_the_fine_look(tmp_path: Path) -> None:
    """A copy linked straight to the kept product keeps its link's finer-look distances in the manifest's
    evidence (to_kept), the report prints them, and the group certainty counts them."""
    from curate.ingest import ingest

    src = tmp_path / "img"
    src.mkdir()
    for p in _lookalike_files(tmp_path):
        shutil.move(p, src / p.name)
    ingest(src, tmp_path / "ds", layout="images")
    _, _, report = run_dedupe(tmp_path / "ds", on="articles")
    articles = Manifest.load(tmp_path / "ds").articles
    evidence = [json.loads(d) for d in articles["dup_distance"].dropna()]
    looked = [e["to_kept"] for e in evidence if "fine_shape" in e["to_kept"]]
    assert looked and all({"hash", "tone", "fine_shape", "fine_hue"} <= set(e) for e in looked)
    assert "fine_shape" in report.read_text()


def _cropped_photo_files(tmp_path: Path, real_root: Path) -> list[Path]:
    """A real street photo; two copies cropped by 7 % (one also contrast-edited), which move its 32x32 structure
    past the limit; crops as large of the shot with one region mirrored (another pose there) and of the shot with
    its garment recoloured."""
    from PIL import ImageEnhance

    photo = Image.open(real_root / "ccp-layering" / "photos" / "0113.jpg").convert("RGB")
    w, h = photo.size
    crop = (int(0.07 * w), int(0.04 * h), w - int(0.035 * w), h - int(0.07 * h))
    changed = np.asarray(photo).copy()
    rows, cols = slice(int(0.55 * h), int(0.75 * h)), slice(int(0.3 * w), int(0.6 * w))
    changed[rows, cols] = changed[rows, cols][:, ::-1]
    other = (int(0.035 * w), int(0.07 * h), w - int(0.07 * w), h - int(0.04 * h))  # cut from the other sides: no
    images = [photo, photo.crop(crop), ImageEnhance.Contrast(photo.crop(crop)).enhance(1.2),  # thumbnail match to the crops
              Image.fromarray(changed).crop(other), Image.fromarray(_garment_turned(np.asarray(photo), 20)).crop(other)]
    paths = []
    for k, im in enumerate(images):
        paths.append(tmp_path / f"cropped{k}.jpg")
        im.save(paths[-1], quality=90)
    return paths


def test_photo_rescue_joins_crops_the_thumbnails_refused_and_keeps_a_changed_region_apart(tmp_path: Path, real_root: Path) -> None:
    """Crops of a photo that the thumbnails refuse on structure alone are aligned pixel for pixel and joined: one
    tone curve explains every aligned value (none changed); the same crop with a region mirrored (6 % of the
    frame) or the garment recoloured reaches the same look and is refused there, by the changed share or the hue."""
    from curate.dedupe import confirm
    from curate.dedupe.verify import Thresholds, verify, views

    paths = _cropped_photo_files(tmp_path, real_root)
    th = Thresholds()
    thumbs = [thumbnail(p) for p in paths]
    v = views(np.stack([t.array() for t in thumbs]), np.stack([t.detail_array() for t in thumbs]), np.array([t.aspect for t in thumbs]))
    others = np.arange(1, 5)
    rescue: list = []
    accepted, _ = verify(v, np.zeros(4, np.int64), others, th, None, None, rescue)
    # every one refused by the thumbnails, and every one asked for the finer look: the test reaches it
    assert not accepted.any() and sorted(k for k, _ in rescue) == [0, 1, 2, 3], rescue
    assert all(th.structure < row["structure"] <= th.fine_rescue_structure for _, row in rescue), rescue
    views_ = [confirm.photo_view(p.read_bytes()) for p in paths]
    got = [confirm.rescue_photos(views_[0], views_[k], th) for k in range(1, 5)]
    assert all(r is not None and r[4] >= confirm.RESCUE_INLIERS and r[5] >= confirm.RESCUE_COVERAGE for r in got), got
    hue, tone, shift, far = (np.array([r[n] for r in got]) for n in range(4))  # type: ignore[index]
    assert far[:2].max() <= th.fine_photo_far / 5 and tone[:2].max() <= th.fine_tone and shift[:2].max() <= th.tonal_shift, got
    assert far[2] > 3 * th.fine_photo_far, got  # the mirrored region: ~6 % of the overlap
    assert hue[3] > 3 * th.fine_photo_hue, got  # the recoloured garment
    found = find_duplicates(thumbs, paths, th)
    groups = found.groups(range(5))
    assert groups == [[0, 1, 2]], groups
    joined = [link.distances for link in found.links if 0 in (link.a, link.b)]  # the crops' way to the original
    assert len(joined) == 1 and "fine_photo_far" in joined[0] and joined[0]["structure"] > th.structure, joined  # type: ignore[operator]
    off = find_duplicates(thumbs, paths, Thresholds(fine_rescue=False))
    assert off.groups(range(5)) == [[1, 2]], off.groups(range(5))  # without it the crops stay apart from the original


def test_rescue_colour_gate_keeps_a_recoloured_photo_from_the_look_and_still_asks_about_a_tone_edited_crop(
        tmp_path: Path, real_root: Path) -> None:
    """A street photo, its 7 % crop under contrast x1.3, and the same crop of the shot with its garment's hue turned by
    90 degrees: the thumbnails refuse both on structure (the crop). The tone-edited crop's colour shift (0.019) is
    under the rescue's gate ``fine_rescue_shift`` 0.06, so it is looked at and joined; the recolour's (0.077) is over
    it, so since issue 16's seventeenth round it costs no look (before, only two products were gated, and a photo pair
    passed on its contrast allowance, 0.016 + 1.25 x 0.29). With the gate opened it is looked at, and the look refuses
    it by its turned hue: the gate saves the look, it does not decide the pair."""
    from PIL import ImageEnhance

    from curate.dedupe.verify import Thresholds, verify, views

    photo = Image.open(real_root / "ccp-layering" / "photos" / "0113.jpg").convert("RGB")
    w, h = photo.size
    crop = (int(0.07 * w), int(0.04 * h), w - int(0.035 * w), h - int(0.07 * h))
    images = [photo, ImageEnhance.Contrast(photo.crop(crop)).enhance(1.3),
              ImageEnhance.Contrast(Image.fromarray(_garment_turned(np.asarray(photo), 90)).crop(crop)).enhance(1.3)]
    paths = [tmp_path / f"{k}.jpg" for k in range(3)]
    for im, p in zip(images, paths):
        im.save(p, quality=90)
    thumbs = [thumbnail(p) for p in paths]
    assert not any(t.boxed for t in thumbs)  # photos: the products' gate never applied to them
    v = views(np.stack([t.array() for t in thumbs]), np.stack([t.detail_array() for t in thumbs]), np.array([t.aspect for t in thumbs]))
    th, wide = Thresholds(), Thresholds(fine_rescue_shift=0.5)
    asked = {}
    for name, t in (("default", th), ("wide", wide)):
        rescue: list = []
        accepted, _ = verify(v, np.zeros(2, np.int64), np.array([1, 2]), t, None, None, rescue)
        assert not accepted.any()
        asked[name] = dict(rescue)
    assert sorted(asked["default"]) == [0] and sorted(asked["wide"]) == [0, 1], asked
    copy, recolour = asked["wide"][0], asked["wide"][1]
    assert copy["shift"] <= th.fine_rescue_shift < recolour["shift"], asked
    # the recolour passes every other gate of the rescue: the colour gate alone keeps it from the look
    assert (recolour["shift"] <= th.shift + th.tonal_shift_per_contrast * recolour["contrast"]
            and recolour["structure"] <= th.fine_rescue_structure and recolour["local"] <= th.fine_rescue_local), recolour
    found = find_duplicates(thumbs, paths, th)
    assert found.groups(range(3)) == [[0, 1]] and (0, 2) not in found.looks, found.looks.keys()
    opened = find_duplicates(thumbs, paths, wide)
    assert opened.groups(range(3)) == [[0, 1]], opened.groups(range(3))
    assert opened.looks[(0, 2)]["fine_photo_hue"] > wide.fine_photo_hue, opened.looks[(0, 2)]  # looked at, refused by hue


@pytest.mark.parametrize("seed", [0, 7])
def test_rescue_reaches_a_product_cropped_into_and_tone_edited_and_keeps_its_colourways_apart(tmp_path: Path, seed: int) -> None:
    """A solid product of the bench generator's cut ``seed`` on white, its copy cropped 8 % into the product on one side
    and given PIL's contrast x0.8, and the same edit of its darker (value x0.6) and its hue (+120 degrees) colourways.
    The crop moves the aspect past ``tonal_aspect`` and the contrast edit moves the colour past ``shift`` in every view
    pair, so neither the thumbnails nor the tone-curve path can accept the copy. Until issue 16's nineteenth round the
    cheap stage of verify dropped it for that, before the rescue was asked (these two pairs stayed apart); it now lets
    through what the rescue's colour gate lets through, and the rescue's look joins the copy on its pixels. The darker
    colourway stays apart (for seed 0 it reaches a look and is refused there by its tone curve), and so does the hue
    colourway, which no look is spent on."""
    import dataclasses as dc

    from PIL import ImageEnhance

    from curate.dedupe.verify import VIEW_PAIRS, Thresholds, distances, views

    cut, big = _solid_cut(seed)
    h, s, v = cut.colours[0]
    original = big(cut)
    columns = np.flatnonzero((np.abs(np.asarray(original).astype(int) - 255).max(axis=2) > 30).any(axis=0))
    cut_x = int(columns[0] + 0.08 * (columns[-1] - columns[0]))

    def edit(im):  # noqa: ANN001, ANN202
        return ImageEnhance.Contrast(im.crop((cut_x, 0, 768, 1024))).enhance(0.8)

    images = [original, edit(original), edit(big(dc.replace(cut, colours=((h, s, v * 0.6), *cut.colours[1:])))),
              edit(big(dc.replace(cut, colours=(((h + 1 / 3) % 1, s, v), *cut.colours[1:]))))]
    paths = [tmp_path / f"{k}.jpg" for k in range(4)]
    for im, p in zip(images, paths):
        im.save(p, quality=90)
    th = Thresholds()
    thumbs = [thumbnail(p) for p in paths]
    assert all(t.boxed for t in thumbs)
    vv = views(np.stack([t.array() for t in thumbs]), np.stack([t.detail_array() for t in thumbs]), np.array([t.aspect for t in thumbs]))
    d = distances(vv, np.array([0]), np.array([1]))
    assert th.tonal_aspect < d.aspect[0] <= th.aspect, d.aspect
    assert d.shift[0] <= th.fine_rescue_shift, d.shift  # under the rescue's colour gate
    assert all(np.abs(vv.chroma_mean[0, a] - vv.chroma_mean[1, b]).sum() > th.shift for a, b in VIEW_PAIRS)
    found = find_duplicates(thumbs, paths, th)
    assert found.groups(range(4)) == [[0, 1]], found.groups(range(4))
    joined = [link.distances for link in found.links if {link.a, link.b} == {0, 1}]
    assert len(joined) == 1 and joined[0]["fine_tone"] <= th.fine_tone and joined[0]["fine_shape"] <= th.fine_shape, joined  # type: ignore[index]
    darker = [m for k, m in found.looks.items() if 2 in k]
    assert all(m["fine_tone"] > th.fine_tone for m in darker), found.looks  # where looked at (seed 0), refused by its curve
    assert not any(3 in k for k in found.looks), found.looks  # the hue colourway: no look
    off = find_duplicates(thumbs, paths, Thresholds(fine_rescue=False))
    assert off.groups(range(4)) == [], off.groups(range(4))  # the rescue alone joins the copy


def test_rescue_fits_a_product_curve_on_the_keypoint_alignment_when_the_outline_alignment_misses_it(tmp_path: Path) -> None:
    """A printed tee and its copy cropped by 2-3 % per side, contrast x1.2 and brightness x0.9: the thumbnails
    refuse it (tone, colour shift), the outline look finds one outline and no turned hue but its curve, on the
    nearest-pixel outline alignment, leaves colour over the limit; the keypoint alignment's curve explains every
    value, so the pair is joined with both looks' evidence. Its near twin (another cut parameter) under the same
    edit reaches the same looks and the outline refuses it."""
    import dataclasses as dc

    from PIL import ImageEnhance

    from curate.dedupe.confirm import compare_pairs, look_at_photos
    from curate.dedupe.verify import Thresholds

    dataset = _bench_dataset()
    # seed 27: the outline alignment's curve leaves tone 0.042 and colour 0.032 (seed 6 was such a case until the curve
    # stopped fitting values clipped at black; it fits there now)
    cut = dc.replace(dataset.random_cut(np.random.default_rng(27)), kind="tee", pattern="print")
    params = list(cut.params)
    params[6] = params[6] + 0.15 if params[6] < 0.85 else params[6] - 0.15
    twin = dc.replace(cut, params=tuple(params))

    def edited(im: Image.Image) -> Image.Image:
        w, h = im.size
        cropped = im.crop((int(0.03 * w), int(0.02 * h), w - int(0.02 * w), h - int(0.03 * h)))
        return ImageEnhance.Brightness(ImageEnhance.Contrast(cropped).enhance(1.2)).enhance(0.9)

    original = Image.fromarray(dataset.draw_product(cut)).resize((768, 1024), Image.BICUBIC)
    twin_image = Image.fromarray(dataset.draw_product(twin)).resize((768, 1024), Image.BICUBIC)
    paths = [tmp_path / f"{k}.jpg" for k in range(3)]
    original.save(paths[0], quality=92)
    edited(original).save(paths[1], quality=90)
    edited(twin_image).save(paths[2], quality=90)
    th = Thresholds()
    thumbs = [thumbnail(p) for p in paths]
    assert all(t.boxed for t in thumbs)
    shape, hue, tone, shift, _, _, _ = compare_pairs(paths, [(0, 1)], 1, th)[0]  # type: ignore[misc]
    assert shape <= th.fine_shape and hue <= th.fine_hue and (tone > th.fine_tone or shift > th.tonal_shift), (shape, hue, tone, shift)
    photo = look_at_photos(paths, [], [(0, 1)], 1, th)[1][0]
    assert photo is not None and photo[1] <= th.fine_tone / 2 and photo[2] <= th.tonal_shift and photo[3] <= th.fine_photo_far, photo
    found = find_duplicates(thumbs, paths, th)
    assert found.groups(range(3)) == [[0, 1]], found.groups(range(3))
    (link,) = found.links
    assert {"fine_shape", "fine_hue", "fine_photo_far"} <= set(link.distances) and link.distances["tone"] > th.tone  # type: ignore[arg-type]
    assert compare_pairs(paths, [(0, 2)], 1, th)[0][0] > th.fine_shape  # type: ignore[index] - the twin's outline
    assert find_duplicates(thumbs, paths, Thresholds(fine_rescue=False)).groups(range(3)) == []


def _scored_tuning_set(tmp_path: Path, n: int, real_root: Path | None, seed: int, variant: str, *settings) -> list[dict]:  # noqa: ANN002
    """bench/dedupe's tuning generator at (n, seed, variant), scored by its truth module under each of ``settings``."""
    truth_module = _bench_module("truth")
    truth = pd.read_csv(_bench_dataset().build(tmp_path / "set", n, real_root, seed=seed, workers=2, variant=variant), keep_default_na=False)
    files = [str(tmp_path / "set" / f) for f in truth["file"]]
    thumbs = hash_files(files, "local", 2)
    dup, traps = truth_module.truth_pairs(truth)
    out = []
    for th in settings:
        found = find_duplicates(thumbs, files, th, workers=2)  # type: ignore[arg-type]
        pairs = {(a, b) for g in found.groups(range(len(files))) for a, b in itertools.combinations(sorted(g), 2)}
        out.append(truth_module.scores(pairs, dup, traps))
    return out


def test_onmodel_tuning_set_per_family_with_the_rescue(tmp_path: Path, real_root: Path) -> None:
    """The tuning generator's `onmodel` variant (every shared real photo once, its garment recoloured alone for
    the colourways, copies weighted to crops and tone edits), a seed no threshold was chosen on: every edit family
    at the level reached, the colourways apart, and the crops the rescue brings (without it 31 of 42)."""
    from curate.dedupe.verify import Thresholds

    on, off = _scored_tuning_set(tmp_path, 150, real_root, 112, "onmodel", Thresholds(), Thresholds(fine_rescue=False))
    # measured on this seed (520 files, 237 copy pairs, 1 trap of 380 merged either way): P 0.996, R 0.937; crop
    # 40/42, two copies 43/48, combined 19/21, every other family 20/21; without the rescue R 0.878, crop 31/42
    crop, crop_off = on["per_family"]["crop"], off["per_family"]["crop"]
    assert crop[0] >= 0.93 * crop[1] and crop_off[0] <= 0.8 * crop_off[1], (crop, crop_off)
    assert all(found >= 0.9 * total for family, (found, total) in on["per_family"].items() if family != "two-copies"), on["per_family"]
    assert on["per_family"]["two-copies"][0] >= 0.85 * on["per_family"]["two-copies"][1], on["per_family"]
    assert on["precision"] >= 0.99 and on["recall"] >= 0.93 and on["trap_fp"] <= 1, on


def test_tonal_tuning_set_per_family(tmp_path: Path) -> None:
    """The tuning generator's `tonal` variant (contrast, gamma and chains of edits, colourways of drawn products) at
    a seed no threshold was chosen on: every edit family at the level reached, and no colourway merged. Measured
    (2,003 files, 256 copy pairs, 1,719 trap pairs): P 1.000, R 0.992, every family complete but combined 25/27;
    before the changed-values check and the black-clip fit (fine_far inf, BLACK off, the earlier colour allowance and
    product gate) 1 trap merged and combined 24/27."""
    from curate.dedupe.verify import Thresholds

    (s,) = _scored_tuning_set(tmp_path, 2000, None, 113, "tonal", Thresholds())
    assert s["trap_fp"] == 0 and s["precision"] == 1.0 and s["recall"] >= 0.98, s
    assert all(hit >= 0.9 * total for hit, total in s["per_family"].values()), s["per_family"]
    for family in ("contrast", "gamma", "brightness", "two-copies"):
        assert s["per_family"][family][0] == s["per_family"][family][1], (family, s["per_family"])


def test_report_run_refuses_a_tuning_seed(tmp_path: Path) -> None:
    """bench/dedupe/report_run.py --seed takes reporting seeds only: a tuning seed (< 7000) is refused in one line
    before any set is built, so a reporting figure can never come from the sets the thresholds were chosen on."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(repo / "bench" / "dedupe" / "report_run.py"), "--n", "50", "--seed", "130",
                        "--data", str(tmp_path)], capture_output=True, text=True, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    assert r.returncode != 0 and "tuning seeds" in r.stderr and "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())


def test_reporting_set_writes_no_trap_that_is_its_original_pixel_for_pixel(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """A near-solid trap whose moved shape parameters the garment does not draw is the original's very pixels: the
    reporting generator must not write it as another product (at seed 7001 that was 11 of 197 near-solids, each
    counted as a false pair whenever merged). Dropping it leaves the family's other files byte for byte as they are
    when the trap is visible, because the trap's JPEG quality is still drawn."""
    rs = _bench_module("reporting_set")
    job = rs._Job(3, 12345, "product", None, ("near-solid",), ("brightness", "crop+gamma"))

    def lengthened(g, rng):  # noqa: ANN001, ANN202 - a visible change every garment draws (its length), same draws
        rs_perturbed(g, rng)
        return rs.dataclasses.replace(g, shape=(min(1.0, g.shape[0] + 0.15) if g.shape[0] <= 0.85 else g.shape[0] - 0.15, *g.shape[1:]))

    rs_perturbed = rs._perturbed
    visible, same = tmp_path / "visible", tmp_path / "same"
    visible.mkdir(), same.mkdir()
    monkeypatch.setattr(rs, "_perturbed", lengthened)
    rows_visible = rs._make(job, visible)
    monkeypatch.setattr(rs, "_perturbed", lambda g, rng: (rs_perturbed(g, rng), g)[1])  # draws as before, moves nothing
    rows_same = rs._make(job, same)
    assert [r["trap"] for r in rows_visible] == ["", "near-solid", "", ""]
    assert [r["file"] for r in rows_same] == [r["file"] for r in rows_visible if r["trap"] == ""]
    assert sorted(p.name for p in same.iterdir()) == sorted(r["file"] for r in rows_same)
    for r in rows_same:
        assert (same / r["file"]).read_bytes() == (visible / r["file"]).read_bytes(), r["file"]


def test_reporting_set_hue_colourways_of_one_base_stay_30_degrees_apart() -> None:
    """Two hue colourways of one base are each turned 30-150 degrees from it; the reporting generator drops one that
    lands within 30 degrees of another (the same colour twice: at seed 7001, 11 of 13 hue-colourway false links were
    between two colourways of one base), and still makes its draw so that the rest of the set is unchanged."""
    rs = _bench_module("reporting_set")

    class Draws:  # rng.uniform(30, 150) answering these turns in order
        def __init__(self, values):  # noqa: ANN001
            self.values, self.calls = list(values), 0

        def uniform(self, low, high):  # noqa: ANN001, ANN202
            assert (low, high) == (30, 150)
            self.calls += 1
            return self.values.pop(0)

    rng, turns = Draws([60.0, 75.0, 89.9, 90.0, 110.0, 120.0]), []
    assert [rs._colourway_turn(rng, turns) for _ in range(6)] == [60.0, None, None, 90.0, None, 120.0]
    assert turns == [60.0, 90.0, 120.0] and rng.calls == 6


def test_fine_look_refuses_a_nearly_grey_print_given_a_colour_only_with_the_saturation_region(tmp_path: Path) -> None:
    """A printed tee whose emblem is nearly grey (saturation 0.12) and the same tee with that emblem given a colour
    (saturation 0.6, the hue turned): the grey side's hue is noise, so neither the pixel hue test nor the hue region
    sees the change, and only the saturation region (``fine_saturation_jump``) refuses the pair. The print's copies
    (resized, gamma 0.75, contrast x0.75) move no region's saturation that
    far against the rest and stay joined."""
    import dataclasses as dc

    from PIL import ImageEnhance

    from curate.dedupe.confirm import compare_pairs
    from curate.dedupe.verify import Thresholds

    dataset = _bench_dataset()
    cut = dc.replace(dataset.random_cut(np.random.default_rng(0)), kind="tee", pattern="solid")
    ring, bar = ((c[0], 0.12, max(c[2], 0.6)) for c in cut.colours[1:])
    printed = dc.replace(cut, pattern="print", pattern_params=(0.5, 0.5, 0.5, 0.5, 0.4, 0.2), colours=(cut.colours[0], ring, bar))
    coloured = dc.replace(printed, colours=(cut.colours[0], ((ring[0] + 0.3) % 1, 0.6, ring[2]), ((bar[0] + 0.3) % 1, 0.6, bar[2])))
    original = Image.fromarray(dataset.draw_product(printed)).resize((768, 1024), Image.BICUBIC)
    gamma = Image.fromarray((255.0 * (np.asarray(original) / 255.0) ** 0.75).round().astype(np.uint8))
    images = [original, Image.fromarray(dataset.draw_product(coloured)).resize((768, 1024), Image.BICUBIC),
              original.resize((461, 614), Image.LANCZOS), gamma, ImageEnhance.Contrast(original).enhance(0.75)]
    paths = []
    for k, im in enumerate(images):
        paths.append(tmp_path / f"{k}.jpg")
        im.save(paths[-1], quality=92)
    off, on = Thresholds(fine_saturation_jump=float("inf")), Thresholds()
    pairs = [(0, k) for k in range(1, 5)]
    _, hue, _, _, far, region_off, _ = zip(*compare_pairs(paths, pairs, thresholds=off))  # type: ignore[misc]
    _, _, _, _, _, region_on, _ = zip(*compare_pairs(paths, pairs, thresholds=on))  # type: ignore[misc]
    # unseen without it: no hue turned, no hue region, fewer values changed than fine_far allows
    assert hue[0] <= off.fine_hue and region_off[0] <= off.fine_hue_region and far[0] <= off.fine_far, (hue, region_off, far)
    assert region_on[0] > 2 * on.fine_hue_region and max(region_on[1:]) <= on.fine_hue_region / 2, region_on
    thumbs = [thumbnail(p) for p in paths]
    assert find_duplicates(thumbs, paths, off).groups(range(5)) == [[0, 1, 2, 3, 4]]
    assert find_duplicates(thumbs, paths, on).groups(range(5)) == [[0, 2, 3, 4]]


def _longsleeve_and_hem_twin(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The bench generator's long-sleeved solid top of ``seed`` and its near twin (the hem 3 % of the height shorter or
    longer: bottom = 0.55 + 0.2 * p[3] of h), drawn at the generator's canvas size."""
    dataset = _bench_dataset()
    cut = dataclasses.replace(dataset.random_cut(np.random.default_rng(seed)), kind="longsleeve", pattern="solid")
    params = list(cut.params)
    params[3] = params[3] - 0.15 if params[3] > 0.15 else params[3] + 0.15
    return dataset.draw_product(cut), dataset.draw_product(dataclasses.replace(cut, params=tuple(params)))


def _framed_twin_files(tmp_path: Path) -> list[Path]:
    """A long-sleeved top framed tight as the bench generator's variant ``frame`` does (sleeves and hem cut by three
    sides of the frame), saved at 1024x768; its resized, cropped, darkened and re-encoded copies; and its near twin
    (the hem 3 % of the height shorter), framed the same way."""
    drawn = _bench_dataset()._framed_tight(list(_longsleeve_and_hem_twin(1)))
    original, twin = (Image.fromarray(d).resize((768, 1024), Image.BICUBIC) for d in drawn)
    darker = Image.fromarray(np.clip(np.asarray(original, np.float32) * 0.8, 0, 255).astype(np.uint8))
    images = [(original, 92), (original.resize((461, 614), Image.LANCZOS), 92), (original.crop((20, 30, 750, 1000)), 92),
              (darker, 92), (original, 70), (twin, 92)]
    paths = []
    for k, (im, quality) in enumerate(images):
        paths.append(tmp_path / f"{k}.jpg")
        im.save(paths[-1], quality=quality)
    return paths


def test_fine_look_judges_a_product_framed_tight_and_refuses_its_near_twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A product whose sleeves and hem run through three sides of the frame is still a product to the finer look
    (confirm.SCENE_SIDES 4; it was 3, and such a twin then went to the photo look, which sees no outline): its near
    twin's hem moves 7 % of the outline against at most 0.3 % for the four copies, so the twin stays apart. With the
    old rule the look cannot read either image and the thumbnails' link to the twin stands. Content through all four
    sides is still a scene."""
    from curate.dedupe import confirm
    from curate.dedupe.verify import Thresholds

    paths = _framed_twin_files(tmp_path)
    views = [confirm.fine_view(p.read_bytes()) for p in paths]
    assert all(v is not None for v in views) and views[0].touch.tolist() == [False, True, True, True]
    th = Thresholds()
    shape = [confirm.compare(views[0], v, th)[0] for v in views[1:]]
    assert max(shape[:4]) <= th.fine_shape / 10 and shape[4] > 2 * th.fine_shape, shape
    thumbs = [thumbnail(p) for p in paths]
    assert all(t.boxed for t in thumbs)
    assert find_duplicates(thumbs, paths, Thresholds(fine=False)).groups(range(6)) == [[0, 1, 2, 3, 4, 5]]  # the twin joins
    assert find_duplicates(thumbs, paths, th).groups(range(6)) == [[0, 1, 2, 3, 4]]
    monkeypatch.setattr(confirm, "SCENE_SIDES", 3)
    assert confirm.fine_view(paths[0].read_bytes()) is None
    assert find_duplicates(thumbs, paths, th).groups(range(6)) == [[0, 1, 2, 3, 4, 5]]
    monkeypatch.undo()
    everywhere = np.asarray(Image.open(paths[0]).convert("RGB"))[400:950, 40:700]  # the top cut too (the garment starts ~230 px down)
    Image.fromarray(np.ascontiguousarray(everywhere)).save(tmp_path / "through.jpg", quality=92)
    view = confirm.fine_view((tmp_path / "through.jpg").read_bytes())
    assert view is None


def _small_twin_files(tmp_path: Path) -> list[Path]:
    """A long-sleeved top saved at 1024x768, its copies resized to a thumbnail-sized upload (0.27x: 207 px short
    side, under the finer look's FINE_SIDE 256 and over FINE_MIN_SIDE 192), its re-encoded copy, and its near twin
    (the hem 3 % of the height shorter) at the same small size."""
    original, twin = (Image.fromarray(d).resize((768, 1024), Image.BICUBIC) for d in _longsleeve_and_hem_twin(1))
    small = (207, 276)
    images = [(original, 92), (original.resize(small, Image.BILINEAR), 90), (original, 70),
              (original.resize((220, 293), Image.LANCZOS), 85), (twin.resize(small, Image.BILINEAR), 90)]
    paths = []
    for k, (im, quality) in enumerate(images):
        paths.append(tmp_path / f"{k}.jpg")
        im.save(paths[-1], quality=quality)
    return paths


def test_fine_look_judges_a_thumbnail_sized_copy_on_its_outline_and_refuses_its_near_twin(tmp_path: Path,
                                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A file under FINE_SIDE but over confirm.FINE_MIN_SIDE gets the product look at its own size, on its outline and
    tone curve only (its colour measures are None, not measured): its copies' outlines stay within a quarter of the
    limit, the small near twin's hem moves more than twice the limit, so the twin stays apart. With the old rule
    (no look under FINE_SIDE) the thumbnails' link to the twin stands."""
    from curate.dedupe import confirm
    from curate.dedupe.verify import Thresholds

    paths = _small_twin_files(tmp_path)
    views = [confirm.fine_view(p.read_bytes()) for p in paths]
    assert all(v is not None for v in views) and min(views[1].rgb.shape[:2]) < confirm.FINE_SIDE
    th = Thresholds()
    measured = [confirm.compare(views[0], v, th) for v in views[1:]]
    assert [m[1] is None and m[5] is None and m[6] is None for m in measured] == [True, False, True, True]
    shape = [m[0] for m in measured]
    assert max(shape[:3]) <= th.fine_shape / 4 and shape[3] > 2 * th.fine_shape, shape  # the LANCZOS copy: 0.005
    thumbs = [thumbnail(p) for p in paths]
    assert all(t.boxed for t in thumbs)
    assert find_duplicates(thumbs, paths, Thresholds(fine=False)).groups(range(5)) == [[0, 1, 2, 3, 4]]  # the twin joins
    assert find_duplicates(thumbs, paths, th).groups(range(5)) == [[0, 1, 2, 3]]
    monkeypatch.setattr(confirm, "FINE_MIN_SIDE", confirm.FINE_SIDE)
    assert confirm.fine_view(paths[1].read_bytes()) is None
    assert find_duplicates(thumbs, paths, th).groups(range(5)) == [[0, 1, 2, 3, 4]]


def test_fine_look_aligns_a_crop_then_resize_of_a_product_framed_tight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A product framed tight has no axis with both ends free, so no content box gives the scale of a copy cropped
    (4-5 % a side) and then resized: it lies between the crop's file-pixel ratio and the resize's frame ratio.
    confirm.FRAMED_CROPS adds the frame's ratio less 2-12 %: that copy's outline then lies on the original's, and
    without those scales it is refused on shape. The near twin (the hem 3 % shorter) is still refused: the added scales
    fit no outline a crop did not make."""
    from curate.dedupe import confirm
    from curate.dedupe.verify import Thresholds

    paths = _framed_twin_files(tmp_path)
    with Image.open(paths[0]) as im:
        cropped = im.crop((35, 45, 768 - 30, 1024 - 40)).resize((422, 564), Image.BILINEAR)  # 0.6x after the crop
    cropped.save(tmp_path / "crop_resize.jpg", quality=88)
    original, copy, twin = (confirm.fine_view((tmp_path / name).read_bytes()) for name in ("0.jpg", "crop_resize.jpg", "5.jpg"))
    assert original.touch.tolist() == [False, True, True, True] and copy.touch.tolist() == [False, True, True, True]
    th = Thresholds()
    assert confirm.compare(original, copy, th)[0] <= th.fine_shape / 2
    assert confirm.compare(original, twin, th)[0] > 2 * th.fine_shape
    monkeypatch.setattr(confirm, "FRAMED_CROPS", ())
    assert confirm.compare(original, copy, th)[0] > th.fine_shape


def test_fine_look_matches_the_edge_levels_of_a_brightened_copy_whose_background_clipped_at_white(tmp_path: Path,
                                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A light long-sleeved top framed tight, its copy brightened x1.3 (the white background clips at 255, so the
    soft edges lose their outer part and the half-way level lies further in: 5.8 % of the outline off, refused with the
    old rule) and its near twin (the hem 3 % shorter) brightened the same. confirm._brightened_pair takes the darker
    image's silhouette again at the level the lighter one's median level maps to under v -> 1.3 v: the copy's outline
    lies on the original's; the twin's hem still moves it (5.4 %) and it stays apart. A darkened copy (its background
    darkens with it) is left to the levels as they were. With the joint levels on (``fine_joint_levels``): the same
    groups."""
    from PIL import ImageEnhance

    from curate.dedupe import confirm
    from curate.dedupe.verify import Thresholds

    dataset = _bench_dataset()
    cut = dataclasses.replace(dataset.random_cut(np.random.default_rng(8)), kind="longsleeve", pattern="solid")
    cut = dataclasses.replace(cut, colours=((0.5, 0.55, 0.85), *cut.colours[1:]))  # a light cyan
    params = list(cut.params)
    params[3] = params[3] - 0.15 if params[3] > 0.15 else params[3] + 0.15
    drawn = dataset._framed_tight([dataset.draw_product(cut), dataset.draw_product(dataclasses.replace(cut, params=tuple(params)))])
    original, twin = (Image.fromarray(d).resize((768, 1024), Image.BICUBIC) for d in drawn)
    images = [original, ImageEnhance.Brightness(original).enhance(1.3), ImageEnhance.Brightness(twin).enhance(1.3),
              ImageEnhance.Brightness(original).enhance(0.8)]
    paths = [tmp_path / f"{k}.jpg" for k in range(len(images))]
    for path, im in zip(paths, images):
        im.save(path, quality=92)
    views = [confirm.fine_view(p.read_bytes()) for p in paths]
    assert views[0].touch.tolist() == [False, True, True, True] and views[1].background.min() == 255
    th = Thresholds()
    thumbs = [thumbnail(p) for p in paths[:3]]
    assert find_duplicates(thumbs, paths[:3], Thresholds(fine_joint_levels=True)).groups(range(3)) == [[0, 1]]
    shape = [confirm.compare(views[0], v, th)[0] for v in views[1:]]
    assert shape[0] <= th.fine_shape / 10 and shape[1] > 1.5 * th.fine_shape and shape[2] <= th.fine_shape / 2, shape
    assert confirm._brightened_pair(views[0], views[3]) is None  # darker: its background is no longer white
    pair = confirm._brightened_pair(views[0], views[1])
    assert pair is not None and pair[1] is views[1] and pair[0].level > views[0].level
    assert find_duplicates(thumbs, paths[:3], th).groups(range(3)) == [[0, 1]]
    monkeypatch.setattr(confirm, "_brightened_pair", lambda fa, fb: None)
    assert confirm.compare(views[0], views[1], th)[0] > th.fine_shape
    assert find_duplicates(thumbs, paths[:3], th).groups(range(3)) == []


def _banded_product(hem: int = 0) -> np.ndarray:
    """A navy top on white (200 of 255 off the background) whose lower part is a pale band 105 off it: just over the
    silhouette's half-way level (100), so a tone edit that moves the two colours differently carries the band across."""
    import cv2

    img = np.full((1024, 768, 3), 255, np.uint8)
    outline = np.array([[230, 150], [538, 150], [600, 420], [560, 430], [540, 760 + hem], [228, 760 + hem], [208, 430], [168, 420]], np.int32)
    cv2.fillPoly(img, [outline], (55, 60, 90))
    img[640 + hem:760 + hem, 228:540] = (150, 155, 166)
    return cv2.GaussianBlur(img, (0, 0), 1.5)


def test_fine_look_takes_both_silhouettes_at_joint_levels_when_a_band_crosses_the_half_way_level(tmp_path: Path,
                                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The banded top's contrast x1.15 copy (about mid grey: the band ends 102 off white, the navy 211, so the band
    falls under the copy's level 105.5) and its gamma 0.85 copy lose the band from their silhouettes: 9.4 % of the
    outline off at the median levels, refused by default. With ``fine_joint_levels`` on, at confirm.JOINT_LEVELS (0.35
    and 0.65 of each product's colour) both silhouettes agree. The near twin (hem and band 25 px lower) stays over
    twice the limit.
    A file under FINE_SIDE (the contrast copy at 207 px) is not given the joint levels: its colour is not measured,
    so its outline is all that tells a recoloured print from its original."""
    from curate.dedupe import confirm
    from curate.dedupe.verify import Thresholds

    original = _banded_product()
    images = [original, np.clip((original.astype(np.float32) - 128) * 1.15 + 128, 0, 255).astype(np.uint8),
              (255 * (original / 255.0) ** 0.85).astype(np.uint8), _banded_product(25)]
    paths = [tmp_path / f"{k}.jpg" for k in range(len(images))]
    for path, im in zip(paths, images):
        Image.fromarray(im).save(path, quality=92)
    views = [confirm.fine_view(p.read_bytes()) for p in paths]
    th = Thresholds(fine_joint_levels=True)
    shape = [confirm.compare(views[0], v, th)[0] for v in views[1:]]
    assert max(shape[:2]) <= th.fine_shape / 10 and shape[2] > 2 * th.fine_shape, shape
    with Image.open(paths[1]) as im:
        im.resize((207, 276), Image.BILINEAR).save(tmp_path / "small.jpg", quality=90)
    small = confirm.fine_view((tmp_path / "small.jpg").read_bytes())
    assert min(small.rgb.shape[:2]) < confirm.FINE_SIDE and confirm.compare(views[0], small, th)[0] > 2 * th.fine_shape
    monkeypatch.setattr(confirm, "FINE_SIDE", 200)  # were its colour measured, the joint levels would join it
    assert confirm.compare(views[0], small, th)[0] <= th.fine_shape / 10
    monkeypatch.undo()
    thumbs = [thumbnail(p) for p in paths]
    assert find_duplicates(thumbs, paths, Thresholds(fine=False)).groups(range(4)) == [[0, 1, 2, 3]]  # the twin joins
    assert find_duplicates(thumbs, paths, th).groups(range(4)) == [[0, 1, 2]]
    default = Thresholds()
    shape = [confirm.compare(views[0], v, default)[0] for v in views[1:]]
    assert min(shape[:2]) > 2 * th.fine_shape and shape[2] > 2 * th.fine_shape, shape
    assert find_duplicates(thumbs, paths, default).groups(range(4)) == [[1, 2]]  # the two edited copies agree with each other


def test_rescue_asks_about_a_product_copy_whose_strong_tone_edit_shifted_its_colour_when_the_gate_allows(tmp_path: Path) -> None:
    """A long-sleeved top and its copy cropped by 2-3 % per side, contrast x0.75 and brightness x0.8: the thumbnails
    refuse it (tone 0.14, colour shift 0.085 against 0.016) and the rescue's gate for two products
    (``Thresholds.fine_rescue_shift``) decides whether the finer look is asked. At the default 0.06 the copy stays
    alone; at 0.12 (tried in issue 16's fifteenth round: more copies and more colour twins on the tuning sets, so the
    default stayed) it is asked and joins. The near twin (the hem 3 % of the height shorter) under the same edit is
    asked at 0.12 too and stays apart."""
    from PIL import ImageEnhance

    from curate.dedupe.verify import Thresholds


    def edited(im: Image.Image) -> Image.Image:
        w, h = im.size
        cropped = im.crop((int(0.03 * w), int(0.02 * h), w - int(0.02 * w), h - int(0.03 * h)))
        return ImageEnhance.Brightness(ImageEnhance.Contrast(cropped).enhance(0.75)).enhance(0.8)

    original, twin = (Image.fromarray(d).resize((768, 1024), Image.BICUBIC) for d in _longsleeve_and_hem_twin(23))
    paths = [tmp_path / f"{k}.jpg" for k in range(3)]
    original.save(paths[0], quality=92)
    edited(original).save(paths[1], quality=90)
    edited(twin).save(paths[2], quality=90)
    thumbs = [thumbnail(p) for p in paths]
    th = Thresholds()
    d = find_duplicates(thumbs[:2], paths[:2], Thresholds(fine=False)).distances(0, 1)
    wide = Thresholds(fine_rescue_shift=0.12)
    assert d is not None and d["tone"] > th.tone and th.fine_rescue_shift < d["shift"] <= wide.fine_rescue_shift, d
    assert find_duplicates(thumbs[:2], paths[:2], th).groups(range(2)) == []
    assert find_duplicates(thumbs[:2], paths[:2], wide).groups(range(2)) == [[0, 1]]
    twin_found = find_duplicates(thumbs[::2], paths[::2], wide)
    assert twin_found.groups(range(2)) == [] and twin_found.looks[(0, 1)]["fine_shape"] > 2 * th.fine_shape  # asked, apart
    assert find_duplicates(thumbs, paths, wide).groups(range(3)) == [[0, 1]]


def _cv2_blur_sum(k: int) -> float:
    import cv2

    return float(cv2.GaussianBlur(np.full((256, 256), k % 255, np.uint8), (0, 0), 2.0).sum())


def test_worker_pool_does_not_hang_after_opencv_ran_threaded_in_this_process() -> None:
    """A process that ran OpenCV on its thread pool (a finer look called in process, as a notebook or the tests do)
    and then forks the hashing pool: the workers' first parallel OpenCV call waited for threads that do not exist
    after a fork, and the pool hung (seen as a hang of the tests `-k "pale_block or hash_option"`). engine._init_worker
    sets one thread first. Run in a fresh process, with a time limit, so a hang fails instead of stopping the suite."""
    import subprocess
    import sys

    code = ("import cv2, numpy as np; from curate.dedupe.engine import map_local; import tests.test_dedupe as t; "
            "cv2.setNumThreads(2); cv2.GaussianBlur(np.zeros((2048, 2048), np.float32), (0, 0), 5.0); "
            "print(len(map_local(t._cv2_blur_sum, list(range(16)), 2, shard=1)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0 and done.stdout.strip() == "16", done.stderr[-2000:]
