"""`zoo`: list, train, run and import the try-on generators of the model zoo.

Heavy imports (torch, the models, the loader) happen inside the commands so that `zoo --help` is instant.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help=(
        "Train, run and import the try-on generators of the model zoo.\n\n"
        "Example: zoo train --model smis --data data/ds --preset tiny --steps 200 --perceptual-backbone untrained"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


class PerceptualBackbone(str, Enum):
    pretrained = "pretrained"  # ImageNet VGG19 weights (--vgg-weights or the torch hub cache file)
    untrained = "untrained"  # seeded random VGG19: runs anywhere, not comparable to published numbers
    none = "none"  # no perceptual loss at all


class DeviceChoice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class AmpChoice(str, Enum):
    auto = "auto"
    off = "off"
    bf16 = "bf16"
    fp16 = "fp16"


class ImportKind(str, Enum):
    smis = "smis"
    spade = "spade"


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)  # paths stay whole
    return typer.Exit(code=2)


def _utc_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _count_parameters(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _parameter_breakdown(model: Any) -> dict[str, int]:
    """Parameters per top-level sub-module (generator, discriminator, encoder, ...)."""
    return {name: _count_parameters(child) for name, child in model.named_children() if _count_parameters(child)}


def input_size_of(name: str, preset: str) -> tuple[int, int]:
    """(H, W) a preset generates, read from its config when it says (height/width), else from the model."""
    from models import create_model
    from models.registry import build_config

    config = build_config(name, preset)
    if hasattr(config, "height") and hasattr(config, "width"):
        return (int(config.height), int(config.width))
    return tuple(create_model(name, preset).input_size)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# zoo list


@app.command("list")
def list_command() -> None:
    """List the registered models with their presets, input sizes and parameter counts per sub-module.

    Builds every preset on the CPU once (paper presets take ~2 s and ~0.5 GB each).

    Example: zoo list
    """
    import torch

    from models import create_model, list_models
    from models.registry import get_model_class

    rows: list[tuple[str, str, str, int, dict[str, int], str]] = []
    for name in list_models():
        cls = get_model_class(name)
        for preset in cls.PRESETS:
            # Parameters do not depend on the seed; fixing it keeps the weight init cheap and repeatable.
            torch.manual_seed(0)
            model = create_model(name, preset)
            h, w = model.input_size
            rows.append((name, preset, f"{h}x{w}", _count_parameters(model), _parameter_breakdown(model), " ".join(cls.required_inputs)))
            del model
    modules = list(dict.fromkeys(part for row in rows for part in row[4]))
    table = Table(title="tryon-bench model zoo (parameters)")
    for column in ("model", "preset", "HxW", "total", *modules, "batch keys"):
        table.add_column(column, justify="left" if column in ("model", "preset", "batch keys") else "right")
    for name, preset, size, total, parts, needs in rows:
        table.add_row(name, preset, size, f"{total:,}", *(f"{parts[m]:,}" if m in parts else "—" for m in modules), needs)
    # Piped into a file or a test, rich would squeeze the table to 80 columns and wrap the numbers.
    out = console if console.is_terminal else Console(width=200)
    out.print(table)


# --------------------------------------------------------------------------------------------------
# data


def _arrays_label_set(data: Path, size: tuple[int, int], label_set: Optional[str]) -> Optional[str]:
    """The label set of the arrays at `size` when the user did not name one (the only one there)."""
    from curate.labelmaps import ARRAYS_DIR

    if label_set:
        return label_set
    h, w = size
    stem = f"{h}x{w}"
    root = data / ARRAYS_DIR
    found = sorted(p.name for p in root.glob(f"{stem}*") if p.is_dir() and (p.name == stem or p.name.startswith(stem + "-")))
    if len(found) > 1:
        raise _fail(f"{root} holds arrays at {stem} in several label sets {found}: pass --label-set")
    if not found:
        others = sorted(p.name for p in root.glob("*x*") if p.is_dir()) if root.is_dir() else []
        hint = f" (there are arrays at {', '.join(others)}; pass --size to use one)" if others else ""
        raise _fail(f"no arrays at {stem} in {data}{hint}: run `curate labelmaps {data} --size {stem}` first")
    return found[0][len(stem) + 1 :] or None


def open_dataset(data: Path, split: str, size: tuple[int, int], label_set: Optional[str]) -> Any:
    """`curate.loader.TryOnDataset`, with errors that say which curate command makes the missing arrays."""
    from curate.loader import TryOnDataset

    if not data.is_dir():
        raise _fail(f"dataset folder {data} does not exist")
    label_set = _arrays_label_set(data, size, label_set)
    try:
        return TryOnDataset(data, split, size=size, label_set=label_set)
    except FileNotFoundError as exc:  # the loader's message names the curate command to run
        raise _fail(str(exc)) from exc
    except (ValueError, KeyError) as exc:
        raise _fail(f"cannot read split {split!r} of {data} at {size[0]}x{size[1]}: {exc}") from exc


def _label_set_name(dataset: Any) -> Optional[str]:
    label_set = getattr(dataset, "label_set", None)
    return getattr(label_set, "name", label_set)


# --------------------------------------------------------------------------------------------------
# zoo train


# CLI choice -> the models' `perceptual_backbone` config value.
_BACKBONE_CONFIG = {PerceptualBackbone.pretrained: "vgg19", PerceptualBackbone.untrained: "untrained", PerceptualBackbone.none: "none"}


def _perceptual_overrides(model_name: str, backbone: PerceptualBackbone, vgg_weights: Optional[Path]) -> dict[str, Any]:
    """Map the perceptual-loss options onto the model's config; check the VGG19 file before training starts."""
    from dataclasses import fields

    from models.layers.losses import resolve_vgg_weights
    from models.registry import get_model_class

    names = {f.name for f in fields(get_model_class(model_name).Config)}
    if "perceptual_backbone" not in names:
        if vgg_weights is not None:
            raise _fail(f"model {model_name!r} has no perceptual loss; --vgg-weights does not apply")
        return {}
    overrides: dict[str, Any] = {"perceptual_backbone": _BACKBONE_CONFIG[backbone]}
    if backbone is PerceptualBackbone.pretrained:
        try:
            # The model builds its VGG lazily at the first step; a missing file should stop us now, not later.
            overrides["vgg_weights"] = str(resolve_vgg_weights(str(vgg_weights) if vgg_weights else None))
        except FileNotFoundError as exc:
            raise _fail(str(exc)) from exc
    return overrides


