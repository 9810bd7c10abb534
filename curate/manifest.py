"""Reading and writing manifest tables: schema-checked, atomic, with the dataset root in the metadata."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curate import schema

MANIFEST_DIRNAME = "manifest"
_UMASK = os.umask(0)
os.umask(_UMASK)


class ManifestError(RuntimeError):
    """A manifest is missing, of another schema version, or does not match the schema."""


def _coerce(df: pd.DataFrame, table: str) -> pa.Table:
    """Order, complete and type-check ``df`` against the table's schema.

    Stage columns a frame does not have yet are added as nulls; unknown columns are an error so a typo
    in a stage never silently creates a column nobody reads.
    """
    names = schema.column_names(table)
    unknown = [c for c in df.columns if c not in names]
    if unknown:
        raise ManifestError(f"{table}: columns not in schema {schema.SCHEMA_VERSION}: {unknown}")
    df = df.copy()
    for col in names:
        if col not in df.columns:
            df[col] = None
    df = df[names]
    for col in schema.columns(table):
        if not col.nullable and df[col.name].isna().any():
            bad = df.loc[df[col.name].isna(), schema.ID_COLUMN[table]].head(5).tolist()
            raise ManifestError(f"{table}.{col.name} must not be null (rows {bad})")
    try:
        return pa.Table.from_pandas(df, schema=schema.arrow_schema(table), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ManifestError(f"{table}: does not match schema {schema.SCHEMA_VERSION}: {exc}") from exc


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs should have the user's usual mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(ds: Path, table: str, df: pd.DataFrame, dataset_root: Path, layout: str = "") -> Path:
    """Write one table atomically; ``dataset_root`` is stored so relative paths can be resolved."""
    arrow = _coerce(df, table)
    meta = {
        schema.META_SCHEMA_VERSION: schema.SCHEMA_VERSION.encode(),
        schema.META_DATASET_ROOT: str(Path(dataset_root).resolve()).encode(),
        schema.META_TABLE: table.encode(),
        schema.META_LAYOUT: layout.encode(),
    }
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **meta})
    sink = pa.BufferOutputStream()
    pq.write_table(arrow, sink, compression="zstd")
    out = Path(ds) / MANIFEST_DIRNAME / f"{table}.parquet"
    atomic_write_bytes(out, sink.getvalue().to_pybytes())
    return out


def read_table(ds: Path, table: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Return the table as pandas (nullable dtypes) and its metadata (schema_version, dataset_root, layout)."""
    path = Path(ds) / MANIFEST_DIRNAME / f"{table}.parquet"
    if not path.is_file():
        raise ManifestError(f"no manifest table at {path}; run `curate ingest SRC --out {ds}` first")
    arrow = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in (arrow.schema.metadata or {}).items() if k.startswith(b"tryon_bench.")}
    version = meta.get("tryon_bench.schema_version")
    if version != schema.SCHEMA_VERSION:
        raise ManifestError(f"{path} has schema version {version!r}; this tryon-bench reads {schema.SCHEMA_VERSION}")
    df = arrow.to_pandas(types_mapper=_nullable_types)
    return df, {k.removeprefix("tryon_bench."): v for k, v in meta.items()}


def _nullable_types(t: pa.DataType):
    mapping = {
        pa.string(): pd.StringDtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.float32(): pd.Float32Dtype(),
        pa.float64(): pd.Float64Dtype(),
    }
    return mapping.get(t)


@dataclasses.dataclass
class Manifest:
    """All three tables of a dataset directory plus the dataset root their paths are relative to."""

    ds: Path
    root: Path
    layout: str
    humans: pd.DataFrame
    articles: pd.DataFrame
    pairs: pd.DataFrame

    @classmethod
    def load(cls, ds: Path | str) -> "Manifest":
        ds = Path(ds)
        frames = {}
        meta: dict[str, str] = {}
        for table in schema.TABLES:
            frames[table], meta = read_table(ds, table)
        return cls(ds=ds, root=Path(meta["dataset_root"]), layout=meta.get("layout", ""), **frames)

    def table(self, name: str) -> pd.DataFrame:
        schema.columns(name)  # validates the name
        return getattr(self, name)

    def save(self, *tables: str) -> None:
        """Write back the named tables (all when none named), atomically each."""
        for name in tables or schema.TABLES:
            write_table(self.ds, name, self.table(name), self.root, self.layout)

    def resolve(self, rel: str | None) -> Path | None:
        """Absolute path of a manifest path column value."""
        if rel is None or (isinstance(rel, float)) or pd.isna(rel):
            return None
        return self.root / rel

    def content_hash(self) -> str:
        """sha256 over the three parquet files: the dataset identity recorded in run provenance."""
        h = hashlib.sha256()
        for table in schema.TABLES:
            h.update((self.ds / MANIFEST_DIRNAME / f"{table}.parquet").read_bytes())
        return h.hexdigest()


def usable_pairs(m: Manifest) -> pd.DataFrame:
    """Pairs every stage so far lets through: ingest ok, not a dropped duplicate, not rejected by filters."""
    p = m.pairs
    keep = p["status"] == schema.Status.OK.value
    keep &= p["dup_keep"].fillna(True).astype(bool)
    keep &= p["filter_reason"].isna()
    return p[keep]


def status_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Counts by status and reason (the table printed at the end of every ingest)."""
    reasons = df["reject_reason"].astype("object").where(df["reject_reason"].notna(), "")
    return (
        pd.DataFrame({"status": df["status"].astype("object"), "reason": reasons})
        .value_counts()
        .rename("count")
        .reset_index()
        .sort_values(["status", "count"], ascending=[True, False], ignore_index=True)
    )
