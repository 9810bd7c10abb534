"""`curate dedupe` over the manifest: features (cached), groups, keep policy, pair duplicates, report."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
from pathlib import Path

import typer

from curate.dedupe.core import DuplicateGroups, find_duplicates, stages_line
from curate.dedupe.engine import ENGINES, hash_files
from curate.dedupe.features import DETAIL, EXTRA_HASHES, THUMB, Thumb
from curate.dedupe.verify import Thresholds

FEATURE_VERSION = "thumb-v4"  # bump when curate.dedupe.features changes: cached thumbnails are then recomputed


@dataclasses.dataclass
class DedupeStats:
    table: str
    rows: int
    hashed: int
    cached: int
    unreadable: int
    groups: int
    duplicates: dict[str, int]
    candidates: int = 0
    stages: dict[str, tuple[float, int]] = dataclasses.field(default_factory=dict)  # DuplicateGroups.stages


def _load_cache(path: Path) -> tuple[dict[tuple[str, int, int], Thumb], dict[tuple[str, int, int], str]]:
    """(thumbnail, which imagehash hash its extra_hash holds, "" for none) by (path, size, mtime)."""
    import pandas as pd

    if not path.is_file():
        return {}, {}
    df = pd.read_parquet(path)
    if "version" not in df.columns or (len(df) and df["version"].iloc[0] != FEATURE_VERSION):
        return {}, {}  # written by another feature version: recompute rather than compare unlike thumbnails
    sizes = (THUMB * THUMB * 3, 2 * DETAIL * DETAIL * 2)  # a row of another layout is recomputed, not misread
    rows = [r for r in df.to_dict("records") if (len(r["pixels"]), len(r["detail"])) == sizes]
    key = [(r["path"], int(r["size"]), int(r["mtime_ns"])) for r in rows]
    return ({k: Thumb.from_record(r) for k, r in zip(key, rows)},
            {k: str(r.get("extra_kind") or "") for k, r in zip(key, rows)})


def _features(m, table: str, workers: int, engine: str, extra: str | None = None) -> tuple[list[Thumb | None], dict[int, str], int, int]:  # noqa: ANN001
    """Thumbnails of every ok row (None elsewhere), reasons for unreadable rows, and how many were hashed
    vs taken from the cache (DS/cache/dedupe-<table>.parquet, keyed by (path, size, mtime)). With ``extra``
    (imagehash's phash / dhash) a cached row without that hash is hashed again; the cache keeps the hash of
    the latest run, in ``extra_hash`` beside ``extra_kind``."""
    import pandas as pd

    from curate.manifest import atomic_write_bytes

    df = m.table(table)
    cache_path = m.ds / "cache" / f"dedupe-{table}.parquet"
    cache, cache_kind = _load_cache(cache_path)
    thumbs: list[Thumb | None] = [None] * len(df)
    errors: dict[int, str] = {}
    keys: dict[int, tuple[str, int, int]] = {}
    todo: list[int] = []
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
        if keys[i] in cache and (extra is None or cache_kind.get(keys[i]) == extra):
            thumbs[i] = cache[keys[i]]
        else:
            todo.append(i)
    for i, result in zip(todo, hash_files([keys[i][0] for i in todo], engine, workers, extra)):
        if isinstance(result, str):
            errors[i] = result
        else:
            thumbs[i] = result
    fresh = set(todo)
    kind = {i: (extra if i in fresh else cache_kind.get(keys[i])) or "" for i in keys}
    rows = [{"path": keys[i][0], "size": keys[i][1], "mtime_ns": keys[i][2], "version": FEATURE_VERSION, "extra_kind": kind[i],
             **t.record()} for i, t in enumerate(thumbs) if t is not None]
    buf = io.BytesIO()
    pd.DataFrame(rows, columns=["path", "size", "mtime_ns", "version", "extra_kind", *Thumb.fields()]).to_parquet(buf, index=False)
    atomic_write_bytes(cache_path, buf.getvalue())
    return thumbs, errors, len(todo) - len([i for i in todo if i in errors]), len(keys) - len(todo)


def dedupe_table(m, table: str, thresholds: Thresholds, workers: int, engine: str = "local", search_hash: str = "ours") -> tuple[DedupeStats, list[dict], dict[str, str]]:  # noqa: ANN001
    import pandas as pd

    from curate.schema import DEDUPE_KEEP_POLICY, ID_COLUMN

    df = m.table(table)
    thumbs, errors, hashed, cached = _features(m, table, workers, engine, None if search_hash == "ours" else search_hash)
    paths = [str(m.resolve(p)) for p in df["path"]]
    found = find_duplicates(thumbs, paths, thresholds, search_hash=search_hash, workers=workers)
    link_of = {link.b: link for link in found.links}  # each merge is recorded on the member it brought in
    for link in found.links:
        link_of.setdefault(link.a, link)
    groups = found.groups([i for i, t in enumerate(thumbs) if t is not None])
    # the keep policy: highest resolution, then largest file, then first seen
    area = [t.width * t.height if t else 0 for t in thumbs]
    size = df["size_bytes"].fillna(0).astype("int64").to_numpy()
    ids = df[ID_COLUMN[table]].tolist()
    group_col = pd.array([None] * len(df), dtype="Int64")
    keep = pd.array([pd.NA if thumbs[i] is None else True for i in range(len(df))], dtype="boolean")
    dup_of, dup_reason, dup_dist, policy = ([None] * len(df) for _ in range(4))
    counts: dict[str, int] = {}
    report = []
    groups = sorted(groups, key=min)
    kept_of = [max(g, key=lambda i: (area[i], size[i], -i)) for g in groups]
    reason = {i: _reason(thumbs, found, kept, i) for g, kept in zip(groups, kept_of) for i in g if i != kept}
    near = [(min(i, kept), max(i, kept)) for g, kept in zip(groups, kept_of) for i in g if i != kept and reason[i] == "near-duplicate"]
    to_kept = dict(zip(near, found.distances_of(near)))  # one pass over the views for every near duplicate
    for gid, (g, kept) in enumerate(zip(groups, kept_of)):
        for i in g:
            group_col[i] = gid
            policy[i] = DEDUPE_KEEP_POLICY
            if i == kept:
                continue
            keep[i] = False
            dup_of[i] = ids[kept]
            dup_reason[i] = reason[i]
            if dup_reason[i] == "near-duplicate":
                # distances to the kept member; when i joined through another member (a chain), that edge too
                evidence: dict = {"to_kept": to_kept[(min(i, kept), max(i, kept))]}
                link = link_of.get(i)
                if link is not None and link.kind == "near-duplicate":
                    if kept in (link.a, link.b):  # the link itself: what only its decision measured (tone curve, finer look)
                        evidence["to_kept"] = {**(link.distances or {}), **(evidence["to_kept"] or {})}
                    else:
                        evidence["joined_via"] = {"id": ids[link.a if link.b == i else link.b], **(link.distances or {})}
                dup_dist[i] = json.dumps(evidence)
            counts[dup_reason[i]] = counts.get(dup_reason[i], 0) + 1
        report.append({"kept": ids[kept], "margin": _margin(dup_dist, g, thresholds),
                       "members": [(ids[i], paths[i], i == kept, dup_reason[i], dup_dist[i]) for i in sorted(g, key=lambda i: i != kept)]})
    df["dup_group"], df["dup_keep"], df["dup_of"] = group_col, keep, dup_of
    df["dup_reason"], df["dup_distance"], df["dup_keep_policy"] = dup_reason, dup_dist, policy
    stats = DedupeStats(table, int((df["status"] == "ok").sum()), hashed, cached, len(errors), len(groups), counts, found.candidates, found.stages)
    return stats, report, {ids[i]: e for i, e in errors.items()}


MARGIN_DISTANCES = ("tone", "structure", "shift", "detail", "aspect", "fine_shape", "fine_hue", "fine_hue_region", "fine_edge", "fine_tone", "fine_photo_hue", "fine_photo_far", "fine_far")  # fine_*: a finer look, when one was given


def _margin(dup_dist: list, group: list[int], thresholds: Thresholds) -> float:  # noqa: ANN001
    """How certain a group is: 1 - the largest distance / its threshold over the group's near-duplicate
    evidence (each member to the kept one, and the edge it joined by); 1.0 for byte / pixel copies. A
    member joined through a chain can be further from the kept one than any threshold: below 0."""
    worst = 0.0
    for i in group:
        if not dup_dist[i]:
            continue
        evidence = json.loads(dup_dist[i])
        for d in (evidence.get("to_kept") or {}, evidence.get("joined_via") or {}):
            worst = max([worst, *(value / max(limit, 1e-9) for value, limit in _deciding(d, thresholds))])
    return round(1.0 - worst, 4)


def _deciding(d: dict, thresholds: Thresholds) -> list[tuple[float, float]]:
    """(distance, its threshold) of the measures that decided one link's evidence ``d``. A link one tone curve
    explained exceeds the plain tone or colour shift by design (the curve was fitted because they failed), so it
    is judged by that curve's distances instead: the thumbnails' when they held, else the finer look's; a pair
    the rescue joined by its shape allowance is judged against that allowance."""
    limits = {name: float(getattr(thresholds, name)) for name in MARGIN_DISTANCES}
    # the finer look's curve is measured on every product link it looked at, but decides only where the
    # thumbnails' curve failed
    names = [n for n in MARGIN_DISTANCES if n != "fine_tone"]
    if d.get("tone", 0.0) > thresholds.tone or d.get("shift", 0.0) > thresholds.shift:  # a curve decided
        names = [n for n in names if n not in ("tone", "shift")]
        if d.get("tonal_tone", math.inf) <= thresholds.tone and d.get("tonal_shift", math.inf) <= thresholds.tonal_shift:
            names += ["tonal_tone", "tonal_shift"]
            limits.update(tonal_tone=thresholds.tone, tonal_shift=thresholds.tonal_shift)
        else:
            names += ["fine_tone", "fine_tone_shift"]
            limits["fine_tone_shift"] = thresholds.fine_tone_shift
    if "fine_photo_far" in d or ("fine_tone" in d and d.get("structure", 0.0) > thresholds.structure):
        limits["structure"] = max(thresholds.structure, thresholds.fine_rescue_structure)  # a rescued crop
    return [(float(d[n]), limits[n]) for n in names if n in d]


def _reason(thumbs: list[Thumb | None], found: DuplicateGroups, kept: int, i: int) -> str:
    """The strongest evidence tying member i to the kept member: its bytes, its pixels, else its looks."""
    if thumbs[kept].sha256 == thumbs[i].sha256:  # type: ignore[union-attr]
        return "exact-bytes"
    if found.same_pixels(kept, i):  # the pixel hashes find_duplicates computed: no second full decode
        return "same-pixels"
    return "near-duplicate"


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


def _thumb(path: str | Path) -> str:
    """The base64 JPEG of one report image, upright, fitted into REPORT_SIDE * 3/4 x REPORT_SIDE; "" when
    it cannot be read. JPEGs are decoded at the largest libjpeg reduction that still covers that box (a
    1024x768 file at 1/4), so drawing a group costs about what hashing it did, not a full decode."""
    import cv2
    from PIL import Image

    from curate.imageio import SCALED_DECODE_FACTORS, decode_scaled, jpeg_orientation, oriented_size

    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as im:  # header only
            w, h = oriented_size(im.size, jpeg_orientation(data))  # decode_scaled turns the image upright
        scale = min(REPORT_SIDE * 3 // 4 / w, REPORT_SIDE / h, 1.0)
        rgb = decode_scaled(data, max(k for k in SCALED_DECODE_FACTORS if k * scale <= 1.0))
        if rgb is None:
            return ""
        dh, dw = rgb.shape[:2]
        size = (max(1, min(dw, round(w * scale))), max(1, min(dh, round(h * scale))))
        if size != (dw, dh):
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        return base64.b64encode(buf.tobytes()).decode() if ok else ""
    except Exception:  # noqa: BLE001 - a report image that cannot be drawn is left blank, never a crash
        return ""


def _distance_label(dist: str | None) -> str:
    if not dist:
        return ""
    d = json.loads(dist)
    k = d.get("to_kept") or {}
    text = " ".join(f"{name} {k[name]}" for name in ("hash", *MARGIN_DISTANCES) if name in k)
    if "joined_via" in d:
        text += f" (joined via {d['joined_via']['id']})"
    return text


REPORT_GROUPS = 500  # groups drawn per table; the manifest has them all
REPORT_SIDE = 256  # px, the long side of each drawn image: large enough to judge a near duplicate by eye


def write_report(ds: Path, stats: list[DedupeStats], reports: dict[str, list[dict]], pair_dups: int, errors: dict[str, dict[str, str]],
                 workers: int = 1) -> Path:
    """DS/reports/dedupe.html; its images are drawn on ``workers`` processes."""
    from curate.dedupe.engine import map_local
    from curate.manifest import atomic_write_bytes

    drawn = {table: sorted(groups, key=lambda g: g.get("margin", 1.0))[:REPORT_GROUPS] for table, groups in reports.items()}
    paths = [path for groups in drawn.values() for g in groups for _, path, *_ in g["members"]]
    images = iter(map_local(_thumb, paths, workers))

    parts = ["<!doctype html><meta charset='utf-8'><title>dedupe report</title><style>body{font-family:sans-serif;margin:16px}"
             ".g{display:flex;gap:8px;margin:8px 0;padding:6px;border-bottom:1px solid #ddd;align-items:flex-start}"
             ".m{font-size:11px;text-align:center;max-width:260px;word-break:break-all}.c{flex:none}.k{outline:3px solid #2a2}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style>"
             "<h1>Duplicate groups</h1><table><tr><th>table</th><th>ok rows</th><th>groups</th><th>exact bytes</th>"
             "<th>same pixels</th><th>near duplicates</th><th>unreadable</th><th>hashed this run</th><th>from cache</th></tr>"]
    for s in stats:
        d = s.duplicates
        parts.append(f"<tr><td>{s.table}</td><td>{s.rows}</td><td>{s.groups}</td><td>{d.get('exact-bytes', 0)}</td>"
                     f"<td>{d.get('same-pixels', 0)}</td><td>{d.get('near-duplicate', 0)}</td><td>{s.unreadable}</td>"
                     f"<td>{s.hashed}</td><td>{s.cached}</td></tr>")
    parts.append(f"</table><p>Pairs: {pair_dups} duplicate pairs (their human and their article are both duplicates).</p>"
                 "<p>The kept member of each group is first and outlined in green; under the others, why they are duplicates "
                 "and their distances to the kept one. Groups are sorted least certain first (certainty = 1 - the largest "
                 "distance / its threshold over the group's evidence; byte and pixel copies are 1): check the top ones. "
                 "Nothing was deleted or moved: the manifest carries the decision.</p>")
    for table, groups in reports.items():
        parts.append(f"<h2>{table}: {len(groups)} groups</h2>")
        if len(groups) > REPORT_GROUPS:
            parts.append(f"<p>The first {REPORT_GROUPS} groups are drawn; all are in the manifest.</p>")
        for g in drawn[table]:
            cells = [f"<div class='m c'>certainty<br><b>{g.get('margin', 1.0):.2f}</b></div>"]
            for ident, _path, kept, why, dist in g["members"]:
                label = "KEPT" if kept else f"{why}<br>{html.escape(_distance_label(dist))}"
                cells.append(f"<div class='m'><img class='{'k' if kept else ''}' src='data:image/jpeg;base64,{next(images)}'><br>"
                             f"{html.escape(str(ident))}<br>{label}</div>")
            parts.append("<div class='g'>" + "".join(cells) + "</div>")
        if errors.get(table):
            parts.append(f"<h3>{table}: unreadable (skipped)</h3><ul>")
            parts += [f"<li>{html.escape(str(k))}: {html.escape(v)}</li>" for k, v in errors[table].items()]
            parts.append("</ul>")
    out = ds / "reports" / "dedupe.html"
    atomic_write_bytes(out, "\n".join(parts).encode())
    return out


SEARCH_HASHES = ("ours", *EXTRA_HASHES)


def run_dedupe(ds: Path, on: str = "all", thresholds: Thresholds = Thresholds(), workers: int = 1, engine: str = "local",  # noqa: ANN201
               search_hash: str = "ours"):
    from curate.manifest import Manifest

    if on not in ("articles", "humans", "pairs", "all"):
        raise ValueError(f"--on {on!r}; valid: articles, humans, pairs, all")
    if search_hash not in SEARCH_HASHES:
        raise ValueError(f"--hash {search_hash!r}; valid: {', '.join(SEARCH_HASHES)}")
    if search_hash != "ours":
        try:
            import imagehash  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(f"--hash {search_hash} needs imagehash: pip install 'tryon-bench[hashes]'") from exc
    if engine not in ENGINES:
        raise ValueError(f"--engine {engine!r}; valid: {', '.join(ENGINES)}")
    m = Manifest.load(ds)
    tables = ["humans", "articles"] if on in ("all", "pairs") else [on]
    stats, reports, errors = [], {}, {}
    for t in tables:
        s, r, e = dedupe_table(m, t, thresholds, workers, engine, search_hash)
        stats.append(s)
        reports[t] = r
        errors[t] = e
    pair_dups = dedupe_pairs(m) if on in ("all", "pairs") else 0
    m.save(*tables, *(["pairs"] if on in ("all", "pairs") else []))
    return stats, pair_dups, write_report(Path(ds), stats, reports, pair_dups, errors, workers if engine == "local" else 1)


_D = Thresholds()


def dedupe_command(
    ds: Path = typer.Argument(..., help="dataset directory written by `curate ingest`"),
    on: str = typer.Option("all", "--on", help="articles | humans | pairs | all (pairs needs humans and articles)"),
    threshold: int = typer.Option(_D.radius, "--threshold", min=0, max=32, help="candidate search radius: max Hamming distance of the 64-bit hashes"),
    tone: float = typer.Option(_D.tone, "--tone-threshold", help="max mean |log-RGB difference| after the common brightness offset"),
    structure: float = typer.Option(_D.structure, "--structure-threshold", help="max 1 - correlation of the grey thumbnails"),
    colour: float = typer.Option(_D.shift, "--colour-threshold", help="max mean chromaticity shift (colourways are above it)"),
    detail: float = typer.Option(_D.detail, "--detail-threshold", help="max difference of fine-pattern energy"),
    aspect: float = typer.Option(_D.aspect, "--aspect-threshold", help="max |log ratio| of the contents' width / height"),
    colour_tolerance: float = typer.Option(_D.colour_tolerance, "--colour-tolerance", min=0.0,
                                           help="extra colour shift forgiven per unit of contrast change (within --contrast-range): "
                                                "higher keeps contrast/gamma-edited copies together, lower keeps darker/lighter "
                                                "colourways apart; 0 = the colour check ignores contrast"),
    contrast_range: float = typer.Option(_D.contrast_range, "--contrast-range", min=0.0,
                                         help="|log contrast ratio| up to which --colour-tolerance applies"),
    tonal: bool = typer.Option(_D.tonal, "--tone-curve/--no-tone-curve",
                               help="also accept a pair that one global tone curve explains (brightness, contrast, gamma edits)"),
    tonal_gamma: float = typer.Option(_D.tonal_gamma, "--tonal-gamma", min=0.0,
                                      help="the shade knob: max |log gamma| of the tone curve. A gamma edit keeps the background "
                                           "and darkens or lightens the product, as a shade colourway does: lower keeps more shades "
                                           "apart and loses more gamma-edited copies (docs/benchmarks/dedupe.md)"),
    tonal_contrast: float = typer.Option(_D.tonal_contrast, "--tonal-contrast", min=0.0,
                                         help="the lightness knob: max |log contrast ratio| of a pair the tone curve may join. Higher "
                                              "keeps strongly edited copies together and merges darker/lighter colourways of one "
                                              "product on a plain background; lower keeps them apart (docs/benchmarks/dedupe.md)"),
    local: float = typer.Option(_D.local, "--local-colour-threshold", min=0.0,
                                help="max hue turn of the most changed cells (a recoloured print is above it)"),
    fine: bool = typer.Option(_D.fine, "--fine-check/--no-fine-check",
                              help="look again at links between two products on plain backgrounds at 256 px: refuses near "
                                   "twins (a sleeve or hem a few per cent longer) and recoloured prints; costs a decode each"),
    fine_shape: float = typer.Option(_D.fine_shape, "--fine-shape-threshold", min=0.0, max=1.0,
                                     help="max share of outline points off the other product's outline"),
    fine_hue: float = typer.Option(_D.fine_hue, "--fine-hue-threshold", min=0.0, max=1.0,
                                   help="max share of the product's pixels with a turned hue"),
    fine_hue_region: float = typer.Option(_D.fine_hue_region, "--fine-hue-region-threshold", min=0.0, max=1.0,
                                          help="max share of the product in one region whose hue turned against the rest "
                                               "(a print recoloured by 15-28 degrees); 1 turns the test off"),
    fine_saturation_jump: float = typer.Option(_D.fine_saturation_jump, "--fine-saturation-jump", min=0.0,
                                               help="a pixel whose saturation moved this much (of 255) more than the product's "
                                                    "typical move joins the hue region (a nearly grey print given a colour); inf "
                                                    "turns it off"),
    fine_edge: float = typer.Option(_D.fine_edge, "--fine-edge-threshold", min=0.0,
                                    help="with --fine-check, max mean offset in pixels (at 768 px) of a stretch of one product's "
                                         "edges from the other's, located at the file's resolution: a near twin whose seam "
                                         "or gap moved 1-2 px; inf turns the test off (it decodes each product again)"),
    fine_joint_levels: bool = typer.Option(_D.fine_joint_levels, "--fine-joint-levels/--no-fine-joint-levels",
                                           help="with --fine-check, take two products' outlines that disagree again at 0.35 and "
                                                "0.65 of their colour: joins copies whose pale band or trim crossed the edge level, "
                                                "and merges more print recolours (docs/benchmarks/dedupe.md, sixteenth round)"),
    fine_curve: bool = typer.Option(_D.fine_curve, "--fine-curve/--no-fine-curve",
                                    help="with --fine-check, fit the tone curve again on the aligned pixels of two products whose "
                                         "thumbnail fit failed, and join them when it holds (strongly edited copies)"),
    fine_tone: float = typer.Option(_D.fine_tone, "--fine-tone-threshold", min=0.0,
                                    help="max distance from that finer tone curve"),
    fine_far: float = typer.Option(_D.fine_far, "--fine-changed-threshold", min=0.0, max=1.0,
                                   help="with --fine-check, max share of two products' aligned values that one tone curve leaves "
                                        "changed (by more than 20 of 255): a lightness colourway, a recoloured region"),
    fine_photos: bool = typer.Option(_D.fine_photos, "--fine-photo-check/--no-fine-photo-check",
                                     help="with --fine-check, also look again at links between photos (no plain background): "
                                          "aligns the two by keypoints and refuses a garment recoloured in the same shot"),
    fine_photo_hue: float = typer.Option(_D.fine_photo_hue, "--fine-photo-hue-threshold", min=0.0, max=1.0,
                                         help="max share of two aligned photos' overlap with a turned hue"),
    fine_rescue: bool = typer.Option(_D.fine_rescue, "--fine-rescue/--no-fine-rescue",
                                     help="with --fine-check, align pixel by pixel the pairs the thumbnails refused whose colour "
                                          "held and whose shape moved no more than a crop does (a cropped photo, a strongly edited "
                                          "product), and join those one tone curve explains"),
    fine_photo_far: float = typer.Option(_D.fine_photo_far, "--fine-photo-changed-threshold", min=0.0, max=1.0,
                                         help="max share of the aligned values that tone curve leaves changed, for such a pair to join"),
    fine_rescue_shift: float = typer.Option(_D.fine_rescue_shift, "--fine-rescue-shift", min=0.0, max=1.0,
                                            help="with --fine-rescue, max thumbnail colour shift of a refused pair (products and photos) for "
                                                 "the rescue to look at it: higher joins more strongly tone-edited copies and more colour twins "
                                                 "(docs/benchmarks/dedupe.md: 0.12 on the tuning sets), and costs time"),
    curve_bridges: bool = typer.Option(_D.curve_bridges, "--curve-bridges/--no-curve-bridges",
                                       help="let a tone-curve link join two groups when most pairs across them (--bridge-agreement) are "
                                            "links that stood (several edited copies of one original); off: it only brings single images in"),
    bridge_agreement: float = typer.Option(_D.bridge_agreement, "--bridge-agreement", min=0.0, max=1.0,
                                           help="with --curve-bridges, the share of the pairs across the two groups that must be "
                                                "links that stood (1 = every pair): lower joins more edited copies' groups and more "
                                                "shades of one cut"),
    link_agreement: float = typer.Option(_D.link_agreement, "--link-agreement", min=0.0, max=1.0,
                                         help="the same share for a link accepted without a tone curve, when it would join two "
                                              "groups of several images (0 = join at once, single linkage)"),
    workers: int = typer.Option(1, "--workers", min=1, help="hashing processes (local) or CPUs (a local Ray)"),
    engine: str = typer.Option("local", "--engine", help=f"hashing engine: {' | '.join(ENGINES)} (ray needs tryon-bench[distributed])"),
    search_hash: str = typer.Option("ours", "--hash", help="candidate hash: ours (measures best, docs/benchmarks/dedupe.md) | "
                                    "phash | dhash (imagehash's, to compare with a pHash / dHash baseline; --threshold is then "
                                    "their Hamming radius); verification, grouping, manifest and report are the same"),
) -> None:
    """Mark exact and near duplicates (colour-aware) in the manifest and write an HTML report.

    Example: curate dedupe data/ds --on all --workers 2
    """
    from rich.console import Console

    console = Console()
    try:
        stats, pair_dups, report = run_dedupe(ds, on, dataclasses.replace(Thresholds(threshold, tone, structure, colour, detail, aspect, colour_tolerance, contrast_range),
                                                                   tonal=tonal, tonal_contrast=tonal_contrast, tonal_gamma=tonal_gamma, local=local,
                                                                   fine=fine, fine_shape=fine_shape, fine_hue=fine_hue, fine_hue_region=fine_hue_region,
                                                                   fine_saturation_jump=fine_saturation_jump, fine_edge=fine_edge,
                                                                   fine_joint_levels=fine_joint_levels,
                                                                   fine_curve=fine_curve, fine_tone=fine_tone, fine_far=fine_far,
                                                                   fine_photos=fine_photos, fine_photo_hue=fine_photo_hue,
                                                                   fine_rescue=fine_rescue, fine_photo_far=fine_photo_far,
                                                                   fine_rescue_shift=fine_rescue_shift,
                                                                   curve_bridges=curve_bridges, bridge_agreement=bridge_agreement,
                                                                   link_agreement=link_agreement),
                                              workers, engine,
                                              search_hash)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    for s in stats:
        console.print(f"{s.table}: {s.rows} ok rows, {s.hashed} hashed, {s.cached} from cache, {s.unreadable} unreadable; "
                      f"{s.groups} groups, duplicates {s.duplicates or 'none'} ({s.candidates} candidate pairs verified)")
        if s.stages:  # where the grouping's time went: --no-fine-rescue / --no-fine-check trade recall for the looks' share
            console.print(f"  grouping: {stages_line(s.stages)}")
    console.print(f"pairs: {pair_dups} duplicates; report: {report}")
