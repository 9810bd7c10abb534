"""VITON / CP-VTON / CP-VTON+ (256x192): ``data/{train,test}/image|cloth|cloth-mask|image-parse(-new)|pose``.

The ``data/`` level is optional (``{train,test}/...`` at the root works too).

* humans: ``image/<stem>.jpg`` (``NNNNNN_0``), id ``<split>/<stem>``; label map
  ``image-parse-new/<stem>.png`` (CP-VTON+) or ``image-parse/<stem>.png`` (CP-VTON), LIP/CIHP-20; pose
  ``pose/<stem>_keypoints.json`` (old OpenPose ``pose_keypoints``; the newer keys are read too).
* articles: ``cloth/<stem>.jpg`` (``NNNNNN_1``), id ``<split>/<stem>``; mask ``cloth-mask/<stem>.jpg``.
* pairs: ``*pairs*.txt`` in ``data/`` (or the root): ``train_pairs.txt``, ``test_pairs.txt``,
  ``test_pairs_same.txt``; split from the file name; paired when the two names share the ``NNNNNN``
  id (``000001_0`` wears ``000001_1``).
* person-to-person lists (PASTA-GAN / UPT: both names are person images, there is no cloth folder):
  a second name found in ``image/`` and not in ``cloth/`` makes a pair with ``article_id`` null and
  ``target_human_id`` = that person, the garment donor. The first name is the person to dress, the
  order PASTA-GAN's ``test_pairs.txt`` uses (``source target``, the target's garments are transferred).
* category: none in the layout: ``unknown`` unless ``--category``.
"""

from __future__ import annotations

from pathlib import Path

from curate.ingest.common import PairSpec, Scan, ScanOptions, escapes_root, first_file, read_pair_list, rel, stem_of
from curate.ingest.split_folders import IMAGE_SUFFIXES, SplitFolders
from curate.schema import Category

PARSE_DIRS = ("image-parse-new", "image-parse")
POSE_DIRS = ("pose",)


def data_root(src: Path) -> Path:
    return src / "data" if (src / "data").is_dir() else src


def _sample_id(stem: str) -> str:
    """``000001_0`` / ``000001_1`` -> ``000001``: the id shared by a person and the cloth they wear."""
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def scan(src: Path, options: ScanOptions) -> Scan:
    category = options.category or Category.UNKNOWN.value
    result = Scan()
    root = data_root(src)
    folders = SplitFolders(src, root, category, PARSE_DIRS, POSE_DIRS)
    folders.add_all_on_disk()
    for split_dir in folders.split_dirs:
        if (split_dir / "image-parse-new").is_dir() and (split_dir / "image-parse").is_dir():
            result.notes.append(f"{rel(split_dir, src)}: image-parse-new (CP-VTON+) used, image-parse not read")

    for pair_list in sorted(p for p in root.glob("*pairs*.txt") if p.is_file()):
        result.used_files.add(rel(pair_list, src))
        split, split_dir = folders.pair_list_split(pair_list, result.notes)
        if split_dir is None:
            continue
        for person, second in read_pair_list(pair_list, src, result.notes):
            hid = folders.add_human(split_dir, person)
            second_stem = stem_of(second)
            is_person = (
                not escapes_root(split_dir / "cloth", second, src)
                and first_file(split_dir / "cloth", second_stem, IMAGE_SUFFIXES) is None
                and first_file(split_dir / "image", second_stem, IMAGE_SUFFIXES) is not None
            )
            pair = PairSpec(
                pair_id=f"{pair_list.stem}/{stem_of(person)}--{second_stem}", human_id=hid, article_id=None,
                split=split, category=category, pair_list=rel(pair_list, src),
            )
            if is_person:
                pair.target_human_id = folders.add_human(split_dir, second)
            else:
                pair.article_id = folders.add_article(split_dir, second)
                pair.paired = _sample_id(stem_of(person)) == _sample_id(second_stem)
            result.pairs.append(pair)
    if options.category is None:
        result.notes.append("VITON has no category metadata: category=unknown (assert one with --category)")
    return folders.fill(result)
