"""Shared fixtures: the real sample data beside the repo and a small synthetic dataset ingested once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _real_root() -> Path:
    # CI clones the repo with shared/ beside it; TRYON_REAL_DATA points elsewhere when needed.
    env = os.environ.get("TRYON_REAL_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_root() -> Path:
    root = _real_root()
    if not (root / "SOURCES.md").is_file():
        pytest.fail(f"real sample data not found at {root} (set TRYON_REAL_DATA to the shared/data/real folder)")
    return root


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic VITON-HD-layout dataset with every injected case (read-only for tests)."""
    from curate.synth import generate

    out = tmp_path_factory.mktemp("synth") / "src"
    generate(out, n=120, size=(128, 96), seed=7)
    return out


@pytest.fixture(scope="session")
def synth_ds(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`synth_root` ingested into a manifest. Tests that write stage columns must copy it first."""
    from curate.ingest import ingest

    ds = tmp_path_factory.mktemp("synth_ds") / "ds"
    ingest(synth_root, ds, layout="viton-hd")
    return ds


@pytest.fixture(scope="session")
def curated_ds(synth_ds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's synthetic dataset with triplets and 64x48 smis-8 arrays (the tiny presets' size)."""
    import shutil

    from curate.labelmaps import build_arrays
    from curate.triplets import build_triplets

    ds = tmp_path_factory.mktemp("zoo_cli") / "ds"
    shutil.copytree(synth_ds, ds)
    build_triplets(ds, seed=0)
    build_arrays(ds, (64, 48), "smis-8")
    return ds


@pytest.fixture(scope="session")
def synth_images(synth_root: Path) -> dict[str, list[Path]]:
    humans = sorted((synth_root / "train" / "image").glob("*.jpg"))
    cloth = sorted((synth_root / "train" / "cloth").glob("*.jpg"))
    # 8 images a set: enough to separate people from flat articles, small enough for a 2-core CI box
    return {"a": humans[0:16:2], "b": humans[1:16:2], "cloth": cloth[:8]}
