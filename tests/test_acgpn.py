"""ACGPN: official layouts and parameter counts, the TPS constraint terms on grids with known second
differences, the identity STN at initialisation, import of the four official state dicts (TPS buffers
checked, then dropped), generation at any batch size, and the CLI path on curated acgpn-14 arrays."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from models import create_model, load_pretrained
from models.checkpoint_import import import_checkpoint
from models.zoo.acgpn import TPS_BUFFER_TOLERANCE, tps_constraints
from tests.model_fixtures import batch_for, official_spec, synthesise_official_state

PARTS = {"g1": "acgpn_G1", "g2": "acgpn_G2", "g": "acgpn_G", "u": "acgpn_U"}
FILES = {"g1": "latest_net_G1.pth", "g2": "latest_net_G2.pth", "g": "latest_net_G.pth", "u": "latest_net_U.pth"}
TPS_BUFFERS = ("stn.tps.inverse_kernel", "stn.tps.padding_matrix", "stn.tps.target_coordinate_repr")
runner = CliRunner()


def test_paper_preset_has_the_official_layouts_and_parameter_counts() -> None:
    with torch.device("meta"):  # shapes only: 140M generator parameters allocate nothing
        model = create_model("acgpn", "paper")
    counts = {part: model.num_parameters(getattr(model, part)) for part in PARTS}
    assert counts == {"g1": 34_540_942, "g2": 34_533_441, "g": 34_527_107, "u": 36_467_950}
    for part, name in PARTS.items():
        spec = official_spec(name)
        assert counts[part] == spec["params"], name
        official = {k: shape for k, shape, _ in spec["keys"] if k not in TPS_BUFFERS}
        ours = {k: list(v.shape) for k, v in getattr(model, part).state_dict().items()}
        assert ours == official, name  # every name and shape; U's TPS constants are ours to compute
    assert model.generation_parameters() == sum(counts.values())
    assert model.INPUTS.label_set == "acgpn-14" and model.num_classes == 14


# ---- the second-order difference constraints -------------------------------------------------------


def _regular(batch: int = 1) -> torch.Tensor:
    """ACGPN's 5x5 control points on linspace(-0.9, 0.9), point r*5 + c = (x_c, y_r), [B, 25, 2]."""
    a = torch.linspace(-0.9, 0.9, 5, dtype=torch.float64)
    y, x = torch.meshgrid(a, a, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], -1)[None].repeat(batch, 1, 1)


def _terms(points: torch.Tensor, **floors: float) -> dict[str, float]:
    return {k: float(v) for k, v in tps_constraints(points, 5, **floors).items()}


def test_constraint_terms_vanish_on_a_regular_grid_and_the_floors_hold() -> None:
    assert _terms(_regular(2)) == pytest.approx(dict.fromkeys(("rx", "ry", "cx", "cy", "rg", "cg"), 0.0), abs=1e-12)
    floored = _terms(_regular(2), difference_floor=0.08, collinearity_floor=0.02)  # the reference's floors
    assert floored == pytest.approx({"rx": 0.08, "ry": 0.08, "cx": 0.08, "cy": 0.08, "rg": 0.02, "cg": 0.02}, abs=1e-12)


def test_constraint_terms_of_one_displaced_point_equal_the_hand_computed_values() -> None:
    # The centre point (row 2, column 2) moved by +0.1 in x. Row 2's x intervals become 0.45, 0.55, 0.35,
    # 0.45: squared 0.2025, 0.3025, 0.1225, 0.2025, second differences 0.1, 0.18, 0.08 (sum 0.36 over the
    # 15 row entries); column 2's x steps 0, 0.1, -0.1, 0 give second differences 0.01, 0, 0.01. The
    # triangles along column 2 have doubled areas 0.045, 0.09, 0.045; row 2 stays collinear (y = 0).
    p = _regular()
    p[0, 12, 0] += 0.1
    assert _terms(p) == pytest.approx({"rx": 0.36 / 15, "ry": 0.0, "cx": 0.02 / 15, "cy": 0.0, "rg": 0.0, "cg": 0.18 / 15}, abs=1e-12)
    floored = _terms(p, difference_floor=0.08, collinearity_floor=0.02)
    # rx: max(., 0.08) elementwise: 12 entries at 0.08 and 0.1, 0.18, 0.08; cg = max(0.012, 0.02)
    assert floored["rx"] == pytest.approx((12 * 0.08 + 0.36) / 15, abs=1e-12)
    assert floored["cg"] == pytest.approx(0.02, abs=1e-12) and floored["cx"] == pytest.approx(0.08, abs=1e-12)

    # Rows and columns are not interchangeable: point (row 1, column 3) moved by +0.05 in y. Row 1's y
    # steps 0, 0, 0.05, -0.05 -> second differences 0, 0.0025, 0; column 3's y intervals 0.5, 0.4, 0.45,
    # 0.45 -> squared 0.25, 0.16, 0.2025, 0.2025 -> 0.09, 0.0425, 0; row 1's triangles 0, 0.0225, 0.045.
    q = _regular()
    q[0, 8, 1] += 0.05
    assert _terms(q) == pytest.approx({"rx": 0.0, "ry": 0.0025 / 15, "cx": 0.0, "cy": 0.1325 / 15, "rg": 0.0675 / 15, "cg": 0.0}, abs=1e-12)

    # batch means: the displaced grid beside a regular one halves every term
    both = torch.cat([p, _regular()])
    assert _terms(both)["rx"] == pytest.approx(0.36 / 30, abs=1e-12)


