"""VITON-HD (``zalando-hd-resized``): ``{train,test}/image|cloth|cloth-mask|image-parse-v3|openpose_json``.

* humans: ``<split>/image/<stem>.jpg``, id ``<split>/<stem>``; label map ``image-parse-v3/<stem>.png``
  (or the original code's ``image-parse``), LIP/CIHP-20; pose ``openpose_json/<stem>_keypoints.json``
  (or ``openpose-json``), BODY_25.
* articles: ``<split>/cloth/<stem>.jpg``, id ``<split>/<stem>``; mask ``cloth-mask/<stem>.jpg``.
* pairs: every ``*pairs*.txt`` at the root (``person.jpg cloth.jpg``; split from the file name, e.g.
  ``test_pairs.txt`` -> test); paired when both names are the same stem. A name a list mentions but that
  is not on disk still gets its row, rejected ``missing-file``, so the pair says why it is unusable.
  With no pair list at all, a person and a cloth of the same stem in one split form an inferred pair.
* category: VITON-HD has no category metadata: ``unknown`` unless the user asserts one with
  ``--category`` (the real VITON-HD is all tops: ``--category upper_body``).
"""

from __future__ import annotations

from pathlib import Path

from curate.ingest.common import PairSpec, Scan, ScanOptions, read_pair_list, rel, stem_of
from curate.ingest.split_folders import SplitFolders
from curate.schema import Category

PARSE_DIRS = ("image-parse-v3", "image-parse")
POSE_DIRS = ("openpose_json", "openpose-json")


def scan(src: Path, options: ScanOptions) -> Scan:
    category = options.category or Category.UNKNOWN.value
    result = Scan()
    folders = SplitFolders(src, src, category, PARSE_DIRS, POSE_DIRS)
    folders.add_all_on_disk()

    pair_lists = sorted(p for p in src.glob("*pairs*.txt") if p.is_file())
    for pair_list in pair_lists:
        result.used_files.add(rel(pair_list, src))
        split, split_dir = folders.pair_list_split(pair_list, result.notes)
        if split_dir is None:
            continue
        for person, cloth in read_pair_list(pair_list, src, result.notes):
            hid, aid = folders.add_human(split_dir, person), folders.add_article(split_dir, cloth)
            result.pairs.append(PairSpec(
                pair_id=f"{pair_list.stem}/{stem_of(person)}--{stem_of(cloth)}", human_id=hid, article_id=aid,
                split=split, category=category, paired=stem_of(person) == stem_of(cloth),
                pair_list=rel(pair_list, src),
            ))
    if not pair_lists:
        for hid, human in folders.humans.items():
            if hid in folders.articles:
                result.pairs.append(PairSpec(
                    pair_id=f"inferred/{hid}", human_id=hid, article_id=hid, split=human.split,
                    category=category, paired=True,
                ))
        result.notes.append("no *pairs*.txt at the root: person and cloth with the same stem were paired")
    if options.category is None:
        result.notes.append("VITON-HD has no category metadata: category=unknown (assert one with --category)")
    return folders.fill(result)
