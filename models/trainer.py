"""The one trainer every zoo model uses.

`train(model, dataset, TrainConfig(...))` runs `config.steps` optimiser steps. One step fetches
`grad_accum` micro-batches once, then walks `model.training_phases()` in order (e.g. SPADE: "generator"
then "discriminator"); each phase zeroes its parameters' gradients, back-propagates
`losses["total"] / grad_accum` of every micro-batch and steps its own Adam optimiser (created once, with
the phase's lr/betas: the references' TTUR settings live in the models, not here).

The trainer owns everything that is not the model's business: device placement of the batch, AMP
(CUDA only), gradient accumulation, data order, checkpoints, resume, logs, sample grids and DDP.

Exact resume. A checkpoint holds the model, every optimiser (and AMP scaler), the torch/CUDA/numpy/
python RNG states of every rank and the data position (epoch, micro-batch within the epoch). The data
order is a pure function of (seed, epoch, rank): each epoch's permutation comes from its own
`torch.Generator`, so resuming needs no replay of skipped batches and the global RNG (which the models
use for noise, dropout and VAE sampling) is never touched by data loading. Sample grids run under a
forked RNG so that when they are drawn never changes the training stream. On CPU, a run resumed from
step k therefore ends with bit-identical weights to the uninterrupted run (tests/test_trainer.py). With
`num_workers > 0` this still holds as long as the dataset is deterministic per index (TryOnDataset is);
a dataset that draws random augmentations inside workers gets fresh worker RNG streams after a resume.

DDP. Launched by `torchrun`, the trainer joins the process group (gloo on CPU, NCCL on CUDA), gives
rank r the r-th interleaved slice of each epoch's permutation and averages each phase's gradients with
one flattened all-reduce before that phase's optimiser step. The models' phases call arbitrary methods
(not `forward`), which `DistributedDataParallel`'s hooks cannot follow, hence the explicit all-reduce;
buffers (spectral-norm vectors, running statistics) are broadcast from rank 0 after each step, as DDP
does before each forward. Every rank therefore holds identical weights (tests/test_ddp.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from models.training_log import TrainingLog, save_image_grid

from models.base import WEIGHTS_FILE, Stage

if TYPE_CHECKING:
    from models.base import TrainingPhase, TryOnModel

CHECKPOINT_FORMAT = 1
AMP_CHOICES = ("auto", "off", "bf16", "fp16")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
# TrainConfig fields that must not change between a run and its resumption: they decide the data order,
# the random streams or the meaning of a step. Everything else (steps, logging cadence, workers) may.
_RESUME_INVARIANT_FIELDS = ("batch_size", "grad_accum", "seed", "amp")


@dataclass
class TrainConfig:
    """Everything about a training run that is not the model's own configuration.

    steps: optimiser steps in total (a resumed run continues up to this number).
    batch_size: samples per micro-batch per process; one step sees batch_size * grad_accum * world_size.
    checkpoint_every / sample_every / log_every: cadence in steps; 0 disables (a checkpoint and the
    exported model are always written at the last step).
    amp: "auto" = bf16 on CUDA when supported (else fp16), off on CPU; "bf16"/"fp16" need CUDA.
    device: "auto" = CUDA when available, else CPU. Under torchrun each rank takes cuda:LOCAL_RANK.
    resume: continue from the newest checkpoint in out_dir (an error when there is none).
    stage: the one training stage to run (None: every stage of the model, in order, `steps` each).
    keep_checkpoints: how many training-state files to keep (oldest are deleted; the trainer's own files).
    run_info: free-form JSON-able facts recorded in train_config.json (e.g. the perceptual backbone).
    eval_every: steps between held-out scores (needs an ``evaluator`` passed to ``train``; 0 = none;
    the last step is always scored). keep_best: a metric the evaluator returns (e.g. "fid"): the model at
    its best value is exported to ``out_dir/best`` (+ ``best.json``) as well as the last.
    """

    steps: int = 1000
    batch_size: int = 4
    grad_accum: int = 1
    checkpoint_every: int = 500
    sample_every: int = 500
    log_every: int = 10
    out_dir: Path = Path("checkpoints/run")
    seed: int = 0
    amp: str = "auto"
    device: str = "auto"
    num_workers: int = 0
    resume: bool = False
    stage: str | None = None
    eval_every: int = 0
    keep_best: str | None = None
    keep_checkpoints: int = 2
    progress: bool = True
    run_info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        for name in ("steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("checkpoint_every", "sample_every", "log_every", "num_workers", "eval_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.keep_checkpoints < 1:
            raise ValueError(f"TrainConfig.keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        if self.amp not in AMP_CHOICES:
            raise ValueError(f"TrainConfig.amp must be one of {AMP_CHOICES}, got {self.amp!r}")
        if self.device not in DEVICE_CHOICES:
            raise ValueError(f"TrainConfig.device must be one of {DEVICE_CHOICES}, got {self.device!r}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


@dataclass
class TrainResult:
    out_dir: Path
    start_step: int  # 0 for a fresh run, the checkpoint's step for a resumed one
    steps: int  # the step the run ended at
    final_losses: dict[str, float]  # "phase/loss" -> value at the last step (rank 0's micro-batches)
    samples_per_s: float  # global samples (all ranks) per wall-clock second over this invocation
    wall_s: float
    checkpoint: Path  # the newest training-state file
    device: str
    world_size: int
    stage: str = "main"  # the (last) stage this call trained
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # every stage this call ran: steps, losses


# --------------------------------------------------------------------------------------------------
# Distributed context


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # True when this trainer created the process group (and must destroy it)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _resolve_device(preference: str, local_rank: int) -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but torch sees no CUDA device; use 'auto' or 'cpu'")
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def _init_distributed(device_preference: str) -> tuple[_Dist, torch.device]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _resolve_device(device_preference, local_rank)
    if world_size <= 1:
        return _Dist(), device
    owns_group = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns_group = True
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return _Dist(dist.get_rank(), dist.get_world_size(), local_rank, owns_group), device


def _all_reduce_mean_grads(parameters: list[nn.Parameter], world_size: int) -> None:
    """Average gradients over ranks with one flattened all-reduce (what DDP's buckets do, in one bucket)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _broadcast_state(module: nn.Module, *, parameters: bool) -> None:
    tensors = list(module.buffers())
    if parameters:
        tensors = list(module.parameters()) + tensors
    with torch.no_grad():
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)


# --------------------------------------------------------------------------------------------------
# RNG state (stored as tensors/ints/tuples so that checkpoints load with weights_only=True)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _capture_rng(device: torch.device) -> dict[str, Any]:
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["gauss"],
        )
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@contextlib.contextmanager
def _isolated_rng(device: torch.device) -> Iterator[None]:
    """Run a block (sample grids) without advancing any RNG the training loop draws from."""
    saved = _capture_rng(device)
    try:
        yield
    finally:
        _restore_rng(saved, device)


