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


def _fail(message: str) -> typer.Exit:
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)  # paths stay whole
    return typer.Exit(code=2)


def _utc_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _count_parameters(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _parameter_breakdown(model: Any) -> dict[str, int]:
    """Parameters per top-level sub-module (generator, discriminator, encoder, ...)."""
    return {name: _count_parameters(child) for name, child in model.named_children() if _count_parameters(child)}


def input_size_of(name: str, preset: str) -> tuple[int, int]:
    """(H, W) a preset generates (every model's config has height and width)."""
    from models.registry import build_config

    config = build_config(name, preset)
    return (int(config.height), int(config.width))


# --------------------------------------------------------------------------------------------------
# zoo list


@app.command("list")
def list_command() -> None:
    """List the registered models: presets, sizes, parameters per sub-module, data needs, stages, recipes.

    Builds every preset on the meta device (shapes only: no memory, no init time).

    Example: zoo list
    """
    import torch

    from models import create_model, list_models
    from models.registry import build_recipe, get_model_class

    rows: list[tuple[str, ...]] = []
    parts_by_row: list[dict[str, int]] = []
    for name in list_models():
        cls = get_model_class(name)
        stages = " > ".join(s.name for s in _stages_of(cls, build_recipe(name, "default")))
        for preset in cls.PRESETS:
            with torch.device("meta"):  # parameter counts need shapes only
                model = create_model(name, preset)
            h, w = model.input_size
            labels = f"{model.num_classes} ({cls.INPUTS.label_channels})" if cls.INPUTS.uses_labelmap else "none"
            rows.append((name, preset, f"{h}x{w}", f"{_count_parameters(model):,}", " ".join(cls.INPUTS.generate),
                         " ".join(cls.INPUTS.train), labels, stages, " ".join(cls.RECIPES), "yes" if cls.OFFICIAL else "-"))
            parts_by_row.append(_parameter_breakdown(model))
            del model
    modules = list(dict.fromkeys(part for parts in parts_by_row for part in parts))
    table = Table(title="tryon-bench model zoo")
    head = ("model", "preset", "HxW", "total", *modules, "generate reads", "training reads", "label map", "stages", "recipes", "import")
    for column in head:
        table.add_column(column, justify="right" if column in ("total", *modules) else "left")
    for row, parts in zip(rows, parts_by_row):
        table.add_row(*row[:4], *(f"{parts[m]:,}" if m in parts else "—" for m in modules), *row[4:])
    # Piped into a file or a test, rich would squeeze the table to 80 columns and wrap the numbers; a table
    # is never wider than its content, so a wide console prints it whole (one column per sub-module name).
    out = console if console.is_terminal else Console(width=1000)
    out.print(table)


def _stages_of(cls: Any, recipe: Any) -> list[Any]:
    import torch

    from models.registry import build_config

    with torch.device("meta"):
        return cls(build_config(cls.name, "tiny")).training_stages(recipe)


# --------------------------------------------------------------------------------------------------
# data (resolved in models/runs.py; here only turned into one-line CLI errors)


def open_dataset(data: Path, split: str, size: tuple[int, int], label_set: Optional[str], *, uses_labelmap: bool = True,
                 fields: Optional[tuple[str, ...]] = None, augment: tuple[str, ...] = (), seed: int = 0) -> Any:
    from models.runs import RunError
    from models.runs import open_dataset as _open

    try:
        return _open(data, split, size, label_set, uses_labelmap=uses_labelmap, fields=fields, augment=augment, seed=seed)
    except RunError as exc:
        raise _fail(str(exc)) from None


def _label_set_name(dataset: Any) -> Optional[str]:
    label_set = getattr(dataset, "label_set", None)
    return getattr(label_set, "name", label_set)


# --------------------------------------------------------------------------------------------------
# zoo train


# CLI choice -> the recipes' `perceptual_backbone` value.
_BACKBONE_CONFIG = {PerceptualBackbone.pretrained: "vgg19", PerceptualBackbone.untrained: "untrained", PerceptualBackbone.none: "none"}


def _perceptual_overrides(model_name: str, backbone: Optional[PerceptualBackbone], vgg_weights: Optional[Path],
                          default: Optional[str]) -> dict[str, Any]:
    """Map the perceptual-loss options onto the model's recipe; check the VGG19 file before training starts."""
    from dataclasses import fields

    from models.layers.losses import resolve_vgg_weights
    from models.registry import get_model_class

    names = {f.name for f in fields(get_model_class(model_name).Recipe)}
    if "perceptual_backbone" not in names:
        if vgg_weights is not None or backbone is not None:
            raise _fail(f"model {model_name!r} has no perceptual loss; --perceptual-backbone/--vgg-weights do not apply")
        return {}
    chosen = _BACKBONE_CONFIG[backbone] if backbone is not None else (default or "vgg19")
    overrides: dict[str, Any] = {"perceptual_backbone": chosen}
    if chosen == "vgg19":
        try:
            # The model builds its VGG lazily at the first step; a missing file should stop us now, not later.
            overrides["vgg_weights"] = str(resolve_vgg_weights(str(vgg_weights) if vgg_weights else None))
        except FileNotFoundError as exc:
            raise _fail(str(exc)) from exc
    return overrides


def _newest_run(model: str) -> Path:
    from models.runs import RunError, newest_run

    try:
        return newest_run(model)
    except RunError as exc:
        raise _fail(f"--resume without --out: {exc}") from None


@app.command("train")
def train_command(
    model: str = typer.Option(..., "--model", "-m", help="model name (see `zoo list`)"),
    data: Path = typer.Option(..., "--data", "-d", help="curated dataset folder (after `curate labelmaps`)"),
    preset: str = typer.Option("tiny", help="architecture preset: tiny (CPU) or paper (the reference configuration); see `zoo list`"),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="training recipe [default: the preset's namesake, else 'default']"),
    stage: Optional[str] = typer.Option(None, "--stage", help="train only this stage (e.g. gmm, tom) [default: every stage in order]"),
    steps: int = typer.Option(1000, min=1, help="optimiser steps per stage (a resumed run continues up to this)"),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="samples per micro-batch per process"),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="micro-batches accumulated per optimiser step"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="run folder [default: checkpoints/<model>/<UTC timestamp>]"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out (or the newest run of the model)"),
    vgg_weights: Optional[Path] = typer.Option(None, "--vgg-weights", help="VGG19 weights for the perceptual loss (torchvision vgg19-dcbb9e9d.pth)"),
    perceptual_backbone: Optional[PerceptualBackbone] = typer.Option(
        None, "--perceptual-backbone",
        help="[default: the recipe's, pretrained VGG19] 'untrained' = seeded random VGG19 (tests, demo; recorded, not comparable)",
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
    eval_every: int = typer.Option(0, "--eval-every", min=0, help="steps between FID/KID/LPIPS on a fixed held-out subset (0 = none)"),
    keep_best: Optional[str] = typer.Option(None, "--keep-best", help="also export the model at its best value of this metric (fid, kid, lpips, ssim, psnr) to RUN/best"),
    eval_split: str = typer.Option("val", "--eval-split", help="split the held-out subset comes from"),
    eval_images: int = typer.Option(64, "--eval-images", min=2, help="pairs in the held-out subset (the first ones, always the same)"),
    feature_extractor: str = typer.Option("inception", "--feature-extractor", help="for --eval-every: inception (standard FID weights) | untrained (seeded, NOT comparable)"),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="pt_inception-2015-12-05-6726825d.pth"),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="start from this model folder's weights and architecture (e.g. a `zoo import`); sub-modules it does not hold are created"),
) -> None:
    """Train a zoo model on a curated dataset; writes model.safetensors, config.json, train_config.json,
    per-stage checkpoints, logs and samples.

    Models that read label maps get as many label channels as the dataset's label set has classes. A model
    with several stages (CP-VTON: gmm, tom) trains them in order, --steps each; --stage NAME trains one
    (a later stage starts from the weights the run exported so far). Launch with `torchrun --nproc_per_node N
    $(which zoo) train ...` for DDP (gloo on CPU, NCCL on CUDA).

    Example: zoo train --model smis --data data/ds --preset tiny --steps 300 --perceptual-backbone untrained
    """
    import torch

    from models import create_model
    from models.registry import build_recipe, default_recipe_name, get_model_class
    from models.trainer import TrainConfig, select_stages, train

    try:
        cls = get_model_class(model)
        train_size = input_size_of(model, preset)
        recipe_name = recipe or default_recipe_name(model, preset)
        base_recipe = build_recipe(model, recipe_name)
    except ValueError as exc:  # unknown model, preset or recipe: the message lists the valid ones
        raise _fail(str(exc)) from exc
    overrides: dict[str, Any] = {}
    if size is not None:
        train_size = _parse_size(size)
        overrides.update(height=train_size[0], width=train_size[1])
    required = cls.INPUTS.label_set  # a model whose ids mean fixed classes (ACGPN) reads arrays in its set
    if required and label_set and label_set != required:
        raise _fail(f"{model} reads {required} label maps, not {label_set}: run `curate labelmaps DS --label-set {required}`")
    label_set = label_set or required
    start = _initial_model(init_from, model, seed, size) if init_from is not None else None
    if start is not None:
        train_size, label_set = start.input_size, label_set or start.label_set
    dataset = open_dataset(data, "train", train_size, label_set, uses_labelmap=cls.INPUTS.uses_labelmap, fields=cls.INPUTS.train,
                           augment=cls.INPUTS.augment, seed=seed)
    if start is not None and cls.INPUTS.uses_labelmap and start.num_classes != dataset.num_classes:
        raise _fail(f"{init_from} reads {start.num_classes} label ids (label set {start.label_set}); the train arrays have "
                    f"{dataset.num_classes} ({_label_set_name(dataset)})")
    if cls.INPUTS.label_channels is not None:
        overrides[cls.INPUTS.label_channels] = dataset.num_classes
    recipe_overrides = _perceptual_overrides(model, perceptual_backbone, vgg_weights, getattr(base_recipe, "perceptual_backbone", None))

    if out is None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            # Each rank would stamp its own clock (and pick its own folder): they must share one.
            raise _fail("under torchrun pass --out explicitly so that every rank writes the same run folder")
        out = _newest_run(model) if resume else Path("checkpoints") / model / _utc_stamp()
    torch.manual_seed(seed)  # the initial weights (a resumed run replaces them from the checkpoint)
    try:
        net = start if start is not None else create_model(model, preset, **overrides)
        training_recipe = build_recipe(model, recipe_name, **recipe_overrides)
        stages = [s.name for s in select_stages(net, training_recipe, stage)]
    except (FileNotFoundError, ValueError, TypeError) as exc:  # e.g. a size the architecture cannot take
        raise _fail(str(exc)) from exc
    net.label_set = _label_set_name(dataset) if cls.INPUTS.uses_labelmap else None
    evaluator = None
    if keep_best is not None and keep_best not in ("fid", "kid", "lpips", "ssim", "psnr"):
        raise _fail(f"--keep-best {keep_best!r}; valid: fid, kid, lpips, ssim, psnr")
    if eval_every or keep_best:
        evaluator = _held_out_evaluator(net, data, eval_split, train_size, label_set or _label_set_name(dataset), eval_images,
                                        feature_extractor, inception_weights, seed, device)
    backbone = getattr(training_recipe, "perceptual_backbone", None)
    config = TrainConfig(
        steps=steps, batch_size=batch_size, grad_accum=grad_accum, checkpoint_every=checkpoint_every,
        sample_every=sample_every, log_every=log_every, out_dir=out, seed=seed, amp=amp.value,
        device=device.value, num_workers=num_workers, resume=resume, stage=stage, eval_every=eval_every, keep_best=keep_best,
        run_info={
            "command": "zoo train", "data": str(data.resolve()), "preset": preset, "recipe": recipe_name,
            "label_set": _label_set_name(dataset), "perceptual_backbone": backbone,
            "comparable_to_published": backbone in (None, "vgg19"),
        },
    )
    console.print(f"training {model} ({preset}, recipe {recipe_name}, stages {' > '.join(stages)}, "
                  f"{_count_parameters(net):,} parameters) on {len(dataset)} samples -> {out}")
    try:
        result = train(net, dataset, config, training_recipe, evaluator)
    except (FileExistsError, FileNotFoundError, ValueError, RuntimeError, FloatingPointError) as exc:
        raise _fail(str(exc)) from exc
    for name, info in result.stages.items():
        losses = "  ".join(f"{k} {v:.4f}" for k, v in info["final_losses"].items() if k.endswith("/total"))
        console.print(f"stage {name}: step {info['steps']} ({info['steps'] - info['start_step']} this run, "
                      f"{info['samples_per_s']:.1f} samples/s on {result.device} x{result.world_size}); {losses}")
    console.print(f"model: {out}  (zoo generate --checkpoint {out} ...)")


