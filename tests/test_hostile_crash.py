"""A kill between any two writes loses nothing (issue 18): fault injection at the write functions.

Every file a curate stage writes goes through ``curate.manifest.atomic_write_bytes`` and every manifest
transaction commits through ``curate.manifest._switch``. The fault raises at the k-th such call (before it
writes), for every k the stage reaches; after each "kill" a reader sees the whole previous manifest or
the whole new one (never a mix), and re-running the stage gives the tables of an uninterrupted run,
byte for byte. One case also kills a real process (``os._exit``) at the manifest commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

import curate.manifest as manifest_mod
from curate.manifest import GENERATIONS_DIRNAME, Manifest, ManifestError
from curate.schema import TABLES

REPO = Path(__file__).resolve().parents[1]


class Killed(BaseException):
    """Not an Exception: no ``except Exception`` in a stage can swallow it, as nothing survives a SIGKILL."""


def _patch_writers(monkeypatch: pytest.MonkeyPatch, on_call: Callable[[], None]) -> None:
    orig_write, orig_switch = manifest_mod.atomic_write_bytes, manifest_mod._switch

    def write(*a, **k):
        on_call()
        return orig_write(*a, **k)

    def switch(*a, **k):
        on_call()
        return orig_switch(*a, **k)

    # modules that imported the name keep their own reference: patch it wherever it is bound
    for mod in list(sys.modules.values()):
        if getattr(mod, "atomic_write_bytes", None) is orig_write:
            monkeypatch.setattr(mod, "atomic_write_bytes", write)
    monkeypatch.setattr(manifest_mod, "_switch", switch)


def count_writes(monkeypatch: pytest.MonkeyPatch, run: Callable[[], object]) -> int:
    calls = [0]

    def tick() -> None:
        calls[0] += 1

    with monkeypatch.context() as mp:
        _patch_writers(mp, tick)
        run()
    return calls[0]


def run_killed_at(monkeypatch: pytest.MonkeyPatch, k: int, run: Callable[[], object]) -> None:
    calls = [0]

    def tick() -> None:
        calls[0] += 1
        if calls[0] == k:
            raise Killed(f"write {k}")

    with monkeypatch.context() as mp:
        _patch_writers(mp, tick)
        with pytest.raises(Killed):
            run()


def tables(ds: Path) -> dict[str, bytes] | None:
    """The bytes of the three tables a reader sees now (None: no manifest yet)."""
    try:
        m = Manifest.load(ds)
    except ManifestError:
        return None
    return {t: (m.generation / f"{t}.parquet").read_bytes() for t in TABLES}


def assert_clean(ds: Path) -> None:
    gens = ds / GENERATIONS_DIRNAME
    names = sorted(p.name for p in gens.iterdir())
    assert len(names) <= 2 and not any(n.endswith(".tmp") for n in names), names
    assert not list(ds.glob(".manifest.*.tmp")) and not list((ds / "manifest").glob("*.tmp"))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from curate.synth import generate

    src = tmp_path_factory.mktemp("crash") / "src"
    generate(src, n=16, size=(64, 48), seed=3)  # with injected duplicates: dedupe has groups to lose
    return src


def _ingest(src: Path, ds: Path) -> Callable[[], object]:
    from curate.ingest import ingest

    return lambda: ingest(src, ds)


def _dedupe(ds: Path) -> Callable[[], object]:
    from curate.dedupe.command import run_dedupe

    return lambda: run_dedupe(ds)


def _filter(ds: Path) -> Callable[[], object]:
    from curate.filters.command import apply_filters
    from curate.filters.pipeline import FilterOptions

    return lambda: apply_filters(ds, FilterOptions(detectors=False))


def _check_stage(monkeypatch, tmp_path: Path, prepare: Callable[[Path], None], stage: Callable[[Path], Callable[[], object]],
                 name: str) -> int:
    ref = tmp_path / f"{name}-ref"
    prepare(ref)
    before = tables(ref)
    n = count_writes(monkeypatch, stage(ref))
    after = tables(ref)
    assert after is not None and n >= 2
    if before is not None and name != "reingest":
        assert before != after  # the stage changes the manifest: a lost write would show
    for k in range(1, n + 1):
        ds = tmp_path / f"{name}-{k}"
        prepare(ds)
        run_killed_at(monkeypatch, k, stage(ds))
        seen = tables(ds)
        assert seen in (before, after), f"{name} killed at write {k}/{n}: a mixed manifest is visible"
        stage(ds)()  # the re-run
        assert tables(ds) == after, f"{name} killed at write {k}/{n}: the re-run differs from an uninterrupted run"
        assert_clean(ds)
        shutil.rmtree(ds)
    return n


def test_ingest_killed_between_writes(monkeypatch, tmp_path: Path, source: Path) -> None:
    n = _check_stage(monkeypatch, tmp_path, lambda ds: None, lambda ds: _ingest(source, ds), "ingest")
    assert n >= 3  # tables, commit, report


def test_dedupe_killed_between_writes(monkeypatch, tmp_path: Path, source: Path) -> None:
    _check_stage(monkeypatch, tmp_path, lambda ds: _ingest(source, ds)(), _dedupe, "dedupe")


def test_filter_killed_between_writes(monkeypatch, tmp_path: Path, source: Path) -> None:
    def prepare(ds: Path) -> None:
        _ingest(source, ds)()
        _dedupe(ds)()

    _check_stage(monkeypatch, tmp_path, prepare, _filter, "filter")


def test_reingest_of_a_deduped_dataset_killed_keeps_verdicts_consistent(monkeypatch, tmp_path: Path, source: Path) -> None:
    """The audit's case: re-ingest over dedupe verdicts, killed between table writes, used to drop one
    table's verdicts and keep the others'; then triplets leaked duplicate groups across splits."""
    from curate.triplets import build_triplets

    def prepare(ds: Path) -> None:
        _ingest(source, ds)()
        _dedupe(ds)()

    n = _check_stage(monkeypatch, tmp_path, prepare, lambda ds: _ingest(source, ds), "reingest")
    ds = tmp_path / "final"
    prepare(ds)
    run_killed_at(monkeypatch, max(1, n // 2), _ingest(source, ds))
    m = Manifest.load(ds)
    assert m.humans["dup_keep"].notna().any() and m.articles["dup_keep"].notna().any()  # verdicts in every table
    t = build_triplets(ds).triplets
    groups = m.articles.set_index("article_id")["dup_group"].dropna()
    split_of = t.drop_duplicates("article_id").set_index("article_id")["split"]
    by_group = split_of[split_of.index.isin(groups.index)].groupby(groups.reindex(split_of.index).dropna()).nunique()
    assert (by_group <= 1).all()


KILL_AT_COMMIT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import curate.manifest as mm
    def die(*a, **k):
        os._exit(137)  # a real kill: no cleanup, no finally
    mm._switch = die
    from curate.ingest import ingest
    ingest(Path(sys.argv[1]), Path(sys.argv[2]))
""")


