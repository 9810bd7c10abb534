"""The ingest entry point: any supported source layout -> one manifest (``DS/manifest/*.parquet``).

>>> from curate.ingest import ingest
>>> result = ingest(Path("zalando-hd-resized"), Path("data/vitonhd"), layout="auto", category="upper_body")
>>> result.layout, len(result.manifest.pairs)

One reader per layout lists what the source holds (``viton_hd``, ``viton``, ``dresscode``,
``deepfashion_smis``, ``pairs_folder``, ``fgvc6``, ``images``); ``detect`` picks the layout for
``layout="auto"``; ``engine`` reads each file once, records rejections and writes the tables. The source
is never written: the output folder must lie outside it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

from curate.ingest import deepfashion_smis, dresscode, fgvc6, images, pairs_folder, viton, viton_hd
from curate.ingest.common import LAYOUT_NAMES, ROLES, IngestError, Scan, ScanOptions, validate_category
from curate.ingest.detect import Detection, detect_layout
from curate.ingest.engine import IngestSummary, load_summary, write_manifest
from curate.manifest import Manifest

__all__ = ["IngestError", "IngestResult", "IngestSummary", "LAYOUT_NAMES", "detect_layout", "ingest", "load_summary"]

READERS: dict[str, Callable[[Path, ScanOptions], Scan]] = {
    "viton-hd": viton_hd.scan,
    "viton": viton.scan,
    "dresscode": dresscode.scan,
    "deepfashion-smis": deepfashion_smis.scan,
    "pairs-folder": pairs_folder.scan,
    "fgvc6": fgvc6.scan,
    "images": images.scan,
}
assert tuple(READERS) == LAYOUT_NAMES


@dataclasses.dataclass
class IngestResult:
    manifest: Manifest
    layout: str
    summary: IngestSummary


def _check_out(src: Path, out: Path) -> None:
    """Refuse an output inside the source (the source is never written) or equal to it."""
    s, o = Path(os.path.realpath(src)), Path(os.path.realpath(out))
    if o == s or s in o.parents:
        raise IngestError(f"--out {out} lies inside the source {src}; the source is never written: choose a folder outside it")


def ingest(
    src: Path,
    out: Path,
    layout: str = "auto",
    *,
    role: str | None = None,
    category: str | None = None,
    workers: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
    min_side: int = 0,
) -> IngestResult:
    """Ingest ``src`` (a dataset in one of ``LAYOUT_NAMES``) into the manifest at ``out``.

    ``role`` (human|article) applies to the ``images`` and ``fgvc6`` layouts; ``category`` asserts the
    garment category where the layout has none (VITON-HD, VITON, pairs-folder, images, SMIS).
    ``workers > 1`` decodes images in that many processes; ``progress(what, done, total)`` is called as
    files are processed (the CLI draws a progress bar with it). ``min_side > 0`` rejects images whose
    shorter side is smaller (``image-too-small``; off by default: resolution policy is the user's). Bad files never raise: they become rejected
    rows. Raises :class:`IngestError` for a wrong source, layout, role or category.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise IngestError(f"source {src} is not a folder")
    _check_out(src, out)
    if role is not None and role not in ROLES:
        raise IngestError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
    category = validate_category(category)
    if layout == "auto":
        detection = detect_layout(src)
    elif layout in READERS:
        detection = Detection(layout, "chosen with --layout")
    else:
        raise IngestError(f"unknown layout {layout!r}; valid: auto, {', '.join(LAYOUT_NAMES)}")
    options = ScanOptions(out=out, role=role, category=category, workers=max(1, workers), progress=progress)
    scan = READERS[detection.layout](src, options)
    manifest, summary = write_manifest(
        src, out, detection.layout, detection.reason, scan, workers=options.workers, progress=progress,
        min_side=max(0, min_side),
    )
    return IngestResult(manifest=manifest, layout=detection.layout, summary=summary)
