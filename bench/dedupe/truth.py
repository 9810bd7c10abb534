"""Ground-truth pairs of both benchmark sets and the scores of a predicted pair set against them.

Duplicate pairs: two files with one ``origin``, labelled by the edit family of the pair (the copy's edit
against the original; ``two-copies`` for two edited copies of one original). Trap pairs: two files of one
family (same base) with different origins: colourways and the other look-alike products, labelled by the
trap kind (``colourway`` for the tuning set, whose generator does not name the kinds).
"""

from __future__ import annotations

import itertools

import pandas as pd

TONAL = ("brightness", "contrast", "gamma")


def edit_family(edit: str, subject: str = "") -> str:
    if "+" in edit:
        return "combined-tonal" if any(t in edit for t in TONAL) else "combined"
    if edit == "crop" and subject in ("person", "real"):
        return "onmodel-crop"
    return edit


def truth_pairs(truth: pd.DataFrame) -> tuple[dict[tuple[int, int], str], dict[tuple[int, int], str]]:
    """(duplicate pair -> edit family, trap pair -> trap kind), pairs as sorted row indices."""
    reporting = "edit" in truth.columns
    edit = (truth["edit"] if reporting else truth["transform"]).tolist()
    subject = truth["subject"].tolist() if reporting else [""] * len(truth)
    # the original of a duplicate group: a tuning set's lookalike with copies (variant "family") is its own origin
    original = [e == "original" for e in edit] if reporting else (truth["file"] == truth["origin"]).tolist()
    dup: dict[tuple[int, int], str] = {}
    for _, g in truth.groupby("origin").indices.items():
        for a, b in itertools.combinations(sorted(g), 2):
            if original[a] or original[b]:
                copy = b if original[a] else a
                dup[(a, b)] = edit_family(edit[copy], subject[copy])
            else:
                dup[(a, b)] = "two-copies"
    family = truth["family"] if reporting else truth["file"].str.split("_").str[0]
    # the tuning set's lookalikes (variant "hard") are named by their transform, and a copy of one (variant
    # "family") by its origin's; every other trap is a colourway
    if reporting:
        trap_of = truth["trap"].tolist()
    else:
        kind_of = dict(zip(truth["file"], truth["transform"]))
        trap_of = [t if t.startswith("lookalike") else kind_of.get(o, "") if kind_of.get(o, "").startswith("lookalike") else "colourway"
                   for t, o in zip(truth["transform"], truth["origin"])]
    traps: dict[tuple[int, int], str] = {}
    for _, g in pd.Series(range(len(truth))).groupby(family.to_numpy()).indices.items():
        for a, b in itertools.combinations(sorted(g), 2):
            if (a, b) not in dup:
                if reporting:
                    traps[(a, b)] = trap_of[b] or trap_of[a] or "colourway"
                else:  # a lookalike on either side names the pair (a copy of the original against a lookalike is
                    #    that lookalike's trap, not a colourway)
                    traps[(a, b)] = trap_of[b] if trap_of[b] != "colourway" else trap_of[a]
    return dup, traps


def scores(found: set[tuple[int, int]], dup: dict[tuple[int, int], str], traps: dict[tuple[int, int], str]) -> dict:
    """Pairwise precision / recall / F1, recall per edit family (hit, total) and false positives per trap
    kind (merged, total)."""
    tp = sum(1 for p in found if p in dup)
    p = tp / len(found) if found else 1.0
    r = tp / len(dup) if dup else 1.0
    per: dict[str, list[int]] = {}
    for pair, fam in dup.items():
        c = per.setdefault(fam, [0, 0])
        c[0] += pair in found
        c[1] += 1
    fp: dict[str, list[int]] = {}
    for pair, kind in traps.items():
        c = fp.setdefault(kind, [0, 0])
        c[0] += pair in found
        c[1] += 1
    merged = sum(c[0] for c in fp.values())
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "pairs": len(found),
            "per_family": per, "traps": fp, "trap_fp": merged, "trap_pairs": len(traps)}


IMAGE_LIBRARIES = ("numpy", "pillow", "opencv-python-headless", "opencv-contrib-python", "scipy", "ImageHash")


def libraries() -> str:
    """The libraries a score was measured on, one line: decoding, drawing and encoding move the figures (issue 16,
    eleventh round), so every benchmark run prints it beside its scores. ``cv2`` is the build actually imported (two
    OpenCV distributions install into one package)."""
    from eval.record import package_versions

    try:
        import cv2

        loaded = cv2.__version__
    except ImportError:
        loaded = None
    versions = {**package_versions(IMAGE_LIBRARIES), "cv2 imported": loaded}
    return "libraries: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None)
