"""The leaderboard from run records: grouping by comparability, directions read from the records, the
baselines in every table, sample grids on the same pairs (worst/best by LPIPS), escaping of every data
string, and the page rendered in headless Chromium."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from report_fixtures import HOSTILE_FILE, HOSTILE_MODEL, ground_truth_pairs, noisy, write_run
from reports.cli import app
from reports.records import group_runs, load_runs


@pytest.fixture(scope="module")
def board(curated_ds: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two models, both baselines, one run with another extractor, one unpaired run and one unscored one."""
    root = tmp_path_factory.mktemp("board")
    runs = root / "runs"
    pairs, truth = ground_truth_pairs(curated_ds)
    good = [0.01, 0.02, 0.03, 0.04, 0.05, 0.30]  # pair 5 is this model's worst, pair 0 its best
    bad = [0.40, 0.35, 0.30, 0.25, 0.20, 0.10]  # the reverse order
    ckpt = root / "ckpt-good"
    (ckpt / "logs" / "main").mkdir(parents=True)
    (ckpt / "logs" / "main" / "train.csv").write_text(
        "step,epoch,samples_per_s,utc,generator/total,discriminator/total\n" + "".join(f"{s},0,1,x,{2 - s / 10},{1 + s / 20}\n" for s in range(1, 11)))
    written = {
        "good": write_run(runs, "good-model", ds=curated_ds, pairs=pairs, images=noisy(truth, good), lpips=good, fid=20.0, fps=50.0,
                          checkpoint=str(ckpt)),
        "bad": write_run(runs, HOSTILE_MODEL, ds=curated_ds, pairs=pairs, images=noisy(truth, bad), lpips=bad, fid=40.0, fps=500.0,
                         names=[HOSTILE_FILE] + [p.replace("/", "_") + ".png" for p in pairs[1:]]),
        "paste": write_run(runs, "baseline-paste", kind="baseline", ds=curated_ds, pairs=pairs, images=noisy(truth, [0.1] * 6),
                           lpips=[0.1] * 6, fid=30.0, fps=5000.0),
        "identity": write_run(runs, "baseline-identity", kind="baseline", ds=curated_ds, pairs=pairs, images=truth, lpips=[0.0] * 6,
                              fid=0.0, fps=1e6),
        "trained": write_run(runs, "good-model", ds=curated_ds, pairs=pairs, images=truth, lpips=good, fid=5.0,
                             extractor={"name": "fid-inception-v3-pool3", "weights_sha256": "f" * 64, "comparable_to_published": True}),
        "unpaired": write_run(runs, "good-model", ds=curated_ds, pairs=pairs, images=truth, lpips=good, protocol="unpaired", fid=25.0),
    }
    unscored = runs / "spade-unpaired-x"
    shutil.copytree(written["unpaired"], unscored)
    doc = json.loads((unscored / "summary.json").read_text())
    doc |= {"model": "spade", "metrics": {}, "not_scored": "spade's output does not depend on the article"}
    (unscored / "summary.json").write_text(json.dumps(doc))
    return {"root": root, "runs": runs, "pairs": pairs, "truth": truth, "good_lpips": good, "bad_lpips": bad, **written}


def test_runs_are_grouped_by_comparability_with_the_baselines_in_each(board: dict) -> None:
    found, problems = load_runs([board["runs"]])
    assert problems == []
    groups, unscored = group_runs(found)
    assert [r.model for r in unscored] == ["spade"]
    by_size = sorted((len(g.runs), g.key.protocol, sorted(r.model for r in g.runs)) for g in groups)
    # the untrained-extractor paired runs share one table; another extractor, or the unpaired protocol, get their own
    assert by_size == [(1, "paired", ["good-model"]), (1, "unpaired", ["good-model"]),
                       (4, "paired", sorted(["good-model", HOSTILE_MODEL, "baseline-paste", "baseline-identity"]))]
    main = next(g for g in groups if len(g.runs) == 4)
    assert not main.comparable_to_published and any("untrained" in n for n in main.notes())
    assert main.direction("ssim")[0] is True and main.direction("fid")[0] is False
    assert [r.model for r in main.sorted_runs("fid")] == ["baseline-identity", "good-model", "baseline-paste", HOSTILE_MODEL]
    assert [r.model for r in main.sorted_runs("ssim")][:2] == ["baseline-identity", "good-model"]  # higher first
    trained = next(g for g in groups if g.key.protocol == "paired" and len(g.runs) == 1)
    assert trained.comparable_to_published and any("no baseline" in n for n in trained.notes())
    only_paired, _ = group_runs(found, protocol="paired")
    assert {g.key.protocol for g in only_paired} == {"paired"}


