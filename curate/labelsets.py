"""Label sets met in try-on data and explicit conversion tables between them.

Ids are the values stored in the label-map PNGs. Conversions are lookup tables (``np.ndarray`` of
length ``len(source)``) applied per pixel; there is no guessing: every source id has a written target.
Where a source class has no counterpart the choice is written beside it, with the reason.

Semantic *groups* (upper garment, lower garment, outerwear, ...) are what the filters reason with, so
that one filter works on every label set.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class LabelSet:
    name: str
    classes: tuple[str, ...]
    # semantic group -> ids in this set (groups: background, head, hair, face, skin, arms, legs, neck,
    # upper, lower, dress, outer, scarf, hat, gloves, socks, shoes, bag, belt, accessory, noise)
    groups: Mapping[str, frozenset[int]]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def ids(self, *group_names: str) -> frozenset[int]:
        """Union of the ids of the named groups; an unknown group name is an error."""
        out: set[int] = set()
        for g in group_names:
            if g not in self.groups:
                raise KeyError(f"label set {self.name} has no group {g!r}; groups: {sorted(self.groups)}")
            out |= self.groups[g]
        return frozenset(out)

    def class_list(self) -> list[dict[str, object]]:
        """JSON-able class list written beside label maps."""
        return [{"id": i, "name": n} for i, n in enumerate(self.classes)]


def _g(**groups: tuple[int, ...]) -> dict[str, frozenset[int]]:
    return {k: frozenset(v) for k, v in groups.items()}


LIP20 = LabelSet(
    "lip-20",
    (
        "background", "hat", "hair", "glove", "sunglasses", "upper-clothes", "dress", "coat", "socks", "pants",
        "neck", "scarf", "skirt", "face", "left-arm", "right-arm", "left-leg", "right-leg", "left-shoe",
        "right-shoe",
    ),
    # 10 is "neck" in VITON-HD's image-parse-v3 and "jumpsuits" in the original LIP list. Try-on data is
    # VITON-HD-style parsing, so it is skin here.
    _g(background=(0,), hat=(1,), hair=(2,), gloves=(3,), accessory=(4,), upper=(5,), dress=(6,), outer=(7,),
       socks=(8,), lower=(9, 12), neck=(10,), scarf=(11,), face=(13,), arms=(14, 15), legs=(16, 17),
       shoes=(18, 19), head=(1, 2, 4, 13), skin=(10, 14, 15, 16, 17), noise=(3, 11)),
)

DRESSCODE18 = LabelSet(
    "dresscode-18",
    (
        "background", "hat", "hair", "sunglasses", "upper_clothes", "skirt", "pants", "dress", "belt",
        "left_shoe", "right_shoe", "head", "left_leg", "right_leg", "left_arm", "right_arm", "bag", "scarf",
    ),
    # 5 and 6 are not reliable skirt/trousers (the official loader takes the lower label by category),
    # so both are just "lower".
    _g(background=(0,), hat=(1,), hair=(2,), accessory=(3,), upper=(4,), lower=(5, 6), dress=(7,), belt=(8,),
       shoes=(9, 10), face=(11,), legs=(12, 13), arms=(14, 15), bag=(16,), scarf=(17,), head=(1, 2, 3, 11),
       skin=(12, 13, 14, 15), outer=(), noise=(17,)),
)

ACGPN14 = LabelSet(
    "acgpn-14",
    (
        "background", "hair", "unused-2", "unused-3", "upper-clothes", "left-shoe", "right-shoe", "noise", "pants",
        "left-leg", "right-leg", "left-arm", "face", "right-arm",
    ),
    # ids 2 and 3 are not described by the ACGPN repository; no conversion writes them.
    _g(background=(0,), hair=(1,), upper=(4,), shoes=(5, 6), noise=(7,), lower=(8,), legs=(9, 10), arms=(11, 13),
       face=(12,), head=(1, 12), skin=(9, 10, 11, 13), dress=(), outer=()),
)

# SMIS DeepFashion masks: the class order is not documented upstream. This is the order users report
# (SMIS issue #4: hair, face, skin, top, bottom, socks, shoes, background) with background moved to id 0
# so that 0 means "nothing" in every set. Importing released SMIS masks needs a permutation if theirs differs.
SMIS8 = LabelSet(
    "smis-8",
    ("background", "hair", "face", "skin", "top-clothes", "bottom-clothes", "socks", "shoes"),
    _g(background=(0,), hair=(1,), face=(2,), skin=(3,), upper=(4,), lower=(5,), socks=(6,), shoes=(7,),
       head=(1, 2), dress=(), outer=()),
)

FGVC6_46 = LabelSet(
    "fgvc6-46",
    (
        "shirt-blouse", "top-tshirt-sweatshirt", "sweater", "cardigan", "jacket", "vest", "pants", "shorts",
        "skirt", "coat", "dress", "jumpsuit", "cape", "glasses", "hat", "headband-head-covering-hair-accessory",
        "tie", "glove", "watch", "belt", "leg-warmer", "tights-stockings", "sock", "shoe", "bag-wallet", "scarf",
        "umbrella", "hood", "collar", "lapel", "epaulette", "sleeve", "pocket", "neckline", "buckle", "zipper",
        "applique", "bead", "bow", "flower", "fringe", "ribbon", "rivet", "ruffle", "sequin", "tassel",
    ),
    # FGVC6 has no background class: id 0 is shirt/blouse. Decoded FGVC6 label maps are therefore stored
    # shifted by one (see FGVC6_MAP_OFFSET) so that 0 is background in the stored uint8 map.
    _g(upper=(0, 1, 2, 5), outer=(3, 4, 9, 12), lower=(6, 7, 8), dress=(10, 11), accessory=(13, 15, 16, 18),
       hat=(14,), gloves=(17,), belt=(19,), socks=(20, 21, 22), shoes=(23,), bag=(24,), scarf=(25,),
       noise=(26,), parts=tuple(range(27, 46))),
)

# Stored FGVC6 maps: 0 = background, k+1 = FGVC6 class k (46 classes -> ids 1..46, 47 values in all).
FGVC6_MAP_OFFSET: Final[int] = 1
FGVC6_STORED = LabelSet(
    "fgvc6-46+bg",
    ("background",) + FGVC6_46.classes,
    {k: frozenset(i + FGVC6_MAP_OFFSET for i in v) for k, v in FGVC6_46.groups.items()} | {"background": frozenset({0})},
)

# ---------------------------------------------------------------------------------------------------------
# The label sets of the official SPADE releases (scene parsing, not people): ids as SPADE's data loaders
# feed them to the generator. Input channels = ids (+ 1 instance-edge channel where the release has one).
# ---------------------------------------------------------------------------------------------------------

# ADE20K SceneParsing-150 (objectInfo150, first name of each entry): SPADE shifts the stored PNG values down
# by one (PNG 1..150 -> ids 0..149) and maps PNG 0 ("other") to id 150, its dontcare: 151 ids, 151 channels.
ADE20K151 = LabelSet(
    "ade20k-151",
    (
        "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed",
        "windowpane", "grass", "cabinet", "sidewalk", "person", "earth", "door", "table",
        "mountain", "plant", "curtain", "chair", "car", "water", "painting", "sofa",
        "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat",
        "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
        "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink",
        "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
        "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
        "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
        "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel",
        "bus", "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight",
        "booth", "television receiver", "airplane", "dirt track", "apparel", "pole", "land", "bannister",
        "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship",
        "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel",
        "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball",
        "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle",
        "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase",
        "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
        "bulletin board", "shower", "radiator", "glass", "clock", "flag",
        "unknown",
    ),
    _g(background=(150,), noise=(150,)),
)

# COCO-Stuff-164k (cocostuff labels.txt 1..182, 11 thing ids unused in the annotations but kept so that ids
# line up): the stored maps hold label-1 (0..181) and 255 for unlabeled, which SPADE maps to id 182, its
# dontcare: 183 ids; the release adds an instance-edge channel (184 input channels).
COCOSTUFF183 = LabelSet(
    "coco-stuff-183",
    (
        "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
        "boat", "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird",
        "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
        "giraffe", "hat", "backpack", "umbrella", "shoe", "eye glasses", "handbag", "tie",
        "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
        "skateboard", "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork",
        "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
        "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
        "bed", "mirror", "dining table", "window", "desk", "toilet", "door", "tv",
        "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster",
        "sink", "refrigerator", "blender", "book", "clock", "vase", "scissors", "teddy bear",
        "hair drier", "toothbrush", "hair brush",
        "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage",
        "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter",
        "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble", "floor-other",
        "floor-stone", "floor-tile", "floor-wood", "flower", "fog", "food-other", "fruit", "furniture-other",
        "grass", "gravel", "ground-other", "hill", "house", "leaves", "light", "mat",
        "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper",
        "pavement", "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad",
        "river", "road", "rock", "roof", "rug", "salad", "sand", "sea",
        "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone", "straw",
        "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable", "wall-brick",
        "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other", "waterdrops",
        "window-blind", "window-other", "wood",
        "unlabeled",
    ),
    _g(background=(182,), noise=(182,)),
)

# Cityscapes labelIds (cityscapesScripts labels.py, ids 0..33; "license plate" is -1 there and never stored)
# as SPADE reads gtFine *_labelIds.png with label_nc=35: id 34 has no class (kept: the release has 35 label
# channels) + the instance-edge channel from *_instanceIds.png (36 input channels).
CITYSCAPES35 = LabelSet(
    "cityscapes-35",
    (
        "unlabeled", "ego vehicle", "rectification border", "out of roi", "static", "dynamic", "ground", "road",
        "sidewalk", "parking", "rail track", "building", "wall", "fence", "guard rail", "bridge",
        "tunnel", "pole", "polegroup", "traffic light", "traffic sign", "vegetation", "terrain", "sky",
        "person", "rider", "car", "truck", "bus", "caravan", "trailer", "train",
        "motorcycle", "bicycle",
        "unused-34",
    ),
    _g(background=(0,), noise=(1, 2, 3, 34)),
)

LABEL_SETS: Final[dict[str, LabelSet]] = {
    s.name: s for s in (LIP20, DRESSCODE18, ACGPN14, SMIS8, FGVC6_STORED, ADE20K151, COCOSTUFF183, CITYSCAPES35)
}


def get_label_set(name: str) -> LabelSet:
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise KeyError(f"unknown label set {name!r}; valid: {', '.join(LABEL_SETS)}") from None


# ---------------------------------------------------------------------------------------------------------
# Conversion tables. Each maps every source id (index) to a target id. Comments give the non-obvious rows.
# ---------------------------------------------------------------------------------------------------------
_CONVERSIONS: dict[tuple[str, str], tuple[int, ...]] = {
    # LIP-20 -> ACGPN-14 (the mapping ACGPN users ask for, DeepFashion_Try_On #15/#29):
    # hat joins hair (head region kept), glove/scarf are "noise" (7), sunglasses join face,
    # dress and coat are upper clothes, skirt is "pants" (ACGPN has one lower class),
    # socks are leg skin, VITON-HD's neck is kept with the face (ACGPN preserves it like the head).
    ("lip-20", "acgpn-14"): (0, 1, 1, 7, 12, 4, 4, 4, 9, 8, 12, 7, 8, 12, 11, 13, 9, 10, 5, 6),
    # LIP-20 -> SMIS-8: arms, legs and neck are skin; dress/coat are top; skirt and pants are bottom;
    # hat joins hair; glove and sunglasses and scarf are accessories SMIS has no class for -> the
    # nearest surface (glove: skin, sunglasses: face, scarf: top clothes).
    ("lip-20", "smis-8"): (0, 1, 1, 3, 2, 4, 4, 4, 6, 5, 3, 4, 5, 2, 3, 3, 3, 3, 7, 7),
    # DressCode-18 -> LIP-20: both lower ids go to pants (9) because DressCode stores skirts as 6 too;
    # head -> face 13. LIP has no belt or bag class: both -> background (0), so that neither is taken
    # for a garment (a belt mapped to "scarf" would make the extra-garment filter fire on every belt).
    ("dresscode-18", "lip-20"): (0, 1, 2, 4, 5, 9, 9, 6, 0, 18, 19, 13, 16, 17, 14, 15, 0, 11),
    # LIP-20 -> DressCode-18: glove -> arm skin of no side (left arm 14), coat -> upper, socks -> legs,
    # neck -> head (DressCode's head covers the neck skin), jumpsuit/neck 10 -> head 11.
    ("lip-20", "dresscode-18"): (0, 1, 2, 14, 3, 4, 7, 4, 12, 6, 11, 17, 5, 11, 14, 15, 12, 13, 9, 10),
    # DressCode-18 -> ACGPN-14, composed through LIP-20 (see `convert_table`).
    # FGVC6 (stored, 0 = background) -> LIP-20: tops/sweaters/vests -> upper 5, outerwear -> coat 7,
    # pants/shorts -> pants 9, skirt -> 12, dress/jumpsuit -> dress 6, hat/headband -> hat 1,
    # glasses -> sunglasses 4, glove 3, socks/tights/leg warmers 8, shoe -> left-shoe 18 (FGVC6 has no side),
    # scarf/tie -> scarf 11, bag/watch/belt/umbrella -> background (no LIP class),
    # garment parts (hood, collar, sleeve, ...) -> upper-clothes 5 (they lie on garments; the apparel mask
    # under them decides where precedence applies).
    ("fgvc6-46+bg", "lip-20"): (
        0,  # background
        5, 5, 5, 7, 7, 5, 9, 9, 12, 7, 6, 6, 7,  # shirt..cape (ids 1..13)
        4, 1, 1, 11, 3, 0, 0, 8, 8, 8, 18, 0, 11, 0,  # glasses..umbrella (14..27)
        *([5] * 19),  # parts 28..46
    ),
}


def _compose(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(b[x] for x in a)


def conversion_table(source: str, target: str) -> np.ndarray:
    """uint8 lookup table ``lut`` with ``converted = lut[labelmap]``.

    Direct tables are preferred; otherwise one hop through LIP-20 (the richest human-parsing set).
    """
    src, dst = get_label_set(source), get_label_set(target)
    if source == target:
        return np.arange(src.num_classes, dtype=np.uint8)
    table = _CONVERSIONS.get((source, target))
    if table is None and (source, "lip-20") in _CONVERSIONS and ("lip-20", target) in _CONVERSIONS:
        table = _compose(_CONVERSIONS[(source, "lip-20")], _CONVERSIONS[("lip-20", target)])
    if table is None:
        valid = sorted(f"{a}->{b}" for a, b in available_conversions())
        raise KeyError(f"no conversion {source} -> {target}; available: {', '.join(valid)}")
    lut = np.asarray(table, dtype=np.uint8)
    assert len(lut) == src.num_classes and lut.max() < dst.num_classes, (source, target)
    return lut


def available_conversions() -> list[tuple[str, str]]:
    """Every (source, target) pair ``conversion_table`` accepts: direct tables and one hop via LIP-20."""
    pairs = set(_CONVERSIONS)
    for a, _ in _CONVERSIONS:
        for _, b in _CONVERSIONS:
            if (a, "lip-20") in _CONVERSIONS and ("lip-20", b) in _CONVERSIONS and a != b:
                pairs.add((a, b))
    return sorted(pairs)


def convert(labelmap: np.ndarray, source: str, target: str) -> np.ndarray:
    """Convert a label map between sets; ids outside the source set are an error (never clipped)."""
    lut = conversion_table(source, target)
    if labelmap.size and int(labelmap.max()) >= len(lut):
        raise ValueError(f"label map has id {int(labelmap.max())} outside {source} (0..{len(lut) - 1})")
    return lut[labelmap]


def unknown_ids(labelmap: np.ndarray, label_set: str) -> list[int]:
    """Ids present in the map that the label set does not define (for the ingest rejection reason)."""
    n = get_label_set(label_set).num_classes
    present = np.unique(labelmap)
    return [int(i) for i in present if i >= n]