# --------------------------------------------------------------------------------------------------
# Data order


def _epoch_seed(seed: int, epoch: int) -> int:
    # Large odd multiplier keeps (seed, epoch) pairs from colliding for any realistic seed/epoch.
    return (seed * 1_000_003 + epoch) % (2**63 - 1)


def _seed_worker(worker_id: int) -> None:
    # torch seeds `torch` and `random` in each worker from the loader's generator; numpy is ours to seed.
    np.random.seed(torch.initial_seed() % 2**32)


class ResumableBatchStream:
    """An endless stream of micro-batches whose position is two integers.

    Epoch e visits `torch.randperm(len(dataset))` drawn from a generator seeded by (seed, e); rank r takes
    every world_size-th index starting at r (all ranks get the same count), cut to whole batches.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        epoch: int = 0,
        batch_in_epoch: int = 0,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.epoch = epoch
        self.batch_in_epoch = batch_in_epoch
        size = len(dataset)  # type: ignore[arg-type]
        self.batches_per_epoch = (size // world_size) // batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(
                f"the dataset has {size} samples, fewer than one batch per process "
                f"(batch_size {batch_size} x {world_size} process(es)); lower --batch-size or add data"
            )
        if not 0 <= batch_in_epoch <= self.batches_per_epoch:
            raise ValueError(
                f"data position {batch_in_epoch} is outside an epoch of {self.batches_per_epoch} batches "
                "(was the dataset or batch size changed since the checkpoint?)"
            )
        self._iterator: Iterator[dict[str, Any]] | None = None

    def epoch_indices(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
        permutation = torch.randperm(len(self.dataset), generator=generator)  # type: ignore[arg-type]
        mine = permutation[self.rank :: self.world_size][: self.batches_per_epoch * self.batch_size]
        return mine.tolist()

    def _open(self) -> None:
        if hasattr(self.dataset, "set_epoch"):  # augmentations drawn per (seed, epoch, index): resumable
            self.dataset.set_epoch(self.epoch)  # type: ignore[attr-defined]
        indices = self.epoch_indices(self.epoch)[self.batch_in_epoch * self.batch_size :]
        # The loader's own generator (never the global one) seeds its workers: creating an iterator must
        # not consume the global RNG stream, or a resumed run would drift from the uninterrupted one.
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=indices,
            drop_last=True,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            worker_init_fn=_seed_worker if self.num_workers else None,
            generator=torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch) ^ (self.rank + 1)),
        )
        self._iterator = iter(loader)

    def next(self) -> dict[str, Any]:
        if self.batch_in_epoch >= self.batches_per_epoch:
            self.epoch += 1
            self.batch_in_epoch = 0
            self._iterator = None
        if self._iterator is None:
            self._open()
        assert self._iterator is not None
        batch = next(self._iterator)
        self.batch_in_epoch += 1
        return batch

    def position(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch}


def batch_to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensors of a batch; identities (lists of str) stay where they are."""
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v for k, v in batch.items()}


