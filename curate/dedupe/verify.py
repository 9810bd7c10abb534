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

* ``local``: the largest per-cell hue turns (mean of the 4 largest of 16x16): a recoloured emblem of a few
  per cent of the product, which every mean above averages away.

A pair is a near duplicate when, for its best-aligned views, every distance is within its threshold, or
(issue 16) when one global tone curve explains it (:func:`tonal_alignment`): brightness, contrast and gamma
edits send every channel of every pixel through the same increasing curve, so after fitting
``y = s * x**g + o`` (bounded: within what chained 0.75-1.25 edits do) the copy's tone, colour and local
colour match again, while a hue colourway (a curve per channel) or a lightness colourway (the product moves,
the background does not, the contrast changes by more than edits do) stays apart. That path asks for
tighter shape agreement (``tonal_structure``, ``tonal_detail``, ``tonal_aspect``: a tone edit moves no
shape) and for a colour shift the contrast change accounts for (``tonal_shift_per_contrast``).
Thresholds were chosen on the tuning sets only (bench/dedupe/dataset.py, bench/dedupe/tune.py); the
reporting set (bench/dedupe/reporting_set.py) only reports (docs/benchmarks/dedupe.md).
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
        # the einsum "yk,nkxc,lx->nylc" as two batched matmuls (the same float64 products and sums, rows then
        # columns: the same values): 0.3 s for 4,096 thumbnails where numpy's einsum path took 2.1-2.9 s (load ~10).
        # The einsum laid its result out otherwise, so the float32 means below can differ in the last bit
        inner = (_INNER @ t.transpose(0, 3, 1, 2) @ _INNER.T).transpose(0, 2, 3, 1).astype(np.float32)
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

    tonal: bool = True  # also accept a pair that one global tone curve explains (tonal_alignment): a brightness,
    #                   contrast or gamma edit maps every channel of every pixel through the same curve
    tonal_gain: float = 0.6  # max |log s| of the fitted curve y = s * x**g + o (x, y in [0, 1])
    tonal_offset: float = 0.3  # max |o|: how far the curve may move black; a lightness colourway of a product
    #                          on a light background needs far more (it darkens the product, not the background)
    tonal_gamma: float = 0.35  # max |log g|
    tonal_contrast: float = 0.6  # max |log contrast ratio| (of the content): one 0.7-1.3 contrast edit about a light
    #                            image's mean grey moves the content's mean too and changes it by up to ~0.57 (tuning
    #                            set `wide` seed 130: 0.47-0.57 for copies 0.45 refused); a product against its
    #                            darker namesake changes it more
    tonal_shift: float = 0.02  # max colour shift left after the curve
    tonal_shift_per_contrast: float = 1.25  # colour shift before the curve allowed per unit of |log contrast ratio|
    #                                        (a contrast-up edit clips a saturated colour's weak channels at black and
    #                                        moves its chromaticity further; 1.0-1.5 answer alike on the tuning sets)
    local: float = 0.05  # max largest local colour change (PairDistances.local)
    tonal_structure: float = 0.02  # the shape checks of a pair accepted through a tone curve, tighter than the
    tonal_detail: float = 0.2  # others': the curve explains any colour difference, so two products of one cut in
    tonal_aspect: float = 0.06  # two colours need the shape to tell them apart, and a tone edit moves no shape
    curve_bridges: bool = True  # a tone-curve link may also join two groups when most pairs across them (bridge_agreement)
    #                            are links that stood (core: several edited copies of one original that paired up first)
    bridge_agreement: float = 0.75  # the share of the pairs across the two groups whose links must have stood (tuning:
    #                                 1.0 kept four more `wide` 131 duplicate pairs apart; no other set moved)
    link_agreement: float = 0.0  # the same test for a link the thumbnails (and the finer look) accepted without a
    #                              tone curve, when it would join two groups of several images; 0 joins at once (single
    #                              linkage). Off by default: on the tuning sets 0.5 changed only the adversarial `shade`
    #                              120 (456 -> 440 false pairs) and 0.75 missed 4 more duplicate pairs each on `wide` 130/131
    #                              and `twin` 140/141; the thirteenth reporting look found 0.5 lost copies there and
    #                              merged no trap less (docs/benchmarks/dedupe.md, eleventh round)
    fine: bool = True  # look again at links between two products on plain backgrounds (curate.dedupe.confirm)
    fine_shape: float = 0.03  # max share of outline points off the other's outline: a near twin's sleeve or hem
    fine_hue: float = 0.002  # max share of the product's pixels with a turned hue: a recoloured print
    fine_hue_region: float = 0.005  # max share of the product in one region turned against the rest: a print
    #                                 recoloured by less than HUE_TURN (issue 16, ninth change; 1.0 turns it off)
    fine_saturation_jump: float = 55.0  # of 255: a pixel whose saturation moved this much more than the product's typical
    #                                     move belongs to that region too (a nearly grey print given a colour; issue 16,
    #                                     fourteenth round, chosen on the tuning set `pale` 170: 40 / 55 / 70 / inf merged
    #                                     103 / 111 / 119 / 314 print pairs and missed 21 / 8 / 4 / 0 more copy pairs when pixels
    #                                     saturated in either counted; counting those saturated in one only, 55 merges 112 and
    #                                     misses none more; inf off)
    fine_joint_levels: bool = False  # outlines that disagree at the median and lower levels are taken again at joint
    #                                  levels (confirm.JOINT_LEVELS): joins copies whose trim or band crossed the half-way
    #                                  level, and print recolours whose emblem did (issue 16, sixteenth round: tuning
    #                                  `family` 151 0.966 -> 0.969 with no trap more, but `pale` 170 merged 13 more print
    #                                  pairs; off by default, as the rescue's colour gate, the same conflict)
    fine_edge: float = 1.0  # max mean offset (pixels at 768 px) of a stretch of one product's edges from the other's,
    #                        located to a fraction of a pixel: a near twin's seam or gap moved by 1-2 pixels (ninth
    #                        change; inf turns it off)
    fine_curve: bool = True  # products whose 16x16 tone-curve fit failed (above) are fitted again by the finer
    fine_tone: float = 0.04  # look on their aligned pixels: max distance from that curve to be joined
    fine_tone_shift: float = 0.02  # and max colour shift that curve leaves (the thumbnails' is tonal_shift)
    fine_photos: bool = True  # the finer look at links between two photos too (neither on a plain background)
    fine_photo_hue: float = 0.01  # max share of two aligned photos' overlap with a turned hue: a garment recoloured
    fine_rescue: bool = True  # refused pairs whose colour held and whose shape moved no more than a crop does are
    #                          aligned pixel by pixel by the finer look, and joined when one tone curve explains them
    fine_rescue_structure: float = 0.1  # max structure of such a pair (a crop moves it 0.03-0.09 on the tuning sets)
    fine_far: float = 0.03  # two products: max share of their aligned values that one tone curve leaves changed (a
    #                        lightness colourway's background, a recoloured region; copies 0-0.003, a centred watermark
    #                        <= 0.016 on the tuning sets)
    fine_photo_far: float = 0.01  # max share of aligned values the tone curve leaves changed, for the pair to join
    fine_rescue_shift: float = 0.06  # max colour shift of a pair the rescue looks at (products since the fifth change,
    #                                 photos too since the seventeenth round: see verify), and for two products
    fine_rescue_curve_shift: float = 0.07  # max colour shift left by the 16x16 tone curve (what a look costs: see verify)
    fine_rescue_local: float = 0.2  # max local colour change (PairDistances.local) of a pair the rescue looks at: looser
    #                               than `local`, since the finer look measures hue turns pixel by pixel (a crop or a
    #                               strong contrast edit moves colour edges across the 16x16 cells)

    @classmethod
    def with_overrides(cls, items: "list[str]") -> "Thresholds":
        """The defaults with ``name=value`` overrides, each value read as its field's type (true / false for a
        switch): what the benchmark scripts' ``--set`` takes."""
        base, out = cls(), {}
        for item in items:
            name, _, value = item.partition("=")
            if not hasattr(base, name):
                raise ValueError(f"unknown threshold {name!r}; valid: {', '.join(f.name for f in dataclasses.fields(cls))}")
            kind = type(getattr(base, name))
            out[name] = value.lower() == "true" if kind is bool else kind(value)
        return dataclasses.replace(base, **out)

    def contrast_accounts_for(self, shift: np.ndarray, contrast: np.ndarray) -> np.ndarray:
        """A colour shift the contrast change accounts for (contrast and gamma edits move the mean chromaticity about
        as far as they move the contrast, a hue colourway moves it with none), and a contrast change within what
        chained edits do: the colour allowance of the tone-curve path and of the rescue."""
        return (shift <= self.shift + self.tonal_shift_per_contrast * contrast) & (contrast <= self.tonal_contrast)

    def curve_may_explain(self, shift: np.ndarray, contrast: np.ndarray, aspect: np.ndarray) -> np.ndarray:
        """Whether the tone-curve path may consider a pair: the contrast change accounts for its colour shift, and
        the aspect is the same."""
        return self.contrast_accounts_for(shift, contrast) & (aspect <= self.tonal_aspect)

    def rescue_colour_holds(self, shift: np.ndarray, contrast: np.ndarray) -> np.ndarray:
        """The rescue's colour gate: the contrast change accounts for the colour shift (no aspect term: a crop moves
        the aspect), which is at most ``fine_rescue_shift``."""
        return self.contrast_accounts_for(shift, contrast) & (shift <= self.fine_rescue_shift)

    def fine_outline_holds(self, shape: float, hue: float | None, region: float | None) -> bool:
        """The product look's outline and colour tests (not its tone curve): one outline, no hue turned pixel by
        pixel, no region turned against the rest. None: the colour test was not measured (a file under the look's
        FINE_SIDE)."""
        return (shape <= self.fine_shape and (hue is None or hue <= self.fine_hue)
                and (region is None or region <= self.fine_hue_region))

    def allowance(self, contrast: np.ndarray) -> np.ndarray:
        return np.where(contrast <= self.contrast_range, self.colour_tolerance * contrast, 0.0)

    def shift_limit(self, contrast: np.ndarray) -> np.ndarray:
        return self.shift + self.allowance(contrast)

    def accept(self, d: "PairDistances") -> np.ndarray:
        extra = self.allowance(d.contrast)
        ok = ((d.tone <= self.tone + TONE_PER_SHIFT * extra) & (d.structure <= self.structure) & (d.shift <= self.shift + extra)
              & (d.detail <= self.detail) & (d.aspect <= self.aspect))
        return ok if d.local is None else ok & (d.local <= self.local)


