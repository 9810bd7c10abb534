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

    from curate.filters.pipeline import FilterOptions, PersonResult, PersonTask
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


def build_tasks(m: "Manifest", pairs: "pd.DataFrame | None" = None, humans: "pd.DataFrame | None" = None) -> list["PersonTask"]:
    """One PersonTask per person with their pairs, absolute paths resolved.

    ``pairs`` (default: all pairs) are grouped by person; ``humans`` (default: every ingest-ok human) are
    judged even without a pair (a humans-only dataset). A pair whose human is not among them still gets a
    task of its own, with no person inputs (its verdicts then say what was missing).
    """
    from curate.filters.pipeline import PairSpec, PersonTask
    from curate.schema import Status

    pairs = m.pairs if pairs is None else pairs
    if humans is None:
        humans = m.humans[m.humans["status"] == Status.OK.value]
    hrows = _columns(humans, "human_id", ("path", "width", "height", "labelmap_path", "label_set", "keypoints"))
    all_humans = _columns(m.humans, "human_id", ("path", "width", "height", "labelmap_path", "label_set", "keypoints"))
    articles = _columns(m.articles, "article_id", ("path", "cloth_mask_path", "category"))

    def path(row: dict[str, object] | None, col: str) -> str | None:
        rel = row.get(col) if row is not None else None
        return str(m.resolve(str(rel))) if rel is not None else None

    specs: dict[str, list] = {hid: [] for hid in hrows}
    for pid, p in _columns(pairs, "pair_id", ("human_id", "article_id", "category", "paired")).items():
        a = articles.get(str(p["article_id"])) if p.get("article_id") is not None else None
        spec = PairSpec(
            pair_id=pid,
            article_path=path(a, "path"),
            cloth_mask_path=path(a, "cloth_mask_path"),
            article_category=str(a.get("category") or "unknown") if a is not None else "unknown",
            pair_category=str(p.get("category") or "unknown"),
            paired=bool(p.get("paired") or False),
        )
        specs.setdefault(str(p["human_id"]), []).append(spec)

    tasks: list[PersonTask] = []
    for hid, its_pairs in specs.items():
        h = hrows.get(hid, all_humans.get(hid))
        kps = h.get("keypoints") if h is not None else None
        w = h.get("width") if h is not None else None
        hh = h.get("height") if h is not None else None
        tasks.append(
            PersonTask(
                human_id=hid,
                human_path=path(h, "path"),
                human_size=(int(w), int(hh)) if w is not None and hh is not None else None,  # type: ignore[call-overload]
                labelmap_path=path(h, "labelmap_path"),
                label_set=str(h["label_set"]) if h is not None and h.get("label_set") is not None else None,
                keypoints=tuple(float(x) for x in kps) if kps is not None else None,  # type: ignore[union-attr]
                pairs=tuple(its_pairs),
            )
        )
    return tasks


# ---- workers -------------------------------------------------------------------------------------------
_WORKER: dict[str, object] = {}


def _init_worker(opts: "FilterOptions") -> None:
    from curate.filters.detectors import PoseDetector

    _WORKER["opts"] = opts
    _WORKER["detector"] = PoseDetector(opts.detector_max_side) if opts.detectors else None
    _WORKER["parser"] = load_parser(opts)


def _init_pool_worker(opts: "FilterOptions") -> None:
    from curate.ingest.engine import exit_with_parent

    exit_with_parent()  # a SIGKILLed `curate filter` leaves no MediaPipe processes behind
    _init_worker(opts)


def load_parser(opts: "FilterOptions") -> object | None:
    """The clothes parser named by ``opts.parser`` (one per process), single-threaded inside a worker pool."""
    if opts.parser is None:
        return None
    from curate.filters.parser import ClothesParser

    return ClothesParser(opts.parser)


def _run_one(task: "PersonTask") -> "PersonResult":
    from curate.filters.pipeline import evaluate_person

    return evaluate_person(task, _WORKER["opts"], _WORKER["detector"], _WORKER["parser"])  # type: ignore[arg-type]


def run_tasks(tasks: list["PersonTask"], opts: "FilterOptions", workers: int = 1) -> Iterator["PersonResult"]:
    """Judge each person and their pairs, in order, in this process (workers <= 1) or a pool of ``workers``."""
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
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_pool_worker, initargs=(opts,)) as pool:
            yield from pool.map(_run_one, tasks, chunksize=chunk)
    except BrokenProcessPool as exc:
        raise RuntimeError(
            f"a filter worker process died ({exc}); rerun with --workers 1 to see which pair crashes it"
        ) from exc


