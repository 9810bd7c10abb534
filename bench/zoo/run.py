"""Model-zoo benchmark: parameter counts vs the official ones, training and inference speed, peak memory.

One command (from the repo root):

    .venv/bin/python bench/zoo/run.py            # full: every model and preset (~15-25 min on 2 busy cores)
    .venv/bin/python bench/zoo/run.py --quick    # tiny presets + paper batch 1 eager only (~5 min)

Every timing runs in its own subprocess (so its peak RSS is its own) with the same thread count, and
every comparison is printed as a ratio of two numbers measured in this same run:
  * parameters: ours / official (from ../shared/reference/checkpoints/INDEX.md; 1.000000 = exact)
  * training at `tiny`: ms per optimiser step through `models.trainer.train` vs a bare loop doing the
    same phases with no logging/checkpoint/RNG bookkeeping (trainer overhead ratio), and samples/s
  * inference (`generate`, no grad): images/s at tiny and paper, batch 1 and 4, eager and
    `torch.compile` (compiled / eager speed-up, batch-4 / batch-1 throughput ratio)
Random tensors in the batch-contract shapes stand in for data: speed does not depend on pixel values.
With `--markdown FILE` the tables (plus command, date, machine note) are written there.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

# Official generator parameter counts (parameters only, buffers excluded), from
# ../shared/reference/checkpoints/INDEX.md, measured on the upstream code. Each entry says which of our
# model's sub-modules is the generator and which overrides reproduce the official configuration.
OFFICIAL: list[dict[str, Any]] = [
    {"model": "smis", "preset": "paper", "overrides": {}, "module": "generator", "official": "smis_deepfashion_G", "params": 96_324_451},
    {"model": "spade", "preset": "paper", "overrides": {"label_nc": 35, "contain_dontcare_label": False, "crop": (256, 512), "num_upsampling_layers": "more"}, "module": "generator", "official": "spade_cityscapes_G", "params": 93_048_003},
    {"model": "spade", "preset": "paper", "overrides": {"label_nc": 150, "contain_dontcare_label": True}, "module": "generator", "official": "spade_ade20k_G", "params": 96_492_483},
    {"model": "spade", "preset": "paper", "overrides": {"label_nc": 182, "contain_dontcare_label": True, "no_instance": False}, "module": "generator", "official": "spade_coco_G", "params": 97_480_899},
]


# --------------------------------------------------------------------------------------------------
# Child-process measurements (each prints one JSON line)


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux: the peak resident set of this process.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


def _dataset_for(model: Any, n: int) -> Any:
    from tests.model_fixtures import ToyTryOnDataset

    return ToyTryOnDataset(n=n, size=tuple(model.input_size), num_classes=getattr(model.config, "label_nc", 4))


def _create(name: str, preset: str, overrides: dict[str, Any]) -> Any:
    import torch

    from models import create_model

    torch.manual_seed(0)
    return create_model(name, preset, **overrides)


def measure_train(name: str, preset: str, batch: int, steps: int, threads: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """ms/step through the trainer (after warm-up steps) and through a bare loop over the same phases."""
    import torch

    from models.trainer import TrainConfig, batch_to_device, train

    _setup(threads)
    baseline = _peak_rss_mib()  # interpreter + torch imports: subtracted to give the run's own memory
    model = _create(name, preset, overrides)
    data = _dataset_for(model, n=batch * 4)
    warmup = 2
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(batch_size=batch, checkpoint_every=0, sample_every=0, log_every=10, progress=False, out_dir=Path(tmp))
        train(model, data, TrainConfig(steps=warmup, **common))
        start = time.perf_counter()
        train(model, data, TrainConfig(steps=warmup + steps, resume=True, **common))
        trainer_ms = (time.perf_counter() - start) / steps * 1000

    # The same phases without the trainer: fixed batch, one Adam per phase, no logs/checkpoints/RNG capture.
    phases = model.training_phases()
    optimizers = [torch.optim.Adam(p.parameters, lr=p.lr, betas=tuple(p.betas)) for p in phases]
    fixed = batch_to_device(torch.utils.data.default_collate([data[i] for i in range(batch)]), torch.device("cpu"))

    def bare_step() -> None:
        for phase, optimizer in zip(phases, optimizers):
            optimizer.zero_grad(set_to_none=True)
            phase.losses(fixed)["total"].backward()
            optimizer.step()

    for _ in range(warmup):
        bare_step()
    start = time.perf_counter()
    for _ in range(steps):
        bare_step()
    bare_ms = (time.perf_counter() - start) / steps * 1000
    return {
        "trainer_ms_per_step": trainer_ms,
        "bare_ms_per_step": bare_ms,
        "samples_per_s": batch * 1000 / trainer_ms,
        "params": sum(p.numel() for p in model.parameters()),
        "peak_rss_mib": _peak_rss_mib() - baseline,
    }


def measure_inference(name: str, preset: str, batch: int, compiled: bool, repeats: int, threads: int) -> dict[str, Any]:
    import torch
    from torch.utils.data import default_collate

    _setup(threads)
    baseline = _peak_rss_mib()
    model = _create(name, preset, {}).eval()
    data = _dataset_for(model, n=batch)
    inputs = default_collate([data[i] for i in range(batch)])
    run = torch.compile(model.generate) if compiled else model.generate
    with torch.no_grad():
        start = time.perf_counter()
        out = run(inputs)  # first call: warm-up (and compilation)
        first_s = time.perf_counter() - start
        assert out.shape[0] == batch and torch.isfinite(out).all(), "generate gave a wrong shape or NaN"
        start = time.perf_counter()
        for _ in range(repeats):
            run(inputs)
        per_call = (time.perf_counter() - start) / repeats
    return {"images_per_s": batch / per_call, "ms_per_call": per_call * 1000, "first_call_s": first_s, "peak_rss_mib": _peak_rss_mib() - baseline}


def _child(args: argparse.Namespace) -> None:
    spec = json.loads(args.child)
    if spec["kind"] == "train":
        result = measure_train(spec["model"], spec["preset"], spec["batch"], spec["steps"], spec["threads"], spec.get("overrides", {}))
    else:
        result = measure_inference(spec["model"], spec["preset"], spec["batch"], spec["compiled"], spec["repeats"], spec["threads"])
    print("RESULT " + json.dumps(result))


def _run_child(spec: dict[str, Any], timeout_s: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": tail[0][:200]}


# --------------------------------------------------------------------------------------------------
# Parent: parameter table, timing tables, Markdown


def parameter_rows() -> list[dict[str, Any]]:
    import torch

    from models import create_model, list_models

    rows = []
    for entry in OFFICIAL:
        if entry["model"] not in list_models():
            rows.append({**entry, "ours": None, "note": "model not registered"})
            continue
        try:
            with torch.device("meta"):  # counts need shapes only: no 100M-parameter allocation
                model = create_model(entry["model"], entry["preset"], **entry["overrides"])
        except (ValueError, TypeError) as exc:
            rows.append({**entry, "ours": None, "note": f"config not expressible: {exc}"})
            continue
        module = getattr(model, entry["module"], model)
        rows.append({**entry, "ours": sum(p.numel() for p in module.parameters()), "note": ""})
    return rows


def _fmt(value: Any, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny presets + paper batch 1 eager only")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per measurement (the CI box has 2 cores)")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--markdown", type=Path, help="also write the results as Markdown here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return

    from models import list_models
    from models.cli import model_type

    lines: list[str] = []

    def emit(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    emit("### Parameter counts vs the official generators")
    emit("| ours | official | our params | official params | ours / official |")
    emit("|---|---|---:|---:|---:|")
    for row in parameter_rows():
        ratio = f"{row['ours'] / row['params']:.6f}" if row["ours"] else row["note"]
        emit(f"| {row['model']} {row['preset']} {row['overrides'] or ''} | {row['official']} | {_fmt(row['ours'], ',')} | {row['params']:,} | {ratio} |")

    emit("")
    emit(f"### Training at `tiny` ({args.threads} threads, {args.train_steps} timed steps after 2 warm-up)")
    emit("| model | batch | params (G+D+E) | trainer ms/step | bare loop ms/step | trainer / bare | samples/s | peak RSS MiB above imports |")
    emit("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in list_models():
        for batch in (1, 4) if not args.quick else (4,):
            r = _run_child({"kind": "train", "model": name, "preset": "tiny", "batch": batch, "steps": args.train_steps, "threads": args.threads}, 900)
            if "error" in r:
                emit(f"| {name} | {batch} | error: {r['error']} ||||||")
                continue
            emit(
                f"| {name} | {batch} | {r['params']:,} | {r['trainer_ms_per_step']:.0f} | {r['bare_ms_per_step']:.0f} | "
                f"{r['trainer_ms_per_step'] / r['bare_ms_per_step']:.2f} | {r['samples_per_s']:.1f} | {r['peak_rss_mib']:.0f} |"
            )

    emit("")
    emit(f"### Inference (`generate`, no grad, CPU, {args.threads} threads)")
    emit("| model | preset | batch | eager img/s | compiled img/s | compiled / eager | first compiled call s | peak RSS MiB above imports (eager) |")
    emit("|---|---|---:|---:|---:|---:|---:|---:|")
    per_batch: dict[tuple[str, str, int], float] = {}
    for name in list_models():
        for preset in model_type(name).PRESETS:
            for batch in (1, 4):
                if args.quick and (preset != "tiny" and batch != 1):
                    continue
                repeats = 5 if preset == "tiny" else 1
                spec = {"kind": "infer", "model": name, "preset": preset, "batch": batch, "repeats": repeats, "threads": args.threads}
                eager = _run_child({**spec, "compiled": False}, 900)
                compiled = {"error": "skipped (--quick)"} if args.quick else _run_child({**spec, "compiled": True}, 900)
                if "error" in eager:
                    emit(f"| {name} | {preset} | {batch} | error: {eager['error']} |||||")
                    continue
                per_batch[(name, preset, batch)] = eager["images_per_s"]
                c_ips = compiled.get("images_per_s")
                speedup = f"{c_ips / eager['images_per_s']:.2f}" if c_ips else compiled.get("error", "—")
                emit(
                    f"| {name} | {preset} | {batch} | {eager['images_per_s']:.2f} | {_fmt(c_ips, '.2f')} | {speedup} | "
                    f"{_fmt(compiled.get('first_call_s'))} | {eager['peak_rss_mib']:.0f} |"
                )
    ratios = [
        f"{n} {p}: {per_batch[(n, p, 4)] / per_batch[(n, p, 1)]:.2f}x"
        for (n, p, b) in per_batch
        if b == 1 and (n, p, 4) in per_batch
    ]
    if ratios:
        emit("")
        emit("Batch-4 / batch-1 eager throughput: " + "; ".join(ratios))

    if args.markdown:
        header = [
            "# Model zoo benchmark",
            "",
            f"Command: `.venv/bin/python bench/zoo/run.py{' --quick' if args.quick else ''} --markdown {args.markdown}`  ",
            f"Date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}  ",
            f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs (timings are noisy; "
            f"compare the ratios, which were measured side by side in this run), torch threads {args.threads}.",
            "",
        ]
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(header + lines) + "\n")


if __name__ == "__main__":
    main()
