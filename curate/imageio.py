"""Safe image and label-map reading: a decoded result or a rejection reason, never an exception.

Every reader here reads the file's bytes once, hashes them (sha256 of the bytes on disk, the exact
duplicate key used by dedupe) and decodes *from those bytes*, so a file is touched once per ingest.

PIL opens images lazily: ``Image.open`` only parses the header, so a file cut short after its header
"opens" fine and fails later, in whichever stage first touches the pixels. The readers therefore force a
full decode (``Image.load``) and classify the failure:

* zero bytes                               -> ``empty-file``
* header not recognised by any decoder     -> ``unreadable-image``
* header fine, pixel data cut short        -> ``truncated-image``
* any other decoder error (corrupt stream) -> ``unreadable-image`` with the decoder's message

Label maps are read as *ids*: palette (mode ``P``) PNGs give their palette indices (never convert
``P`` to RGB: the index is the class id, the palette is only a display colour), greyscale gives its
values, and an RGB file whose three channels are equal everywhere is read as greyscale (PASTA-GAN's
garment parsing is stored that way). Other RGB label maps are colour-coded and would need a palette
table to decode: they are rejected with a reason instead of being guessed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from curate.labelsets import get_label_set, unknown_ids
from curate.schema import RejectReason

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def is_image_name(path: str | Path) -> bool:
    """True when the file name has an image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


SCALED_DECODE_FACTORS = (1, 2, 4, 8)  # what libjpeg's scaled IDCT (OpenCV's IMREAD_REDUCED_*) offers


def decode_scaled(data: bytes, factor: int, *, grey: bool = False, ignore_orientation: bool = False) -> np.ndarray | None:
    """Decode encoded image bytes with OpenCV at 1/``factor`` (1, 2, 4 or 8) as uint8 RGB ``[H, W, 3]``, or
    ``[H, W]`` with ``grey``; None when OpenCV cannot read them. JPEGs are scaled inside the decoder (the
    same libjpeg DCT-domain scaling as PIL's ``Image.draft``); other formats are decoded in full and then
    reduced. EXIF orientation is applied unless ``ignore_orientation`` (PIL never applies it)."""
    import cv2

    if factor not in SCALED_DECODE_FACTORS:
        raise ValueError(f"decode factor {factor}; valid: {', '.join(map(str, SCALED_DECODE_FACTORS))}")
    kind = "GRAYSCALE" if grey else "COLOR"
    flag = getattr(cv2, f"IMREAD_{kind}" if factor == 1 else f"IMREAD_REDUCED_{kind}_{factor}")
    if ignore_orientation:
        flag |= cv2.IMREAD_IGNORE_ORIENTATION
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if arr is None or grey:
        return arr
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


@dataclasses.dataclass
class ImageRead:
    """Outcome of reading one image file. ``reason is None`` means it decoded completely."""

    path: Path
    size_bytes: int | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    image: Image.Image | None = None  # only kept when asked for (``keep=True``)
    reason: RejectReason | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _read_bytes(path: Path) -> tuple[bytes | None, RejectReason | None, str | None]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, RejectReason.MISSING_FILE, f"{path.name}: file not found"
    except IsADirectoryError:
        return None, RejectReason.UNREADABLE_IMAGE, f"{path.name}: is a directory"
    except OSError as exc:  # permission denied, I/O error, broken link
        return None, RejectReason.UNREADABLE_IMAGE, f"{path.name}: cannot read ({exc.strerror or exc})"
    if not data:
        return data, RejectReason.EMPTY_FILE, f"{path.name}: 0 bytes"
    return data, None, None


def _decode(data: bytes, name: str) -> tuple[Image.Image | None, RejectReason | None, str | None]:
    """Fully decode ``data``; classify failures (see module docstring)."""
    try:
        with warnings.catch_warnings():
            # DecompressionBombWarning is raised as an error below its hard limit only; keep it quiet.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()  # force the full decode: Image.open alone only parses the header
        return img, None, None
    except UnidentifiedImageError:
        return None, RejectReason.UNREADABLE_IMAGE, f"{name}: not a recognised image format"
    except Image.DecompressionBombError as exc:
        return None, RejectReason.UNREADABLE_IMAGE, f"{name}: refused, too many pixels ({exc})"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or isinstance(exc, EOFError):
            return None, RejectReason.TRUNCATED_IMAGE, f"{name}: {msg or 'data ends early'}"
        return None, RejectReason.UNREADABLE_IMAGE, f"{name}: {type(exc).__name__}: {msg}"