def test_real_kill_at_the_commit_point(tmp_path: Path, source: Path) -> None:
    from curate.ingest import ingest

    ref = tmp_path / "ref"
    ingest(source, ref)
    ds = tmp_path / "ds"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", KILL_AT_COMMIT, str(source), str(ds)], env=env, timeout=300)
    assert res.returncode == 137
    assert tables(ds) is None  # the whole generation was written but never switched in
    assert any(p.name.startswith(".g") or p.name.startswith("g") for p in (ds / GENERATIONS_DIRNAME).iterdir())
    ingest(source, ds)
    assert tables(ds) == tables(ref)
    assert_clean(ds)


def test_plain_manifest_folder_of_older_versions_is_read_and_converted(tmp_path: Path, source: Path) -> None:
    from curate.ingest import ingest

    ingest(source, tmp_path / "new")
    old = tmp_path / "old"
    (old / "manifest").mkdir(parents=True)
    for t in TABLES:  # the layout before generations: three files in a plain folder
        shutil.copy(Manifest.load(tmp_path / "new").generation / f"{t}.parquet", old / "manifest" / f"{t}.parquet")
    before = tables(old)
    m = Manifest.load(old)
    assert m.content_hash() == Manifest.load(tmp_path / "new").content_hash()
    m.save("pairs")
    assert (old / "manifest").is_symlink()
    now = tables(old)
    assert now["humans"] == before["humans"] and now["articles"] == before["articles"]  # linked, not rewritten
    assert Manifest.load(old).pairs.equals(m.pairs)
    m.pairs["filter_reason"] = "back-view"
    m.save("pairs")
    after = Manifest.load(old)
    assert (after.pairs["filter_reason"] == "back-view").all() and len(after.humans) == len(m.humans)
    assert_clean(old)


def test_file_systems_without_symlinks_keep_a_plain_manifest(monkeypatch, tmp_path: Path, source: Path) -> None:
    """exFAT or a share that refuses symlinks: the tables are still written (each atomically, no
    transaction there), read back, and converted to generations once links work."""
    import errno

    from curate.ingest import ingest

    real = os.symlink

    def refuse(*a, **k):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", refuse)
    ingest(source, tmp_path / "ds")
    link = tmp_path / "ds" / "manifest"
    assert link.is_dir() and not link.is_symlink()
    m = Manifest.load(tmp_path / "ds")
    m.pairs["filter_reason"] = "back-view"
    m.save("pairs")
    plain = Manifest.load(tmp_path / "ds")
    assert (plain.pairs["filter_reason"] == "back-view").all()
    monkeypatch.setattr(os, "symlink", real)
    plain.save("pairs")
    assert link.is_symlink() and Manifest.load(tmp_path / "ds").pairs.equals(plain.pairs)
