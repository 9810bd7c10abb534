"""What a layout reader hands to the ingest engine, and the small helpers every reader shares.

A layout reader only *lists* things: which human images, articles and pairs its folders describe, with
the (relative) paths of their annotations. It opens no image. The engine (``engine.py``) then reads every
file once, records rejections and writes the manifest, so the rules (reasons, ids, determinism) are the
same for every layout.

Id conventions (unique within their table, stable across runs, documented per layout):
``<split>/<stem>`` (VITON-HD, VITON, SMIS), ``<category>/<stem>`` (DressCode), the path under the role
folder without extension (pairs-folder, images), the FGVC6 ImageId. Pair ids are
``<pair list>/<human stem>--<article stem>`` or ``inferred/...`` when no pair list named the pair.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Callable, Final, Iterable, Iterator

from curate.imageio import is_image_name
from curate.schema import Category, RejectReason, Split

LAYOUT_NAMES: Final[tuple[str, ...]] = (
    "viton-hd", "viton", "dresscode", "deepfashion-smis", "pairs-folder", "fgvc6", "images",
)  # fmt: skip
ROLES: Final[tuple[str, ...]] = ("human", "article")


class IngestError(RuntimeError):
    """The source cannot be ingested as asked (not a folder, wrong layout, output inside the source...)."""


@dataclasses.dataclass
class HumanSpec:
    human_id: str
    path: str  # relative to the dataset root; the expected path when the image itself is absent
    split: str = Split.UNKNOWN.value
    category: str = Category.UNKNOWN.value
    labelmap_path: str | None = None  # candidates: the engine drops paths that are not on disk
    label_set: str | None = None
    pose_path: str | None = None
    # A rejection the reader already knows (e.g. an FGVC6 mask that does not decode); the image is
    # still read and hashed so the row is complete.
    preset_reason: RejectReason | None = None
    preset_detail: str | None = None


@dataclasses.dataclass
class ArticleSpec:
    article_id: str
    path: str
    split: str = Split.UNKNOWN.value
    category: str = Category.UNKNOWN.value
    cloth_mask_path: str | None = None
    labelmap_path: str | None = None
    label_set: str | None = None
    preset_reason: RejectReason | None = None  # as on HumanSpec
    preset_detail: str | None = None


@dataclasses.dataclass
class PairSpec:
    pair_id: str
    human_id: str
    article_id: str | None
    split: str = Split.UNKNOWN.value
    category: str = Category.UNKNOWN.value
    paired: bool = False
    pair_list: str | None = None
    target_human_id: str | None = None  # person-to-person transfer: the garment donor


@dataclasses.dataclass
class Scan:
    """A layout reader's listing of the source."""

    humans: list[HumanSpec] = dataclasses.field(default_factory=list)
    articles: list[ArticleSpec] = dataclasses.field(default_factory=list)
    pairs: list[PairSpec] = dataclasses.field(default_factory=list)
    used_files: set[str] = dataclasses.field(default_factory=set)  # pair lists, CSVs (relative paths)
    notes: list[str] = dataclasses.field(default_factory=list)  # everything the user should know


@dataclasses.dataclass(frozen=True)
class ScanOptions:
    """What the user asked for, passed to every reader."""

    out: Path
    role: str | None = None
    category: str | None = None  # asserted category (VITON-HD / VITON have none)
    workers: int = 1  # processes for decoding (readers that decode, e.g. FGVC6 masks, use them too)
    progress: Callable[[str, int, int], None] | None = None  # (what, done, total)


def rel(path: Path, root: Path) -> str:
    """POSIX path of ``path`` relative to ``root`` (the manifest's spelling on every OS)."""
    return Path(os.path.relpath(path, root)).as_posix()


