"""VITON: the shape-context TPS warp on shapes with a known deformation and on degenerate masks, the
`paper` architecture against the reference's layer list, both stages' losses with the reference
weights, generation at any batch size, and `zoo train` (both stages) + `evaluate` through the CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from models import create_model
from models.layers.losses import VGGPerceptualLoss, cached_perceptual
from models.layers.shape_context import boundary_points, chi_square_cost, match_masks, warp_control_points
from models.layers.tps import TPSGridGen, apply_tps, fit_tps, normalised_to_pixels, pixels_to_normalised, regular_control_points, warp
from models.registry import build_recipe
from models.zoo.viton import EDM_PERCEPTUAL, RM_PERCEPTUAL, total_variation

H, W = 64, 48
CONTROL = regular_control_points(10, x_major=False)
GRID = TPSGridGen(H, W, CONTROL, align_corners=False)


def _shirt() -> np.ndarray:
    """A top: body, sleeves and a neckline notch (64x48)."""
    m = np.zeros((H, W))
    m[14:54, 14:34] = 1
    m[14:30, 6:42] = 1
    m[10:16, 19:29] = 0
    return m


def _deformations() -> dict[str, torch.Tensor]:
    """Known smooth warps as where each control point reads in the source (normalised x, y)."""
    x, y = CONTROL[:, 0], CONTROL[:, 1]
    return {
        "affine": torch.stack([x * 1.25 + 0.1, y * 1.2 - 0.1], 1),  # smaller and shifted
        "bend": torch.stack([x * 1.2 + 0.1 * y - 0.05, y * 1.15 + 0.1 * torch.sin(2 * x) + 0.05], 1),
        "wave": torch.stack([x * 0.9 + 0.15 * torch.sin(3 * y), y * 0.95], 1),  # larger, sideways waves
    }


def _warp_mask(mask: np.ndarray, source_points: torch.Tensor) -> np.ndarray:
    m = torch.from_numpy(mask).float()[None, None]
    return warp(m, GRID(source_points[None].float()), False, "zeros")[0, 0].numpy()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / (a | b).sum())


# ---- the warp -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "iou_before"), [("affine", 0.615), ("bend", 0.702), ("wave", 0.761)])
def test_shape_context_warp_recovers_a_known_deformation(name: str, iou_before: float) -> None:
    """The product mask warped onto a target made from it by a known TPS: IoU with the target rises from
    0.62-0.76 to >= 0.97 (measured 0.997 / 0.990 / 0.987), and the recovered control points lie within
    0.05 (normalised units, ~1.2 px at 48 px width; measured 0.023-0.035) of the known ones on average."""
    src = _shirt()
    truth = _deformations()[name]
    target = (_warp_mask(src, truth) > 0.5).astype(np.float64)
    points, matched = warp_control_points(src, target, CONTROL, align_corners=False)
    assert matched
    before, after = _iou(src, target), _iou(_warp_mask(src, points), target)
    assert before == pytest.approx(iou_before, abs=0.01)
    assert after >= 0.97 and after - before >= 0.2, (before, after)
    assert float((points - truth).abs().mean()) < 0.05


def test_the_warp_is_deterministic_and_leaves_identical_shapes_alone() -> None:
    src = _shirt()
    target = (_warp_mask(src, _deformations()["bend"]) > 0.5).astype(np.float64)
    a, _ = warp_control_points(src, target, CONTROL, False)
    b, _ = warp_control_points(src.copy(), target.copy(), CONTROL, False)
    assert torch.equal(a, b)
    same, matched = warp_control_points(src, src, CONTROL, False)
    assert matched and float((same - CONTROL).abs().max()) < 0.02  # a shape matched to itself: ~identity


@pytest.mark.parametrize("case", ["empty", "pixel", "two-pixels", "vertical-line", "horizontal-line", "nan"])
@pytest.mark.parametrize("side", ["source", "target"])
def test_degenerate_masks_give_the_identity_warp(case: str, side: str) -> None:
    bad = np.zeros((H, W))
    if case == "pixel":
        bad[30, 20] = 1
    elif case == "two-pixels":
        bad[30, 20] = bad[10, 5] = 1
    elif case == "vertical-line":
        bad[5:60, 20] = 1  # many boundary points, all on one line: the affine part would be free
    elif case == "horizontal-line":
        bad[30, 2:46] = 1
    elif case == "nan":
        bad[:] = np.nan
    good = _shirt()
    pair = (bad, good) if side == "source" else (good, bad)
    points, matched = warp_control_points(*pair, CONTROL, align_corners=False)
    assert not matched and torch.equal(points, CONTROL)
    assert match_masks(*pair) is None


def test_a_mask_filling_the_image_still_matches() -> None:
    points, matched = warp_control_points(np.ones((H, W)), _shirt(), CONTROL, False)
    assert matched and torch.isfinite(points).all()


def test_shape_context_pieces() -> None:
    # boundary samples: evenly spread, capped at the count, tangents along the boundary
    square = np.zeros((H, W))
    square[16:48, 8:40] = 1
    xy, tangent = boundary_points(square, 40)
    assert xy.shape == (40, 2) and tangent.shape == (40,)
    on_edge = (np.isin(xy[:, 0], [8, 39]) | np.isin(xy[:, 1], [16, 47]))
    assert on_edge.all()
    # away from the corners the tangent runs along the edge, in opposite directions on opposite edges
    # (the gradient points into the mask, turned +90 degrees): the polarity the orientation cost uses
    middle = (xy[:, 1] > 18) & (xy[:, 1] < 45)
    left, right = middle & (xy[:, 0] == 8), middle & (xy[:, 0] == 39)
    assert left.any() and right.any()
    assert np.allclose(np.sin(tangent[left]), 1, atol=1e-3) and np.allclose(np.sin(tangent[right]), -1, atol=1e-3)
    # chi-square: 0 for equal histograms, 1 for disjoint ones, symmetric
    h = np.array([[1.0, 0, 3], [0, 2, 0]])
    cost = chi_square_cost(h, h)
    assert np.allclose(np.diag(cost), 0) and cost[0, 1] == pytest.approx(1.0) and cost[1, 0] == pytest.approx(1.0)


def test_tps_fit_interpolates_smooths_and_converts_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    source = torch.rand(20, 2, generator=g, dtype=torch.float64) * 40
    target = source * 0.8 + 3 + torch.sin(source / 7)
    exact = fit_tps(source, target, 0.0)
    assert torch.allclose(apply_tps(exact, source, source), target, atol=1e-8)  # lambda 0 interpolates
    affine_target = source @ torch.tensor([[0.9, 0.1], [-0.2, 1.1]], dtype=torch.float64) + 5
    smooth = fit_tps(source, affine_target, 1e3)  # an affine map is reproduced exactly at any lambda
    probe = torch.rand(7, 2, generator=g, dtype=torch.float64) * 40
    expected = probe @ torch.tensor([[0.9, 0.1], [-0.2, 1.1]], dtype=torch.float64) + 5
    assert torch.allclose(apply_tps(smooth, source, probe), expected, atol=1e-8)
    for ac in (True, False):
        px = torch.tensor([[0.0, 0.0], [47.0, 63.0], [12.5, 7.25]])
        assert torch.allclose(normalised_to_pixels(pixels_to_normalised(px, H, W, ac), H, W, ac), px.double())
    assert pixels_to_normalised(torch.tensor([[0.0, 0.0]]), H, W, True).tolist() == [[-1.0, -1.0]]
    assert torch.allclose(pixels_to_normalised(torch.tensor([[-0.5, 63.5]]), H, W, False), torch.tensor([[-1.0, 1.0]], dtype=torch.float64))


def test_the_model_warps_the_product_onto_the_predicted_mask_per_sample() -> None:
    """The model's warp: product and mask follow the target; an empty target falls back to the identity."""
    torch.manual_seed(0)
    model = create_model("viton", "tiny").eval()
    src = torch.from_numpy(_shirt()).float()[None, None]
    colours = torch.tensor([[-1.0, 0.2, 0.5], [0.3, -0.6, 0.0], [0.9, 0.9, -1.0]])[:, :, None, None]
    article = colours * src + (1 - src)  # three products of one shape on white
    target = torch.from_numpy((_warp_mask(_shirt(), _deformations()["wave"]) > 0.5).astype(np.float32))[None, None]
    targets = torch.cat([target, torch.zeros_like(target), target])
    warped, warped_mask, identity = model.shape_context_warp(article, src.expand(3, 1, H, W), targets)
    assert identity == 1 and warped.shape == (3, 3, H, W) and warped_mask.shape == (3, 1, H, W)
    assert _iou(warped_mask[0, 0].numpy(), target[0, 0].numpy()) >= 0.97
    assert torch.allclose(warped[1], article[1], atol=1e-5)  # the identity warp reproduces the product
    assert torch.allclose(warped_mask[0], warped_mask[2], atol=1e-4)  # the same masks: the same warp (float32 batch rounding)
    inside = warped_mask[0, 0] > 0.99
    # the product's pixels moved, not mixed: where the mask is >= 0.99 at most 1 % of the white comes in
    assert torch.allclose(warped[0][:, inside], colours[0, :, 0], atol=0.02)


