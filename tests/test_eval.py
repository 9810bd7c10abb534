"""Metrics against reference implementations (tolerances stated), the feature cache, FPS fields, the
untrained-extractor label in records and leaderboards, and folder-vs-folder evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eval import metrics as M
from eval.features import load_images, lpips_network, untrained_extractor
from eval.runner import Protocol, evaluate_folders, extract_features, measure_fps


def test_frechet_distance_matches_pytorch_fid() -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    for n, d in ((400, 64), (40, 64)):  # full-rank and singular covariances
        a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d)) * 1.2 + 0.1
        s = (*M.feature_statistics(a), *M.feature_statistics(b))
        ours, ref = M.frechet_distance(*s), calculate_frechet_distance(*s)
        assert ours == pytest.approx(ref, rel=1e-6, abs=1e-6)  # both in float64


def test_kid_matches_torchmetrics_poly_mmd() -> None:
    from torchmetrics.image.kid import poly_mmd

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(30, 16)), rng.normal(size=(30, 16)) + 0.3
    ours, std = M.kernel_inception_distance(a, b, subsets=3, subset_size=100)  # subset = the whole (small) set
    ref = poly_mmd(torch.from_numpy(a), torch.from_numpy(b), degree=3, coef=1.0).item()
    assert ours == pytest.approx(ref, abs=1e-9) and std == pytest.approx(0.0, abs=1e-12)


def test_ssim_matches_scikit_image() -> None:
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 48, 40, generator=g)
    fake = (real + 0.1 * torch.randn(2, 3, 48, 40, generator=g)).clamp(0, 1)
    ours = M.ssim(fake, real)
    for i in range(2):
        ref = structural_similarity(fake[i].permute(1, 2, 0).numpy(), real[i].permute(1, 2, 0).numpy(), channel_axis=2,
                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
        assert float(ours[i]) == pytest.approx(ref, abs=2e-3)  # torchmetrics and skimage differ only at the borders
    grey = M.ssim(fake, real, greyscale=True)
    ref = structural_similarity(M.to_grey(fake)[0, 0].numpy(), M.to_grey(real)[0, 0].numpy(), gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False, data_range=1.0)
    assert float(grey[0]) == pytest.approx(ref, abs=2e-3)


def test_lpips_backbone_loading_matches_the_lpips_package(tmp_path: Path) -> None:
    import lpips
    from torchvision.models import alexnet

    torch.manual_seed(3)
    weights = tmp_path / "alexnet.pth"
    torch.save(alexnet(weights=None).state_dict(), weights)  # stands in for the ImageNet file
    ours, identity = lpips_network("alex", weights)
    reference = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    state = torch.load(weights, weights_only=True)
    for name, module in reference.net.named_children():
        for idx, layer in module.named_children():
            if hasattr(layer, "weight"):
                layer.weight.data.copy_(state[f"features.{idx}.weight"])
                layer.bias.data.copy_(state[f"features.{idx}.bias"])
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(ours(x, y), reference.eval()(x, y), atol=1e-6)
    assert identity["comparable_to_published"] is True and len(identity["backbone_sha256"]) == 64



def test_missing_lpips_backbone_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        lpips_network("alex", None)


@pytest.fixture(scope="module")
def extractor(synth_images: dict[str, list[Path]]):
    return untrained_extractor(load_images(synth_images["a"]), seed=0)


def test_untrained_extractor_is_informative(extractor, synth_images) -> None:  # noqa: ANN001
    feats = {k: extractor(load_images(v)).numpy() for k, v in synth_images.items()}
    assert np.abs(feats["a"]).mean() > 1e-3  # a random Inception without recalibration gives ~1e-8
    same = M.frechet_distance(*M.feature_statistics(feats["a"]), *M.feature_statistics(feats["b"]))
    different = M.frechet_distance(*M.feature_statistics(feats["a"]), *M.feature_statistics(feats["cloth"]))
    assert different > 2 * same, (same, different)


def test_fid_equals_pytorch_fid_pipeline(extractor, synth_images) -> None:  # noqa: ANN001
    """Same network, pytorch-fid's own decoding + statistics + Frechet vs ours: equal within 1e-3."""
    from pytorch_fid.fid_score import calculate_activation_statistics, calculate_frechet_distance

    ref_a = calculate_activation_statistics([str(p) for p in synth_images["a"]], extractor.model, batch_size=6, dims=2048, device="cpu", num_workers=0)
    ref_b = calculate_activation_statistics([str(p) for p in synth_images["b"]], extractor.model, batch_size=6, dims=2048, device="cpu", num_workers=0)
    reference = calculate_frechet_distance(*ref_a, *ref_b)
    fa, _ = extract_features(extractor, load_images(synth_images["a"]), 6, use_cache=False)
    fb, _ = extract_features(extractor, load_images(synth_images["b"]), 6, use_cache=False)
    ours = M.frechet_distance(*M.feature_statistics(fa), *M.feature_statistics(fb))
    assert ours == pytest.approx(reference, abs=1e-3)


def test_feature_cache_hit_and_invalidation(extractor, synth_images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("TRYON_BENCH_CACHE", str(tmp_path))
    images = load_images(synth_images["a"][:4])
    first, hit1 = extract_features(extractor, images, 4)
    second, hit2 = extract_features(extractor, images, 4)
    assert (hit1, hit2) == (False, True) and np.array_equal(first, second)
    changed = images.clone()
    changed[0, :, :4, :4] = 0.0
    _, hit3 = extract_features(extractor, changed, 4)
    assert hit3 is False  # different contents, different key


def test_fps_record_fields() -> None:
    batch = {"x": torch.rand(4, 3, 8, 8)}
    fps = measure_fps(lambda b: b["x"] * 2, batch, (1, 4), n_batches=3, device=torch.device("cpu"))
    assert fps["device"] == "cpu" and fps["threads"] >= 1 and fps["warmup"] == 2 and fps["timed_batches"] == 3
    assert fps["batch_1"]["images_per_s"] > 0 and fps["batch_4"]["images_per_s"] > 0


def test_folder_evaluation_records_the_untrained_label(synth_images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from PIL import Image
    from typer.testing import CliRunner

    from reports.cli import app as leaderboard_app

    monkeypatch.setenv("TRYON_BENCH_CACHE", str(tmp_path / "cache"))
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    for p in synth_images["a"][:6]:
        Image.open(p).save(ref / (p.stem + ".png"))
        Image.open(p).point(lambda v: min(255, v + 12)).save(gen / (p.stem + ".png"))  # a "model" that brightens
    proto = Protocol(size=(128, 96), feature_extractor="untrained", lpips_backbone="untrained", batch_size=6, kid_subsets=5)
    run = evaluate_folders(gen, ref, proto, tmp_path / "runs", torch.device("cpu"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["comparable_to_published"] is False and "NOT comparable" in summary["warning"]
    assert summary["protocol"]["protocol"] == "paired" and summary["n_images"] == 6
    assert 0.5 < summary["metrics"]["ssim"] < 1.0 and summary["metrics"]["psnr"] > 15
    assert summary["metric_directions"]["fid"]["higher_is_better"] is False
    result = CliRunner().invoke(leaderboard_app, [str(tmp_path / "runs"), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "report" / "leaderboard.md").read_text()
    assert "**no** (untrained extractor)" in md
    assert "not comparable" in (tmp_path / "report" / "index.html").read_text()


def test_missing_inception_weights_name_the_file(tmp_path: Path) -> None:
    from eval.features import inception_extractor

    with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05"):
        inception_extractor(tmp_path / "nope.pth")
