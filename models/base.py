"""The interface every zoo model implements, what it declares about itself, and its save/load format.

A zoo model is one file that declares, as class attributes (docs/ARCHITECTURE.md, "How to add a model"):

- ``Config``: a frozen dataclass of **architecture only** (channels, sizes, label count) — what
  ``config.json`` holds, so that the weights can be rebuilt anywhere. Every config has ``height`` and
  ``width``. ``PRESETS`` name configs (``tiny`` and ``paper`` at least).
- ``INPUTS``: its data needs (:class:`ModelInputs`): the batch keys it reads to generate and to train, and
  the config field holding the label-map class count (``None``: the model takes no label map). The label
  *set* a trained model reads is recorded with its weights (``config.json``'s ``data``), so generation,
  evaluation and reports read it instead of guessing.
- ``Recipe``: a frozen dataclass of everything about training that is not architecture (learning rates,
  betas, loss weights, the perceptual backbone, machine-local file paths), written to
  ``train_config.json``; ``RECIPES`` name recipes (``default`` at least).
- ``training_stages(recipe)``: ordered :class:`Stage` objects, each a list of :class:`TrainingPhase`
  (one optimiser each). Single-stage models implement ``training_phases(recipe)`` instead.
- ``OFFICIAL``: optionally, how a released checkpoint maps onto the model
  (:class:`models.checkpoint_import.OfficialCheckpoint`), so that ``zoo import NAME`` works.

Generation and training are separate methods: ``generate(batch)`` chains every stage for inference.
There are no mode strings and no device calls: the trainer and the evaluator move modules and batches.

Weights are saved as ``model.safetensors`` beside ``config.json`` through huggingface_hub's
``PyTorchModelHubMixin`` (``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``); a local
directory always works offline. ``from_pretrained`` returns the model in eval mode, ready for inference.
Folders of the first format (``weights.pt`` + a config mixing architecture and training fields) still
load: the training fields are dropped (they belong to the recipe now) and ``zoo convert`` rewrites them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
LEGACY_WEIGHTS_FILE = "weights.pt"  # format 1
FORMAT_VERSION = 2


# --------------------------------------------------------------------------------------------------
# What a model declares


@dataclasses.dataclass(frozen=True)
class ModelInputs:
    """A model's data needs, declared by its class.

    generate: batch keys ``generate`` reads. train: batch keys its training phases read (a superset).
    label_channels: the config field holding the label-map class count, or None when the model takes no
    label map (``zoo train`` sets the field to the dataset's class count).
    augment: what the loader does to training samples (``"hflip"``: person and articles mirrored together).
    label_set: the label set the label-map ids must belong to, for a model whose architecture gives ids a
    meaning (ACGPN's 14-label parsing); ``zoo train`` then reads the arrays in that set. None: any set.
    """

    generate: tuple[str, ...]
    train: tuple[str, ...]
    label_channels: str | None = None
    augment: tuple[str, ...] = ()
    label_set: str | None = None

    def __post_init__(self) -> None:
        from curate.loader import TryOnDataset

        unknown = sorted((set(self.generate) | set(self.train)) - set(TryOnDataset.ALL_FIELDS))
        if unknown:
            raise ValueError(f"unknown batch keys {unknown}; the batch contract has {', '.join(TryOnDataset.ALL_FIELDS)}")
        missing = sorted(set(self.generate) - set(self.train))
        if missing:
            raise ValueError(f"training must read every key generation reads; add {missing} to train")
        if self.label_channels is not None and "labelmap" not in self.train:
            raise ValueError("label_channels is set but the model reads no 'labelmap'")
        if self.label_set is not None:
            from curate.labelsets import get_label_set

            if self.label_channels is None:
                raise ValueError("label_set is set but label_channels is not: the model reads no label map")
            get_label_set(self.label_set)  # an unknown name lists the valid ones
        bad = sorted(set(self.augment) - set(TryOnDataset.AUGMENTATIONS))
        if bad:
            raise ValueError(f"unknown augmentations {bad}; valid: {', '.join(TryOnDataset.AUGMENTATIONS)}")

    @property
    def uses_labelmap(self) -> bool:
        return self.label_channels is not None


@dataclasses.dataclass(frozen=True)
class DataNeeds:
    """What one built (or trained) model reads: recorded in ``config.json`` under ``data``."""

    generate: tuple[str, ...]
    train: tuple[str, ...]
    label_set: str | None  # the label set the labelmap ids belong to (None: no label map, or not known)
    num_classes: int | None  # classes the label-map input has (None: no label map)
    size: tuple[int, int]  # (H, W)

    def to_json(self) -> dict[str, Any]:
        return {"generate": list(self.generate), "train": list(self.train), "label_set": self.label_set,
                "num_classes": self.num_classes, "size": list(self.size)}


@dataclasses.dataclass(frozen=True)
class TrainingRecipe:
    """Base of every model's recipe. ``MACHINE_LOCAL`` fields (file paths) may differ on resume."""

    MACHINE_LOCAL: ClassVar[frozenset[str]] = frozenset()


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


@dataclasses.dataclass
class Stage:
    """An ordered unit of training (CP-VTON: GMM, then TOM): its phases run in turn at every step."""

    name: str
    phases: list[TrainingPhase]


# --------------------------------------------------------------------------------------------------
# The model


class TryOnModel(nn.Module, PyTorchModelHubMixin):
    """Base class of the zoo's generators (see the module docstring and docs/ARCHITECTURE.md)."""

    name: ClassVar[str]
    Config: ClassVar[type]
    PRESETS: ClassVar[dict[str, dict[str, Any]]]
    INPUTS: ClassVar[ModelInputs]
    Recipe: ClassVar[type] = TrainingRecipe
    RECIPES: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    PRESET_RECIPES: ClassVar[dict[str, str]] = {}  # preset -> the recipe it trains with by default
    OFFICIAL: ClassVar[Any] = None  # models.checkpoint_import.OfficialCheckpoint
    # sub-modules used only in training (not counted as the generator, not needed to generate)
    TRAINING_ONLY: ClassVar[tuple[str, ...]] = ("discriminator",)

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"{type(self).__name__} takes its {self.Config.__name__} dataclass, got {type(config).__name__}")
        self.config = config
        self.label_set: str | None = None  # set by `zoo train` from the dataset, or by an import
        # top-level sub-modules whose weights the folder does not hold (a generator-only import: no
        # discriminator, SMIS without its encoder): freshly initialised when loaded, never saved
        self.omitted: tuple[str, ...] = ()

    # ---- what subclasses implement -------------------------------------------------------------
    def generate(self, batch: dict[str, Tensor]) -> Tensor:
        """[B, 3, H, W] in [-1, 1] from a batch of the batch contract, through every stage."""
        raise NotImplementedError

    def training_phases(self, recipe: Any) -> list[TrainingPhase]:
        raise NotImplementedError(f"{type(self).__name__} implements neither training_stages() nor training_phases()")

    def training_stages(self, recipe: Any) -> list[Stage]:
        """Ordered stages; the default is one stage, ``main``, of ``training_phases(recipe)``."""
        return [Stage("main", self.training_phases(recipe))]

    def unpaired_protocol(self) -> str | None:
        """What the unpaired protocol means for this model, or None when it has none: a model whose
        generation reads no article cannot show another article (the every-model test checks that a model
        claiming the default meaning really changes its output with the article)."""
        return "the person with another article (the triplet's negative)" if "article" in self.INPUTS.generate else None

    def generate_unpaired(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """The unpaired protocol: the person with another article (the triplet's negative).

        Models whose output does not depend on the article override this (e.g. SMIS samples new styles).
        """
        swapped = dict(batch)
        if "negative" in batch:
            swapped["article"], swapped["article_mask"] = batch["negative"], batch.get("negative_mask", batch.get("article_mask"))
        return self.generate(swapped)

    # ---- declared facts ------------------------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the images the model generates."""
        return (int(self.config.height), int(self.config.width))

    @property
    def num_classes(self) -> int | None:
        field = self.INPUTS.label_channels
        return None if field is None else int(getattr(self.config, field))

    def data_needs(self) -> DataNeeds:
        return DataNeeds(self.INPUTS.generate, self.INPUTS.train, self.label_set if self.INPUTS.uses_labelmap else None,
                         self.num_classes, self.input_size)

    # ---- shared ----------------------------------------------------------------------------------
    def num_parameters(self, module: nn.Module | None = None) -> int:
        return sum(p.numel() for p in (module or self).parameters())

    def generation_parameters(self) -> int:
        """Parameters of everything but the training-only sub-modules (discriminators)."""
        return sum(child_params for name, child_params in
                   ((n, self.num_parameters(c)) for n, c in self.named_children()) if name not in self.TRAINING_ONLY)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_inputs(self, batch: dict[str, Any], keys: tuple[str, ...] | None = None) -> None:
        keys = self.INPUTS.generate if keys is None else keys
        missing = [k for k in keys if k not in batch]
        if missing:
            raise KeyError(f"{self.name} needs batch keys {list(keys)}; missing {missing}")

    def config_dict(self) -> dict[str, Any]:
        """The ``config.json`` document: the model name, its architecture config and its data needs."""
        doc = {"model": self.name, "config": dataclasses.asdict(self.config), "data": self.data_needs().to_json(),
               "format_version": FORMAT_VERSION}
        if self.omitted:
            doc["omitted"] = sorted(self.omitted)
        return doc

    def saved_state(self) -> dict[str, Tensor]:
        """The state dict a folder holds: everything but the omitted sub-modules."""
        return {k: v for k, v in self.state_dict().items() if k.split(".")[0] not in self.omitted}

    # ---- save / load (huggingface_hub's mixin; our document and strict loading) --------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        """``model.safetensors`` (plain CPU tensors) and ``config.json``, each written atomically."""
        from safetensors.torch import save_model

        from curate.manifest import atomic_write_bytes

        out = Path(save_directory)
        tmp = out / f".{WEIGHTS_FILE}.tmp"
        if self.omitted:  # plain tensors only (the SPADE family shares none between modules)
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in self.saved_state().items()}, str(tmp))
        else:
            save_model(self, str(tmp))  # handles tensors shared between modules, refuses non-contiguous ones
        os.replace(tmp, out / WEIGHTS_FILE)
        atomic_write_bytes(out / CONFIG_FILE, (json.dumps(self.config_dict(), indent=2, sort_keys=True) + "\n").encode())
        legacy = out / LEGACY_WEIGHTS_FILE
        if legacy.is_file():  # a format-1 folder re-saved in place: keep only the current weights
            legacy.unlink()

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> Path:  # type: ignore[override]
        """Write ``config.json`` + ``model.safetensors`` (+ the hub's model card README.md) into the folder."""
        super().save_pretrained(save_directory, config=self.config_dict(), **kwargs)
        return Path(save_directory)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, map_location: str | torch.device = "cpu", strict: bool = True,
                         **hub_kwargs: Any) -> "TryOnModel":
        directory = Path(model_id)
        if not directory.is_dir():  # a Hub repository id: fetch the two files (needs the network)
            from huggingface_hub import hf_hub_download

            keep = ("revision", "cache_dir", "force_download", "token", "local_files_only")
            opts = {k: v for k, v in hub_kwargs.items() if k in keep}
            config_path = Path(hf_hub_download(model_id, CONFIG_FILE, **opts))
            weights_path = Path(hf_hub_download(model_id, WEIGHTS_FILE, **opts))
            doc = json.loads(config_path.read_text())
        else:
            doc = read_config(directory)
            weights_path = directory / WEIGHTS_FILE
        model = cls.from_config_document(doc)
        state = load_weights_file(weights_path, directory / LEGACY_WEIGHTS_FILE, map_location)
        load_state_strict(model, state, weights_path)
        model.to(map_location)
        return model.eval()

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu", **kwargs: Any) -> "TryOnModel":  # type: ignore[override]
        doc = read_config(Path(directory)) if Path(directory).is_dir() else None
        if doc is not None and doc["model"] != cls.name:
            raise ValueError(f"{directory} holds a {doc['model']!r} model, not {cls.name!r}")
        return super().from_pretrained(str(directory), map_location=map_location, **kwargs)  # type: ignore[return-value]

    @classmethod
    def from_config_document(cls, doc: dict[str, Any]) -> "TryOnModel":
        """Build (random weights) from a ``config.json`` document of either format."""
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        stored = dict(doc["config"])
        dropped = sorted(set(stored) - fields)
        if dropped and int(doc.get("format_version", 1)) >= FORMAT_VERSION:
            raise ValueError(f"config.json of {cls.name!r} has fields {dropped} that are not architecture; valid: {sorted(fields)}")
        model = cls(cls.Config(**{k: v for k, v in stored.items() if k in fields}))
        model.label_set = (doc.get("data") or {}).get("label_set")
        model.omitted = tuple(doc.get("omitted", ()))
        return model


