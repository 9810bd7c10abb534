"""The ingest engine: read every listed file once, decide each row's status, write the manifest.

Rules, identical for every layout:

* Every listed human/article becomes a row, even when its image is absent (``missing-file``) or bad
  (``empty-file``, ``truncated-image``, ``unreadable-image``). When a row has several problems the first
  one in the order image -> cloth mask / label map -> pose is the ``reject_reason`` and all of them are
  in ``reject_detail``.
* Annotation paths the reader proposes but that are not on disk are simply absent (null), not errors:
  annotations are optional in every layout.
* A pair is rejected when a member is: ``missing-file`` when that member's file is absent,
  ``missing-partner`` when the member is present but rejected (or not in the dataset). The member rows
  are kept as they are.
* Row order is by id (humans, articles) and reader order (pairs); no timestamps are stored, so two runs
  over the same source give byte-identical tables.
* Re-ingesting an unchanged source into a ``DS`` that dedupe/filter already annotated keeps their
  columns; a changed source drops them (see :func:`_carry_over_later_stages`).
* Containment: every path is checked as a string before anything is opened; one that leaves the
  dataset root (``..``, absolute) is rejected ``path-outside-root``. Symlinks inside the root are the
  user's and are followed; the report records each resolved target (``symlinks``).
* Every file under the source is in a row or named in the report (``files_not_ingested``) with why.
* The three tables are written as one manifest transaction (``curate.manifest.write_tables``), after
  the carry-over is decided, so a kill at any moment leaves the previous manifest or the new one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import pandas as pd

from curate import schema
from curate.imageio import ImageRead, path_is_utf8, printable_path, read_image, read_labelmap
from curate.ingest.common import ArticleSpec, HumanSpec, PairSpec, Scan, path_inside, walk_tree
from curate.manifest import Manifest, ManifestError, atomic_write_bytes, status_summary, usable_pairs, write_tables
from curate.poses import PoseFormatError, PoseFrameError, PoseUnreadableError, read_pose
from curate.schema import RejectReason, Status

REPORT_NAME = "ingest.json"  # DS/reports/ingest.json: layout decision, notes, unused files

T = TypeVar("T")
R = TypeVar("R")


def _existing(root: Path, relpath: str | None) -> str | None:
    """``relpath`` when something is there to read (a file, or an entry that cannot even be checked:
    its read then says why, e.g. ``unreadable`` for a folder without permission), else None."""
    if relpath is None:
        return None
    try:
        st = os.lstat(root / relpath)
    except (FileNotFoundError, NotADirectoryError):
        return None  # annotations are optional: absent is not an error
    except OSError:
        return relpath  # permission denied on the way: the reader reports it as unreadable
    return None if stat.S_ISDIR(st.st_mode) else relpath


def _resolved(root: Path, relpath: str) -> str | None:
    """Where a path inside the root really leads when a symlink is on the way (else None)."""
    lexical = os.path.normpath(os.path.join(os.path.abspath(root), relpath))
    real = os.path.realpath(lexical)
    return real if real != lexical and real != os.path.join(os.path.realpath(root), os.path.normpath(relpath)) else None


def _outside(what: str, relpath: str) -> tuple[RejectReason, str]:
    return RejectReason.PATH_OUTSIDE_ROOT, f"{what} {printable_path(relpath)} lies outside the dataset root; not opened"


@dataclasses.dataclass(frozen=True)
class RowContext:
    """What every row worker needs besides its spec (picklable, sent to the worker processes)."""

    root: Path
    source_layout: str
    min_side: int = 0  # images whose shorter side is below this are rejected image-too-small (0 = off)
    # the output folder relative to the root: only label maps ingest itself decoded (FGVC6) may lie there
    generated_prefix: str | None = None


def _image_fields(ctx: RowContext, relpath: str) -> tuple[dict[str, Any], ImageRead | None, list[tuple[RejectReason, str]]]:
    """Columns shared by humans and articles, the read result and the problems found so far."""
    root = ctx.root
    fields: dict[str, Any] = {"path": printable_path(relpath)}
    if not path_is_utf8(relpath):
        # Arrow strings are UTF-8: such a name cannot be stored faithfully, so nothing downstream could
        # reopen the file. It is recorded (with \xNN escapes) and rejected instead of crashing the write.
        return fields, None, [(RejectReason.PATH_NOT_UTF8, f"file name is not UTF-8: {printable_path(relpath)}")]
    if not path_inside(relpath):
        return fields, None, [_outside("image", relpath)]
    target = _resolved(root, relpath)
    if target is not None:
        fields["_resolved"] = {relpath: printable_path(target)}
    read = read_image(root / relpath)
    fields.update(size_bytes=read.size_bytes, sha256=read.sha256, width=read.width, height=read.height,
                  orientation=read.orientation)
    problems = [] if read.ok else [(read.reason, read.detail or read.reason.value)]
    if read.ok and min(read.width or 0, read.height or 0) < ctx.min_side:
        problems.append((RejectReason.IMAGE_TOO_SMALL,
                         f"{Path(relpath).name} is {read.width}x{read.height}; shorter side < {ctx.min_side}"))
    return fields, read, problems


_TEXT_COLUMNS = ("path", "labelmap_path", "pose_path", "cloth_mask_path", "pair_list", "reject_detail")
_PROPAGATED = (RejectReason.MISSING_FILE, RejectReason.PATH_OUTSIDE_ROOT)  # a pair states these of its members


def _finish(row: dict[str, Any], problems: list[tuple[RejectReason, str]]) -> dict[str, Any]:
    if problems:
        row["status"] = Status.REJECTED.value
        row["reject_reason"] = problems[0][0].value
        row["reject_detail"] = "; ".join(detail for _, detail in problems)
    else:
        row["status"] = Status.OK.value
        row["reject_reason"] = None
        row["reject_detail"] = None
    for key in _TEXT_COLUMNS:  # file names reach these columns; arrow needs them as valid UTF-8
        if row.get(key) is not None:
            row[key] = printable_path(row[key])
    return row


def _check_labelmap(root: Path, spec: HumanSpec | ArticleSpec, row: dict[str, Any], image_size: tuple[int, int] | None,
                    problems: list[tuple[RejectReason, str]]) -> tuple[int, int] | None:
    """Fill the label-map columns, record its problems (or the reader's preset one); return its size."""
    labelmap = _existing(root, spec.labelmap_path)
    row.update(labelmap_path=labelmap, label_set=spec.label_set if labelmap else None)
    if labelmap is not None and not path_inside(labelmap) and not _generated(root, labelmap):
        problems.append(_outside("label map", labelmap))
        return None
    if spec.preset_reason is not None:
        problems.append((spec.preset_reason, spec.preset_detail or spec.preset_reason.value))
        return None
    if labelmap is None or spec.label_set is None:
        return None
    lm = read_labelmap(root / labelmap, spec.label_set, expected_size=image_size)
    if not lm.ok:
        problems.append((lm.reason, lm.detail or lm.reason.value))
    return (lm.width, lm.height) if lm.width is not None else None


def _generated(root: Path, relpath: str) -> bool:
    """A label map ingest wrote itself under the output folder (FGVC6 masks decoded into DS)."""
    prefix = _GENERATED_PREFIX.get(str(root))
    norm = os.path.normpath(relpath).replace(os.sep, "/")
    return prefix is not None and (norm + "/").startswith(prefix.rstrip("/") + "/")


_GENERATED_PREFIX: dict[str, str] = {}  # root -> output folder relative to it (set per worker by _set_context)


def human_row(ctx: RowContext, spec: HumanSpec) -> dict[str, Any]:
    """One humans-table row: image, label map (checked against set and size) and pose (to COCO-18)."""
    root = ctx.root
    row, read, problems = _image_fields(ctx, spec.path)
    row.update(human_id=spec.human_id, category=spec.category, split=spec.split, source_layout=ctx.source_layout)
    image_size = (read.width, read.height) if read is not None and read.ok else None

    labelmap_size = _check_labelmap(root, spec, row, image_size, problems)
    # When the image is missing/bad its label map has the same frame: poses that need a frame (DressCode)
    # are still converted so the row stays informative.
    reference_size = image_size or labelmap_size

    pose_path = _existing(root, spec.pose_path)
    row.update(pose_path=pose_path, pose_format=None, keypoints=None)
    if pose_path is not None and not path_inside(pose_path):
        problems.append(_outside("pose", pose_path))
    elif pose_path is not None:
        try:
            pose = read_pose(root / pose_path, reference_size)
            row.update(pose_format=pose.format.value, keypoints=pose.flat())
        except PoseFrameError:
            pass  # neither image nor label map gives the frame: the row is already rejected for that
        except PoseUnreadableError as exc:
            problems.append((exc.reason, str(exc)))
        except PoseFormatError as exc:
            problems.append((RejectReason.POSE_UNKNOWN_FORMAT, str(exc)))
    return _finish(row, problems)


def article_row(ctx: RowContext, spec: ArticleSpec) -> dict[str, Any]:
    """One articles-table row: image, cloth mask (decodes, same size) and article label map."""
    root = ctx.root
    row, read, problems = _image_fields(ctx, spec.path)
    row.update(article_id=spec.article_id, category=spec.category, split=spec.split, source_layout=ctx.source_layout)
    image_size = (read.width, read.height) if read is not None and read.ok else None

    mask = _existing(root, spec.cloth_mask_path)
    row["cloth_mask_path"] = mask
    if mask is not None and not path_inside(mask):
        problems.append(_outside("cloth mask", mask))
    elif mask is not None:
        mask_read = read_image(root / mask)
        if not mask_read.ok:
            problems.append((mask_read.reason, f"cloth mask {mask_read.detail}"))
        elif image_size is not None and (mask_read.width, mask_read.height) != image_size:
            problems.append((
                RejectReason.LABELMAP_SIZE_MISMATCH,
                f"cloth mask {Path(mask).name} is {mask_read.width}x{mask_read.height} (WxH) but its image is "
                f"{image_size[0]}x{image_size[1]}",
            ))

    _check_labelmap(root, spec, row, image_size, problems)
    return _finish(row, problems)


def _call_human(args: tuple[RowContext, HumanSpec]) -> dict[str, Any]:
    _set_context(args[0])
    return human_row(*args)


def _call_article(args: tuple[RowContext, ArticleSpec]) -> dict[str, Any]:
    _set_context(args[0])
    return article_row(*args)


def _set_context(ctx: RowContext) -> None:
    if ctx.generated_prefix is not None:
        _GENERATED_PREFIX[str(ctx.root)] = ctx.generated_prefix


def exit_with_parent() -> None:
    """Pool-worker initializer: the worker dies with its parent (a SIGKILLed ``curate`` must not leave
    decoding processes behind). Linux: ``PR_SET_PDEATHSIG``; elsewhere a daemon thread that polls the
    parent pid. Used by every process pool of the curate stages."""
    import signal
    import sys
    import threading
    import time

    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


Progress = Callable[[str, int, int], None]  # (what, done, total), called as items complete


def parallel_map(fn: Callable[[T], R], items: Sequence[T], workers: int, *, progress: Progress | None = None,
                 what: str = "items") -> list[R]:
    """``[fn(x) for x in items]``, in order, over a process pool when ``workers > 1``.

    Decoding is CPU-bound and holds the GIL, hence processes; chunks keep the pickling overhead small.
    ``progress`` is told about completed items (every item, or every chunk in the pool).
    """
    total = len(items)
    out: list[R] = []
    if workers <= 1 or total < 2 * workers:
        for x in items:
            out.append(fn(x))
            if progress is not None:
                progress(what, len(out), total)
        return out
    chunk = max(1, min(64, total // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers, initializer=exit_with_parent) as pool:
        for result in pool.map(fn, items, chunksize=chunk):
            out.append(result)
            if progress is not None and (len(out) % chunk == 0 or len(out) == total):
                progress(what, len(out), total)
    return out


def _unique_ids(ids: Iterable[str], what: str, notes: list[str]) -> list[str]:
    """Make ids unique with a ``#2``, ``#3`` suffix (and say so): two sources of one id must not collide."""
    seen: Counter[str] = Counter()
    out = []
    for i in ids:
        seen[i] += 1
        if seen[i] > 1:
            notes.append(f"{what} id {i!r} occurs more than once; occurrence {seen[i]} stored as {i}#{seen[i]}")
            i = f"{i}#{seen[i]}"
        out.append(i)
    return out


def _member_problem(kind: str, member_id: str | None, rows: dict[str, dict[str, Any]]) -> tuple[RejectReason, str] | None:
    if member_id is None:
        return None
    row = rows.get(member_id)
    if row is None:
        return RejectReason.MISSING_PARTNER, f"{kind} {member_id} is not in the dataset"
    if row["status"] == Status.OK.value:
        return None
    reason = next((r for r in _PROPAGATED if row["reject_reason"] == r.value), RejectReason.MISSING_PARTNER)
    return reason, f"{kind} {member_id} ({row['path']}) rejected: {row['reject_reason']}"


def pair_rows(pairs: list[PairSpec], humans: dict[str, dict[str, Any]], articles: dict[str, dict[str, Any]],
              source_layout: str, notes: list[str]) -> list[dict[str, Any]]:
    ids = _unique_ids((p.pair_id for p in pairs), "pair", notes)
    rows = []
    for pair_id, spec in zip(ids, pairs):
        problems = [
            p for p in (
                _member_problem("human", spec.human_id, humans),
                _member_problem("article", spec.article_id, articles),
                _member_problem("target human", spec.target_human_id, humans),
            ) if p is not None
        ]
        # missing-file / path-outside-root win over missing-partner: the more specific fact.
        problems.sort(key=lambda p: p[0] not in _PROPAGATED)
        rows.append(_finish({
            "pair_id": pair_id, "human_id": spec.human_id, "article_id": spec.article_id,
            "target_human_id": spec.target_human_id, "paired": spec.paired, "category": spec.category,
            "split": spec.split, "source_layout": source_layout, "pair_list": spec.pair_list,
        }, problems))
    return rows


def _frame(rows: list[dict[str, Any]], table: str) -> pd.DataFrame:
    names = [c.name for c in schema.columns(table) if c.stage == "ingest"]
    return pd.DataFrame(rows, columns=names)


def unused_files(src: Path, used: set[str]) -> dict[str, int]:
    """Files under ``src`` that no row references, counted by folder (so nothing is dropped silently)."""
    return account_files(src, used, "")[0]


def account_files(src: Path, used: set[str], layout: str) -> tuple[dict[str, int], list[dict[str, str]]]:
    """Every entry of the source tree that is not a row: counts by folder (regular, visible files not part
    of the layout) and the full list by name with the reason (hidden, broken or looping symlink, FIFO,
    unreadable folder, a same-stem sibling of an ingested file, not part of the layout)."""
    counts: Counter[str] = Counter()
    listed: list[dict[str, str]] = []
    used_stems: dict[tuple[str, str], str] = {}
    for u in used:
        p = Path(u)
        used_stems.setdefault((p.parent.as_posix(), p.stem), u)
    for path, problem in walk_tree(src):
        relpath = printable_path(Path(os.path.relpath(path, src)).as_posix())
        if relpath in used:
            continue
        if problem is None:
            # Files at the root are few and telling (ground_truth.csv, a README): named one by one.
            folder = Path(relpath).parent.as_posix()
            counts[folder if folder != "." else f"./{relpath}"] += 1
            sibling = used_stems.get((folder, Path(relpath).stem))
            problem = (
                f"same stem as {sibling}, which is the file ingested (one row per stem)" if sibling
                else f"not part of the {layout} layout" if layout else "not part of the layout"
            )
        listed.append({"path": relpath, "reason": problem})
    return dict(sorted(counts.items())), listed


@dataclasses.dataclass
class IngestSummary:
    """What an ingest did: the layout and why, counts by table/status/reason, notes, unused files."""

    layout: str
    layout_reason: str
    counts: pd.DataFrame  # columns: table, status, reason, count
    notes: list[str]
    unused: dict[str, int]
    usable: pd.DataFrame  # status-ok rows by table, split and category (columns: table, split, category, count)
    usable_pairs: int  # curate.manifest.usable_pairs: also honours dedupe and filter verdicts when present
    examples: pd.DataFrame  # a few rejected rows per (table, reason): columns table, reason, id, detail
    not_ingested: list[dict[str, str]] = dataclasses.field(default_factory=list)  # {path, reason} per file
    symlinks: dict[str, str] = dataclasses.field(default_factory=dict)  # row path -> resolved target

    def to_json(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "layout_reason": self.layout_reason,
            "counts": self.counts.to_dict(orient="records"),
            "usable_by_split_category": self.usable.to_dict(orient="records"),
            "usable_pairs": self.usable_pairs,
            "reject_examples": self.examples.to_dict(orient="records"),
            "notes": self.notes,
            "unused_files_by_folder": self.unused,
            "files_not_ingested": self.not_ingested,
            "symlinks": self.symlinks,
        }


def count_table(m: Manifest) -> pd.DataFrame:
    """Counts by table, status and reason over a manifest."""
    frames = []
    for table in schema.TABLES:
        df = m.table(table)
        if len(df):
            frames.append(status_summary(df).assign(table=table))
    if not frames:
        return pd.DataFrame(columns=["table", "status", "reason", "count"])
    out = pd.concat(frames, ignore_index=True)[["table", "status", "reason", "count"]]
    out["count"] = out["count"].astype(int)
    return out


def reject_examples(m: Manifest, per_reason: int = 3) -> pd.DataFrame:
    """The first ``per_reason`` rejected rows of each (table, reason), with their detail: what to fix."""
    frames = []
    for table in schema.TABLES:
        df = m.table(table)
        bad = df[df["status"] == Status.REJECTED.value]
        if len(bad):
            first = bad.groupby("reject_reason", sort=True).head(per_reason)
            frames.append(pd.DataFrame({
                "table": table, "reason": first["reject_reason"].astype(object),
                "id": first[schema.ID_COLUMN[table]].astype(object), "detail": first["reject_detail"].astype(object),
            }))
    if not frames:
        return pd.DataFrame(columns=["table", "reason", "id", "detail"])
    return pd.concat(frames, ignore_index=True).sort_values(["table", "reason"], kind="stable", ignore_index=True)


def summarise(manifest: Manifest, layout: str, layout_reason: str, notes: list[str],
              unused: dict[str, int], not_ingested: list[dict[str, str]] | None = None,
              symlinks: dict[str, str] | None = None) -> IngestSummary:
    return IngestSummary(
        layout=layout, layout_reason=layout_reason, counts=count_table(manifest), notes=notes, unused=unused,
        not_ingested=not_ingested or [], symlinks=symlinks or {},
        usable=usable_table(manifest), usable_pairs=len(usable_pairs(manifest)), examples=reject_examples(manifest),
    )


def usable_table(m: Manifest) -> pd.DataFrame:
    """Rows with status ok, counted by table, split and category (what later stages can use)."""
    frames = []
    for table in schema.TABLES:
        df = m.table(table)
        ok = df[df["status"] == Status.OK.value]
        if len(ok):
            grouped = ok.groupby(["split", "category"], observed=True).size().rename("count").reset_index()
            frames.append(grouped.assign(table=table))
    if not frames:
        return pd.DataFrame(columns=["table", "split", "category", "count"])
    out = pd.concat(frames, ignore_index=True)[["table", "split", "category", "count"]]
    out["count"] = out["count"].astype(int)
    return out


def write_manifest(src: Path, out: Path, layout: str, layout_reason: str, scan: Scan, workers: int = 1,
                   progress: Progress | None = None, min_side: int = 0) -> tuple[Manifest, IngestSummary]:
    """Process a reader's :class:`Scan` into ``out/manifest`` and ``out/reports/ingest.json``."""
    notes = [printable_path(n) for n in scan.notes]
    # Ids come from file names; one that is not UTF-8 is stored in its \xNN spelling (arrow needs UTF-8).
    for spec in scan.humans:
        spec.human_id = printable_path(spec.human_id)
    for spec in scan.articles:
        spec.article_id = printable_path(spec.article_id)
    for pair in scan.pairs:
        pair.pair_id, pair.human_id = printable_path(pair.pair_id), printable_path(pair.human_id)
        pair.article_id = printable_path(pair.article_id) if pair.article_id is not None else None
        pair.target_human_id = printable_path(pair.target_human_id) if pair.target_human_id is not None else None
    humans_specs = sorted(scan.humans, key=lambda s: s.human_id)
    articles_specs = sorted(scan.articles, key=lambda s: s.article_id)
    for specs, attr, what in ((humans_specs, "human_id", "human"), (articles_specs, "article_id", "article")):
        for spec, new_id in zip(specs, _unique_ids((getattr(s, attr) for s in specs), what, notes)):
            setattr(spec, attr, new_id)

    generated = os.path.relpath(os.path.abspath(out), os.path.abspath(src)).replace(os.sep, "/")
    ctx = RowContext(src, layout, min_side, generated)
    _set_context(ctx)
    human_list = parallel_map(
        _call_human, [(ctx, s) for s in humans_specs], workers, progress=progress, what="humans"
    )
    article_list = parallel_map(
        _call_article, [(ctx, s) for s in articles_specs], workers, progress=progress, what="articles"
    )
    symlinks: dict[str, str] = {}
    for row in (*human_list, *article_list):
        symlinks.update(row.pop("_resolved", None) or {})
    humans = {r["human_id"]: r for r in human_list}
    articles = {r["article_id"]: r for r in article_list}
    pairs = pair_rows(scan.pairs, humans, articles, layout, notes)

    frames = {"humans": _frame(human_list, "humans"), "articles": _frame(article_list, "articles"),
              "pairs": _frame(pairs, "pairs")}
    previous = _load_previous(out)
    if previous is not None:
        _carry_over_later_stages(previous, frames, notes)
    # one transaction: the three tables (with any carried-over verdicts) appear together or not at all
    write_tables(out, frames, dataset_root=src, layout=layout)
    manifest = Manifest.load(out)

    used = {printable_path(u) for u in scan.used_files}
    for row in (*human_list, *article_list):
        used.update(v for k in ("path", "labelmap_path", "pose_path", "cloth_mask_path") if (v := row.get(k)))
    unused, not_ingested = account_files(src, used, layout)
    summary = summarise(manifest, layout, layout_reason, notes, unused, not_ingested, dict(sorted(symlinks.items())))
    report = json.dumps(summary.to_json(), indent=2, sort_keys=True).encode()
    reports = Path(out) / "reports"
    for stale in reports.glob(f".{REPORT_NAME}.*.tmp") if reports.is_dir() else ():
        stale.unlink(missing_ok=True)  # left by a killed run
    atomic_write_bytes(reports / REPORT_NAME, report)
    return manifest, summary


def _load_previous(out: Path) -> Manifest | None:
    try:
        return Manifest.load(out)
    except (ManifestError, OSError, ValueError):
        return None  # no manifest yet, or one this version cannot read: nothing to carry over


def _later_columns(table: str) -> list[str]:
    return [c.name for c in schema.columns(table) if c.stage != "ingest"]


def _carry_over_later_stages(previous: Manifest, frames: dict[str, pd.DataFrame], notes: list[str]) -> None:
    """Re-ingesting an unchanged source keeps the dedupe/filter verdicts already in ``DS``.

    Verdicts are only valid for the rows they were computed on (a duplicate group depends on every row),
    so they are kept only when all three tables come out identical in their ingest columns; otherwise they
    are dropped and the notes say to re-run those stages. ``frames`` (the new ingest columns) get the
    verdict columns in place, before anything is written.
    """
    had_verdicts = any(previous.table(t)[[c for c in _later_columns(t) if c in previous.table(t)]].notna().any().any()
                       for t in schema.TABLES)
    if not had_verdicts:
        return
    changed = []
    for table in schema.TABLES:
        # compare as the manifest stores them: the new frame round-trips through the schema's dtypes
        new = _as_stored(frames[table], table)
        ingest_cols = [c for c in schema.column_names(table) if c not in _later_columns(table)]
        old_t = previous.table(table)
        if any(c not in old_t for c in ingest_cols):
            changed.append(table)
            continue
        old = old_t[ingest_cols]
        if len(old) != len(new) or not old.reset_index(drop=True).equals(new[ingest_cols].reset_index(drop=True)):
            changed.append(table)
    if changed:
        notes.append(
            f"the source changed since the last ingest into this folder ({', '.join(changed)} differ): the earlier "
            f"dedupe/filter verdicts were dropped; re-run those stages"
        )
        return
    for table in schema.TABLES:
        for col in _later_columns(table):
            if col in previous.table(table):
                frames[table][col] = previous.table(table)[col].to_numpy()
    notes.append("source unchanged since the last ingest into this folder: dedupe/filter verdicts kept")


def _as_stored(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """``df`` with the dtypes a manifest read gives (what the comparison with the previous one needs)."""
    from curate.manifest import _coerce, _nullable_types

    return _coerce(df, table).to_pandas(types_mapper=_nullable_types)


def load_summary(ds: Path) -> IngestSummary:
    """The summary of the last ingest into ``ds`` (recounted from the manifest, notes from the report)."""
    manifest = Manifest.load(ds)
    report_path = Path(ds) / "reports" / REPORT_NAME
    try:
        report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.is_file() else {}
    except (OSError, ValueError):
        report = {"layout_reason": f"(the ingest report {report_path} is unreadable: re-run `curate ingest`)"}
    if not isinstance(report, dict):
        report = {}
    return summarise(
        manifest,
        layout=manifest.layout or report.get("layout", ""),
        layout_reason=report.get("layout_reason", "(no ingest report found)"),
        notes=list(report.get("notes", [])),
        unused=dict(report.get("unused_files_by_folder", {})),
        not_ingested=list(report.get("files_not_ingested", [])),
        symlinks=dict(report.get("symlinks", {})),
    )
