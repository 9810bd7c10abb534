"""Label-set conversion tables against the facts in shared/reference/label-sets.md."""

from __future__ import annotations

import numpy as np
import pytest

from curate.labelsets import (
    LABEL_SETS, available_conversions, conversion_table, convert, get_label_set, unknown_ids,
)  # fmt: skip

GARMENT_GROUPS = ("upper", "lower", "dress", "outer")


def test_class_counts_match_the_reference():
    counts = {name: s.num_classes for name, s in LABEL_SETS.items()}
    assert counts == {"lip-20": 20, "dresscode-18": 18, "acgpn-14": 14, "smis-8": 8, "fgvc6-46+bg": 47,
                      "ade20k-151": 151, "coco-stuff-183": 183, "cityscapes-35": 35}
    # the SPADE releases' ids: ADE20K PNG value - 1 (0 "other" -> 150), COCO-Stuff label - 1 (255 -> 182), Cityscapes labelIds
    ade, coco, city = (get_label_set(n).classes for n in ("ade20k-151", "coco-stuff-183", "cityscapes-35"))
    assert (ade[0], ade[12], ade[149], ade[150]) == ("wall", "person", "flag", "unknown")
    assert (coco[0], coco[11], coco[90], coco[91], coco[181], coco[182]) == ("person", "street sign", "hair brush", "banner", "wood", "unlabeled")
    assert (city[7], city[24], city[26], city[33]) == ("road", "person", "car", "bicycle")
    lip = get_label_set("lip-20").classes
    assert (lip[5], lip[9], lip[10], lip[12], lip[13]) == ("upper-clothes", "pants", "neck", "skirt", "face")
    dc = get_label_set("dresscode-18").classes
    assert (dc[4], dc[6], dc[7], dc[11], dc[16]) == ("upper_clothes", "pants", "dress", "head", "bag")


@pytest.mark.parametrize("source, target", available_conversions())
def test_every_source_id_has_a_valid_target(source, target):
    lut = conversion_table(source, target)
    assert len(lut) == get_label_set(source).num_classes
    assert lut.max() < get_label_set(target).num_classes
    assert lut[0] == 0  # background stays background


@pytest.mark.parametrize("source, target", available_conversions())
def test_garment_semantics_preserved(source, target):
    """Upper stays upper, lower stays lower; dress/outer go to dress/outer or, where the target has no such
    class, to upper (a dress's top half and a coat are upper-body garments). No garment becomes background."""
    src, dst = get_label_set(source), get_label_set(target)
    lut = conversion_table(source, target)
    for group in GARMENT_GROUPS:
        allowed = set(dst.ids(group)) if dst.groups.get(group) else set()
        if group in ("dress", "outer"):
            allowed |= set(dst.ids("upper"))
        for i in src.ids(group):
            assert int(lut[i]) in allowed, f"{source} {src.classes[i]} -> {dst.classes[lut[i]]}"
            assert lut[i] != 0


def test_lip_to_acgpn_reference_rows():
    lut = conversion_table("lip-20", "acgpn-14")
    acgpn = get_label_set("acgpn-14").classes
    named = {get_label_set("lip-20").classes[i]: acgpn[lut[i]] for i in range(20)}
    assert named["upper-clothes"] == "upper-clothes" and named["pants"] == named["skirt"] == "pants"
    assert named["left-arm"] == "left-arm" and named["right-arm"] == "right-arm"
    assert named["left-shoe"] == "left-shoe" and named["face"] == "face" and named["hair"] == "hair"
    assert named["glove"] == named["scarf"] == "noise"  # VITON-HD's noise classes -> ACGPN 7
    assert 2 not in lut and 3 not in lut  # ACGPN ids 2/3 are undocumented: never written


def test_round_trip_lip_dresscode_keeps_groups():
    there = conversion_table("lip-20", "dresscode-18")
    back = conversion_table("dresscode-18", "lip-20")
    lip = get_label_set("lip-20")
    for group in ("background", "upper", "lower", "dress", "arms", "legs", "face", "hair", "shoes"):
        for i in lip.ids(group):
            assert back[there[i]] in lip.ids(group), (group, lip.classes[i])
    # Exact round trips where both sets have the class.
    for name in ("upper-clothes", "dress", "pants", "left-arm", "right-leg", "right-shoe", "hair", "hat", "face"):
        i = lip.classes.index(name)
        assert back[there[i]] == i, name


def test_dresscode_lower_ids_both_mean_lower():
    lut = conversion_table("dresscode-18", "lip-20")
    assert lut[5] == lut[6] == 9  # skirts are stored as 6 too: both are "lower", not told apart
    assert lut[8] == 0 and lut[16] == 0  # belt and bag have no LIP class: background, never a garment


def test_fgvc6_to_lip_and_smis():
    lut = conversion_table("fgvc6-46+bg", "lip-20")
    fg = get_label_set("fgvc6-46+bg").classes
    lip = get_label_set("lip-20").classes
    named = {fg[i]: lip[lut[i]] for i in range(len(fg))}
    assert named["shirt-blouse"] == "upper-clothes" and named["skirt"] == "skirt" and named["dress"] == "dress"
    assert named["coat"] == "coat" and named["shorts"] == "pants" and named["sleeve"] == "upper-clothes"
    smis = conversion_table("lip-20", "smis-8")
    assert [get_label_set("smis-8").classes[smis[i]] for i in (5, 6, 9, 12, 8, 18)] == [
        "top-clothes", "top-clothes", "bottom-clothes", "bottom-clothes", "socks", "shoes",
    ]


def test_convert_and_unknown_ids():
    m = np.array([[0, 5, 9], [12, 13, 19]], np.uint8)
    np.testing.assert_array_equal(convert(m, "lip-20", "smis-8"), [[0, 4, 5], [5, 2, 7]])
    with pytest.raises(ValueError, match="outside lip-20"):
        convert(np.array([[20]], np.uint8), "lip-20", "smis-8")
    assert unknown_ids(np.array([[0, 7, 8, 30]], np.uint8), "smis-8") == [8, 30]
    with pytest.raises(KeyError, match="valid"):
        get_label_set("atr-18")
