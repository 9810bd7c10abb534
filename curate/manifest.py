"""Reading and writing manifest tables: schema-checked, with the dataset root in the metadata, and
every save **one transaction**.

``DS/manifest`` is a symlink to a generation folder ``DS/.manifest-generations/g<N>/`` holding all three
tables. A save writes a complete new generation (the tables it changes, hard links to the others),
syncs it, and switches the link with one ``os.replace``: a reader sees all tables of one generation or
all of the next, never a mix, and a process killed anywhere leaves the previous generation in force.
:meth:`Manifest.load` resolves the link once and reads the three files from that one folder. The
generation before the current one is kept (a reader that resolved it just before the switch can still
finish); older ones and stale temporaries of killed writers are removed by the next save.
A ``DS/manifest`` that is still a plain folder (written before generations) is read as it is and
converted by the first save. On a file system that refuses symlinks (exFAT, some shares) the tables are
written into a plain folder one by one, each atomically, as before: no cross-table transaction there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curate import schema

MANIFEST_DIRNAME = "manifest"
GENERATIONS_DIRNAME = ".manifest-generations"
_GEN_RE = re.compile(r"g(\d{6,})")
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


def _table_bytes(table: str, df: pd.DataFrame, dataset_root: Path, layout: str) -> bytes:
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
    return sink.getvalue().to_pybytes()


def manifest_dir(ds: Path | str) -> Path:
    """The folder holding the current generation's tables (``DS/manifest`` resolved once)."""
    link = Path(ds) / MANIFEST_DIRNAME
    if link.is_symlink():
        return Path(ds) / os.readlink(link)
    return link


def _generation_number(folder: Path) -> int:
    m = _GEN_RE.fullmatch(folder.name)
    return int(m.group(1)) if m else -1


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is still atomic
    finally:
        os.close(fd)


