"""CAGAN: alpha in [0, 1] and the person untouched where alpha is 0, the three adversarial terms and the
cycle, flips of person and articles together done by the loader, training and unpaired evaluation from
the curated triplets through the CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from models import create_model
from models.registry import build_recipe
from tests.model_fixtures import batch_for


class _FixedOutput(nn.Module):
    """A stand-in generator with a chosen raw output (after its sigmoid)."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out


def test_alpha_is_a_probability_and_zero_alpha_keeps_the_person() -> None:
    torch.manual_seed(0)
    model = create_model("cagan", "tiny").eval()
    batch = batch_for(model.data_needs(), n=2)
    with torch.no_grad():
        tryon, alpha = model.swap(batch["image"], batch["article"], batch["negative"])
    assert alpha.shape == (2, 1, 64, 48) and float(alpha.min()) >= 0 and float(alpha.max()) <= 1
    assert tryon.abs().max() <= 1
    raw = torch.rand(2, 4, 64, 48)
    raw[:, 0, :, :24] = 0  # alpha 0 on the left half, 1 on the right half
    raw[:, 0, :, 24:] = 1
    model.generator = _FixedOutput(raw)
    tryon, _ = model.swap(batch["image"], batch["article"], batch["negative"])
    assert torch.equal(tryon[..., :24], batch["image"][..., :24])  # exactly the person where alpha is 0
    assert torch.allclose(tryon[..., 24:], raw[:, 1:, :, 24:] * 2 - 1)  # exactly the generated RGB where it is 1


def test_losses_hold_the_three_adversarial_terms_cycle_and_sparsity() -> None:
    torch.manual_seed(0)
    model = create_model("cagan", "tiny").train()
    recipe = build_recipe("cagan")
    batch = batch_for(model.data_needs(), n=2)
    g_phase, d_phase = model.training_phases(recipe)
    g = g_phase.losses(batch)
    assert set(g) == {"gan", "cycle", "alpha", "total", "alpha_mean"}
    assert torch.allclose(g["total"], g["gan"] + g["cycle"] + g["alpha"])
    d = d_phase.losses(batch)
    assert set(d) == {"real", "generated", "mismatched", "total"}
    assert torch.allclose(d["total"], d["real"] + d["generated"] + d["mismatched"])
    # the mismatched term is the real person with the *new* article: it changes with the negative only
    other = dict(batch, negative=batch["negative"].flip(0) * 0.5)
    model.eval()  # no D noise: the comparison is deterministic
    d_eval, d_other = d_phase.losses(batch), d_phase.losses(other)
    assert torch.equal(d_eval["real"], d_other["real"]) and not torch.equal(d_eval["mismatched"], d_other["mismatched"])


def test_paper_preset_and_recipe_are_the_references() -> None:
    with torch.device("meta"):
        model = create_model("cagan", "paper")
    assert model.input_size == (128, 96) and model.config.ngf == 64
    recipe = build_recipe("cagan")
    assert (recipe.lr, recipe.betas, recipe.lambda_gan, recipe.lambda_cycle, recipe.lambda_alpha) == (2e-4, (0.5, 0.999), 1.0, 1.0, 0.1)
    assert model.INPUTS.augment == ("hflip",) and "labelmap" not in model.INPUTS.train


def test_loader_flips_person_and_articles_together_per_epoch(curated_ds: Path) -> None:
    from curate.loader import TryOnDataset

    fields = ("image", "article", "negative")
    plain = TryOnDataset(curated_ds, "train", (64, 48), "smis-8", fields=fields)
    flips = TryOnDataset(curated_ds, "train", (64, 48), "smis-8", fields=fields, augment=("hflip",), seed=3)
    pattern = []
    for i in range(len(plain)):
        a, b = plain[i], flips[i]
        flipped = torch.equal(b["image"], a["image"].flip(-1))
        assert flipped or torch.equal(b["image"], a["image"])
        for key in ("article", "negative"):  # the same decision for every image of the sample
            assert torch.equal(b[key], a[key].flip(-1) if flipped else a[key])
        pattern.append(flipped)
    assert 0.2 < np.mean(pattern) < 0.8
    again = TryOnDataset(curated_ds, "train", (64, 48), "smis-8", fields=fields, augment=("hflip",), seed=3)
    assert all(torch.equal(again[i]["image"], flips[i]["image"]) for i in range(8))  # a pure function of the seed
    flips.set_epoch(1)
    assert any(not torch.equal(flips[i]["image"], again[i]["image"]) for i in range(8))  # ...and of the epoch
    with pytest.raises(ValueError, match="hflip cannot mirror"):
        TryOnDataset(curated_ds, "train", (64, 48), "smis-8", fields=("image", "labelmap"), augment=("hflip",))


def test_cagan_trains_from_triplets_and_is_evaluated_unpaired(curated_ds: Path, tmp_path: Path) -> None:
    from eval.cli import app as evaluate_app
    from models.cli import app

    run = tmp_path / "cagan"
    result = CliRunner().invoke(app, ["train", "--model", "cagan", "--data", str(curated_ds), "--steps", "3", "--batch-size", "2",
                                      "--out", str(run), "--sample-every", "0", "--log-every", "1"])
    assert result.exit_code == 0, result.output
    header = (run / "logs" / "main" / "train.csv").read_text().splitlines()[0]
    for key in ("generator/cycle", "generator/alpha", "discriminator/mismatched"):
        assert key in header
    assert json.loads((run / "config.json").read_text())["data"]["label_set"] is None
    result = CliRunner().invoke(evaluate_app, ["--model", "cagan", "--checkpoint", str(run), "--data", str(curated_ds),
                                               "--protocol", "unpaired", "--feature-extractor", "untrained",
                                               "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    (record,) = list((tmp_path / "runs").glob("*/summary.json"))
    assert np.isfinite(json.loads(record.read_text())["metrics"]["fid"])
