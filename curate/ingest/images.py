"""A plain folder tree of photos (a shop catalogue dump): every image is one article or one human row.

* role: ``--role article`` (the default, a catalogue is mostly product shots) or ``--role human``.
* id: the path under the source root without the extension (``tops/123``), unique and stable.
* category: the deepest folder whose name is a known category word (``tops/``, ``dresses/``,
  ``lower_body/``; see ``common.category_from_parts``), else unknown; ``--category`` overrides.
* split: a ``train``/``val``/``test`` folder on the path, else unknown.
* no pairs: dedupe and filters work on the rows; pairs come from another layout or a later stage.
Files without an image extension are not rows; they are counted in the summary's unused files.
"""

from __future__ import annotations

from pathlib import Path

from curate.ingest.common import (
    ArticleSpec, HumanSpec, IngestError, ROLES, Scan, ScanOptions, category_from_parts, list_images, rel,
    split_from_parts,
)  # fmt: skip

DEFAULT_ROLE = "article"


def scan(src: Path, options: ScanOptions) -> Scan:
    role = options.role or DEFAULT_ROLE
    if role not in ROLES:
        raise IngestError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
    result = Scan()
    if options.role is None:
        result.notes.append(f"images layout: no --role given, every image is an {DEFAULT_ROLE}")
    for path in list_images(src, recursive=True):
        row_id = rel(path.with_suffix(""), src)
        parts = Path(row_id).parts[:-1]
        category = options.category or category_from_parts(parts)
        split = split_from_parts(parts)
        if role == "human":
            result.humans.append(HumanSpec(row_id, rel(path, src), split=split, category=category))
        else:
            result.articles.append(ArticleSpec(row_id, rel(path, src), split=split, category=category))
    return result