def read_config(directory: Path) -> dict[str, Any]:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: a model directory holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or "model" not in doc or not isinstance(doc.get("config"), dict):
        raise ValueError(f"{path} is not a tryon-bench model config (needs 'model' and 'config')")
    return doc


def safe_torch_load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with a one-line ``ValueError`` naming what the file is when it
    cannot be read: a pickle that needs code (never run, whatever torch's message suggests), a text or
    other non-torch file, a truncated archive."""
    import pickle

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text:
            needs = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln or "Unsupported" in ln), "")
            raise ValueError(
                f"{path} is not a safe checkpoint: loading it would run pickled code"
                + (f" ({needs.rstrip('.')})" if needs else "") + "; it is refused (only plain tensors are read)"
            ) from None
        raise ValueError(f"{path} is not a PyTorch checkpoint (unpickling failed: {text.splitlines()[0] if text else 'no detail'})") from None
    except (RuntimeError, EOFError, OSError, KeyError, AttributeError, ImportError, IndexError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path} is not a PyTorch checkpoint: neither a torch zip archive nor a plain tensor pickle "
                         f"({type(exc).__name__}: {first})") from None


def load_weights_file(weights: Path, legacy: Path, map_location: str | torch.device) -> dict[str, Tensor]:
    """The state dict of ``model.safetensors``, or of a format-1 ``weights.pt`` when that is all there is."""
    if weights.is_file():
        from safetensors.torch import load_file

        try:
            return load_file(str(weights), device=str(map_location))
        except Exception as exc:  # a truncated or foreign file: say which one
            raise RuntimeError(f"cannot read {weights}: {exc}") from None
    if legacy.is_file():
        # format 1 (before safetensors): a plain state_dict, read without executing any pickled code
        return safe_torch_load(legacy, map_location)
    raise FileNotFoundError(f"{weights.parent} holds no {WEIGHTS_FILE} (nor a format-1 {LEGACY_WEIGHTS_FILE})")


def state_mismatch(expected: dict[str, Tensor], given: dict[str, Tensor], headline: str) -> str | None:
    """None when ``given`` has exactly ``expected``'s keys and shapes; else a message listing the keys the
    file lacks, those with no place in the model and the shape mismatches (10 of each at most)."""
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    wrong = sorted(k for k in set(expected) & set(given) if tuple(expected[k].shape) != tuple(given[k].shape))
    if not (missing or extra or wrong):
        return None
    lines = [headline]
    if extra:
        lines.append(f"keys with no place in the model ({len(extra)}): {extra[:10]}")
    if missing:
        lines.append(f"model keys the file lacks ({len(missing)}): {missing[:10]}")
    if wrong:
        lines.append("shape mismatches: " + ", ".join(f"{k} file {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}" for k in wrong[:10]))
    return "\n".join(lines)


def load_state_strict(model: nn.Module, state: dict[str, Tensor], source: Path) -> None:
    """Load every key or refuse, listing what is missing, extra or mis-shaped (never a silent partial load)."""
    name = getattr(model, "name", type(model).__name__)
    expected = model.saved_state() if isinstance(model, TryOnModel) else model.state_dict()
    problem = state_mismatch(expected, state, f"{source} does not fit the {name} model built from its config.json")
    if problem:
        raise ValueError(problem)
    model.load_state_dict(state, strict=len(expected) == len(model.state_dict()))
