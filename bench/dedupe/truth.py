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
    dup: dict[tuple[int, int], str] = {}
    for _, g in truth.groupby("origin").indices.items():
        for a, b in itertools.combinations(sorted(g), 2):
            if edit[a] == "original" or edit[b] == "original":
                copy = b if edit[a] == "original" else a
                dup[(a, b)] = edit_family(edit[copy], subject[copy])
            else:
                dup[(a, b)] = "two-copies"
    family = truth["family"] if reporting else truth["file"].str.split("_").str[0]
    # the tuning set's lookalikes (variant "hard") are named by their transform; every other trap is a colourway
    trap_of = truth["trap"].tolist() if reporting else [t if t.startswith("lookalike") else "colourway" for t in truth["transform"]]
    traps: dict[tuple[int, int], str] = {}
    for _, g in pd.Series(range(len(truth))).groupby(family.to_numpy()).indices.items():
        for a, b in itertools.combinations(sorted(g), 2):
            if (a, b) not in dup:
                traps[(a, b)] = trap_of[b] or trap_of[a] or "colourway"
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
