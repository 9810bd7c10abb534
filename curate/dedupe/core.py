"""Duplicate groups from per-image thumbnails: exact bytes, same pixels, verified near duplicates.

The order of the stages is the order of the evidence's strength, and of its cost:

1. exact bytes: equal sha256 of the file (computed while reading it for the thumbnail);
2. same pixels: different bytes but identical decoded pixels (a re-saved PNG, stripped metadata). Two
   such files have the same size and the same thumbnail, so only groups sharing (size, thumbnail) are
   decoded in full, and compared by the sha256 of their pixels: exact, and almost never needed;
3. near duplicates: every pair of view hashes within the radius (multi-index search,
   :mod:`curate.dedupe.search`), streamed in blocks through the verification
   (:mod:`curate.dedupe.verify`); accepted pairs go into a union-find.

Nothing here reads a manifest: the command and the benchmark both call :func:`find_duplicates`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from curate.dedupe.features import Thumb
from curate.dedupe.search import pairs_within
from curate.dedupe.verify import VERIFY_BATCH, Thresholds, Views, distances, verify, views
from curate.imageio import sha256_bytes


BRIDGE_PAIRS = 64  # most pairs across two groups the bridge test checks: a bridge is between a few copies' groups


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n  # members under each root (valid at roots only)

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        self.size[min(ra, rb)] += self.size[max(ra, rb)]
        return True

    def group_size(self, x: int) -> int:
        return self.size[self.find(x)]


@dataclasses.dataclass(frozen=True)
class Link:
    """Why ``b`` joined ``a``'s group: the edge that merged them."""

    a: int
    b: int
    kind: str  # exact-bytes | same-pixels | near-duplicate
    distances: dict[str, float] | None = None


@dataclasses.dataclass
class DuplicateGroups:
    uf: UnionFind
    links: list[Link]
    views: Views | None
    index: np.ndarray  # views row -> image index (the readable images)
    candidates: int  # hash pairs within the radius that went through verification
    pixel_hashes: dict[int, str] = dataclasses.field(default_factory=dict)  # the images decoded in full, by index
    fine_refused: int = 0  # links the finer look (curate.dedupe.confirm) refused
    looks: dict[tuple[int, int], dict[str, float]] = dataclasses.field(default_factory=dict)  # each look's measurements
    # wall seconds and pairs of each stage after hashing ("verify": the thumbnails' candidates; "look": the finer look at
    # the links they accepted, a tone curve's and the refits; "rescue look": the refused pairs the alignment may join)
    stages: dict[str, tuple[float, int]] = dataclasses.field(default_factory=dict)

    @property
    def fine_checked(self) -> int:
        """Links given a finer look, products and photos."""
        return len(self.looks)

    def same_pixels(self, i: int, j: int) -> bool:
        """True when both images were decoded in full (same size and thumbnail, other bytes) and their
        pixels are equal."""
        a, b = self.pixel_hashes.get(i), self.pixel_hashes.get(j)
        return a is not None and a == b

    def distances(self, i: int, j: int) -> dict[str, float] | None:
        """The verification distances between images i and j (None when either was unreadable)."""
        return self.distances_of([(i, j)])[0]

    def distances_of(self, pairs: Sequence[tuple[int, int]]) -> list[dict[str, float] | None]:
        """:meth:`distances` of many pairs in one pass over the views (a manifest's every near-duplicate)."""
        out: list[dict[str, float] | None] = [None] * len(pairs)
        if self.views is None or not len(pairs):
            return out
        ij = np.asarray(pairs, np.int64).reshape(-1, 2)
        rows = np.minimum(np.searchsorted(self.index, ij), len(self.index) - 1)
        known = np.flatnonzero((self.index[rows] == ij).all(axis=1))
        for start in range(0, len(known), VERIFY_BATCH):  # per-cell temporaries bounded as in verify
            part = known[start:start + VERIFY_BATCH]
            d = distances(self.views, rows[part, 0], rows[part, 1])
            for m, k in enumerate(part):
                out[k] = d.row(m)
        return out

    def groups(self, members: Sequence[int]) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in members:
            out.setdefault(self.uf.find(i), []).append(i)
        return [g for g in out.values() if len(g) > 1]


def stages_line(stages: dict[str, tuple[float, int]]) -> str:
    """:attr:`DuplicateGroups.stages` on one line, as the command and the benchmarks print it."""
    return ", ".join(f"{name} {sec:.1f} s ({pairs} pairs)" for name, (sec, pairs) in stages.items())


