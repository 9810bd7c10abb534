"""The model zoo: a registry of try-on generators sharing one set of layers and one trainer."""

from models.base import TrainingPhase, TryOnModel
from models.registry import create_model, list_models, load_pretrained, register_model

__all__ = ["TrainingPhase", "TryOnModel", "create_model", "list_models", "load_pretrained", "register_model"]
