"""Every pair of 64-bit hashes within a Hamming radius, exactly, without comparing all pairs.

Multi-index hashing (Norouzi et al., 2012): split the 64 bits into ``m`` chunks. If two hashes differ in at
most ``r`` bits, then by the pigeonhole principle at least one chunk differs in at most ``r // m`` bits.
So for each chunk we bucket the images by that chunk's value, and each image probes the buckets whose
values are within ``r // m`` bits of its own (its value XOR every mask of that many bits); every pair so
found is checked on all 64 bits. A pair is reported only from the first chunk in which it is within
``r // m`` bits, so each pair comes out once.

All of it is numpy over whole arrays: buckets are a sort plus a dense table of bucket starts (chunks of
up to 24 bits) and candidates are expanded in bounded blocks, so memory stays flat however many
candidates a catalogue of similar silhouettes produces. The chunk count is chosen from ``n`` and ``r`` by
an estimate of probes and candidates for uniformly spread hashes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

DENSE_TABLE_BITS = 24  # a chunk of up to 2**24 values gets a dense bucket-start table (64 MB as int32 at most)
BLOCK = 1 << 21  # candidate pairs expanded at once (bounded memory: ~60 MB of temporaries)


def _widths(m: int) -> list[int]:
    base, extra = divmod(64, m)
    return [base + (1 if c < extra else 0) for c in range(m)]


def _probes(width: int, per: int) -> int:
    return sum(math.comb(width, k) for k in range(per + 1))


def choose_chunks(n: int, radius: int) -> int:
    """The chunk count with the least estimated work: probes (n x masks) plus candidates (probes x n / 2^w)."""
    best, best_cost = 1, float("inf")
    for m in range(1, 17):
        widths = _widths(m)
        if max(widths) > 32:
            continue
        per = radius // m
        cost = 0.0
        for w in widths:
            probes = n * _probes(w, per)
            cost += probes * (1.0 + n / 2.0**w) + (0 if w <= DENSE_TABLE_BITS else probes * math.log2(max(n, 2)))
        if cost < best_cost:
            best, best_cost = m, cost
    return best


def _flip_masks(width: int, per: int) -> np.ndarray:
    masks = [0]
    for k in range(1, per + 1):
        masks += [sum(1 << b for b in bits) for bits in itertools.combinations(range(width), k)]
    return np.asarray(masks, np.int64)


def pairs_within(hashes: np.ndarray, radius: int, chunks: int | None = None, block: int = BLOCK) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield blocks ``(i, j, distance)`` (int64 arrays, i < j) covering every pair within ``radius`` once."""
    h = np.ascontiguousarray(hashes, dtype=np.uint64)
    n = len(h)
    if n < 2:
        return
    m = chunks or choose_chunks(n, radius)
    widths = _widths(m)
    per = radius // m
    shifts = np.cumsum([0] + widths[:-1])
    values = [((h >> np.uint64(s)) & np.uint64((1 << w) - 1)).astype(np.int64) for s, w in zip(shifts, widths)]
    for c, w in enumerate(widths):
        v = values[c]
        order = np.argsort(v, kind="stable")
        sorted_v = v[order]
        dense = w <= DENSE_TABLE_BITS
        if dense:
            starts = np.searchsorted(sorted_v, np.arange((1 << w) + 1, dtype=np.int64)).astype(np.int64)
        for mask in _flip_masks(w, per):
            q = v ^ mask
            if dense:
                lo, hi = starts[q], starts[q + 1]
            else:
                lo, hi = np.searchsorted(sorted_v, q, "left"), np.searchsorted(sorted_v, q, "right")
            counts = hi - lo
            total = int(counts.sum())
            if total == 0:
                continue
            ends = np.cumsum(counts)
            a = 0
            while a < n:
                # the largest run of queries whose candidates fit in one block (at least one query)
                b = max(a + 1, int(np.searchsorted(ends, (ends[a - 1] if a else 0) + block, "right")))
                b = min(b, n)
                cnt = counts[a:b]
                size = int(cnt.sum())
                if size:
                    qi = np.repeat(np.arange(a, b, dtype=np.int64), cnt)
                    first = np.repeat(lo[a:b] - (np.cumsum(cnt) - cnt), cnt)
                    qj = order[first + np.arange(size, dtype=np.int64)]
                    keep = qj > qi
                    qi, qj = qi[keep], qj[keep]
                    d = np.bitwise_count(h[qi] ^ h[qj]).astype(np.int64)
                    keep = d <= radius
                    for earlier in range(c):  # reported from the first chunk within `per` bits only
                        keep &= np.bitwise_count(values[earlier][qi] ^ values[earlier][qj]) > per
                    if keep.any():
                        yield qi[keep], qj[keep], d[keep]
                a = b
