"""`curate labelmaps`: resized training arrays that never starve the GPU.

Layout, per size (and target label set) and split, under ``DS/arrays/<H>x<W>[-<label set>]/<split>/``:

- ``humans_image.npy`` uint8 ``[N,H,W,3]``, ``humans_labelmap.npy`` uint8 ``[N,H,W,1]`` (one class id
  per pixel, nearest-neighbour resize, never interpolated ids), ``humans_keypoints.npy`` float32
  ``[N,18,3]`` (COCO-18 scaled to the new size, conf 0 = missing);
- ``articles_image.npy`` uint8 ``[M,H,W,3]``, ``articles_mask.npy`` uint8 ``[M,H,W,1]`` (0..255);
- ``humans.parquet`` / ``articles.parquet``: id -> row, the input key the row was made from, and flags
  (``has_labelmap``, ``has_pose``, ``mask_source``);
- ``classes.json`` beside the split folders: the label set and its class list.

One memory-mappable array per field per split: a loader reads a sample with a few slice copies and no
decoding. Images are fitted into H x W keeping their aspect ratio (padded with white, label 0, mask 0)
so that people are never stretched; keypoints get the same scale and offset.

Pixels come through the one decoding path of ``curate.imageio`` (the one ingest validated): EXIF
orientation applied, 16-bit scaled to 8 bits, alpha composited on white (and, for an article without a
cloth-mask file, the alpha is its mask), palette and 1-bit label maps read as ids.

Incremental: a row is reused when its input key (sha256 of the image, label map and mask files, plus the
size and label set) is unchanged; only new or changed inputs are decoded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from PIL import Image

from curate.imageio import Decoded, ImageDecodeError, load_labelmap_ids, load_rgb, read_file_bounded
from curate.labelsets import convert, get_label_set
from curate.manifest import Manifest, ManifestError, atomic_write_bytes
from curate.triplets import load_triplets

ARRAYS_DIR = "arrays"


def arrays_dir(ds: Path, size: tuple[int, int], label_set: str | None) -> Path:
    h, w = size
    return Path(ds) / ARRAYS_DIR / (f"{h}x{w}" + (f"-{label_set}" if label_set else ""))


@dataclasses.dataclass
class ArraysResult:
    root: Path
    label_set: str | None
    samples: dict[str, tuple[int, int]]  # split -> (humans, articles)
    reused: int
    computed: int
    bytes_on_disk: int


@dataclasses.dataclass(frozen=True)
class _Fit:
    scale: float
    dx: int
    dy: int
    nw: int
    nh: int


def _fit(w: int, h: int, size: tuple[int, int]) -> _Fit:
    th, tw = size
    scale = min(tw / w, th / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    return _Fit(scale, (tw - nw) // 2, (th - nh) // 2, nw, nh)


def _place(im: Image.Image, fit: _Fit, size: tuple[int, int], resample: int, fill: int | tuple[int, ...]) -> np.ndarray:
    th, tw = size
    canvas = Image.new(im.mode, (tw, th), fill)
    canvas.paste(im.resize((fit.nw, fit.nh), resample), (fit.dx, fit.dy))
    return np.asarray(canvas)


class SourceChanged(RuntimeError):
    """A file the manifest lists cannot be read as ingest read it (deleted, replaced, now unreadable)."""


def _sha(path: Path | None) -> str:
    if path is None or not path.is_file():
        return "-"
    data, _, detail = read_file_bounded(path)
    if data is None:
        raise SourceChanged(f"{path}: {detail}; the source changed since ingest: re-run `curate ingest`")
    return hashlib.sha256(data).hexdigest()


def _load(path: Path, what: str) -> Decoded:
    try:
        return load_rgb(path)
    except ImageDecodeError as exc:
        raise SourceChanged(f"{what} {path}: {exc} ({exc.reason.value}); the source changed since ingest: "
                            f"re-run `curate ingest`") from None


def _ids(path: Path) -> np.ndarray:
    try:
        return load_labelmap_ids(path)
    except ImageDecodeError as exc:
        raise SourceChanged(f"{path}: {exc} ({exc.reason.value}); re-run `curate ingest`") from None


def _human_key(m: Manifest, row: pd.Series, size: tuple[int, int], target: str | None) -> str:
    return "|".join([str(row["sha256"]), _sha(m.resolve(row["labelmap_path"])), str(list(row["keypoints"]) if _has_pose(row) else "-"),
                     f"{size}", str(target)])


def _has_pose(row: pd.Series) -> bool:
    kp = row["keypoints"]
    return kp is not None and not isinstance(kp, float) and len(kp) == 54


def _human_row(m: Manifest, row: pd.Series, size: tuple[int, int], target: str | None) -> dict[str, object]:
    img_path = m.resolve(row["path"])
    im = Image.fromarray(_load(img_path, "image").rgb)
    fit = _fit(im.width, im.height, size)
    image = _place(im, fit, size, Image.LANCZOS, (255, 255, 255))
    label = np.zeros(size, np.uint8)
    lm_path = m.resolve(row["labelmap_path"])
    has_labelmap = lm_path is not None and lm_path.is_file()
    if has_labelmap:
        ids = _ids(lm_path)
        if ids.shape != (im.height, im.width):
            raise SourceChanged(f"label map {lm_path} is {ids.shape[1]}x{ids.shape[0]} but its image is "
                                f"{im.width}x{im.height}; the source changed since ingest: re-run `curate ingest`")
        if target and row["label_set"] != target:
            ids = convert(ids, str(row["label_set"]), target)
        label = _place(Image.fromarray(ids.astype(np.uint8), "L"), fit, size, Image.NEAREST, 0)
    kp = np.zeros((18, 3), np.float32)
    has_pose = _has_pose(row)
    if has_pose:
        kp = np.asarray(row["keypoints"], np.float32).reshape(18, 3).copy()
        seen = kp[:, 2] > 0
        kp[seen, 0] = kp[seen, 0] * fit.scale + fit.dx
        kp[seen, 1] = kp[seen, 1] * fit.scale + fit.dy
        kp[~seen] = 0
    return dict(image=image, labelmap=label[..., None], keypoints=kp, has_labelmap=has_labelmap, has_pose=has_pose)


def _article_key(m: Manifest, row: pd.Series, size: tuple[int, int]) -> str:
    return "|".join([str(row["sha256"]), _sha(m.resolve(row["cloth_mask_path"])), f"{size}"])


def _article_row(m: Manifest, row: pd.Series, size: tuple[int, int]) -> dict[str, object]:
    img_path = m.resolve(row["path"])
    decoded = _load(img_path, "article")
    im = Image.fromarray(decoded.rgb)
    fit = _fit(im.width, im.height, size)
    image = _place(im, fit, size, Image.LANCZOS, (255, 255, 255))
    mask_path = m.resolve(row["cloth_mask_path"])
    if mask_path is not None and mask_path.is_file():
        mask = _place(Image.fromarray(_load(mask_path, "cloth mask").rgb).convert("L"), fit, size, Image.BILINEAR, 0)
        source = "file"
    elif decoded.alpha is not None:
        # a cut-out product (RGBA on transparent): the alpha is the garment's mask
        mask = _place(Image.fromarray(decoded.alpha, "L"), fit, size, Image.BILINEAR, 0)
        source = "alpha"
    else:
        # No cloth mask shipped: products are photographed on white, so "not near-white" is the garment
        # (the CP-VTON+ recipe: a simple threshold).
        rgb = np.asarray(im, np.int16)
        fg = ((255 - rgb).max(axis=2) > 20).astype(np.uint8) * 255
        mask = _place(Image.fromarray(fg, "L"), fit, size, Image.BILINEAR, 0)
        source = "threshold"
    return dict(image=image, mask=mask[..., None], mask_source=source)


def _save_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array))
    atomic_write_bytes(path, buf.getvalue())


def _build_table(
    ids: list[str], frame: pd.DataFrame, id_col: str, out: Path, prefix: str, fields: tuple[str, ...], key_of, make
) -> tuple[int, int]:
    """Write one table's arrays, reusing rows whose key is unchanged. Returns (reused, computed)."""
    old_index_path = out / f"{prefix}.parquet"
    old: dict[str, tuple[int, str]] = {}
    old_meta: dict[str, dict[str, object]] = {}
    old_arrays: dict[str, np.ndarray] = {}
    if old_index_path.is_file():
        prev = pd.read_parquet(old_index_path)
        old = {i: (r, k) for i, r, k in zip(prev[id_col], prev["row"], prev["key"])}
        old_meta = prev.drop(columns=[id_col, "row", "key"]).set_index(prev[id_col]).to_dict("index")
        old_arrays = {f: np.load(out / f"{prefix}_{f}.npy", mmap_mode="r") for f in fields if (out / f"{prefix}_{f}.npy").is_file()}
    rows = frame.set_index(id_col)
    built: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    meta: list[dict[str, object]] = []
    reused = computed = 0
    for i, sample_id in enumerate(ids):
        row = rows.loc[sample_id]
        key = key_of(row)  # hashes files only: no decoding for unchanged inputs
        prev = old.get(sample_id)
        if prev is not None and prev[1] == key and len(old_arrays) == len(fields):
            for f in fields:
                built[f].append(np.asarray(old_arrays[f][prev[0]]))
            extra = old_meta[sample_id]
            reused += 1
        else:
            sample = make(row)
            for f in fields:
                built[f].append(sample[f])  # type: ignore[arg-type]
            extra = {k: v for k, v in sample.items() if k not in fields}
            computed += 1
        meta.append({id_col: sample_id, "row": i, "key": key, **extra})
    for f in fields:
        _save_npy(out / f"{prefix}_{f}.npy", np.stack(built[f]))
    buf = io.BytesIO()
    pd.DataFrame(meta).to_parquet(buf, index=False)
    atomic_write_bytes(old_index_path, buf.getvalue())
    return reused, computed