def _newest_run(model: str) -> Path:
    root = Path("checkpoints") / model
    runs = sorted(p for p in root.glob("*") if (p / "checkpoints").is_dir()) if root.is_dir() else []
    if not runs:
        raise _fail(f"--resume without --out: no run of {model!r} under {root}/ to resume")
    return runs[-1]


@app.command("train")
def train_command(
    model: str = typer.Option(..., "--model", "-m", help="model name (see `zoo list`)"),
    data: Path = typer.Option(..., "--data", "-d", help="curated dataset folder (after `curate labelmaps`)"),
    preset: str = typer.Option("tiny", help="model preset: tiny (CPU) or paper (the reference configuration)"),
    steps: int = typer.Option(1000, min=1, help="optimiser steps in total (a resumed run continues up to this)"),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="samples per micro-batch per process"),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="micro-batches accumulated per optimiser step"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="run folder [default: checkpoints/<model>/<UTC timestamp>]"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out (or the newest run of the model)"),
    vgg_weights: Optional[Path] = typer.Option(None, "--vgg-weights", help="VGG19 weights for the perceptual loss (torchvision vgg19-dcbb9e9d.pth)"),
    perceptual_backbone: PerceptualBackbone = typer.Option(
        PerceptualBackbone.pretrained, "--perceptual-backbone",
        help="'untrained' = seeded random VGG19 (tests, demo; recorded in the run config, not comparable)",
    ),
    label_set: Optional[str] = typer.Option(None, "--label-set", help="label set of the arrays to read [default: the only one at the size]"),
    size: Optional[str] = typer.Option(None, "--size", help="HxW to train at instead of the preset's (sets the config's height/width)"),
    device: DeviceChoice = typer.Option(DeviceChoice.auto, "--device", help="auto = CUDA when available"),
    amp: AmpChoice = typer.Option(AmpChoice.auto, "--amp", help="mixed precision on CUDA (auto = bf16 when supported)"),
    seed: int = typer.Option(0, help="seed of the weights, the data order and the noise"),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", min=0, help="steps between checkpoints (0 = only the last)"),
    sample_every: int = typer.Option(250, "--sample-every", min=0, help="steps between sample grids (0 = none)"),
    log_every: int = typer.Option(10, "--log-every", min=0, help="steps between log rows"),
    num_workers: int = typer.Option(0, "--num-workers", min=0, help="data-loader worker processes"),
) -> None:
    """Train a zoo model on a curated dataset; writes weights, config.json, checkpoints, logs and samples.

    The model's label classes follow the dataset's label maps (`label_nc = dataset.num_classes`). Launch
    with `torchrun --nproc_per_node N $(which zoo) train ...` for DDP (gloo on CPU, NCCL on CUDA).

    Example: zoo train --model smis --data data/ds --preset tiny --steps 300 --perceptual-backbone untrained
    """
    import torch

    from models import create_model
    from models.trainer import TrainConfig, train

    try:
        train_size = input_size_of(model, preset)
    except ValueError as exc:  # unknown model or preset: the message lists the valid ones
        raise _fail(str(exc)) from exc
    overrides: dict[str, Any] = {}
    if size is not None:
        train_size = _parse_size(size)
        overrides.update(height=train_size[0], width=train_size[1])
    dataset = open_dataset(data, "train", train_size, label_set)
    overrides["label_nc"] = dataset.num_classes
    overrides.update(_perceptual_overrides(model, perceptual_backbone, vgg_weights))

    if out is None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # Each rank would stamp its own clock (and pick its own folder): they must share one.
            raise _fail("under torchrun pass --out explicitly so that every rank writes the same run folder")
        out = _newest_run(model) if resume else Path("checkpoints") / model / _utc_stamp()
    torch.manual_seed(seed)  # the initial weights (a resumed run replaces them from the checkpoint)
    try:
        net = create_model(model, preset, **overrides)
    except (FileNotFoundError, ValueError) as exc:  # e.g. VGG19 weights missing: the message names the file
        raise _fail(str(exc)) from exc
    config = TrainConfig(
        steps=steps, batch_size=batch_size, grad_accum=grad_accum, checkpoint_every=checkpoint_every,
        sample_every=sample_every, log_every=log_every, out_dir=out, seed=seed, amp=amp.value,
        device=device.value, num_workers=num_workers, resume=resume,
        run_info={
            "command": "zoo train", "data": str(data.resolve()), "preset": preset,
            "label_set": _label_set_name(dataset), "perceptual_backbone": perceptual_backbone.value,
            "comparable_to_published": perceptual_backbone is PerceptualBackbone.pretrained,
        },
    )
    console.print(f"training {model} ({preset}, {_count_parameters(net):,} parameters) on {len(dataset)} samples -> {out}")
    try:
        result = train(net, dataset, config)
    except (FileExistsError, FileNotFoundError, ValueError, FloatingPointError) as exc:
        raise _fail(str(exc)) from exc
    losses = "  ".join(f"{k} {v:.4f}" for k, v in result.final_losses.items() if k.endswith("/total"))
    console.print(
        f"done: step {result.steps} ({result.steps - result.start_step} this run, {result.samples_per_s:.1f} samples/s "
        f"on {result.device} x{result.world_size}); {losses}\nmodel: {out}  (zoo generate --checkpoint {out} ...)"
    )


