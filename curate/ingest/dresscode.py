"""Dress Code: ``<upper_body|lower_body|dresses>/{images,keypoints,label_maps}`` plus per-category pair lists.

* humans: ``images/NNNNNN_0.jpg``, id ``<category>/NNNNNN_0``; label map ``label_maps/NNNNNN_4.png``
  (DressCode-18); pose ``keypoints/NNNNNN_2.json`` (``[x, y, score, id]`` in the 384x512 frame, scaled to
  the image size by ``curate.poses``). A person whose label map or keypoints exist but whose image does
  not is still a row (``missing-file``), so every file of the source is accounted for.
* articles: ``images/NNNNNN_1.jpg``, id ``<category>/NNNNNN_1``; Dress Code ships no cloth mask.
* pairs: ``train_pairs.txt``, ``test_pairs_paired.txt``, ``test_pairs_unpaired.txt`` (any ``*pairs*.txt``)
  in each category folder; whitespace-separated; split from the file name; paired when the two names
  share the ``NNNNNN`` id. Pair id ``<category>/<list stem>/<person>--<garment>``.
* category: the folder (metadata, as in the official loader), on humans, articles and pairs.
* split of a person/garment: the split of the first pair list that names it, else unknown.
"""

from __future__ import annotations

from pathlib import Path

from curate.ingest.common import (
    ArticleSpec, HumanSpec, PairSpec, Scan, ScanOptions, list_images, read_pair_list, rel, split_from_name,
    stem_of,
)  # fmt: skip
from curate.schema import Split

CATEGORY_DIRS = ("upper_body", "lower_body", "dresses")
HUMAN_SUFFIX, ARTICLE_SUFFIX, POSE_SUFFIX, LABEL_SUFFIX = "_0", "_1", "_2", "_4"


def _base(stem: str) -> str:
    """``048462_0`` -> ``048462`` (the Dress Code sample id shared by all files of one sample)."""
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def scan(src: Path, options: ScanOptions) -> Scan:
    result = Scan()
    for category in CATEGORY_DIRS:
        cat_dir = src / category
        if not cat_dir.is_dir():
            continue
        humans: dict[str, HumanSpec] = {}
        articles: dict[str, ArticleSpec] = {}

        def human(base: str, image_name: str | None = None) -> HumanSpec:
            if base not in humans:
                name = image_name or f"{base}{HUMAN_SUFFIX}.jpg"
                humans[base] = HumanSpec(
                    human_id=f"{category}/{stem_of(name)}", path=rel(cat_dir / "images" / name, src),
                    category=category, labelmap_path=rel(cat_dir / "label_maps" / f"{base}{LABEL_SUFFIX}.png", src),
                    label_set="dresscode-18", pose_path=rel(cat_dir / "keypoints" / f"{base}{POSE_SUFFIX}.json", src),
                )
            return humans[base]

        def article(base: str, image_name: str | None = None) -> ArticleSpec:
            if base not in articles:
                name = image_name or f"{base}{ARTICLE_SUFFIX}.jpg"
                articles[base] = ArticleSpec(
                    article_id=f"{category}/{stem_of(name)}", path=rel(cat_dir / "images" / name, src),
                    category=category,
                )
            return articles[base]

        for image in list_images(cat_dir / "images"):
            if image.stem.endswith(HUMAN_SUFFIX):
                human(_base(image.stem), image.name)
            elif image.stem.endswith(ARTICLE_SUFFIX):
                article(_base(image.stem), image.name)
            else:
                result.notes.append(f"{rel(image, src)}: neither _0 (person) nor _1 (garment); not ingested")
        # Annotations of persons whose image is absent: rows too (rejected missing-file by the engine).
        for folder, suffix in (("label_maps", LABEL_SUFFIX), ("keypoints", POSE_SUFFIX)):
            if (cat_dir / folder).is_dir():
                for f in sorted((cat_dir / folder).iterdir()):
                    if f.is_file() and f.stem.endswith(suffix):
                        human(_base(f.stem))

        for pair_list in sorted(p for p in cat_dir.glob("*pairs*.txt") if p.is_file()):
            result.used_files.add(rel(pair_list, src))
            split = split_from_name(pair_list.name)
            for person, garment in read_pair_list(pair_list, src, result.notes):
                h = human(_base(stem_of(person)), person)
                a = article(_base(stem_of(garment)), garment)
                for spec in (h, a):
                    if spec.split == Split.UNKNOWN.value:
                        spec.split = split
                result.pairs.append(PairSpec(
                    pair_id=f"{category}/{pair_list.stem}/{stem_of(person)}--{stem_of(garment)}",
                    human_id=h.human_id, article_id=a.article_id, split=split, category=category,
                    paired=_base(stem_of(person)) == _base(stem_of(garment)), pair_list=rel(pair_list, src),
                ))
        result.humans.extend(humans.values())
        result.articles.extend(articles.values())
    if options.category is not None:
        result.notes.append("--category ignored: Dress Code takes each sample's category from its folder")
    return result
