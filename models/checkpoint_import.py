"""Import the official SPADE and SMIS (GroupDNet) generator checkpoints into zoo models.

The released files are raw state_dicts (``torch.save(net.cpu().state_dict())``, no ``module.`` prefix).
Our modules use the official block names, so the only renaming is spectral norm's storage: the official
``weight_orig`` / ``weight_u`` / ``weight_v`` become PyTorch's parametrization tensors
``parametrizations.weight.original`` / ``.0._u`` / ``.0._v`` (in eval mode both compute sigma = u^T W v
from the stored vectors with no power iteration, so outputs agree). Everything is checked: a key left
over on either side or a shape mismatch refuses the import and lists the keys; nothing is written then.
The discriminator is not part of the releases: an imported model's D is freshly initialised.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch

from models.registry import create_model

_SPADE_PRESET_BY_CHANNELS = {36: "paper-cityscapes", 151: "paper-ade20k", 184: "paper-coco"}
_SN = {"weight_orig": "parametrizations.weight.original", "weight_u": "parametrizations.weight.0._u",
       "weight_v": "parametrizations.weight.0._v"}


def official_to_ours(key: str, prefix: str) -> str:
    """``head_0.conv_0.weight_orig`` -> ``generator.head_0.conv_0.parametrizations.weight.original``."""
    match = re.fullmatch(r"(.*)\.(weight_orig|weight_u|weight_v)", key)
    if match:
        return f"{prefix}.{match.group(1)}.{_SN[match.group(2)]}"
    return f"{prefix}.{key}"


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path} is not a state_dict")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is a wrapper dict ({sorted(state)[:5]}...), not a raw state_dict: pass the network's state_dict file")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _map_into(model: torch.nn.Module, parts: dict[str, dict[str, torch.Tensor]], path: Path) -> None:
    ours = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for prefix, state in parts.items():
        for key, value in state.items():
            mapped[official_to_ours(key, prefix)] = value
    targets = {k for k in ours if k.split(".")[0] in parts}
    unknown = sorted(set(mapped) - targets)
    missing = sorted(targets - set(mapped))
    wrong = sorted(k for k in set(mapped) & targets if tuple(mapped[k].shape) != tuple(ours[k].shape))
    if unknown or missing or wrong:
        lines = [f"{path} does not fit the zoo model; nothing was written."]
        if unknown:
            lines.append(f"keys with no place in the model ({len(unknown)}): {unknown[:10]}")
        if missing:
            lines.append(f"model keys the file lacks ({len(missing)}): {missing[:10]}")
        if wrong:
            lines.append("shape mismatches: " + ", ".join(f"{k} file {tuple(mapped[k].shape)} vs model {tuple(ours[k].shape)}" for k in wrong[:10]))
        raise ValueError("\n".join(lines))
    for k, v in mapped.items():
        ours[k] = v.to(ours[k].dtype)
    model.load_state_dict(ours)


def import_checkpoint(kind: str, generator_path: Path, out_dir: Path, *, encoder_path: Path | None = None, preset: str | None = None) -> str:
    """Map a released generator (and for SMIS optionally its encoder) onto a zoo model; save it to ``out_dir``."""
    if kind not in ("smis", "spade"):
        raise ValueError(f"unknown checkpoint kind {kind!r}; valid: smis, spade")
    generator_path = Path(generator_path)
    g_state = _load_state(generator_path)
    if kind == "spade":
        if "fc.weight" not in g_state:
            raise ValueError(f"{generator_path} has no fc.weight: not a SPADE generator")
        channels = int(g_state["fc.weight"].shape[1])
        preset = preset or _SPADE_PRESET_BY_CHANNELS.get(channels)
        if preset is None:
            raise ValueError(f"SPADE generator with {channels} input channels: supported releases are "
                             f"{_SPADE_PRESET_BY_CHANNELS} (pass preset= for another)")
    preset = preset or "paper"
    torch.manual_seed(0)
    model = create_model(kind, preset)
    parts = {"generator": g_state}
    if encoder_path is not None:
        if kind != "smis":
            raise ValueError("only SMIS has an encoder checkpoint")
        parts["encoder"] = _load_state(Path(encoder_path))
    _map_into(model, parts, generator_path)
    model.eval()
    out = Path(out_dir)
    model.save_pretrained(out)
    record = {
        "kind": kind, "preset": preset, "generator_file": str(generator_path.resolve()),
        "generator_sha256": hashlib.sha256(generator_path.read_bytes()).hexdigest(),
        "encoder_file": str(Path(encoder_path).resolve()) if encoder_path else None,
        "discriminator": "freshly initialised (not part of the official release)",
    }
    (out / "import.json").write_text(json.dumps(record, indent=2) + "\n")
    return f"preset {preset}, {len(g_state)} generator tensors"
