"""Shared layers checked against analytic results and the official layouts: TPS grids, GMM correlation,
the pix2pix / CP-VTON U-Net and the PatchGAN discriminators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models.layers.correlation import FeatureCorrelation, feature_correlation, feature_l2norm
from models.layers.discriminators import ConditionalPatchDiscriminator, MultiscaleDiscriminator, PatchDiscriminator
from models.layers.tps import TPSGridGen, pixel_coordinates, regular_control_points, warp
from models.layers.unet import UNetGenerator, UNetSkipBlock

CHECKPOINTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "checkpoints"


def _image(h: int = 9, w: int = 11, seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ---- TPS ------------------------------------------------------------------------------------------

def test_control_point_orders() -> None:
    a = [-1.0, 0.0, 1.0]
    x_major = regular_control_points(3, x_major=True)
    y_major = regular_control_points(3, x_major=False)
    assert x_major.shape == (9, 2)
    for i in range(3):
        for j in range(3):
            assert x_major[i * 3 + j].tolist() == [a[i], a[j]]  # CP-VTON: x outer
            assert y_major[i * 3 + j].tolist() == [a[j], a[i]]  # ACGPN: y outer
    assert torch.equal(regular_control_points(2, span=0.9), torch.tensor([[-0.9, -0.9], [-0.9, 0.9], [0.9, -0.9], [0.9, 0.9]]))


@pytest.mark.parametrize("align_corners", [True, False])
def test_pixel_coordinates_match_grid_sample_convention(align_corners: bool) -> None:
    base = pixel_coordinates(4, 5, align_corners)
    expected_x = [-1, -0.5, 0, 0.5, 1] if align_corners else [-0.8, -0.4, 0, 0.4, 0.8]
    expected_y = [-1, -1 / 3, 1 / 3, 1] if align_corners else [-0.75, -0.25, 0.25, 0.75]
    assert torch.allclose(base[0, :, 0], torch.tensor(expected_x, dtype=base.dtype), atol=1e-12)
    assert torch.allclose(base[:, 0, 1], torch.tensor(expected_y, dtype=base.dtype), atol=1e-12)
    # the same convention as affine_grid with the identity transform
    ref = F.affine_grid(torch.eye(2, 3, dtype=torch.float64)[None], [1, 1, 4, 5], align_corners=align_corners)[0]
    assert torch.allclose(base, ref, atol=1e-12)


@pytest.mark.parametrize("align_corners", [True, False])
def test_tps_identity(align_corners: bool) -> None:
    gen = TPSGridGen(9, 11, regular_control_points(5), align_corners=align_corners)
    grid = gen(gen.control_points.expand(2, -1, -1))
    assert grid.shape == (2, 9, 11, 2)
    assert torch.allclose(grid, pixel_coordinates(9, 11, align_corners).float().expand(2, -1, -1, -1), atol=1e-5)
    img = _image()
    assert torch.allclose(gen.warp(img, gen.control_points.expand(2, -1, -1)), img, atol=1e-5)
    assert torch.allclose(gen.forward_offsets(torch.zeros(2, 25, 2)), grid, atol=1e-6)


@pytest.mark.parametrize("align_corners", [True, False])
def test_tps_translation_and_scale_are_exact(align_corners: bool) -> None:
    gen = TPSGridGen(9, 11, regular_control_points(4, x_major=False), align_corners=align_corners)
    p, base = gen.control_points, gen.base_grid
    d = torch.tensor([0.13, -0.07])
    assert torch.allclose(gen((p + d)[None])[0], base + d, atol=1e-5)
    assert torch.allclose(gen((0.6 * p)[None])[0], 0.6 * base, atol=1e-5)


def test_tps_translation_by_two_pixels_shifts_the_image() -> None:
    h, w = 9, 11
    gen = TPSGridGen(h, w, regular_control_points(3), align_corners=True)
    d = torch.tensor([2 * 2 / (w - 1), 0.0])  # two pixel pitches in x
    img = _image(h, w)
    out = gen.warp(img, (gen.control_points + d).expand(2, -1, -1))
    # output column j reads source column j + 2
    assert torch.allclose(out[..., : w - 2], img[..., 2:], atol=1e-4)
    assert not torch.allclose(out, img, atol=1e-2)


def test_tps_interpolates_non_affine_source_points() -> None:
    # grid_size 3 on a 5x5 output with align_corners=True: control point (a[i], a[j]) sits at pixel (2j, 2i)
    gen = TPSGridGen(5, 5, regular_control_points(3), align_corners=True)
    src = gen.control_points + 0.2 * torch.randn(2, 9, 2, generator=torch.Generator().manual_seed(1))
    grid = gen(src)
    for k in range(9):
        i, j = divmod(k, 3)
        assert torch.allclose(grid[:, 2 * j, 2 * i], src[:, k], atol=1e-4)
    # and it is genuinely non-affine: the best affine fit of the grid leaves a residual
    design = torch.cat([torch.ones(25, 1), gen.base_grid.reshape(-1, 2)], dim=1)
    coef = torch.linalg.lstsq(design, grid[0].reshape(-1, 2)).solution
    assert (design @ coef - grid[0].reshape(-1, 2)).abs().max() > 1e-2


def test_tps_batch_gradients_and_cpvton_theta_layout() -> None:
    gen = TPSGridGen(6, 7, regular_control_points(3), align_corners=False)
    src = (gen.control_points + 0.1 * torch.randn(3, 9, 2, generator=torch.Generator().manual_seed(2))).requires_grad_()
    grid = gen(src)
    for b in range(3):
        assert torch.allclose(grid[b], gen(src[b : b + 1])[0], atol=1e-6)
    grid[1].sum().backward()
    assert src.grad is not None and src.grad[1].abs().sum() > 0 and src.grad[0].abs().sum() == 0
    # theta [B, 2N] = (all x offsets, all y offsets), as CP-VTON's regression emits it
    offsets = src.detach() - gen.control_points
    theta = torch.cat([offsets[..., 0], offsets[..., 1]], dim=1)
    assert torch.allclose(gen.forward_offsets(theta), grid.detach(), atol=1e-6)


def test_tps_constants_stay_out_of_the_state_dict() -> None:
    gen = TPSGridGen(6, 7, regular_control_points(3), align_corners=True)
    assert gen.state_dict() == {}
    assert gen.mapping.shape == (42, 9)
    assert torch.allclose(gen.mapping.sum(1), torch.ones(42), atol=1e-5)  # reproduces constants: rows sum to 1


def test_warp_passes_align_corners_through() -> None:
    img = _image(5, 5)
    grid = pixel_coordinates(5, 5, align_corners=True).float().expand(2, -1, -1, -1)
    assert torch.allclose(warp(img, grid, align_corners=True), img, atol=1e-6)
    assert not torch.allclose(warp(img, grid, align_corners=False), img, atol=1e-3)


# ---- correlation --------------------------------------------------------------------------------

def _loop_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    n, _, h, w = a.shape
    out = torch.zeros(n, h * w, h, w, dtype=a.dtype)
    for ha in range(h):
        for wa in range(w):
            for hb in range(h):
                for wb in range(w):
                    out[:, wa * h + ha, hb, wb] = (a[:, :, ha, wa] * b[:, :, hb, wb]).sum(1)
    return out


def _official_recipe(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    n, c, h, w = a.shape
    fa = a.transpose(2, 3).contiguous().reshape(n, c, h * w)
    fb = b.reshape(n, c, h * w).transpose(1, 2)
    return torch.bmm(fb, fa).reshape(n, h, w, h * w).transpose(2, 3).transpose(1, 2)


def test_correlation_matches_loops_and_official_recipe() -> None:
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 4, 3, 5, generator=g), torch.randn(2, 4, 3, 5, generator=g)
    out = feature_correlation(a, b)
    assert out.shape == (2, 15, 3, 5)
    assert torch.allclose(out, _loop_correlation(a, b), atol=1e-5)
    assert torch.allclose(out, _official_recipe(a, b), atol=1e-5)
    assert torch.allclose(FeatureCorrelation()(a, b), out, atol=0)
    assert not torch.allclose(out, feature_correlation(b, a), atol=1e-3)  # the order of a, b matters


def test_correlation_ignores_memory_layout() -> None:
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(2, 6, 4, 3, generator=g), torch.randn(2, 6, 4, 3, generator=g)
    ref = feature_correlation(a, b)
    cl_a, cl_b = a.to(memory_format=torch.channels_last), b.to(memory_format=torch.channels_last)
    assert not cl_a.is_contiguous()
    assert torch.allclose(feature_correlation(cl_a, cl_b), ref, atol=1e-5)
    # same values held transposed in memory: [B,C,W,H] storage viewed as [B,C,H,W]
    ta, tb = a.transpose(2, 3).contiguous().transpose(2, 3), b.transpose(2, 3).contiguous().transpose(2, 3)
    assert not ta.is_contiguous()
    assert torch.allclose(feature_correlation(ta, tb), ref, atol=1e-5)


def test_feature_l2norm() -> None:
    x = torch.tensor([[3.0, 0.0], [4.0, 0.0]]).reshape(1, 2, 1, 2)
    y = feature_l2norm(x, eps=1e-6)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([0.6, 0.8]), atol=1e-6)
    assert torch.equal(y[0, :, 0, 1], torch.zeros(2))  # eps keeps an all-zero feature finite
    r = feature_l2norm(torch.randn(2, 5, 3, 3, generator=torch.Generator().manual_seed(5)))
    assert torch.allclose(r.norm(dim=1), torch.ones(2, 3, 3), atol=1e-5)


# ---- U-Net --------------------------------------------------------------------------------------

def test_unet_resize_conv_matches_cpvton_tom_layout() -> None:
    path = CHECKPOINTS / "cpvton_tom.json"
    if not path.is_file():
        pytest.skip(f"reference layout {path} not found (shared/ must sit beside the repo)")
    ref = json.loads(path.read_text())
    with torch.device("meta"):
        net = UNetGenerator(25, 4, 6, 64, norm="instance", upsample="resize-conv", final_norm=True)
    ours = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in net.state_dict().items()]
    assert ours == ref["keys"]
    assert sum(p.numel() for p in net.parameters()) == ref["params"] == 21_349_252


def test_unet_forward_shapes_and_skips() -> None:
    torch.manual_seed(0)
    for upsample in ("resize-conv", "transpose"):
        net = UNetGenerator(25, 4, 4, ngf=8, upsample=upsample).eval()
        x = torch.randn(2, 25, 64, 64)
        assert net(x).shape == (2, 4, 64, 64)
        up = next(m for m in reversed(net.model.model) if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
        assert up.in_channels == 2 * 8  # the skip doubles the outermost up conv's input
    inner = net.model.model[1].model[3].model[3]
    assert isinstance(inner, UNetSkipBlock) and inner.model[1].out_channels == 64 and len(inner.model) == 5


def test_unet_skip_carries_the_activated_input() -> None:
    torch.manual_seed(0)
    block = UNetSkipBlock(4, 8, innermost=True, norm="none", upsample="resize-conv")
    x = torch.randn(1, 4, 8, 8)
    out = block(x)
    assert out.shape == (1, 8, 8, 8)
    # the references' in-place LeakyReLU overwrites x before the concatenation reads it
    assert torch.allclose(out[:, :4], F.leaky_relu(x, 0.2), atol=0)


def test_unet_options() -> None:
    tanh = UNetGenerator(3, 3, 3, ngf=4, final_activation="tanh")
    assert isinstance(tanh.model.model[-1], torch.nn.Tanh)
    assert tanh(torch.randn(1, 3, 16, 16) * 100).abs().max() <= 1
    # final_norm (CP-VTON TOM): the raw output is instance-normalised, per sample and channel mean 0, var 1
    raw = UNetGenerator(5, 4, 3, ngf=4, upsample="resize-conv", final_norm=True)(torch.randn(2, 5, 16, 16))
    assert torch.allclose(raw.mean((2, 3)), torch.zeros(2, 4), atol=1e-5)
    assert torch.allclose(raw.var((2, 3), unbiased=False), torch.ones(2, 4), atol=1e-3)
    assert not isinstance(UNetGenerator(5, 4, 3, ngf=4, upsample="resize-conv").model.model[-1], torch.nn.InstanceNorm2d)
    # dropout only in the 8*ngf -> 8*ngf middle blocks (pix2pix): num_downs 6 has exactly one
    drop = UNetGenerator(3, 3, 6, ngf=4, dropout=True)
    assert sum(isinstance(m, torch.nn.Dropout) for m in drop.modules()) == 1
    batch = UNetGenerator(3, 3, 3, ngf=4, norm="batch", upsample="resize-conv")
    assert batch.model.model[0].bias is None and batch.model.model[4].bias is not None  # no norm after the last conv
    with pytest.raises(ValueError):
        UNetGenerator(3, 3, 3, norm="layer")


# ---- discriminators -----------------------------------------------------------------------------

# MultiscaleDiscriminator(11, 16, 3, 1).state_dict(), captured before ConditionalPatchDiscriminator existed
MULTISCALE_11_16_3_1 = [
    ("scales.0.layers.0.0.weight", (16, 11, 4, 4)),
    ("scales.0.layers.0.0.bias", (16,)),
    ("scales.0.layers.1.0.parametrizations.weight.original", (32, 16, 4, 4)),
    ("scales.0.layers.1.0.parametrizations.weight.0._u", (32,)),
    ("scales.0.layers.1.0.parametrizations.weight.0._v", (256,)),
    ("scales.0.layers.2.0.parametrizations.weight.original", (64, 32, 4, 4)),
    ("scales.0.layers.2.0.parametrizations.weight.0._u", (64,)),
    ("scales.0.layers.2.0.parametrizations.weight.0._v", (512,)),
    ("scales.0.layers.3.weight", (1, 64, 4, 4)),
    ("scales.0.layers.3.bias", (1,)),
]


def test_default_discriminators_keep_their_layout() -> None:
    ms = MultiscaleDiscriminator(11, 16, 3, 1)
    assert [(k, tuple(v.shape)) for k, v in ms.state_dict().items()] == MULTISCALE_11_16_3_1
    patch = PatchDiscriminator(11, 16, 3)
    expected = [(k.removeprefix("scales.0."), s) for k, s in MULTISCALE_11_16_3_1]
    assert [(k, tuple(v.shape)) for k, v in patch.state_dict().items()] == expected
    assert isinstance(patch.layers[1][1], torch.nn.InstanceNorm2d) and patch.noise_sigma == 0.0
    assert len(MultiscaleDiscriminator(3, 8, 4, 2).state_dict()) == 26  # two scales of 13 keys


@pytest.mark.parametrize("num_d", [1, 2])
def test_conditional_discriminator_shapes(num_d: int) -> None:
    d = ConditionalPatchDiscriminator(3, 3, ndf=8, n_layers=3, num_d=num_d)
    outs = d(torch.randn(2, 3, 32, 24), torch.randn(2, 3, 32, 24))
    assert len(outs) == num_d and all(len(o) == 4 for o in outs)
    assert d.scales[0].layers[0][0].in_channels == 6
    assert [tuple(f.shape) for f in outs[0]] == [(2, 8, 17, 13), (2, 16, 9, 7), (2, 32, 10, 8), (2, 1, 11, 9)]
    if num_d == 2:
        assert outs[1][-1].shape == (2, 1, 7, 6)
    assert not any("parametrizations" in k for k in d.state_dict())  # spectral off by default here


def test_conditional_discriminator_condition_matters() -> None:
    torch.manual_seed(0)
    d = ConditionalPatchDiscriminator(3, 2, ndf=8).eval()
    img = torch.randn(1, 3, 32, 32)
    assert not torch.allclose(d(img, torch.zeros(1, 2, 32, 32))[0][-1], d(img, torch.ones(1, 2, 32, 32))[0][-1])


def test_conditional_discriminator_noise_only_in_training() -> None:
    torch.manual_seed(0)
    noisy = ConditionalPatchDiscriminator(3, 3, ndf=8, noise_sigma=0.2)
    clean = ConditionalPatchDiscriminator(3, 3, ndf=8, noise_sigma=0.0)
    clean.load_state_dict(noisy.state_dict())
    img, cond = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    noisy.train()
    first, second = noisy(img, cond)[0][-1], noisy(img, cond)[0][-1]
    assert not torch.allclose(first, second, atol=1e-3)
    noisy.eval()
    assert torch.equal(noisy(img, cond)[0][-1], noisy(img, cond)[0][-1])
    clean.train()
    for a, b in zip(noisy(img, cond)[0], clean(img, cond)[0]):  # eval(noisy) == train(sigma 0)
        assert torch.allclose(a, b, atol=1e-6)


def test_discriminator_norm_and_spectral_options() -> None:
    plain = PatchDiscriminator(3, 8, 3, norm="none", spectral=False)
    keys = list(plain.state_dict())
    assert "layers.1.0.bias" in keys and not any("parametrizations" in k for k in keys)  # no norm -> conv bias
    batch = PatchDiscriminator(3, 8, 3, norm="batch")
    assert isinstance(batch.layers[1][1], torch.nn.BatchNorm2d) and "layers.1.1.running_mean" in batch.state_dict()
    with pytest.raises(ValueError):
        PatchDiscriminator(3, 8, 3, norm="group")


# --------------------------------------------------------------------------------------------------
# GAN objectives and the Gram style term (models/layers/losses.py)


def test_gan_objectives_match_their_formulas() -> None:
    from models.layers.losses import gan_d_fake_loss, gan_d_loss, gan_g_loss

    g = torch.Generator().manual_seed(0)
    real = [torch.randn(2, 1, 5, 4, generator=g) * 2, torch.randn(2, 1, 3, 2, generator=g) * 2]  # two scales
    fake = [torch.randn(2, 1, 5, 4, generator=g) * 2, torch.randn(2, 1, 3, 2, generator=g) * 2]

    def mean_over_scales(values):  # noqa: ANN001, ANN202
        return sum(values) / len(values)

    expected_d = {
        "hinge": mean_over_scales([torch.clamp(1 - r, min=0).mean() + torch.clamp(1 + f, min=0).mean() for r, f in zip(real, fake)]),
        "lsgan": mean_over_scales([0.5 * (((r - 1) ** 2).mean() + (f**2).mean()) for r, f in zip(real, fake)]),
        "bce": mean_over_scales([-torch.log(torch.sigmoid(r)).mean() - torch.log(1 - torch.sigmoid(f)).mean() for r, f in zip(real, fake)]),
    }
    expected_g = {
        "hinge": mean_over_scales([-f.mean() for f in fake]),
        "lsgan": mean_over_scales([((f - 1) ** 2).mean() for f in fake]),
        "bce": mean_over_scales([-torch.log(torch.sigmoid(f)).mean() for f in fake]),  # non-saturating
    }
    for objective in ("hinge", "lsgan", "bce"):
        assert torch.allclose(gan_d_loss(objective, real, fake), expected_d[objective], atol=1e-5), objective
        assert torch.allclose(gan_g_loss(objective, fake), expected_g[objective], atol=1e-5), objective
    # the fake half alone: what an extra fake sample adds
    assert torch.allclose(gan_d_fake_loss("hinge", fake), mean_over_scales([torch.clamp(1 + f, min=0).mean() for f in fake]))
    with pytest.raises(ValueError, match="valid: hinge, lsgan, bce"):
        gan_g_loss("wgan", fake)


def test_gram_matrix_and_style_loss() -> None:
    from models.layers.losses import VGGPerceptualLoss, gram_matrix

    x = torch.zeros(1, 2, 2, 2)
    x[0, 0] = 1.0  # channel 0 all ones, channel 1 zeros
    x[0, 1, 0, 0] = 2.0
    gram = gram_matrix(x)
    # <c0,c0> = 4, <c0,c1> = 2, <c1,c1> = 4, normalised by C*H*W = 8
    assert torch.allclose(gram, torch.tensor([[[0.5, 0.25], [0.25, 0.5]]]))
    torch.manual_seed(0)
    loss = VGGPerceptualLoss("untrained")
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    perceptual, style = loss.perceptual_and_style(a, b)
    assert torch.allclose(perceptual, loss(a, b)) and float(style) > 0
    assert float(loss.perceptual_and_style(a, a)[1]) == 0.0
