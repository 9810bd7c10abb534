"""What a training run leaves to read: a CSV of losses, TensorBoard events, sample grids, a progress bar.

Layout under the run folder, per training stage (``main`` for single-stage models):
    logs/<stage>/train.csv      one row per logged step: step, epoch, samples_per_s, utc, then "<phase>/<loss>"
    logs/<stage>/tensorboard/   the same scalars plus the sample grids (`tensorboard --logdir <run>/logs`)
    samples/<stage>/step_*.png  lossless sample grids

A resumed run first drops the rows and events after its checkpoint's step (they belong to the
interrupted attempt), so the logs read like one uninterrupted run.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

_FIXED_COLUMNS = ("step", "epoch", "samples_per_s", "utc")


def save_image_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> np.ndarray:
    """Write [N,3,H,W] (or one [3,H,W] grid) in [-1,1] as a lossless PNG; returns the HxWx3 uint8 image."""
    from PIL import Image
    from torchvision.utils import make_grid

    if images.dim() == 4:
        images = make_grid(images, nrow=nrow or images.shape[0], padding=2, pad_value=1.0)
    if images.dim() != 3 or images.shape[0] != 3:
        raise ValueError(f"a sample grid must be [N,3,H,W] or [3,H,W], got {tuple(images.shape)}")
    # [-1,1] -> [0,255] with rounding (not truncation) so a round-trip through the PNG is within 0.5/255.
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    Image.fromarray(pixels).save(tmp, format="PNG")
    os.replace(tmp, path)
    return pixels


class TrainingLog:
    def __init__(self, out_dir: Path, *, resume_step: int, total_steps: int, progress: bool = True, stage: str = "main") -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.stage = stage
        self.log_dir = Path(out_dir) / "logs" / stage
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.log_dir / "train.csv"
        self._columns: list[str] = list(_FIXED_COLUMNS)
        self._truncate_csv(resume_step)
        self._truncate_eval(resume_step)
        # purge_step makes TensorBoard discard events at or after it: those of an interrupted attempt.
        self.writer = SummaryWriter(str(self.log_dir / "tensorboard"), purge_step=resume_step + 1 if resume_step else None)
        self.console = Console(stderr=True)
        self._progress: Progress | None = None
        self._task = None
        if progress and self.console.is_terminal:
            self._progress = Progress(
                TextColumn(f"[bold]train {stage}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[stats]}"),
                console=self.console,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=total_steps, completed=resume_step, stats="")
        self._plain_lines = progress and self._progress is None

    def _truncate_csv(self, resume_step: int) -> None:
        if not self.csv_path.exists():
            return
        with self.csv_path.open(newline="") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or _FIXED_COLUMNS)
            rows = [row for row in reader if int(row["step"]) <= resume_step]
        self._columns = columns
        self._rewrite(rows)

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._columns)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.csv_path)

    def log(self, step: int, epoch: int, losses: dict[str, float], samples_per_s: float) -> None:
        row = {
            "step": str(step),
            "epoch": str(epoch),
            "samples_per_s": f"{samples_per_s:.4g}",
            "utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        row.update({name: repr(value) for name, value in losses.items()})
        new_columns = [name for name in losses if name not in self._columns]
        if new_columns or not self.csv_path.exists():
            # A loss name not seen before (or a fresh file): widen the header, keeping earlier rows.
            old_rows: list[dict[str, str]] = []
            if self.csv_path.exists():
                with self.csv_path.open(newline="") as f:
                    old_rows = list(csv.DictReader(f))
            self._columns += new_columns
            self._rewrite([*old_rows, row])
        else:
            with self.csv_path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._columns).writerow(row)
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", value, step)
        self.writer.add_scalar("throughput/samples_per_s", samples_per_s, step)
        stats = "  ".join(f"{name} {value:.3f}" for name, value in losses.items() if name.endswith("/total"))
        stats += f"  {samples_per_s:.1f} samples/s"
        if self._progress is not None:
            self._progress.update(self._task, completed=step, stats=stats)
        elif self._plain_lines:
            self.console.print(f"step {step}: {stats}", highlight=False)

    def advance(self, step: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step)

    def log_eval(self, step: int, scores: dict[str, float]) -> None:
        """One row of held-out scores in ``eval.csv`` (rows after a resumed run's step were dropped at start)."""
        path = self.log_dir / "eval.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["step", *sorted(scores)])
            if new:
                writer.writeheader()
            writer.writerow({"step": step, **scores})
        for key, value in scores.items():
            self.writer.add_scalar(f"eval/{key}", value, step)
        self.writer.flush()
        if self._plain_lines:
            self.console.print(f"step {step} eval: " + "  ".join(f"{k} {v:.4f}" for k, v in sorted(scores.items())), highlight=False)

    def _truncate_eval(self, resume_step: int) -> None:
        path = self.log_dir / "eval.csv"
        if not path.exists():
            return
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames or ["step"], [r for r in reader if int(r["step"]) <= resume_step]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    def add_image(self, step: int, image: np.ndarray) -> None:
        self.writer.add_image("samples", image, step, dataformats="HWC")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self.writer.flush()
        self.writer.close()
