"""Launched by tests/test_ddp.py under `torchrun --nproc_per_node 2` (gloo on CPU); not a test itself.

Each rank starts from DIFFERENT random weights (the trainer must broadcast rank 0's), trains the toy
model on its slice of the data, and saves its final weights for the test to compare: a straight 4-step
run, and a 2-step run resumed to 4 steps from its checkpoint (resume must be exact under DDP too).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.trainer import TrainConfig, train  # noqa: E402
from tests.model_fixtures import ToyConfig, ToyTryOn, ToyTryOnDataset  # noqa: E402


def main(out: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    # Noise off so the run can be compared with one process on the doubled batch (ranks draw different noise).
    config = ToyConfig(noise=False, spectral=True)
    data = ToyTryOnDataset(n=16)
    common = dict(batch_size=2, checkpoint_every=2, sample_every=0, log_every=1, seed=3, progress=False)

    def model() -> ToyTryOn:
        torch.manual_seed(100 + rank)  # deliberately different per rank
        return ToyTryOn(config)

    straight = model()
    result = train(straight, data, TrainConfig(steps=4, out_dir=out / "straight", **common))
    assert result.world_size == 2
    torch.save(straight.state_dict(), out / f"straight_rank{rank}.pt")

    halves = model()
    train(halves, data, TrainConfig(steps=2, out_dir=out / "halves", **common))
    resumed = model()
    train(resumed, data, TrainConfig(steps=4, out_dir=out / "halves", resume=True, **common))
    torch.save(resumed.state_dict(), out / f"resumed_rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
