"""Every registered model at `tiny`: shape, finiteness, learning on a fixed batch, save/load round-trip;
`paper` parameter counts equal the official ones; SMIS re-samples one class only."""

from __future__ import annotations

from pathlib import Path

import dataclasses
import json

import pytest
import torch

from models import create_model, list_models, load_pretrained
from models.registry import build_config, build_recipe, get_model_class
from tests.model_fixtures import batch_for

# The throwaway model of tests/test_zoo_agnostic.py (no label map, two stages) joins the every-model test.
import tests.zoo_plugin_blend  # noqa: E402,F401

OFFICIAL_GENERATOR_PARAMS = {  # shared/reference/checkpoints/INDEX.md
    ("smis", "paper"): 96_324_451,
    ("spade", "paper-ade20k"): 96_492_483,
    ("spade", "paper-cityscapes"): 93_048_003,
    ("spade", "paper-coco"): 97_480_899,
}


def _recipe(name: str, **overrides: object):  # noqa: ANN202
    """The model's default recipe without a perceptual loss where it has one (VGG19 on a 2-core box
    dominates the step; its wiring is tested below)."""
    fields = {f.name for f in dataclasses.fields(get_model_class(name).Recipe)}
    if "perceptual_backbone" in fields:
        overrides.setdefault("perceptual_backbone", "none")
    return build_recipe(name, "default", **overrides)


def _batch(model, n: int = 2, seed: int = 0, keys: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:  # noqa: ANN001
    return batch_for(model.data_needs(), n=n, seed=seed, keys=keys)


def _generation_l1(model, batch) -> float:  # noqa: ANN001
    model.eval()
    with torch.no_grad():
        out = model.generate(batch)
    model.train()
    return float((out - batch["image"]).abs().mean())


@pytest.mark.parametrize("name", list_models())
def test_tiny_model_generates_learns_and_round_trips(name: str, tmp_path: Path) -> None:
    """Every registered model, from what it declares: a batch of exactly its training keys, generation
    from exactly its generation keys, a few steps of every stage in order (generation, which chains the
    stages, must move towards the ground truth), and a save/load round trip through safetensors."""
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    model = create_model(name, "tiny")
    needs = model.data_needs()
    batch = _batch(model)
    model.eval()
    with torch.no_grad():
        out = model.generate(_batch(model, keys=needs.generate))  # nothing beyond the declared keys
    assert out.shape == (2, 3, *model.input_size) and torch.isfinite(out).all() and out.abs().max() <= 1
    model.train()
    stages = model.training_stages(_recipe(name))
    assert stages and len({s.name for s in stages}) == len(stages)
    before = _generation_l1(model, batch)
    for stage in stages:
        optims = [torch.optim.Adam(p.parameters, lr=p.lr, betas=p.betas) for p in stage.phases]
        for _ in range(25):
            for phase, opt in zip(stage.phases, optims):
                opt.zero_grad()
                losses = phase.losses(batch)
                assert torch.isfinite(losses["total"]), (stage.name, phase.name, losses)
                losses["total"].backward()
                opt.step()
    after = _generation_l1(model, batch)
    assert after < before * 0.85, f"{name}: generation L1 to the ground truth did not fall on a fixed batch ({before:.3f} -> {after:.3f})"
    model.label_set = "smis-8" if needs.num_classes else None
    model.save_pretrained(tmp_path / name)
    assert (tmp_path / name / "model.safetensors").is_file() and not (tmp_path / name / "weights.pt").exists()
    doc = json.loads((tmp_path / name / "config.json").read_text())
    assert doc["data"]["generate"] == list(needs.generate) and doc["data"]["size"] == list(model.input_size)
    again = load_pretrained(tmp_path / name)
    assert not again.training  # from_pretrained returns a model ready for inference
    assert again.label_set == model.label_set
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.generate(batch), again.generate(batch))
    # the unpaired protocol as the model declares it: a model claiming another article's try-on must change
    # its output with the article; one whose generation reads no article declares none (or another meaning)
    meaning = model.unpaired_protocol()
    if "article" not in needs.generate:
        assert meaning is None or "article" not in meaning.split("(")[0], (name, meaning)
    else:
        both = _batch(model, keys=tuple(dict.fromkeys(needs.generate + ("negative", "negative_mask"))))
        with torch.no_grad():
            assert not torch.equal(model.generate(both), model.generate_unpaired(both)), f"{name}: the article changes nothing"


