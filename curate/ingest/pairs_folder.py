"""CAGAN-style pairs folder: ``human/`` (or ``humans/``) and ``article/`` (or ``articles/``), optional pair list.

* humans / articles: every image under the folder, recursively; id = path under the role folder without
  the extension (``upper/123``). Category from a sub-folder that names one (``article/upper/``,
  ``article/dresses/``; see ``common.category_from_parts``), else unknown; ``--category`` overrides.
* pairs: with a ``*pairs*.txt`` at the root (``human_name article_name`` per line, names relative to the
  role folders or bare file names), those pairs; otherwise a human and an article with the same file
  stem are a (paired) pair, and everything else stays unpaired: rows in humans/articles, no pair.
* no annotations are read: label maps and poses are left to later stages or other layouts.
"""

from __future__ import annotations

from pathlib import Path

from curate.imageio import is_image_name
from curate.ingest.common import (
    ArticleSpec, HumanSpec, PairSpec, Scan, ScanOptions, category_from_parts, escapes_root, first_dir, list_images,
    read_pair_list, rel, split_from_parts, stem_of,
)  # fmt: skip

HUMAN_DIRS = ("human", "humans")
ARTICLE_DIRS = ("article", "articles")


def _entries(folder: Path | None) -> list[tuple[str, Path]]:
    """``(id, path)`` for every image under ``folder``: id = relative path without the extension."""
    if folder is None:
        return []
    return [(rel(p.with_suffix(""), folder), p) for p in list_images(folder, recursive=True)]


def scan(src: Path, options: ScanOptions) -> Scan:
    result = Scan()
    human_dir, article_dir = first_dir(src, *HUMAN_DIRS), first_dir(src, *ARTICLE_DIRS)
    article_cats: dict[str, str] = {}
    for hid, path in _entries(human_dir):
        parts = Path(hid).parts[:-1]
        result.humans.append(HumanSpec(
            hid, rel(path, src), split=split_from_parts(parts), category=options.category or category_from_parts(parts)
        ))
    for aid, path in _entries(article_dir):
        parts = Path(aid).parts[:-1]
        article_cats[aid] = options.category or category_from_parts(parts)
        result.articles.append(
            ArticleSpec(aid, rel(path, src), split=split_from_parts(parts), category=article_cats[aid])
        )

    # Names in pair lists and stem matching both go through the file stem; a stem shared by two files
    # in different sub-folders is ambiguous and is not used for matching (reported).
    def by_stem(ids: set[str], what: str) -> dict[str, str]:
        index: dict[str, list[str]] = {}
        for i in sorted(ids):
            index.setdefault(Path(i).name, []).append(i)
        for stem, hits in index.items():
            if len(hits) > 1:
                result.notes.append(f"{what} stem {stem!r} is ambiguous ({', '.join(hits)}); not matched by stem")
        return {stem: hits[0] for stem, hits in index.items() if len(hits) == 1}

    human_ids = {h.human_id for h in result.humans}
    article_ids = {a.article_id for a in result.articles}
    human_stems, article_stems = by_stem(human_ids, "human"), by_stem(article_ids, "article")

    pair_lists = sorted(p for p in src.glob("*pairs*.txt") if p.is_file())
    for pair_list in pair_lists:
        result.used_files.add(rel(pair_list, src))
        for h_name, a_name in read_pair_list(pair_list, src, result.notes):
            h_out = escapes_root(human_dir or src / HUMAN_DIRS[0], h_name, src)
            a_out = escapes_root(article_dir or src / ARTICLE_DIRS[0], a_name, src)
            # a name leaving the root is never matched by stem (it would alias a real file): it gets its
            # own row, which the engine rejects path-outside-root without opening it
            hid = None if h_out else _resolve(h_name, human_ids, human_stems)
            aid = None if a_out else _resolve(a_name, article_ids, article_stems)
            if hid is None:  # listed but absent: a row that says so, so the pair can name its reason
                hid = h_name if h_out else _id_of(h_name)
                result.humans.append(HumanSpec(hid, rel((human_dir or src / HUMAN_DIRS[0]) / h_name, src)))
                human_ids.add(hid)
            if aid is None:
                aid = a_name if a_out else _id_of(a_name)
                article_cats[aid] = options.category or category_from_parts(Path(aid).parts[:-1])
                result.articles.append(ArticleSpec(
                    aid, rel((article_dir or src / ARTICLE_DIRS[0]) / a_name, src),
                    category=article_cats[aid],
                ))
                article_ids.add(aid)
            result.pairs.append(PairSpec(
                pair_id=f"{pair_list.stem}/{hid}--{aid}", human_id=hid, article_id=aid,
                category=article_cats[aid], paired=Path(hid).name == Path(aid).name, pair_list=rel(pair_list, src),
            ))
    if not pair_lists:
        for stem in sorted(set(human_stems) & set(article_stems)):
            hid, aid = human_stems[stem], article_stems[stem]
            result.pairs.append(PairSpec(
                pair_id=f"inferred/{hid}--{aid}", human_id=hid, article_id=aid, category=article_cats[aid], paired=True,
            ))
        unpaired = len(human_ids) + len(article_ids) - 2 * len(result.pairs)
        result.notes.append(
            f"no pair list: {len(result.pairs)} pairs matched by file stem; {unpaired} images stay unpaired"
        )
    return result


def _id_of(name: str) -> str:
    """The id a pair-list name would have: its path under the role folder without the image extension."""
    return Path(name).with_suffix("").as_posix() if is_image_name(name) else name


def _resolve(name: str, ids: set[str], stems: dict[str, str]) -> str | None:
    """The id a pair-list name refers to: an exact id (``upper/123``), else a unique stem."""
    key = _id_of(name)
    if key in ids:
        return key
    return stems.get(stem_of(name))
