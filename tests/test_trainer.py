"""The one trainer: exact resume, gradient accumulation, checkpoint contents, logs, sample grids, errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from models.trainer import ResumableBatchStream, TrainConfig, list_checkpoints, load_checkpoint, train
from tests.model_fixtures import ToyConfig, ToyTryOn, ToyTryOnDataset


def _model(seed: int = 0, **overrides: object) -> ToyTryOn:
    torch.manual_seed(seed)
    return ToyTryOn(ToyConfig(**overrides))


def _config(out: Path, **overrides: object) -> TrainConfig:
    base = dict(steps=6, batch_size=2, checkpoint_every=0, sample_every=0, log_every=1, out_dir=out, seed=3, progress=False)
    base.update(overrides)
    return TrainConfig(**base)


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs (max {float((a[key] - b[key]).abs().max())})"


def _csv_rows(out: Path) -> list[dict[str, str]]:
    with (out / "logs" / "main" / "train.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_resume_from_final_checkpoint_is_bit_exact(tmp_path: Path) -> None:
    # 10 samples / batch 2 = 5 batches per epoch: 8 steps cross an epoch boundary after the resume point.
    data = ToyTryOnDataset(n=10)
    straight = _model()
    train(straight, data, _config(tmp_path / "straight", steps=8))

    halves = _model()
    first = train(halves, data, _config(tmp_path / "halves", steps=4))
    assert first.steps == 4
    resumed_model = _model(seed=99)  # different init: everything must come from the checkpoint
    second = train(resumed_model, data, _config(tmp_path / "halves", steps=8, resume=True))
    assert (second.start_step, second.steps) == (4, 8)
    _assert_identical(straight.state_dict(), resumed_model.state_dict())
    # The logs read like one run: steps 1..8 once each, the same losses as the straight run.
    straight_rows, resumed_rows = _csv_rows(tmp_path / "straight"), _csv_rows(tmp_path / "halves")
    assert [r["step"] for r in resumed_rows] == [str(s) for s in range(1, 9)]
    assert [r["generator/total"] for r in resumed_rows] == [r["generator/total"] for r in straight_rows]


def test_resume_from_mid_run_checkpoint_with_accumulation_and_samples_is_bit_exact(tmp_path: Path) -> None:
    data = ToyTryOnDataset(n=9)  # 9 // 2 = 4 batches per epoch, one sample left out per epoch
    cfg = dict(steps=6, grad_accum=2, checkpoint_every=2, keep_checkpoints=10, sample_every=3)
    straight = _model()
    train(straight, data, _config(tmp_path / "a", **cfg))
    assert [p.name for p in list_checkpoints(tmp_path / "a")] == [f"step_{s:08d}.pt" for s in (2, 4, 6)]

    # Simulate a crash after step 2: keep only the step-2 checkpoint of the same run, then resume.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for path in list_checkpoints(tmp_path / "b")[1:]:
        path.unlink()
    resumed = _model(seed=5)
    train(resumed, data, _config(tmp_path / "b", resume=True, **cfg))
    _assert_identical(straight.state_dict(), resumed.state_dict())
    assert [r["step"] for r in _csv_rows(tmp_path / "b")] == [str(s) for s in range(1, 7)]


def _first_step_gradients(model: ToyTryOn, data: ToyTryOnDataset, config: TrainConfig) -> list[torch.Tensor]:
    """Every gradient each phase's optimiser sees at step 1 (both phases), captured by a global step hook."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    seen: list[torch.Tensor] = []

    def capture(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        if optimizer.state == {} or all(int(s["step"]) == 0 for s in optimizer.state.values()):
            seen.extend(p.grad.clone() for group in optimizer.param_groups for p in group["params"])

    handle = register_optimizer_step_pre_hook(capture)
    try:
        train(model, data, config)
    finally:
        handle.remove()
    return seen


def test_gradient_accumulation_matches_the_large_batch(tmp_path: Path) -> None:
    # Compare the gradients handed to Adam, not weights after several steps: Adam divides by the
    # gradient's own magnitude, so a parameter whose true gradient is ~0 moves by +-lr on rounding noise.
    # Without noise and spectral norm (whose power iteration runs once per forward) one micro-batch of 4
    # equals two accumulated micro-batches of 2 up to float summation order.
    data = ToyTryOnDataset(n=12)
    big = _first_step_gradients(_model(noise=False, spectral=False), data, _config(tmp_path / "big", steps=2, batch_size=4))
    accumulated = _first_step_gradients(
        _model(noise=False, spectral=False), data, _config(tmp_path / "acc", steps=2, batch_size=2, grad_accum=2)
    )
    assert len(big) == len(accumulated) == 7  # generator: 2 weights + 1 bias; discriminator: 2 weights + 2 biases
    # All but the hinge D's last bias (exactly 0 while every logit is inside the margins) are non-zero.
    assert sum(bool(g.abs().max() > 0) for g in big) >= 6
    for a, b in zip(big, accumulated):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-7)
    # ...and a different split of the same step's samples would not match (the comparison can fail).
    other = _first_step_gradients(_model(noise=False, spectral=False), data, _config(tmp_path / "o", steps=2, batch_size=2))
    assert any(not torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(big, other))