def _initial_model(directory: Path, model: str, seed: int, size: Optional[str]) -> Any:
    """The model folder training starts from; sub-modules it omits (an import's discriminator) are built
    fresh from ``seed`` and saved with the run from then on."""
    import torch

    from models.runs import RunError, load_model

    if size is not None:
        raise _fail("--size does not apply with --init-from: the folder's architecture is kept")
    torch.manual_seed(seed)  # what the folder omits is initialised from the run's seed
    try:
        net = load_model(directory, expected=model)
    except RunError as exc:
        raise _fail(str(exc)) from None
    if net.omitted:
        console.print(f"{directory} holds no {', '.join(net.omitted)} weights (a generator-only import): "
                      f"created freshly initialised (seed {seed})")
        net.omitted = ()
    return net.train()


def _held_out_evaluator(net: Any, data: Path, split: str, size: tuple[int, int], label_set: Optional[str], n: int,
                        feature_extractor: str, inception_weights: Optional[Path], seed: int, device: DeviceChoice) -> Any:
    """The fixed held-out subset `--eval-every` scores (real features extracted once, here)."""
    import torch

    from eval.during_training import HeldOutEvaluator
    from eval.runner import Protocol

    if feature_extractor not in ("inception", "untrained"):
        raise _fail(f"--feature-extractor {feature_extractor!r}; valid: inception, untrained")
    keys = tuple(dict.fromkeys(net.INPUTS.generate + ("image",)))
    held_out = open_dataset(data, split, size, label_set, uses_labelmap=net.INPUTS.uses_labelmap, fields=keys)
    dev = torch.device("cuda" if device is DeviceChoice.cuda or (device is DeviceChoice.auto and torch.cuda.is_available()) else "cpu")
    proto = Protocol(size=size, feature_extractor=feature_extractor, inception_weights=str(inception_weights) if inception_weights else None,
                     lpips_backbone="untrained" if feature_extractor == "untrained" else "pretrained", seed=seed)
    try:
        return HeldOutEvaluator(held_out, n, proto, dev)
    except (FileNotFoundError, ValueError) as exc:  # weights missing, a split too small: say which
        raise _fail(str(exc)) from None


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

    try:
        classes = list(get_label_set(label_set_name).classes) if label_set_name else []
    except KeyError:  # arrays of a label set this version does not define: ids still work
        classes = []
    if value.isdigit() and (not classes or int(value) < len(classes)):
        return int(value)
    if value in classes:
        return classes.index(value)
    raise _fail(f"--resample-class {value!r} is not a class (name or id) of label set {label_set_name}: {classes}")


