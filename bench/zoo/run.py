"""Model-zoo benchmark: parameter counts vs the official ones, training and inference speed, peak memory.

One command (from the repo root):

    .venv/bin/python bench/zoo/run.py            # full: every model and preset (~15-25 min on 2 busy cores)
    .venv/bin/python bench/zoo/run.py --quick    # tiny presets + paper batch 1 eager only (~5 min)
    .venv/bin/python bench/zoo/run.py --models cagan,cp-vton --no-compile   # some models, eager only
    .venv/bin/python bench/zoo/run.py --models viton --all-stages           # every training stage timed

Every timing runs in its own subprocess (so its peak RSS is its own) with the same thread count, and
every comparison is printed as a ratio of two numbers measured in this same run:
  * parameters: ours / official (from ../shared/reference/checkpoints/INDEX.md; 1.000000 = exact)
  * training at `tiny`: ms per optimiser step through `models.trainer.train` vs a bare loop doing the
    same phases with no logging/checkpoint/RNG bookkeeping (trainer overhead ratio), and samples/s
  * inference (`generate`, no grad): images/s at every preset, batch 1 and 8 (`--batches`), eager and
    `torch.compile` (compiled / eager speed-up, batch-N / batch-1 throughput ratio)
Random tensors in the batch-contract shapes stand in for data: speed does not depend on pixel values.
With `--markdown FILE` the tables (plus command, date, machine note) are written there.

`--against REV` times the SPADE-family generate path against the code at git revision REV (extracted
to a temporary folder), same weights (seed 0) and inputs, old and new child processes alternated for
`--rounds` rounds (order flipped each round), and reports per-round ratios, their median, the max |Δ|
between the two outputs and the load average:

    .venv/bin/python bench/zoo/run.py --against a80d7f6 --only spade:paper-ade20k,spade:paper-cityscapes,smis:paper \
        --batches 1 --no-compile --rounds 3 --markdown docs/benchmarks/zoo-official.md
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
# ../shared/reference/checkpoints/INDEX.md, measured on the upstream code. Each entry names the preset
# that reproduces the official configuration and which of our sub-modules is the generator.
OFFICIAL: list[dict[str, Any]] = [
    {"model": "smis", "preset": "paper", "module": "generator", "official": "smis_deepfashion_G", "params": 96_324_451},
    {"model": "spade", "preset": "paper-cityscapes", "module": "generator", "official": "spade_cityscapes_G", "params": 93_048_003},
    {"model": "spade", "preset": "paper-ade20k", "module": "generator", "official": "spade_ade20k_G", "params": 96_492_483},
    {"model": "spade", "preset": "paper-coco", "module": "generator", "official": "spade_coco_G", "params": 97_480_899},
    {"model": "cp-vton", "preset": "paper", "module": "gmm", "official": "cpvton_gmm", "params": 19_057_650},
    {"model": "cp-vton", "preset": "paper", "module": "tom", "official": "cpvton_tom", "params": 21_349_252},
    {"model": "cp-vton", "preset": "paper-plus", "module": "gmm", "official": "cpvtonplus_gmm", "params": 19_055_602},
    {"model": "cp-vton", "preset": "paper-plus", "module": "tom", "official": "cpvtonplus_tom", "params": 21_350_276},
    {"model": "acgpn", "preset": "paper", "module": "g1", "official": "acgpn_G1", "params": 34_540_942},
    {"model": "acgpn", "preset": "paper", "module": "g2", "official": "acgpn_G2", "params": 34_533_441},
    {"model": "acgpn", "preset": "paper", "module": "u", "official": "acgpn_U", "params": 36_467_950},
    {"model": "acgpn", "preset": "paper", "module": "g", "official": "acgpn_G", "params": 34_527_107},
]


# --------------------------------------------------------------------------------------------------
# Child-process measurements (each prints one JSON line)


def _peak_rss_mib() -> float:
    """Peak resident set of this process (VmHWM). Not ru_maxrss: that survives exec, so a child would
    start at its parent's peak (the parent built the paper models for the parameter table)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # non-Linux fallback