def _fixed_sample_batch(dataset: Dataset, count: int) -> dict[str, Any]:
    """The first `count` samples, always the same ones, so grids are comparable across steps and runs."""
    from torch.utils.data import default_collate

    count = min(count, len(dataset))  # type: ignore[arg-type]
    return default_collate([dataset[i] for i in range(count)])


# --------------------------------------------------------------------------------------------------
# Checkpoints


def checkpoint_dir(out_dir: Path, stage: str = "main") -> Path:
    return Path(out_dir) / "checkpoints" / stage


def list_checkpoints(out_dir: Path, stage: str = "main") -> list[Path]:
    """Training-state files of one stage in `out_dir`, oldest first."""
    return sorted(checkpoint_dir(out_dir, stage).glob("step_*.pt"))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A training-state file (plain tensors and containers: loads with weights_only=True)."""
    from models.base import safe_torch_load

    try:
        state = safe_torch_load(path)
    except ValueError as exc:  # a truncated or foreign file, a code pickle: one line saying which
        raise RuntimeError(f"cannot read training checkpoint: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise RuntimeError(f"{path} is not a tryon-bench training checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def _atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# AMP


def _resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        if amp in ("bf16", "fp16"):
            raise ValueError(f"amp={amp!r} needs a CUDA device (running on {device}); use amp='auto' or 'off'")
        return None
    if amp == "off":
        return None
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


# --------------------------------------------------------------------------------------------------
# The loop


@contextlib.contextmanager
def _only_phase_trainable(phase_params: list[nn.Parameter], all_phase_params: list[nn.Parameter]) -> Iterator[None]:
    """Freeze the other phases' parameters during this phase's backward.

    Gradients still flow *through* them (e.g. through D into G), but autograd skips their weight
    gradients, which the other phase would zero anyway; it is a pure speed-up, not a numeric change.
    """
    mine = {id(p) for p in phase_params}
    frozen = [p for p in all_phase_params if id(p) not in mine and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


def _validate_phases(model: nn.Module, phases: list[TrainingPhase]) -> None:
    if not phases:
        raise ValueError(f"{type(model).__name__}.training_phases() returned no phase")
    names = [phase.name for phase in phases]
    if len(set(names)) != len(names):
        raise ValueError(f"training phase names must be unique, got {names}")
    model_params = {id(p) for p in model.parameters()}
    for phase in phases:
        if not phase.parameters:
            raise ValueError(f"training phase {phase.name!r} has no parameters")
        if any(id(p) not in model_params for p in phase.parameters):
            raise ValueError(f"training phase {phase.name!r} lists parameters that are not the model's")


def _check_inputs(model: TryOnModel, batch: dict[str, Any], dataset: Dataset) -> None:
    missing = [key for key in model.INPUTS.train if key not in batch]
    if missing:
        raise ValueError(
            f"model {model.name!r} needs batch keys {missing}, which the dataset does not provide (it gives {sorted(batch)})"
        )
    field_name, expected = model.INPUTS.label_channels, model.num_classes
    num_classes = getattr(dataset, "num_classes", None)
    if field_name is not None and num_classes is not None and expected != num_classes:
        raise ValueError(
            f"the model expects {expected} label classes but the dataset's label maps have {num_classes}: "
            f"create the model with {field_name}={num_classes} (zoo train does this for you)"
        )


def _model_config_json(model: nn.Module) -> dict[str, Any] | None:
    config = getattr(model, "config", None)
    if config is None:
        return None
    try:
        return json.loads(json.dumps(asdict(config)))
    except TypeError:
        return None


def _export(model: TryOnModel, out_dir: Path) -> None:
    """The usable model (config.json + model.safetensors) at the top of out_dir, for evaluate/zoo generate."""
    model.save_pretrained(out_dir)


def recipe_json(recipe: Any) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(recipe), default=str))


def _recipe_changes(saved: dict[str, Any] | None, recipe: Any) -> list[str]:
    """Recipe fields that differ from the checkpoint's, except machine-local ones (file paths)."""
    if saved is None:
        return []
    now, local = recipe_json(recipe), getattr(recipe, "MACHINE_LOCAL", frozenset())
    return sorted(k for k in set(saved) | set(now) if k not in local and saved.get(k) != now.get(k))


