"""Every registered model at `tiny`: shape, finiteness, learning on a fixed batch, save/load round-trip;
`paper` parameter counts equal the official ones; SMIS re-samples one class only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import create_model, list_models, load_pretrained
from models.registry import build_config

OFFICIAL_GENERATOR_PARAMS = {  # shared/reference/checkpoints/INDEX.md
    ("smis", "paper"): 96_324_451,
    ("spade", "paper-ade20k"): 96_492_483,
    ("spade", "paper-cityscapes"): 93_048_003,
    ("spade", "paper-coco"): 97_480_899,
}


def _batch(model, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:  # noqa: ANN001
    g = torch.Generator().manual_seed(seed)
    h, w = model.input_size
    labels = torch.zeros(n, h, w, dtype=torch.long)
    # blocky layouts so every class has an area (SMIS encodes each class's crop)
    for k in range(model.config.label_nc):
        y0 = int(torch.randint(0, h - 8, (1,), generator=g))
        x0 = int(torch.randint(0, w - 8, (1,), generator=g))
        labels[:, y0:y0 + 12, x0:x0 + 10] = k
    # the target is learnable from the layout: one colour per class, like garments filled by their texture
    palette = torch.rand(model.config.label_nc, 3, generator=g) * 2 - 1
    image = palette[labels].permute(0, 3, 1, 2).contiguous()
    return {"image": image, "labelmap": labels}


@pytest.mark.parametrize("name", list_models())
def test_tiny_model_generates_learns_and_round_trips(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    # no perceptual loss here (VGG19 on a 2-core box dominates the step); its wiring is tested below
    model = create_model(name, "tiny", perceptual_backbone="none")
    batch = _batch(model)
    model.eval()
    with torch.no_grad():
        out = model.generate(batch)
    assert out.shape == (2, 3, *model.input_size) and torch.isfinite(out).all() and out.abs().max() <= 1
    model.train()
    phases = model.training_phases()
    optims = [torch.optim.Adam(p.parameters, lr=p.lr, betas=p.betas) for p in phases]
    first = last = None
    for step in range(20):
        for phase, opt in zip(phases, optims):
            opt.zero_grad()
            losses = phase.losses(batch)
            assert torch.isfinite(losses["total"])
            losses["total"].backward()
            opt.step()
            if phase.name == "generator":
                rec = float(losses["l1"])
                first = rec if first is None else first
                last = rec
    assert last < first * 0.85, f"{name}: reconstruction L1 did not fall on a fixed batch ({first:.3f} -> {last:.3f})"
    model.eval()
    model.save_pretrained(tmp_path / name)
    again = load_pretrained(tmp_path / name).eval()
    with torch.no_grad():
        assert torch.equal(model.generate(batch), again.generate(batch))


@pytest.mark.parametrize(("name", "preset"), sorted(OFFICIAL_GENERATOR_PARAMS))
def test_paper_presets_have_the_official_parameter_counts(name: str, preset: str) -> None:
    with torch.device("meta"):  # shapes only: ~100M parameters allocate nothing
        model = create_model(name, preset)
    assert model.num_parameters(model.generator) == OFFICIAL_GENERATOR_PARAMS[(name, preset)]
    if name == "smis":
        assert model.num_parameters(model.encoder) == 12_835_712


def test_smis_resamples_only_the_chosen_class() -> None:
    torch.manual_seed(0)
    model = create_model("smis", "tiny", perceptual_backbone="none").eval()
    batch = _batch(model, n=1)
    seg = model.one_hot(batch["labelmap"])
    with torch.no_grad():
        codes, _ = model.encode(batch["image"], seg)
        captured = {}
        original = model.generator.forward
        model.generator.forward = lambda z, s: captured.setdefault("z", z) is not None and original(z, s)  # type: ignore[method-assign]
        model.resample_class(batch, 3, generator=torch.Generator().manual_seed(1))
    z, zc = captured["z"], model.config.z_per_class
    changed = (z - codes).abs().flatten(2).amax(-1)[0]  # per channel
    assert changed[3 * zc:4 * zc].min() > 0  # class 3's code was re-drawn
    assert torch.all(torch.cat([changed[:3 * zc], changed[4 * zc:]]) == 0)  # every other class kept


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid models: smis, spade"):
        create_model("gauGAN")
    with pytest.raises(ValueError, match="valid presets"):
        create_model("spade", "huge")
    with pytest.raises(ValueError, match="unknown config keys"):
        build_config("spade", "tiny", nfg=3)


def test_untrained_perceptual_loss_is_a_finite_generator_term() -> None:
    torch.manual_seed(0)
    model = create_model("spade", "tiny", perceptual_backbone="untrained")
    losses = model.training_phases()[0].losses(_batch(model, n=1))
    assert float(losses["vgg"]) > 0 and torch.isfinite(losses["total"])


def test_missing_vgg_weights_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = create_model("spade", "tiny")  # perceptual_backbone defaults to the real VGG19
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth"):
        model.training_phases()[0].losses(_batch(model))