def _setup(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


def _dataset_for(model: Any, n: int) -> Any:
    from tests.model_fixtures import ToyTryOnDataset

    return ToyTryOnDataset(n=n, size=tuple(model.input_size), num_classes=model.num_classes or 4)


# The trainer's own overhead is measured on the test fixture (a small two-phase GAN, no registry needed),
# sized so that one step costs tens of milliseconds like the zoo's tiny presets.
FIXTURE = "fixture:toy"
FIXTURE_OVERRIDES = {"ngf": 64, "ndf": 64, "height": 64, "width": 64, "label_nc": 8}


def _create(name: str, preset: str, overrides: dict[str, Any]) -> Any:
    import torch

    torch.manual_seed(0)
    if name == FIXTURE:
        from tests.model_fixtures import ToyConfig, ToyTryOn

        return ToyTryOn(ToyConfig(**{**FIXTURE_OVERRIDES, **overrides}))
    from models import create_model

    return create_model(name, preset, **overrides)


def _recipe(name: str, model: Any) -> Any:
    """The model's default recipe; no VGG19 weights can be downloaded here, so the perceptual loss is
    timed with its seeded untrained backbone (same architecture and cost as the ImageNet one)."""
    from dataclasses import fields

    from models.trainer import default_recipe

    recipe = default_recipe(model)
    if any(f.name == "perceptual_backbone" for f in fields(recipe)):
        from dataclasses import replace

        recipe = replace(recipe, perceptual_backbone="untrained")
    return recipe


def measure_train(name: str, preset: str, batch: int, steps: int, threads: int, overrides: dict[str, Any],
                  stage_index: int = 0) -> dict[str, Any]:
    """ms/step through the trainer and through a bare loop over the same phases, alternated 3 times.

    On a shared machine the load drifts within seconds, so the two are interleaved (trainer segment,
    bare segment, x3) and each reported figure is the median of its three segments.
    """
    import statistics

    import torch

    from models.trainer import TrainConfig, batch_to_device, train

    _setup(threads)
    baseline = _peak_rss_mib()  # interpreter + torch imports: subtracted to give the run's own memory
    model = _create(name, preset, overrides)
    recipe = _recipe(name, model)
    data = _dataset_for(model, n=batch * 4)
    stages = model.training_stages(recipe)
    stage = stages[stage_index]  # multi-stage models: their first stage unless --all-stages
    phases = stage.phases
    optimizers = [torch.optim.Adam(p.parameters, lr=p.lr, betas=tuple(p.betas)) for p in phases]
    fixed = batch_to_device(torch.utils.data.default_collate([data[i] for i in range(batch)]), torch.device("cpu"))

    def bare_step() -> None:
        # The same phases with nothing else: one fixed batch, no logs, checkpoints or RNG capture.
        for phase, optimizer in zip(phases, optimizers):
            optimizer.zero_grad(set_to_none=True)
            phase.losses(fixed)["total"].backward()
            optimizer.step()

    trainer_ms, bare_ms = [], []
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(batch_size=batch, checkpoint_every=0, sample_every=0, log_every=10, progress=False, out_dir=Path(tmp),
                      stage=stage.name)
        done = 2
        train(model, data, TrainConfig(steps=done, **common), recipe)  # warm-up (also creates the run to resume)
        for _ in range(2):
            bare_step()
        for _ in range(3):
            start = time.perf_counter()
            train(model, data, TrainConfig(steps=done + steps, resume=True, **common), recipe)
            trainer_ms.append((time.perf_counter() - start) / steps * 1000)
            done += steps
            start = time.perf_counter()
            for _ in range(steps):
                bare_step()
            bare_ms.append((time.perf_counter() - start) / steps * 1000)
    trainer, bare = statistics.median(trainer_ms), statistics.median(bare_ms)
    return {
        "trainer_ms_per_step": trainer,
        "bare_ms_per_step": bare,
        "samples_per_s": batch * 1000 / trainer,
        "params": sum(p.numel() for p in model.parameters()),
        "peak_rss_mib": _peak_rss_mib() - baseline,
        "stage": stage.name,
        "stages": len(stages),
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
        calls = []
        for _ in range(repeats):  # median of single calls: one load spike on the shared box moves a mean
            start = time.perf_counter()
            run(inputs)
            calls.append(time.perf_counter() - start)
        per_call = sorted(calls)[len(calls) // 2]
    return {"images_per_s": batch / per_call, "ms_per_call": per_call * 1000, "first_call_s": first_s, "peak_rss_mib": _peak_rss_mib() - baseline}


def measure_against(spec: dict[str, Any]) -> dict[str, Any]:
    """One code tree's generate path (``spec['tree']`` first on sys.path): median ms of single calls, output saved.

    SPADE: ``generate(batch)``; SMIS: the generator on fixed style codes (``generate_from_codes``, the path
    of an import without an encoder; the official test samples codes too). The batch carries an all-zero
    ``instance`` map so that SPADE releases with an edge channel get the same (empty) edges in both trees.
    """
    import statistics

    sys.path.insert(0, spec["tree"])
    import torch

    _setup(spec["threads"])
    from models import create_model

    torch.manual_seed(0)
    model = create_model(spec["model"], spec["preset"]).eval()
    (h, w), b = model.input_size, spec["batch"]
    g = torch.Generator().manual_seed(1)
    # a blocky layout (16x16 cells): the cost does not depend on it, the edges and resizing do look real
    ids = torch.randint(0, spec["num_ids"], (b, h // 16, w // 16), generator=g).repeat_interleave(16, 1).repeat_interleave(16, 2)
    batch = {"labelmap": ids, "instance": torch.zeros_like(ids), "image": torch.rand(b, 3, h, w, generator=g) * 2 - 1}
    if spec["model"] == "smis":
        lh, lw = model.generator.latent
        c, zc = model.config.label_nc, model.config.z_per_class
        codes = torch.randn(b, c, zc, lh * lw, generator=torch.Generator().manual_seed(2)).view(b, zc * c, lh, lw)
        call = lambda: model.generate_from_codes(ids, codes)  # noqa: E731
    else:
        call = lambda: model.generate(batch)  # noqa: E731
    if spec["compiled"]:
        model.generator.compile()
    with torch.no_grad():  # the pre-change `zoo generate` ran under no_grad; the new generate adds inference_mode
        start = time.perf_counter()
        out = call()
        first_s = time.perf_counter() - start
        calls, cpu = [], []
        for _ in range(spec["repeats"]):
            start, cpu_start = time.perf_counter(), time.process_time()
            call()
            calls.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    torch.save(out.float().contiguous(), spec["out"])
    # CPU seconds of the process (both threads): less moved by other jobs' load than wall time
    return {"ms_per_call": statistics.median(calls) * 1000, "cpu_ms_per_call": statistics.median(cpu) * 1000, "first_call_s": first_s}


def _child(args: argparse.Namespace) -> None:
    spec = json.loads(args.child)
    if spec["kind"] == "against":
        print("RESULT " + json.dumps(measure_against(spec)))
        return
    if spec["kind"] == "train":
        result = measure_train(spec["model"], spec["preset"], spec["batch"], spec["steps"], spec["threads"], spec.get("overrides", {}),
                               spec.get("stage", 0))
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
            # Built on the CPU: a meta-device build is slower here (spectral norm's power iterations
            # run through Python reference ops on meta tensors).
            torch.manual_seed(0)
            model = create_model(entry["model"], entry["preset"])
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
    parser.add_argument("--train-steps", type=int, default=20, help="steps per timed segment (3 trainer and 3 bare segments, alternated; a trainer segment includes its resume and final checkpoint)")
    parser.add_argument("--markdown", type=Path, help="also write the results as Markdown here")
    parser.add_argument("--models", help="comma-separated model names [default: every registered model]")
    parser.add_argument("--batches", default="1,8", help="inference batch sizes (the first is the reference of the ratio)")
    parser.add_argument("--no-compile", action="store_true", help="eager inference only (torch.compile takes minutes per preset)")
    parser.add_argument("--all-stages", action="store_true", help="time every training stage of multi-stage models, not only the first")
    parser.add_argument("--against", metavar="REV", help="time the SPADE-family generate path against the code at this git revision")
    parser.add_argument("--only", help="with --against: model:preset pairs [default: spade:paper-ade20k,spade:paper-cityscapes,smis:paper]")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: alternated old/new rounds")
    parser.add_argument("--repeats", type=int, default=3, help="with --against: timed calls per child after its warm-up call")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return
    if args.against:
        lines = against(args)
        _write_markdown(args, lines)
        return

    lines: list[str] = []

    def emit(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    def emit_train_row(name: str, batch: int, stage: int = 0) -> int:
        """One row; returns how many stages the model has (1 when unknown)."""
        r = _run_child({"kind": "train", "model": name, "preset": "tiny", "batch": batch, "steps": args.train_steps,
                        "threads": args.threads, "stage": stage}, 900)
        if "error" in r:
            emit(f"| {name} | {batch} | error: {r['error']} ||||||")
            return 1
        label = f"{name} / {r['stage']}" if args.all_stages and r["stages"] > 1 else name
        emit(
            f"| {label} | {batch} | {r['params']:,} | {r['trainer_ms_per_step']:.0f} | {r['bare_ms_per_step']:.0f} | "
            f"{r['trainer_ms_per_step'] / r['bare_ms_per_step']:.2f} | {r['samples_per_s']:.1f} | {r['peak_rss_mib']:.0f} |"
        )
        return int(r["stages"])

    train_header = (
        "| model | batch | params (all phases) | trainer ms/step | bare loop ms/step | trainer / bare | samples/s | peak RSS MiB above imports |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    emit(f"### Trainer overhead on the test fixture ({FIXTURE_OVERRIDES}, {args.threads} threads, {args.train_steps}-step segments, median of 3 alternated)")
    emit("`trainer` = `models.trainer.train` with its data stream, logging and final checkpoint; `bare` = the same")
    emit("phases on one fixed batch with nothing else. The ratio is the price of the trainer's bookkeeping.")
    emit(train_header)
    for batch in (1, 4):
        emit_train_row(FIXTURE, batch)

    try:
        from models import list_models
        from models.registry import get_model_class

        names = list_models()
        if args.models:
            wanted = [n.strip() for n in args.models.split(",") if n.strip()]
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                parser.error(f"unknown models {unknown}; valid: {', '.join(names)}")
            names = wanted
    except ImportError as exc:
        emit("")
        emit(f"**Model rows pending**: the registry is not importable yet ({exc}).")
        names = []
    if not names:
        _write_markdown(args, lines)
        return
    emit("")

    emit("### Parameter counts vs the official generators")
    emit("| ours | official | our params | official params | ours / official |")
    emit("|---|---|---:|---:|---:|")
    for row in parameter_rows():
        if row["model"] not in names:
            continue
        ratio = f"{row['ours'] / row['params']:.6f}" if row["ours"] else row["note"]
        emit(f"| {row['model']} {row['preset']} | {row['official']} | {_fmt(row['ours'], ',')} | {row['params']:,} | {ratio} |")

    emit("")
    emit(f"### Training at `tiny` ({args.threads} threads, {args.train_steps}-step segments, median of 3 alternated)")
    emit("Each model's default recipe, all its losses (perceptual ones with the seeded untrained VGG19, same cost")
    emit("as the ImageNet one); " + ("every stage of a multi-stage model (`model / stage`)." if args.all_stages
                                      else "a multi-stage model's first stage (CP-VTON: the GMM)."))
    emit(train_header)
    for name in names:
        for batch in (1, 4) if not args.quick else (4,):
            stages = emit_train_row(name, batch)
            for stage in range(1, stages if args.all_stages else 1):
                emit_train_row(name, batch, stage)

    emit("")
    emit(f"### Inference (`generate`, no grad, CPU, {args.threads} threads)")
    emit("| model | preset | batch | eager img/s | compiled img/s | compiled / eager | first compiled call s | peak RSS MiB above imports (eager) |")
    emit("|---|---|---:|---:|---:|---:|---:|---:|")
    per_batch: dict[tuple[str, str, int], float] = {}
    batches = tuple(int(b) for b in args.batches.split(","))
    for name in names:
        for preset in get_model_class(name).PRESETS:
            for batch in batches:
                if args.quick and (preset != "tiny" and batch != batches[0]):
                    continue
                repeats = 7 if preset == "tiny" else (3 if batch == batches[0] else 1)
                spec = {"kind": "infer", "model": name, "preset": preset, "batch": batch, "repeats": repeats, "threads": args.threads}
                eager = _run_child({**spec, "compiled": False}, 900)
                skip = "skipped (--quick)" if args.quick else "skipped (--no-compile)" if args.no_compile else None
                compiled = {"error": skip} if skip else _run_child({**spec, "compiled": True}, 900)
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
    first, last = batches[0], batches[-1]
    ratios = [
        f"{n} {p}: {per_batch[(n, p, last)] / per_batch[(n, p, first)]:.2f}x"
        for (n, p, b) in per_batch
        if b == first and (n, p, last) in per_batch and last != first
    ]
    if ratios:
        emit("")
        emit(f"Batch-{last} / batch-{first} eager throughput: " + "; ".join(ratios))

    _write_markdown(args, lines)


def against(args: argparse.Namespace) -> list[str]:
    """Old (REV) vs new generate path, alternated in fresh child processes; see the module docstring."""
    import statistics

    import torch

    from models import create_model

    lines: list[str] = []

    def emit(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    pairs = [p.split(":") for p in (args.only or "spade:paper-ade20k,spade:paper-cityscapes,smis:paper").split(",")]
    batches = tuple(int(b) for b in args.batches.split(","))
    modes = (False,) if args.no_compile else (False, True)
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp) / "old"
        old_tree.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.against], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
        emit(f"### Generate path: this tree vs `{args.against}` ({args.threads} threads, CPU, {args.rounds} rounds alternated, "
             f"median of {args.repeats} calls per child after a warm-up call)")
        emit(f"Load average at start: {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min) on {os.cpu_count()} cores.")
        emit("")
        emit("| model | preset | batch | mode | old ms/call (per round) | new ms/call (per round) | old / new per round | median old / new (wall) | median old / new (CPU s of the process) | max abs diff | first call s old / new |")
        emit("|---|---|---:|---|---|---|---|---:|---:|---:|---|")
        for name, preset in pairs:
            with torch.device("meta"):
                num_ids = int(create_model(name, preset).config.label_nc)
            for batch in batches:
                for compiled in modes:
                    times: dict[str, list[float]] = {"old": [], "new": []}
                    cpu: dict[str, list[float]] = {"old": [], "new": []}
                    first: dict[str, float] = {}
                    error = None
                    for r in range(args.rounds):
                        for which in (("old", "new") if r % 2 == 0 else ("new", "old")):
                            spec = {"kind": "against", "tree": str(old_tree if which == "old" else REPO), "model": name,
                                    "preset": preset, "batch": batch, "compiled": compiled, "repeats": args.repeats,
                                    "threads": args.threads, "num_ids": num_ids, "out": str(Path(tmp) / f"{which}.pt")}
                            result = _run_child(spec, 1800)
                            if "error" in result:
                                error = f"{which}: {result['error']}"
                                break
                            times[which].append(result["ms_per_call"])
                            cpu[which].append(result["cpu_ms_per_call"])
                            first[which] = result["first_call_s"]
                        if error:
                            break
                    mode = "compiled" if compiled else "eager"
                    if error:
                        emit(f"| {name} | {preset} | {batch} | {mode} | error {error} |||||||")
                        continue
                    diff = (torch.load(Path(tmp) / "old.pt") - torch.load(Path(tmp) / "new.pt")).abs().max().item()
                    ratios = [o / n for o, n in zip(times["old"], times["new"])]
                    cpu_ratio = statistics.median([o / n for o, n in zip(cpu["old"], cpu["new"])])
                    emit(f"| {name} | {preset} | {batch} | {mode} | {', '.join(f'{t:.0f}' for t in times['old'])} | "
                         f"{', '.join(f'{t:.0f}' for t in times['new'])} | {', '.join(f'{x:.2f}' for x in ratios)} | "
                         f"{statistics.median(ratios):.2f}x | {cpu_ratio:.2f}x | {diff:.1e} | {first['old']:.1f} / {first['new']:.1f} |")
        emit("")
        emit(f"Load average at end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    return lines


def _write_markdown(args: argparse.Namespace, lines: list[str]) -> None:
    if not args.markdown:
        return
    header = [
        "# Model zoo benchmark",
        "",
        f"Command: `.venv/bin/python bench/zoo/run.py{' --quick' if args.quick else ''}"
        f"{f' --models {args.models}' if args.models else ''}{' --no-compile' if args.no_compile else ''}"
        f"{' --all-stages' if args.all_stages else ''}{f' --threads {args.threads}' if args.threads != 2 else ''}"
        f"{f' --train-steps {args.train_steps}' if args.train_steps != 20 else ''}"
        f"{f' --batches {args.batches}' if args.batches != '1,8' else ''}"
        f"{f' --against {args.against} --rounds {args.rounds} --repeats {args.repeats}' if args.against else ''}"
        f"{f' --only {args.only}' if args.only else ''} --markdown {args.markdown}`  ",
        f"Date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs (timings are noisy; "
        f"compare the ratios, which were measured side by side in this run), torch threads {args.threads}.  ",
        "This page is written by the command above; re-run it to refresh every number.",
        "",
    ]
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text("\n".join(header + lines) + "\n")


if __name__ == "__main__":
    main()