# --------------------------------------------------------------------------------------------------
# zoo generate


def _parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match:
        raise _fail(f"--size must look like 64x48 (HxW), got {text!r}")
    return int(match.group(1)), int(match.group(2))


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def output_name(pair_id: str) -> str:
    """A file name for a pair id: path separators and odd characters become '_' (ids stay recognisable)."""
    name = _UNSAFE_NAME.sub("_", pair_id).strip("._")
    if not name:
        raise ValueError(f"pair id {pair_id!r} gives an empty file name")
    return name + ".png"


def _resolve_class(label_set_name: Optional[str], value: str) -> int:
    from curate.labelsets import get_label_set

    classes = list(get_label_set(label_set_name).classes) if label_set_name else []
    if value.isdigit() and int(value) < max(len(classes), 1):
        return int(value)
    if value in classes:
        return classes.index(value)
    raise _fail(f"--resample-class {value!r} is not a class (name or id) of label set {label_set_name}: {classes}")


@app.command("generate")
def generate_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="run folder written by `zoo train` (config.json + weights.pt)"),
    data: Path = typer.Option(..., "--data", "-d", help="curated dataset folder"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for the generated PNGs (named by pair_id)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="expected model name (checked against the checkpoint)"),
    split: str = typer.Option("test", help="dataset split"),
    batch_size: int = typer.Option(4, "--batch-size", min=1),
    resample_class: Optional[str] = typer.Option(
        None, "--resample-class", help="SMIS: re-sample the style of this class only (name or id), e.g. pants"
    ),
    seed: int = typer.Option(0, help="seed of the sampled styles/noise"),
    device: DeviceChoice = typer.Option(DeviceChoice.auto, "--device"),
) -> None:
    """Generate try-on images for a dataset split with a trained model; writes lossless PNGs named by pair_id.

    Example: zoo generate --model smis --checkpoint checkpoints/smis/run --data data/ds --split test --out gen/
    """
    import numpy as np
    import torch
    from PIL import Image
    from torch.utils.data import DataLoader

    from models import load_pretrained
    from models.trainer import batch_to_device

    if not (checkpoint / "config.json").is_file():
        raise _fail(f"{checkpoint} has no config.json: pass the run folder written by `zoo train` or `zoo import`")
    try:
        net = load_pretrained(checkpoint)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise _fail(f"cannot load {checkpoint}: {exc}") from exc
    if model is not None and model != net.name:
        raise _fail(f"{checkpoint} holds a {net.name!r} model, not {model!r}")
    label_set = _trained_label_set(checkpoint)
    dataset = open_dataset(data, split, net.input_size, label_set)
    label_nc = getattr(net.config, "label_nc", None)
    if label_nc is not None and label_nc != dataset.num_classes:
        raise _fail(f"the model was trained on {label_nc} classes, the {split} arrays have {dataset.num_classes}")
    resample_id = None
    if resample_class is not None:
        if not hasattr(net, "resample_class"):
            raise _fail(f"model {net.name!r} cannot re-sample one class's style (only SMIS can)")
        resample_id = _resolve_class(_label_set_name(dataset), resample_class)

    dev = torch.device("cuda" if device is DeviceChoice.cuda or (device is DeviceChoice.auto and torch.cuda.is_available()) else "cpu")
    net.to(dev).eval()
    out.mkdir(parents=True, exist_ok=True)
    # The loader gets its own generator: creating its iterator would otherwise draw from the global RNG
    # and shift the noise/styles sampled under --seed.
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    styles = torch.Generator().manual_seed(seed)  # --resample-class draws its fresh styles from this
    written = 0
    with torch.no_grad():
        for batch in loader:
            batch = batch_to_device(batch, dev)
            images = net.generate(batch) if resample_id is None else net.resample_class(batch, resample_id, generator=styles)
            pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            for pair_id, image in zip(batch["pair_id"], pixels):
                Image.fromarray(np.ascontiguousarray(image)).save(out / output_name(pair_id), format="PNG")
                written += 1
    console.print(f"wrote {written} images to {out}")


def _trained_label_set(checkpoint: Path) -> Optional[str]:
    """The label set the run was trained on (train_config.json), so generation reads the same classes."""
    path = checkpoint / "train_config.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return (info.get("train_config", {}).get("run_info") or {}).get("label_set")


# --------------------------------------------------------------------------------------------------
# zoo import


@app.command("import")
def import_command(
    kind: ImportKind = typer.Argument(..., help="which official release: smis or spade"),
    path: Path = typer.Argument(..., help="the released state_dict file (e.g. latest_net_G.pth)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder to write config.json + weights.pt"),
) -> None:
    """Import an official SMIS or SPADE generator checkpoint into a zoo model folder.

    The file is read with torch.load(weights_only=True); keys that do not fit are listed and nothing is written.

    Example: zoo import spade checkpoints/ade20k_pretrained/latest_net_G.pth --out models/spade-ade20k
    """
    from models.checkpoint_import import import_checkpoint

    if not path.is_file():
        raise _fail(f"{path} is not a file")
    try:
        result = import_checkpoint(kind.value, path, out)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise _fail(str(exc)) from exc
    console.print(f"imported {kind.value} from {path} -> {out}" + (f" ({result})" if result is not None else ""))
