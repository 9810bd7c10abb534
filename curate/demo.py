"""`make demo`: the whole pipeline end to end on the project's own synthetic data.

Each step is the exact command a user would type (printed before it runs, numbered, timed), so the demo
doubles as a walk-through. Nothing here computes anything itself: it only chains the stage commands.
Every model the registry knows is trained at its ``tiny`` preset and evaluated (a model added to
``models/zoo/`` joins without an edit here), then the two baselines at each models' resolution, the
leaderboard and the FiftyOne dataset.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

console = Console()

DEFAULT_LABEL_SET = "smis-8"  # the parsing the demo's label-map models read unless they declare their own
PROTOCOLS = ("paired", "unpaired")
BASELINES = ("identity", "paste")


@dataclasses.dataclass(frozen=True)
class Step:
    stage: str  # what the step is for (the timing table's row)
    args: tuple[str, ...]  # the command as a user types it
    optional: bool = False  # a failure is reported and the demo goes on (the FiftyOne step without FiftyOne)


def _bin(name: str) -> str:
    # The console scripts live beside the interpreter running the demo (the project's .venv).
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@dataclasses.dataclass(frozen=True)
class ModelPlan:
    name: str
    size: tuple[int, int]
    label_set: str | None  # None: the model reads no label map
    train_extra: tuple[str, ...]


def model_plans() -> list[ModelPlan]:
    """Every registered model at ``tiny``: its size, the label set it reads, and the options it needs here
    (the perceptual loss on the seeded VGG19: no weights can be downloaded)."""
    from models.registry import build_config, get_model_class, list_models

    plans = []
    for name in list_models():
        cls = get_model_class(name)
        config = build_config(name, "tiny")
        uses = cls.INPUTS.label_channels is not None
        label_set = (getattr(cls.INPUTS, "label_set", None) or DEFAULT_LABEL_SET) if uses else None
        recipe_fields = {f.name for f in dataclasses.fields(cls.Recipe)}
        extra = ("--perceptual-backbone", "untrained") if "perceptual_backbone" in recipe_fields else ()
        plans.append(ModelPlan(name, (int(config.height), int(config.width)), label_set, extra))
    return plans


def plan(out: Path, pairs: int, steps: int, workers: int, plans: list[ModelPlan], browse: bool = True) -> list[Step]:
    """The demo's commands, in order."""
    src, ds, runs, ckpts = out / "synth", out / "ds", out / "runs", out / "checkpoints"
    w = str(workers)
    todo = [
        Step("synth", ("curate", "synth", "--out", str(src), "--n", str(pairs), "--size", "256x192", "--seed", "0")),
        Step("ingest", ("curate", "ingest", str(src), "--out", str(ds), "--workers", w)),
        Step("dedupe", ("curate", "dedupe", str(ds), "--workers", w)),
        Step("filter", ("curate", "filter", str(ds), "--workers", w)),
        Step("summary", ("curate", "summary", str(ds))),
        Step("triplets", ("curate", "triplets", str(ds))),
    ]
    # one arrays folder per (size, label set) the models read; a model with no label map reads any of them
    arrays = sorted({(p.size, p.label_set or DEFAULT_LABEL_SET) for p in plans})
    for (h, wd), label_set in arrays:
        todo.append(Step("labelmaps", ("curate", "labelmaps", str(ds), "--size", f"{h}x{wd}", "--label-set", label_set)))
    for p in plans:
        label = ("--label-set", p.label_set) if p.label_set else ()
        todo.append(Step(f"train {p.name}", ("zoo", "train", "--model", p.name, "--data", str(ds), "--preset", "tiny",
                                             "--steps", str(steps), *p.train_extra, *label, "--out", str(ckpts / p.name),
                                             "--checkpoint-every", "0", "--sample-every", str(steps), "--log-every", str(max(1, steps // 20)))))
    scoring = ("--feature-extractor", "untrained", "--out", str(runs))
    for p in plans:
        for protocol in PROTOCOLS:
            todo.append(Step(f"evaluate {p.name}", ("evaluate", "--model", p.name, "--checkpoint", str(ckpts / p.name),
                                                    "--data", str(ds), "--protocol", protocol, *scoring)))
    for h, wd in sorted({p.size for p in plans}):
        for baseline in BASELINES:
            for protocol in PROTOCOLS:
                todo.append(Step(f"baseline {baseline}", ("evaluate", "--baseline", baseline, "--data", str(ds), "--size", f"{h}x{wd}",
                                                          "--protocol", protocol, *scoring)))
    todo.append(Step("leaderboard", ("leaderboard", str(runs), "--out", str(out / "report"))))
    if browse:
        todo.append(Step("fiftyone", ("curate", "browse", str(ds), "--runs", str(runs), "--name", "tryon-bench-demo"), optional=True))
    return todo


def child_env() -> dict[str, str]:
    """The stage commands' environment: no usage tracking by FiftyOne, and library deprecation warnings
    kept off the screen (they are the libraries' business, not the user's)."""
    env = dict(os.environ)
    env.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    # torchvision's "'pretrained' is deprecated" UserWarnings come from the lpips package building its
    # backbone the old way; nothing a user of the demo can act on
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), "ignore::DeprecationWarning",
                                                   "ignore::FutureWarning", "ignore::UserWarning:torchvision.models._utils"]))
    return env


def run_steps(steps: list[Step]) -> list[tuple[Step, float, int]]:
    done = []
    env = child_env()
    for i, step in enumerate(steps, 1):
        console.print(Rule(f"[bold][{i}/{len(steps)}] $ {' '.join(shlex.quote(a) for a in step.args)}", align="left"))
        start = time.perf_counter()
        rc = subprocess.run([_bin(step.args[0]), *step.args[1:]], env=env).returncode
        took = time.perf_counter() - start
        console.print(f"[dim]({took:.1f} s)[/dim]")
        done.append((step, took, rc))
        if rc != 0 and not step.optional:
            raise SystemExit(f"demo stopped: step {i} ({step.stage}) failed with exit code {rc}")
        if rc != 0:
            console.print(f"[yellow]step {i} ({step.stage}) did not run (exit code {rc}); the rest of the demo does not need it")
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--pairs", type=int, default=60, help="synthetic pairs to generate")
    parser.add_argument("--steps", type=int, default=5,
                        help="training steps per model and stage (tiny preset, CPU); the defaults keep the demo within "
                             "~15 minutes on 2 cores (measured: 727 s), more steps give outputs worth looking at")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-browse", action="store_true", help="skip building the FiftyOne dataset")
    args = parser.parse_args(argv)

    out: Path = args.out
    if out.exists():
        # the demo's own output from an earlier run (never user data: the demo writes only here)
        import shutil

        console.print(f"removing the previous demo output {out}/")
        shutil.rmtree(out)
    started = time.perf_counter()
    plans = model_plans()
    console.print(f"models in the registry: {', '.join(p.name for p in plans)}")
    done = run_steps(plan(out, args.pairs, args.steps, args.workers, plans, browse=not args.no_browse))
    total = time.perf_counter() - started
    by_stage: dict[str, float] = {}
    for step, took, _ in done:
        key = step.stage.split(" ")[0] if step.stage.startswith(("evaluate", "baseline")) else step.stage
        by_stage[key] = by_stage.get(key, 0.0) + took
    console.print(Rule("[bold]time per stage"))
    for stage, took in by_stage.items():
        console.print(f"  {stage:<18} {took:7.1f} s")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"  {'total':<18} {total:7.1f} s   (load average {load:.1f} on {os.cpu_count()} CPUs)")
    console.print(Rule(f"[bold green]demo finished in {total:.0f} s"))
    console.print(f"report: {out / 'report' / 'index.html'}  (and {out / 'report' / 'leaderboard.md'})")
    fiftyone = next((rc for step, _, rc in done if step.stage == "fiftyone"), None)
    if fiftyone == 0:
        console.print(f"browse:  {Path(sys.executable).parent / 'curate'} browse {out / 'ds'} --runs {out / 'runs'} "
                      "--name tryon-bench-demo --launch")
    elif fiftyone is not None:
        console.print("FiftyOne is not installed: `make browse-deps`, then "
                      f"`curate browse {out / 'ds'} --runs {out / 'runs'} --name tryon-bench-demo --launch`")


if __name__ == "__main__":
    main()
