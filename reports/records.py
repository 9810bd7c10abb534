"""Run records read for the leaderboard, and the groups of runs whose numbers may share one table.

Everything here comes from ``summary.json`` (and, for sample grids and breakdowns, ``per_sample.parquet``
and ``images/``) as :mod:`eval.record` and :mod:`eval.runner` wrote them: nothing is recomputed.

Two runs are comparable when they were scored on the same data (manifest hash, or the reference folder
for folder runs), split, protocol options (LPIPS net, SSIM on luma, KID subsets, seed, ...), resolution
and feature extractor / LPIPS backbone identity. Each distinct combination is its own table.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

# protocol options that do not change a score (how fast it was computed, what it means for one model)
_NOT_SCORE_OPTIONS = frozenset({"batch_size", "fps_batches", "meaning", "size", "protocol", "split", "inception_weights", "lpips_weights",
                                "score_pixels", "score_chunk_images"})
# metric keys that qualify another metric (shown with it, not as columns)
_QUALIFIERS = ("_ci95", "_std", "_subset_size", "_subsets")
PREFERRED_ORDER = ("fid", "kid", "lpips", "ssim", "psnr")


@dataclasses.dataclass
class Run:
    path: Path
    summary: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.summary.get("model"))

    @property
    def kind(self) -> str:
        return str(self.summary.get("kind", "model"))

    @property
    def is_baseline(self) -> bool:
        return self.kind == "baseline"

    @property
    def protocol(self) -> str:
        return str((self.summary.get("protocol") or {}).get("protocol"))

    @property
    def meaning(self) -> str:
        return str((self.summary.get("protocol") or {}).get("meaning") or "")

    @property
    def metrics(self) -> dict[str, Any]:
        return self.summary.get("metrics") or {}

    @property
    def comparable_to_published(self) -> bool | None:
        return self.summary.get("comparable_to_published")

    @property
    def label(self) -> str:
        """The row's name: the model, and what its protocol means where that differs from a try-on."""
        if self.protocol == "unpaired" and self.meaning.startswith("new style codes"):
            return f"{self.model} (new styles)"
        return self.model

    def fps(self, which: str = "model_only") -> float | None:
        """The best images/s over the batch sizes the record measured (model only: inputs on the device)."""
        section = (self.summary.get("fps") or {}).get(which) or {}
        values = [v.get("images_per_s") for k, v in section.items() if k.startswith("batch_") and isinstance(v, dict)]
        values = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        return max(values) if values else None

    def resolution(self) -> tuple[int, int] | None:
        s = self.summary
        size = (s.get("fps") or {}).get("resolution") or (s.get("provenance") or {}).get("data_needs", {}).get("size")
        size = size or (s.get("protocol") or {}).get("size")
        return (int(size[0]), int(size[1])) if size else None

    def per_sample(self) -> pd.DataFrame | None:
        path = self.path / "per_sample.parquet"
        return pd.read_parquet(path) if path.is_file() else None

    def training_logs(self) -> dict[str, Path]:
        """stage -> train.csv of the checkpoint this run evaluated, where the record names one that has logs."""
        ckpt = (self.summary.get("provenance") or {}).get("checkpoint")
        if not ckpt:
            return {}
        root = Path(ckpt)
        if not root.is_absolute() and not root.exists():
            return {}
        logs = root / "logs"
        return {p.parent.name: p for p in sorted(logs.glob("*/train.csv"))} if logs.is_dir() else {}


def load_runs(paths: list[Path]) -> tuple[list[Run], list[str]]:
    """Each path is a run folder (holding summary.json) or a folder of run folders. Returns the runs and a
    line for each record that could not be read (skipped, never guessed at)."""
    from eval.record import SUMMARY_FILE, read_summary

    runs, problems, seen = [], [], set()
    for given in paths:
        given = Path(given)
        found = [given] if (given / SUMMARY_FILE).is_file() else sorted(p.parent for p in given.glob(f"*/{SUMMARY_FILE}"))
        if not found:
            problems.append(f"{given}: no {SUMMARY_FILE} there or in its sub-folders")
        for run in found:
            if run.resolve() in seen:
                continue
            seen.add(run.resolve())
            try:
                runs.append(Run(run, read_summary(run)))
            except (ValueError, OSError, json.JSONDecodeError) as exc:
                problems.append(f"skipped {run}: {exc}")
    return runs, problems


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclasses.dataclass(frozen=True)
class GroupKey:
    data: str  # manifest sha256 (or the reference folder of a folder run)
    dataset: str  # where it was, for people
    split: str
    protocol: str
    resolution: str
    extractor: str  # canonical JSON of the feature extractor and LPIPS identities
    options: str  # canonical JSON of the score-changing protocol options

    def describe(self) -> dict[str, str]:
        ext = json.loads(self.extractor)
        feat = ext.get("features") or {}
        name = feat.get("name", "?")
        detail = feat.get("weights_sha256") or feat.get("bn_calibration_sha256")
        return {"dataset": self.dataset, "manifest": self.data[:12], "split": self.split, "protocol": self.protocol,
                "resolution": self.resolution, "extractor": f"{name} ({detail})" if detail else name}