def test_the_untrained_stn_is_the_identity_warp_and_its_points_the_regular_grid() -> None:
    """fc2 starts at weight 0 and bias arctanh(control points): the control-point order, the loc-net's
    output layout and the TPS agree, so the warp is the identity."""
    torch.manual_seed(0)
    model = create_model("acgpn", "tiny").eval()
    b = batch_for(model.data_needs(), n=2)
    cloth, mask = b["article"] * b["article_mask"], b["article_mask"]
    with torch.no_grad():
        warped, warped_mask, points = model.u.stn(cloth, mask, mask)
    assert torch.allclose(points, _regular(2).float(), atol=1e-6)
    assert torch.allclose(warped, cloth, atol=1e-5) and torch.allclose(warped_mask, mask, atol=1e-5)
    assert max(_terms(points.double()).values()) < 1e-10


# ---- official checkpoints ----------------------------------------------------------------------------


def official_tps_buffers(height: int, width: int, grid: int = 5, span: float = 0.9) -> dict[str, torch.Tensor]:
    """The three buffers of the official TPSGridGen (tps_grid_gen.py), re-stated from its construction:
    float32, kernel 0.5 d log d on squared distances, control points from itertools.product with the
    (y, x) columns swapped to (x, y), pixels in the align_corners=True convention, row by row."""
    a = np.arange(-span, span + 0.00001, 2.0 * span / (grid - 1))
    yx = torch.tensor(list(itertools.product(a, a)), dtype=torch.float32)
    points = torch.cat([yx[:, 1:], yx[:, :1]], 1)

    def kernel(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        d = ((p[:, None, :] - q[None, :, :]) ** 2).sum(-1)
        k = 0.5 * d * torch.log(d)
        return torch.nan_to_num(k, nan=0.0)

    n = grid * grid
    system = torch.zeros(n + 3, n + 3)
    system[:n, :n] = kernel(points, points)
    system[:n, -3], system[-3, :n] = 1, 1
    system[:n, -2:], system[-2:, :n] = points, points.T
    pixels = torch.tensor(list(itertools.product(range(height), range(width))), dtype=torch.float32)
    y, x = pixels[:, :1] * 2 / (height - 1) - 1, pixels[:, 1:] * 2 / (width - 1) - 1
    target = torch.cat([x, y], 1)
    representation = torch.cat([kernel(target, points), torch.ones(len(target), 1), target], 1)
    return {TPS_BUFFERS[0]: torch.inverse(system), TPS_BUFFERS[1]: torch.zeros(3, 2), TPS_BUFFERS[2]: representation}


def _release_from(model: torch.nn.Module, folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    """A release folder holding ``model``'s four generators as the official raw state dicts (random
    values, U with the official TPS buffers)."""
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(1)
    states = {}
    for part, file in FILES.items():
        state = {k: torch.randn(v.shape, generator=g) * 0.01 for k, v in getattr(model, part).state_dict().items()}
        if part == "u":
            state.update(official_tps_buffers(model.config.height, model.config.width))
        torch.save(state, folder / file)
        states[part] = state
    return states


def test_the_official_tps_buffers_describe_our_grid() -> None:
    """Our TPSGridGen (r^2 log r^2 kernel, float64) and the release's buffers (0.5 r^2 log r^2, float32)
    give the same grid operator: the kernel's scale cancels in the interpolant."""
    from models.layers.tps import TPSGridGen, regular_control_points

    buffers = official_tps_buffers(256, 192)
    theirs = buffers[TPS_BUFFERS[2]].double() @ buffers[TPS_BUFFERS[0]].double()[:, :25]
    ours = TPSGridGen(256, 192, regular_control_points(5, x_major=False, span=0.9), True).mapping.double()
    gap = float((theirs - ours).abs().max())
    assert gap < TPS_BUFFER_TOLERANCE / 10, gap


def test_a_release_folder_imports_through_the_cli_and_wrong_files_are_refused(tmp_path: Path) -> None:
    """At the tiny size (the same mechanics as paper's, which is too heavy for the default run): the
    folder's four files by their release names, every key checked, the TPS buffers verified and dropped."""
    from models.cli import app

    torch.manual_seed(0)
    states = _release_from(create_model("acgpn", "tiny"), tmp_path / "label2city")
    result = runner.invoke(app, ["import", "acgpn", str(tmp_path / "label2city"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    model = load_pretrained(tmp_path / "out")
    record = json.loads((tmp_path / "out" / "import.json").read_text())
    assert record["preset"] == "tiny"  # read from U's TPS grid (64x48)
    assert record["not_in_release"] == ["d", "d1", "d2", "d3"] and model.label_set == "acgpn-14"
    ours = model.state_dict()
    for part, state in states.items():
        for key, value in state.items():
            if key not in TPS_BUFFERS:
                assert torch.equal(ours[f"{part}.{key}"], value), (part, key)
    b = batch_for(model.data_needs(), n=2, keys=model.INPUTS.generate)
    with torch.no_grad():
        assert torch.isfinite(model.generate(b)).all()

    files = {part: tmp_path / "label2city" / file for part, file in FILES.items()}

    def refused(part: str, state: dict[str, torch.Tensor], match: str) -> None:
        bad = tmp_path / f"bad_{part}.pth"
        torch.save(state, bad)
        with pytest.raises(ValueError, match=match):
            import_checkpoint("acgpn", {**files, part: bad}, tmp_path / "never")
        assert not (tmp_path / "never").exists()

    u = states["u"]
    other = {**u, TPS_BUFFERS[2]: u[TPS_BUFFERS[2]] + 0.01}  # buffers of another grid
    refused("u", other, "describe another grid")
    refused("u", {k: v for k, v in u.items() if k != TPS_BUFFERS[0]}, "lacks the TPS buffers")
    refused("g1", {k: v for k, v in states["g1"].items() if k != "conv7.6.bias"}, "g1.conv7.6.bias")
    # a folder lacking a part is one line naming the file
    (tmp_path / "partial").mkdir()
    shutil.copy(files["g"], tmp_path / "partial" / FILES["g"])
    result = runner.invoke(app, ["import", "acgpn", str(tmp_path / "partial"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "latest_net_G1.pth (g1)" in result.output


@pytest.mark.slow
def test_the_official_state_dicts_import_whole_at_paper_size(tmp_path: Path) -> None:
    """The four files with exactly the official names and shapes (../shared/reference/checkpoints)."""
    states = {}
    for part, name in PARTS.items():
        states[part] = synthesise_official_state(name, tmp_path / FILES[part])
    states["u"].update(official_tps_buffers(256, 192))
    torch.save(states["u"], tmp_path / FILES["u"])
    import_checkpoint("acgpn", {part: tmp_path / file for part, file in FILES.items()}, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "import.json").read_text())["preset"] == "paper"
    ours = load_pretrained(tmp_path / "out").state_dict()
    for part, state in states.items():
        for key, value in state.items():
            if key not in TPS_BUFFERS:
                assert torch.equal(ours[f"{part}.{key}"], value), (part, key)


# ---- generation ----------------------------------------------------------------------------------


def test_generation_works_at_batch_1_and_3_and_each_sample_is_its_own() -> None:
    """The reference's test forward is right at batch 1 only; here a sample's try-on does not depend
    on the batch it is in, and eval-mode generation is repeatable."""
    torch.manual_seed(0)
    model = create_model("acgpn", "tiny").eval()
    b3 = batch_for(model.data_needs(), n=3, seed=2, keys=model.INPUTS.generate)
    b3["article"] = b3["article"] * torch.tensor([1.0, -0.5, 0.3])[:, None, None, None]  # three different articles
    with torch.no_grad():
        three = model.generate(b3)
        ones = torch.cat([model.generate({k: v[i:i + 1] for k, v in b3.items()}) for i in range(3)])
        again = model.generate(b3)
    assert three.shape == (3, 3, 64, 48) and torch.isfinite(three).all() and three.abs().max() <= 1
    assert torch.allclose(three, ones, atol=1e-5)
    assert torch.equal(three, again)
    assert not torch.allclose(three[0], three[1], atol=1e-3)


def test_label_ids_outside_acgpn_14_and_other_label_counts_are_refused() -> None:
    model = create_model("acgpn", "tiny").eval()
    b = batch_for(model.data_needs(), n=1, keys=model.INPUTS.generate)
    b["labelmap"] = b["labelmap"].clone()
    b["labelmap"][0, 0, 0] = 19
    with pytest.raises(ValueError, match="acgpn-14 label ids 0..13"):
        model.generate(b)
    with pytest.raises(ValueError, match="curate labelmaps DS --label-set acgpn-14"):
        create_model("acgpn", "tiny", label_nc=20)


# ---- the CLI path ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acgpn_ds(curated_ds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's curated dataset with 64x48 acgpn-14 arrays beside its smis-8 ones."""
    from curate.labelmaps import build_arrays

    ds = tmp_path_factory.mktemp("acgpn") / "ds"
    shutil.copytree(curated_ds, ds)
    build_arrays(ds, (64, 48), "acgpn-14")  # converted from the synthetic LIP-20 parsing
    return ds


def _train(ds: Path, run: Path, *extra: str):  # noqa: ANN202
    from models.cli import app

    return runner.invoke(app, ["train", "--model", "acgpn", "--data", str(ds), "--batch-size", "2", "--out", str(run),
                               "--log-every", "1", "--checkpoint-every", "0", *extra])


def test_zoo_train_reads_the_acgpn_14_arrays_and_trains_both_stages(curated_ds: Path, acgpn_ds: Path, tmp_path: Path) -> None:
    from models.cli import app

    # only smis-8 arrays: refused in one line naming the command that makes the right ones
    result = _train(curated_ds, tmp_path / "no", "--steps", "1")
    assert result.exit_code == 2 and "--label-set acgpn-14" in result.output and not (tmp_path / "no").exists()
    result = _train(acgpn_ds, tmp_path / "no", "--steps", "1", "--label-set", "smis-8")
    assert result.exit_code == 2 and "acgpn reads acgpn-14 label maps, not smis-8" in result.output
    # both label sets at 64x48: the declared one is read without --label-set
    run = tmp_path / "run"
    result = _train(acgpn_ds, run, "--steps", "1", "--perceptual-backbone", "none", "--sample-every", "0")
    assert result.exit_code == 0, result.output
    info = json.loads((run / "train_config.json").read_text())
    assert info["stage_order"] == ["g1_u", "g2_g"] and info["dataset"]["label_set"] == "acgpn-14"
    assert json.loads((run / "config.json").read_text())["data"]["label_set"] == "acgpn-14"
    header = (run / "logs" / "g1_u" / "train.csv").read_text().splitlines()[0]
    assert "generators/constraints" in header and "generators/parsing" in header and "generators/l1_composed" in header
    header = (run / "logs" / "g2_g" / "train.csv").read_text().splitlines()[0]
    assert "generators/cloth_mask" in header and "generators/l1_final" in header and "constraints" not in header
    out = tmp_path / "generated"
    result = runner.invoke(app, ["generate", "--checkpoint", str(run), "--data", str(acgpn_ds), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.png"))) > 0


@pytest.mark.slow
def test_zoo_train_with_the_perceptual_terms_then_evaluate(acgpn_ds: Path, tmp_path: Path) -> None:
    from eval.cli import app as evaluate_app

    run = tmp_path / "run"
    result = _train(acgpn_ds, run, "--steps", "2", "--perceptual-backbone", "untrained", "--sample-every", "2")
    assert result.exit_code == 0, result.output
    header = (run / "logs" / "g1_u" / "train.csv").read_text().splitlines()[0]
    assert "generators/vgg_clothes" in header
    assert "generators/vgg_final" in (run / "logs" / "g2_g" / "train.csv").read_text().splitlines()[0]
    assert (run / "samples" / "g2_g" / "step_00000002.png").is_file()
    result = runner.invoke(evaluate_app, ["--model", "acgpn", "--checkpoint", str(run), "--data", str(acgpn_ds),
                                          "--feature-extractor", "untrained", "--out", str(tmp_path / "runs"), "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    (record,) = list((tmp_path / "runs").glob("*/summary.json"))
    summary = json.loads(record.read_text())
    assert summary["n_images"] > 0 and np.isfinite(summary["metrics"]["fid"])
    assert summary["provenance"]["label_set"] == "acgpn-14"
