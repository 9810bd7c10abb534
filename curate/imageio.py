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

Hostile files (see docs/ingest.md): only regular files are opened (a FIFO, a device or a socket is
rejected ``not-regular-file`` from its ``stat``, never opened, so it cannot hang a run), a file larger
than :data:`MAX_FILE_BYTES` is rejected ``file-too-large`` without being read, and a file that cannot be
opened (permission, I/O error) is ``unreadable``.

One decoding path for pixels (:func:`decode_rgb`, :func:`load_rgb`, and :func:`decode_scaled` for
dedupe/filters): EXIF orientation is applied (and reported), 16-bit images are scaled to 8 bits (not
clipped), an alpha channel is composited on white and returned as the mask, palette transparency
counts as alpha. At ingest JPEGs are decoded strictly (libjpeg-turbo via ``simplejpeg``, when
installed): a file whose entropy-coded data is corrupt decodes "fine" in PIL and OpenCV (libjpeg only
warns and fills the damage with grey) and is rejected ``unreadable-image`` here instead.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import os
import stat
import struct
import warnings
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image, UnidentifiedImageError

from curate.labelsets import get_label_set, unknown_ids
from curate.schema import RejectReason

# Largest file any reader here opens (images, masks, label maps). A 24-megapixel JPEG is ~15 MB and a
# 16-bit 8K PNG ~200 MB; anything larger is refused before it is read (bounded memory, no /dev/zero).
MAX_FILE_BYTES: Final[int] = 256 * 2**20

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
    if not _is_jpeg(data) and _needs_pil(data):
        # alpha, 16-bit, palette transparency: OpenCV would drop the alpha (black background) or lose
        # the EXIF tag; decode through the one PIL path and reduce the way IMREAD_REDUCED_* does.
        try:
            dec = decode_rgb(data, orient=not ignore_orientation)
        except ImageDecodeError:
            return None
        arr = dec.rgb
        if factor > 1:
            h, w = arr.shape[:2]
            arr = cv2.resize(arr, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_LINEAR_EXACT)
        return cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY) if grey else arr
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
    orientation: int | None = None  # EXIF orientation tag (1 = upright); width/height are after applying it
    image: Image.Image | None = None  # only kept when asked for (``keep=True``), orientation applied
    reason: RejectReason | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


_KIND_NAMES = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


def file_kind(st: os.stat_result) -> str:
    """What a non-regular ``stat`` result is, in words (``a FIFO``, ``a directory``...)."""
    return _KIND_NAMES.get(stat.S_IFMT(st.st_mode), "not a regular file")


def read_file_bounded(path: str | Path, limit: int = MAX_FILE_BYTES) -> tuple[bytes | None, RejectReason | None, str | None]:
    """The bytes of a *regular* file of at most ``limit`` bytes, or ``(None, reason, detail)``.

    Symlinks are followed (a dataset assembled from links is the user's own tree). The ``stat`` decides
    before anything is opened: a FIFO, device or socket is never opened (opening a FIFO blocks until a
    writer comes), a file over ``limit`` is never read. The file is opened non-blocking and checked again
    with ``fstat`` so a file swapped for a FIFO between the two calls cannot block either.
    """
    path = Path(path)
    name = printable_path(path.name)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            return None, RejectReason.BROKEN_SYMLINK, f"{name}: symlink to {printable_path(os.readlink(path))}, which does not exist"
        return None, RejectReason.MISSING_FILE, f"{name}: file not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, RejectReason.BROKEN_SYMLINK, f"{name}: symlink loop"
        return None, RejectReason.UNREADABLE, f"{name}: cannot read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return None, RejectReason.NOT_REGULAR_FILE, f"{name}: {file_kind(st)}, not a regular file; not opened"
    if st.st_size > limit:
        return None, RejectReason.FILE_TOO_LARGE, f"{name}: {st.st_size} bytes > the {limit}-byte limit; not read"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:  # permission denied (also on a folder above), I/O error
        return None, RejectReason.UNREADABLE, f"{name}: cannot read ({exc.strerror or exc})"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, RejectReason.NOT_REGULAR_FILE, f"{name}: {file_kind(st)}, not a regular file"
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 22, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # grew after the stat
                return None, RejectReason.FILE_TOO_LARGE, f"{name}: more than the {limit}-byte limit; not read"
    except OSError as exc:
        return None, RejectReason.UNREADABLE, f"{name}: cannot read ({exc.strerror or exc})"
    finally:
        os.close(fd)
    return b"".join(chunks), None, None


def _read_bytes(path: Path) -> tuple[bytes | None, RejectReason | None, str | None]:
    data, reason, detail = read_file_bounded(path)
    if data is not None and not data:
        return data, RejectReason.EMPTY_FILE, f"{printable_path(path.name)}: 0 bytes"
    return data, reason, detail


def _is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


