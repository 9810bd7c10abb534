"""What VITON and VITON-HD share: ``<split>/image|cloth|cloth-mask|<parse>|<pose>`` folders and pair lists.

The two layouts differ only in folder names (parse, pose), where the pair lists live and how a pair list
line is read; :class:`SplitFolders` collects humans and articles by ``<split>/<stem>`` id for both.
"""

from __future__ import annotations

from pathlib import Path

from curate.ingest.common import (
    ArticleSpec, HumanSpec, Scan, escapes_root, first_dir, first_file, list_images, rel, split_from_name, stem_of,
)  # fmt: skip
from curate.schema import Split

IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg")
SPLIT_NAMES = ("train", "test", "val")


class SplitFolders:
    """Humans (``image/``) and articles (``cloth/``) of split folders, created on first mention.

    A name mentioned by a pair list but absent on disk still gets its row (the engine rejects it
    ``missing-file``), so the pair can say why it is unusable.
    """

    def __init__(self, src: Path, base: Path, category: str, parse_dirs: tuple[str, ...],
                 pose_dirs: tuple[str, ...]) -> None:
        self.src, self.base, self.category = src, base, category
        self.parse_dirs, self.pose_dirs = parse_dirs, pose_dirs
        self.split_dirs = [base / s for s in SPLIT_NAMES if (base / s).is_dir()]
        self.humans: dict[str, HumanSpec] = {}
        self.articles: dict[str, ArticleSpec] = {}

    def add_human(self, split_dir: Path, name: str) -> str:
        if escapes_root(split_dir / "image", name, self.src):
            # Its own id (the name as written): it must not alias a real file of the same stem. The engine
            # rejects it path-outside-root without opening anything.
            hid = f"{split_dir.name}/{name}"
            self.humans.setdefault(hid, HumanSpec(human_id=hid, path=rel(split_dir / "image" / name, self.src),
                                                  split=split_from_name(split_dir.name), category=self.category))
            return hid
        stem = stem_of(name)
        hid = f"{split_dir.name}/{stem}"
        if hid not in self.humans:
            image = first_file(split_dir / "image", stem, IMAGE_SUFFIXES) or split_dir / "image" / name
            parse_dir = first_dir(split_dir, *self.parse_dirs)
            pose_dir = first_dir(split_dir, *self.pose_dirs)
            self.humans[hid] = HumanSpec(
                human_id=hid, path=rel(image, self.src), split=split_from_name(split_dir.name),
                category=self.category, label_set="lip-20",
                labelmap_path=rel(parse_dir / f"{stem}.png", self.src) if parse_dir else None,
                pose_path=rel(pose_dir / f"{stem}_keypoints.json", self.src) if pose_dir else None,
            )
        return hid

    def add_article(self, split_dir: Path, name: str) -> str:
        if escapes_root(split_dir / "cloth", name, self.src):  # see add_human
            aid = f"{split_dir.name}/{name}"
            self.articles.setdefault(aid, ArticleSpec(article_id=aid, path=rel(split_dir / "cloth" / name, self.src),
                                                      split=split_from_name(split_dir.name), category=self.category))
            return aid
        stem = stem_of(name)
        aid = f"{split_dir.name}/{stem}"
        if aid not in self.articles:
            image = first_file(split_dir / "cloth", stem, IMAGE_SUFFIXES) or split_dir / "cloth" / name
            mask = first_file(split_dir / "cloth-mask", stem, IMAGE_SUFFIXES)
            self.articles[aid] = ArticleSpec(
                article_id=aid, path=rel(image, self.src), split=split_from_name(split_dir.name),
                category=self.category, cloth_mask_path=rel(mask, self.src) if mask else None,
            )
        return aid

    def add_all_on_disk(self) -> None:
        for split_dir in self.split_dirs:
            for image in list_images(split_dir / "image"):
                self.add_human(split_dir, image.name)
            for cloth in list_images(split_dir / "cloth"):
                self.add_article(split_dir, cloth.name)

    def pair_list_split(self, pair_list: Path, notes: list[str]) -> tuple[str, Path | None]:
        """The split a pair list names (``test_pairs.txt`` -> test) and its folder; None when unclear."""
        split = split_from_name(pair_list.name)
        if split != Split.UNKNOWN.value:
            return split, self.base / split
        if len(self.split_dirs) == 1:
            return split, self.split_dirs[0]
        notes.append(f"{pair_list.name}: cannot tell which split folder it lists; skipped")
        return split, None

    def fill(self, scan: Scan) -> Scan:
        scan.humans = list(self.humans.values())
        scan.articles = list(self.articles.values())
        return scan