@dataclasses.dataclass
class PairDistances:
    tone: np.ndarray  # mean |log-RGB difference| after the common brightness offset
    structure: np.ndarray  # 1 - correlation of the standardised grey thumbnails
    shift: np.ndarray  # |mean chromaticity difference| (L1 of the mean over cells): a colourway's hue turn
    detail: np.ndarray  # mean |log detail-energy difference| after the common offset: fine patterns
    aspect: np.ndarray  # |log ratio| of the contents' width / height
    contrast: np.ndarray  # |log ratio| of the images' contrast (std / mean of the cells)
    hash: np.ndarray  # Hamming distance of the best-aligned views' hashes
    view: np.ndarray | None = None  # index into VIEW_PAIRS of the best-aligned views
    tonal_tone: np.ndarray | None = None  # tone and colour shift after the best global tone curve (inf: none
    tonal_shift: np.ndarray | None = None  # within the bounds; None: not computed)
    local: np.ndarray | None = None  # the largest local colour changes: mean of the LOCAL_CELLS largest per-cell
    #                                  chromaticity differences (a small print recoloured; the mean shift misses it)
    tonal_local: np.ndarray | None = None  # the same after the tone curve

    def row(self, k: int) -> dict[str, float]:
        out = {"hash": int(self.hash[k]), "tone": round(float(self.tone[k]), 4), "structure": round(float(self.structure[k]), 4),
               "shift": round(float(self.shift[k]), 4), "detail": round(float(self.detail[k]), 4),
               "aspect": round(float(self.aspect[k]), 4), "contrast": round(float(self.contrast[k]), 4)}
        if self.tonal_tone is not None and np.isfinite(self.tonal_tone[k]):
            out["tonal_tone"] = round(float(self.tonal_tone[k]), 4)
            out["tonal_shift"] = round(float(self.tonal_shift[k]), 4)  # type: ignore[index]
            out["tonal_local"] = round(float(self.tonal_local[k]), 4)  # type: ignore[index]
        if self.local is not None:
            out["local"] = round(float(self.local[k]), 4)
        return out

    def take(self, rows: np.ndarray) -> "PairDistances":
        return PairDistances(*(None if getattr(self, f.name) is None else getattr(self, f.name)[rows]
                               for f in dataclasses.fields(PairDistances)))


