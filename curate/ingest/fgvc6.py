"""FGVC6 / iMaterialist-Fashion 2019: ``train.csv`` (run-length masks) + ``train/`` (+ ``test/``) images.

``train.csv`` columns: ``ImageId, EncodedPixels, Height, Width, ClassId`` (one row per object;
extra columns such as the 2020 edition's ``AttributesIds`` are ignored). ``EncodedPixels`` is
"start length start length ..." with 1-based starts over the image flattened in **column-major** order
(down the first column, then the next), so the decoded vector is reshaped ``(Width, Height)`` and
transposed. ``ClassId`` is ``"cls"`` or ``"cls_attr1_attr2..."``: the category id precedes the first
underscore. ImageId is the file name (2019: ``<hash>.jpg``; a bare id is looked up as ``<id>.jpg``).

Decoded label maps are written under the OUTPUT folder (``DS/labelmaps/fgvc6/<stem>.png``, greyscale,
never into the source) with ``curate.labelsets.FGVC6_STORED`` ids: 0 background, k+1 = FGVC6 class k.
Their manifest path is relative to the dataset root like every path (it starts with ``..`` when DS lies
beside the source).

Precedence where masks overlap (FGVC6 masks overlap by design: a sleeve lies on a shirt, a belt on a
dress):
1. apparel (classes 0-26) over background; among apparel, larger masks are drawn first so a smaller
   item lying on a larger one (belt on a dress, scarf on a coat) stays visible;
2. garment parts (27+: sleeve, collar, pocket, ...) only fill pixels no apparel claimed, so a part
   never overwrites its garment (it survives only where the apparel masks have holes).
Ties are broken by CSV row order, so the map is deterministic.

Rows: articles by default (``--role human`` makes them humans); id = ``<split>/<image stem>``; split from the
folder (train/test); category from the apparel present: any dress/jumpsuit -> dresses, upper or outer
wear without lower -> upper_body, lower without upper/outer -> lower_body, otherwise unknown.
A mask that cannot be decoded (malformed run-length pairs, runs outside the image, inconsistent sizes)
rejects its row with ``labelmap-unreadable``; a class id outside 0-45 with ``labelmap-unknown-ids``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import stat
from pathlib import Path

import numpy as np

from curate.imageio import printable_path
from curate.ingest.common import (
    ROLES, ArticleSpec, HumanSpec, IngestError, Scan, ScanOptions, list_images, rel, split_from_name,
)  # fmt: skip
from curate.labelsets import FGVC6_46, FGVC6_MAP_OFFSET, FGVC6_STORED
from curate.manifest import atomic_write_bytes
from curate.schema import Category, RejectReason

CSV_NAME = "train.csv"
REQUIRED_COLUMNS = ("ImageId", "EncodedPixels", "Height", "Width", "ClassId")
NUM_APPAREL = 27  # classes 0..26 are garments/accessories, 27..45 garment parts
LABELMAP_DIR = Path("labelmaps") / "fgvc6"


class MaskError(ValueError):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _regular(path: Path) -> bool:
    """A regular file (a FIFO named train.csv would block the open forever)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def csv_header(path: Path) -> list[str] | None:
    """Column names of a CSV file, or None when it is absent/unreadable/not a regular file."""
    if not _regular(path):
        return None
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
            return next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def decode_rle(encoded: str, height: int, width: int) -> np.ndarray:
    """FGVC6 run-length string -> bool mask ``[height, width]`` (1-based starts, column-major)."""
    try:
        values = np.asarray(encoded.split(), dtype=np.int64)
    except ValueError:
        raise MaskError(RejectReason.LABELMAP_UNREADABLE, f"EncodedPixels is not integers: {encoded[:40]!r}") from None
    if values.size % 2:
        raise MaskError(RejectReason.LABELMAP_UNREADABLE, f"EncodedPixels has an odd count ({values.size})")
    starts, lengths = values[0::2] - 1, values[1::2]
    total = height * width
    if values.size and (starts.min() < 0 or lengths.min() < 0 or (starts + lengths).max() > total):
        raise MaskError(RejectReason.LABELMAP_UNREADABLE, f"a run lies outside the {width}x{height} image")
    # Difference array: +1 where a run starts, -1 one past its end; the running sum is >0 inside runs.
    edges = np.zeros(total + 1, np.int32)
    np.add.at(edges, starts, 1)
    np.add.at(edges, starts + lengths, -1)
    flat = np.cumsum(edges[:-1]) > 0
    return flat.reshape(width, height).T  # column-major: the first run walks down column 0