@pytest.mark.parametrize(("name", "preset"), sorted(OFFICIAL_GENERATOR_PARAMS))
def test_paper_presets_have_the_official_parameter_counts(name: str, preset: str) -> None:
    with torch.device("meta"):  # shapes only: ~100M parameters allocate nothing
        model = create_model(name, preset)
    assert model.num_parameters(model.generator) == OFFICIAL_GENERATOR_PARAMS[(name, preset)]
    if name == "smis":
        assert model.num_parameters(model.encoder) == 12_835_712


def test_smis_resamples_only_the_chosen_class() -> None:
    torch.manual_seed(0)
    model = create_model("smis", "tiny").eval()
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
    with pytest.raises(ValueError, match="valid models: " + ", ".join(list_models())):
        create_model("gauGAN")
    with pytest.raises(ValueError, match="valid presets"):
        create_model("spade", "huge")
    with pytest.raises(ValueError, match="unknown preset keys"):
        build_config("spade", "tiny", nfg=3)
    with pytest.raises(ValueError, match="valid recipes: default"):
        build_recipe("spade", "fast")
    with pytest.raises(ValueError, match="unknown recipe keys.*lambda_feat"):
        build_recipe("spade", lamda_feat=1.0)


def test_untrained_perceptual_loss_is_a_finite_generator_term() -> None:
    torch.manual_seed(0)
    model = create_model("spade", "tiny")
    losses = model.training_phases(build_recipe("spade", perceptual_backbone="untrained"))[0].losses(_batch(model, n=1))
    assert float(losses["vgg"].detach()) > 0 and torch.isfinite(losses["total"])


def test_missing_vgg_weights_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = create_model("spade", "tiny")
    recipe = build_recipe("spade")  # perceptual_backbone defaults to the real VGG19
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth"):
        model.training_phases(recipe)[0].losses(_batch(model))


def test_config_json_holds_architecture_only() -> None:
    """Learning rates, loss weights, backbones and file paths are the recipe's (train_config.json)."""
    for name in list_models():
        cls = get_model_class(name)
        arch = {f.name for f in dataclasses.fields(cls.Config)}
        training = {f.name for f in dataclasses.fields(cls.Recipe)}
        assert not arch & training, (name, arch & training)
        assert not {k for k in arch if k.startswith(("lr", "lambda", "vgg", "perceptual"))}, (name, arch)


def test_first_format_folders_still_load(tmp_path: Path) -> None:
    """weights.pt + a config mixing training fields (format 1) loads; the training fields are dropped."""
    torch.manual_seed(0)
    model = create_model("spade", "tiny").eval()
    old = tmp_path / "old"
    old.mkdir()
    torch.save(model.state_dict(), old / "weights.pt")
    config = {**dataclasses.asdict(model.config), "lr": 2e-4, "lambda_vgg": 10.0, "vgg_weights": "/elsewhere/vgg.pth"}
    (old / "config.json").write_text(json.dumps({"model": "spade", "config": config, "format_version": 1}))
    again = load_pretrained(old)
    batch = _batch(model, keys=("labelmap",))
    with torch.no_grad():
        assert torch.equal(model.generate(batch), again.generate(batch))
    # a current-format config with a training field is refused, naming it
    (old / "config.json").write_text(json.dumps({"model": "spade", "config": config, "format_version": 2}))
    with pytest.raises(ValueError, match="not architecture"):
        load_pretrained(old)
