"""`curate dedupe` over the manifest: features (cached), groups, keep policy, pair duplicates, report."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import typer

DEFAULT_RADIUS = 16  # pHash bits (of 64); chosen on the synthetic set with crops, see docs/benchmarks/dedupe.md
DEFAULT_COLOUR = 0.005  # mean |chromaticity| difference over the 16x16 grid
DEFAULT_STRUCTURE = 0.045  # 1 - correlation of the standardised 16x16 grey thumbnails


@dataclasses.dataclass
class DedupeStats:
    table: str
    rows: int
    hashed: int
    cached: int
    unreadable: int
    groups: int
    duplicates: dict[str, int]


def _feature_job(args: tuple[str, str]) -> tuple[str, object]:
    from curate.dedupe.core import image_features

    key, path = args
    try:
        return key, image_features(Path(path))
    except Exception as exc:  # noqa: BLE001 - an unreadable file is a reason, never a crash
        return key, f"{type(exc).__name__}: {exc}"


def _features(m, table: str, workers: int):  # noqa: ANN001, ANN202
    """Features of every ok row; the cache (DS/cache/dedupe-<table>.parquet) is keyed by (path, size, mtime)."""
    import pandas as pd

    from curate.dedupe.core import Features
    from curate.manifest import atomic_write_bytes

    df = m.table(table)
    cache_path = m.ds / "cache" / f"dedupe-{table}.parquet"
    cache: dict[tuple[str, int, int], Features] = {}
    if cache_path.is_file():
        for r in pd.read_parquet(cache_path).itertuples():
            cache[(r.path, int(r.size), int(r.mtime_ns))] = Features(r.pixel_sha256, int(r.phash, 16), tuple(r.colour))
    feats: dict[int, Features] = {}
    errors: dict[int, str] = {}
    todo = []
    keys: dict[int, tuple[str, int, int]] = {}
    for i, (path, status) in enumerate(zip(df["path"], df["status"])):
        if status != "ok":
            continue
        absolute = m.resolve(path)
        try:
            st = absolute.stat()
        except OSError as exc:
            errors[i] = f"missing at dedupe time: {exc}"
            continue
        keys[i] = (str(absolute), st.st_size, st.st_mtime_ns)
        if keys[i] in cache:
            feats[i] = cache[keys[i]]
        else:
            todo.append((str(i), str(absolute)))
    if workers > 1 and len(todo) > 64:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_feature_job, todo, chunksize=32))
    else:
        results = [_feature_job(t) for t in todo]
    for key, value in results:
        if isinstance(value, str):
            errors[int(key)] = value
        else:
            feats[int(key)] = value  # type: ignore[assignment]
    rows = [{"path": keys[i][0], "size": keys[i][1], "mtime_ns": keys[i][2], "pixel_sha256": f.pixel_sha256,
             "phash": f"{f.phash:016x}", "colour": list(f.colour)} for i, f in feats.items()]
    buf = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buf, index=False)
    atomic_write_bytes(cache_path, buf.getvalue())
    return feats, errors, len(todo)


def dedupe_table(m, table: str, radius: int, colour_threshold: float, workers: int) -> tuple[DedupeStats, list[dict]]:  # noqa: ANN001
    import pandas as pd

    from curate.dedupe.core import UnionFind, colour_distance, near_pairs
    from curate.schema import DEDUPE_KEEP_POLICY, ID_COLUMN

    df = m.table(table)
    feats, errors, hashed = _features(m, table, workers)
    idx = sorted(feats)
    uf = UnionFind(len(df))
    reason: dict[tuple[int, int], tuple[str, dict]] = {}
    by_bytes: dict[str, int] = {}
    by_pixels: dict[str, int] = {}
    for i in idx:
        sha, px = df["sha256"].iloc[i], feats[i].pixel_sha256
        if sha in by_bytes:
            uf.union(by_bytes[sha], i)
            reason[(by_bytes[sha], i)] = ("exact-bytes", {})
        elif px in by_pixels:
            uf.union(by_pixels[px], i)
            reason[(by_pixels[px], i)] = ("same-pixels", {})
        by_bytes.setdefault(sha, i)
        by_pixels.setdefault(px, i)
    hashes = [feats[i].phash for i in idx]
    for a, b, d in near_pairs(hashes, radius):
        i, j = idx[a], idx[b]
        chroma, structure = colour_distance(feats[i].colour, feats[j].colour)
        if chroma <= colour_threshold and structure <= DEFAULT_STRUCTURE and uf.find(i) != uf.find(j):
            uf.union(i, j)
            reason[(i, j)] = ("near-duplicate", {"phash_hamming": d, "chroma": round(chroma, 5), "structure": round(structure, 4)})
    members: dict[int, list[int]] = {}
    for i in idx:
        members.setdefault(uf.find(i), []).append(i)
    groups = [g for g in members.values() if len(g) > 1]
    area = (df["width"].fillna(0).astype("int64") * df["height"].fillna(0).astype("int64")).to_numpy()
    size = df["size_bytes"].fillna(0).astype("int64").to_numpy()
    ids = df[ID_COLUMN[table]].tolist()
    group_col = pd.array([None] * len(df), dtype="Int64")
    keep = pd.array([pd.NA if df["status"].iloc[i] != "ok" or i in errors else True for i in range(len(df))], dtype="boolean")
    dup_of, dup_reason, dup_dist, policy = ([None] * len(df) for _ in range(4))
    counts: dict[str, int] = {}
    report = []
    for gid, g in enumerate(sorted(groups, key=min)):
        kept = max(g, key=lambda i: (area[i], size[i], -i))  # highest resolution, largest file, first seen
        for i in g:
            group_col[i] = gid
            policy[i] = DEDUPE_KEEP_POLICY
            if i == kept:
                continue
            keep[i] = False
            dup_of[i] = ids[kept]
            why = next((reason[k] for k in reason if i in k), ("near-duplicate", {}))
            dup_reason[i], dup_dist[i] = why[0], json.dumps(why[1]) if why[1] else None
            counts[why[0]] = counts.get(why[0], 0) + 1
        report.append({"kept": ids[kept], "members": [(ids[i], m.resolve(df["path"].iloc[i]), i == kept, dup_reason[i], dup_dist[i]) for i in g]})
    df["dup_group"], df["dup_keep"], df["dup_of"] = group_col, keep, dup_of
    df["dup_reason"], df["dup_distance"], df["dup_keep_policy"] = dup_reason, dup_dist, policy
    stats = DedupeStats(table, int((df["status"] == "ok").sum()), hashed, len(feats) - hashed + len([e for e in errors]) * 0,
                        len(errors), len(groups), counts)
    return stats, report


def dedupe_pairs(m) -> int:  # noqa: ANN001
    """A pair duplicates another when its human and its article both belong to the other's groups."""
    import pandas as pd

    h = m.humans.set_index("human_id")
    a = m.articles.set_index("article_id")
    p = m.pairs

    def key(table, ident, prefix):  # noqa: ANN001, ANN202
        g = table["dup_group"].get(ident) if ident in table.index else None
        return f"{prefix}g{int(g)}" if g is not None and not pd.isna(g) else f"{prefix}:{ident}"

    keys = [(key(h, hid, "h"), key(a, aid, "a")) for hid, aid in zip(p["human_id"], p["article_id"])]
    first: dict[tuple[str, str], int] = {}
    groups: dict[tuple[str, str], int] = {}
    group_col = pd.array([None] * len(p), dtype="Int64")
    keep = pd.array([True] * len(p), dtype="boolean")
    dup_of: list[str | None] = [None] * len(p)
    # the kept pair is the one whose human and article are both kept (else the first seen)
    hk = h["dup_keep"].fillna(True)
    ak = a["dup_keep"].fillna(True)
    order = sorted(range(len(p)), key=lambda i: (not (bool(hk.get(p["human_id"].iloc[i], True)) and bool(ak.get(p["article_id"].iloc[i], True))), i))
    dups = 0
    for i in order:
        if p["status"].iloc[i] != "ok":
            keep[i] = pd.NA
            continue
        k = keys[i]
        if k in first:
            gid = groups.setdefault(k, len(groups))
            group_col[i] = group_col[first[k]] = gid
            keep[i] = False
            dup_of[i] = p["pair_id"].iloc[first[k]]
            dups += 1
        else:
            first[k] = i
    p["dup_group"], p["dup_keep"], p["dup_of"] = group_col, keep, dup_of
    return dups


