"""Duplicate detection: exact bytes, same pixels, and near duplicates verified by colour.

Features per image (one decode, JPEG draft mode): sha256 of the bytes (from the manifest), sha256 of the
decoded pixels, a 64-bit DCT perceptual hash of the grey image (robust to re-encoding, resizing, small
crops, brightness and small watermarks) and a colour signature: a 4x4 grid of chromaticities
(r, g) / (r + g + b). A grey hash alone merges colourways of one cut; chromaticity is brightness-invariant,
so a brightness-shifted copy still matches while a red shirt and a blue one do not; and a 16x16 grey
structure correlation, because a grey pHash of people drawn in one pose, or of one garment cut, is
nearly the same for different images.

Search is exact within the Hamming radius without comparing all pairs: multi-index hashing splits the
hash into 4 chunks of 16 bits; two hashes within radius r agree within floor(r/4) bits on at least one
chunk (pigeonhole), so each image only probes the buckets of its chunks' near values. Candidates stream
through the colour check and into a union-find.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from pathlib import Path

import numpy as np
from PIL import Image

HASH_BITS = 64
CHUNKS = 4
CHUNK_BITS = HASH_BITS // CHUNKS


@dataclasses.dataclass(frozen=True)
class Features:
    pixel_sha256: str
    phash: int
    colour: tuple[float, ...]  # 16x16 x (r, g) chromaticities, then 16x16 standardised grey (structure)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


_D32 = _dct_matrix(32)


def image_features(path: Path) -> Features:
    """Decode once (JPEG draft: the decoder skips what a 64 px image does not need)."""
    with Image.open(path) as im:
        full = im.convert("RGB")
        pixel_sha = hashlib.sha256(full.tobytes()).hexdigest()
        small = full.copy()
        small.draft("RGB", (64, 64))
    grey = np.asarray(small.convert("L").resize((32, 32), Image.BILINEAR), np.float64)
    coeffs = _D32 @ grey @ _D32.T
    low = coeffs[:8, :8].ravel()[1:]  # drop DC: brightness shifts move only it
    bits = np.concatenate([[0], (low > np.median(low)).astype(np.uint8)])
    phash = int("".join(map(str, bits)), 2)
    rgb = np.asarray(small.resize((16, 16), Image.BOX), np.float64) + 1.0
    chroma = rgb[..., :2] / rgb.sum(axis=2, keepdims=True)
    grey16 = rgb.mean(axis=2).ravel()
    grey16 = (grey16 - grey16.mean()) / (grey16.std() + 1e-6)
    return Features(pixel_sha, phash, tuple(np.round(np.concatenate([chroma.ravel(), grey16]), 5)))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def colour_distance(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float]:
    """(chromaticity distance, structure distance): mean |d chroma| over the 16x16 grid, and 1 - the
    correlation of the standardised 16x16 grey thumbnails (small for re-encodes, resizes, light crops)."""
    x, y = np.asarray(a), np.asarray(b)
    n = 16 * 16 * 2
    chroma = float(np.abs(x[:n] - y[:n]).mean())
    structure = float(1 - np.dot(x[n:], y[n:]) / (len(x) - n))
    return chroma, structure


def _chunks(h: int) -> list[int]:
    return [(h >> (CHUNK_BITS * j)) & ((1 << CHUNK_BITS) - 1) for j in range(CHUNKS)]


def _flips(radius: int) -> list[int]:
    masks = [0]
    for r in range(1, radius + 1):
        for bits in itertools.combinations(range(CHUNK_BITS), r):
            masks.append(sum(1 << b for b in bits))
    return masks


def near_pairs(hashes: list[int], radius: int):  # noqa: ANN201 - a generator of (i, j, distance)
    """Every (i, j), i < j, with Hamming distance <= radius, each once, without an all-pairs scan."""
    per_chunk = radius // CHUNKS
    flips = _flips(per_chunk)
    tables: list[dict[int, list[int]]] = [{} for _ in range(CHUNKS)]
    for i, h in enumerate(hashes):
        for j, c in enumerate(_chunks(h)):
            tables[j].setdefault(c, []).append(i)
    for i, h in enumerate(hashes):
        seen: set[int] = set()
        for j, c in enumerate(_chunks(h)):
            for mask in flips:
                for k in tables[j].get(c ^ mask, ()):
                    if k > i and k not in seen:
                        seen.add(k)
                        d = hamming(h, hashes[k])
                        if d <= radius:
                            yield i, k, d


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