_DEFAULT = Thresholds()


def _trimmed_mean(x: np.ndarray, keep: float = TRIM_KEEP, overwrite: bool = False) -> np.ndarray:
    """Row means of the smallest ``keep`` share of each row: a watermark or the strip a crop removed
    changes a few per cent of the cells a lot, a different garment changes most cells. ``overwrite``: ``x`` is
    a scratch array, partitioned in place instead of copied (the same result)."""
    k = max(1, int(round(x.shape[1] * keep)))
    if len(x) == 0:
        return np.zeros(0, x.dtype)
    if overwrite:
        x.partition(k - 1, axis=1)
    else:
        x = np.partition(x, k - 1, axis=1)
    return x[:, :k].mean(axis=1)


def _weighted_trimmed_mean(x: np.ndarray, weight: np.ndarray, keep: float = TRIM_KEEP) -> np.ndarray:
    """``_trimmed_mean`` of rows whose column ``c`` stands for ``weight[c]`` equal cells: sorted, the cells wholly
    inside the kept share, and the kept part of the one the share ends in."""
    k = max(1.0, float(np.round(weight.sum() * keep)))
    order = np.argsort(x, axis=1)
    counts = weight[order].astype(x.dtype)
    before = np.cumsum(counts, axis=1) - counts  # cells ahead of each one
    taken = np.clip(k - before, 0.0, counts)  # how many of its cells the kept share takes
    return (x[np.arange(len(x))[:, None], order] * taken).sum(axis=1) / k


