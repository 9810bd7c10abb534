"""`zoo import` / `zoo generate` / `zoo train --init-from` as a user of the official releases meets them:
the flags, the refusals that say what to pass, generator-only folders and the label-set messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from models import create_model, load_pretrained
from models.cli import app
from tests.model_fixtures import ToyTryOnDataset, synthesise_official_state

runner = CliRunner()


@pytest.fixture
def toy_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random batch-contract samples with 8 label ids instead of curated arrays (the loader has its own tests)."""
    import models.runs

    monkeypatch.setattr(models.runs, "open_dataset", lambda data, split, size, label_set, **_: ToyTryOnDataset(
        n=4, size=tuple(size), num_classes=8, seed=1 if split == "test" else 0))


def test_import_help_says_what_it_infers() -> None:
    result = runner.invoke(app, ["import", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for fact in ("fc.weight", "151 -> paper-ade20k", "36 -> paper-cityscapes", "opt.txt", "--size", "--upsamples",
                 "--encoder", "generator-only"):
        assert fact in result.output, fact


def test_unknown_channel_count_and_misplaced_encoder_are_refused_with_what_to_pass(tmp_path: Path) -> None:
    torch.save({"fc.weight": torch.zeros(1024, 40, 3, 3)}, tmp_path / "g.pth")
    result = runner.invoke(app, ["import", "spade", str(tmp_path / "g.pth"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "40 input channels" in result.output and "--preset paper --label-nc 40" in result.output
    result = runner.invoke(app, ["import", "spade", str(tmp_path / "g.pth"), "--encoder", str(tmp_path / "g.pth"),
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no encoder part" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_geometry_that_does_not_fit_the_checkpoint_is_refused(tmp_path: Path) -> None:
    """A Cityscapes generator (36 channels) whose opt.txt says 512x512 'more', imported as the preset's
    256x512: refused with the flags that fit; the ADE20K file under the Cityscapes preset: refused too."""
    release = tmp_path / "cityscapes_512"
    release.mkdir()
    synthesise_official_state("spade_cityscapes_G", release / "latest_net_G.pth")
    (release / "opt.txt").write_text("----------------- Options ---------------\n"
                                     "             aspect_ratio: 1.0                           \t[default: 2.0]\n"
                                     "                crop_size: 512                           \n"
                                     "    num_upsampling_layers: more                          \n")
    result = runner.invoke(app, ["import", "spade", str(release / "latest_net_G.pth"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "trained at 512x512 with 6 upsamplings" in result.output and "pass --size 512x512 --upsamples 6" in result.output
    assert not (tmp_path / "o").exists()
    synthesise_official_state("spade_ade20k_G", tmp_path / "ade.pth")
    result = runner.invoke(app, ["import", "spade", str(tmp_path / "ade.pth"), "--preset", "paper-cityscapes",
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "reads 151 input channels" in result.output and "--preset paper-ade20k" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_smis_generator_only_import_samples_styles(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    synthesise_official_state("smis_deepfashion_G", tmp_path / "G.pth")
    result = runner.invoke(app, ["import", "smis", str(tmp_path / "G.pth"), "--out", str(tmp_path / "smis")])
    assert result.exit_code == 0, result.output
    assert "not saved: discriminator, encoder" in result.output and "label set smis-8" in result.output
    assert all(k.startswith("generator.") for k in load_file(str(tmp_path / "smis" / "model.safetensors")))
    doc = json.loads((tmp_path / "smis" / "config.json").read_text())
    assert doc["omitted"] == ["discriminator", "encoder"]
    record = json.loads((tmp_path / "smis" / "import.json").read_text())
    assert record["not_in_release"] == ["discriminator", "encoder"] and record["geometry"]["height"] == 256
    model = load_pretrained(tmp_path / "smis")
    assert model.default_style == "sample" and not model.training


@pytest.mark.slow
def test_spade_import_records_its_label_set(tmp_path: Path) -> None:
    synthesise_official_state("spade_ade20k_G", tmp_path / "G.pth")
    result = runner.invoke(app, ["import", "spade", str(tmp_path / "G.pth"), "--out", str(tmp_path / "ade")])
    assert result.exit_code == 0, result.output
    assert "paper-ade20k (guessed from the file)" in result.output and "label set ade20k-151" in result.output
    doc = json.loads((tmp_path / "ade" / "config.json").read_text())
    assert doc["data"]["label_set"] == "ade20k-151" and doc["data"]["num_classes"] == 151
    assert "geometry" in json.loads((tmp_path / "ade" / "import.json").read_text())


def _tiny_generator_only(tmp_path: Path, name: str, omitted: tuple[str, ...], label_set: str = "toy-8") -> Path:
    torch.manual_seed(0)
    model = create_model(name, "tiny")
    model.omitted, model.label_set = omitted, label_set
    model.save_pretrained(tmp_path / name)
    return tmp_path / name


def test_generate_styles_from_the_cli_are_seeded(tmp_path: Path, toy_data: None) -> None:
    folder = _tiny_generator_only(tmp_path, "smis", ("discriminator", "encoder"))
    common = ["generate", "--checkpoint", str(folder), "--data", str(tmp_path)]
    outs = []
    for run, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        result = runner.invoke(app, [*common, "--out", str(tmp_path / run), "--seed", seed])
        assert result.exit_code == 0 and "style codes: sample (seed" in result.output, result.output
        outs.append([np.asarray(Image.open(p)) for p in sorted((tmp_path / run).glob("*.png"))])
    assert len(outs[0]) == 4 and all(np.array_equal(x, y) for x, y in zip(outs[0], outs[1]))
    assert not all(np.array_equal(x, y) for x, y in zip(outs[0], outs[2]))
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "r"), "--resample-class", "3", "--seed", "3"])
    assert result.exit_code == 0, result.output
    resampled = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "r").glob("*.png"))]
    assert not all(np.array_equal(x, y) for x, y in zip(outs[0], resampled))
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "x"), "--style", "encode"])
    assert result.exit_code == 2 and "no trained encoder" in result.output and "--encoder" in result.output
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "x"), "--style", "paint"])
    assert result.exit_code == 2 and "valid: encode, sample" in result.output


def test_label_set_mismatch_names_both_sets(tmp_path: Path, toy_data: None) -> None:
    folder = _tiny_generator_only(tmp_path, "spade", ("discriminator",), label_set="ade20k-151")
    doc = json.loads((folder / "config.json").read_text())
    doc["config"]["label_nc"] = 151  # an ADE20K-sized input on the tiny trunk
    torch.manual_seed(0)
    model = create_model("spade", "tiny", label_nc=151)
    model.omitted, model.label_set = ("discriminator",), "ade20k-151"
    model.save_pretrained(folder)
    result = runner.invoke(app, ["generate", "--checkpoint", str(folder), "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "151 label ids of label set ade20k-151" in result.output and "(label set toy-8)" in result.output


def test_train_from_a_generator_only_folder_creates_the_discriminator(tmp_path: Path, toy_data: None) -> None:
    from safetensors.torch import load_file

    folder = _tiny_generator_only(tmp_path, "spade", ("discriminator",))
    before = load_file(str(folder / "model.safetensors"))
    result = runner.invoke(app, ["train", "--model", "spade", "--data", str(tmp_path), "--init-from", str(folder),
                                 "--steps", "1", "--batch-size", "2", "--perceptual-backbone", "none",
                                 "--out", str(tmp_path / "run"), "--sample-every", "0", "--seed", "3"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "holds no discriminator weights" in said and "created freshly initialised (seed 3)" in said
    after = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert any(k.startswith("discriminator.") for k in after)
    assert all(k in after for k in before)
    assert "omitted" not in json.loads((tmp_path / "run" / "config.json").read_text())