def test_directions_come_from_the_records_and_disagreement_is_flagged(board: dict, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    pairs, truth = board["pairs"], board["truth"]
    write_run(runs, "a", ds=None, pairs=pairs, images=truth, lpips=board["good_lpips"], fid=10.0)
    write_run(runs, "b", ds=None, pairs=pairs, images=truth, lpips=board["bad_lpips"], fid=20.0, directions={"fid": True})
    groups, _ = group_runs(load_runs([runs])[0])
    (group,) = groups
    higher, _, problems = group.direction("fid")
    assert higher is None and problems and "disagree" in problems[0]
    assert group.best("fid") is None  # no best marked where the direction is unknown
    flipped = tmp_path / "flipped"
    write_run(flipped, "a", ds=None, pairs=pairs, images=truth, lpips=board["good_lpips"], fid=10.0, directions={"fid": True})
    write_run(flipped, "b", ds=None, pairs=pairs, images=truth, lpips=board["bad_lpips"], fid=20.0, directions={"fid": True})
    (group,) = group_runs(load_runs([flipped])[0])[0]
    assert [r.model for r in group.sorted_runs("fid")] == ["b", "a"]  # the record says higher is better: it is obeyed


def test_grid_shows_the_same_pairs_for_every_run_worst_and_best_by_lpips(board: dict) -> None:
    from reports.grids import build_grid

    groups, _ = group_runs(load_runs([board["runs"]])[0])
    main = next(g for g in groups if len(g.runs) == 4)
    grid = build_grid(main, per_model=1)
    assert grid is not None and grid.columns[:2] == ["person", "article"] and grid.columns[-1] == "ground truth"
    pairs = board["pairs"]
    why = {(reason.split(" (")[0], r.pair_id) for r in grid.rows for reason in r.why.split("; ")}
    assert len({r.pair_id for r in grid.rows}) == len(grid.rows)  # each pair once, with every reason it was chosen for
    assert ("worst for good-model", pairs[5]) in why and ("best for good-model", pairs[0]) in why
    assert (f"worst for {HOSTILE_MODEL}", pairs[0]) in why and (f"best for {HOSTILE_MODEL}", pairs[5]) in why
    runs = main.sorted_runs(None)
    truth = dict(zip(pairs, board["truth"]))
    for row in grid.rows:
        assert len(row.cells) == 2 + len(runs) + 1
        assert np.array_equal(row.cells[0].image, truth[row.pair_id]) and np.array_equal(row.cells[-1].image, truth[row.pair_id])
        for run, cell in zip(runs, row.cells[2:-1]):  # each output is the PNG that run wrote for this pair
            from PIL import Image

            name = run.per_sample().set_index("pair_id").loc[row.pair_id, "name"]
            assert np.array_equal(cell.image, np.asarray(Image.open(run.path / "images" / name).convert("RGB")))


def test_a_record_naming_a_file_outside_its_run_is_not_read(board: dict, tmp_path: Path) -> None:
    from reports.grids import build_grid

    runs = tmp_path / "runs"
    pairs, truth = board["pairs"][:2], board["truth"][:2]
    run = write_run(runs, "m", ds=None, pairs=pairs, images=truth, lpips=[0.1, 0.2])
    (tmp_path / "secret.png").write_bytes((run / "images" / os.listdir(run / "images")[0]).read_bytes())
    table = run / "per_sample.parquet"
    import pandas as pd

    df = pd.read_parquet(table)
    df.loc[0, "name"] = "../../secret.png"
    df.to_parquet(table, index=False)
    (group,) = group_runs(load_runs([runs])[0])[0]
    grid = build_grid(group)
    cells = {r.pair_id: r.cells[2] for r in grid.rows}
    assert cells[pairs[0]].image is None and cells[pairs[1]].image is not None
    assert any("no dataset" in n for n in grid.notes)  # no inputs shown, and it says why


def test_report_files_escape_every_data_string_and_hold_the_plots(board: dict, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [str(board["runs"]), "--out", str(out), "--sort", "lpips"])
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    md = (out / "leaderboard.md").read_text()
    assert "<script>" not in page and "onerror=alert" not in page.replace(html.escape("onerror=alert"), "")
    assert html.escape(HOSTILE_MODEL, quote=True) in page
    assert "<img src=x" not in page and "<script>" not in md and "<img src=x" not in md
    assert not re.search(r"src=['\"](?!data:)", page)  # self-contained: every image is a data URI, nothing fetched
    assert "http://" not in page and "https://" not in page
    assert md.count("## Table ") == 3 and "**no** (untrained extractor)" in md
    assert "does not beat paste" in md or "not on" in md  # the hostile model is worse than pasting on FID
    for name in ("1-fid_fps", "1-metrics", "training"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000 and f"plots/{name}.png" in md
    assert "spade (unpaired): not scored" in md
    # sorted by LPIPS, lower first: in the first table good-model's row comes before the hostile one
    first = md.split("## Table 1")[1].split("## Table 2")[0]
    assert first.index("good-model") < first.index(html.escape(HOSTILE_MODEL, quote=False).replace("|", "\\|")[:20])


def test_bad_arguments_are_one_line_errors(board: dict, tmp_path: Path) -> None:
    runner = CliRunner()
    for args, expected in (([str(tmp_path)], "no scored run records"), ([str(board["runs"]), "--sort", "nope"], "no record has"),
                           ([str(board["runs"]), "--protocol", "both"], "valid: paired, unpaired")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output


def test_paste_baseline_pastes_inside_the_worn_mask_only() -> None:
    from eval.baselines import paste_article

    person = torch.full((1, 3, 8, 6), -1.0)
    article = torch.full((1, 3, 8, 6), 1.0)
    article[..., 2:6, 1:5] = 0.5  # the garment, inside its mask
    mask = torch.zeros(1, 1, 8, 6)
    mask[..., 2:6, 1:5] = 1
    worn = torch.zeros(1, 1, 8, 6)
    worn[..., 4:8, 0:2] = 1  # a 4x2 garment region at the bottom left
    out = paste_article(person, article, mask, worn)
    assert torch.all(out[..., 4:8, 0:2] == 0.5)  # the article's box, scaled to the worn box
    outside = torch.ones(8, 6, dtype=torch.bool)
    outside[4:8, 0:2] = False
    assert torch.all(out[0][:, outside] == -1)  # nothing changes outside the worn mask
    assert torch.equal(paste_article(person, article, mask, torch.zeros_like(worn)), person)  # nowhere to paste


@pytest.mark.slow  # two full evaluations (Inception calibration, LPIPS, FPS): minutes on the loaded 2-core box
def test_baselines_are_scored_by_the_model_path_with_the_same_protocol(curated_ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eval.baselines import make_baseline
    from eval.runner import Protocol, evaluate_model

    monkeypatch.setenv("TRYON_BENCH_CACHE", str(tmp_path / "cache"))
    proto = Protocol(size=(64, 48), feature_extractor="untrained", lpips_backbone="untrained", batch_size=8, kid_subsets=3, fps_batches=1)
    runs = {}
    for name in ("identity", "paste"):
        generator = make_baseline(name, proto.size)
        run = evaluate_model(generator.name, None, curated_ds, "test", proto, tmp_path / "runs", torch.device("cpu"), generator=generator)
        runs[name] = json.loads((run / "summary.json").read_text())
    ident, paste = runs["identity"], runs["paste"]
    assert ident["kind"] == paste["kind"] == "baseline" and ident["provenance"]["checkpoint"] is None
    # the person unchanged against the person: the ground truth itself
    assert ident["metrics"]["lpips"] == pytest.approx(0, abs=1e-6) and ident["metrics"]["ssim"] == pytest.approx(1, abs=1e-6)
    assert abs(ident["metrics"]["fid"]) < 1e-3
    assert 0 < paste["metrics"]["lpips"] and paste["metrics"]["ssim"] < 1 and paste["metrics"]["fid"] > 1
    assert ident["extractors"]["features"] == paste["extractors"]["features"]  # one extractor identity: one table
    groups, _ = group_runs(load_runs([tmp_path / "runs"])[0])
    assert len(groups) == 1 and len(groups[0].baselines) == 2


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--virtual-time-budget=5000")


def _chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_index_html_renders_in_headless_chromium_with_every_image_loaded(board: dict, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: `apt-get install chromium`; `make test` installs it where it can)")
    from PIL import Image

    out = tmp_path / "report"
    assert CliRunner().invoke(app, [str(board["runs"]), "--out", str(out)]).exit_code == 0
    page = (out / "index.html").read_text()
    n_images = page.count("<img ")
    # a copy of the page that writes, once loaded, how many images decoded into the DOM (--dump-dom prints it)
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", "<script>addEventListener('load',()=>{const i=[...document.images];"
                                  "document.body.setAttribute('data-loaded',i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'+i.length)})"
                                  "</script></body>"))

    def chromium(*args: str) -> subprocess.CompletedProcess:
        profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a fresh profile per run
        return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=180)

    dom = chromium("--dump-dom", probe.as_uri())
    loaded = re.search(r'data-loaded="(\d+)/(\d+)"', dom.stdout)
    assert loaded, dom.stderr[-2000:]
    assert int(loaded.group(2)) == n_images > 20 and loaded.group(1) == loaded.group(2)
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1400,2400", (out / "index.html").as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.shape == (2400, 1400)
    assert pixels.std() > 20 and (pixels < 80).mean() > 0.01  # not blank: the dark header, text and images drew


def test_per_category_breakdown_appears_only_where_categories_exist(board: dict, tmp_path: Path) -> None:
    import pandas as pd

    from reports import plots

    ds = tmp_path / "ds"
    ds.mkdir()
    pairs = board["pairs"]
    cats = ["upper_body", "upper_body", "upper_body", "dresses", "dresses", "dresses"]
    pd.DataFrame({"pair_id": pairs, "category": cats}).to_parquet(ds / "triplets.parquet")
    runs = tmp_path / "runs"
    write_run(runs, "m", ds=ds, pairs=pairs, images=board["truth"], lpips=board["good_lpips"])
    (group,) = group_runs(load_runs([runs])[0])[0]
    assert plots.per_category(group) is not None
    pd.DataFrame({"pair_id": pairs, "category": ["unknown"] * 6}).to_parquet(ds / "triplets.parquet")
    assert plots.per_category(group) is None  # one category: nothing to break down
