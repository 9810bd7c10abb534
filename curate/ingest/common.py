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
import errno
import os
import re
import stat
from pathlib import Path
from typing import Callable, Final, Iterable, Iterator

from curate.imageio import is_image_name, printable_path, read_file_bounded
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
    Hidden files and folders (``.git``, ``.ipynb_checkpoints``) are skipped, and so is everything
    :func:`walk_tree` gives a reason for (broken links, FIFOs, unreadable folders)."""
    for path, reason in walk_tree(root):
        if reason is None:
            yield path


def walk_tree(root: Path) -> Iterator[tuple[Path, str | None]]:
    """Every entry below ``root`` that is not a folder walked into, with ``None`` for a regular file
    (hidden ones excepted) and otherwise the reason it cannot be a row: the ingest report names each,
    so no file of the source goes unaccounted. Sorted, deterministic, loop-safe (see :func:`walk_files`)."""
    seen: set[str] = set()
    errors: list[tuple[Path, str]] = []

    def onerror(exc: OSError) -> None:
        errors.append((Path(exc.filename), f"folder not readable ({exc.strerror or exc})"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=onerror):
        yield from errors
        errors.clear()
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            yield Path(dirpath), f"symlink to a folder already walked ({printable_path(real)}): a loop or a second link"
            continue
        seen.add(real)
        keep = []
        for d in sorted(dirnames):
            if d.startswith("."):
                yield Path(dirpath) / d, "hidden folder: not read"
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            path = Path(dirpath) / name
            yield path, _file_problem(path, name)
    yield from errors


def _file_problem(path: Path, name: str) -> str | None:
    if name.startswith("."):
        return "hidden file (a name starting with '.', e.g. macOS ._ resource forks): not read"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"broken symlink (to {printable_path(os.readlink(path))})" if os.path.islink(path) else "vanished while listed"
    except OSError as exc:
        return "symlink loop" if exc.errno == errno.ELOOP else f"cannot stat ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        from curate.imageio import file_kind

        return f"{file_kind(st)}, not a regular file: never opened"
    return None


def escapes_root(folder: Path, name: str, root: Path) -> bool:
    """True when ``name`` (a path string from a pair list or CSV, relative to ``folder``) is absolute or
    leaves ``root`` with ``..``: such a name is rejected ``path-outside-root`` and never opened. The check
    is on the string (lexical), so the user's own symlinks inside the root are still followed."""
    if os.path.isabs(name) or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", name):
        return True
    p = os.path.normpath(os.path.join(rel(folder, root), name)).replace(os.sep, "/")
    return p == ".." or p.startswith("../")


def path_inside(relpath: str) -> bool:
    """A manifest path (relative to the dataset root) that stays inside it, lexically."""
    if os.path.isabs(relpath):
        return False
    p = os.path.normpath(relpath).replace(os.sep, "/")
    return not (p == ".." or p.startswith("../"))


def list_images(folder: Path, *, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` sorted by name (deterministic across file systems); none if absent."""
    try:
        if not folder.is_dir():
            return []
        if recursive:
            found: Iterable[Path] = list(walk_files(folder))
        else:
            found = [p for p in folder.iterdir() if not p.name.startswith(".") and _file_problem(p, p.name) is None]
    except OSError:
        return []  # an unreadable folder: walk_tree names it in the ingest report
    return sorted((p for p in found if is_image_name(p)), key=lambda p: os.fsencode(p))


def first_dir(parent: Path, *names: str) -> Path | None:
    """The first of ``names`` that is a folder under ``parent`` (accepts the older spellings of a layout)."""
    for name in names:
        try:
            if (parent / name).is_dir():
                return parent / name
        except OSError:
            continue
    return None


def first_file(folder: Path | None, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    """``folder/stem<suffix>`` for the first suffix that exists."""
    if folder is None:
        return None
    for suffix in suffixes:
        candidate = folder / f"{stem}{suffix}"
        try:
            if candidate.is_file():
                return candidate
        except OSError:  # permission denied on the folder: not found here, reported by walk_tree
            continue
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


MAX_LIST_BYTES: Final[int] = 64 * 2**20  # pair lists and CSVs larger than this are not read


def read_pair_list(path: Path, root: Path, notes: list[str]) -> list[tuple[str, str]]:
    """``(first, second)`` names per line of a whitespace-separated pair list.

    Blank lines and ``#`` comments are skipped; runs of spaces/tabs and a missing final newline are fine
    (DressCode). A line that does not hold exactly two names, or whose bytes are not UTF-8, is reported
    in ``notes`` (with its number) and skipped; the other lines are read. The file is read bounded
    (:data:`MAX_LIST_BYTES`) and only when it is a regular file.
    """
    out: list[tuple[str, str]] = []
    name = printable_path(rel(path, root))
    data, reason, detail = read_file_bounded(path, MAX_LIST_BYTES)
    if data is None:
        notes.append(f"pair list {name} not read ({reason.value if reason else 'unreadable'}: {detail}); its pairs are not ingested")
        return out
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for lineno, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = raw[:80].decode("utf-8", errors="backslashreplace")
            notes.append(f"pair list {name} line {lineno}: not UTF-8 (byte {exc.start}: {shown!r}); skipped")
            continue
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        if len(tokens) != 2:
            notes.append(f"pair list {name} line {lineno}: expected 2 names, got {len(tokens)}; skipped")
            continue
        out.append((tokens[0], tokens[1]))
    return out


def stem_of(name: str) -> str:
    """File stem of a pair-list entry (``12419_00.jpg`` -> ``12419_00``; a bare stem stays as it is)."""
    return Path(name).stem if is_image_name(name) else Path(name).name
