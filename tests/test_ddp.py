"""DDP through torchrun with the gloo backend on CPU: 2 processes end with identical weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from models.trainer import TrainConfig, train
from tests.model_fixtures import ToyConfig, ToyTryOn, ToyTryOnDataset

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_torchrun_gloo_two_ranks_match_each_other_and_the_single_process_run(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    load = lambda name: torch.load(tmp_path / name, map_location="cpu", weights_only=True)  # noqa: E731
    rank0, rank1 = load("straight_rank0.pt"), load("straight_rank1.pt")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"ranks disagree on {key}"
        # Resume under DDP restores every rank's RNG and data position: bit-identical to the straight run.
        assert torch.equal(load("resumed_rank0.pt")[key], rank0[key]), f"resumed DDP run differs on {key}"
        assert torch.equal(load("resumed_rank1.pt")[key], rank0[key])

    # 2 ranks x batch 2 with averaged gradients = 1 process x batch 4 (same samples per step: rank r
    # takes every 2nd index of the epoch permutation), up to float summation order.
    torch.manual_seed(100)  # rank 0's initial weights, which the trainer broadcast
    single = ToyTryOn(ToyConfig(noise=False, spectral=True))
    train(
        single,
        ToyTryOnDataset(n=16),
        TrainConfig(steps=4, batch_size=4, checkpoint_every=0, sample_every=0, seed=3, progress=False, out_dir=tmp_path / "single"),
    )
    for key, value in single.state_dict().items():
        torch.testing.assert_close(rank0[key], value, rtol=0, atol=1e-5, msg=lambda m: f"{key}: {m}")