# PIL modes OpenCV's 8-bit decode gets wrong: alpha (dropped -> whatever colour the transparent pixels
# hold, usually black), 16/32-bit grey (clipped by PIL's convert), float.
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _needs_pil(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.mode in _ALPHA_MODES or im.mode in _WIDE_MODES or "transparency" in im.info
    except Exception:  # noqa: BLE001 - not an image PIL knows: OpenCV gets its chance
        return False


def exif_orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1-8; 1 = upright, also when absent or invalid)."""
    try:
        value = int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a malformed EXIF block is "no orientation", not a failure
        return 1
    return value if 1 <= value <= 8 else 1


def oriented(img: Image.Image) -> tuple[Image.Image, int]:
    """``img`` turned upright by its EXIF orientation, and the tag that was applied."""
    from PIL import ImageOps

    tag = exif_orientation(img)
    if tag == 1:
        return img, 1
    return ImageOps.exif_transpose(img), tag


def jpeg_orientation(data: bytes) -> int:
    """The EXIF orientation of JPEG bytes from the APP1 segment alone (no PIL, a few microseconds): 1 when
    absent, invalid or not a JPEG. For fast paths that decode with OpenCV/libjpeg and must not ignore it."""
    if not _is_jpeg(data):
        return 1
    i, n = 2, len(data)
    while i + 4 <= n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no EXIF before the pixels
            return 1
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\x00\x00":
            tiff = data[i + 10:i + 2 + length]
            if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
                return 1
            order = "little" if tiff[:2] == b"II" else "big"
            ifd = int.from_bytes(tiff[4:8], order)
            if ifd + 2 > len(tiff):
                return 1
            for k in range(int.from_bytes(tiff[ifd:ifd + 2], order)):
                e = ifd + 2 + 12 * k
                if e + 12 > len(tiff):
                    return 1
                if int.from_bytes(tiff[e:e + 2], order) == 0x0112:
                    value = int.from_bytes(tiff[e + 8:e + 10], order)
                    return value if 1 <= value <= 8 else 1
            return 1
        i += 2 + length
    return 1


def upright_rgb(img: Image.Image, *, grey: bool = False) -> Image.Image:
    """A PIL image a stage decoded itself (e.g. after ``Image.draft``) as every stage must see it: turned
    upright by its EXIF orientation, 16-bit scaled, alpha on white (:func:`to_rgb`); ``grey`` keeps an
    8-bit greyscale file as ``L``."""
    img, _ = oriented(img)
    if grey and img.mode in ("L", "1"):
        return img.convert("L")
    return Image.fromarray(to_rgb(img)[0])


def oriented_size(size: tuple[int, int], tag: int) -> tuple[int, int]:
    """(width, height) of an image of ``size`` once turned upright by EXIF orientation ``tag``."""
    return (size[1], size[0]) if tag in (5, 6, 7, 8) else size  # 5-8 rotate by 90 degrees


class ImageDecodeError(ValueError):
    """An image that cannot be decoded; ``reason`` is the RejectReason, the message the detail."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _strict_jpeg(data: bytes, name: str) -> tuple[bool, RejectReason | None, str | None]:
    """Decode a JPEG with libjpeg warnings as errors: ``(decoded, reason, detail)``; ``decoded`` False
    when the strict decoder is not installed or cannot handle the file (CMYK, arithmetic coding)."""
    try:
        import simplejpeg
    except ImportError:
        return False, None, None
    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY" if _jpeg_is_grey(data) else "RGB", strict=True)
        return True, None, None
    except ValueError as exc:
        msg = str(exc)
        if "Premature end" in msg:
            return True, RejectReason.TRUNCATED_IMAGE, f"{name}: image file is truncated ({msg})"
        if "Corrupt JPEG data" in msg or "progression" in msg.lower() or "Huffman" in msg:
            return True, RejectReason.UNREADABLE_IMAGE, f"{name}: corrupt JPEG data ({msg})"
        return False, None, None


def _jpeg_is_grey(data: bytes) -> bool:
    try:
        import simplejpeg

        return simplejpeg.decode_jpeg_header(data)[2] == "Gray"
    except Exception:  # noqa: BLE001
        return False


