"""A generated corpus of damaged and hostile inputs (issue 18), built at test time: no committed binaries.

:func:`viton_hd_corpus` writes a small VITON-HD layout ``tmp/src`` plus folders *beside* it
(``tmp/outside/secret.jpg``: must never be read; ``tmp/elsewhere/``: the target of the user's own
symlink, which must be followed). Each special stem carries one defect; :data:`EXPECTED_HUMANS` and
:data:`EXPECTED_ARTICLES` give the reason ingest must record for it (``None`` = ok), and the returned
:class:`Corpus` keeps the pixel references the arrays must match.
:func:`pairs_folder_corpus` and :func:`images_corpus` cover the two other layouts the audit used.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from test_ingest_bad_inputs import body25, good_ids, parse_png  # the same 48x64 parsing and BODY_25 poses

W, H = 48, 64  # every image is W x H upright (the arrays are built at H x W, so pixels map 1:1)
SPLIT = "test"

GOOD = [f"g{i:02d}_00" for i in range(1, 9)]
# rich markup in names: once crashed `curate ingest` and `curate summary`. A pair list names this missing
# file (the slash makes its stem "x]_00"; its detail holds the markup); the pairs-folder corpus has a real
# folder "[red]m[" so that an *id* holds it.
MARKUP = "[red]m[/x]_00"

# human stem -> reject_reason at ingest (None = ok)
EXPECTED_HUMANS: dict[str, str | None] = {
    **dict.fromkeys(GOOD, None),
    "exif_00": None,  # stored sideways with EXIF orientation 6: upright 48x64 like its label map
    "wide16_00": None,  # 16-bit grey PNG
    "onebit_00": None,  # 1-bit label map
    "linked_00": None,  # the user's own symlink to a file outside the root: followed
    "corrupt_00": "unreadable-image",  # corrupt entropy-coded data (header and size fine)
    "deep_00": "pose-unreadable",  # pose JSON nested 100000 levels deep
    "x]_00": "missing-file",  # named "[red]m[/x]_00.jpg" by the pair list
    "fifo_00": "not-regular-file",  # a FIFO named by the pair list: never opened
    "huge_00": "file-too-large",  # sparse file over the size limit: never read
    "samestem_00": None,  # beside samestem_00.png (that one is reported, not a row)
    "alpha_00": None,  # wears the RGBA cut-out article
}
EXPECTED_ARTICLES: dict[str, str | None] = {
    **{stem: None for stem in EXPECTED_HUMANS if stem != "x]_00"},
    "alpha_00": None,  # RGBA cut-out on a transparent background, no cloth-mask file
}
# pair-list names that leave the root: rows rejected path-outside-root, nothing opened
ESCAPES = ["../../../outside/secret.jpg", "/etc/passwd", "../../../../../../../../../dev/zero"]


@dataclasses.dataclass
class Corpus:
    root: Path  # the dataset root (src)
    secret: Path  # outside the root: never opened
    link_target: Path  # outside the root, reached through the user's own symlink: followed
    fifo: Path
    huge: Path
    upright: dict[str, np.ndarray]  # human stem -> the upright RGB the arrays must hold (lossless sources)
    exif_raw: np.ndarray  # decoded stored (sideways) pixels of exif_00.jpg
    onebit_ids: np.ndarray  # ids of onebit_00's label map
    wide16: np.ndarray  # uint16 values of wide16_00.png
    alpha_rgba: np.ndarray  # alpha_00.png
    pair_lines: int  # lines in the pair list that are valid UTF-8 pairs


def _jpeg(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _noise(seed: int, h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth-ish content so JPEG keeps it recognisable (distinct per seed)
    base = rng.integers(30, 220, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    return np.kron(base, np.ones((8, 8, 1), np.uint8))[:h, :w]


def _ids() -> np.ndarray:
    return good_ids()


def _parse(path: Path, ids: np.ndarray) -> None:
    parse_png(path, ids)


def _pose(seed: int) -> dict:
    return body25(seed)


def corrupt_entropy_jpeg(arr: np.ndarray) -> bytes:
    """A JPEG whose header is intact and whose entropy-coded data is damaged (PIL decodes it silently)."""
    data = bytearray(_jpeg(arr))
    sos = data.find(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    for k in range(start + 20, len(data) - 4, 5):
        flipped = data[k] ^ 0x5A
        if data[k] != 0xFF and flipped != 0xFF and data[k - 1] != 0xFF:
            data[k] = flipped
    return bytes(data)


def viton_hd_corpus(tmp: Path) -> Corpus:
    src = tmp / "src"
    d = src / SPLIT
    for sub in ("image", "cloth", "cloth-mask", "image-parse-v3", "openpose_json"):
        (d / sub).mkdir(parents=True)
    (tmp / "outside").mkdir()
    secret = tmp / "outside" / "secret.jpg"
    secret.write_bytes(_jpeg(_noise(999)))
    (tmp / "elsewhere").mkdir()
    upright: dict[str, np.ndarray] = {}

    def human(stem: str, image_bytes: bytes | None, seed: int, *, ids: np.ndarray | None = None, pose=None) -> None:
        if image_bytes is not None:
            (d / "image" / f"{stem}.jpg").write_bytes(image_bytes)
        _parse(d / "image-parse-v3" / f"{stem}.png", _ids() if ids is None else ids)
        (d / "openpose_json" / f"{stem}_keypoints.json").write_text(json.dumps(_pose(seed)) if pose is None else pose)

    def article(stem: str, seed: int, mask: bool = True) -> None:
        (d / "cloth" / f"{stem}.jpg").write_bytes(_jpeg(_noise(100 + seed)))
        if mask:
            Image.fromarray(np.full((H, W), 255, np.uint8)).save(d / "cloth-mask" / f"{stem}.jpg")

    for i, stem in enumerate(GOOD):
        human(stem, _jpeg(_noise(i)), i)
        article(stem, i)
    # EXIF orientation 6: stored as H x W = 48 x 64 (sideways); upright it is 64 x 48 like its label map
    raw = _noise(50, W, H)
    exif = Image.Exif()
    exif[0x0112] = 6
    human("exif_00", _jpeg(raw, exif=exif.tobytes()), 50)
    exif_raw = np.asarray(Image.open(d / "image" / "exif_00.jpg").convert("RGB"))
    # 16-bit grey PNG (written as .jpg name? no: a real .png, found by the stem lookup)
    wide = (np.linspace(0, 65535, H * W).reshape(H, W)).astype(np.uint16)
    Image.fromarray(wide).save(d / "image" / "wide16_00.png")  # mode I;16
    _parse(d / "image-parse-v3" / "wide16_00.png", _ids())
    (d / "openpose_json" / "wide16_00_keypoints.json").write_text(json.dumps(_pose(51)))
    # 1-bit label map (ids 0/1 of LIP-20)
    onebit = np.zeros((H, W), bool)
    onebit[5:40, 8:30] = True
    human("onebit_00", _jpeg(_noise(52)), 52)
    Image.fromarray(onebit).convert("1").save(d / "image-parse-v3" / "onebit_00.png")
    # the user's own symlink to a file outside the root
    target = tmp / "elsewhere" / "linked.png"
    linked = _noise(53)
    Image.fromarray(linked).save(target)
    os.symlink(os.path.relpath(target, d / "image"), d / "image" / "linked_00.png")
    _parse(d / "image-parse-v3" / "linked_00.png", _ids())
    (d / "openpose_json" / "linked_00_keypoints.json").write_text(json.dumps(_pose(53)))
    upright["linked_00"] = linked
    human("corrupt_00", corrupt_entropy_jpeg(_noise(54)), 54)
    human("deep_00", _jpeg(_noise(55)), 55, pose="[" * 100_000 + "]" * 100_000)
    fifo = d / "image" / "fifo_00.jpg"
    os.mkfifo(fifo)
    huge = d / "image" / "huge_00.jpg"
    from curate.imageio import MAX_FILE_BYTES

    with open(huge, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used, and never read
    human("samestem_00", _jpeg(_noise(57)), 57)
    Image.fromarray(_noise(58)).save(d / "image" / "samestem_00.png")
    # articles: an RGBA cut-out on transparent black, no cloth mask
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[16:48, 12:36] = (200, 30, 30, 255)
    rgba[16:48, 36:40] = (200, 30, 30, 128)  # a half-transparent edge
    Image.fromarray(rgba, "RGBA").save(d / "cloth" / "alpha_00.png")
    # unaccounted-for classes: dangling symlink, loop, hidden file, a non-UTF-8 name
    os.symlink("no-such-file.jpg", d / "image" / "dangling_00.jpg")
    os.symlink("loop_00.jpg", d / "image" / "loop_00.jpg")
    (d / "image" / "._g01_00.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    with open(os.path.join(os.fsencode(d / "image"), b"caf\xe9_00.jpg"), "wb") as fh:
        fh.write(_jpeg(_noise(59)))

    # every person with a cloth of the same stem (paired: reaches the triplets and the arrays)
    specials = ["exif_00", "wide16_00", "onebit_00", "linked_00", "corrupt_00", "deep_00", "fifo_00", "huge_00",
                "samestem_00"]
    for i, stem in enumerate(specials):
        article(stem, 20 + i)
    (d / "image" / "alpha_00.jpg").write_bytes(_jpeg(_noise(60)))
    _parse(d / "image-parse-v3" / "alpha_00.png", _ids())
    lines = [f"{stem}.jpg {stem}.jpg" for stem in (*GOOD, *specials)]
    lines.append("alpha_00.jpg alpha_00.png")
    lines.append(f"{MARKUP}.jpg {GOOD[0]}.jpg")
    for name in ESCAPES:
        lines.append(f"{name} {GOOD[0]}.jpg")
    lines.append(f"{GOOD[1]}.jpg {ESCAPES[0]}")
    body = "\n".join(lines).encode() + b"\ncaf\xe9_00.jpg g02_00.jpg\n"  # one latin-1 line: only it is lost
    (src / "test_pairs.txt").write_bytes(body)
    return Corpus(src, secret, target, fifo, huge, upright, exif_raw, onebit.astype(np.uint8), wide, rgba, len(lines))


def pairs_folder_corpus(tmp: Path) -> Path:
    """human/, article/ and a pair list naming files outside the root by ``..`` and absolute paths; a file
    of the same stem as the escaping name exists inside, and must not be matched instead."""
    src = tmp / "pf"
    (src / "human").mkdir(parents=True)
    (src / "article").mkdir()
    for i in range(3):
        (src / "human" / f"p{i}.jpg").write_bytes(_jpeg(_noise(200 + i)))
        (src / "article" / f"p{i}.jpg").write_bytes(_jpeg(_noise(300 + i)))
    (src / "human" / "secret.jpg").write_bytes(_jpeg(_noise(210)))  # same stem as the outside file
    (src / "human" / "[red]m[").mkdir()
    (src / "human" / "[red]m[" / "x]_00.jpg").write_bytes(b"")  # id "[red]m[/x]_00", empty-file
    (tmp / "pf_outside").mkdir()
    (tmp / "pf_outside" / "secret.jpg").write_bytes(_jpeg(_noise(998)))
    (src / "pairs.txt").write_text(
        "p0.jpg p0.jpg\np1.jpg p1.jpg\n../../pf_outside/secret.jpg p2.jpg\n/etc/passwd p2.jpg\np2.jpg ../../pf_outside/secret.jpg\n"
    )
    return src


def images_corpus(tmp: Path) -> Path:
    """A plain folder of photos with a FIFO, a broken link, a hidden file and an EXIF-rotated JPEG."""
    src = tmp / "imgs"
    (src / "tops").mkdir(parents=True)
    (src / "tops" / "a.jpg").write_bytes(_jpeg(_noise(400)))
    raw = _noise(401, W, H)
    exif = Image.Exif()
    exif[0x0112] = 8
    (src / "tops" / "rot.jpg").write_bytes(_jpeg(raw, exif=exif.tobytes()))
    os.mkfifo(src / "tops" / "pipe.jpg")
    os.symlink("gone.jpg", src / "tops" / "broken.jpg")
    (src / "tops" / ".hidden.jpg").write_bytes(_jpeg(_noise(402)))
    return src
