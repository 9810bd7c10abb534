"""A pretrained clothes parser for people without a parsing map: the better path, where a user has one.

Any Hugging Face semantic-segmentation model whose classes are one of our label sets works, e.g. a
SegFormer clothes parser trained on ATR (the 18 classes of ``dresscode-18``: background, hat, hair,
sunglasses, upper-clothes, skirt, pants, dress, belt, shoes, face, legs, arms, bag, scarf), or a LIP /
CIHP parser (``lip-20``, which also has a coat class). It is loaded from a local folder written by
``save_pretrained`` (offline) or from a hub id (``from_pretrained`` downloads it when online; nothing in
this project downloads one). Its predicted label map then goes through exactly the code the dataset's own
parsing goes through (view from face/hair, garments worn, two upper garments, scarf, the layering test
inside one label), and every verdict it decides names ``parser`` as its source.

Needs the ``parser`` extra (``transformers``). Inference runs on the CPU by default: ``curate filter`` runs
one parser per worker process, like the MediaPipe detector.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import numpy as np

from curate.labelsets import LABEL_SETS, LabelSet

# Class names parsers publish that mean the same class as ours under another name (normalised form).
ALIASES: Final[dict[str, str]] = {"face": "head", "jumpsuits": "neck", "torsoskin": "neck", "upperclothes": "upperclothes"}


class ParserUnavailableError(RuntimeError):
    """transformers is missing, or the model cannot be loaded or does not parse into a known label set."""


def _norm(name: str) -> str:
    n = re.sub(r"[^a-z]", "", name.lower())
    return ALIASES.get(n, n)


def label_set_for(id2label: dict[int, str]) -> LabelSet:
    """The label set whose classes, in id order, are the model's (names compared case- and punctuation-
    insensitively, with ALIASES); an error listing the model's classes when none is."""
    names = [_norm(id2label[i]) for i in sorted(id2label)]
    for ls in LABEL_SETS.values():
        if len(ls.classes) == len(names) and all(_norm(c) == n for c, n in zip(ls.classes, names)):
            return ls
    raise ParserUnavailableError(
        f"the parser's {len(names)} classes ({', '.join(id2label[i] for i in sorted(id2label))}) are none of the "
        f"label sets {', '.join(LABEL_SETS)}: a label-set table would be needed in curate/labelsets.py"
    )


def _cached(repo_id: str) -> bool:
    """A hub id whose files are already in the local Hugging Face cache loads without the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def _check_hub_reachable(repo_id: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after minutes of download retries, when the hub cannot be reached."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ParserUnavailableError(f"{repo_id!r} is not a local folder nor in the Hugging Face cache, and HF_HUB_OFFLINE is set")
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout).close()
    except OSError as exc:
        raise ParserUnavailableError(
            f"{repo_id!r} is not a local folder nor in the Hugging Face cache, and {url.hostname} cannot be reached "
            f"({exc}): download it elsewhere with save_pretrained and pass the folder"
        ) from exc


class ClothesParser:
    """A semantic-segmentation model and its image processor, loaded once per process."""

    def __init__(self, name_or_path: str, device: str = "cpu") -> None:
        try:
            import torch
            from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation
        except ImportError as exc:
            raise ParserUnavailableError(
                "a clothes parser needs transformers: pip install 'tryon-bench[parser]'"
            ) from exc
        path = Path(name_or_path)
        if path.exists() and not (path / "config.json").is_file():
            raise ParserUnavailableError(f"{name_or_path}: not a model folder (no config.json); pass a folder written by save_pretrained or a hub id")
        local = path.is_dir() or _cached(name_or_path)
        if not local:
            _check_hub_reachable(name_or_path)
        try:
            self.processor = AutoImageProcessor.from_pretrained(name_or_path, local_files_only=local)
            self.model = AutoModelForSemanticSegmentation.from_pretrained(name_or_path, local_files_only=local)
        except (OSError, ValueError, KeyError) as exc:  # hub id unknown, broken folder or cache
            where = "the folder" if path.is_dir() else "the hub (or its cached copy)"
            raise ParserUnavailableError(f"cannot load clothes parser {name_or_path!r} from {where}: {str(exc).splitlines()[0]}") from exc
        self.model.eval().to(torch.device(device))
        self.device = torch.device(device)
        self.label_set = label_set_for({int(k): v for k, v in self.model.config.id2label.items()})
        self.name = name_or_path

    def parse(self, rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """uint8 ``[H, W]`` class ids of ``self.label_set`` for an RGB image, at ``size`` (H, W): the logits
        upsampled bilinearly (as SegFormer's own post-processing does) and argmaxed."""
        import torch
        import torch.nn.functional as F

        inputs: Any = self.processor(images=rgb, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(pixel_values=inputs["pixel_values"].to(self.device)).logits
            up = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
            return up.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()
