"""CP-VTON / CP-VTON+: official layouts and parameter counts, import, the GMM learning a warp, TOM on the
frozen GMM's warp, CP-VTON+'s grid-interval consistency, and both stages through `zoo train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from models import create_model, load_pretrained
from models.checkpoint_import import import_checkpoint
from models.registry import build_recipe
from models.zoo.cp_vton import grid_interval_consistency
from tests.model_fixtures import official_spec, synthesise_official_state

_spec = official_spec


def _layout(module: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(k, list(v.shape)) for k, v in module.state_dict().items()]


@pytest.mark.parametrize(("preset", "gmm", "tom"), [("paper", "cpvton_gmm", "cpvton_tom"), ("paper-plus", "cpvtonplus_gmm", "cpvtonplus_tom")])
def test_paper_presets_have_the_official_layouts_and_counts(preset: str, gmm: str, tom: str) -> None:
    with torch.device("meta"):
        model = create_model("cp-vton", preset)
    for module, name in ((model.gmm, gmm), (model.tom, tom)):
        spec = _spec(name)
        assert _layout(module) == [(k, shape) for k, shape, _ in spec["keys"]], name  # names, order and shapes
        assert model.num_parameters(module) == spec["params"], name
    assert model.num_parameters(model.gmm) == {"paper": 19_057_650, "paper-plus": 19_055_602}[preset]
    assert model.num_parameters(model.tom) == {"paper": 21_349_252, "paper-plus": 21_350_276}[preset]


_synthesise = synthesise_official_state


@pytest.mark.parametrize(("gmm", "tom", "preset"), [("cpvton_gmm", "cpvton_tom", "paper"), ("cpvtonplus_gmm", "cpvtonplus_tom", "paper-plus")])
def test_official_state_dicts_import_whole_and_bad_ones_are_refused(gmm: str, tom: str, preset: str, tmp_path: Path) -> None:
    g_state, t_state = _synthesise(gmm, tmp_path / "gmm_final.pth"), _synthesise(tom, tmp_path / "tom_final.pth")
    import_checkpoint("cp-vton", {"gmm": tmp_path / "gmm_final.pth", "tom": tmp_path / "tom_final.pth"}, tmp_path / "out")
    model = load_pretrained(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "import.json").read_text())["preset"] == preset  # guessed from the GMM
    assert model.config.align_corners is True and not model.training
    ours = model.state_dict()
    for prefix, state in (("gmm", g_state), ("tom", t_state)):
        for key, value in state.items():
            assert torch.equal(ours[f"{prefix}.{key}"], value), key
    broken = dict(g_state)
    del broken["regression.linear.bias"]
    torch.save(broken, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="gmm.regression.linear.bias"):
        import_checkpoint("cp-vton", {"gmm": tmp_path / "missing.pth"}, tmp_path / "bad1")
    broken = {**g_state, "regression.linear.weight": torch.zeros(50, 100)}
    torch.save(broken, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match=r"shape mismatches: gmm.regression.linear.weight file \(50, 100\)"):
        import_checkpoint("cp-vton", {"gmm": tmp_path / "shape.pth"}, tmp_path / "bad2")
    assert not (tmp_path / "bad1").exists() and not (tmp_path / "bad2").exists()


def _warp_batch(n: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Products centred on white; on the person the same product sits shifted and smaller, where the
    body shape says: a warp the GMM can learn from the person representation."""
    g = torch.Generator().manual_seed(seed)
    h, w = 64, 48
    article = torch.ones(n, 3, h, w)
    article_mask = torch.zeros(n, 1, h, w)
    image = torch.ones(n, 3, h, w) * 0.6
    worn = torch.zeros(n, 1, h, w)
    for i in range(n):
        colour = torch.rand(3, 1, 1, generator=g) * 1.5 - 1
        stripes = (torch.arange(w) // 4 % 2).float()[None, None, :] * 0.5
        article[i, :, 12:52, 8:40] = colour + stripes[..., 8:40]  # in [-1, 1]
        article_mask[i, :, 12:52, 8:40] = 1
        dy, dx = int(torch.randint(0, 16, (1,), generator=g)), int(torch.randint(0, 16, (1,), generator=g))
        patch = torch.nn.functional.interpolate(article[i:i + 1, :, 12:52, 8:40], size=(30, 24), mode="bilinear", align_corners=False)[0]
        image[i, :, 8 + dy:38 + dy, 4 + dx:28 + dx] = patch
        worn[i, :, 8 + dy:38 + dy, 4 + dx:28 + dx] = 1
    return {"image": image, "article": article, "article_mask": article_mask, "body_shape": worn.clone(),
            "head": -torch.ones(n, 3, h, w), "keypoints": torch.zeros(n, 18, 3), "worn_mask": worn}


def test_gmm_lowers_the_warping_loss_on_synthetic_data() -> None:
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    model = create_model("cp-vton", "tiny").train()
    recipe = build_recipe("cp-vton", lr=1e-3, perceptual_backbone="none")
    (gmm_stage, _) = model.training_stages(recipe)
    (phase,) = gmm_stage.phases
    optimiser = torch.optim.Adam(phase.parameters, lr=phase.lr, betas=phase.betas)
    batch = _warp_batch()
    first = None
    for _ in range(40):
        optimiser.zero_grad()
        losses = phase.losses(batch)
        losses["total"].backward()
        optimiser.step()
        first = float(losses["warp"].detach()) if first is None else first
    model.eval()
    with torch.no_grad():
        after = float(model._gmm_losses(batch, recipe)["warp"])
    assert after < first * 0.8, f"the GMM did not learn the warp ({first:.3f} -> {after:.3f})"


def test_tom_trains_on_the_frozen_gmm_and_generation_chains_both() -> None:
    torch.manual_seed(0)
    model = create_model("cp-vton", "tiny").train()
    recipe = build_recipe("cp-vton", perceptual_backbone="none")
    batch = _warp_batch(n=2)
    bn = model.gmm.extractionA.model[2]
    stats = bn.running_mean.clone()
    losses = model.training_stages(recipe)[1].phases[0].losses(batch)
    losses["total"].backward()
    assert torch.equal(bn.running_mean, stats) and model.gmm.training  # eval inside, restored after
    assert all(p.grad is None for p in model.gmm.parameters())  # the warp is computed without gradients
    assert any(p.grad is not None for p in model.tom.parameters())
    assert set(losses) == {"l1", "mask", "total"}
    model.eval()
    with torch.no_grad():
        out = model.generate({k: v for k, v in batch.items() if k in model.INPUTS.generate})
    assert out.shape == (2, 3, 64, 48) and out.abs().max() <= 1


def test_align_corners_is_pinned_by_the_config() -> None:
    torch.manual_seed(0)
    true_model = create_model("cp-vton", "tiny").eval()
    false_model = create_model("cp-vton", "tiny", align_corners=False).eval()
    false_model.load_state_dict(true_model.state_dict())
    batch = _warp_batch(n=1)
    with torch.no_grad():
        a = true_model.warp(batch, true_model.agnostic(batch))[0]
        b = false_model.warp(batch, false_model.agnostic(batch))[0]
    assert (a - b).abs().max() > 1e-3


def test_grid_interval_consistency_is_zero_for_even_grids_only() -> None:
    from models.layers.tps import pixel_coordinates

    even = pixel_coordinates(16, 12, align_corners=True).float()[None]
    assert float(grid_interval_consistency(even)) == pytest.approx(0.0, abs=1e-5)
    uneven = even.clone()
    uneven[0, :, 6:, 0] += 0.2  # a jump between columns 5 and 6
    assert float(grid_interval_consistency(uneven)) > 1e-3


def test_plus_presets_train_with_the_plus_recipe_and_both_stages_run_from_one_command(curated_ds: Path, tmp_path: Path) -> None:
    from models.cli import app

    run = tmp_path / "cpvton-plus"
    result = CliRunner().invoke(app, ["train", "--model", "cp-vton", "--preset", "tiny-plus", "--data", str(curated_ds),
                                      "--steps", "2", "--batch-size", "2", "--perceptual-backbone", "none", "--out", str(run),
                                      "--sample-every", "2", "--log-every", "1"])
    assert result.exit_code == 0, result.output
    info = json.loads((run / "train_config.json").read_text())
    assert info["recipe"]["lambda_gic"] == 40.0 and info["recipe"]["mask_target"] == "parse"
    assert info["stage_order"] == ["gmm", "tom"] and set(info["stages"]) == {"gmm", "tom"}
    assert (run / "samples" / "gmm" / "step_00000002.png").is_file() and (run / "samples" / "tom" / "step_00000002.png").is_file()
    header = (run / "logs" / "gmm" / "train.csv").read_text().splitlines()[0]
    assert "gmm/gic" in header and "gmm/warp" in header
    out = tmp_path / "gen"
    result = CliRunner().invoke(app, ["generate", "--checkpoint", str(run), "--data", str(curated_ds), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.png"))) > 0