# ---- the architecture -----------------------------------------------------------------------------

def _reference_edm_parameters(ngf: int = 64, inputs: int = 25, outputs: int = 4) -> int:
    """Trainable variables of model_zalando_mask_content.py's generator: 4x4 conv filters without bias;
    batch norm (scale, offset) after encoders 2-6 and decoders 6-2; decoder_1 is a bare deconv + tanh."""
    enc = [ngf, ngf * 2, ngf * 4, ngf * 8, ngf * 8, ngf * 8]
    total, cin = 0, inputs
    for i, c in enumerate(enc):
        total += 16 * cin * c + (2 * c if i > 0 else 0)
        cin = c
    dec = [ngf * 8, ngf * 8, ngf * 4, ngf * 2, ngf]  # decoder_6 .. decoder_2
    skips = enc[::-1][1:]  # encoder_5 .. encoder_1, concatenated before decoders 5 .. 1
    cin = enc[-1]
    for c, skip in zip(dec, skips):
        total += 16 * cin * c + 2 * c
        cin = c + skip
    return total + 16 * cin * outputs


def test_paper_preset_is_the_reference_architecture() -> None:
    with torch.device("meta"):
        model = create_model("viton", "paper")
    assert model.input_size == (256, 192)
    assert model.num_parameters(model.edm) == _reference_edm_parameters() == 29_269_632
    assert model.num_parameters(model.rm) == 6 * 64 * 9 + 2 * (64 * 64 * 9) + 3 * 128 + 64 + 1 == 77_633
    convs = [m for m in model.edm.modules() if isinstance(m, torch.nn.Conv2d)]
    deconvs = [m for m in model.edm.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512] and convs[0].in_channels == 25
    assert all(c.stride == (2, 2) and c.kernel_size == (4, 4) and c.bias is None for c in convs + deconvs)
    assert [d.out_channels for d in deconvs] == [512, 512, 256, 128, 64, 4]  # decoder_6 .. decoder_1
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.edm.modules()) == 10
    drops = [m for m in model.edm.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 1 and drops[0].p == 0.5
    assert isinstance(list(model.edm.modules())[-1], torch.nn.Tanh)
    # where the dropout sits: after the innermost decoder (VITON's decoder_6, 4x3 -> 8x6)
    seen: dict[str, tuple[int, ...]] = {}

    def record(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> None:
        seen["shape"] = tuple(output.shape)

    hook = drops[0].register_forward_hook(record)
    with torch.device("meta"):
        model.edm.train()(torch.zeros(1, 25, 256, 192))
    hook.remove()
    assert seen["shape"] == (1, 512, 8, 6)
    rm = list(model.rm.model)
    kinds = [type(m).__name__ for m in rm]
    assert kinds == ["Conv2d", "GroupNorm", "LeakyReLU"] * 3 + ["Conv2d"]
    assert all(m.num_groups == 1 and m.num_channels == 64 for m in rm if isinstance(m, torch.nn.GroupNorm))
    assert rm[0].in_channels == 6 and rm[-1].kernel_size == (1, 1) and rm[-1].out_channels == 1
    assert model.tps.control_points.shape == (100, 2) and model.config.warp_scale == 4  # 10x10 grid, matched at 64x48
    assert all(k.startswith(("edm.", "rm.")) for k in model.state_dict())  # the TPS constants are not weights


# ---- the losses -----------------------------------------------------------------------------------

def _batch(n: int = 2) -> dict[str, torch.Tensor]:
    from tests.model_fixtures import batch_for

    return batch_for(create_model("viton", "tiny").data_needs(), n=n)


def test_recipe_holds_the_reference_training() -> None:
    r = build_recipe("viton")
    assert (r.lr, r.betas) == (2e-4, (0.5, 0.999))
    assert (r.lambda_mask, r.lambda_content, r.lambda_perceptual) == (1.0, 1.0, 3.0)
    assert (r.lambda_rm_l1, r.lambda_rm_perceptual, r.lambda_rm_mask, r.lambda_rm_tv) == (0.2, 0.8, 0.1, 5e-6)
    assert r.rm_mask == "stage1" and build_recipe("viton", "worn-masks").rm_mask == "worn"
    layers, weights = EDM_PERCEPTUAL
    assert layers == ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
    # model_zalando_mask_content.py: (p1 + ... + p5) / 5 / 128 with p5 = error(conv5_2) / 0.16, ...
    assert weights[0] == pytest.approx(2.5 / 5.3 / 640) and weights[4] == pytest.approx(1 / 0.16 / 640)
    assert RM_PERCEPTUAL[0] == layers[2:] and RM_PERCEPTUAL[1][0] == pytest.approx(1 / 1.35 / 2.3 / 384)
    with pytest.raises(ValueError, match="rm_mask"):
        build_recipe("viton", rm_mask="parse")


def test_perceptual_layers_are_selectable_and_checked() -> None:
    with torch.device("meta"):  # shapes only: a VGG19 with its classifier costs seconds to initialise
        named = VGGPerceptualLoss("untrained", layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                                  weights=VGGPerceptualLoss.WEIGHTS)
        viton = VGGPerceptualLoss("untrained", layers=EDM_PERCEPTUAL[0], weights=EDM_PERCEPTUAL[1])
    assert named.SLICES == VGGPerceptualLoss.SLICES  # the names map onto the default slices
    assert viton.SLICES == (4, 9, 14, 23, 32) and len(viton.features) == 32
    # the layer ends are ReLUs of torchvision's VGG19: conv1_2 is features[2], its ReLU features[3]
    assert all(isinstance(viton.features[end - 1], torch.nn.ReLU) and isinstance(viton.features[end - 2], torch.nn.Conv2d)
               for end in viton.SLICES)
    assert [viton.features[end - 2].out_channels for end in viton.SLICES] == [64, 128, 256, 512, 512]
    with pytest.raises(ValueError, match="unknown VGG19 layers"):
        VGGPerceptualLoss("untrained", layers=("conv9_9",), weights=(1.0,))
    with pytest.raises(ValueError, match="together"):
        VGGPerceptualLoss("untrained", layers=("relu1_1",))
    with pytest.raises(ValueError, match="network order"):
        VGGPerceptualLoss("untrained", layers=("relu2_2", "relu1_2"), weights=(1.0, 1.0))


def test_total_variation_is_tensorflows() -> None:
    m = torch.zeros(2, 1, 10, 10)
    m[0, :, 2:6, 3:7] = 1  # a 4x4 square: 4 edges of 4 unit steps
    assert float(total_variation(m)) == pytest.approx(16 / 2)  # summed per image, averaged over the batch


def test_stage_losses_carry_the_reference_weights() -> None:
    torch.manual_seed(0)
    model = create_model("viton", "tiny").train()
    recipe = build_recipe("viton", perceptual_backbone="untrained")
    batch = _batch()
    edm, rm = (s.phases[0] for s in model.training_stages(recipe))
    torch.manual_seed(1)
    losses = edm.losses(batch)
    torch.manual_seed(1)  # the same dropout draw
    with torch.no_grad():
        mask, coarse = model.coarse(batch)
    # the frozen networks the losses built (seeded, untrained): VITON's layers and constants
    vgg = cached_perceptual(model, "untrained", None, coarse.device, *EDM_PERCEPTUAL)
    assert (vgg.SLICES, vgg.WEIGHTS) == ((4, 9, 14, 23, 32), EDM_PERCEPTUAL[1])
    assert float(losses["mask"]) == pytest.approx(float((mask - batch["worn_mask"]).abs().mean()), rel=1e-5)
    assert float(losses["content"]) == pytest.approx(float((coarse - batch["image"]).abs().mean()), rel=1e-5)
    assert float(losses["perceptual"]) == pytest.approx(3.0 * float(vgg(coarse, batch["image"])), rel=1e-4)
    assert float(losses["perceptual"]) > 0
    assert float(losses["total"]) == pytest.approx(sum(float(losses[k]) for k in ("mask", "content", "perceptual")), rel=1e-6)

    bn = model.edm.model.model[1].model[2]
    stats = bn.running_mean.clone()
    for p in model.edm.parameters():
        p.grad = None
    losses = rm.losses(batch)
    losses["total"].backward()
    assert torch.equal(bn.running_mean, stats) and model.edm.training  # eval inside, restored after
    assert all(p.grad is None for p in model.edm.parameters()) and all(p.grad is not None for p in model.rm.parameters())
    model.eval()
    with torch.no_grad():
        warped, coarse, support, identity = model._warped_and_coarse(batch)
        tryon, m = model.compose(warped, coarse, support)
    assert float(losses["identity_warps"]) == identity / 2
    vgg_rm = cached_perceptual(model, "untrained", None, tryon.device, *RM_PERCEPTUAL)
    assert (vgg_rm.SLICES, vgg_rm.WEIGHTS) == ((14, 23, 32), RM_PERCEPTUAL[1])
    assert len(model.__dict__["_perceptual_nets"]) == 2  # one network per stage, built once, outside the weights
    assert float(losses["l1"]) == pytest.approx(0.2 * float((tryon - batch["image"]).abs().mean()), rel=1e-4)
    assert float(losses["perceptual"]) == pytest.approx(0.8 * float(vgg_rm(tryon, batch["image"])), rel=1e-3)
    assert float(losses["mask"]) == pytest.approx(-0.1 * float(m.mean()), rel=1e-4)
    assert float(losses["tv"]) == pytest.approx(5e-6 * float(total_variation(m)), rel=1e-4)
    assert float(losses["total"]) == pytest.approx(sum(float(losses[k]) for k in ("l1", "perceptual", "mask", "tv")), rel=1e-5)
    assert float(m.max()) <= float(support.max()) + 1e-6 and bool(((m > 0) <= (support > 0)).all())  # inside the mask


def test_worn_masks_recipe_warps_onto_the_parsing() -> None:
    torch.manual_seed(0)
    model = create_model("viton", "tiny").eval()
    batch = _batch()
    with torch.no_grad():
        _, _, support, _ = model._warped_and_coarse(batch, "worn")
    assert torch.equal(support, batch["worn_mask"])


def test_generation_works_at_any_batch_size_and_follows_the_article() -> None:
    torch.manual_seed(0)
    model = create_model("viton", "tiny").eval()
    batch = {k: v for k, v in _batch(3).items() if k in model.INPUTS.generate}
    with torch.no_grad():
        three = model.generate(batch)
        one = model.generate({k: v[1:2] for k, v in batch.items()})
    assert three.shape == (3, 3, H, W) and torch.isfinite(three).all() and three.abs().max() <= 1
    assert torch.allclose(three[1:2], one, atol=1e-5)  # eval mode: a sample does not depend on its batch


# ---- the CLIs -------------------------------------------------------------------------------------

def _train(runner: CliRunner, data: Path, run: Path, steps: int) -> None:
    from models.cli import app

    result = runner.invoke(app, ["train", "--model", "viton", "--data", str(data), "--steps", str(steps), "--batch-size", "2",
                                 "--perceptual-backbone", "none", "--out", str(run), "--sample-every", str(steps), "--log-every", "1"])
    assert result.exit_code == 0, result.output


def test_zoo_lists_and_trains_both_stages(curated_ds: Path, tmp_path: Path) -> None:
    from models.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0 and "viton" in listed.output
    run = tmp_path / "viton"
    _train(runner, curated_ds, run, 2)
    info = json.loads((run / "train_config.json").read_text())
    assert info["stage_order"] == ["edm", "rm"] and info["recipe"]["lambda_perceptual"] == 3.0
    for stage in ("edm", "rm"):
        assert (run / "samples" / stage / "step_00000002.png").is_file()
    header = (run / "logs" / "rm" / "train.csv").read_text().splitlines()[0]
    assert "rm/identity_warps" in header and "rm/tv" in header and "rm/mask" in header
    out = tmp_path / "gen"
    result = runner.invoke(app, ["generate", "--checkpoint", str(run), "--data", str(curated_ds), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.png"))) > 0


@pytest.mark.slow  # ~50 s of CPU, most of it the evaluation's untrained Inception, not VITON
def test_evaluate_scores_a_trained_viton(curated_ds: Path, tmp_path: Path) -> None:
    from eval.cli import app as evaluate_app

    runner = CliRunner()
    run = tmp_path / "viton"
    _train(runner, curated_ds, run, 1)
    result = runner.invoke(evaluate_app, ["--model", "viton", "--checkpoint", str(run), "--data", str(curated_ds),
                                          "--feature-extractor", "untrained", "--out", str(tmp_path / "runs"), "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    (record,) = list((tmp_path / "runs").glob("*/summary.json"))
    summary = json.loads(record.read_text())
    assert summary["n_images"] > 0 and np.isfinite(summary["metrics"]["fid"])
    assert summary["provenance"]["data_needs"]["generate"] == ["article", "article_mask", "body_shape", "head", "keypoints"]
