"""The exact radius search at catalogue scale: n images' hashes (2 views each, as `curate dedupe` searches
them) through the command's own candidate generation (curate.dedupe.core.candidate_pairs), timed, with
the peak RSS of this process. Uniformly random hashes plus 1 % planted near copies at 1..radius bits (and
their inner views near their full views), so the pairs that must come out are known.

    .venv/bin/python bench/dedupe/search_scale.py --n 1000000 --radius 8
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def flips(rng: np.random.Generator, count: int, max_bits: int) -> np.ndarray:
    """Masks of 1..max_bits random bits (a repeated position cancels, so a few have fewer; none more)."""
    out = np.zeros(count, np.uint64)
    bits = rng.integers(1, max_bits + 1, count)
    for k in range(max_bits):
        pos = rng.integers(0, 64, count).astype(np.uint64)
        out ^= np.where(k < bits, np.uint64(1) << pos, np.uint64(0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--radius", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from curate.dedupe.core import candidate_pairs
    from curate.dedupe.search import choose_chunks

    rng = np.random.default_rng(args.seed)
    n, r = args.n, args.radius
    hashes = np.empty((n, 2), np.uint64)
    hashes[:, 0] = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    hashes[:, 1] = hashes[:, 0] ^ flips(rng, n, 3)  # an inner view is near its full view
    planted = n // 100
    copies = np.arange(n - planted, n)
    sources = rng.integers(0, n - planted, planted)
    hashes[copies, 0] = hashes[sources, 0] ^ flips(rng, planted, r)
    hashes[copies, 1] = hashes[copies, 0] ^ flips(rng, planted, 3)
    want = set(zip(np.minimum(sources, copies).tolist(), np.maximum(sources, copies).tolist()))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    found = 0
    hit: set[tuple[int, int]] = set()
    for a, b in candidate_pairs(hashes, r):
        found += len(a)  # a pair met in two blocks counts twice here: "pairs" is the verification load
        sel = b >= n - planted
        hit |= {(int(x), int(y)) for x, y in zip(a[sel], b[sel])} & want
    seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"images={n} hashes={2 * n} radius={r} chunks={choose_chunks(2 * n, r)} planted={planted} pairs={found} "
          f"planted_found={len(hit)}/{planted} seconds={seconds:.1f} peak_rss_mb={rss:.0f} rss_before_search_mb={before:.0f}")


if __name__ == "__main__":
    main()