def default_recipe(model: TryOnModel) -> Any:
    cls = type(model)
    return cls.Recipe(**cls.RECIPES.get("default", {}))


def select_stages(model: TryOnModel, recipe: Any, stage: str | None) -> list[Stage]:
    stages = model.training_stages(recipe)
    names = [s.name for s in stages]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"{model.name}: training stage names must be unique and non-empty, got {names}")
    if stage is None:
        return stages
    if stage not in names:
        raise ValueError(f"model {model.name!r} has no training stage {stage!r}; its stages: {', '.join(names)}")
    return [s for s in stages if s.name == stage]


def train(model: TryOnModel, dataset: Dataset, config: TrainConfig, recipe: Any = None, evaluator: Any = None) -> TrainResult:
    """Train `model`'s stages on `dataset` for `config.steps` optimiser steps each; see the module docstring.

    Example:
        model = create_model("spade", "tiny", label_nc=ds.num_classes)
        train(model, ds, TrainConfig(steps=200, batch_size=4, out_dir=Path("checkpoints/spade")),
              build_recipe("spade", perceptual_backbone="untrained"))
    """
    recipe = default_recipe(model) if recipe is None else recipe
    if (config.eval_every or config.keep_best) and evaluator is None:
        raise ValueError("eval_every/keep_best need an evaluator (zoo train builds one from --eval-split)")
    if model.INPUTS.uses_labelmap and model.label_set is None:
        label_set = getattr(dataset, "label_set", None)
        model.label_set = None if label_set is None else str(label_set)  # recorded with the weights
    ctx, device = _init_distributed(config.device)
    try:
        all_names = [s.name for s in model.training_stages(recipe)]
        stages = select_stages(model, recipe, config.stage)
        if not config.resume:
            taken = [s.name for s in stages if list_checkpoints(config.out_dir, s.name)]
            if taken:
                raise FileExistsError(
                    f"{config.out_dir} already holds a training run of stage(s) {taken}; pass resume=True (--resume) "
                    "to continue it or choose another output folder"
                )
        elif not any(list_checkpoints(config.out_dir, s.name) for s in stages):
            raise FileNotFoundError(f"resume requested but {config.out_dir / 'checkpoints'} holds no step_*.pt checkpoint "
                                    f"of stage(s) {[s.name for s in stages]}")
        results: dict[str, TrainResult] = {}
        for position, stage in enumerate(stages):
            # the first stage of this call continues what the run exported so far (earlier stages' weights)
            inherit = position == 0 and all_names.index(stage.name) > 0
            results[stage.name] = _train(model, dataset, config, ctx, device, recipe, stage, inherit, evaluator)
        last = results[stages[-1].name]
        last.stages = {name: {"start_step": r.start_step, "steps": r.steps, "final_losses": r.final_losses,
                              "samples_per_s": r.samples_per_s, "wall_s": r.wall_s} for name, r in results.items()}
        return last
    finally:
        if ctx.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(model: TryOnModel, dataset: Dataset, config: TrainConfig, ctx: _Dist, device: torch.device, recipe: Any,
           stage: Stage, inherit_export: bool, evaluator: Any = None) -> TrainResult:
    out_dir = config.out_dir
    if device.type == "cpu":
        # Adam moments of tiny GANs decay into denormals; without this a CPU step slows ~8x after a few
        # dozen steps (measured, ../shared/reference/cpu-sizing.md).
        torch.set_flush_denormal(True)
    amp_dtype = _resolve_amp(config.amp, device)

    existing = list_checkpoints(out_dir, stage.name)
    resume_state: dict[str, Any] | None = None
    if config.resume and existing:
        resume_state = load_checkpoint(existing[-1])
        _check_resume_compatible(resume_state, model, config, ctx, existing[-1], recipe, stage.name)
    elif inherit_export and (out_dir / WEIGHTS_FILE).is_file():
        from models.base import load_state_strict, load_weights_file

        state = load_weights_file(out_dir / WEIGHTS_FILE, out_dir / WEIGHTS_FILE, "cpu")
        load_state_strict(model, state, out_dir / WEIGHTS_FILE)

    model.to(device)
    model.train()
    phases = stage.phases
    _validate_phases(model, phases)
    all_phase_params = list({id(p): p for phase in phases for p in phase.parameters}.values())
    # Parameters no phase of this stage trains (GMM while TOM trains) are frozen for the stage: no weight
    # gradients are computed or accumulated for them.
    stage_ids = {id(p) for p in all_phase_params}
    outside_stage = [p for p in model.parameters() if id(p) not in stage_ids and p.requires_grad]
    for p in outside_stage:
        p.requires_grad_(False)
    optimizers = {
        phase.name: torch.optim.Adam(phase.parameters, lr=phase.lr, betas=tuple(phase.betas)) for phase in phases
    }
    # Loss scaling only for fp16 (bf16 has fp32's exponent range); one scaler per phase because each
    # phase has its own backward and step.
    scalers = {
        phase.name: torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16) for phase in phases
    }

    start_step = 0
    position = {"epoch": 0, "batch_in_epoch": 0}
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(resume_state["optimizers"][name])
        for name, scaler in scalers.items():
            if resume_state["scalers"].get(name):
                scaler.load_state_dict(resume_state["scalers"][name])
        start_step = int(resume_state["step"])
        position = dict(resume_state["data"])
    elif ctx.active:
        _broadcast_state(model, parameters=True)  # identical starting weights on every rank

    stream = ResumableBatchStream(
        dataset,
        batch_size=config.batch_size,
        seed=config.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        **position,
    )
    sample_batch = _fixed_sample_batch(dataset, min(config.batch_size, 4))
    _check_inputs(model, sample_batch, dataset)
    sample_batch = batch_to_device(sample_batch, device)

    log = None
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_run_config(out_dir, model, dataset, config, ctx, device, amp_dtype, recipe, stage, start_step)
        log = TrainingLog(out_dir, resume_step=start_step, total_steps=config.steps, progress=config.progress, stage=stage.name)

    # Random streams last, right before the loop: a fresh run seeds (per rank, so noise differs between
    # ranks); a resumed run continues exactly where the checkpointed one stood.
    if resume_state is not None:
        rng_states = resume_state["rng"]
        _restore_rng(rng_states[ctx.rank], device)
    else:
        _seed_everything(config.seed + ctx.rank)

    samples_per_step = config.batch_size * config.grad_accum * ctx.world_size
    step = start_step
    started = time.perf_counter()
    window_start, window_steps = started, 0
    last_losses: dict[str, float] = {}
    last_checkpoint = existing[-1] if (resume_state is not None and existing) else checkpoint_dir(out_dir, stage.name)
    try:
        while step < config.steps:
            micro_batches = [batch_to_device(stream.next(), device) for _ in range(config.grad_accum)]
            step_losses: dict[str, Tensor] = {}
            for phase in phases:
                optimizer, scaler = optimizers[phase.name], scalers[phase.name]
                with _only_phase_trainable(phase.parameters, all_phase_params):
                    optimizer.zero_grad(set_to_none=True)
                    for micro in micro_batches:
                        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                            losses = phase.losses(micro)
                        if "total" not in losses:
                            raise KeyError(f"phase {phase.name!r} returned losses {sorted(losses)} without 'total'")
                        scaler.scale(losses["total"] / config.grad_accum).backward()
                        for key, value in losses.items():
                            name = f"{phase.name}/{key}"
                            contribution = value.detach().float() / config.grad_accum
                            step_losses[name] = step_losses[name] + contribution if name in step_losses else contribution
                    if ctx.active:
                        _all_reduce_mean_grads(phase.parameters, ctx.world_size)
                    scaler.step(optimizer)
                    scaler.update()
            if ctx.active:
                _broadcast_state(model, parameters=False)
            step += 1
            window_steps += 1

            totals = torch.stack([v for k, v in step_losses.items() if k.endswith("/total")])
            if ctx.active:
                # Every rank must take the same decision, or the healthy ones would hang in the next
                # collective: a NaN/inf on any rank makes the sum non-finite everywhere.
                totals = totals.clone()
                dist.all_reduce(totals, op=dist.ReduceOp.SUM)
            if not bool(torch.isfinite(totals).all()):
                bad = {k: float(v) for k, v in step_losses.items() if k.endswith("/total")}
                raise FloatingPointError(f"non-finite loss at step {step}: {bad} (lower the lr or check the data)")

            is_last = step == config.steps
            if is_last:
                last_losses = {k: float(v) for k, v in step_losses.items()}
            if log is not None and (is_last or (config.log_every and step % config.log_every == 0)):
                now = time.perf_counter()
                throughput = window_steps * samples_per_step / max(now - window_start, 1e-9)
                log.log(step, stream.epoch, {k: float(v) for k, v in step_losses.items()}, throughput)
                window_start, window_steps = now, 0
            elif log is not None:
                log.advance(step)
            if config.sample_every and (step % config.sample_every == 0 or is_last) and ctx.is_main:
                _write_sample_grid(model, sample_batch, out_dir, step, device, log, stage.name)
            if is_last or (config.checkpoint_every and step % config.checkpoint_every == 0):
                last_checkpoint = _save_checkpoint(
                    model, optimizers, scalers, stream, step, config, ctx, device, recipe, stage.name
                )
            if evaluator is not None and (is_last or (config.eval_every and step % config.eval_every == 0)):
                if ctx.is_main:
                    # under a forked RNG: scoring never shifts the training stream (exact resume holds)
                    with _isolated_rng(device):
                        scores = evaluator(model)
                    if log is not None:
                        log.log_eval(step, scores)
                    if config.keep_best:
                        _keep_best(model, config, stage.name, step, scores, evaluator)
                if ctx.active:
                    dist.barrier()
    finally:
        if log is not None:
            log.close()
        for p in outside_stage:
            p.requires_grad_(True)
    wall = time.perf_counter() - started
    done = step - start_step
    return TrainResult(
        out_dir=out_dir,
        start_step=start_step,
        steps=step,
        final_losses=last_losses,
        samples_per_s=done * samples_per_step / wall if wall > 0 and done else 0.0,
        wall_s=wall,
        checkpoint=last_checkpoint,
        device=str(device),
        world_size=ctx.world_size,
        stage=stage.name,
    )