PERSON_COLUMNS = ("filter_view", "filter_upper_garments", "filter_upper_count", "filter_layered", "filter_scarf",
                  "filter_lower_only_outfit", "filter_person_evidence", "filter_person_reason")
PAIR_COLUMNS = ("filter_back_view", "filter_lower_only", "filter_extra_garments", "filter_evidence", "filter_reason")


def _person_row(r: "PersonResult | None", status: object) -> tuple[object, ...]:
    if r is None:
        return (None,) * 6 + (json.dumps({"skipped": f"ingest status {status}"}), None)
    f = r.facts
    return (
        r.view.verdict if r.view else None, f["upper_garments"], f["upper_count"], f["layered"], f["scarf"],
        f["lower_only_outfit"], r.evidence(), r.reason,
    )


def apply_filters(ds: Path, opts: "FilterOptions", workers: int = 1, result: Optional[dict] = None) -> "pd.DataFrame":
    """Judge every ingest-ok person of ``DS`` once, derive every ingest-ok pair's verdicts from its person and
    article, and save both tables. Returns the pairs (``result``, when given, also gets ``humans``)."""
    from curate.manifest import Manifest
    from curate.schema import Status

    m = Manifest.load(ds)
    pairs, humans = m.pairs, m.humans
    if opts.parser is not None and workers > 1:
        load_parser(opts)  # fail here, with the loader's message, rather than in every worker
    tasks = build_tasks(m, pairs[pairs["status"] == Status.OK.value])
    by_person: dict[str, "PersonResult"] = {}
    by_pair = {}
    for r in run_tasks(tasks, opts, workers):
        by_person[r.human_id] = r
        for pr in r.pairs:
            by_pair[pr.pair_id] = pr
    hcols: dict[str, list] = {c: [] for c in PERSON_COLUMNS}
    for hid, status in zip(humans["human_id"], humans["status"]):
        for c, v in zip(PERSON_COLUMNS, _person_row(by_person.get(str(hid)) if status == Status.OK.value else None, status)):
            hcols[c].append(v)
    for col, values in hcols.items():
        humans[col] = pd_array(values, col)
    out: dict[str, list] = {c: [] for c in PAIR_COLUMNS}
    for pid, status in zip(pairs["pair_id"], pairs["status"]):
        r = by_pair.get(str(pid))
        if r is None:
            vals = (None, None, None, json.dumps({"skipped": f"ingest status {status}"}), None)
        else:
            vals = (
                r.back_view.verdict if r.back_view else None,
                r.lower_only.verdict if r.lower_only else None,
                r.extra_garments.verdict if r.extra_garments else None,
                r.evidence(),
                r.reason,
            )
        for c, v in zip(PAIR_COLUMNS, vals):
            out[c].append(v)
    for col, values in out.items():
        pairs[col] = values
    m.humans, m.pairs = humans, pairs
    m.save("humans", "pairs")
    if result is not None:
        result["humans"] = humans
    return pairs


def pd_array(values: list, col: str) -> object:
    """A column's values with the schema's integer columns kept nullable (pandas would make them float)."""
    import pandas as pd

    return pd.array(values, dtype="Int32") if col == "filter_upper_count" else values


def verdict_counts(pairs: "pd.DataFrame") -> dict[str, dict[str, int]]:
    """Counts of each verdict per filter column and of the rejection reasons (null reason = kept)."""
    out: dict[str, dict[str, int]] = {}
    for col in ("filter_back_view", "filter_lower_only", "filter_extra_garments"):
        out[col] = {str(k): int(v) for k, v in pairs[col].astype("object").fillna("(not run)").value_counts().items()}
    out["filter_reason"] = {str(k): int(v) for k, v in pairs["filter_reason"].astype("object").fillna("kept").value_counts().items()}
    return out


