"""``curate ingest``: any supported source layout -> one manifest (``DS/manifest/{humans,articles,pairs}.parquet``).

Public API (defined in ``curate.ingest.api``): ``ingest(src, out, layout="auto", *, role=None,
category=None, workers=1) -> IngestResult`` (``.manifest``, ``.layout``, ``.summary``),
``detect_layout``, ``load_summary``, ``IngestError``, ``LAYOUT_NAMES``.

The names are loaded on first use (PEP 562) so that ``curate --help``, which imports this package's
``command`` module to register the commands, does not pay for pandas/pyarrow/PIL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.ingest.api import (  # noqa: F401
        LAYOUT_NAMES, IngestError, IngestResult, IngestSummary, detect_layout, ingest, load_summary,
    )

__all__ = ["IngestError", "IngestResult", "IngestSummary", "LAYOUT_NAMES", "detect_layout", "ingest", "load_summary"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("curate.ingest.api"), name)
    raise AttributeError(f"module 'curate.ingest' has no attribute {name!r}")
