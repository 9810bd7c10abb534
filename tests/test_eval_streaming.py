"""Streaming evaluation: metric objects equal the pure functions and merge like process states; folder
mode records the extractor that produced FID/KID; FPS says what it measures; the unpaired rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eval import metrics as M
from eval.metric_states import FrechetDistance, KernelDistance, MeanWithInterval


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift


def test_metric_objects_equal_the_pure_functions_fed_in_batches_and_merged() -> None:
    real, fake = _features(300, 64, 0), _features(250, 64, 1, shift=0.3)
    reference_fid = M.frechet_distance(*M.feature_statistics(real.numpy()), *M.feature_statistics(fake.numpy()))
    # one object fed in batches, and two "processes" each with half the batches, merged as a reduction would
    whole, left, right = FrechetDistance(64), FrechetDistance(64), FrechetDistance(64)
    for i, chunk in enumerate(real.split(37)):
        whole.update(chunk, real=True)
        (left if i % 2 else right).update(chunk, real=True)
    for i, chunk in enumerate(fake.split(41)):
        whole.update(chunk, real=False)
        (left if i % 2 else right).update(chunk, real=False)
    left.merge_state(right)
    assert float(whole.compute()) == pytest.approx(reference_fid, rel=1e-9)
    assert float(left.compute()) == pytest.approx(reference_fid, rel=1e-9)

    kid = KernelDistance(subsets=10, subset_size=100, seed=3)
    for chunk in real.split(64):
        kid.update(chunk, real=True)
    for chunk in fake.split(64):
        kid.update(chunk, real=False)
    mean, std = M.kernel_inception_distance(real.float().numpy(), fake.float().numpy(), 10, 100, 3)
    result = kid.compute()
    assert result["kid"] == pytest.approx(mean, rel=1e-9) and result["kid_std"] == pytest.approx(std, rel=1e-9)
    assert result["kid_subset_size"] == 100
    small = KernelDistance(subsets=5, subset_size=1000, seed=0)
    small.update(real[:20], real=True)
    small.update(fake[:20], real=False)
    out = small.compute()
    assert out["kid_subset_size"] == 20 and out["kid_std"] is None  # every subset is the whole set: no spread to report

    values = torch.rand(57, dtype=torch.float64)
    stat = MeanWithInterval()
    for chunk in values.split(10):
        stat.update(chunk)
    got = stat.compute()
    half = 1.96 * values.numpy().std(ddof=1) / np.sqrt(57)
    assert got["mean"] == pytest.approx(float(values.mean()), abs=1e-12)
    assert got["ci95"] == pytest.approx([float(values.mean()) - half, float(values.mean()) + half], abs=1e-12)


def test_folder_mode_records_the_extractor_that_produced_fid(synth_images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Different generated and reference folders: FID recomputed by hand with the recorded extractor
    (calibrated on the reference folder) equals the recorded FID."""
    import torch.nn.functional as F
    from PIL import Image

    from eval.features import load_images, untrained_extractor
    from eval.runner import Protocol, evaluate_folders

    monkeypatch.setenv("TRYON_BENCH_CACHE", str(tmp_path / "cache"))
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    people = synth_images["a"] + synth_images["b"]
    for p in people[:8]:
        Image.open(p).save(ref / (p.stem + ".png"))
    for p in synth_images["cloth"][:6]:
        Image.open(p).save(gen / (p.stem + ".png"))  # unpaired: no generated name has a reference
    proto = Protocol(size=(128, 96), feature_extractor="untrained", lpips_backbone="untrained", batch_size=3, kid_subsets=5)
    run = evaluate_folders(gen, ref, proto, tmp_path / "runs", torch.device("cpu"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["protocol"]["protocol"] == "unpaired" and summary["provenance"]["reference_images"] == 8
    real = load_images(sorted(ref.glob("*.png")), (128, 96))
    extractor = untrained_extractor(F.interpolate(real, size=(299, 299), mode="bilinear", align_corners=False), seed=0)
    assert summary["extractors"]["features"] == extractor.identity
    fake = load_images(sorted(gen.glob("*.png")), (128, 96))
    by_hand = M.frechet_distance(*M.feature_statistics(extractor(real).numpy()), *M.feature_statistics(extractor(fake).numpy()))
    assert summary["metrics"]["fid"] == pytest.approx(by_hand, rel=1e-6)


def test_sub_batched_paired_scores_equal_the_whole_batch(synth_images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """A pixel budget of two images splits every batch of 6 into 3 sub-batches for LPIPS/SSIM/PSNR: every
    per-image score and every mean equal the unsplit run's within 1e-6 (FID/KID are not split: equal), and
    the record says how many images were scored at once."""
    import dataclasses

    import pandas as pd
    from PIL import Image, ImageFilter

    from eval.runner import Protocol, StreamingScore, evaluate_folders, images_per_chunk

    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    for p in (synth_images["a"] + synth_images["b"])[:12]:
        im = Image.open(p).convert("RGB")
        im.save(ref / (p.stem + ".png"))
        im.filter(ImageFilter.GaussianBlur(1.5)).save(gen / (p.stem + ".png"))  # paired: every name has its reference
    seen: list[int] = []
    paired = StreamingScore._paired
    monkeypatch.setattr(StreamingScore, "_paired", lambda self, f, r: seen.append(len(f)) or paired(self, f, r))
    base = Protocol(size=(64, 48), feature_extractor="untrained", lpips_backbone="untrained", batch_size=6, kid_subsets=5)
    runs = {}
    for name, pixels in (("whole", 0), ("split", 2 * 64 * 48)):
        monkeypatch.setenv("TRYON_BENCH_CACHE", str(tmp_path / f"cache-{name}"))
        seen.clear()
        run = evaluate_folders(gen, ref, dataclasses.replace(base, score_pixels=pixels), tmp_path / f"runs-{name}", torch.device("cpu"))
        runs[name] = (json.loads((run / "summary.json").read_text()), pd.read_parquet(run / "per_sample.parquet"), list(seen))
    (whole, whole_rows, whole_seen), (split, split_rows, split_seen) = runs["whole"], runs["split"]
    assert whole_seen == [6, 6] and split_seen == [2] * 6
    assert whole["protocol"]["score_chunk_images"] == 6 and split["protocol"]["score_chunk_images"] == 2
    assert list(whole_rows["name"]) == list(split_rows["name"])
    for metric in ("lpips", "ssim", "psnr"):
        np.testing.assert_allclose(split_rows[metric], whole_rows[metric], rtol=0, atol=1e-6)
        assert split["metrics"][metric] == pytest.approx(whole["metrics"][metric], rel=0, abs=1e-6)
        assert whole_rows[metric].std() > 0  # the images differ: a real comparison, not of constants
    assert split["metrics"]["fid"] == whole["metrics"]["fid"] and split["metrics"]["kid"] == whole["metrics"]["kid"]
    from reports.records import group_runs, load_runs

    found, problems = load_runs([tmp_path / "runs-whole", tmp_path / "runs-split"])
    groups, _ = group_runs(found)
    assert not problems and [len(g.runs) for g in groups] == [2]  # the budget changes no score: one leaderboard table
    # the default budget (1 Mpx): 256x192 batches of 16 whole, 1024x768 one image at a time
    assert images_per_chunk(256, 192, base.score_pixels, 16) == 16 and images_per_chunk(1024, 768, base.score_pixels, 16) == 1


def test_model_evaluation_labels_fps_and_refuses_an_unpaired_score_without_an_article(curated_ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from models import create_model
    from eval.runner import Protocol, evaluate_model
    from reports.records import group_runs, load_runs

    monkeypatch.setenv("TRYON_BENCH_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    spade = create_model("spade", "tiny")
    spade.label_set = "smis-8"
    spade.save_pretrained(tmp_path / "spade")
    proto = Protocol(size=(64, 48), feature_extractor="untrained", lpips_backbone="untrained", batch_size=4, kid_subsets=3, fps_batches=1)
    run = evaluate_model("spade", tmp_path / "spade", curated_ds, "test", proto, tmp_path / "runs", torch.device("cpu"))
    summary = json.loads((run / "summary.json").read_text())
    fps = summary["fps"]
    assert fps["model_only"]["batch_1"]["images_per_s"] > 0 and "already on the device" in fps["model_only"]["includes"]
    assert fps["end_to_end"]["batch_4"]["images_per_s"] > 0 and fps["end_to_end"]["batch_1"]["images_per_s"] > 0
    assert "loader" in fps["end_to_end"]["includes"]
    assert summary["n_images"] == len(list((run / "images").glob("*.png"))) > 0

    unpaired = evaluate_model("spade", tmp_path / "spade", curated_ds, "test", Protocol(**{**proto.__dict__, "protocol": "unpaired"}),
                              tmp_path / "runs", torch.device("cpu"))
    record = json.loads((unpaired / "summary.json").read_text())
    assert record["metrics"] == {} and "does not depend on the article" in record["not_scored"]
    groups, notes = group_runs(load_runs([tmp_path / "runs"])[0])
    assert [r.protocol for g in groups for r in g.runs] == ["paired"] and len(notes) == 1


def test_two_gloo_processes_give_the_numbers_of_one(curated_ds: Path, tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 -m eval.cli`: the pairs are sharded, the metric states reduced, the
    per-image rows gathered back in order; FID/KID/LPIPS/SSIM/PSNR equal the one-process run."""
    import os
    import subprocess
    import sys

    import pandas as pd

    from models import create_model

    torch.manual_seed(0)
    create_model("cagan", "tiny").save_pretrained(tmp_path / "cagan")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRYON_BENCH_CACHE": str(tmp_path / "cache")}
    args = ["-m", "eval.cli", "--model", "cagan", "--checkpoint", str(tmp_path / "cagan"), "--data", str(curated_ds),
            "--feature-extractor", "untrained", "--batch-size", "3", "--size", "64x48"]
    repo = Path(__file__).resolve().parents[1]
    one = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], capture_output=True, text=True, timeout=600, env=env, cwd=repo)
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args,
                          "--out", str(tmp_path / "two")], capture_output=True, text=True, timeout=600, env=env, cwd=repo)
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-2000:]
    (a,), (b,) = list((tmp_path / "one").glob("*/summary.json")), list((tmp_path / "two").glob("*/summary.json"))
    sa, sb = json.loads(a.read_text()), json.loads(b.read_text())
    assert sb["provenance"]["processes"] == 2 and sa["n_images"] == sb["n_images"] > 2
    for key in ("fid", "kid"):
        assert sb["metrics"][key] == pytest.approx(sa["metrics"][key], rel=1e-7), key
    for key in ("lpips", "ssim", "psnr"):
        assert sb["metrics"][key] == pytest.approx(sa["metrics"][key], abs=1e-6), key
    pa, pb = pd.read_parquet(a.parent / "per_sample.parquet"), pd.read_parquet(b.parent / "per_sample.parquet")
    assert list(pa["pair_id"]) == list(pb["pair_id"]) and list(pa["name"]) == list(pb["name"])
    np.testing.assert_allclose(pa["ssim"], pb["ssim"], atol=1e-6)
    assert sorted(p.name for p in (a.parent / "images").glob("*.png")) == sorted(p.name for p in (b.parent / "images").glob("*.png"))


HEAP_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from eval.runner import limit_heap_fragmentation
print(limit_heap_fragmentation())  # mallopt's own answer: 1 when glibc took the setting
"""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="glibc's mallopt is a Linux matter")
def test_evaluate_fixes_the_mmap_threshold_unless_told_not_to(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    repo = str(Path(__file__).resolve().parents[1])
    run = lambda env: subprocess.run([sys.executable, "-c", HEAP_PROBE, repo], capture_output=True, text=True, timeout=120,
                                     env={**os.environ, **env}).stdout.split()
    assert run({})[0] == "True"  # set: every buffer >= 1 MiB is mmap'ed (see limit_heap_fragmentation's docstring)
    assert run({"TRYON_BENCH_HEAP": "glibc-default"})[0] == "False"
    # the evaluate entry point calls it before anything is allocated
    source = (Path(repo) / "eval" / "cli.py").read_text()
    assert source.index("limit_heap_fragmentation()") < source.index("evaluate_folders(images")