@app.command("generate")
def generate_command(
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help="model folder written by `zoo train`/`zoo import` [default: the newest run of --model]"),
    data: Path = typer.Option(..., "--data", "-d", help="curated dataset folder"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for the generated PNGs (named by pair_id)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="expected model name (checked against the checkpoint)"),
    split: str = typer.Option("test", help="dataset split"),
    label_set: Optional[str] = typer.Option(None, "--label-set", help="only for models whose config.json records no label set (imports)"),
    batch_size: int = typer.Option(4, "--batch-size", min=1),
    resample_class: Optional[str] = typer.Option(
        None, "--resample-class", help="SMIS: re-sample the style of this class only (name or id), e.g. pants"
    ),
    seed: int = typer.Option(0, help="seed of the sampled styles/noise"),
    style: Optional[str] = typer.Option(
        None, "--style", help="SMIS: 'encode' (styles from each person's photo) or 'sample' (N(0,1) codes from --seed, as the "
        "official test) [default: encode, sample for an import without an encoder]"),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the generation sub-modules (the first batch pays the compilation)"),
    device: DeviceChoice = typer.Option(DeviceChoice.auto, "--device"),
) -> None:
    """Generate try-on images for a dataset split with a trained model (through every stage); writes
    lossless PNGs named by pair_id. The arrays read follow what the model recorded: its size, its label set
    and the batch keys it needs. Runs under torch.inference_mode, the model in eval mode.

    Example: zoo generate --model smis --checkpoint checkpoints/smis/run --data data/ds --split test --out gen/
    """
    import numpy as np
    import torch
    from PIL import Image
    from torch.utils.data import DataLoader

    from models.runs import RunError, dataset_for_model, load_model, resolve_model_dir
    from models.trainer import batch_to_device

    try:
        directory = resolve_model_dir(checkpoint, model)
        net = load_model(directory, expected=model)
        dataset = dataset_for_model(net, data, split, label_set=label_set)
    except RunError as exc:
        raise _fail(str(exc)) from None
    resample_id = None
    if resample_class is not None:
        if not hasattr(net, "resample_class"):
            raise _fail(f"model {net.name!r} cannot re-sample one class's style (only SMIS can)")
        resample_id = _resolve_class(_label_set_name(dataset), resample_class)
    styles_known = getattr(net, "STYLES", None)
    if style is not None and styles_known is None:
        raise _fail(f"--style applies to models with style codes (SMIS); {net.name!r} has none")
    if style is not None and style not in styles_known:
        raise _fail(f"--style {style!r}; valid: {', '.join(styles_known)}")
    if style == "encode" and "encoder" in net.omitted:
        raise _fail(f"{directory} holds no trained encoder (a generator-only import): use --style sample, "
                    "or import again with --encoder latest_net_E.pth")
    if styles_known is not None:
        style = style or net.default_style
        console.print(f"style codes: {style}{f' (seed {seed})' if style == 'sample' else ''}")
    if net.INPUTS.uses_labelmap and getattr(net.config, "instance_edges", False) and "instance" not in dataset.fields:
        console.print("instance edges: the arrays hold no instance maps, so the edge channel comes from the label map's "
                      "class boundaries (boundaries between touching objects of one class are missing)")

    dev = torch.device("cuda" if device is DeviceChoice.cuda or (device is DeviceChoice.auto and torch.cuda.is_available()) else "cpu")
    net.to(dev).eval()
    if compile_model:
        for name, child in net.named_children():
            if name not in net.TRAINING_ONLY and name not in net.omitted:
                child.compile()
    out.mkdir(parents=True, exist_ok=True)
    # The loader gets its own generator: creating its iterator would otherwise draw from the global RNG
    # and shift the noise/styles sampled under --seed.
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    styles = torch.Generator().manual_seed(seed)  # --resample-class draws its fresh styles from this
    written = 0
    kwargs: dict[str, Any] = {} if styles_known is None else {"style": style, "generator": styles}
    with torch.inference_mode():
        for batch in loader:
            batch = batch_to_device(batch, dev)
            if resample_id is None:
                images = net.generate(batch, **kwargs)
            else:
                images = net.resample_class(batch, resample_id, **kwargs)
            pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            for pair_id, image in zip(batch["pair_id"], pixels):
                Image.fromarray(np.ascontiguousarray(image)).save(out / output_name(pair_id), format="PNG")
                written += 1
    console.print(f"wrote {written} images of {directory} to {out}")