def test_checkpoint_contents_and_export(tmp_path: Path) -> None:
    data = ToyTryOnDataset(n=8)
    model = _model()
    result = train(model, data, _config(tmp_path / "run", steps=5, checkpoint_every=2, keep_checkpoints=2))
    # Kept: the newest two (step 4 and the final step 5); step 2 was pruned.
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_00000004.pt", "step_00000005.pt"]
    assert result.checkpoint == list_checkpoints(tmp_path / "run")[-1]
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)  # no pickled code inside
    assert load_checkpoint(result.checkpoint)["step"] == 5
    assert state["step"] == 5 and state["world_size"] == 1 and state["model_name"] == "toy"
    assert set(state["optimizers"]) == {"generator", "discriminator"}
    # Adam state for every generator parameter, with the phase's TTUR lr and betas.
    g_opt = state["optimizers"]["generator"]
    assert g_opt["param_groups"][0]["lr"] == pytest.approx(1e-4) and g_opt["param_groups"][0]["betas"] == (0.0, 0.9)
    assert len(g_opt["state"]) == len(list(model.generator.parameters()))
    assert state["optimizers"]["discriminator"]["param_groups"][0]["lr"] == pytest.approx(4e-4)
    _assert_identical(state["model"], model.state_dict())
    # 8 samples / batch 2 = 4 batches per epoch; 5 steps consumed = epoch 1, one batch in.
    assert state["data"] == {"epoch": 1, "batch_in_epoch": 1}
    assert set(state["rng"][0]) >= {"torch", "numpy", "python"}
    assert state["train_config"]["batch_size"] == 2 and state["model_config"]["ngf"] == 8
    run_config = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert run_config["model"] == "toy" and run_config["dataset"]["num_classes"] == 4


