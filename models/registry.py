"""The model registry: one decorator per model file, one list of model modules.

Adding a model touches two files: the model's own file (decorated with ``@register_model``) and
``MODEL_MODULES`` below.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any, TypeVar

from models.base import TryOnModel, read_config

MODEL_MODULES: tuple[str, ...] = ("models.spade", "models.smis")

_REGISTRY: dict[str, type[TryOnModel]] = {}
_loaded = False
M = TypeVar("M", bound=type[TryOnModel])


def register_model(cls: M) -> M:
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"model name {name!r} registered twice ({_REGISTRY[name].__module__}, {cls.__module__})")
    for required in ("tiny", "paper"):
        if required not in cls.PRESETS:
            raise ValueError(f"{name}: every model needs a {required!r} preset (has {sorted(cls.PRESETS)})")
    _REGISTRY[name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for module in MODEL_MODULES:
            importlib.import_module(module)
        _loaded = True


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


def build_config(name: str, preset: str = "tiny", **overrides: Any) -> Any:
    cls = get_model_class(name)
    if preset not in cls.PRESETS:
        raise ValueError(f"model {name!r} has no preset {preset!r}; valid presets: {', '.join(cls.PRESETS)}")
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{name}: unknown config keys {unknown}; valid keys: {', '.join(sorted(fields))}")
    return cls.Config(**{**cls.PRESETS[preset], **overrides})


def create_model(name: str, preset: str = "tiny", **overrides: Any) -> TryOnModel:
    """Build a registered model from a preset with optional typed overrides (e.g. ``label_nc=8``)."""
    return get_model_class(name)(build_config(name, preset, **overrides))


def load_pretrained(directory: str | Path, map_location: str = "cpu") -> TryOnModel:
    """Load any registered model from a directory written by ``save_pretrained``."""
    doc = read_config(Path(directory))
    return get_model_class(doc["model"]).from_pretrained(directory, map_location=map_location)
