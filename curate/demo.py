"""`make demo`: the whole pipeline end to end on the project's own synthetic data.

Each step is the exact command a user would type (printed before it runs), so the demo doubles as a
walk-through. Nothing here computes anything itself: it only chains the stage commands.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

console = Console()


def _bin(name: str) -> str:
    # The console scripts live beside the interpreter running the demo (the project's .venv).
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def run(*args: str) -> None:
    cmd = [_bin(args[0]), *args[1:]]
    console.print(Rule(f"[bold]$ {' '.join(shlex.quote(a) for a in args)}", align="left"))
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    console.print(f"[dim]({time.perf_counter() - start:.1f} s)[/dim]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--pairs", type=int, default=240, help="synthetic pairs to generate")
    parser.add_argument("--steps", type=int, default=100, help="training steps per model (tiny preset, CPU)")
    args = parser.parse_args(argv)

    out: Path = args.out
    if out.exists():
        # the demo's own output from an earlier run (never user data: the demo writes only here)
        import shutil

        console.print(f"removing the previous demo output {out}/")
        shutil.rmtree(out)
    src, ds = out / "synth", out / "ds"
    started = time.perf_counter()

    run("curate", "synth", "--out", str(src), "--n", str(args.pairs), "--size", "256x192", "--seed", "0")
    run("curate", "ingest", str(src), "--out", str(ds), "--workers", "2")
    run("curate", "dedupe", str(ds), "--workers", "2")
    run("curate", "filter", str(ds))
    run("curate", "summary", str(ds))
    run("curate", "triplets", str(ds))
    # the tiny presets are 64x48; SMIS is defined on its 8-class parsing, converted from LIP-20 by table
    run("curate", "labelmaps", str(ds), "--size", "64x48", "--label-set", "smis-8")
    # models with a perceptual loss train it with the seeded VGG19 (no weights can be downloaded here);
    # CAGAN has none; CP-VTON trains its two stages (gmm, then tom) in this one command
    models = {"smis": ["--perceptual-backbone", "untrained"], "spade": ["--perceptual-backbone", "untrained"],
              "cagan": [], "cp-vton": ["--perceptual-backbone", "untrained"]}
    for model, extra in models.items():
        run(
            "zoo", "train", "--model", model, "--data", str(ds), "--preset", "tiny", "--steps", str(args.steps),
            *extra, "--out", str(out / "checkpoints" / model), "--checkpoint-every", "0", "--sample-every", str(args.steps),
        )
    for model in models:
        for protocol in ("paired", "unpaired"):
            run(
                "evaluate", "--model", model, "--checkpoint", str(out / "checkpoints" / model), "--data", str(ds),
                "--protocol", protocol, "--feature-extractor", "untrained", "--out", str(out / "runs"),
                "--size", "64x48",
            )
    run("leaderboard", str(out / "runs"), "--out", str(out / "report"))
    console.print(Rule(f"[bold green]demo finished in {time.perf_counter() - started:.0f} s; outputs under {out}/"))


if __name__ == "__main__":
    main()