def _thumb(path: Path) -> str:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((96, 128))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
        return base64.b64encode(buf.getvalue()).decode()
    except Exception:  # noqa: BLE001
        return ""


def write_report(ds: Path, stats: list[DedupeStats], reports: dict[str, list[dict]], pair_dups: int) -> Path:
    from curate.manifest import atomic_write_bytes

    parts = ["<!doctype html><meta charset='utf-8'><title>dedupe report</title><style>body{font-family:sans-serif}"
             ".g{display:flex;gap:8px;margin:8px 0;padding:6px;border-bottom:1px solid #ddd}.m{font-size:11px;text-align:center}"
             ".k{outline:3px solid #2a2}</style><h1>Duplicate groups</h1><ul>"]
    for s in stats:
        parts.append(f"<li>{s.table}: {s.rows} ok rows, {s.groups} groups, duplicates by reason {html.escape(json.dumps(s.duplicates))}, "
                     f"{s.unreadable} unreadable, {s.hashed} hashed this run</li>")
    parts.append(f"<li>pairs: {pair_dups} duplicate pairs (human and article both duplicates)</li></ul>"
                 "<p>Kept member outlined in green. Nothing was deleted or moved: the manifest carries the decision.</p>")
    for table, groups in reports.items():
        parts.append(f"<h2>{table}</h2>")
        for g in groups[:500]:
            cells = []
            for ident, path, kept, why, dist in g["members"]:
                label = "KEPT" if kept else f"{why} {dist or ''}"
                cells.append(f"<div class='m'><img class='{'k' if kept else ''}' src='data:image/jpeg;base64,{_thumb(path)}'><br>"
                             f"{html.escape(str(ident))}<br>{html.escape(label)}</div>")
            parts.append("<div class='g'>" + "".join(cells) + "</div>")
    out = ds / "reports" / "dedupe.html"
    atomic_write_bytes(out, "\n".join(parts).encode())
    return out


