"""The zoo is model-agnostic: a model that reads no label map (tests/zoo_plugin_blend.py, two stages)
trains, resumes inside a stage, generates and is evaluated through the CLIs with no other file touched;
the registry, `zoo import` and the SMIS garment recipe on FGVC6-layout arrays."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

import tests.zoo_plugin_blend as blend_module  # registers "blend"
from eval.cli import app as evaluate_app
from models.cli import app as zoo_app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def _zoo(*args: str):  # noqa: ANN202
    return runner.invoke(zoo_app, list(args))


def _train(ds: Path, run: Path, *extra: str):  # noqa: ANN202
    return _zoo("train", "--model", "blend", "--data", str(ds), "--batch-size", "2", "--out", str(run),
                "--sample-every", "0", "--log-every", "1", "--checkpoint-every", "1", *extra)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_a_model_without_label_maps_trains_by_stage_resumes_generates_and_is_evaluated(curated_ds: Path, tmp_path: Path) -> None:
    run = tmp_path / "blend"
    # --stage mask, then --stage render: the second starts from the first's exported weights
    result = _train(curated_ds, run, "--stage", "mask", "--steps", "2")
    assert result.exit_code == 0, result.output
    after_mask = _weights(run)
    result = _train(curated_ds, run, "--stage", "render", "--steps", "2")
    assert result.exit_code == 0, result.output
    after_render = _weights(run)
    mask_keys = [k for k in after_mask if k.startswith("mask_net.")]
    render_keys = [k for k in after_mask if k.startswith("render_net.")]
    assert all(torch.equal(after_mask[k], after_render[k]) for k in mask_keys)  # frozen outside its stage
    assert any(not torch.equal(after_mask[k], after_render[k]) for k in render_keys)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["mask", "render"]
    with (run / "logs" / "render" / "train.csv").open() as f:
        assert [row["step"] for row in csv.DictReader(f)] == ["1", "2"]

    # Resume inside a stage: render 2 -> 4 steps equals a straight 4-step render stage, bit for bit.
    straight = tmp_path / "straight"
    assert _train(curated_ds, straight, "--stage", "mask", "--steps", "2").exit_code == 0
    assert _train(curated_ds, straight, "--stage", "render", "--steps", "4").exit_code == 0
    assert _train(curated_ds, run, "--stage", "render", "--steps", "3").exit_code != 0  # no --resume: refused
    result = _train(curated_ds, run, "--stage", "render", "--steps", "4", "--resume")
    assert result.exit_code == 0, result.output
    resumed, reference = _weights(run), _weights(straight)
    assert resumed.keys() == reference.keys() and all(torch.equal(resumed[k], reference[k]) for k in resumed)
    with (run / "logs" / "render" / "train.csv").open() as f:
        assert [row["step"] for row in csv.DictReader(f)] == ["1", "2", "3", "4"]

    doc = json.loads((run / "config.json").read_text())
    assert doc["model"] == "blend" and doc["data"]["label_set"] is None and doc["data"]["num_classes"] is None
    assert doc["data"]["generate"] == ["image", "article"]
    info = json.loads((run / "train_config.json").read_text())
    assert info["stage_order"] == ["mask", "render"] and set(info["stages"]) == {"mask", "render"}
    assert info["recipe"]["lr"] == 0.01 and "lr" not in doc["config"]
    assert _zoo("train", "--model", "blend", "--data", str(curated_ds), "--stage", "warp", "--out", str(tmp_path / "x")).exit_code != 0

    # generation chains both stages and reads only the declared keys
    out = tmp_path / "generated"
    blend_module.SEEN_KEYS.clear()
    result = _zoo("generate", "--checkpoint", str(run), "--data", str(curated_ds), "--out", str(out))
    assert result.exit_code == 0, result.output
    from curate.loader import TryOnDataset

    contract = set(TryOnDataset.ALL_FIELDS)  # (identities and has_* flags come along with every sample)
    assert blend_module.SEEN_KEYS and all(keys & contract == {"image", "article"} for keys in blend_module.SEEN_KEYS)
    pngs = sorted(out.glob("*.png"))
    assert pngs and np.asarray(Image.open(pngs[0])).shape == (64, 48, 3)

    # evaluate: no label map, so any arrays of the model's size; the record says what the model read
    result = runner.invoke(evaluate_app, ["--model", "blend", "--checkpoint", str(run), "--data", str(curated_ds),
                                          "--feature-extractor", "untrained", "--out", str(tmp_path / "runs"), "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    (record,) = list((tmp_path / "runs").glob("*/summary.json"))
    summary = json.loads(record.read_text())
    assert summary["n_images"] == len(pngs) and np.isfinite(summary["metrics"]["fid"])
    assert summary["provenance"]["data_needs"]["generate"] == ["image", "article"]
    assert summary["provenance"]["generator_parameters"] == summary["provenance"]["parameters"]


def test_whole_multi_stage_run_and_its_resume(curated_ds: Path, tmp_path: Path) -> None:
    """Without --stage every stage trains in order; --resume continues the unfinished stage."""
    run = tmp_path / "all"
    result = _train(curated_ds, run, "--steps", "2")
    assert result.exit_code == 0, result.output
    assert "stage mask" in result.output and "stage render" in result.output
    # pretend the run died in the render stage after step 1
    for path in sorted((run / "checkpoints" / "render").glob("step_*.pt"))[1:]:
        path.unlink()
    again = _train(curated_ds, run, "--steps", "2", "--resume")
    assert again.exit_code == 0, again.output
    assert "stage render: step 2 (1 this run" in again.output and "stage mask: step 2 (0 this run" in again.output


def test_models_outside_the_repository_register_through_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "TRYON_BENCH_MODELS": "tests.zoo_plugin_blend", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "models.cli", "list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if " blend " in line and " tiny " in line)
    assert "image article" in row and "none" in row and "mask > render" in row


def test_import_is_generic_and_lists_what_can_be_imported(tmp_path: Path) -> None:
    torch.save({"x": torch.zeros(1)}, tmp_path / "w.pth")
    result = _zoo("import", "blend", str(tmp_path / "w.pth"), "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "declares no official checkpoint" in result.output and "smis" in result.output
    result = _zoo("import", "no-such-model", str(tmp_path / "w.pth"), "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "valid models" in result.output
    result = _zoo("import", "cp-vton", str(tmp_path / "w.pth"), "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "not a CP-VTON GMM" in result.output
    result = _zoo("import", "smis", str(tmp_path / "w.pth"), "--out", str(tmp_path / "o"), "--part", "encoder")
    assert result.exit_code != 0 and "NAME=PATH" in result.output
    result = _zoo("import", "smis", str(tmp_path / "w.pth"), "--out", str(tmp_path / "o"), "--part", "style=x.pth")
    assert result.exit_code != 0 and "x.pth" in result.output
    result = _zoo("import", "spade", str(tmp_path / "w.pth"), "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "fc.weight" in result.output and not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------------
# SMIS's garment recipe on FGVC6-layout data


def _rle(mask: np.ndarray) -> str:
    """FGVC6 run-length encoding: 1-based starts over the column-major flattening."""
    flat = np.concatenate([[0], mask.T.reshape(-1).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat))
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(edges[::2], edges[1::2]))


@pytest.fixture(scope="module")
def fgvc6_arrays(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small FGVC6 layout (images + train.csv run-length masks), ingested as people, 64x48 arrays."""
    from curate.ingest import ingest
    from curate.labelmaps import build_arrays

    src = tmp_path_factory.mktemp("fgvc6") / "src"
    (src / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    h, w = 96, 72
    for i in range(6):
        image = np.full((h, w, 3), 235, np.uint8)
        top, bottom = np.zeros((h, w), bool), np.zeros((h, w), bool)
        y = 20 + i
        top[y:y + 30, 18:54] = True
        bottom[y + 30:y + 60, 22:50] = True
        image[top] = rng.integers(0, 255, 3)
        image[bottom] = rng.integers(0, 255, 3)
        Image.fromarray(image).save(src / "train" / f"p{i}.jpg", quality=95)
        rows += [(f"p{i}.jpg", _rle(top), h, w, "0"), (f"p{i}.jpg", _rle(bottom), h, w, "6")]  # shirt, pants
    with open(src / "train.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "EncodedPixels", "Height", "Width", "ClassId"])
        writer.writerows(rows)
    ds = src.parent / "ds"
    ingest(src, ds, role="human")
    build_arrays(ds, (64, 48))  # no pairs, no triplets: the people's arrays, in FGVC6's stored label set
    return ds


def test_garment_recipe_trains_on_fgvc6_arrays(fgvc6_arrays: Path, tmp_path: Path) -> None:
    from curate.loader import TryOnDataset

    data = TryOnDataset(fgvc6_arrays, "train", (64, 48), fields=("labelmap", "image"))
    assert data.humans_only and data.label_set == "fgvc6-46+bg" and data.num_classes == 47 and len(data) == 6
    with pytest.raises(ValueError, match="people only"):
        TryOnDataset(fgvc6_arrays, "train", (64, 48), fields=("article",))

    run = tmp_path / "garment"
    result = _zoo("train", "--model", "smis", "--preset", "garment-tiny", "--data", str(fgvc6_arrays), "--steps", "3",
                  "--batch-size", "2", "--perceptual-backbone", "untrained", "--out", str(run), "--log-every", "1",
                  "--sample-every", "0")
    assert result.exit_code == 0, result.output
    info = json.loads((run / "train_config.json").read_text())
    assert info["recipe"]["target"] == "garment" and info["recipe"]["labelmap_is_fake"] is True
    assert json.loads((run / "config.json").read_text())["data"]["label_set"] == "fgvc6-46+bg"
    with (run / "logs" / "main" / "train.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    for key in ("generator/style", "generator/feat", "discriminator/extra_fake_0", "generator/total"):
        assert all(np.isfinite(float(r[key])) for r in rows), key
    assert float(rows[0]["generator/style"]) > 0


def test_garment_recipe_losses_do_what_they_say() -> None:
    """The target is the garment on white; feature matching ignores everything outside the garment; the
    rendered label map is one more sample the discriminator must call fake."""
    from models import create_model
    from models.registry import build_recipe
    from models.zoo.smis import garment_mask, label_colours
    from tests.model_fixtures import batch_for

    torch.manual_seed(0)
    model = create_model("smis", "garment-tiny")
    recipe = build_recipe("smis", "garment", perceptual_backbone="untrained")
    batch = batch_for(model.data_needs(), n=2)
    target = model.target(batch, recipe)
    outside = garment_mask(batch["labelmap"]).expand_as(target) == 0
    assert outside.any() and torch.all(target[outside] == 1.0)
    assert torch.equal(target[~outside], batch["image"][~outside])
    # masked feature matching: a change of the photo outside the garment leaves it unchanged
    from models.layers.losses import feature_matching_loss

    feats = [[torch.randn(2, 4, 16, 12), torch.randn(2, 1, 16, 12)]]
    other = [[feats[0][0].clone(), feats[0][1]]]
    mask = torch.zeros(2, 1, 64, 48)
    mask[:, :, :32] = 1
    other[0][0][:, :, 8:] += 5  # rows 8.. of 16 = image rows 32.. : outside the mask
    assert float(feature_matching_loss(feats, other, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(feature_matching_loss(feats, other)) > 1.0
    fakes = model.extra_fakes(model.one_hot(batch["labelmap"]), batch, recipe)
    colours = label_colours(47)
    assert len(fakes) == 1 and torch.allclose(fakes[0][0, :, 0, 0], colours[batch["labelmap"][0, 0, 0]])
    d_losses = model.training_phases(recipe)[1].losses(batch)
    assert "extra_fake_0" in d_losses and float(d_losses["total"].detach()) > float(d_losses["gan"].detach())
    default = build_recipe("smis", perceptual_backbone="none")
    assert model.extra_fakes(model.one_hot(batch["labelmap"]), batch, default) == []
    assert torch.equal(model.target(batch, default), batch["image"])
