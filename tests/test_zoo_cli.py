"""The `zoo` command: list, train, resume, generate, import and the errors a user meets first."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from models.cli import app, output_name
from tests.model_fixtures import ToyTryOnDataset

runner = CliRunner()


def _invoke(*args: str) -> object:
    result = runner.invoke(app, list(args))
    return result


@pytest.fixture
def toy_data(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, str]]:
    """Serve random batch-contract samples instead of curated arrays (the loader has its own tests)."""
    import models.runs

    calls: list[tuple[Path, str]] = []

    def fake_open(data: Path, split: str, size: tuple[int, int], label_set: str | None, **_: object) -> ToyTryOnDataset:
        calls.append((data, split))
        return ToyTryOnDataset(n=6, size=tuple(size), num_classes=8, seed=1 if split == "test" else 0)

    monkeypatch.setattr(models.runs, "open_dataset", fake_open)
    return calls


def test_list_shows_every_model_and_preset_with_parameter_counts() -> None:
    from models import create_model, list_models
    from models.registry import get_model_class

    result = _invoke("list")
    assert result.exit_code == 0, result.output
    assert list_models(), "no model registered"
    for name in list_models():
        assert name in result.output
        tiny = create_model(name, "tiny")
        assert f"{sum(p.numel() for p in tiny.parameters()):,}" in result.output
        assert {"tiny", "paper"} <= set(get_model_class(name).PRESETS)
    assert "paper" in result.output


def test_unknown_model_is_an_error_listing_the_valid_ones(tmp_path: Path) -> None:
    from models import list_models

    result = _invoke("train", "--model", "no-such-model", "--data", str(tmp_path))
    assert result.exit_code != 0
    for name in list_models():
        assert name in result.output


def test_train_resume_and_generate_round_trip(tmp_path: Path, toy_data: list[tuple[Path, str]]) -> None:
    from models import load_pretrained

    run = tmp_path / "run"
    common = ["--model", "smis", "--data", str(tmp_path), "--preset", "tiny", "--batch-size", "2",
              "--perceptual-backbone", "untrained", "--out", str(run), "--log-every", "1", "--sample-every", "2"]
    result = _invoke("train", *common, "--steps", "2")
    assert result.exit_code == 0, result.output
    assert (run / "config.json").is_file() and (run / "model.safetensors").is_file()
    doc = json.loads((run / "config.json").read_text())
    assert doc["config"]["label_nc"] == 8  # follows the dataset
    assert doc["data"]["label_set"] == "toy-8" and doc["data"]["generate"] == ["labelmap", "image"]
    assert "lr" not in doc["config"] and "perceptual_backbone" not in doc["config"]  # the recipe's, not architecture
    info = json.loads((run / "train_config.json").read_text())
    run_info = info["train_config"]["run_info"]
    assert run_info["perceptual_backbone"] == "untrained" and run_info["comparable_to_published"] is False
    assert info["recipe"]["perceptual_backbone"] == "untrained" and info["recipe"]["lambda_kld"] == 0.05
    assert info["stage_order"] == ["main"] and info["stages"]["main"]["phases"][0]["lr"] == 1e-4

    # A second invocation without --resume refuses to mix runs; with it, continues to step 3.
    assert _invoke("train", *common, "--steps", "3").exit_code != 0
    result = _invoke("train", *common, "--steps", "3", "--resume")
    assert result.exit_code == 0, result.output
    with (run / "logs" / "main" / "train.csv").open() as f:
        assert [row["step"] for row in csv.DictReader(f)] == ["1", "2", "3"]
    assert (run / "samples" / "main" / "step_00000002.png").is_file()
    # a resume that changes the recipe is refused (lambda weights are part of the exact-resume contract)
    changed = [("none" if a == "untrained" else a) for a in common]
    result = _invoke("train", *changed, "--steps", "4", "--resume")
    assert result.exit_code != 0 and "recipe fields ['perceptual_backbone']" in result.output

    out = tmp_path / "generated"
    result = _invoke("generate", "--model", "smis", "--checkpoint", str(run), "--data", str(tmp_path), "--out", str(out), "--seed", "5")
    assert result.exit_code == 0, result.output
    assert toy_data[-1][1] == "test"
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == [f"pair{i:04d}.png" for i in range(6)]

    # The PNGs hold exactly what the model generates for that seed (lossless, rounded to 8 bits).
    model = load_pretrained(run).eval()
    data = ToyTryOnDataset(n=6, size=model.input_size, num_classes=8, seed=1)
    torch.manual_seed(5)
    with torch.no_grad():
        batch = torch.utils.data.default_collate([data[i] for i in range(4)])
        expected = ((model.generate(batch).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i in range(4):
        assert np.array_equal(np.asarray(Image.open(out / f"pair{i:04d}.png")), expected[i])

    result = _invoke("generate", "--model", "spade", "--checkpoint", str(run), "--data", str(tmp_path), "--out", str(out))
    assert result.exit_code != 0 and "'smis'" in result.output


def test_missing_arrays_tell_the_user_which_curate_command_to_run(curated_ds: Path, tmp_path: Path) -> None:
    # The tiny preset wants 64x48; asking for 64x64 finds no arrays and says what exists and what to run.
    result = _invoke("train", "--model", "spade", "--data", str(curated_ds), "--size", "64x64",
                     "--perceptual-backbone", "none", "--out", str(tmp_path / "r"))
    assert result.exit_code != 0
    assert f"curate labelmaps {curated_ds} --size 64x64" in result.output and "64x48-smis-8" in result.output
    result = _invoke("train", "--model", "smis", "--data", str(tmp_path), "--out", str(tmp_path / "r"))
    assert result.exit_code != 0 and "curate labelmaps" in result.output


def test_train_and_resample_one_class_on_curated_data(curated_ds: Path, tmp_path: Path) -> None:
    """The real pipeline: curated arrays -> zoo train smis -> zoo generate --resample-class."""
    run = tmp_path / "smis"
    result = _invoke("train", "--model", "smis", "--data", str(curated_ds), "--steps", "2", "--batch-size", "2",
                     "--perceptual-backbone", "none", "--out", str(run), "--sample-every", "0")
    assert result.exit_code == 0, result.output
    info = json.loads((run / "train_config.json").read_text())
    assert info["train_config"]["run_info"]["label_set"] == "smis-8" and info["model_config"]["label_nc"] == 8

    plain, resampled = tmp_path / "plain", tmp_path / "resampled"
    common = ["--checkpoint", str(run), "--data", str(curated_ds), "--split", "test"]
    assert _invoke("generate", *common, "--out", str(plain)).exit_code == 0
    result = _invoke("generate", *common, "--out", str(resampled), "--resample-class", "bottom-clothes")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in plain.glob("*.png"))
    assert names and names == sorted(p.name for p in resampled.glob("*.png"))
    assert any(
        not np.array_equal(np.asarray(Image.open(plain / n)), np.asarray(Image.open(resampled / n))) for n in names
    ), "re-sampling the trousers' style changed no image"
    result = _invoke("generate", *common, "--out", str(tmp_path / "x"), "--resample-class", "cape")
    assert result.exit_code != 0 and "bottom-clothes" in result.output


def test_output_names_are_safe_file_names() -> None:
    assert output_name("00001_00") == "00001_00.png"
    assert output_name("upper/0001 x") == "upper_0001_x.png"
    with pytest.raises(ValueError):
        output_name("//")
