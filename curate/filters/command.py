"""`curate filter DS`: run the filters over a manifest's pairs and write the ``filter_*`` columns.

Only the pairs table's ``filter_*`` columns are written; nothing is dropped and no source file is
touched. Pairs that ingest rejected are not evaluated (their columns stay null and the evidence says
why). Heavy imports (numpy work, OpenCV, MediaPipe) happen inside the functions so `--help` is instant.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

import typer

if TYPE_CHECKING:
    import pandas as pd

    from curate.filters.pipeline import FilterOptions, PairResult, PairTask
    from curate.manifest import Manifest


def _clean(v: object) -> object | None:
    """A manifest cell as a plain value: pandas' NA/NaN become None; lists/arrays are kept."""
    import pandas as pd

    if v is None or isinstance(v, (list, tuple)) or hasattr(v, "__array__"):
        return v
    return None if pd.isna(v) else v


def _columns(df: "pd.DataFrame", key: str, cols: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """Rows by id as plain dicts of only ``cols`` (absent columns read as None): a dict lookup per pair
    instead of a pandas ``.loc`` (~30x faster), and only the cells the tasks need are converted."""
    n = len(df)
    values = {c: [_clean(v) for v in df[c].tolist()] if c in df.columns else [None] * n for c in cols}
    return {str(k): {c: values[c][i] for c in cols} for i, k in enumerate(df[key].tolist())}


def build_tasks(m: "Manifest", pairs: "pd.DataFrame | None" = None) -> list["PairTask"]:
    """One PairTask per pair (all pairs, or the given subset), with absolute paths resolved."""
    from curate.filters.pipeline import PairTask

    pairs = m.pairs if pairs is None else pairs
    humans = _columns(m.humans, "human_id", ("path", "width", "height", "labelmap_path", "label_set", "keypoints"))
    articles = _columns(m.articles, "article_id", ("path", "cloth_mask_path", "category"))

    def path(row: dict[str, object] | None, col: str) -> str | None:
        rel = row.get(col) if row is not None else None
        return str(m.resolve(str(rel))) if rel is not None else None

    tasks: list[PairTask] = []
    for pid, p in _columns(pairs, "pair_id", ("human_id", "article_id", "category", "paired")).items():
        h = humans.get(str(p["human_id"]))
        a = articles.get(str(p["article_id"])) if p.get("article_id") is not None else None
        kps = h.get("keypoints") if h is not None else None
        w = h.get("width") if h is not None else None
        hh = h.get("height") if h is not None else None
        tasks.append(
            PairTask(
                pair_id=pid,
                human_path=path(h, "path"),
                human_size=(int(w), int(hh)) if w is not None and hh is not None else None,  # type: ignore[call-overload]
                labelmap_path=path(h, "labelmap_path"),
                label_set=str(h["label_set"]) if h is not None and h.get("label_set") is not None else None,
                keypoints=tuple(float(x) for x in kps) if kps is not None else None,  # type: ignore[union-attr]
                article_path=path(a, "path"),
                cloth_mask_path=path(a, "cloth_mask_path"),
                article_category=str(a.get("category") or "unknown") if a is not None else "unknown",
                pair_category=str(p.get("category") or "unknown"),
                paired=bool(p.get("paired") or False),
            )
        )
    return tasks


# ---- workers -------------------------------------------------------------------------------------------
_WORKER: dict[str, object] = {}


def _init_worker(opts: "FilterOptions") -> None:
    from curate.filters.detectors import PoseDetector

    _WORKER["opts"] = opts
    _WORKER["detector"] = PoseDetector(opts.detector_max_side) if opts.detectors else None


def _run_one(task: "PairTask") -> "PairResult":
    from curate.filters.pipeline import evaluate_pair

    return evaluate_pair(task, _WORKER["opts"], _WORKER["detector"])  # type: ignore[arg-type]


def run_tasks(tasks: list["PairTask"], opts: "FilterOptions", workers: int = 1) -> Iterator["PairResult"]:
    """Evaluate tasks in order, in this process (workers <= 1) or a spawn pool of ``workers`` processes."""
    if workers <= 1 or len(tasks) < 2:
        _init_worker(opts)
        try:
            for t in tasks:
                yield _run_one(t)
        finally:
            det = _WORKER.get("detector")
            if det is not None:
                det.close()  # type: ignore[attr-defined]
        return
    import multiprocessing as mp

    # Without detectors, fork: a spawned worker re-imports pandas/pyarrow/OpenCV (~2.5 s CPU each,
    # measured), longer than a few hundred annotated pairs take. With detectors, never fork this process:
    # a forked child that builds a MediaPipe graph after its parent had one crashes in malloc (seen in the
    # benchmark). A forkserver is a clean process that imports the modules once (never running a graph)
    # and forks the workers from there, so each still builds its own graph without paying the imports.
    methods = mp.get_all_start_methods()
    if not opts.detectors and "fork" in methods:
        ctx = mp.get_context("fork")
    elif "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["curate.filters.pipeline", "curate.filters.command", "mediapipe"])
    else:
        ctx = mp.get_context("spawn")
    chunk = max(1, min(64, len(tasks) // (workers * 8)))
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # ProcessPoolExecutor, not multiprocessing.Pool: when a worker dies (a native crash in a decoder or
    # in MediaPipe) the executor raises BrokenProcessPool instead of waiting forever for its results.
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(opts,)) as pool:
            yield from pool.map(_run_one, tasks, chunksize=chunk)
    except BrokenProcessPool as exc:
        raise RuntimeError(
            f"a filter worker process died ({exc}); rerun with --workers 1 to see which pair crashes it"
        ) from exc


def apply_filters(ds: Path, opts: "FilterOptions", workers: int = 1) -> "pd.DataFrame":
    """Run the filters on every ingest-ok pair of ``DS`` and save the pairs table. Returns the pairs."""
    from curate.manifest import Manifest
    from curate.schema import Status

    m = Manifest.load(ds)
    pairs = m.pairs
    ok = pairs["status"] == Status.OK.value
    tasks = build_tasks(m, pairs[ok])
    results = {r.pair_id: r for r in run_tasks(tasks, opts, workers)}
    out = {c: [] for c in ("filter_back_view", "filter_lower_only", "filter_extra_garments", "filter_evidence", "filter_reason")}
    for pid, status in zip(pairs["pair_id"], pairs["status"]):
        r = results.get(str(pid))
        if r is None:
            out["filter_back_view"].append(None)
            out["filter_lower_only"].append(None)
            out["filter_extra_garments"].append(None)
            out["filter_evidence"].append(json.dumps({"skipped": f"ingest status {status}"}))
            out["filter_reason"].append(None)
            continue
        out["filter_back_view"].append(r.back_view.verdict if r.back_view else None)
        out["filter_lower_only"].append(r.lower_only.verdict if r.lower_only else None)
        out["filter_extra_garments"].append(r.extra_garments.verdict if r.extra_garments else None)
        out["filter_evidence"].append(r.evidence())
        out["filter_reason"].append(r.reason)
    for col, values in out.items():
        pairs[col] = values
    m.pairs = pairs
    m.save("pairs")
    return pairs


def verdict_counts(pairs: "pd.DataFrame") -> dict[str, dict[str, int]]:
    """Counts of each verdict per filter column and of the rejection reasons (null reason = kept)."""
    out: dict[str, dict[str, int]] = {}
    for col in ("filter_back_view", "filter_lower_only", "filter_extra_garments"):
        out[col] = {str(k): int(v) for k, v in pairs[col].astype("object").fillna("(not run)").value_counts().items()}
    out["filter_reason"] = {str(k): int(v) for k, v in pairs["filter_reason"].astype("object").fillna("kept").value_counts().items()}
    return out


def explain(ds: Path, pair_id: str, opts: "FilterOptions") -> str:
    """Why a pair was kept or rejected: the stored verdicts and evidence, or computed now if never run."""
    from curate.filters.pipeline import evaluate_pair
    from curate.filters.detectors import PoseDetector
    from curate.manifest import Manifest

    m = Manifest.load(ds)
    sel = m.pairs[m.pairs["pair_id"] == pair_id]
    if sel.empty:
        near = m.pairs["pair_id"].astype(str)
        hint = near[near.str.contains(pair_id.split("/")[-1][:6], regex=False)].head(5).tolist()
        raise typer.BadParameter(f"no pair {pair_id!r} in {ds}" + (f"; similar ids: {hint}" if hint else ""))
    row = sel.iloc[0]
    row = {k: _clean(v) for k, v in row.items()}
    stored = row.get("filter_evidence")
    lines = [f"pair {pair_id}  (human {row['human_id']}, article {row.get('article_id')}, category {row['category']})"]
    if stored is not None:
        ev = json.loads(str(stored))
        reason = row.get("filter_reason")
        lines.append(f"stored verdict: {'REJECTED: ' + str(reason) if reason else 'kept'}")
    else:
        task = build_tasks(m, sel)[0]
        det = PoseDetector(opts.detector_max_side) if opts.detectors else None
        r = evaluate_pair(task, opts, det)
        ev = json.loads(r.evidence())
        lines.append(f"not filtered yet; computed now with the given options: {'REJECTED: ' + r.reason if r.reason else 'kept'}")
    lines.extend(format_evidence(ev))
    return "\n".join(lines)


def format_evidence(ev: dict) -> list[str]:
    """Readable lines for one pair's evidence JSON."""
    lines: list[str] = []
    if "skipped" in ev:
        return [f"  not evaluated: {ev['skipped']}"]
    for name in ("back_view", "lower_only", "extra_garments"):
        v = ev.get(name)
        if v is None:
            lines.append(f"  {name}: disabled")
            continue
        lines.append(f"  {name}: {v['verdict']}  [evidence: {v['source']}]")
        if v.get("signals"):
            lines.append(f"      signals: {', '.join(v['signals'])}")
        if v.get("scores"):
            lines.append("      scores:  " + ", ".join(f"{k}={val}" for k, val in v["scores"].items()))
        if v.get("detail"):
            lines.append(f"      detail:  {v['detail']}")
    for note in ev.get("notes") or []:
        lines.append(f"  note: {note}")
    return lines


def filter_command(
    ds: Path = typer.Argument(..., help="dataset directory written by `curate ingest` (holds manifest/)"),
    back_views: bool = typer.Option(True, "--back-views/--no-back-views", help="reject people turned away"),
    lower_only_products: bool = typer.Option(
        True, "--lower-only-products/--no-lower-only-products", help="reject lower-body products on people who wear a top"
    ),
    extra_garments: bool = typer.Option(
        True, "--extra-garments/--no-extra-garments", help="reject people wearing garments the product lacks"
    ),
    reject_side_views: bool = typer.Option(False, "--reject-side-views/--keep-side-views", help="also reject side views"),
    detectors: bool = typer.Option(
        True, "--detectors/--no-detectors", help="fall back to MediaPipe pose+segmentation where annotations are missing"
    ),
    explain_pair: Optional[str] = typer.Option(None, "--explain", metavar="PAIR_ID", help="print why one pair was kept or rejected"),
    workers: int = typer.Option(1, "--workers", min=1, help="processes (each loads its own detector)"),
    detector_max_side: int = typer.Option(512, help="images are resized to this longer side for the detectors"),
    min_keypoint_conf: float = typer.Option(0.3, help="keypoint confidence/visibility at which a joint counts as seen"),
    side_max_shoulder_ratio: float = typer.Option(0.35, help="|shoulder span| / torso length below which a view is side"),
    back_max_face_fraction: float = typer.Option(0.05, help="face/(face+hair) pixels below which parsing says back"),
    garment_min_area: float = typer.Option(0.02, help="fraction of the person's pixels for a garment label to count"),
    scarf_min_area: float = typer.Option(0.008, help="fraction of the person's pixels for a scarf to count"),
    layer_min_delta_e: float = typer.Option(15.0, help="CIELAB distance from the garment edges for an open outer layer"),
    layer_min_row_fraction: float = typer.Option(0.5, help="fraction of torso rows that must look layered"),
    legs_min_row_fraction: float = typer.Option(0.45, help="fraction of the product mask's lower rows split into two legs"),
) -> None:
    """Flag back/side views, lower-body-only products and extra garments; write filter_* columns, drop nothing.

    Evidence, most trusted first: the dataset's parsing and pose, category metadata, the article mask's
    shape, then MediaPipe pose + person segmentation (only where annotations are missing or undecided).

    Example: curate filter data/ds --workers 2 && curate filter data/ds --explain train/00001_00
    """
    from rich.console import Console
    from rich.table import Table

    from curate.filters.pipeline import FilterOptions
    from curate.filters.thresholds import Thresholds
    from curate.manifest import ManifestError

    th = Thresholds(
        min_keypoint_conf=min_keypoint_conf,
        side_max_shoulder_ratio=side_max_shoulder_ratio,
        back_max_face_fraction=back_max_face_fraction,
        garment_min_area=garment_min_area,
        scarf_min_area=scarf_min_area,
        layer_min_delta_e=layer_min_delta_e,
        layer_min_row_fraction=layer_min_row_fraction,
        legs_min_row_fraction=legs_min_row_fraction,
    )
    opts = FilterOptions(
        back_views=back_views,
        lower_only_products=lower_only_products,
        extra_garments=extra_garments,
        reject_side_views=reject_side_views,
        detectors=detectors,
        detector_max_side=detector_max_side,
        thresholds=th,
    )
    console = Console()
    try:
        if explain_pair is not None:
            typer.echo(explain(ds, explain_pair, opts))  # plain: long evidence lines must not be re-wrapped
            return
        start = time.perf_counter()
        pairs = apply_filters(ds, opts, workers)
    except ManifestError as exc:
        raise typer.BadParameter(str(exc)) from exc
    except RuntimeError as exc:  # a dead worker process: say so instead of a traceback
        console.print(f"[red]curate filter failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    elapsed = time.perf_counter() - start
    counts = verdict_counts(pairs)
    table = Table(title=f"curate filter: {len(pairs)} pairs in {elapsed:.1f} s ({len(pairs) / max(elapsed, 1e-9):.0f} pairs/s)")
    table.add_column("column")
    table.add_column("value")
    table.add_column("pairs", justify="right")
    for col, c in counts.items():
        for k, n in sorted(c.items(), key=lambda kv: -kv[1]):
            table.add_row(col, k, str(n))
    console.print(table)
    console.print(f"explain one: curate filter {ds} --explain PAIR_ID")


