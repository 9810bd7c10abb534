"""The run record (``summary.json``): metrics with their direction, FPS, protocol and provenance.

Reports read these records and never recompute. A run whose feature extractor or LPIPS backbone was
untrained carries ``comparable_to_published: false`` and a ``warning`` saying so.
"""

from __future__ import annotations

import json
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from eval.metrics import METRICS

RECORD_VERSION = 1
SUMMARY_FILE = "summary.json"
_PACKAGES = ("tryon-bench", "torch", "torchvision", "numpy", "pillow", "lpips", "torchmetrics", "pytorch-fid", "scipy")


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).resolve().parent,
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def package_versions(names: "tuple[str, ...]" = _PACKAGES) -> dict[str, str | None]:
    """The installed version of each distribution in ``names`` (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def build_summary(*, kind: str, model: str, metrics: dict[str, Any], fps: dict[str, Any] | None, protocol: dict[str, Any],
                  extractors: dict[str, Any], n_images: int, provenance: dict[str, Any]) -> dict[str, Any]:
    comparable = all(e.get("comparable_to_published", True) for e in extractors.values() if isinstance(e, dict))
    directions = {name: {"higher_is_better": info.higher_is_better, "description": info.description}
                  for name, info in METRICS.items() if name in metrics or name == "fps"}
    summary = {
        "record_version": RECORD_VERSION,
        "kind": kind,
        "model": model,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "n_images": n_images,
        "metrics": metrics,
        "metric_directions": directions,
        "fps": fps,
        "protocol": protocol,
        "extractors": extractors,
        "comparable_to_published": comparable,
        "provenance": {**provenance, "git_commit": git_commit(), "packages": package_versions()},
    }
    if not comparable:
        summary["warning"] = ("computed with an untrained (seeded) feature extractor or LPIPS backbone: NOT comparable to "
                              "published numbers, only to runs with the same extractor identity")
    return summary


def write_summary(run: Path, summary: dict[str, Any]) -> Path:
    from curate.manifest import atomic_write_bytes

    path = run / SUMMARY_FILE
    atomic_write_bytes(path, (json.dumps(summary, indent=2, sort_keys=False, default=str) + "\n").encode())
    return path


def read_summary(run: Path) -> dict[str, Any]:
    doc = json.loads((Path(run) / SUMMARY_FILE).read_text())
    if doc.get("record_version") != RECORD_VERSION:
        raise ValueError(f"{run}/{SUMMARY_FILE}: record version {doc.get('record_version')} (this tryon-bench reads {RECORD_VERSION})")
    return doc