def run_dedupe(ds: Path, on: str = "all", radius: int = DEFAULT_RADIUS, colour_threshold: float = DEFAULT_COLOUR, workers: int = 1):  # noqa: ANN201
    from curate.manifest import Manifest

    if on not in ("articles", "humans", "pairs", "all"):
        raise ValueError(f"--on {on!r}; valid: articles, humans, pairs, all")
    m = Manifest.load(ds)
    tables = ["humans", "articles"] if on in ("all", "pairs") else [on]
    stats, reports = [], {}
    for t in tables:
        s, r = dedupe_table(m, t, radius, colour_threshold, workers)
        stats.append(s)
        reports[t] = r
    pair_dups = dedupe_pairs(m) if on in ("all", "pairs") else 0
    m.save(*tables, *(["pairs"] if on in ("all", "pairs") else []))
    return stats, pair_dups, write_report(Path(ds), stats, reports, pair_dups)


def dedupe_command(
    ds: Path = typer.Argument(..., help="dataset directory written by `curate ingest`"),
    on: str = typer.Option("all", "--on", help="articles | humans | pairs | all (pairs needs humans and articles)"),
    threshold: int = typer.Option(DEFAULT_RADIUS, "--threshold", help="max perceptual-hash Hamming distance (of 64 bits)"),
    colour_threshold: float = typer.Option(DEFAULT_COLOUR, "--colour-threshold", help="max colour-signature distance"),
    workers: int = typer.Option(1, "--workers", min=1, help="hashing processes"),
) -> None:
    """Mark exact and near duplicates (colour-aware) in the manifest and write an HTML report.

    Example: curate dedupe data/ds --on all --workers 2
    """
    from rich.console import Console

    stats, pair_dups, report = run_dedupe(ds, on, threshold, colour_threshold, workers)
    console = Console()
    for s in stats:
        console.print(f"{s.table}: {s.rows} ok rows, {s.hashed} hashed ({s.rows - s.hashed - s.unreadable} from cache), "
                      f"{s.groups} groups, duplicates {s.duplicates or 'none'}, {s.unreadable} unreadable")
    console.print(f"pairs: {pair_dups} duplicates; report: {report}")
