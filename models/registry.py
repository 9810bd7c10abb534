"""The model registry: one decorator per model file; model files are found, not listed.

Every module in the ``models.zoo`` package is imported on first use, so adding a model is its own file
there (decorated with ``@register_model``) plus its test. Models living outside this repository register
the same way from their own package, found through the ``tryon_bench.models`` entry-point group, or from
a module named in ``$TRYON_BENCH_MODELS`` (comma-separated import paths).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from models.base import ModelInputs, TrainingRecipe, TryOnModel, read_config

ENTRY_POINT_GROUP = "tryon_bench.models"
ENV_MODULES = "TRYON_BENCH_MODELS"

_REGISTRY: dict[str, type[TryOnModel]] = {}
_loaded = False
M = TypeVar("M", bound=type[TryOnModel])


def register_model(cls: M) -> M:
    """Check what the class declares (presets, inputs, recipe, size fields) and register it by name."""
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"model name {name!r} registered twice ({_REGISTRY[name].__module__}, {cls.__module__})")
    for required in ("tiny", "paper"):
        if required not in cls.PRESETS:
            raise ValueError(f"{name}: every model needs a {required!r} preset (has {sorted(cls.PRESETS)})")
    if not isinstance(getattr(cls, "INPUTS", None), ModelInputs):
        raise ValueError(f"{name}: declare INPUTS = ModelInputs(generate=..., train=..., label_channels=...)")
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    if not {"height", "width"} <= fields:
        raise ValueError(f"{name}: its Config needs 'height' and 'width' fields (has {sorted(fields)})")
    if cls.INPUTS.label_channels is not None and cls.INPUTS.label_channels not in fields:
        raise ValueError(f"{name}: INPUTS.label_channels names {cls.INPUTS.label_channels!r}, not a Config field")
    if not (dataclasses.is_dataclass(cls.Recipe) and issubclass(cls.Recipe, TrainingRecipe)):
        raise ValueError(f"{name}: Recipe must be a dataclass subclassing models.base.TrainingRecipe")
    if "default" not in cls.RECIPES:
        raise ValueError(f"{name}: RECIPES needs a 'default' entry (has {sorted(cls.RECIPES)})")
    stray = sorted((p, r) for p, r in cls.PRESET_RECIPES.items() if p not in cls.PRESETS or r not in cls.RECIPES)
    if stray:
        raise ValueError(f"{name}: PRESET_RECIPES pairs unknown presets or recipes: {stray}")
    _REGISTRY[name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import models.zoo

    for info in sorted(pkgutil.iter_modules(models.zoo.__path__), key=lambda i: i.name):
        importlib.import_module(f"models.zoo.{info.name}")
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        entry.load()
    for module in filter(None, (m.strip() for m in os.environ.get(ENV_MODULES, "").split(","))):
        importlib.import_module(module)


def list_models() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[TryOnModel]:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(_REGISTRY))}") from None


def presets(name: str) -> dict[str, dict[str, Any]]:
    return dict(get_model_class(name).PRESETS)


def _checked(kind: str, name: str, table: dict[str, dict[str, Any]], key: str, datacls: type, overrides: dict[str, Any]) -> Any:
    if key not in table:
        raise ValueError(f"model {name!r} has no {kind} {key!r}; valid {kind}s: {', '.join(table)}")
    fields = {f.name for f in dataclasses.fields(datacls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{name}: unknown {kind} keys {unknown}; valid keys: {', '.join(sorted(fields))}")
    return datacls(**{**table[key], **overrides})


def build_config(name: str, preset: str = "tiny", **overrides: Any) -> Any:
    """The architecture config of a preset, with typed overrides."""
    cls = get_model_class(name)
    return _checked("preset", name, cls.PRESETS, preset, cls.Config, overrides)


def default_recipe_name(name: str, preset: str) -> str:
    """The recipe a preset trains with unless --recipe says otherwise: the one the class pairs it with
    (``PRESET_RECIPES``, e.g. CP-VTON+'s presets with ``plus``), a recipe of the preset's own name, else
    ``default``."""
    cls = get_model_class(name)
    paired = cls.PRESET_RECIPES.get(preset)
    if paired is not None:
        return paired
    return preset if preset in cls.RECIPES else "default"


def build_recipe(name: str, recipe: str = "default", **overrides: Any) -> Any:
    """The training recipe (optimisers, loss weights, backbones) of a model, with typed overrides."""
    cls = get_model_class(name)
    return _checked("recipe", name, cls.RECIPES, recipe, cls.Recipe, overrides)


def create_model(name: str, preset: str = "tiny", **overrides: Any) -> TryOnModel:
    """Build a registered model from a preset with optional typed overrides (e.g. ``label_nc=8``)."""
    return get_model_class(name)(build_config(name, preset, **overrides))


def load_pretrained(directory: str | Path, map_location: str = "cpu") -> TryOnModel:
    """Load any registered model from a directory written by ``save_pretrained``, in eval mode."""
    doc = read_config(Path(directory))
    return get_model_class(doc["model"]).from_pretrained(directory, map_location=map_location)