def _switch(link: Path, target: str) -> None:
    """The commit point of a manifest transaction: point ``link`` at ``target`` with one rename."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.link.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    _fsync_dir(link.parent)


def _clean_stale(ds: Path, keep: set[str]) -> None:
    """Remove generations not in ``keep`` and temporaries left by killed writers."""
    gens = ds / GENERATIONS_DIRNAME
    if gens.is_dir():
        for entry in gens.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() and not entry.is_symlink() else entry.unlink(missing_ok=True)
    for entry in ds.glob(f".{MANIFEST_DIRNAME}.*.tmp"):
        if entry.is_symlink() or entry.is_file():
            entry.unlink(missing_ok=True)


def write_tables(ds: Path, frames: Mapping[str, pd.DataFrame], dataset_root: Path, layout: str = "") -> Path:
    """Write ``frames`` (table -> rows) as one transaction; tables not named keep their current content.

    Returns the new generation folder. Nothing is visible until the final switch of ``DS/manifest``.
    """
    ds = Path(ds)
    encoded = {t: _table_bytes(t, df, dataset_root, layout) for t, df in frames.items()}  # errors before any write
    link = ds / MANIFEST_DIRNAME
    gens = ds / GENERATIONS_DIRNAME
    gens.mkdir(parents=True, exist_ok=True)
    current = manifest_dir(ds) if (link.is_symlink() or link.is_dir()) else None
    if current is not None and not current.is_dir():
        current = None  # a dangling link (its generation was removed by hand): start afresh
    numbers = [_generation_number(p) for p in gens.iterdir()]
    new = gens / f"g{max([0, *numbers]) + 1:06d}"
    work = gens / f".{new.name}.{os.getpid()}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    for table in schema.TABLES:
        dest = work / f"{table}.parquet"
        if table in encoded:
            atomic_write_bytes(dest, encoded[table])
        elif current is not None and (current / f"{table}.parquet").is_file():
            try:
                os.link(current / f"{table}.parquet", dest)  # unchanged table: same bytes, no copy
            except OSError:
                shutil.copy2(current / f"{table}.parquet", dest)
    _fsync_dir(work)
    os.replace(work, new)
    _fsync_dir(gens)
    target = f"{GENERATIONS_DIRNAME}/{new.name}"
    if link.is_dir() and not link.is_symlink():
        # First save over a plain folder (older tryon-bench): move it aside, then link. Readers in that
        # instant see no manifest (an error saying to ingest), never a mixed one.
        aside = gens / f"g{0:06d}-plain"
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(link, aside)
        previous = aside.name
    else:
        previous = current.name if current is not None else None
    try:
        _switch(link, target)
    except OSError as exc:
        if link.is_symlink() or not _symlinks_unsupported(exc):
            raise
        # A file system without symlinks (exFAT, some network shares): the tables go into the plain folder
        # one by one, each atomic, as before generations existed; the transaction guarantee is lost there.
        if not link.exists() and previous and (gens / previous).is_dir() and previous.endswith("-plain"):
            os.replace(gens / previous, link)
        for table in schema.TABLES:
            atomic_write_bytes(link / f"{table}.parquet", (new / f"{table}.parquet").read_bytes())
        shutil.rmtree(new, ignore_errors=True)
        return link
    _clean_stale(ds, {new.name} | ({previous} if previous else set()))
    return new


def _symlinks_unsupported(exc: OSError) -> bool:
    import errno

    return exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS) or os.name == "nt"


def write_table(ds: Path, table: str, df: pd.DataFrame, dataset_root: Path, layout: str = "") -> Path:
    """Write one table (a transaction of one: the others are kept as they are)."""
    return write_tables(ds, {table: df}, dataset_root, layout) / f"{table}.parquet"


def _read_table_at(folder: Path, ds: Path, table: str) -> tuple[pd.DataFrame, dict[str, str]]:
    path = folder / f"{table}.parquet"
    if not path.is_file():
        raise ManifestError(f"no manifest table at {Path(ds) / MANIFEST_DIRNAME / path.name}; run `curate ingest SRC --out {ds}` first")
    try:
        arrow = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ManifestError(f"{path} is not a readable manifest table ({exc}); re-run `curate ingest SRC --out {ds}`") from None
    meta = {k.decode(): v.decode() for k, v in (arrow.schema.metadata or {}).items() if k.startswith(b"tryon_bench.")}
    version = meta.get("tryon_bench.schema_version")
    if version != schema.SCHEMA_VERSION:
        raise ManifestError(f"{path} has schema version {version!r}; this tryon-bench reads {schema.SCHEMA_VERSION}")
    df = arrow.to_pandas(types_mapper=_nullable_types)
    return df, {k.removeprefix("tryon_bench."): v for k, v in meta.items()}


def read_table(ds: Path, table: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Return the table as pandas (nullable dtypes) and its metadata (schema_version, dataset_root, layout)."""
    return _read_table_at(manifest_dir(ds), Path(ds), table)


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
    generation: Path | None = dataclasses.field(default=None, compare=False, repr=False)  # folder it was read from

    @classmethod
    def load(cls, ds: Path | str) -> "Manifest":
        ds = Path(ds)
        folder = manifest_dir(ds)  # resolved once: all three tables come from one generation
        frames = {}
        meta: dict[str, str] = {}
        for table in schema.TABLES:
            frames[table], meta = _read_table_at(folder, ds, table)
        m = cls(ds=ds, root=Path(meta["dataset_root"]), layout=meta.get("layout", ""), **frames)
        m.generation = folder
        return m

    def table(self, name: str) -> pd.DataFrame:
        schema.columns(name)  # validates the name
        return getattr(self, name)

    def save(self, *tables: str) -> None:
        """Write back the named tables (all when none named) as one transaction (see the module)."""
        names = tables or schema.TABLES
        self.generation = write_tables(self.ds, {n: self.table(n) for n in names}, self.root, self.layout)

    def resolve(self, rel: str | None) -> Path | None:
        """Absolute path of a manifest path column value."""
        if rel is None or (isinstance(rel, float)) or pd.isna(rel):
            return None
        return self.root / rel

    def content_hash(self) -> str:
        """sha256 over the three parquet files: the dataset identity recorded in run provenance."""
        h = hashlib.sha256()
        folder = self.generation or manifest_dir(self.ds)
        for table in schema.TABLES:
            h.update((folder / f"{table}.parquet").read_bytes())
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