def _humans_only_splits(m: Manifest) -> pd.DataFrame | None:
    """A dataset of people and no pairs (FGVC6 ingested with --role human, a folder of model shots):
    one row per usable person with the source layout's split (``train`` where it has none)."""
    if len(m.pairs) or not len(m.humans):
        return None
    h = m.humans
    keep = (h["status"] == "ok") & h.get("dup_keep", pd.Series(True, index=h.index)).fillna(True).astype(bool)
    usable = h[keep]
    split = usable["split"].astype("object").where(usable["split"].notna(), "train") if "split" in usable else "train"
    return pd.DataFrame({"human_id": usable["human_id"].to_numpy(), "split": split})


def build_arrays(ds: Path, size: tuple[int, int] = (256, 192), label_set: str | None = None) -> ArraysResult:
    """Write the arrays of every split in triplets.parquet (humans, positives and negatives); a dataset of
    people only (no pairs, no triplets) gets the humans' arrays per source split and no article arrays."""
    if label_set is not None:
        get_label_set(label_set)  # an unknown name lists the valid ones
    m = Manifest.load(ds)
    humans_only = _humans_only_splits(m) if not (Path(ds) / "triplets.parquet").is_file() else None
    if humans_only is not None and humans_only.empty:
        raise ValueError(f"{ds}: no usable humans; check `curate summary {ds}`")
    triplets = load_triplets(ds) if humans_only is None else humans_only
    root = arrays_dir(ds, size, label_set)
    if root.is_dir():
        for stale in root.rglob(".*.tmp"):  # temporaries of a killed run (atomic_write_bytes names them so)
            stale.unlink(missing_ok=True)
    humans = m.humans
    missing_sets = humans["label_set"].dropna().unique().tolist()
    target = label_set
    if target is None and len(missing_sets) > 1:
        raise ValueError(f"the dataset mixes label sets {missing_sets}: pass --label-set to convert them to one")
    effective = target or (missing_sets[0] if missing_sets else None)
    samples: dict[str, tuple[int, int]] = {}
    reused = computed = 0
    for split, part in triplets.groupby("split", sort=True):
        out = root / str(split)
        human_ids = sorted(set(part["human_id"]))
        r1, c1 = _build_table(human_ids, humans, "human_id", out, "humans", ("image", "labelmap", "keypoints"),
                              lambda row: _human_key(m, row, size, target), lambda row: _human_row(m, row, size, target))
        if humans_only is None:
            article_ids = sorted(set(part["article_id"]) | set(part["negative_id"].dropna()))
            r2, c2 = _build_table(article_ids, m.articles, "article_id", out, "articles", ("image", "mask"),
                                  lambda row: _article_key(m, row, size), lambda row: _article_row(m, row, size))
        else:
            article_ids, r2, c2 = [], 0, 0
        reused += r1 + r2
        computed += c1 + c2
        samples[str(split)] = (len(human_ids), len(article_ids))
    classes = {"label_set": effective, "classes": get_label_set(effective).class_list() if effective else [],
               "humans_only": humans_only is not None}
    atomic_write_bytes(root / "classes.json", (json.dumps(classes, indent=1) + "\n").encode())
    disk = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return ArraysResult(root, effective, samples, reused, computed, disk)


