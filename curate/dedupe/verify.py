"""From thumbnails to hashes and verified near-duplicate decisions, batched over arrays.

Two views per image: the content thumbnail itself and its inner view (the middle 92 %, resampled back to
32x32). A copy cropped by 2-6 % per side lines up with the original's inner view to within ~2 % of the
frame (< 1 thumbnail pixel), so comparing (a, b), (inner a, b) and (a, inner b) and keeping the best covers
small crops of photos that have no uniform background to re-centre on.

Per view:

* ``hashes``: a 64-bit random-hyperplane hash of the centred tone and the structure (below); the search
  radius is over it. A DCT pHash was tried first: on symmetric garments half of its coefficients are
  near zero, so their bits flip under re-encoding (duplicates at 14-26 bits, docs/benchmarks/dedupe.md).
* ``tone``: log-RGB at 16x16. The distance is the mean |difference| after removing one common offset
  (the median over cells and channels): a brightness change multiplies every channel by one factor, which
  in log space is that offset, so it costs nothing, while a colourway changes channels differently (hue)
  or changes the product against its unchanged background (lightness), which the offset cannot absorb.
* ``structure``: the grey 32x32 thumbnail standardised; distance 1 - correlation. It separates different
  garments of one cut (a print, another neckline, a colour block) that share colours.
* ``shift``: the mean over 16x16 cells of the chromaticity difference (brightness-invariant): a colourway
  turns the garment's hue everywhere the same way, while noise scatters and cancels.
* ``aspect``: the content's width / height, which the square thumbnail squashes away (shorts against
  trousers, a skirt against a dress of one colour). Resizing keeps it; a crop into the product moves it
  by a few per cent.
* ``detail``: high-frequency energy per 8x8 cell of the content at 64x64 (computed at hashing time,
  from the 192 px decode): fine stripes or checks that a 32x32 thumbnail averages away.

A pair is a near duplicate when, for its best-aligned views, every distance is within its threshold.
Thresholds are chosen on the 5k benchmark set (docs/benchmarks/dedupe.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from curate.dedupe.features import INNER, THUMB

VIEW_PAIRS = ((0, 0), (1, 0), (0, 1))  # (view of i, view of j): full-full, inner i-full j, full i-inner j


def _resample_matrix(n: int, start: float, stop: float) -> np.ndarray:
    """Linear interpolation weights taking n samples of [start, stop) (in source pixels) from n pixels."""
    centres = start + (np.arange(n) + 0.5) * (stop - start) / n - 0.5
    lo = np.clip(np.floor(centres).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    frac = np.clip(centres - np.floor(centres), 0, 1)
    m = np.zeros((n, n))
    m[np.arange(n), lo] += 1 - frac
    m[np.arange(n), hi] += frac
    return m


_INNER = _resample_matrix(THUMB, INNER * THUMB, (1 - INNER) * THUMB)
_BIT_WEIGHTS = np.uint64(1) << np.arange(64, dtype=np.uint64)
HASH_TONE_CELLS = 8  # the hash sees tone at 8x8 and structure at 16x16: coarser than the verification, so
HASH_STRUCTURE_CELLS = 16  # re-encoding and misalignment move it less (99.6 % of duplicates within 8 bits on 5k)
_PROJECTION = np.random.default_rng(20261124).standard_normal(
    (HASH_TONE_CELLS * HASH_TONE_CELLS * 3 + HASH_STRUCTURE_CELLS * HASH_STRUCTURE_CELLS, 64)).astype(np.float32)
TONE_WEIGHT = 4.0  # log-RGB differences against the standardised grey's: tone matters as much as shape
VERIFY_BATCH = 16384  # candidate pairs whose per-cell distances are computed at once
TRIM_KEEP = 0.95  # per-cell distances are averaged over the best 95 % of cells
TONE_PER_SHIFT = 5.0  # the tone allowance grows this much faster than the colour's (tone ~ 5x shift on edits)


def simhash(tone: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """64-bit random-hyperplane hash (Charikar 2002) of [centred tone, structure]: each bit differs with
    probability angle / pi, so the Hamming radius bounds the angle between the two images' vectors. The
    tone is centred on its mean so a brightness change (a common log offset) does not move the hash.
    ``tone``: [n, 16, 16, 3] log-RGB; ``structure``: [n, 32*32] standardised grey."""
    n = len(tone)
    t, s = HASH_TONE_CELLS, HASH_STRUCTURE_CELLS
    coarse_tone = tone.reshape(n, t, 16 // t, t, 16 // t, 3).mean(axis=(2, 4)).reshape(n, -1)
    coarse = structure.reshape(n, s, THUMB // s, s, THUMB // s).mean(axis=(2, 4)).reshape(n, -1)
    coarse = (coarse - coarse.mean(axis=1, keepdims=True)) / (coarse.std(axis=1, keepdims=True) + 1e-3)
    x = np.concatenate([TONE_WEIGHT * (coarse_tone - coarse_tone.mean(axis=1, keepdims=True)),
                        coarse / np.sqrt(coarse.shape[1] / coarse_tone.shape[1])], axis=1)
    bits = (x @ _PROJECTION > 0).astype(np.uint64)
    return (bits * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)


@dataclasses.dataclass
class Views:
    """Per image and view (``[n, 2, ...]``; view 1 is the inner view): what the decision compares."""

    hashes: np.ndarray  # [n, 2] uint64 simhash
    tone: np.ndarray  # [n, 2, 16, 16, 3] float32, log-RGB
    structure: np.ndarray  # [n, 2, 32*32] float32, standardised grey
    chroma_mean: np.ndarray  # [n, 2, 3] float32, the mean over 16x16 cells of r g b / (r + g + b)
    log_cv: np.ndarray  # [n, 2] float32, log(std / mean) of the 16x16x3 cells: the image's contrast
    detail: np.ndarray  # [n, 2, 8*8] float32, log(1 + high-frequency energy) per cell
    log_aspect: np.ndarray  # [n] float32, log(width / height) of what the thumbnail shows

    def __len__(self) -> int:
        return len(self.hashes)


def views(thumbs: np.ndarray, detail: np.ndarray, aspect: np.ndarray, batch: int = 4096) -> Views:
    """``thumbs``: [n, 32, 32, 3] uint8 content thumbnails; ``detail``: [n, 2, 8, 8] detail maps (both views);
    ``aspect``: [n] width / height of the thumbnails' content."""
    n = len(thumbs)
    chroma = np.zeros((n, 2, 3), np.float32)
    log_cv = np.zeros((n, 2), np.float32)
    hashes = np.zeros((n, 2), np.uint64)
    tone = np.zeros((n, 2, 16, 16, 3), np.float32)
    structure = np.zeros((n, 2, THUMB * THUMB), np.float32)
    for a in range(0, n, batch):
        t = thumbs[a:a + batch].astype(np.float32)
        inner = np.einsum("yk,nkxc,lx->nylc", _INNER, t, _INNER, optimize=True).astype(np.float32)
        for v, img in enumerate((t, inner)):
            grey = img.mean(axis=3)
            small = img.reshape(len(img), 16, 2, 16, 2, 3).mean(axis=(2, 4))
            tone[a:a + batch, v] = np.log(small + 8.0)
            flat = small.reshape(len(img), -1, 3) + 8.0
            chroma[a:a + batch, v] = (flat / flat.sum(axis=2, keepdims=True)).mean(axis=1)
            log_cv[a:a + batch, v] = np.log(flat.reshape(len(img), -1).std(axis=1) / flat.reshape(len(img), -1).mean(axis=1) + 1e-3)
            g = grey.reshape(len(img), -1)
            structure[a:a + batch, v] = (g - g.mean(axis=1, keepdims=True)) / (g.std(axis=1, keepdims=True) + 1e-3)
            hashes[a:a + batch, v] = simhash(tone[a:a + batch, v], structure[a:a + batch, v])
    return Views(hashes, tone, structure, chroma, log_cv, np.log1p(detail.reshape(n, 2, -1).astype(np.float32)),
                 np.log(np.asarray(aspect, np.float32)))


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Chosen on the 5k benchmark set (bench/dedupe, seed 0) by a grid over the five distances, then fixed;
    the 20k set (seed 1) is held out. See docs/benchmarks/dedupe.md for the distributions behind them."""

    radius: int = 8  # hash bits (of 64) for a pair to be a candidate, on any of the view pairs
    tone: float = 0.08  # mean |log-RGB difference| after the common brightness offset (best 95 % of cells)
    structure: float = 0.03  # 1 - correlation of the standardised grey thumbnails (best 95 % of pixels)
    shift: float = 0.016  # |mean chromaticity difference|
    detail: float = 0.40  # mean |log detail-energy difference| after the common offset
    aspect: float = 0.15  # |log ratio| of the content's width / height
    colour_tolerance: float = 0.0  # extra colour shift and tone forgiven per unit of |log contrast ratio|: a
    #                              contrast or gamma edit desaturates / saturates and moves dark and light
    #                              apart, as much as it changes the contrast. The conflict knob: a darker
    #                              colourway of a product on white also raises its contrast, so a higher value
    #                              keeps contrast-edited copies together and merges more lightness colourways

    contrast_range: float = 0.3  # |log contrast ratio| up to which the tolerance applies (a 0.75-1.25 edit
    #                              stays within it); beyond it the pair gets no allowance: another product

    def allowance(self, contrast: np.ndarray) -> np.ndarray:
        return np.where(contrast <= self.contrast_range, self.colour_tolerance * contrast, 0.0)

    def shift_limit(self, contrast: np.ndarray) -> np.ndarray:
        return self.shift + self.allowance(contrast)

    def accept(self, d: "PairDistances") -> np.ndarray:
        extra = self.allowance(d.contrast)
        return ((d.tone <= self.tone + TONE_PER_SHIFT * extra) & (d.structure <= self.structure) & (d.shift <= self.shift + extra)
                & (d.detail <= self.detail) & (d.aspect <= self.aspect))


@dataclasses.dataclass
class PairDistances:
    tone: np.ndarray  # mean |log-RGB difference| after the common brightness offset
    structure: np.ndarray  # 1 - correlation of the standardised grey thumbnails
    shift: np.ndarray  # |mean chromaticity difference| (L1 of the mean over cells): a colourway's hue turn
    detail: np.ndarray  # mean |log detail-energy difference| after the common offset: fine patterns
    aspect: np.ndarray  # |log ratio| of the contents' width / height
    contrast: np.ndarray  # |log ratio| of the images' contrast (std / mean of the cells)
    hash: np.ndarray  # Hamming distance of the best-aligned views' hashes

    def row(self, k: int) -> dict[str, float]:
        return {"hash": int(self.hash[k]), "tone": round(float(self.tone[k]), 4), "structure": round(float(self.structure[k]), 4),
                "shift": round(float(self.shift[k]), 4), "detail": round(float(self.detail[k]), 4),
                "aspect": round(float(self.aspect[k]), 4), "contrast": round(float(self.contrast[k]), 4)}


_DEFAULT = Thresholds()


def _trimmed_mean(x: np.ndarray, keep: float = TRIM_KEEP) -> np.ndarray:
    """Row means of the smallest ``keep`` share of each row: a watermark or the strip a crop removed
    changes a few per cent of the cells a lot, a different garment changes most cells."""
    k = max(1, int(round(x.shape[1] * keep)))
    if len(x) == 0:
        return np.zeros(0, x.dtype)
    return np.partition(x, k - 1, axis=1)[:, :k].mean(axis=1)


def distances(v: Views, i: np.ndarray, j: np.ndarray) -> PairDistances:
    """For pairs (i[k], j[k]), the distances of the best-aligned view pair (least tone + structure)."""
    best = PairDistances(*(np.full(len(i), np.inf, np.float32) for _ in range(6)), np.full(len(i), 64, np.int64))
    best_score = np.full(len(i), np.inf, np.float32)
    for vi, vj in VIEW_PAIRS:
        flat = (v.tone[i, vi] - v.tone[j, vj]).reshape(len(i), 16 * 16 * 3)
        tone = _trimmed_mean(np.abs(flat - np.median(flat, axis=1, keepdims=True)))
        # for standardised vectors 1 - correlation = mean((a - b)^2) / 2; trimmed like the tone
        struct = _trimmed_mean(np.square(v.structure[i, vi] - v.structure[j, vj])) / 2.0
        # the mean of the signed differences: a colourway turns every garment cell the same way, while
        # re-encoding (chroma subsampling) and misaligned edges scatter both ways and cancel; it is linear,
        # so it is the difference of per-image means
        shift = np.abs(v.chroma_mean[i, vi] - v.chroma_mean[j, vj]).sum(axis=1)
        hd = np.bitwise_count(v.hashes[i, vi] ^ v.hashes[j, vj]).astype(np.int64)
        score = tone / _DEFAULT.tone + struct / _DEFAULT.structure
        better = score < best_score
        best_score = np.where(better, score, best_score)
        dd = v.detail[i, vi] - v.detail[j, vj]
        detail = _trimmed_mean(np.abs(dd - np.median(dd, axis=1, keepdims=True)))
        contrast = np.abs(v.log_cv[i, vi] - v.log_cv[j, vj])
        for name, value in (("tone", tone), ("structure", struct), ("shift", shift), ("detail", detail), ("contrast", contrast),
                            ("hash", hd)):
            setattr(best, name, np.where(better, value, getattr(best, name)))
    # the inner view keeps the aspect ratio, so one number per pair
    best.aspect = np.abs(v.log_aspect[i] - v.log_aspect[j])
    return best


def verify(v: Views, i: np.ndarray, j: np.ndarray, thresholds: Thresholds) -> tuple[np.ndarray, PairDistances]:
    """Accepted pairs (a boolean mask over the input) and their distances, in two stages: the colour shift
    and the aspect cost a few numbers per pair and reject most candidates (colourways, other garments), so
    the per-cell distances are computed for the few that remain."""
    # the cheap stage only rejects what no view pair could accept: the colour shift against the largest
    # allowance any view pair gets
    shift = np.min([np.abs(v.chroma_mean[i, a] - v.chroma_mean[j, b]).sum(axis=1) for a, b in VIEW_PAIRS], axis=0)
    limit = np.max([thresholds.shift_limit(np.abs(v.log_cv[i, a] - v.log_cv[j, b])) for a, b in VIEW_PAIRS], axis=0)
    survivors = np.flatnonzero((shift <= limit) & (np.abs(v.log_aspect[i] - v.log_aspect[j]) <= thresholds.aspect))
    accepted = np.zeros(len(i), bool)
    kept: list[PairDistances] = []
    for a in range(0, len(survivors), VERIFY_BATCH):  # per-cell temporaries stay ~100 MB
        rows = survivors[a:a + VERIFY_BATCH]
        d = distances(v, i[rows], j[rows])
        ok = thresholds.accept(d)
        accepted[rows[ok]] = True
        kept.append(PairDistances(*(getattr(d, f.name)[ok] for f in dataclasses.fields(PairDistances))))
    fields = [f.name for f in dataclasses.fields(PairDistances)]
    if not kept:
        return accepted, PairDistances(*(np.zeros(0, np.float32) for _ in fields[:-1]), np.zeros(0, np.int64))
    return accepted, PairDistances(*(np.concatenate([getattr(k, name) for k in kept]) for name in fields))
