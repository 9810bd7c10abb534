"""The interface every zoo model implements, and its save/load format.

A model is a ``torch.nn.Module`` built from one frozen dataclass of typed constructor arguments
(``Config``), which is what ``config.json`` holds. Generation and training are separate methods:
``generate(batch)`` for inference, ``training_phases()`` for the trainer (one optimiser per phase,
e.g. "generator" then "discriminator"). There are no mode strings and no device calls: the trainer and
the evaluator move modules and batches.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
FORMAT_VERSION = 1


@dataclasses.dataclass
class TrainingPhase:
    """One optimiser's share of a training step.

    ``losses(batch)`` returns named scalar losses including ``"total"``, the one back-propagated into
    ``parameters``; the others are logged.
    """

    name: str
    parameters: list[nn.Parameter]
    lr: float
    betas: tuple[float, float]
    losses: Callable[[dict[str, Tensor]], dict[str, Tensor]]


class TryOnModel(nn.Module):
    """Base class of the zoo's generators (see docs/ARCHITECTURE.md, "Model interface")."""

    name: ClassVar[str]
    required_inputs: ClassVar[tuple[str, ...]]
    Config: ClassVar[type]
    PRESETS: ClassVar[dict[str, dict[str, Any]]]

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"{type(self).__name__} takes its {self.Config.__name__} dataclass, got {type(config).__name__}")
        self.config = config

    # ---- what subclasses implement -------------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the images the model generates."""
        raise NotImplementedError

    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        """[B, 3, H, W] in [-1, 1] from a batch of the batch contract."""
        raise NotImplementedError

    def training_phases(self) -> list[TrainingPhase]:
        raise NotImplementedError

    def generate_unpaired(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """The unpaired protocol: the person with another article (the triplet's negative).

        Models whose output does not depend on the article override this (e.g. SMIS samples new styles).
        """
        swapped = dict(batch)
        if "negative" in batch:
            swapped["article"], swapped["article_mask"] = batch["negative"], batch.get("negative_mask", batch.get("article_mask"))
        return self.generate(swapped)

    # ---- shared ----------------------------------------------------------------------------------
    def num_parameters(self, module: nn.Module | None = None) -> int:
        return sum(p.numel() for p in (module or self).parameters())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_inputs(self, batch: dict[str, Any]) -> None:
        missing = [k for k in self.required_inputs if k not in batch]
        if missing:
            raise KeyError(f"{self.name} needs batch keys {list(self.required_inputs)}; missing {missing}")

    def config_dict(self) -> dict[str, Any]:
        return {"model": self.name, "config": dataclasses.asdict(self.config), "format_version": FORMAT_VERSION}

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``weights.pt`` (a plain CPU state_dict) into ``directory``."""
        from curate.manifest import atomic_write_bytes

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        tmp = out / f".{WEIGHTS_FILE}.tmp"
        torch.save(state, tmp)
        tmp.replace(out / WEIGHTS_FILE)
        atomic_write_bytes(out / CONFIG_FILE, (json.dumps(self.config_dict(), indent=2, sort_keys=True) + "\n").encode())
        return out

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> "TryOnModel":
        directory = Path(directory)
        doc = read_config(directory)
        if doc["model"] != cls.name:
            raise ValueError(f"{directory} holds a {doc['model']!r} model, not {cls.name!r}")
        model = cls(cls.Config(**doc["config"]))
        state = torch.load(directory / WEIGHTS_FILE, map_location=map_location, weights_only=True)
        model.load_state_dict(state)
        return model


def read_config(directory: Path) -> dict[str, Any]:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: a model directory holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or "model" not in doc or "config" not in doc:
        raise ValueError(f"{path} is not a tryon-bench model config (needs 'model' and 'config')")
    return doc