def test_logs_csv_and_tensorboard(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(_model(), ToyTryOnDataset(n=8), _config(tmp_path / "run", steps=5, log_every=2))
    rows = _csv_rows(tmp_path / "run")
    assert [r["step"] for r in rows] == ["2", "4", "5"]  # every 2 steps plus the last one
    for key in ("generator/total", "generator/l1", "generator/gan", "discriminator/total", "samples_per_s"):
        assert all(float(r[key]) == float(r[key]) for r in rows), key  # present and not NaN
    assert all(float(r["samples_per_s"]) > 0 for r in rows)
    events = EventAccumulator(str(tmp_path / "run" / "logs" / "main" / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert "loss/generator/total" in scalars and "throughput/samples_per_s" in scalars
    logged = [(e.step, e.value) for e in events.Scalars("loss/discriminator/total")]
    assert [s for s, _ in logged] == [2, 4, 5]
    assert [pytest.approx(v, rel=1e-6) for _, v in logged] == [float(r["discriminator/total"]) for r in rows]


def test_sample_grid_written_without_perturbing_training(tmp_path: Path) -> None:
    data = ToyTryOnDataset(n=8)
    with_samples, without = _model(), _model()
    train(with_samples, data, _config(tmp_path / "s", steps=4, sample_every=2, batch_size=3))
    train(without, data, _config(tmp_path / "n", steps=4, sample_every=0, batch_size=3))
    # Drawing samples (which samples noise) must not shift the training RNG stream.
    _assert_identical(with_samples.state_dict(), without.state_dict())
    grids = sorted((tmp_path / "s" / "samples" / "main").glob("*.png"))
    assert [g.name for g in grids] == ["step_00000002.png", "step_00000004.png"]
    image = Image.open(grids[-1])
    # 3 samples (rows) x [person, article, generated] (columns), 16x16 tiles with 2-px padding.
    assert image.size == (3 * 18 + 2, 3 * 18 + 2) and image.mode == "RGB"
    assert not (tmp_path / "n" / "samples").exists()


def test_data_stream_positions_and_rank_slices() -> None:
    data = ToyTryOnDataset(n=10)
    full = ResumableBatchStream(data, batch_size=2, seed=1)
    seen = [tuple(full.next()["pair_id"]) for _ in range(7)]  # crosses into epoch 1
    assert full.position() == {"epoch": 1, "batch_in_epoch": 2}
    assert len({p for batch in seen[:5] for p in batch}) == 10  # one epoch visits every sample once
    restarted = ResumableBatchStream(data, batch_size=2, seed=1, epoch=1, batch_in_epoch=0)
    assert [tuple(restarted.next()["pair_id"]) for _ in range(2)] == seen[5:7]
    ranks = [ResumableBatchStream(data, batch_size=1, seed=1, rank=r, world_size=2).epoch_indices(0) for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1]) and len(ranks[0]) == len(ranks[1]) == 5
    assert sorted(ranks[0] + ranks[1]) == list(range(10))


def test_refuses_to_mix_runs_and_reports_bad_setups(tmp_path: Path) -> None:
    data = ToyTryOnDataset(n=6)
    train(_model(), data, _config(tmp_path / "run", steps=2))
    with pytest.raises(FileExistsError, match="--resume"):
        train(_model(), data, _config(tmp_path / "run", steps=4))
    with pytest.raises(ValueError, match="batch_size"):
        train(_model(), data, _config(tmp_path / "run", steps=4, batch_size=3, resume=True))
    with pytest.raises(ValueError, match="model config fields \\['ngf'\\]"):
        train(_model(ngf=4), data, _config(tmp_path / "run", steps=4, resume=True))
    with pytest.raises(FileNotFoundError, match="no step_"):
        train(_model(), data, _config(tmp_path / "empty", resume=True))
    with pytest.raises(ValueError, match="label_nc=5"):
        train(_model(), ToyTryOnDataset(n=6, num_classes=5), _config(tmp_path / "labels"))
    with pytest.raises(ValueError, match=r"needs batch keys \['article'\]"):
        train(_model(), _WithoutArticle(n=6), _config(tmp_path / "keys"))
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(_model(), ToyTryOnDataset(n=3), _config(tmp_path / "small", batch_size=4))
    with pytest.raises(ValueError, match="needs a CUDA device"):
        train(_model(), data, _config(tmp_path / "amp", amp="bf16"))
    poisoned = ToyTryOnDataset(n=6)
    poisoned.tensors["image"][:] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite loss at step 1"):
        train(_model(), poisoned, _config(tmp_path / "nan"))
    with pytest.raises(ValueError, match="grad_accum"):
        _config(tmp_path / "x", grad_accum=0)


class _WithoutArticle(ToyTryOnDataset):
    def __getitem__(self, index: int) -> dict[str, object]:
        sample = super().__getitem__(index)
        del sample["article"]
        return sample


def test_recipe_changes_refuse_a_resume_but_machine_local_paths_do_not() -> None:
    """Loss weights and learning rates are part of exact resume; where a VGG file lies on this machine is not."""
    from models.registry import build_recipe
    from models.trainer import _recipe_changes, recipe_json

    saved = recipe_json(build_recipe("spade", perceptual_backbone="vgg19", vgg_weights="/old/box/vgg19-dcbb9e9d.pth"))
    moved = build_recipe("spade", perceptual_backbone="vgg19", vgg_weights="/new/box/vgg19-dcbb9e9d.pth")
    assert _recipe_changes(saved, moved) == []
    assert _recipe_changes(saved, build_recipe("spade", lambda_vgg=1.0, vgg_weights="/old/box/vgg19-dcbb9e9d.pth")) == ["lambda_vgg"]


def test_stage_selection_and_whole_run_refusals(tmp_path: Path) -> None:
    from tests.zoo_plugin_blend import Blend, BlendConfig

    data = ToyTryOnDataset(n=6, size=(64, 48))
    torch.manual_seed(0)
    model = Blend(BlendConfig())
    with pytest.raises(ValueError, match="no training stage 'warp'; its stages: mask, render"):
        train(model, data, _config(tmp_path / "r", stage="warp"))
    result = train(model, data, _config(tmp_path / "r", steps=2))  # every stage, in order
    assert result.stage == "render" and list(result.stages) == ["mask", "render"]
    assert [p.name for p in list_checkpoints(tmp_path / "r", "mask")] == ["step_00000002.pt"]
    with pytest.raises(FileExistsError, match=r"stage\(s\) \['render'\]"):
        train(model, data, _config(tmp_path / "r", steps=2, stage="render"))
    with pytest.raises(FileNotFoundError, match="no step_"):
        train(model, data, _config(tmp_path / "fresh", stage="render", resume=True))