def distances(v: Views, i: np.ndarray, j: np.ndarray) -> PairDistances:
    """For pairs (i[k], j[k]), the distances of the best-aligned view pair (least tone + structure)."""
    best = PairDistances(*(np.full(len(i), np.inf, np.float32) for _ in range(6)), np.full(len(i), 64, np.int64),
                         np.zeros(len(i), np.int64), local=np.full(len(i), np.inf, np.float32))
    best_score = np.full(len(i), np.inf, np.float32)
    for view, (vi, vj) in enumerate(VIEW_PAIRS):
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
                            ("hash", hd), ("view", np.full(len(i), view, np.int64))):
            setattr(best, name, np.where(better, value, getattr(best, name)))
    # the inner view keeps the aspect ratio, so one number per pair
    best.aspect = np.abs(v.log_aspect[i] - v.log_aspect[j])
    # the local hue turn does not choose the view: computed for the chosen one only (it is the costly one)
    for view, (vi, vj) in enumerate(VIEW_PAIRS):
        rows = np.flatnonzero(best.view == view)
        if len(rows):
            best.local[rows] = _local_colour(_linear(v.tone[i[rows], vi]), _linear(v.tone[j[rows], vj]))  # type: ignore[index]
    return best


REFIT_SHIFT = 1.5  # the finer tone curve is tried on products whose coarse fit left at most this x tonal_shift
#                   (tuning seed 102: every copy it joined left <= 0.024; colourways a median 0.078)
TONAL_GAMMA_STEPS = 9  # gammas tried, evenly in log over [-tonal_gamma, +tonal_gamma]
SATURATED = 0.985  # a value at or above this may have been clipped by the edit: it bounds the curve, never fits it
BLACK = 0.015  # ... and one at or below this may have been clipped at black (a contrast-up edit of a saturated colour
#                sends its weak channels there): the same
TONAL_RIDGE = 0.01  # pull of the fit towards the identity (s = 1, o = 0), per unit of fitted weight: a solid
#                     product on white is two clusters of values, and without it one cluster alone would let
#                     any curve through


def _linear(tone: np.ndarray) -> np.ndarray:
    """[n, 16, 16, 3] log-RGB cells (log(value + 8)) -> [n, 768] values in [0, 1]."""
    return np.clip((np.exp(tone.reshape(len(tone), -1)) - 8.0) / 255.0, 0.0, 1.0)


