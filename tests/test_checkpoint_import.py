"""Official checkpoint import: state dicts synthesised from the official key/shape lists land entirely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models import load_pretrained
from models.checkpoint_import import import_checkpoint, official_to_ours
from tests.model_fixtures import synthesise_official_state



_synthesise = synthesise_official_state


@pytest.mark.parametrize("name", ["spade_cityscapes_G", "spade_ade20k_G", "spade_coco_G", "smis_deepfashion_G"])
def test_every_official_key_lands(name: str, tmp_path: Path) -> None:
    kind = name.split("_")[0]
    state = _synthesise(name, tmp_path / "g.pth")
    encoder = None
    if kind == "smis":
        encoder = tmp_path / "e.pth"
        e_state = _synthesise("smis_deepfashion_E", encoder)
    files = {"generator": tmp_path / "g.pth"} | ({"encoder": encoder} if encoder else {})
    import_checkpoint(kind, files, tmp_path / "out")
    model = load_pretrained(tmp_path / "out")
    ours = model.state_dict()
    for key, value in state.items():  # every key landed, unchanged
        assert torch.equal(ours[official_to_ours(key, "generator")], value), key
    if encoder is not None:
        for key, value in e_state.items():
            assert torch.equal(ours[official_to_ours(key, "encoder")], value), key
    record = json.loads((tmp_path / "out" / "import.json").read_text())
    assert record["model"] == kind and record["not_in_release"] == ["discriminator"]
    assert not model.training  # ready for inference


def test_missing_extra_and_wrong_shape_are_refused(tmp_path: Path) -> None:
    state = _synthesise("spade_ade20k_G", tmp_path / "g.pth")
    for label, broken in {
        "lacks": {k: v for k, v in state.items() if k != "conv_img.bias"},
        "no place": {**state, "head_0.extra.weight": torch.zeros(1)},
        "shape": {**state, "conv_img.bias": torch.zeros(4)},
    }.items():
        torch.save(broken, tmp_path / f"{label}.pth")
        with pytest.raises(ValueError, match=label):
            import_checkpoint("spade", {"generator": tmp_path / f"{label}.pth"}, tmp_path / f"out-{label}")
        assert not (tmp_path / f"out-{label}").exists()


def test_spectral_norm_mapping_reproduces_the_official_weight() -> None:
    """Official SN in eval: W / (u^T W v) from the stored vectors; our parametrization must give the same."""
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(0)
    conv = spectral_norm(torch.nn.Conv2d(6, 4, 3, groups=2))
    w = torch.randn(4, 3, 3, 3)
    u = torch.nn.functional.normalize(torch.randn(4), dim=0)
    v = torch.nn.functional.normalize(torch.randn(27), dim=0)
    conv.load_state_dict({"bias": torch.zeros(4), "parametrizations.weight.original": w,
                          "parametrizations.weight.0._u": u, "parametrizations.weight.0._v": v})
    conv.eval()
    sigma = torch.dot(u, w.reshape(4, -1) @ v)
    assert torch.allclose(conv.weight, w / sigma, atol=1e-6)