def _check_resume_compatible(
    state: dict[str, Any], model: nn.Module, config: TrainConfig, ctx: _Dist, path: Path, recipe: Any, stage: str
) -> None:
    saved = state["train_config"]
    changed = [
        f"{name}: checkpoint {saved.get(name)!r} vs now {getattr(config, name)!r}"
        for name in _RESUME_INVARIANT_FIELDS
        if saved.get(name) != getattr(config, name)
    ]
    if state.get("model_name") != getattr(model, "name", None):
        changed.append(f"model: checkpoint {state.get('model_name')!r} vs now {getattr(model, 'name', None)!r}")
    saved_model_config, model_config = state.get("model_config"), _model_config_json(model)
    if saved_model_config is not None and model_config is not None and saved_model_config != model_config:
        diff = sorted(k for k in set(saved_model_config) | set(model_config) if saved_model_config.get(k) != model_config.get(k))
        changed.append(f"model config fields {diff}")
    recipe_diff = _recipe_changes(state.get("recipe"), recipe)
    if recipe_diff:
        changed.append(f"recipe fields {recipe_diff}")
    if state.get("stage", "main") != stage:
        changed.append(f"stage: checkpoint {state.get('stage')!r} vs now {stage!r}")
    if int(state["world_size"]) != ctx.world_size:
        changed.append(f"world size: checkpoint {state['world_size']} vs now {ctx.world_size}")
    if changed:
        raise ValueError(f"cannot resume exactly from {path}; these differ: " + "; ".join(changed))
    if int(state["step"]) > config.steps:
        raise ValueError(f"{path} is at step {state['step']}, beyond the requested {config.steps} steps")