def compose_labelmap(objects: list[tuple[int, str]], height: int, width: int) -> np.ndarray:
    """uint8 ``[H, W]`` map in FGVC6_STORED ids from ``(class_id, rle)`` objects (precedence: see module)."""
    masks = []
    for order, (class_id, encoded) in enumerate(objects):
        if not 0 <= class_id < FGVC6_46.num_classes:
            raise MaskError(
                RejectReason.LABELMAP_UNKNOWN_IDS,
                f"ClassId {class_id} outside fgvc6-46 (0..{FGVC6_46.num_classes - 1})",
            )
        mask = decode_rle(encoded, height, width)
        masks.append((class_id, order, mask))
    out = np.zeros((height, width), np.uint8)
    apparel = sorted((m for m in masks if m[0] < NUM_APPAREL), key=lambda m: (-int(m[2].sum()), m[1]))
    for class_id, _, mask in apparel:
        out[mask] = class_id + FGVC6_MAP_OFFSET
    for class_id, _, mask in sorted((m for m in masks if m[0] >= NUM_APPAREL), key=lambda m: m[1]):
        out[mask & (out == 0)] = class_id + FGVC6_MAP_OFFSET
    return out


def category_of(class_ids: set[int]) -> str:
    groups = FGVC6_46.groups
    has = {g: bool(class_ids & groups[g]) for g in ("upper", "outer", "lower", "dress")}
    if has["dress"]:
        return Category.DRESSES.value
    if (has["upper"] or has["outer"]) and not has["lower"]:
        return Category.UPPER.value
    if has["lower"] and not (has["upper"] or has["outer"]):
        return Category.LOWER.value
    return Category.UNKNOWN.value


@dataclasses.dataclass
class _Task:
    image_id: str
    height: str
    width: str
    objects: list[tuple[str, str]]  # (ClassId text, EncodedPixels)
    out_path: Path


@dataclasses.dataclass
class _Decoded:
    class_ids: set[int]
    reason: RejectReason | None = None
    detail: str | None = None


def _decode_task(task: _Task) -> _Decoded:
    """Decode one image's objects and write its label map PNG (atomically) under the output folder."""
    from PIL import Image

    class_ids: set[int] = set()
    try:
        try:
            height, width = int(task.height), int(task.width)
        except ValueError:
            raise MaskError(RejectReason.LABELMAP_UNREADABLE, f"Height/Width not integers ({task.height!r}, {task.width!r})") from None
        objects = []
        for class_text, encoded in task.objects:
            try:
                class_id = int(class_text.split("_", 1)[0])
            except ValueError:
                raise MaskError(RejectReason.LABELMAP_UNREADABLE, f"ClassId {class_text!r} is not a number") from None
            class_ids.add(class_id)
            objects.append((class_id, encoded))
        labelmap = compose_labelmap(objects, height, width)
    except MaskError as exc:
        return _Decoded(class_ids, exc.reason, f"{task.image_id}: {exc}")
    buf = io.BytesIO()
    Image.fromarray(labelmap, mode="L").save(buf, format="PNG", optimize=False)
    atomic_write_bytes(task.out_path, buf.getvalue())
    return _Decoded(class_ids)