def _cell_chromaticity(values: np.ndarray) -> np.ndarray:
    """[n, 768] values in [0, 1] -> [n, 256, 3] r g b / (r + g + b) per cell, with the +8 of ``views``."""
    flat = values.reshape(len(values), -1, 3) * 255.0 + 8.0
    return flat / flat.sum(axis=2, keepdims=True)


def _chroma(values: np.ndarray) -> np.ndarray:
    """[n, 768] values in [0, 1] -> [n, 3] mean chromaticity over the cells, as ``views`` computes it."""
    return _cell_chromaticity(values).mean(axis=1)


LOCAL_CELLS = 4  # of the 16x16: a recoloured emblem covers a few cells; re-encoding noise moves none much


def _local_colour(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean of the LOCAL_CELLS largest per-cell hue turns of [n, 768] values in [0, 1]: per cell, the part of
    the chromaticity difference across the more saturated cell's direction from grey. A grey watermark or a
    contrast edit moves a cell's chromaticity towards or away from grey (along that direction); recolouring a
    print turns it."""
    a = _cell_chromaticity(x) - 1.0 / 3.0
    b = _cell_chromaticity(y) - 1.0 / 3.0
    na, nb = np.linalg.norm(a, axis=2), np.linalg.norm(b, axis=2)
    u = np.where((na >= nb)[..., None], a, b) / (np.maximum(na, nb)[..., None] + 1e-6)
    diff = b - a
    # weighted by how saturated the greyer cell is: a turn of a near-grey cell is chroma noise of re-encoding
    # (JPEG keeps colour at half resolution), not a recolour, which leaves both cells coloured
    across = np.linalg.norm(diff - (diff * u).sum(axis=2, keepdims=True) * u, axis=2) * (np.minimum(na, nb) / (np.maximum(na, nb) + 1e-6))
    if across.shape[1] <= LOCAL_CELLS:
        return across.mean(axis=1).astype(np.float32)
    return np.partition(across, across.shape[1] - LOCAL_CELLS, axis=1)[:, -LOCAL_CELLS:].mean(axis=1).astype(np.float32)


def _ridge_line(sx: np.ndarray, sxx: np.ndarray, sxy: np.ndarray, sw: np.ndarray, sy: np.ndarray,
                lam: np.ndarray, th: Thresholds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s, o, within the bounds?) solving the normal equations of sum w (s xg + o - y)^2 + lam ((s - 1)^2 + o^2)
    from the weighted sums of xg, xg^2, xg y, w and y."""
    a11, a12, a22 = sxx + lam, sx, sw + lam
    b1, b2 = sxy + lam, sy
    det = a11 * a22 - a12 * a12
    s = (b1 * a22 - a12 * b2) / det
    o = (a11 * b2 - a12 * b1) / det
    return s, o, (np.abs(np.log(np.maximum(s, 1e-6))) <= th.tonal_gain) & (np.abs(o) <= th.tonal_offset) & (s > 0)


def _gammas(th: Thresholds) -> list[np.float64]:
    """The exponents tried, one np.exp each (as the fits have always taken them, so the same bits)."""
    return [np.exp(log_g) for log_g in np.linspace(-th.tonal_gamma, th.tonal_gamma, TONAL_GAMMA_STEPS)]


def unclipped(y: np.ndarray) -> np.ndarray:
    """1.0 where a value in [0, 1] was clipped at neither end by an edit (SATURATED, BLACK), else 0.0 (float32): the
    values a tone curve is fitted on."""
    return ((y < SATURATED) & (y > BLACK)).astype(np.float32)


def _fit_curve(x: np.ndarray, y: np.ndarray, th: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """The best y ~ clip(s * x**g + o) per row over the gamma grid, (s, o) by ridge least squares on the values
    y did not clip at either end (SATURATED, BLACK); returns (trimmed mean |log difference| of the fitted x against y, fitted x). Rows whose
    best in-bounds curve is out of bounds get an infinite distance. ``_fit_merged_curve`` fits the same curve on
    values merged into counted distinct pairs."""
    n, m = x.shape
    best = np.full(n, np.inf, np.float32)
    fitted = np.zeros_like(y)
    free = unclipped(y)
    sw = free.sum(axis=1)
    lam = TONAL_RIDGE * np.maximum(sw, 1.0)
    free_y = free * y  # free is 0 or 1, so (free * xg) * y below is xg * free_y to the bit
    sy = free_y.sum(axis=1)
    log_y = np.log(255.0 * y + 8.0)
    with np.errstate(divide="ignore"):  # log 0 = -inf, and exp(g * -inf) = 0 = 0 ** g
        log_x = np.log(x.astype(np.float64))
    # this runs for every candidate pair and twice per finer look: its temporaries are made once and written
    # into (the float64 operations of one expression each, in the same order, so the same bits)
    xg, free_xg, pred, work = (np.empty((n, m)) for _ in range(4))
    for gamma in _gammas(th):
        # x ** g as exp(g log x): one pow per value costs more than the log once and an exp per gamma (on the
        # 5k reporting set's 8,442 recorded fits every distance and fitted value came out the same float32)
        np.exp(np.multiply(log_x, gamma, out=xg), out=xg)
        sx = np.multiply(free, xg, out=free_xg).sum(axis=1)
        sxx = np.multiply(free_xg, xg, out=work).sum(axis=1)
        sxy = np.multiply(xg, free_y, out=work).sum(axis=1)
        s, o, ok = _ridge_line(sx, sxx, sxy, sw, sy, lam, th)
        np.clip(np.add(np.multiply(s[:, None], xg, out=pred), o[:, None], out=pred), 0.0, 1.0, out=pred)
        np.log(np.add(np.multiply(pred, 255.0, out=work), 8.0, out=work), out=work)
        np.abs(np.subtract(work, log_y, out=work), out=work)
        d = _trimmed_mean(work, overwrite=True).astype(np.float32)
        d = np.where(ok, d, np.inf).astype(np.float32)
        better = d < best
        best = np.where(better, d, best)
        fitted[better] = pred[better]
    return best, fitted


def _fit_merged_curve(x: np.ndarray, y: np.ndarray, th: Thresholds, weight: np.ndarray,
                      free_sums: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``_fit_curve`` where column ``c`` of x and y stands for ``weight[c]`` (``[m]`` counts) equal (x, y) values, as when a finer
    look's thousands of 8-bit pixel values are merged into their few hundred distinct pairs; every gamma at once
    (the columns are few). ``free_sums``: the [n] count and sum of y of the unclipped values, summed in float32 over
    the values before merging, as ``_fit_curve`` on those sums them. The float64 sums here then differ from that
    call's by rounding alone (about 1e-16), so the two fit the same curve and give the same float32 distance (in
    each of 400 finer looks checked, to the bit)."""
    n, m = x.shape
    gammas = np.array(_gammas(th))
    sw, sy = free_sums
    lam = TONAL_RIDGE * np.maximum(sw, 1.0)
    free = unclipped(y) * weight.astype(np.float64)  # [n, m]: counts of the unclipped values
    free_y = free * y
    log_y = np.log(255.0 * y + 8.0)
    with np.errstate(divide="ignore"):  # log 0 = -inf, and exp(g * -inf) = 0 = 0 ** g
        log_x = np.log(x.astype(np.float64))
    xg = np.exp(log_x[:, None, :] * gammas[None, :, None])  # [n, gammas, m]
    free_xg = free[:, None, :] * xg
    sx, sxx, sxy = free_xg.sum(axis=2), (free_xg * xg).sum(axis=2), (xg * free_y[:, None, :]).sum(axis=2)
    s, o, ok = _ridge_line(sx, sxx, sxy, sw[:, None], sy[:, None], lam[:, None], th)
    pred = np.clip(s[..., None] * xg + o[..., None], 0.0, 1.0)
    d = np.abs(np.log(pred * 255.0 + 8.0) - log_y[:, None, :])
    d = _weighted_trimmed_mean(d.reshape(-1, m), weight).astype(np.float32).reshape(n, len(gammas))
    d = np.where(ok, d, np.inf).astype(np.float32)
    first = np.argmin(d, axis=1)  # the first of equal distances, as the loop's strict "better" keeps
    rows = np.arange(n)
    best = d[rows, first]
    fitted = np.where(np.isfinite(best)[:, None], pred[rows, first], 0.0).astype(y.dtype)
    return best, fitted


def tonal_alignment(v: Views, i: np.ndarray, j: np.ndarray, vi: np.ndarray, vj: np.ndarray,
                    th: Thresholds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tone, colour shift, local colour) of pairs after the best global tone curve, in either direction.

    A brightness, contrast or gamma edit (and a chain of them) sends every channel of every pixel through one
    increasing curve, y = s * x**g + o covers them, so after it the copy's tone and chromaticity match again;
    a hue colourway needs a different curve per channel and a lightness colourway moves the product but not
    the background, which no curve within the bounds (``tonal_gain``, ``tonal_offset``, ``tonal_gamma``) does.
    Both directions are tried because clipping makes the edit invertible only one way."""
    x = _linear(v.tone[i, vi])
    y = _linear(v.tone[j, vj])
    out_tone = np.full(len(i), np.inf, np.float32)
    out_shift = np.full(len(i), np.inf, np.float32)
    out_local = np.full(len(i), np.inf, np.float32)
    for src, dst in ((x, y), (y, x)):
        tone, fitted = _fit_curve(src, dst, th)
        shift = np.abs(_chroma(fitted) - _chroma(dst)).sum(axis=1).astype(np.float32)
        local = _local_colour(fitted, dst)
        better = tone < out_tone
        out_tone = np.where(better, tone, out_tone)
        out_shift = np.where(better, shift, out_shift)
        out_local = np.where(better, local, out_local)
    return out_tone, out_shift, out_local


def verify(v: Views, i: np.ndarray, j: np.ndarray, thresholds: Thresholds, looked: np.ndarray | None = None,
           refit: list[tuple[int, dict[str, float]]] | None = None,
           rescue: list[tuple[int, dict[str, float]]] | None = None) -> tuple[np.ndarray, PairDistances]:
    """Accepted pairs (a boolean mask over the input) and their distances, in two stages: the colour shift
    and the aspect cost a few numbers per pair and reject most candidates (colourways, other garments), so
    the per-cell distances are computed for the few that remain. ``refit`` and ``rescue`` (when given) collect
    (row, distances) of refused pairs a finer look may still join (core.find_duplicates): boxed products whose
    tone curve nearly fitted (``looked``: both boxed), and pairs whose colour held and whose shape moved no more
    than a crop does (the rescue)."""
    # the cheap stage only rejects what no view pair could accept: the colour shift against the largest
    # allowance any view pair gets (unless a tone curve may explain the shift: then the aspect alone)
    aspect = np.abs(v.log_aspect[i] - v.log_aspect[j])
    possible = np.zeros(len(i), bool)
    for a, b in VIEW_PAIRS:
        shift = np.abs(v.chroma_mean[i, a] - v.chroma_mean[j, b]).sum(axis=1)
        contrast = np.abs(v.log_cv[i, a] - v.log_cv[j, b])
        possible |= shift <= thresholds.shift_limit(contrast)
        if thresholds.tonal:  # the tone-curve path's own colour allowance (see the end of this function)
            possible |= thresholds.curve_may_explain(shift, contrast, aspect)
        if rescue is not None and thresholds.fine and thresholds.fine_rescue:
            # and the rescue's (below): a copy both cropped into (the aspect past tonal_aspect) and tone-edited (the shift
            # past the thumbnails' limit) passes neither test above, and is what the rescue is for (issue 16,
            # nineteenth round: until then such a pair never reached it)
            possible |= thresholds.rescue_colour_holds(shift, contrast)
    survivors = np.flatnonzero(possible & (aspect <= thresholds.aspect))
    accepted = np.zeros(len(i), bool)
    kept: list[PairDistances] = []
    for a in range(0, len(survivors), VERIFY_BATCH):  # per-cell temporaries stay ~100 MB
        rows = survivors[a:a + VERIFY_BATCH]
        d = distances(v, i[rows], j[rows])
        ok = thresholds.accept(d)
        d.tonal_tone = np.full(len(rows), np.inf, np.float32)
        d.tonal_shift = np.full(len(rows), np.inf, np.float32)
        d.tonal_local = np.full(len(rows), np.inf, np.float32)
        refitting = np.zeros(len(rows), bool)  # rows handed to the finer tone curve
        curved = np.zeros(len(rows), bool)  # rows whose coarse tone curve was fitted (d.tonal_*)
        if thresholds.tonal:
            # the shape checks hold but the tone or the colour does not: is it one tone curve away? (the
            # admission is checked before fitting: most colourways of one cut stop there)
            ask = np.flatnonzero(~ok & (d.structure <= thresholds.tonal_structure) & (d.detail <= thresholds.tonal_detail)
                                 & thresholds.curve_may_explain(d.shift, d.contrast, d.aspect))
            if len(ask):
                views_ = np.asarray(VIEW_PAIRS)[d.view[ask]]
                tt, ts, tl = tonal_alignment(v, i[rows][ask], j[rows][ask], views_[:, 0], views_[:, 1], thresholds)
                d.tonal_tone[ask], d.tonal_shift[ask], d.tonal_local[ask] = tt, ts, tl
                curved[ask] = True
                ok[ask] = (tt <= thresholds.tone) & (ts <= thresholds.tonal_shift) & (tl <= thresholds.local)
                if looked is not None and refit is not None:
                    # products the curve could explain in shape and colour allowance, but whose 16x16 fit left
                    # too much: the finer look fits the curve again on their pixels (core.find_duplicates)
                    # (only those whose colour the coarse curve nearly explained: a colourway leaves far more, and
                    # each refit costs a decode and an alignment)
                    lost = ask[~ok[ask] & looked[rows[ask]] & (ts <= REFIT_SHIFT * thresholds.tonal_shift)]
                    again = d.take(lost)
                    refit.extend((int(rows[r]), again.row(m)) for m, r in enumerate(lost))
                    refitting[lost] = True
        if rescue is not None and thresholds.fine and thresholds.fine_rescue:
            # refused, but not for colour: the lightness checks hold (or a tone curve may explain the
            # shift) and the shape is off by what a crop does, not by what another garment does; a look that aligns
            # their pixels decides (curate.dedupe.confirm). Pairs already going to the finer tone curve are not
            # asked twice. The colour gate (fine_rescue_shift) holds for every pair, photos too: on the tuning sets
            # family 151, frame 180, pale 170 and onmodel 110 no pair the rescue joined had a shift above 0.060
            # (onmodel 110's photos <= 0.020: chained tone edits of a photo barely move its mean chromaticity), while
            # 893 of the 6,523 looks it did not join were photo pairs above 0.06 that the contrast allowance let through
            near = (~ok & (d.structure <= thresholds.fine_rescue_structure) & (d.detail <= thresholds.detail)
                    & (d.local <= thresholds.fine_rescue_local) & thresholds.rescue_colour_holds(d.shift, d.contrast))
            near = np.flatnonzero(near & ~refitting)
            if looked is not None and looked[rows[near]].any():
                # two products: most such pairs are other products of one cut on white, and the product look costs
                # ~14 ms a pair, so only those whose colour the coarse tone curve nearly explains are asked (tuning
                # seed 102: every product copy the rescue joined had shift <= 0.053 and a curve residual <= 0.068)
                prod = near[looked[rows[near]]]
                ts = d.tonal_shift[prod].copy()  # the curve fitted above where it was, fitted now for the rest
                fresh = ~curved[prod]
                if fresh.any():
                    views_ = np.asarray(VIEW_PAIRS)[d.view[prod[fresh]]]
                    ts[fresh] = tonal_alignment(v, i[rows][prod[fresh]], j[rows][prod[fresh]], views_[:, 0], views_[:, 1], thresholds)[1]
                drop = prod[~(ts <= thresholds.fine_rescue_curve_shift)]
                near = np.setdiff1d(near, drop)
            asked = d.take(near)
            rescue.extend((int(rows[r]), asked.row(m)) for m, r in enumerate(near))
        accepted[rows[ok]] = True
        kept.append(d.take(ok))
    fields = [f.name for f in dataclasses.fields(PairDistances)]
    if not kept:
        return accepted, PairDistances(*(np.zeros(0, np.float32) for _ in fields[:6]), np.zeros(0, np.int64), np.zeros(0, np.int64),
                                       *(np.zeros(0, np.float32) for _ in fields[8:]))
    return accepted, PairDistances(*(np.concatenate([getattr(k, name) for k in kept]) for name in fields))