def _save_checkpoint(
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    scalers: dict[str, torch.amp.GradScaler],
    stream: ResumableBatchStream,
    step: int,
    config: TrainConfig,
    ctx: _Dist,
    device: torch.device,
    recipe: Any,
    stage: str,
) -> Path:
    rng = _capture_rng(device)
    if ctx.active:
        gathered: list[Any] = [None] * ctx.world_size
        dist.all_gather_object(gathered, rng)
        rng_states = gathered
    else:
        rng_states = [rng]
    path = checkpoint_dir(config.out_dir, stage) / f"step_{step:08d}.pt"
    if ctx.is_main:
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "model_name": getattr(model, "name", None),
            "model_config": _model_config_json(model),
            "recipe": recipe_json(recipe),
            "stage": stage,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "scalers": {name: scaler.state_dict() for name, scaler in scalers.items()},
            "rng": [{k: v.cpu() if isinstance(v, Tensor) else v for k, v in r.items()} for r in rng_states],
            "data": stream.position(),
            "world_size": ctx.world_size,
            "train_config": _json_safe(config.to_json()),
        }
        _atomic_torch_save(state, path)
        for old in list_checkpoints(config.out_dir, stage)[: -config.keep_checkpoints]:
            old.unlink()
        _export(model, config.out_dir)
    if ctx.active:
        dist.barrier()
    return path