def explain(ds: Path, item_id: str, opts: "FilterOptions") -> str:
    """Why a pair or a person was kept or rejected: the stored verdicts and evidence, or computed now (and
    not written) if never filtered. ``item_id`` is a pair id or a human id (a pair id wins if both match)."""
    from curate.filters.detectors import PoseDetector
    from curate.filters.pipeline import evaluate_person
    from curate.manifest import Manifest

    m = Manifest.load(ds)
    sel = m.pairs[m.pairs["pair_id"] == item_id]
    hsel = m.humans[m.humans["human_id"] == item_id]
    if sel.empty and hsel.empty:
        ids = pd_concat_ids(m)
        hint = [i for i in ids if item_id.split("/")[-1][:6] in i][:5]
        raise typer.BadParameter(f"no pair or person {item_id!r} in {ds}" + (f"; similar ids: {hint}" if hint else ""))
    if sel.empty:
        return _explain_person(m, item_id, opts)
    row = {k: _clean(v) for k, v in sel.iloc[0].items()}
    stored = row.get("filter_evidence")
    lines = [f"pair {item_id}  (human {row['human_id']}, article {row.get('article_id')}, category {row['category']})"]
    if stored is not None:
        ev = json.loads(str(stored))
        reason = row.get("filter_reason")
        lines.append(f"stored verdict: {'REJECTED: ' + str(reason) if reason else 'kept'}")
    else:
        task = build_tasks(m, sel, humans=m.humans[m.humans["human_id"] == row["human_id"]])
        task = [t for t in task if t.pairs]
        det = PoseDetector(opts.detector_max_side) if opts.detectors else None
        r = evaluate_person(task[0], opts, det, load_parser(opts)).pairs[0]
        ev = json.loads(r.evidence())
        lines.append(f"not filtered yet; computed now with the given options: {'REJECTED: ' + r.reason if r.reason else 'kept'}")
    lines.extend(format_evidence(ev))
    lines.append(f"  person: curate filter {ds} --explain {row['human_id']}")
    return "\n".join(lines)


def pd_concat_ids(m: "Manifest") -> list[str]:
    return [str(i) for i in m.pairs["pair_id"].tolist()] + [str(i) for i in m.humans["human_id"].tolist()]


def _explain_person(m: "Manifest", human_id: str, opts: "FilterOptions") -> str:
    from curate.filters.detectors import PoseDetector
    from curate.filters.pipeline import evaluate_person

    h = {k: _clean(v) for k, v in m.humans[m.humans["human_id"] == human_id].iloc[0].items()}
    n_pairs = int((m.pairs["human_id"] == human_id).sum())
    lines = [f"person {human_id}  ({h.get('path')}, {n_pairs} pair{'s' if n_pairs != 1 else ''})"]
    stored = h.get("filter_person_evidence")
    if stored is not None:
        ev = json.loads(str(stored))
        reason = h.get("filter_person_reason")
        lines.append(f"stored verdict: {'REJECTED: ' + str(reason) if reason else 'kept'}")
    else:
        task = build_tasks(m, m.pairs.iloc[0:0], humans=m.humans[m.humans["human_id"] == human_id])[0]
        det = PoseDetector(opts.detector_max_side) if opts.detectors else None
        r = evaluate_person(task, opts, det, load_parser(opts))  # type: ignore[arg-type]
        ev = json.loads(r.evidence())
        lines.append(f"not filtered yet; computed now with the given options: {'REJECTED: ' + r.reason if r.reason else 'kept'}")
    facts = ev.get("facts") or {}
    if facts:
        lines.append("  facts: " + ", ".join(f"{k}={v!r}" for k, v in facts.items()))
    lines.extend(format_evidence(ev, ("view", "upper_worn", "garments")))
    return "\n".join(lines)


