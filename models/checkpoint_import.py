"""Import official (released) checkpoints into zoo models: the generic half.

Each model file declares how its releases map (``OFFICIAL = OfficialCheckpoint(...)``, the pattern of
timm's ``checkpoint_filter_fn`` living beside the model); this module reads the files, applies the
model's filter, checks every key and writes the zoo folder. Nothing here names a model.

The released files are raw state_dicts (``torch.save(net.cpu().state_dict())``) read with
``weights_only=True``; a ``module.`` prefix (DataParallel) is removed. Everything is checked: a key left
over on either side or a shape mismatch refuses the import and lists the keys; nothing is written then.
Sub-modules a release does not contain (discriminators, SMIS's encoder when only latest_net_G.pth is
given) are not written: the folder is generator-only (``config.json`` lists them under ``omitted``), loads
with them freshly initialised, and ``zoo train --init-from`` says that it creates them.

A release file does not record the size it was trained at (its convolutions fit any size): the model's
``check_geometry`` compares what the files do say (input channels, blocks, SPADE's ``opt.txt`` when it lies
beside the file) with the geometry stated (preset, ``--size``, ``--upsamples``) and refuses a mismatch,
saying what to pass; ``import.json`` records which geometry was used and where it came from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable

import torch

StateDict = dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class OfficialCheckpoint:
    """How a model's released checkpoint files map onto it.

    parts: release part name -> (the module prefix it fills in our model, the file name the release uses).
    required: parts that must be given (the first is ``zoo import``'s positional PATH).
    filter_fn(state, prefix) -> our keys: renames one part's official keys (e.g. spectral-norm storage).
    preset_for(states) -> the preset to build, guessed from the files (None: ``paper``); a preset the
    user passes wins. ``describe`` is shown in ``zoo import --help``.
    """

    parts: dict[str, tuple[str, str]]
    required: tuple[str, ...]
    filter_fn: Callable[[StateDict, str], StateDict]
    preset_for: Callable[[dict[str, StateDict]], str] | None = None
    label_set: str | None = None
    describe: str = ""
    # (config, states, files) -> (problem or None, where the geometry came from)
    check_geometry: Callable[[Any, dict[str, StateDict], dict[str, Path]], tuple[str | None, str]] | None = None
    label_set_for: Callable[[Any], str | None] | None = None  # the label set a built config reads (by preset)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.required) - set(self.parts))
        if unknown or not self.required:
            raise ValueError(f"required parts {list(self.required)} must be non-empty and among {sorted(self.parts)}")


_SN = {"weight_orig": "parametrizations.weight.original", "weight_u": "parametrizations.weight.0._u",
       "weight_v": "parametrizations.weight.0._v"}


def rename_spectral_norm(state: StateDict, prefix: str) -> StateDict:
    """The official (old-API) spectral-norm storage onto PyTorch's parametrizations, under ``prefix``.

    ``head_0.conv_0.weight_orig`` -> ``generator.head_0.conv_0.parametrizations.weight.original``; in eval
    mode both compute sigma = u^T W v from the stored vectors with no power iteration, so outputs agree.
    """
    return {official_to_ours(key, prefix): value for key, value in state.items()}


def official_to_ours(key: str, prefix: str) -> str:
    match = re.fullmatch(r"(.*)\.(weight_orig|weight_u|weight_v)", key)
    if match:
        return f"{prefix}.{match.group(1)}.{_SN[match.group(2)]}"
    return f"{prefix}.{key}"


def load_state_file(path: Path) -> StateDict:
    """A released raw state_dict (no pickled code runs: ``weights_only=True``), CPU tensors."""
    from models.base import safe_torch_load

    state = safe_torch_load(path)  # one-line ValueError for a code pickle, a text file, a truncated archive
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path} is not a state_dict")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is a wrapper dict ({sorted(state)[:5]}...), not a raw state_dict: pass the network's state_dict file")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def release_files(spec: OfficialCheckpoint, directory: Path) -> dict[str, Path]:
    """The parts found in a release folder under their release file names; a required one missing is an error."""
    found = {part: Path(directory) / file for part, (_, file) in spec.parts.items() if (Path(directory) / file).is_file()}
    lacking = [f"{spec.parts[p][1]} ({p})" for p in spec.required if p not in found]
    if lacking:
        raise ValueError(f"{directory} lacks {', '.join(lacking)}: pass the release folder that holds them")
    return found


def _map_into(model: torch.nn.Module, mapped: StateDict, prefixes: set[str], path: Path) -> None:
    from models.base import state_mismatch

    ours = model.state_dict()
    problem = state_mismatch({k: v for k, v in ours.items() if k.split(".")[0] in prefixes}, mapped,
                             f"{path} does not fit the zoo model; nothing was written.")
    if problem:
        raise ValueError(problem)
    for k, v in mapped.items():
        ours[k] = v.to(ours[k].dtype)
    model.load_state_dict(ours)


def importable_models() -> list[str]:
    from models.registry import get_model_class, list_models

    return [name for name in list_models() if get_model_class(name).OFFICIAL is not None]


def import_checkpoint(name: str, files: dict[str, Path], out_dir: Path, *, preset: str | None = None,
                      overrides: dict[str, Any] | None = None) -> str:
    """Map released files (part name -> path) onto the zoo model ``name``; save it to ``out_dir``.

    ``preset`` None: guessed from the files (``OFFICIAL.preset_for``); ``overrides``: config fields the
    user states (height, width, num_upsamples, label_nc). Nothing is written unless every key fits and the
    geometry check passes.
    """
    from models.registry import create_model, get_model_class

    cls = get_model_class(name)
    spec: OfficialCheckpoint | None = cls.OFFICIAL
    if spec is None:
        raise ValueError(f"model {name!r} declares no official checkpoint; importable: {', '.join(importable_models())}")
    unknown = sorted(set(files) - set(spec.parts))
    if unknown:
        raise ValueError(f"{name} releases have no part {unknown}; parts: {', '.join(spec.parts)}")
    lacking = [p for p in spec.required if p not in files]
    if lacking:
        raise ValueError(f"{name} needs the release's {lacking} file(s)")
    states = {part: load_state_file(Path(path)) for part, path in files.items()}
    guessed = preset is None
    if preset is None:
        preset = spec.preset_for(states) if spec.preset_for is not None else "paper"
    if preset not in cls.PRESETS:
        raise ValueError(f"model {name!r} has no preset {preset!r}; valid presets: {', '.join(cls.PRESETS)}")
    overrides = dict(overrides or {})
    torch.manual_seed(0)
    try:
        model = create_model(name, preset, **overrides)
    except (TypeError, ValueError) as exc:  # e.g. a size the upsampling schedule cannot divide
        raise ValueError(f"{name} preset {preset} with {overrides}: {exc}") from None
    where = "preset"
    if spec.check_geometry is not None:
        problem, where = spec.check_geometry(model.config, states, {p: Path(f) for p, f in files.items()})
        if problem:
            raise ValueError(f"{problem}; nothing was written.")
    mapped: StateDict = {}
    for part, state in states.items():
        mapped.update(spec.filter_fn(state, spec.parts[part][0]))
    given = {spec.parts[p][0] for p in states}
    try:
        _map_into(model, mapped, given, Path(files[spec.required[0]]))
    except ValueError as exc:
        how = f"preset {preset} ({'guessed from the file' if guessed else 'as passed'})"
        raise ValueError(f"{exc}\n(built as {how}{f' with {overrides}' if overrides else ''}; see `zoo import --help`)") from None
    model.label_set = spec.label_set_for(model.config) if spec.label_set_for is not None else spec.label_set
    model.omitted = tuple(sorted({n for n, _ in model.named_children()} - given))  # generator-only: not saved
    model.eval()
    out = Path(out_dir)
    model.save_pretrained(out)
    config = model.config
    record = {
        "model": name, "preset": preset, "preset_guessed": guessed, "overrides": overrides,
        "geometry": {"height": config.height, "width": config.width, "num_upsamples": getattr(config, "num_upsamples", None),
                     "from": where},
        "files": {part: {"path": str(Path(p).resolve()), "sha256": hashlib.sha256(Path(p).read_bytes()).hexdigest()}
                  for part, p in files.items()},
        "not_in_release": list(model.omitted),
        "note": "sub-modules not in the release are not saved; loading builds them freshly initialised",
    }
    from curate.manifest import atomic_write_bytes

    atomic_write_bytes(out / "import.json", (json.dumps(record, indent=2) + "\n").encode())
    tensors = sum(len(s) for s in states.values())
    omitted = f"; not in the release, not saved: {', '.join(model.omitted)}" if model.omitted else ""
    return (f"preset {preset}{' (guessed from the file)' if guessed else ''}, {config.height}x{config.width} "
            f"(geometry from {where}), label set {model.label_set}, {tensors} tensors from {', '.join(states)}{omitted}")