def _keep_best(model: TryOnModel, config: TrainConfig, stage: str, step: int, scores: dict[str, float], evaluator: Any) -> None:
    """Export the model to out_dir/best when ``config.keep_best`` improved (best.json says when and how much)."""
    metric = config.keep_best
    if metric not in scores:
        raise ValueError(f"--keep-best {metric!r}: the evaluator reports {sorted(scores)}")
    path = config.out_dir / "best.json"
    best = json.loads(path.read_text()) if path.is_file() else None
    higher = evaluator.higher_is_better(metric)
    value = scores[metric]
    if best is not None and best.get("metric") == metric:
        if (value <= best["value"]) if higher else (value >= best["value"]):
            return
    model.save_pretrained(config.out_dir / "best")
    record = {"metric": metric, "value": value, "higher_is_better": higher, "stage": stage, "step": step, "scores": scores,
              "evaluation": getattr(evaluator, "identity", None)}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    os.replace(tmp, path)


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    # run_info may carry Paths etc.; the checkpoint must stay weights_only-loadable (plain containers).
    return json.loads(json.dumps(data, default=str))


def _write_sample_grid(
    model: nn.Module, batch: dict[str, Any], out_dir: Path, step: int, device: torch.device, log: TrainingLog | None,
    stage: str = "main",
) -> None:
    with _isolated_rng(device), torch.no_grad():
        model.eval()
        try:
            # a model may show more than its output (CP-VTON: the warped cloth too) through sample_columns()
            custom = getattr(model, "sample_columns", None)
            columns = custom(batch) if custom is not None else None
            if columns is None:
                columns = [batch[key] for key in ("image", "article") if key in batch] + [model.generate(batch)]
            grid = torch.stack(columns, dim=1).flatten(0, 1)  # [B*columns,3,H,W]: one row per sample
            nrow = len(columns)
        finally:
            model.train()
    path = out_dir / "samples" / stage / f"step_{step:08d}.png"
    image = save_image_grid(grid.float().cpu(), path, nrow=nrow)
    if log is not None:
        log.add_image(step, image)


