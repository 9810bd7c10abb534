"""DeepFashion as laid out for SMIS: ``{train,test}/<stem>.jpg`` + ``cihp_{train,test}_mask/<stem>.png``.

* humans only (SMIS is label-map-to-image synthesis: there are no articles and no pairs); id
  ``<split>/<stem>``; label map ``cihp_<split>_mask/<stem>.png`` in the SMIS-8 set (ids 0-7, see
  ``curate.labelsets.SMIS8`` for the class order and its caveat). A mask without its image is still a
  row (``missing-file``) so every file is accounted for.
* category: unknown unless ``--category``.

The SMIS code fails with "cihp_test_mask is not a valid directory" when a split's mask folder is absent;
here a split without masks simply has humans without label maps (said in the summary).
"""

from __future__ import annotations

from pathlib import Path

from curate.ingest.common import HumanSpec, Scan, ScanOptions, list_images, rel
from curate.schema import Category

SPLITS = ("train", "test")


def scan(src: Path, options: ScanOptions) -> Scan:
    category = options.category or Category.UNKNOWN.value
    result = Scan()
    for split in SPLITS:
        image_dir, mask_dir = src / split, src / f"cihp_{split}_mask"
        stems: dict[str, str] = {p.stem: rel(p, src) for p in list_images(image_dir)}
        masks: dict[str, str] = {p.stem: rel(p, src) for p in list_images(mask_dir)}
        if stems and not mask_dir.is_dir():
            result.notes.append(f"{split}/ has images but no cihp_{split}_mask/: its humans have no label maps")
        for stem in sorted(set(stems) | set(masks)):
            result.humans.append(HumanSpec(
                human_id=f"{split}/{stem}", path=stems.get(stem, f"{split}/{stem}.jpg"), split=split,
                category=category, labelmap_path=masks.get(stem), label_set="smis-8",
            ))
    return result