def pixel_sha256(path: str | Path) -> str:
    from PIL import Image

    with Image.open(path) as im:
        return sha256_bytes(im.convert("RGB").tobytes())


def candidate_pairs(view_hashes: np.ndarray, radius: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of image pairs (a < b) whose hashes are within ``radius`` for some view pair other than
    inner-inner. ``view_hashes``: [m, 2] uint64. One search over the 2m hashes; a pair met through several
    view pairs in one block is reported once (across blocks it may repeat: unions are idempotent)."""
    m = len(view_hashes)
    both = np.concatenate([view_hashes[:, 0], view_hashes[:, 1]])  # entry e < m is view 0 of image e, else view 1
    for a, b, _ in pairs_within(both, radius):
        ia, ib = a % m, b % m
        keep = (ia != ib) & ((a < m) | (b < m))  # inner-inner adds nothing over full-full
        ia, ib = np.minimum(ia, ib)[keep], np.maximum(ia, ib)[keep]
        if len(ia):
            key = np.unique(ia * m + ib)
            yield key // m, key % m


def one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS on one thread while dedupe's arrays are built: its products are of 32x32 images and 64-bit
    projections, too small for threads to gain anything, and on a busy machine OpenBLAS's threads spin
    waiting for a core (views() over 5,000 thumbnails: 1.5 s on one thread, 2.5-4 s on two at load 8).
    Threads split the output, not the sums, so the results are the same bits. A no-op without
    threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, "blas")


def find_duplicates(
    thumbs: Sequence[Thumb | None],
    paths: Sequence[str | Path],
    thresholds: Thresholds = Thresholds(),
    pixel_hash: Callable[[str | Path], str] = pixel_sha256,
    search_hash: str = "ours",
    workers: int = 1,
) -> DuplicateGroups:
    """Groups over ``thumbs`` (None for an image that could not be read: never grouped). ``search_hash``:
    ``ours`` (two views' random-hyperplane hashes) or ``phash`` / ``dhash``: the candidates are the pairs of
    imagehash's hashes (``Thumb.extra_hash``, one per image) within the radius; verification is the same.
    ``workers``: processes for the finer look at links between products (curate.dedupe.confirm)."""
    with one_blas_thread():
        return _find_duplicates(thumbs, paths, thresholds, pixel_hash, search_hash, workers)


VERIFY_POOL_MIN = 1000  # images from which candidate blocks are verified on the worker pool
_VERIFYING: tuple[Views, Thresholds, np.ndarray] | None = None  # (views, thresholds, boxed) a verify worker reads


def _set_verify_state(v: Views | None, thresholds: Thresholds | None, boxed: np.ndarray | None) -> None:
    global _VERIFYING
    _VERIFYING = None if v is None else (v, thresholds, boxed)  # type: ignore[assignment]
    if v is not None:
        one_blas_thread()  # threadpoolctl applies the limit when it is made: a worker keeps one BLAS thread


def _verified(blocks: Iterator[tuple[np.ndarray, np.ndarray]], v: Views, thresholds: Thresholds, boxed: np.ndarray,
              workers: int) -> Iterator[tuple[np.ndarray, np.ndarray, tuple]]:
    """:func:`_verify_block` over ``blocks`` in block order, on the pool; where it ran here, the views are not kept
    past it (a pool's workers end with the pool)."""
    from curate.dedupe.engine import imap_local

    try:
        yield from imap_local(_verify_block, blocks, workers, _set_verify_state, (v, thresholds, boxed))
    finally:
        _set_verify_state(None, None, None)


def _verify_block(block: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One block of candidate pairs through verify: (ia, ib, (accepted, distances, refit rows, rescue rows))."""
    v, thresholds, boxed = _VERIFYING  # type: ignore[misc]
    ia, ib = block
    refit: list[tuple[int, dict[str, float]]] = []
    rescue: list[tuple[int, dict[str, float]]] = []
    looked = boxed[ia] & boxed[ib] if thresholds.fine and thresholds.fine_curve else None
    accepted, d = verify(v, ia, ib, thresholds, looked, refit, rescue)
    return ia, ib, (accepted, d, refit, rescue)


def _find_duplicates(thumbs: Sequence[Thumb | None], paths: Sequence[str | Path], thresholds: Thresholds,
                     pixel_hash: Callable[[str | Path], str], search_hash: str, workers: int = 1) -> DuplicateGroups:
    n = len(thumbs)
    uf = UnionFind(n)
    links: list[Link] = []
    ok = [i for i, t in enumerate(thumbs) if t is not None]
    # 1. exact bytes
    by_bytes: dict[str, int] = {}
    for i in ok:
        first = by_bytes.setdefault(thumbs[i].sha256, i)  # type: ignore[union-attr]
        if first != i and uf.union(first, i):
            links.append(Link(first, i, "exact-bytes"))
    # 2. same pixels, decoded in full only where size and thumbnail agree but the bytes do not
    pixel_hashes: dict[int, str] = {}
    by_look: dict[tuple[int, int, bytes], list[int]] = {}
    for i in ok:
        t = thumbs[i]
        by_look.setdefault((t.width, t.height, t.pixels), []).append(i)  # type: ignore[union-attr]
    for same in by_look.values():
        if len({thumbs[i].sha256 for i in same}) < 2:  # type: ignore[union-attr]
            continue
        by_pixels: dict[str, int] = {}
        for i in same:
            try:
                key = pixel_hash(paths[i])
            except Exception:  # noqa: BLE001 - read fine for the thumbnail; a full decode failing is not fatal
                continue
            pixel_hashes[i] = key
            first = by_pixels.setdefault(key, i)
            if first != i and uf.union(first, i):
                links.append(Link(first, i, "same-pixels"))
    # 3. near duplicates
    if len(ok) < 2:
        return DuplicateGroups(uf, links, None, np.asarray(ok, np.int64), 0, pixel_hashes)
    arr = np.stack([thumbs[i].array() for i in ok])  # type: ignore[union-attr]
    det = np.stack([thumbs[i].detail_array() for i in ok])  # type: ignore[union-attr]
    v = views(arr, det, np.array([thumbs[i].aspect for i in ok]))  # type: ignore[union-attr]
    candidates = 0
    index = np.asarray(ok, np.int64)
    if search_hash == "ours":
        blocks: Iterator[tuple[np.ndarray, np.ndarray]] = candidate_pairs(v.hashes, thresholds.radius)
    else:
        extra = np.array([thumbs[i].extra_hash for i in ok], np.uint64)  # type: ignore[union-attr]
        blocks = ((a, b) for a, b, _ in pairs_within(extra, thresholds.radius))
    curve_links: list[tuple[float, int, int, dict[str, float]]] = []
    looked_links: dict[tuple[int, int], dict[str, float]] = {}  # links that wait for the finer look

    def gets_a_look(i: int, j: int) -> str | None:
        """Which finer look a link gets: "product" (both on plain backgrounds), "photo" (either is not: a
        brightened photo can gain a plain background), or none."""
        if not thresholds.fine:
            return None
        return "product" if thumbs[i].boxed and thumbs[j].boxed else "photo" if thresholds.fine_photos else None  # type: ignore[union-attr]

    boxed = np.array([bool(thumbs[i].boxed) for i in ok])  # type: ignore[union-attr]
    refit_links: list[tuple[int, int, dict[str, float]]] = []  # products a finer tone curve may yet join
    rescue_links: list[tuple[int, int, dict[str, float]]] = []  # refused pairs a pixel alignment may yet join (rescue)
    # every pair whose link stood, joined or not: what a bridge between two groups is checked against (below)
    stood: set[tuple[int, int]] = {(min(link.a, link.b), max(link.a, link.b)) for link in links}
    stages: dict[str, tuple[float, int]] = {}
    started = time.perf_counter()
    # the blocks are verified on the workers (each holds the views), their results taken in block order, so the
    # unions below run in the order one process would run them; a small catalogue is not worth a pool's start
    for ia, ib, (accepted, d, refit, rescue) in _verified(blocks, v, thresholds, boxed, workers if len(ok) >= VERIFY_POOL_MIN else 1):
        candidates += len(ia)
        for k, row in refit:
            refit_links.append((int(index[ia[k]]), int(index[ib[k]]), row))
        for k, row in rescue:
            rescue_links.append((int(index[ia[k]]), int(index[ib[k]]), row))
        via_curve = np.isfinite(d.tonal_tone)  # type: ignore[arg-type] - verify always fills it
        for k, (a, b) in enumerate(zip(ia[accepted], ib[accepted])):
            i, j = int(index[a]), int(index[b])
            if via_curve[k]:
                curve_links.append((float(d.tonal_tone[k]), i, j, d.row(k)))  # type: ignore[index]
            elif gets_a_look(i, j):
                looked_links[(i, j)] = d.row(k)
            else:
                stood.add((min(i, j), max(i, j)))
                if uf.union(i, j):
                    links.append(Link(i, j, "near-duplicate", d.row(k)))
    stages["verify"] = (time.perf_counter() - started, candidates)
    # a finer look (curate.dedupe.confirm) at links between two products on plain backgrounds, the near twins and
    # recoloured prints the thumbnails cannot tell apart, and at links between two photos, a garment recoloured
    # in one shot; it refuses a link, except the products it fits a tone curve for again (refit_links)
    refitted = {(i, j) for i, j, _ in refit_links}
    # a rescued pair of two products is judged by the product look's tone curve: --no-fine-curve turns that off too
    rescue_links = [r for r in rescue_links if thresholds.fine_curve or gets_a_look(r[0], r[1]) != "product"]
    rescued = {(i, j) for i, j, _ in rescue_links}
    fine: dict[tuple[int, int], dict[str, float]] = {}

    def look(pairs: list[tuple[int, int]]) -> None:
        """The finer looks at ``pairs``, into ``fine``: the product look for two boxed images, the photo look for
        the rest (and for products the outline cannot judge); a pair the thumbnails refused gets the alignment
        that can join it."""
        kinds = {p: gets_a_look(*p) for p in pairs}
        product_pairs = [p for p, kind in kinds.items() if kind == "product"]
        photo_pairs = [p for p, kind in kinds.items() if kind == "photo" and p not in rescued]
        rescue_pairs = [p for p, kind in kinds.items() if kind == "photo" and p in rescued]
        if not (product_pairs or photo_pairs or rescue_pairs):
            return
        from curate.dedupe.confirm import compare_pairs, look_at_photos

        for p, r in zip(product_pairs, compare_pairs(paths, product_pairs, workers, thresholds)):
            if r is not None:
                measures = {"fine_shape": r[0], "fine_hue": r[1], "fine_tone": r[2], "fine_tone_shift": r[3], "fine_far": r[4],
                            "fine_hue_region": r[5]}
                fine[p] = {k: v for k, v in measures.items() if v is not None}  # None: not measured (a small file's hue)
                if r[6] is not None:  # measured only where every other test let the pair through
                    fine[p]["fine_edge"] = r[6]
                if (thresholds.fine_photos and thresholds.fine_rescue and (p in rescued or p in refitted)
                        and thresholds.fine_outline_holds(r[0], r[1], r[5]) and (r[6] is None or r[6] <= thresholds.fine_edge)
                        and not (r[2] <= thresholds.fine_tone and r[3] <= thresholds.fine_tone_shift)):
                    # one outline, no hue turned, but the curve on the outline-aligned product failed: the keypoint
                    # alignment is finer (sub-pixel, interpolated) and its curve decides, the outline's verdict kept
                    rescue_pairs.append(p)
            elif thresholds.fine_photos and p in rescued:  # a product the silhouette look cannot judge (small,
                rescue_pairs.append(p)  # textured, a person on a plain wall): aligned as photos; a refit needs the
            elif thresholds.fine_photos and p not in refitted:  # curve on the product, which only that look fits
                photo_pairs.append(p)
        looks, rescues = look_at_photos(paths, photo_pairs, rescue_pairs, workers, thresholds)
        for p, hue in zip(photo_pairs, looks):
            if hue is not None:
                fine[p] = {"fine_photo_hue": hue}
        for p, r in zip(rescue_pairs, rescues):
            # None: not aligned on enough keypoints over most of the smaller image, so the pair stays refused (or, for
            # a product the outline judged, keeps that look's curve)
            if r is not None:
                fine[p] = {**{k: fine[p][k] for k in ("fine_shape", "fine_hue", "fine_hue_region", "fine_edge") if k in fine.get(p, {})},
                           "fine_photo_hue": r[0], "fine_tone": r[1], "fine_tone_shift": r[2], "fine_photo_far": r[3]}
    refused = 0

    def confirmed(i: int, j: int, row: dict[str, float], refitted: bool = False) -> bool:
        """Whether a link stands after its finer look; a link the thumbnails refused (``refitted``: a refit or a
        rescue) needs the look and its tone curve, any other is judged on shape and hue only (its own curve
        already held)."""
        nonlocal refused
        if (i, j) not in fine or (refitted and "fine_tone" not in fine[(i, j)]):  # a photo look fits no curve
            return not refitted
        measured = fine[(i, j)]
        row.update({name: round(value, 4) for name, value in measured.items() if np.isfinite(value)})
        # every fine_* measure is judged against the Thresholds field of its own name
        ok = all(value <= getattr(thresholds, name) for name, value in measured.items() if refitted or not name.startswith("fine_tone"))
        refused += not ok and not refitted
        return ok

    started = time.perf_counter()
    first_looks = [*looked_links, *((i, j) for _, i, j, _ in curve_links), *refitted]
    look(first_looks)
    stages["look"] = (time.perf_counter() - started, len(first_looks))
    bridges: list[tuple[int, int, dict[str, float], float]] = []  # links between two groups, in the order met, with
    #                                                               the share of cross pairs that must agree
    # most certain first (single linkage does not care; link_agreement does: the strong links form the groups, and a
    # weaker one between two of them is the bridge that is checked)
    for (i, j), row in sorted(looked_links.items(), key=lambda item: item[1]["tone"] + item[1]["structure"]):
        if confirmed(i, j, row):
            stood.add((min(i, j), max(i, j)))
            if thresholds.link_agreement > 0 and uf.group_size(i) > 1 and uf.group_size(j) > 1 and uf.find(i) != uf.find(j):
                bridges.append((i, j, row, thresholds.link_agreement))
            elif uf.union(i, j):
                links.append(Link(i, j, "near-duplicate", row))

    def curve_join(i: int, j: int, row: dict[str, float]) -> None:
        """A confirmed link that only a tone curve explains: it may bring one image into a group, but not join two
        groups (the curve's freedom can bridge two products of one cut in two shades, and through the union-find one
        such bridge would merge both products' whole groups) - that waits for the bridge test at the end."""
        stood.add((min(i, j), max(i, j)))
        if uf.group_size(i) == 1 or uf.group_size(j) == 1:
            if uf.union(i, j):
                links.append(Link(i, j, "near-duplicate", row))
        elif thresholds.curve_bridges and uf.find(i) != uf.find(j):
            bridges.append((i, j, row, thresholds.bridge_agreement))

    # links that only a tone curve explains come last, most certain first
    for _, i, j, row in sorted(curve_links):
        if confirmed(i, j, row):
            curve_join(i, j, row)
    # then the products only the finer look's tone curve explains, under the same rule, closest fit first
    # and the refused pairs the finer look aligned pixel for pixel (a crop, a strong tone edit), under the same rule
    for later in (refit_links, rescue_links):
        if later is rescue_links:
            # looked at only where a single image can still join (groups only grow, so the singleton rule refuses then
            # what it refuses now); a rescued pair between two groups that both have members by now is not looked at,
            # so it never bridges them: a choice that saves looks, not a shortcut with the same answers
            later = [r for r in later if uf.find(r[0]) != uf.find(r[1])
                     and (uf.group_size(r[0]) == 1 or uf.group_size(r[1]) == 1)]
            started = time.perf_counter()
            look([(i, j) for i, j, _ in later])
            stages["rescue look"] = (time.perf_counter() - started, len(later))
        for i, j, row in sorted(later, key=lambda r: fine.get((r[0], r[1]), {}).get("fine_tone", np.inf)):
            if confirmed(i, j, row, refitted=True):
                curve_join(i, j, row)
    if bridges:
        # two groups a link would join, joined when its share (bridge_agreement for a tone-curve link, link_agreement
        # for the others) of the pairs across them are links that stood (1.0: complete linkage): several tone-edited copies of one original first pair up among themselves and
        # then meet the original's group; two shades of one cut each with its copies rarely agree on most cross pairs
        members: dict[int, list[int]] = {}
        for i in ok:
            members.setdefault(uf.find(i), []).append(i)
        for i, j, row, share in bridges:
            ri, rj = uf.find(i), uf.find(j)
            if ri == rj or len(members[ri]) * len(members[rj]) > BRIDGE_PAIRS:
                continue
            agree = sum((min(a, b), max(a, b)) in stood for a in members[ri] for b in members[rj])
            if agree >= share * len(members[ri]) * len(members[rj]):
                uf.union(i, j)
                links.append(Link(i, j, "near-duplicate", row))
                root = uf.find(i)
                members[root] = members.pop(ri) + members.pop(rj)
    return DuplicateGroups(uf, links, v, index, candidates, pixel_hashes, refused, fine, stages)
