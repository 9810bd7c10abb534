"""Inference of the SPADE family as the official releases are used: the label-map lookups and the one
channels-last layout give the dense computation's numbers, loaded models are in eval mode and pure,
sampled style codes follow the official test and a seed, instance edges follow the official rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models import create_model, load_pretrained
from models.layers.gan import BLOCK_NAMES
from models.layers.spade_norm import LabelMaps, one_hot_conv
from models.zoo.spade import instance_edges


def _labelmap(model: torch.nn.Module, batch: int = 2, seed: int = 0, ids: int | None = None) -> torch.Tensor:
    h, w = model.input_size
    g = torch.Generator().manual_seed(seed)
    cells = torch.randint(0, ids or model.config.label_nc, (batch, h // 4, w // 4), generator=g)
    return cells.repeat_interleave(4, 1).repeat_interleave(4, 2)


# ---- the pre-change computation, written out: dense one-hot, contiguous tensors, plain convolutions ----
def _ref_spade(norm: torch.nn.Module, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    actv = norm.mlp_shared(F.interpolate(seg, size=x.shape[-2:], mode="nearest"))
    return norm.param_free_norm(x) * (1 + norm.mlp_gamma(actv)) + norm.mlp_beta(actv)


def _ref_decode(gen: torch.nn.Module, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    for name in BLOCK_NAMES:
        block = getattr(gen, name)
        shortcut = block.conv_s(_ref_spade(block.norm_s, x, seg)) if block.learned_shortcut else x
        dx = block.conv_0(F.leaky_relu(_ref_spade(block.norm_0, x, seg), 0.2))
        x = shortcut + block.conv_1(F.leaky_relu(_ref_spade(block.norm_1, dx, seg), 0.2))
        if name in gen.upsample_after:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
    return torch.tanh(gen.conv_img(F.leaky_relu(x, 0.2)))


@pytest.mark.parametrize("name,overrides", [("spade", {}), ("spade", {"instance_edges": True}), ("smis", {})])
def test_generate_equals_the_dense_contiguous_computation(name: str, overrides: dict) -> None:
    torch.manual_seed(0)
    model = create_model(name, "tiny", **overrides).eval()
    labelmap = _labelmap(model)
    instance = (labelmap * 7 + torch.arange(labelmap.shape[-1]) // 20)  # instance boundaries inside classes too
    batch = {"labelmap": labelmap, "instance": instance, "image": torch.rand(2, 3, *model.input_size) * 2 - 1}
    seg = F.one_hot(labelmap, model.config.label_nc).permute(0, 3, 1, 2).float().contiguous()
    if overrides.get("instance_edges"):
        seg = torch.cat([seg, instance_edges(instance)], 1)
    with torch.no_grad():
        if name == "spade":
            ours = model.generate(batch)
            ref = _ref_decode(model.generator, model.generator.fc(F.interpolate(seg, size=model.generator.latent)), seg)
        else:
            codes = model.sample_codes(2, torch.Generator().manual_seed(4))
            ours = model.generate(batch, style="sample", generator=torch.Generator().manual_seed(4))
            ref = _ref_decode(model.generator, model.generator.fc(codes), seg)
            encoded = model.generate(batch, style="encode")
            mu, _ = model.encode(batch["image"], seg)
            assert (encoded - _ref_decode(model.generator, model.generator.fc(mu), seg)).abs().max() < 1e-5
    assert ours.is_contiguous() and ours.shape == ref.shape
    assert (ours - ref).abs().max() < 1e-5  # float rounding only (the issue allows 1e-4)


def test_one_hot_lookup_is_the_convolution_for_grouped_convs_and_extra_channels() -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, 8, (2, 9, 7))
    extra = (torch.rand(2, 1, 9, 7) > 0.5).float()
    maps = LabelMaps(ids, 8, extra)
    grouped = torch.nn.Conv2d(8, 12, 3, padding=1, groups=4)
    plain = torch.nn.Conv2d(9, 12, 3, padding=1)
    with torch.no_grad():
        assert (one_hot_conv(grouped, LabelMaps(ids, 8)) - grouped(LabelMaps(ids, 8).dense())).abs().max() < 1e-6
        assert (one_hot_conv(plain, maps) - plain(maps.dense())).abs().max() < 1e-6
        small = maps.at((4, 3))  # resized ids = resized one-hot (nearest picks one source pixel for every channel)
        assert torch.equal(small.dense(), F.interpolate(maps.dense(), size=(4, 3), mode="nearest"))
        assert maps.at((4, 3)) is small  # cached


def test_instance_edges_follow_the_official_four_neighbour_rule() -> None:
    inst = torch.tensor([[[1, 1, 2], [1, 1, 2], [3, 3, 3]]])
    expected = torch.tensor([[[0, 1, 1], [1, 1, 1], [1, 1, 1]]]).float()
    assert torch.equal(instance_edges(inst)[:, 0], expected)
    assert instance_edges(torch.zeros(1, 4, 4, dtype=torch.long)).sum() == 0


@pytest.mark.parametrize("name", ["spade", "smis"])
def test_loaded_model_is_in_eval_mode_and_generate_changes_nothing(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model(name, "tiny")
    model.train()
    with torch.no_grad():  # a training-mode pass moves BN and spectral-norm buffers away from their init
        model.generator(model.one_hot(_labelmap(model)), ) if name == "spade" else model.generator(
            model.sample_codes(2), model.one_hot(_labelmap(model)))
    model.save_pretrained(tmp_path / "m")
    loaded = load_pretrained(tmp_path / "m")
    assert not loaded.training and not any(m.training for m in loaded.modules())
    before = {k: v.clone() for k, v in loaded.state_dict().items()}
    batch = {"labelmap": _labelmap(loaded, seed=3), "image": torch.rand(2, 3, *loaded.input_size) * 2 - 1}
    first, second = loaded.generate(batch), loaded.generate(batch)  # no .eval(), no no_grad: as a user calls it
    assert torch.equal(first, second)
    after = loaded.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), [k for k in before if not torch.equal(before[k], after[k])]
    assert not first.requires_grad


def _generator_only_smis(tmp_path: Path) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("smis", "tiny")
    model.omitted = ("discriminator", "encoder")  # what `zoo import smis G.pth` without --encoder writes
    model.save_pretrained(tmp_path / "g")
    return load_pretrained(tmp_path / "g")


def test_generator_only_folder_samples_styles_reproducibly_as_the_official_test(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    model = _generator_only_smis(tmp_path)
    keys = load_file(str(tmp_path / "g" / "model.safetensors")).keys()
    assert keys and all(k.startswith("generator.") for k in keys)  # no random encoder/discriminator saved
    assert model.omitted == ("discriminator", "encoder") and model.default_style == "sample"
    batch = {"labelmap": _labelmap(model, seed=1), "image": torch.zeros(2, 3, *model.input_size)}
    a = model.generate(batch, generator=torch.Generator().manual_seed(7))
    b = model.generate(batch, generator=torch.Generator().manual_seed(7))
    c = model.generate(batch, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the official vis_test: z = randn(B, C, 8, h*w) from the global RNG, viewed as (B, 8C, h, w)
    torch.manual_seed(7)
    h, w = model.generator.latent
    z = torch.randn(2, model.config.label_nc, 8, h * w).view(2, 8 * model.config.label_nc, h, w)
    assert torch.equal(a, model.generate_from_codes(batch["labelmap"], z))
    # per sample: batch 1 twice draws what batch 2 draws once (CPU normal draws of 16-multiples)
    g = torch.Generator().manual_seed(7)
    halves = [model.generate({k: v[i:i + 1] for k, v in batch.items()}, generator=g) for i in range(2)]
    assert torch.equal(torch.cat(halves), a)
    with pytest.raises(ValueError, match="no trained encoder"):
        model.generate(batch, style="encode")


def test_resample_class_with_sampled_codes_is_the_official_test_mask(tmp_path: Path) -> None:
    model = _generator_only_smis(tmp_path)
    batch = {"labelmap": _labelmap(model, seed=1), "image": torch.zeros(2, 3, *model.input_size)}
    k, zc = 5, model.config.z_per_class
    out = model.resample_class(batch, k, generator=torch.Generator().manual_seed(3))
    again = model.resample_class(batch, k, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, again)
    # official --test_mask k: z drawn, then z[:, k] = randn(B, 8, h*w); every other class keeps its code
    g = torch.Generator().manual_seed(3)
    h, w = model.generator.latent
    z = torch.randn(2, model.config.label_nc, zc, h * w, generator=g)
    plain = model.generate_from_codes(batch["labelmap"], z.view(2, -1, h, w))
    z[:, k] = torch.randn(2, zc, h * w, generator=g)
    assert torch.equal(out, model.generate_from_codes(batch["labelmap"], z.view(2, -1, h, w)))
    assert not torch.equal(out, plain)


def _unfrozen(model: torch.nn.Module, batch: dict, codes: torch.Tensor | None) -> torch.Tensor:
    """The plain computation (dense one-hot through the modules as they compute in training, no cache)."""
    with torch.no_grad():
        seg = model.one_hot(batch)
        return model.generator(seg) if codes is None else model.generator(codes, seg)


def _frozen_out(model: torch.nn.Module, batch: dict, codes: torch.Tensor | None) -> torch.Tensor:
    return model.generate(batch) if codes is None else model.generate_from_codes(batch["labelmap"], codes)


@pytest.mark.parametrize("name,overrides", [("spade", {"instance_edges": True}), ("smis", {})])
def test_frozen_inference_equals_the_plain_path_and_follows_weight_changes(name: str, overrides: dict) -> None:
    """generate() keeps folded/packed weights between calls (models.layers.spade_norm.frozen): it must give the
    plain computation's numbers, with running statistics far from BN's init (the fold is exercised), at two
    batch sizes (oneDNN weights packed for the first), and must follow an optimiser step and in-place edits."""
    from models.layers import spade_norm

    torch.manual_seed(0)
    model = create_model(name, "tiny", **overrides)
    for m in model.generator.modules():  # trained-looking BN statistics: mean ~ N(0, 2), var in [0.2, 5]
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn_like(m.running_mean) * 2)
            m.running_var.copy_(torch.rand_like(m.running_var) * 4.8 + 0.2)
    model.eval()
    labelmap = _labelmap(model, seed=5)
    batch = {"labelmap": labelmap, "instance": labelmap * 3 + torch.arange(labelmap.shape[-1]) // 10}
    codes = model.sample_codes(2, torch.Generator().manual_seed(1)) if name == "smis" else None
    half = {k: v[:1] for k, v in batch.items()}
    for _ in range(2):  # the first call builds the cache, the second reads it
        out = _frozen_out(model, batch, codes)
        assert (out - _unfrozen(model, batch, codes)).abs().max() < 1e-5
    assert (_frozen_out(model, half, None if codes is None else codes[:1]) - out[:1]).abs().max() < 1e-5
    blocks = [getattr(model.generator, b) for b in BLOCK_NAMES]
    assert all(b.norm_0 in spade_norm._FROZEN and b.conv_0 in spade_norm._FROZEN for b in blocks)
    assert not any(k.startswith("_") for k in model.state_dict())

    # train() drops the cache; an optimiser step (through the plain training computation) changes the output
    model.train()
    assert not any(m in spade_norm._FROZEN for m in model.modules())
    optimizer = torch.optim.SGD(model.generator.parameters(), lr=0.5)
    seg = model.one_hot(batch)
    fake = model.generator(seg) if codes is None else model.generator(codes, seg)
    fake.square().mean().backward()
    optimizer.step()
    model.eval()
    stepped = _frozen_out(model, batch, codes)
    assert (stepped - out).abs().max() > 1e-3
    assert (stepped - _unfrozen(model, batch, codes)).abs().max() < 1e-5

    # still in eval: in-place edits of a spectral conv's weight and of a BN statistic are seen at the next call
    with torch.no_grad():
        model.generator.up_0.conv_0.parametrizations.weight.original.mul_(-1)
        model.generator.up_1.norm_1.param_free_norm.running_mean.add_(1.0)
    edited = _frozen_out(model, batch, codes)
    assert (edited - stepped).abs().max() > 1e-3
    assert (edited - _unfrozen(model, batch, codes)).abs().max() < 1e-5