def _open(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        # DecompressionBombWarning is raised as an error below its hard limit only; keep it quiet.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data))


def _classify(exc: BaseException, name: str) -> tuple[RejectReason, str]:
    if isinstance(exc, UnidentifiedImageError):
        return RejectReason.UNREADABLE_IMAGE, f"{name}: not a recognised image format"
    if isinstance(exc, Image.DecompressionBombError):
        return RejectReason.UNREADABLE_IMAGE, f"{name}: refused, too many pixels ({exc})"
    msg = str(exc)
    if "truncated" in msg.lower() or isinstance(exc, EOFError):
        return RejectReason.TRUNCATED_IMAGE, f"{name}: {msg or 'data ends early'}"
    return RejectReason.UNREADABLE_IMAGE, f"{name}: {type(exc).__name__}: {msg}"


_DECODE_ERRORS = (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError,
                  IndexError, KeyError, TypeError, struct.error)


def _decode(data: bytes, name: str, *, load: bool = True, strict: bool = False) -> tuple[Image.Image | None, RejectReason | None, str | None]:
    """Fully decode ``data``; classify failures (see module docstring). ``strict`` (ingest) decodes JPEGs
    with libjpeg warnings as errors; later stages read files ingest already validated.

    With ``load=False`` a JPEG that the strict decoder accepted is returned unloaded (its pixels were
    already decoded once; PIL's lazy image gives size, mode and EXIF from the header).
    """
    try:
        img = _open(data)
        if strict and _is_jpeg(data):
            done, reason, detail = _strict_jpeg(data, name)
            if reason is not None:
                return None, reason, detail
            if done and not load:
                return img, None, None
        img.load()  # force the full decode: Image.open alone only parses the header
        return img, None, None
    except _DECODE_ERRORS as exc:
        reason, detail = _classify(exc, name)
        return None, reason, detail


def read_image(path: str | Path, *, keep: bool = False) -> ImageRead:
    """Read (bounded, regular files only), hash and fully decode one image. ``keep=True`` returns the
    decoded ``PIL.Image`` too, turned upright by its EXIF orientation. ``width``/``height`` are the
    upright size (what every later stage sees) and ``orientation`` the tag that was applied."""
    path = Path(path)
    out = ImageRead(path=path)
    data, out.reason, out.detail = _read_bytes(path)
    if data is None:
        return out
    out.size_bytes = len(data)
    out.sha256 = sha256_bytes(data) if data else None
    if out.reason is not None:
        return out
    img, out.reason, out.detail = _decode(data, printable_path(path.name), load=keep, strict=True)
    if img is not None:
        out.orientation = exif_orientation(img)
        out.width, out.height = oriented_size(img.size, out.orientation)
        out.mode = img.mode
        out.image = oriented(img)[0] if keep else None
    return out


@dataclasses.dataclass
class Decoded:
    """Pixels as every stage sees them: upright, 8-bit RGB on white, and the alpha as a mask."""

    rgb: np.ndarray  # uint8 [H, W, 3]
    alpha: np.ndarray | None  # uint8 [H, W] 0..255 when the file has an alpha channel / transparency
    orientation: int  # the EXIF tag that was applied (1 = none)


def to_rgb(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 RGB of a decoded PIL image, alpha composited on white, and the alpha (None when opaque).

    16-bit and 32-bit grey are scaled to 8 bits (``v * 255 / 65535``, rounded), never clipped; palette
    transparency and ``LA``/``RGBA`` alpha become the mask.
    """
    mode = img.mode
    if mode in _WIDE_MODES:
        arr = np.asarray(img)
        if mode == "F":
            grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        else:
            # 16-bit PNGs open as I;16 (or I, 32-bit, holding 0..65535): full scale is 65535
            wide = np.clip(arr.astype(np.int64), 0, 65535)
            grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2), None
    has_alpha = mode in _ALPHA_MODES or "transparency" in img.info
    if not has_alpha:
        return np.asarray(img.convert("RGB")), None
    rgba = np.asarray(img.convert("RGBA"))
    alpha = rgba[..., 3]
    a = alpha.astype(np.uint16)[..., None]
    # straight alpha over a white background: c * a + 255 * (1 - a), in integers rounded to nearest
    rgb = ((rgba[..., :3].astype(np.uint16) * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
    return rgb, np.ascontiguousarray(alpha)


def decode_rgb(data: bytes, *, orient: bool = True, name: str = "image") -> Decoded:
    """Decode encoded bytes into :class:`Decoded` (see :func:`to_rgb`); :class:`ImageDecodeError`."""
    img, reason, detail = _decode(data, name)
    if img is None:
        raise ImageDecodeError(reason or RejectReason.UNREADABLE_IMAGE, detail or name)
    tag = 1
    if orient:
        img, tag = oriented(img)
    rgb, alpha = to_rgb(img)
    return Decoded(rgb, alpha, tag)


def load_rgb(path: str | Path, *, limit: int = MAX_FILE_BYTES) -> Decoded:
    """Read (bounded, regular files only) and decode one image file; :class:`ImageDecodeError` with the
    rejection reason when it cannot be."""
    path = Path(path)
    data, reason, detail = _read_bytes(path)
    if reason is not None or data is None:
        raise ImageDecodeError(reason or RejectReason.UNREADABLE, detail or printable_path(path.name))
    return decode_rgb(data, name=printable_path(path.name))


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
        img, reason, detail = _decode(data, printable_path(path.name))
        if img is not None:
            img = oriented(img)[0]  # the same frame as its (upright) image
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


def load_labelmap_ids(path: str | Path) -> np.ndarray:
    """Class ids ``uint8 [H, W]`` of a label-map file through the same bounded read, decode and
    orientation as ingest (palette indices, grey values, 1-bit as 0/1); :class:`ImageDecodeError`."""
    path = Path(path)
    data, reason, detail = _read_bytes(path)
    if reason is not None or data is None:
        raise ImageDecodeError(reason or RejectReason.UNREADABLE, f"label map {detail}")
    img, reason, detail = _decode(data, printable_path(path.name))
    if img is None:
        raise ImageDecodeError(RejectReason.LABELMAP_UNREADABLE, f"label map {detail}")
    ids, why = labelmap_ids(oriented(img)[0])
    if ids is None:
        raise ImageDecodeError(RejectReason.LABELMAP_UNREADABLE, f"label map {printable_path(path.name)}: {why}")
    return ids


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
