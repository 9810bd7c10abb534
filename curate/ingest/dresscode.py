"""Dress Code: ``<upper_body|lower_body|dresses>/{images,keypoints,label_maps}`` plus per-category pair lists.

* humans: ``images/NNNNNN_0.jpg``, id ``<category>/NNNNNN_0``; label map ``label_maps/NNNNNN_4.png``
  (DressCode-18); pose ``keypoints/NNNNNN_2.json`` (``[x, y, score, id]`` in the 384x512 frame, scaled to
  the image size by ``curate.poses``). A person whose label map or keypoints exist but whose image does
  not is still a row (``missing-file``), so every file of the source is accounted for.
* articles: ``images/NNNNNN_1.jpg``, id ``<category>/NNNNNN_1``; the official release has no cloth mask,
  a ``cloth_mask/`` (or ``cloth-mask/``, ``masks/``) folder that derived copies add is read.
* pairs: ``train_pairs.txt``, ``test_pairs_paired.txt``, ``test_pairs_unpaired.txt`` (any ``*pairs*.txt``)
  in each category folder; whitespace-separated; split from the file name; paired when the two names
  share the ``NNNNNN`` id. Pair id ``<category>/<list stem>/<person>--<garment>``. Root-level lists (all
  categories in one file) are read only when no category folder has its own: each pair goes to the
  category folder holding its person.
* category: the folder (metadata, as in the official loader), on humans, articles and pairs.
* split of a person/garment: the split of the first pair list that names it, else unknown.
"""

from __future__ import annotations

from pathlib import Path

from curate.ingest.common import (
    ArticleSpec, HumanSpec, PairSpec, Scan, ScanOptions, escapes_root, first_dir, first_file, list_images,
    read_pair_list, rel, split_from_name, stem_of,
)  # fmt: skip
from curate.schema import Split

CATEGORY_DIRS = ("upper_body", "lower_body", "dresses")
CLOTH_MASK_DIRS = ("cloth_mask", "cloth-mask", "masks")  # not in the official release; derived copies add them
HUMAN_SUFFIX, ARTICLE_SUFFIX, POSE_SUFFIX, LABEL_SUFFIX = "_0", "_1", "_2", "_4"


def _base(stem: str) -> str:
    """``048462_0`` -> ``048462`` (the Dress Code sample id shared by all files of one sample)."""
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


class _CategoryFolder:
    """Humans and articles of one category folder, created on first mention (by image or annotation)."""

    def __init__(self, src: Path, category: str) -> None:
        self.src, self.category, self.dir = src, category, src / category
        self.mask_dir = first_dir(self.dir, *CLOTH_MASK_DIRS)
        self.humans: dict[str, HumanSpec] = {}
        self.articles: dict[str, ArticleSpec] = {}

    def human(self, base: str, image_name: str | None = None) -> HumanSpec:
        if base not in self.humans:
            name = image_name or f"{base}{HUMAN_SUFFIX}.jpg"
            self.humans[base] = HumanSpec(
                human_id=f"{self.category}/{stem_of(name)}", path=rel(self.dir / "images" / name, self.src),
                category=self.category, label_set="dresscode-18",
                labelmap_path=rel(self.dir / "label_maps" / f"{base}{LABEL_SUFFIX}.png", self.src),
                pose_path=rel(self.dir / "keypoints" / f"{base}{POSE_SUFFIX}.json", self.src),
            )
        return self.humans[base]

    def article(self, base: str, image_name: str | None = None) -> ArticleSpec:
        if base not in self.articles:
            name = image_name or f"{base}{ARTICLE_SUFFIX}.jpg"
            mask = first_file(self.mask_dir, stem_of(name), (".png", ".jpg"))
            self.articles[base] = ArticleSpec(
                article_id=f"{self.category}/{stem_of(name)}", path=rel(self.dir / "images" / name, self.src),
                category=self.category, cloth_mask_path=rel(mask, self.src) if mask else None,
            )
        return self.articles[base]

    def add_on_disk(self, notes: list[str]) -> None:
        for image in list_images(self.dir / "images"):
            if image.stem.endswith(HUMAN_SUFFIX):
                self.human(_base(image.stem), image.name)
            elif image.stem.endswith(ARTICLE_SUFFIX):
                self.article(_base(image.stem), image.name)
            else:
                notes.append(f"{rel(image, self.src)}: neither _0 (person) nor _1 (garment); not ingested")
        # Annotations of persons whose image is absent: rows too (rejected missing-file by the engine).
        for folder, suffix in (("label_maps", LABEL_SUFFIX), ("keypoints", POSE_SUFFIX)):
            if (self.dir / folder).is_dir():
                for f in sorted((self.dir / folder).iterdir()):
                    if f.is_file() and f.stem.endswith(suffix):
                        self.human(_base(f.stem))

    def add_pair(self, scan: Scan, pair_list: Path, pair_id_prefix: str, person: str, garment: str) -> None:
        split = split_from_name(pair_list.name)
        images = self.dir / "images"
        if escapes_root(images, person, self.src):  # own row, never aliased by stem; rejected path-outside-root
            h = self.humans.setdefault(person, HumanSpec(human_id=f"{self.category}/{person}",
                                                          path=rel(images / person, self.src), category=self.category))
        else:
            h = self.human(_base(stem_of(person)), person)
        if escapes_root(images, garment, self.src):
            a = self.articles.setdefault(garment, ArticleSpec(article_id=f"{self.category}/{garment}",
                                                              path=rel(images / garment, self.src), category=self.category))
        else:
            a = self.article(_base(stem_of(garment)), garment)
        for spec in (h, a):
            if spec.split == Split.UNKNOWN.value:
                spec.split = split
        scan.pairs.append(PairSpec(
            pair_id=f"{pair_id_prefix}/{stem_of(person)}--{stem_of(garment)}", human_id=h.human_id,
            article_id=a.article_id, split=split, category=self.category,
            paired=_base(stem_of(person)) == _base(stem_of(garment)), pair_list=rel(pair_list, self.src),
        ))


def _pair_lists(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*pairs*.txt") if p.is_file())


def scan(src: Path, options: ScanOptions) -> Scan:
    result = Scan()
    folders = [_CategoryFolder(src, c) for c in CATEGORY_DIRS if (src / c).is_dir()]
    for folder in folders:
        folder.add_on_disk(result.notes)
    per_category = any(_pair_lists(f.dir) for f in folders)
    for folder in folders:
        for pair_list in _pair_lists(folder.dir):
            result.used_files.add(rel(pair_list, src))
            for person, garment in read_pair_list(pair_list, src, result.notes):
                folder.add_pair(result, pair_list, f"{folder.category}/{pair_list.stem}", person, garment)
    if not per_category:
        # Root-level lists mix the categories: each pair goes to the folder holding its person (by id).
        owner = {base: f for f in folders for base in f.humans}
        for pair_list in _pair_lists(src):
            result.used_files.add(rel(pair_list, src))
            for person, garment in read_pair_list(pair_list, src, result.notes):
                folder = owner.get(_base(stem_of(person)))
                if folder is None:
                    result.notes.append(f"{pair_list.name}: person {person} is in no category folder; pair skipped")
                    continue
                folder.add_pair(result, pair_list, f"{folder.category}/{pair_list.stem}", person, garment)
    elif _pair_lists(src):
        result.notes.append("root-level pair lists not read: the per-category lists are used (they hold the same pairs)")
    for folder in folders:
        result.humans.extend(folder.humans.values())
        result.articles.extend(folder.articles.values())
    if options.category is not None:
        result.notes.append("--category ignored: Dress Code takes each sample's category from its folder")
    return result