def parse_size(size: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"size must be HxW, e.g. 256x192 (got {size!r})") from None
    return h, w


def labelmaps_command(
    ds: Path = typer.Argument(..., help="dataset directory with triplets.parquet (or of people only, without pairs)"),
    size: str = typer.Option("256x192", "--size", help="HxW of the arrays"),
    label_set: str | None = typer.Option(None, "--label-set", help="convert label maps to this set (e.g. smis-8, acgpn-14)"),
) -> None:
    """Write resized uint8 label maps, images, cloth masks and keypoints as memory-mappable arrays.

    Example: curate labelmaps data/ds --size 256x192 --label-set smis-8
    """
    from rich.console import Console

    try:
        result = build_arrays(ds, parse_size(size), label_set)
    except (ManifestError, FileNotFoundError, ValueError, KeyError, SourceChanged) as exc:
        typer.echo(f"error: {exc}".splitlines()[0] if str(exc) else f"error: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from None
    console = Console()
    console.print(f"arrays in {result.root} (label set {result.label_set}): "
                  + ", ".join(f"{s}: {h} humans / {a} articles" for s, (h, a) in result.samples.items()), markup=False)
    console.print(f"{result.computed} samples computed, {result.reused} reused; {result.bytes_on_disk / 1e6:.1f} MB on disk")