def _image_file(image_dir: Path, image_id: str) -> Path:
    if Path(image_id).suffix.lower() in (".jpg", ".jpeg", ".png"):
        return image_dir / image_id
    for suffix in (".jpg", ".png", ".jpeg"):
        if (image_dir / f"{image_id}{suffix}").is_file():
            return image_dir / f"{image_id}{suffix}"
    return image_dir / f"{image_id}.jpg"


def scan(src: Path, options: ScanOptions) -> Scan:
    from curate.ingest.engine import parallel_map  # the engine's pool, shared with image decoding

    role = options.role or "article"
    if role not in ROLES:
        raise IngestError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
    result = Scan(used_files={CSV_NAME})
    csv_path = src / CSV_NAME
    header = csv_header(csv_path) or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise IngestError(f"{csv_path} lacks the FGVC6 columns {missing} (has {header})")

    grouped: dict[str, list[dict[str, str]]] = {}
    # streamed (the real train.csv is ~1 GB); bytes that are not UTF-8 survive as surrogates, so such an
    # ImageId still names its file and its row is rejected path-not-utf8 instead of aborting the run
    with open(csv_path, newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
        for line_no, row in enumerate(csv.DictReader(fh), start=2):
            if not row.get("ImageId"):
                result.notes.append(f"{CSV_NAME} line {line_no}: no ImageId; skipped")
                continue
            grouped.setdefault(row["ImageId"], []).append(row)

    image_dir = src / "train"
    out_dir = Path(options.out) / LABELMAP_DIR
    tasks, specs_args = [], []
    for image_id in sorted(grouped):
        rows = grouped[image_id]
        image = _image_file(image_dir, image_id)
        sizes = {(r["Height"], r["Width"]) for r in rows}
        out_path = out_dir / f"{Path(image_id).stem if Path(image_id).suffix else image_id}.png"
        specs_args.append((image_id, image, out_path, sizes))
        if image.is_file():
            height, width = sorted(sizes)[0]
            tasks.append(_Task(image_id, height, width, [(r["ClassId"], r["EncodedPixels"]) for r in rows], out_path))
    decoded = dict(zip((t.image_id for t in tasks), parallel_map(_decode_task, tasks, options.workers, progress=options.progress, what="FGVC6 masks")))

    annotated: set[str] = set()
    for image_id, image, out_path, sizes in specs_args:
        annotated.add(rel(image, src))
        d = decoded.get(image_id)
        reason, detail = (d.reason, d.detail) if d else (None, None)
        if d and len(sizes) > 1:
            reason, detail = RejectReason.LABELMAP_UNREADABLE, f"{image_id}: rows disagree on Height/Width {sorted(sizes)}"
        labelmap = os.path.relpath(out_path, src) if d and d.reason is None else None
        row_id = f"train/{Path(image_id).stem if Path(image_id).suffix else image_id}"
        category = options.category or (category_of(d.class_ids) if d else Category.UNKNOWN.value)
        _add(result, role, row_id, rel(image, src), "train", category, labelmap, reason, detail)
    # Images without any CSV row (the unannotated test split, or train images with no objects).
    for folder in ("train", "test"):
        for image in list_images(src / folder):
            relpath = rel(image, src)
            if relpath not in annotated:
                _add(result, role, f"{folder}/{image.stem}", relpath, split_from_name(folder), options.category or "unknown",
                     None, None, None)
    result.notes.append(
        f"FGVC6 label maps decoded into {printable_path(out_dir)} ({len(tasks)} images; "
        f"{len(specs_args) - len(tasks)} CSV images absent on disk)"
    )
    return result


def _add(result: Scan, role: str, row_id: str, path: str, split: str, category: str,
         labelmap: str | None, reason: RejectReason | None, detail: str | None) -> None:
    common = dict(path=path, split=split, category=category, labelmap_path=labelmap,
                  label_set=FGVC6_STORED.name, preset_reason=reason, preset_detail=detail)
    if role == "human":
        result.humans.append(HumanSpec(human_id=row_id, **common))
    else:
        result.articles.append(ArticleSpec(article_id=row_id, **common))
