"""`make demo` (curate/demo.py): its plan covers every stage and every registered model (a model added to
the registry joins without an edit), its children keep library deprecation warnings off the screen, and
(slow) the whole chain runs and ends with a report holding every model and both baselines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.demo import BASELINES, PROTOCOLS, child_env, model_plans, plan

REPO = Path(__file__).resolve().parents[1]


def test_plan_runs_every_stage_in_order_for_every_registered_model(tmp_path: Path) -> None:
    import tests.zoo_plugin_blend  # noqa: F401 - registers "blend", a model the demo has never heard of

    from models.registry import list_models

    plans = model_plans()
    assert [p.name for p in plans] == list_models() and "blend" in list_models()
    by_name = {p.name: p for p in plans}
    assert by_name["blend"].label_set is None and by_name["smis"].label_set == "smis-8"
    assert "--perceptual-backbone" in by_name["spade"].train_extra and by_name["blend"].train_extra == ()
    steps = plan(tmp_path / "out", pairs=20, steps=3, workers=2, plans=plans)
    stages = [s.stage for s in steps]
    head = ["synth", "ingest", "dedupe", "filter", "summary", "triplets", "labelmaps"]
    assert stages[: len(head)] == head
    trains = [s for s in stages if s.startswith("train ")]
    assert trains == [f"train {m}" for m in list_models()]
    for model in list_models():
        assert stages.count(f"evaluate {model}") == len(PROTOCOLS)
    sizes = {p.size for p in plans}
    for baseline in BASELINES:
        assert stages.count(f"baseline {baseline}") == len(PROTOCOLS) * len(sizes)
    assert stages[-2:] == ["leaderboard", "fiftyone"] and steps[-1].optional and not steps[-2].optional
    # every stage reads what the one before it wrote, and every scoring step uses the labelled untrained extractor
    assert stages.index("leaderboard") > max(i for i, s in enumerate(stages) if s.startswith(("evaluate", "baseline")))
    for step in steps:
        if step.args[0] == "evaluate":
            assert step.args[step.args.index("--feature-extractor") + 1] == "untrained"


def test_children_keep_library_deprecation_warnings_off_the_screen() -> None:
    code = ("import warnings, torchvision\n"
            "warnings.warn('old API', DeprecationWarning)\n"
            "warnings.warn('soon', FutureWarning)\n"
            "torchvision.models.alexnet(pretrained=False)\n"
            "warnings.warn('a real problem', UserWarning)\n")
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "deprecated" not in out.stderr and "old API" not in out.stderr and "soon" not in out.stderr
    assert "a real problem" in out.stderr  # only the libraries' notices are hidden, not our own warnings
    assert child_env()["FIFTYONE_DO_NOT_TRACK"] == "true"


@pytest.mark.slow
def test_demo_end_to_end_produces_the_report_with_every_model_and_both_baselines(tmp_path: Path) -> None:
    from models.registry import list_models

    out = tmp_path / "demo"
    env = {**os.environ, "TRYON_BENCH_CACHE": str(tmp_path / "cache"), "FIFTYONE_DATABASE_DIR": str(tmp_path / "fo-db")}
    result = subprocess.run([sys.executable, "-m", "curate.demo", "--out", str(out), "--pairs", "40", "--steps", "2"],
                            env=env, capture_output=True, text=True, timeout=3600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DeprecationWarning" not in result.stderr and "is deprecated" not in result.stderr
    md = (out / "report" / "leaderboard.md").read_text()
    for model in list_models():
        assert model in md, model
    assert "baseline-identity" in md and "baseline-paste" in md
    assert (out / "report" / "index.html").stat().st_size > 10_000
    assert "report: " in result.stdout and "index.html" in result.stdout