def group_key(run: Run) -> GroupKey:
    s = run.summary
    prov = s.get("provenance") or {}
    proto = s.get("protocol") or {}
    data = prov.get("manifest_sha256") or prov.get("reference") or prov.get("dataset") or "?"
    extractors = {k: v for k, v in (s.get("extractors") or {}).items() if isinstance(v, dict)}
    options = {k: v for k, v in proto.items() if k not in _NOT_SCORE_OPTIONS}
    res = run.resolution()
    return GroupKey(
        data=str(data), dataset=str(prov.get("dataset") or prov.get("reference") or "?"), split=str(proto.get("split", "-")),
        protocol=run.protocol, resolution=f"{res[0]}x{res[1]}" if res else "?", extractor=_canonical(extractors),
        options=_canonical(options),
    )


@dataclasses.dataclass
class Group:
    key: GroupKey
    runs: list[Run]

    @property
    def models(self) -> list[Run]:
        return [r for r in self.runs if not r.is_baseline]

    @property
    def baselines(self) -> list[Run]:
        return [r for r in self.runs if r.is_baseline]

    @property
    def comparable_to_published(self) -> bool:
        return all(r.comparable_to_published is not False for r in self.runs)

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for run in self.runs:
            for k, v in run.metrics.items():
                if k.endswith(_QUALIFIERS) or not isinstance(v, (int, float)) or k in names:
                    continue
                names.append(k)
        rank = {n: i for i, n in enumerate(PREFERRED_ORDER)}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))

    def direction(self, metric: str) -> tuple[bool | None, str, list[str]]:
        """(higher_is_better, description, problems) as the records state them; records that disagree are
        reported, and the direction is then None (no arrow, no best marked)."""
        seen: dict[bool, list[str]] = {}
        description = ""
        for run in self.runs:
            d = (run.summary.get("metric_directions") or {}).get(metric)
            if d is None or "higher_is_better" not in d:
                continue
            seen.setdefault(bool(d["higher_is_better"]), []).append(run.path.name)
            description = description or str(d.get("description", ""))
        if len(seen) > 1:
            return None, description, [f"records disagree on whether higher {metric} is better: " +
                                       "; ".join(f"{'higher' if k else 'lower'}: {', '.join(v)}" for k, v in seen.items())]
        return (next(iter(seen)) if seen else None), description, []

    def sorted_runs(self, metric: str | None) -> list[Run]:
        """Models and baselines together, best first by ``metric`` (records without it last)."""
        if metric is None:
            return sorted(self.runs, key=lambda r: (r.is_baseline, r.model))
        higher, _, _ = self.direction(metric)
        sign = -1 if higher else 1

        def key(r: Run) -> tuple[int, float, str]:
            v = r.metrics.get(metric)
            ok = isinstance(v, (int, float)) and math.isfinite(v)
            return (0 if ok else 1, sign * float(v) if ok else 0.0, r.model)

        return sorted(self.runs, key=key)

    def best(self, metric: str) -> float | None:
        higher, _, _ = self.direction(metric)
        values = [r.metrics.get(metric) for r in self.models]
        values = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if higher is None or not values:
            return None
        return max(values) if higher else min(values)

    def notes(self) -> list[str]:
        """What a reader must know before comparing the rows of this table."""
        out = []
        if not self.comparable_to_published:
            out.append("scored with an untrained (seeded) feature extractor / LPIPS backbone: compare these rows "
                       "only with each other, never with published numbers")
        if not self.baselines:
            out.append("no baseline was scored under this protocol (evaluate --baseline identity|paste)")
        if not self.models:
            out.append("baselines only: no model was scored under this protocol")
        for m in self.metric_names():
            out += self.direction(m)[2]
        return out


def group_runs(runs: list[Run], protocol: str | None = None) -> tuple[list[Group], list[Run]]:
    """Scored runs grouped by comparability (largest group first), and the records with nothing scored
    (``not_scored``: e.g. SPADE's unpaired protocol), which are notes, not rows."""
    unscored = [r for r in runs if r.summary.get("not_scored")]
    groups: dict[GroupKey, list[Run]] = {}
    for run in runs:
        if run.summary.get("not_scored") or (protocol and run.protocol != protocol):
            continue
        groups.setdefault(group_key(run), []).append(run)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0].protocol, kv[0].dataset))
    if protocol:
        unscored = [r for r in unscored if r.protocol == protocol]
    return [Group(k, v) for k, v in ordered], unscored


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        v = float(value)
        if not math.isfinite(v):
            return str(v)
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.2e}"
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) >= 10 else f"{v:.4f}"
    return str(value)