def walk_files(root: Path) -> Iterator[Path]:
    """Every file below ``root`` in sorted order, following folder links (datasets are often assembled
    from links) but never entering the same real folder twice, so a link cycle cannot loop forever.
    Hidden files and folders (``.git``, ``.ipynb_checkpoints``) are skipped."""
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def list_images(folder: Path, *, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` sorted by name (deterministic across file systems); none if absent."""
    if not folder.is_dir():
        return []
    if recursive:
        found: Iterable[Path] = walk_files(folder)
    else:
        found = (p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return sorted((p for p in found if is_image_name(p)), key=lambda p: os.fsencode(p))


def first_dir(parent: Path, *names: str) -> Path | None:
    """The first of ``names`` that is a folder under ``parent`` (accepts the older spellings of a layout)."""
    for name in names:
        if (parent / name).is_dir():
            return parent / name
    return None


def first_file(folder: Path | None, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    """``folder/stem<suffix>`` for the first suffix that exists."""
    if folder is None:
        return None
    for suffix in suffixes:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


_SPLIT_WORDS: Final[dict[str, str]] = {
    "train": Split.TRAIN.value, "training": Split.TRAIN.value, "val": Split.VAL.value,
    "valid": Split.VAL.value, "validation": Split.VAL.value, "test": Split.TEST.value, "testing": Split.TEST.value,
}  # fmt: skip


def split_from_name(name: str) -> str:
    """Split named by a folder or pair-list file name (``train_pairs.txt`` -> train), else unknown."""
    head = re.split(r"[_\-.]", name.lower(), maxsplit=1)[0]
    return _SPLIT_WORDS.get(head, _SPLIT_WORDS.get(name.lower(), Split.UNKNOWN.value))


# Folder names that state a garment category. CatVTON calls its dress folder "overall" (full-length
# garments, all dresses in its samples), so it is read as dresses.
_CATEGORY_WORDS: Final[dict[str, str]] = {
    **dict.fromkeys(("upper", "upper_body", "upper-body", "upperbody", "top", "tops", "shirts", "tshirts",
                     "t-shirts", "blouses", "sweaters", "jackets", "coats", "outerwear"), Category.UPPER.value),
    **dict.fromkeys(("lower", "lower_body", "lower-body", "lowerbody", "bottom", "bottoms", "pants", "trousers",
                     "jeans", "skirts", "shorts"), Category.LOWER.value),
    **dict.fromkeys(("dress", "dresses", "overall", "overalls", "gowns"), Category.DRESSES.value),
}  # fmt: skip


def category_from_parts(parts: tuple[str, ...] | list[str]) -> str:
    """The category named by the deepest folder that is a known category word, else unknown."""
    for part in reversed(parts):
        hit = _CATEGORY_WORDS.get(part.lower())
        if hit:
            return hit
    return Category.UNKNOWN.value


def split_from_parts(parts: tuple[str, ...] | list[str]) -> str:
    for part in reversed(parts):
        if part.lower() in _SPLIT_WORDS:
            return _SPLIT_WORDS[part.lower()]
    return Split.UNKNOWN.value


def validate_category(category: str | None) -> str | None:
    if category is None:
        return None
    valid = [c.value for c in Category]
    if category not in valid:
        raise IngestError(f"unknown category {category!r}; valid: {', '.join(valid)}")
    return category


def read_pair_list(path: Path, root: Path, notes: list[str]) -> list[tuple[str, str]]:
    """``(first, second)`` names per line of a whitespace-separated pair list.

    Blank lines and ``#`` comments are skipped; runs of spaces/tabs and a missing final newline are fine
    (DressCode). A line that does not hold exactly two names is reported in ``notes``, never guessed.
    """
    out: list[tuple[str, str]] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        notes.append(f"pair list {rel(path, root)} unreadable ({exc}); its pairs are not ingested")
        return out
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        if len(tokens) != 2:
            notes.append(f"pair list {rel(path, root)} line {lineno}: expected 2 names, got {len(tokens)}; skipped")
            continue
        out.append((tokens[0], tokens[1]))
    return out


def stem_of(name: str) -> str:
    """File stem of a pair-list entry (``12419_00.jpg`` -> ``12419_00``; a bare stem stays as it is)."""
    return Path(name).stem if is_image_name(name) else Path(name).name
