"""The manifest contract: every table, column, dtype and the schema version, in one place.

A dataset directory ``DS`` produced by ``curate ingest`` holds ``DS/manifest/{humans,articles,pairs}.parquet``.
Every path column is relative to the *dataset root* (the ingested source folder), which is stored in
each parquet file's key/value metadata together with the schema version and the table name. Later
stages (dedupe, filter, ...) add their columns to the same tables; the columns they own are declared
here too, so the whole contract is readable in one file.

Rows are never dropped: a bad input is a row with ``status == "rejected"`` and a ``reject_reason``.
Stage verdicts (duplicates, filters) live in their own columns so that re-running one stage with other
options never erases another stage's decision; :func:`curate.manifest.usable_pairs` combines them.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

import pyarrow as pa

SCHEMA_VERSION: Final[str] = "1.0"
TABLES: Final[tuple[str, ...]] = ("humans", "articles", "pairs")

# parquet key/value metadata keys
META_SCHEMA_VERSION: Final[bytes] = b"tryon_bench.schema_version"
META_DATASET_ROOT: Final[bytes] = b"tryon_bench.dataset_root"
META_TABLE: Final[bytes] = b"tryon_bench.table"
META_LAYOUT: Final[bytes] = b"tryon_bench.layout"


class Status(str, enum.Enum):
    OK = "ok"
    REJECTED = "rejected"


class Category(str, enum.Enum):
    """Garment category of an article, and the category of the pair it is part of."""

    UPPER = "upper_body"
    LOWER = "lower_body"
    DRESSES = "dresses"
    UNKNOWN = "unknown"


class Split(str, enum.Enum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"
    UNKNOWN = "unknown"


class PoseFormat(str, enum.Enum):
    """How the pose file on disk is encoded (the manifest always stores COCO-18 after conversion)."""

    BODY25 = "openpose-body25"  # people[0].pose_keypoints_2d, 75 values
    COCO18 = "openpose-coco18"  # people[0].pose_keypoints_2d with 54 values
    COCO18_LEGACY = "openpose-coco18-legacy"  # people[0].pose_keypoints (old OpenPose)
    DRESSCODE = "dresscode"  # {"keypoints": [[x, y, score, id] x 18]} in a half-resolution frame


class RejectReason(str, enum.Enum):
    """Every reason a row can be rejected at ingest. Stages record their own reasons in their columns."""

    UNREADABLE_IMAGE = "unreadable-image"  # PIL cannot identify / decode it
    TRUNCATED_IMAGE = "truncated-image"  # header fine, data cut short
    EMPTY_FILE = "empty-file"  # zero bytes
    MISSING_FILE = "missing-file"  # listed (pair list, CSV) but not on disk
    MISSING_PARTNER = "missing-partner"  # a pair whose human or article is absent or rejected
    POSE_UNKNOWN_FORMAT = "pose-unknown-format"  # JSON that matches none of the known pose shapes
    POSE_UNREADABLE = "pose-unreadable"  # not JSON / not UTF-8
    LABELMAP_UNREADABLE = "labelmap-unreadable"
    LABELMAP_UNKNOWN_IDS = "labelmap-unknown-ids"  # pixel ids outside the label set
    LABELMAP_SIZE_MISMATCH = "labelmap-size-mismatch"  # label map and image differ in size
    IMAGE_TOO_SMALL = "image-too-small"
    PATH_NOT_UTF8 = "path-not-utf8"  # file name bytes are not UTF-8: cannot be stored or reopened by path
    # hostile input (issue 18; docs/ingest.md has an example of each)
    PATH_OUTSIDE_ROOT = "path-outside-root"  # a listed path (pair list, CSV) escapes the dataset root: never opened
    NOT_REGULAR_FILE = "not-regular-file"  # a FIFO, device, socket or folder where a file should be: never opened
    FILE_TOO_LARGE = "file-too-large"  # larger than curate.imageio.MAX_FILE_BYTES (poses: curate.poses.MAX_POSE_BYTES)
    UNREADABLE = "unreadable"  # exists but cannot be opened or read (permission denied, I/O error)
    BROKEN_SYMLINK = "broken-symlink"  # a symlink whose target does not exist, or a symlink loop


# The keep policy of dedupe, recorded with every group (``dup_keep_policy`` column).
DEDUPE_KEEP_POLICY: Final[str] = "highest-resolution,largest-file,first-seen"


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    nullable: bool = True
    stage: str = "ingest"  # which stage writes it


_S = pa.string()
_I32 = pa.int32()
_I64 = pa.int64()
_F32 = pa.float32()
_F64 = pa.float64()
_B = pa.bool_()

# Columns shared by the two image tables (humans and articles).
_IMAGE_COLUMNS: tuple[Column, ...] = (
    Column("path", _S, "image path relative to the dataset root", nullable=False),
    Column("sha256", _S, "sha256 of the file's bytes (hex); null when unreadable"),
    Column("size_bytes", _I64, "file size in bytes"),
    Column("width", _I32, "decoded width in pixels"),
    Column("height", _I32, "decoded height in pixels"),
    Column("orientation", _I32, "EXIF orientation tag applied at decode (1 = upright; width/height are after it)"),
    Column("category", _S, "Category value", nullable=False),
    Column("split", _S, "Split value from the source layout", nullable=False),
    Column("source_layout", _S, "layout the row was read from (viton-hd, dresscode, ...)", nullable=False),
    Column("status", _S, "Status value", nullable=False),
    Column("reject_reason", _S, "RejectReason value, null when status == ok"),
    Column("reject_detail", _S, "human-readable detail of the rejection (file, ids, sizes)"),
)

# Duplicate columns written by `curate dedupe` on humans and articles.
_DEDUPE_COLUMNS: tuple[Column, ...] = (
    Column("dup_group", _I64, "duplicate group id (rows sharing it are duplicates); null = unique", stage="dedupe"),
    Column("dup_keep", _B, "true for the member of its group that is kept (and for unique rows)", stage="dedupe"),
    Column("dup_of", _S, "id of the kept member this row duplicates", stage="dedupe"),
    Column("dup_reason", _S, "exact-bytes | same-pixels | near-duplicate", stage="dedupe"),
    Column("dup_distance", _S, "JSON with the hash distances that decided a near duplicate", stage="dedupe"),
    Column("dup_keep_policy", _S, "the keep policy in force when the group was formed", stage="dedupe"),
)

# Person-level verdicts written by `curate filter` on humans: judged once per person, read by every pair
# of that person (the pairs' filter_* columns are derived from them and the pair's article).
_PERSON_FILTER_COLUMNS: tuple[Column, ...] = (
    Column("filter_view", _S, "verdict: front | side | back | unknown", stage="filter"),
    Column("filter_upper_garments", _S, "upper-body garments worn, '+'-joined (upper, outer, dress; top, open-layer from pixels); '' = none", stage="filter"),
    Column("filter_upper_count", _I32, "number of upper-body garments worn (an open layer counts one)", stage="filter"),
    Column("filter_layered", _S, "yes | no | unknown: two upper garments at once (coat over a top, open layer)", stage="filter"),
    Column("filter_scarf", _S, "yes | no | unknown", stage="filter"),
    Column("filter_lower_only_outfit", _S, "yes | no | unknown: nothing worn on the upper body", stage="filter"),
    Column("filter_person_evidence", _S, "JSON: per verdict, the source, scores and signals that decided", stage="filter"),
    Column("filter_person_reason", _S, "back-view | side-view | extra-garments: why the person is unusable; null = kept", stage="filter"),
)

HUMANS: tuple[Column, ...] = (
    Column("human_id", _S, "unique id within the dataset (layout-specific stem, split-qualified)", nullable=False),
    *_IMAGE_COLUMNS,
    Column("labelmap_path", _S, "parsing label map path (relative), null when absent"),
    Column("label_set", _S, "label set of the label map (see curate.labelsets)"),
    Column("pose_path", _S, "pose file path (relative), null when absent"),
    Column("pose_format", _S, "PoseFormat of the file on disk"),
    Column(
        "keypoints",
        pa.list_(_F32),
        "COCO-18 keypoints normalised to image pixels, flat [x0,y0,c0,...] (54 floats); null when no pose",
    ),
    *_DEDUPE_COLUMNS,
    *_PERSON_FILTER_COLUMNS,
)

ARTICLES: tuple[Column, ...] = (
    Column("article_id", _S, "unique id within the dataset", nullable=False),
    *_IMAGE_COLUMNS,
    Column("cloth_mask_path", _S, "cloth (article) mask path (relative), null when absent"),
    Column("labelmap_path", _S, "article label map (e.g. FGVC6 decoded masks, garment parsing)"),
    Column("label_set", _S, "label set of the article label map"),
    *_DEDUPE_COLUMNS,
)

PAIRS: tuple[Column, ...] = (
    Column("pair_id", _S, "unique id within the dataset", nullable=False),
    Column("human_id", _S, "human row id", nullable=False),
    Column("article_id", _S, "article row id; null for person-to-person pairs"),
    Column("target_human_id", _S, "for person-to-person garment transfer (PASTA-GAN): the garment donor"),
    Column("paired", _B, "true when the human wears this article (reconstruction pair)", nullable=False),
    Column("category", _S, "Category value", nullable=False),
    Column("split", _S, "Split value", nullable=False),
    Column("source_layout", _S, "layout the pair list was read from", nullable=False),
    Column("pair_list", _S, "pair-list file (relative) the pair came from; null when inferred"),
    Column("status", _S, "Status value", nullable=False),
    Column("reject_reason", _S, "RejectReason value, null when status == ok"),
    Column("reject_detail", _S, "human-readable detail"),
    # dedupe
    Column("dup_group", _I64, "pair duplicate group: human and article both duplicates", stage="dedupe"),
    Column("dup_keep", _B, "kept member of its pair group (true for unique pairs)", stage="dedupe"),
    Column("dup_of", _S, "pair id of the kept member", stage="dedupe"),
    # filter
    Column("filter_back_view", _S, "verdict: front | side | back | unknown", stage="filter"),
    Column("filter_lower_only", _S, "verdict: ok | lower-only-product | unknown", stage="filter"),
    Column("filter_extra_garments", _S, "verdict: ok | extra-garments | unknown", stage="filter"),
    Column("filter_evidence", _S, "JSON: per filter, the scores, labels and keypoints that decided", stage="filter"),
    Column("filter_reason", _S, "the one reason the filter stage rejects the pair; null = kept", stage="filter"),
)

SCHEMAS: Final[dict[str, tuple[Column, ...]]] = {"humans": HUMANS, "articles": ARTICLES, "pairs": PAIRS}
ID_COLUMN: Final[dict[str, str]] = {"humans": "human_id", "articles": "article_id", "pairs": "pair_id"}


def columns(table: str) -> tuple[Column, ...]:
    try:
        return SCHEMAS[table]
    except KeyError:
        raise KeyError(f"unknown manifest table {table!r}; valid: {', '.join(TABLES)}") from None


def column_names(table: str) -> list[str]:
    return [c.name for c in columns(table)]


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in columns(table)])
