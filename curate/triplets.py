"""`curate triplets`: (human, positive article, negative article) triplets with leak-free splits.

Splits are made by *identity*: a union-find joins every usable pair's human, article and their duplicate
groups, and whole components go to one split, so no person, no article and no duplicate group appears in
two splits. Negatives are drawn from the same split (an article used as a negative elsewhere would leak
too), never the positive, never a member of the positive's duplicate group, of the same category unless
``--any-category``. Deterministic for a seed.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from curate.manifest import Manifest, ManifestError, atomic_write_bytes, usable_pairs

TRIPLETS_FILE = "triplets.parquet"
SPLITS = ("train", "val", "test")


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # deterministic root


@dataclasses.dataclass
class TripletsResult:
    path: Path
    triplets: pd.DataFrame
    split_sizes: dict[str, int]
    without_negative: list[str]


def _identity_components(pairs: pd.DataFrame, humans: pd.DataFrame, articles: pd.DataFrame) -> dict[str, str]:
    """pair_id -> component root. Nodes: human, article and both duplicate groups."""
    h_group = humans.set_index("human_id")["dup_group"]
    a_group = articles.set_index("article_id")["dup_group"]
    uf = _UnionFind()
    for pid, hid, aid in zip(pairs["pair_id"], pairs["human_id"], pairs["article_id"]):
        uf.union(f"p:{pid}", f"h:{hid}")
        uf.union(f"p:{pid}", f"a:{aid}")
        hg, ag = h_group.get(hid), a_group.get(aid)
        if hg is not None and not pd.isna(hg):
            uf.union(f"h:{hid}", f"hg:{int(hg)}")
        if ag is not None and not pd.isna(ag):
            uf.union(f"a:{aid}", f"ag:{int(ag)}")
    return {pid: uf.find(f"p:{pid}") for pid in pairs["pair_id"]}


def _assign_splits(components: dict[str, str], fractions: tuple[float, float, float], rng: np.random.Generator) -> dict[str, str]:
    """Whole components to splits: shuffled, then each goes to the split furthest below its target."""
    sizes: dict[str, int] = {}
    for root in components.values():
        sizes[root] = sizes.get(root, 0) + 1
    roots = sorted(sizes)
    order = rng.permutation(len(roots))
    total = sum(sizes.values())
    targets = np.asarray(fractions) * total
    filled = np.zeros(3)
    split_of_root: dict[str, str] = {}
    for i in order:
        root = roots[i]
        deficit = targets - filled
        k = int(np.argmax(deficit))
        split_of_root[root] = SPLITS[k]
        filled[k] += sizes[root]
    return {pid: split_of_root[root] for pid, root in components.items()}


def build_triplets(
    ds: Path,
    negatives: int = 1,
    same_category: bool = True,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> TripletsResult:
    if negatives < 1:
        raise ValueError("--negatives must be >= 1")
    if len(split) != 3 or any(f < 0 for f in split) or abs(sum(split) - 1.0) > 1e-6:
        raise ValueError(f"--split needs three non-negative fractions summing to 1 (train,val,test); got {split}")
    m = Manifest.load(ds)
    pairs = usable_pairs(m)
    pairs = pairs[pairs["article_id"].notna() & pairs["paired"].fillna(False).astype(bool)]
    pairs = pairs.sort_values("pair_id", ignore_index=True)
    if pairs.empty:
        raise ValueError(f"{ds}: no usable paired (human, article) pairs; check `curate summary {ds}`")
    rng = np.random.default_rng(seed)
    components = _identity_components(pairs, m.humans, m.articles)
    split_of = _assign_splits(components, split, rng)
    pairs = pairs.assign(split=pairs["pair_id"].map(split_of))

    articles = m.articles.set_index("article_id")
    # plain dicts with None for "no group": pandas' NA has no truth value in the comparisons below
    a_group = {k: (None if pd.isna(v) else int(v)) for k, v in articles["dup_group"].items()}
    category = articles["category"].astype("object")
    rows: list[dict[str, object]] = []
    missing: list[str] = []
    for split_name, part in pairs.groupby("split", sort=True):
        pool = sorted(set(part["article_id"]))  # only this split's articles: nothing crosses a split
        for pid, hid, aid in zip(part["pair_id"], part["human_id"], part["article_id"]):
            pos_group = a_group.get(aid)
            candidates = [
                a for a in pool
                if a != aid
                and not (pos_group is not None and a_group.get(a) == pos_group)
                and (not same_category or category.get(a) == category.get(aid))
            ]
            if not candidates:
                missing.append(pid)
                rows.append(dict(pair_id=pid, human_id=hid, article_id=aid, negative_id=None, negative_rank=0, split=split_name,
                                 category=category.get(aid)))
                continue
            picks = rng.choice(len(candidates), size=min(negatives, len(candidates)), replace=False)
            for rank, j in enumerate(sorted(picks)):
                rows.append(dict(pair_id=pid, human_id=hid, article_id=aid, negative_id=candidates[j], negative_rank=rank,
                                 split=split_name, category=category.get(aid)))
    table = pd.DataFrame(rows).astype({"negative_rank": "int32"})
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    out = Path(ds) / TRIPLETS_FILE
    atomic_write_bytes(out, buf.getvalue())
    sizes = {s: int((pairs["split"] == s).sum()) for s in SPLITS}
    return TripletsResult(out, table, sizes, missing)


def load_triplets(ds: Path) -> pd.DataFrame:
    path = Path(ds) / TRIPLETS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `curate triplets {ds}` first")
    return pd.read_parquet(path)


def triplets_command(
    ds: Path = typer.Argument(..., help="dataset directory written by `curate ingest`"),
    negatives: int = typer.Option(1, "--negatives", min=1, help="negative articles per pair"),
    same_category: bool = typer.Option(True, "--same-category/--any-category", help="negatives of the positive's category"),
    split: str = typer.Option("0.8,0.1,0.1", "--split", help="train,val,test fractions"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Build (human, positive, negative) triplets with identity-disjoint train/val/test splits.

    Example: curate triplets data/ds --negatives 2 --split 0.8,0.1,0.1 --seed 0
    """
    from rich.console import Console

    try:
        fractions = tuple(float(v) for v in split.split(","))
    except ValueError:
        raise typer.BadParameter(f"--split must be three numbers like 0.8,0.1,0.1 (got {split!r})") from None
    try:
        result = build_triplets(ds, negatives, same_category, fractions, seed)  # type: ignore[arg-type]
    except (ManifestError, ValueError) as exc:  # no manifest (names the command to run), no usable pairs
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from rich.markup import escape

    console = Console()
    console.print(escape(f"wrote {len(result.triplets)} triplets to {result.path}"))
    console.print("pairs per split: " + ", ".join(f"{k} {v}" for k, v in result.split_sizes.items()))
    if result.without_negative:
        console.print(f"[yellow]{len(result.without_negative)} pairs got no negative (no other article of their "
                      f"category in their split), e.g. {escape(str(result.without_negative[:5]))}")
