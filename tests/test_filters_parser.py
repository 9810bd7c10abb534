"""The clothes-parser path (curate filter --parser): real loading code, exercised with a tiny randomly
initialised SegFormer of the same architecture saved locally (nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

transformers = pytest.importorskip("transformers", reason="the parser extra (transformers) is not installed")
torch = pytest.importorskip("torch")

from curate.cli import app  # noqa: E402
from curate.filters.command import apply_filters  # noqa: E402
from curate.filters.parser import ClothesParser, ParserUnavailableError, label_set_for  # noqa: E402
from curate.filters.pipeline import FilterOptions  # noqa: E402
from curate.filters.quality import manifest_from_labelled_pairs  # noqa: E402
from curate.labelsets import get_label_set  # noqa: E402
from curate.manifest import Manifest  # noqa: E402

LABELS = Path(__file__).parent / "data" / "real_filter_labels.csv"
# The class names the public SegFormer ATR clothes parsers publish (18 classes, "Face" for our "head")
ATR_NAMES = ["Background", "Hat", "Hair", "Sunglasses", "Upper-clothes", "Skirt", "Pants", "Dress", "Belt", "Left-shoe",
             "Right-shoe", "Face", "Left-leg", "Right-leg", "Left-arm", "Right-arm", "Bag", "Scarf"]
runner = CliRunner()


def tiny_segformer(out: Path, constant_class: int | None = None) -> Path:
    """A 2-stage-wide SegFormer (MiT) with 18 ATR classes and seeded random weights, saved with its image
    processor. ``constant_class``: zero the classifier and bias one class, so the map is that class."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(0)
    cfg = SegformerConfig(
        num_encoder_blocks=4, depths=[1, 1, 1, 1], sr_ratios=[8, 4, 2, 1], hidden_sizes=[8, 16, 16, 16],
        num_attention_heads=[1, 1, 1, 1], mlp_ratios=[2, 2, 2, 2], decoder_hidden_size=16, num_labels=18,
        id2label=dict(enumerate(ATR_NAMES)), label2id={n: i for i, n in enumerate(ATR_NAMES)},
    )
    model = SegformerForSemanticSegmentation(cfg).eval()
    if constant_class is not None:
        with torch.no_grad():
            model.decode_head.classifier.weight.zero_()
            model.decode_head.classifier.bias.zero_()
            model.decode_head.classifier.bias[constant_class] = 1.0
    model.save_pretrained(out)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(out)
    return out


def test_label_set_from_the_models_class_names() -> None:
    assert label_set_for(dict(enumerate(ATR_NAMES))).name == "dresscode-18"
    lip = list(get_label_set("lip-20").classes)
    lip[10] = "Jumpsuits"  # the original LIP name of id 10
    assert label_set_for(dict(enumerate(lip))).name == "lip-20"
    with pytest.raises(ParserUnavailableError, match="none of the label sets"):
        label_set_for(dict(enumerate(["background", "person"])))


def test_tiny_segformer_loads_from_a_folder_and_parses_like_the_model(tmp_path: Path) -> None:
    path = tiny_segformer(tmp_path / "parser")
    parser = ClothesParser(str(path))
    assert parser.label_set.name == "dresscode-18"
    rgb = np.random.default_rng(0).integers(0, 255, (100, 70, 3), dtype=np.uint8)
    lm = parser.parse(rgb, (50, 35))
    assert lm.shape == (50, 35) and lm.dtype == np.uint8 and int(lm.max()) < 18
    # the same as the model's own logits, upsampled and argmaxed by hand
    px = parser.processor(images=rgb, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        logits = parser.model(pixel_values=px).logits
    want = torch.nn.functional.interpolate(logits, size=(50, 35), mode="bilinear", align_corners=False).argmax(1)[0]
    assert np.array_equal(lm, want.numpy().astype(np.uint8))


def test_missing_or_wrong_parser_is_a_one_line_error(tmp_path: Path, real_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParserUnavailableError, match="no config.json"):
        ClothesParser(str(tmp_path / "empty"))
    # a hub id that is neither cached nor reachable fails at once (offline here; HF_HUB_OFFLINE makes it so anywhere)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ParserUnavailableError, match="nor in the Hugging Face cache"):
        ClothesParser("no-such-owner/no-such-parser")
    labels = pd.read_csv(LABELS, dtype=str, keep_default_na=False)
    ds = manifest_from_labelled_pairs(labels[labels["pair_id"] == "ootd/01861_00"], real_root, tmp_path / "ds")
    res = runner.invoke(app, ["filter", str(ds), "--parser", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "no config.json" in res.output and "Traceback" not in res.output


def test_parser_labels_feed_every_verdict_and_name_the_parser(tmp_path: Path, real_root: Path) -> None:
    """A parser that labels every pixel upper-clothes: people without a label map get 'upper worn' from it
    (so a trousers product is lower-only), the dataset's own maps are still read, and the evidence says
    which is which."""
    path = tiny_segformer(tmp_path / "parser", constant_class=4)
    labels = pd.read_csv(LABELS, dtype=str, keep_default_na=False)
    ids = ["ootd/051482_0", "dresscode/050855"]  # trousers product on an unannotated person; annotated DressCode
    ds = manifest_from_labelled_pairs(labels[labels["pair_id"].isin(ids)], real_root, tmp_path / "ds")
    result: dict = {}
    pairs = apply_filters(ds, FilterOptions(parser=str(path), detectors=False), result=result).set_index("pair_id")
    ev = json.loads(pairs.loc["ootd/051482_0", "filter_evidence"])
    assert pairs.loc["ootd/051482_0", "filter_lower_only"] == "lower-only-product"
    assert "upper-garment=worn (parser)" in ev["lower_only"]["signals"]
    assert ev["extra_garments"]["source"] == "parser" and ev["back_view"]["verdict"] == "unknown"  # no face/hair
    annotated = json.loads(pairs.loc["dresscode/050855", "filter_evidence"])
    assert annotated["extra_garments"]["source"] == "annotations/parsing"
    humans = result["humans"].set_index("path")
    person = humans.loc[labels.set_index("pair_id").loc["ootd/051482_0", "human"]]
    assert person["filter_upper_garments"] == "upper" and person["filter_lower_only_outfit"] == "no"
    assert json.loads(person["filter_person_evidence"])["upper_worn"]["source"] == "parser"
    # without --parser the same person has no parsing and no detector: unknown
    plain = apply_filters(ds, FilterOptions(detectors=False)).set_index("pair_id")
    assert plain.loc["ootd/051482_0", "filter_lower_only"] == "unknown"
    assert Manifest.load(ds).pairs.set_index("pair_id").loc["ootd/051482_0", "filter_lower_only"] == "unknown"