def _write_run_config(
    out_dir: Path,
    model: TryOnModel,
    dataset: Dataset,
    config: TrainConfig,
    ctx: _Dist,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    recipe: Any,
    stage: Stage,
    start_step: int,
) -> None:
    """train_config.json: everything about training (the recipe, each stage's phases, the run options);
    the architecture stays in config.json. Stages trained by separate calls each keep their entry."""
    path = out_dir / "train_config.json"
    try:
        previous = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        previous = {}
    stages = dict(previous.get("stages") or {}) if previous.get("model") == model.name else {}
    stages[stage.name] = {
        "phases": [{"name": p.name, "lr": p.lr, "betas": list(p.betas), "parameters": sum(q.numel() for q in p.parameters)}
                   for p in stage.phases],
        "train_config": config.to_json(),
        "start_step": start_step,
        "device": str(device),
        "amp_dtype": str(amp_dtype) if amp_dtype else None,
        "world_size": ctx.world_size,
    }
    info = {
        "model": model.name,
        "model_config": _model_config_json(model),
        "data_needs": model.data_needs().to_json(),
        "recipe": {"class": type(recipe).__name__, **recipe_json(recipe)},
        "stage_order": [s.name for s in model.training_stages(recipe)],
        "stages": stages,
        "train_config": config.to_json(),  # of the latest call
        "dataset": {
            "type": type(dataset).__name__,
            "size": len(dataset),  # type: ignore[arg-type]
            "num_classes": getattr(dataset, "num_classes", None),
            "label_set": None if getattr(dataset, "label_set", None) is None else str(dataset.label_set),  # type: ignore[attr-defined]
        },
        "world_size": ctx.world_size,
        "device": str(device),
        "amp_dtype": str(amp_dtype) if amp_dtype else None,
        "torch": torch.__version__,
    }
    tmp = out_dir / "train_config.json.tmp"
    tmp.write_text(json.dumps(info, indent=2, default=str))
    os.replace(tmp, path)


__all__ = [
    "TrainConfig",
    "TrainResult",
    "ResumableBatchStream",
    "batch_to_device",
    "list_checkpoints",
    "load_checkpoint",
    "select_stages",
    "train",
]