# --------------------------------------------------------------------------------------------------
# zoo import / zoo convert


def _parse_parts(values: list[str]) -> dict[str, Path]:
    parts: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise _fail(f"--part takes NAME=PATH (e.g. encoder=latest_net_E.pth), got {value!r}")
        parts[name] = Path(path)
    return parts


@app.command("import")
def import_command(
    name: str = typer.Argument(..., help="the zoo model whose official release this is (see `zoo list`, column import)"),
    path: Path = typer.Argument(..., help="the release's main state_dict file (e.g. latest_net_G.pth), or its folder (every part by its release file name)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder to write config.json + model.safetensors"),
    encoder: Optional[Path] = typer.Option(None, "--encoder", help="SMIS: the release's latest_net_E.pth (without it the model samples style codes)"),
    part: list[str] = typer.Option([], "--part", help="another file of the release, NAME=PATH (--encoder PATH = --part encoder=PATH)"),
    preset: Optional[str] = typer.Option(None, "--preset", help="architecture preset [default: guessed from the file (SPADE: fc.weight's input channels), else paper]"),
    size: Optional[str] = typer.Option(None, "--size", help="HxW the checkpoint was trained at [default: the preset's]"),
    upsamples: Optional[int] = typer.Option(None, "--upsamples", help="2x upsamplings of the generator: 5 = SPADE 'normal', 6 = 'more' [default: the preset's]"),
    label_nc: Optional[int] = typer.Option(None, "--label-nc", help="label ids the generator reads (a SPADE trained on other classes)"),
) -> None:
    """Import an official checkpoint into a generator-only zoo model folder (no random discriminator, nor a
    random SMIS encoder, is saved; `zoo train --init-from DIR` creates them and says so).

    What is inferred, and how to override it: SPADE's preset comes from fc.weight's input channels
    (151 -> paper-ade20k, 256x256, 5 upsamplings; 184 -> paper-coco, 256x256, 5, with instance edges;
    36 -> paper-cityscapes, 256x512, 6, with instance edges). A .pth file does not record the size it was
    trained at: SPADE's opt.txt beside it is read when present and a mismatch is refused; without it the
    preset's size is assumed (import.json says so): pass --size/--upsamples for a checkpoint trained
    otherwise. SMIS: the paper preset (DeepFashion, 8 classes, 256x256, 6 upsamplings).
    The files are read with torch.load(weights_only=True); keys that do not fit are listed and nothing is written.

    Example: zoo import spade checkpoints/ade20k_pretrained/latest_net_G.pth --out models/spade-ade20k
    """
    from models.checkpoint_import import import_checkpoint, importable_models
    from models.registry import get_model_class

    try:
        spec = get_model_class(name).OFFICIAL
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if spec is None:
        raise _fail(f"model {name!r} declares no official checkpoint; importable: {', '.join(importable_models())}")
    if path.is_dir():  # a release folder: each part under the file name the release gives it
        from models.checkpoint_import import release_files

        try:
            files = {**release_files(spec, path), **_parse_parts(part)}
        except ValueError as exc:
            raise _fail(str(exc)) from None
    else:
        files = {spec.required[0]: path, **_parse_parts(part)}
    if encoder is not None:
        if "encoder" not in spec.parts:
            raise _fail(f"{name} releases have no encoder part; parts: {', '.join(spec.parts)}")
        files["encoder"] = encoder
    for part_name, file in files.items():
        if not file.is_file():
            raise _fail(f"{file} ({part_name}) is not a file")
    overrides: dict[str, Any] = {}
    if size is not None:
        overrides["height"], overrides["width"] = _parse_size(size)
    if upsamples is not None:
        overrides["num_upsamples"] = upsamples
    if label_nc is not None:
        overrides["label_nc"] = label_nc
    try:
        result = import_checkpoint(name, files, out, preset=preset, overrides=overrides)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise _fail(str(exc)) from exc
    console.print(f"imported {name} from {path} -> {out} ({result})")