def format_evidence(ev: dict, names: tuple[str, ...] = ("back_view", "lower_only", "extra_garments")) -> list[str]:
    """Readable lines for one pair's (or, with the person's ``names``, one person's) evidence JSON."""
    lines: list[str] = []
    if "skipped" in ev:
        return [f"  not evaluated: {ev['skipped']}"]
    for name in names:
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
    explain_pair: Optional[str] = typer.Option(None, "--explain", metavar="PAIR_OR_HUMAN_ID", help="print why one pair or person was kept or rejected"),
    workers: int = typer.Option(1, "--workers", min=1, help="processes (each loads its own detector)"),
    detector_max_side: int = typer.Option(512, help="images are resized to this longer side for the detectors"),
    parser: Optional[str] = typer.Option(
        None, "--parser", metavar="PATH_OR_HUB_ID",
        help="a clothes-parsing model (e.g. a SegFormer ATR parser) for people without a label map; needs the parser extra",
    ),
    min_keypoint_conf: float = typer.Option(0.3, help="keypoint confidence/visibility at which a joint counts as seen"),
    side_max_shoulder_ratio: float = typer.Option(0.35, help="|shoulder span| / torso length below which a view is side"),
    back_max_face_fraction: float = typer.Option(0.05, help="face/(face+hair) pixels below which parsing says back"),
    garment_min_area: float = typer.Option(0.02, help="fraction of the person's pixels for a garment label to count"),
    scarf_min_area: float = typer.Option(0.008, help="fraction of the person's pixels for a scarf to count"),
    layer_min_delta_e: float = typer.Option(15.0, help="CIELAB distance from the garment edges for an open outer layer"),
    layer_min_row_fraction: float = typer.Option(0.5, help="fraction of torso rows that must look layered"),
    det_opening_min_row_fraction: float = typer.Option(
        0.5, help="detector path (no parsing): share of torso rows that must show an opening to read as layered; "
        "lower = more aggressive (docs/benchmarks/filters.md)"),
    det_edge_min_strength: float = typer.Option(
        1.25, help="detector path (no parsing): how strong the opening's two mirrored front edges must be to read as "
        "layered (in typical torso gradients); lower = more aggressive, 'inf' turns the edge cue off"),
    det_outer_layer_min_score: float = typer.Option(
        float("inf"), help="detector path (no parsing): the learnt outer-layer map's score (its weaker flank minus its "
        "centre) at which a person reads as layered; off (inf) by default, 0.23 is its tuning-split operating point "
        "(more layered people found, more false alarms: docs/benchmarks/filters.md)"),
    detector_layering_rejects: bool = typer.Option(
        False, help="detector path (no parsing): let the layering detector's 'layered' reject pairs as extra garments "
        "(off: it is recorded per person in filter_layered only; docs/benchmarks/filters.md has both P/R)"),
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
    from curate.filters.parser import ParserUnavailableError
    from curate.manifest import ManifestError

    th = Thresholds(
        min_keypoint_conf=min_keypoint_conf,
        side_max_shoulder_ratio=side_max_shoulder_ratio,
        back_max_face_fraction=back_max_face_fraction,
        garment_min_area=garment_min_area,
        scarf_min_area=scarf_min_area,
        layer_min_delta_e=layer_min_delta_e,
        layer_min_row_fraction=layer_min_row_fraction,
        det_opening_min_row_fraction=det_opening_min_row_fraction,
        det_edge_min_strength=det_edge_min_strength,
        det_outer_layer_min_score=det_outer_layer_min_score,
        det_layering_rejects=detector_layering_rejects,
        legs_min_row_fraction=legs_min_row_fraction,
    )
    opts = FilterOptions(
        back_views=back_views,
        lower_only_products=lower_only_products,
        extra_garments=extra_garments,
        reject_side_views=reject_side_views,
        detectors=detectors,
        detector_max_side=detector_max_side,
        parser=parser,
        thresholds=th,
    )
    console = Console()
    try:
        if explain_pair is not None:
            typer.echo(explain(ds, explain_pair, opts))  # plain: long evidence lines must not be re-wrapped
            return
        start = time.perf_counter()
        result: dict = {}
        pairs = apply_filters(ds, opts, workers, result)
    except (ManifestError, ParserUnavailableError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    except RuntimeError as exc:  # a dead worker process: say so instead of a traceback
        console.print(f"[red]curate filter failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    elapsed = time.perf_counter() - start
    humans = result["humans"]
    judged = int(humans["filter_person_evidence"].map(lambda e: e is not None and '"skipped"' not in str(e)).sum())
    person_table = Table(title=f"curate filter: {judged} of {len(humans)} people judged (once each), in {elapsed:.1f} s")
    for name in ("column", "value", "people"):
        person_table.add_column(name, justify="right" if name == "people" else "left")
    for col in ("filter_view", "filter_layered", "filter_scarf", "filter_lower_only_outfit", "filter_person_reason"):
        c = humans[col].astype("object").fillna("kept" if col == "filter_person_reason" else "(not run)").value_counts()
        for k, n in c.items():
            person_table.add_row(col, str(k), str(int(n)))
    console.print(person_table)
    if len(pairs):
        counts = verdict_counts(pairs)
        table = Table(title=f"{len(pairs)} pairs, derived from their person and article")
        table.add_column("column")
        table.add_column("value")
        table.add_column("pairs", justify="right")
        for col, c in counts.items():
            for k, n in sorted(c.items(), key=lambda kv: -kv[1]):
                table.add_row(col, k, str(n))
        console.print(table)
    else:
        console.print("no pairs in this dataset: only the people were judged (humans table, filter_* columns)")
    console.print(f"explain one: curate filter {ds} --explain PAIR_OR_HUMAN_ID")
