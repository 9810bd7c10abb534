"""The one place that resolves runs and data for `zoo train`, `zoo generate` and `evaluate`.

- a run folder: ``checkpoints/<model>/<UTC timestamp>`` by default; "newest" is always the run whose
  exported model (``model.safetensors``, else a format-1 ``weights.pt``, else its newest training
  checkpoint) was written last, whatever the folders are called;
- a model folder: a folder holding ``config.json``; given a folder above model folders, the newest one;
- the arrays a model reads: ``DS/arrays/<H>x<W>[-<label set>]``, chosen by the model's declared needs
  (its size, whether it reads a label map, the label set recorded with its weights).

Every failure is a :class:`RunError` whose message says what to pass or which command to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.base import CONFIG_FILE, LEGACY_WEIGHTS_FILE, WEIGHTS_FILE

if TYPE_CHECKING:
    from curate.loader import TryOnDataset
    from models.base import TryOnModel

DEFAULT_ROOT = Path("checkpoints")


class RunError(ValueError):
    """A run, model folder or arrays folder that cannot be resolved; the message is for the user."""


def _written_at(run: Path) -> float:
    """When a run last produced something usable: its exported weights, else its newest checkpoint."""
    for name in (WEIGHTS_FILE, LEGACY_WEIGHTS_FILE):
        if (run / name).is_file():
            return (run / name).stat().st_mtime
    steps = list((run / "checkpoints").rglob("step_*.pt"))
    return max((p.stat().st_mtime for p in steps), default=run.stat().st_mtime)


def _newest(candidates: list[Path]) -> Path:
    return max(candidates, key=lambda p: (_written_at(p), str(p)))


def newest_run(model: str, root: Path = DEFAULT_ROOT) -> Path:
    """The newest run folder of ``model`` under ``root/model`` holding training checkpoints (for --resume)."""
    looked = Path(root) / model
    runs = [p for p in looked.iterdir() if (p / "checkpoints").is_dir()] if looked.is_dir() else []
    if not runs:
        raise RunError(f"no run of {model!r} under {looked}/ to resume: pass --out RUN")
    return _newest(runs)


def model_dirs(directory: Path) -> list[Path]:
    return sorted(p.parent for p in Path(directory).rglob(CONFIG_FILE)
                  if (p.parent / WEIGHTS_FILE).is_file() or (p.parent / LEGACY_WEIGHTS_FILE).is_file())


def resolve_model_dir(checkpoint: Path | None, model: str | None, root: Path = DEFAULT_ROOT) -> Path:
    """A model folder: ``checkpoint`` itself when it holds config.json, else the newest model folder below
    it; without ``checkpoint`` the newest one under ``root/<model>``."""
    if checkpoint is None:
        if model is None:
            raise RunError("pass --checkpoint DIR (or --model NAME to use its newest run)")
        where = Path(root) / model
        found = model_dirs(where) if where.is_dir() else []
        if not found:
            raise RunError(f"no trained {model!r} under {where.resolve()} (no {CONFIG_FILE} + {WEIGHTS_FILE}); pass --checkpoint DIR")
        return _newest(found)
    checkpoint = Path(checkpoint)
    if (checkpoint / CONFIG_FILE).is_file():
        return checkpoint
    if not checkpoint.is_dir():
        raise RunError(f"{checkpoint} does not exist: pass a run folder written by `zoo train` or `zoo import`")
    found = model_dirs(checkpoint)
    if not found:
        raise RunError(f"{checkpoint} holds no model ({CONFIG_FILE} + {WEIGHTS_FILE}): pass a run folder written by `zoo train` or `zoo import`")
    return _newest(found)


def load_model(directory: Path, expected: str | None = None, map_location: str = "cpu") -> "TryOnModel":
    """A model folder loaded in eval mode, with the error a user can act on."""
    from models.registry import load_pretrained

    try:
        model = load_pretrained(directory, map_location=map_location)
    except (FileNotFoundError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise RunError(f"cannot load {directory}: {exc}") from None
    if expected is not None and model.name != expected:
        raise RunError(f"{directory} holds a {model.name!r} model, not {expected!r}")
    return model


# --------------------------------------------------------------------------------------------------
# data


def _arrays_at(data: Path, stem: str) -> dict[str, str | None]:
    """Arrays folders at one size: folder name -> the label set its classes.json records."""
    import json

    from curate.labelmaps import ARRAYS_DIR

    root = Path(data) / ARRAYS_DIR
    found: dict[str, str | None] = {}
    if root.is_dir():
        for p in sorted(root.glob(f"{stem}*")):
            if p.is_dir() and (p.name == stem or p.name.startswith(stem + "-")):
                try:
                    found[p.name] = json.loads((p / "classes.json").read_text()).get("label_set")
                except (OSError, ValueError):
                    found[p.name] = None
    return found


def arrays_label_set(data: Path, size: tuple[int, int], label_set: str | None, uses_labelmap: bool = True) -> str | None:
    """Which arrays folder at ``size`` to read, as the loader's ``label_set`` argument (the folder's suffix).

    ``label_set`` names the classes wanted (matched against each folder's classes.json, so arrays written
    without --label-set in their source set count too); without it, the only folder there. A model that
    reads no label map takes any (the images are the same in every label set's arrays).
    """
    from curate.labelmaps import ARRAYS_DIR

    h, w = size
    stem = f"{h}x{w}"
    found = _arrays_at(data, stem)
    if label_set:
        matching = [name for name, recorded in found.items() if recorded == label_set]
        if not matching:
            hint = f" (there are {', '.join(f'{n} ({r})' for n, r in found.items())})" if found else ""
            raise RunError(f"no {stem} arrays in label set {label_set} in {data}{hint}: "
                           f"run `curate labelmaps {data} --size {stem} --label-set {label_set}`")
        name = f"{stem}-{label_set}" if f"{stem}-{label_set}" in matching else matching[0]
        return name[len(stem) + 1 :] or None
    if not found:
        root = Path(data) / ARRAYS_DIR
        others = sorted(p.name for p in root.glob("*x*") if p.is_dir()) if root.is_dir() else []
        hint = f" (there are arrays at {', '.join(others)}; pass --size to use one)" if others else ""
        raise RunError(f"no arrays at {stem} in {data}{hint}: run `curate labelmaps {data} --size {stem}` first")
    if len(found) > 1 and uses_labelmap:
        raise RunError(f"{Path(data) / ARRAYS_DIR} holds arrays at {stem} in several label sets {sorted(found)}: pass --label-set")
    return next(iter(found))[len(stem) + 1 :] or None


def open_dataset(data: Path, split: str, size: tuple[int, int], label_set: str | None, *, uses_labelmap: bool = True,
                 fields: tuple[str, ...] | None = None, augment: tuple[str, ...] = (), seed: int = 0) -> "TryOnDataset":
    """`curate.loader.TryOnDataset`, with errors that say which curate command makes the missing arrays."""
    from curate.loader import TryOnDataset

    if not Path(data).is_dir():
        raise RunError(f"dataset folder {data} does not exist")
    label_set = arrays_label_set(data, size, label_set, uses_labelmap)
    try:
        return TryOnDataset(data, split, size=size, label_set=label_set, fields=fields, augment=augment, seed=seed)
    except FileNotFoundError as exc:  # the loader's message names the curate command to run
        raise RunError(str(exc)) from None
    except (ValueError, KeyError) as exc:
        raise RunError(f"cannot read split {split!r} of {data} at {size[0]}x{size[1]}: {exc}") from None


def model_label_set(model: "TryOnModel", override: str | None = None) -> str | None:
    """The label set a trained model's label-map input belongs to: recorded with its weights; ``override``
    (--label-set) only where the record has none (imports of releases, format-1 folders)."""
    if not model.INPUTS.uses_labelmap:
        return None
    recorded = model.label_set
    if override and recorded and override != recorded:
        raise RunError(f"the model was trained on label set {recorded!r}; --label-set {override} would feed it other classes")
    chosen = recorded or override
    if chosen is None:
        raise RunError(
            f"the {model.name!r} model reads {model.num_classes}-class label maps but its config.json records no label set "
            f"(an imported release, or a folder of the first format: `zoo convert DIR` records it); pass --label-set NAME"
        )
    return chosen


def dataset_for_model(model: "TryOnModel", data: Path, split: str, *, label_set: str | None = None,
                      extra_fields: tuple[str, ...] = (), purpose: str = "generate") -> "TryOnDataset":
    """The split a trained model generates (or trains) on, read as the model declares: its size, its
    label set, only the batch keys it needs (+ ``extra_fields``); class counts checked."""
    from curate.loader import TryOnDataset

    needs = model.data_needs()
    keys = needs.generate if purpose == "generate" else needs.train
    wanted = set(keys) | set(extra_fields)
    fields = tuple(f for f in TryOnDataset.ALL_FIELDS if f in wanted)
    chosen = model_label_set(model, label_set)
    dataset = open_dataset(data, split, needs.size, chosen, uses_labelmap=model.INPUTS.uses_labelmap, fields=fields)
    if needs.num_classes is not None and needs.num_classes != dataset.num_classes:
        arrays_set = getattr(getattr(dataset, "label_set", None), "name", getattr(dataset, "label_set", None))
        raise RunError(f"the model reads {needs.num_classes} label ids of label set {chosen}; the {split} arrays have "
                       f"{dataset.num_classes} (label set {arrays_set}): run `curate labelmaps {data} --size "
                       f"{needs.size[0]}x{needs.size[1]} --label-set {chosen}` or pass another --data")
    return dataset