@app.command("convert")
def convert_command(
    directory: Path = typer.Argument(..., help="a model folder of the first format (config.json + weights.pt)"),
    out: Path = typer.Option(..., "--out", "-o", help="new folder for config.json + model.safetensors (the old one is left as it is)"),
) -> None:
    """Rewrite a first-format model folder (weights.pt, training fields in config.json) in the current format.

    The label set is taken from the folder's train_config.json (where the first format recorded it).

    Example: zoo convert checkpoints/smis/20260101T000000Z --out checkpoints/smis/converted
    """
    from models.runs import RunError, load_model

    if out.resolve() == directory.resolve():
        raise _fail("--out must be a new folder: convert never rewrites the folder it reads")
    try:
        net = load_model(directory)
    except RunError as exc:
        raise _fail(str(exc)) from None
    if net.INPUTS.uses_labelmap and net.label_set is None:
        net.label_set = _trained_label_set(directory)
    net.save_pretrained(out)
    console.print(f"converted {directory} -> {out} (label set {net.label_set})")


def _trained_label_set(checkpoint: Path) -> Optional[str]:
    """The label set a first-format run recorded in train_config.json (run_info)."""
    path = checkpoint / "train_config.json"
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except ValueError:
        return None
    return (info.get("train_config", {}).get("run_info") or {}).get("label_set")


if __name__ == "__main__":  # `python -m models.cli`, as the console script `zoo`
    app()