def read_image(path: str | Path, *, keep: bool = False) -> ImageRead:
    """Read, hash and fully decode one image. ``keep=True`` returns the decoded ``PIL.Image`` too."""
    path = Path(path)
    out = ImageRead(path=path)
    data, out.reason, out.detail = _read_bytes(path)
    if data is None:
        return out
    out.size_bytes = len(data)
    out.sha256 = sha256_bytes(data) if data else None
    if out.reason is not None:
        return out
    img, out.reason, out.detail = _decode(data, path.name)
    if img is not None:
        out.width, out.height = img.size
        out.mode = img.mode
        out.image = img if keep else None
    return out


@dataclasses.dataclass
class LabelMapRead:
    """Outcome of reading one label map; ``ids`` is a uint8 ``[H, W]`` array when kept."""

    path: Path
    width: int | None = None
    height: int | None = None
    ids: np.ndarray | None = None
    reason: RejectReason | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def labelmap_ids(img: Image.Image) -> tuple[np.ndarray | None, str | None]:
    """Class ids of a decoded label-map image, or ``(None, why)`` when it is not an id map."""
    mode = img.mode
    if mode in ("P", "L"):
        return np.asarray(img, dtype=np.uint8), None  # palette index / grey value = class id
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
        if arr.size and int(arr.max()) > 255:
            return None, f"16-bit label map with id {int(arr.max())} > 255"
        return arr.astype(np.uint8), None
    if mode in ("RGB", "RGBA"):
        arr = np.asarray(img)
        r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
        if np.array_equal(r, g) and np.array_equal(g, b):
            return np.ascontiguousarray(r), None  # grey stored as RGB: the value is the id
        return None, "colour (RGB) label map: ids are not stored as values; save it as palette or greyscale PNG"
    if mode == "1":
        return np.asarray(img, dtype=np.uint8), None
    if mode == "LA":
        return np.asarray(img.getchannel("L"), dtype=np.uint8), None
    return None, f"label map in unsupported mode {mode}"


def read_labelmap(
    path: str | Path,
    label_set: str,
    *,
    expected_size: tuple[int, int] | None = None,
    keep: bool = False,
) -> LabelMapRead:
    """Read a label map as ids and check it against its label set and the image size ``(W, H)``.

    Failures: unreadable/truncated/empty file -> ``labelmap-unreadable`` (the detail says which);
    size differing from ``expected_size`` -> ``labelmap-size-mismatch``; ids the set does not define ->
    ``labelmap-unknown-ids`` (the detail lists them).
    """
    path = Path(path)
    out = LabelMapRead(path=path)
    data, reason, detail = _read_bytes(path)
    if reason is None and data is not None:
        img, reason, detail = _decode(data, path.name)
    if reason is not None:
        if reason is RejectReason.MISSING_FILE:
            out.reason, out.detail = reason, f"label map {detail}"
        else:
            out.reason, out.detail = RejectReason.LABELMAP_UNREADABLE, f"label map {detail} ({reason.value})"
        return out
    assert img is not None
    out.width, out.height = img.size
    ids, why = labelmap_ids(img)
    if ids is None:
        out.reason, out.detail = RejectReason.LABELMAP_UNREADABLE, f"label map {path.name}: {why}"
        return out
    if expected_size is not None and tuple(img.size) != tuple(expected_size):
        out.reason = RejectReason.LABELMAP_SIZE_MISMATCH
        out.detail = (
            f"label map {path.name} is {img.size[0]}x{img.size[1]} (WxH) but its image is "
            f"{expected_size[0]}x{expected_size[1]}"
        )
        return out
    n = get_label_set(label_set).num_classes
    # max() is a single pass; the full list of unknown ids (a sort) is only computed when one exists.
    bad = unknown_ids(ids, label_set) if ids.size and int(ids.max()) >= n else []
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        out.reason = RejectReason.LABELMAP_UNKNOWN_IDS
        out.detail = f"label map {path.name} has ids {shown} outside {label_set} (0..{n - 1})"
        return out
    if keep:
        out.ids = ids
    return out


def path_is_utf8(path: str | os.PathLike[str]) -> bool:
    """False for file names that are not valid UTF-8 (Python holds them with surrogate escapes)."""
    try:
        os.fspath(path).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def printable_path(path: str | os.PathLike[str]) -> str:
    """A UTF-8-safe spelling of any path, with undecodable bytes shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")
