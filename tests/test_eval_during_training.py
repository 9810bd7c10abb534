"""`zoo train --eval-every N --keep-best fid`: a held-out curve in the logs and the best model kept, with
exact resume untouched (scoring runs under a forked RNG)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from models.cli import app


def _train(ds: Path, run: Path, *extra: str):  # noqa: ANN202
    return CliRunner().invoke(app, ["train", "--model", "cagan", "--data", str(ds), "--batch-size", "2", "--out", str(run),
                                    "--sample-every", "0", "--log-every", "1", "--checkpoint-every", "2", "--eval-images", "6",
                                    "--feature-extractor", "untrained", *extra])


def test_eval_every_writes_the_curve_and_keep_best_exports_the_best(curated_ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRYON_BENCH_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    result = _train(curated_ds, run, "--steps", "4", "--eval-every", "2", "--keep-best", "fid")
    assert result.exit_code == 0, result.output
    with (run / "logs" / "main" / "eval.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["2", "4"] and all(float(r["fid"]) > 0 and "lpips" in r for r in rows)
    best = json.loads((run / "best.json").read_text())
    by_step = {int(r["step"]): float(r["fid"]) for r in rows}
    assert best["step"] == min(by_step, key=by_step.get) and best["value"] == pytest.approx(by_step[best["step"]])
    assert (run / "best" / "model.safetensors").is_file() and best["evaluation"]["images"] == 6
    # scoring never touches the training stream: the same run without it ends with the same weights
    plain = tmp_path / "plain"
    assert _train(curated_ds, plain, "--steps", "4").exit_code == 0
    a, b = load_file(str(run / "model.safetensors")), load_file(str(plain / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a resume keeps the rows up to its checkpoint and adds none twice
    result = _train(curated_ds, run, "--steps", "4", "--eval-every", "2", "--keep-best", "fid", "--resume")
    assert result.exit_code == 0, result.output
    with (run / "logs" / "main" / "eval.csv").open() as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["2", "4"]


def test_eval_options_are_checked(curated_ds: Path, tmp_path: Path) -> None:
    result = _train(curated_ds, tmp_path / "r", "--steps", "2", "--eval-every", "1", "--eval-split", "nope")
    assert result.exit_code != 0 and "nope" in result.output
    result = _train(curated_ds, tmp_path / "r2", "--steps", "2", "--eval-every", "1", "--keep-best", "accuracy")
    assert result.exit_code != 0 and "accuracy" in result.output
